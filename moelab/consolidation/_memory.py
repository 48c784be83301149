"""Memory accounting of a consolidated model, and budgets turned into a number of shared slots."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Literal, get_args

import pandas as pd

__all__ = [
    "BUDGET_UNITS",
    "BudgetUnit",
    "MemoryAccounting",
    "resolve_budget",
]

BudgetUnit = Literal["fraction", "bytes", "slots"]
"""How a budget is given.

``"fraction"``: the expert bytes allowed, as a fraction of the N separate models' expert bytes
(from ``1/N``, every slot shared, to 1, nothing shared). ``"bytes"``: the total bytes allowed
for everything (N non-expert sets plus the expert pool). ``"slots"``: the number of slots to
share (0 to the number of slots).
"""
BUDGET_UNITS: tuple[str, ...] = get_args(BudgetUnit)


@dataclass(frozen=True)
class MemoryAccounting:
    """Parameter bytes of a consolidated model against N separate models.

    Parameters
    ----------
    tenants : tuple of str
        Tenant names.
    non_expert_bytes : tuple of int
        Bytes of each tenant's non-expert set (embeddings, attention, norms, router, lm_head,
        and any dense MLP), tied weights once.
    slot_bytes : int
        Bytes of one expert (all its matrices).
    n_slots : int
        Expert slots per model.
    n_shared : int
        Slots stored once for all tenants.

    Raises
    ------
    ValueError
        On fewer than two tenants, mismatched lengths, or counts out of range.
    """

    tenants: tuple[str, ...]
    non_expert_bytes: tuple[int, ...]
    slot_bytes: int
    n_slots: int
    n_shared: int

    def __post_init__(self) -> None:
        if len(self.tenants) < 2 or len(self.tenants) != len(self.non_expert_bytes):
            raise ValueError(
                f"MemoryAccounting needs one non-expert size per tenant and at least two "
                f"tenants, got {self.tenants} and {self.non_expert_bytes}"
            )
        if not 0 <= self.n_shared <= self.n_slots or self.slot_bytes <= 0:
            raise ValueError(
                f"MemoryAccounting: n_shared must lie in [0, n_slots={self.n_slots}] and "
                f"slot_bytes be positive, got {self.n_shared} and {self.slot_bytes}"
            )

    @property
    def n_tenants(self) -> int:
        """Number of tenants N."""
        return len(self.tenants)

    @property
    def shared_expert_bytes(self) -> int:
        """Bytes of the shared slots (one expert each)."""
        return self.n_shared * self.slot_bytes

    @property
    def private_expert_bytes(self) -> int:
        """Bytes of the private slots (one expert per tenant each)."""
        return (self.n_slots - self.n_shared) * self.n_tenants * self.slot_bytes

    @property
    def expert_bytes(self) -> int:
        """Bytes of the whole expert pool."""
        return self.shared_expert_bytes + self.private_expert_bytes

    @property
    def total_bytes(self) -> int:
        """Every non-expert set plus the expert pool."""
        return sum(self.non_expert_bytes) + self.expert_bytes

    @property
    def separate_bytes(self) -> int:
        """N separate models: each tenant's non-expert set plus all of its experts."""
        return sum(self.non_expert_bytes) + self.n_tenants * self.n_slots * self.slot_bytes

    @property
    def naive_expert_bytes(self) -> int:
        """Expert bytes of N separate models (what a ``"fraction"`` budget is a fraction of)."""
        return self.n_tenants * self.n_slots * self.slot_bytes

    @property
    def saving(self) -> float:
        """Share of the N separate models' bytes that consolidation saves."""
        return 1.0 - self.total_bytes / self.separate_bytes

    def table(self) -> pd.DataFrame:
        """Memory as a tidy table.

        Returns
        -------
        pandas.DataFrame
            One row per component (each tenant's non-expert set, the shared and the private
            experts), columns ``component``, ``tenant``, ``bytes``, plus a ``"total"`` row and a
            ``"separate models"`` row for comparison.
        """
        rows = [
            {"component": "non-expert set", "tenant": t, "bytes": b}
            for t, b in zip(self.tenants, self.non_expert_bytes)
        ]
        rows += [
            {"component": "shared experts", "tenant": "all", "bytes": self.shared_expert_bytes},
            {"component": "private experts", "tenant": "all", "bytes": self.private_expert_bytes},
            {"component": "total", "tenant": "all", "bytes": self.total_bytes},
            {"component": "separate models", "tenant": "all", "bytes": self.separate_bytes},
        ]
        return pd.DataFrame(rows, columns=["component", "tenant", "bytes"])


def _slot_cost(accounting: MemoryAccounting) -> tuple[int, int, int]:
    """(non-expert total, bytes with nothing shared, bytes saved per shared slot)."""
    non_expert = sum(accounting.non_expert_bytes)
    return non_expert, accounting.separate_bytes, (accounting.n_tenants - 1) * accounting.slot_bytes


def resolve_budget(budget: float, unit: BudgetUnit, accounting: MemoryAccounting) -> int:
    """Smallest number of shared slots that fits a budget.

    Sharing fewer slots keeps more of each tenant's own experts, so the plan shares as few as
    the budget allows.

    Parameters
    ----------
    budget : float or int
        The budget, in ``unit``.
    unit : {"fraction", "bytes", "slots"}
        See :data:`BudgetUnit`.
    accounting : MemoryAccounting
        Sizes of the tenants (its ``n_shared`` is ignored).

    Returns
    -------
    int
        Number of slots to share, in ``[0, n_slots]``.

    Raises
    ------
    ValueError
        Unknown unit; a budget below the smallest configuration (every slot shared: the
        message states that minimum); a fraction above 1 or a slot count out of range.

    Examples
    --------
    >>> acc = MemoryAccounting(("a", "b"), (100, 100), slot_bytes=10, n_slots=8, n_shared=0)
    >>> resolve_budget(0.75, "fraction", acc), resolve_budget(300, "bytes", acc)
    (4, 6)
    """
    if isinstance(budget, bool) or not isinstance(budget, numbers.Real):
        raise TypeError(f"budget must be a real number, got {type(budget).__name__} {budget!r}")
    n_slots, n = accounting.n_slots, accounting.n_tenants
    non_expert, unshared, per_slot = _slot_cost(accounting)
    minimum_bytes = non_expert + n_slots * accounting.slot_bytes
    if unit == "slots":
        if not float(budget).is_integer() or not 0 <= budget <= n_slots:
            raise ValueError(
                f"a 'slots' budget is the number of slots to share, an integer in [0, {n_slots}]; "
                f"got {budget!r}"
            )
        return int(budget)
    if unit == "fraction":
        low = 1.0 / n
        if not low - 1e-12 <= budget <= 1.0:
            raise ValueError(
                f"a 'fraction' budget of {budget!r} is outside [{low:.4g}, 1]: the minimum is 1/N = "
                f"{low:.4g} of the {n} models' expert bytes (every slot shared, one non-expert set "
                f"per tenant); pass unit='bytes' for a budget in bytes"
            )
        allowed = budget * accounting.naive_expert_bytes
        excess = accounting.naive_expert_bytes - allowed
    elif unit == "bytes":
        if budget < minimum_bytes:
            raise ValueError(
                f"a budget of {int(budget):,} bytes is too small: the minimum is "
                f"{minimum_bytes:,} bytes ({n} non-expert sets = {non_expert:,} bytes, plus one "
                f"copy of each of the {n_slots} expert slots = "
                f"{n_slots * accounting.slot_bytes:,} bytes)"
            )
        excess = unshared - budget
    else:
        raise ValueError(f"unknown budget unit {unit!r}; known units: {', '.join(BUDGET_UNITS)}")
    if excess <= 0:
        return 0
    # A tiny tolerance keeps a budget computed as an exact multiple from rounding up a slot.
    return min(n_slots, math.ceil(excess / per_slot - 1e-9))
