"""Quantization backends, their byte accounting, and Pareto fronts."""

from __future__ import annotations

import copy
import re
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from moelab.errors import MissingExtraError
from moelab.experts import apply_precision_plan, quantize_experts, use_routed_experts
from moelab.families import ExpertSlot, get_family
from moelab.loading import load_moe
from moelab.quant import (
    SUPPORTED_BITS,
    DecodeCost,
    available_backends,
    available_selections,
    expected_copy_traffic,
    expert_bytes,
    expert_scores,
    fake_quantize,
    measure_decode_cost,
    pareto_front,
    plan_precision,
    quantize_matrix,
    select_experts,
    sweep_precision,
)
from moelab.serving import greedy_decode


def matrix(seed: int = 0, rows: int = 64, cols: int = 256) -> torch.Tensor:
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("bits", SUPPORTED_BITS)
def test_round_to_nearest_codes_stay_within_half_a_step(bits):
    w = matrix()
    q = quantize_matrix(w, bits, 32, "rtn")
    assert q.codes.dtype == torch.uint8 and int(q.codes.max()) <= 2**bits - 1
    step = q.scale.repeat_interleave(32, dim=1)
    assert ((q.dequantize() - w).abs() <= step / 2 + 1e-5).all()
    # Codes packed at `bits` bits, a float32 scale and zero per group of 32.
    assert q.nbytes == 64 * 256 * bits // 8 + 2 * 64 * (256 // 32) * 4
    assert quantize_matrix(w.to(torch.bfloat16), bits, 32).nbytes == (
        64 * 256 * bits // 8 + 2 * 64 * 8 * 2
    )


def test_constant_groups_read_back_exactly_and_bad_weights_are_refused():
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        w = torch.full((4, 128), -5.0, dtype=dtype)
        w[1] = 3.0
        assert torch.equal(quantize_matrix(w, 4, 64).dequantize(), w), dtype
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        quantize_matrix(matrix(), 4, 1)
    bad = matrix()
    bad[3, 7] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        quantize_matrix(bad, 4, 64)
    with pytest.raises(TypeError, match="weight must be"):
        quantize_matrix(matrix().numpy(), 4, 64)


def test_codes_are_chosen_for_the_stored_scales():
    # Scales and zeros stored in bf16: weights within half a (stored) step at 4 bits; at 8 bits
    # a zero point rounded to bf16 (spacing 1 above 128) can push an extreme past the codes.
    w = matrix(5).to(torch.bfloat16)
    for bits, bound in ((4, 0.5), (8, 1.0)):
        q = quantize_matrix(w, bits, 64)
        step = q.scale.float().repeat_interleave(64, dim=1)
        zero = q.zero.float().repeat_interleave(64, dim=1)
        exact = (q.codes.float() - zero) * step  # before the read-back is rounded to bf16
        assert ((exact - w.float()).abs() <= bound * step * (1 + 1e-3)).all(), bits


def test_more_bits_lose_less():
    w = matrix(1)
    errors = [(quantize_matrix(w, b, 64).dequantize() - w).norm() for b in SUPPORTED_BITS]
    assert errors == sorted(errors, reverse=True)


@pytest.mark.parametrize("bits", [3, 4])
def test_hqq_loses_less_than_round_to_nearest(bits):
    pytest.importorskip("hqq", reason="the hqq backend needs the 'quant' extra")
    w = matrix(2)
    rtn = (quantize_matrix(w, bits, 64, "rtn").dequantize() - w).abs().mean()
    hqq = quantize_matrix(w, bits, 64, "hqq")
    assert hqq.backend == "hqq" and int(hqq.codes.max()) <= 2**bits - 1
    assert (hqq.dequantize() - w).abs().mean() < rtn


def test_bad_input_is_refused_with_the_fix():
    w = matrix()
    with pytest.raises(ValueError, match=r"bits must be one of \(2, 3, 4, 8\), got 5"):
        quantize_matrix(w, 5)
    with pytest.raises(ValueError, match="group_size 48 does not divide the 256 input columns"):
        quantize_matrix(w, 4, 48)
    with pytest.raises(ValueError, match="expected a float matrix"):
        quantize_matrix(w[None], 4)
    with pytest.raises(ValueError, match="unknown quantization backend 'gptq'"):
        quantize_matrix(w, 4, 64, "gptq")
    assert available_backends() == ("rtn", "hqq", "bnb-nf4", "bnb-fp4")


def test_hqq_without_its_extra_names_the_extra(monkeypatch, tiny_model):
    for name in ("hqq", "hqq.core", "hqq.core.quantize"):  # each import raises ImportError
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingExtraError, match=r"pip install 'moe-sr-lab\[quant\]'"):
        quantize_matrix(matrix(), 4, 64, "hqq")
    model = tiny_model("mixtral", 0)
    with pytest.raises(MissingExtraError, match="the 'hqq' quantization backend"):
        quantize_experts(model, group_size=8, backend="hqq")
    assert isinstance(model.model.layers[0].mlp.experts.gate_up_proj, torch.nn.Parameter)


def test_experts_quantized_by_hqq_decode_on_the_routed_path(tiny_model):
    pytest.importorskip("hqq", reason="the hqq backend needs the 'quant' extra")
    ids = torch.tensor([[9, 4, 2]])
    errors = {}
    with torch.no_grad():
        exact = tiny_model("mixtral", 5)(input_ids=ids).logits
        for backend in ("rtn", "hqq"):
            model = quantize_experts(tiny_model("mixtral", 5), group_size=8, backend=backend)
            errors[backend] = (model(input_ids=ids).logits - exact).abs().mean()
    assert 0 < errors["hqq"] < errors["rtn"]


# ------------------------------------------------------------------------------ fronts
def dominated(values: np.ndarray, i: int) -> bool:
    """By the definition: some row no worse on every objective and better on one."""
    no_worse = (values <= values[i]).all(axis=1)
    better = (values < values[i]).any(axis=1)
    return bool((no_worse & better).any())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=30
    )
)
def test_the_front_is_exactly_the_non_dominated_rows(rows):
    table = pd.DataFrame(rows, columns=["ppl", "gpu_bytes", "tokens_per_s"])
    front = pareto_front(table, minimize=["ppl", "gpu_bytes"], maximize=["tokens_per_s"])
    values = np.column_stack([table["ppl"], table["gpu_bytes"], -table["tokens_per_s"]])
    expected = [i for i in range(len(table)) if not dominated(values, i)]
    assert front.index.tolist() == expected
    assert len(front) >= 1


def test_pareto_front_refuses_what_it_cannot_rank():
    table = pd.DataFrame({"ppl": [1.0, float("nan")], "tok": [2.0, 3.0]})
    with pytest.raises(ValueError, match="at least one column"):
        pareto_front(table)
    ranked = table.dropna()
    assert pareto_front(ranked, minimize="ppl").index.tolist() == [0]  # a name alone
    with pytest.raises(ValueError, match=r"no column \['speed'\]"):
        pareto_front(table, maximize=["speed"])
    with pytest.raises(ValueError, match="both minimized and maximized"):
        pareto_front(table, minimize=["tok"], maximize=["tok"])
    with pytest.raises(ValueError, match="NaN in the objectives"):
        pareto_front(table, minimize=["ppl"])


# --------------------------------------------------------------------------- selection
def test_expert_scores_and_the_orders_of_every_policy(tiny_model):
    model = tiny_model("mixtral", 7)
    ids = torch.randint(1, 60, (2, 24), generator=torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scores = expert_scores(model, ids, bits=3, group_size=8)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # restored
    slots = get_family("mixtral").expert_slots(model.config)
    assert len(scores) == len(slots) and (scores["output_error"] > 0).all()
    assert (scores["sensitivity"] >= 0).all() and scores["sensitivity"].max() > 0
    assert np.allclose(scores.groupby("layer")["share"].sum(), model.config.num_experts_per_tok)
    assert available_selections() == ("random", "frequency", "sensitivity", "layer", "combined")
    for policy in available_selections():
        order = select_experts(scores, len(slots), policy, seed=1)
        assert sorted(order) == sorted(slots), policy  # a permutation of every slot
    key = {(r.layer, r.expert): r for r in scores.itertuples()}
    sensitive = [
        key[(s.layer, s.expert)].sensitivity for s in select_experts(scores, 8, "sensitivity")
    ]
    assert sensitive == sorted(sensitive)
    shares = [key[(s.layer, s.expert)].share for s in select_experts(scores, 8, "frequency")]
    assert shares == sorted(shares)
    assert [s.layer for s in select_experts(scores, 8, "layer")] == [1] * 4 + [0] * 4
    assert select_experts(scores, 5, "random", seed=3) == select_experts(
        scores, 5, "random", seed=3
    )
    assert select_experts(scores, 5, "random", seed=3) != select_experts(
        scores, 5, "random", seed=4
    )
    with pytest.raises(ValueError, match="n = 9 exceeds the 8 expert slots"):
        select_experts(scores, 9)


def test_fake_quantization_writes_the_quantized_values(tiny_model):
    model = tiny_model("olmoe", 1)
    family = get_family("olmoe")
    slot = family.expert_slots(model.config)[3]
    before = {m: w.clone() for m, w in family.get_expert(model, slot).items()}
    untouched = family.expert_slots(model.config)[0]
    kept = {m: w.clone() for m, w in family.get_expert(model, untouched).items()}
    fake_quantize(model, [slot], bits=2, group_size=8)
    for m, w in family.get_expert(model, slot).items():
        assert torch.equal(w, quantize_matrix(before[m], 2, 8).dequantize()), m
    assert all(torch.equal(w, kept[m]) for m, w in family.get_expert(model, untouched).items())


# --------------------------------------------------------------------------------- plans
def test_expert_bytes_are_what_quantization_stores(tiny_model):
    model = tiny_model("mixtral", 2)
    family = get_family("mixtral")
    slot = family.expert_slots(model.config)[0]
    tensors = family.get_expert(model, slot)
    shapes = {m: tuple(t.shape) for m, t in tensors.items()}
    for bits in SUPPORTED_BITS:
        stored = sum(quantize_matrix(t, bits, 8).nbytes for t in tensors.values())
        assert expert_bytes(shapes, bits, 8, 4) == stored
    assert expert_bytes(shapes, None, 8, 4) == sum(t.numel() * 4 for t in tensors.values())


def gpu_bytes(plan, device, rows):
    """GPU bytes of a placement, counted from scratch: experts, and rows for the CPU ones (of
    each precision a group's CPU experts have) in every group (a layer, or the model)."""
    total = plan.non_expert_bytes + sum(b for b, d in zip(plan.slot_bytes, device) if d == "gpu")
    for group in {s.layer if rows is None else 0 for s in plan.slots}:
        cpu = [
            b
            for s, b, d in zip(plan.slots, plan.bits, device)
            if d == "cpu" and (rows is not None or s.layer == group)
        ]
        n_rows = 2 if rows is None else rows
        total += n_rows * plan.row_bytes * any(b is None for b in cpu)
        total += n_rows * plan.quantized_row_bytes * any(b is not None for b in cpu)
    return total


@pytest.mark.parametrize("rows", [None, 1])
def test_a_precision_plan_fills_its_budget_and_no_more(tiny_model, rows):
    model = tiny_model("mixtral", 2)
    slots = get_family("mixtral").expert_slots(model.config)
    everything = plan_precision(model, 10**9, slots[:3], group_size=8, rows=rows)
    assert set(everything.device) == {"gpu"} and everything.cache_rows == 0
    assert everything.n_quantized == 3 and everything.table()["bits"].tolist()[:4] == [4, 4, 4, 0]
    full, row = everything.slot_bytes[-1], everything.row_bytes
    with pytest.raises(ValueError, match="too small: the minimum is") as info:
        plan_precision(model, 0, slots[:3], group_size=8, rows=rows)
    minimum = int(re.search(r"minimum is ([\d,]+)", str(info.value)).group(1).replace(",", ""))
    # The cheapest state of every group: a layer (rows=None) or the model (rows=1) holds all
    # its experts on the GPU or keeps its rows for them (full-precision and, for its quantized
    # experts 0-2, quantized ones), whichever takes less.
    cheapest = everything.non_expert_bytes
    groups = [[0, 1, 2, 3], [4, 5, 6, 7]] if rows is None else [list(range(8))]
    small = everything.slot_bytes[0]
    for group in groups:
        n_rows = 2 if rows is None else rows
        rows_bytes = n_rows * (full + small * any(i < 3 for i in group))
        cheapest += min(sum(everything.slot_bytes[i] for i in group), rows_bytes)
    assert minimum == cheapest
    for budget in range(minimum, everything.gpu_bytes + full, full // 3):
        plan = plan_precision(model, budget, slots[:3], group_size=8, rows=rows)
        assert plan.gpu_bytes <= budget
        rows_held = plan.cache_rows * row + plan.quantized_cache_rows * small
        assert plan.gpu_bytes + plan.cpu_bytes == everything.gpu_bytes + rows_held
        assert gpu_bytes(plan, list(plan.device), rows) == plan.gpu_bytes
        for i in (i for i, d in enumerate(plan.device) if d == "cpu"):  # no expert left behind
            moved = [*plan.device[:i], "gpu", *plan.device[i + 1 :]]
            assert gpu_bytes(plan, moved, rows) > budget
    with pytest.raises(ValueError, match="bits must be one of"):
        plan_precision(model, 10**9, slots[:1], bits=5, group_size=8)
    with pytest.raises(ValueError, match="group_size 64 does not divide the 16 input columns"):
        plan_precision(model, 10**9, slots[:1])
    with pytest.raises(ValueError, match="gpu_order holds"):
        plan_precision(model, 10**9, group_size=8, gpu_order=[ExpertSlot(9, 9)])


def test_all_quantized_experts_on_the_gpu_need_no_rows(tiny_model):
    model = tiny_model("mixtral", 2)
    slots = get_family("mixtral").expert_slots(model.config)
    plan = plan_precision(model, 10**9, slots, group_size=8)
    # Every expert quantized fits in less than the rows a CPU expert would need: the smallest
    # budget is exactly that placement.
    tight = plan_precision(model, plan.gpu_bytes, slots, group_size=8)
    assert set(tight.device) == {"gpu"} and tight.gpu_bytes == plan.gpu_bytes


# -------------------------------------------------------------------------------- sweeps
def test_a_sweep_resumes_where_it_stopped_and_refuses_another_models_file(save_tiny, tmp_path):
    _, folder = save_tiny("mixtral", seed=3)
    ids = torch.randint(1, 60, (256,), generator=torch.Generator().manual_seed(0)).tolist()
    kwargs = dict(
        calibration_ids=ids[:64], eval_ids=ids[64:], chunk_len=32, group_size=8, progress=False
    )
    out = tmp_path / "sweep.csv"
    first = sweep_precision(folder, out, n_quantized=[2], bits=[3], **kwargs)
    assert len(first) == 2 and set(first["policy"]) == {"random", "sensitivity"}
    again = sweep_precision(folder, out, n_quantized=[2, 8], bits=[3], seeds=[0, 1], **kwargs)
    # Finished rows are kept as they were, the new ones added: random x 2 seeds, sensitivity.
    assert len(again) == 2 * 2 + 2 and again.iloc[:2].equals(first)
    everything = again[again["n_quantized"] == 8]
    assert everything["perplexity"].nunique() == 1  # every expert quantized: any order alike
    reference = again["perplexity"] - again["perplexity_increase"]  # the unquantized model
    assert np.allclose(reference, reference.iloc[0])
    # Every expert in 3 bits: the bytes of the quantized matrices themselves.
    model = load_moe(folder, tokenizer=False)
    matrices = [
        w[e]
        for layer in range(model.family.num_moe_layers(model.model.config))
        for w in (
            model.family.moe_block(model.model, layer).experts.gate_up_proj,
            model.family.moe_block(model.model, layer).experts.down_proj,
        )
        for e in range(w.shape[0])
    ]
    quantized = sum(quantize_matrix(m.detach(), 3, 8).nbytes for m in matrices)
    assert set(everything["expert_bytes"]) == {quantized}
    stored = sum(m.numel() * m.element_size() for m in matrices)
    assert (again[again["n_quantized"] == 2]["expert_bytes"] < stored).all()
    _, other = save_tiny("mixtral", seed=4, folder="other")
    with pytest.raises(ValueError, match="holds a sweep of .*another model"):
        sweep_precision(other, out, n_quantized=[2], **kwargs)
    # Same config and folder name, other weights: another model too.
    (tmp_path / "copy").mkdir()
    _, same_name = save_tiny("mixtral", seed=5, folder=f"copy/{folder.name}")
    with pytest.raises(ValueError, match="holds a sweep of .*another model"):
        sweep_precision(same_name, out, n_quantized=[2], **kwargs)
    with pytest.raises(ValueError, match="other measurement settings"):
        sweep_precision(folder, out, n_quantized=[2], **{**kwargs, "chunk_len": 16})
    damaged = tmp_path / "damaged.csv"
    damaged.write_text("policy,seed\nrandom,")
    with pytest.raises(ValueError, match="not a sweep file or is damaged"):
        sweep_precision(folder, damaged, n_quantized=[2], **kwargs)
    with pytest.raises(ValueError, match="unknown selection policy 'best'"):
        sweep_precision(folder, tmp_path / "c.csv", policies=["best"], **kwargs)
    with pytest.raises(TypeError, match=r"seeds must be a sequence, e.g. \[7\]"):
        sweep_precision(folder, tmp_path / "c.csv", seeds=7, **kwargs)
    with pytest.raises(ValueError, match="n_quantized 9 exceeds the model's 8 expert slots"):
        sweep_precision(folder, tmp_path / "b.csv", n_quantized=[9], **kwargs)


def holds_what_the_plan_counts(model, plan):
    """The model's expert pools, after asserting that their measured bytes are the plan's."""
    family = get_family("mixtral")
    pools = [
        getattr(family.moe_block(model, layer).experts, name)
        for layer in range(family.num_moe_layers(model.config))
        for name in ("gate_up_proj", "down_proj")
    ]
    non_expert = sum(p.numel() * p.element_size() for p in model.parameters())
    assert non_expert + sum(p.nbytes for p in pools) == plan.gpu_bytes
    assert sum(p.host_bytes for p in pools) == plan.cpu_bytes
    return pools


def test_a_precision_plan_runs_as_planned(tiny_model):
    model = tiny_model("mixtral", 3)
    family = get_family("mixtral")
    slots = family.expert_slots(model.config)
    full = plan_precision(model, 10**9, [], group_size=8)
    # Layer 0: two experts in 4 bits and two as stored on the GPU; layer 1 on the CPU, with
    # two cache rows: a prompt routed to more than two of its experts copies them in turns.
    plan = plan_precision(
        model, full.non_expert_bytes + 5 * full.row_bytes, slots[:2], group_size=8
    )
    assert plan.device == ("gpu",) * 4 + ("cpu",) * 4 and plan.cache_rows == 2
    reference = fake_quantize(copy.deepcopy(model), slots[:2], 4, 8)
    apply_precision_plan(model, plan)
    ids = torch.tensor([[3, 9, 2, 11, 5, 7, 1, 30]])
    with torch.no_grad():
        torch.testing.assert_close(
            model(input_ids=ids).logits, reference(input_ids=ids).logits, rtol=1e-5, atol=1e-5
        )
    assert greedy_decode(model, [4, 2], 6).tokens == greedy_decode(reference, [4, 2], 6).tokens
    # What the model holds is what the plan counted.
    holds_what_the_plan_counts(model, plan)


def test_copied_in_experts_count_their_uses_and_the_copies_that_missed_the_rows():
    from moelab.experts import MixedExperts

    weight = torch.randn(5, 4, 8)
    layer = MixedExperts.build(weight, host=[1, 2, 3, 4], rows=2)
    # Two rows, least recently used out: 1 and 2 copy in, 1 hits, then 3 evicts 2, 2 evicts 1
    # and 1 evicts 3.
    for expert in (1, 2, 1, 3, 2, 1):
        row = layer.fetch(expert)
        torch.testing.assert_close(layer.dense[row], weight[expert])
    assert layer.copy_traffic() == {"uses": 6, "copies": 5}
    assert layer.cached() == [2, 1]


def test_experts_still_in_the_rows_are_used_before_others_are_copied_in():
    from moelab.experts import MixedExperts, routed_linear_mixed

    weight = torch.randn(4, 3, 8)
    layer = MixedExperts.build(weight, host=[0, 1, 2, 3], rows=2)
    x = torch.randn(2, 8)
    for ids in ([1, 3], [0, 1]):  # 1 stays in its row; copying 0 in evicts 3, not 1
        ids = torch.tensor(ids)
        expected = torch.stack([weight[e] @ row for e, row in zip(ids.tolist(), x)])
        torch.testing.assert_close(routed_linear_mixed(x, layer, ids), expected)
    assert layer.copy_traffic() == {"uses": 4, "copies": 3}
    assert layer.cached() == [1, 0]


def test_quantized_experts_left_on_the_cpu_are_copied_into_quantized_rows(tiny_model):
    model = tiny_model("mixtral", 3)
    family = get_family("mixtral")
    slots = family.expert_slots(model.config)
    everything = plan_precision(model, 10**9, slots, group_size=8)  # every expert in 4 bits
    small = everything.slot_bytes[0]
    # Layer 0's four experts on the GPU; layer 1's on the CPU with two quantized rows.
    plan = plan_precision(model, everything.non_expert_bytes + 6 * small, slots, group_size=8)
    assert plan.device == ("gpu",) * 4 + ("cpu",) * 4
    assert (plan.cache_rows, plan.quantized_cache_rows) == (0, 2)
    assert plan.gpu_bytes == everything.non_expert_bytes + 6 * small
    reference = fake_quantize(copy.deepcopy(model), slots, 4, 8)
    apply_precision_plan(model, plan)
    pools = holds_what_the_plan_counts(model, plan)
    # A prompt routed to more of layer 1's experts than it has rows copies them in turns.
    ids = torch.tensor([[3, 9, 2, 11, 5, 7, 1, 30]])
    with torch.no_grad():
        torch.testing.assert_close(
            model(input_ids=ids).logits, reference(input_ids=ids).logits, rtol=1e-5, atol=1e-5
        )
    assert greedy_decode(model, [4, 2], 6).tokens == greedy_decode(reference, [4, 2], 6).tokens
    assert len(pools[2].cached(quantized=True)) == 2  # the rows hold the last two experts used
    # The cost model copies each in as a quantized row, then runs the 4-bit matmul.
    shares = pd.DataFrame(
        {"layer": [s.layer for s in slots], "expert": [s.expert for s in slots], "share": 0.5}
    )
    cost = DecodeCost(1.0, {None: 0.1, 4: 0.05}, 1e6)
    expected = 1.0 + 4 * 0.5 * 0.05 + 4 * 0.5 * (small / 1e6 + 0.05)
    assert cost.token_s(plan, shares) == pytest.approx(expected)


def test_a_plan_that_computes_cpu_experts_there_needs_no_rows_and_computes_the_same(tiny_model):
    model = tiny_model("mixtral", 3)
    family = get_family("mixtral")
    slots = family.expert_slots(model.config)
    full = plan_precision(model, 10**9, [], group_size=8)
    budget = full.non_expert_bytes + 3 * full.row_bytes  # below copy mode's minimum
    with pytest.raises(ValueError, match="too small"):
        plan_precision(model, budget, slots[:2], group_size=8)
    plan = plan_precision(model, budget, slots[:2], group_size=8, host="compute")
    assert plan.cache_rows == 0 and plan.gpu_bytes <= budget
    assert plan.device.count("gpu") == 2 + 2  # the two 4-bit experts (a quarter each) and two
    with pytest.raises(
        ValueError,
        match="too small: .* every 4-bit expert; full-precision ones computed on the CPU",
    ):
        plan_precision(model, full.non_expert_bytes - 1, group_size=8, host="compute")
    with pytest.raises(ValueError, match="host='compute' keeps none"):
        plan_precision(model, budget, group_size=8, host="compute", rows=1)
    with pytest.raises(ValueError, match="host must be 'copy', 'compute', 'stream' or 'auto'"):
        plan_precision(model, budget, group_size=8, host="gpu")
    reference = fake_quantize(copy.deepcopy(model), slots[:2], 4, 8)
    apply_precision_plan(model, plan)
    pools = holds_what_the_plan_counts(model, plan)
    assert all(p.host_compute and p.cache_rows == 0 for p in pools if p.host)
    ids = torch.tensor([[3, 9, 2, 11, 5, 7, 1, 30]])
    with torch.no_grad():
        torch.testing.assert_close(
            model(input_ids=ids).logits, reference(input_ids=ids).logits, rtol=1e-5, atol=1e-5
        )
    cost = measure_decode_cost(
        use_routed_experts(tiny_model("mixtral", 3)), group_size=8, repeats=2
    )
    assert cost.host_expert_s > 0
    shares = pd.DataFrame(
        {"layer": [s.layer for s in slots], "expert": [s.expert for s in slots], "share": 0.5}
    )
    without = DecodeCost(cost.non_expert_s, cost.expert_s, cost.copy_bytes_per_s)
    with pytest.raises(ValueError, match="no time for that"):
        without.token_s(plan, shares)
    cpu = sum(0.5 for d in plan.device if d == "cpu")
    gpu = sum(0.5 * cost.expert_s[b] for b, d in zip(plan.bits, plan.device) if d == "gpu")
    expected = cost.non_expert_eager_s + gpu + cpu * cost.host_expert_s
    assert cost.token_s(plan, shares) == pytest.approx(expected)


def test_a_plan_that_reads_cpu_experts_in_place_needs_no_rows_and_computes_the_same(tiny_model):
    model = tiny_model("mixtral", 3)
    family = get_family("mixtral")
    slots = family.expert_slots(model.config)
    everything = plan_precision(model, 10**9, slots[:6], group_size=8)
    small, full = everything.slot_bytes[0], everything.row_bytes
    # Room for two 4-bit experts besides the non-expert layers: below copy mode's minimum, and
    # CPU experts of both precisions.
    budget = everything.non_expert_bytes + 2 * small
    assert budget < everything.non_expert_bytes + full
    with pytest.raises(ValueError, match="too small"):
        plan_precision(model, budget, slots[:6], group_size=8)
    plan = plan_precision(model, budget, slots[:6], group_size=8, host="stream")
    assert plan.cache_rows == plan.quantized_cache_rows == plan.rows_per_layer == 0
    assert plan.gpu_bytes == budget and plan.device.count("gpu") == 2 and plan.graph_safe
    cpu = {b for b, d in zip(plan.bits, plan.device) if d == "cpu"}
    assert cpu == {None, 4}  # both precisions stay in host memory
    tight = everything.non_expert_bytes + 6 * small  # 4-bit experts on the GPU, the rest not
    assert not plan_precision(model, tight, slots[:6], group_size=8, host="compute").graph_safe
    assert plan_precision(model, 10**9, slots[:6], group_size=8, host="compute").graph_safe
    with pytest.raises(ValueError, match="too small: .* no expert: every one can be read"):
        plan_precision(model, everything.non_expert_bytes - 1, group_size=8, host="stream")
    with pytest.raises(ValueError, match="host='stream' keeps none"):
        plan_precision(model, budget, group_size=8, host="stream", rows=1)
    reference = fake_quantize(copy.deepcopy(model), slots[:6], 4, 8)
    apply_precision_plan(model, plan)
    pools = holds_what_the_plan_counts(model, plan)
    assert not any(p.host_experts for p in pools)  # nothing read on the host to serve them
    assert all(p.streamed is not None and p.streamed_int4 is not None for p in pools[2:])
    ids = torch.tensor([[3, 9, 2, 11, 5, 7, 1, 30]])
    with torch.no_grad():
        torch.testing.assert_close(
            model(input_ids=ids).logits, reference(input_ids=ids).logits, rtol=1e-5, atol=1e-5
        )
    assert greedy_decode(model, [4, 2], 6).tokens == greedy_decode(reference, [4, 2], 6).tokens
    # The cost model: each CPU expert's matmul reading it in place, and the step as a graph.
    shares = pd.DataFrame(
        {"layer": [s.layer for s in slots], "expert": [s.expert for s in slots], "share": 0.5}
    )
    cost = DecodeCost(1.0, {None: 0.1, 4: 0.05}, 1e6, 3.0, None, {None: 0.4, 4: 0.2})
    far = {None: 0.4, 4: 0.2}
    expected = 1.0 + sum(
        0.5 * (far[b] if d == "cpu" else cost.expert_s[b]) for b, d in zip(plan.bits, plan.device)
    )
    assert cost.token_s(plan, shares) == pytest.approx(expected)
    with pytest.raises(ValueError, match="reads CPU experts in place and this cost has no time"):
        DecodeCost(1.0, {None: 0.1, 4: 0.05}, 1e6).token_s(plan, shares)


def test_an_auto_plan_lets_the_cost_model_choose_per_expert_and_runs_as_chosen(tiny_model):
    model = tiny_model("mixtral", 3)
    slots = get_family("mixtral").expert_slots(model.config)
    everything = plan_precision(model, 10**9, slots[:6], group_size=8)
    budget = everything.non_expert_bytes + 2 * everything.slot_bytes[0]
    shares = pd.DataFrame(
        {"layer": [s.layer for s in slots], "expert": [s.expert for s in slots], "share": 0.5}
    )
    with pytest.raises(ValueError, match="pass cost= .* and shares="):
        plan_precision(model, budget, slots[:6], group_size=8, host="auto")
    streamed = plan_precision(model, budget, slots[:6], group_size=8, host="stream")
    # Computing a bf16 expert on the CPU is cheaper per use than reading it in place, and the
    # eager step costs little more than the graph: the bf16 CPU experts are computed there.
    cheap_cpu = DecodeCost(1.0, {None: 0.1, 4: 0.05}, 1e6, 1.1, 0.2, {None: 0.9, 4: 0.3})
    plan = plan_precision(
        model, budget, slots[:6], group_size=8, host="auto", cost=cheap_cpu, shares=shares
    )
    modes = {
        (b, plan.host_mode(i)) for i, (b, d) in enumerate(zip(plan.bits, plan.device)) if d == "cpu"
    }
    assert modes == {(None, "compute"), (4, "stream")} and not plan.graph_safe
    assert plan.device == streamed.device and plan.gpu_bytes == streamed.gpu_bytes
    assert cheap_cpu.token_s(plan, shares) < cheap_cpu.token_s(streamed, shares)
    # An eager step that costs more than the CPU saves: every CPU expert is read in place.
    slow_eager = DecodeCost(1.0, {None: 0.1, 4: 0.05}, 1e6, 3.0, 0.2, {None: 0.9, 4: 0.3})
    kept = slow_eager.choose_host_modes(streamed, shares)
    assert kept.graph_safe and {kept.host_mode(i) for i in range(len(slots))} == {None, "stream"}
    with pytest.raises(ValueError, match="takes a plan made with host='stream'"):
        slow_eager.choose_host_modes(everything, shares)
    # The mixed plan runs: streamed and computed experts in one layer compute what it should.
    reference = fake_quantize(copy.deepcopy(model), slots[:6], 4, 8)
    apply_precision_plan(model, plan)
    pools = holds_what_the_plan_counts(model, plan)
    assert any(p.host_compute and p.streamed_int4 is not None for p in pools)
    ids = torch.tensor([[3, 9, 2, 11, 5, 7, 1, 30]])
    with torch.no_grad():
        torch.testing.assert_close(
            model(input_ids=ids).logits, reference(input_ids=ids).logits, rtol=1e-5, atol=1e-5
        )


def test_layers_mixing_pools_compute_every_expert_and_bad_layouts_are_refused():
    from moelab.experts import MixedExperts, routed_linear_mixed

    weight = torch.randn(4, 6, 8, generator=torch.Generator().manual_seed(0))
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(1))
    ids = torch.tensor([0, 1, 2, 3])
    expected = torch.stack([weight[e] @ x[s] for s, e in enumerate(ids.tolist())])
    # Copied in, read in place and resident experts in one layer: each through its own.
    layer = MixedExperts.build(weight, 8, host=[0], streamed=[1], rows=1)
    torch.testing.assert_close(routed_linear_mixed(x, layer, ids), expected)
    computed = MixedExperts.build(weight, 8, host=[0], streamed=[1], host_compute=True)
    torch.testing.assert_close(routed_linear_mixed(x, computed, ids), expected)
    with pytest.raises(ValueError, match="one pool only"):
        MixedExperts.build(weight, 8, streamed=[1], quantized=[1])
    with pytest.raises(ValueError, match=r"outside 0..3"):
        MixedExperts.build(weight, 8, streamed=[4])


def test_plans_that_no_pool_can_hold_or_capture_are_refused(tiny_model):
    from dataclasses import replace

    from moelab.serving import StaticDecoder

    model = tiny_model("mixtral", 3)
    slots = get_family("mixtral").expert_slots(model.config)
    everything = plan_precision(model, 10**9, slots[:6], group_size=8)
    budget = everything.non_expert_bytes + 2 * everything.slot_bytes[0]
    streamed = plan_precision(model, budget, slots[:6], group_size=8, host="stream")
    # 4-bit experts computed on the CPU: no pool holds them (no silent return to the GPU).
    untouched = copy.deepcopy(model)
    with pytest.raises(ValueError, match="which no pool holds"):
        apply_precision_plan(untouched, replace(streamed, host="compute"))
    family = get_family("mixtral")
    assert all(  # refused before any layer changed
        isinstance(family.moe_block(untouched, layer).experts.gate_up_proj, torch.nn.Parameter)
        for layer in range(family.num_moe_layers(untouched.config))
    )
    with pytest.raises(ValueError, match="host_modes go with host='auto'"):
        replace(streamed, host="auto")
    with pytest.raises(ValueError, match="host_modes must give every slot"):
        replace(streamed, host="auto", host_modes=("stream",) * len(slots))
    with pytest.raises(ValueError, match="host='auto' keeps none"):
        plan_precision(model, budget, slots[:6], group_size=8, host="auto", rows=1)
    with pytest.raises(ValueError, match="columns layer, expert and share"):
        DecodeCost(1.0, {None: 0.1, 4: 0.05}, 1e6).token_s(everything, pd.DataFrame({"x": [1]}))
    with pytest.raises(ValueError, match="no time for experts read in place"):
        DecodeCost(1.0, {None: 0.1, 4: 0.05}, 1e6, 2.0, 0.1).choose_host_modes(streamed, None)
    # A model that copies experts in cannot be captured: refused with the fix, not a CUDA error.
    copying = apply_precision_plan(
        copy.deepcopy(model),
        plan_precision(
            model, everything.non_expert_bytes + 6 * everything.slot_bytes[0], slots, group_size=8
        ),
    )
    with pytest.raises(ValueError, match="pass graphs=False, or plan its host experts"):
        StaticDecoder(copying, 16, graphs=True)
    assert not StaticDecoder(copying, 16).use_graphs


def test_plans_that_cannot_run_are_refused(tiny_model):
    model = tiny_model("mixtral", 3)
    slots = get_family("mixtral").expert_slots(model.config)
    full = plan_precision(model, 10**9, [], group_size=8)
    budget = full.non_expert_bytes + 3 * full.row_bytes
    cases = [
        (plan_precision(model, 10**9, slots[:1], bits=3, group_size=8), "plan with bits=4"),
        (plan_precision(model, budget, [], group_size=8, rows=1), "plan with rows=None"),
        (
            plan_precision(tiny_model("mixtral", 3, num_hidden_layers=3), 10**9, group_size=8),
            "another model",
        ),
    ]
    for plan, message in cases:
        with pytest.raises(ValueError, match=message):
            apply_precision_plan(model, plan)


@pytest.mark.parametrize("routed", [False, True])
def test_measuring_the_decode_cost_leaves_the_model_as_it_was(tiny_model, routed):
    # The CPU-computed expert is timed inside a decode step, with the last layers' experts
    # moved to the CPU on the routed path: afterwards the same parameters, implementation and
    # logits.
    model = tiny_model("mixtral", 3)
    if routed:
        use_routed_experts(model)
    implementation = model.config._experts_implementation
    parameters = dict(model.named_parameters())
    ids = torch.tensor([[3, 9, 2, 11, 5, 7, 1, 30]])
    with torch.no_grad():
        before = model(input_ids=ids).logits
    cost = measure_decode_cost(model, group_size=8, repeats=2)
    assert cost.host_expert_s > 0
    assert model.config._experts_implementation == implementation
    after = dict(model.named_parameters())
    assert after.keys() == parameters.keys()
    assert all(after[name] is parameter for name, parameter in parameters.items())
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, before, rtol=0, atol=0)


def test_the_decode_cost_of_a_plan_weighs_its_primitives_by_the_routing(tiny_model):
    model = tiny_model("mixtral", 3)
    slots = get_family("mixtral").expert_slots(model.config)
    full = plan_precision(model, 10**9, [], group_size=8)
    plan = plan_precision(
        model, full.non_expert_bytes + 5 * full.row_bytes, slots[:2], group_size=8
    )
    shares = pd.DataFrame(
        {"layer": [s.layer for s in slots], "expert": [s.expert for s in slots], "share": 0.5}
    )
    cost = DecodeCost(non_expert_s=1.0, expert_s={None: 0.1, 4: 0.05}, copy_bytes_per_s=1e6)
    copy = plan.row_bytes / 1e6 + 0.1
    # Layer 0: two 4-bit and two full-precision GPU experts; layer 1: four CPU experts.
    expected = 1.0 + 0.5 * (2 * 0.05 + 2 * 0.1) + 0.5 * 4 * copy
    assert cost.token_s(plan, shares) == pytest.approx(expected)
    assert cost.tokens_per_s(plan, shares) == pytest.approx(1 / expected)
    offloaded = plan_precision(model, plan.budget, [], group_size=8)  # no 4-bit experts
    assert "cpu" in offloaded.device
    assert cost.tokens_per_s(full, shares) > cost.tokens_per_s(offloaded, shares)
    # A plan that copies experts in runs its step eagerly: that time, where it was measured.
    eager = DecodeCost(1.0, {None: 0.1, 4: 0.05}, 1e6, non_expert_eager_s=3.0)
    assert eager.token_s(offloaded, shares) == pytest.approx(cost.token_s(offloaded, shares) + 2.0)
    assert eager.token_s(full, shares) == pytest.approx(cost.token_s(full, shares))
    measured = measure_decode_cost(model, group_size=8, repeats=3)
    assert measured.non_expert_s >= 0 and measured.copy_bytes_per_s > 0
    assert measured.non_expert_eager_s == measured.non_expert_s  # no graphs on a CPU
    with pytest.raises(ValueError, match="only 4-bit experts have a routed kernel"):
        measure_decode_cost(model, bits=3)
    three = plan_precision(model, plan.budget, plan.slots[:2], bits=3, group_size=8)
    with pytest.raises(ValueError, match=r"also uses \[3\]: measure them"):
        cost.token_s(three, shares)
    assert set(measured.expert_s) == {None, 4} and min(measured.expert_s.values()) > 0
    assert set(measured.stream_expert_s) == {None, 4}
    assert min(measured.stream_expert_s.values()) > 0
    assert set(measured.copy_use_s) == {None, 4} and min(measured.copy_use_s.values()) > 0
    # Where the copying path was timed as a whole, a copied expert's use costs that time.
    timed = DecodeCost(1.0, {None: 0.1, 4: 0.05}, 1e6, copy_use_s={None: 0.7, 4: 0.2})
    assert timed.token_s(plan, shares) == pytest.approx(1.0 + 0.5 * (2 * 0.05 + 2 * 0.1) + 2 * 0.7)
    assert set(measured.copy_hit_s) == {None, 4} and min(measured.copy_hit_s.values()) > 0
    # Uses that repeat the previous token's find the expert in its row: no copy. Without a hit
    # time, or without repeat shares, every use misses.
    hit = replace(timed, copy_hit_s={None: 0.3, 4: 0.1})
    repeating = shares.assign(repeat_share=0.2)
    assert hit.token_s(plan, repeating) == pytest.approx(
        1.0 + 0.5 * (2 * 0.05 + 2 * 0.1) + 4 * (0.3 * 0.7 + 0.2 * 0.3)
    )
    assert (
        hit.token_s(plan, shares) == timed.token_s(plan, repeating) == timed.token_s(plan, shares)
    )
    # Experts on the GPU or read in place have no rows to hit.
    assert hit.token_s(full, repeating) == timed.token_s(full, shares)
    # Layer 1's four copied experts: 4 x 0.5 uses a token, 4 x 0.2 of them hits.
    assert expected_copy_traffic(plan, repeating) == pytest.approx(
        {"uses_per_token": 2.0, "copies_per_token": 1.2}
    )
    assert expected_copy_traffic(full, repeating) == {"uses_per_token": 0, "copies_per_token": 0}
    with pytest.raises(ValueError, match="shares need a repeat_share column"):
        expected_copy_traffic(plan, shares)
    with pytest.raises(ValueError, match="repeat_share must be numbers >= 0"):
        hit.token_s(plan, shares.assign(repeat_share=float("nan")))
    with pytest.raises(
        ValueError, match=r"copy hit times for bits \[4\], the plan also uses \[None\]"
    ):
        replace(hit, copy_hit_s={4: 0.1}).token_s(plan, repeating)
    with pytest.raises(ValueError, match="copy_hit_s needs copy_use_s"):
        DecodeCost(1.0, {None: 0.1, 4: 0.05}, 1e6, copy_hit_s={None: 0.3, 4: 0.1})
