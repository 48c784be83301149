"""Memory accounting of a consolidated model, and budgets turned into a number of shared slots."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Literal, get_args

import pandas as pd

__all__ = [
    "BUDGET_UNITS",
    "TIERS",
    "BudgetUnit",
    "MemoryAccounting",
    "Tier",
    "fill_budget",
    "resolve_budget",
]

BudgetUnit = Literal["fraction", "bytes", "slots"]
"""How a budget is given.

``"fraction"``: the expert bytes allowed, as a fraction of the N separate models' expert bytes
(from ``1/N``, every slot shared, to 1, nothing shared; placement ``"resident"`` only).
``"bytes"``: the bytes allowed on the device: the non-expert sets there (N, or one live set with
``non_expert="host"``), the device's expert copies and any cache rows; what stays in host memory
is not counted. ``"slots"``: the number of slots to share (0 to the number of slots).
"""
BUDGET_UNITS: tuple[str, ...] = get_args(BudgetUnit)


Tier = Literal["device", "host"]
"""Where a stored copy lives: ``"device"`` (the GPU, or wherever the model runs) or ``"host"``
(CPU memory, pinned when CUDA is available, copied to the device on use)."""
TIERS: tuple[str, ...] = get_args(Tier)


@dataclass(frozen=True)
class MemoryAccounting:
    """Parameter bytes of a consolidated model, per tier, against N separate models.

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
        Slots stored once for all tenants (always on the device).
    non_expert_tier : {"device", "host"}, default "device"
        ``"device"``: every tenant's non-expert set resident on the device (reconfiguration
        re-points parameters). ``"host"``: every set staged in host memory and one live set on
        the device, copied into on a tenant switch (the paper's swap).
    private_tier : {"device", "host"}, default "device"
        Where the per-tenant copies of the unshared slots live.
    cache_rows : int, default 0
        Device expert rows (over all layers) into which host-tier experts are copied on use.

    Raises
    ------
    ValueError
        On fewer than two tenants, mismatched lengths, counts out of range or unknown tiers.
    """

    tenants: tuple[str, ...]
    non_expert_bytes: tuple[int, ...]
    slot_bytes: int
    n_slots: int
    n_shared: int
    non_expert_tier: Tier = "device"
    private_tier: Tier = "device"
    cache_rows: int = 0

    def __post_init__(self) -> None:
        if not self.tenants or len(self.tenants) != len(self.non_expert_bytes):
            raise ValueError(
                f"MemoryAccounting needs one non-expert size per tenant and at least one "
                f"tenant, got {self.tenants} and {self.non_expert_bytes}"
            )
        if not 0 <= self.n_shared <= self.n_slots or self.slot_bytes <= 0 or self.cache_rows < 0:
            raise ValueError(
                f"MemoryAccounting: n_shared must lie in [0, n_slots={self.n_slots}], slot_bytes "
                f"be positive and cache_rows >= 0, got {self.n_shared}, {self.slot_bytes} and "
                f"{self.cache_rows}"
            )
        for what, tier in (
            ("non_expert_tier", self.non_expert_tier),
            ("private_tier", self.private_tier),
        ):
            if tier not in TIERS:
                raise ValueError(f"MemoryAccounting.{what} must be one of {TIERS}, got {tier!r}")

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
        """Bytes of the private slots (one expert per tenant each), wherever they live."""
        return (self.n_slots - self.n_shared) * self.n_tenants * self.slot_bytes

    @property
    def cache_bytes(self) -> int:
        """Bytes of the device rows that host-tier experts are copied into."""
        return self.cache_rows * self.slot_bytes

    @property
    def expert_bytes(self) -> int:
        """Bytes of every stored expert copy (shared, private, cache rows), both tiers."""
        return self.shared_expert_bytes + self.private_expert_bytes + self.cache_bytes

    @property
    def device_non_expert_bytes(self) -> int:
        """Non-expert bytes on the device: every set, or one live set (the largest)."""
        if self.non_expert_tier == "device":
            return sum(self.non_expert_bytes)
        return max(self.non_expert_bytes)

    @property
    def device_bytes(self) -> int:
        """Everything on the device: non-expert sets, shared slots, device-tier private slots
        and cache rows.
        """
        private = self.private_expert_bytes if self.private_tier == "device" else 0
        return self.device_non_expert_bytes + self.shared_expert_bytes + private + self.cache_bytes

    @property
    def host_bytes(self) -> int:
        """Everything in host memory: staged non-expert sets and host-tier private slots."""
        staged = sum(self.non_expert_bytes) if self.non_expert_tier == "host" else 0
        private = self.private_expert_bytes if self.private_tier == "host" else 0
        return staged + private

    @property
    def total_bytes(self) -> int:
        """Device plus host bytes."""
        return self.device_bytes + self.host_bytes

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
        """Share of the N separate models' bytes that consolidation saves (both tiers)."""
        return 1.0 - self.total_bytes / self.separate_bytes

    def table(self) -> pd.DataFrame:
        """Memory as a tidy table.

        Returns
        -------
        pandas.DataFrame
            Columns ``component``, ``tenant``, ``location``, ``bytes``: the non-expert sets,
            the shared and the private experts, the cache rows, then ``"device"``, ``"host"``,
            ``"total"`` and ``"separate models"`` rows for comparison.
        """
        rows = []
        if self.non_expert_tier == "host":
            rows.append(("live non-expert set", "active", "device", max(self.non_expert_bytes)))
        name = "staged non-expert set" if self.non_expert_tier == "host" else "non-expert set"
        rows += [
            (name, t, self.non_expert_tier, b) for t, b in zip(self.tenants, self.non_expert_bytes)
        ]
        rows += [
            ("shared experts", "all", "device", self.shared_expert_bytes),
            ("private experts", "all", self.private_tier, self.private_expert_bytes),
        ]
        if self.cache_rows:
            rows.append(("expert cache rows", "all", "device", self.cache_bytes))
        rows += [
            ("device", "all", "device", self.device_bytes),
            ("host", "all", "host", self.host_bytes),
            ("total", "all", "both", self.total_bytes),
            ("separate models", "all", "both", self.separate_bytes),
        ]
        return pd.DataFrame(rows, columns=["component", "tenant", "location", "bytes"])


def _slot_cost(accounting: MemoryAccounting) -> tuple[int, int, int]:
    """(device non-expert bytes, device bytes with nothing shared, bytes saved per shared slot)."""
    non_expert = accounting.device_non_expert_bytes
    unshared = non_expert + accounting.naive_expert_bytes
    return non_expert, unshared, (accounting.n_tenants - 1) * accounting.slot_bytes


def _check_budget_number(budget: object) -> None:
    if isinstance(budget, bool) or not isinstance(budget, numbers.Real):
        raise TypeError(f"budget must be a real number, got {type(budget).__name__} {budget!r}")


def _slots_budget(budget: float, n_slots: int) -> int:
    if not float(budget).is_integer() or not 0 <= budget <= n_slots:
        raise ValueError(
            f"a 'slots' budget is the number of slots to share, an integer in [0, {n_slots}]; "
            f"got {budget!r}"
        )
    return int(budget)


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
    _check_budget_number(budget)
    n_slots, n = accounting.n_slots, accounting.n_tenants
    non_expert, unshared, per_slot = _slot_cost(accounting)
    minimum_bytes = non_expert + n_slots * accounting.slot_bytes
    if unit == "slots":
        return _slots_budget(budget, n_slots)
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
                f"{minimum_bytes:,} bytes ({_sets_text(accounting)} = {non_expert:,} bytes, plus "
                f"one copy of each of the {n_slots} expert slots = "
                f"{n_slots * accounting.slot_bytes:,} bytes); with placement='offload' the "
                f"slots that do not fit stay in host memory"
            )
        excess = unshared - budget
    else:
        raise ValueError(f"unknown budget unit {unit!r}; known units: {', '.join(BUDGET_UNITS)}")
    if excess <= 0:
        return 0
    # A tiny tolerance keeps a budget computed as an exact multiple from rounding up a slot.
    return min(n_slots, math.ceil(excess / per_slot - 1e-9))


def _sets_text(accounting: MemoryAccounting) -> str:
    if accounting.non_expert_tier == "device":
        return f"{accounting.n_tenants} non-expert sets"
    return "one live non-expert set"


def fill_budget(
    budget: float, unit: BudgetUnit, accounting: MemoryAccounting, cache_rows: int
) -> tuple[int, int]:
    """Largest number of shared slots that fits a device budget, the rest kept on the host.

    The serving paper's placement: the non-expert layers go on the device first, then one copy
    of each slot, most similar first, while the budget lasts; every other slot stays in host
    memory per tenant and is copied into one of ``cache_rows`` device rows when routed to.

    Parameters
    ----------
    budget : float or int
        Device bytes (``unit="bytes"``) or the number of slots to share (``"slots"``).
    unit : {"bytes", "slots"}
        See :data:`BudgetUnit`; a fraction of the experts means nothing here.
    accounting : MemoryAccounting
        Sizes of the tenants and their tiers (its ``n_shared`` is ignored).
    cache_rows : int
        Device rows the host-tier slots need (one token's experts in every layer).

    Returns
    -------
    n_shared : int
        Slots to share.
    cache_rows : int
        Device rows kept for host-tier slots: ``cache_rows``, or 0 once every slot is shared.

    Raises
    ------
    ValueError
        A budget below the non-expert bytes plus the cache rows (the message states that
        minimum), a slot count out of range, or unit ``"fraction"``.

    Examples
    --------
    >>> acc = MemoryAccounting(("a", "b"), (100, 100), slot_bytes=10, n_slots=8, n_shared=0)
    >>> fill_budget(250, "bytes", acc, cache_rows=2), fill_budget(300, "bytes", acc, 2)
    ((3, 2), (8, 0))
    """
    _check_budget_number(budget)
    n_slots, slot = accounting.n_slots, accounting.slot_bytes
    non_expert = accounting.device_non_expert_bytes
    if unit == "slots":
        n_shared = _slots_budget(budget, n_slots)
        return n_shared, (cache_rows if n_shared < n_slots else 0)
    if unit != "bytes":
        raise ValueError(
            f"placement 'offload' takes a device budget in bytes (unit='bytes') or a number of "
            f"shared slots (unit='slots'), got unit={unit!r}"
        )
    if budget >= non_expert + n_slots * slot:
        return n_slots, 0
    minimum = non_expert + cache_rows * slot
    if budget < minimum:
        raise ValueError(
            f"a device budget of {int(budget):,} bytes is too small: the minimum is {minimum:,} "
            f"bytes ({_sets_text(accounting)} = {non_expert:,} bytes, plus {cache_rows} device "
            f"rows of {slot:,} bytes for the experts one token routes to in every layer)"
        )
    return min(n_slots - 1, (int(budget) - minimum) // slot), cache_rows
