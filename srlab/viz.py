"""Figures and small tables for the interpolation-kernel study.

Every function returns data (a DataFrame) or a figure (``plotly.graph_objects.Figure``; the
heatmap is a matplotlib ``Figure``) and never shows it.

Functions
---------
Kernels
    :func:`kernel_shapes_figure`, :func:`frequency_response`, :func:`frequency_response_figure`,
    :func:`hardware_table`, :func:`hardware_figure`
Results
    :func:`crops_figure`, :func:`kernel_crops_figure`, :func:`compare_crops`,
    :func:`crop_explorer` (the widget),
    :func:`quality_figure`, :func:`quality_heatmap`
"""

from __future__ import annotations

import base64
import io
import math
import time
from collections.abc import Mapping, Sequence

import ipywidgets
import matplotlib.figure
import numpy as np
import pandas as pd
import PIL.Image
import plotly.express as px
import plotly.graph_objects as go
import seaborn as sns
import skimage.util
from IPython.display import display
from plotly.subplots import make_subplots

from srlab.imagecheck import check_crop
from srlab.images import load_image, pair_sizes
from srlab.kernels import available_kernels
from srlab.metrics import psnr
from srlab.quality import (
    KernelSpec,
    Method,
    Metric,
    make_pair,
    reconstruct,
    resolve_methods,
    score_pivot,
)

__all__ = [
    "DEFAULT_KERNELS",
    "compare_crops",
    "crop_explorer",
    "crops_figure",
    "frequency_response",
    "frequency_response_figure",
    "hardware_figure",
    "hardware_table",
    "kernel_crops_figure",
    "kernel_shapes_figure",
    "quality_figure",
    "quality_heatmap",
]

#: Kernels shown when a figure is given none.
DEFAULT_KERNELS: tuple[KernelSpec, ...] = (
    "nearest",
    "bilinear",
    "bicubic",
    ("bicubic", {"a": -0.75}),
    "lanczos2",
    "lanczos3",
    "pwl2",
    "pwl4",
    "pwl6",
)

# Integration step of the Fourier integral: 1/512 of a pixel puts a grid edge on every
# quarter position, where the piecewise kernels have their knots and the box its jumps.
_FT_STEP = 1.0 / 512
# Magnitudes below this floor (exact zeros of sinc-like responses) are shown at the floor.
_DB_FLOOR = -120.0


def _ours(kernels: Sequence[KernelSpec] | None) -> list[Method]:
    return resolve_methods(DEFAULT_KERNELS if kernels is None else kernels, peers=())


# --------------------------------------------------------------------------- kernel shapes
def kernel_shapes_figure(kernels: Sequence[KernelSpec] | None = None, *, num: int = 401) -> go.Figure:
    """Continuous profiles ``k(x)`` of several kernels over their support.

    Parameters
    ----------
    kernels : sequence of str, Kernel or (name, params), optional
        Defaults to :data:`DEFAULT_KERNELS`.
    num : int
        Points per curve, at least 11.

    Returns
    -------
    plotly.graph_objects.Figure
        One line per kernel, x = distance in input pixels.

    Raises
    ------
    ValueError
        For an unknown kernel or ``num < 11``.

    Examples
    --------
    >>> len(kernel_shapes_figure(["bilinear", "bicubic"]).data)
    2
    """
    if num < 11:
        raise ValueError(f"num must be at least 11 points, got {num}")
    methods = _ours(kernels)
    reach = max(m.kernel.support for m in methods)
    x = np.linspace(-reach, reach, num)
    fig = go.Figure([go.Scatter(x=x, y=m.kernel.profile(x), mode="lines", name=m.label) for m in methods])
    fig.update_layout(
        title="Kernel profiles",
        xaxis_title="distance from the output sample (input pixels)",
        yaxis_title="weight k(x)",
        template="plotly_white",
    )
    return fig


# --------------------------------------------------------------------------- frequency response
def frequency_response(
    kernels: Sequence[KernelSpec] | None = None,
    *,
    max_frequency: float = 1.0,
    num: int = 201,
) -> pd.DataFrame:
    """Magnitude of the continuous Fourier transform of each kernel profile.

    ``H(f) = integral k(x) exp(-2 pi i f x) dx`` over the support, by the midpoint rule with
    a step of 1/512 pixel (knots and jumps of the kernels fall on cell edges, so the error is
    below 1e-5). ``f`` is in cycles per input pixel: up to 0.5 (Nyquist) is the pass band an
    ideal interpolator keeps at 1; above it the kernel should be 0, and what it lets through
    there becomes imaging artefacts (jaggies, ringing replicas).

    Parameters
    ----------
    kernels : sequence of str, Kernel or (name, params), optional
        Defaults to :data:`DEFAULT_KERNELS`.
    max_frequency : float
        Highest frequency, cycles per pixel, > 0.
    num : int
        Frequencies from 0 to ``max_frequency``, at least 2.

    Returns
    -------
    DataFrame
        Columns kernel, frequency, magnitude, magnitude_db (``20 log10`` of the magnitude,
        floored at -120 dB); ``num`` rows per kernel.

    Raises
    ------
    ValueError
        For an unknown kernel, ``max_frequency <= 0`` or ``num < 2``.

    Examples
    --------
    >>> r = frequency_response(["nearest"], max_frequency=1.0, num=3)
    >>> r["magnitude"].round(4).tolist()  # |sinc(f)| at 0, 0.5, 1
    [1.0, 0.6366, 0.0]
    """
    if not (math.isfinite(max_frequency) and max_frequency > 0):
        raise ValueError(f"max_frequency must be a positive number of cycles per pixel, got {max_frequency}")
    if num < 2:
        raise ValueError(f"num must be at least 2 frequencies, got {num}")
    frequency = np.linspace(0.0, max_frequency, num)
    frames = []
    for method in _ours(kernels):
        support = method.kernel.support
        x = np.arange(-support + _FT_STEP / 2, support, _FT_STEP)
        k = method.kernel.profile(x)
        spectrum = np.exp(-2j * np.pi * frequency[:, None] * x[None, :]) @ k * _FT_STEP
        magnitude = np.abs(spectrum)
        with np.errstate(divide="ignore"):
            db = np.maximum(20.0 * np.log10(magnitude), _DB_FLOOR)
        frames.append(
            pd.DataFrame({"kernel": method.label, "frequency": frequency, "magnitude": magnitude, "magnitude_db": db})
        )
    return pd.concat(frames, ignore_index=True)


def frequency_response_figure(
    kernels: Sequence[KernelSpec] | None = None,
    *,
    max_frequency: float = 1.0,
    db: bool = True,
) -> go.Figure:
    """Frequency responses of :func:`frequency_response`, one line per kernel.

    Parameters
    ----------
    kernels : sequence of str, Kernel or (name, params), optional
        Defaults to :data:`DEFAULT_KERNELS`.
    max_frequency : float
        Highest frequency shown, cycles per pixel.
    db : bool
        Magnitude in dB (y axis from -60 dB) instead of linear.

    Returns
    -------
    plotly.graph_objects.Figure
        With a dotted line at Nyquist (0.5 cycles per pixel).

    Raises
    ------
    ValueError
        As :func:`frequency_response`.

    Examples
    --------
    >>> len(frequency_response_figure(["bilinear"]).data)
    1
    """
    table = frequency_response(kernels, max_frequency=max_frequency)
    column = "magnitude_db" if db else "magnitude"
    fig = go.Figure(
        [
            go.Scatter(x=group["frequency"], y=group[column], mode="lines", name=name)
            for name, group in table.groupby("kernel", sort=False)
        ]
    )
    fig.add_vline(x=0.5, line_dash="dot", annotation_text="Nyquist")
    fig.update_layout(
        title="Frequency response |K(f)|",
        xaxis_title="frequency (cycles per input pixel)",
        yaxis_title="magnitude (dB)" if db else "magnitude",
        template="plotly_white",
    )
    if db:
        fig.update_yaxes(range=[-60, 3])
    return fig


# --------------------------------------------------------------------------- hardware
def hardware_table(kernels: Sequence[KernelSpec] | None = None) -> pd.DataFrame:
    """Hardware cost of one output sample of a 1-D pass, one row per kernel.

    Parameters
    ----------
    kernels : sequence of str, Kernel or (name, params), optional
        Defaults to :data:`DEFAULT_KERNELS` plus the two fixed-phase 2x kernels.

    Returns
    -------
    DataFrame
        Columns kernel, taps (pixels read), multipliers, adders, shifts, notes.

    Raises
    ------
    ValueError
        For an unknown kernel.

    Examples
    --------
    >>> hardware_table(["shift_add_2x"])[["kernel", "multipliers"]].values.tolist()
    [['shift_add_2x', 0]]
    """
    if kernels is None:
        kernels = (*DEFAULT_KERNELS, "shift_add_2x", "shift_add_2x_opencv")
    rows = []
    for method in _ours(kernels):
        cost = method.kernel.hardware
        rows.append(
            {
                "kernel": method.label,
                "taps": cost.taps,
                "multipliers": cost.multipliers,
                "adders": cost.adders,
                "shifts": cost.shifts,
                "notes": cost.notes,
            }
        )
    return pd.DataFrame(rows, columns=["kernel", "taps", "multipliers", "adders", "shifts", "notes"])


def hardware_figure(table: pd.DataFrame) -> go.Figure:
    """Grouped bars of taps, multipliers, adders and shifts per kernel.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`hardware_table`.

    Returns
    -------
    plotly.graph_objects.Figure

    Raises
    ------
    ValueError
        If a needed column is missing.

    Examples
    --------
    >>> len(hardware_figure(hardware_table(["bilinear"])).data)
    4
    """
    counts = ["taps", "multipliers", "adders", "shifts"]
    missing = [c for c in ["kernel", *counts] if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks columns {missing}; pass the output of hardware_table")
    fig = go.Figure([go.Bar(x=table["kernel"], y=table[c], name=c) for c in counts])
    fig.update_layout(
        barmode="group",
        title="Arithmetic per output sample of a 1-D pass",
        yaxis_title="count",
        template="plotly_white",
    )
    return fig


# --------------------------------------------------------------------------- crops
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
    fig = make_subplots(rows=1, cols=len(images), subplot_titles=list(images), horizontal_spacing=0.02)
    for col, image in enumerate(images.values(), start=1):
        window = _display_rgb(image[top : top + height, left : left + width])
        fig.add_trace(go.Image(source=_png_source(window), zsmooth=False, name=f"panel {col}"), row=1, col=col)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(
        title=title,
        height=320,
        width=max(320, 260 * len(images)),
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
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
    image_name: str, methods: Sequence[Method], scale: float, crop: Sequence[int], psf: str, noise_sigma: float
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

    Raises
    ------
    ValueError
        As :func:`kernel_crops_figure`.

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
    smallest = min(min(pair_sizes(load_image(name).shape[:2], scale)[1]) for name in images for scale in scales)
    if not 8 <= crop_size <= smallest:
        raise ValueError(f"crop_size must be between 8 and {smallest} pixels (the smallest HR image), got {crop_size}")
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


# --------------------------------------------------------------------------- quality
def quality_figure(table: pd.DataFrame, metric: Metric = "psnr", *, baseline: str | None = None) -> go.Figure:
    """Bars of one score per image, methods side by side, one row of panels per scale.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`srlab.quality.kernel_quality_table`.
    metric : {"psnr", "ssim"}
        Score to plot.
    baseline : str, optional
        A method label; when given, bars show the gain over it on the same image and scale.

    Returns
    -------
    plotly.graph_objects.Figure

    Raises
    ------
    ValueError
        If the table lacks columns, the metric is unknown or the baseline is not a method.

    Examples
    --------
    >>> t = pd.DataFrame({"image": ["a", "a"], "scale": [2.0, 2.0], "method": ["x", "y"],
    ...                   "family": ["ours", "ours"], "psnr": [30.0, 31.0], "ssim": [0.9, 0.9]})
    >>> quality_figure(t, baseline="x").data[1].y.tolist()
    [1.0]
    """
    grid = score_pivot(table, metric)  # validates table and metric
    y_title = metric.upper() + (" (dB)" if metric == "psnr" else "")
    data = table[["image", "scale", "method", metric]].rename(columns={metric: "value"})
    if baseline is not None:
        if baseline not in grid.index:
            raise ValueError(f"baseline {baseline!r} is not a method of the table; methods: {', '.join(grid.index)}")
        keys = pd.MultiIndex.from_frame(data[["image", "scale"]])
        data = data.assign(value=data["value"].to_numpy() - grid.loc[baseline].reindex(keys).to_numpy())
        y_title = f"{y_title} gain over {baseline}"
    fig = px.bar(
        data,
        x="image",
        y="value",
        color="method",
        barmode="group",
        facet_row="scale",
        category_orders={"method": list(grid.index)},
        color_discrete_sequence=px.colors.qualitative.Alphabet,
        labels={"value": y_title},
    )
    fig.update_layout(
        title=f"{metric.upper()} per image and scale",
        template="plotly_white",
        height=280 * data["scale"].nunique() + 120,
    )
    return go.Figure(fig)


def quality_heatmap(table: pd.DataFrame, metric: Metric = "psnr", *, annotate: bool = True) -> matplotlib.figure.Figure:
    """Seaborn heatmap of one score: methods down, (image, scale) across.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`srlab.quality.kernel_quality_table`.
    metric : {"psnr", "ssim"}
        Score to show.
    annotate : bool
        Write the value in each cell.

    Returns
    -------
    matplotlib.figure.Figure
        Built without pyplot, so it is shown once when returned in a notebook.

    Raises
    ------
    ValueError
        If the table lacks columns or the metric is unknown.

    Examples
    --------
    >>> t = pd.DataFrame({"image": ["a"], "scale": [2.0], "method": ["x"], "psnr": [30.0]})
    >>> quality_heatmap(t).axes[0].get_ylabel()
    'method'
    """
    grid = score_pivot(table, metric)
    grid.columns = [f"{image} {scale:g}x" for image, scale in grid.columns]
    fig = matplotlib.figure.Figure(
        figsize=(1.0 + 0.75 * grid.shape[1], 1.5 + 0.35 * grid.shape[0]), layout="constrained"
    )
    ax = fig.add_subplot()
    sns.heatmap(
        grid,
        ax=ax,
        annot=annotate,
        fmt=".1f" if metric == "psnr" else ".3f",
        cmap="viridis",
        cbar_kws={"label": metric.upper() + (" (dB)" if metric == "psnr" else "")},
        annot_kws={"fontsize": 7},
    )
    ax.set_xlabel("image and scale")
    ax.set_ylabel("method")
    ax.set_title(f"{metric.upper()} of every method")
    return fig
