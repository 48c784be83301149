"""OpenCV and Pillow resizing behind one signature, so tests, tables and benchmarks compare
srlab against the same peers.

Both take ``size = (height, width)`` as :func:`srlab.resize` does (OpenCV's own ``dsize`` is
``(width, height)``) and return an array of the input's shape convention and dtype.

Kernel names map to each library's own filter:

===========  ==========================  ==========================
srlab        OpenCV                      Pillow
===========  ==========================  ==========================
nearest      INTER_NEAREST_EXACT         NEAREST
bilinear     INTER_LINEAR                BILINEAR
bicubic      INTER_CUBIC (a = -0.75)     BICUBIC (a = -0.5)
lanczos3     (none)                      LANCZOS (3 lobes, 6 taps)
lanczos4     INTER_LANCZOS4 (8 taps)     (none)
area         INTER_AREA                  (none)
===========  ==========================  ==========================

OpenCV's plain INTER_NEAREST picks ``floor(x * in / out)``, half a pixel off the pixel-centre
convention; INTER_NEAREST_EXACT picks ``floor((x + 0.5) * in / out)`` (summed step by step in
float64) like Pillow and srlab. OpenCV has no 6-tap Lanczos, Pillow no 8-tap one and no area
averaging (its BOX filter weighs whole pixels): asking for them raises ``ValueError``.

Any number of channels is accepted and every channel is resized alike, as srlab does:
OpenCV beyond 4 channels is called on groups of at most 4 (its INTER_AREA takes no more),
and Pillow resizes uint8 images other than gray and RGB channel by channel in mode "L"
(its own RGBA mode would premultiply the colour by the alpha).
Both libraries sample at pixel centres (srlab's ``half_pixel``); OpenCV replicates the
border (srlab's ``border="replicate"``), Pillow drops the outside taps and renormalises
(``border="renormalize"``) and, when downscaling, widens the kernel (``antialias=True``).
"""

from __future__ import annotations

from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image

from labcore.registry import Registry
from srlab.imagecheck import check_image

__all__ = ["OPENCV_FLAGS", "PILLOW_FILTERS", "PeerKernel", "opencv_resize", "pillow_resize"]

PeerKernel = Literal["nearest", "bilinear", "bicubic", "lanczos3", "lanczos4", "area"]


def _table(library: str, entries: dict[str, Any]) -> Registry[Any]:
    table: Registry[Any] = Registry(f"{library} kernel", plural="kernels", sort=False)
    for name, flag in entries.items():
        table.add(name, flag)
    return table


#: The kernels OpenCV offers under srlab's names, and each one's interpolation flag.
OPENCV_FLAGS: Registry[int] = _table(
    "OpenCV",
    {
        "nearest": cv2.INTER_NEAREST_EXACT,
        "bilinear": cv2.INTER_LINEAR,
        "bicubic": cv2.INTER_CUBIC,
        "lanczos4": cv2.INTER_LANCZOS4,
        "area": cv2.INTER_AREA,
    },
)
#: The kernels Pillow offers under srlab's names, and each one's resampling filter.
PILLOW_FILTERS: Registry[Image.Resampling] = _table(
    "Pillow",
    {
        "nearest": Image.Resampling.NEAREST,
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
        "lanczos3": Image.Resampling.LANCZOS,
    },
)


_OPENCV_GROUP = 4  # channels per cv2.resize call beyond 4 channels


def _check(
    image: np.ndarray,
    size: tuple[int, int],
    kernel: str,
    table: Registry[Any],
    dtypes: tuple[str, ...] | None = None,
) -> tuple[int, int]:
    table.get(kernel)  # not a str: TypeError; not offered: ValueError listing the offered ones
    check_image(image, dtypes=dtypes, channels=None, min_side=1, finite=False)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (height, width) with positive integers, got {size!r}")
    return int(size[0]), int(size[1])


def opencv_resize(image: np.ndarray, size: tuple[int, int], kernel: PeerKernel) -> np.ndarray:
    """Resize with ``cv2.resize``.

    Parameters
    ----------
    image : (H, W) or (H, W, C) ndarray
        Any dtype OpenCV accepts (uint8, uint16, float32, float64), any number of channels.
    size : (height, width)
        Output size (passed to OpenCV as ``dsize=(width, height)``).
    kernel : {"nearest", "bilinear", "bicubic", "lanczos4", "area"}
        See the module table.

    Returns
    -------
    ndarray
        ``(height, width)`` or ``(height, width, C)``, dtype of ``image``.

    Raises
    ------
    ValueError
        For a kernel OpenCV does not have (e.g. ``lanczos3``) or a bad size.

    Examples
    --------
    >>> opencv_resize(np.zeros((4, 6), np.uint8), (8, 12), "bicubic").shape
    (8, 12)
    """
    height, width = _check(image, size, kernel, OPENCV_FLAGS)
    flag = OPENCV_FLAGS[kernel]
    if image.ndim == 3 and image.shape[2] > _OPENCV_GROUP:
        groups = [
            opencv_resize(image[..., c : c + _OPENCV_GROUP], size, kernel)
            for c in range(0, image.shape[2], _OPENCV_GROUP)
        ]
        return np.concatenate([g.reshape((height, width, -1)) for g in groups], axis=2)
    out = cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=flag)
    # OpenCV drops a trailing channel axis of length 1.
    return out.reshape((height, width) + image.shape[2:])


def pillow_resize(image: np.ndarray, size: tuple[int, int], kernel: PeerKernel) -> np.ndarray:
    """Resize with ``PIL.Image.resize``.

    uint8 gray and RGB go through Pillow's "L" and "RGB" modes (8-bit intermediate between
    the horizontal and vertical passes), other uint8 channel counts (RGBA included)
    channel by channel in mode "L"; float images are resized channel by channel in mode
    "F" (float32, no intermediate rounding) and returned in their dtype.

    Parameters
    ----------
    image : (H, W) or (H, W, C) ndarray
        uint8 or float, any number of channels.
    size, kernel
        As for :func:`opencv_resize` (Pillow is given the size as ``(width, height)``);
        the kernels are "nearest", "bilinear", "bicubic" and "lanczos3".

    Returns
    -------
    ndarray
        As for :func:`opencv_resize`.

    Raises
    ------
    ValueError
        For a kernel Pillow does not have (e.g. ``lanczos4``), a bad size, or a dtype
        other than uint8 and float.

    Examples
    --------
    >>> pillow_resize(np.zeros((4, 6, 3), np.uint8), (8, 12), "bilinear").shape
    (8, 12, 3)
    """
    height, width = _check(image, size, kernel, PILLOW_FILTERS, ("uint8", "float"))
    resample = PILLOW_FILTERS[kernel]
    if image.dtype == np.uint8 and (image.ndim == 2 or image.shape[2] == 3):
        out = np.asarray(
            Image.fromarray(np.ascontiguousarray(image)).resize((width, height), resample)
        )
        return out.reshape((height, width) + image.shape[2:])
    channels = image[..., None] if image.ndim == 2 else image
    work = np.uint8 if image.dtype == np.uint8 else np.float32  # modes "L" and "F"
    planes = []
    for c in range(channels.shape[2]):
        plane = Image.fromarray(np.ascontiguousarray(channels[..., c], dtype=work))
        planes.append(np.asarray(plane.resize((width, height), resample)))
    return np.stack(planes, axis=-1).reshape((height, width) + image.shape[2:]).astype(image.dtype)
