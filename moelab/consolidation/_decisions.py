"""Ranking the expert slots by distance and deciding what each one becomes in a plan.

A slot's distance is its metric between the tenants' experts, oriented lower = closer and summed
over the pairs of tenants; the closest slots are shared (one copy, an owner chosen by the owner
policy) while the memory budget lasts, the rest keep one copy per tenant on their tier.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labcore.checks import check_type
from moelab.consolidation._memory import TIERS, BudgetUnit, MemoryAccounting, Tier
from moelab.consolidation._owners import OwnerPolicy
from moelab.consolidation._tiers import settle_cache_rows
from moelab.families import ExpertSlot, MoEFamily

__all__ = ["SlotDecision", "decide", "distance_matrices"]


# ============================================================================= value types
@dataclass(frozen=True)
class SlotDecision:
    """What the plan does with one expert slot.

    Parameters
    ----------
    slot : ExpertSlot
        The slot.
    distance : float
        Its dissimilarity across the tenants (lower = more similar): the metric oriented as a
        distance and summed over the pairs of tenants.
    rank : int
        Position in the ranking, 0 = most similar.
    shared : bool
        Stored once for all tenants.
    owner : str
        For a shared slot, the tenant whose expert is kept, or :data:`MEAN_OWNER`; ``""`` for
        a private slot (each tenant keeps its own).
    stored_bytes : int
        Bytes the slot takes in the pool: one expert if shared, one per tenant otherwise.
    tier : {"device", "host"}, default "device"
        Where its copies live; a shared slot is always on the device.

    Raises
    ------
    ValueError
        If the fields are inconsistent (an owner on a private slot, negative sizes).
    """

    slot: ExpertSlot
    distance: float
    rank: int
    shared: bool
    owner: str
    stored_bytes: int
    tier: Tier = "device"

    def __post_init__(self) -> None:
        check_type(self.slot, ExpertSlot, "SlotDecision.slot")
        if self.rank < 0 or self.stored_bytes < 0:
            raise ValueError(f"SlotDecision rank and stored_bytes must be >= 0 ({self.slot})")
        if self.tier not in TIERS or (self.shared and self.tier != "device"):
            raise ValueError(
                f"SlotDecision for {self.slot}: tier must be one of {TIERS} and 'device' for a "
                f"shared slot, got {self.tier!r}"
            )
        if self.shared != bool(self.owner):
            raise ValueError(
                f"SlotDecision for {self.slot}: a shared slot needs an owner and a private slot "
                f"none, got shared={self.shared}, owner={self.owner!r}"
            )

    def as_dict(self) -> dict[str, Any]:
        """One tidy row: layer, label, expert, distance, rank, shared, owner, stored_bytes, tier."""
        return {
            **self.slot.as_dict(),
            "distance": self.distance,
            "rank": self.rank,
            "shared": self.shared,
            "owner": self.owner,
            "stored_bytes": self.stored_bytes,
            "tier": self.tier,
        }


def distance_matrices(
    table: pd.DataFrame, tenants: Sequence[str], metric: str
) -> dict[tuple[int, int], np.ndarray]:
    """Per slot, the (N, N) matrix of pairwise distances (metric oriented lower = closer)."""
    from moelab.similarity import get_metric

    spec = get_metric(metric)
    index = {name: i for i, name in enumerate(tenants)}
    n = len(tenants)
    matrices: dict[tuple[int, int], np.ndarray] = {}
    for row in table.itertuples(index=False):
        key = (int(row.layer), int(row.expert))
        mat = matrices.setdefault(key, np.zeros((n, n)))
        i, j = index[row.model_a], index[row.model_b]
        mat[i, j] = mat[j, i] = float(spec.as_distance(row.value))
    return matrices


def _decide(
    slots: Sequence[ExpertSlot],
    tenants: tuple[str, ...],
    matrices: Mapping[tuple[int, int], np.ndarray],
    memory: MemoryAccounting,
    policy: OwnerPolicy,
) -> tuple[SlotDecision, ...]:
    """Rank slots by summed distance, share the first ``memory.n_shared``, pick their owners."""
    # Sum over pairs = the upper triangle of the symmetric matrix.
    n = len(tenants)
    matrices = {
        (s.layer, s.expert): matrices.get((s.layer, s.expert), np.zeros((n, n))) for s in slots
    }
    distance = {key: float(np.triu(mat, 1).sum()) for key, mat in matrices.items()}
    # NaN (a metric undefined on a slot, e.g. CKA of constant outputs) ranks last: never shared
    # before a slot known to be close. Ties go to the earlier layer, then expert.
    ranked = sorted(
        slots, key=lambda s: (_sort_key(distance[(s.layer, s.expert)]), s.layer, s.expert)
    )
    decisions = []
    for rank, slot in enumerate(ranked):
        key = (slot.layer, slot.expert)
        shared = rank < memory.n_shared
        decisions.append(
            SlotDecision(
                slot=slot,
                distance=distance[key],
                rank=rank,
                shared=shared,
                owner=policy.choose(rank, matrices[key], tenants) if shared else "",
                stored_bytes=memory.slot_bytes * (1 if shared else len(tenants)),
                tier="device" if shared else memory.private_tier,
            )
        )
    decisions.sort(key=lambda d: (d.slot.layer, d.slot.expert))
    return tuple(decisions)


def decide(
    slots: Sequence[ExpertSlot],
    tenants: tuple[str, ...],
    matrices: Mapping[tuple[int, int], np.ndarray],
    memory: MemoryAccounting,
    policy: OwnerPolicy,
    budget_of: tuple[float, BudgetUnit, MoEFamily, Any],
) -> tuple[tuple[SlotDecision, ...], MemoryAccounting]:
    """Rank the slots, share the closest under the placed memory, settle the cache rows.

    Parameters
    ----------
    slots : sequence of ExpertSlot
        Every slot of the family, layer-major.
    tenants : tuple of str
        Tenant names, in plan order.
    matrices : dict
        ``{(layer, expert): (N, N) distances}`` (:func:`distance_matrices`).
    memory : MemoryAccounting
        From :func:`~moelab.consolidation._tiers.place`.
    policy : OwnerPolicy
        Chooses the owner of each shared slot.
    budget_of : tuple
        ``(budget, unit, family, config)``, to keep cache rows only in layers with host-tier
        slots (:func:`~moelab.consolidation._tiers.settle_cache_rows`).

    Returns
    -------
    decisions : tuple of SlotDecision
        In layer-major order.
    memory : MemoryAccounting
        ``memory`` with ``n_shared`` and ``cache_rows`` settled.
    """
    decisions = _decide(slots, tenants, matrices, memory, policy)
    budget, unit, family, config = budget_of
    ranked = [d.slot.layer for d in sorted(decisions, key=lambda d: d.rank)]
    settled = settle_cache_rows(memory, ranked, budget, unit, family.experts_per_token(config))
    if settled.n_shared != memory.n_shared:
        decisions = _decide(slots, tenants, matrices, settled, policy)
    return decisions, settled


def _sort_key(value: float) -> float:
    return math.inf if math.isnan(value) else value
