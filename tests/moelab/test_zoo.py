"""Offline zoo: tokenizer, tiny builds (layout, determinism, cache safety) and the default zoo."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from filelock import FileLock
from transformers import (
    AutoTokenizer,
    MixtralForCausalLM,
    SwitchTransformersForConditionalGeneration,
)

from moelab.corpora import domain_split, iter_texts, task_split
from moelab.evaluate import exact_match, perplexity
from moelab.zoo import (
    SPECIAL_TOKENS,
    TRAIN_JOBS_ENV,
    TRAIN_THREADS_ENV,
    ZOO_DIR_ENV,
    ZOO_SPECS,
    Zoo,
    ZooCacheWarning,
    ZooSpec,
    build_environment,
    ensure_zoo,
    exact_match_accepted,
    file_hashes,
    get_recipe,
    load_zoo,
    parameter_breakdown,
    spec_key,
    train_jobs,
    train_threads,
    train_tokenizer,
    zoo_dir,
    zoo_root,
)

# The training settings this test run was started with (module fixtures override them).
_CALLER_ENV = {n: os.environ[n] for n in (TRAIN_THREADS_ENV, TRAIN_JOBS_ENV) if n in os.environ}

TINY_MIXTRAL = ZooSpec(
    name="mixtral-tiny", family="mixtral", variants=("arithmetic", "sorting"), mixture=(2, 1),
    vocab_size=300, hidden_size=16, intermediate_size=32, num_layers=2, num_heads=2,
    num_kv_heads=1, num_experts=4, experts_per_token=2, seq_len=32, batch_size=4,
    pretrain_steps=6, finetune_steps=3, warmup_steps=2, n_train=120, n_heldout=40,
    eval_chunk_len=16, eval_max_chunks=4,
)  # fmt: skip
TINY_SWITCH = ZooSpec(
    name="switch-tiny", family="switch", variants=("add", "reverse"), vocab_size=300,
    hidden_size=16, intermediate_size=32, num_layers=2, num_heads=2, num_experts=4,
    experts_per_token=1, seq_len=32, batch_size=8, pretrain_steps=6, finetune_steps=3,
    warmup_steps=2, n_train=100, n_heldout=20, eval_max_new_tokens=8,
)  # fmt: skip


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny builds train in this process on one thread: starting training processes would cost
    more than the whole tiny build (the bytes are the same either way, see
    ``test_parallel_build_writes_the_same_bytes``)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(TRAIN_THREADS_ENV, "1")
        mp.setenv(TRAIN_JOBS_ENV, "1")
        yield


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> Path:
    """A cache root holding both tiny zoos, built once for the module."""
    root = tmp_path_factory.mktemp("zoo")
    ensure_zoo(root=root, specs={"mixtral-tiny": TINY_MIXTRAL, "switch-tiny": TINY_SWITCH})
    return root


@pytest.fixture()
def tiny_copy(tiny_root: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny cache root that a test may damage."""
    root = tmp_path / "cache"
    shutil.copytree(tiny_root, root)
    return root


def _forbid_building(monkeypatch: pytest.MonkeyPatch, fail: Callable[..., None]) -> None:
    """Make every build fail at its first step (a recipe preparing the data)."""
    for family in ("mixtral", "switch"):
        monkeypatch.setattr(type(get_recipe(family)), "prepare", fail)


def _load_quietly(name: str, root: Path, spec: ZooSpec) -> Zoo:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZooCacheWarning)
        return load_zoo(name, root, spec=spec)


# ---------------------------------------------------------------------------------------------
# Tokenizer


@pytest.mark.parametrize("style", ["causal", "seq2seq"])
def test_tokenizer_round_trip_through_auto_tokenizer(tmp_path: Path, style: str) -> None:
    texts = [d.text for d in domain_split("code").train[:5]] + ["add: 312 + 7", "sort: 5 2 9"]
    tok = train_tokenizer(texts, 400, style=style)
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    samples = [
        domain_split("prose").heldout[0].text[:500],
        "def f(x):\n\treturn x  +  1  # naïve, ünïcödé → 🙂\n",
        "37 + 8: 7 + 8 = 15, carry 1, 3 + 1 = 4, so 45\nsort 5 2 9 -> 2 5 9",
    ]
    for text in samples:
        ids = loaded(text)["input_ids"]
        assert ids == tok(text)["input_ids"]
        assert loaded.decode(ids, skip_special_tokens=True) == text
    pad, bos, eos, unk = (loaded.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS)
    assert (pad, bos, eos, unk) == (0, 1, 2, 3)
    assert loaded.pad_token_id == 0 and loaded.eos_token_id == 2
    ids = loaded("x")["input_ids"]
    assert (ids[0] == bos) if style == "causal" else (ids[-1] == eos)
    # Digits are split one per token.
    assert loaded.convert_ids_to_tokens(
        loaded("12345", add_special_tokens=False)["input_ids"]
    ) == list("12345")


def test_tokenizer_training_is_deterministic() -> None:
    texts = list(iter_texts(task_split("dedup", n_train=200, n_heldout=10), "train"))
    a = train_tokenizer(texts, 300, style="seq2seq")
    b = train_tokenizer(texts, 300, style="seq2seq")
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()


def test_tokenizer_rejects_bad_arguments() -> None:
    with pytest.raises(
        ValueError, match="unknown tokenizer style 'mlm'; known styles: causal, seq2seq"
    ):
        train_tokenizer(["a"], 300, style="mlm")
    with pytest.raises(ValueError, match="use at least 260"):
        train_tokenizer(["a"], 100, style="causal")


# ---------------------------------------------------------------------------------------------
# Specs


def test_builtin_specs_meet_the_brief() -> None:
    mix, sw = ZOO_SPECS["mixtral-tiny"], ZOO_SPECS["switch-tiny"]
    assert mix.num_experts == 8 and mix.experts_per_token == 2 and len(mix.variants) >= 4
    assert sw.num_experts == 8 and sw.experts_per_token == 1 and len(sw.variants) >= 4
    assert mix.intermediate_size >= 4 * mix.hidden_size


def test_spec_key_tracks_the_recipe() -> None:
    other = dataclasses.replace(TINY_MIXTRAL, finetune_lr=2e-3)
    assert spec_key(other) != spec_key(TINY_MIXTRAL)
    assert spec_key(dataclasses.replace(TINY_MIXTRAL)) == spec_key(TINY_MIXTRAL)
    assert zoo_dir(other, "/r").name.startswith("mixtral-tiny-v")
    assert zoo_dir(other, "/r") != zoo_dir(TINY_MIXTRAL, "/r")


def test_spec_key_tracks_the_build_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every input that changes the bytes of a build changes the key: two builds that differ
    # never share a cache folder.
    assert spec_key(TINY_MIXTRAL, threads=1) != spec_key(TINY_MIXTRAL, threads=2)
    monkeypatch.setenv(TRAIN_THREADS_ENV, "2")
    assert spec_key(TINY_MIXTRAL) == spec_key(TINY_MIXTRAL, threads=2)
    env = build_environment(threads=3)
    assert env["threads"] == 3
    assert env["torch"] == torch.__version__
    assert env["python"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert env["platform"] == f"{platform.system()}-{platform.machine()}"
    assert {"transformers", "tokenizers", "cpu_capability"} <= set(env)
    baseline = spec_key(TINY_MIXTRAL, threads=1)
    for field, value in [("torch", "0.0.0"), ("python", "3.99"), ("cpu_capability", "DEFAULT")]:
        changed = {**build_environment(1), field: value}
        assert spec_key(TINY_MIXTRAL, environment=changed) != baseline, field
    assert spec_key(TINY_MIXTRAL, environment=build_environment(1)) == baseline


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"family": "gpt"}, "unknown zoo family 'gpt'; known families: mixtral, switch"),
        (
            {"variants": ("prose", "poetry")},
            "distinct names among prose, code, arithmetic, sorting",
        ),
        ({"variants": ("prose", "prose")}, "distinct names among"),
        ({"mixture": (1, 2, 3)}, "one positive integer share per variant"),
        ({"hidden_size": 15}, "hidden_size \\(15\\) must be divisible by num_heads"),
        ({"experts_per_token": 5}, "experts_per_token must lie in \\[1, num_experts=4\\]"),
        ({"pretrain_steps": 0}, "pretrain_steps must be positive"),
        ({"lr": -1.0}, "lr must be positive"),
        ({"heldout_fraction": 1.0}, "heldout_fraction must lie in \\(0, 1\\)"),
    ],
)
def test_spec_validation(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TINY_MIXTRAL, **changes)


def test_switch_spec_validation() -> None:
    with pytest.raises(ValueError, match="route each token to one expert; set experts_per_token=1"):
        dataclasses.replace(TINY_SWITCH, experts_per_token=2)
    with pytest.raises(ValueError, match="distinct names among add, sort, reverse, dedup"):
        dataclasses.replace(TINY_SWITCH, variants=("prose",))


def test_unknown_zoo_name_lists_known_ones(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"unknown zoo 'gpt-tiny'; known zoos: mixtral-tiny, switch-tiny"
    ):
        load_zoo("gpt-tiny", tmp_path)
    with pytest.raises(
        ValueError, match=r"unknown zoo 'gpt-tiny'; known zoos: mixtral-tiny, switch-tiny"
    ):
        ensure_zoo(["mixtral-tiny", "gpt-tiny"], tmp_path)
    with pytest.raises(
        ValueError, match="spec is named 'mixtral-tiny' but zoo 'switch-tiny' was asked"
    ):
        load_zoo("switch-tiny", tmp_path, spec=TINY_MIXTRAL)
    assert not any(tmp_path.iterdir())  # nothing was built or locked


# ---------------------------------------------------------------------------------------------
# Tiny builds


@pytest.mark.parametrize("spec", [TINY_MIXTRAL, TINY_SWITCH], ids=lambda s: s.family)
def test_tiny_zoo_layout_and_manifest(tiny_root: Path, spec: ZooSpec) -> None:
    zoo = _load_quietly(spec.name, tiny_root, spec)
    assert zoo.root == zoo_dir(spec, tiny_root)
    assert zoo.tasks == spec.variants
    assert zoo.model_names() == ["base", *spec.variants]
    assert zoo.paths() == [zoo.base_path, *(zoo.root / "variants" / v for v in spec.variants)]
    assert zoo.spec == spec
    m = zoo.manifest
    assert m["files"] == file_hashes(zoo.root)  # every file hashed, all hashes current
    assert all(
        f"{p.relative_to(zoo.root).as_posix()}/model.safetensors" in m["files"] for p in zoo.paths()
    )
    assert {"torch", "transformers", "tokenizers", "python"} <= set(m["versions"])
    assert m["environment"] == build_environment(threads=1)  # what produced it
    assert m["key"] == spec_key(spec, threads=1)
    assert m["build"]["threads_per_job"] == 1 and m["build"]["jobs"] == 1
    assert m["build"]["zoos_built_together"] == ["mixtral-tiny", "switch-tiny"]
    assert m["seed"] == spec.seed and m["spec"] == spec.to_dict()
    curves = m["training"]["curves"]
    assert len(curves["base"]) == spec.pretrain_steps
    assert all(len(curves[v]) == spec.finetune_steps for v in spec.variants)
    results = m["evaluation"]["results"]
    assert set(results) == {"base", *spec.variants}
    assert all(set(r) == set(spec.variants) for r in results.values())
    acceptance = m["evaluation"]["acceptance"]["variants"]
    for v in spec.variants:
        assert acceptance[v]["base"] == results["base"][v]
        assert acceptance[v]["variant"] == results[v][v]
    # The parameter breakdown is the one of the saved model.
    model = zoo.load_model()
    assert not model.training
    assert m["parameters"] == parameter_breakdown(model)
    assert m["parameters"]["experts"] == sum(
        p.numel() for n, p in model.named_parameters() if ".experts." in n
    )


def test_mixtral_zoo_helpers(tiny_root: Path) -> None:
    zoo = _load_quietly("mixtral-tiny", tiny_root, TINY_MIXTRAL)
    model = zoo.load_model("sorting")
    assert isinstance(model, MixtralForCausalLM)
    tok = zoo.load_tokenizer()
    texts = zoo.heldout_texts("sorting")
    assert texts == [
        d.text
        for d in domain_split("sorting", n_train=120, n_heldout=40, heldout_fraction=0.15).heldout
    ]
    ids = zoo.heldout_ids("sorting")
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    # The manifest's perplexity is reproducible from the stored held-out text.
    recorded = zoo.manifest["evaluation"]["results"]["sorting"]["sorting"]
    assert perplexity(
        model, ids, TINY_MIXTRAL.eval_chunk_len, TINY_MIXTRAL.eval_max_chunks
    ) == pytest.approx(recorded, abs=1e-3)
    with pytest.raises(ValueError, match="holds documents, not examples; use heldout_ids"):
        zoo.heldout_examples("sorting")
    with pytest.raises(ValueError, match="has no held-out set 'prose'; known: arithmetic, sorting"):
        zoo.heldout_texts("prose")
    with pytest.raises(
        ValueError, match="has no variant 'prose'; known: base, arithmetic, sorting"
    ):
        zoo.load_model("prose")


def test_switch_zoo_helpers(tiny_root: Path) -> None:
    zoo = _load_quietly("switch-tiny", tiny_root, TINY_SWITCH)
    model = zoo.load_model("add")
    assert isinstance(model, SwitchTransformersForConditionalGeneration)
    examples = zoo.heldout_examples("add")
    assert examples == list(
        task_split("add", n_train=100, n_heldout=20, heldout_fraction=0.15).heldout
    )
    assert zoo.heldout_texts("add") == [e.source for e in examples]
    recorded = zoo.manifest["evaluation"]["results"]["add"]["add"]
    assert (
        exact_match(model, zoo.load_tokenizer(), examples, TINY_SWITCH.eval_max_new_tokens)
        == recorded
    )
    with pytest.raises(ValueError, match="holds text-to-text examples; use heldout_examples"):
        zoo.heldout_ids("add")


def test_variants_start_from_the_base(tiny_root: Path) -> None:
    zoo = _load_quietly("mixtral-tiny", tiny_root, TINY_MIXTRAL)
    base = zoo.load_model().state_dict()
    torch.manual_seed(123)
    fresh = MixtralForCausalLM(zoo.load_model().config).state_dict()
    for variant in zoo.tasks:
        tuned = zoo.load_model(variant).state_dict()
        assert tuned.keys() == base.keys()
        moved = sum(float((tuned[k] - base[k]).norm()) for k in base)
        unrelated = sum(float((fresh[k] - base[k]).norm()) for k in base)
        assert 0 < moved < 0.2 * unrelated


def test_second_load_does_not_rebuild(tiny_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("the cached zoo was rebuilt")

    _forbid_building(monkeypatch, fail)
    started = time.perf_counter()
    zoos = ensure_zoo(
        root=tiny_root, specs={"mixtral-tiny": TINY_MIXTRAL, "switch-tiny": TINY_SWITCH}
    )
    assert time.perf_counter() - started < 10
    assert set(zoos) == {"mixtral-tiny", "switch-tiny"}


def test_build_is_deterministic(tiny_root: Path, tmp_path: Path) -> None:
    # The second build runs in the same process, so it also checks that nothing (a global RNG,
    # a cached tokenizer) leaks from one build into the next.
    again = load_zoo("mixtral-tiny", tmp_path, spec=TINY_MIXTRAL)
    first = _load_quietly("mixtral-tiny", tiny_root, TINY_MIXTRAL)
    assert again.manifest["files"] == first.manifest["files"]  # identical weights, tokenizer, data
    assert again.manifest["training"]["curves"] == first.manifest["training"]["curves"]


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_safetensors_is_detected_and_rebuilt(tiny_copy: Path) -> None:
    folder = zoo_dir(TINY_MIXTRAL, tiny_copy)
    before = json.loads((folder / "manifest.json").read_text())["files"]
    target = folder / "variants" / "sorting" / "model.safetensors"
    _flip_byte(target, target.stat().st_size // 2)
    with pytest.warns(
        ZooCacheWarning, match=r"variants/sorting/model.safetensors has SHA-256 .* rebuilding"
    ):
        zoo = load_zoo("mixtral-tiny", tiny_copy, spec=TINY_MIXTRAL)
    assert zoo.manifest["files"] == file_hashes(zoo.root) == before
    leftovers = [
        p.name for p in tiny_copy.iterdir() if ".building-" in p.name or ".stale-" in p.name
    ]
    assert leftovers == []  # neither the staging folder nor the replaced one stays behind
    _load_quietly("mixtral-tiny", tiny_copy, TINY_MIXTRAL)  # and now it loads without a warning


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (
            lambda f: (f / "tokenizer" / "tokenizer.json").unlink(),
            "file tokenizer/tokenizer.json is missing",
        ),
        (lambda f: (f / "manifest.json").write_text("{not json"), "manifest.json is unreadable"),
        (lambda f: (f / "manifest.json").unlink(), "manifest.json is missing"),
        (
            lambda f: shutil.rmtree(f / "variants" / "add"),
            "file variants/add/config.json is missing",
        ),
    ],
    ids=["missing-file", "bad-manifest", "no-manifest", "missing-variant"],
)
def test_partial_cache_is_rebuilt(tiny_copy: Path, damage, reason: str) -> None:
    folder = zoo_dir(TINY_SWITCH, tiny_copy)
    damage(folder)
    with pytest.warns(ZooCacheWarning, match=reason):
        zoo = load_zoo("switch-tiny", tiny_copy, spec=TINY_SWITCH)
    assert zoo.manifest["files"] == file_hashes(folder)


def test_interrupted_build_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None
) -> None:
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(get_recipe("mixtral")), "evaluate", boom)
    with pytest.raises(KeyboardInterrupt):
        load_zoo("mixtral-tiny", tmp_path, spec=TINY_MIXTRAL)
    # Only the (empty) build lock remains: no zoo folder, no staging folder.
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_waits_for_a_concurrent_build(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("built although another process was building the same zoo")

    _forbid_building(monkeypatch, fail)
    target = zoo_dir(TINY_SWITCH, tmp_path)
    found: dict[str, Zoo] = {}
    with FileLock(tmp_path / f".{target.name}.lock"):  # "another process" is building
        waiter = threading.Thread(
            target=lambda: found.update(zoo=load_zoo("switch-tiny", tmp_path, spec=TINY_SWITCH))
        )
        waiter.start()
        time.sleep(0.5)
        assert waiter.is_alive()
        shutil.copytree(zoo_dir(TINY_SWITCH, tiny_root), target)  # ... and publishes
    waiter.join(timeout=60)
    assert found["zoo"].root == target


def test_zoo_dir_env_is_respected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_root: Path
) -> None:
    monkeypatch.setenv(ZOO_DIR_ENV, str(tiny_root))
    assert zoo_root() == tiny_root
    assert zoo_root(tmp_path) == tmp_path  # an explicit root wins
    assert _load_quietly("switch-tiny", None, TINY_SWITCH).root == zoo_dir(TINY_SWITCH, tiny_root)
    monkeypatch.delenv(ZOO_DIR_ENV)
    assert zoo_root().name == "zoo" and zoo_root() != tiny_root


@pytest.mark.parametrize(
    ("base", "variant", "accepted"),
    [
        (0.0, 0.1, True),  # +10 points
        (0.5, 0.59, False),  # +9 points, 18 % of the errors
        (0.92, 0.97, True),  # +5 points, but 5/8 of the errors gone
        (0.9, 0.94, False),  # +4 points, 40 % of the errors
        (1.0, 1.0, False),  # no gain at all
    ],
)
def test_exact_match_acceptance_rule(base: float, variant: float, accepted: bool) -> None:
    assert exact_match_accepted(base, variant) is accepted


def test_train_threads_and_jobs_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRAIN_THREADS_ENV, raising=False)
    monkeypatch.delenv(TRAIN_JOBS_ENV, raising=False)
    assert train_threads() == 1
    assert 1 <= train_jobs() <= 2
    monkeypatch.setenv(TRAIN_THREADS_ENV, "2")
    assert train_threads() == 2
    monkeypatch.setenv(TRAIN_JOBS_ENV, "3")
    assert train_jobs() == 3
    for name, read in [(TRAIN_THREADS_ENV, train_threads), (TRAIN_JOBS_ENV, train_jobs)]:
        monkeypatch.setenv(name, "two")
        with pytest.raises(ValueError, match=f"{name} must be a positive integer, got 'two'"):
            read()
        monkeypatch.setenv(name, "1")


def test_parallel_build_writes_the_same_bytes(tiny_root: Path, tmp_path: Path) -> None:
    # Two training processes, the variants loading the base from disk: the same files as the
    # in-process build, whatever process ran which job.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(TRAIN_JOBS_ENV, "2")
        parallel = ensure_zoo(
            root=tmp_path, specs={"mixtral-tiny": TINY_MIXTRAL, "switch-tiny": TINY_SWITCH}
        )
    for name, spec in [("mixtral-tiny", TINY_MIXTRAL), ("switch-tiny", TINY_SWITCH)]:
        serial = _load_quietly(name, tiny_root, spec)
        assert parallel[name].manifest["build"]["jobs"] == 2
        assert parallel[name].manifest["files"] == serial.manifest["files"], name
        assert parallel[name].manifest["evaluation"] == serial.manifest["evaluation"], name


# ---------------------------------------------------------------------------------------------
# The default zoo (CI builds it once per run, in $MOELAB_ZOO_DIR, and shares it with notebooks).


@contextlib.contextmanager
def caller_training_env() -> Iterator[None]:
    """The zoo the notebooks use is built with the caller's settings ($MOELAB_TRAIN_THREADS,
    $MOELAB_ZOO_DIR), never with the tiny builds' one-job setting of this module."""
    with pytest.MonkeyPatch.context() as mp:
        for name in (TRAIN_THREADS_ENV, TRAIN_JOBS_ENV):
            if name in _CALLER_ENV:
                mp.setenv(name, _CALLER_ENV[name])
            else:
                mp.delenv(name, raising=False)
        yield


@pytest.fixture(scope="module")
def default_zoos() -> dict[str, Zoo]:
    with caller_training_env():
        return ensure_zoo()


def test_default_mixtral_zoo_meets_acceptance(default_zoos: dict[str, Zoo]) -> None:
    zoo = default_zoos["mixtral-tiny"]
    m = zoo.manifest
    assert m["parameters"]["expert_fraction"] >= 0.90
    results = m["evaluation"]["results"]
    assert len(zoo.tasks) >= 4
    for domain in zoo.tasks:
        assert results[domain][domain] <= 0.85 * results["base"][domain], domain
    assert m["evaluation"]["acceptance"]["passed"]
    # The recorded number is real: recompute one variant's perplexity from the stored data.
    spec = zoo.spec
    ids = zoo.heldout_ids("arithmetic")
    got = perplexity(zoo.load_model("arithmetic"), ids, spec.eval_chunk_len, spec.eval_max_chunks)
    assert got == pytest.approx(results["arithmetic"]["arithmetic"], rel=1e-3)


def test_default_switch_zoo_meets_acceptance(default_zoos: dict[str, Zoo]) -> None:
    zoo = default_zoos["switch-tiny"]
    results = zoo.manifest["evaluation"]["results"]
    assert len(zoo.tasks) >= 4
    for task in zoo.tasks:
        base, own = results["base"][task], results[task][task]
        # Clearly higher: +10 points, or (for a base near 100 %) at least half its errors gone.
        assert own >= base + 0.10 or (own > base and (1 - own) <= 0.5 * (1 - base)), task
    assert zoo.manifest["evaluation"]["acceptance"]["passed"]
    got = exact_match(
        zoo.load_model("reverse"), zoo.load_tokenizer(), zoo.heldout_examples("reverse"),
        zoo.spec.eval_max_new_tokens,
    )  # fmt: skip
    assert got == pytest.approx(results["reverse"]["reverse"])


def test_default_zoo_warm_load_is_fast(default_zoos: dict[str, Zoo]) -> None:
    started = time.perf_counter()
    with caller_training_env():
        zoos = ensure_zoo()
    assert time.perf_counter() - started < 10
    assert {n: z.root for n, z in zoos.items()} == {n: z.root for n, z in default_zoos.items()}


def test_cli_reports_the_default_zoo(
    default_zoos: dict[str, Zoo], capsys: pytest.CaptureFixture
) -> None:
    from moelab.__main__ import main

    with caller_training_env():
        assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    assert "mixtral-tiny" in out and "switch-tiny" in out and "FAILED" not in out
    assert str(default_zoos["mixtral-tiny"].root) in out
