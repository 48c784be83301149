"""What srlab accepts as an image size, an image and a crop window: one check each.

Every module of srlab that takes one of these goes through the check here, so a bad argument
gets the same message wherever it is passed.

Functions
---------
check_size
    A (height, width) pair of integers, each at least a minimum.
check_image
    An (H, W) or (H, W, C) image of a supported dtype, finite if float.
check_crop
    A (top, left, height, width) window inside an image.
to_dtype
    A float image in [0, 1] converted to a supported dtype (rounded, range-checked).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import skimage.util

__all__ = ["DType", "check_crop", "check_image", "check_size", "to_dtype"]

DType = Literal["uint8", "uint16", "float32", "float64"]

# Converters from a float image in [0, 1]; scikit-image rounds to nearest and checks the range.
_FROM_UNIT_FLOAT: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "uint8": skimage.util.img_as_ubyte,
    "uint16": skimage.util.img_as_uint,
    "float32": skimage.util.img_as_float32,
    "float64": skimage.util.img_as_float64,
}


def check_size(size: tuple[int, int], minimum: int = 8) -> tuple[int, int]:
    """``size`` as a (height, width) pair of ints, each at least ``minimum``.

    Raises
    ------
    ValueError
        If ``size`` is not a pair of integers >= ``minimum``.

    Examples
    --------
    >>> check_size((np.int64(16), 32))
    (16, 32)
    """
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be a (height, width) pair of integers, got {size!r}") from None
    if (height, width) != tuple(size) or height < minimum or width < minimum:
        raise ValueError(
            f"size must be a (height, width) pair of integers >= {minimum}, got {size!r}"
        )
    return height, width


def to_dtype(unit_image: np.ndarray, dtype: DType | str) -> np.ndarray:
    """A float image in [0, 1] (clipped to it) as ``dtype``; integers span their full range.

    Raises
    ------
    ValueError
        If ``dtype`` is not one of uint8, uint16, float32, float64.

    Examples
    --------
    >>> to_dtype(np.array([0.0, 0.5, 1.2]), "uint8").tolist()
    [0, 128, 255]
    """
    key = np.dtype(dtype).name
    if key not in _FROM_UNIT_FLOAT:
        raise ValueError(f"dtype {key!r} is not supported; use one of {sorted(_FROM_UNIT_FLOAT)}")
    return _FROM_UNIT_FLOAT[key](np.clip(unit_image, 0.0, 1.0))


def check_image(image: np.ndarray) -> np.ndarray:
    """``image`` as an ndarray if :func:`srlab.images.degrade` can take it.

    Parameters
    ----------
    image : (H, W) or (H, W, C) ndarray
        uint8, uint16, float32 or float64, with C in 1, 3, 4; floats must be finite.

    Returns
    -------
    image : ndarray

    Raises
    ------
    ValueError
        For another dtype, another shape, or a NaN or infinite value.

    Examples
    --------
    >>> check_image(np.zeros((4, 4, 3), np.uint8)).shape
    (4, 4, 3)
    """
    image = np.asarray(image)
    if image.dtype.name not in _FROM_UNIT_FLOAT:
        raise ValueError(
            f"image dtype {image.dtype} is not supported; use one of {sorted(_FROM_UNIT_FLOAT)}"
        )
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(
            f"image must be (H, W) or (H, W, C) with C in 1, 3, 4; got shape {image.shape}"
        )
    if image.dtype.kind == "f" and not np.all(np.isfinite(image)):
        raise ValueError("image contains NaN or infinite values; clean it before degrading")
    return image


def check_crop(crop: Sequence[int], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``crop`` as ints if the window (top, left, height, width) lies inside an image of ``shape``.

    Parameters
    ----------
    crop : (top, left, height, width)
        Window in pixels: integers (integer-valued floats pass), a non-empty area.
    shape : tuple of int
        Shape of the image, (H, W) or (H, W, C).

    Returns
    -------
    top, left, height, width : int

    Raises
    ------
    ValueError
        If ``crop`` is not four integers, or the window is empty or leaves the image.

    Examples
    --------
    >>> check_crop((2, 0, 4, 8.0), (10, 8))
    (2, 0, 4, 8)
    """
    try:
        given = tuple(crop)
        top, left, height, width = (int(v) for v in given)
    except (TypeError, ValueError):
        raise ValueError(
            f"crop must be (top, left, height, width) integers, got {crop!r}"
        ) from None
    if (top, left, height, width) != given:  # 1.5 would silently become 1
        raise ValueError(f"crop must be (top, left, height, width) integers, got {crop!r}")
    if (
        top < 0
        or left < 0
        or height < 1
        or width < 1
        or top + height > shape[0]
        or left + width > shape[1]
    ):
        raise ValueError(
            f"crop {given} (top, left, height, width) does not fit in the "
            f"{shape[0]}x{shape[1]} image; move it or make it smaller"
        )
    return top, left, height, width
