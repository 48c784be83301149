"""The fixed-point format value type: :class:`QFormat`, its HLS spelling, and result formats.

``QFormat(W, I, signed, rounding, overflow)`` is ``ap_fixed<W, I, Q, O>`` (``ap_ufixed``
when unsigned); :meth:`QFormat.parse` reads that spelling. :func:`add_format`,
:func:`sub_format` and :func:`multiply_format` give the exact result format of an HLS
``+``, ``-`` and ``*``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, get_args

import numpy as np

from srlab.fixed._modes import MAX_WORD_BITS, Overflow, Rounding, canonical_mode

MAX_ABS_INT_BITS = 512
"""Bound on ``|int_bits|`` so that LSBs and range bounds are exact float64 powers of two."""


def _check_int(name: str, value: Any) -> int:
    """Return ``value`` as a Python int, or raise TypeError if it is not an integer."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    return int(value)


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
    TypeError
        If a width is not an integer, ``signed`` not a bool or a mode not a string.
    ValueError
        If a width is out of range or a mode is unknown.

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
            raise TypeError(f"signed must be True or False, got {self.signed!r}")
        object.__setattr__(self, "word_bits", word_bits)
        object.__setattr__(self, "int_bits", int_bits)
        object.__setattr__(self, "signed", bool(self.signed))
        object.__setattr__(
            self, "rounding", canonical_mode("rounding", self.rounding, get_args(Rounding))
        )
        object.__setattr__(
            self, "overflow", canonical_mode("overflow", self.overflow, get_args(Overflow))
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
    def signed_width(self) -> int:
        """Bits that hold every code in two's complement: ``W``, one more when unsigned (the
        width of a signed multiplier port or a Verilog ``signed`` wire).
        """
        return self.word_bits + (not self.signed)

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
        TypeError
            If ``text`` is not a string.
        ValueError
            If the text is not such a type, or uses saturation bits ``N != 0``.

        Examples
        --------
        >>> QFormat.parse("ap_fixed<16, 4, AP_RND, AP_SAT>")
        QFormat(word_bits=16, int_bits=4, signed=True, rounding='rnd', overflow='sat')
        """
        if not isinstance(text, str):
            raise TypeError(
                f"QFormat.parse reads a string such as 'ap_fixed<16,4>', got {type(text).__name__}; "
                "build a format from numbers with QFormat(word_bits, int_bits, ...)"
            )
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

    Parameters and result as :func:`add_format`; a ValueError when the exact difference
    needs more than 62 bits.

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
    Parameters and result as :func:`add_format`; a ValueError when ``Wa + Wb > 62``.

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
