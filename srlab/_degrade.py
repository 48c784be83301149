"""The LR/HR degradation model: crop, PSF, decimation and noise; and the HR reference crops.

Re-exported by :mod:`srlab.images`.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Literal

import numpy as np
import skimage.util
from scipy.special import ndtr

from labcore.registry import Registry
from srlab.imagecheck import check_image, check_size, to_dtype

__all__ = ["PSF", "center_crop", "degrade", "pair_sizes"]

PSF = Literal["box", "gaussian"]

# Largest denominator accepted for a non-integer scale (1.7 = 17/10 needs 10).
_MAX_SCALE_DENOMINATOR = 16


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
    height, width = check_size(size, minimum=1)
    if image.ndim < 2 or image.shape[0] < height or image.shape[1] < width:
        raise ValueError(
            f"image of shape {image.shape} is smaller than the crop {size}; choose a smaller size"
        )
    top = (image.shape[0] - height) // 2
    left = (image.shape[1] - width) // 2
    return image[top : top + height, left : left + width]


def _scale_ratio(scale: float) -> Fraction:
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
        raise TypeError(f"scale must be a number, got {scale!r}")
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


# Point-spread functions by name: (LR centres, HR size, scale, sigma) -> decimation rows.
_PSF_WEIGHTS: Registry[Callable[[np.ndarray, int, float, float], np.ndarray]] = Registry("psf")
_PSF_WEIGHTS.add("box", _box_weights)
_PSF_WEIGHTS.add("gaussian", _gaussian_weights)


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
    TypeError
        If ``scale`` is not a number.
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
    hr = check_image(hr)
    ratio = _scale_ratio(scale)
    _PSF_WEIGHTS.get(psf)  # a name that is not a str: TypeError; unknown: ValueError
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
        return to_dtype(lr, hr.dtype), hr_cropped
    return lr.astype(hr.dtype, copy=False), hr_cropped


def _pair_sizes(
    size: tuple[int, int], ratio: Fraction, scale: float
) -> tuple[tuple[int, int], tuple[int, int]]:
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
    TypeError
        If ``scale`` is not a number.
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
