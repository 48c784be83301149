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
===========  ==========================  ==========================

OpenCV's plain INTER_NEAREST picks ``floor(x * in / out)``, half a pixel off the pixel-centre
convention; INTER_NEAREST_EXACT picks ``floor((x + 0.5) * in / out)`` like Pillow and srlab.
OpenCV has no 6-tap Lanczos, Pillow no 8-tap one: asking for them raises ``ValueError``.
Both libraries sample at pixel centres (srlab's ``half_pixel``); OpenCV replicates the
border (srlab's ``border="replicate"``), Pillow drops the outside taps and renormalises
(``border="renormalize"``) and, when downscaling, widens the kernel (``antialias=True``).
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from PIL import Image

__all__ = ["OPENCV_FLAGS", "PILLOW_FILTERS", "PeerKernel", "opencv_resize", "pillow_resize"]

PeerKernel = Literal["nearest", "bilinear", "bicubic", "lanczos3", "lanczos4"]

OPENCV_FLAGS: dict[str, int] = {
    "nearest": cv2.INTER_NEAREST_EXACT,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "lanczos4": cv2.INTER_LANCZOS4,
}
PILLOW_FILTERS: dict[str, Image.Resampling] = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos3": Image.Resampling.LANCZOS,
}


def _check(
    image: np.ndarray, size: tuple[int, int], kernel: str, table: dict, library: str
) -> tuple[int, int]:
    if kernel not in table:
        raise ValueError(f"{library} has no kernel {kernel!r}; it offers: {', '.join(table)}")
    if image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f"image must be a non-empty (H, W) or (H, W, C) array, got shape {image.shape}")
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (height, width) with positive integers, got {size!r}")
    return int(size[0]), int(size[1])


def opencv_resize(image: np.ndarray, size: tuple[int, int], kernel: PeerKernel) -> np.ndarray:
    """Resize with ``cv2.resize``.

    Parameters
    ----------
    image : (H, W) or (H, W, C) ndarray
        Any dtype OpenCV accepts (uint8, uint16, float32, float64).
    size : (height, width)
        Output size (passed to OpenCV as ``dsize=(width, height)``).
    kernel : {"nearest", "bilinear", "bicubic", "lanczos4"}
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
    height, width = _check(image, size, kernel, OPENCV_FLAGS, "OpenCV")
    out = cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=OPENCV_FLAGS[kernel])
    # OpenCV drops a trailing channel axis of length 1.
    return out.reshape((height, width) + image.shape[2:])


def pillow_resize(image: np.ndarray, size: tuple[int, int], kernel: PeerKernel) -> np.ndarray:
    """Resize with ``PIL.Image.resize``.

    uint8 gray and RGB go through Pillow's "L" and "RGB" modes (8-bit intermediate between
    the horizontal and vertical passes); float images are resized channel by channel in
    mode "F" (float32, no intermediate rounding) and returned in their dtype.

    Parameters
    ----------
    image : (H, W) or (H, W, C) ndarray
        uint8 (gray or RGB) or float.
    size : (height, width)
        Output size (passed to Pillow as ``(width, height)``).
    kernel : {"nearest", "bilinear", "bicubic", "lanczos3"}
        See the module table.

    Returns
    -------
    ndarray
        ``(height, width)`` or ``(height, width, C)``, dtype of ``image``.

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
    height, width = _check(image, size, kernel, PILLOW_FILTERS, "Pillow")
    resample = PILLOW_FILTERS[kernel]
    if image.dtype == np.uint8 and (image.ndim == 2 or image.shape[2] in (1, 3)):
        planar = image if image.ndim == 2 or image.shape[2] == 3 else image[..., 0]
        out = np.asarray(Image.fromarray(np.ascontiguousarray(planar)).resize((width, height), resample))
        return out.reshape((height, width) + image.shape[2:])
    if image.dtype.kind != "f":
        raise ValueError(f"pillow_resize supports uint8 and float images, got dtype {image.dtype}")
    channels = image[..., None] if image.ndim == 2 else image
    planes = []
    for c in range(channels.shape[2]):
        plane = Image.fromarray(np.ascontiguousarray(channels[..., c], dtype=np.float32))
        planes.append(np.asarray(plane.resize((width, height), resample)))
    return np.stack(planes, axis=-1).reshape((height, width) + image.shape[2:]).astype(image.dtype)
