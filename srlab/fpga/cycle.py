"""Cycle-level model of the generated streaming resizer: when each pixel moves, clock by clock.

:mod:`srlab.fpga.streaming` orders the operations of the horizontal-first design without a
clock. This module counts clocks for the vertical-first circuit that :mod:`srlab.fpga.rtl`
generates, following its registers one clock at a time (the rules are in that package's notes):
a write, a push into the window and an emit into the output register, each at most once a
clock, under valid/ready back-pressure drawn from the same xorshift generators as the
testbench. The co-simulation checks that the Verilog accepts and emits every pixel on the clock
this model predicts.

With the source always valid and the sink always ready, :func:`cycle_stats` turns the trace
into the figures a designer needs: latency, clocks per frame, output pixels per clock, the
input's stall share and the pixel clock that a video format needs.

Examples
--------
>>> from srlab.fpga import FixedPointResizer
>>> r = FixedPointResizer("bicubic", 2, pass_order="vh")
>>> s = cycle_stats(r, (16, 16))
>>> s.interval, s.line_buffers, round(s.output_pixels_per_clock, 2)
(1, 4, 0.93)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labcore.checks import check_int, check_type
from srlab.fpga.datapath import FixedPointResizer

__all__ = [
    "CycleStats",
    "CycleTrace",
    "clock_limit",
    "cycle_stats",
    "line_buffer_count",
    "rate_threshold",
    "simulate_cycles",
    "xorshift32",
]


def xorshift32(state: int) -> int:
    """One step of Marsaglia's 32-bit xorshift (13, 17, 5), drawn once a clock by each side.

    Examples
    --------
    >>> xorshift32(1)
    270369
    """
    state ^= (state << 13) & 0xFFFFFFFF
    state ^= state >> 17
    state ^= (state << 5) & 0xFFFFFFFF
    return state


def rate_threshold(rate: float) -> int:
    """A draw whose low 16 bits are below this offers a pixel / is ready (65536: always).

    Raises
    ------
    ValueError
        A rate outside (0, 1].
    """
    if not 0 < rate <= 1:
        raise ValueError(f"a valid or ready rate must be in (0, 1], got {rate!r}")
    if round(rate * 65536) == 0:
        raise ValueError(f"a rate of {rate!r} rounds to never; use at least 1/65536")
    return round(rate * 65536)


def clock_limit(n_in: int, n_out: int, rates: tuple[float, float]) -> int:
    """Clocks after which a run that has not delivered every pixel counts as stalled: 64 a pixel
    at the pace the source and the sink allow, plus 1000.
    """
    return int(64 * (n_in / rates[0] + n_out / rates[1])) + 1000


def line_buffer_count(taps: int) -> int:
    """Line buffers of the generated design: the taps rounded up to a power of two (so that a
    row's buffer is its low bits).

    Raises
    ------
    TypeError
        If ``taps`` is not an int.
    ValueError
        If ``taps < 1``.

    Examples
    --------
    >>> line_buffer_count(3), line_buffer_count(4), line_buffer_count(6)
    (4, 4, 8)
    """
    return 1 << (check_int(taps, "taps", minimum=1) - 1).bit_length()


@dataclass(frozen=True)
class CycleTrace:
    """Every handshake of a run.

    Attributes
    ----------
    input_cycles, output_cycles : ndarray of int64
        Clock of each accepted input pixel, of each output pixel (raster order, frame after
        frame).
    last : ndarray of bool
        Whether each output pixel ends its frame.
    """

    input_cycles: np.ndarray
    output_cycles: np.ndarray
    last: np.ndarray


class _Circuit:
    """The registers of the generated design and its per-clock rules."""

    def __init__(self, r: FixedPointResizer, shape: tuple[int, int]) -> None:
        self.h, self.w = shape
        self.ho, self.wo = r.output_shape(shape)
        self.dy, self.dx = r.dda_y, r.dda_x
        self.first, self.last = int(r.kernel.offsets[0]), int(r.kernel.offsets[-1])
        self.slots = line_buffer_count(r.taps)
        self.wr_row = self.wr_col = self.written = self.written_d = 0
        self.y = self.xo = 0
        self.ay, self.ax = self.dy.start, self.dx.start
        self.newest = -1
        self.out_valid = False

    def row(self, offset: int) -> int:
        return min(max((self.ay >> self.dy.frac_bits) + offset, 0), self.h - 1)

    def in_ready(self) -> bool:
        active = self.y < self.ho
        return self.wr_row < self.h and (
            not active or self.wr_row < self.row(self.first) + self.slots
        )

    def clock(self, in_fire: bool, out_ready: bool) -> None:
        """Advance one clock given this clock's input handshake and the sink's ready."""
        active = self.y < self.ho
        frame_done = not active and self.wr_row == self.h
        advance = not self.out_valid or out_ready
        need = (self.ax >> self.dx.frac_bits) + self.last
        col = min(self.newest + 1, self.w - 1)
        col_ready = self.written_d > self.row(self.last) * self.w + col
        push = active and advance and self.newest < need and col_ready
        newest = self.newest + push
        emit = active and advance and newest >= need
        row_end = emit and self.xo == self.wo - 1
        self.written_d = self.written
        if in_fire:
            self.written += 1
            self.wr_col += 1
            if self.wr_col == self.w:
                self.wr_col, self.wr_row = 0, self.wr_row + 1
        if advance:
            self.out_valid = emit
        self.newest = -1 if frame_done or row_end else newest
        if emit:
            if row_end:
                self.xo, self.ax, self.y = 0, self.dx.start, self.y + 1
                self.ay += self.dy.step
            else:
                self.xo, self.ax = self.xo + 1, self.ax + self.dx.step
        if frame_done:
            self.y, self.ay = 0, self.dy.start
            self.wr_row = self.wr_col = self.written = self.written_d = 0


def simulate_cycles(
    resizer: FixedPointResizer,
    input_shape: tuple[int, ...],
    n_frames: int = 1,
    seeds: tuple[int, int] = (1, 2),
    rates: tuple[float, float] = (1.0, 1.0),
) -> CycleTrace:
    """The clock of every handshake when ``n_frames`` frames stream through the circuit.

    Parameters
    ----------
    resizer : FixedPointResizer
        The design (its kernel, scale and DDAs set the schedule; formats do not).
    input_shape : (H, W) or (H, W, C)
        Frame size.
    n_frames : int, default 1
    seeds : (int, int), default (1, 2)
        Seeds of the source's and the sink's xorshift generators (as the testbench's).
    rates : (float, float), default (1.0, 1.0)
        Share of clocks on which the source offers a pixel and the sink is ready.

    Returns
    -------
    CycleTrace

    Raises
    ------
    TypeError
        If ``resizer`` is not a FixedPointResizer.
    ValueError
        A rate outside (0, 1], fewer than one frame, or a frame smaller than the kernel.
    """
    check_type(resizer, FixedPointResizer, "resizer")
    if resizer.pass_order != "vh":
        raise ValueError(
            "the cycle model follows the generated circuit, which runs the vertical pass first; "
            "pass dataclasses.replace(resizer, pass_order='vh')"
        )
    if int(n_frames) < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames!r}")
    h, w = int(input_shape[0]), int(input_shape[1])
    if min(h, w) < resizer.taps:
        raise ValueError(f"a {h}x{w} frame is smaller than the {resizer.taps}-tap kernel")
    tv, tr = rate_threshold(rates[0]), rate_threshold(rates[1])
    circuit = _Circuit(resizer, (h, w))
    n_in, n_out = n_frames * h * w, n_frames * circuit.ho * circuit.wo
    rv, rr = int(seeds[0]) & 0xFFFFFFFF, int(seeds[1]) & 0xFFFFFFFF
    inputs, outputs, last = [], [], []
    taken = emitted = cycle = 0
    hold = False
    limit = clock_limit(n_in, n_out, rates)
    while emitted < n_out:
        rv, rr = xorshift32(rv), xorshift32(rr)  # this clock's choices
        in_valid = taken < n_in and (hold or (rv & 0xFFFF) < tv)
        out_ready = (rr & 0xFFFF) < tr
        fire = in_valid and circuit.in_ready()
        if fire:
            inputs.append(cycle)
            taken += 1
        hold = in_valid and not fire
        if circuit.out_valid and out_ready:
            outputs.append(cycle)
            emitted += 1
            last.append(emitted % (circuit.ho * circuit.wo) == 0)
        circuit.clock(fire, out_ready)
        cycle += 1
        if cycle > limit:
            raise RuntimeError(f"the circuit stalled after {cycle} clocks ({emitted} outputs)")
    return CycleTrace(
        np.array(inputs, dtype=np.int64), np.array(outputs, dtype=np.int64), np.array(last)
    )


@dataclass(frozen=True)
class CycleStats:
    """Timing of the generated circuit with no back-pressure.

    Attributes
    ----------
    latency : int
        Clocks from the first input pixel's acceptance to the first output pixel.
    frame_clocks : int
        Clocks between the last output pixels of two consecutive frames (the frame period).
    interval : int
        Smallest number of clocks between consecutive output pixels (the initiation interval).
    row_clocks : int
        Clocks from the first pixel of one output row to the first of the next (the row
        pacing), the most over the frame.
    output_pixels_per_clock : float
        Output pixels of a frame over ``frame_clocks``.
    input_stall_share : float
        Share of a frame's clocks on which the source was held back.
    line_buffers : int
        Rows of input pixels stored.
    """

    latency: int
    frame_clocks: int
    interval: int
    row_clocks: int
    output_pixels_per_clock: float
    input_stall_share: float
    line_buffers: int

    def clock_mhz(self, pixel_rate_hz: float, lanes: int = 1) -> float:
        """Clock (MHz) that sustains ``pixel_rate_hz`` output pixels with ``lanes`` copies side
        by side (e.g. 1080p60 with standard blanking: 148.5e6).
        """
        return pixel_rate_hz / (self.output_pixels_per_clock * lanes) / 1e6


def cycle_stats(resizer: FixedPointResizer, input_shape: tuple[int, ...]) -> CycleStats:
    """Latency, frame period and throughput of the circuit, from two frames with no stalls.

    Examples
    --------
    >>> from srlab.fpga import FixedPointResizer
    >>> cycle_stats(FixedPointResizer("bilinear", 0.5, pass_order="vh"), (8, 8)).interval
    2
    """
    trace = simulate_cycles(resizer, input_shape, n_frames=2)
    per_frame = len(trace.output_cycles) // 2
    frame_clocks = int(trace.output_cycles[-1] - trace.output_cycles[per_frame - 1])
    inputs = len(trace.input_cycles) // 2
    _, w_out = resizer.output_shape(tuple(input_shape[:2]))
    row_starts = trace.output_cycles[:per_frame:w_out]
    return CycleStats(
        latency=int(trace.output_cycles[0] - trace.input_cycles[0]),
        frame_clocks=frame_clocks,
        interval=int(np.diff(trace.output_cycles[:per_frame]).min()) if per_frame > 1 else 1,
        row_clocks=int(np.diff(row_starts).max()) if len(row_starts) > 1 else frame_clocks,
        output_pixels_per_clock=per_frame / frame_clocks,
        input_stall_share=1 - inputs / frame_clocks,
        line_buffers=line_buffer_count(resizer.taps),
    )
