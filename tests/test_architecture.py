"""The tree keeps its shape: one concept per module, public names across modules.

A name or module that starts with an underscore is private to what contains it: a private
module (``moelab/zoo/_spec.py``) to its package, a private name (``_helper``) to its module.
Code elsewhere, tests and benchmarks included, goes through public names, so a module's
internals can change without breaking its neighbours.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("moelab", "srlab", "labcore")
CHECKED = (*PACKAGES, "tests", "benchmarks", "scripts")
MAX_MODULE_LINES = 600


def module_name(path: Path) -> str:
    """Dotted name of a file under the repository root (``moelab/zoo/_spec.py`` -> ``moelab.zoo._spec``)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_paths(tree: ast.AST, importer: str, is_package: bool) -> list[tuple[int, str]]:
    """Every dotted path an ``import`` or ``from ... import`` statement reaches, with its line."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: resolve against the importer's package
                package = importer.split(".") if is_package else importer.split(".")[:-1]
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def private_violation(path: str, importer: str) -> str | None:
    """Why ``importer`` may not reach ``path``, or None if it may."""
    parts = path.split(".")
    if parts[0] not in PACKAGES or parts[-1] == "__future__":
        return None
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            owner = ".".join(parts[:i])  # a private module belongs to its package ...
            if i == len(parts) - 1 and not _is_module(parts):
                owner = ".".join(parts[:i])  # ... a private name to its module
                if importer != owner:
                    return f"private name {part!r} of {owner}"
            elif importer != owner and not importer.startswith(owner + "."):
                return f"private module {'.'.join(parts[: i + 1])} of package {owner}"
    return None


def _is_module(parts: list[str]) -> bool:
    base = ROOT.joinpath(*parts)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def python_files() -> list[Path]:
    return sorted(
        p for top in CHECKED for p in (ROOT / top).rglob("*.py") if ".venv" not in p.parts
    )


def test_no_import_of_another_modules_private_names() -> None:
    problems = []
    for path in python_files():
        importer = module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, target in imported_paths(tree, importer, path.name == "__init__.py"):
            why = private_violation(target, importer)
            if why:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {why}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_longer_than_the_limit(package: str) -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / package).rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"split these modules by concept (limit {MAX_MODULE_LINES} lines): {long}"


@pytest.mark.parametrize(
    ("target", "importer", "allowed"),
    [
        ("moelab.zoo._spec.ZooSpec", "moelab.zoo", True),  # a package re-exports its module
        ("moelab.zoo._spec.ZooSpec", "moelab.zoo._zoo", True),  # a sibling module
        ("moelab.zoo._spec.ZooSpec", "moelab.compare", False),  # another package
        ("moelab.zoo._spec.ZooSpec", "tests.moelab.test_zoo", False),
        ("srlab._resize.resize", "srlab", True),
        ("srlab._resize._blocks", "srlab.fpga.datapath", False),  # a private name
        ("srlab.kernels.get_kernel", "tests.srlab.test_kernels", True),
        ("numpy._core.multiarray", "srlab.kernels", True),  # not ours
    ],
)
def test_private_rule(target: str, importer: str, allowed: bool) -> None:
    assert (private_violation(target, importer) is None) is allowed


OURS = PACKAGES  # names whose private members tests and benchmarks must not reach
# Private-looking attributes that belong to another library's documented interface:
# transformers selects its kernels through ``config._experts_implementation`` /
# ``config._attn_implementation``.
THIRD_PARTY_ATTRIBUTES = frozenset({"_attn_implementation", "_experts_implementation"})


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` of a chain of attributes on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _foreign_roots(tree: ast.AST) -> set[str]:
    """Local names bound to imports from outside our packages (``torch``, ``np``, ...)."""
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] not in OURS:
                    roots.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom) and not node.level:
            if (node.module or "").split(".")[0] not in OURS:
                roots.update(alias.asname or alias.name for alias in node.names)
    return roots


def private_accesses(tree: ast.AST) -> list[tuple[int, str]]:
    """Private names a test or benchmark reaches: ``obj._name`` and patch targets.

    ``self._x`` / ``cls._x`` (a test class's own state), dunders and attributes of names
    imported from other libraries (``torch.utils._pytree``) are allowed; a string
    ``"pkg.mod._name"`` passed to ``setattr``/``delattr`` (``monkeypatch``, ``mock.patch``) is not.
    """
    foreign = _foreign_roots(tree)
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _is_private(node.attr)
            and node.attr not in THIRD_PARTY_ATTRIBUTES
        ):
            root = node.value
            while isinstance(root, (ast.Attribute, ast.Call, ast.Subscript)):
                root = root.func if isinstance(root, ast.Call) else root.value
            if isinstance(root, ast.Name) and root.id in {"self", "cls", *foreign}:
                continue
            found.append((node.lineno, _dotted(node) or f"._{node.attr.lstrip('_')}"))
        elif isinstance(node, ast.Call) and node.args:
            target = node.args[0]
            if isinstance(target, ast.Constant) and isinstance(target.value, str):
                parts = target.value.split(".")
                if parts[0] in OURS and any(_is_private(p) for p in parts[1:]):
                    found.append((node.lineno, target.value))
    return found


def test_tests_and_benchmarks_use_public_names_only() -> None:
    problems = []
    for path in python_files():
        if path.relative_to(ROOT).parts[0] not in ("tests", "benchmarks"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, name in private_accesses(tree):
            problems.append(f"{path.relative_to(ROOT)}:{line} reaches private {name}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("from moelab import compare\ncompare._separate", ["compare._separate"]),
        ("cmoe._held_tensors()", ["cmoe._held_tensors"]),
        ("engine.decoder._graphs", ["engine.decoder._graphs"]),
        (
            'monkeypatch.setattr("moelab.zoo._zoo._write_builds", f)',
            ["moelab.zoo._zoo._write_builds"],
        ),
        ("class T:\n    def f(self):\n        return self._x", []),
        ("import torch\ntorch.utils._pytree", []),
        ("from torch.utils import _pytree\n_pytree.tree_leaves", []),
        ("obj.__class__", []),
        ("model.config._experts_implementation", []),
        ('monkeypatch.setattr("torch._C.x", f)', []),
    ],
)
def test_private_access_rule(source: str, flagged: list[str]) -> None:
    assert [name for _, name in private_accesses(ast.parse(source))] == flagged
