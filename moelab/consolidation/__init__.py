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
Memory accounting and budgets (``_memory``)
    MemoryAccounting, resolve_budget, BudgetUnit, BUDGET_UNITS
The plan (``_plan``)
    plan_consolidation, ConsolidationPlan, SlotDecision, check_same_shapes

Examples
--------
>>> from moelab.consolidation import get_owner_policy
>>> get_owner_policy("round_robin").description
'owners taken in turn over the ranked shared slots'
>>> plan = plan_consolidation({"prose": a, "code": b}, 0.75)  # doctest: +SKIP
>>> print(plan.summary())                                     # doctest: +SKIP
"""

from __future__ import annotations

from moelab.consolidation._memory import (
    BUDGET_UNITS,
    BudgetUnit,
    MemoryAccounting,
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
from moelab.consolidation._plan import (
    ConsolidationPlan,
    SlotDecision,
    check_same_shapes,
    plan_consolidation,
)

__all__ = [
    "BUDGET_UNITS",
    "MEAN_OWNER",
    "BudgetUnit",
    "ConsolidationPlan",
    "MemoryAccounting",
    "OwnerPolicy",
    "OwnerPolicyName",
    "SlotDecision",
    "available_owner_policies",
    "check_same_shapes",
    "get_owner_policy",
    "plan_consolidation",
    "register_owner_policy",
    "resolve_budget",
]
