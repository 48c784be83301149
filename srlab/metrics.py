"""Image quality metrics: PSNR and SSIM with an explicit data range and an optional border.

Both wrap :mod:`skimage.metrics` and add the two rules SR evaluations depend on:

* **Data range.** Float images carry no range of their own (``[0, 1]`` and ``[0, 255]`` are both
  common), so ``data_range`` is required for them. For ``uint8`` images it defaults to 255; any
  other integer type, or a mix of types, must name it as well.
* **Border.** Super-resolution papers crop ``scale`` pixels from every side before scoring,
  because borders depend on the padding rule rather than on the kernel. ``border=k`` removes
  ``k`` pixels on each side of both spatial axes.

SSIM follows Wang et al. (2004): an 11x11 Gaussian window of sigma 1.5, population covariances
(``use_sample_covariance=False``), ``K1 = 0.01``, ``K2 = 0.03``; RGB images are scored per
channel and averaged.
"""

from __future__ import annotations

import numpy as np
import skimage.metrics

from srlab.imagecheck import check_image

__all__ = ["psnr", "resolve_data_range", "ssim"]

# Wang et al. (2004): Gaussian window sigma 1.5, truncated at 3.5 sigma -> 11x11.
_SSIM_SIGMA = 1.5
_SSIM_WINDOW = 2 * int(3.5 * _SSIM_SIGMA + 0.5) + 1


def resolve_data_range(reference: np.ndarray, test: np.ndarray, data_range: float | None) -> float:
    """The data range used to score ``test`` against ``reference``.

    Rule: an explicit ``data_range`` always wins (it must be positive and finite); without one,
    two ``uint8`` images use 255 and anything else is an error.

    Parameters
    ----------
    reference, test : ndarray
        The two images.
    data_range : float or None
        Distance between the smallest and largest possible pixel value.

    Returns
    -------
    data_range : float

    Raises
    ------
    TypeError
        If ``data_range`` is not a number (a bool is not one).
    ValueError
        If ``data_range`` is missing for non-``uint8`` input, or not a positive finite number.

    Examples
    --------
    >>> resolve_data_range(np.zeros(2, np.uint8), np.zeros(2, np.uint8), None)
    255.0
    """
    if data_range is None:
        if reference.dtype == np.uint8 and test.dtype == np.uint8:
            return 255.0
        raise ValueError(
            f"data_range is required for {reference.dtype}/{test.dtype} images (it is inferred "
            "as 255 only when both are uint8): pass data_range=1.0 for images in [0, 1] or "
            "data_range=255 for images in [0, 255]"
        )
    message = f"data_range must be a positive finite number, got {data_range!r}"
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float, np.number)):
        raise TypeError(message)
    if not np.isfinite(data_range) or data_range <= 0:
        raise ValueError(message)
    return float(data_range)


def _prepare(reference: np.ndarray, test: np.ndarray, border: int) -> tuple[np.ndarray, np.ndarray]:
    reference, test = (
        check_image(image, dtypes=None, channels=None, finite=False, name="images")
        for image in (reference, test)
    )
    if reference.shape != test.shape:
        raise ValueError(
            f"reference and test must have the same shape, got {reference.shape} and "
            f"{test.shape}; resize or crop one of them first"
        )
    message = f"border must be an integer >= 0 pixels, got {border!r}"
    if isinstance(border, bool) or not isinstance(border, (int, float, np.number)):
        raise TypeError(message)
    if int(border) != border or border < 0:
        raise ValueError(message)
    border = int(border)
    if 2 * border >= min(reference.shape[:2]):
        raise ValueError(
            f"border={border} removes the whole {reference.shape[0]}x{reference.shape[1]} image; use a smaller border"
        )
    if border:
        reference = reference[border:-border, border:-border]
        test = test[border:-border, border:-border]
    return reference, test


def psnr(
    reference: np.ndarray,
    test: np.ndarray,
    data_range: float | None = None,
    *,
    border: int = 0,
) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range**2 / MSE)``.

    The MSE is the mean over every pixel and channel left after the border crop. Identical
    images give ``inf``.

    Parameters
    ----------
    reference, test : (H, W) or (H, W, C) ndarray
        Ground truth and estimate, same shape.
    data_range : float, optional
        Required unless both images are ``uint8`` (then 255); see :func:`resolve_data_range`.
    border : int
        Pixels removed on each side of both spatial axes before scoring.

    Returns
    -------
    psnr : float

    Raises
    ------
    TypeError
        If an image is not an array of numbers, or ``data_range`` or ``border`` not a number.
    ValueError
        For a shape mismatch, a missing or bad ``data_range``, or a bad ``border``.

    Examples
    --------
    >>> ref = np.zeros((4, 4))
    >>> round(psnr(ref, ref + 0.1, data_range=1.0), 6)
    20.0
    """
    reference, test = _prepare(reference, test, border)
    rng = resolve_data_range(reference, test, data_range)
    with np.errstate(divide="ignore"):  # MSE 0 -> inf dB, as for identical images
        return float(
            skimage.metrics.peak_signal_noise_ratio(
                reference.astype(np.float64), test.astype(np.float64), data_range=rng
            )
        )


def ssim(
    reference: np.ndarray,
    test: np.ndarray,
    data_range: float | None = None,
    *,
    border: int = 0,
) -> float:
    """Structural similarity (Wang et al. 2004), in [-1, 1]; 1 means identical.

    Gaussian-weighted 11x11 window of sigma 1.5, population covariances, mean over the image;
    for ``(H, W, C)`` input the mean over channels.

    Parameters
    ----------
    reference, test, data_range, border
        As for :func:`psnr`; the images at least 11x11 after the border crop.

    Returns
    -------
    ssim : float

    Raises
    ------
    TypeError
        As :func:`psnr`.
    ValueError
        As :func:`psnr`, or for images smaller than the 11x11 window after the border crop.

    Examples
    --------
    >>> img = np.linspace(0, 1, 256).reshape(16, 16)
    >>> ssim(img, img, data_range=1.0)
    1.0
    """
    reference, test = _prepare(reference, test, border)
    rng = resolve_data_range(reference, test, data_range)
    if min(reference.shape[:2]) < _SSIM_WINDOW:
        raise ValueError(
            f"ssim needs images of at least {_SSIM_WINDOW}x{_SSIM_WINDOW} pixels after the "
            f"border crop, got {reference.shape[0]}x{reference.shape[1]}; use a larger image "
            "or a smaller border"
        )
    return float(
        skimage.metrics.structural_similarity(
            reference.astype(np.float64),
            test.astype(np.float64),
            data_range=rng,
            gaussian_weights=True,
            sigma=_SSIM_SIGMA,
            use_sample_covariance=False,
            channel_axis=-1 if reference.ndim == 3 else None,
        )
    )
