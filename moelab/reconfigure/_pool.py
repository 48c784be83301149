"""Expert pools: one copy of each shared slot, one per tenant of each private slot.

The family adapter's ``expert_layout`` picks how a pool is built and bound to a tenant: a
``"per_expert"`` family re-points each expert parameter; a ``"fused"`` family gets one
``[P, ...]`` pool per layer and per-tenant index tables, copied in place into one live table
that the experts' forward reads (so a captured CUDA graph stays valid across tenants).

Host-tier slots (placement ``"offload"``) of a fused family live in host memory, one buffer
per tenant and expert, and are copied into a layer's cache rows (an LRU cache) when the router
picks them; that path reads the routing on the host, so it runs eagerly.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from labcore.registry import Registry
from moelab.consolidation import MEAN_OWNER, ConsolidationPlan
from moelab.families import ExpertSlot, MoEFamily, TensorRef
from moelab.reconfigure._sets import expert_parameter_ids
from moelab.reconfigure._tensors import frozen, host_buffer
from moelab.sources import WeightSource

__all__ = ["ExpertPool", "pool_builder"]


@dataclass
class ExpertPool:
    """The expert pool of every layer and how to bind one tenant's expert mapping.

    ``rows[i]`` is ``(shared, private, cache)``: how many of ``tensors[i]``'s expert rows hold
    shared slots, device-tier private slots and cache rows (a per-expert tensor is one row).
    """

    tensors: list[torch.Tensor]
    rows: list[tuple[int, int, int]]
    tables: list[torch.Tensor]
    bind: Callable[[int], None]
    host: list[torch.Tensor] = field(default_factory=list)
    caches: list[_HostCache] = field(default_factory=list)
    #: ``read(tenant index, slot) -> {matrix: tensor}``: the expert a tenant computes with.
    read: Callable[[int, ExpertSlot], dict[str, torch.Tensor]] = field(default=lambda t, s: {})

    def copied_bytes(self) -> int:
        """Bytes copied from host-tier slots into cache rows since the build."""
        return sum(cache.copied_bytes for cache in self.caches)


def _entries(plan: ConsolidationPlan, slot: ExpertSlot) -> list[tuple[str, list[int]]]:
    """Device entries of one slot: ``(owner, tenants using it)``; owner is a tenant or MEAN_OWNER."""
    decision = plan.decision(slot)
    if decision.shared:
        return [(decision.owner, list(range(len(plan.tenants))))]
    if decision.tier == "host":
        return []
    return [(tenant, [t]) for t, tenant in enumerate(plan.tenants)]


def _expert_value(
    plan: ConsolidationPlan, sources: Sequence[WeightSource], owner: str, slot: ExpertSlot
) -> dict[str, torch.Tensor]:
    """What a pool entry stores: one tenant's expert, or the tenants' average."""
    if owner != MEAN_OWNER:
        return sources[plan.tenants.index(owner)].read_expert(slot)
    experts = [source.read_expert(slot) for source in sources]
    return {
        m: torch.stack([e[m].float() for e in experts]).mean(0).to(experts[0][m].dtype)
        for m in experts[0]
    }


def _build_per_expert_pool(
    plan: ConsolidationPlan, sources: Sequence[WeightSource], live: nn.Module, device: torch.device
) -> ExpertPool:
    """One parameter per expert matrix: binding re-points the live model's expert parameters."""
    family, config = plan.family, plan.config
    sites = dict(live.named_parameters())
    owners = {name: module for name, module in live.named_modules()}
    bindings: list[list[tuple[dict[str, Any], str, nn.Parameter]]] = [[] for _ in plan.tenants]
    by_slot: dict[tuple[int, ExpertSlot, str], nn.Parameter] = {}
    tensors: list[torch.Tensor] = []
    rows: list[tuple[int, int, int]] = []
    for slot in family.expert_slots(config):
        refs = family.live_expert_refs(config, slot)
        shared = plan.decision(slot).shared
        for owner, users in _entries(plan, slot):
            value = _expert_value(plan, sources, owner, slot)
            for matrix, ref in refs.items():
                module_name, _, pname = ref.key.rpartition(".")
                like = sites[ref.key]
                tensor = value[matrix].to(device=device, dtype=plan.dtype, copy=True)
                param = frozen(tensor.reshape(like.shape))
                tensors.append(param)
                rows.append((1, 0, 0) if shared else (0, 1, 0))
                for t in users:
                    bindings[t].append((owners[module_name]._parameters, pname, param))
                    by_slot[(t, slot, matrix)] = param

    def bind(tenant: int) -> None:
        for params, pname, value in bindings[tenant]:
            params[pname] = value

    def read(tenant: int, slot: ExpertSlot) -> dict[str, torch.Tensor]:
        return {m: by_slot[(tenant, slot, m)].detach() for m in family.expert_matrix_names()}

    return ExpertPool(tensors, rows, [], bind, read=read)


def _experts_module(family: MoEFamily, live: nn.Module, layer: int, ids: set[int]) -> nn.Module:
    block = family.moe_block(live, layer)
    holders = {
        id(m): m
        for m in block.modules()
        if any(p is not None and id(p) in ids for p in m._parameters.values())
    }
    if len(holders) != 1:
        raise ValueError(
            f"the fused experts of MoE layer {layer} live in {len(holders)} modules; a fused pool "
            f"needs exactly one experts module per layer"
        )
    return next(iter(holders.values()))


def _write(store: dict[str, torch.Tensor], refs: dict[str, TensorRef], value: dict) -> None:
    """Write one expert's matrices into one row of each fused tensor (``store[key]``)."""
    for matrix, ref in refs.items():
        row = store[ref.key]
        target = row if ref.rows is None else row[ref.rows[0] : ref.rows[1]]
        target.copy_(value[matrix])


class _HostCache:
    """A layer's device cache rows for host-tier experts, least recently used evicted first."""

    def __init__(self, pools: dict[str, torch.Tensor], first_row: int, n_rows: int) -> None:
        self.pools, self.free = pools, list(range(first_row + n_rows - 1, first_row - 1, -1))
        self.used: OrderedDict[tuple[int, int], int] = OrderedDict()
        self.copied_bytes = 0

    def fetch(self, key: tuple[int, int], host: dict[str, torch.Tensor]) -> int:
        if key in self.used:
            self.used.move_to_end(key)
            return self.used[key]
        row = self.free.pop() if self.free else self.used.popitem(last=False)[1]
        for name, tensor in host.items():
            self.pools[name][row].copy_(tensor, non_blocking=True)
            self.copied_bytes += tensor.numel() * tensor.element_size()
        self.used[key] = row
        return row


class _PooledForward:
    """The experts' forward over a pool: router indices mapped to pool rows by the live table."""

    def __init__(self, experts: nn.Module, table: torch.Tensor) -> None:
        self.original = type(experts).forward.__get__(experts)
        names = list(inspect.signature(self.original).parameters)
        self.index_name, self.weight_name = names[1], names[2]
        self.table = table  # a view of the live [layers, experts] table: its address is fixed
        self.host: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
        self.host_tenants: set[int] = set()
        self.cache: _HostCache | None = None
        self.tenant = 0

    def _args(self, args: tuple, kwargs: dict) -> tuple[torch.Tensor, torch.Tensor, Callable]:
        if len(args) >= 3:
            return args[1], args[2], lambda i, w: self.original(args[0], i, w, *args[3:], **kwargs)
        index, weights = kwargs[self.index_name], kwargs[self.weight_name]
        rest = {k: v for k, v in kwargs.items() if k not in (self.index_name, self.weight_name)}
        head = args[0] if args else rest.pop(next(iter(rest)))
        return index, weights, lambda i, w: self.original(head, i, w, **rest)

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        index, weights, run = self._args(args, kwargs)
        rows = self.table[index]
        if self.tenant not in self.host_tenants:
            return run(rows, weights)
        missing = sorted(set(index[rows < 0].tolist()))  # host sync: only on the offload path
        # Experts already in the cache rows first: a copy then never evicts one this call uses.
        missing.sort(key=lambda e: (self.tenant, e) not in self.cache.used)
        if not missing:
            return run(rows, weights)
        return self._run_with_host_experts(index, weights, rows, missing, run)

    def _run_with_host_experts(
        self, index: torch.Tensor, weights: torch.Tensor, rows: torch.Tensor, missing: list, run
    ) -> torch.Tensor:
        # More host experts than cache rows: run the experts once per group of at most that
        # many, each assignment counted in exactly one group (its weight is zero elsewhere).
        size = len(self.cache.free) + len(self.cache.used)
        out = None
        for start in range(0, len(missing), size):
            group = missing[start : start + size]
            lookup = self.table.clone()
            for expert in group:
                key = (self.tenant, expert)
                lookup[expert] = self.cache.fetch(key, self.host[key])
            keep = torch.isin(index, torch.tensor(group, device=index.device))
            if start == 0:
                keep |= rows >= 0
            group_rows = lookup[index].clamp_min(0)
            part = run(group_rows, weights.masked_fill(~keep, 0))
            out = part if out is None else out + part
        return out


def _build_fused_pool(
    plan: ConsolidationPlan, sources: Sequence[WeightSource], live: nn.Module, device: torch.device
) -> ExpertPool:
    """Fused ``[E, ...]`` experts: one ``[P, ...]`` pool per layer and per-tenant index tables."""
    family, config = plan.family, plan.config
    n_layers, n_experts = family.num_moe_layers(config), family.num_experts(config)
    ids = expert_parameter_ids(family, live)
    cache_rows = family.experts_per_token(config)  # per layer that keeps host-tier slots
    tables = torch.full((len(plan.tenants), n_layers, n_experts), -1, dtype=torch.long)
    live_table = torch.zeros((n_layers, n_experts), dtype=torch.long, device=device)
    pool = ExpertPool([], [], [live_table], lambda t: None)
    stores: list[dict[str, torch.Tensor]] = []
    forwards: list[_PooledForward] = []
    for layer in range(n_layers):
        experts = _experts_module(family, live, layer, ids)
        like = {n: p for n, p in experts.named_parameters(recurse=False) if id(p) in ids}
        prefix = next(k for k, v in live.named_parameters() if v is next(iter(like.values())))
        prefix = prefix.rpartition(".")[0]
        entries = [
            (owner, users, e)
            for e in range(n_experts)
            for owner, users in _entries(plan, ExpertSlot(layer, e))
        ]
        host = [
            (t, e)
            for e in range(n_experts)
            if plan.decision(ExpertSlot(layer, e)).tier == "host"
            for t in range(len(plan.tenants))
        ]
        n_rows = len(entries) + (cache_rows if host else 0)
        store = {
            f"{prefix}.{n}": torch.empty((n_rows, *p.shape[1:]), dtype=plan.dtype, device=device)
            for n, p in like.items()
        }
        for row, (owner, users, e) in enumerate(entries):
            slot = ExpertSlot(layer, e)
            value = _expert_value(plan, sources, owner, slot)
            _write(
                {k: v[row] for k, v in store.items()}, family.live_expert_refs(config, slot), value
            )
            tables[users, layer, e] = row
        forward = _PooledForward(experts, live_table[layer])
        for t, e in host:
            slot = ExpertSlot(layer, e)
            buffers = {k: host_buffer(v.shape[1:], plan.dtype) for k, v in store.items()}
            _write(buffers, family.live_expert_refs(config, slot), sources[t].read_expert(slot))
            forward.host[(t, e)] = buffers
            forward.host_tenants.add(t)
            pool.host.extend(buffers.values())
        if host:
            forward.cache = _HostCache(store, len(entries), cache_rows)
            pool.caches.append(forward.cache)
        n_shared = sum(plan.decision(ExpertSlot(layer, e)).shared for e in range(n_experts))
        for name, tensor in store.items():
            experts._parameters[name.rpartition(".")[2]] = frozen(tensor)
            pool.tensors.append(experts._parameters[name.rpartition(".")[2]])
            pool.rows.append((n_shared, len(entries) - n_shared, n_rows - len(entries)))
        if hasattr(experts, "num_experts"):
            # The experts' own forward counts pool rows (grouped_mm histograms, eager one-hot).
            experts.num_experts = n_rows
        experts.forward = forward
        forwards.append(forward)
        stores.append(store)
    tenant_tables = tables.to(device)
    pool.tables.append(tenant_tables)

    def bind(tenant: int) -> None:
        live_table.copy_(tenant_tables[tenant])  # in place: the forward reads a fixed address
        for forward in forwards:
            forward.tenant = tenant

    def read(tenant: int, slot: ExpertSlot) -> dict[str, torch.Tensor]:
        row = int(tables[tenant, slot.layer, slot.expert])
        if row < 0:
            rows = forwards[slot.layer].host[(tenant, slot.expert)]
        else:
            rows = {key: pool_tensor[row] for key, pool_tensor in stores[slot.layer].items()}
        return {
            m: rows[ref.key] if ref.rows is None else rows[ref.key][ref.rows[0] : ref.rows[1]]
            for m, ref in family.live_expert_refs(config, slot).items()
        }

    pool.bind, pool.read = bind, read
    return pool


# An adapter's expert_layout -> how a pool of that layout is built.
_POOL_BUILDERS: Registry[Callable[..., ExpertPool]] = Registry("expert layout", plural="layouts")
_POOL_BUILDERS.add("fused", _build_fused_pool)
_POOL_BUILDERS.add("per_expert", _build_per_expert_pool)


def pool_builder(family: MoEFamily, host_tier: bool) -> Callable[..., ExpertPool]:
    # The adapter says how its experts are laid out; a layout is how the pool is built.
    layout = getattr(family, "expert_layout", None)
    builder = _POOL_BUILDERS.get(layout, None)
    if builder is None:
        raise ValueError(
            f"family {family.name!r}: {_POOL_BUILDERS.unknown(layout)}; set the adapter's "
            "expert_layout to one of them"
        )
    if host_tier and layout != "fused":
        raise ValueError(
            f"placement 'offload' copies host-tier experts into rows of a fused expert pool; "
            f"family {family.name!r} keeps one module per expert, so plan it with "
            f"placement='resident'"
        )
    return builder
