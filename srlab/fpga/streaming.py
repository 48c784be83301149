"""Streaming model of the fixed-point resizer: raster-order pixels, line buffers, a window.

:class:`~srlab.fpga.datapath.FixedPointResizer` computes whole images at once. This
module computes the same thing the way the hardware does, one pixel at a time, to
show that the vectorized model *is* the hardware's behaviour (tests compare the two
bit for bit):

* **Input**: pixels arrive in raster order, one at a time, and are converted to
  ``pixel_fmt`` as they arrive.
* **Horizontal stage**: a shift register of ``taps`` pixels slides along the row. On
  the first pixel of a row it is filled with that pixel and after the last one the
  last pixel is shifted in again (replicated borders). A DDA register, incremented by
  its step once per output, says when the window holds an output's taps (its last tap
  is the newest pixel) and which ROM row supplies the weights; several outputs can
  come from one window (upscaling), or none (downscaling).
* **MAC unit** (both stages): ROM read, products, ``acc += c * p`` in tap order with
  ``acc_fmt``, then the output register's rounding and overflow, each step a register
  of the declared width.
* **Line buffers**: ``taps`` rows of ``W_out`` words of ``mid_fmt``, written as the
  horizontal stage produces them; row ``r`` lives in slot ``r mod taps``. Every read
  checks that the slot still holds the row asked for (and that the word was already
  written), so a schedule that needed more buffers would fail loudly.
* **Vertical stage**: a second DDA steps over output rows. The first output row that
  needs a new input row is computed pixel by pixel as that row's words are written;
  further output rows from the same window (upscaling) are computed from the line
  buffers after the row has ended, while the input waits.

The model is transaction-level: it orders every operation as the hardware does but
does not count clock cycles; pipeline latency is in :func:`srlab.fpga.cost.estimate_cost`.
Loops run over pixels in Python (vectorized only across the channels of a pixel), so
use small images.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from labcore.checks import check_int, check_type
from srlab.fixed import FixedArray, QFormat, add, cast, multiply, quantize
from srlab.fpga._checks import check_designs
from srlab.fpga.datapath import FixedPointResizer
from srlab.fpga.dda import PhaseDDA

__all__ = ["StreamResult", "StreamStats", "stream_resize", "streaming_agreement"]


class _DdaRegister:
    """The accumulator register of a :class:`PhaseDDA`, advanced once per output."""

    def __init__(self, dda: PhaseDDA) -> None:
        self.dda = dda
        self.acc = dda.start

    def reset(self) -> None:
        self.acc = self.dda.start

    def advance(self) -> None:
        self.acc += self.dda.step

    @property
    def index(self) -> int:
        return self.acc >> self.dda.frac_bits

    @property
    def phase(self) -> int:
        fraction = self.acc & ((1 << self.dda.frac_bits) - 1)
        return fraction >> (self.dda.frac_bits - self.dda.phase_bits)


class _MacUnit:
    """ROM read, products and ``acc += c * p`` in tap order, output register."""

    def __init__(self, r: FixedPointResizer, source: QFormat, target: QFormat) -> None:
        self.r, self.source, self.target = r, source, target

    def __call__(self, window: np.ndarray, phase: int) -> np.ndarray:
        """``window``: (taps, C) codes of ``source``; returns (C,) codes of ``target``."""
        if not self.r.coefficient_rows[phase]:
            raise ValueError(f"ROM row {phase} holds no weights for kernel {self.r.kernel.name!r}")
        weights = self.r.coefficients[phase]  # the ROM read
        acc = None
        for k in range(len(weights)):
            product = multiply(
                FixedArray(window[k], self.source), FixedArray(weights[k], self.r.coeff_fmt)
            )
            acc = cast(product if acc is None else add(acc, product), self.r.acc_fmt)
        return cast(acc, self.target).codes


class _HorizontalStage:
    """Sliding window over one row, emitting the outputs whose taps it holds."""

    def __init__(self, r: FixedPointResizer, n_out: int, channels: int) -> None:
        self.taps = r.taps
        self.n_out = n_out
        self.window = np.zeros((r.taps, channels), dtype=np.int64)
        self.dda = _DdaRegister(r.dda_x)
        self.mac = _MacUnit(r, r.pixel_fmt, r.mid_fmt)
        self.start_row()

    def start_row(self) -> None:
        self.dda.reset()
        self.x = 0
        self.newest = -1  # input index of the newest pixel in the window

    def push(self, pixel: np.ndarray) -> list[tuple[int, np.ndarray]]:
        if self.newest < 0:
            self.window[:] = pixel  # left border: the first pixel stands in for those before it
        else:
            self.window[:-1] = self.window[1:]
            self.window[-1] = pixel
        self.newest += 1
        return self._emit()

    def flush(self) -> list[tuple[int, np.ndarray]]:
        """Shift the last pixel in again until the row's outputs are done (right border)."""
        out = []
        while self.x < self.n_out:
            out += self.push(self.window[-1].copy())
        return out

    def _emit(self) -> list[tuple[int, np.ndarray]]:
        out = []
        while self.x < self.n_out and self.dda.index + self.taps // 2 <= self.newest:
            last_tap = self.dda.index + self.taps // 2
            if last_tap != self.newest and self.newest != 0:
                raise RuntimeError(
                    f"window misaligned: output {self.x} needs tap {last_tap}, newest is {self.newest}"
                )
            out.append((self.x, self.mac(self.window, self.dda.phase)))
            self.dda.advance()
            self.x += 1
        return out


class _LineBuffers:
    """``rows`` circular line buffers; reads check the slot still holds the row asked for."""

    def __init__(self, rows: int, width: int, channels: int) -> None:
        self.rows = rows
        self.words = np.zeros((rows, width, channels), dtype=np.int64)
        self.tags = np.full((rows, width), -1, dtype=np.int64)  # which input row each word holds

    def write(self, row: int, x: int, value: np.ndarray) -> None:
        self.words[row % self.rows, x] = value
        self.tags[row % self.rows, x] = row

    def read(self, row: int, x: int) -> np.ndarray:
        held = self.tags[row % self.rows, x]
        if held != row:
            raise RuntimeError(
                f"line buffer slot {row % self.rows} column {x} holds row {held}, not row {row}"
            )
        return self.words[row % self.rows, x]


class _VerticalStage:
    """Output rows from the line buffers, each when its last input row arrives."""

    def __init__(self, r: FixedPointResizer, n_in: int, n_out: int, buffers: _LineBuffers) -> None:
        self.r, self.n_in, self.n_out, self.buffers = r, n_in, n_out, buffers
        self.width = buffers.words.shape[1]
        self.dda = _DdaRegister(r.dda_y)
        self.mac = _MacUnit(r, r.mid_fmt, r.out_fmt)
        self.y = 0
        self.output = np.zeros((n_out, self.width, buffers.words.shape[2]), dtype=np.uint8)
        self.computed = 0
        self.oldest_read = 0
        self.rows_in_use = 0

    def _trigger(self) -> int:
        """The last input row the current output row reads (clipped: replicated bottom)."""
        return min(max(self.dda.index + self.r.taps // 2, 0), self.n_in - 1)

    def on_write(self, row: int, x: int) -> None:
        if self.y < self.n_out and self._trigger() == row:
            self._compute(x, row)

    def end_of_row(self, row: int) -> None:
        if self.y < self.n_out and self._trigger() == row:
            self._next_row()
        while self.y < self.n_out and self._trigger() == row:
            for x in range(self.width):
                self._compute(x, row)
            self._next_row()

    def _next_row(self) -> None:
        self.dda.advance()
        self.y += 1

    def _compute(self, x: int, newest: int) -> None:
        rows = np.clip(self.dda.index + self.r.kernel.offsets, 0, self.n_in - 1)
        window = np.stack([self.buffers.read(int(row), x) for row in rows])
        self.rows_in_use = max(self.rows_in_use, newest - int(rows.min()) + 1)
        self.output[self.y, x] = self.mac(window, self.dda.phase)
        self.computed += 1


@dataclass(frozen=True)
class StreamStats:
    """What the streaming run observed.

    Attributes
    ----------
    input_pixels_at_first_output : int
        Input pixels that had arrived when output pixel (0, 0) was computed: the line
        buffer fill before the pipeline (compare ``estimate_cost(...).fill_input_pixels``).
    line_buffer_rows : int
        Line buffers the model ran with (``taps``).
    rows_in_use : int
        Most input rows one output read, counting the row being written (never more
        than ``line_buffer_rows``, or a read would have failed).
    horizontal_outputs, vertical_outputs : int
        Words computed by each stage.
    """

    input_pixels_at_first_output: int
    line_buffer_rows: int
    rows_in_use: int
    horizontal_outputs: int
    vertical_outputs: int


@dataclass(frozen=True, eq=False)
class StreamResult:
    """Output of :func:`stream_resize`.

    Attributes
    ----------
    output : ndarray of uint8
        The resized image, shaped like :meth:`FixedPointResizer.run`'s.
    mid : FixedArray
        Every word written into the line buffers, ``(H, W_out, C)`` in ``mid_fmt``.
    stats : StreamStats
    """

    output: np.ndarray
    mid: FixedArray
    stats: StreamStats


def stream_resize(
    resizer: FixedPointResizer, image: np.ndarray, line_buffers: int | None = None
) -> StreamResult:
    """Run the resizer as a stream of raster-order pixels (see the module notes).

    Parameters
    ----------
    resizer : FixedPointResizer
        The datapath (kernel, formats, DDAs, ROM).
    image : (H, W) or (H, W, C) ndarray of uint8
        Keep it small: every pixel passes through Python.
    line_buffers : int, optional
        Line buffers to run with; default ``taps``, what the design has. Fewer show what
        breaks: the first read of an overwritten row raises ``RuntimeError``.

    Returns
    -------
    StreamResult

    Raises
    ------
    TypeError
        If ``resizer`` is not a FixedPointResizer, or ``line_buffers`` not an int.
    RuntimeError
        If ``line_buffers`` are too few for the schedule.
    ValueError
        If ``line_buffers`` is below 1, the image is not valid for it (:meth:`FixedPointResizer.check_image`), or the design
        runs the vertical pass first (its clocked model is :mod:`srlab.fpga.cycle`).

    Examples
    --------
    >>> r = FixedPointResizer("bicubic", 2)
    >>> img = np.arange(30, dtype=np.uint8).reshape(5, 6) * 8
    >>> res = stream_resize(r, img)
    >>> np.array_equal(res.output, r.run(img)), res.stats.line_buffer_rows
    (True, 4)
    """
    check_type(resizer, FixedPointResizer, "resizer")
    if resizer.pass_order != "hv":
        raise ValueError(
            "stream_resize models the horizontal-first design (pass_order='hv'); the "
            "vertical-first one streams cycle by cycle in srlab.fpga.cycle"
        )
    image = resizer.check_image(image)
    h, w = image.shape[:2]
    channels = image.shape[2] if image.ndim == 3 else 1
    h_out, w_out = resizer.output_shape((h, w))
    pixels = image.reshape(h, w, channels)

    horizontal = _HorizontalStage(resizer, w_out, channels)
    rows = (
        resizer.taps if line_buffers is None else check_int(line_buffers, "line_buffers", minimum=1)
    )
    buffers = _LineBuffers(rows, w_out, channels)
    vertical = _VerticalStage(resizer, h, h_out, buffers)
    mid = np.zeros((h, w_out, channels), dtype=np.int64)
    arrived = 0
    first_output_at = None

    for row in range(h):
        horizontal.start_row()
        for col in range(w + 1):
            if col < w:
                arrived += 1
                words = horizontal.push(quantize(pixels[row, col], resizer.pixel_fmt).codes)
            else:
                words = horizontal.flush()
            for x, word in words:
                buffers.write(row, x, word)
                mid[row, x] = word
                vertical.on_write(row, x)
                if first_output_at is None and vertical.computed:
                    first_output_at = arrived
        vertical.end_of_row(row)
        if first_output_at is None and vertical.computed:
            first_output_at = arrived

    stats = StreamStats(
        input_pixels_at_first_output=int(first_output_at),
        line_buffer_rows=buffers.rows,
        rows_in_use=vertical.rows_in_use,
        horizontal_outputs=h * w_out,
        vertical_outputs=vertical.computed,
    )
    output = vertical.output.reshape((h_out, w_out) + image.shape[2:])
    return StreamResult(output, FixedArray(mid, resizer.mid_fmt), stats)


def streaming_agreement(
    designs: Mapping[str, FixedPointResizer], image: np.ndarray
) -> pd.DataFrame:
    """Stream each design and compare with its vectorized run and its cost estimate.

    Parameters
    ----------
    designs : mapping of str to FixedPointResizer
        Label -> design.
    image : (H, W) or (H, W, C) ndarray of uint8
        A small image.

    Returns
    -------
    pandas.DataFrame
        Index ``design``: ``identical_output`` and ``identical_line_buffers`` (streamed
        against :meth:`FixedPointResizer.trace`), ``outputs``, ``line_buffers``,
        ``rows_in_use``, ``fill_streamed`` (input pixels before the first output) and
        ``fill_estimated`` (:func:`srlab.fpga.cost.estimate_cost`).

    Raises
    ------
    TypeError
        If a design is not a FixedPointResizer.
    ValueError
        If ``designs`` is empty or a design rejects the image.

    Examples
    --------
    >>> img = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    >>> streaming_agreement({"bilinear": FixedPointResizer("bilinear", 2)}, img)["identical_output"].tolist()
    [True]
    """
    from srlab.fpga.cost import estimate_cost  # the cost model imports the datapath too

    rows = []
    for label, design in check_designs(designs, FixedPointResizer).items():
        streamed = stream_resize(design, image)
        vectorized = design.trace(image)
        rows.append(
            {
                "design": label,
                "identical_output": bool(np.array_equal(streamed.output, vectorized.output)),
                "identical_line_buffers": bool(streamed.mid == vectorized.mid),
                "outputs": streamed.stats.vertical_outputs,
                "line_buffers": streamed.stats.line_buffer_rows,
                "rows_in_use": streamed.stats.rows_in_use,
                "fill_streamed": streamed.stats.input_pixels_at_first_output,
                "fill_estimated": estimate_cost(design, image.shape).fill_input_pixels,
            }
        )
    return pd.DataFrame(rows).set_index("design")
