"""Packaging: light imports, lazy public names, the ``merging`` extra, conda and pip in step.

Import costs are measured in a fresh interpreter (this one has already imported everything).
"""

from __future__ import annotations

import ast
import functools
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
INSTALL_HINT = "pip install 'moe-sr-lab[merging]'"

# package -> modules that importing it, or resolving its public names, must not import.
HEAVY = {
    "srlab": ("torch", "transformers", "plotly"),
    "srlab.fpga": ("torch", "transformers", "plotly"),
    "moelab": ("mergekit", "rouge_score", "torch", "transformers"),
}
# Resolving every public name: moelab's load torch and transformers (its models need them) but
# not the extra; srlab's and srlab.fpga's load no plotly (figures live in srlab.viz).
HEAVY_AFTER_NAMES = {
    "srlab": ("torch", "transformers", "plotly"),
    "srlab.fpga": ("torch", "transformers", "plotly"),
    "moelab": ("mergekit", "rouge_score"),
}

_PROBE = """
import importlib, json, sys
package = importlib.import_module(sys.argv[1])
watched = sys.argv[2:]
after_import = [m for m in watched if m in sys.modules]
unresolved = []
for name in package.__all__:
    try:
        getattr(package, name)
    except Exception as exc:
        unresolved.append(f"{name}: {type(exc).__name__}: {exc}")
after_names = [m for m in watched if m in sys.modules]
print(json.dumps({"after_import": after_import, "unresolved": unresolved, "after_names": after_names}))
"""


@functools.cache
def probe(package: str) -> dict[str, list[str]]:
    """Import ``package`` in a fresh interpreter, then resolve every name of its ``__all__``."""
    watched = sorted(set(HEAVY[package]) | {"mergekit", "rouge_score"})
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, package, *watched],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("package", sorted(HEAVY))
def test_import_leaves_heavy_modules_out(package):
    assert probe(package)["after_import"] == [], f"import {package} imported these eagerly"


@pytest.mark.parametrize("package", sorted(HEAVY))
def test_every_public_name_resolves_without_optional_or_figure_modules(package):
    result = probe(package)
    assert result["unresolved"] == []
    loaded = set(result["after_names"]) & set(HEAVY_AFTER_NAMES[package])
    assert not loaded, f"resolving {package}.__all__ imported {sorted(loaded)}"


@pytest.mark.parametrize("package", sorted(HEAVY))
def test_stub_lists_exactly_the_lazy_names(package):
    # __all__ written in __init__.pyi (for type checkers) == the names lazy_loader attaches.
    module = importlib.import_module(package)
    stub = Path(module.__file__).with_suffix(".pyi")
    tree = ast.parse(stub.read_text())
    declared = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["__all__"]
    )
    assert declared == sorted(declared), f"keep {stub.name}'s __all__ sorted"
    assert declared == module.__all__ == dir(module)


def test_public_names_are_the_same_objects_as_in_their_modules():
    import moelab
    import srlab
    from moelab.merging import merge_models
    from srlab.fpga.datapath import FixedPointResizer

    assert srlab.resize is importlib.import_module(srlab.resize.__module__).resize
    assert srlab.FixedPointResizer is srlab.fpga.FixedPointResizer is FixedPointResizer
    assert moelab.merge_models is merge_models


# --- the merging extra ---------------------------------------------------------------------


@pytest.fixture
def without_merging_extra(monkeypatch):
    """Make mergekit and rouge_score fail to import, as when the extra is not installed."""
    for top in ("mergekit", "rouge_score"):
        loaded = [name for name in sys.modules if name.startswith(f"{top}.")]
        for name in [top, *loaded]:
            # A None entry makes ``import name`` raise ModuleNotFoundError.
            monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture
def tiny_moe():
    """Three tiny Mixtral models (base and two variants), built in memory."""
    import torch
    from transformers import MixtralConfig, MixtralForCausalLM

    config = MixtralConfig(
        vocab_size=32,
        hidden_size=8,
        intermediate_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_local_experts=2,
        num_experts_per_tok=1,
    )
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(MixtralForCausalLM(config).eval())
    return models


@pytest.mark.parametrize("method", ["task_arithmetic", "ties", "dare"])
def test_merge_without_extra_names_the_extra(without_merging_extra, tiny_moe, method):
    from moelab import MissingExtraError, merge_models

    base, a, b = tiny_moe
    with pytest.raises(MissingExtraError, match=re.escape(INSTALL_HINT)) as info:
        merge_models([a, b], method, base=base)
    assert isinstance(info.value, ImportError)
    assert f"merge method {method!r} needs the optional package 'mergekit'" in str(info.value)


def test_merge_without_extra_fails_before_loading_models(without_merging_extra, tmp_path):
    from moelab import MissingExtraError, merge_models

    # Folders that do not exist: loading them first would raise CheckpointNotFoundError.
    missing = [tmp_path / "a", tmp_path / "b"]
    with pytest.raises(MissingExtraError, match=re.escape(INSTALL_HINT)):
        merge_models(missing, "ties", base=tmp_path / "base")


def test_merge_tensors_without_extra_names_the_extra(without_merging_extra):
    import torch

    from moelab import MissingExtraError
    from moelab.merging import merge_tensors

    with pytest.raises(MissingExtraError, match=re.escape(INSTALL_HINT)) as info:
        merge_tensors("dare", [torch.ones(3), torch.zeros(3)], torch.zeros(3))
    assert "merge method 'dare' needs the optional package 'mergekit'" in str(info.value)


def test_average_needs_no_extra(without_merging_extra, tiny_moe):
    import torch

    from moelab import merge_models

    _, a, b = tiny_moe
    merged = merge_models([a, b], "average")
    weight = "model.embed_tokens.weight"
    expected = (a.get_parameter(weight) + b.get_parameter(weight)) / 2
    assert torch.allclose(merged.model.get_parameter(weight), expected)


def test_rouge_without_extra_names_the_extra_before_generating(without_merging_extra, monkeypatch):
    from moelab import MissingExtraError, evaluate

    def generate(*args, **kwargs):
        raise AssertionError("rouge1 generated answers before checking for rouge-score")

    monkeypatch.setattr(evaluate, "greedy_answers", generate)
    with pytest.raises(MissingExtraError, match=re.escape(INSTALL_HINT)) as info:
        evaluate.rouge1(None, None, [("sort: 2 1", "1 2")], max_new_tokens=4)
    assert "ROUGE-1 needs the optional package 'rouge-score'" in str(info.value)


def test_require_imports_or_names_the_extra(monkeypatch):
    from moelab import MissingExtraError
    from moelab.extras import require

    assert require("rouge_score.rouge_scorer", "a test").__name__ == "rouge_score.rouge_scorer"
    monkeypatch.setitem(sys.modules, "rouge_score", None)
    monkeypatch.delitem(sys.modules, "rouge_score.rouge_scorer")
    with pytest.raises(MissingExtraError, match=re.escape(INSTALL_HINT)) as info:
        require("rouge_score.rouge_scorer", "a test")
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    assert info.value.name == "rouge_score.rouge_scorer"
    with pytest.raises(
        ValueError,
        match="'numpy' is not a known optional dependency; known: bitsandbytes, hqq, mergekit",
    ):
        require("numpy.linalg", "a test")


# --- pyproject.toml, environment.yml and the Makefile agree --------------------------------

# conda-forge name -> pip name, where they differ beyond '-' / '_'.
CONDA_TO_PIP = {"pytorch": "torch"}
# Entries of environment.yml that are the environment itself, not a package of the project.
CONDA_ONLY = {"python", "pip"}
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*?)\s*(?:;.*)?$")


def _requirement(line: str) -> tuple[str, str]:
    """``"Foo_Bar >= 1.0, <2"`` -> ``("foo-bar", "<2,>=1.0")``: PEP 503 name, sorted bounds."""
    match = _REQUIREMENT.match(line.strip())
    assert match, f"cannot read requirement {line!r}"
    name, bounds = match.groups()
    name = re.sub(r"[-_.]+", "-", name).lower()
    return CONDA_TO_PIP.get(name, name), ",".join(
        sorted(b.strip() for b in bounds.split(",") if b.strip())
    )


@functools.cache
def pyproject() -> dict:
    # Only the pyproject checks need tomllib (standard library from Python 3.11); the import
    # checks above run on every supported Python.
    tomllib = pytest.importorskip(
        "tomllib", reason="tomllib is in the standard library from Python 3.11"
    )
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pip_requirements() -> dict[str, str]:
    project = pyproject()["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines.extend(extra)
    return dict(map(_requirement, lines))


def _conda_requirements() -> dict[str, str]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    lines = []
    for entry in environment["dependencies"]:
        if isinstance(entry, dict):
            # Only the project itself ("-e .") and pip options start with "-".
            lines.extend(line for line in entry["pip"] if not line.startswith("-"))
        else:
            lines.append(entry)
    requirements = dict(map(_requirement, lines))
    return {name: bounds for name, bounds in requirements.items() if name not in CONDA_ONLY}


def test_environment_yml_matches_pyproject():
    pip, conda = _pip_requirements(), _conda_requirements()
    assert sorted(set(pip) - set(conda)) == [], "in pyproject.toml, missing from environment.yml"
    assert sorted(set(conda) - set(pip)) == [], "in environment.yml, missing from pyproject.toml"
    differ = {name: (pip[name], conda[name]) for name in pip if pip[name] != conda[name]}
    assert differ == {}, "version bounds (pyproject, environment.yml) differ"


def test_optional_modules_come_with_their_extra_only():
    from moelab.extras import OPTIONAL_MODULES

    project = pyproject()["project"]
    dependencies = dict(map(_requirement, project["dependencies"]))
    for module, (package, extra) in OPTIONAL_MODULES.items():
        in_extra = dict(map(_requirement, project["optional-dependencies"][extra]))
        assert _requirement(package)[0] in in_extra, f"{package} ({module}) is not in [{extra}]"
        assert _requirement(package)[0] not in dependencies, f"{package} is a hard dependency"


def test_make_install_installs_every_extra():
    recipe = re.findall(r'pip install[^\n]*-e "\.\[([^\]]*)\]"', (ROOT / "Makefile").read_text())
    assert len(recipe) == 1, "expected one editable install of the project in the Makefile"
    assert sorted(recipe[0].split(",")) == sorted(pyproject()["project"]["optional-dependencies"])
