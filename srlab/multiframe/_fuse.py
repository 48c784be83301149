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

from labcore.checks import check_int
from srlab._resize import resize
from srlab.images import degrade
from srlab.multiframe._sequence import Motion, warp

__all__ = ["back_project", "fuse", "interpolate", "shift_and_add"]

Reducer = Literal["mean", "median"]
Upscaler = Callable[[np.ndarray, int], np.ndarray]


def _unit(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    out = frame.astype(np.float64)
    return out / np.iinfo(frame.dtype).max if frame.dtype.kind in "ui" else out


def _check(frames: Sequence[np.ndarray], motions: Sequence[Motion], scale: int) -> list:
    frames = [_unit(f) for f in frames]
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


def _reduce(stack: np.ndarray, reducer: Reducer) -> np.ndarray:
    if reducer == "mean":
        return stack.mean(axis=0)
    if reducer == "median":
        return np.median(stack, axis=0)
    raise ValueError(f"unknown reducer {reducer!r}; use 'mean' or 'median'")


def _resize_upscaler(kernel: str) -> Upscaler:
    return lambda image, scale: resize(image, scale=scale, kernel=kernel)


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
        A kernel name for :func:`srlab.resize`, or ``upscale(frame, scale) -> image`` (e.g.
        a :class:`srlab.FixedPointResizer`'s bit-true datapath); its output is taken as an
        image of the frame's dtype.
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
    upscale = _resize_upscaler(kernel) if isinstance(kernel, str) else kernel
    moved = []
    for raw, motion in zip(frames, motions):
        up = _unit(upscale(np.asarray(raw), scale))
        _check_hr(up, raw, scale, "the upscaler returned")
        moved.append(warp(up, motion.inverse(), pixel=scale))
    return np.clip(_reduce(np.stack(moved), reducer), 0.0, 1.0)


def shift_and_add(
    frames: Sequence[np.ndarray],
    motions: Sequence[Motion],
    scale: int,
    reducer: Reducer = "mean",
    fill: str = "bicubic",
) -> np.ndarray:
    """Drop every LR sample on the HR pixel under its registered position and combine.

    Parameters
    ----------
    frames, motions, scale, reducer
        As for :func:`interpolate`.
    fill : str, default "bicubic"
        Kernel that interpolates the reference frame for the HR pixels no sample reached.

    Returns
    -------
    float64 ndarray in [0, 1], ``scale`` times the frames' size.
    """
    frames = _check(frames, motions, scale)
    h, w = frames[0].shape[:2]
    channels = frames[0].shape[2:]
    rows, cols = np.mgrid[0:h, 0:w]
    centre = np.array([h, w], dtype=float) / 2
    values, targets = [], []
    for frame, motion in zip(frames, motions):
        # Where the reference saw this sample: the inverse motion of its pixel centre.
        back = motion.inverse()
        theta = np.deg2rad(back.angle)
        turn = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        points = np.stack([rows.ravel() + 0.5, cols.ravel() + 0.5])
        ref = turn @ (points - centre[:, None]) + centre[:, None] + np.array([[back.dy], [back.dx]])
        hr = np.floor(ref * scale).astype(int)
        inside = (hr[0] >= 0) & (hr[0] < h * scale) & (hr[1] >= 0) & (hr[1] < w * scale)
        targets.append(hr[0, inside] * (w * scale) + hr[1, inside])
        values.append(frame.reshape(h * w, -1)[inside])
    target = np.concatenate(targets)
    value = np.concatenate(values)
    out = _resize_upscaler(fill)(frames[0], scale).reshape(h * scale * w * scale, -1)
    if reducer == "mean":
        sums = np.zeros_like(out)
        np.add.at(sums, target, value)
        counts = np.bincount(target, minlength=out.shape[0])
        hit = counts > 0
        out[hit] = sums[hit] / counts[hit, None]
    elif reducer == "median":
        # The samples of each pixel side by side in a NaN-padded table, one median per row.
        order = np.argsort(target, kind="stable")
        target, value = target[order], value[order]
        pixels, starts, counts = np.unique(target, return_index=True, return_counts=True)
        slot = np.arange(len(target)) - np.repeat(starts, counts)
        table = np.full((len(pixels), counts.max(), value.shape[1]), np.nan)
        table[np.repeat(np.arange(len(pixels)), counts), slot] = value
        out[pixels] = np.nanmedian(table, axis=1)
    else:
        _reduce(value[:1], reducer)  # raises: an unknown reducer
    return np.clip(out.reshape(h * scale, w * scale, *channels), 0.0, 1.0)


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
        Starting estimate in [0, 1]; the bicubic upscale of the reference frame by default.
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
    estimate = _resize_upscaler("bicubic")(frames[0], scale) if initial is None else initial
    estimate = np.array(estimate, dtype=np.float64)
    _check_hr(estimate, frames[0], scale, "initial is")
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

    Raises
    ------
    ValueError
        An unknown method (the message lists the known ones).
    """
    methods = {
        "shift_and_add": shift_and_add,
        "interpolate": interpolate,
        "back_project": back_project,
    }
    if method not in methods:
        raise ValueError(f"unknown fusion method {method!r}; use one of {sorted(methods)}")
    return methods[method](frames, motions, scale, **options)
