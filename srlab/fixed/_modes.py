"""Rounding and overflow modes of ``ap_fixed``: one table of each, and the functions that apply them.

Rounding
    FLOAT_ROUNDERS (exact float64 values, any magnitude: :func:`quantize`, and codes held
    exactly in float arrays: :func:`cast_float_codes`); ROUNDING_BIASES, the bias each mode
    adds before dropping low bits of integer codes, read by shift_right_rounded (int64
    codes: :func:`cast`) and by the Verilog generator of :mod:`srlab.fpga.rtl`.
Overflow
    OVERFLOWS (int64 codes, or exact integer codes held in a float array), lowest_kept.

The mode names are the keys of these tables; ``Rounding`` and ``Overflow`` list them for
type checkers, and :class:`QFormat` accepts exactly them (:func:`canonical_mode`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from srlab.fixed._format import QFormat

Rounding = Literal["trn", "trn_zero", "rnd", "rnd_zero", "rnd_inf", "rnd_min_inf", "rnd_conv"]
Overflow = Literal["wrap", "sat", "sat_zero", "sat_sym"]

MAX_WORD_BITS = 62
"""Widest word: codes, rounding biases and wrap offsets all stay inside int64."""

Codes = NDArray[np.int64]


def canonical_mode(kind: str, value: Any, known: tuple[str, ...]) -> str:
    """Normalize a mode name (case-insensitive, optional ``AP_`` prefix) or raise.

    TypeError for a value that is not a string, ValueError for an unknown name.
    """
    if not isinstance(value, str):
        raise TypeError(
            f"{kind} mode must be a name (str), got {value!r}; known modes: {', '.join(known)}"
        )
    name = value.lower()
    if name.startswith("ap_"):
        name = name[3:]
    if name not in known:
        raise ValueError(f"unknown {kind} mode {value!r}; known modes: {', '.join(known)}")
    return name


# --------------------------------------------------------------------------- rounding
# Two tables per mode: one rounds exact float64 scaled values (quantize), one gives the
# bias for dropping s >= 1 low bits of integer codes (cast, and the generated Verilog).
# Each rounder returns a fresh array and may overwrite its float input, which is always a
# scratch buffer; an array pass over a 1080p frame costs about a millisecond, so every
# pass saved counts.


def _half_up(y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Round half toward plus infinity: floor(y) + (y - floor(y) >= 1/2)."""
    floor = np.floor(y)
    # y - floor(y) can round for -1 < y < 0 (1 - |y| needs more bits), but rounding is
    # monotone and 1/2 is a float64, so the comparison with 1/2 is still exact.
    y -= floor
    floor += y >= 0.5
    return floor


def _half_down(y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Round half toward minus infinity: ceil(y) - (ceil(y) - y >= 1/2), the mirror image.

    A strict ``y - floor(y) > 1/2`` would not be exact: for y = -(1/2 - 2**-54) the
    difference rounds to exactly 1/2.
    """
    ceil = np.ceil(y)
    np.subtract(ceil, y, out=y)
    ceil -= y >= 0.5
    return ceil


def _half_to_zero(y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Round half toward zero: trunc(y), one step away from zero where |y - trunc(y)| > 1/2."""
    trunc = np.trunc(y)
    y -= trunc  # exact: the bits below the binary point of y, with its sign
    trunc += y > 0.5
    trunc -= y < -0.5
    return trunc


_BELOW_HALF = float(np.nextafter(0.5, 0.0))


def _trunc_half_away(y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Round half away from zero as trunc(y + copysign(0.5 - 2**-54, y)), in three passes.

    Exact for every float64 (checked against exact rationals at and beside every tie up
    to 2**53): a tie n + 1/2 becomes n + 1 - 2**-54, which float addition rounds to
    n + 1; a value below the tie lies at least one ulp of y lower, more than the 2**-54
    given away, so the sum stays below n + 1; integers from 2**52 on gain less than half
    an ulp. Plain y + 0.5 would round wrongly just below one half.
    """
    y += np.copysign(_BELOW_HALF, y)
    return np.trunc(y, out=y)


# The other modes compare the distance to floor, ceil or trunc with 1/2.
FLOAT_ROUNDERS: dict[str, Callable[[NDArray[np.float64]], NDArray[np.float64]]] = {
    "trn": lambda y: np.floor(y, out=y),
    "trn_zero": lambda y: np.trunc(y, out=y),
    "rnd": _half_up,
    "rnd_min_inf": _half_down,
    "rnd_zero": _half_to_zero,
    "rnd_inf": _trunc_half_away,
    "rnd_conv": lambda y: np.rint(y, out=y),  # IEEE round-half-even, exact
}


# Integer rounding adds a bias below the kept LSB, then shifts right arithmetically (floor).
# With |codes| < 2**62 and every bias < 2**62 the sum never leaves int64. Each mode's bias is
# one RoundingBias: the NumPy rounding below and the Verilog generator
# (srlab.fpga.rtl) both read ROUNDING_BIASES, so a mode is written down once.
def _nothing(s: int) -> int:
    return 0


def _one(s: int) -> int:
    return 1


def _half(s: int) -> int:
    return 1 << (s - 1)


def _below_half(s: int) -> int:
    return (1 << (s - 1)) - 1


def _all_dropped(s: int) -> int:
    return (1 << s) - 1


@dataclass(frozen=True)
class RoundingBias:
    """How a rounding mode biases codes before dropping their ``s`` low bits.

    ``codes / 2**s`` rounded is ``(codes + base(s) + [condition] * step(s)) >> s`` (an
    arithmetic shift, so floor), where the condition tests one bit of the code.

    Attributes
    ----------
    base : callable
        ``base(s)``, the constant added to every code.
    step : callable
        ``step(s)``, added where the condition holds.
    bit : {"sign", "kept_lsb"} or None
        The bit the condition reads: the sign bit, or bit ``s`` (the lowest bit kept; for a
        code narrower than ``s`` bits, its sign bit). None: no condition, ``step`` is unused.
    when : int
        The bit value (0 or 1) for which ``step`` is added.

    Examples
    --------
    >>> rule = ROUNDING_BIASES["rnd_zero"]  # ties toward zero: negatives get one more
    >>> s = 2
    >>> [(c + rule.base(s) + rule.step(s) * (c < 0)) >> s for c in (-6, -2, 2, 6)]
    [-1, 0, 0, 1]
    """

    base: Callable[[int], int]
    step: Callable[[int], int] = _nothing
    bit: Literal["sign", "kept_lsb"] | None = None
    when: int = 1


ROUNDING_BIASES: dict[str, RoundingBias] = {
    "trn": RoundingBias(_nothing),
    "trn_zero": RoundingBias(_nothing, _all_dropped, "sign"),  # negatives: floor becomes ceil
    "rnd": RoundingBias(_half),
    "rnd_min_inf": RoundingBias(_below_half),
    "rnd_zero": RoundingBias(_below_half, _one, "sign"),  # ties up for negatives only
    "rnd_inf": RoundingBias(_below_half, _one, "sign", when=0),  # ties up for the others
    "rnd_conv": RoundingBias(_below_half, _one, "kept_lsb"),  # ties up onto an even code
}
"""Rounding mode -> the bias it adds before the right shift that drops bits."""


def _condition_steps(codes: Codes, s: int, rule: RoundingBias) -> Codes:
    """``rule.step(s)`` where the rule's condition holds, else 0, as a fresh array."""
    if rule.bit == "sign":  # a logical shift of the unsigned view: 1 for negatives
        q = (codes.view(np.uint64) >> np.uint64(63)).view(np.int64)
    else:
        q = codes >> s
        q &= 1
    if not rule.when:
        q ^= 1
    step = rule.step(s)
    if step != 1:
        q *= step
    return q


def shift_right_rounded(codes: Codes, s: int, rounding: str) -> Codes:
    """``codes / 2**s`` rounded by ``rounding`` into a fresh array; ``|codes| < 2**62``."""
    if s > MAX_WORD_BITS:
        # |codes / 2**s| < 1/2: only the sign still matters (floor gives -1 for negatives,
        # every other mode gives 0), and sign(codes) / 4 rounds the same way in every mode.
        codes, s = np.sign(codes), 2
    rule = ROUNDING_BIASES[rounding]
    base = rule.base(s)
    if rule.bit is None:
        q = codes + base if base else codes.copy()
    else:
        q = _condition_steps(codes, s, rule)
        if base:
            q += base
        q += codes
    q >>= s
    return q


# --------------------------------------------------------------------------- overflow
# Each mode rewrites ``q`` (exact codes in target LSBs, |q| <= 2**62) in place: int64 codes,
# or integer codes held exactly in a float array.


def _wrap(q: Codes, fmt: QFormat) -> Codes:
    if q.dtype.kind == "f":
        # Exact integer codes held in floats: subtract whole periods (all exact, a power of two).
        period = float(1 << fmt.word_bits)
        q -= period * np.floor((q - fmt.min_code) / period)
        return q
    if not fmt.signed:
        q &= (1 << fmt.word_bits) - 1
        return q
    # Keep the low W bits and sign-extend: shift them to the top of the 64-bit word
    # (a uint64 view makes the shift modular) and back down arithmetically.
    top = 64 - fmt.word_bits
    unsigned = q.view(np.uint64)
    unsigned <<= np.uint64(top)
    q >>= top
    return q


def _sat(q: Codes, fmt: QFormat) -> Codes:
    return np.clip(q, fmt.min_code, fmt.max_code, out=q)


def _sat_sym(q: Codes, fmt: QFormat) -> Codes:
    # HLS AP_SAT_SYM also turns an exact most-negative result into -max (ap_fixed_base.h).
    return np.clip(q, lowest_kept(fmt), fmt.max_code, out=q)


def _sat_zero(q: Codes, fmt: QFormat) -> Codes:
    outside = q < fmt.min_code
    outside |= q > fmt.max_code
    np.copyto(q, 0, where=outside)
    return q


OVERFLOWS: dict[str, Callable[[Codes, QFormat], Codes]] = {
    "wrap": _wrap,
    "sat": _sat,
    "sat_zero": _sat_zero,
    "sat_sym": _sat_sym,
}


def lowest_kept(fmt: QFormat) -> int:
    """Smallest code the overflow mode leaves unchanged."""
    return -fmt.max_code if fmt.overflow == "sat_sym" and fmt.signed else fmt.min_code


def cast_float_codes(
    y: NDArray[np.floating], frac_bits: int, bound: int, fmt: QFormat
) -> NDArray[np.floating]:
    """Cast exact integer codes held in a float array into ``fmt``, as :func:`cast` does.

    Made for code sums that BLAS computed exactly in float32 or float64: rounding them
    where they are, with the same rounding and overflow tables as :func:`cast`, avoids a
    round trip through int64.

    Parameters
    ----------
    y : ndarray of float32 or float64
        Exact codes with ``frac_bits`` fraction bits, ``|y| <= bound``; overwritten.
    frac_bits : int
        Fraction bits of the codes in ``y``.
    bound : int
        Bound on ``|y|``. ``bound`` scaled to the target (and one rounding bias of 1/2
        below its LSB) must stay below ``2**23`` (float32) or ``2**52`` (float64), so that
        every step is exact.
    fmt : QFormat
        Target format; its ``rounding`` and ``overflow`` apply.

    Returns
    -------
    ndarray
        Codes of ``fmt`` as floats, same dtype (may be ``y`` itself).

    Examples
    --------
    >>> from srlab.fixed import QFormat
    >>> y = np.array([5.0, 6.0, 7.0, -6.0])  # 1.25 1.5 1.75 -1.5 with 2 fraction bits
    >>> cast_float_codes(y, 2, 7, QFormat(8, 8, rounding="rnd_conv")).tolist()
    [1.0, 2.0, 2.0, -2.0]
    """
    shift = frac_bits - fmt.frac_bits
    if shift:
        y *= y.dtype.type(2.0**-shift)  # exact: a power of two
    if shift > 0:
        y = FLOAT_ROUNDERS[fmt.rounding](y)
    reach = -(-bound >> shift) if shift >= 0 else bound << -shift  # ceil: rounding stays within
    if -reach < lowest_kept(fmt) or reach > fmt.max_code:
        y = OVERFLOWS[fmt.overflow](y, fmt)
    return y
