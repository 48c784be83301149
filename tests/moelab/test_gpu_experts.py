"""CUDA: the routed-expert decode path (Triton kernel) against transformers' paths, in graphs.

The small bf16 Mixtral of ``test_gpu.py``:

* the kernel computes ``weight[ids[s]] @ x[s]`` (also at one Mixtral-8x7B expert's shape);
* a model on the routed path gives the logits of transformers' ``batched_mm`` within bf16
  tolerance (the same products, accumulated in another order);
* a decode step captured as a CUDA graph replays the routed path's eager tokens exactly, and a
  consolidated model's per-tenant graphs on the routed path replay each tenant's eager logits;
* the 4-bit kernel computes each assignment through its dequantized expert (skipping the other
  pool's), and a model with every expert in 4 bits decodes a batch of 4 in a graph as eagerly;
* experts a plan leaves in host memory and the kernels read there in place (``host="stream"``)
  take no device memory, compute what the same experts on the device compute, and decode in a
  captured graph as eagerly;
* host experts are page-locked where they are copied in, and not where the CPU computes them;
* timing a decode's cost (the CPU-computed experts inside a step) leaves the model as it was.

Run with ``python -m pytest -m gpu tests/moelab/test_gpu_experts.py``; without CUDA every test
is skipped.
"""

from __future__ import annotations

import gc

import pytest
import torch
from test_gpu import CONFIG, base_model, input_ids, make_tenants

from moelab.consolidation import plan_consolidation
from moelab.experts import (
    apply_precision_plan,
    quantize_experts,
    quantize_int4,
    routed_gemv,
    routed_gemv_int4,
    routed_linear,
    triton_available,
    use_routed_experts,
)
from moelab.families import get_family
from moelab.quant import measure_decode_cost, plan_precision
from moelab.reconfigure import ConsolidatedMoE
from moelab.serving import StaticDecoder

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not (torch.cuda.is_available() and triton_available()),
        reason="needs a CUDA device and triton",
    ),
]


@pytest.mark.parametrize(
    ("experts", "rows", "cols", "assignments"),
    [(8, 1024, 512, 6), (8, 28672, 4096, 2), (8, 4096, 14336, 8)],
)
def test_the_kernel_is_each_row_through_its_expert(experts, rows, cols, assignments):
    generator = torch.Generator(device="cuda").manual_seed(0)
    weight = torch.randn(
        experts, rows, cols, device="cuda", dtype=torch.bfloat16, generator=generator
    )
    x = torch.randn(assignments, cols, device="cuda", dtype=torch.bfloat16, generator=generator)
    ids = torch.randint(0, experts, (assignments,), device="cuda", generator=generator)
    out = routed_gemv(x, weight, ids)
    expected = torch.stack([weight[e].float() @ x[s].float() for s, e in enumerate(ids.tolist())])
    torch.testing.assert_close(
        out.float(), expected, rtol=2e-2, atol=2e-2 * expected.abs().max().item()
    )
    assert torch.equal(routed_linear(x, weight, ids), out)  # the op dispatches to the kernel


def test_a_model_on_the_routed_path_matches_batched_mm():
    model = base_model("cuda")
    ids = input_ids(length=1)
    with torch.no_grad():
        model.set_experts_implementation("batched_mm")
        expected = model(input_ids=ids).logits.float()
        use_routed_experts(model)
        got = model(input_ids=ids).logits.float()
    torch.testing.assert_close(got, expected, rtol=2e-2, atol=2e-2 * expected.abs().max().item())


def test_a_captured_decode_step_replays_the_routed_eager_tokens():
    model = use_routed_experts(base_model("cuda"))
    prompt = input_ids(length=8)[0].tolist()
    eager = StaticDecoder(model, 40, graphs=False).generate(prompt, 24).tokens
    graphed = StaticDecoder(model, 40, graphs=True)
    assert graphed.generate(prompt, 24).tokens == eager
    assert graphed.generate(prompt, 24).tokens == eager  # replayed, after the capture


def test_consolidated_tenants_replay_their_graphs_on_the_routed_path():
    tenants = make_tenants("cuda")
    cmoe = ConsolidatedMoE.from_plan(plan_consolidation(tenants, 0.75), device="cuda", mode="swap")
    use_routed_experts(cmoe.model)
    token = torch.zeros((1, 1), dtype=torch.long, device="cuda")
    graphs, eager = {}, {}
    for name in cmoe.tenants:
        cmoe.activate(name)
        token.fill_(CONFIG["vocab_size"] // 3)
        with torch.no_grad():
            eager[name] = cmoe.model(input_ids=token, use_cache=False).logits.clone()
        graphs[name] = cmoe.capture(lambda: cmoe.model(input_ids=token, use_cache=False).logits)
    for name in reversed(cmoe.tenants):  # after the other tenants were active
        cmoe.activate(name)
        assert torch.equal(graphs[name].replay(), eager[name]), name


def test_the_int4_kernel_is_each_row_through_its_dequantized_expert():
    generator = torch.Generator(device="cuda").manual_seed(1)
    weight = torch.randn(8, 4096, 14336, device="cuda", dtype=torch.bfloat16, generator=generator)
    q = quantize_int4(weight, 64)
    x = torch.randn(4, 14336, device="cuda", dtype=torch.bfloat16, generator=generator)
    ids = torch.tensor([3, -1, 7, 3], device="cuda")
    out = routed_gemv_int4(x, q, ids)
    expected = torch.stack(
        [
            q.dequantize(e).float() @ x[s].float() if e >= 0 else torch.zeros(4096, device="cuda")
            for s, e in enumerate(ids.tolist())
        ]
    )
    scale = expected.abs().max().item()
    torch.testing.assert_close(out.float(), expected, rtol=2e-2, atol=2e-2 * scale)


def test_quantized_experts_decode_in_a_captured_graph_as_eagerly():
    model = quantize_experts(base_model("cuda"), group_size=64)
    prompts = [input_ids(length=8, seed=s)[0].tolist() for s in range(4)]
    eager = StaticDecoder(model, 40, graphs=False, batch_size=4).generate_batch(prompts, 16)
    graphed = StaticDecoder(model, 40, graphs=True, batch_size=4)
    for _ in range(2):  # captured, then replayed
        assert [g.tokens for g in graphed.generate_batch(prompts, 16)] == [e.tokens for e in eager]


def test_experts_read_in_place_from_host_memory_compute_as_on_the_device_in_a_graph():
    model = use_routed_experts(base_model("cuda"))
    slots = get_family("mixtral").expert_slots(model.config)
    quantized = slots[::2]  # half the experts in 4 bits, in every layer
    everything = plan_precision(model, 10**12, quantized, group_size=64)
    # Room for half the 4-bit experts: some of them and every bf16 one stay in host memory.
    small = sum(b for b, bits in zip(everything.slot_bytes, everything.bits) if bits == 4)
    budget = everything.non_expert_bytes + small // 2
    plan = plan_precision(model, budget, quantized, group_size=64, host="stream")
    cpu_bits = {b for b, d in zip(plan.bits, plan.device) if d == "cpu"}
    assert cpu_bits == {None, 4} and plan.graph_safe
    # The same experts, all on the device (the same 4-bit codes: round to nearest per group).
    resident = quantize_experts(use_routed_experts(base_model("cuda")), quantized, 64)
    gc.collect()  # the tensors the conversion above let go of, freed before measuring
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    apply_precision_plan(model, plan)
    gc.collect()
    torch.cuda.synchronize()
    # The experts left the device: it holds no more of them than the plan counts there.
    freed = before - torch.cuda.memory_allocated()
    planned = len(slots) * plan.row_bytes - (plan.gpu_bytes - plan.non_expert_bytes)
    assert freed >= planned - 64 * 1024, (freed, planned)
    ids = input_ids(length=1)
    with torch.no_grad():
        got = model(input_ids=ids).logits.float()
        expected = resident(input_ids=ids).logits.float()
    scale = expected.abs().max().item()
    torch.testing.assert_close(got, expected, rtol=2e-2, atol=1e-2 * scale)
    prompt = input_ids(length=8)[0].tolist()
    eager = StaticDecoder(model, 40, graphs=False).generate(prompt, 16).tokens
    graphed = StaticDecoder(model, 40, graphs=True)
    for _ in range(2):  # captured, then replayed
        assert graphed.generate(prompt, 16).tokens == eager


@pytest.mark.parametrize(("host", "pinned"), [("copy", True), ("compute", False)])
def test_host_experts_are_page_locked_only_where_they_cross_the_bus(host, pinned):
    model = use_routed_experts(base_model("cuda"))
    full = plan_precision(model, 10**12, [], group_size=64)
    budget = full.non_expert_bytes + len(full.slots) // 2 * full.row_bytes
    plan = plan_precision(model, budget, [], group_size=64, host=host)
    assert "cpu" in plan.device
    apply_precision_plan(model, plan)
    family = get_family("mixtral")
    stored = [
        tensor
        for layer in range(family.num_moe_layers(model.config))
        for tensor in family.moe_block(model, layer).experts.gate_up_proj.host.values()
    ]
    assert stored and all(t.is_pinned() == pinned for t in stored)


def test_timing_the_decode_cost_on_the_device_leaves_the_model_as_it_was():
    # The CPU-computed expert is timed inside an eager decode step, the last layers' experts
    # copied to host memory meanwhile; afterwards the model is the one it was, on the device.
    model = use_routed_experts(base_model("cuda"))
    parameters = dict(model.named_parameters())
    ids = input_ids(length=8)
    with torch.no_grad():
        before = model(input_ids=ids).logits
    cost = measure_decode_cost(model, group_size=64, repeats=3)
    assert cost.host_expert_s > 0 and cost.non_expert_eager_s > cost.non_expert_s
    after = dict(model.named_parameters())
    assert after.keys() == parameters.keys()
    assert all(after[n] is p and p.is_cuda for n, p in parameters.items())
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, before)
