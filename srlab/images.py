"""Test images: synthetic charts, bundled real photos, and LR/HR pairs.

Charts are continuous patterns integrated over each pixel's area (a box sensor with fill
factor one), so they are free of the aliasing that point-sampling a sharp pattern adds.
Photos are the ones scikit-image ships inside its wheel; none of them needs a download.

Functions
---------
Charts
    :func:`zone_plate`, :func:`slanted_edge`, :func:`checkerboard`, :func:`bars`,
    :func:`text_chart`, :func:`gradient` (``_charts``)
Registry
    :func:`available_images`, :func:`load_image`, :func:`image_kind` (here)
Pairs
    :func:`degrade` (PSF, decimation, noise), :func:`pair_sizes`, :func:`center_crop`
    (``_degrade``)

The checks of sizes and images these share are in :mod:`srlab.imagecheck`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import skimage.color
import skimage.data
import skimage.util

from labcore.registry import Registry
from srlab._charts import (
    DEFAULT_CHART_SIZE,
    bars,
    checkerboard,
    gradient,
    slanted_edge,
    text_chart,
    zone_plate,
)
from srlab._degrade import PSF, center_crop, degrade, pair_sizes  # noqa: F401 - PSF: importers' type alias
from srlab.imagecheck import DType  # noqa: F401 - the dtype alias, importable from here as before

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

ImageKind = Literal["chart", "photo"]


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

_REGISTRY: Registry[_ImageEntry] = Registry("image", plural="images")
for _name, (_fn, _text) in _CHARTS.items():
    _REGISTRY.add(_name, _ImageEntry("chart", _chart(_fn), _text))
for _name, _text in _PHOTOS.items():
    _REGISTRY.add(_name, _ImageEntry("photo", getattr(skimage.data, _name), _text))


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
    if not isinstance(name, str):
        raise TypeError(
            f"image name must be a str such as 'camera', got {type(name).__name__}; "
            "pass an array where a function takes images themselves"
        )
    return _REGISTRY.get(name)


def image_kind(name: str) -> ImageKind:
    """Whether ``name`` is a synthetic ``"chart"`` or a real ``"photo"``.

    Raises
    ------
    TypeError
        If ``name`` is not a string.
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
    TypeError
        If ``name`` is not a string.
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
