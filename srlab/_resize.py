"""Separable image resizing with any registered kernel, in vectorized NumPy and OpenCV.

How it works
------------
Resizing is linear and separable: ``out = Wy @ image @ Wx.T`` per channel, where each row
of ``Wy`` (``Wx``) holds the few kernel weights of one output row (column). For each axis
a small table is precomputed once per geometry (cached): the input coordinate ``u`` of
every output sample, its tap indices and weights, the border rule folded into them. Three
paths then compute the same sums:

* Integer upscaling factors (2x, 3x, ... on both axes, half-pixel centres): every output
  phase is a fixed short kernel, so the resize is a few separable filters of the input by
  ``cv2.sepFilter2D`` with srlab's weights, interleaved into the output by ``cv2.merge``
  (:mod:`srlab.polyphase` says why; it is the fast path of 960x540 -> 1920x1080).
* An axis whose every output copies one input pixel (``nearest``; any kernel at scale 1;
  ``area`` at integer upscaling) is a gather: exact, no arithmetic.
* Otherwise the table is cut into blocks of consecutive output samples; a block reads a
  narrow band of input rows, so its weights form a small dense matrix and the block is one
  BLAS matrix product. The horizontal pass multiplies the ``(rows, width * channels)``
  image from the right by ``kron(block.T, eye(channels))``, so RGB stays interleaved and no
  transpose is needed (beyond 4 channels the image is transposed instead); the vertical
  pass multiplies row bands from the left and, for integer images, rounds and clips each
  band while it is still in cache (:mod:`srlab._separable` holds the band matrices and the
  passes). The pass on the smaller number of rows goes first.
  No Python loop runs over pixels; loops run over blocks.

Conventions
-----------
``half_pixel`` (OpenCV, Pillow, PyTorch ``align_corners=False``): pixel centres sit at
``i + 0.5``, so output ``x`` samples input ``u = (x + 0.5) / s - 0.5``.
``align_corners`` (PyTorch ``align_corners=True``): the corner pixel centres coincide,
``u = x * (in - 1) / (out - 1)``.

When ``scale`` is given, ``s`` is that scale exactly, as OpenCV does for ``fx``/``fy``
(``cv2.resize(img, None, fx=s, fy=s)`` maps with ``1 / fx`` while its output width is
``round(width * fx)``); when ``size`` is given, ``s = out / in`` exactly, as OpenCV does for
``dsize`` and Pillow always does. For ``width * s`` not an integer the two differ. The
``nearest`` kernel is the exception: OpenCV's INTER_NEAREST_EXACT maps by the two sizes
even when given ``fx``/``fy``, and so does srlab (see :func:`resize`).

Borders
-------
``replicate``  ``aaa|abcd|ddd`` (OpenCV BORDER_REPLICATE; what OpenCV's resize does)
``reflect``    ``cb|abcd|cb``, the edge pixel not repeated (OpenCV BORDER_REFLECT_101,
               NumPy ``np.pad(mode="reflect")``)
``constant``   pixels outside are ``cval`` (OpenCV BORDER_CONSTANT)
``renormalize`` taps outside the image are dropped and the remaining weights rescaled to
               add up to one (what Pillow's resize does)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import numpy as np

from labcore.registry import Registry
from srlab import polyphase
from srlab._area import area_table, area_uses_footprints, nearest_index
from srlab._separable import (
    BLOCK_ROWS,
    AxisPlan,
    band_plan,
    check_scale,
    geometry,
    horizontal,
    horizontal_transposed,
    vertical,
)
from srlab.imagecheck import check_image
from srlab.kernels import Kernel, get_kernel

__all__ = ["Border", "Convention", "available_borders", "available_conventions", "resize"]

Convention = Literal["half_pixel", "align_corners"]
Border = Literal["replicate", "reflect", "constant", "renormalize"]

_PLAN_CACHE_SIZE = 64
# Up to this many channels the horizontal pass uses kron(block.T, eye(C)), C times the
# arithmetic of one channel; beyond it transposing the image costs less.
_KRON_MAX_CHANNELS = 4


# --------------------------------------------------------------------------- conventions

# Each maps (n_in, n_out, in_per_out) to the input coordinate of every output sample, where
# in_per_out is the number of input pixels per output pixel (1 / scale).
_CONVENTIONS: Registry[Callable[[int, int, float], np.ndarray]] = Registry(
    "convention", plural="conventions"
)
_CONVENTIONS.add(
    "half_pixel", lambda n_in, n_out, in_per_out: (np.arange(n_out) + 0.5) * in_per_out - 0.5
)
_CONVENTIONS.add(
    "align_corners",
    lambda n_in, n_out, in_per_out: (
        np.arange(n_out) * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(1)
    ),
)


def available_conventions() -> list[str]:
    """Names of the coordinate conventions, sorted (see the module notes).

    Returns
    -------
    list of str

    Examples
    --------
    >>> available_conventions(), available_borders()
    (['align_corners', 'half_pixel'], ['constant', 'reflect', 'renormalize', 'replicate'])
    """
    return list(_CONVENTIONS.names())


# --------------------------------------------------------------------------- borders

# Each maps (idx, w, n_in) -> (idx inside [0, n_in), weights, weight of the pixels that
# fall outside and take the constant value) for (n_out, taps) tables.
BorderRule = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _replicate(idx: np.ndarray, w: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.clip(idx, 0, n - 1), w, np.zeros(len(w))


def _reflect101(
    idx: np.ndarray, w: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if n == 1:
        return np.zeros_like(idx), w, np.zeros(len(w))
    period = 2 * n - 2
    m = np.mod(idx, period)
    return np.where(m >= n, period - m, m), w, np.zeros(len(w))


def _constant(idx: np.ndarray, w: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    inside = (idx >= 0) & (idx < n)
    outside = np.where(inside, 0.0, w).sum(axis=1)
    return np.clip(idx, 0, n - 1), np.where(inside, w, 0.0), outside


def _renormalize(
    idx: np.ndarray, w: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    inside = (idx >= 0) & (idx < n)
    w = np.where(inside, w, 0.0)
    total = w.sum(axis=1, keepdims=True)
    total = np.where(np.abs(total) < 1e-12, 1.0, total)
    return np.clip(idx, 0, n - 1), w / total, np.zeros(len(w))


_BORDERS: Registry[BorderRule] = Registry("border", plural="borders")
for _name, _rule in (
    ("replicate", _replicate),
    ("reflect", _reflect101),
    ("constant", _constant),
    ("renormalize", _renormalize),
):
    _BORDERS.add(_name, _rule)


def available_borders() -> list[str]:
    """Names of the border rules, sorted (see the module notes), as :func:`available_conventions`."""
    return list(_BORDERS.names())


# --------------------------------------------------------------------------- per-axis plan


def _tap_table(u: np.ndarray, kernel: Kernel, stretch: float) -> tuple[np.ndarray, np.ndarray]:
    """Tap indices and weights, (n_out, taps), for samples at input coordinates ``u``."""
    if stretch == 1.0:
        i0 = np.floor(u)
        t = u - i0
        wrapped = t >= 1.0  # u just below an integer can round t up to 1.0
        i0 = np.where(wrapped, i0 + 1, i0)
        t = np.where(wrapped, 0.0, t)
        return i0.astype(np.int64)[:, None] + kernel.offsets[None, :], kernel.weights(t)
    # Antialiased downscaling (Pillow's rule): the kernel widened by the stretch, taps j with
    # u - R < j <= u + R, weights normalised per output sample.
    radius = kernel.support * stretch
    n_taps = int(math.ceil(2 * radius)) + 1
    first = np.floor(u - radius).astype(np.int64) + 1
    idx = first[:, None] + np.arange(n_taps)[None, :]
    w = kernel.profile((idx - u[:, None]) / stretch)
    w = np.where(idx <= u[:, None] + radius, w, 0.0)
    total = w.sum(axis=1, keepdims=True)
    return idx, w / np.where(np.abs(total) < 1e-12, 1.0, total)


class _Axis(NamedTuple):
    """What the table of one axis depends on (hashable: the key of the plan cache).

    ``area`` is ``(OpenCV's inv_scale, footprints)`` for the ``area`` kernel, else None.
    """

    n_in: int
    n_out: int
    in_per_out: float
    kernel: Kernel
    convention: str
    border: str
    antialias: bool
    area: tuple[float, bool] | None


def _table(axis: _Axis) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(idx, w, outside) of one axis, idx inside the image, the border rule applied."""
    n_in, n_out, kernel = axis.n_in, axis.n_out, axis.kernel
    stretch = max(axis.in_per_out, 1.0) if axis.antialias else 1.0
    if kernel.rule == "area":
        idx, w = area_table(n_in, n_out, *axis.area)
        return idx, w, np.zeros(n_out)
    if kernel.rule == "nearest" and axis.convention == "half_pixel" and stretch == 1.0:
        # The peers' own rule, ties included (srlab._area.nearest_index); maps by the sizes.
        return nearest_index(n_in, n_out)[:, None], np.ones((n_out, 1)), np.zeros(n_out)
    u = _CONVENTIONS[axis.convention](n_in, n_out, axis.in_per_out)
    idx, w = _tap_table(u, kernel, stretch)
    return _BORDERS[axis.border](idx, w, n_in)


@functools.lru_cache(maxsize=_PLAN_CACHE_SIZE)
def _axis_plan(axis: _Axis, channels: int | None, dtype: np.dtype) -> AxisPlan:
    """Plan of one axis; ``channels=None`` for the vertical pass (and transposed horizontal)."""
    n_in, n_out = axis.n_in, axis.n_out
    idx, w, outside = _table(axis)
    unit_rows = bool(np.allclose(w.sum(axis=1) + outside, 1.0, rtol=0.0, atol=1e-9))
    one_hot = (w == 1.0).sum(axis=1) == 1
    if np.all(one_hot & ((w == 0.0).sum(axis=1) == w.shape[1] - 1) & (outside == 0.0)):
        gather = idx[np.arange(n_out), np.argmax(w, axis=1)]
        gather.setflags(write=False)
        empty = np.zeros((0, 1, 1), dtype=dtype)
        return AxisPlan(
            n_out, 1, 1, np.zeros(0, np.int64), empty, np.zeros(0, dtype), False, True, gather
        )
    return band_plan(idx, w, n_in, axis.in_per_out, channels, dtype, outside, unit_rows)


# --------------------------------------------------------------------------- passes


def _integer_finisher(out: np.ndarray, add_half: bool) -> Callable[[np.ndarray, slice], None]:
    """Round half up and clip into the integer output, band by band (as OpenCV saturates).

    ``add_half=False`` when the caller already shifted the input (and ``cval``) by 0.5,
    which shifts every output by 0.5 when the weights add up to one: one pass over the
    small input instead of one over the large output.
    """
    top = np.asarray(np.iinfo(out.dtype).max, dtype=np.float32)
    zero = np.asarray(0, dtype=np.float32)
    half = np.asarray(0.5, dtype=np.float32)

    def finish(band: np.ndarray, rows: slice) -> None:
        if add_half:
            np.add(band, half, out=band)
        np.clip(band, zero, top, out=band)
        # Truncation of a non-negative value is floor, so floor(x + 0.5): round half up.
        np.copyto(out[rows], band, casting="unsafe")

    return finish


def _effective_scale(n_in: int, n_out: int, in_per_out: float, convention: str) -> float:
    if convention == "align_corners" and n_in > 1 and n_out > 1:
        return (n_out - 1) / (n_in - 1)
    return 1.0 / in_per_out


# --------------------------------------------------------------------------- public


def resize(
    image: np.ndarray,
    scale: float | tuple[float, float] | None = None,
    size: tuple[int, int] | None = None,
    kernel: str | Kernel = "bicubic",
    convention: Convention = "half_pixel",
    border: Border = "replicate",
    *,
    antialias: bool = False,
    cval: float = 0.0,
    **kernel_params: Any,
) -> np.ndarray:
    """Resize an image of any number of channels with a separable interpolation kernel.

    Parameters
    ----------
    image : (H, W) or (H, W, C) ndarray
        Gray, RGB, RGBA or any number of channels ``C >= 1``; every channel is resized alike
        and independently (RGBA is not premultiplied by its alpha), as ``cv2.resize`` does.
        uint8, uint16 or float. Integer images are computed in float32 and rounded half up
        and clipped back (as OpenCV saturates); float images keep their dtype (float16 is
        computed in float32).
    scale : float or (sy, sx), optional
        Output size ``round(H * sy), round(W * sx)``; the mapping uses ``scale`` itself, as
        ``cv2.resize(image, None, fx=sx, fy=sy)`` does (``nearest`` maps by the sizes, as
        OpenCV's INTER_NEAREST_EXACT does). Give ``scale`` or ``size``, not both.
    size : (height, width), optional
        Output size in NumPy order. OpenCV's ``dsize`` is ``(width, height)``.
    kernel : str or Kernel, default "bicubic"
        A name from :func:`srlab.kernels.available_kernels` or a built kernel. ``nearest``
        and ``area`` follow the peers' own rules, below.
    convention : {"half_pixel", "align_corners"}, default "half_pixel"
        Pixel-centre convention (see the module notes). With ``align_corners`` the mapping
        depends on the sizes only; ``scale`` then just sets the output size.
    border : {"replicate", "reflect", "constant", "renormalize"}, default "replicate"
        How taps outside the image are filled. ``reflect`` is BORDER_REFLECT_101 (``cb|abcd``);
        ``renormalize`` drops outside taps and rescales the rest, like Pillow.
    antialias : bool, default False
        When downscaling, widen the kernel by the downscaling factor (Pillow semantics);
        otherwise downscaling samples the kernel as is (OpenCV semantics).
    cval : float, default 0.0
        Value outside the image for ``border="constant"``.
    **kernel_params
        Passed to the kernel, e.g. ``a=-0.75`` for ``bicubic``.

    Returns
    -------
    ndarray
        Shape ``(h, w)`` or ``(h, w, C)``, same dtype as ``image``.

    Raises
    ------
    TypeError
        A ``scale`` that is not a number or a pair of numbers, a ``size`` that is not a
        sequence of integers, or a ``kernel`` that is neither a name nor a Kernel.
    ValueError
        Empty or 1-D image, unsupported dtype, NaN or infinite values, both or neither of
        ``scale``/``size``, scale <= 0, an unknown kernel, kernel parameter, convention or
        border, a fixed-phase (shift-add) kernel at a scale other than 2, or ``area`` with
        ``align_corners``.

    Notes
    -----
    **nearest.** With half-pixel centres (and no antialiased downscaling) output ``x`` takes
    input ``floor(f_x)``, where ``f_0 = step / 2``, ``f_{x+1} = f_x + step`` and
    ``step = W / w`` (input over output size), summed in float64: exactly OpenCV's
    ``INTER_NEAREST_EXACT`` and Pillow's ``NEAREST``, for ``scale=`` as for ``size=`` (OpenCV
    ignores ``fx``/``fy`` there). Tie rule: in exact arithmetic ``f_x = (x + 1/2) * W / w``,
    the input pixel under the output pixel's centre; a centre exactly on the border between
    two input pixels goes to the right-hand (higher-index) pixel, always so when ``W / w``
    and ``W / (2w)`` are exact binary fractions (integer and power-of-two factors). For other
    ratios the running float64 sum decides such an exact tie, and it may land on either
    side, identically in both peers (e.g. 226 -> 67 columns: output 33 lies on the border
    of inputs 112 and 113 and takes 112). With ``align_corners``, or when antialiased
    downscaling widens it into a box, ``nearest`` uses its phase weights (ties round half
    up).

    **area.** The average of the input over each output pixel's footprint, partial pixels
    weighted by the part covered: OpenCV's ``INTER_AREA``, whose tables srlab computes as
    OpenCV does (for ``scale=`` with ``fx``/``fy`` = ``scale``, for ``size=`` with the size
    ratio). When the input/output ratio is >= 1 along both axes (downscaling, at integer and
    non-integer factors) that is the pixel-area average; the last footprint is clipped to
    the image, and a partial pixel covered by less than 1e-3 is dropped, as in OpenCV. When
    either axis is upscaled, OpenCV falls back to a two-tap, bilinear-like rule on both
    axes, and so does srlab: on an upscaled axis it is again the covered fraction of the one
    or two pixels under the footprint (so 2x and 3x upscaling replicate pixels); on a
    downscaled axis of such a mixed resize it is not an area average (resize each axis in
    its own call for that). ``area`` never reads outside the image, so ``border``, ``cval``
    and ``antialias`` do not change it; it needs ``convention="half_pixel"``.

    **Channels.** ``C`` may be anything from 1 up (RGBA, gray with a channel axis,
    multispectral); each channel gets the same weights and the result is that of resizing
    each channel on its own.

    Tables are cached per geometry; ``resize.cache_clear()`` empties the caches (e.g. to
    time a first call).

    Examples
    --------
    >>> x = np.arange(12, dtype=np.float32).reshape(3, 4)
    >>> resize(x, size=(6, 8), kernel="bilinear").shape
    (6, 8)
    >>> y = resize(np.full((4, 4, 3), 77, np.uint8), scale=2.5, kernel="lanczos3")
    >>> y.shape, int(y.min()), int(y.max())
    ((10, 10, 3), 77, 77)
    >>> resize(np.arange(8, dtype=np.uint8)[None, :], size=(1, 4), kernel="nearest").tolist()
    [[1, 3, 5, 7]]
    >>> resize(np.arange(6.0).reshape(1, 6), size=(1, 3), kernel="area").tolist()
    [[0.5, 2.5, 4.5]]
    >>> resize(np.zeros((4, 5, 4), np.uint8), scale=2).shape  # RGBA
    (8, 10, 4)
    """
    # Any number of channels; uint8, uint16 or any float dtype; one pixel; finite values.
    image = check_image(image, dtypes=("uint8", "uint16", "float"), channels=None, min_side=1)
    for name, table in ((convention, _CONVENTIONS), (border, _BORDERS)):
        table.get(name)  # not a str: TypeError; unknown: ValueError; both list the known ones
    k = get_kernel(kernel, **kernel_params)
    (h_out, w_out), (y_ratio, x_ratio) = geometry(image.shape[:2], scale, size)
    h_in, w_in = image.shape[:2]
    if k.phases is not None:
        for axis, n_in, n_out, ratio in (("y", h_in, h_out, y_ratio), ("x", w_in, w_out, x_ratio)):
            s = _effective_scale(n_in, n_out, ratio, convention)
            if abs(s - 2.0) > 1e-12:
                hint = (
                    " (with align_corners use size=(2*H - 1, 2*W - 1))"
                    if convention == "align_corners"
                    else ""
                )
                raise ValueError(
                    f"kernel {k.name!r} has fixed phases {k.phases} and only works at scale 2; "
                    f"got scale {s:g} along {axis}{hint}"
                )
    area_y = area_x = None
    if k.rule == "area":
        if convention != "half_pixel":
            raise ValueError(
                f"kernel {k.name!r} averages pixel footprints and needs convention='half_pixel', got "
                f"{convention!r}; for corner-aligned sampling use 'bilinear'"
            )
        # OpenCV's inv_scale per axis: fx/fy when given, else the size ratio.
        inv_y, inv_x = check_scale(scale) if scale is not None else (h_out / h_in, w_out / w_in)
        footprints = area_uses_footprints(1.0 / inv_y, 1.0 / inv_x)
        area_y, area_x = (inv_y, footprints), (inv_x, footprints)

    channels = 1 if image.ndim == 2 else image.shape[2]
    antialias = bool(antialias)
    cval = float(cval)
    out_shape = (h_out, w_out) + image.shape[2:]

    # Integer upscaling factors: polyphase filters in OpenCV (srlab.polyphase says why).
    if border != "constant" or cval == 0.0:
        phases_y = polyphase.axis_phases(h_in, h_out, y_ratio, k, convention, border)
        phases_x = (
            polyphase.axis_phases(w_in, w_out, x_ratio, k, convention, border) if phases_y else None
        )
        if phases_y and phases_x and polyphase.supports(image, phases_x):
            return polyphase.run(image, phases_y, phases_x, border)

    integer = image.dtype.kind == "u"
    work = np.dtype(np.float32) if integer or image.dtype == np.float16 else image.dtype
    kron = channels <= _KRON_MAX_CHANNELS
    axis_y = _Axis(h_in, h_out, y_ratio, k, convention, border, antialias, area_y)
    axis_x = _Axis(w_in, w_out, x_ratio, k, convention, border, antialias, area_x)
    plan_y = _axis_plan(axis_y, None, work)
    # layout None: the horizontal plan in vertical layout, applied transposed.
    plan_x = _axis_plan(axis_x, channels if kron else None, work)

    # Axes that only copy pixels are gathers, exact in any dtype; the columns are gathered
    # on the fewer rows (np.take copies whole pixels, several times faster than indexing).
    src = image.reshape(h_in, w_in, channels)
    columns_first = plan_x.gather is not None and (plan_y.gather is None or h_out >= h_in)
    if columns_first:
        src = np.take(src, plan_x.gather, axis=1)
    if plan_y.gather is not None:
        src = np.take(src, plan_y.gather, axis=0)
    if plan_x.gather is not None and not columns_first:
        src = np.take(src, plan_x.gather, axis=1)
    if plan_y.gather is not None and plan_x.gather is not None:
        return src.reshape(out_shape)
    rows, cols = src.shape[:2]

    a = np.ascontiguousarray(src.reshape(rows, cols * channels), dtype=work)
    result = np.empty((h_out, w_out * channels), dtype=image.dtype)
    finish = None
    if integer:
        shift = (plan_x.gather is not None or plan_x.unit_rows) and (
            plan_y.gather is not None or plan_y.unit_rows
        )
        if shift:
            a += 0.5  # a is a fresh float copy of the integer image
            cval += 0.5
        finish = _integer_finisher(result, add_half=not shift)

    def horizontal_pass(t: np.ndarray) -> np.ndarray:
        if kron:
            return horizontal(t, plan_x, channels, cval)
        return horizontal_transposed(t, plan_x, channels, cval)

    def vertical_into_result(t: np.ndarray) -> np.ndarray:
        if finish is not None:
            vertical(t, plan_y, cval, finish, work)
            return result
        if work == result.dtype:
            return vertical(t, plan_y, cval, None, result.dtype)
        result[...] = vertical(t, plan_y, cval, None, work)
        return result

    if plan_x.gather is not None:  # vertical pass only
        return vertical_into_result(a).reshape(out_shape)
    if plan_y.gather is None and rows <= h_out:  # horizontal pass on the fewer rows first
        return vertical_into_result(horizontal_pass(a)).reshape(out_shape)
    t = horizontal_pass(a if plan_y.gather is not None else vertical(a, plan_y, cval, None, work))
    if finish is None:
        result[...] = t
    else:
        for r0 in range(0, h_out, BLOCK_ROWS):
            finish(t[r0 : r0 + BLOCK_ROWS], slice(r0, r0 + BLOCK_ROWS))
    return result.reshape(out_shape)


def _cache_clear() -> None:
    """Empty resize's per-geometry table caches (the next call rebuilds its tables)."""
    _axis_plan.cache_clear()
    polyphase.axis_phases.cache_clear()


resize.cache_clear = _cache_clear  # type: ignore[attr-defined]
