"""Registration: each frame's motion against the reference, in :mod:`._sequence`'s convention.

Both methods are maintained implementations; this module only fixes their sign conventions to
the one of :class:`~srlab.multiframe.Motion` (a frame shows the reference's content moved by the
motion), and prepares the images:

``"phase"``  translation by Fourier cross-correlation, refined to ``1 / upsample`` pixel by
             the matrix-multiply DFT of scikit-image's ``phase_cross_correlation``
             (Guizar-Sicairos et al. 2008); both frames under a Hann window first, so the image
             borders do not dominate the spectrum of smooth images, and not whitened (see
             :func:`register_translation`).
``"ecc"``    translation and rotation by OpenCV's ``findTransformECC`` (Evangelidis and Psarakis
             2008, a gradient-based maximization of the enhanced correlation coefficient),
             started from the phase correlation's translation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import cv2
import numpy as np
import skimage.color
import skimage.filters
from skimage.registration import phase_cross_correlation

from labcore.checks import check_int
from labcore.registry import Registry
from srlab.imagecheck import check_image, to_unit
from srlab.multiframe._sequence import Motion

__all__ = ["register_frames", "register_translation", "register_ecc"]

Method = Literal["phase", "ecc"]


def _gray(frame: np.ndarray, name: str) -> np.ndarray:
    """A frame as float64 luminance in [0, 1] (integer frames span their dtype's range)."""
    frame = check_image(frame, dtypes=None, channels=(1, 3, 4), name=name)
    if frame.ndim == 3 and frame.shape[-1] == 1:
        frame = frame[..., 0]
    if frame.ndim == 3:
        return skimage.color.rgb2gray(to_unit(frame[..., :3]))
    return to_unit(frame)


def _pair(reference: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, mov = _gray(reference, "reference"), _gray(frame, "frame")
    if ref.shape != mov.shape:
        raise ValueError(
            f"the frames differ in size: reference {ref.shape}, frame {mov.shape}; register "
            f"frames of one sequence (crop them to a common size first)"
        )
    if min(ref.shape) < 8:
        raise ValueError(f"frames of {ref.shape} pixels are too small to register (8 x 8 at least)")
    return ref, mov


def register_translation(reference: np.ndarray, frame: np.ndarray, upsample: int = 100) -> Motion:
    """The translation of ``frame`` against ``reference`` by Fourier cross-correlation.

    Parameters
    ----------
    reference, frame : (h, w) or (h, w, 3) ndarray
        Two frames of one sequence (colour ones are registered on their luminance).
    upsample : int, default 100
        Refinement: the estimate is a multiple of ``1 / upsample`` pixel.

    Returns
    -------
    Motion
        ``(dy, dx)`` in pixels of these frames; no rotation.

    Raises
    ------
    ValueError
        Frames of different sizes, under 8 pixels a side, or not images.

    Examples
    --------
    >>> from srlab.multiframe import simulate_sequence
    >>> from srlab.images import load_image
    >>> seq = simulate_sequence(load_image("camera"), 2, 2, shifts=[[0, 0], [0.3, -0.6]])
    >>> m = register_translation(seq.frames[0], seq.frames[1])
    >>> round(m.dy, 1), round(m.dx, 1)
    (0.3, -0.6)
    """
    check_int(upsample, "upsample", minimum=1)
    ref, mov = _pair(reference, frame)
    window = skimage.filters.window("hann", ref.shape)
    # scikit-image returns the shift that registers ``mov`` onto ``ref``: minus the motion.
    # normalization=None: whitening the spectrum (phase correlation proper) amplifies the
    # aliased high frequencies of decimated frames and biases the sub-pixel peak (0.09 against
    # 0.03 LR pixel RMS on camera at 2x).
    shift, _, _ = phase_cross_correlation(
        (ref - ref.mean()) * window,
        (mov - mov.mean()) * window,
        upsample_factor=upsample,
        normalization=None,
    )
    return Motion(float(-shift[0]), float(-shift[1]))


def register_ecc(
    reference: np.ndarray,
    frame: np.ndarray,
    rotation: bool = True,
    iterations: int = 200,
    tolerance: float = 1e-7,
) -> Motion:
    """The translation (and rotation) of ``frame`` against ``reference`` by OpenCV's ECC.

    Parameters
    ----------
    reference, frame : (h, w) or (h, w, 3) ndarray
        Two frames of one sequence.
    rotation : bool, default True
        Estimate a rotation about the image centre too (``MOTION_EUCLIDEAN``); else only a
        translation (``MOTION_TRANSLATION``).
    iterations, tolerance
        ECC's stopping criteria.

    Returns
    -------
    Motion

    Raises
    ------
    ValueError
        Frames of different sizes or under 8 pixels a side, or if ECC fails (its correlation
        degenerates: frames with too little texture, or moved too far). ECC that runs out of
        iterations returns its last estimate.
    """
    ref, mov = _pair(reference, frame)
    start = register_translation(ref, mov)
    warp = np.array([[1, 0, start.dx], [0, 1, start.dy]], dtype=np.float32)
    mode = cv2.MOTION_EUCLIDEAN if rotation else cv2.MOTION_TRANSLATION
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, tolerance)
    try:
        # ECC finds W with frame(W x) = reference(x), x = (column, row) with pixel centres
        # at integers: W x = A (x - c) + c + d in this module's convention (see _sequence).
        _, warp = cv2.findTransformECC(
            ref.astype(np.float32), mov.astype(np.float32), warp, mode, criteria, None, 1
        )
    except cv2.error as err:
        raise ValueError(
            f"ECC did not converge ({str(err).strip().splitlines()[-1]}); the frames may have "
            f"too little texture or be moved too far: try method='phase'"
        ) from err
    a, t = warp[:, :2].astype(np.float64), warp[:, 2].astype(np.float64)
    centre = (np.array(ref.shape[::-1], dtype=float) - 1) / 2  # (x, y), pixel centres at integers
    d = t - centre + a @ centre
    angle = np.rad2deg(np.arctan2(a[0, 1], a[0, 0]))
    return Motion(float(d[1]), float(d[0]), float(angle))


# The registration methods by name (:func:`register_frames`).
_REGISTRATIONS: Registry[Callable[[np.ndarray, np.ndarray], Motion]] = Registry(
    "registration method", plural="methods"
)
_REGISTRATIONS.add("phase", register_translation)
_REGISTRATIONS.add("ecc", register_ecc)


def register_frames(frames: Sequence[np.ndarray], method: Method = "phase") -> tuple[Motion, ...]:
    """The motion of every frame against the first.

    Parameters
    ----------
    frames : sequence of (h, w) or (h, w, 3) ndarray
        At least two frames of one size (e.g. ``FrameSequence.frames``).
    method : {"phase", "ecc"}, default "phase"
        Translation by phase correlation, or translation and rotation by ECC.

    Returns
    -------
    tuple of Motion
        One per frame; the first is ``Motion(0, 0, 0)``.

    Raises
    ------
    ValueError
        Fewer than two frames, frames of different sizes, an unknown method, or ECC failing
        (:func:`register_ecc`).
    """
    register = _REGISTRATIONS.get(method)  # not a str: TypeError; unknown: ValueError
    frames = list(frames)
    if len(frames) < 2:
        raise ValueError(f"registration needs at least 2 frames, got {len(frames)}")
    return (Motion(0.0, 0.0, 0.0), *(register(frames[0], f) for f in frames[1:]))
