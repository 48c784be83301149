"""Bit-true fixed-point resizer: the FPGA interpolation datapath, vectorized.

The datapath
------------
A separable resizer that a line-buffer FPGA design implements, pass by pass::

    uint8 pixel  -> pixel_fmt
    horizontal pass, output column x:
        DDA_x -> (i0, phase);  ROM[phase] -> c_0 .. c_{T-1}      (coeff_fmt)
        acc = 0; for k in 0..T-1: acc = acc_fmt(acc + c_k * p[i0 + off_k])
        mid = mid_fmt(acc)                                       -> line buffers
    vertical pass, output row y: the same MAC over T buffered rows
        out = out_fmt(acc)                                       -> uint8

``acc = acc_fmt(acc + c * p)`` is the HLS statement ``acc += c * p`` with ``acc``
declared ``acc_fmt``: the product is exact, the sum is exact, the assignment rounds
and overflows with ``acc_fmt``'s modes (:func:`srlab.fixed.cast`). Taps are
accumulated in order ``k = 0 .. T-1`` at offsets ``-(T/2 - 1) .. T/2``; a tap outside
the image reads the edge pixel (replicate), as a line buffer that repeats its first
and last pixel does.

Geometry: the phase accumulator (DDA) and the float reference
-------------------------------------------------------------
:func:`srlab.resize` (``convention="half_pixel"``) samples output ``x`` at the input
coordinate ``u = (x + 0.5) / s - 0.5`` computed in float64, taps at ``floor(u) + k``,
weights at the exact phase ``u - floor(u)``. The hardware has no division and no
float: a :class:`PhaseDDA` adds a constant step to an accumulator with ``F``
fraction bits once per output sample:

* the step ``1 / s`` is rounded to ``F`` fraction bits, so the position drifts by at
  most ``x * 2**-(F + 1)`` pixels after ``x`` outputs;
* the start ``step / 2 - 1/2`` is computed from the rounded step (an arithmetic shift),
  so the grid stays centred for the step actually used;
* the integer part of the accumulator is the tap index ``i0``; the top ``P`` bits of
  its fraction address a ROM of ``2**P`` weight rows, so the phase is quantized to
  ``2**-P``. With ``phase_rounding="nearest"`` half a phase step is added to the start
  (a constant, free in hardware), so dropping the low bits rounds the phase to the
  nearest ROM entry instead of truncating it (a systematic shift of half a phase step).

The two agree exactly when ``1 / s`` is a short binary fraction (``s`` = 2, 4, 0.5,
1.25 = 5/4 needs ``1/s = 0.8``: not exact) and ``F`` holds it: then with
``phase_rounding="truncate"`` every ``i0`` equals the float ``floor(u)`` and the
phase is its top ``P`` bits. For other scales the indices are equal wherever ``u`` is
further than the drift (plus half a phase step for ``"nearest"``) from an integer;
where ``u`` is that close to an integer, ``(i0, phase ~ 1)`` and ``(i0 + 1, phase ~ 0)``
are the same sample of an interpolating kernel (the tap that changes has weight ~0).
So with 30+ DDA fraction bits, 16 phase bits and 20+ coefficient and accumulator
fraction bits, the output equals the float resize within one LSB (a float value that
lands within rounding noise of ``k + 0.5`` may round either way).

Speed
-----
``run`` is vectorized over whole images. When the formats make the MAC exact (the
accumulator has at least the product's fraction bits, and its partial sums cannot
overflow or it wraps, which is modular), the sum of products is computed as float
BLAS matrix products of integer codes, using the blocked band matrices of
:mod:`srlab._separable`. That is exact, not approximate: every product and partial sum
is an integer below ``2**23`` (float32) or ``2**52`` (float64), bounds checked from
the formats and the ROM before the path is taken. The one rounding of each sum into
the next format then runs on those exact values, band by band while they are in
cache, with the rounding and overflow rules of :mod:`srlab.fixed` (tests compare
the two for every mode); an accumulator that can wrap goes through
:func:`srlab.fixed.cast` on ``int64`` codes. Any other format choice takes the
tap-by-tap path (``int64`` gathers and :mod:`srlab.fixed` arithmetic), equally
bit-true and about ten times slower.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import numpy as np
import pandas as pd

from srlab._separable import AxisPlan, band_plan, check_scale, geometry, horizontal, vertical
from srlab.fixed import (
    MAX_WORD_BITS,
    FixedArray,
    QFormat,
    add,
    add_format,
    cast,
    cast_float_codes,
    multiply,
    multiply_format,
    quantize,
)
from srlab.kernels import Kernel, get_kernel

__all__ = [
    "MAX_DDA_FRAC_BITS",
    "MAX_PHASE_BITS",
    "DatapathTrace",
    "FixedPointResizer",
    "PhaseDDA",
    "PhaseRounding",
    "minimum_int_bits",
]

PhaseRounding = Literal["nearest", "truncate"]
RunPath = Literal["auto", "taps"]
FormatLike = QFormat | str

MAX_DDA_FRAC_BITS = 40
"""Widest DDA fraction: positions up to ``2**20`` pixels stay inside int64."""

MAX_PHASE_BITS = 20
"""Largest phase ROM (``2**20`` rows), already far beyond any FPGA ROM."""

# Bounds below which float32 / float64 hold every integer exactly, with one bit of head
# room so that adding a rounding bias of 1/2 to a scaled code stays exact.
_EXACT_FLOAT = ((np.dtype(np.float32), 1 << 23), (np.dtype(np.float64), 1 << 52))

# Offset added to the DDA start so that keeping the top phase bits rounds as named.
_PHASE_OFFSETS: dict[str, Callable[[int, int], int]] = {
    "nearest": lambda frac_bits, phase_bits: (1 << (frac_bits - phase_bits - 1)) if frac_bits > phase_bits else 0,
    "truncate": lambda frac_bits, phase_bits: 0,
}


def _check_choice(kind: str, value: Any, known: dict[str, Any]) -> str:
    if not isinstance(value, str) or value not in known:
        raise ValueError(f"unknown {kind} {value!r}; known: {', '.join(sorted(known))}")
    return value


def _check_bits(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- DDA


@dataclass(frozen=True)
class PhaseDDA:
    """Phase accumulator of one axis: output sample -> (tap index, ROM phase).

    Parameters
    ----------
    in_per_out : float
        Input pixels per output pixel, ``1 / scale``.
    frac_bits : int, default 16
        Fraction bits ``F`` of the accumulator (and of the quantized step).
    phase_bits : int, default 6
        Bits ``P <= F`` of the fraction that address the weight ROM (``2**P`` rows).
    phase_rounding : {"nearest", "truncate"}, default "nearest"
        ``"nearest"`` adds half a phase step to the start, so the top bits round the
        phase to the nearest ROM row; ``"truncate"`` keeps them as they are.

    Attributes
    ----------
    step : int
        ``round(in_per_out * 2**F)``, the increment per output sample.
    start : int
        Accumulator of output 0: ``(step - 2**F) >> 1`` plus the rounding offset.

    Raises
    ------
    ValueError
        If ``in_per_out`` is not positive and finite, a bit count is out of range,
        ``phase_bits > frac_bits``, the step rounds to zero, or the rounding is unknown.

    Examples
    --------
    >>> dda = PhaseDDA(0.5, frac_bits=8, phase_bits=2, phase_rounding="truncate")
    >>> dda.step, dda.start
    (128, -64)
    >>> [a.tolist() for a in dda.positions(4)]
    [[-1, 0, 0, 1], [3, 1, 3, 1]]
    """

    in_per_out: float
    frac_bits: int = 16
    phase_bits: int = 6
    phase_rounding: PhaseRounding = "nearest"
    step: int = field(init=False)
    start: int = field(init=False)

    def __post_init__(self) -> None:
        ratio = float(self.in_per_out)
        if not math.isfinite(ratio) or ratio <= 0:
            raise ValueError(f"in_per_out must be a positive finite number (1 / scale), got {self.in_per_out!r}")
        frac = _check_bits("dda_frac_bits", self.frac_bits, 1, MAX_DDA_FRAC_BITS)
        phase = _check_bits("phase_bits", self.phase_bits, 0, MAX_PHASE_BITS)
        if phase > frac:
            raise ValueError(
                f"phase_bits={phase} exceeds the DDA's {frac} fraction bits; the phase is taken from "
                "the accumulator's fraction, so use dda_frac_bits >= phase_bits"
            )
        _check_choice("phase_rounding", self.phase_rounding, _PHASE_OFFSETS)
        step = round(Fraction(ratio) * (1 << frac))
        if step <= 0:
            raise ValueError(
                f"the DDA step 1/scale = {ratio:g} rounds to 0 with {frac} fraction bits; use more dda_frac_bits"
            )
        object.__setattr__(self, "in_per_out", ratio)
        object.__setattr__(self, "frac_bits", frac)
        object.__setattr__(self, "phase_bits", phase)
        object.__setattr__(self, "step", int(step))
        start = ((int(step) - (1 << frac)) >> 1) + _PHASE_OFFSETS[self.phase_rounding](frac, phase)
        object.__setattr__(self, "start", start)

    def accumulator(self, n_out: int) -> np.ndarray:
        """Accumulator values of outputs ``0 .. n_out - 1``: ``start + x * step`` (int64)."""
        if abs(self.start) + n_out * self.step >= 1 << 62:
            raise ValueError(f"{n_out} outputs overflow the int64 DDA accumulator; use fewer dda_frac_bits")
        return self.start + np.arange(n_out, dtype=np.int64) * self.step

    def split(self, acc: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """Tap index ``acc >> F`` and ROM row (top ``P`` fraction bits) of accumulator values."""
        acc = np.asarray(acc, dtype=np.int64)
        mask = (1 << self.frac_bits) - 1
        return acc >> self.frac_bits, (acc & mask) >> (self.frac_bits - self.phase_bits)

    def positions(self, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        """``(i0, phase_row)`` of every output sample, each ``(n_out,)`` int64."""
        return self.split(self.accumulator(n_out))

    def register_bits(self, n_in: int) -> int:
        """Width of the signed accumulator register for an input of ``n_in`` pixels."""
        # The position stays within [-1, n_in + 1) for any upscaling or downscaling.
        return (n_in + 2).bit_length() + 1 + self.frac_bits


# --------------------------------------------------------------------------- formats


def _as_format(name: str, value: FormatLike) -> QFormat:
    fmt = QFormat.parse(value) if isinstance(value, str) else value
    if not isinstance(fmt, QFormat):
        raise ValueError(f"{name} must be a QFormat or a string such as 'ap_fixed<16,4>', got {value!r}")
    if fmt.word_bits < fmt.int_bits:
        raise ValueError(
            f"{name} {fmt} has word_bits={fmt.word_bits} < int_bits={fmt.int_bits}, i.e. negative fraction "
            "bits; the datapath needs word_bits >= int_bits (drop low bits by narrowing the word instead)"
        )
    if fmt.int_bits < (1 if fmt.signed else 0):
        raise ValueError(f"{name} {fmt} has no integer bit; use int_bits >= {1 if fmt.signed else 0}")
    return fmt


def minimum_int_bits(low: int, high: int, frac_bits: int, signed: bool) -> int:
    """Fewest integer bits of a format with ``frac_bits`` that holds codes ``low .. high``.

    Parameters
    ----------
    low, high : int
        Smallest and largest code (in units of ``2**-frac_bits``).
    frac_bits : int
        Fraction bits of the format.
    signed : bool
        Two's complement or unsigned.

    Returns
    -------
    int
        ``I`` (counting the sign bit) such that ``QFormat(I + frac_bits, I, signed)``
        holds every code.

    Raises
    ------
    ValueError
        If ``signed`` is False and ``low < 0``.

    Examples
    --------
    >>> minimum_int_bits(-72, 1024, 10, signed=True)  # weights -0.07 .. 1.0
    2
    >>> minimum_int_bits(0, 255, 0, signed=False)
    8
    """
    low, high = int(low), int(high)
    if signed:
        word = max(high.bit_length(), (-low - 1).bit_length() if low < 0 else 0) + 1
    else:
        if low < 0:
            raise ValueError(f"an unsigned format cannot hold the negative code {low}; use a signed format")
        word = max(high.bit_length(), 1)
    return word - frac_bits


def _with_int_bits(fmt: QFormat, int_bits: int) -> QFormat:
    return QFormat(int_bits + fmt.frac_bits, int_bits, fmt.signed, fmt.rounding, fmt.overflow)


def _shift_codes(code: int, shift: int) -> int:
    """``code * 2**shift`` rounded outward (floor for negatives, ceil for positives)."""
    if shift >= 0:
        return code << shift
    return code >> -shift if code < 0 else -((-code) >> -shift)


def _sum_format(bound: int, frac_bits: int) -> QFormat:
    """Smallest signed format with ``frac_bits`` holding codes in ``[-bound, bound]``."""
    return QFormat(bound.bit_length() + 1, bound.bit_length() + 1 - frac_bits)


# --------------------------------------------------------------------------- ROM


def _quantized_weights(kernel: Kernel, phases: np.ndarray, fmt: QFormat, unity_gain: bool) -> np.ndarray:
    """Weight codes of the given phases with ``fmt``'s fraction bits and rounding (no overflow)."""
    weights = kernel.weights(phases)
    wide = QFormat(MAX_WORD_BITS, MAX_WORD_BITS - fmt.frac_bits, rounding=fmt.rounding)
    codes = quantize(weights, wide).codes.copy()
    if unity_gain:
        # Rounding each weight can leave the row a few LSBs off one; putting the residual
        # on the largest weight keeps the DC gain exactly one, so flat areas stay flat
        # (OpenCV corrects its fixed-point weights the same way).
        residual = (1 << fmt.frac_bits) - codes.sum(axis=1)
        rows = np.arange(len(codes))
        codes[rows, np.abs(weights).argmax(axis=1)] += residual
    return codes


def _build_rom(kernel: Kernel, phase_bits: int, fmt: QFormat, unity_gain: bool) -> tuple[np.ndarray, np.ndarray]:
    """ROM codes ``(2**P, taps)`` and which rows hold weights (fixed-phase kernels have few)."""
    phases = np.arange(1 << phase_bits) / (1 << phase_bits)
    if kernel.phases is None:
        valid = np.ones(len(phases), dtype=bool)
    else:
        allowed = np.asarray(kernel.phases)
        valid = np.isclose(phases[:, None], allowed[None, :], rtol=0, atol=1e-12).any(axis=1)
        rows = np.round(allowed * (1 << phase_bits))
        if not np.allclose(rows / (1 << phase_bits), allowed, rtol=0, atol=1e-12):
            need = max(Fraction(p).limit_denominator(1 << 20).denominator.bit_length() - 1 for p in kernel.phases)
            raise ValueError(
                f"kernel {kernel.name!r} has fixed phases {kernel.phases}, which a {phase_bits}-bit phase "
                f"cannot address; use phase_bits >= {need}"
            )
    codes = np.zeros((len(phases), kernel.taps), dtype=np.int64)
    codes[valid] = _quantized_weights(kernel, phases[valid], fmt, unity_gain)
    return codes, valid


def _check_rom_fits(codes: np.ndarray, fmt: QFormat, kernel: Kernel) -> None:
    low, high = int(codes.min()), int(codes.max())
    if fmt.min_code <= low and high <= fmt.max_code:
        return
    if low < 0 and not fmt.signed:
        signed = QFormat(fmt.word_bits, fmt.int_bits, True, fmt.rounding, fmt.overflow)
        need = minimum_int_bits(low, high, fmt.frac_bits, True)
        raise ValueError(
            f"kernel {kernel.name!r} has negative weights (down to {low * fmt.lsb:g}); the unsigned coefficient "
            f"format {fmt} cannot hold them: use a signed format with at least {need} integer bits, "
            f"e.g. {_with_int_bits(signed, need)}"
        )
    need = minimum_int_bits(low, high, fmt.frac_bits, fmt.signed)
    worst = high * fmt.lsb if high > fmt.max_code else low * fmt.lsb
    raise ValueError(
        f"coefficient format {fmt} (range [{fmt.min_value:g}, {fmt.max_value:g}]) cannot hold the weight "
        f"{worst:g} of kernel {kernel.name!r}; it needs at least {need} integer bits with "
        f"{fmt.frac_bits} fraction bits: use {_with_int_bits(fmt, need)}"
    )


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class DatapathTrace:
    """What each stage of one run produced.

    Attributes
    ----------
    pixels : FixedArray
        Input pixels in ``pixel_fmt``, ``(H, W, C)``.
    mid : FixedArray
        Horizontal pass output in ``mid_fmt`` (what the line buffers hold), ``(H, W_out, C)``.
    output : ndarray of uint8
        The resized image, ``(H_out, W_out)`` or ``(H_out, W_out, C)`` like the input.
    """

    pixels: FixedArray
    mid: FixedArray
    output: np.ndarray


# --------------------------------------------------------------------------- resizer


@dataclass(frozen=True)
class FixedPointResizer:
    """Bit-true model of a separable fixed-point resizer (see the module notes).

    Parameters
    ----------
    kernel : str or Kernel, default "bicubic"
        Interpolation kernel (:func:`srlab.kernels.get_kernel`); build one with
        parameters first, e.g. ``get_kernel("bicubic", a=-0.75)``.
    scale : float or (sy, sx), default 2.0
        Output size ``round(H * sy), round(W * sx)``, mapped with ``1 / scale`` as
        :func:`srlab.resize` does. Fixed-phase kernels (``shift_add_2x*``) need exactly 2.
    pixel_fmt : QFormat or str, default "ap_ufixed<8,8>"
        Input pixels; uint8 values are converted with its rounding and overflow modes.
    coeff_fmt : QFormat or str, default "ap_fixed<12,2,RND,SAT>"
        Weight ROM words; the float weights are rounded with its rounding mode.
    acc_fmt : QFormat or str, default "ap_fixed<24,12>"
        Accumulator of both passes (``acc += c * p`` rounds and overflows with it).
    out_fmt : QFormat or str, default "ap_ufixed<8,8,RND,SAT>"
        Output pixels: unsigned with 8 integer and 0 fraction bits; its modes choose the
        output rounding and what happens to overshoot (``SAT`` clamps, ``WRAP`` wraps).
    mid_fmt : QFormat or str or None, default "ap_fixed<12,10,RND,SAT>"
        Words between the passes (the line buffers); ``None`` keeps ``acc_fmt``.
    phase_bits : int, default 6
        ROM rows ``2**phase_bits``.
    dda_frac_bits : int, default 16
        Fraction bits of the phase accumulators.
    phase_rounding : {"nearest", "truncate"}, default "nearest"
        See :class:`PhaseDDA`.
    unity_gain : bool, default True
        Correct each ROM row so its codes add up to exactly one.

    Attributes
    ----------
    dda_y, dda_x : PhaseDDA
        Phase accumulators of the vertical and horizontal pass.
    coefficients : (2**phase_bits, taps) ndarray of int64
        ROM codes in ``coeff_fmt``; for fixed-phase kernels only the rows of their
        phases hold weights (the others are zero and never addressed at scale 2).

    Raises
    ------
    ValueError
        A format that is not a QFormat or its HLS spelling, has ``word_bits < int_bits``
        or more than 62 bits, or an unknown mode; an output format other than an 8-bit
        unsigned integer; a coefficient format that cannot hold the kernel's weights (the
        message gives the minimum integer bits); a product or sum wider than 62 bits; a
        fixed-phase kernel at a scale other than 2; bad bit counts or names.

    Examples
    --------
    >>> r = FixedPointResizer("bicubic", 2)
    >>> r.run(np.full((6, 5), 200, np.uint8)).tolist()[0]
    [200, 200, 200, 200, 200, 200, 200, 200, 200, 200]
    >>> str(r.coeff_fmt), r.coefficients.shape
    ('ap_fixed<12,2,RND,SAT>', (64, 4))
    """

    kernel: str | Kernel = "bicubic"
    scale: float | tuple[float, float] = 2.0
    pixel_fmt: FormatLike = "ap_ufixed<8,8>"
    coeff_fmt: FormatLike = "ap_fixed<12,2,RND,SAT>"
    acc_fmt: FormatLike = "ap_fixed<24,12>"
    out_fmt: FormatLike = "ap_ufixed<8,8,RND,SAT>"
    mid_fmt: FormatLike | None = "ap_fixed<12,10,RND,SAT>"
    phase_bits: int = 6
    dda_frac_bits: int = 16
    phase_rounding: PhaseRounding = "nearest"
    unity_gain: bool = True
    dda_y: PhaseDDA = field(init=False, repr=False)
    dda_x: PhaseDDA = field(init=False, repr=False)
    coefficients: np.ndarray = field(init=False, repr=False, compare=False)
    coefficient_rows: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = functools.partial(object.__setattr__, self)
        kernel = get_kernel(self.kernel)
        if kernel.rule == "area":
            raise ValueError(
                "kernel 'area' averages each output pixel's footprint, which a phase accumulator "
                "with a coefficient ROM does not compute; use 'bilinear' or 'bicubic' for the datapath"
            )
        set_("kernel", kernel)
        sy, sx = check_scale(self.scale)
        set_("scale", (sy, sx))
        for name in ("pixel_fmt", "coeff_fmt", "acc_fmt", "out_fmt"):
            set_(name, _as_format(name, getattr(self, name)))
        set_("mid_fmt", self.acc_fmt if self.mid_fmt is None else _as_format("mid_fmt", self.mid_fmt))
        if self.out_fmt.signed or self.out_fmt.word_bits != 8 or self.out_fmt.int_bits != 8:
            raise ValueError(
                f"out_fmt {self.out_fmt} must be an 8-bit unsigned integer format, ap_ufixed<8,8,Q,O>, "
                "since the output is uint8; choose its rounding and overflow modes, e.g. 'ap_ufixed<8,8,RND,SAT>'"
            )
        if not isinstance(self.unity_gain, (bool, np.bool_)):
            raise ValueError(f"unity_gain must be True or False, got {self.unity_gain!r}")
        if kernel.phases is not None and (abs(sy - 2.0) > 1e-12 or abs(sx - 2.0) > 1e-12):
            raise ValueError(
                f"kernel {kernel.name!r} has fixed phases {kernel.phases} and only works at scale 2; got scale "
                f"({sy:g}, {sx:g}); use scale=2 or a continuous kernel such as 'bicubic'"
            )
        set_("dda_y", PhaseDDA(1.0 / sy, self.dda_frac_bits, self.phase_bits, self.phase_rounding))
        set_("dda_x", PhaseDDA(1.0 / sx, self.dda_frac_bits, self.phase_bits, self.phase_rounding))
        set_("phase_bits", self.dda_x.phase_bits)
        set_("dda_frac_bits", self.dda_x.frac_bits)
        codes, rows = _build_rom(kernel, self.phase_bits, self.coeff_fmt, bool(self.unity_gain))
        _check_rom_fits(codes[rows], self.coeff_fmt, kernel)
        codes.setflags(write=False)
        rows.setflags(write=False)
        set_("coefficients", codes)
        set_("coefficient_rows", rows)
        # Every product and sum must fit the 62-bit codes of srlab.fixed; fail here, not mid-image.
        for source in (self.pixel_fmt, self.mid_fmt):
            add_format(self.acc_fmt, multiply_format(source, self.coeff_fmt))

    @classmethod
    def from_fraction_bits(
        cls,
        kernel: str | Kernel = "bicubic",
        scale: float | tuple[float, float] = 2.0,
        coeff_frac_bits: int = 10,
        acc_frac_bits: int = 12,
        *,
        mid_frac_bits: int | None = None,
        acc_rounding: str = "trn",
        **options: Any,
    ) -> FixedPointResizer:
        """A design given by its fraction bits, with the fewest integer bits that never overflow.

        Coefficients are ``ap_fixed`` (``ap_ufixed`` when no weight is negative) with
        rounding to nearest and just enough integer bits for the ROM; the line-buffer
        words keep ``mid_frac_bits`` (default ``acc_frac_bits``) and the range of the
        horizontal pass (RND, SAT); the accumulator gets the integer bits of the largest
        partial sum of either pass (``acc_rounding``, WRAP); pixels are ``ap_ufixed<8,8>``
        and the output ``ap_ufixed<8,8,RND,SAT>``.

        Parameters
        ----------
        kernel, scale
            As for the class.
        coeff_frac_bits : int, default 10
            Fraction bits of the weights, 1..40.
        acc_frac_bits : int, default 12
            Fraction bits of the accumulator, 0..40.
        mid_frac_bits : int, optional
            Fraction bits of the line-buffer words, 0..40; default ``acc_frac_bits``.
        acc_rounding : str, default "trn"
            Rounding of ``acc += c * p`` when the product has more fraction bits
            (TRN drops them, which costs nothing in hardware).
        **options
            ``phase_bits``, ``dda_frac_bits``, ``phase_rounding``, ``unity_gain``.

        Returns
        -------
        FixedPointResizer

        Raises
        ------
        ValueError
            For bit counts out of range, or as the class does.

        Examples
        --------
        >>> r = FixedPointResizer.from_fraction_bits("bicubic", 2, coeff_frac_bits=8, acc_frac_bits=4)
        >>> str(r.coeff_fmt), str(r.mid_fmt), str(r.acc_fmt)
        ('ap_fixed<10,2,RND,SAT>', 'ap_fixed<14,10,RND,SAT>', 'ap_fixed<15,11>')
        """
        coeff_frac = _check_bits("coeff_frac_bits", coeff_frac_bits, 1, 40)
        acc_frac = _check_bits("acc_frac_bits", acc_frac_bits, 0, 40)
        mid_frac = acc_frac if mid_frac_bits is None else _check_bits("mid_frac_bits", mid_frac_bits, 0, 40)
        k = get_kernel(kernel)
        phase_bits = _check_bits("phase_bits", options.get("phase_bits", 6), 0, MAX_PHASE_BITS)
        pixel = QFormat(8, 8, signed=False)
        wide = QFormat(MAX_WORD_BITS, MAX_WORD_BITS - coeff_frac, rounding="rnd")
        codes, rows = _build_rom(k, phase_bits, wide, bool(options.get("unity_gain", True)))
        codes = np.unique(codes[rows], axis=0)
        low, high = int(codes.min()), int(codes.max())
        signed = low < 0
        coeff_int = minimum_int_bits(low, high, coeff_frac, signed)
        coeff = QFormat(coeff_int + coeff_frac, coeff_int, signed, "rnd", "sat")
        # Range of the horizontal pass output, then of the partial sums of both passes.
        h_low, h_high = _prefix_bounds(codes, pixel)
        to_mid = mid_frac - coeff_frac
        mid_low, mid_high = _shift_codes(h_low, to_mid) - 1, _shift_codes(h_high, to_mid) + 1
        mid_int = minimum_int_bits(mid_low, mid_high, mid_frac, True)
        mid = QFormat(mid_int + mid_frac, mid_int, True, "rnd", "sat")
        v_low, v_high = _prefix_bounds(codes, mid)
        to_acc_h, to_acc_v = acc_frac - coeff_frac, acc_frac - mid_frac - coeff_frac
        acc_low = min(_shift_codes(h_low, to_acc_h), _shift_codes(v_low, to_acc_v)) - 1
        acc_high = max(_shift_codes(h_high, to_acc_h), _shift_codes(v_high, to_acc_v)) + 1
        acc_int = minimum_int_bits(acc_low, acc_high, acc_frac, True)
        acc = QFormat(acc_int + acc_frac, acc_int, True, acc_rounding)
        return cls(k, scale, pixel, coeff, acc, QFormat(8, 8, False, "rnd", "sat"), mid, **options)

    # ----------------------------------------------------------------- geometry

    @property
    def taps(self) -> int:
        """Taps per output sample of each pass."""
        return self.kernel.taps

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Output shape for an input of ``shape`` (``(H, W)`` or ``(H, W, C)``).

        Examples
        --------
        >>> FixedPointResizer("bilinear", 1.5).output_shape((10, 7, 3))
        (15, 10, 3)
        """
        (h_out, w_out), _ = geometry(tuple(shape[:2]), self.scale, None)
        return (h_out, w_out) + tuple(shape[2:])

    def tap_table(self, axis: Literal["y", "x"], n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Tap indices (replicated border), ROM rows and coefficient codes of one axis.

        Parameters
        ----------
        axis : {"y", "x"}
            Vertical or horizontal pass.
        n_in : int
            Input pixels along the axis.

        Returns
        -------
        idx : (n_out, taps) ndarray of int64
            Input indices, clipped into ``[0, n_in)``.
        phase : (n_out,) ndarray of int64
            ROM row of each output.
        coef : (n_out, taps) ndarray of int64
            ``coefficients[phase]``.

        Examples
        --------
        >>> idx, phase, coef = FixedPointResizer("bilinear", 2, phase_bits=2).tap_table("x", 3)
        >>> idx.tolist(), phase.tolist()
        ([[0, 0], [0, 1], [0, 1], [1, 2], [1, 2], [2, 2]], [3, 1, 3, 1, 3, 1])
        """
        return _tap_table(self, axis, int(n_in))

    def coefficient_table(self, rows: Any = None) -> pd.DataFrame:
        """The weight ROM next to the float weights it approximates.

        Parameters
        ----------
        rows : sequence of int, optional
            ROM rows to show; default every row that holds weights.

        Returns
        -------
        pandas.DataFrame
            One row per (ROM row, tap): ``rom_row``, ``phase``, ``offset``, ``weight``
            (float), ``code``, ``quantized`` (``code * 2**-frac_bits``), ``error``.

        Raises
        ------
        ValueError
            If a row is outside the ROM or holds no weights.

        Examples
        --------
        >>> t = FixedPointResizer("bicubic", 2, phase_bits=2).coefficient_table([2])
        >>> t["code"].tolist(), t["weight"].tolist()
        ([-64, 576, 576, -64], [-0.0625, 0.5625, 0.5625, -0.0625])
        """
        size = len(self.coefficients)
        chosen = np.flatnonzero(self.coefficient_rows) if rows is None else np.asarray(rows, dtype=np.int64).ravel()
        if chosen.size and (chosen.min() < 0 or chosen.max() >= size or not self.coefficient_rows[chosen].all()):
            raise ValueError(f"rows must be ROM rows 0..{size - 1} that hold weights, got {rows!r}")
        phases = chosen / size
        weights = self.kernel.weights(phases) if chosen.size else np.zeros((0, self.taps))
        codes = self.coefficients[chosen]
        return pd.DataFrame(
            {
                "rom_row": np.repeat(chosen, self.taps),
                "phase": np.repeat(phases, self.taps),
                "offset": np.tile(self.kernel.offsets, len(chosen)),
                "weight": weights.ravel(),
                "code": codes.ravel(),
                "quantized": codes.ravel() * self.coeff_fmt.lsb,
                "error": codes.ravel() * self.coeff_fmt.lsb - weights.ravel(),
            }
        )

    # ----------------------------------------------------------------- running

    def run(self, image: np.ndarray, path: RunPath = "auto") -> np.ndarray:
        """Resize a uint8 image bit-true.

        Parameters
        ----------
        image : (H, W) or (H, W, C) ndarray of uint8
            At least ``taps`` pixels along each side.
        path : {"auto", "taps"}, default "auto"
            ``"auto"`` takes the exact BLAS path where the formats allow it (module
            notes); ``"taps"`` forces the tap-by-tap path. Both give the same bits.

        Returns
        -------
        ndarray of uint8
            ``output_shape(image.shape)``.

        Raises
        ------
        ValueError
            If the image is not uint8, not 2-D or 3-D, or smaller than the kernel, or
            ``path`` is unknown.
        """
        return _run(self, self.check_image(image), keep=False, path=path).output

    def trace(self, image: np.ndarray, path: RunPath = "auto") -> DatapathTrace:
        """Run and keep the input codes and the line-buffer words as well (see :meth:`run`).

        Returns
        -------
        DatapathTrace
        """
        return _run(self, self.check_image(image), keep=True, path=path)

    def check_image(self, image: Any) -> np.ndarray:
        """Validate an input image; returns it as an ndarray.

        Raises
        ------
        ValueError
            If it is not uint8, not ``(H, W)`` or ``(H, W, C)``, or smaller than the kernel.
        """
        image = np.asarray(image)
        if image.dtype != np.uint8:
            raise ValueError(
                f"image dtype {image.dtype} is not supported: the datapath reads 8-bit pixels; convert with "
                "skimage.util.img_as_ubyte (or np.clip(...).astype(np.uint8))"
            )
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] < 1):
            raise ValueError(f"image must be (H, W) or (H, W, C), got shape {image.shape}")
        h, w = image.shape[:2]
        if h < self.taps or w < self.taps:
            raise ValueError(
                f"image of {h}x{w} pixels is smaller than the {self.taps}-tap kernel {self.kernel.name!r} "
                f"needs: at least {self.taps}x{self.taps} pixels"
            )
        return image


# --------------------------------------------------------------------------- tables and plans


@functools.lru_cache(maxsize=64)
def _tap_table(r: FixedPointResizer, axis: str, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if axis not in ("y", "x"):
        raise ValueError(f"unknown axis {axis!r}; known: x, y")
    dda = r.dda_y if axis == "y" else r.dda_x
    n_out = round(n_in * r.scale[0 if axis == "y" else 1])  # as srlab.resize sizes its output
    if n_out < 1:
        raise ValueError(f"scale {r.scale} turns {n_in} pixels along {axis} into none; use a larger scale")
    i0, phase = dda.positions(n_out)
    if not r.coefficient_rows[phase].all():
        bad = int(phase[~r.coefficient_rows[phase]][0])
        raise ValueError(
            f"the DDA addressed ROM row {bad} (phase {bad / (1 << r.phase_bits):g}), which kernel "
            f"{r.kernel.name!r} has no weights for; use a continuous kernel at this scale"
        )
    idx = np.clip(i0[:, None] + r.kernel.offsets[None, :], 0, n_in - 1)
    coef = r.coefficients[phase]
    for array in (idx, phase, coef):
        array.setflags(write=False)
    return idx, phase, coef


def _exact_dtype(bound: int) -> np.dtype | None:
    """Float dtype in which integers up to ``bound`` and their roundings stay exact, or None."""
    for dtype, limit in _EXACT_FLOAT:
        if bound < limit:
            return dtype
    return None


@dataclass(frozen=True)
class _PassSpec:
    """How one pass runs: exact float BLAS sums (``dtype``) or tap by tap (``dtype=None``)."""

    dtype: np.dtype | None
    sum_frac: int  # fraction bits of the exact sum of products
    bound: int  # |sum of products| <= bound, in sum codes
    through_acc: bool  # the accumulator can wrap: cast into acc_fmt before the target


_TAP_BY_TAP = _PassSpec(None, 0, 0, True)


@functools.lru_cache(maxsize=64)
def _pass_spec(r: FixedPointResizer, source: QFormat, target: QFormat, axis: str, n_in: int) -> _PassSpec:
    _, _, coef = _tap_table(r, axis, n_in)
    prod_frac = source.frac_bits + r.coeff_fmt.frac_bits
    if r.acc_fmt.frac_bits < prod_frac:
        return _TAP_BY_TAP  # every `acc += c * p` rounds the product: tap by tap
    shift = r.acc_fmt.frac_bits - prod_frac
    low, high = _prefix_bounds(np.unique(coef, axis=0), source)
    fits = (low << shift) >= r.acc_fmt.min_code and (high << shift) <= r.acc_fmt.max_code
    if not fits and r.acc_fmt.overflow != "wrap":
        return _TAP_BY_TAP  # a saturating accumulator clips partial sums: tap by tap
    bound = int(np.abs(coef).sum(axis=1).max()) * max(abs(source.min_code), abs(source.max_code))
    # A target with more fraction bits than the sum scales it up; that must stay exact too.
    dtype = _exact_dtype(bound << max(0, target.frac_bits - prod_frac))
    if dtype is None:
        return _TAP_BY_TAP
    return _PassSpec(dtype, prod_frac, bound, not fits)


def _prefix_bounds(coef: np.ndarray, source: QFormat) -> tuple[int, int]:
    """Smallest and largest partial sum ``sum_{j<=k} c_j p_j`` over rows, prefixes and pixels."""
    lo_p, hi_p = source.min_code, source.max_code
    c = coef.astype(object)  # Python ints: no overflow however wide the formats
    per_tap_hi = np.maximum(c * lo_p, c * hi_p)
    per_tap_lo = np.minimum(c * lo_p, c * hi_p)
    return int(np.cumsum(per_tap_lo, axis=1).min()), int(np.cumsum(per_tap_hi, axis=1).max())


@functools.lru_cache(maxsize=32)
def _band_plan(r: FixedPointResizer, axis: str, n_in: int, channels: int | None, dtype: np.dtype) -> AxisPlan:
    """Blocked band matrices of the coefficient codes, in the layout of :mod:`srlab._separable`."""
    idx, _, coef = _tap_table(r, axis, n_in)
    # Replicated border taps that land on one pixel are merged (add.at): an exact integer
    # sum of their codes, so the product sum is unchanged.
    return band_plan(idx, coef.astype(np.float64), n_in, n_in / len(idx), channels, dtype)


# --------------------------------------------------------------------------- passes


def _mac_taps(
    r: FixedPointResizer, source: FixedArray, idx: np.ndarray, coef: np.ndarray, axis: int
) -> FixedArray:
    """``acc += c_k * p_k`` tap by tap on whole images (int64 gathers)."""
    acc = None
    shape = [1, 1, 1]
    shape[axis] = len(idx)
    for k in range(idx.shape[1]):
        pixels = FixedArray(np.take(source.codes, idx[:, k], axis=axis), source.fmt)
        weights = FixedArray(coef[:, k].reshape(shape), r.coeff_fmt)
        product = multiply(pixels, weights)
        acc = cast(product if acc is None else add(acc, product), r.acc_fmt)
    return acc


def _finish(r: FixedPointResizer, sums: np.ndarray, spec: _PassSpec, target: QFormat) -> np.ndarray:
    """Exact float sums of products -> codes of ``target`` (float, same dtype)."""
    if not spec.through_acc:
        # The accumulator holds the exact sum, so casting into it would change nothing.
        return cast_float_codes(sums, spec.sum_frac, spec.bound, target)
    # The accumulator may wrap: take the exact int64 route through it.
    value = cast(cast(FixedArray(sums.astype(np.int64), _sum_format(spec.bound, spec.sum_frac)), r.acc_fmt), target)
    return value.codes.astype(sums.dtype)


def _pixel_floats(image: np.ndarray, fmt: QFormat, dtype: np.dtype) -> np.ndarray | None:
    """uint8 pixels as exact ``fmt`` codes in ``dtype``, when no rounding or overflow applies."""
    if fmt.max_value < 255:
        return None
    return image.astype(dtype) * dtype.type(2.0**fmt.frac_bits) if fmt.frac_bits else image.astype(dtype)


def _run(r: FixedPointResizer, image: np.ndarray, keep: bool, path: str) -> DatapathTrace:
    _check_choice("path", path, {"auto": None, "taps": None})
    h, w = image.shape[:2]
    channels = image.shape[2] if image.ndim == 3 else 1
    flat = image.reshape(h, w * channels)
    pixels = quantize(image.reshape(h, w, channels), r.pixel_fmt) if keep else None

    h_spec = _pass_spec(r, r.pixel_fmt, r.mid_fmt, "x", w) if path == "auto" else _TAP_BY_TAP
    mid_codes = mid_float = None
    if h_spec.dtype is None:
        pixels = quantize(image.reshape(h, w, channels), r.pixel_fmt) if pixels is None else pixels
        idx, _, coef = _tap_table(r, "x", w)
        mid_codes = cast(_mac_taps(r, pixels, idx, coef, axis=1), r.mid_fmt)
        w_out = len(idx)
    else:
        plan = _band_plan(r, "x", w, channels, h_spec.dtype)
        source = _pixel_floats(flat, r.pixel_fmt, h_spec.dtype)
        if source is None:
            pixels = quantize(image.reshape(h, w, channels), r.pixel_fmt) if pixels is None else pixels
            source = pixels.codes.reshape(h, w * channels).astype(h_spec.dtype)
        mid_float = _finish(r, horizontal(source, plan, channels, 0.0), h_spec, r.mid_fmt)
        w_out = plan.n_out

    v_spec = _pass_spec(r, r.mid_fmt, r.out_fmt, "y", h) if path == "auto" else _TAP_BY_TAP
    if (keep or v_spec.dtype is None) and mid_codes is None:
        mid_codes = FixedArray(mid_float.astype(np.int64).reshape(h, w_out, channels), r.mid_fmt)
    if v_spec.dtype is None:
        idx, _, coef = _tap_table(r, "y", h)
        out = cast(_mac_taps(r, mid_codes, idx, coef, axis=0), r.out_fmt).codes.astype(np.uint8)
    else:
        plan = _band_plan(r, "y", h, None, v_spec.dtype)
        if mid_float is not None:
            source = mid_float.astype(v_spec.dtype, copy=False)
        else:
            source = mid_codes.codes.reshape(h, w_out * channels).astype(v_spec.dtype)
        out = np.empty((plan.n_out, w_out * channels), dtype=np.uint8)

        def finish(band: np.ndarray, rows: slice) -> None:
            np.copyto(out[rows], _finish(r, band, v_spec, r.out_fmt), casting="unsafe")

        vertical(source, plan, 0.0, finish, v_spec.dtype)
    h_out = out.shape[0]
    return DatapathTrace(pixels, mid_codes, out.reshape((h_out, w_out) + image.shape[2:]))
