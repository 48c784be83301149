"""The coefficient ROM of the datapath and the sizing of its fixed-point formats.

A :class:`~srlab.fpga.dda.PhaseDDA` addresses a ROM of ``2**phase_bits`` rows, one per
quantized phase, each the kernel's ``taps`` weights rounded to the coefficient format
(:func:`build_rom`). The formats around it are sized from integer codes:
:func:`minimum_int_bits` gives the fewest integer bits that hold a range of codes and
:func:`prefix_bounds` the range of every partial sum of ``acc += c * p``.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from srlab.fixed import MAX_WORD_BITS, QFormat, quantize
from srlab.kernels import Kernel

__all__ = [
    "CONSTANT_ROWS",
    "build_rom",
    "check_rom_fits",
    "constant_weights",
    "minimum_int_bits",
    "prefix_bounds",
    "shift_outward",
]

CONSTANT_ROWS = 4
"""A pass whose addressed ROM rows hold at most this many distinct weight rows is built with its
weights as constants: one shift-and-add network a distinct row and a multiplexer, no multiplier
(any 2x design addresses two rows; nearest has two distinct rows at any scale).
"""


def constant_weights(rows_addressed: int) -> bool:
    """Whether a pass addressing ``rows_addressed`` distinct weight rows takes constant weights.

    Examples
    --------
    >>> constant_weights(2), constant_weights(23)
    (True, False)
    """
    return int(rows_addressed) <= CONSTANT_ROWS


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
            raise ValueError(
                f"an unsigned format cannot hold the negative code {low}; use a signed format"
            )
        word = max(high.bit_length(), 1)
    return word - frac_bits


def _with_int_bits(fmt: QFormat, int_bits: int) -> QFormat:
    return QFormat(int_bits + fmt.frac_bits, int_bits, fmt.signed, fmt.rounding, fmt.overflow)


def _quantized_weights(
    kernel: Kernel, phases: np.ndarray, fmt: QFormat, unity_gain: bool
) -> np.ndarray:
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


def build_rom(
    kernel: Kernel, phase_bits: int, fmt: QFormat, unity_gain: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The weight ROM of a kernel: one row of coefficient codes per quantized phase.

    Parameters
    ----------
    kernel : Kernel
        Interpolation kernel.
    phase_bits : int
        ``P``: the ROM has ``2**P`` rows, row ``k`` for phase ``k / 2**P``.
    fmt : QFormat
        Coefficient format; its fraction bits and rounding mode quantize the weights
        (its range is checked by :func:`check_rom_fits`, not here).
    unity_gain : bool
        Correct each row so its codes add up to exactly one.

    Returns
    -------
    codes : (2**P, taps) ndarray of int64
        ROM codes in units of ``2**-fmt.frac_bits``.
    valid : (2**P,) ndarray of bool
        Rows that hold weights: all of them, or for a fixed-phase kernel its phases only.

    Raises
    ------
    ValueError
        If a fixed-phase kernel's phases are not multiples of ``2**-P``.

    Examples
    --------
    >>> from srlab.kernels import get_kernel
    >>> codes, valid = build_rom(get_kernel("bilinear"), 2, QFormat(10, 2), unity_gain=True)
    >>> codes.tolist(), bool(valid.all())
    ([[256, 0], [192, 64], [128, 128], [64, 192]], True)
    """
    phases = np.arange(1 << phase_bits) / (1 << phase_bits)
    if kernel.phases is None:
        valid = np.ones(len(phases), dtype=bool)
    else:
        allowed = np.asarray(kernel.phases)
        valid = np.isclose(phases[:, None], allowed[None, :], rtol=0, atol=1e-12).any(axis=1)
        rows = np.round(allowed * (1 << phase_bits))
        if not np.allclose(rows / (1 << phase_bits), allowed, rtol=0, atol=1e-12):
            need = max(
                Fraction(p).limit_denominator(1 << 20).denominator.bit_length() - 1
                for p in kernel.phases
            )
            raise ValueError(
                f"kernel {kernel.name!r} has fixed phases {kernel.phases}, which a {phase_bits}-bit phase "
                f"cannot address; use phase_bits >= {need}"
            )
    codes = np.zeros((len(phases), kernel.taps), dtype=np.int64)
    codes[valid] = _quantized_weights(kernel, phases[valid], fmt, unity_gain)
    return codes, valid


def check_rom_fits(codes: np.ndarray, fmt: QFormat, kernel: Kernel) -> None:
    """Check that ``fmt`` holds every ROM code of ``kernel``.

    Raises
    ------
    ValueError
        If a code is outside ``fmt``'s range; the message gives the minimum integer bits
        (and a signed format when a weight is negative).
    """
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


def prefix_bounds(coef: np.ndarray, source: QFormat) -> tuple[int, int]:
    """Smallest and largest partial sum ``sum_{j<=k} c_j p_j`` over rows, prefixes and pixels.

    Parameters
    ----------
    coef : (rows, taps) ndarray of int
        Coefficient codes, taps in accumulation order.
    source : QFormat
        Format of the pixels ``p_j``: any code in its range.

    Returns
    -------
    low, high : int
        Bounds in units of the products' LSB, computed in Python ints (no overflow).

    Examples
    --------
    >>> prefix_bounds(np.array([[-1, 3]]), QFormat(8, 8, signed=False))
    (-255, 765)
    """
    lo_p, hi_p = source.min_code, source.max_code
    c = coef.astype(object)  # Python ints: no overflow however wide the formats
    per_tap_hi = np.maximum(c * lo_p, c * hi_p)
    per_tap_lo = np.minimum(c * lo_p, c * hi_p)
    return int(np.cumsum(per_tap_lo, axis=1).min()), int(np.cumsum(per_tap_hi, axis=1).max())


def shift_outward(code: int, shift: int) -> int:
    """``code * 2**shift`` rounded outward (floor for negatives, ceil for positives).

    Examples
    --------
    >>> shift_outward(5, -1), shift_outward(-5, -1), shift_outward(3, 2)
    (3, -3, 12)
    """
    if shift >= 0:
        return code << shift
    return code >> -shift if code < 0 else -((-code) >> -shift)
