"""Which expert slots several fine-tuned MoE models should share, under a memory budget.

N fine-tunes of one base MoE model keep the base's expert slots. Serving them together, each
tenant needs its own non-expert set (embeddings, attention, norms, router, lm_head: what the
fine-tune changed most), but many experts barely moved: a slot whose experts are close across
the tenants can be stored once and used by all of them. :func:`plan_consolidation` ranks the
slots by a similarity metric of :mod:`moelab.similarity` (summed over the pairs of tenants when
N > 2, as the serving paper does), then shares the most similar slots until the consolidated
model fits the budget. The result is a frozen, inspectable :class:`ConsolidationPlan`;
:class:`moelab.reconfigure.ConsolidatedMoE` builds the model it describes and
:func:`moelab.viz.plan_heatmap` draws it.

Owner policies (``_owners``: a registry; see :func:`available_owner_policies`)
    ``"round_robin"`` (the paper's code), ``"medoid"``, ``"mean"``; OwnerPolicy,
    OwnerPolicyName, MEAN_OWNER, get_owner_policy, register_owner_policy,
    available_owner_policies
Memory accounting, tiers and budgets (``_memory``)
    MemoryAccounting (device and host bytes), Tier, TIERS, resolve_budget (fewest shared
    slots that fit), fill_budget (most shared slots that fit), BudgetUnit, BUDGET_UNITS
Placement policies (``_tiers``: a registry; see :func:`available_placements`)
    ``"resident"`` (every copy on the device), ``"offload"`` (the paper's: unshared slots in
    host memory, copied in on use); PlacementPolicy, PlacementName, PLACEMENTS, get_placement
Tenant checks (``_tenants``)
    check_same_shapes, check_dtypes
Ranking and deciding slots (``_decisions``)
    SlotDecision (what one slot becomes: shared with an owner, or one copy per tenant, and
    its tier); the slots ranked by summed distance, the closest shared while the budget lasts
The plan (``_plan``)
    plan_consolidation, ConsolidationPlan

Examples
--------
>>> from moelab.consolidation import get_owner_policy
>>> get_owner_policy("round_robin").description
'owners taken in turn over the ranked shared slots'
>>> plan = plan_consolidation({"prose": a, "code": b}, 0.75)  # doctest: +SKIP
>>> print(plan.summary())                                     # doctest: +SKIP
"""

from __future__ import annotations

from moelab.consolidation._decisions import SlotDecision
from moelab.consolidation._memory import (
    BUDGET_UNITS,
    TIERS,
    BudgetUnit,
    MemoryAccounting,
    Tier,
    fill_budget,
    resolve_budget,
)
from moelab.consolidation._owners import (
    MEAN_OWNER,
    OwnerPolicy,
    OwnerPolicyName,
    available_owner_policies,
    get_owner_policy,
    register_owner_policy,
)
from moelab.consolidation._plan import ConsolidationPlan, plan_consolidation
from moelab.consolidation._tenants import check_dtypes, check_same_shapes
from moelab.consolidation._tiers import (
    PLACEMENTS,
    PlacementName,
    PlacementPolicy,
    available_placements,
    get_placement,
)

__all__ = [
    "BUDGET_UNITS",
    "MEAN_OWNER",
    "PLACEMENTS",
    "TIERS",
    "BudgetUnit",
    "ConsolidationPlan",
    "MemoryAccounting",
    "OwnerPolicy",
    "OwnerPolicyName",
    "PlacementName",
    "PlacementPolicy",
    "Tier",
    "SlotDecision",
    "available_owner_policies",
    "available_placements",
    "check_dtypes",
    "check_same_shapes",
    "fill_budget",
    "get_owner_policy",
    "get_placement",
    "plan_consolidation",
    "register_owner_policy",
    "resolve_budget",
]
