"""Test images: synthetic charts, bundled real photos, and LR/HR pairs.

Charts are continuous patterns integrated over each pixel's area (a box sensor with fill
factor one), so they are free of the aliasing that point-sampling a sharp pattern adds.
Photos are the ones scikit-image ships inside its wheel; none of them needs a download.

Functions
---------
Charts
    :func:`zone_plate`, :func:`slanted_edge`, :func:`checkerboard`, :func:`bars`,
    :func:`text_chart`, :func:`gradient`
Registry
    :func:`available_images`, :func:`load_image`, :func:`image_kind`
Pairs
    :func:`degrade` (PSF, decimation, noise), :func:`pair_sizes`, :func:`center_crop`
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import cv2
import numpy as np
import skimage.color
import skimage.data
import skimage.util
from scipy.special import ndtr

__all__ = [
    "DEFAULT_CHART_SIZE",
    "available_images",
    "bars",
    "center_crop",
    "checkerboard",
    "degrade",
    "gradient",
    "image_kind",
    "load_image",
    "pair_sizes",
    "slanted_edge",
    "text_chart",
    "zone_plate",
]

DType = Literal["uint8", "uint16", "float32", "float64"]
PSF = Literal["box", "gaussian"]
ImageKind = Literal["chart", "photo"]

#: Size (height, width) at which :func:`load_image` renders the charts.
DEFAULT_CHART_SIZE: tuple[int, int] = (256, 256)

# Sub-samples per pixel side when integrating a continuous chart over the pixel area.
_SUPERSAMPLE = 8
# Largest denominator accepted for a non-integer scale (1.7 = 17/10 needs 10).
_MAX_SCALE_DENOMINATOR = 16

# Converters from a float image in [0, 1]; scikit-image rounds to nearest and checks the range.
_FROM_UNIT_FLOAT: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "uint8": skimage.util.img_as_ubyte,
    "uint16": skimage.util.img_as_uint,
    "float32": skimage.util.img_as_float32,
    "float64": skimage.util.img_as_float64,
}


# --------------------------------------------------------------------------- helpers
def _check_size(size: tuple[int, int], minimum: int = 8) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be a (height, width) pair of integers, got {size!r}") from None
    if (height, width) != tuple(size) or height < minimum or width < minimum:
        raise ValueError(f"size must be a (height, width) pair of integers >= {minimum}, got {size!r}")
    return height, width


def _to_dtype(unit_image: np.ndarray, dtype: DType | str) -> np.ndarray:
    key = np.dtype(dtype).name
    if key not in _FROM_UNIT_FLOAT:
        raise ValueError(f"dtype {key!r} is not supported; use one of {sorted(_FROM_UNIT_FLOAT)}")
    return _FROM_UNIT_FLOAT[key](np.clip(unit_image, 0.0, 1.0))


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
    height, width = _check_size(size)
    if not 0.0 < max_frequency <= 0.5:
        raise ValueError(f"max_frequency must be in (0, 0.5] cycles per pixel, got {max_frequency}")
    cy, cx = height / 2.0, width / 2.0
    r_max = float(np.hypot(cy, cx))

    def pattern(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        r2 = (y - cy) ** 2 + (x - cx) ** 2
        return 0.5 + 0.5 * np.cos(np.pi * max_frequency * r2 / r_max)

    return _to_dtype(_integrate(pattern, (height, width)), dtype)


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
    size : (height, width) tuple of int
        Image size in pixels, each at least 8.
    angle : float
        Tilt from the vertical in degrees, in (-45, 45).
    low, high : float
        Levels on either side, in [0, 1] (fractions of the full range), ``low < high``.
    dtype : {"uint8", "uint16", "float32", "float64"}
        Output type.

    Returns
    -------
    image : (H, W) ndarray

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
    height, width = _check_size(size)
    if not -45.0 < angle < 45.0:
        raise ValueError(f"angle must be in (-45, 45) degrees from the vertical, got {angle}")
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"levels must satisfy 0 <= low < high <= 1, got low={low}, high={high}")
    cy, cx = height / 2.0, width / 2.0
    tan = np.tan(np.deg2rad(angle))

    def pattern(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.where(x - cx > (y - cy) * tan, high, low)

    return _to_dtype(_integrate(pattern, (height, width)), dtype)


def checkerboard(
    size: tuple[int, int] = DEFAULT_CHART_SIZE,
    *,
    square: int = 8,
    dtype: DType = "float64",
) -> np.ndarray:
    """Black and white squares of ``square`` pixels, starting black at the top-left corner.

    Parameters
    ----------
    size : (height, width) tuple of int
        Image size in pixels, each at least 8.
    square : int
        Side of one square in pixels, at least 1.
    dtype : {"uint8", "uint16", "float32", "float64"}
        Output type.

    Returns
    -------
    image : (H, W) ndarray with values 0 and the maximum of ``dtype``.

    Raises
    ------
    ValueError
        For a bad size or ``square < 1``.

    Examples
    --------
    >>> checkerboard((16, 16), square=8, dtype="uint8")[0, [0, 8]].tolist()
    [0, 255]
    """
    height, width = _check_size(size)
    if int(square) != square or square < 1:
        raise ValueError(f"square must be an integer >= 1 pixel, got {square!r}")
    rows = np.arange(height)[:, None] // square
    cols = np.arange(width)[None, :] // square
    return _to_dtype(((rows + cols) % 2).astype(np.float64), dtype)


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
    size : (height, width) tuple of int
        Image size in pixels, each at least 8.
    periods : tuple of float
        Bar periods in pixels, each >= 2.
    dtype : {"uint8", "uint16", "float32", "float64"}
        Output type.

    Returns
    -------
    image : (H, W) ndarray

    Raises
    ------
    ValueError
        For a bad size, an empty ``periods`` or a period below 2 pixels.

    Examples
    --------
    >>> bars((64, 96), periods=(8.0, 4.0)).shape
    (64, 96)
    """
    height, width = _check_size(size)
    periods_arr = np.asarray(periods, dtype=np.float64)
    if periods_arr.ndim != 1 or periods_arr.size == 0 or np.any(~(periods_arr >= 2.0)):
        raise ValueError(f"periods must be a non-empty sequence of numbers >= 2 pixels, got {periods!r}")
    half = height / 2.0

    def pattern(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        y, x = np.broadcast_arrays(y, x)
        band = np.minimum((x * periods_arr.size / width).astype(int), periods_arr.size - 1)
        period = periods_arr[band]
        # Vertical bars vary along x in the top half, horizontal bars along y below.
        position = np.where(y < half, x, y - half)
        return (np.mod(position, period) < period / 2.0).astype(np.float64)

    return _to_dtype(_integrate(pattern, (height, width)), dtype)


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
    dtype : {"uint8", "uint16", "float32", "float64"}
        Output type.

    Returns
    -------
    image : (H, W) ndarray

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
    height, width = _check_size(size, minimum=32)
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
    return _to_dtype(small, dtype)


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
    size : (height, width) tuple of int
        Image size in pixels, each at least 8.
    dtype : {"uint8", "uint16", "float32", "float64"}
        Output type.

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
    height, width = _check_size(size)

    def pattern(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return 0.1 + 0.7 * x / width + 0.05 * (1.0 + np.cos(2.0 * np.pi * y / height))

    return _to_dtype(_integrate(pattern, (height, width)), dtype)


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class _ImageEntry:
    kind: ImageKind
    load: Callable[[], np.ndarray]
    description: str


def _chart(fn: Callable[..., np.ndarray]) -> Callable[[], np.ndarray]:
    return lambda: fn(DEFAULT_CHART_SIZE, dtype="uint8")


_CHARTS = {
    "zone_plate": (zone_plate, "circular chirp up to Nyquist: aliasing and blur"),
    "slanted_edge": (slanted_edge, "5 degree edge: sharpness, ringing"),
    "checkerboard": (checkerboard, "8 px squares: corners, overshoot"),
    "bars": (bars, "bar groups of period 16 to 2.5 px: resolution"),
    "text_chart": (text_chart, "text at shrinking sizes: fine strokes"),
    "gradient": (gradient, "smooth ramp: banding, easy content"),
}

# Photos bundled inside the scikit-image wheel (no download); the ones that need pooch
# (brain, kidney, lily, skin, ...) are left out on purpose.
_PHOTOS = {
    "astronaut": "portrait, RGB 512x512",
    "brick": "brick wall texture, gray 512x512",
    "camera": "cameraman, gray 512x512",
    "chelsea": "cat, RGB 300x451",
    "coffee": "cup of coffee, RGB 400x600",
    "coins": "coins, gray 303x384",
    "grass": "grass texture, gray 512x512",
    "gravel": "gravel texture, gray 512x512",
    "hubble_deep_field": "deep-field sky, RGB 872x1000",
    "immunohistochemistry": "stained tissue, RGB 512x512",
    "moon": "moon surface, gray 512x512",
    "page": "scanned book page, gray 191x384",
    "rocket": "rocket launch, RGB 427x640",
    "text": "photographed text, gray 172x448",
}

_REGISTRY: dict[str, _ImageEntry] = {
    **{name: _ImageEntry("chart", _chart(fn), text) for name, (fn, text) in _CHARTS.items()},
    **{name: _ImageEntry("photo", getattr(skimage.data, name), text) for name, text in _PHOTOS.items()},
}


def available_images(kind: ImageKind | None = None) -> list[str]:
    """Names accepted by :func:`load_image`, sorted.

    Parameters
    ----------
    kind : {"chart", "photo"} or None
        Only synthetic charts, only real photos, or (None) both.

    Returns
    -------
    names : list of str

    Raises
    ------
    ValueError
        If ``kind`` is not "chart", "photo" or None.

    Examples
    --------
    >>> "zone_plate" in available_images("chart") and "camera" in available_images("photo")
    True
    """
    if kind not in (None, "chart", "photo"):
        raise ValueError(f"kind must be 'chart', 'photo' or None, got {kind!r}")
    return sorted(name for name, entry in _REGISTRY.items() if kind in (None, entry.kind))


def _entry(name: str) -> _ImageEntry:
    if name not in _REGISTRY:
        raise ValueError(f"unknown image {name!r}; known images: {', '.join(available_images())}")
    return _REGISTRY[name]


def image_kind(name: str) -> ImageKind:
    """Whether ``name`` is a synthetic ``"chart"`` or a real ``"photo"``.

    Raises
    ------
    ValueError
        If ``name`` is not in :func:`available_images`.

    Examples
    --------
    >>> image_kind("coffee")
    'photo'
    """
    return _entry(name).kind


def load_image(name: str, gray: bool = False) -> np.ndarray:
    """Load a chart or a bundled photo as ``uint8``.

    Charts are rendered at :data:`DEFAULT_CHART_SIZE` and are always gray ``(H, W)``. Photos
    keep their own size; RGB photos are ``(H, W, 3)`` unless ``gray`` is set, which converts
    them with the ITU-R BT.709 luma weights of :func:`skimage.color.rgb2gray`.

    Parameters
    ----------
    name : str
        One of :func:`available_images`.
    gray : bool
        Convert RGB photos to gray.

    Returns
    -------
    image : (H, W) or (H, W, 3) uint8 ndarray

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the known names).

    Examples
    --------
    >>> load_image("camera").shape, load_image("coffee", gray=True).shape
    ((512, 512), (400, 600))
    """
    image = np.ascontiguousarray(_entry(name).load())
    if gray and image.ndim == 3:
        image = skimage.util.img_as_ubyte(skimage.color.rgb2gray(image))
    return image


def center_crop(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The central ``size`` = (height, width) window of ``image`` (a view, not a copy).

    Raises
    ------
    ValueError
        If the image is smaller than ``size``.

    Examples
    --------
    >>> center_crop(np.zeros((10, 12)), (4, 4)).shape
    (4, 4)
    """
    height, width = _check_size(size, minimum=1)
    if image.ndim < 2 or image.shape[0] < height or image.shape[1] < width:
        raise ValueError(f"image of shape {image.shape} is smaller than the crop {size}; choose a smaller size")
    top = (image.shape[0] - height) // 2
    left = (image.shape[1] - width) // 2
    return image[top : top + height, left : left + width]


# --------------------------------------------------------------------------- degradation
def _scale_ratio(scale: float) -> Fraction:
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
        raise ValueError(f"scale must be a number, got {scale!r}")  # noqa: TRY004 - project-wide ValueError
    if not np.isfinite(scale) or scale < 1:
        raise ValueError(f"scale must be a finite number >= 1, got {scale!r}")
    ratio = Fraction(float(scale)).limit_denominator(_MAX_SCALE_DENOMINATOR)
    if abs(float(ratio) - float(scale)) > 1e-9:
        raise ValueError(
            f"scale {scale!r} is not a ratio p/q with q <= {_MAX_SCALE_DENOMINATOR}; "
            "use an integer or a short decimal such as 1.5, 1.7 or 2.5"
        )
    return ratio


def _box_weights(centers: np.ndarray, n_hr: int, scale: float, sigma: float) -> np.ndarray:
    # Area of HR pixel [j, j+1) inside the LR footprint [c - s/2, c + s/2), over s.
    j = np.arange(n_hr)[None, :]
    lo, hi = centers[:, None] - scale / 2.0, centers[:, None] + scale / 2.0
    return np.clip(np.minimum(j + 1.0, hi) - np.maximum(j, lo), 0.0, None) / scale


def _gaussian_weights(centers: np.ndarray, n_hr: int, scale: float, sigma: float) -> np.ndarray:
    # Gaussian mass over HR pixel [j, j+1) around the LR centre c (exact, via the normal CDF).
    edges = np.arange(n_hr + 1)[None, :] - centers[:, None]
    mass = np.diff(ndtr(edges / sigma), axis=1)
    return mass / mass.sum(axis=1, keepdims=True)  # mass outside the image is renormalized


_PSF_WEIGHTS: dict[str, Callable[[np.ndarray, int, float, float], np.ndarray]] = {
    "box": _box_weights,
    "gaussian": _gaussian_weights,
}


def _decimation_matrix(n_hr: int, n_lr: int, scale: float, psf: str, sigma: float) -> np.ndarray:
    centers = (np.arange(n_lr) + 0.5) * scale  # LR pixel centres in HR edge coordinates
    return _PSF_WEIGHTS[psf](centers, n_hr, scale, sigma)


def degrade(
    hr: np.ndarray,
    scale: float,
    psf: PSF = "box",
    noise_sigma: float = 0.0,
    seed: int = 0,
    *,
    psf_sigma: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Make a low-resolution (LR) image from a high-resolution (HR) one.

    The model is ``LR = sample(PSF * HR) + noise`` with the HR image taken as piecewise
    constant over unit pixel squares (pixel ``j`` covers ``[j, j+1)``):

    1. **Crop**: with ``scale = p / q`` in lowest terms, the HR image is cropped at the bottom
       and right to a multiple of ``p`` pixels per side, so the LR size ``H q / p`` is exact
       and LR pixel ``i`` is centred at ``(i + 0.5) * scale`` (the half-pixel convention of
       OpenCV, Pillow and :func:`srlab.resize`).
    2. **PSF and decimation**, separable along rows and columns:
       ``"box"`` averages the HR area under the LR pixel footprint
       ``[i * scale, (i + 1) * scale)`` (exact fractional coverage for non-integer scales; for
       an integer scale this is the plain block mean, i.e. ``cv2.INTER_AREA``).
       ``"gaussian"`` integrates a Gaussian of standard deviation ``psf_sigma`` HR pixels
       (default ``scale / 2``) centred on the LR pixel centre over each HR pixel; mass falling
       outside the image is renormalized away, so a constant image stays constant.
    3. **Noise**: i.i.d. Gaussian noise of standard deviation ``noise_sigma`` in units of the
       full range (``0.01`` is 2.55 grey levels for uint8), drawn from
       ``numpy.random.default_rng(seed)``.
    4. **Quantization**: integer images are clipped to their range and rounded to the nearest
       level; float images are neither clipped nor rounded.

    Parameters
    ----------
    hr : (H, W) or (H, W, C) ndarray
        uint8, uint16, float32 or float64 image; floats are taken to be in [0, 1].
    scale : float
        Downscaling factor >= 1: an integer or a ratio ``p / q`` with ``q <= 16`` (e.g. 1.7).
    psf : {"box", "gaussian"}
        Point spread function applied before sampling.
    noise_sigma : float
        Standard deviation of the added noise, >= 0, as a fraction of the full range.
    seed : int
        Seed of the noise generator.
    psf_sigma : float, optional
        Width of the Gaussian PSF in HR pixels (only with ``psf="gaussian"``).

    Returns
    -------
    lr : (h, w) or (h, w, C) ndarray
        The LR image, same dtype as ``hr``, ``h = H' / scale`` with ``H'`` the cropped height.
    hr_cropped : ndarray
        The cropped HR image (a view of ``hr``), the reference for scoring an upscaled ``lr``.

    Raises
    ------
    ValueError
        For an unsupported image, a scale that is not a short ratio >= 1, an image smaller
        than the scale, an unknown PSF, a ``psf_sigma`` given with the box PSF or not
        positive, or a negative ``noise_sigma``.

    Examples
    --------
    >>> hr = np.full((7, 9), 100, dtype=np.uint8)
    >>> lr, hr_c = degrade(hr, 2)
    >>> lr.shape, hr_c.shape, int(lr.min()), int(lr.max())
    ((3, 4), (6, 8), 100, 100)
    """
    hr = _check_image(hr)
    ratio = _scale_ratio(scale)
    if psf not in _PSF_WEIGHTS:
        raise ValueError(f"unknown psf {psf!r}; known: {', '.join(sorted(_PSF_WEIGHTS))}")
    sigma = _psf_sigma(psf, psf_sigma, float(ratio))
    if not np.isfinite(noise_sigma) or noise_sigma < 0:
        raise ValueError(f"noise_sigma must be a finite number >= 0, got {noise_sigma!r}")
    (lr_h, lr_w), (hr_h, hr_w) = _pair_sizes(hr.shape[:2], ratio, scale)
    hr_cropped = hr[:hr_h, :hr_w]
    rows = _decimation_matrix(hr_h, lr_h, float(ratio), psf, sigma)
    cols = _decimation_matrix(hr_w, lr_w, float(ratio), psf, sigma)
    unit = skimage.util.img_as_float64(hr_cropped)
    lr = np.einsum("ai,ij...,bj->ab...", rows, unit, cols, optimize=True)
    if noise_sigma > 0:
        lr = lr + np.random.default_rng(seed).normal(0.0, noise_sigma, size=lr.shape)
    if np.issubdtype(hr.dtype, np.integer):
        return _to_dtype(lr, hr.dtype), hr_cropped
    return lr.astype(hr.dtype, copy=False), hr_cropped


def _pair_sizes(size: tuple[int, int], ratio: Fraction, scale: float) -> tuple[tuple[int, int], tuple[int, int]]:
    p, q = ratio.numerator, ratio.denominator
    height, width = size
    if height < p or width < p:
        raise ValueError(
            f"image of size {height}x{width} is smaller than the scale {scale} needs "
            f"({p} pixels per side); use a larger image or a smaller scale"
        )
    hr = (height // p * p, width // p * p)
    return (hr[0] // p * q, hr[1] // p * q), hr


def pair_sizes(size: tuple[int, int], scale: float) -> tuple[tuple[int, int], tuple[int, int]]:
    """The LR size and the cropped HR size :func:`degrade` gives an image of ``size``.

    Parameters
    ----------
    size : (height, width)
        Size of the HR image.
    scale : float
        As in :func:`degrade`.

    Returns
    -------
    lr_size, hr_size : (height, width) tuples

    Raises
    ------
    ValueError
        For a scale :func:`degrade` refuses or an image smaller than the scale needs.

    Examples
    --------
    >>> pair_sizes((256, 300), 1.7)
    ((150, 170), (255, 289))
    """
    return _pair_sizes(tuple(int(v) for v in size), _scale_ratio(scale), scale)


def _psf_sigma(psf: str, psf_sigma: float | None, scale: float) -> float:
    if psf_sigma is None:
        return scale / 2.0
    if psf != "gaussian":
        raise ValueError(f"psf_sigma only applies to psf='gaussian', got psf={psf!r}")
    if not np.isfinite(psf_sigma) or psf_sigma <= 0:
        raise ValueError(f"psf_sigma must be a positive number of HR pixels, got {psf_sigma!r}")
    return float(psf_sigma)


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype.name not in _FROM_UNIT_FLOAT:
        raise ValueError(f"image dtype {image.dtype} is not supported; use one of {sorted(_FROM_UNIT_FLOAT)}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(f"image must be (H, W) or (H, W, C) with C in 1, 3, 4; got shape {image.shape}")
    if image.dtype.kind == "f" and not np.all(np.isfinite(image)):
        raise ValueError("image contains NaN or infinite values; clean it before degrading")
    return image
