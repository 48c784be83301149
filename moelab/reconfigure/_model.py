"""A consolidated multi-tenant MoE model and its runtime partial reconfiguration.

See :mod:`moelab.reconfigure` for how the live model reads a tenant's non-expert set and expert
mapping.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

import pandas as pd
import torch
from torch import nn

from labcore.checks import check_type
from moelab.consolidation import ConsolidationPlan
from moelab.families import forbid_conversion
from moelab.reconfigure._graphs import CapturedForward
from moelab.reconfigure._pool import pool_builder
from moelab.reconfigure._sets import (
    expert_parameter_ids,
    flat_layout,
    live_buffers,
    param_sites,
    read_set,
    staged_set,
    unique_parameters,
)
from moelab.reconfigure._tensors import storage_bytes, storage_key

__all__ = ["RECONFIGURE_MODES", "ConsolidatedMoE", "ReconfigureMode"]

ReconfigureMode = Literal["swap", "copy"]
"""``"swap"``: all non-expert sets resident, parameters re-pointed; ``"copy"``: one live set,
the others copied in from host memory."""
RECONFIGURE_MODES: tuple[str, ...] = get_args(ReconfigureMode)


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def _default_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _resolve_mode(plan: ConsolidationPlan, mode: ReconfigureMode | None) -> ReconfigureMode:
    """The plan's mode (its non-expert tier), or an explicit one that fits its device budget."""
    planned: ReconfigureMode = "swap" if plan.memory.non_expert_tier == "device" else "copy"
    if mode is None:
        return planned
    if mode not in RECONFIGURE_MODES:
        raise ValueError(f"unknown mode {mode!r}; known modes: {', '.join(RECONFIGURE_MODES)}")
    if mode == "swap" and planned == "copy":
        raise ValueError(
            "mode 'swap' keeps every tenant's non-expert set on the device, but this plan's "
            "device budget counts one live set (non_expert='host'); use mode='copy', or plan "
            "with non_expert='device'"
        )
    return mode


_SAVING_REFUSED = (
    "the live model of a ConsolidatedMoE holds a pooled expert layout (shared rows and "
    "per-tenant index tables) that no checkpoint format describes; save one tenant with "
    "ConsolidatedMoE.save_tenant(tenant, folder)"
)
_CONVERSION_REFUSED = (
    "the live model of a ConsolidatedMoE cannot be converted in place (.to, .half, .cuda, "
    "...): it would convert the active tenant's tensors and the shared pool but not the "
    "other tenants' sets; build it again with ConsolidatedMoE.from_plan(plan, device=...) "
    "from a plan made with plan_consolidation(..., dtype=...)"
)


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
        mode: ReconfigureMode | None = None,
        non_expert_from: str | None = None,
    ) -> ConsolidatedMoE:
        """Build the consolidated model a plan describes.

        Parameters
        ----------
        plan : ConsolidationPlan
            From :func:`moelab.consolidation.plan_consolidation`.
        device : str or torch.device, optional
            Where the live model and the pool live; CUDA when available, else CPU.
        mode : {"swap", "copy"}, optional
            ``"swap"``: every non-expert set resident on ``device``, activation re-points
            parameters. ``"copy"``: one live set on ``device``, all sets staged in host memory
            (pinned when CUDA is available) and copied in on activation. By default the plan's
            (``non_expert="device"`` -> swap, ``"host"`` -> copy).
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
        check_type(plan, ConsolidationPlan, "plan")
        mode = _resolve_mode(plan, mode)
        if non_expert_from is not None and non_expert_from not in plan.tenants:
            raise ValueError(
                f"unknown tenant {non_expert_from!r} for non_expert_from; tenants: "
                f"{', '.join(plan.tenants)}"
            )
        sources = [plan.source_of(t) for t in plan.tenants]
        device = _default_device(device)
        family = plan.family
        builder = pool_builder(family, any(d.tier == "host" for d in plan.decisions))
        # The live model is built on the meta device: nothing of it is allocated until a real
        # tensor (a tenant's non-expert set, the pool) is bound in place of a meta parameter.
        live = family.meta_model(plan.config, plan.dtype)
        family.init_buffers(live, device)
        expert_ids = expert_parameter_ids(family, live)
        sites, unique_of = param_sites(live, expert_ids)
        like, names = unique_parameters(live, expert_ids)
        pool = builder(plan, sources, live, device)
        serving = plan.tenants if non_expert_from is None else (non_expert_from,)
        sets: dict[str, list[nn.Parameter]] = {}
        staged: dict[str, dict[torch.dtype, torch.Tensor]] = {}
        live_flat: dict[torch.dtype, torch.Tensor] = {}
        live_set: list[nn.Parameter] = []
        for tenant in serving:
            source = sources[plan.tenants.index(tenant)]
            if mode == "swap":
                sets[tenant] = read_set(source, tenant, like, names, plan.dtype, device)
            else:
                staged[tenant] = staged_set(source, tenant, like, names, plan.dtype)
        if mode == "copy":
            live_flat, live_set = live_buffers(like, plan.dtype, device)
        cmoe = cls(
            _token=_BUILD_TOKEN,
            plan=plan.detached(),
            model=live,
            family=family,
            tenants=plan.tenants,
            mode=mode,
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
            _live_tenant=None,
            last_copy_bytes=0,
        )
        # .to(), .half(), .cuda() would convert one tenant only; its pooled experts are no
        # checkpoint layout.
        forbid_conversion(live, _CONVERSION_REFUSED, save_message=_SAVING_REFUSED)
        cmoe._bind_non_expert(live_set or sets[serving[0]])
        cmoe.activate(serving[0])
        cmoe._check_built(sources)
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
        wanted = self.non_expert_from or tenant
        if wanted == self._live_tenant:
            self.last_copy_bytes = 0
            return
        copied = 0
        with torch.no_grad():
            for dtype, dst in self._live_flat.items():
                src = self._staged[wanted][dtype]
                dst.copy_(src, non_blocking=True)
                copied += _nbytes(src)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.last_copy_bytes = copied
        self._live_tenant = wanted

    _ACTIVATORS: ClassVar[dict[str, str]] = {"swap": "_activate_swap", "copy": "_activate_copy"}

    def held_tensors(self) -> Iterator[torch.Tensor]:
        """Every tensor the consolidated model holds: the live model's parameters and buffers,
        each tenant's non-expert set, the staged flat copies, the live set and the expert pool.

        A tensor may appear more than once (a live parameter is also in its tenant's set); what
        :meth:`resident_bytes` counts is their storages, each once.

        Yields
        ------
        Tensor
        """
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
        yield from self._pool.host

    _held_tensors = held_tensors  # the former name, kept for callers that still use it

    def _check_built(self, sources: Sequence[Any]) -> None:
        # Nothing may stay on the meta device, and nothing may be a source model's tensor:
        # either would make the live model wrong, or its memory report dishonest.
        left = [
            n for n, t in (*self.model.named_parameters(), *self.model.named_buffers()) if t.is_meta
        ]
        if left:
            raise RuntimeError(f"consolidated model left tensors unbuilt: {left[:3]}")
        source = {
            storage_key(p)
            for s in sources
            if isinstance(getattr(s, "model", None), nn.Module)
            for p in s.model.parameters()
        }
        leaked = [t for t in self.held_tensors() if storage_key(t) in source]
        if leaked:
            raise RuntimeError("consolidated model still uses source tensors")

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
        >>> seconds = cmoe.activate("code")
        >>> cmoe.active
        'code'
        """
        index = self._tenant_index(tenant)
        start = time.perf_counter()
        getattr(self, self._ACTIVATORS[self.mode])(tenant)
        self._pool.bind(index)
        elapsed = time.perf_counter() - start
        self._active = tenant
        return elapsed

    def capture(self, forward: Callable[[], torch.Tensor], **kwargs: Any) -> CapturedForward:
        """A CUDA graph of ``forward()`` on the live model, for the active tenant.

        In ``"copy"`` mode of a fused family the graph serves every tenant (one live set, one
        live index table); otherwise it reads the active tenant's re-pointed parameters, and
        replaying it while another tenant is active raises: capture one graph per tenant.

        Parameters
        ----------
        forward : callable
            ``forward() -> Tensor`` over static inputs, e.g.
            ``lambda: cmoe.model(input_ids=ids, attention_mask=mask).logits``.
        **kwargs
            Passed to :class:`CapturedForward` (``warmup``, ``same_stream``).

        Returns
        -------
        CapturedForward

        Raises
        ------
        ValueError
            On a model that is not on CUDA, or one with host-tier experts (their copies read
            the routing on the host, which a graph cannot do; plan with placement="resident").
        """
        if self.device.type != "cuda":
            raise ValueError(f"CUDA graphs need a model on CUDA; this one is on {self.device}")
        if self._pool.host:
            raise ValueError(
                "this model copies host-tier experts on use, after reading the routing on the "
                "host, which a CUDA graph cannot do; plan it with placement='resident'"
            )
        tenant = self.active
        fused = self.family.expert_layout == "fused"
        shared = fused and (self.mode == "copy" or self.non_expert_from is not None)

        def guard() -> None:
            if not shared and self.active != tenant:
                raise RuntimeError(
                    f"this graph reads tenant {tenant!r}'s weights (they are re-pointed, not "
                    f"copied, on a switch); activate({tenant!r}) before replaying it, or "
                    f"capture one graph per tenant"
                )

        return CapturedForward(forward, guard=guard, **kwargs)

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
        """Measured bytes of every component the consolidated model holds, by location.

        Each component is the storage behind its tensors (``untyped_storage().nbytes()``),
        every storage counted once, in the first component that holds it; so a tensor that
        over-allocates or duplicates its storage is reported as it is, not by element count.

        Returns
        -------
        pandas.DataFrame
            Columns ``component``, ``tenant``, ``location`` (``"device"`` or ``"host"``),
            ``bytes``. Components: ``"non-expert set"`` (one per resident tenant, ``"swap"``),
            ``"live non-expert set"`` and ``"staged non-expert set"`` (``"copy"``),
            ``"shared experts"``, ``"private experts"`` (device tier, and host tier under
            placement ``"offload"``), ``"expert cache rows"``, ``"buffers and index tables"``.
            A fused pool's storage is split between its kinds of rows by row count. The sum
            equals :meth:`resident_bytes`; the device rows sum to what lives on the device,
            and without the ``"buffers and index tables"`` row (not planned: rotary tables,
            index tables) to the plan's ``memory.device_bytes``.
        """
        seen: set[tuple[str, int]] = set()

        def measured(tensors: Iterable[torch.Tensor]) -> int:
            fresh = [t for t in tensors if storage_key(t) not in seen]
            seen.update(storage_key(t) for t in fresh)
            return storage_bytes(fresh)

        rows = [("non-expert set", t, "device", measured(ps)) for t, ps in self._sets.items()]
        if self._live_set:
            live = measured([*self._live_flat.values(), *self._live_set])
            rows.append(("live non-expert set", "active", "device", live))
        rows += [
            ("staged non-expert set", t, "host", measured(flat.values()))
            for t, flat in self._staged.items()
        ]
        split = [0, 0, 0]
        for tensor, kinds in zip(self._pool.tensors, self._pool.rows):
            nbytes, total = measured([tensor]), sum(kinds)
            parts = [nbytes * k // total for k in kinds]
            parts[1] += nbytes - sum(parts)  # rows of one pool are equally long
            split = [a + b for a, b in zip(split, parts)]
        rows += [
            ("shared experts", "all", "device", split[0]),
            ("private experts", "all", "device", split[1]),
        ]
        if self._pool.host:
            rows.append(("private experts", "all", "host", measured(self._pool.host)))
        if split[2]:
            rows.append(("expert cache rows", "all", "device", split[2]))
        tables = measured([*self.model.buffers(), *self._pool.tables])
        rows.append(("buffers and index tables", "all", "device", tables))
        return pd.DataFrame(rows, columns=["component", "tenant", "location", "bytes"])

    @property
    def copies_experts_on_use(self) -> bool:
        """Whether some experts live in host memory and are copied in when routed to.

        Such a model reads the routing on the host during its forward, so it cannot be
        captured as a CUDA graph (:meth:`capture` refuses it).
        """
        return bool(self._pool.host)

    def copied_expert_bytes(self) -> int:
        """Bytes of host-tier experts copied into device cache rows since the build."""
        return self._pool.copied_bytes()

    def resident_bytes(self) -> int:
        """Measured bytes of every tensor this object holds, deduplicated by storage.

        Returns
        -------
        int
            :func:`storage_bytes` of the live model's parameters and buffers, every non-expert
            set (resident or staged), the expert pool and its index tables.
        """
        return storage_bytes(self.held_tensors())

    def _tenant_set(self, tenant: str) -> list[torch.Tensor]:
        """A tenant's non-expert tensors in the unique order (staged ones viewed by shape)."""
        wanted = self.non_expert_from or tenant
        if self._sets:
            return [p.detach() for p in self._sets[wanted]]
        _, slices = flat_layout(self._live_set, self.plan.dtype)
        staged = self._staged[wanted]
        return [
            staged[target][start:stop].view(like.shape)
            for like, (target, start, stop) in zip(self._live_set, slices)
        ]

    def save_tenant(self, tenant: str, folder: str | os.PathLike[str]) -> Path:
        """Write what one tenant computes with as a checkpoint folder (``save_pretrained``).

        The live model itself cannot be saved as a checkpoint: its experts are a pool with
        per-tenant index tables, which no transformers model reads. This assembles the tenant's
        model on the host (its non-expert set and, per slot, the expert it uses: its own, or the
        shared owner's) and saves that; ``load_moe(folder)`` computes what :meth:`forward` does.

        Parameters
        ----------
        tenant : str
            One of :attr:`tenants`.
        folder : str or PathLike
            Where to write; created if missing.

        Returns
        -------
        Path
            The folder.
        """
        index = self._tenant_index(tenant)
        family, config = self.family, self.plan.config
        model = family.empty_model(config, "cpu", self.plan.dtype)
        like, _ = unique_parameters(model, expert_parameter_ids(family, model))
        with torch.no_grad():
            for param, value in zip(like, self._tenant_set(tenant)):
                param.copy_(value)
            for slot in family.expert_slots(config):
                family.set_expert(model, slot, self._pool.read(index, slot))
        model.save_pretrained(folder)
        return Path(folder)

    def __repr__(self) -> str:
        return (
            f"ConsolidatedMoE(tenants={list(self.tenants)}, active={self.active!r}, "
            f"mode={self.mode!r}, shared={self.plan.n_shared}/{self.plan.memory.n_slots}, "
            f"device={str(self.device)!r})"
        )


_BUILD_TOKEN = object()
