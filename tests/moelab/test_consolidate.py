"""Consolidation plans: ranking, budgets, owner policies, accounting and bad input."""

from __future__ import annotations

import copy
import dataclasses
import itertools

import plotly.graph_objects as go
import pytest
import torch

from moelab import load_moe
from moelab.consolidation import (
    MEAN_OWNER,
    ConsolidationPlan,
    MemoryAccounting,
    available_owner_policies,
    get_owner_policy,
    plan_consolidation,
    resolve_budget,
)
from moelab.errors import IncompatibleModelsError
from moelab.families import ExpertSlot, get_family
from moelab.viz import plan_heatmap


def make_tenants(tiny_model, family: str, n: int, *, scale: float = 0.05, identical=()):
    """N fine-tune stand-ins: copies of one tiny base, every parameter perturbed by its own seed.

    Experts of the slots in ``identical`` are reset to the base's, so they match across tenants.
    """
    base = tiny_model(family, 0)
    adapter = get_family(family)
    tenants = {}
    for i in range(n):
        model = copy.deepcopy(base)
        generator = torch.Generator().manual_seed(100 + i)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=generator) * scale)
        for slot in identical:
            adapter.set_expert(model, slot, adapter.get_expert(base, slot))
        tenants[f"t{i}"] = model
    return base, tenants


def flat_expert(model, slot):
    family = load_moe(model).family
    return torch.cat([t.reshape(-1).double() for t in family.get_expert(model, slot).values()])


@pytest.mark.parametrize("family", ["mixtral", "switch_transformers"])
def test_ranking_is_the_sum_of_pairwise_l2(tiny_model, family):
    _, tenants = make_tenants(tiny_model, family, 3)
    plan = plan_consolidation(tenants, 0, unit="slots")
    table = plan.table()
    assert list(table["rank"]) == list(range(len(table)))
    assert table["distance"].is_monotonic_increasing
    models = list(tenants.values())
    for row in table.itertuples():
        slot = ExpertSlot(row.layer, row.expert)
        expected = sum(
            float((flat_expert(a, slot) - flat_expert(b, slot)).norm())
            for a, b in itertools.combinations(models, 2)
        )
        assert row.distance == pytest.approx(expected, rel=1e-9)
    assert not table["shared"].any()


def test_identical_slots_rank_first_with_zero_distance(tiny_model):
    same = [ExpertSlot(1, 2), ExpertSlot(0, 3)]
    _, tenants = make_tenants(tiny_model, "mixtral", 2, identical=same)
    plan = plan_consolidation(tenants, 2, unit="slots")
    assert set(plan.shared_slots) == set(same)
    assert [d.distance for d in plan.decisions if d.shared] == [0.0, 0.0]


def test_budget_units_resolve_to_the_fewest_shared_slots():
    acc = MemoryAccounting(("a", "b", "c"), (100, 100, 100), slot_bytes=10, n_slots=8, n_shared=0)
    # Naive expert bytes 3 * 8 * 10 = 240; each shared slot saves 2 * 10 = 20.
    assert resolve_budget(1.0, "fraction", acc) == 0
    assert resolve_budget(0.5, "fraction", acc) == 6  # 240 - 120 = 120 -> 6 slots
    assert resolve_budget(1 / 3, "fraction", acc) == 8
    assert resolve_budget(540, "bytes", acc) == 0  # 300 + 240
    assert resolve_budget(539, "bytes", acc) == 1
    assert resolve_budget(380, "bytes", acc) == 8  # minimum: 300 + 8 * 10
    assert resolve_budget(5, "slots", acc) == 5


def test_budget_below_minimum_names_the_minimum():
    acc = MemoryAccounting(("a", "b"), (100, 100), slot_bytes=10, n_slots=8, n_shared=0)
    with pytest.raises(ValueError, match=r"minimum is 280 bytes \(2 non-expert sets = 200"):
        resolve_budget(150, "bytes", acc)
    with pytest.raises(ValueError, match=r"279 bytes is too small: the minimum is 280 bytes"):
        resolve_budget(279, "bytes", acc)
    with pytest.raises(ValueError, match=r"minimum is 1/N = 0.5"):
        resolve_budget(0.4, "fraction", acc)
    with pytest.raises(ValueError, match=r"integer in \[0, 8\]"):
        resolve_budget(9, "slots", acc)
    with pytest.raises(TypeError, match="budget must be a real number, got str '80GB'"):
        resolve_budget("80GB", "bytes", acc)
    with pytest.raises(TypeError, match="budget must be a real number, got bool True"):
        resolve_budget(True, "slots", acc)
    with pytest.raises(ValueError, match="known units: fraction, bytes, slots"):
        resolve_budget(1, "gigabytes", acc)


def test_plan_budget_too_small_raises_with_minimum(tiny_model):
    _, tenants = make_tenants(tiny_model, "mixtral", 2)
    plan = plan_consolidation(tenants, 1.0)
    minimum = sum(plan.memory.non_expert_bytes) + plan.memory.n_slots * plan.memory.slot_bytes
    with pytest.raises(ValueError, match=f"minimum is {minimum:,} bytes"):
        plan_consolidation(tenants, sum(plan.memory.non_expert_bytes) - 1, unit="bytes")


@pytest.mark.parametrize("n", [2, 3, 4])
def test_memory_accounting(tiny_model, n):
    _, tenants = make_tenants(tiny_model, "mixtral", n)
    models = [load_moe(m) for m in tenants.values()]
    none = plan_consolidation(tenants, 1.0)
    every = plan_consolidation(tenants, 1 / n)
    slot_bytes = 3 * 16 * 24 * 4  # w1, w2, w3 of 16 x 24 floats
    assert none.memory.slot_bytes == slot_bytes
    assert none.memory.non_expert_bytes == tuple(m.non_expert_bytes() for m in models)
    assert (
        none.memory.total_bytes
        == none.memory.separate_bytes
        == sum(m.non_expert_bytes() + m.expert_bytes() for m in models)
    )
    assert every.n_shared == every.memory.n_slots == 8
    assert every.memory.total_bytes == sum(m.non_expert_bytes() for m in models) + 8 * slot_bytes
    assert every.memory.private_expert_bytes == 0
    assert sum(d.stored_bytes for d in every.decisions) == every.memory.expert_bytes


def test_round_robin_owners_cycle_in_rank_order(tiny_model):
    _, tenants = make_tenants(tiny_model, "mixtral", 3)
    plan = plan_consolidation(tenants, 7, unit="slots", owner="round_robin")
    shared = plan.table().query("shared")
    assert list(shared["owner"]) == ["t0", "t1", "t2", "t0", "t1", "t2", "t0"]


def test_medoid_owner_is_the_middle_expert(tiny_model):
    base = tiny_model("mixtral", 0)
    family = get_family("mixtral")
    slot = ExpertSlot(0, 1)
    direction = {
        k: torch.randn(v.shape, generator=torch.Generator().manual_seed(5))
        for k, v in family.get_expert(base, slot).items()
    }
    tenants = {}
    for name, step in (("far", 3.0), ("low", 0.0), ("mid", 1.0)):
        model = copy.deepcopy(base)
        family.set_expert(
            model,
            slot,
            {k: v + step * direction[k] for k, v in family.get_expert(base, slot).items()},
        )
        tenants[name] = model
    plan = plan_consolidation(tenants, 8, unit="slots", owner="medoid")
    # Distances along one line: low-mid 1, mid-far 2, low-far 3 -> mid is closest to the others.
    assert plan.decision(slot).owner == "mid"
    mean_plan = plan_consolidation(tenants, 8, unit="slots", owner="mean")
    assert {d.owner for d in mean_plan.decisions} == {MEAN_OWNER}


def test_unknown_owner_policy_lists_the_known_ones(tiny_model):
    _, tenants = make_tenants(tiny_model, "mixtral", 2)
    with pytest.raises(
        ValueError, match="unknown owner policy 'oldest'; known policies: mean, medoid, round_robin"
    ):
        plan_consolidation(tenants, 0.5, owner="oldest")
    assert available_owner_policies() == ("mean", "medoid", "round_robin")
    assert get_owner_policy("mean").name == "mean"


def test_tenants_of_different_shapes_are_rejected(tiny_model):
    a = tiny_model("mixtral", 0)
    with pytest.raises(IncompatibleModelsError, match="matrix 'w1' is"):
        plan_consolidation({"a": a, "b": tiny_model("mixtral", 1, intermediate_size=32)}, 1.0)
    with pytest.raises(IncompatibleModelsError, match="'model.embed_tokens.weight'"):
        plan_consolidation({"a": a, "b": tiny_model("mixtral", 1, vocab_size=80)}, 1.0)
    with pytest.raises(IncompatibleModelsError, match="different families"):
        plan_consolidation({"a": a, "b": tiny_model("olmoe", 1)}, 1.0)
    with pytest.raises(ValueError, match="consolidation needs at least 2 models"):
        plan_consolidation({"a": a}, 1.0)


def test_plan_is_frozen_and_summarises(tiny_model):
    _, tenants = make_tenants(tiny_model, "switch_transformers", 2)
    plan = plan_consolidation(tenants, 0.75)
    assert isinstance(plan, ConsolidationPlan)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.budget = 1.0
    # Switch: 4 MoE layers x 4 experts; 0.75 of 2 x 16 slots -> 8 shared.
    assert plan.n_shared == 8
    text = plan.summary()
    assert "8 of 16 expert slots shared" in text
    assert f"total {plan.memory.total_bytes:,} B vs {plan.memory.separate_bytes:,} B" in text
    grid = plan.grid("shared")
    assert grid.shape == (4, 4) and int(grid.to_numpy().sum()) == 8
    assert list(grid.index) == [
        "encoder.block.1",
        "encoder.block.3",
        "decoder.block.1",
        "decoder.block.3",
    ]
    fig = plan_heatmap(plan)
    assert isinstance(fig, go.Figure) and len(fig.data[0].z) == 4


def test_with_budget_equals_a_fresh_plan(tiny_model):
    _, tenants = make_tenants(tiny_model, "mixtral", 3)
    plan = plan_consolidation(tenants, 1.0)
    for budget, unit, owner in (
        (0.5, "fraction", None),
        (3, "slots", "medoid"),
        (1 / 3, "fraction", "mean"),
    ):
        fresh = plan_consolidation(tenants, budget, owner=owner or "round_robin", unit=unit)
        again = plan.with_budget(budget, unit, owner=owner)
        assert again.decisions == fresh.decisions
        assert again.memory == fresh.memory and again.owner_policy == fresh.owner_policy
    assert plan.n_shared == 0  # the original is unchanged
    with pytest.raises(ValueError, match="minimum is 1/N"):
        plan.with_budget(0.1)
