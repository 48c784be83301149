"""Multi-frame super-resolution: sequences of one scene, their registration (and fusion).

Super-resolution as interpolation -> registration -> fusion. One coordinate convention serves
all of it (pixel centres at ``i + 0.5``; a :class:`Motion` moves the scene; see ``_sequence``).

Sequences (``_sequence``)
    :func:`simulate_sequence` -> :class:`FrameSequence` (LR frames and their true
    :class:`Motion`), :func:`warp`
Registration (``_register``)
    :func:`register_frames` (``"phase"``: scikit-image's phase correlation; ``"ecc"``:
    OpenCV's ECC with rotation), :func:`register_translation`, :func:`register_ecc`
"""

from __future__ import annotations

from srlab.multiframe._register import register_ecc, register_frames, register_translation
from srlab.multiframe._sequence import FrameSequence, Motion, simulate_sequence, warp

__all__ = [
    "FrameSequence",
    "Motion",
    "register_ecc",
    "register_frames",
    "register_translation",
    "simulate_sequence",
    "warp",
]
