"""Hardware cost of a fixed-point resizer: an estimate from its formats and geometry.

:func:`estimate_cost` counts what the datapath of
:class:`~srlab.fpga.datapath.FixedPointResizer` needs: multipliers and the DSP slices
they map to, adders, register bits, line buffers and their BRAM18 blocks, the weight
ROM, pipeline depth, latency and throughput. It is an *estimate* made from a stated
model of the design, not a synthesis result; the assumptions are listed in
:func:`estimate_cost`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

from labcore.checks import check_type
from srlab.fixed import multiply_format
from srlab.fpga._checks import check_designs
from srlab.fpga.datapath import FixedPointResizer
from srlab.kernels import Kernel, csd_adders

__all__ = [
    "BRAM18_SHAPES",
    "DSP_PORTS",
    "DspFamily",
    "HardwareCostReport",
    "bram18_blocks",
    "cost_table",
    "dsp_slices_per_multiply",
    "estimate_cost",
]

DspFamily = Literal["dsp48e1", "dsp48e2"]
WeightSource = Literal["rom", "segments", "constants", "mux"]

DSP_PORTS: dict[str, tuple[int, int]] = {
    "dsp48e1": (25, 18),  # 7 series: 25 x 18 signed multiplier
    "dsp48e2": (27, 18),  # UltraScale(+): 27 x 18 signed multiplier
}
"""Signed input widths of one DSP slice's multiplier."""

BRAM18_SHAPES: tuple[tuple[int, int], ...] = (
    (16384, 1),
    (8192, 2),
    (4096, 4),
    (2048, 9),
    (1024, 18),
    (512, 36),
)
"""(depth, width) configurations of one 18 Kbit block RAM (simple dual port)."""

# Kernels whose weights are not read from a ROM of phases (the rest are, or are constants).
_WEIGHT_SOURCES: dict[str, str] = {
    "nearest": "mux",
    "pwl2": "segments",
    "pwl4": "segments",
    "pwl6": "segments",
}

# Pipeline registers of one pass: window/ROM read, the DSP's input, product and output
# registers (A/B, M, P), one per adder-tree level, and the output rounding register.
_READ_STAGES = 1
_DSP_STAGES = 3
_CONSTANT_STAGES = 1  # a shift-add constant multiplication, registered once
_ROUND_STAGES = 1


def dsp_slices_per_multiply(a_bits: int, b_bits: int, dsp: DspFamily = "dsp48e2") -> int:
    """DSP slices for one ``a_bits x b_bits`` signed multiplication.

    An operand wider than a port is split into a signed top piece of the port's width
    and unsigned lower pieces of one bit less; every pair of pieces takes one slice,
    and the better of the two ways to assign operands to ports is used.

    Parameters
    ----------
    a_bits, b_bits : int
        Signed operand widths (an unsigned ``W``-bit operand needs ``W + 1``).
    dsp : {"dsp48e1", "dsp48e2"}, default "dsp48e2"
        Slice family (:data:`DSP_PORTS`).

    Returns
    -------
    int
        Slices, at least one.

    Raises
    ------
    ValueError
        If the family is unknown or a width is not positive.

    Examples
    --------
    >>> dsp_slices_per_multiply(9, 12), dsp_slices_per_multiply(27, 18), dsp_slices_per_multiply(30, 20)
    (1, 1, 2)
    >>> dsp_slices_per_multiply(30, 30)
    4
    >>> dsp_slices_per_multiply(26, 18, "dsp48e1"), dsp_slices_per_multiply(26, 18, "dsp48e2")
    (2, 1)
    """
    if dsp not in DSP_PORTS:
        raise ValueError(f"unknown DSP family {dsp!r}; known: {', '.join(sorted(DSP_PORTS))}")
    if min(a_bits, b_bits) < 1:
        raise ValueError(f"operand widths must be positive, got {a_bits} and {b_bits}")
    port_a, port_b = DSP_PORTS[dsp]

    def pieces(width: int, port: int) -> int:
        return 1 if width <= port else 1 + math.ceil((width - port) / (port - 1))

    return min(
        pieces(a_bits, port_a) * pieces(b_bits, port_b),
        pieces(a_bits, port_b) * pieces(b_bits, port_a),
    )


def bram18_blocks(depth: int, width: int) -> int:
    """18 Kbit block RAMs for a ``depth x width`` memory (best aspect ratio).

    Examples
    --------
    >>> bram18_blocks(1920, 12), bram18_blocks(1920, 36), bram18_blocks(640, 8)
    (2, 4, 1)
    """
    if depth < 1 or width < 1:
        raise ValueError(f"depth and width must be positive, got {depth} and {width}")
    return min(math.ceil(depth / d) * math.ceil(width / w) for d, w in BRAM18_SHAPES)


def _signed_width(fmt) -> int:
    return fmt.word_bits + (not fmt.signed)


def _weight_source(kernel: Kernel) -> str:
    if kernel.phases is not None:
        return "constants"
    return _WEIGHT_SOURCES.get(kernel.name, "rom" if kernel.hardware.multipliers else "constants")


@dataclass(frozen=True)
class HardwareCostReport:
    """Estimated resources of one resizer design (see :func:`estimate_cost`).

    Attributes
    ----------
    kernel : str
        Kernel name.
    scale : str
        ``"sy x sx"``.
    input_shape, output_shape : str
        ``"HxWxC"``.
    weight_source : {"rom", "segments", "constants", "mux"}
        Where the weights come from: a phase ROM, shift-add line segments, constants
        (shift-add, no multiplier) or a multiplexer (nearest).
    pixels_per_clock : int
        Output pixels per clock (parallel lanes).
    multipliers : int
        Pixel x weight multipliers, both passes, all channels and lanes.
    dsp_per_multiplier : int
        DSP slices one multiplier needs (the wider of the two passes).
    dsp_slices : int
        DSP slices in all.
    adders : int
        Adders and subtracters in the fabric (adder trees, shift-add constants, weight
        segments, the two DDA accumulators).
    register_bits : int
        Pipeline register bits (windows, weights, products, adder trees, outputs, DDAs).
    line_buffers : int
        Rows held on chip.
    line_buffer_bits : int
        Their bits.
    bram18 : int
        18 Kbit block RAMs holding them.
    rom_bits : int
        Weight ROM bits, all copies (0 without a ROM).
    pipeline_depth : int
        Register stages of both passes.
    fill_input_pixels : int
        Input pixels that must arrive before the first output can be computed.
    latency_cycles : int
        First input pixel to first output pixel.
    cycles_per_frame : int
        Clocks per frame at ``pixels_per_clock``.
    """

    kernel: str
    scale: str
    input_shape: str
    output_shape: str
    weight_source: str
    pixels_per_clock: int
    multipliers: int
    dsp_per_multiplier: int
    dsp_slices: int
    adders: int
    register_bits: int
    line_buffers: int
    line_buffer_bits: int
    bram18: int
    rom_bits: int
    pipeline_depth: int
    fill_input_pixels: int
    latency_cycles: int
    cycles_per_frame: int

    @property
    def storage_bits(self) -> int:
        """Register, line-buffer and ROM bits together: a one-number area proxy."""
        return self.register_bits + self.line_buffer_bits + self.rom_bits

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame of the report (plus ``storage_bits``), labelled an estimate."""
        row = asdict(self) | {"storage_bits": self.storage_bits}
        frame = pd.DataFrame([row])
        frame.attrs["note"] = (
            "estimate from the cost model of srlab.fpga.cost.estimate_cost, not synthesis"
        )
        return frame


def _constant_adders(coefficients: np.ndarray) -> int:
    # Direct form per phase: CSD adders of each non-zero constant, then the sum of the
    # non-zero taps; the worst phase counts. This uses the constants actually in the
    # ROM, so coarse coefficient formats (simpler constants) cost fewer adders.
    per_row = [
        sum(csd_adders(int(c)) for c in row if c) + max(int(np.count_nonzero(row)) - 1, 0)
        for row in coefficients
    ]
    return max(per_row) if per_row else 0


def _pass_cost(
    r: FixedPointResizer, source, target, source_label: str, dsp: str, source_kind: str
) -> dict[str, int]:
    """Arithmetic, registers and pipeline stages of one pass, one channel, one lane."""
    taps = r.taps
    in_w, coef_w = source.word_bits, r.coeff_fmt.word_bits
    prod_w = multiply_format(source, r.coeff_fmt).word_bits
    tree_levels = math.ceil(math.log2(taps))
    if source_kind in ("rom", "segments"):
        multipliers = r.kernel.hardware.multipliers
        dsp_each = dsp_slices_per_multiply(_signed_width(source), _signed_width(r.coeff_fmt), dsp)
        adders = r.kernel.hardware.adders
        stages = _READ_STAGES + _DSP_STAGES + tree_levels + _ROUND_STAGES
        weight_regs = taps * coef_w
    elif source_kind == "constants":
        multipliers, dsp_each = 0, 0
        adders = _constant_adders(r.coefficients[r.coefficient_rows])
        stages = _READ_STAGES + _CONSTANT_STAGES + tree_levels + _ROUND_STAGES
        weight_regs = 0
    else:  # mux
        multipliers, dsp_each, adders = 0, 0, 0
        stages = _READ_STAGES + _ROUND_STAGES
        weight_regs = 0
    if source_kind == "mux":
        registers = taps * in_w + target.word_bits
    else:
        registers = (
            taps * in_w + taps * prod_w + (taps - 1) * r.acc_fmt.word_bits + target.word_bits
        )
    return {
        "multipliers": multipliers,
        "dsp_each": dsp_each,
        "adders": adders,
        "registers": registers,
        "weight_registers": weight_regs,
        "stages": stages,
    }


def estimate_cost(
    resizer: FixedPointResizer,
    input_shape: tuple[int, ...] = (540, 960, 3),
    *,
    dsp: DspFamily = "dsp48e2",
    pixels_per_clock: int = 1,
) -> HardwareCostReport:
    """Estimate the resources of a resizer design on an FPGA.

    The cost model (an estimate; real numbers come from synthesis):

    * **Structure**: the horizontal pass, then ``taps`` line buffers, then the vertical
      pass, both pipelined, ``pixels_per_clock`` parallel lanes, every channel with its
      own arithmetic; the channels of a lane share its weight lookup.
    * **Multipliers**: ``kernel.hardware.multipliers`` per pass, channel and lane (one per
      tap for ROM and line-segment kernels, none for shift-add constants and nearest).
      Each maps onto DSP slices by its operand widths (pixel or line-buffer word x
      weight word, an unsigned operand counting one extra bit) and the slice's signed
      ports, 25x18 (DSP48E1) or 27x18 (DSP48E2); a wider operand is split (see
      :func:`dsp_slices_per_multiply`).
    * **Adders**: ``kernel.hardware.adders`` per pass, channel and lane (adder tree,
      weight segments); for constant weights the canonical-signed-digit adders of the
      constants actually in the ROM, worst phase; plus one accumulator per DDA.
    * **Registers**: per pass, channel and lane the ``taps``-word window, the products,
      ``taps - 1`` accumulator words (adder tree) and the output word; per lane the
      ``taps`` weight words (ROM and segments); two DDA accumulators and phase
      registers. DSP-internal registers are counted as well: it is a bit count, not a
      flip-flop count.
    * **Line buffers**: ``taps`` rows of ``W_out`` words of ``mid_fmt`` per channel (the
      streaming model needs all ``taps``: output rows that share a window are produced
      while the next row waits), packed across channels and lanes into one memory per
      row, mapped onto BRAM18 with the best aspect ratio, even when small enough for
      distributed RAM.
    * **ROM**: ``2**phase_bits`` rows of ``taps`` weight words; none for constants,
      segments or nearest. Every clock the horizontal pass reads one row per lane
      (neighbouring outputs have different phases) and the vertical pass one row (the
      lanes of an output row share its phase); a dual-port copy serves two reads, so one
      copy for both passes of one lane, ``ceil((lanes + 1) / 2)`` copies in general.
    * **Timing**: per pass a read stage, 3 DSP stages (1 shift-add stage for constants),
      ``ceil(log2(taps))`` adder-tree stages and a rounding stage. Input arrives at one
      pixel per clock; the latency is the line-buffer fill (``fill_input_pixels``)
      plus both pipelines. A frame takes ``max(H W, H W_out, H_out W_out) /
      pixels_per_clock`` clocks (the busiest stage).

    Parameters
    ----------
    resizer : FixedPointResizer
        The design.
    input_shape : (H, W) or (H, W, C), default (540, 960, 3)
        Input frame size.
    dsp : {"dsp48e1", "dsp48e2"}, default "dsp48e2"
        DSP slice family.
    pixels_per_clock : int, default 1
        Parallel lanes.

    Returns
    -------
    HardwareCostReport

    Raises
    ------
    TypeError
        If ``resizer`` is not a FixedPointResizer or ``pixels_per_clock`` not an integer.
    ValueError
        If the shape is not ``(H, W[, C])`` with sides of at least ``taps``, the DSP
        family is unknown or ``pixels_per_clock < 1``.

    Examples
    --------
    >>> report = estimate_cost(FixedPointResizer("shift_add_2x", 2))
    >>> report.multipliers, report.dsp_slices, report.line_buffers
    (0, 0, 4)
    >>> estimate_cost(FixedPointResizer("bicubic", 2)).dsp_slices
    24
    """
    check_type(resizer, FixedPointResizer, "resizer")
    if dsp not in DSP_PORTS:
        raise ValueError(f"unknown DSP family {dsp!r}; known: {', '.join(sorted(DSP_PORTS))}")
    if isinstance(pixels_per_clock, bool) or not isinstance(pixels_per_clock, (int, np.integer)):
        raise TypeError(f"pixels_per_clock must be an integer >= 1, got {pixels_per_clock!r}")
    if pixels_per_clock < 1:
        raise ValueError(f"pixels_per_clock must be an integer >= 1, got {pixels_per_clock!r}")
    shape = tuple(int(v) for v in input_shape)
    if (
        len(shape) not in (2, 3)
        or min(shape[:2]) < resizer.taps
        or (len(shape) == 3 and shape[2] < 1)
    ):
        raise ValueError(
            f"input_shape must be (H, W) or (H, W, C) with H, W >= {resizer.taps} (the kernel's taps), got {input_shape!r}"
        )
    h, w = shape[:2]
    channels = shape[2] if len(shape) == 3 else 1
    h_out, w_out = resizer.output_shape((h, w))
    lanes = int(pixels_per_clock)
    source_kind = _weight_source(resizer.kernel)

    horizontal = _pass_cost(resizer, resizer.pixel_fmt, resizer.mid_fmt, "pixel", dsp, source_kind)
    vertical = _pass_cost(resizer, resizer.mid_fmt, resizer.out_fmt, "mid", dsp, source_kind)
    per_lane = channels * lanes
    multipliers = (horizontal["multipliers"] + vertical["multipliers"]) * per_lane
    dsp_slices = (
        horizontal["multipliers"] * horizontal["dsp_each"]
        + vertical["multipliers"] * vertical["dsp_each"]
    ) * per_lane
    adders = (
        horizontal["adders"] + vertical["adders"]
    ) * per_lane + 2  # + the two DDA accumulators
    dda_bits = (
        resizer.dda_y.register_bits(h) + resizer.dda_x.register_bits(w) + 2 * resizer.phase_bits
    )
    registers = (
        (horizontal["registers"] + vertical["registers"]) * per_lane
        + (horizontal["weight_registers"] + vertical["weight_registers"]) * lanes
        + dda_bits
    )
    rows = resizer.taps
    word = resizer.mid_fmt.word_bits * channels * lanes
    depth = math.ceil(w_out / lanes)
    rom_copies = math.ceil((lanes + 1) / 2) if source_kind == "rom" else 0
    rom_bits = rom_copies * (1 << resizer.phase_bits) * resizer.taps * resizer.coeff_fmt.word_bits

    i0_y, _ = resizer.dda_y.positions(1)
    i0_x, _ = resizer.dda_x.positions(1)
    last_row = min(max(int(i0_y[0]) + resizer.taps // 2, 0), h - 1)
    last_col = min(max(int(i0_x[0]) + resizer.taps // 2, 0), w - 1)
    fill = last_row * w + last_col + 1
    pipeline = horizontal["stages"] + vertical["stages"]
    return HardwareCostReport(
        kernel=resizer.kernel.name,
        scale=f"{resizer.scale[0]:g} x {resizer.scale[1]:g}",
        input_shape="x".join(map(str, (h, w, channels))),
        output_shape="x".join(map(str, (h_out, w_out, channels))),
        weight_source=source_kind,
        pixels_per_clock=lanes,
        multipliers=int(multipliers),
        dsp_per_multiplier=int(max(horizontal["dsp_each"], vertical["dsp_each"])),
        dsp_slices=int(dsp_slices),
        adders=int(adders),
        register_bits=int(registers),
        line_buffers=rows,
        line_buffer_bits=rows * w_out * resizer.mid_fmt.word_bits * channels,
        bram18=rows * bram18_blocks(depth, word),
        rom_bits=int(rom_bits),
        pipeline_depth=int(pipeline),
        fill_input_pixels=int(fill),
        latency_cycles=int(fill + pipeline),
        cycles_per_frame=math.ceil(max(h * w, h * w_out, h_out * w_out) / lanes),
    )


def cost_table(
    designs: Mapping[str, FixedPointResizer],
    input_shape: tuple[int, ...] = (540, 960, 3),
    *,
    dsp: DspFamily = "dsp48e2",
    pixels_per_clock: int = 1,
) -> pd.DataFrame:
    """:func:`estimate_cost` of several designs, one row each, indexed by label.

    Parameters
    ----------
    designs : mapping of str to FixedPointResizer
        Label -> design.
    input_shape, dsp, pixels_per_clock
        As in :func:`estimate_cost`.

    Returns
    -------
    pandas.DataFrame
        Index ``design``; the report's fields plus ``storage_bits``.

    Raises
    ------
    TypeError
        If a design is not a FixedPointResizer, or as :func:`estimate_cost`.
    ValueError
        If ``designs`` is empty, or as :func:`estimate_cost`.

    Examples
    --------
    >>> t = cost_table({"bilinear": FixedPointResizer("bilinear", 2)})
    >>> int(t.loc["bilinear", "multipliers"])
    12
    """
    frames = [
        estimate_cost(r, input_shape, dsp=dsp, pixels_per_clock=pixels_per_clock)
        .to_frame()
        .assign(design=label)
        for label, r in check_designs(designs, FixedPointResizer).items()
    ]
    table = pd.concat(frames, ignore_index=True).set_index("design")
    table.attrs["note"] = (
        "estimate from the cost model of srlab.fpga.cost.estimate_cost, not synthesis"
    )
    return table
