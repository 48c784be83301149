"""Bit-true fixed-point numbers with the semantics of HLS ``ap_fixed<W, I, Q, O>``.

A value is a :class:`FixedArray`: an ``int64`` NumPy array of raw codes plus its
:class:`QFormat`. The real value of a code ``c`` is ``c * 2**-frac_bits``. Every
operation works on whole arrays with integer arithmetic, so a 1080p frame costs a
handful of vectorized passes and the result is exact, bit for bit.

Formats and their modes
-----------------------
``QFormat(word_bits=W, int_bits=I, signed, rounding=Q, overflow=O)`` mirrors
``ap_fixed<W, I, Q, O>`` (``signed=False``: ``ap_ufixed``). ``I`` counts the sign bit,
so ``frac_bits = W - I``. As in ``ap_fixed``, ``I`` may be negative (the value lies
below one half) or larger than ``W`` (the LSB weighs more than one).

Rounding applies when bits below the target LSB are dropped:

=========== ===============================================
trn         toward minus infinity (floor), the HLS default
trn_zero    toward zero
rnd         to nearest, ties toward plus infinity
rnd_zero    to nearest, ties toward zero
rnd_inf     to nearest, ties away from zero
rnd_min_inf to nearest, ties toward minus infinity
rnd_conv    to nearest, ties to even (convergent)
=========== ===============================================

Overflow applies after rounding, when the result leaves the target range:

=========== ===============================================
wrap        keep the low W bits (two's complement), the HLS default
sat         clamp to the most negative / most positive code
sat_zero    set every out-of-range value to zero
sat_sym     clamp to +-max_code (signed: the most negative code is never
            produced, as in HLS; unsigned: same as ``sat``)
=========== ===============================================

Where the int64 range ends
--------------------------
``word_bits <= 62`` (:data:`MAX_WORD_BITS`). Two bits of head room inside ``int64``
let every rounding add its bias below the dropped bits without overflowing; shifts
that would leave ``int64`` are done modulo ``2**64`` (wrap) or decided by comparison
(saturation), so no intermediate ever overflows silently. Results of :func:`add`,
:func:`sub` and :func:`multiply` carry their exact HLS result format (a product
needs ``W1 + W2`` bits), so they must also fit in 62 bits; when they would not, a
``ValueError`` asks to cast the operands to narrower formats first.
``|int_bits| <= 512`` (:data:`MAX_ABS_INT_BITS`) keeps every LSB and every range
bound an exact normal float64 power of two. :func:`quantize` takes any finite
float64 exactly (and integers within ``+-2**61``); ``to_float`` is exact up to
53-bit words.

Examples
--------
>>> import numpy as np
>>> fmt = QFormat(8, 3, rounding="rnd", overflow="sat")
>>> str(fmt)
'ap_fixed<8,3,RND,SAT>'
>>> q = quantize(np.array([0.1, -5.0, 3.99]), fmt)
>>> q.codes.tolist(), q.to_float().tolist()
([3, -128, 127], [0.09375, -4.0, 3.96875])
>>> p = multiply(q, q)
>>> str(p.fmt)
'ap_fixed<16,6>'
>>> cast(p, QFormat(8, 5, rounding="rnd_conv", overflow="sat")).to_float().tolist()
[0.0, 15.875, 15.75]
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "MAX_ABS_INT_BITS",
    "MAX_WORD_BITS",
    "FixedArray",
    "Overflow",
    "QFormat",
    "Rounding",
    "add",
    "add_format",
    "cast",
    "multiply",
    "multiply_format",
    "quantize",
    "sub",
    "sub_format",
]

Rounding = Literal["trn", "trn_zero", "rnd", "rnd_zero", "rnd_inf", "rnd_min_inf", "rnd_conv"]
Overflow = Literal["wrap", "sat", "sat_zero", "sat_sym"]

MAX_WORD_BITS = 62
"""Widest word: codes, rounding biases and wrap offsets all stay inside int64."""

MAX_ABS_INT_BITS = 512
"""Bound on ``|int_bits|`` so that LSBs and range bounds are exact float64 powers of two."""

Codes = NDArray[np.int64]


# --------------------------------------------------------------------------- formats


def _check_int(name: str, value: Any) -> int:
    """Return ``value`` as a Python int, or raise if it is not an integer."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    return int(value)


def _canonical_mode(kind: str, value: Any, known: tuple[str, ...]) -> str:
    """Normalize a mode name (case-insensitive, optional ``AP_`` prefix) or raise."""
    name = str(value).lower() if isinstance(value, str) else None
    if name is not None and name.startswith("ap_"):
        name = name[3:]
    if name not in known:
        raise ValueError(f"unknown {kind} mode {value!r}; known modes: {', '.join(known)}")
    return name


@dataclass(frozen=True)
class QFormat:
    """A fixed-point format with the semantics of HLS ``ap_fixed<W, I, Q, O>``.

    Parameters
    ----------
    word_bits : int
        Total number of bits ``W``, ``1 <= W <= 62``.
    int_bits : int
        Integer bits ``I`` including the sign bit; ``frac_bits = W - I``. May be
        negative or larger than ``W`` as in ``ap_fixed``; ``|I| <= 512``.
    signed : bool, default True
        Two's complement (``ap_fixed``) or unsigned (``ap_ufixed``).
    rounding : {"trn", "trn_zero", "rnd", "rnd_zero", "rnd_inf", "rnd_min_inf", "rnd_conv"}
        Quantization mode used when a value is converted *into* this format.
        Case-insensitive; an ``AP_`` prefix is accepted.
    overflow : {"wrap", "sat", "sat_zero", "sat_sym"}
        Overflow mode used when a value is converted *into* this format.

    Raises
    ------
    ValueError
        If a width is out of range or not an integer, or a mode is unknown.

    Examples
    --------
    >>> fmt = QFormat(16, 4, rounding="RND", overflow="SAT")
    >>> str(fmt), fmt.frac_bits, fmt.min_code, fmt.max_code, fmt.lsb
    ('ap_fixed<16,4,RND,SAT>', 12, -32768, 32767, 0.000244140625)
    >>> QFormat.parse("ap_ufixed<8,0>") == QFormat(8, 0, signed=False)
    True
    """

    word_bits: int
    int_bits: int
    signed: bool = True
    rounding: Rounding = "trn"
    overflow: Overflow = "wrap"

    def __post_init__(self) -> None:
        word_bits = _check_int("word_bits", self.word_bits)
        int_bits = _check_int("int_bits", self.int_bits)
        if not 1 <= word_bits <= MAX_WORD_BITS:
            raise ValueError(
                f"word_bits={word_bits} is outside 1..{MAX_WORD_BITS}: a word needs at least one "
                f"bit, and codes wider than {MAX_WORD_BITS} bits do not fit int64 arithmetic; "
                "choose a word width in that range"
            )
        if abs(int_bits) > MAX_ABS_INT_BITS:
            raise ValueError(
                f"int_bits={int_bits} is outside -{MAX_ABS_INT_BITS}..{MAX_ABS_INT_BITS}; "
                "choose a format whose binary point lies within that many bits of the word"
            )
        if not isinstance(self.signed, (bool, np.bool_)):
            raise ValueError(f"signed must be True or False, got {self.signed!r}")
        object.__setattr__(self, "word_bits", word_bits)
        object.__setattr__(self, "int_bits", int_bits)
        object.__setattr__(self, "signed", bool(self.signed))
        object.__setattr__(
            self, "rounding", _canonical_mode("rounding", self.rounding, get_args(Rounding))
        )
        object.__setattr__(
            self, "overflow", _canonical_mode("overflow", self.overflow, get_args(Overflow))
        )

    @property
    def frac_bits(self) -> int:
        """Fractional bits ``W - I`` (negative when the LSB weighs more than one)."""
        return self.word_bits - self.int_bits

    @property
    def min_code(self) -> int:
        """Smallest raw code: ``-2**(W-1)`` if signed, else 0."""
        return -(1 << (self.word_bits - 1)) if self.signed else 0

    @property
    def max_code(self) -> int:
        """Largest raw code: ``2**(W-1) - 1`` if signed, else ``2**W - 1``."""
        return (1 << (self.word_bits - self.signed)) - 1

    @property
    def lsb(self) -> float:
        """Weight of one code step, ``2**-frac_bits`` (an exact float64)."""
        return 2.0**-self.frac_bits

    @property
    def min_value(self) -> float:
        """Smallest representable value (exact as float64)."""
        return self.min_code * self.lsb

    @property
    def max_value(self) -> float:
        """Largest representable value (rounded to float64 when ``W > 53``)."""
        return self.max_code * self.lsb

    def __str__(self) -> str:
        # Trailing template arguments that equal the HLS defaults are left out, as in C++.
        args = [str(self.word_bits), str(self.int_bits)]
        if self.overflow != "wrap":
            args += [self.rounding.upper(), self.overflow.upper()]
        elif self.rounding != "trn":
            args.append(self.rounding.upper())
        return f"ap_{'' if self.signed else 'u'}fixed<{','.join(args)}>"

    @classmethod
    def parse(cls, text: str) -> QFormat:
        """Build a format from its HLS spelling.

        Parameters
        ----------
        text : str
            ``"ap_fixed<W,I>"``, ``"ap_ufixed<W,I,Q>"``, ``"ap_fixed<W,I,Q,O>"`` or
            ``"ap_fixed<W,I,Q,O,0>"``; modes with or without the ``AP_`` prefix.

        Returns
        -------
        QFormat

        Raises
        ------
        ValueError
            If the text is not such a type, or uses saturation bits ``N != 0``.

        Examples
        --------
        >>> QFormat.parse("ap_fixed<16, 4, AP_RND, AP_SAT>")
        QFormat(word_bits=16, int_bits=4, signed=True, rounding='rnd', overflow='sat')
        """
        match = _FORMAT_PATTERN.fullmatch(text.strip())
        if match is None:
            raise ValueError(
                f"cannot parse {text!r} as a fixed-point type; write it like "
                "'ap_fixed<16,4>' or 'ap_ufixed<8,8,RND,SAT>'"
            )
        unsigned, word, integer, rounding, overflow, n_bits = match.groups()
        if n_bits is not None and int(n_bits) != 0:
            raise ValueError(
                f"{text!r} sets N={n_bits} saturation bits (wrap with N > 0), which this model "
                "does not implement; drop the fifth template argument (N=0)"
            )
        return cls(
            int(word),
            int(integer),
            signed=not unsigned,
            rounding=rounding or "trn",  # type: ignore[arg-type]
            overflow=overflow or "wrap",  # type: ignore[arg-type]
        )


_FORMAT_PATTERN = re.compile(
    r"ap_(u?)fixed\s*<\s*(\d+)\s*,\s*(-?\d+)\s*"
    r"(?:,\s*(\w+)\s*(?:,\s*(\w+)\s*(?:,\s*(\d+)\s*)?)?)?>"
)


def add_format(a: QFormat, b: QFormat) -> QFormat:
    """Exact result format of ``a + b`` under HLS rules.

    Integer bits ``max(Ia + (Sb and not Sa), Ib + (Sa and not Sb)) + 1``, fractional bits
    ``max(Fa, Fb)``, signed if either operand is. Modes are the HLS defaults (TRN, WRAP).

    Parameters
    ----------
    a, b : QFormat
        Operand formats.

    Returns
    -------
    QFormat

    Raises
    ------
    ValueError
        If the exact sum needs more than 62 bits.

    Examples
    --------
    >>> str(add_format(QFormat(8, 3), QFormat(8, 2, signed=False)))
    'ap_fixed<10,4>'
    """
    return _grown_format("add", a, b, signed=a.signed or b.signed)


def sub_format(a: QFormat, b: QFormat) -> QFormat:
    """Exact result format of ``a - b`` under HLS rules: as :func:`add_format`, always signed.

    Parameters
    ----------
    a, b : QFormat
        Operand formats.

    Returns
    -------
    QFormat

    Raises
    ------
    ValueError
        If the exact difference needs more than 62 bits.

    Examples
    --------
    >>> str(sub_format(QFormat(8, 8, signed=False), QFormat(8, 8, signed=False)))
    'ap_fixed<9,9>'
    """
    return _grown_format("subtract", a, b, signed=True)


def _grown_format(verb: str, a: QFormat, b: QFormat, signed: bool) -> QFormat:
    """Shared width rule of HLS ``+`` and ``-`` (one carry bit, aligned binary points)."""
    # An unsigned operand needs one more integer bit next to a signed one.
    int_bits = 1 + max(
        a.int_bits + (b.signed and not a.signed), b.int_bits + (a.signed and not b.signed)
    )
    word_bits = int_bits + max(a.frac_bits, b.frac_bits)
    _check_result_width(verb, a, b, word_bits)
    return QFormat(word_bits, int_bits, signed=signed)


def multiply_format(a: QFormat, b: QFormat) -> QFormat:
    """Exact result format of ``a * b`` under HLS rules.

    ``W = Wa + Wb``, ``I = Ia + Ib``, signed if either operand is; modes TRN, WRAP.

    Parameters
    ----------
    a, b : QFormat
        Operand formats.

    Returns
    -------
    QFormat

    Raises
    ------
    ValueError
        If ``Wa + Wb > 62``.

    Examples
    --------
    >>> str(multiply_format(QFormat(8, 8, signed=False), QFormat(12, 2)))
    'ap_fixed<20,10>'
    """
    word_bits = a.word_bits + b.word_bits
    _check_result_width("multiply", a, b, word_bits)
    return QFormat(word_bits, a.int_bits + b.int_bits, signed=a.signed or b.signed)


def _check_result_width(verb: str, a: QFormat, b: QFormat, word_bits: int) -> None:
    if word_bits > MAX_WORD_BITS:
        raise ValueError(
            f"cannot {verb} {a} and {b} exactly: the result needs {word_bits} bits, more than "
            f"the {MAX_WORD_BITS} that int64 codes hold; cast the operands to narrower "
            "formats first"
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
            raise ValueError(f"fmt must be a QFormat, got {type(self.fmt).__name__}")
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


# --------------------------------------------------------------------------- rounding
# Two registries per mode: one rounds exact float64 scaled values (quantize), one drops
# s >= 1 low bits of int64 codes (cast). Each rounder returns a fresh array and may
# overwrite its float input, which is always a scratch buffer; an array pass over a
# 1080p frame costs about a millisecond, so every pass saved counts.


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
_FLOAT_ROUNDERS: dict[str, Callable[[NDArray[np.float64]], NDArray[np.float64]]] = {
    "trn": lambda y: np.floor(y, out=y),
    "trn_zero": lambda y: np.trunc(y, out=y),
    "rnd": _half_up,
    "rnd_min_inf": _half_down,
    "rnd_zero": _half_to_zero,
    "rnd_inf": _trunc_half_away,
    "rnd_conv": lambda y: np.rint(y, out=y),  # IEEE round-half-even, exact
}


# Integer rounding adds a bias below the kept LSB, then shifts right arithmetically
# (floor). With |codes| < 2**62 and bias < 2**62 the sum never leaves int64.
def _int_trn(codes: Codes, s: int) -> Codes:
    return codes >> s


def _int_trn_zero(codes: Codes, s: int) -> Codes:
    q = codes >> 63  # -1 (all ones) for negative codes, else 0
    q &= (1 << s) - 1  # negative codes get bias 2**s - 1: floor becomes ceil
    q += codes
    q >>= s
    return q


def _int_biased(codes: Codes, s: int, bias: int, extra: Callable[[Codes], Any] | None) -> Codes:
    q = codes + bias
    if extra is not None:
        q += extra(codes)
    q >>= s
    return q


def _int_rnd_conv(codes: Codes, s: int) -> Codes:
    # Ties go up only when the kept LSB is odd, which lands them on an even code.
    q = codes >> s
    q &= 1
    q += (1 << (s - 1)) - 1
    q += codes
    q >>= s
    return q


_INT_ROUNDERS: dict[str, Callable[[Codes, int], Codes]] = {
    "trn": _int_trn,
    "trn_zero": _int_trn_zero,
    "rnd": lambda codes, s: _int_biased(codes, s, 1 << (s - 1), None),
    "rnd_min_inf": lambda codes, s: _int_biased(codes, s, (1 << (s - 1)) - 1, None),
    "rnd_zero": lambda codes, s: _int_biased(codes, s, (1 << (s - 1)) - 1, lambda c: c < 0),
    "rnd_inf": lambda codes, s: _int_biased(codes, s, (1 << (s - 1)) - 1, lambda c: c >= 0),
    "rnd_conv": _int_rnd_conv,
}


def _shift_right_rounded(codes: Codes, s: int, rounding: str) -> Codes:
    """``codes / 2**s`` rounded by ``rounding`` into a fresh array; ``|codes| < 2**62``."""
    if s > MAX_WORD_BITS:
        # |codes / 2**s| < 1/2: only the sign still matters (floor gives -1 for negatives,
        # every other mode gives 0), and sign(codes) / 4 rounds the same way in every mode.
        codes, s = np.sign(codes), 2
    return _INT_ROUNDERS[rounding](codes, s)


# --------------------------------------------------------------------------- overflow
# Each mode rewrites ``q`` (exact codes in target LSBs, |q| <= 2**62) in place.


def _wrap(q: Codes, fmt: QFormat) -> Codes:
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
    return np.clip(q, _lowest_kept(fmt), fmt.max_code, out=q)


def _sat_zero(q: Codes, fmt: QFormat) -> Codes:
    outside = q < fmt.min_code
    outside |= q > fmt.max_code
    np.copyto(q, 0, where=outside)
    return q


_OVERFLOWS: dict[str, Callable[[Codes, QFormat], Codes]] = {
    "wrap": _wrap,
    "sat": _sat,
    "sat_zero": _sat_zero,
    "sat_sym": _sat_sym,
}


def _lowest_kept(fmt: QFormat) -> int:
    """Smallest code the overflow mode leaves unchanged."""
    return -fmt.max_code if fmt.overflow == "sat_sym" and fmt.signed else fmt.min_code


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
    ValueError
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
        raise ValueError(
            f"cast expects a FixedArray, got {type(a).__name__}; use quantize() for floats"
        )
    if not isinstance(fmt, QFormat):
        raise ValueError(f"cast expects a QFormat target, got {type(fmt).__name__}")
    d = fmt.frac_bits - a.fmt.frac_bits
    if d > 0:
        return FixedArray._trusted(_shift_left_overflow(a, d, fmt), fmt)
    fits = _fits_after_shift(a.fmt, d, fmt)
    if d == 0:
        q = a.codes if fits else a.codes.copy()
    else:
        q = _shift_right_rounded(a.codes, -d, fmt.rounding)
    return FixedArray._trusted(q if fits else _OVERFLOWS[fmt.overflow](q, fmt), fmt)


def _fits_after_shift(src: QFormat, d: int, dst: QFormat) -> bool:
    """Whether every source code, scaled by 2**d and rounded, is already in range."""
    if d >= 0:
        low, high = src.min_code << d, src.max_code << d
    else:
        # Rounding stays within [floor, ceil] of the exact quotient.
        low, high = src.min_code >> -d, -((-src.max_code) >> -d)
    return low >= _lowest_kept(dst) and high <= dst.max_code


def _shift_left_overflow(a: FixedArray, d: int, fmt: QFormat) -> Codes:
    """Codes times 2**d (no rounding needed) with the target's overflow mode."""
    codes = a.codes
    if a.fmt.word_bits + d <= MAX_WORD_BITS:  # the exact product fits int64
        q = codes << d
        return q if _fits_after_shift(a.fmt, d, fmt) else _OVERFLOWS[fmt.overflow](q, fmt)
    if fmt.overflow == "wrap":
        # Modulo 2**64 shift (uint64 view), exact for the low W <= 62 bits that wrap keeps.
        if d >= 64:
            return np.zeros_like(codes)
        return _wrap((codes.view(np.uint64) << np.uint64(d)).view(np.int64), fmt)
    # Saturating modes only need to know which side overflowed: compare in source units,
    # shift the in-range codes, and mark the rest one step beyond the range.
    high = fmt.max_code >> d
    low = -((-fmt.min_code) >> d)
    q = np.clip(codes, low, high) << d
    q[codes > high] = fmt.max_code + 1
    q[codes < low] = fmt.min_code - 1
    return _OVERFLOWS[fmt.overflow](q, fmt)


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
    ValueError
        If ``x`` holds NaN or infinity, is not real, or holds integers beyond ``+-2**61``.

    Examples
    --------
    >>> fmt = QFormat(4, 4, rounding="rnd_conv", overflow="sat_sym")
    >>> quantize([2.5, 3.5, -100.0, 7.4], fmt).codes.tolist()
    [2, 4, -7, 7]
    """
    if not isinstance(fmt, QFormat):
        raise ValueError(f"quantize expects a QFormat, got {type(fmt).__name__}")
    if isinstance(x, FixedArray):
        raise ValueError("quantize expects real numbers; use cast() to convert a FixedArray")
    values = np.asarray(x)
    if values.dtype.kind in "biu":
        return cast(_integer_source(values), fmt)
    if values.dtype.kind != "f":
        raise ValueError(
            f"quantize expects real numbers, got dtype {values.dtype}; pass floats or integers"
        )
    values = values.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore"):  # inf - inf of an overflowed scaling: redone below
        rounded = _FLOAT_ROUNDERS[fmt.rounding](_scaled(values, fmt.frac_bits))
    low, high = (rounded.min(), rounded.max()) if rounded.size else (0.0, 0.0)
    if not (-_TWO_62 <= low and high <= _TWO_62):  # also catches NaN and infinity
        _check_finite(values)
        # Huge inputs: reduce them so that the rounded codes fit int64, then round again.
        rounded = _FLOAT_ROUNDERS[fmt.rounding](_scaled(_reduced(values, fmt), fmt.frac_bits))
        low, high = rounded.min(), rounded.max()
    q = rounded.astype(np.int64)
    # int() makes the comparison exact: 2**61 - 1 is not a float64.
    if _lowest_kept(fmt) <= int(low) and int(high) <= fmt.max_code:
        return FixedArray._trusted(q, fmt)
    return FixedArray._trusted(_OVERFLOWS[fmt.overflow](q, fmt), fmt)


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
        raise ValueError(
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
    ValueError
        If an operand is not a FixedArray or the result needs more than 62 bits.

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

    Parameters
    ----------
    a, b : FixedArray
        Operands, broadcastable shapes.

    Returns
    -------
    FixedArray
        ``a - b`` exactly, format ``sub_format(a.fmt, b.fmt)`` (always signed).

    Raises
    ------
    ValueError
        If an operand is not a FixedArray or the result needs more than 62 bits.

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

    Parameters
    ----------
    a, b : FixedArray
        Operands, broadcastable shapes.

    Returns
    -------
    FixedArray
        ``a * b`` exactly, format ``multiply_format(a.fmt, b.fmt)``.

    Raises
    ------
    ValueError
        If an operand is not a FixedArray or ``Wa + Wb > 62``.

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
