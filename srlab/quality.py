"""How well each kernel brings a degraded image back: PSNR and SSIM tables.

The experiment is the usual round trip of interpolation studies: a high-resolution (HR)
image is degraded to a low-resolution (LR) one with :func:`srlab.images.degrade`, resized
back to the HR size with each kernel, and scored against the HR image. OpenCV and Pillow,
with their own filters of the same names, are scored beside the project's kernels.

Functions
---------
kernel_quality_table
    Tidy table, one row per image x scale x method.
method_label, resolve_methods, reconstruct, make_pair
    The pieces the table (and the crop viewer of :mod:`srlab.viz`) is built from.
best_methods, mean_by_scale, peer_agreement, score_pivot
    Summaries of a table: the best method per image and scale, the mean per method and
    scale, how close peers are to the same kernel here, a methods x (image, scale) grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import skimage.util
from tqdm.auto import tqdm

from labcore.checks import check_choice
from labcore.registry import Registry
from srlab import peers as _peers
from srlab._resize import resize
from srlab.images import PSF, degrade, load_image
from srlab.kernels import Kernel, get_kernel
from srlab.metrics import psnr, ssim

__all__ = [
    "COLUMNS",
    "Method",
    "best_methods",
    "kernel_quality_table",
    "make_pair",
    "mean_by_scale",
    "method_label",
    "peer_agreement",
    "reconstruct",
    "resolve_methods",
    "score_pivot",
]

Family = Literal["ours", "opencv", "pillow"]
Metric = Literal["psnr", "ssim"]
KernelSpec = str | Kernel | tuple[str, Mapping[str, Any]]
BorderSpec = int | Literal["scale"]

#: Columns of :func:`kernel_quality_table`, in order.
COLUMNS = ("image", "scale", "method", "family", "psnr", "ssim")

# Each peer resizes (float image, (height, width), kernel name) -> image; its kernels are the
# ones it offers under srlab's names (see srlab.peers).
_PEERS: Registry[tuple[Callable[[np.ndarray, tuple[int, int], str], np.ndarray], Registry[Any]]] = (
    Registry("peer", plural="peers", sort=False)
)
_PEERS.add("opencv", (_peers.opencv_resize, _peers.OPENCV_FLAGS))
_PEERS.add("pillow", (_peers.pillow_resize, _peers.PILLOW_FILTERS))


@dataclass(frozen=True)
class Method:
    """One way of upscaling: a project kernel or a peer library's filter.

    Parameters
    ----------
    label : str
        Unique name in tables: ``"bicubic"``, ``"bicubic(a=-0.75)"``, ``"opencv:bicubic"``.
    family : {"ours", "opencv", "pillow"}
        Who computes it.
    kernel : Kernel
        The project kernel (for peers: the project kernel of the same name, used only for
        its name).
    params : dict
        Parameters given explicitly (part of the label).

    Raises
    ------
    ValueError
        If ``family`` is unknown.
    """

    label: str
    family: Family
    kernel: Kernel
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_choice(self.family, "family", ("ours", *_PEERS), plural="families")

    @property
    def fixed_scale(self) -> float | None:
        """The only scale the method works at (2 for fixed-phase kernels), else None."""
        return 2.0 if self.family == "ours" and self.kernel.phases is not None else None


def method_label(name: str, params: Mapping[str, Any] | None = None) -> str:
    """Table label of a kernel: its name, then the explicit parameters in brackets.

    Examples
    --------
    >>> method_label("bicubic"), method_label("bicubic", {"a": -0.75})
    ('bicubic', 'bicubic(a=-0.75)')
    """
    if not params:
        return name
    return f"{name}({', '.join(f'{k}={v:g}' if isinstance(v, float) else f'{k}={v}' for k, v in sorted(params.items()))})"


def _our_method(spec: KernelSpec) -> Method:
    if isinstance(spec, Kernel):
        defaults = get_kernel(spec.name).params if spec.name in _known_kernel_names() else {}
        explicit = {k: v for k, v in spec.params.items() if defaults.get(k) != v}
        return Method(method_label(spec.name, explicit), "ours", spec, explicit)
    if isinstance(spec, str):
        return Method(spec, "ours", get_kernel(spec))
    if (
        isinstance(spec, tuple)
        and len(spec) == 2
        and isinstance(spec[0], str)
        and isinstance(spec[1], Mapping)
    ):
        name, params = spec[0], dict(spec[1])
        return Method(method_label(name, params), "ours", get_kernel(name, **params), params)
    raise TypeError(
        f"kernel spec must be a name, a Kernel or a (name, params) pair such as "
        f"('bicubic', {{'a': -0.75}}), got {spec!r}"
    )


def _known_kernel_names() -> set[str]:
    from srlab.kernels import available_kernels

    return set(available_kernels())


def resolve_methods(
    kernels: Iterable[KernelSpec], peers: Iterable[str] = ("opencv", "pillow")
) -> list[Method]:
    """The methods a quality table scores, ours first, then each peer's.

    A peer contributes its filter for every name among ``kernels`` that it offers
    (OpenCV: nearest, bilinear, bicubic, lanczos4; Pillow: nearest, bilinear, bicubic,
    lanczos3), each once, in the order of ``kernels``.

    Parameters
    ----------
    kernels : iterable of str, Kernel or (name, params)
        Project kernels, e.g. ``["bilinear", ("bicubic", {"a": -0.75})]``.
    peers : iterable of {"opencv", "pillow"}
        Peer libraries to add.

    Returns
    -------
    list of Method

    Raises
    ------
    TypeError
        For a kernel spec that is not a name, a Kernel or a (name, params) pair.
    ValueError
        For an unknown kernel, kernel parameter or peer, no kernels, or two methods with
        the same label.

    Examples
    --------
    >>> [m.label for m in resolve_methods(["bicubic", ("bicubic", {"a": -0.75})], ["opencv"])]
    ['bicubic', 'bicubic(a=-0.75)', 'opencv:bicubic']
    """
    ours = [_our_method(spec) for spec in kernels]
    if not ours:
        raise ValueError("kernels is empty; give at least one kernel name, e.g. ['bicubic']")
    methods = list(ours)
    for peer in peers:
        offered = _PEERS.get(peer)[1]  # unknown: ValueError listing the known peers
        names = dict.fromkeys(m.kernel.name for m in ours if m.kernel.name in offered)
        methods += [Method(f"{peer}:{name}", peer, get_kernel(name)) for name in names]
    labels = [m.label for m in methods]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValueError(f"methods {duplicates} appear more than once; list each kernel once")
    return methods


def make_pair(
    image: str | np.ndarray,
    scale: float,
    *,
    psf: PSF = "box",
    noise_sigma: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """LR and HR images as float64 in [0, 1], ready to upscale and score.

    The HR image (a registry name or an array) is degraded in its own dtype with
    :func:`srlab.images.degrade`, so an 8-bit image gives an 8-bit LR image, as a sensor
    would; both are then converted to float64 in [0, 1].

    Parameters
    ----------
    image : str or ndarray
        A name from :func:`srlab.images.available_images` or an image array.
    scale, psf, noise_sigma, seed
        As in :func:`srlab.images.degrade`.

    Returns
    -------
    lr, hr : ndarray of float64

    Raises
    ------
    ValueError
        For an unknown image name or bad degradation parameters.

    Examples
    --------
    >>> lr, hr = make_pair("checkerboard", 2)
    >>> lr.shape, hr.shape, hr.dtype.name
    ((128, 128), (256, 256), 'float64')
    """
    hr = load_image(image) if isinstance(image, str) else np.asarray(image)
    lr, hr = degrade(hr, scale, psf=psf, noise_sigma=noise_sigma, seed=seed)
    return skimage.util.img_as_float64(lr), skimage.util.img_as_float64(hr)


def reconstruct(lr: np.ndarray, size: tuple[int, int], method: Method) -> np.ndarray:
    """Upscale ``lr`` to ``size`` = (height, width) with ``method``, in floating point.

    Project kernels use :func:`srlab.resize` (half-pixel centres, replicated border); peers
    use their library on the float image (OpenCV in float64, Pillow in float32 mode "F"), so
    no 8-bit rounding enters the comparison.

    Raises
    ------
    ValueError
        If a fixed-phase kernel is asked for a scale other than 2.
    """
    if method.family == "ours":
        return resize(lr, size=size, kernel=method.kernel)
    peer_resize = _PEERS[method.family][0]
    return peer_resize(lr, size, method.kernel.name).astype(np.float64)


def _border_pixels(border: BorderSpec, scale: float) -> int:
    if border == "scale":
        return math.ceil(scale)
    if isinstance(border, bool) or not isinstance(border, (int, np.integer)):
        raise TypeError(f"border must be 'scale' or an integer >= 0 pixels, got {border!r}")
    if border < 0:
        raise ValueError(f"border must be 'scale' or an integer >= 0 pixels, got {border!r}")
    return int(border)


def _image_items(
    images: Sequence[str] | Mapping[str, np.ndarray],
) -> list[tuple[str, str | np.ndarray]]:
    if isinstance(images, str):
        raise TypeError(
            f"images must be a list of names or a name -> array mapping, got the string {images!r}"
        )
    items = (
        list(images.items()) if isinstance(images, Mapping) else [(name, name) for name in images]
    )
    if not items:
        raise ValueError("images is empty; give at least one image name, e.g. ['camera']")
    return items


def kernel_quality_table(
    images: Sequence[str] | Mapping[str, np.ndarray],
    scales: Sequence[float],
    kernels: Sequence[KernelSpec],
    peers: Sequence[str] = ("opencv", "pillow"),
    border: BorderSpec = "scale",
    *,
    psf: PSF = "box",
    noise_sigma: float = 0.0,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """PSNR and SSIM of every method on every image at every scale.

    For each HR image and scale: :func:`make_pair` degrades it (``psf``, decimation by
    ``scale``, optional noise), every method upscales the LR image back to the HR size
    (:func:`reconstruct`), and the result is scored against the HR image with
    :func:`srlab.metrics.psnr` and :func:`srlab.metrics.ssim` (``data_range=1``, float, both
    after removing ``border`` pixels on each side). Fixed-phase kernels that only exist at
    scale 2 are left out at other scales: they get no row there.

    Parameters
    ----------
    images : sequence of str or mapping of str to ndarray
        Registry names, or arrays keyed by the name to show in the table.
    scales : sequence of float
        Scales accepted by :func:`srlab.images.degrade` (integers or short ratios like 1.7).
    kernels : sequence of str, Kernel or (name, params)
        Project kernels, e.g. ``["bicubic", ("bicubic", {"a": -0.75})]``.
    peers : sequence of {"opencv", "pillow"}
        Peer libraries scored with their filters of the same names (see :func:`resolve_methods`).
    border : int or "scale"
        Pixels cropped on each side before scoring; ``"scale"`` crops ``ceil(scale)``, the
        usual rule of SR papers.
    psf, noise_sigma, seed
        Degradation, as in :func:`srlab.images.degrade` (same seed for every image).
    progress : bool
        Show a tqdm progress bar over image x scale.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS` (image, scale, method, family, psnr, ssim); one row per
        image x scale x method, in the order images, scales, methods.

    Raises
    ------
    TypeError
        For ``images`` given as one string, a malformed kernel spec, or a border that is
        neither "scale" nor an integer.
    ValueError
        For empty images, scales or kernels, unknown names, or a negative border.

    Examples
    --------
    >>> t = kernel_quality_table(["gradient"], [2], ["bilinear"], peers=["opencv"], progress=False)
    >>> t[["method", "family"]].values.tolist()
    [['bilinear', 'ours'], ['opencv:bilinear', 'opencv']]
    """
    items = _image_items(images)
    scales = list(scales)
    if not scales:
        raise ValueError("scales is empty; give at least one scale, e.g. [2, 3]")
    for scale in scales:
        _border_pixels(border, float(scale))  # validate before the long loop
    methods = resolve_methods(kernels, peers)
    rows = []
    jobs = [(name, source, scale) for name, source in items for scale in scales]
    for name, source, scale in tqdm(jobs, desc="quality", disable=not progress):
        lr, hr = make_pair(source, scale, psf=psf, noise_sigma=noise_sigma, seed=seed)
        crop = _border_pixels(border, float(scale))
        for method in methods:
            if method.fixed_scale is not None and not math.isclose(scale, method.fixed_scale):
                continue
            out = reconstruct(lr, hr.shape[:2], method)
            rows.append(
                {
                    "image": name,
                    "scale": float(scale),
                    "method": method.label,
                    "family": method.family,
                    "psnr": psnr(hr, out, data_range=1.0, border=crop),
                    "ssim": ssim(hr, out, data_range=1.0, border=crop),
                }
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _check_table(table: pd.DataFrame, metric: str) -> None:
    missing = [c for c in ("image", "scale", "method", metric) if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks columns {missing}; pass the output of kernel_quality_table")
    if metric not in ("psnr", "ssim"):
        raise ValueError(f"metric must be 'psnr' or 'ssim', got {metric!r}")


def best_methods(
    table: pd.DataFrame, metric: Metric = "psnr", *, families: Sequence[Family] | None = None
) -> pd.DataFrame:
    """The best-scoring method for each image and scale.

    Ties go to the method listed first in ``table``.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`kernel_quality_table`.
    metric : {"psnr", "ssim"}
        Score to maximise.
    families : sequence of {"ours", "opencv", "pillow"}, optional
        Only consider these families (e.g. ``["ours"]`` for the best project kernel).

    Returns
    -------
    DataFrame
        Columns image, scale, method, family, ``metric``, and ``margin`` (how far ahead of the
        runner-up; NaN when there is none), one row per image x scale, in table order.

    Raises
    ------
    ValueError
        If the table lacks the needed columns, ``metric`` is unknown, or no row is left
        after the family filter.

    Examples
    --------
    >>> t = pd.DataFrame({"image": ["a", "a"], "scale": [2.0, 2.0], "method": ["x", "y"],
    ...                   "family": ["ours", "ours"], "psnr": [30.0, 31.5], "ssim": [0.9, 0.8]})
    >>> best_methods(t)[["method", "psnr", "margin"]].values.tolist()
    [['y', 31.5, 1.5]]
    """
    _check_table(table, metric)
    if families is not None:
        table = table[table["family"].isin(list(families))]
        if table.empty:
            raise ValueError(
                f"no rows of families {list(families)}; known families: ours, {', '.join(_PEERS)}"
            )
    rows = []
    for (image, scale), group in table.groupby(["image", "scale"], sort=False):
        ranked = group.sort_values(metric, ascending=False, kind="stable")
        top = ranked.iloc[0]
        margin = float(top[metric] - ranked.iloc[1][metric]) if len(ranked) > 1 else float("nan")
        rows.append(
            {
                "image": image,
                "scale": scale,
                "method": top["method"],
                "family": top.get("family"),
                metric: float(top[metric]),
                "margin": margin,
            }
        )
    return pd.DataFrame(rows)


def mean_by_scale(table: pd.DataFrame, metric: Metric = "psnr") -> pd.DataFrame:
    """Mean of one score over the images, methods down, scales across.

    Every method is averaged over the same images, so a column compares methods fairly;
    fixed-phase kernels have a value at scale 2 only. The table and ``metric`` are checked
    as :func:`score_pivot` checks them (ValueError).

    Examples
    --------
    >>> t = pd.DataFrame({"image": ["a", "b"], "scale": [2.0, 2.0], "method": ["x", "x"],
    ...                   "psnr": [30.0, 20.0]})
    >>> mean_by_scale(t).values.tolist()
    [[25.0]]
    """
    return _grid(table, metric, "scale")


# The project kernel each peer filter computes (srlab.peers documents the filters): OpenCV's
# INTER_CUBIC is Keys with a = -0.75, Pillow's BICUBIC Keys with a = -0.5; the rest share names.
_PEER_COUNTERPART = {"opencv:bicubic": "bicubic(a=-0.75)", "pillow:bicubic": "bicubic"}


def peer_agreement(table: pd.DataFrame, metric: Metric = "psnr") -> pd.DataFrame:
    """How far each peer row is from the project kernel that computes the same filter.

    Pairs every peer method with its counterpart (``opencv:bicubic`` with
    ``bicubic(a=-0.75)``, ``pillow:bicubic`` with ``bicubic``, otherwise the same name) when
    both are in the table, and reports the largest and the mean absolute score difference
    over the images and scales they share. Small differences remain where a peer treats the
    border differently (Pillow renormalizes instead of replicating).

    Parameters
    ----------
    table, metric
        The output of :func:`kernel_quality_table` and the score to compare, as for
        :func:`best_methods` (which also says when ValueError is raised).

    Returns
    -------
    DataFrame
        Columns peer, ours, max_abs_diff, mean_abs_diff; one row per pair, in table order.

    Examples
    --------
    >>> t = pd.DataFrame({"image": ["a", "a"], "scale": [2.0, 2.0], "method": ["bilinear", "opencv:bilinear"],
    ...                   "psnr": [30.0, 30.25]})
    >>> peer_agreement(t).values.tolist()
    [['opencv:bilinear', 'bilinear', 0.25, 0.25]]
    """
    grid = score_pivot(table, metric)
    rows = []
    for peer in grid.index:
        if ":" not in peer:
            continue
        ours = _PEER_COUNTERPART.get(peer, peer.split(":", 1)[1])
        if ours not in grid.index:
            continue
        diff = (grid.loc[peer] - grid.loc[ours]).abs().dropna()
        rows.append(
            {
                "peer": peer,
                "ours": ours,
                "max_abs_diff": float(diff.max()),
                "mean_abs_diff": float(diff.mean()),
            }
        )
    return pd.DataFrame(rows, columns=["peer", "ours", "max_abs_diff", "mean_abs_diff"])


def score_pivot(table: pd.DataFrame, metric: Metric = "psnr") -> pd.DataFrame:
    """A methods x (image, scale) grid of one score, methods and columns in table order.

    Missing cells (fixed-phase kernels at other scales) are NaN.

    Raises
    ------
    ValueError
        If the table lacks the needed columns or ``metric`` is unknown.

    Examples
    --------
    >>> t = pd.DataFrame({"image": ["a", "a"], "scale": [2.0, 3.0], "method": ["x", "x"],
    ...                   "psnr": [30.0, 27.0]})
    >>> score_pivot(t).values.tolist()
    [[30.0, 27.0]]
    """
    return _grid(table, metric, ["image", "scale"])


def _grid(table: pd.DataFrame, metric: str, columns: str | list[str]) -> pd.DataFrame:
    """Mean of ``metric`` per method (rows) and ``columns`` value, both in table order."""
    _check_table(table, metric)
    grid = table.pivot_table(
        index="method", columns=columns, values=metric, aggfunc="mean", sort=False
    )
    if isinstance(columns, str):
        order = pd.Index(dict.fromkeys(table[columns]), name=columns)
    else:
        order = pd.MultiIndex.from_tuples(
            list(dict.fromkeys(zip(*(table[c] for c in columns)))), names=columns
        )
    return grid.reindex(index=list(dict.fromkeys(table["method"])), columns=order)
