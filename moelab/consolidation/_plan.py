"""The consolidation plan: which expert slots N tenants share, and who owns them.

:func:`plan_consolidation` ranks the slots by a similarity metric of :mod:`moelab.similarity`
(summed over the pairs of tenants when N > 2, as the serving paper does), then shares the most
similar slots until the consolidated model fits the budget (:func:`resolve_budget`). The result
is a frozen, inspectable :class:`ConsolidationPlan`; :class:`moelab.reconfigure.ConsolidatedMoE`
builds the model it describes, and :func:`moelab.viz.plan_heatmap` draws it.

Examples
--------
>>> plan = plan_consolidation({"prose": a, "code": b}, 0.75)
>>> print(plan.summary())
Consolidation of 2 tenants (prose, code), mixtral, ranked by l2
budget 0.75 (fraction) -> 4 of 8 expert slots shared (owner policy round_robin; owners prose: 2, code: 2)
non-expert sets 30,336 B, shared experts 18,432 B, private experts 36,864 B
placement resident: device 85,632 B, host 0 B (private experts on the device, non-expert sets on the device)
total 85,632 B vs 104,064 B for 2 separate models (17.7% saved)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
import torch

from moelab.consolidation._decisions import SlotDecision, decide, distance_matrices
from moelab.consolidation._memory import (
    TIERS,
    BudgetUnit,
    MemoryAccounting,
    Tier,
)
from moelab.consolidation._owners import (
    MEAN_OWNER,
    OwnerPolicy,
    OwnerPolicyName,
    get_owner_policy,
)
from moelab.consolidation._tenants import check_dtypes, check_same_shapes
from moelab.consolidation._tiers import (
    PlacementName,
    PlacementPolicy,
    check_layout,
    get_placement,
    place,
)
from moelab.families import ExpertSlot, MoEFamily
from moelab.sources import ModelSource, WeightSource, open_models

__all__ = [
    "ConsolidationPlan",
    "SlotDecision",
    "plan_consolidation",
]


# ============================================================================== the plan
@dataclass(frozen=True, eq=False)
class ConsolidationPlan:
    """Which expert slots N tenants share, who owns them, and what it costs.

    Build it with :func:`plan_consolidation`; every field is read-only.

    Parameters
    ----------
    tenants : tuple of str
        Tenant names, in input order.
    sources : tuple of WeightSource
        Where each tenant's weights are read from (:meth:`ConsolidatedMoE.from_plan` streams
        them); empty in a :meth:`detached` plan.
    family : MoEFamily
        The tenants' family adapter.
    config : PretrainedConfig
        Their config (the first tenant's).
    dtype : torch.dtype
        The dtype every stored tensor has.
    metric : str
        The similarity metric that ranked the slots.
    owner_policy : str
        The owner policy of the shared slots.
    placement : {"resident", "offload"}
        The placement policy (:func:`available_placements`).
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
    sources: tuple[WeightSource, ...] = field(repr=False)
    family: MoEFamily
    config: Any = field(repr=False)
    dtype: torch.dtype
    metric: str
    owner_policy: str
    placement: str
    budget: float
    budget_unit: BudgetUnit
    decisions: tuple[SlotDecision, ...] = field(repr=False)
    memory: MemoryAccounting
    pairwise: pd.DataFrame = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.sources) not in (0, len(self.tenants)) or self.memory.tenants != self.tenants:
            raise ValueError("ConsolidationPlan: tenants, sources and memory disagree")
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

    def source_of(self, tenant: str) -> WeightSource:
        """Where one tenant's weights are read from.

        Raises
        ------
        ValueError
            Unknown tenant (the message lists the known ones), or a detached plan.
        """
        if tenant not in self.tenants:
            raise ValueError(f"unknown tenant {tenant!r}; tenants: {', '.join(self.tenants)}")
        if not self.sources:
            raise ValueError(
                "this plan is detached from its sources (a consolidated model keeps no reference "
                "to the tenants' weights); use the plan plan_consolidation returned"
            )
        return self.sources[self.tenants.index(tenant)]

    def detached(self) -> ConsolidationPlan:
        """The same plan without its sources, so that it keeps no tenant's weights alive."""
        return dataclasses.replace(self, sources=())

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
            "tier",
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
        unit: BudgetUnit | None = None,
        owner: OwnerPolicyName | str | OwnerPolicy | None = None,
        placement: PlacementName | str | PlacementPolicy | None = None,
    ) -> ConsolidationPlan:
        """The same tenants and ranking under another budget (no similarity is recomputed).

        Parameters
        ----------
        budget : float or int
            The new budget, in ``unit``.
        unit : {"fraction", "bytes", "slots"}, optional
            See :data:`BudgetUnit`; this plan's by default.
        owner : str or OwnerPolicy, optional
            Another owner policy; this plan's by default.
        placement : {"resident", "offload"} or PlacementPolicy, optional
            Another placement policy; this plan's by default.

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
        >>> plan.n_shared, plan.with_budget(0.5).n_shared
        (4, 8)
        """
        policy = get_owner_policy(owner if owner is not None else self.owner_policy)
        where = get_placement(placement if placement is not None else self.placement)
        unit = unit if unit is not None else self.budget_unit
        memory = place(where, budget, unit, self.memory, self.family, self.config)
        check_layout(self.family, memory)
        matrices = distance_matrices(self.pairwise, self.tenants, self.metric)
        slots = [d.slot for d in self.decisions]
        decisions, memory = decide(
            slots, self.tenants, matrices, memory, policy, (budget, unit, self.family, self.config)
        )
        return dataclasses.replace(
            self,
            owner_policy=policy.name,
            placement=where.name,
            budget=budget,
            budget_unit=unit,
            decisions=decisions,
            memory=memory,
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
                f"placement {self.placement}: device {m.device_bytes:,} B, host {m.host_bytes:,} B "
                f"(private experts on the {m.private_tier}, non-expert sets on the "
                f"{m.non_expert_tier})"
            ),
        ]
        if m.private_tier == "host":  # what offloading saves is device memory
            one_model = m.non_expert_bytes[0] + m.n_slots * m.slot_bytes
            lines.append(
                f"device {m.device_bytes:,} B = {m.device_bytes / one_model:.1%} of one separate "
                f"model ({one_model:,} B); {m.n_tenants} separate models would need "
                f"{m.separate_bytes:,} B on the device"
            )
        else:
            lines.append(
                f"total {m.total_bytes:,} B vs {m.separate_bytes:,} B for {m.n_tenants} "
                f"separate models ({m.saving:.1%} saved)"
            )
        return "\n".join(lines)


# ================================================================================ building
def _pairwise_table(
    models: Mapping[str, WeightSource], metric: str, similarity_kwargs: Mapping[str, Any]
) -> pd.DataFrame:
    from moelab.similarity import expert_similarity

    return expert_similarity(dict(models), metric, **similarity_kwargs)


def plan_consolidation(
    models: Mapping[str, ModelSource] | Sequence[ModelSource],
    budget: float,
    metric: str = "l2",
    owner: OwnerPolicyName | str | OwnerPolicy = "round_robin",
    *,
    unit: BudgetUnit = "fraction",
    placement: PlacementName | str | PlacementPolicy = "resident",
    non_expert: Tier = "device",
    dtype: torch.dtype | None = None,
    calibration: Any = None,
    progress: bool = False,
) -> ConsolidationPlan:
    """Rank the expert slots of N tenants by similarity and place them under a device budget.

    Nothing is loaded: weights are read one expert at a time (checkpoint folders lazily), and
    :meth:`ConsolidatedMoE.from_plan` later streams only what the plan keeps.

    Parameters
    ----------
    models : dict of str to source, or list of sources
        N >= 2 fine-tunes of one base model (or one model alone with placement ``"offload"``:
        it is placed under the device budget, slots in layer order), keyed by tenant name (a list takes the sources'
        names): checkpoint folders (read lazily), ``LazyCheckpoint``, ``MoEModel``,
        :class:`~moelab.sources.PerturbedSource` or transformers models.
    budget : float or int
        Memory allowed, in ``unit``. With ``"fraction"``: expert bytes as a fraction of the N
        models' expert bytes, from ``1/N`` (every slot shared) to 1 (nothing shared). With
        ``"bytes"``: device bytes. With ``"slots"``: the number of slots shared.
    metric : str, default "l2"
        A metric of :func:`moelab.similarity.available_metrics`; similarities are turned into
        distances (``1 - s``) and summed over the pairs of tenants, as the paper sums L2
        distances for more than two models.
    owner : {"round_robin", "medoid", "mean"} or OwnerPolicy, default "round_robin"
        Which expert a shared slot keeps (see :func:`available_owner_policies`).
    unit : {"fraction", "bytes", "slots"}, default "fraction"
        Unit of ``budget`` (see :data:`BudgetUnit`).
    placement : {"resident", "offload"} or PlacementPolicy, default "resident"
        ``"resident"``: every copy on the device, the fewest slots shared that fit.
        ``"offload"`` (the paper's): the most similar slots shared on the device while the
        budget lasts, the rest per tenant in host memory, copied in on use.
    non_expert : {"device", "host"}, default "device"
        ``"device"``: every tenant's non-expert set resident (reconfiguration re-points).
        ``"host"``: the sets staged in host memory and one live set on the device (copied on
        a tenant switch); the device budget then counts one set.
    dtype : torch.dtype, optional
        Cast every tensor to this dtype; by default the tenants' common dtype (tenants of
        different dtypes are refused).
    calibration : Calibration, optional
        Hidden states for the ``"cka"`` and ``"router"`` metrics (see
        :func:`moelab.similarity.expert_similarity`).
    progress : bool, default False
        Show the similarity progress bar.

    Returns
    -------
    ConsolidationPlan
        Slots ranked by distance (ties by layer, then expert); the first ``n_shared`` are
        shared.

    Raises
    ------
    ValueError
        Fewer than two tenants (one is allowed with placement ``"offload"``); an unknown metric, owner policy, placement or unit; a budget
        below the minimum (the message states it); tenants of different dtypes.
    IncompatibleModelsError
        Tenants of different families or shapes.

    Examples
    --------
    >>> plan = plan_consolidation({"a": model_a, "b": model_b}, 3, unit="slots")
    >>> plan.n_shared
    3
    """
    policy = get_owner_policy(owner)
    where = get_placement(placement)
    if non_expert not in TIERS:
        raise ValueError(f"non_expert must be one of {TIERS}, got {non_expert!r}")
    # One tenant alone can be placed (e.g. a model larger than its device: a MIG slice).
    alone = where.private_tier == "host"
    names, sources, _ = open_models(models, at_least=1 if alone else 2, purpose="consolidation")
    if len(set(names)) != len(names):
        raise ValueError(f"tenant names must be distinct, got {names}")
    family = check_same_shapes(sources, names)
    plan_dtype = check_dtypes(sources, names, dtype)
    config = sources[0].config
    meta = family.meta_model(config, plan_dtype)
    shapes = family.expert_shapes(config)
    slot_bytes = sum(a * b for a, b in shapes.values()) * plan_dtype.itemsize
    slots = family.expert_slots(config)
    set_bytes = family.non_expert_bytes(meta)
    accounting = MemoryAccounting(
        tuple(names), (set_bytes,) * len(names), slot_bytes, len(slots), 0, non_expert
    )
    memory = place(where, budget, unit, accounting, family, config)
    check_layout(family, memory)  # before the similarity pass, the slow part on real models
    kwargs: dict[str, Any] = {"progress": progress}
    if calibration is not None:
        kwargs["calibration"] = calibration
    if len(names) > 1:
        pairwise = _pairwise_table(dict(zip(names, sources)), metric, kwargs)
    else:  # nothing to compare: slots go to the device in layer order
        from moelab.similarity import SAME_SLOT_COLUMNS

        pairwise = pd.DataFrame(columns=list(SAME_SLOT_COLUMNS))
    matrices = distance_matrices(pairwise, names, metric)
    decisions, memory = decide(
        slots, tuple(names), matrices, memory, policy, (budget, unit, family, config)
    )
    return ConsolidationPlan(
        tenants=tuple(names),
        sources=tuple(sources),
        family=family,
        config=config,
        dtype=plan_dtype,
        metric=str(metric),
        owner_policy=policy.name,
        placement=where.name,
        budget=budget,
        budget_unit=unit,
        decisions=decisions,
        memory=memory,
        pairwise=pairwise,
    )
