"""Expert similarity: metrics against direct computations, lazy == eager, matching, bad input."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch

from moelab import (
    CheckpointNotFoundError,
    CorruptCheckpointError,
    ExpertSlot,
    IncompatibleModelsError,
    LazyCheckpoint,
    UnsupportedModelError,
    get_family,
    load_moe,
)
from moelab.similarity import (
    Calibration,
    SimilarityMetric,
    available_metrics,
    capture_calibration,
    cross_slot_similarity,
    expert_similarity,
    gaussian_calibration,
    get_metric,
    layer_summary,
    linear_cka,
    match_experts,
    metric_correlation,
    pair_summary,
    permute_experts,
    register_metric,
    similarity_matrix,
    sum_over_pairs,
)

MOE_FAMILIES = ("mixtral", "olmoe", "switch_transformers")
ALL = ["l2", "cosine", "cka", "router"]


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors.values()])


def value(table: pd.DataFrame, **where) -> float:
    rows = table
    for column, wanted in where.items():
        rows = rows[rows[column] == wanted]
    assert len(rows) == 1, where
    return float(rows["value"].iloc[0])


def shuffle_by_hand(moe, perm_by_layer, *, router: bool) -> None:
    """Independent of the library's permute_experts: expert ``i`` moves to slot ``perm[i]``."""
    for layer, perm in perm_by_layer.items():
        old = [
            {k: v.clone() for k, v in moe.get_expert(ExpertSlot(layer, e)).items()}
            for e in range(len(perm))
        ]
        for e, target in enumerate(perm):
            moe.set_expert(ExpertSlot(layer, target), old[e])
        if router:
            weight = moe.router_weight(layer)
            rows = weight.clone()
            with torch.no_grad():
                weight[list(perm)] = rows


# ------------------------------------------------------------------------------ registry
def test_registry_lists_metrics_and_directions():
    assert available_metrics() == ("cka", "cosine", "l2", "router")
    assert {m: get_metric(m).direction for m in available_metrics()} == {
        "l2": "distance",
        "cosine": "similarity",
        "cka": "similarity",
        "router": "similarity",
    }
    assert get_metric("l2").as_distance(0.3) == 0.3
    assert get_metric("cka").as_distance(0.75) == pytest.approx(0.25)
    with pytest.raises(
        ValueError,
        match=re.escape("unknown similarity metric 'l1'; known metrics: cka, cosine, l2, router"),
    ):
        get_metric("l1")
    with pytest.raises(ValueError, match="already registered"):
        register_metric(get_metric("l2"))
    with pytest.raises(
        ValueError, match=re.escape("direction must be one of ('distance', 'similarity'), got 'up'")
    ):
        SimilarityMetric("x", "up", "weights", lambda a, b: 0.0)


# ------------------------------------------------------------------------------ weights
@pytest.mark.parametrize("name", MOE_FAMILIES)
def test_l2_and_cosine_equal_direct_torch(name, tiny_model):
    a, b = tiny_model(name, 0), tiny_model(name, 1)
    table = expert_similarity({"a": a, "b": b}, ["l2", "cosine"], progress=False)
    family = get_family(name)
    slots = family.expert_slots(a)
    assert len(table) == 2 * len(slots)
    for slot in slots:
        fa, fb = flat(family.get_expert(a, slot)), flat(family.get_expert(b, slot))
        l2 = torch.linalg.norm(fa - fb).item()
        cos = torch.nn.functional.cosine_similarity(fa.double(), fb.double(), dim=0).item()
        assert value(table, layer=slot.layer, expert=slot.expert, metric="l2") == pytest.approx(
            l2, rel=1e-6
        )
        assert value(table, layer=slot.layer, expert=slot.expert, metric="cosine") == pytest.approx(
            cos, rel=1e-9
        )
    assert set(table["direction"]) == {"distance", "similarity"}
    assert (table.loc[table.metric == "l2", "direction"] == "distance").all()


def test_l2_uses_every_matrix(tiny_model):
    a, b = tiny_model("mixtral", 0), tiny_model("mixtral", 0)
    moe_b = load_moe(b)
    slot = ExpertSlot(1, 2)
    with torch.no_grad():
        moe_b.get_expert(slot)["w2"][0, 0] += 3.0  # change only the down projection
        moe_b.get_expert(slot)["w3"][1, 1] -= 4.0  # and the up projection
    table = expert_similarity([a, b], "l2", progress=False)
    assert value(table, layer=1, expert=2) == pytest.approx(5.0, rel=1e-6)
    assert (table.drop(table[(table.layer == 1) & (table.expert == 2)].index)["value"] == 0).all()


def test_identical_models_are_perfect_under_every_metric(tiny_model):
    a = tiny_model("mixtral", 0)
    calib = capture_calibration(a, torch.arange(48).reshape(2, 24))
    table = expert_similarity([a, tiny_model("mixtral", 0)], ALL, calibration=calib, progress=False)
    perfect = {"l2": 0.0, "cosine": 1.0, "cka": 1.0, "router": 1.0}
    for metric, expected in perfect.items():
        np.testing.assert_allclose(table.loc[table.metric == metric, "value"], expected, atol=1e-6)


# ---------------------------------------------------------------------------------- cka
def reference_cka(x: np.ndarray, y: np.ndarray) -> float:
    # HSIC with the centering matrix H, as in Kornblith et al. (2019).
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k, l_ = x @ x.T, y @ y.T
    hsic = lambda p, q: np.trace(p @ h @ q @ h)  # noqa: E731
    return hsic(k, l_) / math.sqrt(hsic(k, k) * hsic(l_, l_))


@pytest.mark.parametrize("n", [10, 200])  # fewer and more inputs than features: both code paths
def test_linear_cka_matches_reference_and_invariances(n):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 12, generator=gen, dtype=torch.float64)
    y = x @ torch.randn(12, 7, generator=gen, dtype=torch.float64) + 0.5 * torch.randn(
        n, 7, generator=gen, dtype=torch.float64
    )
    assert linear_cka(x, y) == pytest.approx(reference_cka(x.numpy(), y.numpy()), rel=1e-10)
    q, _ = torch.linalg.qr(torch.randn(12, 12, generator=gen, dtype=torch.float64))
    assert linear_cka(x, 3 * x @ q + 1.0) == pytest.approx(1.0, abs=1e-12)
    assert math.isnan(linear_cka(x, torch.ones(n, 3)))
    with pytest.raises(ValueError, match="same N >= 2 inputs on both sides, got 10 and 9"):
        linear_cka(torch.randn(10, 3), torch.randn(9, 3))


@pytest.mark.parametrize("name", MOE_FAMILIES)
def test_cka_of_model_with_itself_is_one(name, tiny_model):
    m = tiny_model(name, 0)
    table = expert_similarity(
        [m, m], "cka", calibration=capture_calibration(m, torch.arange(40)), progress=False
    )
    assert len(table) == len(get_family(name).expert_slots(m))
    assert (table["value"] - 1.0).abs().max() < 1e-6


def test_cka_compares_outputs_not_weights(tiny_model):
    a, b = tiny_model("mixtral", 0), tiny_model("mixtral", 0)
    slot = ExpertSlot(0, 1)
    with torch.no_grad():
        load_moe(b).get_expert(slot)["w2"].mul_(3.0)  # scales the output only
    table = expert_similarity([a, b], ["l2", "cka"], progress=False)
    assert value(table, layer=0, expert=1, metric="l2") > 0
    assert value(table, layer=0, expert=1, metric="cka") == pytest.approx(1.0, abs=1e-9)
    # Direct check of the cka value of another slot against expert_forward on the same states.
    other_b = tiny_model("mixtral", 1)
    calib = gaussian_calibration(a, n_tokens=64, seed=3)
    t2 = expert_similarity([a, other_b], "cka", calibration=calib, progress=False)
    fam, s = get_family("mixtral"), ExpertSlot(1, 3)
    ya = fam.expert_forward(a.config, fam.get_expert(a, s), calib.layer(1))
    yb = fam.expert_forward(a.config, fam.get_expert(other_b, s), calib.layer(1))
    expected = reference_cka(ya.detach().double().numpy(), yb.detach().double().numpy())
    assert value(t2, layer=1, expert=3) == pytest.approx(expected, rel=1e-9)


# ------------------------------------------------------------------------------- router
def test_router_metric_is_correlation_of_routing_probabilities(tiny_model):
    a, b = tiny_model("mixtral", 0), tiny_model("mixtral", 1)
    calib = gaussian_calibration(a, n_tokens=50, seed=1)
    table = expert_similarity([a, b], "router", calibration=calib, progress=False)
    fam = get_family("mixtral")
    for layer in range(2):
        x = calib.layer(layer)
        pa = torch.softmax(x @ fam.router_weight(a, layer).T, dim=-1).double().numpy()
        pb = torch.softmax(x @ fam.router_weight(b, layer).T, dim=-1).double().numpy()
        for e in range(4):
            expected = np.corrcoef(pa[:, e], pb[:, e])[0, 1]
            assert value(table, layer=layer, expert=e) == pytest.approx(expected, rel=1e-5)


# --------------------------------------------------------------------------- calibration
def test_capture_calibration_records_what_experts_see(tiny_model):
    """The block's output equals the routed sum of expert_forward on the captured states."""
    model = tiny_model("mixtral", 0)
    moe = load_moe(model)
    outputs = {}
    handle = moe.moe_block(1).register_forward_hook(lambda m, a, o: outputs.setdefault(1, o))
    try:
        ids = torch.tensor([[3, 5, 7, 11, 13, 17], [2, 4, 6, 8, 10, 12]])
        calib = capture_calibration(moe, ids)
    finally:
        handle.remove()
    assert sorted(calib.hidden) == [0, 1] and calib.layer(0).shape == (12, 16)
    x = calib.layer(1)
    probs = torch.softmax(x @ moe.router_weight(1).T, dim=-1)
    top, idx = probs.topk(2, dim=-1)
    top = top / top.sum(-1, keepdim=True)
    expected = torch.zeros_like(x)
    for e in range(4):
        y = moe.expert_forward(moe.get_expert(ExpertSlot(1, e)), x)
        expected += (top * (idx == e)).sum(-1, keepdim=True) * y
    torch.testing.assert_close(outputs[1].reshape(-1, 16), expected, rtol=1e-5, atol=1e-6)
    assert not model.training


def test_capture_calibration_switch_covers_encoder_and_decoder(tiny_model):
    calib = capture_calibration(tiny_model("switch_transformers", 0), [1, 2, 3, 4, 5])
    assert sorted(calib.hidden) == [0, 1, 2, 3]
    assert all(t.shape == (5, 16) for t in calib.hidden.values())


def test_capture_calibration_bad_tokens(tiny_model):
    m = tiny_model("mixtral", 0)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "token_ids must lie in [0, 64) (the model's vocabulary), got values from 0 to 64"
        ),
    ):
        capture_calibration(m, torch.arange(65))
    with pytest.raises(ValueError, match="integer array"):
        capture_calibration(m, torch.randn(4))


def test_gaussian_calibration_is_seeded_and_saved(tiny_model, tmp_path):
    m = tiny_model("mixtral", 0)
    c1, c2 = (
        gaussian_calibration(m, n_tokens=8, seed=5),
        gaussian_calibration(m.config, n_tokens=8, seed=5),
    )
    assert all(torch.equal(c1.layer(k), c2.layer(k)) for k in (0, 1))
    assert not torch.equal(c1.layer(0), c1.layer(1))
    assert not torch.equal(c1.layer(0), gaussian_calibration(m, n_tokens=8, seed=6).layer(0))
    path = c1.save(tmp_path / "calib.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["calib.safetensors"]  # no temp file left
    back = Calibration.load(path)
    assert back.description == c1.description and all(
        torch.equal(back.layer(k), c1.layer(k)) for k in (0, 1)
    )
    with pytest.raises(ValueError, match="n_tokens must be >= 2, got 1"):
        gaussian_calibration(m, n_tokens=1)
    with pytest.raises(TypeError, match="n_tokens must be an int, got float 8.0"):
        gaussian_calibration(m, n_tokens=8.0)


def test_calibration_validation(tiny_model):
    with pytest.raises(ValueError, match="with at least one layer"):
        Calibration({})
    with pytest.raises(TypeError, match="Calibration.hidden must be a mapping"):
        Calibration([torch.zeros(4, 3)])
    with pytest.raises(TypeError, match="Calibration layer 0 must be a Tensor, got list"):
        Calibration({0: [[0.0, 1.0]]})
    with pytest.raises(
        ValueError,
        match=re.escape("layer 0: expected an (N, hidden) Tensor with N >= 2 tokens, got (5,)"),
    ):
        Calibration({0: torch.zeros(5)})
    with pytest.raises(ValueError, match=re.escape("different hidden sizes [3, 4]")):
        Calibration({0: torch.zeros(5, 3), 1: torch.zeros(5, 4)})
    a, b = tiny_model("mixtral", 0), tiny_model("mixtral", 1)
    with pytest.raises(
        ValueError,
        match="calibration hidden states have width 8, but the models' hidden size is 16",
    ):
        expert_similarity(
            [a, b], "cka", calibration={0: torch.randn(5, 8), 1: torch.randn(5, 8)}, progress=False
        )
    with pytest.raises(
        ValueError,
        match=re.escape("calibration has no hidden states for MoE layer 1 (it covers layers [0])"),
    ):
        expert_similarity([a, b], "router", calibration={0: torch.randn(5, 16)}, progress=False)
    # Layers the calibration lacks are fine when they are not compared.
    t = expert_similarity(
        [a, b], "router", calibration={0: torch.randn(5, 16)}, layers=[0], progress=False
    )
    assert set(t["layer"]) == {0}


# ------------------------------------------------------------------------- N models, sums
def test_sum_over_pairs_for_three_models(tiny_model):
    models = {
        name: tiny_model("mixtral", seed) for seed, name in enumerate(["base", "math", "code"])
    }
    table = expert_similarity(models, ["l2", "cosine"], progress=False)
    assert list(dict.fromkeys(table["pair"])) == ["base vs math", "base vs code", "math vs code"]
    summed = sum_over_pairs(table)
    pairwise = [
        expert_similarity({a: models[a], b: models[b]}, ["l2", "cosine"], progress=False)
        for a, b in [("base", "math"), ("base", "code"), ("math", "code")]
    ]
    keys = ["layer", "expert", "metric"]
    expected = sum(p.set_index(keys)["value"] for p in pairwise)
    got = summed.set_index(keys)["value"]
    pd.testing.assert_series_equal(
        got.sort_index(), expected.sort_index(), check_names=False, rtol=1e-12
    )
    assert set(summed["pair"]) == {"sum"} and len(summed) == 2 * 8
    assert list(summed.columns) == list(table.columns)


def test_models_in_memory_get_unique_names(tiny_model):
    table = expert_similarity([tiny_model("mixtral", 0), tiny_model("mixtral", 1)], progress=False)
    assert set(table["pair"]) == {"MixtralForCausalLM[0] vs MixtralForCausalLM[1]"}


# --------------------------------------------------------------------------- lazy == eager
@pytest.mark.parametrize(
    ("name", "save_kwargs"),
    [
        ("mixtral", {}),
        ("mixtral", {"save_original_format": False}),
        ("switch_transformers", {}),
        ("olmoe", {"max_shard_size": "20KB"}),
    ],
)
def test_lazy_equals_eager_exactly(name, save_kwargs, save_tiny):
    a, path_a = save_tiny(name, 0, "a", **save_kwargs)
    b, path_b = save_tiny(name, 1, "b", **save_kwargs)
    lazy = expert_similarity({"a": path_a, "b": path_b}, ["l2", "cosine"], progress=False)
    eager = expert_similarity({"a": a, "b": b}, ["l2", "cosine"], progress=False)
    pd.testing.assert_frame_equal(lazy, eager, check_exact=True)
    mixed = expert_similarity(
        {"a": LazyCheckpoint(path_a), "b": load_moe(path_b)}, ["l2", "cosine"], progress=False
    )
    pd.testing.assert_frame_equal(mixed, eager, check_exact=True)
    # Output and routing metrics agree too (same states, same weights), to float rounding.
    lazy_f = expert_similarity({"a": path_a, "b": path_b}, ["cka", "router"], progress=False)
    eager_f = expert_similarity({"a": a, "b": b}, ["cka", "router"], progress=False)
    pd.testing.assert_frame_equal(lazy_f, eager_f, rtol=1e-9)


def test_lazy_reads_each_expert_once(save_tiny, monkeypatch):
    _, path_a = save_tiny("mixtral", 0, "a")
    _, path_b = save_tiny("mixtral", 1, "b")
    reads: list[tuple[str, ExpertSlot]] = []
    original = LazyCheckpoint.read_expert

    def counting(self, slot):
        reads.append((self.name, slot))
        return original(self, slot)

    monkeypatch.setattr(LazyCheckpoint, "read_expert", counting)
    expert_similarity([path_a, path_b], ["l2", "cosine", "cka"], progress=False)
    assert len(reads) == 2 * 8 and len(set(reads)) == 2 * 8
    # Slots are visited in order: both models' expert k is read before anyone's expert k + 1.
    assert [s for _, s in reads[::2]] == [s for _, s in reads[1::2]]


# ------------------------------------------------------------------------ cross-slot view
@pytest.mark.parametrize("name", ["mixtral", "switch_transformers"])
def test_cross_slot_matching_recovers_a_permutation(name, tiny_model):
    base = tiny_model(name, 0)
    variant = load_moe(tiny_model(name, 0))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # a "fine-tune": small changes to every parameter
        for p in variant.model.parameters():
            p.add_(0.02 * p.std() * torch.randn(p.shape, generator=gen))
    n_layers = variant.family.num_moe_layers(variant.config)
    perms = {layer: [int(i) for i in torch.randperm(4, generator=gen)] for layer in range(n_layers)}
    perms[0] = [1, 2, 3, 0]  # at least one layer surely moved
    shuffle_by_hand(variant, perms, router=True)
    metrics = ["l2", "cosine", "cka", "router"]
    cross = cross_slot_similarity(
        base, variant, metrics, names=("base", "permuted"), progress=False
    )
    assert len(cross) == n_layers * 4 * 4 * len(metrics)
    matched = match_experts(cross)
    for (layer, metric), rows in matched.groupby(["layer", "metric"]):
        got = dict(zip(rows["expert_a"], rows["expert_b"]))
        assert [got[i] for i in range(4)] == perms[layer], (layer, metric)
    assert matched.loc[matched.layer == 0, "moved"].all()
    # The same-slot view only sees the permuted (distant) experts.
    same = expert_similarity({"base": base, "permuted": variant}, "l2", progress=False)
    l2 = matched[(matched.metric == "l2") & (matched.layer == 0)]
    assert (l2["value"] < l2["same_slot_value"]).all()
    assert sorted(l2["same_slot_value"]) == sorted(same.loc[same.layer == 0, "value"])


def test_cross_slot_diagonal_equals_same_slot(tiny_model):
    a, b = tiny_model("olmoe", 0), tiny_model("olmoe", 1)
    cross = cross_slot_similarity(a, b, ["l2", "cka"], names=("a", "b"), progress=False)
    same = expert_similarity({"a": a, "b": b}, ["l2", "cka"], progress=False)
    diag = (
        cross[cross.expert_a == cross.expert_b]
        .rename(columns={"expert_a": "expert"})
        .drop(columns="expert_b")
    )
    pd.testing.assert_frame_equal(
        diag[list(same.columns)].reset_index(drop=True), same, check_exact=True
    )
    identity = match_experts(cross_slot_similarity(a, a, "l2", names=("a", "a2"), progress=False))
    assert (identity["expert_a"] == identity["expert_b"]).all() and not identity["moved"].any()


@pytest.mark.parametrize("name", ["mixtral", "switch_transformers"])
def test_permute_experts_moves_slots_but_keeps_the_function(name, tiny_model):
    model, reference = tiny_model(name, 0), tiny_model(name, 0)
    ids = torch.tensor([[3, 9, 27, 17, 51, 25, 11]])
    inputs = (
        {"input_ids": ids, "decoder_input_ids": ids}
        if name == "switch_transformers"
        else {"input_ids": ids}
    )
    with torch.no_grad():
        before = model(**inputs).logits
    moe = permute_experts(model, {0: [2, 0, 3, 1], 1: [1, 0, 3, 2]})
    fam = get_family(name)
    for e, target in enumerate([2, 0, 3, 1]):
        moved, original = (
            moe.get_expert(ExpertSlot(0, target)),
            fam.get_expert(reference, ExpertSlot(0, e)),
        )
        assert all(torch.equal(moved[k], original[k]) for k in original)
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).logits, before, rtol=1e-5, atol=1e-5)
    permute_experts(model, {0: [1, 2, 3, 0]}, router=False)  # experts move, routing does not
    with torch.no_grad():
        assert not torch.allclose(model(**inputs).logits, before, atol=1e-4)
    with pytest.raises(
        ValueError,
        match=re.escape("layer 1: [0, 0, 1, 2] is not a permutation of the 4 experts (0..3)"),
    ):
        permute_experts(model, {1: [0, 0, 1, 2]})


# ------------------------------------------------------------------------------ summaries
def test_similarity_matrix_and_layer_summary(tiny_model):
    t = expert_similarity(
        {"a": tiny_model("mixtral", 0), "b": tiny_model("mixtral", 1)},
        ["l2", "cka"],
        progress=False,
    )
    grid = similarity_matrix(t, "l2")
    assert list(grid.index) == ["layers.0", "layers.1"] and list(grid.columns) == [0, 1, 2, 3]
    assert grid.loc["layers.1", 2] == value(t, layer=1, expert=2, metric="l2")
    summary = layer_summary(t)
    l2 = summary[summary.metric == "l2"].set_index("layer")
    expected = t[t.metric == "l2"].groupby("layer")["value"].agg(["mean", "min", "max"])
    np.testing.assert_allclose(l2[["mean", "min", "max"]], expected)
    cka = summary[summary.metric == "cka"].set_index("layer")
    np.testing.assert_allclose(cka["distance_mean"], 1 - cka["mean"])
    pairs = pair_summary(t)
    assert list(pairs["metric"]) == ["l2", "cka"] and set(pairs["pair"]) == {"a vs b"}
    assert pairs.iloc[0]["mean"] == pytest.approx(t[t.metric == "l2"]["value"].mean())
    assert pairs.iloc[1]["distance_mean"] == pytest.approx(1 - t[t.metric == "cka"]["value"].mean())
    with pytest.raises(
        ValueError,
        match=re.escape("similarity_matrix: unknown metric 'router'; the table has ['l2', 'cka']"),
    ):
        similarity_matrix(t, "router")
    with pytest.raises(ValueError, match="layer_summary expects a table with columns"):
        layer_summary(t.drop(columns="expert"))


def test_metric_correlation_is_scipy_spearman_on_distances(tiny_model):
    models = [tiny_model("mixtral", s) for s in range(3)]
    t = expert_similarity(dict(zip("abc", models)), ["l2", "cka"], progress=False)
    corr = metric_correlation(t, "l2", "cka")
    assert list(corr["pair"]) == ["a vs b", "a vs c", "b vs c"]
    rows = t[t.pair == "a vs c"]
    l2 = rows[rows.metric == "l2"].set_index(["layer", "expert"])["value"]
    cka = rows[rows.metric == "cka"].set_index(["layer", "expert"])["value"]
    expected = scipy.stats.spearmanr(l2, 1 - cka.loc[l2.index])
    got = corr.set_index("pair").loc["a vs c"]
    assert got["coefficient"] == pytest.approx(expected.statistic) and got["n"] == 8
    assert got["pvalue"] == pytest.approx(expected.pvalue)
    with pytest.raises(
        ValueError,
        match="unknown correlation method 'rank'; known methods: spearman, kendall, pearson",
    ):
        metric_correlation(t, method="rank")


# ------------------------------------------------------------------------------ bad input
def test_bad_inputs_raise_clear_errors(tiny_model, save_tiny, tmp_path):
    mix = tiny_model("mixtral", 0)
    with pytest.raises(
        IncompatibleModelsError, match="are of different families \\(mixtral vs olmoe\\)"
    ):
        expert_similarity([mix, tiny_model("olmoe", 0)], progress=False)
    with pytest.raises(
        IncompatibleModelsError,
        match=re.escape("different expert shapes: matrix 'w1' is (24, 16) vs (32, 16)"),
    ):
        expert_similarity([mix, tiny_model("mixtral", 1, intermediate_size=32)], progress=False)
    with pytest.raises(
        IncompatibleModelsError, match=re.escape("different numbers of experts per layer (4 vs 8)")
    ):
        cross_slot_similarity(mix, tiny_model("mixtral", 1, num_local_experts=8), progress=False)
    with pytest.raises(
        UnsupportedModelError,
        match="model_type 'llama' is not a supported mixture-of-experts family",
    ):
        expert_similarity([mix, tiny_model("llama", 0)], progress=False)
    _, llama_dir = save_tiny("llama", 0, "llama")
    with pytest.raises(UnsupportedModelError, match="model_type 'llama'"):
        expert_similarity([llama_dir, mix], progress=False)
    with pytest.raises(
        CheckpointNotFoundError,
        match="nowhere' does not exist; pass a local folder written by save_pretrained",
    ):
        expert_similarity([mix, tmp_path / "nowhere"], progress=False)
    _, folder = save_tiny("mixtral", 1, "truncated")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[:-1000])
    with pytest.raises(CorruptCheckpointError, match="model.safetensors' is truncated or corrupt"):
        expert_similarity([mix, folder], progress=False)
    with pytest.raises(ValueError, match="comparing experts needs at least 2 models, got 1"):
        expert_similarity([mix], progress=False)
    with pytest.raises(TypeError, match="models must be a list of models/folders or a dict"):
        expert_similarity("some/folder", progress=False)
    with pytest.raises(
        TypeError,
        match="expected a checkpoint folder path, a LazyCheckpoint, a MoEModel, a "
        "PerturbedSource or a transformers model, got int",
    ):
        expert_similarity([mix, 3], progress=False)
    with pytest.raises(ValueError, match="unknown similarity metric 'cka2'"):
        expert_similarity([mix, mix], ["l2", "cka2"], progress=False)
    with pytest.raises(
        ValueError, match=re.escape("layers must be MoE-layer indices in 0..1, got [2]")
    ):
        expert_similarity([mix, mix], layers=[2], progress=False)
    with pytest.raises(ValueError, match="names must be two distinct strings"):
        cross_slot_similarity(mix, mix, names=("x", "x"), progress=False)
    with pytest.raises(ValueError, match="match_experts expects a table with columns"):
        match_experts(expert_similarity([mix, mix], progress=False))
    with pytest.raises(ValueError, match="sum_over_pairs expects a table with columns"):
        sum_over_pairs(cross_slot_similarity(mix, mix, progress=False))
