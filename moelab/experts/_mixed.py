"""Mixed precision per expert in one layer: some experts in bf16, others in 4 bits.

:func:`quantize_experts` converts the chosen experts of a fused-experts model (Mixtral, OLMoE)
in place: each layer's ``gate_up_proj`` and ``down_proj`` become :class:`MixedExperts`, a
dense pool of the experts kept as they are plus an :class:`~moelab.experts.Int4Experts` pool of
the quantized ones, and two index tables (expert -> row in its pool, -1 elsewhere). The routed
path runs both pools over every assignment; each kernel writes zeros for the assignments of
the other pool, so one step stays one graph with no host synchronisation.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from labcore.checks import check_int
from moelab.experts._int4 import Int4Experts, quantize_int4
from moelab.families import ExpertSlot, detect_family, forbid_conversion

__all__ = ["FUSED_MATRICES", "MixedExperts", "apply_precision_plan", "quantize_experts"]

#: The expert matrices of the fused layouts (transformers 5), one tensor per layer each.
FUSED_MATRICES = ("gate_up_proj", "down_proj")
_ROUTED_ONLY = (
    "experts quantized by quantize_experts are read by the routed path only; keep "
    "model.set_experts_implementation('moelab_routed'), or quantize a fresh model"
)


#: (host mode, quantized) pairs a layer's pools hold; None: on the GPU.
_RUNNABLE = {
    (None, False),
    (None, True),
    ("copy", False),
    ("copy", True),
    ("compute", False),
    ("stream", False),
    ("stream", True),
}
_LOCKED = (
    "a model whose experts quantize_experts converted cannot be converted (.to, .half, "
    ".cuda) or saved: its 4-bit experts are no parameters; quantize on the target device "
    "and dtype, and save the original model"
)


@dataclass(frozen=True)
class MixedExperts:
    """One fused expert matrix of a layer, each expert in full precision or in 4 bits.

    Attributes
    ----------
    dense : Tensor ``[E_dense, N, K]`` or None
        The experts kept as they were.
    int4 : Int4Experts or None
        The quantized experts.
    dense_rows, int4_rows : Tensor ``[E]``, int64
        Row of each expert in ``dense`` / ``int4``; -1 where it lives in the other pool.
    host : mapping of int to Tensor ``[N, K]``
        Full-precision experts kept in host memory, copied into one of ``dense``'s last
        ``cache_rows`` rows when routed to (least recently used first out).
    cache_rows : int
        Rows at the end of ``dense`` for host experts.
    host_compute : bool
        Host experts computed in host memory (:func:`~moelab.experts.host_linear`) instead of
        copied into cache rows (then ``cache_rows`` is 0).
    host_int4 : mapping of int to Int4Experts
        Quantized experts kept in host memory (one expert each), copied into one of ``int4``'s
        last ``int4_cache_rows`` rows when routed to.
    int4_cache_rows : int
        Rows at the end of ``int4`` for them.
    streamed, streamed_int4 : Tensor ``[E_s, N, K]`` / Int4Experts, or None
        Experts kept in host memory that the kernels read there in place on every use
        (:func:`~moelab.reconfigure.device_view`): no rows, no copies, no host synchronisation.
    streamed_rows, streamed_int4_rows : Tensor ``[E]``, int64, or None
        Row of each expert in ``streamed`` / ``streamed_int4``; -1 elsewhere.
    """

    dense: torch.Tensor | None
    int4: Int4Experts | None
    dense_rows: torch.Tensor
    int4_rows: torch.Tensor
    host: Mapping[int, torch.Tensor] = field(default_factory=dict)
    cache_rows: int = 0
    host_compute: bool = False
    host_int4: Mapping[int, Int4Experts] = field(default_factory=dict)
    int4_cache_rows: int = 0
    streamed: torch.Tensor | None = None
    streamed_int4: Int4Experts | None = None
    streamed_rows: torch.Tensor | None = None
    streamed_int4_rows: torch.Tensor | None = None
    _cached: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _cached_int4: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _traffic: Counter = field(default_factory=Counter, repr=False)

    def fetch(self, expert: int) -> int:
        """The row holding host expert ``expert`` (of ``dense``, or of ``int4`` for a quantized
        one), copied in if it is not there: least recently used rows are reused first.
        """
        quantized = expert in self.host_int4
        cached = self._cached_int4 if quantized else self._cached
        self._traffic["uses"] += 1
        if expert in cached:
            cached.move_to_end(expert)
            return cached[expert]
        size = self.int4_cache_rows if quantized else self.cache_rows
        pool = self.int4.packed if quantized else self.dense
        if len(cached) < size:
            row = pool.shape[0] - size + len(cached)
        else:
            row = cached.popitem(last=False)[1]
        if quantized:
            source = self.host_int4[expert]
            for target, tensor in (
                (self.int4.packed, source.packed),
                (self.int4.scale, source.scale),
                (self.int4.zero, source.zero),
            ):
                target[row].copy_(tensor[0], non_blocking=True)
        else:
            self.dense[row].copy_(self.host[expert], non_blocking=True)
        cached[expert] = row
        self._traffic["copies"] += 1
        return row

    @classmethod
    def build(
        cls, weight: torch.Tensor, group_size: int = 64, backend: str = "rtn", **pools: Any
    ) -> MixedExperts:
        """Split one fused ``[E, N, K]`` matrix into pools.

        Parameters
        ----------
        weight : Tensor ``[E, N, K]``
        group_size : int, default 64
        backend : str, default "rtn"
        **pools
            Lists of experts: ``quantized`` (4 bits on the device), ``host`` / ``host_int4``
            (host memory, copied in on use or, with ``host_compute=True``, computed there),
            ``streamed`` / ``streamed_int4`` (host memory, read in place); ``rows`` /
            ``int4_rows`` cache rows and ``pin``. Every other expert stays dense on the device.
        """
        return _mixed(weight, group_size, backend, **pools)

    def cached(self, quantized: bool = False) -> list[int]:
        """Host experts now in the cache rows of the full-precision (or the 4-bit) pool, least
        recently used first.
        """
        return list(self._cached_int4 if quantized else self._cached)

    def copy_traffic(self) -> dict[str, int]:
        """Uses of copied-in host experts since this matrix was built, and how many of them
        missed the cache rows and copied the expert in (``{"uses": ..., "copies": ...}``).

        A use is one expert fetched by one call of the layer: at batch 1 one per routed host
        expert and token; a prompt or a batch that routes several rows to an expert uses it once.
        """
        return {"uses": self._traffic["uses"], "copies": self._traffic["copies"]}

    @property
    def host_experts(self) -> set[int]:
        """Experts in host memory that are copied in or computed there (the routing is read on
        the host to serve them), of both precisions.
        """
        return set(self.host) | set(self.host_int4)

    def pools(
        self, streamed_only: bool = False
    ) -> list[tuple[torch.Tensor | Int4Experts, torch.Tensor]]:
        """``(weights, rows)`` of every pool the kernels read in place: device pools, then
        streamed ones (only those with ``streamed_only``); ``rows[e]`` is expert ``e``'s row
        there, -1 elsewhere.
        """
        pools = (
            [] if streamed_only else [(self.dense, self.dense_rows), (self.int4, self.int4_rows)]
        )
        pools += [
            (self.streamed, self.streamed_rows),
            (self.streamed_int4, self.streamed_int4_rows),
        ]
        return [(w, rows) for w, rows in pools if w is not None]

    @property
    def host_shape(self) -> tuple[int, int]:
        """``(N, K)`` of one expert's matrix."""
        if self.dense is not None:
            return tuple(self.dense.shape[1:])
        if self.int4 is not None:
            return tuple(self.int4.shape[1:])
        if self.streamed is not None:
            return tuple(self.streamed.shape[1:])
        if self.streamed_int4 is not None:
            return tuple(self.streamed_int4.shape[1:])
        return tuple(next(iter(self.host.values())).shape)  # only host experts

    @property
    def num_experts(self) -> int:
        """Experts of the layer."""
        return int(self.dense_rows.numel())

    @property
    def nbytes(self) -> int:
        """Bytes on the device: both pools (the dense one with its cache rows)."""
        dense = 0 if self.dense is None else self.dense.numel() * self.dense.element_size()
        return dense + (0 if self.int4 is None else self.int4.nbytes)

    @property
    def host_bytes(self) -> int:
        """Bytes of the experts kept in host memory (copied in, computed there or streamed)."""
        dense = sum(t.numel() * t.element_size() for t in self.host.values())
        if self.streamed is not None:
            dense += self.streamed.numel() * self.streamed.element_size()
        quantized = [*self.host_int4.values(), self.streamed_int4]
        return dense + sum(q.nbytes for q in quantized if q is not None)

    def __getitem__(self, index: object) -> torch.Tensor:
        raise TypeError(_ROUTED_ONLY)

    def transpose(self, *args: object) -> torch.Tensor:
        raise TypeError(_ROUTED_ONLY)

    def dequantize(self, expert: int) -> torch.Tensor:
        """One expert's matrix ``[N, K]`` as the forward sees it."""
        if expert in self.host:
            return self.host[expert]
        if expert in self.host_int4:
            return self.host_int4[expert].dequantize(0)
        for weights, rows in self.pools():
            row = int(rows[expert])
            if row >= 0:
                return (
                    weights[row] if isinstance(weights, torch.Tensor) else weights.dequantize(row)
                )
        raise IndexError(f"expert {expert} is in none of this layer's pools")


def _in_place_on(device: torch.device, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` copied to page-locked host memory, as ``device`` reads it in place."""
    from moelab.reconfigure import device_view, pinned_copy

    return device_view(pinned_copy(tensor), device)


def _rows_of(experts: list[int], n_experts: int, device: torch.device) -> torch.Tensor:
    """``[E]`` table: row ``i`` for ``experts[i]``, -1 for every other expert."""
    table = torch.full((n_experts,), -1, dtype=torch.long, device=device)
    table[list(experts)] = torch.arange(len(experts), device=device)
    return table


def _mixed(
    weight: torch.Tensor,
    group_size: int,
    backend: str,
    *,
    quantized: list[int] = (),
    host: list[int] = (),
    host_int4: list[int] = (),
    streamed: list[int] = (),
    streamed_int4: list[int] = (),
    rows: int = 0,
    int4_rows: int = 0,
    pin: bool = False,
    host_compute: bool = False,
) -> MixedExperts:
    """Split one fused matrix into its pools: ``quantized`` experts in 4 bits on the device,
    ``host`` ones in host memory as stored and ``host_int4`` ones there in 4 bits, with
    ``rows`` / ``int4_rows`` cache rows appended to the device pools; ``streamed`` /
    ``streamed_int4`` ones in host memory that the kernels read in place; the rest dense.
    """
    n_experts = weight.shape[0]
    lists = (quantized, host, host_int4, streamed, streamed_int4)
    elsewhere = {e for experts in lists for e in experts}
    if sum(len(experts) for experts in lists) != len(elsewhere):
        raise ValueError("an expert can live in one pool only; the pool lists overlap")
    if not elsewhere <= set(range(n_experts)):
        raise ValueError(f"pool lists name experts outside 0..{n_experts - 1}")
    kept = [e for e in range(n_experts) if e not in elsewhere]
    device = weight.device

    def to_host(t: torch.Tensor) -> torch.Tensor:
        t = t.to("cpu", copy=True)
        return t.pin_memory() if pin else t

    with torch.no_grad():
        w = weight.detach()
        dense = None
        if kept or rows:
            dense = torch.empty((len(kept) + rows, *w.shape[1:]), dtype=w.dtype, device=device)
            dense[: len(kept)] = w[kept]
        int4, stored_int4, in_place_int4 = None, {}, None
        every = [*quantized, *host_int4, *streamed_int4]
        if every:
            q = quantize_int4(w[every], group_size, backend)
            n, m = len(quantized), len(quantized) + len(host_int4)
            parts = []
            for t in (q.packed, q.scale, q.zero):
                pool = torch.empty((n + int4_rows, *t.shape[1:]), dtype=t.dtype, device=device)
                pool[:n] = t[:n]
                parts.append(pool)
            int4 = Int4Experts(*parts, group_size) if n + int4_rows else None
            for i, e in enumerate(host_int4, start=n):
                one = (to_host(t[i : i + 1]) for t in (q.packed, q.scale, q.zero))
                stored_int4[e] = Int4Experts(*one, group_size)
            if streamed_int4:
                fields = (_in_place_on(device, t[m:]) for t in (q.packed, q.scale, q.zero))
                in_place_int4 = Int4Experts(*fields, group_size)
        stored = {e: to_host(w[e]) for e in host}
        in_place = _in_place_on(device, w[list(streamed)]) if streamed else None
    return MixedExperts(
        dense,
        int4,
        _rows_of(kept, n_experts, device),
        _rows_of(list(quantized), n_experts, device),
        stored,
        rows,
        host_compute,
        stored_int4,
        int4_rows,
        streamed=in_place,
        streamed_int4=in_place_int4,
        streamed_rows=_rows_of(list(streamed), n_experts, device) if streamed else None,
        streamed_int4_rows=(
            _rows_of(list(streamed_int4), n_experts, device) if streamed_int4 else None
        ),
    )


def _check_request(model: nn.Module, int4: object, group_size: int, backend: str) -> set:
    """Everything quantize_experts needs, checked before the model is touched."""
    from moelab.quant import get_backend

    family = detect_family(model)
    config = family.check_config(model)
    slots = family.expert_slots(config)
    if isinstance(int4, ExpertSlot):
        int4 = [int4]
    if isinstance(int4, str) and int4 != "all":
        raise ValueError(f"int4 must be 'all' or an iterable of ExpertSlot, got {int4!r}")
    chosen = set(slots) if int4 == "all" else set(int4)
    unknown = chosen - set(slots)
    if unknown:
        raise ValueError(
            f"expert slots {sorted(unknown)[:3]} are not in this model (layers 0.."
            f"{family.num_moe_layers(config) - 1}, experts 0..{family.num_experts(config) - 1})"
        )
    check_int(group_size, "group_size", minimum=1)
    for name in FUSED_MATRICES:
        for layer in range(family.num_moe_layers(config)):
            weight = getattr(family.moe_block(model, layer).experts, name)
            if isinstance(weight, MixedExperts):
                raise ValueError(
                    "this model's experts are quantized already; start from a fresh model"
                )
            if weight.shape[0] != family.num_experts(config):
                raise ValueError(
                    "these experts are a consolidated model's pool (its rows are not the "
                    "model's experts); quantize_experts takes a plain Mixtral or OLMoE model"
                )
            k = weight.shape[-1]
            if k % group_size or group_size % 8:
                raise ValueError(
                    f"group_size {group_size} must be a multiple of 8 and divide the {k} input "
                    f"columns of the experts' {name}; pick such a divisor of {k}"
                )
    spec = get_backend(backend)
    spec.check_affine("the routed 4-bit kernel")
    spec.ensure_available()  # its optional package now, not midway
    return chosen


def quantize_experts(
    model: nn.Module,
    int4: Iterable[ExpertSlot] | str = "all",
    group_size: int = 64,
    backend: str = "rtn",
) -> nn.Module:
    """Quantize chosen experts of a model to 4 bits, in place, and decode them on the routed path.

    Every argument is checked before the model is changed.

    Parameters
    ----------
    model : PreTrainedModel
        A plain fused-experts model (Mixtral, OLMoE; not a consolidated model's live model),
        on the device and in the dtype it will run in.
    int4 : iterable of ExpertSlot, ExpertSlot or "all", default "all"
        The experts to store in 4 bits; the others keep their dtype.
    group_size : int, default 64
        Input columns per scale and zero (even; must divide the hidden and intermediate sizes).
    backend : str, default "rtn"
        How scales and zeros are chosen (:func:`moelab.quant.available_backends`; an affine
        one: the routed kernel does not decode bitsandbytes' codebooks).

    Returns
    -------
    PreTrainedModel
        ``model``, for inference on the routed path (the only experts implementation that
        reads :class:`MixedExperts`; another one raises). Its 4-bit experts are no parameters:
        ``.to()``, ``.half()``, ``.cuda()`` and ``save_pretrained`` raise, the state dict and
        ``num_parameters()`` leave them out, and there is no backward through them.

    Raises
    ------
    ValueError
        A model with one module per expert, already quantized, or a consolidated model's live
        model; an expert slot out of range; a group size that does not divide the matrices;
        a codebook backend.
    MissingExtraError
        For ``backend="hqq"`` without the ``quant`` extra.
    """
    from moelab.experts import use_routed_experts

    family = detect_family(model)
    if family.expert_layout != "fused":
        use_routed_experts(model)  # raises: one module per expert
    chosen = _check_request(model, int4, group_size, backend)
    config = family.check_config(model)
    for layer in range(family.num_moe_layers(config)):
        experts = family.moe_block(model, layer).experts
        quantized = sorted(s.expert for s in chosen if s.layer == layer)
        for name in FUSED_MATRICES:
            weight = experts._parameters.pop(name)
            setattr(experts, name, _mixed(weight, group_size, backend, quantized=quantized))
            del weight
    use_routed_experts(model)
    forbid_conversion(model, _LOCKED)
    return model


def apply_precision_plan(model: nn.Module, plan: Any, backend: str = "rtn") -> nn.Module:
    """Store a model's experts as a :class:`~moelab.quant.PrecisionPlan` says, in place.

    Full-precision GPU experts stay on the model's device, quantized ones are stored in 4 bits
    there, and CPU experts move to host memory (page-locked where CUDA is available, except
    those computed on the CPU, which never cross the bus). There they are copied into a
    layer's cache rows when routed to (``host="copy"``) or computed on the CPU
    (``host="compute"``), both of which read the routing on the host, so such a model decodes
    without a captured graph; or the GPU's kernels read them in place across the host bus
    (``host="stream"``), so the step stays one captured graph.

    Parameters
    ----------
    model : PreTrainedModel
        The plan's model (Mixtral, OLMoE), on the device the plan's GPU budget is for.
    plan : PrecisionPlan
        From :func:`moelab.quant.plan_precision` with ``bits=4`` and ``rows=None``.
    backend : str, default "rtn"
        How the 4-bit experts' scales and zeros are chosen.

    Returns
    -------
    PreTrainedModel
        ``model``, on the routed path (see :func:`quantize_experts` for what it refuses).

    Raises
    ------
    ValueError
        A plan of another model, with bits other than 4, or with one set of rows for the whole
        model.
    """
    from moelab.experts import use_routed_experts

    family = detect_family(model)
    config = family.check_config(model)
    if tuple(family.expert_slots(config)) != tuple(plan.slots):
        raise ValueError("this plan was made for another model (its expert slots differ)")
    if {b for b in plan.bits if b is not None} - {4}:
        raise ValueError("only 4-bit experts run on the routed path; plan with bits=4")
    if plan.cache_rows and not plan.rows_per_layer:
        raise ValueError(
            "plans with one set of rows for the whole model (rows=N) cannot run yet; plan with rows=None"
        )
    chosen = {s for s, b in zip(plan.slots, plan.bits) if b is not None}
    _check_request(model, chosen, plan.group_size, backend)
    mode = {s: plan.host_mode(i) for i, s in enumerate(plan.slots)}
    for s, bits in zip(plan.slots, plan.bits):  # every slot checked before the model changes
        if (mode[s], s in chosen) not in _RUNNABLE:
            raise ValueError(
                f"{s} is planned {mode[s]!r} at {bits} bits, which no pool holds (host experts "
                "are copied in or read in place at any width, computed on the CPU only at full "
                "precision)"
            )
    pin = torch.cuda.is_available()
    for layer in range(family.num_moe_layers(config)):
        experts = family.moe_block(model, layer).experts
        slots = [s for s in plan.slots if s.layer == layer]

        def pick(how: str | None, quantized: bool, slots: list = slots) -> list[int]:
            return [s.expert for s in slots if mode[s] == how and (s in chosen) == quantized]

        copied, copied_int4 = pick("copy", False), pick("copy", True)
        computed = pick("compute", False)
        for name in FUSED_MATRICES:
            weight = experts._parameters.pop(name)
            mixed = _mixed(
                weight,
                plan.group_size,
                backend,
                quantized=pick(None, True),
                host=copied + computed,  # a plan copies its host experts in or computes them
                host_int4=copied_int4,
                streamed=pick("stream", False),
                streamed_int4=pick("stream", True),
                rows=plan.rows_per_layer if copied else 0,
                int4_rows=plan.rows_per_layer if copied_int4 else 0,
                pin=pin and not computed,  # computed ones never cross the bus
                host_compute=bool(computed),
            )
            setattr(experts, name, mixed)
            del weight
    use_routed_experts(model)
    forbid_conversion(model, _LOCKED)
    return model
