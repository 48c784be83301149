"""Separable passes as blocked band matrices, shared by :func:`srlab.resize` and the datapath.

A resize along one axis is a matrix whose row ``o`` holds the few weights of output ``o``.
Cut into blocks of consecutive outputs, each block reads a narrow band of the input, so
its weights form a small dense matrix and the block is one BLAS matrix product
(:func:`band_matrices`). An :class:`AxisPlan` holds those matrices for one axis, in the
layout of the pass that uses them:

* vertical: ``(n_blocks, block, span)``, multiplied from the left onto row bands of the
  ``(rows, width * channels)`` image (:func:`vertical`);
* horizontal: ``kron(block.T, eye(channels))``, ``(n_blocks, span * C, block * C)``,
  multiplied from the right, so interleaved channels need no transpose
  (:func:`horizontal`; :func:`horizontal_transposed` for many channels).

:func:`srlab.resize` fills the matrices with float weights; the fixed-point datapath
(:mod:`srlab.fpga.fastpath`) with integer coefficient codes, whose float products and sums
stay exact. Both size their outputs as OpenCV does (:func:`geometry`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BLOCK_COLUMNS",
    "BLOCK_ROWS",
    "AxisPlan",
    "band_matrices",
    "band_plan",
    "check_scale",
    "check_size",
    "geometry",
    "horizontal",
    "horizontal_transposed",
    "vertical",
]

# Output samples per block. Horizontal blocks of 16 columns (48 for RGB) and vertical
# bands of 8 rows keep each BLAS product and the rounding of a band inside L2 cache;
# benchmarks/sr_resize.py measured these as the fastest on 960x540 -> 1080p.
BLOCK_COLUMNS = 16
"""Output columns per block of the horizontal pass."""

BLOCK_ROWS = 8
"""Output rows per band of the vertical pass."""


# --------------------------------------------------------------------------- per-axis plan


@dataclass(frozen=True)
class AxisPlan:
    """Blocked weights of one axis.

    Block ``b`` maps input ``lo[b] : lo[b] + span`` to outputs ``b * block : (b + 1) * block``.

    Attributes
    ----------
    n_out : int
        Output samples along the axis.
    block : int
        Output samples per block.
    span : int
        Input samples each block reads.
    lo : (n_blocks,) ndarray of int
        First input sample of each block.
    mats : ndarray
        Vertical layout ``(n_blocks, block, span)``; horizontal ``(n_blocks, span * C, block * C)``.
    outside : ndarray
        Each output's weight on the constant border, ``(n_out,)``; horizontal ``(n_out * C,)``.
    has_outside : bool
        Whether any ``outside`` weight is non-zero.
    unit_rows : bool
        Whether every output's weights (``outside`` included) add up to one.
    gather : (n_out,) ndarray of int, optional
        When every output copies one input pixel: the pixel (the matrices are then empty).
    """

    n_out: int
    block: int
    span: int
    lo: np.ndarray
    mats: np.ndarray
    outside: np.ndarray
    has_outside: bool
    unit_rows: bool
    gather: np.ndarray | None = None


def band_matrices(
    idx: np.ndarray, w: np.ndarray, n_in: int, block: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Cut a tap table into dense band matrices of ``block`` outputs each.

    Parameters
    ----------
    idx : (n_out, taps) ndarray of int
        Input index of every tap, inside ``[0, n_in)``.
    w : (n_out, taps) ndarray
        Weight of every tap.
    n_in : int
        Input samples along the axis.
    block : int
        Output samples per block.

    Returns
    -------
    lo : (n_blocks,) ndarray of int
        First input sample of each block.
    mats : (n_blocks, block, span) ndarray of float64
        Weights of each block; taps that land on one input pixel are summed.
    span : int
        Input samples each block reads.

    Examples
    --------
    >>> lo, mats, span = band_matrices(np.array([[0, 1], [1, 2], [2, 2]]), np.full((3, 2), 0.5), 3, 2)
    >>> lo.tolist(), span  # the last band is kept inside the image
    ([0, 0], 3)
    >>> mats[1, 0].tolist()  # output 2: both taps on pixel 2, summed
    [0.0, 0.0, 1.0]
    """
    n_out, taps = idx.shape
    n_blocks = -(-n_out // block)
    pad = n_blocks * block - n_out
    idx = np.concatenate([idx, np.repeat(idx[-1:], pad, axis=0)])
    w = np.concatenate([w, np.zeros((pad, taps))])
    by_block = idx.reshape(n_blocks, block * taps)
    lo = by_block.min(axis=1)
    span = int((by_block.max(axis=1) - lo).max()) + 1
    # Keep every band inside the image so a block always reads exactly `span` rows.
    lo = np.minimum(lo, n_in - span)
    mats = np.zeros((n_blocks, block, span))
    rows = np.broadcast_to(np.arange(block)[None, :, None], (n_blocks, block, taps))
    blocks = np.broadcast_to(np.arange(n_blocks)[:, None, None], (n_blocks, block, taps))
    cols = idx.reshape(n_blocks, block, taps) - lo[:, None, None]
    # add.at, not assignment: replicated border taps land on the same input pixel.
    np.add.at(mats, (blocks, rows, cols), w.reshape(n_blocks, block, taps))
    return lo, mats, span


def band_plan(
    idx: np.ndarray,
    w: np.ndarray,
    n_in: int,
    in_per_out: float,
    channels: int | None,
    dtype: np.dtype,
    outside: np.ndarray | None = None,
    unit_rows: bool = True,
) -> AxisPlan:
    """The blocked plan of one axis from its tap table.

    Parameters
    ----------
    idx, w : (n_out, taps) ndarray
        Tap indices inside ``[0, n_in)`` and their weights (see :func:`band_matrices`).
    n_in : int
        Input samples along the axis.
    in_per_out : float
        Input samples per output sample; blocks get fewer outputs when it exceeds one.
    channels : int or None
        Interleaved channels of the horizontal layout; None for the vertical layout.
    dtype : numpy dtype
        Dtype of the matrices and of the image they multiply.
    outside : (n_out,) ndarray, optional
        Each output's weight on the constant border; default none.
    unit_rows : bool, default True
        Recorded in the plan (see :class:`AxisPlan`).

    Returns
    -------
    AxisPlan
        With read-only arrays.

    Examples
    --------
    >>> idx = np.array([[0, 1], [0, 1], [1, 2], [1, 2]])
    >>> plan = band_plan(idx, np.full((4, 2), 0.5), 3, 0.5, channels=3, dtype=np.dtype(np.float32))
    >>> plan.block, plan.span, plan.mats.shape
    (4, 3, (1, 9, 12))
    """
    n_out = len(idx)
    # When downscaling, fewer outputs per block keep each band about as narrow as at 1x,
    # so the dense block matrices stay mostly non-zero.
    block = BLOCK_ROWS if channels is None else BLOCK_COLUMNS
    block = max(1, min(n_out, int(block / max(in_per_out, 1.0))))
    lo, mats, span = band_matrices(idx, w, n_in, block)
    outside = np.zeros(n_out) if outside is None else outside
    if channels is not None:
        # (n_blocks, block, span) -> kron(M.T, I_C): (n_blocks, span*C, block*C), so the
        # interleaved (rows, width*C) image is multiplied from the right.
        eye = np.eye(channels)
        mats = np.einsum("bos,cd->bscod", mats, eye).reshape(
            len(lo), span * channels, block * channels
        )
        outside = np.repeat(outside, channels)
    mats = np.ascontiguousarray(mats, dtype=dtype)
    outside = outside.astype(dtype)
    for array in (lo, mats, outside):
        array.setflags(write=False)
    return AxisPlan(n_out, block, span, lo, mats, outside, bool(np.any(outside != 0)), unit_rows)


# --------------------------------------------------------------------------- passes


def horizontal(a: np.ndarray, plan: AxisPlan, channels: int, cval: float) -> np.ndarray:
    """The horizontal pass, ``(rows, W_in * C) -> (rows, W_out * C)``, with a horizontal-layout plan.

    ``cval`` is the value outside the image, weighted by ``plan.outside``.
    """
    out = np.empty((a.shape[0], plan.n_out * channels), dtype=a.dtype)
    span, c = plan.span * channels, channels
    for b, lo in enumerate(plan.lo):
        o0 = b * plan.block
        n = min(plan.block, plan.n_out - o0)
        np.matmul(
            a[:, lo * c : lo * c + span],
            plan.mats[b, :, : n * c],
            out=out[:, o0 * c : (o0 + n) * c],
        )
    if plan.has_outside and cval != 0:
        out += cval * plan.outside[None, :]
    return out


def horizontal_transposed(a: np.ndarray, plan: AxisPlan, channels: int, cval: float) -> np.ndarray:
    """The horizontal pass, ``(rows, W_in * C) -> (rows, W_out * C)``, with a vertical-layout plan.

    The image is transposed, passed through :func:`vertical` and transposed back: cheaper
    than ``kron(block.T, eye(C))`` for many channels.
    """
    rows, w_in = a.shape[0], a.shape[1] // channels
    t = np.ascontiguousarray(a.reshape(rows, w_in, channels).transpose(1, 0, 2)).reshape(
        w_in, rows * channels
    )
    t = vertical(t, plan, cval, None, a.dtype)
    t = t.reshape(plan.n_out, rows, channels).transpose(1, 0, 2)
    return np.ascontiguousarray(t).reshape(rows, plan.n_out * channels)


def vertical(
    a: np.ndarray,
    plan: AxisPlan,
    cval: float,
    finish: Callable[[np.ndarray, slice], None] | None,
    out_dtype: np.dtype,
) -> np.ndarray | None:
    """The vertical pass, ``(H_in, M) -> (H_out, M)``, band by band.

    With ``finish``, each band of output rows is handed to ``finish(band, rows)`` while it
    is in cache, instead of being stored, and None is returned; otherwise the result has
    ``out_dtype``.
    """
    out = None if finish is not None else np.empty((plan.n_out, a.shape[1]), dtype=out_dtype)
    band = np.empty((plan.block, a.shape[1]), dtype=a.dtype) if finish is not None else None
    for b, lo in enumerate(plan.lo):
        o0 = b * plan.block
        n = min(plan.block, plan.n_out - o0)
        dst = band[:n] if band is not None else out[o0 : o0 + n]
        np.matmul(plan.mats[b, :n], a[lo : lo + plan.span], out=dst)
        if plan.has_outside and cval != 0:
            dst += cval * plan.outside[o0 : o0 + n, None]
        if finish is not None:
            finish(dst, slice(o0, o0 + n))
    return out


# --------------------------------------------------------------------------- geometry


def check_scale(scale: float | Sequence[float]) -> tuple[float, float]:
    """A scale as ``(sy, sx)`` floats.

    Raises
    ------
    TypeError
        If ``scale`` is not a number or a pair of numbers.
    ValueError
        If ``scale`` is a sequence of another length, or not positive and finite.

    Examples
    --------
    >>> check_scale(2), check_scale((1, 1.5))
    ((2.0, 2.0), (1.0, 1.5))
    """
    values = tuple(scale) if isinstance(scale, (tuple, list, np.ndarray)) else (scale, scale)
    if len(values) != 2:
        raise ValueError(f"scale must be a number or a (sy, sx) pair, got {scale!r}")
    if any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in values):
        # None, "two" and "2" are not numbers: float("2") would silently accept a str
        raise TypeError(f"scale must be a number or a (sy, sx) pair of numbers, got {scale!r}")
    sy, sx = (float(v) for v in values)
    if not (math.isfinite(sy) and math.isfinite(sx)) or sy <= 0 or sx <= 0:
        raise ValueError(f"scale must be > 0 and finite, got {scale!r}")
    return sy, sx


def check_size(size: Sequence[int]) -> tuple[int, int]:
    """An output size as a ``(height, width)`` pair of ints.

    Raises
    ------
    TypeError
        If ``size`` is not a sequence of integers.
    ValueError
        If it is not two positive integers.
    """
    try:
        values = tuple(size)
    except TypeError:
        raise TypeError(f"size must be a (height, width) pair, got {size!r}") from None
    message = (
        f"size must be (height, width) with two positive integers, got {size!r} "
        "(note: OpenCV's dsize is (width, height))"
    )
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise TypeError(message)
    if len(values) != 2 or min(values) <= 0:
        raise ValueError(message)
    return int(values[0]), int(values[1])


def geometry(
    shape: tuple[int, int], scale: float | Sequence[float] | None, size: Sequence[int] | None
) -> tuple[tuple[int, int], tuple[float, float]]:
    """Output ``(height, width)`` and input pixels per output pixel along ``(y, x)``.

    Exactly one of ``scale`` and ``size`` is given; the size is ``round(H * sy), round(W * sx)``
    and the ratio ``1 / scale``, or the size and ratio of sizes, as OpenCV does.

    Raises
    ------
    ValueError
        If both or neither are given, either is invalid, or the output would be empty.

    Examples
    --------
    >>> geometry((3, 5), 1.5, None)
    ((4, 8), (0.6666666666666666, 0.6666666666666666))
    >>> geometry((3, 5), None, (6, 10))
    ((6, 10), (0.5, 0.5))
    """
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale and size (size is (height, width))")
    if size is not None:
        out = check_size(size)
        return out, (shape[0] / out[0], shape[1] / out[1])
    sy, sx = check_scale(scale)
    # Python's round is half-to-even, like OpenCV's cvRound for fx/fy.
    out = (round(shape[0] * sy), round(shape[1] * sx))
    if min(out) < 1:
        raise ValueError(
            f"scale {scale!r} turns shape {shape} into an empty image {out}; use a larger scale"
        )
    return out, (1.0 / sy, 1.0 / sx)
