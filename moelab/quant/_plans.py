"""Precision and placement plans: bits and device per expert slot under a GPU memory budget.

The mixed-precision paper's placement: the non-expert layers go on the GPU first, then every
quantized expert (they are small), then full-precision experts in the order given while the
budget lasts; the experts left over stay in CPU memory and are copied into GPU rows when routed
to, so the GPU keeps one row per expert a token routes to in every layer that has such experts
(full-precision rows, and quantized ones a quarter the size where quantized experts did not fit
either), or are computed on the CPU (``host="compute"``, no rows), or are read in place by the
GPU's kernels across the host bus (``host="stream"``, no rows, no host synchronisation). Bytes
are counted exactly (:meth:`QuantizedMatrix.nbytes`'s formula).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from labcore.checks import check_int
from moelab.families import ExpertSlot
from moelab.quant._backends import SUPPORTED_BITS, get_backend

__all__ = ["HOST_MODES", "PrecisionPlan", "expert_bytes", "plan_precision"]

#: What a plan does with a CPU expert routed to (see :class:`PrecisionPlan`).
HOST_MODES = ("copy", "compute", "stream", "auto")


def expert_bytes(
    shapes: dict[str, tuple[int, int]],
    bits: int | None,
    group_size: int,
    itemsize: int,
    backend: str = "rtn",
) -> int:
    """Bytes of one expert: its matrices at ``bits`` (None: as stored, ``itemsize`` each).

    Quantized matrices count what ``backend`` stores (:meth:`QuantBackend.matrix_bytes`):
    for the affine ones, codes packed at ``bits`` bits and one scale and one zero per group,
    in the compute dtype.
    """
    if bits is None:
        return sum(rows * cols * itemsize for rows, cols in shapes.values())
    spec = get_backend(backend)
    return sum(
        spec.matrix_bytes(rows, cols, bits, group_size, itemsize) for rows, cols in shapes.values()
    )


@dataclass(frozen=True)
class PrecisionPlan:
    """Bits and device of every expert slot of one model.

    Attributes
    ----------
    slots : tuple of ExpertSlot
        Every slot, layer-major.
    bits : tuple of int or None
        Per slot: the quantized width, or None (kept as stored).
    device : tuple of {"gpu", "cpu"}
        Per slot.
    slot_bytes : tuple of int
        Per slot, at its precision.
    non_expert_bytes : int
        The non-expert layers, on the GPU.
    cache_rows : int
        GPU rows for CPU experts copied in on use.
    row_bytes : int
        Bytes of one such row (a full-precision expert).
    budget : int
        The GPU budget it was planned under.
    group_size : int
        Of the quantized experts.
    rows_per_layer : int
        Cache rows of each layer that keeps CPU experts; 0 when the plan keeps one set of
        rows for the whole model (``rows=N``) or none (``host="compute"``).
    host : {"copy", "compute", "stream", "auto"}
        What happens to a CPU expert when routed to: copied into a cache row and run on the
        GPU (the paper), run on the CPU where it lives (as Fiddler does; no cache rows), read
        in place by the GPU's kernel across the host bus (zero-copy; no cache rows), or, for
        ``"auto"``, one of the last two per expert (``host_modes``).
    quantized_cache_rows : int
        GPU rows for quantized CPU experts copied in on use.
    quantized_row_bytes : int
        Bytes of one such row (a quantized expert).
    host_modes : tuple of str
        Per slot, for ``host="auto"`` plans: what happens to that CPU expert (``"compute"`` or
        ``"stream"``, chosen by a cost model), ``""`` for GPU slots; empty otherwise (every CPU
        expert does what ``host`` says).
    """

    slots: tuple[ExpertSlot, ...]
    bits: tuple[int | None, ...]
    device: tuple[str, ...]
    slot_bytes: tuple[int, ...]
    non_expert_bytes: int
    cache_rows: int
    row_bytes: int
    budget: int
    group_size: int = 64
    rows_per_layer: int = 0
    host: str = "copy"
    quantized_cache_rows: int = 0
    quantized_row_bytes: int = 0
    host_modes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.host not in HOST_MODES:
            raise ValueError(f"host must be one of {HOST_MODES}, got {self.host!r}")
        if (self.host == "auto") != bool(self.host_modes):
            raise ValueError("host_modes go with host='auto' plans, and only with them")
        expected = [d == "gpu" for d in self.device]
        if self.host_modes and (
            len(self.host_modes) != len(self.slots)
            or [m == "" for m in self.host_modes] != expected
            or not set(self.host_modes) <= {"", "compute", "stream"}
        ):
            raise ValueError(
                "host_modes must give every slot '' on the GPU, and 'compute' or 'stream' on "
                "the CPU"
            )

    def host_mode(self, index: int) -> str | None:
        """What happens to slot ``index`` when routed to: None for a GPU expert, else
        ``"copy"``, ``"compute"`` or ``"stream"``.
        """
        if self.device[index] == "gpu":
            return None
        return self.host_modes[index] if self.host_modes else self.host

    @property
    def gpu_bytes(self) -> int:
        """Non-expert layers, GPU experts and cache rows (of both precisions)."""
        experts = sum(b for b, d in zip(self.slot_bytes, self.device) if d == "gpu")
        rows = self.cache_rows * self.row_bytes
        return (
            self.non_expert_bytes
            + experts
            + rows
            + self.quantized_cache_rows * self.quantized_row_bytes
        )

    @property
    def graph_safe(self) -> bool:
        """Whether a decode step runs as one captured graph: every expert on the GPU, or the
        CPU ones read in place (``host="stream"``); copying experts in or computing them on the
        CPU reads the routing on the host.
        """
        return all(self.host_mode(i) in (None, "stream") for i in range(len(self.slots)))

    @property
    def cpu_bytes(self) -> int:
        """Experts kept in CPU memory."""
        return sum(b for b, d in zip(self.slot_bytes, self.device) if d == "cpu")

    @property
    def n_quantized(self) -> int:
        """Slots stored quantized."""
        return sum(b is not None for b in self.bits)

    def table(self) -> pd.DataFrame:
        """One row per slot: ``layer``, ``expert``, ``bits`` (0: as stored), ``device``,
        ``host`` (what happens to a CPU expert routed to; ``""`` on the GPU), ``bytes``.
        """
        return pd.DataFrame(
            {
                "layer": [s.layer for s in self.slots],
                "expert": [s.expert for s in self.slots],
                "bits": [b or 0 for b in self.bits],
                "device": list(self.device),
                "host": [self.host_mode(i) or "" for i in range(len(self.slots))],
                "bytes": list(self.slot_bytes),
            }
        )


def plan_precision(
    model: Any,
    budget: int,
    quantized: Sequence[ExpertSlot] = (),
    bits: int = 4,
    group_size: int = 64,
    gpu_order: Sequence[ExpertSlot] | None = None,
    rows: int | None = None,
    host: str = "copy",
    cost: Any = None,
    shares: pd.DataFrame | None = None,
) -> PrecisionPlan:
    """Place a model's experts under a GPU budget, some of them quantized.

    Parameters
    ----------
    model : MoEModel, PreTrainedModel or WeightSource
        Gives the shapes and the dtype (nothing is read).
    budget : int
        GPU bytes.
    quantized : sequence of ExpertSlot
        The slots stored at ``bits`` (e.g. from :func:`select_experts`).
    bits : {2, 3, 4, 8}, default 4
    group_size : int, default 64
    gpu_order : sequence of ExpertSlot, optional
        The order in which full-precision experts take the GPU's remaining room (e.g. most
        routed first); layer-major by default.
    rows : int, optional
        GPU rows (full-precision experts) kept for CPU experts copied in on use. By default
        one token's experts in every layer that keeps some on the CPU (what a consolidated
        model's pool keeps, and a decode step captured as one graph needs); the paper's 1: a
        single placeholder, the experts copied one after another.
    host : {"copy", "compute", "stream"}, default "copy"
        CPU experts copied into GPU rows on use (the paper), computed on the CPU (no rows, so
        the budget holds more GPU experts; full-precision experts only), or read in place by
        the GPU's kernels across the host bus on every use (no rows, no copies, and the step
        stays one captured graph); :class:`~moelab.quant.DecodeCost` says which is faster on a
        machine. ``"auto"`` places experts as ``"stream"`` does, then lets ``cost`` choose per
        CPU expert between reading it in place and computing it on the CPU
        (:meth:`DecodeCost.choose_host_modes`).
    cost : DecodeCost, optional
        For ``host="auto"``: the machine's measured primitives.
    shares : pandas.DataFrame, optional
        For ``host="auto"``: ``layer``, ``expert``, ``share`` (routing shares per token).

    Returns
    -------
    PrecisionPlan

    Raises
    ------
    ValueError
        A budget below the non-expert layers plus the cache rows with every expert on the CPU
        (the message states that minimum), bits outside the supported set, or slots the model
        does not have.
    """
    from moelab.sources import open_source

    check_int(budget, "budget")
    check_int(bits, "bits")
    check_int(group_size, "group_size", minimum=2)
    if bits not in SUPPORTED_BITS:
        raise ValueError(f"bits must be one of {SUPPORTED_BITS}, got {bits}")
    source = open_source(model)
    family, config = source.family, source.config
    slots = tuple(family.expert_slots(config))
    chosen = set(quantized)
    order_given = list(gpu_order or ())
    for what, given in (("quantized", chosen), ("gpu_order", order_given)):
        unknown = [s for s in given if s not in set(slots)]
        if unknown:
            raise ValueError(f"{what} holds {unknown[:3]}, not expert slots of this model")
    shapes = family.expert_shapes(config)
    bad = [cols for _, cols in shapes.values() if cols % group_size]
    if bad:
        raise ValueError(f"group_size {group_size} does not divide the {bad[0]} input columns")
    itemsize = source.dtype.itemsize
    full = expert_bytes(shapes, None, group_size, itemsize)
    small = expert_bytes(shapes, bits, group_size, itemsize)
    non_expert = family.non_expert_bytes(family.meta_model(config, source.dtype))
    k = family.experts_per_token(config)
    if rows is not None:
        check_int(rows, "rows", minimum=1)
    if host not in HOST_MODES:
        raise ValueError(f"host must be 'copy', 'compute', 'stream' or 'auto', got {host!r}")
    if host != "copy" and rows is not None:
        raise ValueError(f"rows are for experts copied in; host={host!r} keeps none (rows=None)")
    if host == "auto":
        if cost is None or shares is None:
            raise ValueError(
                "host='auto' chooses per expert with a cost model: pass cost= (measure_decode_cost) "
                "and shares= (routing shares per token)"
            )
        streamed = plan_precision(
            model, budget, quantized, bits, group_size, gpu_order, rows, host="stream"
        )
        return cost.choose_host_modes(streamed, shares)
    size = {s: small if s in chosen else full for s in slots}
    # Rows are kept per layer with CPU experts (rows=None) or once for all (rows=N): a group
    # is a layer, or the whole model; emptying a group of CPU experts frees its rows. A group
    # keeps full-precision rows for its full-precision CPU experts and quantized rows (a
    # quarter of the size) for its quantized ones.
    group_of = {s: s.layer if rows is None else 0 for s in slots}
    n_rows = 0 if host != "copy" else (k if rows is None else rows)
    groups: dict[int, list] = {}
    for slot in slots:
        groups.setdefault(group_of[slot], []).append(slot)

    def row_kinds(members: Sequence[ExpertSlot]) -> tuple[bool, bool]:
        """Whether CPU experts among ``members`` need full-precision / quantized rows."""
        cpu = [s for s in members if device[s] == "cpu"]
        return any(s not in chosen for s in cpu), any(s in chosen for s in cpu)

    def rows_bytes(members: Sequence[ExpertSlot]) -> int:
        needs_full, needs_small = row_kinds(members)
        return n_rows * (full * needs_full + small * needs_small)

    # Start from the cheapest state of every group: all its experts on the GPU, or all on the
    # CPU with its rows; that total is the smallest budget any placement needs. Computed on
    # the CPU, experts are full precision: quantized ones stay on the GPU.
    device = {}
    for members in groups.values():
        device.update({s: "cpu" for s in members})
        if sum(size[s] for s in members) <= rows_bytes(members):
            device.update({s: "gpu" for s in members})
    if host == "compute":
        device.update({s: "gpu" for s in chosen})

    def total() -> int:
        experts = sum(size[s] for s in slots if device[s] == "gpu")
        return non_expert + experts + sum(rows_bytes(members) for members in groups.values())

    minimum = total()
    if budget < minimum:
        rest = {
            "compute": "every 4-bit expert; full-precision ones computed on the CPU",
            "stream": "no expert: every one can be read from host memory",
        }.get(
            host,
            f"for each {'layer' if rows is None else 'model'} either all its experts or "
            f"{n_rows} rows of {full:,} bytes (of {small:,} for quantized experts) for "
            f"experts copied in from the CPU",
        )
        raise ValueError(
            f"a GPU budget of {budget:,} bytes is too small: the minimum is {minimum:,} bytes "
            f"(non-expert layers {non_expert:,}, and {rest})"
        )
    # Quantized experts first (small, and no kernel copies them in), then the others in the
    # order given (the rest layer-major); a move that empties a group also frees its rows.
    rest = [s for s in slots if s not in set(order_given)]
    order = [s for s in slots if s in chosen]
    order += [s for s in [*order_given, *rest] if s not in chosen]
    moved = True
    while moved:  # again while a move frees rows that let an earlier expert fit
        moved = False
        for slot in (s for s in order if device[s] == "cpu"):
            left = [s for s in groups[group_of[slot]] if device[s] == "cpu"]
            for move in ([slot], left):  # the expert alone, or its whole group at once
                for s in move:
                    device[s] = "gpu"
                if total() <= budget:
                    moved = True
                    break
                for s in move:
                    device[s] = "cpu"
    kinds = [row_kinds(members) for members in groups.values()]
    return PrecisionPlan(
        slots=slots,
        bits=tuple(bits if s in chosen else None for s in slots),
        device=tuple(device[s] for s in slots),
        slot_bytes=tuple(size[s] for s in slots),
        non_expert_bytes=non_expert,
        cache_rows=n_rows * sum(needs_full for needs_full, _ in kinds),
        row_bytes=full,
        quantized_cache_rows=n_rows * sum(needs_small for _, needs_small in kinds),
        quantized_row_bytes=small,
        budget=budget,
        group_size=group_size,
        rows_per_layer=k if rows is None and host == "copy" else 0,
        host=host,
    )
