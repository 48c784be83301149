"""The consolidated model: exact outputs, true memory accounting, reconfiguration, bad input."""

from __future__ import annotations

import copy
import gc
import types

import plotly.graph_objects as go
import pytest
import torch

from moelab.consolidation import MEAN_OWNER, plan_consolidation
from moelab.families import ExpertSlot, get_family
from moelab.merging import without_reconfiguration
from moelab.reconfigure import ConsolidatedMoE, storage_bytes
from moelab.viz import memory_figure

FAMILIES = ["mixtral", "switch_transformers", "olmoe"]


def make_tenants(tiny_model, family: str, n: int, *, identical=()):
    """Copies of one tiny base, every parameter perturbed by its own seed (identical slots reset)."""
    base = tiny_model(family, 0)
    adapter = get_family(family)
    tenants = {}
    for i in range(n):
        model = copy.deepcopy(base)
        generator = torch.Generator().manual_seed(100 + i)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=generator) * 0.05)
        for slot in identical:
            adapter.set_expert(model, slot, adapter.get_expert(base, slot))
        tenants[f"t{i}"] = model
    return tenants


def inputs(family: str) -> dict[str, torch.Tensor]:
    ids = torch.randint(1, 64, (2, 9), generator=torch.Generator().manual_seed(7))
    if family == "switch_transformers":
        return {"input_ids": ids, "decoder_input_ids": ids[:, :5]}
    return {"input_ids": ids}


def logits(model_or_cmoe, family, tenant=None):
    with torch.no_grad():
        if tenant is None:
            return model_or_cmoe(**inputs(family)).logits
        return model_or_cmoe.forward(tenant, **inputs(family)).logits


def reference(plan, tenant: str, non_expert_from: str | None = None):
    """What the consolidated model must compute for ``tenant``, built the obvious way: a copy of
    the tenant's model (or of ``non_expert_from``'s) holding the tenant's expert mapping."""
    family = plan.family
    model = copy.deepcopy(plan.source_of(non_expert_from or tenant).model)
    own = plan.source_of(tenant).model
    for decision in plan.decisions:
        slot = decision.slot
        if not decision.shared:
            source = family.get_expert(own, slot)
        elif decision.owner == MEAN_OWNER:
            experts = [family.get_expert(m.model, slot) for m in plan.sources]
            source = {
                k: torch.stack([e[k].float() for e in experts]).mean(0).to(experts[0][k].dtype)
                for k in experts[0]
            }
        else:
            source = family.get_expert(plan.source_of(decision.owner).model, slot)
        family.set_expert(model, slot, source)
    return model


@pytest.mark.parametrize("mode", ["swap", "copy"])
@pytest.mark.parametrize("family", FAMILIES)
def test_nothing_shared_equals_each_tenant_exactly(tiny_model, family, mode):
    tenants = make_tenants(tiny_model, family, 3)
    plan = plan_consolidation(tenants, 1.0)
    cmoe = ConsolidatedMoE.from_plan(plan, device="cpu", mode=mode)
    for name in ["t2", "t0", "t1", "t0"]:
        assert torch.equal(logits(cmoe, family, name), logits(tenants[name], family)), name


@pytest.mark.parametrize("family", ["mixtral", "switch_transformers"])
def test_identical_slot_is_stored_once_and_changes_nothing(tiny_model, family):
    same = [ExpertSlot(1, 0), ExpertSlot(0, 2)]
    tenants = make_tenants(tiny_model, family, 3, identical=same)
    nothing = ConsolidatedMoE.from_plan(plan_consolidation(tenants, 0, unit="slots"), device="cpu")
    plan = plan_consolidation(tenants, 2, unit="slots")
    assert set(plan.shared_slots) == set(same)
    cmoe = ConsolidatedMoE.from_plan(plan, device="cpu")
    for name, model in tenants.items():
        assert torch.equal(logits(cmoe, family, name), logits(model, family))
    slot_bytes = plan.memory.slot_bytes
    assert nothing.resident_bytes() - cmoe.resident_bytes() == 2 * 2 * slot_bytes
    report = cmoe.memory_report().set_index("component")["bytes"]
    assert report["shared experts"] == 2 * slot_bytes


@pytest.mark.parametrize("owner", ["round_robin", "medoid", "mean"])
@pytest.mark.parametrize("family", ["mixtral", "switch_transformers"])
def test_shared_slots_use_the_owners_expert(tiny_model, family, owner):
    tenants = make_tenants(tiny_model, family, 3)
    plan = plan_consolidation(tenants, 5, unit="slots", owner=owner)
    cmoe = ConsolidatedMoE.from_plan(plan, device="cpu")
    for name in plan.tenants:
        assert torch.equal(logits(cmoe, family, name), logits(reference(plan, name), family))


def held_bytes(root) -> int:
    """Bytes of every tensor storage reachable from ``root``, each storage counted once.

    Walks the object graph (attributes, containers, closures of functions and hooks) instead
    of asking the object what it holds; modules and classes are not entered. Nothing is
    skipped: the consolidated model's plan is detached from the tenants' weights.
    """
    visited: set[int] = set()
    storages: dict[tuple[str, int], int] = {}
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in visited or isinstance(obj, (type, types.ModuleType)):
            continue
        visited.add(id(obj))
        if isinstance(obj, torch.Tensor):
            storage = obj.untyped_storage()
            storages[(str(obj.device), storage.data_ptr())] = storage.nbytes()
        elif isinstance(obj, types.FunctionType):  # its closure, not its module's globals
            stack += [cell.cell_contents for cell in obj.__closure__ or ()]
        else:
            stack += gc.get_referents(obj)
    return sum(storages.values())


# A Mixtral small enough to count by hand: vocab 8, hidden 4, FFN 6, 1 layer, 1 head of 4,
# 2 experts; float32 parameters, int64 index tables.
HAND_SIZED = dict(
    vocab_size=8,
    hidden_size=4,
    intermediate_size=6,
    num_hidden_layers=1,
    num_attention_heads=1,
    num_key_value_heads=1,
    num_local_experts=2,
    num_experts_per_tok=1,
)
# Non-expert set: embed 8x4 + lm_head 8x4 + q, k, v, o 4x4 each + router 2x4 + 3 norms of 4
# = 32 + 32 + 64 + 8 + 12 = 148 floats.
HAND_NON_EXPERT = 148 * 4  # 592
# One expert: gate_up 12x4 + down 4x6 = 72 floats.
HAND_SLOT = 72 * 4  # 288
# Rotary inv_freq and original_inv_freq, 2 floats each; index tables of 2 int64: one per
# tenant plus the live one the experts read (updated in place on activation).
HAND_SMALL = 2 * 2 * 4 + 3 * 2 * 8  # 64
HAND_REPORT = {
    # 2 tenants, 1 of the 2 slots shared: the shared slot once, the private one per tenant.
    "swap": {
        ("non-expert set", "t0"): HAND_NON_EXPERT,
        ("non-expert set", "t1"): HAND_NON_EXPERT,
        ("shared experts", "all"): HAND_SLOT,
        ("private experts", "all"): 2 * HAND_SLOT,
        ("buffers and index tables", "all"): HAND_SMALL,
    },
    "copy": {
        ("live non-expert set", "active"): HAND_NON_EXPERT,
        ("staged non-expert set", "t0"): HAND_NON_EXPERT,
        ("staged non-expert set", "t1"): HAND_NON_EXPERT,
        ("shared experts", "all"): HAND_SLOT,
        ("private experts", "all"): 2 * HAND_SLOT,
        ("buffers and index tables", "all"): HAND_SMALL,
    },
}


@pytest.mark.parametrize("mode", ["swap", "copy"])
def test_memory_report_of_a_hand_sized_model(tiny_model, mode):
    tenants = make_tenants(
        lambda family, seed: tiny_model(family, seed, **HAND_SIZED), "mixtral", 2
    )
    plan = plan_consolidation(tenants, 1, unit="slots")
    cmoe = ConsolidatedMoE.from_plan(plan, device="cpu", mode=mode)
    report = cmoe.memory_report().set_index(["component", "tenant"])["bytes"]
    assert report.to_dict() == HAND_REPORT[mode]
    # swap: 2 x 592 + 3 x 288 + 64 = 2112; copy: 3 x 592 + 3 x 288 + 64 = 2704.
    total = sum(HAND_REPORT[mode].values())
    assert held_bytes(cmoe) == total
    assert cmoe.resident_bytes() == total


@pytest.mark.parametrize("mode", ["swap", "copy"])
@pytest.mark.parametrize("family", ["mixtral", "switch_transformers"])
@pytest.mark.parametrize("shared", [0, 5, None])
def test_memory_report_equals_what_the_object_holds(tiny_model, family, mode, shared):
    tenants = make_tenants(tiny_model, family, 3)
    n_slots = len(get_family(family).expert_slots(tenants["t0"]))
    plan = plan_consolidation(tenants, n_slots if shared is None else shared, unit="slots")
    cmoe = ConsolidatedMoE.from_plan(plan, device="cpu", mode=mode)
    report = cmoe.memory_report()
    held = held_bytes(cmoe)
    assert int(report["bytes"].sum()) == held
    assert cmoe.resident_bytes() == held
    by = report.groupby("component")["bytes"].sum()
    assert by["shared experts"] == plan.memory.shared_expert_bytes
    assert by["private experts"] == plan.memory.private_expert_bytes
    if mode == "swap":
        per_tenant = report.query("component == 'non-expert set'").set_index("tenant")["bytes"]
        assert tuple(per_tenant[t] for t in plan.tenants) == plan.memory.non_expert_bytes
    else:
        assert by["live non-expert set"] == plan.memory.non_expert_bytes[0]
        assert (report.query("component == 'staged non-expert set'")["location"] == "host").all()
    # The live model shares no storage with the tenants it was built from.
    sources = {p.untyped_storage().data_ptr() for m in tenants.values() for p in m.parameters()}
    assert not sources & {p.untyped_storage().data_ptr() for p in cmoe.model.parameters()}


def test_swap_activation_is_fast_and_rebinds_parameters(tiny_model):
    tenants = make_tenants(tiny_model, "mixtral", 2)
    cmoe = ConsolidatedMoE.from_plan(plan_consolidation(tenants, 0.75), device="cpu")
    times = []
    for _ in range(20):
        times.append(cmoe.activate("t1"))
        times.append(cmoe.activate("t0"))
    assert min(times) < 1e-3
    cmoe.activate("t1")
    embed = cmoe.model.get_input_embeddings().weight
    assert torch.equal(embed, tenants["t1"].get_input_embeddings().weight)
    assert (
        embed.untyped_storage().data_ptr()
        != tenants["t1"].get_input_embeddings().weight.untyped_storage().data_ptr()
    )
    assert cmoe.active == "t1"


def test_copy_mode_copies_one_non_expert_set(tiny_model):
    tenants = make_tenants(tiny_model, "switch_transformers", 2)
    plan = plan_consolidation(tenants, 0.75)
    cmoe = ConsolidatedMoE.from_plan(plan, device="cpu", mode="copy")
    live = [p.untyped_storage().data_ptr() for p in cmoe.model.get_input_embeddings().parameters()]
    cmoe.activate("t1")
    assert cmoe.last_copy_bytes == plan.memory.non_expert_bytes[1]
    cmoe.activate("t1")
    assert cmoe.last_copy_bytes == 0
    # Copy mode writes into the same live tensors instead of re-pointing.
    assert live == [
        p.untyped_storage().data_ptr() for p in cmoe.model.get_input_embeddings().parameters()
    ]


def test_tied_embeddings_stay_tied(tiny_model):
    tenants = make_tenants(tiny_model, "switch_transformers", 2)
    cmoe = ConsolidatedMoE.from_plan(plan_consolidation(tenants, 1.0), device="cpu")
    cmoe.activate("t1")
    model = cmoe.model
    assert model.shared.weight is model.encoder.embed_tokens.weight is model.lm_head.weight


@pytest.mark.parametrize("family", ["mixtral", "switch_transformers"])
def test_without_reconfiguration_serves_one_non_expert_set(tiny_model, family):
    tenants = make_tenants(tiny_model, family, 3)
    plan = plan_consolidation(tenants, 4, unit="slots")
    ablation = without_reconfiguration(plan, "t0")
    for name in plan.tenants:
        assert torch.equal(
            logits(ablation, family, name),
            logits(reference(plan, name, non_expert_from="t0"), family),
        )
    report = ablation.memory_report()
    assert list(report.query("component == 'non-expert set'")["tenant"]) == ["t0"]
    assert int(report["bytes"].sum()) == held_bytes(ablation) == ablation.resident_bytes()


def test_generate_matches_the_tenants_model(tiny_model):
    tenants = make_tenants(tiny_model, "mixtral", 2)
    cmoe = ConsolidatedMoE.from_plan(plan_consolidation(tenants, 1.0), device="cpu")
    prompt = torch.tensor([[3, 9, 4]])
    for name in ("t1", "t0"):
        ours = cmoe.generate(name, input_ids=prompt, max_new_tokens=6, do_sample=False)
        theirs = tenants[name].generate(input_ids=prompt, max_new_tokens=6, do_sample=False)
        assert torch.equal(ours, theirs)


def test_memory_figure_has_both_bars(tiny_model):
    tenants = make_tenants(tiny_model, "mixtral", 2)
    cmoe = ConsolidatedMoE.from_plan(plan_consolidation(tenants, 0.5), device="cpu")
    fig = memory_figure(cmoe)
    assert isinstance(fig, go.Figure)
    bars = {x for trace in fig.data for x in trace.x}
    assert bars == {"consolidated (swap)", "2 separate models"}
    total = sum(
        y for trace in fig.data for x, y in zip(trace.x, trace.y) if x == "consolidated (swap)"
    )
    assert total == pytest.approx(cmoe.resident_bytes() / 1e6)


def test_bad_input(tiny_model):
    tenants = make_tenants(tiny_model, "mixtral", 2)
    plan = plan_consolidation(tenants, 1.0)
    cmoe = ConsolidatedMoE.from_plan(plan, device="cpu")
    with pytest.raises(
        ValueError, match="unknown tenant 'nobody'; this consolidated model serves: t0, t1"
    ):
        cmoe.activate("nobody")
    with pytest.raises(ValueError, match="unknown mode 'move'; known modes: swap, copy"):
        ConsolidatedMoE.from_plan(plan, mode="move")
    with pytest.raises(ValueError, match="unknown tenant 'x' for non_expert_from"):
        ConsolidatedMoE.from_plan(plan, non_expert_from="x")
    with pytest.raises(TypeError, match="from_plan"):
        ConsolidatedMoE()
    with pytest.raises(TypeError, match="plan must be a ConsolidationPlan, got dict"):
        ConsolidatedMoE.from_plan(dict(tenants))


def test_storage_bytes_counts_views_once():
    t = torch.zeros(10)
    assert storage_bytes([t, t[2:5], t.view(2, 5)]) == 40
    assert storage_bytes([t, torch.zeros(3)]) == 52
