"""Low-resolution sequences of one scene: known sub-pixel motion, then the degradation model.

The one coordinate convention of :mod:`srlab.multiframe` (used by the simulation, registration
and fusion alike):

* **Pixel centres.** A pixel of index ``i`` covers ``[i, i + 1)`` and its centre sits at
  ``i + 0.5``, in high-resolution (HR) and low-resolution (LR) images alike; LR pixel ``i`` covers
  HR ``[i * scale, (i + 1) * scale)`` (:func:`srlab.images.degrade`, OpenCV's and Pillow's
  half-pixel convention). Coordinates are ``(y, x)``: rows down, columns right.
* **Motion.** ``Motion(dy, dx, angle)`` moves the scene: frame ``k`` shows at point ``p`` what the
  reference frame shows at ``R(-angle) (p - c - d) + c``, with ``d = (dy, dx)`` in LR pixels,
  ``c`` the image centre (``(H / 2, W / 2)`` in these coordinates) and ``angle`` in degrees,
  counter-clockwise as displayed (rows down): in ``(y, x)`` form
  ``R(a) = [[cos a, -sin a], [sin a, cos a]]``. A positive ``dx`` moves the content right. Registration estimates this same motion of each
  frame against the reference (frame 0), so an estimate is compared with the truth directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Literal

import numpy as np
import scipy.ndimage

from labcore.checks import check_int, check_type
from srlab.imagecheck import check_image, to_dtype
from srlab.images import degrade, pair_sizes

__all__ = ["FrameSequence", "Motion", "simulate_sequence", "warp"]


@dataclass(frozen=True)
class Motion:
    """The motion of a frame against the reference frame (see the module's convention).

    Attributes
    ----------
    dy, dx : float
        Translation in low-resolution pixels (down, right).
    angle : float
        Rotation about the image centre in degrees, counter-clockwise as displayed.

    Raises
    ------
    TypeError
        If a field is not a real number.
    ValueError
        If it is NaN or infinite.
    """

    dy: float
    dx: float
    angle: float = 0.0

    def __post_init__(self) -> None:
        for name in ("dy", "dx", "angle"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real):
                raise TypeError(f"Motion.{name} must be a real number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"Motion.{name} must be finite, got {value!r}")

    def inverse(self) -> Motion:
        """The motion that moves a frame back onto the reference.

        Examples
        --------
        >>> Motion(0.5, -1.0).inverse()
        Motion(dy=-0.5, dx=1.0, angle=0.0)
        """
        theta = np.deg2rad(self.angle)
        # warp reads R(-a)(p - c - d) + c; its inverse reads R(a)(p - c) + c + d, which is
        # warp's form with angle -a and translation -R(-a) d.
        dy = -(np.cos(theta) * self.dy + np.sin(theta) * self.dx)
        dx = -(-np.sin(theta) * self.dy + np.cos(theta) * self.dx)
        return Motion(float(dy), float(dx), -self.angle + 0.0)


@dataclass(frozen=True)
class FrameSequence:
    """Low-resolution frames of one scene and how each moved.

    Attributes
    ----------
    frames : tuple of (h, w) or (h, w, C) ndarray
        The LR frames, in the dtype of the HR image; frame 0 is the reference.
    motions : tuple of Motion
        The true motion of each frame (frame 0: none).
    hr : ndarray
        The HR scene as the reference frame sees it (cropped to ``scale`` times the LR size).
    scale : int
        HR pixels per LR pixel along each axis.
    """

    frames: tuple[np.ndarray, ...]
    motions: tuple[Motion, ...]
    hr: np.ndarray
    scale: int

    def shifts(self) -> np.ndarray:
        """``(K, 2)`` array of the true ``(dy, dx)`` of every frame, in LR pixels."""
        return np.array([[m.dy, m.dx] for m in self.motions])


def warp(image: np.ndarray, motion: Motion, pixel: float = 1.0) -> np.ndarray:
    """``image`` (floats) as the scene moved by ``motion`` shows it (cubic spline, mirrored edges).

    Parameters
    ----------
    image : (H, W) or (H, W, C) float ndarray
    motion : Motion
    pixel : float, default 1.0
        Pixels of ``image`` per unit of the motion's translation (``scale`` for an HR image
        moved by a motion in LR pixels).

    Returns
    -------
    ndarray of the same shape, float64.

    Raises
    ------
    TypeError
        If ``motion`` is not a Motion.

    Examples
    --------
    >>> ramp = np.tile(np.arange(8.0), (4, 1))
    >>> bool(np.allclose(warp(ramp, Motion(0.0, 1.0))[:, 2:6], ramp[:, 1:5]))
    True
    """
    check_type(motion, Motion, "motion", expected="a Motion, e.g. Motion(dy=0.5, dx=0.0)")
    theta = np.deg2rad(motion.angle)
    # Output point p (pixel centre o + 0.5) reads the input at R(-angle) (p - c - d) + c.
    inverse = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    centre = np.array(image.shape[:2], dtype=float) / 2
    shift = np.array([motion.dy, motion.dx]) * pixel
    offset = inverse @ (0.5 - centre - shift) + centre - 0.5
    image = np.asarray(image, dtype=np.float64)
    planes = image[..., None] if image.ndim == 2 else image
    out = np.stack(
        [
            scipy.ndimage.affine_transform(
                planes[..., c], inverse, offset, order=3, mode="mirror", prefilter=True
            )
            for c in range(planes.shape[-1])
        ],
        axis=-1,
    )
    return out[..., 0] if image.ndim == 2 else out


def simulate_sequence(
    hr: np.ndarray,
    n_frames: int,
    scale: int,
    shifts: np.ndarray | None = None,
    rotation: bool = False,
    psf: Literal["box", "gaussian"] = "box",
    noise_sigma: float = 0.0,
    seed: int = 0,
    *,
    max_shift: float = 1.0,
    max_angle: float = 1.0,
) -> FrameSequence:
    """Low-resolution frames of ``hr`` moved by known sub-pixel motions.

    Frame ``k`` is :func:`warp` of the HR scene by its motion (translations in LR pixels times
    ``scale``), then :func:`srlab.images.degrade` (PSF, decimation by ``scale``, noise, and
    rounding to the image's dtype). Frame 0 does not move.

    Parameters
    ----------
    hr : (H, W) or (H, W, C) ndarray
        uint8, uint16 or float image (floats in [0, 1]).
    n_frames : int
        Frames, at least 2.
    scale : int
        Decimation factor, at least 1.
    shifts : (n_frames, 2) array_like, optional
        ``(dy, dx)`` of each frame in LR pixels; row 0 is the reference's and must be zero.
        By default uniform in ``[-max_shift, max_shift]`` LR pixels, seeded (the draws of a
        shorter sequence with the same seed are the first rows of a longer one's).
    rotation : bool, default False
        Also rotate each frame but the first by an angle uniform in ``[-max_angle, max_angle]``
        degrees.
    psf : {"box", "gaussian"}, default "box"
        The sensor's point spread function (:func:`srlab.images.degrade`).
    noise_sigma : float, default 0.0
        Gaussian noise as a fraction of the full range (``2 / 255``: 2 grey levels of 8 bits).
    seed : int, default 0
        Seeds the motions and each frame's noise.
    max_shift, max_angle : float
        Ranges of the random motions.

    Returns
    -------
    FrameSequence

    Raises
    ------
    ValueError
        Fewer than 2 frames, shifts of another shape than ``(n_frames, 2)`` or moving the
        reference frame, or what :func:`srlab.images.degrade` refuses (an image smaller than
        the scale, a negative noise).

    Examples
    --------
    >>> from srlab.images import load_image
    >>> seq = simulate_sequence(load_image("camera")[:64, :64], 4, 2, seed=1)
    >>> len(seq.frames), seq.frames[0].shape, seq.motions[0]
    (4, (32, 32), Motion(dy=0.0, dx=0.0, angle=0.0))
    """
    image = check_image(hr, min_side=1, name="hr")
    check_int(n_frames, "n_frames", minimum=2)
    check_int(scale, "scale", minimum=1)
    rng = np.random.default_rng(seed)
    if shifts is None:
        shifts = rng.uniform(-max_shift, max_shift, (n_frames, 2))
        shifts[0] = 0.0
    shifts = np.asarray(shifts, dtype=float)
    if shifts.shape != (n_frames, 2) or not np.isfinite(shifts).all():
        raise ValueError(
            f"shifts must be {n_frames} finite (dy, dx) pairs, shape ({n_frames}, 2); got "
            f"shape {shifts.shape}"
        )
    if np.any(shifts[0] != 0):
        raise ValueError(
            f"frame 0 is the reference and does not move, but shifts[0] is {shifts[0].tolist()}; "
            f"subtract it from every row"
        )
    angles = rng.uniform(-max_angle, max_angle, n_frames) if rotation else np.zeros(n_frames)
    angles[0] = 0.0
    _, (height, width) = pair_sizes(image.shape[:2], scale)
    scene = image[:height, :width]
    unit = scene.astype(np.float64)
    if np.issubdtype(scene.dtype, np.integer):
        unit = unit / np.iinfo(scene.dtype).max
    motions, frames = [], []
    for k in range(n_frames):
        motion = Motion(float(shifts[k, 0]), float(shifts[k, 1]), float(angles[k]))
        moved = warp(unit, motion, pixel=scale)
        lr, _ = degrade(moved, scale, psf, noise_sigma, seed=seed + 1 + k)
        frames.append(to_dtype(lr, scene.dtype))
        motions.append(motion)
    return FrameSequence(tuple(frames), tuple(motions), scene, scale)
