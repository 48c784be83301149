"""The routed-expert decode path: the op, its Triton kernel, and models that use it."""

from __future__ import annotations

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
    routed_linear,
    triton_available,
    use_routed_experts,
)
from moelab.reconfigure import ConsolidatedMoE
from moelab.serving import Request, SingleEngine, greedy_decode, serve


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
    # TRITON_INTERPRET is read when a kernel is defined: a fresh interpreter runs it on the CPU.
    script = textwrap.dedent(
        """
        import torch
        from moelab.experts import routed_gemv
        generator = torch.Generator().manual_seed(1)
        # Rows and columns that are no multiple of the tiles; an expert routed twice.
        for dtype, tolerance in ((torch.float32, 1e-4), (torch.bfloat16, 2e-2)):
            weight = torch.randn(5, 72, 200, generator=generator).to(dtype)
            x = torch.randn(3, 200, generator=generator).to(dtype)
            ids = torch.tensor([2, 4, 2])
            out = routed_gemv(x, weight, ids)
            expected = torch.einsum("snk,sk->sn", weight[ids].double(), x.double())
            error = (out.double() - expected).abs().max().item()
            scale = expected.abs().max().item()
            assert out.dtype == dtype and error <= tolerance * scale, (dtype, error, scale)
        print("ok")
        """
    )
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


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
