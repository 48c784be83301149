"""The routed-expert decode path: the op, its Triton kernel, and models that use it."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from test_reconfigure import make_tenants
from test_reconfigure import reference as consolidated_reference
from torch.utils._python_dispatch import TorchDispatchMode

from moelab.consolidation import plan_consolidation
from moelab.experts import (
    MAX_ROUTED_ASSIGNMENTS,
    ROUTED,
    MixedExperts,
    quantize_experts,
    quantize_int4,
    routed_linear,
    triton_available,
    use_routed_experts,
)
from moelab.families import ExpertSlot, get_family
from moelab.reconfigure import ConsolidatedMoE
from moelab.serving import Request, SingleEngine, greedy_decode, serve
from moelab.sources import PerturbedSource


def run_interpreted(script: str) -> None:
    """Run a script in a fresh interpreter with Triton's CPU interpreter on; it prints "ok".

    TRITON_INTERPRET is read when a kernel is defined, hence the fresh interpreter.
    """
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


class RoutedCalls(TorchDispatchMode):
    """Counts the calls of the routed op while active."""

    n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.n += func is torch.ops.moelab.routed_linear.default
        return func(*args, **(kwargs or {}))


def reference(x: torch.Tensor, weight: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    return torch.einsum("snk,sk->sn", weight[ids].double(), x.double())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_routed_linear_is_each_row_through_its_expert(dtype):
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(6, 40, 24, generator=generator).to(dtype)
    x = torch.randn(5, 24, generator=generator).to(dtype)
    ids = torch.tensor([4, 1, 4, 0, 5])  # an expert twice, some not at all
    out = routed_linear(x, weight, ids)
    assert out.dtype == dtype and out.shape == (5, 40)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-2
    assert torch.allclose(out.double(), reference(x, weight, ids), rtol=tolerance, atol=tolerance)
    torch.library.opcheck(routed_linear, (x, weight, ids))  # the fake (compile) kernel agrees


@pytest.mark.skipif(not triton_available(), reason="needs triton (the dev extra on Linux x86-64)")
def test_the_triton_kernel_computes_the_same_in_the_interpreter():
    script = """
        import torch
        from moelab.experts import Tiles, routed_gemv
        generator = torch.Generator().manual_seed(1)
        # Rows and columns that are no multiple of the tiles; an expert routed twice.
        for dtype, tolerance in ((torch.float32, 1e-4), (torch.bfloat16, 2e-2)):
            weight = torch.randn(5, 72, 200, generator=generator).to(dtype)
            x = torch.randn(3, 200, generator=generator).to(dtype)
            ids = torch.tensor([2, 4, 2])
            expected = torch.einsum("snk,sk->sn", weight[ids].double(), x.double())
            scale = expected.abs().max().item()
            for tiles in (None, Tiles(32, 64, 2)):  # one step; four, the last partial
                out = routed_gemv(x, weight, ids, tiles)
                error = (out.double() - expected).abs().max().item()
                assert out.dtype == dtype and error <= tolerance * scale, (dtype, tiles, error)
        print("ok")
        """
    run_interpreted(script)


@pytest.mark.parametrize("family", ["mixtral", "olmoe"])
def test_models_on_the_routed_path_compute_what_eager_does(tiny_model, family):
    model = tiny_model(family, 3)
    decode = torch.tensor([[7]])  # one token: the routed path
    long = torch.randint(
        1, model.config.vocab_size, (1, MAX_ROUTED_ASSIGNMENTS)
    )  # more assignments: grouped_mm
    with torch.no_grad():
        model.set_experts_implementation("eager")
        expected = [model(input_ids=ids).logits for ids in (decode, long)]
        assert use_routed_experts(model) is model
        assert model.config._experts_implementation == ROUTED
        with RoutedCalls() as calls:
            got = [model(input_ids=decode).logits]
        assert calls.n == 2 * model.config.num_hidden_layers  # gate-up and down, per layer
        with RoutedCalls() as calls:
            got.append(model(input_ids=long).logits)
        assert calls.n == 0  # prefill: grouped_mm
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)


def test_a_consolidated_model_on_the_routed_path_serves_each_tenant(tiny_model):
    tenants = make_tenants(tiny_model, "mixtral", 2)
    plan = plan_consolidation(tenants, 0.75)  # some slots shared: the index tables matter
    cmoe = ConsolidatedMoE.from_plan(plan)
    use_routed_experts(cmoe.model)
    prompt = [3, 9, 4, 1]
    for name in tenants:
        own = consolidated_reference(
            plan, name
        )  # the tenant's model holding its consolidated experts
        own.set_experts_implementation("eager")
        cmoe.activate(name)
        assert greedy_decode(cmoe.model, prompt, 6).tokens == greedy_decode(own, prompt, 6).tokens
        with torch.no_grad():
            got = cmoe.model(input_ids=torch.tensor([[5]])).logits
            expected = own(input_ids=torch.tensor([[5]])).logits
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_the_engine_decodes_on_the_routed_path(tiny_model):
    model = tiny_model("mixtral", 2)
    expected = greedy_decode(model, [4, 8, 15], 7).tokens
    engine = SingleEngine(use_routed_experts(model), ["a"], static_cache=16)
    run = serve(engine, [Request("a", [4, 8, 15], 7, 0.0)])
    assert run.outcomes[0].tokens == expected


def test_models_with_one_module_per_expert_are_refused(tiny_model):
    with pytest.raises(ValueError, match="keeps one module per expert; the routed path reads"):
        use_routed_experts(tiny_model("switch_transformers", 0))


# ------------------------------------------------------------------------------- 4 bits
def test_int4_codes_round_trip_and_count_their_bytes():
    generator = torch.Generator().manual_seed(2)
    weight = torch.randn(3, 10, 32, generator=generator)
    q = quantize_int4(weight, group_size=8)
    assert q.shape == (3, 10, 32) and q.packed.shape == (3, 10, 16) and q.scale.shape == (3, 10, 4)
    assert q.nbytes == 3 * 10 * 16 + 2 * (3 * 10 * 4 * 4)  # codes + float32 scales and zeros
    codes = q.codes(1)
    assert codes.max() <= 15 and codes.min() >= 0
    # Round to nearest: every weight within half a step of its group.
    step = q.scale[1].repeat_interleave(8, dim=1)
    assert ((q.dequantize(1) - weight[1]).abs() <= step / 2 + 1e-6).all()
    for bad, message in ((5, "must be a multiple of 8 and divide the 32"), (12, "multiple of 8")):
        with pytest.raises(ValueError, match=message):
            quantize_int4(weight, group_size=bad)


def dequantized_copy(model, group_size, slots):
    """The obvious reference: the model with chosen experts replaced by their 4-bit values."""
    family = get_family(model.config.model_type)
    reference = copy.deepcopy(model)
    for layer in range(family.num_moe_layers(model.config)):
        experts = family.moe_block(reference, layer).experts
        chosen = sorted(s.expert for s in slots if s.layer == layer)
        for name in ("gate_up_proj", "down_proj"):
            weight = getattr(experts, name)
            if chosen:
                q = quantize_int4(weight.detach()[chosen], group_size)
                with torch.no_grad():
                    for row, expert in enumerate(chosen):
                        weight[expert] = q.dequantize(row)
    return reference.eval()


@pytest.mark.parametrize("family", ["mixtral", "olmoe"])
@pytest.mark.parametrize("share", ["all", "half"])
def test_quantized_experts_decode_as_their_dequantized_weights(tiny_model, family, share):
    model = tiny_model(family, 4)
    slots = get_family(family).expert_slots(model.config)
    chosen = slots if share == "all" else slots[::2]  # half: both pools in every layer
    reference = dequantized_copy(model, 8, chosen)
    reference.set_experts_implementation("eager")
    before = sum(p.numel() * p.element_size() for p in model.parameters())
    quantize_experts(model, "all" if share == "all" else chosen, group_size=8)
    layer = get_family(family).moe_block(model, 0).experts
    assert isinstance(layer.gate_up_proj, MixedExperts)
    assert layer.gate_up_proj.int4 is not None
    assert (layer.gate_up_proj.dense is None) == (share == "all")
    after = sum(p.numel() * p.element_size() for p in model.parameters())
    assert after < before  # the fused expert parameters are gone from the model
    for ids in (torch.tensor([[9]]), torch.randint(1, 60, (1, 12))):  # decode, and a prefill
        with torch.no_grad():
            torch.testing.assert_close(
                model(input_ids=ids).logits, reference(input_ids=ids).logits, rtol=1e-5, atol=1e-5
            )
    assert greedy_decode(model, [5, 2], 5).tokens == greedy_decode(reference, [5, 2], 5).tokens
    with pytest.raises(ValueError, match="quantized already; start from a fresh model"):
        quantize_experts(model)


def test_quantize_experts_refuses_what_it_cannot_hold_and_leaves_the_model_intact(tiny_model):
    model = tiny_model("mixtral", 0)
    ids = torch.tensor([[3, 4]])
    with torch.no_grad():
        expected = model(input_ids=ids).logits
    bad = [
        (dict(int4=[ExpertSlot(5, 0)], group_size=8), ValueError, "are not in this model"),
        (dict(group_size=32), ValueError, "must be a multiple of 8 and divide the 16 input"),
        (dict(group_size=3), ValueError, "must be a multiple of 8"),
        (dict(group_size=8.0), TypeError, "group_size must be an int"),
        (dict(int4="none", group_size=8), ValueError, "int4 must be 'all' or an iterable"),
        (dict(group_size=8, backend="bogus"), ValueError, "unknown quantization backend"),
    ]
    for kwargs, error, message in bad:
        with pytest.raises(error, match=message):
            quantize_experts(model, **kwargs)
    with torch.no_grad():  # nothing was changed by the refusals
        torch.testing.assert_close(model(input_ids=ids).logits, expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="keeps one module per expert"):
        quantize_experts(tiny_model("switch_transformers", 0))
    tenants = make_tenants(tiny_model, "mixtral", 2)
    cmoe = ConsolidatedMoE.from_plan(plan_consolidation(tenants, 0.75))
    with pytest.raises(ValueError, match="a consolidated model's pool"):
        quantize_experts(cmoe.model, group_size=8)
    one = quantize_experts(model, ExpertSlot(0, 1), group_size=8)  # one slot alone
    with pytest.raises(RuntimeError, match="cannot be converted"):
        one.to(torch.float64)
    with pytest.raises(RuntimeError, match="or saved"):
        one.save_pretrained("/nonexistent")
    one.set_experts_implementation("batched_mm")
    with pytest.raises(TypeError, match="read by the routed path only"), torch.no_grad():
        one(input_ids=ids)


def test_each_model_keeps_its_own_experts_implementation(tiny_model):
    from moelab.sources import RandomSource, materialize

    base = RandomSource(tiny_model("mixtral", 0).config, seed=1)
    a, b = materialize(base), materialize(base)
    use_routed_experts(a)
    assert b.config._experts_implementation != ROUTED
    tenants = {"t0": PerturbedSource(base, 1), "t1": PerturbedSource(base, 2)}
    cmoe = ConsolidatedMoE.from_plan(plan_consolidation(tenants, 1.0))
    use_routed_experts(cmoe.model)
    assert a.config is not cmoe.model.config and b.config._experts_implementation != ROUTED


def test_training_steps_take_a_path_with_a_backward(tiny_model):
    model = use_routed_experts(tiny_model("mixtral", 1)).train()
    loss = model(input_ids=torch.tensor([[3, 4]]), labels=torch.tensor([[3, 4]])).loss
    loss.backward()  # two tokens: few enough assignments for the routed path, but gradients
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.skipif(not triton_available(), reason="needs triton (the dev extra on Linux x86-64)")
def test_the_int4_kernel_computes_the_same_in_the_interpreter():
    script = """
        import torch
        from moelab.experts import Tiles, quantize_int4, routed_gemv, routed_gemv_int4
        generator = torch.Generator().manual_seed(3)
        cases = [  # dtype, tolerance, columns, group
            (torch.float32, 1e-5, 256, 64),
            (torch.bfloat16, 2e-2, 256, 64),
            (torch.float32, 1e-5, 320, 64),  # 5 groups: the last step partial
            (torch.float32, 1e-5, 288, 48),  # a group that is no power of two
            (torch.float32, 1e-5, 64, 8),  # one word a group
            (torch.float32, 1e-5, 1024, 64),  # whole 1024-column steps: the vector-load path
        ]
        for dtype, tolerance, k, group in cases:
            weight = torch.randn(5, 72, k, generator=generator).to(dtype)
            q = quantize_int4(weight, group)
            x = torch.randn(4, k, generator=generator).to(dtype)
            ids = torch.tensor([2, -1, 4, 2])  # -1: an assignment of the other pool
            rows = [q.dequantize(e).double() @ x[s].double() if e >= 0 else torch.zeros(72, dtype=torch.double)
                    for s, e in enumerate(ids.tolist())]
            expected = torch.stack(rows)
            # default tiles; one group per step; two groups per step
            for tiles in (None, Tiles(8, 32, 2), Tiles(16, 128), Tiles(32, 1024, 4)):
                out = routed_gemv_int4(x, q, ids, tiles)
                error = (out.double() - expected).abs().max().item() / expected.abs().max().item()
                assert out.dtype == dtype and error <= tolerance, (dtype, k, group, tiles, error)
            assert routed_gemv(x, weight, ids)[1].abs().max() == 0  # the dense kernel skips -1 too
        print("ok")
        """
    run_interpreted(script)


def test_kernel_launch_settings_and_layouts_that_no_kernel_reads_are_refused():
    from moelab.experts import Int4Experts, Tiles, block_sizes, routed_gemv

    assert block_sizes(2, 4096, 14336) == Tiles(8, 256, 8)  # too few programs at 16 rows
    assert block_sizes(2, 28672, 4096, bits=4) == Tiles(32, 1024, 4)
    assert block_sizes(2, 4096, 14336, bits=4) == Tiles(16, 1024, 4)  # 256 programs at 32 rows
    with pytest.raises(ValueError, match="16- or 4-bit weights, not 8-bit"):
        block_sizes(2, 64, 64, bits=8)
    codes = torch.zeros(2, 4, 24, dtype=torch.uint8)  # K = 48
    with pytest.raises(ValueError, match="group_size 5 must be a multiple of 8 and divide the 48"):
        Int4Experts(codes, torch.ones(2, 4, 9), torch.zeros(2, 4, 9), 5)
    with pytest.raises(ValueError, match="group_size 32 must be a multiple of 8 and divide the 48"):
        Int4Experts(codes, torch.ones(2, 4, 1), torch.zeros(2, 4, 1), 32)
    weight = torch.randn(2, 8, 16).transpose(1, 2)  # [E, K, N] viewed as [E, N, K]
    with pytest.raises(ValueError, match=r"pass weight.contiguous\(\)"):
        routed_gemv(torch.randn(1, 8), weight, torch.tensor([0]))
