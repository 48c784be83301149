"""Tables of the two kernels whose pixels :func:`srlab.resize` picks by a peer's own rule.

``nearest`` (half-pixel centres, no antialiasing) and ``area`` do not sample a kernel at each
output's phase: their tables follow the integer and floating-point steps of OpenCV (and, for
nearest, Pillow) so that the pixels picked and the weights given are the peers' own, ties and
partial pixels included. Both return ``(idx, w)`` tables of shape ``(n_out, taps)`` whose
indices all lie inside the image, so no border rule ever applies to them.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["area_table", "area_uses_footprints", "nearest_index"]

# OpenCV's resizeArea drops a partial pixel covered by less than this (in pixels), without
# renormalising the rest (computeResizeAreaTab in imgproc/src/resize.cpp).
_AREA_MIN_COVER = 1e-3
_DBL_EPSILON = float(np.finfo(np.float64).eps)


def nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """Input pixel of every output pixel, by the nearest-neighbour rule of OpenCV and Pillow.

    The source coordinate starts at ``step / 2`` and grows by ``step = n_in / n_out`` per
    output, accumulated in float64, and is truncated: output ``x`` takes input
    ``floor(f_x)``, clipped to the image. That is OpenCV's INTER_NEAREST_EXACT (OpenCV 5,
    which computes it in softdouble) and Pillow's NEAREST (``ImagingScaleAffine``). In exact
    arithmetic ``f_x = (x + 1/2) * n_in / n_out``: the input pixel whose area contains the
    output pixel's centre, and a centre exactly on the border between two input pixels goes
    to the right-hand one. The running float64 sum carries rounding errors, so at such an
    exact tie the pick is whatever the accumulated sum lands on, which is what both peers
    pick; when ``step`` and ``step / 2`` are exact binary fractions (integer or dyadic
    factors) the sum is exact and every tie goes right.

    Parameters
    ----------
    n_in, n_out : int
        Input and output length along the axis.

    Returns
    -------
    (n_out,) ndarray of int64

    Examples
    --------
    >>> nearest_index(4, 2).tolist()  # ties, exact: the right-hand pixel
    [1, 3]
    >>> nearest_index(3, 7).tolist()
    [0, 0, 1, 1, 1, 2, 2]
    """
    step = n_in / n_out
    f = np.full(n_out, step)
    f[0] = step * 0.5
    # ufunc.accumulate adds left to right, one rounding per step, like the peers' loops.
    f = np.add.accumulate(f)
    return np.minimum(np.floor(f).astype(np.int64), n_in - 1)


def area_uses_footprints(scale_y: float, scale_x: float) -> bool:
    """Whether OpenCV's INTER_AREA averages footprints: input/output ratio >= 1 on both axes."""
    return scale_y >= 1.0 and scale_x >= 1.0


def area_table(
    n_in: int, n_out: int, inv_scale: float, footprints: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Taps and weights of OpenCV's INTER_AREA along one axis.

    Parameters
    ----------
    n_in, n_out : int
        Input and output length.
    inv_scale : float
        OpenCV's ``inv_scale``: ``fx`` (srlab's ``scale``) when given, else ``n_out / n_in``.
        The input/output ratio is ``1 / inv_scale``, computed as OpenCV does.
    footprints : bool
        True when the ratio is >= 1 on both axes (:func:`area_uses_footprints`): each output
        averages the input over its footprint ``[x * r, (x + 1) * r)``, partial pixels
        weighted by the part covered, the last footprint clipped to the image and averaged
        over what is left, and a partial pixel covered by less than 1e-3 dropped as OpenCV
        drops it. False otherwise: OpenCV's two-tap fallback, ``sx = floor(x * r)`` and
        ``fx = (x + 1) - (sx + 1) / r`` (kept when in (0, 1), wrapped past 1), which for an
        upscaled axis is again the covered fraction of the two pixels under the footprint.

    Returns
    -------
    idx, w : (n_out, taps) ndarrays
        int64 indices inside ``[0, n_in)`` and float64 weights (zero-padded).

    Examples
    --------
    >>> idx, w = area_table(6, 4, 4 / 6, True)
    >>> idx.tolist(), (w * 3).round(6).tolist()
    ([[0, 1], [1, 2], [3, 4], [4, 5]], [[2.0, 1.0], [1.0, 2.0], [2.0, 1.0], [1.0, 2.0]])
    >>> area_table(2, 4, 2.0, False)[0].tolist()  # 2x up: each output within one pixel
    [[0, 1], [0, 1], [1, 1], [1, 1]]
    """
    scale = 1.0 / inv_scale
    if not footprints:
        return _area_fallback(n_in, n_out, scale, inv_scale)
    if abs(scale - round(scale)) < _DBL_EPSILON:
        scale = float(round(scale))  # OpenCV's resizeAreaFast: whole k x k blocks
    rows: list[list[tuple[int, float]]] = []
    for dx in range(n_out):
        fsx1 = dx * scale
        fsx2 = fsx1 + scale
        cell = min(scale, n_in - fsx1)
        sx1, sx2 = math.ceil(fsx1), math.floor(fsx2)
        sx2 = min(sx2, n_in - 1)
        sx1 = min(sx1, sx2)
        taps = []
        if sx1 - fsx1 > _AREA_MIN_COVER:
            taps.append((sx1 - 1, (sx1 - fsx1) / cell))
        taps.extend((sx, 1.0 / cell) for sx in range(sx1, sx2))
        if fsx2 - sx2 > _AREA_MIN_COVER:
            taps.append((sx2, min(min(fsx2 - sx2, 1.0), cell) / cell))
        rows.append(taps)
    width = max(len(taps) for taps in rows)
    idx = np.empty((n_out, width), dtype=np.int64)
    w = np.zeros((n_out, width))
    for dx, taps in enumerate(rows):
        pixels = [sx for sx, _ in taps]
        idx[dx] = pixels + [pixels[-1]] * (width - len(taps))
        w[dx, : len(taps)] = [a for _, a in taps]
    return idx, w


def _area_fallback(
    n_in: int, n_out: int, scale: float, inv_scale: float
) -> tuple[np.ndarray, np.ndarray]:
    dx = np.arange(n_out, dtype=np.float64)
    sx = np.floor(dx * scale)
    # OpenCV computes fx in float32; 1 - fx is taken here in float64 so the two weights add
    # up to one exactly (OpenCV's float32 1 - fx differs from it by at most 2**-25).
    fx = ((dx + 1) - (sx + 1) * inv_scale).astype(np.float32).astype(np.float64)
    fx = np.where(fx <= 0, 0.0, fx - np.floor(fx))
    sx = sx.astype(np.int64)
    last = sx >= n_in - 1  # the right border: OpenCV takes the last pixel alone
    sx = np.where(last, n_in - 1, sx)
    fx = np.where(last, 0.0, fx)
    idx = np.stack([sx, np.minimum(sx + 1, n_in - 1)], axis=1)
    return idx, np.stack([1.0 - fx, fx], axis=1)
