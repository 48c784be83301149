"""A consolidated multi-tenant MoE model and its runtime partial reconfiguration.

:class:`ConsolidatedMoE` holds, for N tenants planned by :func:`moelab.consolidation.plan_consolidation`:

* **one expert pool**: a shared slot is stored once, a private slot once per tenant;
* **one non-expert set per tenant**: embeddings, attention, norms, lm_head and the router (and
  Switch's dense MLPs), everything that is not an expert;
* **one live model**: a transformers model whose parameters are bound to one tenant at a time.

:meth:`ConsolidatedMoE.activate` is the serving paper's runtime partial reconfiguration: the live
model takes that tenant's non-expert set and expert mapping. Two modes:

``"swap"``
    every tenant's non-expert set is resident on the device; activation re-points the live
    model's parameters to the tenant's tensors (a dictionary assignment per parameter, no copy).
``"copy"``
    one live non-expert set is resident; every tenant's set is staged in host memory (pinned
    when CUDA is available) and copied into the live tensors on activation, as in the paper.
    Both sides are flat buffers (one per dtype; the live parameters are views into them), so a
    whole set moves with one copy per dtype.

How the live model reads a per-tenant expert mapping, without copying experts:

* Families that keep **one parameter per expert** (Switch Transformers): activation re-points
  each expert parameter of the live model to the tenant's pool entry, like the non-expert set.
* Families that keep the experts of a layer **fused** in one ``[E, ...]`` parameter (Mixtral,
  OLMoE): a fused tensor cannot be a view of scattered pool rows, and assembling one fused
  tensor per tenant would store shared slots N times. Instead the pool of a layer *is* one
  ``[P, ...]`` parameter (P = shared slots + private slots x tenants) installed in the live
  experts module, and a forward pre-hook maps the router's expert indices through the active
  tenant's ``[E]`` index table before the experts run. The experts module's own forward
  (eager, grouped_mm or batched_mm) does the rest, so the arithmetic is the model's own.

:meth:`ConsolidatedMoE.memory_report` and :meth:`ConsolidatedMoE.resident_bytes` both measure
storage (``untyped_storage().nbytes()``, each storage counted once), not element counts, so an
over-allocated or duplicated tensor shows up in both.

Examples
--------
>>> cmoe = ConsolidatedMoE.from_plan(plan)                      # doctest: +SKIP
>>> cmoe.activate("code")                                        # doctest: +SKIP
2.1e-05
>>> cmoe.generate("code", input_ids=ids, max_new_tokens=8)       # doctest: +SKIP
"""

from __future__ import annotations

import copy
import inspect
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

import pandas as pd
import torch
from torch import nn

from moelab.consolidation import MEAN_OWNER, ConsolidationPlan
from moelab.families import ExpertSlot, MoEFamily

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "RECONFIGURE_MODES",
    "ConsolidatedMoE",
    "ReconfigureMode",
    "memory_figure",
    "storage_bytes",
]

ReconfigureMode = Literal["swap", "copy"]
"""``"swap"``: all non-expert sets resident, parameters re-pointed; ``"copy"``: one live set,
the others copied in from host memory."""
RECONFIGURE_MODES: tuple[str, ...] = get_args(ReconfigureMode)

def storage_bytes(tensors: Iterator[torch.Tensor] | Sequence[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind some tensors (views and aliases counted once).

    Parameters
    ----------
    tensors : iterable of Tensor
        Tensors that may share storage.

    Returns
    -------
    int
        Sum of ``untyped_storage().nbytes()`` over distinct ``(device, data_ptr)`` storages.

    Examples
    --------
    >>> t = torch.zeros(4)
    >>> storage_bytes([t, t[:2], t.view(2, 2)])
    16
    """
    seen: dict[tuple[str, int], int] = {}
    for tensor in tensors:
        seen[_storage_key(tensor)] = tensor.untyped_storage().nbytes()
    return sum(seen.values())


def _storage_key(tensor: torch.Tensor) -> tuple[str, int]:
    return str(tensor.device), tensor.untyped_storage().data_ptr()


def _frozen(tensor: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(tensor, requires_grad=False)


def _owned_copy(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    # Always a fresh storage: the consolidated model must not keep the source models alive
    # (or share memory with them), or its accounting would be wrong.
    return tensor.detach().to(device=device, copy=True)


def _average(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    stacked = torch.stack([t.detach().to(torch.float32) for t in tensors])
    return stacked.mean(dim=0).to(tensors[0].dtype)


# ============================================================================ non-expert sets
@dataclass
class _ParamSite:
    """One place a parameter is registered: ``params[name]`` of some module."""

    params: dict[str, Any]
    name: str
    qualname: str


def _param_sites(model: nn.Module, exclude: set[int]) -> tuple[list[_ParamSite], list[int]]:
    """Every registration of a non-excluded parameter and, per site, its unique-tensor index.

    Tied parameters (e.g. Switch's shared embedding and lm_head) are registered at several
    sites but map to one unique index, so binding keeps them tied.
    """
    sites: list[_ParamSite] = []
    unique_of: list[int] = []
    seen: dict[int, int] = {}
    for mname, module in model.named_modules(remove_duplicate=False):
        for pname, param in module._parameters.items():
            if param is None or id(param) in exclude:
                continue
            sites.append(_ParamSite(module._parameters, pname, f"{mname}.{pname}" if mname else pname))
            unique_of.append(seen.setdefault(id(param), len(seen)))
    return sites, unique_of


def _unique_params(model: nn.Module, exclude: set[int]) -> list[nn.Parameter]:
    """The non-excluded parameters of ``model`` in the unique order of :func:`_param_sites`."""
    out: list[nn.Parameter] = []
    seen: set[int] = set()
    for _, module in model.named_modules(remove_duplicate=False):
        for param in module._parameters.values():
            if param is None or id(param) in exclude or id(param) in seen:
                continue
            seen.add(id(param))
            out.append(param)
    return out


def _expert_ids(family: MoEFamily, model: nn.Module) -> set[int]:
    return {id(p) for p in family.expert_parameters(model).values()}


# ================================================================================ expert pools
@dataclass
class _Pool:
    """The expert pool of every layer and how to bind one tenant's expert mapping.

    ``shared_rows[i]`` is ``(shared, rows)`` of ``tensors[i]``: how many of its expert rows
    are shared slots (a per-expert tensor is one row, a fused pool has one row per entry).
    """

    tensors: list[torch.Tensor]
    shared_rows: list[tuple[int, int]]
    tables: list[torch.Tensor]
    bind: Callable[[int], None]


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


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
) -> _Pool:
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

                value = _frozen(_owned_copy(_entry_value(plan, owner, read), device))
                tensors.append(value)
                shared_rows.append((int(shared), 1))
                for t in users:
                    bindings[t].append((params, pname, value))

    def bind(tenant: int) -> None:
        for params, pname, value in bindings[tenant]:
            params[pname] = value

    return _Pool(tensors, shared_rows, [], bind)


def _index_keyword(experts: nn.Module) -> str:
    # The fused experts module is called as experts(hidden, top_k_index, top_k_weights).
    names = list(inspect.signature(experts.forward).parameters)
    return names[1] if len(names) > 1 else "top_k_index"


def _fused_experts_module(family: MoEFamily, live: nn.Module, layer: int, expert_ids: set[int]) -> nn.Module:
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


def _build_fused_pool(plan: ConsolidationPlan, live: nn.Module, device: torch.device) -> _Pool:
    """Fused ``[E, ...]`` experts: one ``[P, ...]`` pool per layer and per-tenant index tables."""
    family = plan.family
    n_tenants, n_experts = len(plan.tenants), family.num_experts(live)
    expert_ids = _expert_ids(family, live)
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
        n_shared_rows = sum(
            plan.decision(ExpertSlot(layer, e)).shared for e in range(n_experts)
        )
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
            pool = _frozen(torch.stack(rows).to(device))
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
    return _Pool(tensors, shared_rows, flat_tables, bind)


_POOL_BUILDERS: dict[str, Callable[[ConsolidationPlan, nn.Module, torch.device], _Pool]] = {
    "fused": _build_fused_pool,
    "per_expert": _build_per_expert_pool,
}


def _pool_builder(family: MoEFamily) -> Callable[[ConsolidationPlan, nn.Module, torch.device], _Pool]:
    # The adapter says how its experts are laid out; a layout is how the pool is built.
    layout = getattr(family, "expert_layout", None)
    if layout not in _POOL_BUILDERS:
        raise ValueError(
            f"family {family.name!r} has expert_layout {layout!r}, for which no expert pool "
            f"is known; set it to one of {', '.join(sorted(_POOL_BUILDERS))}"
        )
    return _POOL_BUILDERS[layout]


# ========================================================================== the consolidated model
def _default_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _flatten(tensors: Sequence[torch.Tensor]) -> dict[torch.dtype, torch.Tensor]:
    """One contiguous 1-D buffer per dtype holding ``tensors`` back to back, in order."""
    groups: dict[torch.dtype, list[torch.Tensor]] = {}
    for tensor in tensors:
        groups.setdefault(tensor.dtype, []).append(tensor.detach().reshape(-1))
    return {dtype: torch.cat(parts) for dtype, parts in groups.items()}


def _staged_set(tensors: Sequence[torch.Tensor]) -> dict[torch.dtype, torch.Tensor]:
    """A tenant's non-expert set in host memory, one flat buffer per dtype."""
    flat = {dtype: buf.to("cpu", copy=True) for dtype, buf in _flatten(tensors).items()}
    # Pinned host memory makes host-to-device copies asynchronous and fast; it needs CUDA.
    if torch.cuda.is_available():
        flat = {dtype: buf.pin_memory() for dtype, buf in flat.items()}
    return flat


def _live_set(
    tensors: Sequence[torch.Tensor], device: torch.device
) -> tuple[dict[torch.dtype, torch.Tensor], list[nn.Parameter]]:
    """Flat device buffers plus one parameter view per tensor into them.

    Activation in ``"copy"`` mode then moves a whole non-expert set with one copy per dtype,
    instead of one small copy per parameter.
    """
    flat = {dtype: buf.to(device, copy=True) for dtype, buf in _flatten(tensors).items()}
    offsets = dict.fromkeys(flat, 0)
    views = []
    for tensor in tensors:
        start = offsets[tensor.dtype]
        offsets[tensor.dtype] = start + tensor.numel()
        views.append(_frozen(flat[tensor.dtype][start : offsets[tensor.dtype]].view(tensor.shape)))
    return flat, views


class ConsolidatedMoE:
    """N tenants served by one live model over a shared expert pool.

    Build it with :meth:`from_plan`. Attributes are read-only by convention.

    Attributes
    ----------
    plan : ConsolidationPlan
        The plan it was built from.
    model : PreTrainedModel
        The live model, bound to the active tenant (use it like any transformers model).
    tenants : tuple of str
        Tenant names.
    active : str
        The tenant the live model is bound to.
    mode : {"swap", "copy"}
        How :meth:`activate` reconfigures.
    device : torch.device
        Where the live model and the pool live.
    non_expert_from : str or None
        If set, the paper's ablation "consolidation without reconfiguration": every tenant is
        served with this tenant's non-expert set; activation only changes the expert mapping.
    """

    def __init__(self, *, _token: object = None, **state: Any) -> None:
        if _token is not _BUILD_TOKEN:
            raise TypeError("build a ConsolidatedMoE with ConsolidatedMoE.from_plan(plan)")
        self.__dict__.update(state)

    # ------------------------------------------------------------------------ construction
    @classmethod
    def from_plan(
        cls,
        plan: ConsolidationPlan,
        *,
        device: str | torch.device | None = None,
        mode: ReconfigureMode = "swap",
        non_expert_from: str | None = None,
    ) -> ConsolidatedMoE:
        """Build the consolidated model a plan describes.

        Parameters
        ----------
        plan : ConsolidationPlan
            From :func:`moelab.consolidation.plan_consolidation`.
        device : str or torch.device, optional
            Where the live model and the pool live; CUDA when available, else CPU.
        mode : {"swap", "copy"}, default "swap"
            ``"swap"``: every non-expert set resident on ``device``, activation re-points
            parameters. ``"copy"``: one live set on ``device``, all sets staged in host memory
            (pinned when CUDA is available) and copied in on activation.
        non_expert_from : str, optional
            Serve every tenant with this tenant's non-expert set (the paper's ablation
            "without reconfiguration"); only that set is stored.

        Returns
        -------
        ConsolidatedMoE
            Bound to the first tenant (or to ``non_expert_from``).

        Raises
        ------
        ValueError
            Unknown mode, unknown ``non_expert_from`` tenant, or a family without a pool layout.
        IncompatibleModelsError
            If the tenants' non-expert parameters are not laid out alike.
        """
        if mode not in RECONFIGURE_MODES:
            raise ValueError(f"unknown mode {mode!r}; known modes: {', '.join(RECONFIGURE_MODES)}")
        if not isinstance(plan, ConsolidationPlan):
            raise ValueError(f"expected a ConsolidationPlan, got {type(plan).__name__}")
        if non_expert_from is not None and non_expert_from not in plan.tenants:
            raise ValueError(
                f"unknown tenant {non_expert_from!r} for non_expert_from; tenants: "
                f"{', '.join(plan.tenants)}"
            )
        device = _default_device(device)
        family = plan.family
        builder = _pool_builder(family)
        source = plan.models[0].model
        # The live model starts as a structural copy that shares the first tenant's parameters
        # (no weight is copied); every parameter is then re-bound to tensors owned here.
        live = copy.deepcopy(source, memo={id(p): p for p in source.parameters()})
        expert_ids = _expert_ids(family, live)
        sites, unique_of = _param_sites(live, expert_ids)
        pool = builder(plan, live, device)
        serving = plan.tenants if non_expert_from is None else (non_expert_from,)
        unique_sets = {t: _tenant_params(plan, t, unique_of) for t in serving}
        sets: dict[str, list[nn.Parameter]] = {}
        staged: dict[str, dict[torch.dtype, torch.Tensor]] = {}
        live_flat: dict[torch.dtype, torch.Tensor] = {}
        live_set: list[nn.Parameter] = []
        if mode == "swap" or non_expert_from is not None:
            sets = {t: [_frozen(_owned_copy(p, device)) for p in ps] for t, ps in unique_sets.items()}
        else:
            staged = {t: _staged_set(ps) for t, ps in unique_sets.items()}
            live_flat, live_set = _live_set(unique_sets[serving[0]], device)
        for module in live.modules():
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    module._buffers[name] = buffer.to(device)
        live.eval()
        cmoe = cls(
            _token=_BUILD_TOKEN,
            plan=plan,
            model=live,
            family=family,
            tenants=plan.tenants,
            mode=mode if non_expert_from is None else "swap",
            device=device,
            non_expert_from=non_expert_from,
            _sites=sites,
            _unique_of=unique_of,
            _sets=sets,
            _staged=staged,
            _live_set=live_set,
            _live_flat=live_flat,
            _pool=pool,
            _active=None,
            last_copy_bytes=0,
        )
        if live_set:
            cmoe._bind_non_expert(live_set)
        elif non_expert_from is not None:
            cmoe._bind_non_expert(sets[non_expert_from])
        cmoe.activate(serving[0])
        cmoe._check_owns_storage()
        return cmoe

    # ---------------------------------------------------------------------------- internals
    def _bind_non_expert(self, params: Sequence[nn.Parameter]) -> None:
        for site, k in zip(self._sites, self._unique_of):
            site.params[site.name] = params[k]

    def _tenant_index(self, tenant: str) -> int:
        if tenant not in self.tenants:
            raise ValueError(
                f"unknown tenant {tenant!r}; this consolidated model serves: {', '.join(self.tenants)}"
            )
        return self.tenants.index(tenant)

    def _activate_swap(self, tenant: str) -> None:
        if self.non_expert_from is None:
            self._bind_non_expert(self._sets[tenant])

    def _activate_copy(self, tenant: str) -> None:
        if tenant == self._active:
            self.last_copy_bytes = 0
            return
        copied = 0
        with torch.no_grad():
            for dtype, dst in self._live_flat.items():
                src = self._staged[tenant][dtype]
                dst.copy_(src, non_blocking=True)
                copied += _nbytes(src)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.last_copy_bytes = copied

    _ACTIVATORS: ClassVar[dict[str, str]] = {"swap": "_activate_swap", "copy": "_activate_copy"}

    def _held_tensors(self) -> Iterator[torch.Tensor]:
        yield from self.model.parameters()
        yield from self.model.buffers()
        for params in self._sets.values():
            yield from params
        for flat in self._staged.values():
            yield from flat.values()
        yield from self._live_set
        yield from self._live_flat.values()
        yield from self._pool.tensors
        yield from self._pool.tables

    def _check_owns_storage(self) -> None:
        # Honest accounting: nothing the live model uses may still be a source model's tensor.
        source = {
            p.untyped_storage().data_ptr() for m in self.plan.models for p in m.model.parameters()
        }
        leaked = [
            name for name, p in self.model.named_parameters()
            if p.untyped_storage().data_ptr() in source
        ]
        if leaked:
            raise RuntimeError(f"consolidated model still uses source tensors: {leaked[:3]}")

    # -------------------------------------------------------------------------------- API
    @property
    def active(self) -> str:
        """The tenant the live model is bound to."""
        return self._active

    def activate(self, tenant: str) -> float:
        """Runtime partial reconfiguration: bind the live model to one tenant.

        The live model takes the tenant's non-expert set (re-pointed in ``"swap"`` mode, copied
        from host memory in ``"copy"`` mode) and its expert mapping (always re-pointed).

        Parameters
        ----------
        tenant : str
            One of :attr:`tenants`.

        Returns
        -------
        float
            Seconds it took (on CUDA, including the wait for the copies to finish).

        Raises
        ------
        ValueError
            Unknown tenant; the message lists the tenants.

        Examples
        --------
        >>> cmoe.activate("code") < 1e-3  # doctest: +SKIP
        True
        """
        index = self._tenant_index(tenant)
        start = time.perf_counter()
        getattr(self, self._ACTIVATORS[self.mode])(tenant)
        self._pool.bind(index)
        elapsed = time.perf_counter() - start
        self._active = tenant
        return elapsed

    def forward(self, tenant: str, *args: Any, **kwargs: Any) -> Any:
        """Activate ``tenant`` and run the live model's forward.

        Parameters
        ----------
        tenant : str
            One of :attr:`tenants`.
        *args, **kwargs
            Passed to the transformers model (e.g. ``input_ids=...``).

        Returns
        -------
        ModelOutput
            What the transformers model returns.
        """
        self.activate(tenant)
        return self.model(*args, **kwargs)

    __call__ = forward

    def generate(self, tenant: str, **kwargs: Any) -> torch.Tensor:
        """Activate ``tenant`` and generate with transformers' own ``generate``.

        Parameters
        ----------
        tenant : str
            One of :attr:`tenants`.
        **kwargs
            Passed to ``model.generate`` (``input_ids``, ``max_new_tokens``, ...).

        Returns
        -------
        Tensor
            Generated token ids.
        """
        self.activate(tenant)
        return self.model.generate(**kwargs)

    def memory_report(self) -> pd.DataFrame:
        """Measured bytes of every component the consolidated model holds.

        Each component is the storage behind its tensors (``untyped_storage().nbytes()``),
        every storage counted once, in the first component that holds it; so a tensor that
        over-allocates or duplicates its storage is reported as it is, not by element count.

        Returns
        -------
        pandas.DataFrame
            Columns ``component``, ``tenant``, ``location`` (``"device"`` or ``"host"``),
            ``bytes``. Components: ``"non-expert set"`` (one per resident tenant, ``"swap"``),
            ``"live non-expert set"`` and ``"staged non-expert set"`` (``"copy"``),
            ``"shared experts"``, ``"private experts"``, ``"buffers and index tables"``. A
            fused pool's storage is split between shared and private experts by its rows.
            The sum equals :meth:`resident_bytes`.
        """
        seen: set[tuple[str, int]] = set()

        def measured(tensors: Iterable[torch.Tensor]) -> int:
            fresh = [t for t in tensors if _storage_key(t) not in seen]
            seen.update(_storage_key(t) for t in fresh)
            return storage_bytes(fresh)

        rows = [
            {"component": "non-expert set", "tenant": t, "location": "device", "bytes": measured(params)}
            for t, params in self._sets.items()
        ]
        if self._live_set:
            rows.append({"component": "live non-expert set", "tenant": "active", "location": "device",
                         "bytes": measured([*self._live_flat.values(), *self._live_set])})
        rows += [
            {"component": "staged non-expert set", "tenant": t, "location": "host",
             "bytes": measured(flat.values())}
            for t, flat in self._staged.items()
        ]
        shared = private = 0
        for tensor, (n_shared, n_rows) in zip(self._pool.tensors, self._pool.shared_rows):
            nbytes = measured([tensor])
            part = nbytes * n_shared // n_rows  # rows of one pool are equally long
            shared, private = shared + part, private + nbytes - part
        rows += [
            {"component": "shared experts", "tenant": "all", "location": "device", "bytes": shared},
            {"component": "private experts", "tenant": "all", "location": "device", "bytes": private},
            {"component": "buffers and index tables", "tenant": "all", "location": "device",
             "bytes": measured([*self.model.buffers(), *self._pool.tables])},
        ]
        return pd.DataFrame(rows, columns=["component", "tenant", "location", "bytes"])

    def resident_bytes(self) -> int:
        """Measured bytes of every tensor this object holds, deduplicated by storage.

        Returns
        -------
        int
            :func:`storage_bytes` of the live model's parameters and buffers, every non-expert
            set (resident or staged), the expert pool and its index tables.
        """
        return storage_bytes(self._held_tensors())

    def memory_figure(self) -> go.Figure:
        """Stacked bars: this model's memory against N separate models (see :func:`memory_figure`)."""
        return memory_figure(self)

    def __repr__(self) -> str:
        return (
            f"ConsolidatedMoE(tenants={list(self.tenants)}, active={self.active!r}, "
            f"mode={self.mode!r}, shared={self.plan.n_shared}/{self.plan.memory.n_slots}, "
            f"device={str(self.device)!r})"
        )


_BUILD_TOKEN = object()


def _tenant_params(plan: ConsolidationPlan, tenant: str, unique_of: list[int]) -> list[nn.Parameter]:
    """A tenant's non-expert parameters, in the live model's unique order, with the same ties."""
    from moelab.errors import IncompatibleModelsError

    model = plan.model_of(tenant).model
    exclude = _expert_ids(plan.family, model)
    _, tenant_unique_of = _param_sites(model, exclude)
    if tenant_unique_of != unique_of:
        raise IncompatibleModelsError(
            f"tenant {tenant!r} ties or orders its non-expert parameters differently from "
            f"{plan.tenants[0]!r}; consolidate fine-tunes of one base model"
        )
    return _unique_params(model, exclude)


def memory_figure(cmoe: ConsolidatedMoE) -> go.Figure:
    """Stacked bars of a consolidated model's memory against N separate models.

    Parameters
    ----------
    cmoe : ConsolidatedMoE
        The consolidated model.

    Returns
    -------
    plotly.graph_objects.Figure
        Two bars in MB: the consolidated model (stacked by component, from
        :meth:`ConsolidatedMoE.memory_report`) and N separate models (non-expert sets and
        experts).
    """
    import plotly.graph_objects as go

    report = cmoe.memory_report().groupby("component", sort=False, as_index=False)["bytes"].sum()
    acc = cmoe.plan.memory
    consolidated = f"consolidated ({cmoe.mode})"
    separate = f"{acc.n_tenants} separate models"
    parts = [(row.component, consolidated, row.bytes) for row in report.itertuples()]
    parts += [
        ("non-expert set", separate, sum(acc.non_expert_bytes)),
        ("experts (separate)", separate, acc.naive_expert_bytes),
    ]
    fig = go.Figure()
    for component in dict.fromkeys(p[0] for p in parts):
        xs = [bar for c, bar, _ in parts if c == component]
        ys = [b / 1e6 for c, _, b in parts if c == component]
        fig.add_bar(name=component, x=xs, y=ys)
    fig.update_layout(barmode="stack", yaxis_title="MB", title="Resident parameter memory")
    return fig
