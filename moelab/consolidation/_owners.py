"""Owner policies: which expert a shared slot keeps (a registry of named policies).

``"round_robin"`` (the paper's code), ``"medoid"`` and ``"mean"`` are built in; see
:func:`available_owner_policies`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from labcore.checks import check_callable, check_name
from labcore.registry import Registry

__all__ = [
    "MEAN_OWNER",
    "OwnerPolicy",
    "OwnerPolicyName",
    "available_owner_policies",
    "get_owner_policy",
    "register_owner_policy",
]

OwnerPolicyName = Literal["round_robin", "medoid", "mean"]
"""Names of the built-in owner policies."""
#: ``owner`` of a shared slot whose stored expert is the average of the tenants' experts.
MEAN_OWNER = "mean"


@dataclass(frozen=True)
class OwnerPolicy:
    """How a shared slot picks the one expert every tenant will use.

    Parameters
    ----------
    name : str
        Registry name.
    choose : callable
        ``choose(rank, distances, tenants) -> str``: ``rank`` is the slot's position among the
        shared slots (0 = most similar), ``distances`` the ``(N, N)`` symmetric matrix of the
        tenants' pairwise distances in that slot (0 on the diagonal, lower = more similar),
        ``tenants`` the tenant names. Returns a tenant name, or :data:`MEAN_OWNER` to store
        the average of the tenants' experts.
    description : str
        One line for summaries.

    Raises
    ------
    ValueError
        If ``name`` is empty or ``choose`` is not callable.
    """

    name: str
    choose: Callable[[int, np.ndarray, tuple[str, ...]], str] = field(repr=False)
    description: str = ""

    def __post_init__(self) -> None:
        check_name(self.name, "OwnerPolicy.name")
        check_callable(self.choose, "OwnerPolicy.choose")


def _round_robin(rank: int, distances: np.ndarray, tenants: tuple[str, ...]) -> str:
    # Round-robin owner over the models, in the order of the ranked shared slots, as in the
    # Multi-MoE code: no tenant loses all of its experts to another.
    return tenants[rank % len(tenants)]


def _medoid(rank: int, distances: np.ndarray, tenants: tuple[str, ...]) -> str:
    # The tenant whose expert is closest to all the others (ties: the first tenant).
    return tenants[int(np.argmin(distances.sum(axis=1)))]


def _mean(rank: int, distances: np.ndarray, tenants: tuple[str, ...]) -> str:
    return MEAN_OWNER


_OWNER_POLICIES: Registry[OwnerPolicy] = Registry(
    "owner policy", plural="policies", duplicate_hint="pick another name", item_type=OwnerPolicy
)


#: Public faces of the registry: ``register_owner_policy(policy)``,
#: ``available_owner_policies()`` (sorted names), ``get_owner_policy(name_or_policy)``.
register_owner_policy = _OWNER_POLICIES.add_named
available_owner_policies = _OWNER_POLICIES.names
get_owner_policy = _OWNER_POLICIES.resolve


for _policy in (
    OwnerPolicy("round_robin", _round_robin, "owners taken in turn over the ranked shared slots"),
    OwnerPolicy("medoid", _medoid, "the tenant whose expert is closest to the others"),
    OwnerPolicy("mean", _mean, "the average of the tenants' experts"),
):
    register_owner_policy(_policy)
del _policy
