"""CUDA: graph-safe runtime reconfiguration, measured memory and the offload tier on a GPU.

A small Mixtral (hidden 256, 4 layers, 8 experts, top-2, vocab 1000, bf16) is consolidated for
three tenants made from one random base by :class:`~moelab.sources.PerturbedSource`.

* **Graphs**: a CUDA graph captured for a tenant replays that tenant's eager logits bit for bit
  after other tenants were active (``"swap"``: one graph per tenant; ``"copy"`` and the
  ``non_expert_from`` ablation: also one graph for every tenant).
* **Memory**: :meth:`ConsolidatedMoE.memory_report`'s device rows are what the build left
  allocated on the device, its host rows the pinned host memory it took.
* **Speed**: activation of the small model takes well under a millisecond.
* **Offload**: host-tier experts copied in on use compute what the resident plan computes.

Run with ``python -m pytest -m gpu tests/moelab/test_gpu.py``; without CUDA every test is
skipped.
"""

from __future__ import annotations

import gc
import statistics
import time

import pytest
import torch
from transformers import AutoModelForCausalLM, MixtralConfig

from moelab.consolidation import plan_consolidation
from moelab.reconfigure import CapturedForward, ConsolidatedMoE, storage_bytes
from moelab.sources import PerturbedSource, load_into

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="needs a CUDA device (torch.cuda.is_available() is False)",
    ),
]

CONFIG = dict(
    vocab_size=1000,
    hidden_size=256,
    intermediate_size=512,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    num_local_experts=8,
    num_experts_per_tok=2,
    max_position_embeddings=128,
)
N_TENANTS = 3
# (mode, non_expert_from): the two reconfiguration modes and the ablation in both modes.
MODES = [("swap", None), ("copy", None), ("swap", "t0"), ("copy", "t0")]
MODE_IDS = ["swap", "copy", "ablation-swap", "ablation-copy"]
MiB = 1 << 20


def base_model(device: str) -> torch.nn.Module:
    # Built in bf16 (not cast to it afterwards), so that its rotary tables stay float32 as in
    # the consolidated model: ``.to(torch.bfloat16)`` would round them too.
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(MixtralConfig(**CONFIG), dtype=torch.bfloat16)
    return model.eval()


def make_tenants(device: str) -> dict[str, PerturbedSource]:
    base = base_model(device)
    return {f"t{i}": PerturbedSource(base, seed=i + 1, scale=0.1) for i in range(N_TENANTS)}


@pytest.fixture(scope="module")
def cuda_tenants() -> dict[str, PerturbedSource]:
    """Three tenants whose noise is computed on the GPU, where their base lives."""
    return make_tenants("cuda")


@pytest.fixture(scope="module")
def cuda_plan(cuda_tenants):
    plan = plan_consolidation(cuda_tenants, 0.75)
    assert 0 < plan.n_shared < plan.memory.n_slots  # some slots shared, some private
    return plan


@pytest.fixture(scope="module")
def cpu_tenants() -> dict[str, PerturbedSource]:
    """Three tenants on the CPU, so that only the build allocates device memory."""
    return make_tenants("cpu")


def input_ids(length: int = 16, seed: int = 7) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1, CONFIG["vocab_size"], (1, length), generator=generator).cuda()


def eager_logits(cmoe: ConsolidatedMoE, tenant: str, ids: torch.Tensor) -> torch.Tensor:
    cmoe.activate(tenant)
    with torch.no_grad():
        logits = cmoe.model(input_ids=ids, use_cache=False).logits.clone()
    torch.cuda.synchronize()
    return logits


def capture(cmoe: ConsolidatedMoE, ids: torch.Tensor) -> CapturedForward:
    return cmoe.capture(lambda: cmoe.model(input_ids=ids, use_cache=False).logits)


def assert_distinct(logits: dict[str, torch.Tensor]) -> None:
    names = list(logits)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not torch.equal(logits[a], logits[b]), f"tenants {a} and {b} compute the same"


def build(plan, mode, non_expert_from=None) -> ConsolidatedMoE:
    cmoe = ConsolidatedMoE.from_plan(
        plan, device="cuda", mode=mode, non_expert_from=non_expert_from
    )
    print(f"experts implementation: {cmoe.model.config._experts_implementation}")
    return cmoe


# ------------------------------------------------------------------------------- graphs
@pytest.mark.parametrize(("mode", "non_expert_from"), MODES, ids=MODE_IDS)
def test_a_graph_per_tenant_replays_its_eager_logits_after_other_tenants(
    cuda_plan, mode, non_expert_from
):
    cmoe = build(cuda_plan, mode, non_expert_from)
    ids = input_ids()
    expected = {t: eager_logits(cmoe, t, ids) for t in cmoe.tenants}
    assert_distinct(expected)
    graphs = {}
    for tenant in cmoe.tenants:
        cmoe.activate(tenant)
        graphs[tenant] = capture(cmoe, ids)
    for tenant in [*cmoe.tenants, *reversed(cmoe.tenants)]:
        for other in cmoe.tenants:
            if other != tenant:
                cmoe.activate(other)
        cmoe.activate(tenant)
        assert torch.equal(graphs[tenant].replay(), expected[tenant]), tenant
    # Eager runs after the replays still give the same logits.
    assert all(torch.equal(eager_logits(cmoe, t, ids), expected[t]) for t in cmoe.tenants)


@pytest.mark.parametrize(("mode", "non_expert_from"), MODES[1:], ids=MODE_IDS[1:])
def test_one_graph_serves_every_tenant_when_addresses_are_shared(cuda_plan, mode, non_expert_from):
    # "copy": one live non-expert set; the ablation: one stored set. Either way the live index
    # table is updated in place, so a graph captured once reads every tenant's weights.
    cmoe = build(cuda_plan, mode, non_expert_from)
    ids = input_ids(seed=8)
    expected = {t: eager_logits(cmoe, t, ids) for t in cmoe.tenants}
    assert_distinct(expected)
    cmoe.activate(cmoe.tenants[-1])
    graph = capture(cmoe, ids)
    for tenant in ["t1", "t0", "t2", "t2", "t1", "t0"]:
        cmoe.activate(tenant)
        assert torch.equal(graph.replay(), expected[tenant]), tenant


def test_a_per_tenant_graph_refuses_to_replay_for_another_tenant(cuda_plan):
    cmoe = build(cuda_plan, "swap")
    cmoe.activate("t0")
    graph = capture(cmoe, input_ids())
    cmoe.activate("t1")
    with pytest.raises(RuntimeError, match="reads tenant 't0'.s weights.*activate\\('t0'\\)"):
        graph.replay()
    cmoe.activate("t0")
    graph.replay()


def test_offloaded_models_cannot_be_captured(cuda_tenants):
    plan = plan_consolidation(
        cuda_tenants, offload_budget(cuda_tenants, 12, "device"), unit="bytes", placement="offload"
    )
    cmoe = build(plan, "swap")
    with pytest.raises(ValueError, match="plan it with placement='resident'"):
        capture(cmoe, input_ids())


def test_consolidated_logits_are_the_tenants_own_on_cuda(cuda_tenants):
    # Nothing shared: each tenant must compute its own model (materialised the obvious way).
    plan = plan_consolidation(cuda_tenants, 1.0)
    cmoe = build(plan, "swap")
    base = base_model("cuda")
    ids = input_ids()
    for name, source in cuda_tenants.items():
        with torch.no_grad():
            own = load_into(source, base)(input_ids=ids, use_cache=False).logits.float()
        got = eager_logits(cmoe, name, ids).float()
        error = float((got - own).norm() / own.norm())
        print(f"{name}: relative error {error:.2e}, bitwise equal {torch.equal(got, own)}")
        assert torch.equal(got, own), name


# ------------------------------------------------------------------------------- memory
def allocator_slack(nbytes: int) -> int:
    """The most the CUDA caching allocator can count beyond one request of ``nbytes``.

    It rounds a request up to a multiple of 512 bytes, and does not split off a remainder of
    a reused or fresh block that is too small to be a block itself: under 512 bytes in the
    small pool (requests up to 1 MiB), up to 1 MiB in the large pool.
    """
    return 511 + (MiB if nbytes > MiB else 511)


def quiet_allocators() -> None:
    """Free what earlier tests left, and retire pinned blocks whose copies have finished."""
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    # The pinned allocator frees a block used by an asynchronous copy only when it next
    # allocates; a one-element allocation makes that happen before the measurement.
    del_me = torch.empty(1, pin_memory=True)
    del del_me


def pinned_active_bytes() -> int | None:
    """Bytes of pinned blocks handed out by torch's pinned allocator, where torch reports it."""
    stats = getattr(torch.cuda, "host_memory_stats", None)
    value = None if stats is None else stats().get("active_bytes.current")
    if value is None:
        print("torch reports no pinned allocator statistics: pinned bytes not measured")
    return value


def offload_budget(tenants, n_shared: int, non_expert: str) -> int:
    """Device bytes for the non-expert sets, ``n_shared`` shared slots, the cache rows, plus change."""
    probe = plan_consolidation(
        tenants, n_shared, unit="slots", placement="offload", non_expert=non_expert
    )
    m = probe.memory
    return m.device_non_expert_bytes + (n_shared + m.cache_rows) * m.slot_bytes + m.slot_bytes // 2


@pytest.mark.parametrize("placement", ["resident", "offload"])
@pytest.mark.parametrize("mode", ["swap", "copy"])
def test_memory_report_is_what_the_build_allocated(cpu_tenants, mode, placement):
    non_expert = "device" if mode == "swap" else "host"
    if placement == "resident":
        plan = plan_consolidation(cpu_tenants, 0.75, non_expert=non_expert)
    else:
        budget = offload_budget(cpu_tenants, 12, non_expert)
        plan = plan_consolidation(
            cpu_tenants, budget, unit="bytes", placement=placement, non_expert=non_expert
        )
    quiet_allocators()
    allocated = torch.cuda.memory_allocated()
    requested = torch.cuda.memory_stats().get("requested_bytes.all.current")
    pinned = pinned_active_bytes()
    cmoe = ConsolidatedMoE.from_plan(plan, device="cuda", mode=mode)
    assert cmoe.mode == mode
    gc.collect()
    torch.cuda.synchronize()
    report = cmoe.memory_report()
    device = int(report.loc[report["location"] == "device", "bytes"].sum())
    host = int(report.loc[report["location"] == "host", "bytes"].sum())
    assert device + host == cmoe.resident_bytes()
    held = {(t.device, t.untyped_storage().data_ptr()): t for t in cmoe.held_tensors()}.values()
    on_device = [t for t in held if t.is_cuda]
    on_host = [t for t in held if not t.is_cuda]
    assert storage_bytes(on_device) == device and storage_bytes(on_host) == host

    grown = torch.cuda.memory_allocated() - allocated
    slack = sum(allocator_slack(t.untyped_storage().nbytes()) for t in on_device)
    print(
        f"{mode}/{placement}: report device {device:,} B, memory_allocated +{grown:,} B "
        f"(allowed +{slack:,}), host {host:,} B"
    )
    # The allocator counts whole blocks: at least what was asked for, at most its rounding.
    assert device <= grown <= device + slack
    if requested is not None:  # what was asked for, before rounding: exactly the report
        assert torch.cuda.memory_stats()["requested_bytes.all.current"] - requested == device

    # Host rows: pinned buffers (staged non-expert sets, host-tier experts), nothing else.
    expect_host = (mode == "copy") or (placement == "offload")
    assert bool(on_host) == expect_host and all(t.is_pinned() for t in on_host)
    assert host == plan.memory.host_bytes
    if pinned is not None:
        # Host rows are plain allocations registered with cudaHostRegister, not blocks of torch's
        # pinned allocator (which rounds each up to a power of two): that allocator is untouched.
        pinned_grown = pinned_active_bytes() - pinned
        print(f"pinned allocator +{pinned_grown:,} B for {host:,} B of registered host rows")
        assert pinned_grown == 0


# -------------------------------------------------------------------------------- speed
@pytest.mark.parametrize("mode", ["swap", "copy"])
def test_activation_takes_under_a_millisecond(cuda_plan, mode):
    cmoe = build(cuda_plan, mode)
    times = []
    for i in range(60):
        torch.cuda.synchronize()
        start = time.perf_counter()
        cmoe.activate(cmoe.tenants[i % N_TENANTS])
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    median = statistics.median(times[10:])
    print(
        f"{mode}: activate median {median * 1e6:.1f} us (synchronized), {cmoe.last_copy_bytes:,} B"
    )
    assert median < 1e-3


# ------------------------------------------------------------------------------ offload
@pytest.mark.parametrize("mode", ["swap", "copy"])
def test_offload_one_token_logits_equal_the_resident_plan(cuda_tenants, mode):
    non_expert = "device" if mode == "swap" else "host"
    n_shared = 12
    resident = plan_consolidation(cuda_tenants, n_shared, unit="slots", non_expert=non_expert)
    budget = offload_budget(cuda_tenants, n_shared, non_expert)
    plan = plan_consolidation(
        cuda_tenants, budget, unit="bytes", placement="offload", non_expert=non_expert
    )
    assert plan.n_shared == n_shared and plan.shared_slots == resident.shared_slots
    assert {d.tier for d in plan.decisions if not d.shared} == {"host"}
    offload, reference = build(plan, mode), build(resident, mode)
    for step, tenant in enumerate(["t1", "t0", "t2", "t1", "t0"]):
        # One token routes to top-2 experts per layer, which fit a layer's cache rows.
        one_token = input_ids(length=1, seed=step)
        with torch.no_grad():
            got = offload.forward(tenant, input_ids=one_token, use_cache=False).logits
            want = reference.forward(tenant, input_ids=one_token, use_cache=False).logits
        assert torch.equal(got, want), (tenant, step)
    assert offload.copied_expert_bytes() > 0
    report = offload.memory_report()
    params = report[report["component"] != "buffers and index tables"]
    assert params.loc[params["location"] == "device", "bytes"].sum() == plan.memory.device_bytes
    assert plan.memory.device_bytes <= budget


# ------------------------------------------------------------------------ static decode
@pytest.mark.parametrize("mode", ["swap", "copy"])
def test_graph_decoding_generates_what_eager_decoding_does(cuda_plan, mode):
    from moelab.serving import ConsolidatedEngine, Request, greedy_decode, serve

    cmoe = build(cuda_plan, mode)
    engine = ConsolidatedEngine(cmoe, static_cache=48)
    prompt = input_ids().tolist()[0]
    stream = [
        Request(t, prompt, 12, 0.0, request_id=i) for i, t in enumerate("t0 t1 t0 t2 t1".split())
    ]
    run = serve(engine, stream)
    for outcome in run.outcomes:
        cmoe.activate(outcome.request.tenant)
        expected = greedy_decode(cmoe.model, prompt, 12).tokens
        assert outcome.status == "done" and outcome.tokens == expected, outcome.reason
    keys = set(engine.decoder.captured_keys)
    assert keys == ({"t0", "t1", "t2"} if mode == "swap" else {None})
