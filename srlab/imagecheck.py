"""What srlab accepts as an image size, an image and a crop window: one check each.

Every module of srlab that takes one of these goes through the check here, so a bad argument
gets the same message wherever it is passed.

Functions
---------
check_size
    A (height, width) pair of integers, each at least a minimum.
check_image
    An (H, W) or (H, W, C) image of a supported dtype, finite if float; options say which
    dtypes and channel counts, and how small an image may be.
check_frames
    A stack of uint8 frames (n, H, W) or (n, H, W, C) of one size, as a simulation streams.
check_crop
    A (top, left, height, width) window inside an image.
to_dtype
    A float image in [0, 1] converted to a supported dtype (rounded, range-checked).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Collection, Sequence
from typing import Any, Literal

import numpy as np
import skimage.util

from labcore.registry import Registry

__all__ = [
    "IMAGE_DTYPES",
    "DType",
    "check_crop",
    "check_frames",
    "check_image",
    "check_size",
    "to_dtype",
    "to_unit",
]

DType = Literal["uint8", "uint16", "float32", "float64"]

# Converters from a float image in [0, 1]; scikit-image rounds to nearest and checks the range.
_FROM_UNIT_FLOAT: Registry[Callable[[np.ndarray], np.ndarray]] = Registry(
    "image dtype", plural="dtypes", sort=False
)
_FROM_UNIT_FLOAT.add("uint8", skimage.util.img_as_ubyte)
_FROM_UNIT_FLOAT.add("uint16", skimage.util.img_as_uint)
_FROM_UNIT_FLOAT.add("float32", skimage.util.img_as_float32)
_FROM_UNIT_FLOAT.add("float64", skimage.util.img_as_float64)

#: The dtypes srlab makes images in (:func:`to_dtype`) and :func:`srlab.images.degrade` takes.
IMAGE_DTYPES: tuple[str, ...] = _FROM_UNIT_FLOAT.names()


def check_size(size: tuple[int, int], minimum: int = 8) -> tuple[int, int]:
    """``size`` as a (height, width) pair of ints, each at least ``minimum``.

    Raises
    ------
    TypeError
        If ``size`` is not a sequence of numbers (e.g. a str or a single int).
    ValueError
        If ``size`` is not a pair of integers >= ``minimum``.

    Examples
    --------
    >>> check_size((np.int64(16), 32))
    (16, 32)
    >>> check_size("8")
    Traceback (most recent call last):
        ...
    TypeError: size must be a (height, width) pair of integers, got str '8'
    """
    if (
        isinstance(size, (str, bytes))
        or not isinstance(size, (Sequence, np.ndarray))
        or any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in size)
    ):
        raise TypeError(
            f"size must be a (height, width) pair of integers, got {type(size).__name__} {size!r}"
        )
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be a (height, width) pair of integers, got {size!r}") from None
    if (height, width) != tuple(size) or height < minimum or width < minimum:
        raise ValueError(
            f"size must be a (height, width) pair of integers >= {minimum}, got {size!r}"
        )
    return height, width


def to_unit(image: np.ndarray) -> np.ndarray:
    """An image as float64 in [0, 1]: integers divided by their dtype's maximum, floats as they are.

    Examples
    --------
    >>> to_unit(np.array([0, 51, 255], np.uint8)).tolist()
    [0.0, 0.2, 1.0]
    """
    image = np.asarray(image)
    out = image.astype(np.float64)
    return out / np.iinfo(image.dtype).max if image.dtype.kind in "ui" else out


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
    convert = _FROM_UNIT_FLOAT.get(np.dtype(dtype).name)  # unknown: ValueError listing them
    return convert(np.clip(unit_image, 0.0, 1.0))


def _dtype_text(dtypes: Collection[str]) -> str:
    # ("uint8", "uint16", "float") -> "uint8, uint16 or a float dtype"
    names = [("a float dtype" if d == "float" else d) for d in dtypes]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def check_image(
    image: Any,
    *,
    dtypes: Collection[str] | None = IMAGE_DTYPES,
    channels: Collection[int] | None = (1, 3, 4),
    min_side: int = 0,
    needed_by: str = "",
    dtype_hint: str = "",
    finite: bool = True,
    name: str = "image",
) -> np.ndarray:
    """``image`` as an ndarray if it is an image of the shape, size and dtype asked for.

    The defaults are what :func:`srlab.images.degrade` takes; :func:`srlab.resize`, the
    fixed-point datapath, the peers and the metrics pass their own options.

    Parameters
    ----------
    image : (H, W) or (H, W, C) array_like
        The image.
    dtypes : collection of str or None, default :data:`IMAGE_DTYPES`
        Accepted dtype names, in the order the message lists them; ``"float"`` stands for
        every float dtype. None accepts any dtype.
    channels : collection of int or None, default (1, 3, 4)
        Accepted channel counts ``C`` of a 3-D image; None accepts any.
    min_side : int, default 0
        Smallest height and width. From 1 up, an image without pixels is refused as empty.
    needed_by : str, optional
        What needs ``min_side`` pixels, for the message (e.g. "the 4-tap kernel 'bicubic'").
    dtype_hint : str, optional
        Appended to the message of an unsupported dtype, e.g. how to convert.
    finite : bool, default True
        Refuse NaN and infinite values in a float image.
    name : str, default "image"
        The argument's name, for the messages.

    Returns
    -------
    image : ndarray

    Raises
    ------
    TypeError
        If ``image`` is not an array of numbers (e.g. a str or a file name).
    ValueError
        For another shape (the message names the channels accepted), an empty or too
        small image, another dtype, or a NaN or infinite value.

    Examples
    --------
    >>> check_image(np.zeros((4, 4, 3), np.uint8)).shape
    (4, 4, 3)
    >>> check_image(np.zeros((4, 4), np.float16), dtypes=("uint8", "float")).dtype
    dtype('float16')
    >>> check_image(np.zeros((2, 8), np.uint8), min_side=4, needed_by="the 4-tap kernel")
    Traceback (most recent call last):
        ...
    ValueError: image of 2x8 pixels is smaller than the 4-tap kernel needs: at least 4x4 pixels
    """
    image = np.asarray(image)
    if image.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must be an image: a numeric (H, W) or (H, W, C) array, got "
            f"{type(image).__name__ if image.ndim else type(image.item()).__name__}"
        )
    if image.ndim not in (2, 3) or (
        image.ndim == 3 and channels is not None and image.shape[2] not in channels
    ):
        counts = "C channels" if channels is None else f"C in {', '.join(map(str, channels))}"
        raise ValueError(
            f"{name} must be 2-D (H, W) or 3-D (H, W, C) with {counts}, got shape {image.shape}"
        )
    if min_side >= 1 and image.size == 0:
        raise ValueError(f"{name} is empty (shape {image.shape}); give at least one pixel")
    height, width = image.shape[:2]
    if min(height, width) < min_side:
        needs = f"{needed_by} needs: at least " if needed_by else ""
        raise ValueError(
            f"{name} of {height}x{width} pixels is smaller than {needs}{min_side}x{min_side} pixels"
        )
    if (
        dtypes is not None
        and image.dtype.name not in dtypes
        and not ("float" in dtypes and image.dtype.kind == "f")
    ):
        raise ValueError(
            f"{name} dtype {image.dtype} is not supported; use {_dtype_text(dtypes)}{dtype_hint}"
        )
    if finite and image.dtype.kind == "f" and not np.isfinite(image).all():
        what = "NaN" if np.isnan(image).any() else "infinite"
        raise ValueError(f"{name} contains {what} values; replace them first (e.g. np.nan_to_num)")
    return image


def check_frames(
    frames: Any, shape: tuple[int, int, int] | None = None, *, needed_by: str = ""
) -> np.ndarray:
    """``frames`` as an ndarray if it is a stack of n >= 1 uint8 frames of one size.

    Parameters
    ----------
    frames : (n, H, W) or (n, H, W, C) array_like of uint8
        The frames.
    shape : (H, W, C), optional
        The frame size required (a C of 1 also accepts 3-D frames).
    needed_by : str, optional
        What requires ``shape``, for the message (e.g. ``"this design"``).

    Returns
    -------
    frames : ndarray
        Unchanged in shape.

    Raises
    ------
    TypeError
        If ``frames`` is not an array of numbers (e.g. a str).
    ValueError
        Another dtype or number of axes, no frame, or a size other than ``shape``.

    Examples
    --------
    >>> check_frames(np.zeros((2, 4, 6), np.uint8), (4, 6, 1)).shape
    (2, 4, 6)
    >>> check_frames(np.zeros((4, 6), np.uint8))
    Traceback (most recent call last):
        ...
    ValueError: frames must be uint8 of shape (n, H, W) or (n, H, W, C) with n >= 1 (a single frame needs a leading axis: frames[None]), got uint8 (4, 6)
    """
    frames = np.asarray(frames)
    if frames.dtype.kind not in "biuf":
        raise TypeError(
            "frames must be a uint8 array (n, H, W) or (n, H, W, C), got "
            f"{type(frames).__name__ if frames.ndim else type(frames.item()).__name__}"
        )
    wanted = "(n, H, W) or (n, H, W, C)" if shape is None else f"(n, {', '.join(map(str, shape))})"
    size = frames.shape[1:] if frames.ndim == 4 else frames.shape[1:] + (1,)
    if (
        frames.dtype != np.uint8
        or frames.ndim not in (3, 4)
        or not len(frames)
        or (shape is not None and size != tuple(shape))
    ):
        context = f" for {needed_by}" if needed_by else ""
        raise ValueError(
            f"frames must be uint8 of shape {wanted} with n >= 1{context} (a single frame needs "
            f"a leading axis: frames[None]), got {frames.dtype} {frames.shape}"
        )
    return frames


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
