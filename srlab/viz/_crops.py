"""Crop comparisons: the same window of several images, and the crop explorer widget around them.

Panels are 8-bit RGB PNGs shown unsmoothed, so each pixel of an upscaled image is visible.
"""

from __future__ import annotations

import base64
import io
import math
import time
from collections.abc import Mapping, Sequence

import ipywidgets
import numpy as np
import PIL.Image
import plotly.graph_objects as go
import skimage.util
from IPython.display import display

from srlab.imagecheck import check_crop
from srlab.images import load_image, pair_sizes
from srlab.kernels import available_kernels
from srlab.metrics import psnr
from srlab.quality import KernelSpec, Method, make_pair, reconstruct, resolve_methods
from srlab.viz._layout import panel_row

__all__ = ["compare_crops", "crop_explorer", "crops_figure", "kernel_crops_figure"]


def _display_rgb(image: np.ndarray) -> np.ndarray:
    # go.Image wants 8-bit RGB; floats are taken to be in [0, 1] (overshoot clipped).
    if image.dtype.kind == "f":
        image = skimage.util.img_as_ubyte(np.clip(image, 0.0, 1.0))
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return image


def _png_source(rgb: np.ndarray) -> str:
    # A PNG data URI is about 10x smaller than `z` as nested JSON lists; large widget outputs
    # made headless notebook execution stall, and notebooks stay small.
    buffer = io.BytesIO()
    PIL.Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def crops_figure(
    images: Mapping[str, np.ndarray],
    crop: Sequence[int],
    *,
    title: str | None = None,
) -> go.Figure:
    """The same window of several same-size images, side by side, pixels shown unsmoothed.

    Parameters
    ----------
    images : mapping of str to ndarray
        Panel title -> image, all of one (H, W) size; uint8, or float in [0, 1].
    crop : (top, left, height, width)
        Window in pixels.
    title : str, optional
        Figure title.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``go.Image`` subplot per image (an 8-bit RGB PNG as ``source``).

    Raises
    ------
    ValueError
        If ``images`` is empty, the sizes differ, or the crop does not fit.

    Examples
    --------
    >>> img = np.zeros((20, 20), np.uint8)
    >>> len(crops_figure({"a": img, "b": img}, (0, 0, 8, 8)).data)
    2
    """
    if not images:
        raise ValueError("images is empty; give at least one title -> image pair")
    shapes = {name: img.shape[:2] for name, img in images.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"images must share one (height, width), got {shapes}")
    top, left, height, width = check_crop(crop, next(iter(shapes.values())))
    fig = panel_row(list(images), min_width=320, title=title)
    for col, image in enumerate(images.values(), start=1):
        window = _display_rgb(image[top : top + height, left : left + width])
        fig.add_trace(
            go.Image(source=_png_source(window), zsmooth=False, name=f"panel {col}"), row=1, col=col
        )
    return fig


def kernel_crops_figure(
    image_name: str,
    kernels: Sequence[KernelSpec],
    scale: float,
    crop: Sequence[int] = (64, 64, 96, 96),
    *,
    peers: Sequence[str] = (),
    psf: str = "box",
    noise_sigma: float = 0.0,
) -> go.Figure:
    """The same zoomed window of the HR image and of its upscaled LR version, per method.

    The HR image is degraded by ``scale`` (:func:`srlab.quality.make_pair`) and brought back
    to the HR size with each method (:func:`srlab.quality.resolve_methods`: the kernels, then
    the peers' filters of the same names). Each title gives the PSNR of the whole image
    (``ceil(scale)`` border pixels removed).

    Parameters
    ----------
    image_name : str
        A name from :func:`srlab.images.available_images`.
    kernels : sequence of str, Kernel or (name, params)
        Project kernels to show.
    scale : float
        Degradation and upscaling factor (see :func:`srlab.images.degrade`).
    crop : (top, left, height, width)
        Window in HR pixels.
    peers : sequence of {"opencv", "pillow"}
        Peer libraries to show beside the kernels.
    psf, noise_sigma
        Degradation, as in :func:`srlab.images.degrade`.

    Returns
    -------
    plotly.graph_objects.Figure
        Panels "HR", then one per method titled ``"<method> <psnr> dB"``.

    Raises
    ------
    ValueError
        For an unknown image, kernel or peer, a fixed-phase kernel at a scale other than 2,
        or a crop outside the image.

    Examples
    --------
    >>> fig = kernel_crops_figure("checkerboard", ["nearest", "lanczos3"], 2, crop=(0, 0, 32, 32))
    >>> [a.text.split(" ")[0] for a in fig.layout.annotations]
    ['HR', 'nearest', 'lanczos3']
    """
    return _method_crops(image_name, resolve_methods(kernels, peers), scale, crop, psf, noise_sigma)


def _method_crops(
    image_name: str,
    methods: Sequence[Method],
    scale: float,
    crop: Sequence[int],
    psf: str,
    noise_sigma: float,
) -> go.Figure:
    for method in methods:
        if method.fixed_scale is not None and not math.isclose(scale, method.fixed_scale):
            raise ValueError(
                f"kernel {method.label!r} only works at scale 2, got scale {scale}; "
                "pick scale 2 or a continuous kernel such as 'bicubic'"
            )
    lr, hr = make_pair(image_name, scale, psf=psf, noise_sigma=noise_sigma)
    check_crop(crop, hr.shape)
    border = math.ceil(scale)
    panels = {"HR": hr}
    for method in methods:
        out = reconstruct(lr, hr.shape[:2], method)
        panels[f"{method.label} {psnr(hr, out, data_range=1.0, border=border):.2f} dB"] = out
    return crops_figure(panels, crop, title=f"{image_name}, {scale:g}x, crop {tuple(crop)}")


def compare_crops(
    image_name: str,
    kernel: KernelSpec,
    scale: float,
    crop: Sequence[int] = (64, 64, 96, 96),
) -> go.Figure:
    """Crops for the kernel widget: HR, ``nearest`` (the LR pixels), the kernel, OpenCV's.

    :func:`kernel_crops_figure` with ``nearest`` and ``kernel`` (nearest once if that is the
    kernel) plus OpenCV's filter of the same name when it has one.

    Parameters
    ----------
    image_name : str
        A name from :func:`srlab.images.available_images`.
    kernel : str, Kernel or (name, params)
        The project kernel to show.
    scale : float
        Degradation and upscaling factor.
    crop : (top, left, height, width)
        Window in HR pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        As :func:`kernel_crops_figure`, which also says what raises ValueError.

    Examples
    --------
    >>> fig = compare_crops("checkerboard", "bilinear", 2, crop=(0, 0, 32, 32))
    >>> [a.text.split(" ")[0] for a in fig.layout.annotations]
    ['HR', 'nearest', 'bilinear', 'opencv:bilinear']
    """
    chosen, *peer = resolve_methods([kernel], peers=("opencv",))
    nearest = [] if chosen.label == "nearest" else resolve_methods(["nearest"], peers=())
    return _method_crops(image_name, [*nearest, chosen, *peer], scale, crop, "box", 0.0)


def crop_explorer(
    images: Sequence[str],
    kernels: Sequence[str] | None = None,
    scales: Sequence[float] = (2, 3, 1.7),
    crop_size: int = 96,
    *,
    settle_s: float = 1.0,
) -> ipywidgets.VBox:
    """An ipywidgets viewer of :func:`compare_crops`: image, kernel, scale and crop position.

    ``interactive_output`` around :func:`compare_crops`; the sliders set the top-left corner
    of a ``crop_size`` square window and only update on release (``continuous_update=False``).
    Their range fits every image at every scale, after :func:`srlab.images.degrade`'s crop.
    A kernel that does not exist at the chosen scale shows its error message in place of the
    figure.

    Parameters
    ----------
    images : sequence of str
        Names from :func:`srlab.images.available_images`.
    kernels : sequence of str, optional
        Kernel names; all registered kernels by default.
    scales : sequence of float
        Scales to offer.
    crop_size : int
        Side of the window in HR pixels, at least 8.
    settle_s : float
        Seconds to wait after the first figure is drawn, >= 0. Headless executors (nbclient,
        used by nbconvert and papermill) can hang forever when a cell ends while they still
        answer the output widget (jupyter/nbclient#312); the pause lets them finish first.

    Returns
    -------
    ipywidgets.VBox
        The controls over the output area; ``box.children[0].children`` and
        ``box.children[1].children`` hold the controls.

    Raises
    ------
    ValueError
        For an unknown image, empty ``images`` or ``scales``, a window larger than the
        smallest image, or a negative ``settle_s``.
    """
    if not images or not scales:
        raise ValueError("images and scales must be non-empty, e.g. images=['camera'], scales=[2]")
    if settle_s < 0:
        raise ValueError(f"settle_s must be >= 0 seconds, got {settle_s}")
    smallest = min(
        min(pair_sizes(load_image(name).shape[:2], scale)[1]) for name in images for scale in scales
    )
    if not 8 <= crop_size <= smallest:
        raise ValueError(
            f"crop_size must be between 8 and {smallest} pixels (the smallest HR image), got {crop_size}"
        )
    kernel_names = list(available_kernels() if kernels is None else kernels)
    slider = {"min": 0, "max": smallest - crop_size, "step": 2, "continuous_update": False}
    controls = {
        "image_name": ipywidgets.Dropdown(options=list(images), description="image"),
        "kernel": ipywidgets.Dropdown(
            options=kernel_names,
            value="bicubic" if "bicubic" in kernel_names else kernel_names[0],
            description="kernel",
        ),
        "scale": ipywidgets.Dropdown(options=list(scales), description="scale"),
        "top": ipywidgets.IntSlider(value=min(64, slider["max"]), description="top", **slider),
        "left": ipywidgets.IntSlider(value=min(64, slider["max"]), description="left", **slider),
    }

    def show(image_name: str, kernel: str, scale: float, top: int, left: int) -> None:
        try:
            display(compare_crops(image_name, kernel, scale, (top, left, crop_size, crop_size)))
        except ValueError as error:  # e.g. a 2x-only kernel at 3x: say why instead of a traceback
            print(error)

    output = ipywidgets.interactive_output(show, controls)
    time.sleep(settle_s)
    widgets = list(controls.values())
    return ipywidgets.VBox([ipywidgets.HBox(widgets[:3]), ipywidgets.HBox(widgets[3:]), output])
