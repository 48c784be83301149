"""Placement policies: how a device budget becomes shared slots, and where the rest lives.

``"resident"``
    Every expert copy stays on the device; the budget decides the *fewest* slots that must be
    shared to fit (each tenant keeps as many of its own experts as possible).
``"offload"`` (the serving paper's)
    The device takes the non-expert layers, then one copy of each slot, most similar first,
    while the budget lasts; every other slot stays per tenant in host memory (pinned when CUDA
    is available) and is copied into a small set of device rows when the router picks it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from labcore.checks import check_callable, check_name
from labcore.registry import Registry
from moelab.consolidation._memory import (
    BUDGET_UNITS,
    BudgetUnit,
    MemoryAccounting,
    Tier,
    fill_budget,
    resolve_budget,
)
from moelab.families import MoEFamily

__all__ = [
    "PLACEMENTS",
    "PlacementName",
    "PlacementPolicy",
    "available_placements",
    "check_layout",
    "get_placement",
    "place",
    "settle_cache_rows",
]

PlacementName = Literal["resident", "offload"]
PLACEMENTS: tuple[str, ...] = get_args(PlacementName)

#: ``(budget, unit, accounting, cache_rows) -> (n_shared, cache_rows kept)``
SharedSlots = Callable[[float, BudgetUnit, MemoryAccounting, int], tuple[int, int]]


@dataclass(frozen=True)
class PlacementPolicy:
    """A named way of placing expert copies under a device budget.

    Parameters
    ----------
    name : str
        Registry name.
    private_tier : {"device", "host"}
        Where the per-tenant copies of unshared slots live.
    shared_slots : callable
        ``(budget, unit, accounting, cache_rows) -> (n_shared, cache_rows)``.
    description : str, optional
        One line for tables and widgets.
    """

    name: str
    private_tier: Tier
    shared_slots: SharedSlots = field(repr=False)
    description: str = ""

    def __post_init__(self) -> None:
        check_name(self.name, "PlacementPolicy.name")
        check_callable(self.shared_slots, "PlacementPolicy.shared_slots")
        if self.private_tier not in ("device", "host"):
            raise ValueError(
                f"PlacementPolicy.private_tier must be 'device' or 'host', got {self.private_tier!r}"
            )


def _resident(
    budget: float, unit: BudgetUnit, accounting: MemoryAccounting, cache_rows: int
) -> tuple[int, int]:
    return resolve_budget(budget, unit, accounting), 0


_PLACEMENTS: Registry[PlacementPolicy] = Registry(
    "placement", plural="placements", sort=False, item_type=PlacementPolicy
)
_PLACEMENTS.add_named(
    PlacementPolicy(
        "resident", "device", _resident, "all copies on the device; fewest slots shared to fit"
    )
)
_PLACEMENTS.add_named(
    PlacementPolicy(
        "offload",
        "host",
        fill_budget,
        "most similar slots shared on the device while the budget lasts; the rest per tenant "
        "in host memory, copied in on use (the serving paper)",
    )
)

#: Public faces of the registry: names in registration order; lookup by name or policy.
available_placements = _PLACEMENTS.names
get_placement = _PLACEMENTS.resolve


def place(
    placement: PlacementPolicy,
    budget: float,
    unit: BudgetUnit,
    memory: MemoryAccounting,
    family: MoEFamily,
    config: Any,
) -> MemoryAccounting:
    """Apply a placement policy: how many slots are shared, and the tiers of the rest.

    Returns
    -------
    MemoryAccounting
        ``memory`` with ``n_shared``, ``private_tier`` and ``cache_rows`` set.
    """
    if unit not in BUDGET_UNITS:
        raise ValueError(f"unknown budget unit {unit!r}; known units: {', '.join(BUDGET_UNITS)}")
    # Host-tier experts are copied into device rows on use; a token needs its top-k experts
    # of every MoE layer on the device at once.
    rows = family.num_moe_layers(config) * family.experts_per_token(config)
    tiers = dataclasses.replace(memory, private_tier=placement.private_tier, cache_rows=0)
    n_shared, cache_rows = placement.shared_slots(budget, unit, tiers, rows)
    return dataclasses.replace(tiers, n_shared=n_shared, cache_rows=cache_rows)


def settle_cache_rows(
    memory: MemoryAccounting,
    ranked_layers: Sequence[int],
    budget: float,
    unit: BudgetUnit,
    experts_per_token: int,
) -> MemoryAccounting:
    """Keep cache rows only in layers with host-tier slots, and share the slots that frees.

    :func:`place` reserves one token's experts in every MoE layer before the slots are ranked.
    Once the ranking is known, a layer whose slots are all shared on the device needs no rows;
    with a byte budget the rows given back hold more shared slots, which can free more layers.
    The largest number of shared slots that fits is kept (rows counted for what it leaves on
    the host).

    Parameters
    ----------
    memory : MemoryAccounting
        From :func:`place`.
    ranked_layers : sequence of int
        The layer of every slot, in ranking order (the first ``n_shared`` are shared).
    budget : float
        The budget, in ``unit``.
    unit : {"bytes", "slots"}
        Its unit (with ``"slots"`` the number of shared slots is kept as given).
    experts_per_token : int
        Rows one layer needs: the experts one token is routed to.

    Returns
    -------
    MemoryAccounting
        With ``n_shared`` and ``cache_rows`` settled; unchanged without host-tier slots.
    """
    if memory.private_tier != "host" or memory.cache_rows == 0:
        return memory
    # rows[n]: rows needed when the first n ranked slots are shared (k per layer left on host).
    seen: set[int] = set()
    rows = [0] * (len(ranked_layers) + 1)
    for n in range(len(ranked_layers) - 1, -1, -1):
        seen.add(ranked_layers[n])
        rows[n] = experts_per_token * len(seen)
    n_shared = memory.n_shared
    if unit == "bytes":
        device = memory.device_non_expert_bytes
        fits = [n for n in range(len(rows)) if device + (n + rows[n]) * memory.slot_bytes <= budget]
        n_shared = max([n_shared, *fits])
    return dataclasses.replace(memory, n_shared=n_shared, cache_rows=rows[n_shared])


def check_layout(family: MoEFamily, memory: MemoryAccounting) -> None:
    """Refuse host-tier slots for a family whose experts are not fused.

    Host-tier experts are copied on use into cache rows of a layer's fused expert pool; a
    family that keeps one module per expert has no such pool.

    Raises
    ------
    ValueError
        If some slots would stay on the host of such a family.
    """
    on_host = memory.private_tier == "host" and memory.n_shared < memory.n_slots
    if on_host and family.expert_layout != "fused":
        raise ValueError(
            f"placement 'offload' would keep {memory.n_slots - memory.n_shared} slots in host "
            f"memory, copied on use into rows of a fused expert pool; family {family.name!r} "
            f"keeps one module per expert, so plan it with placement='resident' (or a device "
            f"budget that shares every slot)"
        )
