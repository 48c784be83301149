"""Hardware cost of a fixed-point resizer: an estimate from its formats, pass order and geometry.

:func:`estimate_cost` maps the datapath of :class:`~srlab.fpga.datapath.FixedPointResizer`
onto a Xilinx FPGA: multipliers and the DSP slices they take (pre-adder, cascade and two
products a slice where the formats allow), fabric adders, LUTs and flip-flops, line buffers
and their block RAMs in the pass order the design uses (and which order would store fewer
bits), the weight ROM, pipeline depth, latency, throughput and the clock that 1080p60 and
4K60 output need. It is an *estimate* from a stated model (the assumptions are listed in
:func:`estimate_cost`); :func:`srlab.fpga.rtl.synthesize` counts the generated Verilog with
Yosys, and notebook 06 sets the two side by side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from labcore.checks import check_int, check_type
from srlab.fixed import QFormat
from srlab.fpga._checks import check_designs
from srlab.fpga.cycle import line_buffer_count
from srlab.fpga.datapath import FixedPointResizer
from srlab.fpga.primitives import (
    DSP_PORTS,
    VIDEO_FORMATS,
    DspFamily,
    bram18_blocks,
    dsp_slices_per_multiply,
    packs_two_products,
)
from srlab.fpga.rom import constant_weights
from srlab.kernels import Kernel, csd_adders

__all__ = ["HardwareCostReport", "cost_table", "estimate_cost", "realtime_table"]

WeightSource = Literal["rom", "segments", "constants", "mux"]

# Pipeline registers of one pass: window/ROM read, the DSP's input, product and output
# registers (A/B, M, P), one per adder-tree level, and the output rounding register.
_READ_STAGES = 1
_DSP_STAGES = 3
_CONSTANT_STAGES = 1  # a shift-add constant multiplication, registered once
_ROUND_STAGES = 1
_LUT_INPUTS_MUX = 3  # a LUT6 selects one of four inputs: each LUT adds three to a mux


def _weight_source(kernel: Kernel, rows_addressed: int) -> str:
    """How one pass gets its weights: as the kernel's ``hardware.weights`` says, except that a
    pass addressing few ROM rows has them as constants (as the generated Verilog builds them).
    """
    source = str(kernel.hardware.weights)
    if source == "mux":  # nearest picks a tap: no weights to hold
        return "mux"
    if kernel.phases is not None or constant_weights(rows_addressed):
        return "constants"
    return source


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
    pass_order : {"hv", "vh"}
        The design's pass order (what its line buffers hold).
    weight_source : {"rom", "segments", "constants", "mux", "mixed"}
        Where the weights come from: a phase ROM, shift-add line segments, constants
        (shift-add, no multiplier; a pass that addresses few ROM rows, e.g. at 2x) or a
        multiplexer (nearest); "mixed" when the two passes differ.
    pixels_per_clock : int
        Output pixels per clock (parallel lanes).
    multipliers : int
        Pixel x weight multipliers, both passes, all channels and lanes.
    dsp_per_multiplier : int
        DSP slices one multiplier needs (the wider of the two passes).
    dsp_slices : int
        DSP slices in all (two packed products share one).
    adders : int
        Adders and subtracters in the fabric (shift-add constants, weight segments, the two
        DDA accumulators); a DSP cascade sums its products inside the slices.
    lut, flip_flops : int
        LUTs and flip-flops in the fabric (DSP and block RAM registers not counted).
    line_buffers : int
        Rows held on chip.
    line_buffer_bits : int
        Their bits.
    bram18 : int
        18 Kbit block RAMs holding them (``bram36``: half as many 36 Kbit blocks).
    cheaper_pass_order : {"hv", "vh"}
        The order whose line buffers hold fewer bits.
    rom_bits : int
        Weight ROM bits, all copies (0 without a ROM), held in LUTs.
    pipeline_depth : int
        Register stages of both passes.
    fill_input_pixels : int
        Input pixels that must arrive before the first output can be computed.
    latency_cycles : int
        First input pixel to first output pixel.
    cycles_per_frame : int
        Clocks per frame at ``pixels_per_clock``.
    clocks_mhz : dict of str to float
        For each format of :data:`~srlab.fpga.primitives.VIDEO_FORMATS` (e.g. 1080p60 at a
        148.5 MHz pixel clock, 4K60 at 594 MHz), the clock that sustains its output at
        ``pixels_per_clock``: the pixel clock times the busiest stage's words per output
        pixel, over the lanes. ``report.clock_4k60_mhz`` reads one format's, and
        :meth:`to_frame` has a ``clock_<format>_mhz`` column for each.
    """

    kernel: str
    scale: str
    input_shape: str
    output_shape: str
    pass_order: str
    weight_source: str
    pixels_per_clock: int
    multipliers: int
    dsp_per_multiplier: int
    dsp_slices: int
    adders: int
    lut: int
    flip_flops: int
    line_buffers: int
    line_buffer_bits: int
    bram18: int
    cheaper_pass_order: str
    rom_bits: int
    pipeline_depth: int
    fill_input_pixels: int
    latency_cycles: int
    cycles_per_frame: int
    clocks_mhz: dict[str, float] = field(hash=False)

    def __getattr__(self, name: str) -> float:
        """``clock_<format>_mhz``: the clock of one video format (see ``clocks_mhz``)."""
        video = name.removeprefix("clock_").removesuffix("_mhz")
        if name.startswith("clock_") and name.endswith("_mhz") and video in self.clocks_mhz:
            return self.clocks_mhz[video]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def bram36(self) -> float:
        """The block RAMs as 36 Kbit blocks (two 18 Kbit halves each)."""
        return self.bram18 / 2

    @property
    def storage_bits(self) -> int:
        """Flip-flop, line-buffer and ROM bits together: a one-number area proxy."""
        return self.flip_flops + self.line_buffer_bits + self.rom_bits

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame of the report (plus ``bram36``, ``storage_bits``), labelled an estimate."""
        row = asdict(self)
        row |= {f"clock_{video}_mhz": mhz for video, mhz in row.pop("clocks_mhz").items()}
        row |= {"bram36": self.bram36, "storage_bits": self.storage_bits}
        frame = pd.DataFrame([row])
        frame.attrs["note"] = (
            "estimate from the cost model of srlab.fpga.cost.estimate_cost, not synthesis"
        )
        return frame


def _constant_adders(rows: np.ndarray) -> int:
    # One shift-add network per ROM row the pass addresses (a row's constants are wired in),
    # then a multiplexer: CSD adders of each non-zero constant and the sum of the non-zero taps.
    return sum(
        sum(csd_adders(int(c)) for c in row if c) + max(int(np.count_nonzero(row)) - 1, 0)
        for row in rows
    )


@dataclass(frozen=True)
class _Pass:
    """One pass: its source and target formats, ROM rows addressed, parallel units."""

    source: QFormat
    target: QFormat
    rows: np.ndarray  # weight codes of the rows this pass addresses
    units: int  # filters side by side (each for every channel)
    shared_phase: bool  # whether the units read one ROM row (a vertical pass's lanes)
    window: bool  # whether its taps sit in fabric registers (not block RAM outputs)


def _pass_cost(r: FixedPointResizer, p: _Pass, channels: int, dsp: str) -> dict:
    """Arithmetic, LUTs, flip-flops and pipeline stages of one pass, all units and channels."""
    distinct = np.unique(p.rows, axis=0)  # rows of equal weights share one network
    kind = _weight_source(r.kernel, len(distinct))
    taps, coef = r.taps, r.coeff_fmt
    src_w, coef_w, acc_w = p.source.signed_width, coef.signed_width, r.acc_fmt.word_bits
    out_w, filters = p.target.word_bits, p.units * channels
    rom_copies = 0
    if kind in ("rom", "segments"):
        # a + f (b - a) equals the two products only when the weights add up to one
        lerp = kind == "rom" and taps == 2 and bool(r.unity_gain)  # the pre-adder forms b - a
        multipliers = 1 if lerp else (taps if kind == "rom" else r.kernel.hardware.multipliers)
        dsp_each = dsp_slices_per_multiply(src_w + lerp, coef_w, dsp)
        adders = 0 if kind == "rom" else r.kernel.hardware.adders
        share = channels * (p.units if p.shared_phase else 1)
        products = multipliers * filters
        packable = not lerp and dsp_each == 1 and packs_two_products(src_w, coef_w, taps, dsp)
        if share >= 2 and packable:  # (packing needs the pre-adder that a lerp uses)
            slices = multipliers * math.ceil(share / 2) * (filters // share)
        else:
            slices = products * dsp_each
        stages = _READ_STAGES + _DSP_STAGES + math.ceil(math.log2(taps)) + _ROUND_STAGES
        if kind == "rom":
            rom_copies = 1 if p.shared_phase else p.units
    elif kind == "constants":
        multipliers, dsp_each, slices = 0, 0, 0
        adders = _constant_adders(distinct)
        stages = _READ_STAGES + _CONSTANT_STAGES + math.ceil(math.log2(taps)) + _ROUND_STAGES
    else:  # mux: nearest picks a tap
        multipliers, dsp_each, slices, adders = 0, 0, 0, 0
        stages = _READ_STAGES + _ROUND_STAGES
    rom_rows = 1 << r.phase_bits
    lut = filters * (
        adders * acc_w  # an adder is a LUT a bit on the carry chain
        + (math.ceil((len(distinct) - 1) / _LUT_INPUTS_MUX) * out_w if kind == "constants" else 0)
        + (math.ceil((taps - 1) / _LUT_INPUTS_MUX) * out_w if kind == "mux" else 0)
        + (2 * out_w if kind != "mux" else 0)  # output rounding and saturation
    ) + rom_copies * taps * coef.word_bits * math.ceil(rom_rows / 64)  # LUT6 ROM, 64 rows
    flip_flops = (
        filters
        * (
            (taps * p.source.word_bits if p.window else 0)
            + out_w
            + (taps * (src_w + coef_w) + acc_w if kind == "constants" else 0)  # product, sum stages
        )
        + rom_copies * taps * coef.word_bits
    )
    return {
        "multipliers": multipliers * filters,
        "dsp_each": dsp_each,
        "dsp": slices,
        "adders": adders * filters,
        "lut": lut,
        "flip_flops": flip_flops,
        "rom_bits": rom_copies * rom_rows * taps * coef.word_bits,
        "stages": stages,
        "kind": kind,
    }


def _line_buffers(
    r: FixedPointResizer, order: str, shape: tuple[int, int, int], lanes: int, kind: str
) -> tuple[int, int, int]:
    """Rows, bits and BRAM18 blocks of the line buffers in one pass order."""
    h, w, channels = shape
    h_out, w_out = r.output_shape((h, w))
    if order == "hv":  # rows of horizontally resized words (pixels as they are for nearest)
        rows, width, per_clock = r.taps, w_out, lanes
        word = (r.pixel_fmt if kind == "mux" else r.mid_fmt).word_bits
    else:  # rows of input pixels, 8 bits, read a few columns a clock
        rows, width, word = line_buffer_count(r.taps), w, 8
        per_clock = max(1, math.ceil(lanes * w / w_out))
    blocks = rows * bram18_blocks(math.ceil(width / per_clock), word * channels * per_clock)
    return rows, rows * width * word * channels, blocks


def _shape(input_shape: object) -> tuple[int, ...]:
    """``input_shape`` as a tuple of ints; TypeError for anything but a sequence of integers."""
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        raise TypeError(
            f"input_shape must be a tuple (H, W) or (H, W, C) of ints, got {input_shape!r}"
        )
    for v in input_shape:
        check_int(v, "input_shape's sides", minimum=None)
    return tuple(int(v) for v in input_shape)


def estimate_cost(
    resizer: FixedPointResizer,
    input_shape: tuple[int, ...] = (540, 960, 3),
    *,
    dsp: DspFamily = "dsp48e2",
    pixels_per_clock: int = 1,
) -> HardwareCostReport:
    """Estimate the resources of a resizer design on an FPGA.

    The cost model (an estimate; real numbers come from synthesis):

    * **Structure**: the two passes in the design's ``pass_order``, both pipelined, the
      second with ``pixels_per_clock`` filters (lanes) side by side; the first too when it
      is horizontal, and as many as input columns a clock it needs when it is vertical
      (``ceil(lanes W / W_out)``); every channel with its own filters.
    * **Weights**: nearest picks a tap; a pass that addresses at most
      :data:`~srlab.fpga.rom.CONSTANT_ROWS` ROM rows (any 2x design) has them as constants,
      as the generated Verilog does; otherwise line segments (``pwl*``) or a ROM.
    * **Multipliers**: per filter one a tap for ROM weights, one for a 2-tap ROM kernel
      whose weights add up to one (``unity_gain``: ``a + f (b - a)``, the DSP48E2
      pre-adder forms ``b - a`` and its post-adder adds ``a``; the generated Verilog keeps
      the two products), ``kernel.hardware.multipliers`` for line segments, none for shift-add
      constants and nearest. Each maps onto DSP slices by its operand widths and the
      slice's signed ports (:func:`~srlab.fpga.primitives.dsp_slices_per_multiply`); the
      products of one filter are summed through the slices' cascade (no fabric adders);
      two products that share a weight (the channels of a filter, and the lanes of a
      vertical pass) share a slice where both sums fit 18-bit fields and the pre-adder is
      free (not with a lerp; the sign correction of WP487 is not counted)
      (:func:`~srlab.fpga.primitives.packs_two_products`).
    * **Adders** (fabric): for constant weights one shift-and-add network per ROM row the
      pass addresses (canonical-signed-digit adders plus the tap sum), selected by a
      multiplexer; ``kernel.hardware.adders`` for line segments; two DDA accumulators.
    * **LUTs**: a LUT a bit per fabric adder (accumulator width) and DDA bit, the constant
      rows' and nearest's multiplexers (a LUT6 adds three inputs), the output rounding and
      saturation (two LUTs a bit), ROM weights as LUT6 ROMs (64 rows, a bit each), the
      multiplexers that give each tap its row of the rotating line buffers, and
      counters; **flip-flops**: the window registers of each filter (none where the taps
      come straight from block RAM output registers), output registers, the product and
      sum stages of shift-add filters, the ROM read registers, DDAs and counters.
    * **Line buffers**: horizontal first, ``taps`` rows of ``W_out`` words of ``mid_fmt``
      (of the pixel format for nearest, which resizes by picking pixels); vertical first,
      rows of ``W`` 8-bit input pixels (the taps rounded up to a power of two, as the
      generated Verilog does); the channels and the words read in one clock side by
      side, mapped onto BRAM18 with the best aspect ratio. ``cheaper_pass_order`` names
      the order that stores fewer bits.
    * **ROM**: ``2**phase_bits`` rows of ``taps`` weights, one copy for the units of a
      vertical pass (one phase a row), one a unit of a horizontal pass; none otherwise.
    * **Timing**: per pass a read stage, 3 DSP stages (1 shift-add stage for constants),
      ``ceil(log2(taps))`` adder stages and a rounding stage. Each stage moves up to
      ``pixels_per_clock`` words a clock (the input too); the latency is the line-buffer
      fill (``fill_input_pixels``) plus both pipelines. A frame takes its busiest stage's
      words over ``pixels_per_clock`` clocks; the video clocks scale the formats' pixel
      clocks by the busiest stage's words per output pixel (1 for an upscale, whose output
      is busiest; blanking absorbs the row starts).

    Parameters
    ----------
    resizer : FixedPointResizer
        The design.
    input_shape : (H, W) or (H, W, C), default (540, 960, 3)
        Input frame size.
    dsp : {"dsp48e1", "dsp48e2"}, default "dsp48e2"
        DSP slice family (packing needs a DSP48E2's 27-bit pre-adder).
    pixels_per_clock : int, default 1
        Parallel lanes.

    Returns
    -------
    HardwareCostReport

    Raises
    ------
    TypeError
        If ``resizer`` is not a FixedPointResizer, ``input_shape`` not a tuple of ints, the
        DSP family not a str or ``pixels_per_clock`` not an integer.
    ValueError
        If the shape is not ``(H, W[, C])`` with sides of at least ``taps``, the DSP
        family is unknown or ``pixels_per_clock < 1``.

    Examples
    --------
    >>> report = estimate_cost(FixedPointResizer("shift_add_2x", 2))
    >>> report.multipliers, report.dsp_slices, report.line_buffers, report.bram18
    (0, 0, 4, 16)
    >>> vh = estimate_cost(FixedPointResizer("shift_add_2x", 2, pass_order="vh"))
    >>> vh.bram18, report.cheaper_pass_order
    (8, 'vh')
    >>> estimate_cost(FixedPointResizer("bicubic", 2)).dsp_slices  # 2x: constant weights
    0
    >>> estimate_cost(FixedPointResizer("bicubic", 1.7)).dsp_slices  # 4 taps x 2 passes x RGB
    24
    """
    check_type(resizer, FixedPointResizer, "resizer")
    DSP_PORTS.get(dsp)  # not a str: TypeError; unknown: ValueError listing the families
    if isinstance(pixels_per_clock, bool) or not isinstance(pixels_per_clock, (int, np.integer)):
        raise TypeError(f"pixels_per_clock must be an integer >= 1, got {pixels_per_clock!r}")
    if pixels_per_clock < 1:
        raise ValueError(f"pixels_per_clock must be an integer >= 1, got {pixels_per_clock!r}")
    shape = _shape(input_shape)
    if (
        len(shape) not in (2, 3)
        or min(shape[:2]) < resizer.taps
        or (len(shape) == 3 and shape[2] < 1)
    ):
        raise ValueError(
            f"input_shape must be (H, W) or (H, W, C) with H, W >= {resizer.taps} (the kernel's "
            f"taps), got {input_shape!r}"
        )
    h, w = shape[:2]
    channels = shape[2] if len(shape) == 3 else 1
    h_out, w_out = resizer.output_shape((h, w))
    lanes = int(pixels_per_clock)
    order = resizer.pass_order
    rows_y = resizer.coefficients[np.unique(resizer.tap_table("y", h)[1])]
    rows_x = resizer.coefficients[np.unique(resizer.tap_table("x", w)[1])]
    first_units = lanes if order == "hv" else max(1, math.ceil(lanes * w / w_out))
    first = _Pass(
        resizer.pixel_fmt,
        resizer.mid_fmt,
        rows_x if order == "hv" else rows_y,
        first_units,
        shared_phase=order == "vh",
        window=order == "hv",
    )
    second = _Pass(
        resizer.mid_fmt,
        resizer.out_fmt,
        rows_y if order == "hv" else rows_x,
        lanes,
        shared_phase=order == "hv",
        window=order == "vh",
    )
    passes = [_pass_cost(resizer, p, channels, dsp) for p in (first, second)]
    kind = passes[0]["kind"] if passes[0]["kind"] == passes[1]["kind"] else "mixed"
    total = {key: sum(p[key] for p in passes) for key in ("multipliers", "dsp", "adders", "lut")}
    dda_bits = resizer.dda_y.register_bits(h) + resizer.dda_x.register_bits(w)
    counters = sum(max(int(n), 1).bit_length() for n in (h, w, h_out, w_out))
    rows, bits, bram18 = _line_buffers(resizer, order, (h, w, channels), lanes, kind)
    # Each tap reads its row from the buffer that holds it (the rows rotate): a multiplexer.
    select = math.ceil((rows - 1) / _LUT_INPUTS_MUX) * resizer.taps * channels
    select *= 8 * first_units if order == "vh" else resizer.mid_fmt.word_bits * lanes
    other = "vh" if order == "hv" else "hv"
    _, other_bits, _ = _line_buffers(resizer, other, (h, w, channels), lanes, kind)
    i0_y, _ = resizer.dda_y.positions(1)
    i0_x, _ = resizer.dda_x.positions(1)
    last_row = min(max(int(i0_y[0]) + int(resizer.kernel.offsets[-1]), 0), h - 1)
    last_col = min(max(int(i0_x[0]) + int(resizer.kernel.offsets[-1]), 0), w - 1)
    fill = last_row * w + last_col + 1
    pipeline = sum(p["stages"] for p in passes)
    middle = h * w_out if order == "hv" else h_out * w
    # Words of the busiest stage a frame, per output pixel (1 for an upscale; 4 for a 2x
    # downscale, whose input stage reads four pixels an output pixel).
    busiest = max(h * w, middle, h_out * w_out) / (h_out * w_out)
    return HardwareCostReport(
        kernel=resizer.kernel.name,
        scale=f"{resizer.scale[0]:g} x {resizer.scale[1]:g}",
        input_shape="x".join(map(str, (h, w, channels))),
        output_shape="x".join(map(str, (h_out, w_out, channels))),
        pass_order=order,
        weight_source=kind,
        pixels_per_clock=lanes,
        multipliers=int(total["multipliers"]),
        dsp_per_multiplier=int(max(p["dsp_each"] for p in passes)),
        dsp_slices=int(total["dsp"]),
        adders=int(total["adders"]) + 2,  # + the two DDA accumulators
        lut=int(total["lut"] + select + dda_bits + 2 * counters),
        flip_flops=int(
            sum(p["flip_flops"] for p in passes) + dda_bits + 2 * resizer.phase_bits + counters
        ),
        line_buffers=rows,
        line_buffer_bits=bits,
        bram18=bram18,
        cheaper_pass_order=order if bits <= other_bits else other,
        rom_bits=int(sum(p["rom_bits"] for p in passes)),
        pipeline_depth=int(pipeline),
        fill_input_pixels=int(fill),
        latency_cycles=int(fill + pipeline),
        cycles_per_frame=math.ceil(max(h * w, middle, h_out * w_out) / lanes),
        clocks_mhz={
            video: pixel_clock * busiest / lanes / 1e6
            for video, (_, _, pixel_clock) in VIDEO_FORMATS.items()
        },
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
    >>> t = cost_table({"bilinear": FixedPointResizer("bilinear", 1.7)})
    >>> int(t.loc["bilinear", "multipliers"])  # a + f (b - a): 2 passes x 3 channels
    6
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


def realtime_table(
    designs: Mapping[str, FixedPointResizer],
    video: str = "4k60",
    *,
    lanes: tuple[int, ...] = (1, 2, 4),
    channels: int = 3,
    fmax_mhz: float = 300.0,
    dsp: DspFamily = "dsp48e2",
) -> pd.DataFrame:
    """Each design at each parallelism for one video output format: clock and resources.

    The input is the format's active size over the design's scale; the clock needed is the
    format's pixel clock (blanking included, as a video pipeline runs) times the busiest
    stage's words per output pixel, over the lanes (``estimate_cost``'s video clocks).

    Parameters
    ----------
    designs : mapping of str to FixedPointResizer
    video : str, default "4k60"
        A format of :data:`~srlab.fpga.primitives.VIDEO_FORMATS` ("1080p60", "4k60").
    lanes : tuple of int, default (1, 2, 4)
        Output pixels per clock to try.
    channels : int, default 3
    fmax_mhz : float, default 300
        The clock taken as reachable (the published IP's).
    dsp : {"dsp48e1", "dsp48e2"}

    Returns
    -------
    pandas.DataFrame
        One row per design and lanes: ``clock_mhz``, ``meets_clock`` (``<= fmax_mhz``),
        ``dsp_slices``, ``bram36``, ``lut``, ``flip_flops``.

    Raises
    ------
    TypeError
        If ``designs`` is not a mapping of FixedPointResizer, or ``video`` not a str.
    ValueError
        If ``designs`` is empty or ``video`` unknown, or as :func:`estimate_cost`.

    Examples
    --------
    >>> t = realtime_table({"x2": FixedPointResizer("shift_add_2x", 2, pass_order="vh")})
    >>> t[["lanes", "clock_mhz", "meets_clock", "dsp_slices", "bram36"]].values.tolist()
    [[1, 594.0, False, 0, 6.0], [2, 297.0, True, 0, 6.0], [4, 148.5, True, 0, 6.0]]
    """
    h_out, w_out, _ = VIDEO_FORMATS.get(video)  # unknown: ValueError listing the formats
    rows = []
    for label, r in check_designs(designs, FixedPointResizer).items():
        shape = (round(h_out / r.scale[0]), round(w_out / r.scale[1]), channels)
        for n in lanes:
            report = estimate_cost(r, shape, dsp=dsp, pixels_per_clock=n)
            needed = report.clocks_mhz[video]
            rows.append(
                {
                    "design": label,
                    "video": video,
                    "input": f"{shape[1]}x{shape[0]}",
                    "lanes": n,
                    "clock_mhz": needed,
                    "meets_clock": needed <= fmax_mhz,
                    "dsp_slices": report.dsp_slices,
                    "bram36": report.bram36,
                    "lut": report.lut,
                    "flip_flops": report.flip_flops,
                }
            )
    return pd.DataFrame(rows)
