"""Synthetic test charts, each a continuous pattern integrated over the pixel area.

Integrating over each pixel's unit square (a box sensor with fill factor one) keeps the charts
free of the aliasing that point-sampling a sharp pattern adds. Re-exported by
:mod:`srlab.images`, whose registry loads them by name.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import cv2
import numpy as np

from labcore.checks import check_type
from srlab.imagecheck import DType, check_size, to_dtype

__all__ = [
    "DEFAULT_CHART_SIZE",
    "bars",
    "checkerboard",
    "gradient",
    "slanted_edge",
    "text_chart",
    "zone_plate",
]

#: Size (height, width) at which :func:`srlab.images.load_image` renders the charts.
DEFAULT_CHART_SIZE: tuple[int, int] = (256, 256)

# Sub-samples per pixel side when integrating a continuous chart over the pixel area.
_SUPERSAMPLE = 8


def _integrate(pattern: Callable[[np.ndarray, np.ndarray], np.ndarray], size: tuple[int, int]):
    """Mean of ``pattern(y, x)`` over each pixel's unit square (pixel (i, j) covers [i, i+1))."""
    height, width = size
    offsets = (np.arange(_SUPERSAMPLE) + 0.5) / _SUPERSAMPLE
    y = (np.arange(height)[:, None] + offsets[None, :]).reshape(-1)
    x = (np.arange(width)[:, None] + offsets[None, :]).reshape(-1)
    fine = pattern(y[:, None], x[None, :])
    return fine.reshape(height, _SUPERSAMPLE, width, _SUPERSAMPLE).mean(axis=(1, 3))


# --------------------------------------------------------------------------- charts
def zone_plate(
    size: tuple[int, int] = DEFAULT_CHART_SIZE,
    *,
    max_frequency: float = 0.5,
    dtype: DType = "float64",
) -> np.ndarray:
    """Circular zone plate: a chirp whose local frequency grows linearly with the radius.

    ``I(r) = 0.5 + 0.5 cos(pi * f_max * r**2 / r_max)``, so the local frequency at radius ``r``
    is ``f_max * r / r_max`` cycles per pixel and reaches ``max_frequency`` at the corners
    (``r_max`` is the centre-to-corner distance). Every frequency up to ``max_frequency`` and
    every orientation appears once, which makes aliasing and blur visible at a glance.

    Parameters
    ----------
    size : (height, width) tuple of int
        Image size in pixels, each at least 8.
    max_frequency : float
        Local frequency at the corners in cycles per pixel, in (0, 0.5]; 0.5 is Nyquist.
    dtype : {"uint8", "uint16", "float32", "float64"}
        Output type; floats lie in [0, 1], integers span their full range.

    Returns
    -------
    image : (H, W) ndarray
        The chart, of ``size`` and ``dtype``.

    Raises
    ------
    ValueError
        If ``size`` is not a pair of integers >= 8, ``max_frequency`` is outside (0, 0.5]
        or ``dtype`` is not supported.

    Examples
    --------
    >>> zone_plate((64, 64), dtype="uint8").shape
    (64, 64)
    """
    height, width = check_size(size)
    if not 0.0 < max_frequency <= 0.5:
        raise ValueError(f"max_frequency must be in (0, 0.5] cycles per pixel, got {max_frequency}")
    cy, cx = height / 2.0, width / 2.0
    r_max = float(np.hypot(cy, cx))

    def pattern(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        r2 = (y - cy) ** 2 + (x - cx) ** 2
        return 0.5 + 0.5 * np.cos(np.pi * max_frequency * r2 / r_max)

    return to_dtype(_integrate(pattern, (height, width)), dtype)


def slanted_edge(
    size: tuple[int, int] = DEFAULT_CHART_SIZE,
    *,
    angle: float = 5.0,
    low: float = 0.2,
    high: float = 0.8,
    dtype: DType = "float64",
) -> np.ndarray:
    """Slanted dark/bright edge through the centre, as in the ISO 12233 sharpness chart.

    The edge is a half-plane: pixels whose area lies right of a line tilted ``angle`` degrees
    from the vertical are ``high``, the others ``low``; pixels the edge crosses take the
    covered-area mixture. The slight tilt samples the edge at many sub-pixel phases.

    Parameters
    ----------
    size, dtype
        As for :func:`zone_plate`.
    angle : float
        Tilt from the vertical in degrees, in (-45, 45).
    low, high : float
        Levels on either side, in [0, 1] (fractions of the full range), ``low < high``.

    Returns
    -------
    image : (H, W) ndarray
        The edge, ``low`` on the left and ``high`` on the right.

    Raises
    ------
    ValueError
        For a bad size, an angle outside (-45, 45) or levels not ordered in [0, 1].

    Examples
    --------
    >>> img = slanted_edge((32, 32))
    >>> bool(img[:, 0].max() < img[:, -1].min())
    True
    """
    height, width = check_size(size)
    if not -45.0 < angle < 45.0:
        raise ValueError(f"angle must be in (-45, 45) degrees from the vertical, got {angle}")
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"levels must satisfy 0 <= low < high <= 1, got low={low}, high={high}")
    cy, cx = height / 2.0, width / 2.0
    tan = np.tan(np.deg2rad(angle))

    def pattern(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.where(x - cx > (y - cy) * tan, high, low)

    return to_dtype(_integrate(pattern, (height, width)), dtype)


def checkerboard(
    size: tuple[int, int] = DEFAULT_CHART_SIZE,
    *,
    square: int = 8,
    dtype: DType = "float64",
) -> np.ndarray:
    """Black and white squares of ``square`` pixels, starting black at the top-left corner.

    Parameters
    ----------
    size, dtype
        As for :func:`zone_plate`.
    square : int
        Side of one square in pixels, at least 1.

    Returns
    -------
    image : (H, W) ndarray with values 0 and the maximum of ``dtype``.

    Raises
    ------
    TypeError
        For a size or ``square`` that is not made of numbers.
    ValueError
        For a bad size or ``square < 1``.

    Examples
    --------
    >>> checkerboard((16, 16), square=8, dtype="uint8")[0, [0, 8]].tolist()
    [0, 255]
    """
    height, width = check_size(size)
    check_type(square, numbers.Real, "square", expected="an integer number of pixels")
    if int(square) != square or square < 1:
        raise ValueError(f"square must be an integer >= 1 pixel, got {square!r}")
    rows = np.arange(height)[:, None] // square
    cols = np.arange(width)[None, :] // square
    return to_dtype(((rows + cols) % 2).astype(np.float64), dtype)


def bars(
    size: tuple[int, int] = DEFAULT_CHART_SIZE,
    *,
    periods: tuple[float, ...] = (16.0, 8.0, 6.0, 4.0, 3.0, 2.5),
    dtype: DType = "float64",
) -> np.ndarray:
    """Resolution bars: groups of square-wave bars with shrinking periods.

    The width is split into ``len(periods)`` equal bands; band ``k`` holds bars of period
    ``periods[k]`` pixels (half bright, half dark). The top half has vertical bars (horizontal
    detail), the bottom half horizontal bars (vertical detail). Periods below 2 pixels are
    beyond Nyquist and are refused.

    Parameters
    ----------
    size, dtype
        As for :func:`zone_plate`.
    periods : tuple of float
        Bar periods in pixels, each >= 2.

    Returns
    -------
    image : (H, W) ndarray
        Bars of the full range: 0 and the maximum of ``dtype``, mixed where a bar edge
        crosses a pixel.

    Raises
    ------
    ValueError
        For a bad size, an empty ``periods`` or a period below 2 pixels.

    Examples
    --------
    >>> bars((64, 96), periods=(8.0, 4.0)).shape
    (64, 96)
    """
    height, width = check_size(size)
    periods_arr = np.asarray(periods, dtype=np.float64)
    if periods_arr.ndim != 1 or periods_arr.size == 0 or np.any(~(periods_arr >= 2.0)):
        raise ValueError(
            f"periods must be a non-empty sequence of numbers >= 2 pixels, got {periods!r}"
        )
    half = height / 2.0

    def pattern(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        y, x = np.broadcast_arrays(y, x)
        band = np.minimum((x * periods_arr.size / width).astype(int), periods_arr.size - 1)
        period = periods_arr[band]
        # Vertical bars vary along x in the top half, horizontal bars along y below.
        position = np.where(y < half, x, y - half)
        return (np.mod(position, period) < period / 2.0).astype(np.float64)

    return to_dtype(_integrate(pattern, (height, width)), dtype)


_TEXT_LINES = (
    "Sphinx of black quartz, judge my vow",
    "THE QUICK BROWN FOX JUMPS OVER 13 LAZY DOGS",
    "pack my box with five dozen liquor jugs 0123456789",
    "How vexingly quick daft zebras jump!",
)


def text_chart(
    size: tuple[int, int] = DEFAULT_CHART_SIZE,
    *,
    dtype: DType = "float64",
) -> np.ndarray:
    """Dark text on a light page at several font sizes (a text-like, high-contrast pattern).

    Lines of pangrams in OpenCV's Hershey simplex font, drawn anti-aliased at a supersampled
    resolution and area-averaged down, from large strokes at the top to strokes about one pixel
    wide at the bottom. The result is fully deterministic.

    Parameters
    ----------
    size : (height, width) tuple of int
        Image size in pixels, each at least 32.
    dtype
        As for :func:`zone_plate`.

    Returns
    -------
    image : (H, W) ndarray
        Text of about 8% of the full range on a page of about 92%.

    Raises
    ------
    ValueError
        For a size below 32 pixels or an unsupported dtype.

    Examples
    --------
    >>> img = text_chart((64, 64), dtype="uint8")
    >>> int(img.min()) < 64 < 192 < int(img.max())
    True
    """
    height, width = check_size(size, minimum=32)
    factor = 4  # drawn 4x larger, then area-averaged: strokes get sub-pixel coverage
    canvas = np.full((height * factor, width * factor), 235, dtype=np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    row, line, font_scale = 0, 0, 0.9 * factor * height / 256
    while True:
        text = _TEXT_LINES[line % len(_TEXT_LINES)]
        (_, text_height), baseline = cv2.getTextSize(text, font, font_scale, 1)
        row += text_height + baseline
        if row >= canvas.shape[0]:
            break
        thickness = max(1, round(font_scale * 1.5))
        cv2.putText(canvas, text, (2 * factor, row), font, font_scale, 20, thickness, cv2.LINE_AA)
        line, font_scale = line + 1, max(font_scale * 0.8, 0.3 * factor)
    small = canvas.reshape(height, factor, width, factor).mean(axis=(1, 3)) / 255.0
    return to_dtype(small, dtype)


def gradient(
    size: tuple[int, int] = DEFAULT_CHART_SIZE,
    *,
    dtype: DType = "float64",
) -> np.ndarray:
    """Smooth ramp with a gentle wave: content every interpolator should reproduce well.

    ``I(y, x) = 0.1 + 0.7 x / W + 0.05 (1 + cos(2 pi y / H))``: a left-to-right ramp from 0.1
    to 0.8 plus a vertical raised cosine of peak-to-peak 0.1 whose period is the image height
    (so the highest frequency is ``1 / H`` cycles per pixel).

    Parameters
    ----------
    size, dtype
        As for :func:`zone_plate`.

    Returns
    -------
    image : (H, W) ndarray with values in [0.1, 0.9] of the full range.

    Raises
    ------
    ValueError
        For a bad size or dtype.

    Examples
    --------
    >>> g = gradient((16, 16))
    >>> bool(np.all(np.diff(g, axis=1) > 0))
    True
    """
    height, width = check_size(size)

    def pattern(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return 0.1 + 0.7 * x / width + 0.05 * (1.0 + np.cos(2.0 * np.pi * y / height))

    return to_dtype(_integrate(pattern, (height, width)), dtype)
