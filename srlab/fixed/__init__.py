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

Where each concept lives
------------------------
Format (:mod:`srlab.fixed._format`)
    QFormat, add_format, sub_format, multiply_format, MAX_ABS_INT_BITS
Modes (:mod:`srlab.fixed._modes`)
    Rounding, Overflow (the mode names), MAX_WORD_BITS, cast_float_codes, lowest_kept; the
    one table of rounding rules (ROUNDING_BIASES of RoundingBias: what integer rounding
    adds before its shift, also read by the Verilog generator) and the one table of
    overflow rules
Arrays (:mod:`srlab.fixed._array`)
    FixedArray, quantize, cast, add, sub, multiply

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

from srlab.fixed._array import FixedArray, add, cast, multiply, quantize, sub
from srlab.fixed._format import MAX_ABS_INT_BITS, QFormat, add_format, multiply_format, sub_format
from srlab.fixed._modes import (
    MAX_WORD_BITS,
    ROUNDING_BIASES,
    Overflow,
    Rounding,
    RoundingBias,
    cast_float_codes,
    lowest_kept,
)

__all__ = [
    "MAX_ABS_INT_BITS",
    "MAX_WORD_BITS",
    "ROUNDING_BIASES",
    "FixedArray",
    "Overflow",
    "QFormat",
    "Rounding",
    "RoundingBias",
    "add",
    "add_format",
    "cast",
    "cast_float_codes",
    "lowest_kept",
    "multiply",
    "multiply_format",
    "quantize",
    "sub",
    "sub_format",
]
