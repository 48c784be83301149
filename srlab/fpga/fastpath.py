"""The exact float fast path of the datapath: integer codes summed by BLAS.

:meth:`~srlab.fpga.datapath.FixedPointResizer.run` is vectorized over whole images.
When the formats make the MAC exact (the accumulator has at least the product's
fraction bits, and its partial sums cannot overflow or it wraps, which is modular)
(:func:`pass_spec`), the sum of products is computed as float
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
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from srlab._separable import AxisPlan, band_plan
from srlab.fixed import FixedArray, QFormat, cast, cast_float_codes
from srlab.fpga.rom import prefix_bounds

if TYPE_CHECKING:
    from srlab.fpga.datapath import FixedPointResizer

__all__ = ["TAP_BY_TAP", "PassSpec", "coefficient_plan", "finish_sums", "pass_spec", "pixel_floats"]

# Bounds below which float32 / float64 hold every integer exactly, with one bit of head
# room so that adding a rounding bias of 1/2 to a scaled code stays exact.
_EXACT_FLOAT = ((np.dtype(np.float32), 1 << 23), (np.dtype(np.float64), 1 << 52))


def _exact_dtype(bound: int) -> np.dtype | None:
    """Float dtype in which integers up to ``bound`` and their roundings stay exact, or None."""
    for dtype, limit in _EXACT_FLOAT:
        if bound < limit:
            return dtype
    return None


@dataclass(frozen=True)
class PassSpec:
    """How one pass runs: exact float BLAS sums (``dtype``) or tap by tap (``dtype=None``).

    Attributes
    ----------
    dtype : numpy dtype or None
        float32 or float64, in which every product and partial sum is an exact integer;
        None for the tap-by-tap path.
    sum_frac : int
        Fraction bits of the exact sum of products.
    bound : int
        ``|sum of products| <= bound``, in units of ``2**-sum_frac``.
    through_acc : bool
        The accumulator can wrap: cast into ``acc_fmt`` before the target format.
    """

    dtype: np.dtype | None
    sum_frac: int
    bound: int
    through_acc: bool


TAP_BY_TAP = PassSpec(None, 0, 0, True)
"""The spec of a pass that runs tap by tap."""


@functools.lru_cache(maxsize=64)
def pass_spec(
    r: FixedPointResizer, source: QFormat, target: QFormat, axis: str, n_in: int
) -> PassSpec:
    """How one pass of ``r`` runs: on the exact float path where the formats allow it.

    Parameters
    ----------
    r : FixedPointResizer
        The design.
    source, target : QFormat
        Formats of the pass's input and output words (``pixel_fmt`` and ``mid_fmt`` for
        the horizontal pass, ``mid_fmt`` and ``out_fmt`` for the vertical one).
    axis, n_in
        The pass and its input length, as in :meth:`FixedPointResizer.tap_table`.

    Returns
    -------
    PassSpec
        :data:`TAP_BY_TAP` when the accumulator rounds products or saturates partial
        sums, or no float dtype holds the sums exactly.

    Examples
    --------
    >>> from srlab.fpga.datapath import FixedPointResizer
    >>> r = FixedPointResizer("bicubic", 2)
    >>> pass_spec(r, r.pixel_fmt, r.mid_fmt, "x", 16).dtype
    dtype('float32')
    >>> r = FixedPointResizer("bicubic", 2, acc_fmt="ap_fixed<24,12,RND>", coeff_fmt="ap_fixed<16,2,RND,SAT>")
    >>> pass_spec(r, r.pixel_fmt, r.mid_fmt, "x", 16) is TAP_BY_TAP
    True
    """
    _, _, coef = r.tap_table(axis, n_in)
    prod_frac = source.frac_bits + r.coeff_fmt.frac_bits
    if r.acc_fmt.frac_bits < prod_frac:
        return TAP_BY_TAP  # every `acc += c * p` rounds the product: tap by tap
    shift = r.acc_fmt.frac_bits - prod_frac
    low, high = prefix_bounds(np.unique(coef, axis=0), source)
    fits = (low << shift) >= r.acc_fmt.min_code and (high << shift) <= r.acc_fmt.max_code
    if not fits and r.acc_fmt.overflow != "wrap":
        return TAP_BY_TAP  # a saturating accumulator clips partial sums: tap by tap
    bound = int(np.abs(coef).sum(axis=1).max()) * max(abs(source.min_code), abs(source.max_code))
    # A target with more fraction bits than the sum scales it up; that must stay exact too.
    dtype = _exact_dtype(bound << max(0, target.frac_bits - prod_frac))
    if dtype is None:
        return TAP_BY_TAP
    return PassSpec(dtype, prod_frac, bound, not fits)


@functools.lru_cache(maxsize=32)
def coefficient_plan(
    r: FixedPointResizer, axis: str, n_in: int, channels: int | None, dtype: np.dtype
) -> AxisPlan:
    """Blocked band matrices of the coefficient codes of one pass, as :mod:`srlab._separable` lays them out.

    ``channels`` is the interleaved channel count of the horizontal pass, None for the
    vertical pass; ``dtype`` the float dtype of :func:`pass_spec`.
    """
    idx, _, coef = r.tap_table(axis, n_in)
    # Replicated border taps that land on one pixel are merged (add.at): an exact integer
    # sum of their codes, so the product sum is unchanged.
    return band_plan(idx, coef.astype(np.float64), n_in, n_in / len(idx), channels, dtype)


def _sum_format(bound: int, frac_bits: int) -> QFormat:
    """Smallest signed format with ``frac_bits`` holding codes in ``[-bound, bound]``."""
    return QFormat(bound.bit_length() + 1, bound.bit_length() + 1 - frac_bits)


def finish_sums(
    r: FixedPointResizer, sums: np.ndarray, spec: PassSpec, target: QFormat
) -> np.ndarray:
    """Exact float sums of products -> codes of ``target`` (float, same dtype).

    The one rounding of ``acc_fmt`` into ``target``, or through ``acc_fmt`` when it can wrap.
    """
    if not spec.through_acc:
        # The accumulator holds the exact sum, so casting into it would change nothing.
        return cast_float_codes(sums, spec.sum_frac, spec.bound, target)
    # The accumulator may wrap: take the exact int64 route through it.
    value = cast(
        cast(FixedArray(sums.astype(np.int64), _sum_format(spec.bound, spec.sum_frac)), r.acc_fmt),
        target,
    )
    return value.codes.astype(sums.dtype)


def pixel_floats(image: np.ndarray, fmt: QFormat, dtype: np.dtype) -> np.ndarray | None:
    """uint8 pixels as exact ``fmt`` codes in ``dtype``, when no rounding or overflow applies."""
    if fmt.max_value < 255:
        return None
    return (
        image.astype(dtype) * dtype.type(2.0**fmt.frac_bits)
        if fmt.frac_bits
        else image.astype(dtype)
    )
