"""Integer upscaling as polyphase filtering with OpenCV's separable filter.

Why this exists
---------------
At an integer factor ``P`` with half-pixel centres, output ``P * m + p`` samples input
``u = m + (2p + 1 - P) / (2P)``: its phase, and so its weights, depend on ``p`` only. Each
of the ``P`` output phases along an axis is therefore a plain correlation of the input with
one short kernel (srlab's own weights at that phase), and a 2-D resize is ``Py * Px``
separable filters, each the size of the input, interleaved into the output. Profiling the
general path on 960x540 -> 1920x1080 RGB showed where its time goes: dense band matrices
that are mostly zeros for a 2- or 4-tap kernel (three times more for interleaved RGB), and
float passes over the full output for the rounding. Here the convolution runs in
``cv2.sepFilter2D`` (SIMD, the 8-bit input read as is), on strips of input rows whose float
results stay in cache while each phase is rounded, and ``cv2.merge`` interleaves the column
phases straight into rows of the output (NumPy's strided copies of 3-byte pixels are
several times slower). The weights, the border rule (replicate = BORDER_REPLICATE,
reflect = BORDER_REFLECT_101, constant 0 = BORDER_CONSTANT) and the rounding (+0.5, clip,
truncate: half up) are srlab's, so the result equals the general path up to float32
summation order. The rounding stays in NumPy on purpose: OpenCV's own conversions round
half to even, which differs on the exact ties that dyadic weights (2x) produce.

Anything else (non-integer factors, ``renormalize``, a non-zero ``cval``, tiny images)
returns ``None`` from :func:`axis_phases` and takes the general path.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np

from srlab.kernels import Kernel

__all__ = ["AxisPhases", "axis_phases", "run", "supports"]

_CV_BORDERS = {
    "replicate": cv2.BORDER_REPLICATE,
    "reflect": cv2.BORDER_REFLECT_101,
    "constant": cv2.BORDER_CONSTANT,
}
_CV_MAX_CHANNELS = 512  # CV_CN_MAX: cv2.merge writes Px * C channels
_PHASE_CACHE_SIZE = 64
_STRIP_BYTES = 1 << 19  # float results of one strip and phase: about half a MiB


@dataclass(frozen=True)
class AxisPhases:
    """Kernel (float64, correlation order) and anchor of each output phase along one axis."""

    factor: int
    kernels: tuple[np.ndarray, ...]
    anchors: tuple[int, ...]


@functools.lru_cache(maxsize=_PHASE_CACHE_SIZE)
def axis_phases(
    n_in: int, n_out: int, in_per_out: float, kernel: Kernel, convention: str, border: str
) -> AxisPhases | None:
    """The phases of an integer upscaling by ``n_out / n_in``, or None if this path does not apply.

    ``border="constant"`` stands for a constant 0 outside the image (the caller checks cval).
    """
    if kernel.rule is not None or convention != "half_pixel" or border not in _CV_BORDERS:
        return None
    if n_out % n_in or n_in < kernel.taps:
        return None
    factor = n_out // n_in
    if abs(in_per_out * factor - 1.0) > 1e-12:  # scale= whose rounding changed the size
        return None
    kernels, anchors = [], []
    for p in range(factor):
        v = Fraction(2 * p + 1 - factor, 2 * factor)  # u - m, exactly
        i0 = v.numerator // v.denominator
        w = np.asarray(kernel.weights(float(v - i0)), dtype=np.float64)
        rel = i0 + kernel.offsets
        nonzero = np.flatnonzero(w)
        w, rel = w[nonzero[0] : nonzero[-1] + 1], rel[nonzero[0] : nonzero[-1] + 1]
        first, last = min(int(rel[0]), 0), max(int(rel[-1]), 0)
        taps = np.zeros(last - first + 1)
        taps[rel - first] = w
        taps.setflags(write=False)
        kernels.append(taps)
        anchors.append(-first)
    return AxisPhases(factor, tuple(kernels), tuple(anchors))


def supports(image: np.ndarray, phases_x: AxisPhases) -> bool:
    """Whether :func:`run` handles this image (dtype and channel count)."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    return image.dtype in (np.uint8, np.uint16, np.float32, np.float64) and (
        channels * phases_x.factor <= _CV_MAX_CHANNELS
    )


def run(image: np.ndarray, phases_y: AxisPhases, phases_x: AxisPhases, border: str) -> np.ndarray:
    """Resize ``image`` (H, W) or (H, W, C) by the two integer factors.

    Integer images are computed in float32, then rounded half up and clipped; float32 and
    float64 images are computed in their own precision.
    """
    h, w = image.shape[:2]
    py, px = phases_y.factor, phases_x.factor
    channels = 1 if image.ndim == 2 else image.shape[2]
    # A single channel goes to OpenCV as a 2-D array; several as (h, w, C).
    src = np.ascontiguousarray(image.reshape(h, w) if channels == 1 else image)
    integer = image.dtype.kind == "u"
    work = np.float64 if image.dtype == np.float64 else np.float32
    depth = cv2.CV_64F if work == np.float64 else cv2.CV_32F
    out = np.empty((h * py, w * px) + image.shape[2:], dtype=image.dtype)
    # Output rows of phase q, as (h, w, px * C): row m holds its px column phases interleaved.
    rows = out.reshape(h, py, w, px * channels)
    top = float(np.iinfo(image.dtype).max) if integer else 0.0
    border_type = _CV_BORDERS[border]
    kx = [k.astype(work) for k in phases_x.kernels]
    ky = [k.astype(work) for k in phases_y.kernels]
    # Input rows a filtered row needs above and below it.
    above = max(phases_y.anchors)
    below = max(len(k) - 1 - a for k, a in zip(phases_y.kernels, phases_y.anchors, strict=True))
    # Strips of input rows whose float results stay in cache until rounded and interleaved.
    # Each strip is filtered with `above` / `below` extra rows of real neighbours, so only
    # the top and bottom of the image see OpenCV's border rule, as they should.
    strip = max(8, _STRIP_BYTES // (w * channels * np.dtype(work).itemsize))
    rounded = (
        [np.empty((min(strip, h),) + src.shape[1:], dtype=image.dtype) for _ in range(px)]
        if integer
        else None
    )
    for r0 in range(0, h, strip):
        r1 = min(r0 + strip, h)
        a, b = max(r0 - above, 0), min(r1 + below, h)
        n = r1 - r0
        for q in range(py):
            parts = []
            for p in range(px):
                f = cv2.sepFilter2D(
                    src[a:b],
                    depth,
                    kx[p],
                    ky[q],
                    anchor=(phases_x.anchors[p], phases_y.anchors[q]),
                    delta=0.5 if integer else 0.0,
                    borderType=border_type,
                )[r0 - a : r0 - a + n]
                if integer:
                    # +0.5 (delta) then truncation of a clipped, non-negative value: round half up.
                    np.clip(f, 0.0, top, out=f)
                    np.copyto(rounded[p][:n], f, casting="unsafe")
                    f = rounded[p][:n]
                parts.append(f)
            _interleave(parts, rows[r0:r1, q])
    return out


def _interleave(parts: list[np.ndarray], dst: np.ndarray) -> None:
    """Write ``parts`` (each (h, w[, C])) as consecutive channel groups of ``dst`` (h, w, n * C)."""
    if len(parts) == 1:
        np.copyto(dst, parts[0].reshape(dst.shape))
        return
    merged = cv2.merge(parts, dst=dst)
    if merged is not dst:  # cv2 allocated instead of writing in place
        np.copyto(dst, merged.reshape(dst.shape))
