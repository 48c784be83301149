"""Fusion: registered low-resolution frames onto the high-resolution grid of the reference.

Three families, all in :mod:`._sequence`'s convention and all returning a float image in the
reference frame's HR grid (``scale`` times its size), values in [0, 1]:

``shift_and_add``   each LR sample dropped on the HR pixel under its registered position, the
                    samples of a pixel combined by mean or median (robust to outlier frames);
                    pixels no sample reached take the interpolated reference frame.
``interpolate``     each frame upscaled with any kernel (a name of :mod:`srlab.kernels`, or any
                    callable such as the bit-true fixed-point datapath), moved back onto the
                    reference by its inverse motion, then mean or median.
``back_project``    iterative back-projection (Irani and Peleg 1991): the estimate is observed
                    through the same forward model as :func:`simulate_sequence` (motion, PSF,
                    decimation), and each frame's error is spread back and added; the mean of the
                    frames' corrections, or their median (Zomet et al. 2001) against outliers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from labcore.checks import check_choice, check_int, check_type
from labcore.registry import Registry
from srlab._resize import resize
from srlab.imagecheck import check_image, to_unit
from srlab.images import degrade
from srlab.multiframe._sequence import Motion, warp

__all__ = ["back_project", "fuse", "interpolate", "shift_and_add"]

Reducer = Literal["mean", "median"]
Upscaler = Callable[[np.ndarray, int], np.ndarray]


def _check(frames: Sequence[np.ndarray], motions: Sequence[Motion], scale: int) -> list:
    frames = [to_unit(check_image(f, dtypes=None, channels=None, name="frame")) for f in frames]
    for motion in motions:
        check_type(motion, Motion, "each motion", expected="a Motion (e.g. from register_frames)")
    if len(frames) < 2:
        raise ValueError(f"fusion needs at least 2 frames, got {len(frames)}")
    if len(motions) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(motions)} motions; give one per frame")
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise ValueError(
            f"the frames differ in size: {sorted(shapes)}; fuse frames of one sequence"
        )
    check_int(scale, "scale", minimum=1)
    return frames


def _check_hr(image: np.ndarray, frame: np.ndarray, scale: int, what: str) -> None:
    """An HR image must be ``scale`` times a frame's size (else the scale does not match)."""
    expected = (frame.shape[0] * scale, frame.shape[1] * scale, *frame.shape[2:])
    if image.shape != expected:
        raise ValueError(
            f"{what} {image.shape} for frames of {frame.shape} at scale {scale}, not {expected}: "
            f"the scale does not match (e.g. a datapath built for another scale)"
        )


# How the frames' estimates of one HR pixel combine (a stack's axis 0).
_REDUCERS: Registry[Callable[[np.ndarray], np.ndarray]] = Registry("reducer", plural="reducers")
_REDUCERS.add("mean", lambda stack: stack.mean(axis=0))
_REDUCERS.add("median", lambda stack: np.median(stack, axis=0))

# The fusion methods by name (:func:`fuse`); a new method is one more registered function.
_FUSERS: Registry[Callable[..., np.ndarray]] = Registry("fusion method", plural="methods")


def _reduce(stack: np.ndarray, reducer: Reducer) -> np.ndarray:
    return _REDUCERS.get(reducer)(stack)


def _resize_upscaler(kernel: str) -> Upscaler:
    return lambda image, scale: resize(image, scale=scale, kernel=kernel)


@_FUSERS.register("interpolate")
def interpolate(
    frames: Sequence[np.ndarray],
    motions: Sequence[Motion],
    scale: int,
    kernel: str | Upscaler = "bicubic",
    reducer: Reducer = "mean",
) -> np.ndarray:
    """Upscale every frame, move it back onto the reference, combine.

    Parameters
    ----------
    frames : sequence of (h, w) or (h, w, C) ndarray
        Frames of one sequence (integers span their dtype's range; floats in [0, 1]).
    motions : sequence of Motion
        Each frame's motion against the reference (true, or from
        :func:`~srlab.multiframe.register_frames`).
    scale : int
        Upscaling factor.
    kernel : str or callable, default "bicubic"
        A kernel name for :func:`srlab.resize` (run in float), or ``upscale(frame, scale) ->
        image`` (e.g. a :class:`srlab.FixedPointResizer`'s bit-true ``run``), whose output is
        read in the frame's dtype: 0-255 for uint8 frames.
    reducer : {"mean", "median"}, default "mean"

    Returns
    -------
    (scale h, scale w) or (scale h, scale w, C) float64 ndarray in [0, 1].

    Raises
    ------
    ValueError
        Fewer than 2 frames, frames of different sizes, not one motion per frame, an
        upscaler whose output is not ``scale`` times a frame, an unknown reducer.
    """
    _check(frames, motions, scale)
    _REDUCERS.get(reducer)  # not a str: TypeError; unknown: ValueError, before the work
    moved = []
    for raw, motion in zip(frames, motions):
        raw = np.asarray(raw)
        if isinstance(kernel, str):  # in float: no rounding to the frames' dtype on the way
            up = _resize_upscaler(kernel)(to_unit(raw), scale)
        else:  # its output read in the frame's dtype (a bit-true datapath's codes)
            up = np.asarray(kernel(raw, scale)).astype(np.float64)
            up = up / np.iinfo(raw.dtype).max if raw.dtype.kind in "ui" else up
        _check_hr(up, raw, scale, "the upscaler returned")
        moved.append(warp(up, motion.inverse(), pixel=scale))
    return np.clip(_reduce(np.stack(moved), reducer), 0.0, 1.0)


@_FUSERS.register("shift_and_add")
def shift_and_add(
    frames: Sequence[np.ndarray],
    motions: Sequence[Motion],
    scale: int,
    reducer: Reducer = "mean",
    fill: str = "bicubic",
) -> np.ndarray:
    """Place every LR sample at its registered position on the HR grid and combine.

    A sample is spread over the four HR pixels around its position, with bilinear weights (at
    an even scale a sample of the reference frame sits exactly on an HR pixel corner: one
    nearest pixel would shift the result by half a pixel); each HR pixel takes the weighted
    mean, or the weighted median, of what reached it.

    Parameters
    ----------
    frames, motions, scale, reducer
        As for :func:`interpolate`.
    fill : str, default "bicubic"
        Kernel that interpolates the reference frame for the HR pixels no sample reached.

    Returns
    -------
    float64 ndarray in [0, 1], ``scale`` times the frames' size.

    Raises
    ------
    ValueError
        As :func:`interpolate`.
    """
    frames = _check(frames, motions, scale)
    check_choice(reducer, "reducer", _REDUCERS.names(), plural="reducers")
    h, w = frames[0].shape[:2]
    channels = frames[0].shape[2:]
    height, width = h * scale, w * scale
    rows, cols = np.mgrid[0:h, 0:w]
    centre = np.array([h, w], dtype=float) / 2
    points = np.stack([rows.ravel() + 0.5, cols.ravel() + 0.5])
    targets, weights, values = [], [], []
    for frame, motion in zip(frames, motions):
        # Where the reference saw each sample (the inverse motion of its pixel centre), in HR
        # pixel-index coordinates (centres at integers).
        back = motion.inverse()
        theta = np.deg2rad(back.angle)
        turn = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        ref = turn @ (points - centre[:, None]) + centre[:, None]
        ref = (ref + np.array([[back.dy], [back.dx]])) * scale - 0.5
        low = np.floor(ref).astype(int)
        frac = ref - low
        sample = frame.reshape(h * w, -1)
        for oy, ox in ((0, 0), (0, 1), (1, 0), (1, 1)):
            y, x = low[0] + oy, low[1] + ox
            weight = (frac[0] if oy else 1 - frac[0]) * (frac[1] if ox else 1 - frac[1])
            keep = (y >= 0) & (y < height) & (x >= 0) & (x < width) & (weight > 0)
            targets.append(y[keep] * width + x[keep])
            weights.append(weight[keep])
            values.append(sample[keep])
    target, weight, value = (np.concatenate(a) for a in (targets, weights, values))
    out = to_unit(_resize_upscaler(fill)(frames[0], scale)).reshape(height * width, -1)
    if reducer == "mean":
        sums = np.zeros_like(out)
        np.add.at(sums, target, value * weight[:, None])
        total = np.bincount(target, weight, minlength=out.shape[0])
        hit = total > 1e-3
        out[hit] = sums[hit] / total[hit, None]
    else:
        pixels, fused = _weighted_medians(target, weight, value)
        out[pixels] = fused
    return np.clip(out.reshape(height, width, *channels), 0.0, 1.0)


def _weighted_medians(
    target: np.ndarray, weight: np.ndarray, value: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per target pixel and channel, the value at half of the pixel's total weight."""
    order = np.argsort(target, kind="stable")
    target, weight, value = target[order], weight[order], value[order]
    pixels, starts, counts = np.unique(target, return_index=True, return_counts=True)
    row = np.repeat(np.arange(len(pixels)), counts)
    slot = np.arange(len(target)) - np.repeat(starts, counts)
    fused = np.empty((len(pixels), value.shape[1]))
    for c in range(value.shape[1]):  # samples side by side in padded tables, one row a pixel
        values = np.full((len(pixels), counts.max()), np.inf)
        weights = np.zeros_like(values)
        values[row, slot], weights[row, slot] = value[:, c], weight
        by_value = np.argsort(values, axis=1)
        sorted_values = np.take_along_axis(values, by_value, axis=1)
        cumulative = np.cumsum(np.take_along_axis(weights, by_value, axis=1), axis=1)
        half = cumulative[:, -1:] / 2
        # Where the cumulative weight lands exactly on half (equal weights, an even count), the
        # midpoint of the two middle values, as the plain median takes.
        low = np.argmax(cumulative >= half - 1e-12, axis=1)
        high = np.minimum(np.argmax(cumulative > half + 1e-12, axis=1), counts - 1)
        at = np.arange(len(pixels))
        fused[:, c] = (sorted_values[at, low] + sorted_values[at, high]) / 2
    return pixels, fused


@_FUSERS.register("back_project")
def back_project(
    frames: Sequence[np.ndarray],
    motions: Sequence[Motion],
    scale: int,
    iterations: int = 20,
    psf: Literal["box", "gaussian"] = "box",
    robust: bool = False,
    step: float = 1.0,
    initial: np.ndarray | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Iterative back-projection through the sequences' forward model.

    Parameters
    ----------
    frames, motions, scale
        As for :func:`interpolate`.
    iterations : int, default 20
    psf : {"box", "gaussian"}, default "box"
        The sensor model the frames were taken with (:func:`srlab.images.degrade`).
    robust : bool, default False
        Combine the frames' corrections by their median instead of their mean (outlier frames).
    step : float, default 1.0
        Fraction of the combined correction added per iteration.
    initial : ndarray, optional
        Starting estimate (integers span their dtype's range, floats in [0, 1]), ``scale``
        times a frame's size; the bicubic upscale of the reference frame by default.
    progress : bool, default False
        Show a progress bar.

    Returns
    -------
    float64 ndarray in [0, 1], ``scale`` times the frames' size.

    Raises
    ------
    ValueError
        As :func:`interpolate`; an ``initial`` estimate that is not ``scale`` times a frame.
    """
    from tqdm.auto import tqdm

    frames = _check(frames, motions, scale)
    check_int(iterations, "iterations", minimum=0)
    if not (np.isfinite(step) and step > 0):
        raise ValueError(f"step must be a positive number, got {step!r}")
    estimate = _resize_upscaler("bicubic")(frames[0], scale) if initial is None else initial
    estimate = to_unit(estimate)
    _check_hr(estimate, frames[0], scale, "initial is")
    if not np.isfinite(estimate).all():
        raise ValueError("initial holds NaN or infinite values")
    estimate = np.clip(estimate, 0.0, 1.0)
    spread = np.ones((scale, scale) + (1,) * (frames[0].ndim - 2))
    for _ in tqdm(range(iterations), desc="back-projection", disable=not progress):
        corrections = []
        for frame, motion in zip(frames, motions):
            seen, _ = degrade(warp(estimate, motion, pixel=scale), scale, psf)
            # The error, spread over the HR pixels of each LR pixel, moved back.
            error = np.kron(frame - seen, spread)
            corrections.append(warp(error, motion.inverse(), pixel=scale))
        estimate = np.clip(
            estimate + step * _reduce(np.stack(corrections), "median" if robust else "mean"),
            0.0,
            1.0,
        )
    return estimate


def fuse(
    frames: Sequence[np.ndarray],
    motions: Sequence[Motion],
    scale: int,
    method: str = "back_project",
    **options: object,
) -> np.ndarray:
    """Fuse by name: ``"shift_and_add"``, ``"interpolate"`` or ``"back_project"``.

    Parameters
    ----------
    frames : sequence of ndarray
        Frames of one sequence.
    motions : sequence of Motion
        One per frame, against the first.
    scale : int
        Upscaling factor.
    method : {"shift_and_add", "interpolate", "back_project"}, default "back_project"
    **options
        The method's own keywords (e.g. ``reducer``, ``kernel``, ``iterations``).

    Returns
    -------
    float64 ndarray in [0, 1], ``scale`` times the frames' size.

    Raises
    ------
    ValueError
        An unknown method (the message lists the known ones), or what the method refuses.
    """
    return _FUSERS.get(method)(frames, motions, scale, **options)
