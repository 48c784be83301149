"""The consolidation plan: which expert slots N tenants share, and who owns them.

:func:`plan_consolidation` ranks the slots by a similarity metric of :mod:`moelab.similarity`
(summed over the pairs of tenants when N > 2, as the serving paper does), then shares the most
similar slots until the consolidated model fits the budget (:func:`resolve_budget`). The result
is a frozen, inspectable :class:`ConsolidationPlan`; :class:`moelab.reconfigure.ConsolidatedMoE`
builds the model it describes, and :func:`moelab.viz.plan_heatmap` draws it.

Examples
--------
>>> plan = plan_consolidation({"prose": a, "code": b}, 0.75)  # doctest: +SKIP
>>> print(plan.summary())                                     # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from torch import nn

from labcore.checks import check_type
from moelab.consolidation._memory import BUDGET_UNITS, BudgetUnit, MemoryAccounting, resolve_budget
from moelab.consolidation._owners import (
    MEAN_OWNER,
    OwnerPolicy,
    OwnerPolicyName,
    get_owner_policy,
)
from moelab.errors import IncompatibleModelsError
from moelab.families import ExpertSlot, MoEFamily, check_compatible
from moelab.loading import MoEModel, load_moe

__all__ = [
    "ConsolidationPlan",
    "SlotDecision",
    "check_same_shapes",
    "plan_consolidation",
]

ModelSource = str | os.PathLike | MoEModel | nn.Module


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

    def __post_init__(self) -> None:
        check_type(self.slot, ExpertSlot, "SlotDecision.slot")
        if self.rank < 0 or self.stored_bytes < 0:
            raise ValueError(f"SlotDecision rank and stored_bytes must be >= 0 ({self.slot})")
        if self.shared != bool(self.owner):
            raise ValueError(
                f"SlotDecision for {self.slot}: a shared slot needs an owner and a private slot "
                f"none, got shared={self.shared}, owner={self.owner!r}"
            )

    def as_dict(self) -> dict[str, Any]:
        """One tidy row: layer, label, expert, distance, rank, shared, owner, stored_bytes."""
        return {
            **self.slot.as_dict(),
            "distance": self.distance,
            "rank": self.rank,
            "shared": self.shared,
            "owner": self.owner,
            "stored_bytes": self.stored_bytes,
        }


# ============================================================================== the plan
@dataclass(frozen=True, eq=False)
class ConsolidationPlan:
    """Which expert slots N tenants share, who owns them, and what it costs.

    Build it with :func:`plan_consolidation`; every field is read-only.

    Parameters
    ----------
    tenants : tuple of str
        Tenant names, in input order.
    models : tuple of MoEModel
        The tenants' models (used by :meth:`ConsolidatedMoE.from_plan`).
    metric : str
        The similarity metric that ranked the slots.
    owner_policy : str
        The owner policy of the shared slots.
    budget : float
        The budget as requested.
    budget_unit : {"fraction", "bytes", "slots"}
        Its unit.
    decisions : tuple of SlotDecision
        One per slot, layer-major then expert.
    memory : MemoryAccounting
        The bytes of the consolidated model and of N separate models.
    pairwise : pandas.DataFrame
        The metric for every pair of tenants and slot (:func:`moelab.similarity.expert_similarity`).

    Raises
    ------
    ValueError
        If the fields disagree (counts, tenants, shared slots).
    """

    tenants: tuple[str, ...]
    models: tuple[MoEModel, ...] = field(repr=False)
    metric: str
    owner_policy: str
    budget: float
    budget_unit: BudgetUnit
    decisions: tuple[SlotDecision, ...] = field(repr=False)
    memory: MemoryAccounting
    pairwise: pd.DataFrame = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.models) != len(self.tenants) or self.memory.tenants != self.tenants:
            raise ValueError("ConsolidationPlan: tenants, models and memory disagree")
        if len(self.decisions) != self.memory.n_slots:
            raise ValueError(
                f"ConsolidationPlan: {len(self.decisions)} decisions for {self.memory.n_slots} slots"
            )
        if sum(d.shared for d in self.decisions) != self.memory.n_shared:
            raise ValueError("ConsolidationPlan: shared decisions and memory.n_shared disagree")
        bad = {d.owner for d in self.decisions if d.shared} - {*self.tenants, MEAN_OWNER}
        if bad:
            raise ValueError(f"ConsolidationPlan: owners {sorted(bad)} are not tenants")

    @property
    def family(self) -> MoEFamily:
        """The tenants' family adapter."""
        return self.models[0].family

    @property
    def n_shared(self) -> int:
        """Number of shared slots."""
        return self.memory.n_shared

    @property
    def shared_slots(self) -> tuple[ExpertSlot, ...]:
        """The shared slots, most similar first."""
        shared = sorted((d for d in self.decisions if d.shared), key=lambda d: d.rank)
        return tuple(d.slot for d in shared)

    def decision(self, slot: ExpertSlot) -> SlotDecision:
        """The decision for one slot.

        Parameters
        ----------
        slot : ExpertSlot
            A slot of the tenants' models.

        Returns
        -------
        SlotDecision
            Its row.

        Raises
        ------
        ValueError
            If the slot is not one of the models' slots.
        """
        for d in self.decisions:
            if d.slot == slot:
                return d
        raise ValueError(f"{slot!r} is not an expert slot of these models")

    def model_of(self, tenant: str) -> MoEModel:
        """The model of one tenant.

        Raises
        ------
        ValueError
            Unknown tenant; the message lists the known ones.
        """
        if tenant not in self.tenants:
            raise ValueError(f"unknown tenant {tenant!r}; tenants: {', '.join(self.tenants)}")
        return self.models[self.tenants.index(tenant)]

    def table(self) -> pd.DataFrame:
        """One row per slot, ranked: layer, label, expert, distance, rank, shared, owner, stored_bytes."""
        rows = [d.as_dict() for d in sorted(self.decisions, key=lambda d: d.rank)]
        columns = [
            "layer",
            "label",
            "expert",
            "distance",
            "rank",
            "shared",
            "owner",
            "stored_bytes",
        ]
        return pd.DataFrame(rows, columns=columns)

    def grid(self, column: Literal["distance", "shared", "owner"] = "distance") -> pd.DataFrame:
        """One column of :meth:`table` as a layers x experts matrix (rows labelled by layer label).

        Parameters
        ----------
        column : {"distance", "shared", "owner"}
            What to lay out.

        Returns
        -------
        pandas.DataFrame
            Index: layer labels in model order; columns: expert indices.

        Raises
        ------
        ValueError
            Unknown column.
        """
        if column not in ("distance", "shared", "owner"):
            raise ValueError(f"grid column must be 'distance', 'shared' or 'owner', got {column!r}")
        table = self.table().sort_values(["layer", "expert"])
        grid = table.pivot(index=["layer", "label"], columns="expert", values=column)
        grid.index = grid.index.get_level_values("label")
        return grid

    def with_budget(
        self,
        budget: float,
        unit: BudgetUnit = "fraction",
        owner: OwnerPolicyName | str | OwnerPolicy | None = None,
    ) -> ConsolidationPlan:
        """The same tenants and ranking under another budget (no similarity is recomputed).

        Parameters
        ----------
        budget : float or int
            The new budget, in ``unit``.
        unit : {"fraction", "bytes", "slots"}, default "fraction"
            See :data:`BudgetUnit`.
        owner : str or OwnerPolicy, optional
            Another owner policy; this plan's by default.

        Returns
        -------
        ConsolidationPlan
            A new plan.

        Raises
        ------
        ValueError
            As :func:`resolve_budget`, or an unknown owner policy.

        Examples
        --------
        >>> plan.with_budget(0.5).n_shared  # doctest: +SKIP
        12
        """
        policy = get_owner_policy(owner if owner is not None else self.owner_policy)
        n_shared = resolve_budget(budget, unit, self.memory)
        matrices = _distance_matrices(self.pairwise, self.tenants, self.metric)
        slots = [d.slot for d in self.decisions]
        decisions = _decide(slots, self.tenants, matrices, n_shared, policy, self.memory.slot_bytes)
        return dataclasses.replace(
            self,
            owner_policy=policy.name,
            budget=budget,
            budget_unit=unit,
            decisions=decisions,
            memory=dataclasses.replace(self.memory, n_shared=n_shared),
        )

    def summary(self) -> str:
        """A few lines a notebook can print: tenants, budget, shared slots, memory.

        Returns
        -------
        str
            Human-readable summary.
        """
        m = self.memory
        owners = pd.Series([d.owner for d in self.decisions if d.shared]).value_counts()
        owner_text = ", ".join(f"{k}: {v}" for k, v in owners.items()) or "-"
        lines = [
            (
                f"Consolidation of {m.n_tenants} tenants ({', '.join(self.tenants)}), "
                f"{self.family.name}, ranked by {self.metric}"
            ),
            (
                f"budget {self.budget:g} ({self.budget_unit}) -> {m.n_shared} of {m.n_slots} "
                f"expert slots shared (owner policy {self.owner_policy}; owners {owner_text})"
            ),
            (
                f"non-expert sets {sum(m.non_expert_bytes):,} B, shared experts "
                f"{m.shared_expert_bytes:,} B, private experts {m.private_expert_bytes:,} B"
            ),
            (
                f"total {m.total_bytes:,} B vs {m.separate_bytes:,} B for {m.n_tenants} "
                f"separate models ({m.saving:.1%} saved)"
            ),
        ]
        return "\n".join(lines)


# ================================================================================ building
def _open_models(
    models: Mapping[str, ModelSource] | Sequence[ModelSource],
) -> tuple[tuple[str, ...], tuple[MoEModel, ...]]:
    if isinstance(models, Mapping):
        names = tuple(str(n) for n in models)
        loaded = tuple(load_moe(m) for m in models.values())
    elif isinstance(models, Sequence) and not isinstance(models, (str, bytes)):
        loaded = tuple(load_moe(m) for m in models)
        names = tuple(m.name for m in loaded)
        if len(set(names)) != len(names):
            names = tuple(f"{n}[{i}]" for i, n in enumerate(names))
    else:
        raise ValueError(
            f"models must be a list of models/folders or a dict {{tenant: model or folder}}, got "
            f"{type(models).__name__}"
        )
    if len(loaded) < 2:
        raise ValueError(f"consolidation needs at least 2 tenants, got {len(loaded)}")
    if len(set(names)) != len(names):
        raise ValueError(f"tenant names must be distinct, got {names}")
    return names, loaded


def check_same_shapes(models: Sequence[MoEModel], names: Sequence[str]) -> MoEFamily:
    """Check that tenants share family, expert slots and every parameter's name, shape and dtype.

    Parameters
    ----------
    models : sequence of MoEModel
        The tenants.
    names : sequence of str
        Their names, for the message.

    Returns
    -------
    MoEFamily
        Their family.

    Raises
    ------
    IncompatibleModelsError
        Naming the first tenant and parameter that differ.
    """
    family = check_compatible(*models)
    reference = {n: (tuple(p.shape), p.dtype) for n, p in models[0].model.named_parameters()}
    for name, moe in zip(names[1:], models[1:]):
        other = {n: (tuple(p.shape), p.dtype) for n, p in moe.model.named_parameters()}
        if other.keys() != reference.keys():
            diff = sorted(set(other) ^ set(reference))[:3]
            raise IncompatibleModelsError(
                f"tenants {names[0]!r} and {name!r} have different parameters (e.g. {diff}); "
                f"consolidate fine-tunes of one base model"
            )
        for key, value in reference.items():
            if other[key] != value:
                raise IncompatibleModelsError(
                    f"tenants {names[0]!r} and {name!r} differ in {key!r}: shape/dtype "
                    f"{value} vs {other[key]}; consolidate fine-tunes of one base model"
                )
    return family


def _pairwise_table(
    models: Mapping[str, MoEModel], metric: str, similarity_kwargs: Mapping[str, Any]
) -> pd.DataFrame:
    from moelab.similarity import expert_similarity

    return expert_similarity(dict(models), metric, **similarity_kwargs)


def _distance_matrices(
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
    n_shared: int,
    policy: OwnerPolicy,
    slot_bytes: int,
) -> tuple[SlotDecision, ...]:
    """Rank slots by summed distance, share the first ``n_shared``, pick their owners."""
    # Sum over pairs = the upper triangle of the symmetric matrix.
    distance = {key: float(np.triu(mat, 1).sum()) for key, mat in matrices.items()}
    # NaN (a metric undefined on a slot, e.g. CKA of constant outputs) ranks last: never shared
    # before a slot known to be close. Ties go to the earlier layer, then expert.
    ranked = sorted(
        slots, key=lambda s: (_sort_key(distance[(s.layer, s.expert)]), s.layer, s.expert)
    )
    decisions = []
    for rank, slot in enumerate(ranked):
        key = (slot.layer, slot.expert)
        shared = rank < n_shared
        decisions.append(
            SlotDecision(
                slot=slot,
                distance=distance[key],
                rank=rank,
                shared=shared,
                owner=policy.choose(rank, matrices[key], tenants) if shared else "",
                stored_bytes=slot_bytes if shared else slot_bytes * len(tenants),
            )
        )
    decisions.sort(key=lambda d: (d.slot.layer, d.slot.expert))
    return tuple(decisions)


def _sort_key(value: float) -> float:
    return math.inf if math.isnan(value) else value


def _slot_bytes(moe: MoEModel, slot: ExpertSlot) -> int:
    return sum(t.numel() * t.element_size() for t in moe.get_expert(slot).values())


def plan_consolidation(
    models: Mapping[str, ModelSource] | Sequence[ModelSource],
    budget: float,
    metric: str = "l2",
    owner: OwnerPolicyName | str | OwnerPolicy = "round_robin",
    *,
    unit: BudgetUnit = "fraction",
    calibration: Any = None,
    progress: bool = False,
) -> ConsolidationPlan:
    """Rank the expert slots of N tenants by similarity and share the closest ones to fit a budget.

    Parameters
    ----------
    models : dict of str to model, or list of models
        N >= 2 fine-tunes of one base model (MoEModel, transformers model or checkpoint folder),
        keyed by tenant name (a list takes the models' names).
    budget : float or int
        Memory allowed, in ``unit``. With ``"fraction"``: expert bytes as a fraction of the N
        models' expert bytes, from ``1/N`` (every slot shared) to 1 (nothing shared).
    metric : str, default "l2"
        A metric of :func:`moelab.similarity.available_metrics`; similarities are turned into
        distances (``1 - s``) and summed over the pairs of tenants, as the paper sums L2
        distances for more than two models.
    owner : {"round_robin", "medoid", "mean"} or OwnerPolicy, default "round_robin"
        Which expert a shared slot keeps (see :func:`available_owner_policies`).
    unit : {"fraction", "bytes", "slots"}, default "fraction"
        Unit of ``budget`` (see :data:`BudgetUnit`).
    calibration : Calibration, optional
        Hidden states for the ``"cka"`` and ``"router"`` metrics (see
        :func:`moelab.similarity.expert_similarity`).
    progress : bool, default False
        Show the similarity progress bar.

    Returns
    -------
    ConsolidationPlan
        Slots ranked by distance (ties by layer, then expert); the first
        :func:`resolve_budget` slots are shared.

    Raises
    ------
    ValueError
        Fewer than two tenants, an unknown metric, owner policy or unit, or a budget below the
        minimum (the message states it).
    IncompatibleModelsError
        Tenants of different families or shapes.

    Examples
    --------
    >>> plan = plan_consolidation({"a": model_a, "b": model_b}, 3, unit="slots")  # doctest: +SKIP
    >>> plan.n_shared                                                            # doctest: +SKIP
    3
    """
    policy = get_owner_policy(owner)
    if unit not in BUDGET_UNITS:
        raise ValueError(f"unknown budget unit {unit!r}; known units: {', '.join(BUDGET_UNITS)}")
    names, loaded = _open_models(models)
    family = check_same_shapes(loaded, names)
    slots = family.expert_slots(loaded[0].model)
    slot_bytes = _slot_bytes(loaded[0], slots[0])
    accounting = MemoryAccounting(
        names, tuple(m.non_expert_bytes() for m in loaded), slot_bytes, len(slots), 0
    )
    n_shared = resolve_budget(budget, unit, accounting)
    kwargs: dict[str, Any] = {"progress": progress}
    if calibration is not None:
        kwargs["calibration"] = calibration
    pairwise = _pairwise_table(dict(zip(names, loaded)), metric, kwargs)
    matrices = _distance_matrices(pairwise, names, metric)
    decisions = _decide(slots, names, matrices, n_shared, policy, slot_bytes)
    memory = dataclasses.replace(accounting, n_shared=n_shared)
    return ConsolidationPlan(
        tenants=names,
        models=loaded,
        metric=str(metric),
        owner_policy=policy.name,
        budget=budget,
        budget_unit=unit,
        decisions=decisions,
        memory=memory,
        pairwise=pairwise,
    )
