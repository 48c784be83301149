"""Expert pools: one copy of each shared slot, one per tenant of each private slot.

The family adapter's ``expert_layout`` picks how a pool is built and bound to a tenant: a
``"per_expert"`` family re-points each expert parameter, a ``"fused"`` family gets one
``[P, ...]`` pool per layer and per-tenant index tables applied by a forward pre-hook.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from moelab.consolidation import MEAN_OWNER, ConsolidationPlan
from moelab.families import ExpertSlot, MoEFamily
from moelab.reconfigure._sets import expert_parameter_ids
from moelab.reconfigure._tensors import frozen, owned_copy

__all__ = ["ExpertPool", "pool_builder"]


def _average(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    stacked = torch.stack([t.detach().to(torch.float32) for t in tensors])
    return stacked.mean(dim=0).to(tensors[0].dtype)


@dataclass
class ExpertPool:
    """The expert pool of every layer and how to bind one tenant's expert mapping.

    ``shared_rows[i]`` is ``(shared, rows)`` of ``tensors[i]``: how many of its expert rows
    are shared slots (a per-expert tensor is one row, a fused pool has one row per entry).
    """

    tensors: list[torch.Tensor]
    shared_rows: list[tuple[int, int]]
    tables: list[torch.Tensor]
    bind: Callable[[int], None]


def _slot_entries(plan: ConsolidationPlan, slot: ExpertSlot) -> list[tuple[str, list[int]]]:
    """Pool entries of one slot: ``(owner, tenants using it)``; owner is a tenant or MEAN_OWNER."""
    decision = plan.decision(slot)
    if decision.shared:
        return [(decision.owner, list(range(len(plan.tenants))))]
    return [(tenant, [t]) for t, tenant in enumerate(plan.tenants)]


def _entry_value(
    plan: ConsolidationPlan, owner: str, read: Callable[[int], torch.Tensor]
) -> torch.Tensor:
    """What a pool entry stores: one tenant's tensor, or the tenants' average."""
    if owner == MEAN_OWNER:
        return _average([read(i) for i in range(len(plan.tenants))])
    return read(plan.tenants.index(owner))


def _build_per_expert_pool(
    plan: ConsolidationPlan, live: nn.Module, device: torch.device
) -> ExpertPool:
    """One parameter per expert matrix: binding re-points the live model's expert parameters."""
    family = plan.family
    site_of: dict[int, tuple[dict[str, Any], str]] = {}
    for _, module in live.named_modules():
        for pname, param in module._parameters.items():
            if param is not None:
                site_of[param.data_ptr()] = (module._parameters, pname)
    bindings: list[list[tuple[dict[str, Any], str, nn.Parameter]]] = [[] for _ in plan.tenants]
    tensors: list[torch.Tensor] = []
    shared_rows: list[tuple[int, int]] = []
    for slot in family.expert_slots(live):
        sites = {m: site_of[v.data_ptr()] for m, v in family.get_expert(live, slot).items()}
        shared = plan.decision(slot).shared
        for owner, users in _slot_entries(plan, slot):
            for matrix, (params, pname) in sites.items():

                def read(i: int, matrix: str = matrix, slot: ExpertSlot = slot) -> torch.Tensor:
                    return plan.models[i].get_expert(slot)[matrix]

                value = frozen(owned_copy(_entry_value(plan, owner, read), device))
                tensors.append(value)
                shared_rows.append((int(shared), 1))
                for t in users:
                    bindings[t].append((params, pname, value))

    def bind(tenant: int) -> None:
        for params, pname, value in bindings[tenant]:
            params[pname] = value

    return ExpertPool(tensors, shared_rows, [], bind)


def _index_keyword(experts: nn.Module) -> str:
    # The fused experts module is called as experts(hidden, top_k_index, top_k_weights).
    names = list(inspect.signature(experts.forward).parameters)
    return names[1] if len(names) > 1 else "top_k_index"


def _fused_experts_module(
    family: MoEFamily, live: nn.Module, layer: int, expert_ids: set[int]
) -> nn.Module:
    block = family.moe_block(live, layer)
    holders = {
        id(m): m
        for m in block.modules()
        if any(p is not None and id(p) in expert_ids for p in m._parameters.values())
    }
    if len(holders) != 1:
        raise ValueError(
            f"the fused experts of MoE layer {layer} live in {len(holders)} modules; a fused pool "
            f"needs exactly one experts module per layer"
        )
    return next(iter(holders.values()))


def _build_fused_pool(plan: ConsolidationPlan, live: nn.Module, device: torch.device) -> ExpertPool:
    """Fused ``[E, ...]`` experts: one ``[P, ...]`` pool per layer and per-tenant index tables."""
    family = plan.family
    n_tenants, n_experts = len(plan.tenants), family.num_experts(live)
    expert_ids = expert_parameter_ids(family, live)
    qualname = {id(m): name for name, m in live.named_modules()}
    tensors: list[torch.Tensor] = []
    tables: list[list[torch.Tensor]] = [[] for _ in plan.tenants]
    live_tables: list[torch.Tensor] = []
    shared_rows: list[tuple[int, int]] = []
    for layer in range(family.num_moe_layers(live)):
        experts = _fused_experts_module(family, live, layer, expert_ids)
        entries: list[tuple[str, list[int], int]] = []  # (owner, users, expert index)
        for expert in range(n_experts):
            entries += [(o, u, expert) for o, u in _slot_entries(plan, ExpertSlot(layer, expert))]
        index = [[0] * n_experts for _ in plan.tenants]
        for row, (_, users, expert) in enumerate(entries):
            for t in users:
                index[t][expert] = row
        n_shared_rows = sum(plan.decision(ExpertSlot(layer, e)).shared for e in range(n_experts))
        fused_names = [
            name for name, p in experts._parameters.items() if p is not None and id(p) in expert_ids
        ]
        for pname in fused_names:
            sources = [
                m.model.get_submodule(qualname[id(experts)])._parameters[pname].detach()
                for m in plan.models
            ]
            rows = [
                _entry_value(plan, owner, lambda i, e=expert, src=sources: src[i][e])
                for owner, _, expert in entries
            ]
            pool = frozen(torch.stack(rows).to(device))
            experts._parameters[pname] = pool
            tensors.append(pool)
            shared_rows.append((n_shared_rows, len(entries)))
        if hasattr(experts, "num_experts"):
            # The experts' own forward counts pool rows (grouped_mm histograms, eager one-hot).
            experts.num_experts = len(entries)
        for t in range(n_tenants):
            tables[t].append(torch.tensor(index[t], dtype=torch.long, device=device))
        live_tables.append(tables[0][layer])
        keyword = _index_keyword(experts)

        def remap(
            module: nn.Module, args: tuple, kwargs: dict, layer: int = layer, keyword: str = keyword
        ) -> tuple[tuple, dict]:
            # Router indices name experts 0..E-1; the active tenant's table turns them into rows
            # of the pool, so the experts module's own forward runs on the tenant's mapping.
            table = live_tables[layer]
            if len(args) > 1:
                return (args[0], table[args[1]], *args[2:]), kwargs
            return args, {**kwargs, keyword: table[kwargs[keyword]]}

        experts.register_forward_pre_hook(remap, with_kwargs=True)

    def bind(tenant: int) -> None:
        live_tables[:] = tables[tenant]

    flat_tables = [table for per_tenant in tables for table in per_tenant]
    return ExpertPool(tensors, shared_rows, flat_tables, bind)


_POOL_BUILDERS: dict[str, Callable[[ConsolidationPlan, nn.Module, torch.device], ExpertPool]] = {
    "fused": _build_fused_pool,
    "per_expert": _build_per_expert_pool,
}


def pool_builder(
    family: MoEFamily,
) -> Callable[[ConsolidationPlan, nn.Module, torch.device], ExpertPool]:
    # The adapter says how its experts are laid out; a layout is how the pool is built.
    layout = getattr(family, "expert_layout", None)
    if layout not in _POOL_BUILDERS:
        raise ValueError(
            f"family {family.name!r} has expert_layout {layout!r}, for which no expert pool "
            f"is known; set it to one of {', '.join(sorted(_POOL_BUILDERS))}"
        )
    return _POOL_BUILDERS[layout]
