"""Fixed-point arrays and their arithmetic: :class:`FixedArray`, quantize, cast, add, sub, multiply.

Every operation works on whole ``int64`` code arrays; rounding and overflow come from the
tables of :mod:`srlab.fixed._modes`, result formats from :mod:`srlab.fixed._format`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from srlab.fixed._format import QFormat, add_format, multiply_format, sub_format
from srlab.fixed._modes import (
    FLOAT_ROUNDERS,
    MAX_WORD_BITS,
    OVERFLOWS,
    Codes,
    lowest_kept,
    shift_right_rounded,
)

# --------------------------------------------------------------------------- arrays


@dataclass(frozen=True, eq=False)
class FixedArray:
    """An array of fixed-point numbers: raw ``int64`` codes plus their format.

    The value of ``codes[i]`` is ``codes[i] * fmt.lsb``. Treat ``codes`` as read-only:
    every operation returns a new array.

    Parameters
    ----------
    codes : ndarray of int
        Raw codes, each within ``[fmt.min_code, fmt.max_code]``. Any integer dtype is
        accepted and converted to ``int64``.
    fmt : QFormat
        Their format.

    Raises
    ------
    TypeError
        If ``fmt`` is not a QFormat.
    ValueError
        If ``codes`` is not an integer array or holds a code outside the format's range.

    Examples
    --------
    >>> a = FixedArray(np.array([-4, 0, 3]), QFormat(4, 2))
    >>> a.to_float().tolist()
    [-1.0, 0.0, 0.75]
    >>> (a * a).codes.tolist(), str((a * a).fmt)
    ([16, 0, 9], 'ap_fixed<8,4>')
    """

    codes: Codes
    fmt: QFormat

    def __post_init__(self) -> None:
        if not isinstance(self.fmt, QFormat):
            raise TypeError(f"fmt must be a QFormat, got {type(self.fmt).__name__}")
        codes = np.asarray(self.codes)
        if codes.dtype.kind not in "iu":
            raise ValueError(
                f"codes must be an integer array, got dtype {codes.dtype}; "
                "use quantize() to convert real values"
            )
        if codes.dtype.kind == "u" and codes.size and codes.max() > np.iinfo(np.int64).max:
            raise ValueError(
                "codes exceed the int64 range; no format of at most 62 bits holds them"
            )
        codes = codes.astype(np.int64, copy=False)
        if codes.size and (codes.min() < self.fmt.min_code or codes.max() > self.fmt.max_code):
            raise ValueError(
                f"codes outside [{self.fmt.min_code}, {self.fmt.max_code}], the range of "
                f"{self.fmt}; cast them with the format's overflow mode or pick a wider format"
            )
        object.__setattr__(self, "codes", codes)

    @classmethod
    def _trusted(cls, codes: Codes, fmt: QFormat) -> FixedArray:
        """Wrap codes that an operation of this module produced (no range pass)."""
        out = object.__new__(cls)
        object.__setattr__(out, "codes", codes)
        object.__setattr__(out, "fmt", fmt)
        return out

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the code array."""
        return self.codes.shape

    @property
    def ndim(self) -> int:
        """Number of dimensions of the code array."""
        return self.codes.ndim

    @property
    def size(self) -> int:
        """Number of elements."""
        return self.codes.size

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, index: Any) -> FixedArray:
        return FixedArray._trusted(np.asarray(self.codes[index]), self.fmt)

    def to_float(self) -> NDArray[np.float64]:
        """Return the values as float64.

        Returns
        -------
        ndarray of float64
            Exact when ``word_bits <= 53``; wider codes round to the nearest float64.

        Examples
        --------
        >>> quantize([0.3], QFormat(6, 1, rounding="rnd")).to_float().tolist()
        [0.3125]
        """
        return self.codes * self.fmt.lsb

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FixedArray):
            return NotImplemented
        return self.fmt == other.fmt and np.array_equal(self.codes, other.codes)

    __hash__ = None  # type: ignore[assignment]  # codes are a mutable ndarray

    def __add__(self, other: FixedArray) -> FixedArray:
        return add(self, other) if isinstance(other, FixedArray) else NotImplemented

    def __sub__(self, other: FixedArray) -> FixedArray:
        return sub(self, other) if isinstance(other, FixedArray) else NotImplemented

    def __mul__(self, other: FixedArray) -> FixedArray:
        return multiply(self, other) if isinstance(other, FixedArray) else NotImplemented

    def __repr__(self) -> str:
        codes = np.array2string(self.codes, threshold=16, separator=", ")
        return f"FixedArray(codes={codes}, fmt={self.fmt})"


# --------------------------------------------------------------------------- cast


def cast(a: FixedArray, fmt: QFormat) -> FixedArray:
    """Convert to another format with that format's rounding and overflow modes.

    Works on the exact integer codes (shifts with a rounding bias, then the overflow
    mode), never through floats; this is an HLS assignment ``ap_fixed<...> y = x;``.
    The overflow pass is skipped when the formats alone show it cannot trigger.

    Parameters
    ----------
    a : FixedArray
        Source values.
    fmt : QFormat
        Target format; its ``rounding`` and ``overflow`` apply.

    Returns
    -------
    FixedArray
        Codes in ``fmt``, same shape as ``a``.

    Raises
    ------
    TypeError
        If ``a`` is not a FixedArray or ``fmt`` not a QFormat.

    Examples
    --------
    >>> a = FixedArray(np.array([5, 6, 7, -6]), QFormat(8, 6))  # 1.25 1.5 1.75 -1.5
    >>> cast(a, QFormat(8, 8, rounding="rnd_conv")).codes.tolist()
    [1, 2, 2, -2]
    >>> cast(a, QFormat(8, 8, rounding="rnd")).codes.tolist()
    [1, 2, 2, -1]
    """
    if not isinstance(a, FixedArray):
        raise TypeError(
            f"cast expects a FixedArray, got {type(a).__name__}; use quantize() for floats"
        )
    if not isinstance(fmt, QFormat):
        raise TypeError(f"cast expects a QFormat target, got {type(fmt).__name__}")
    d = fmt.frac_bits - a.fmt.frac_bits
    if d > 0:
        return FixedArray._trusted(_shift_left_overflow(a, d, fmt), fmt)
    fits = _fits_after_shift(a.fmt, d, fmt)
    if d == 0:
        q = a.codes if fits else a.codes.copy()
    else:
        q = shift_right_rounded(a.codes, -d, fmt.rounding)
    return FixedArray._trusted(q if fits else OVERFLOWS[fmt.overflow](q, fmt), fmt)


def _fits_after_shift(src: QFormat, d: int, dst: QFormat) -> bool:
    """Whether every source code, scaled by 2**d and rounded, is already in range."""
    if d >= 0:
        low, high = src.min_code << d, src.max_code << d
    else:
        # Rounding stays within [floor, ceil] of the exact quotient.
        low, high = src.min_code >> -d, -((-src.max_code) >> -d)
    return low >= lowest_kept(dst) and high <= dst.max_code


def _shift_left_overflow(a: FixedArray, d: int, fmt: QFormat) -> Codes:
    """Codes times 2**d (no rounding needed) with the target's overflow mode."""
    codes = a.codes
    if a.fmt.word_bits + d <= MAX_WORD_BITS:  # the exact product fits int64
        q = codes << d
        return q if _fits_after_shift(a.fmt, d, fmt) else OVERFLOWS[fmt.overflow](q, fmt)
    if fmt.overflow == "wrap":
        # Modulo 2**64 shift (uint64 view), exact for the low W <= 62 bits that wrap keeps.
        if d >= 64:
            return np.zeros_like(codes)
        return OVERFLOWS["wrap"]((codes.view(np.uint64) << np.uint64(d)).view(np.int64), fmt)
    # Saturating modes only need to know which side overflowed: compare in source units,
    # shift the in-range codes, and mark the rest one step beyond the range.
    high = fmt.max_code >> d
    low = -((-fmt.min_code) >> d)
    q = np.clip(codes, low, high) << d
    q[codes > high] = fmt.max_code + 1
    q[codes < low] = fmt.min_code - 1
    return OVERFLOWS[fmt.overflow](q, fmt)


# --------------------------------------------------------------------------- quantize

_TWO_62 = float(1 << MAX_WORD_BITS)


def quantize(x: ArrayLike, fmt: QFormat) -> FixedArray:
    """Convert real numbers to ``fmt`` with its rounding and overflow modes.

    The result is what HLS assigns for ``ap_fixed<...> y = x;``: the exact value of each
    input is rounded to the format's LSB, then the overflow mode applies. Floats are
    scaled by an exact power of two and rounded in float64 (fractional parts and ties
    are exact there); integers take the exact integer path of :func:`cast`.

    Parameters
    ----------
    x : array_like of float or int
        Finite real values, any shape. Floats are exact as float64 (float16/32 widen
        exactly); integers must lie within ``+-2**61``.
    fmt : QFormat
        Target format.

    Returns
    -------
    FixedArray
        Codes of shape ``np.shape(x)``.

    Raises
    ------
    TypeError
        If ``fmt`` is not a QFormat, ``x`` is a FixedArray (use :func:`cast`), or ``x`` holds
        no numbers (e.g. text).
    ValueError
        If ``x`` holds NaN or infinity, complex numbers, or integers beyond ``+-2**61``.

    Examples
    --------
    >>> fmt = QFormat(4, 4, rounding="rnd_conv", overflow="sat_sym")
    >>> quantize([2.5, 3.5, -100.0, 7.4], fmt).codes.tolist()
    [2, 4, -7, 7]
    """
    if not isinstance(fmt, QFormat):
        raise TypeError(f"quantize expects a QFormat, got {type(fmt).__name__}")
    if isinstance(x, FixedArray):
        raise TypeError("quantize expects real numbers; use cast() to convert a FixedArray")
    values = np.asarray(x)
    if values.dtype.kind in "biu":
        return cast(_integer_source(values), fmt)
    if values.dtype.kind != "f":
        # Text and objects are no numbers at all (TypeError); complex numbers are not real.
        error = ValueError if values.dtype.kind == "c" else TypeError
        raise error(
            f"quantize expects real numbers, got dtype {values.dtype}; pass floats or integers"
        )
    values = values.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore"):  # inf - inf of an overflowed scaling: redone below
        rounded = FLOAT_ROUNDERS[fmt.rounding](_scaled(values, fmt.frac_bits))
    low, high = (rounded.min(), rounded.max()) if rounded.size else (0.0, 0.0)
    if not (-_TWO_62 <= low and high <= _TWO_62):  # also catches NaN and infinity
        _check_finite(values)
        # Huge inputs: reduce them so that the rounded codes fit int64, then round again.
        rounded = FLOAT_ROUNDERS[fmt.rounding](_scaled(_reduced(values, fmt), fmt.frac_bits))
        low, high = rounded.min(), rounded.max()
    q = rounded.astype(np.int64)
    # int() makes the comparison exact: 2**61 - 1 is not a float64.
    if lowest_kept(fmt) <= int(low) and int(high) <= fmt.max_code:
        return FixedArray._trusted(q, fmt)
    return FixedArray._trusted(OVERFLOWS[fmt.overflow](q, fmt), fmt)


def _check_finite(values: NDArray[np.float64]) -> None:
    if not np.isfinite(values).all():
        raise ValueError(
            "quantize input holds NaN or infinity, which no fixed-point format represents; "
            "replace them first (e.g. np.nan_to_num)"
        )


def _scaled(values: NDArray[np.float64], frac_bits: int) -> NDArray[np.float64]:
    """``values * 2**frac_bits`` into a fresh array, exact unless it over- or underflows."""
    with np.errstate(over="ignore", under="ignore"):  # overflow: see _reduced
        y = values * 2.0**frac_bits
    if frac_bits < 0:
        # A tiny input can underflow to (signed) zero; floor(-tiny) must still give -1, and
        # +-1/4 rounds like any value of magnitude below one half in every mode.
        lost = (y == 0) & (values != 0)
        if lost.any():
            np.copyto(y, np.copysign(0.25, values), where=lost)
    return y


def _reduced(values: NDArray[np.float64], fmt: QFormat) -> NDArray[np.float64]:
    """Finite values brought within 2**62 LSBs without changing the quantized result."""
    limit = 2.0 ** (MAX_WORD_BITS - fmt.frac_bits)
    if fmt.overflow == "wrap":
        # Wrap keeps the value modulo 2**W LSBs, which 2**62 LSBs preserves; fmod is exact
        # and keeps the sign, so every rounding mode rounds the reduced value the same way.
        return np.fmod(values, limit)
    # Saturating modes only need out-of-range values to stay out of range.
    return np.clip(values, -limit, limit)


def _integer_source(values: NDArray[Any]) -> FixedArray:
    """Integers as exact codes of a format with no fractional bits."""
    if values.dtype.kind == "b":
        values = values.astype(np.uint8)
    bits = 8 * values.dtype.itemsize
    if bits <= 32:
        fmt = QFormat(bits, bits, signed=values.dtype.kind == "i")
    else:
        limit = 1 << (MAX_WORD_BITS - 1)
        if values.size and (int(values.max()) >= limit or int(values.min()) < -limit):
            raise ValueError(
                f"integer input beyond +-2**{MAX_WORD_BITS - 1} does not fit int64 fixed-point "
                "arithmetic; convert it to float64 (rounding it) or reduce its range first"
            )
        fmt = QFormat(MAX_WORD_BITS, MAX_WORD_BITS)
    return FixedArray._trusted(values.astype(np.int64), fmt)


# --------------------------------------------------------------------------- arithmetic


def _check_operands(verb: str, a: Any, b: Any) -> None:
    if not (isinstance(a, FixedArray) and isinstance(b, FixedArray)):
        raise TypeError(
            f"{verb} expects two FixedArrays, got {type(a).__name__} and {type(b).__name__}; "
            "quantize() real numbers first"
        )


def _aligned(a: FixedArray, frac_bits: int) -> Codes:
    """Codes of ``a`` on a finer grid of ``frac_bits`` fractional bits (exact)."""
    shift = frac_bits - a.fmt.frac_bits
    return a.codes << shift if shift else a.codes


def add(a: FixedArray, b: FixedArray) -> FixedArray:
    """Exact sum in the HLS result format (:func:`add_format`); broadcasts like NumPy.

    Parameters
    ----------
    a, b : FixedArray
        Operands, broadcastable shapes.

    Returns
    -------
    FixedArray
        ``a + b`` exactly, format ``add_format(a.fmt, b.fmt)``.

    Raises
    ------
    TypeError
        If an operand is not a FixedArray.
    ValueError
        If the result needs more than 62 bits.

    Examples
    --------
    >>> a = quantize([0.75], QFormat(4, 2))
    >>> b = quantize([3.5], QFormat(4, 3, signed=False))
    >>> s = add(a, b)
    >>> str(s.fmt), s.to_float().tolist()
    ('ap_fixed<7,5>', [4.25])
    """
    _check_operands("add", a, b)
    fmt = add_format(a.fmt, b.fmt)
    return FixedArray._trusted(_aligned(a, fmt.frac_bits) + _aligned(b, fmt.frac_bits), fmt)


def sub(a: FixedArray, b: FixedArray) -> FixedArray:
    """Exact difference in the HLS result format (:func:`sub_format`); broadcasts like NumPy.

    Operands, errors and broadcasting as :func:`add`; the result is ``a - b`` exactly, in
    ``sub_format(a.fmt, b.fmt)`` (always signed).

    Examples
    --------
    >>> a = quantize([1, 200], QFormat(8, 8, signed=False))
    >>> sub(a, a[::-1]).codes.tolist()
    [-199, 199]
    """
    _check_operands("sub", a, b)
    fmt = sub_format(a.fmt, b.fmt)
    return FixedArray._trusted(_aligned(a, fmt.frac_bits) - _aligned(b, fmt.frac_bits), fmt)


def multiply(a: FixedArray, b: FixedArray) -> FixedArray:
    """Exact product in the HLS result format (:func:`multiply_format`); broadcasts like NumPy.

    Operands, errors and broadcasting as :func:`add`; the result is ``a * b`` exactly, in
    ``multiply_format(a.fmt, b.fmt)``, which needs ``Wa + Wb <= 62``.

    Examples
    --------
    >>> pixels = quantize([[0, 128, 255]], QFormat(8, 8, signed=False))
    >>> weight = quantize([[-0.0625], [0.5625]], QFormat(8, 1))
    >>> p = multiply(pixels, weight)
    >>> str(p.fmt), p.to_float().tolist()
    ('ap_fixed<16,9>', [[0.0, -8.0, -15.9375], [0.0, 72.0, 143.4375]])
    """
    _check_operands("multiply", a, b)
    fmt = multiply_format(a.fmt, b.fmt)
    return FixedArray._trusted(a.codes * b.codes, fmt)
