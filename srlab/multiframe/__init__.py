"""Multi-frame super-resolution: sequences of one scene, their registration (and fusion).

Super-resolution as interpolation -> registration -> fusion. One coordinate convention serves
all of it (pixel centres at ``i + 0.5``; a :class:`Motion` moves the scene; see ``_sequence``).

Sequences (``_sequence``)
    :func:`simulate_sequence` -> :class:`FrameSequence` (LR frames and their true
    :class:`Motion`), :func:`warp`
Registration (``_register``)
    :func:`register_frames` (``"phase"``: scikit-image's Fourier cross-correlation; ``"ecc"``:
    OpenCV's ECC with rotation), :func:`register_translation`, :func:`register_ecc`
Fusion (``_fuse``)
    :func:`fuse` by name: :func:`shift_and_add` (mean or median), :func:`interpolate` (any
    kernel, or the fixed-point datapath, then mean or median), :func:`back_project` (iterative
    back-projection, mean or robust median)
The protocol (``_protocol``)
    :func:`protocol_table`: every method against single-frame bicubic, per image and K
"""

from __future__ import annotations

from srlab.multiframe._fuse import back_project, fuse, interpolate, shift_and_add
from srlab.multiframe._protocol import BASELINE, protocol_table
from srlab.multiframe._register import register_ecc, register_frames, register_translation
from srlab.multiframe._sequence import FrameSequence, Motion, simulate_sequence, warp

__all__ = [
    "BASELINE",
    "FrameSequence",
    "Motion",
    "back_project",
    "fuse",
    "interpolate",
    "protocol_table",
    "register_ecc",
    "register_frames",
    "register_translation",
    "shift_and_add",
    "simulate_sequence",
    "warp",
]
