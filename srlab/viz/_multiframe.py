"""Figures of multi-frame super-resolution (:mod:`srlab.multiframe`): fused crops and their explorer."""

from __future__ import annotations

import time
from collections.abc import Sequence

import ipywidgets
import numpy as np
import plotly.graph_objects as go
from IPython.display import display

from srlab._resize import resize
from srlab.imagecheck import to_unit
from srlab.metrics import psnr
from srlab.multiframe import fuse, register_frames, simulate_sequence
from srlab.viz._crops import crops_figure

__all__ = ["multiframe_explorer", "multiframe_view"]


def multiframe_view(
    hr: np.ndarray,
    n_frames: int = 8,
    noise_levels: float = 2.0,
    scale: int = 2,
    crop: Sequence[int] = (0, 0, 96, 96),
    *,
    iterations: int = 10,
    seed: int = 0,
) -> go.Figure:
    """One simulated sequence, registered and fused: crops of the scene, bicubic and each fusion.

    Parameters
    ----------
    hr : (H, W) or (H, W, C) ndarray
        The scene (uint8 or float in [0, 1]).
    n_frames : int, default 8
    noise_levels : float, default 2.0
        Noise sigma in grey levels of 8 bits.
    scale : int, default 2
    crop : (top, left, height, width), default (0, 0, 96, 96)
        Window in HR pixels.
    iterations : int, default 10
        Of back-projection.
    seed : int, default 0

    Returns
    -------
    plotly.graph_objects.Figure
        Panels: the scene, bicubic of the reference frame, shift-and-add, back-projection,
        each titled with its PSNR over the whole image less an 8-pixel border (estimated
        motions).
    """
    seq = simulate_sequence(hr, n_frames, scale, noise_sigma=noise_levels / 255, seed=seed)
    motions = register_frames(seq.frames)
    unit = to_unit(seq.hr)
    bicubic = resize(to_unit(seq.frames[0]), scale=scale)
    panels = {"scene": unit, "bicubic (reference frame)": np.clip(bicubic, 0, 1)}
    panels["shift-and-add"] = fuse(seq.frames, motions, scale, "shift_and_add")
    panels["back-projection"] = fuse(
        seq.frames, motions, scale, "back_project", iterations=iterations
    )
    titled = {
        (name if name == "scene" else f"{name}: {psnr(unit, image, 1.0, border=8):.2f} dB"): image
        for name, image in panels.items()
    }
    return crops_figure(
        titled,
        crop,
        title=f"{n_frames} frames at {scale}x, noise {noise_levels:g} grey levels",
    )


def multiframe_explorer(
    hr: np.ndarray,
    crop: Sequence[int] = (0, 0, 96, 96),
    *,
    max_frames: int = 16,
    scales: Sequence[int] = (2, 3),
    settle_s: float = 1.0,
) -> ipywidgets.VBox:
    """Sliders for the number of frames, the noise and the scale over :func:`multiframe_view`.

    Parameters
    ----------
    hr : ndarray
        The scene; keep it small (e.g. 256 x 256): every change re-runs the whole chain.
    crop : (top, left, height, width)
        Window in HR pixels.
    max_frames : int, default 16
    scales : sequence of int, default (2, 3)
    settle_s : float, default 1.0
        Seconds to wait after the first figure (headless executors; see
        :func:`srlab.viz.crop_explorer`).

    Returns
    -------
    ipywidgets.VBox
        The controls (``children[0].children``) over the output area.
    """
    controls = {
        "n_frames": ipywidgets.IntSlider(
            value=8, min=2, max=max_frames, description="frames", continuous_update=False
        ),
        "noise_levels": ipywidgets.FloatSlider(
            value=2.0, min=0.0, max=8.0, step=0.5, description="noise", continuous_update=False
        ),
        "scale": ipywidgets.Dropdown(options=list(scales), description="scale"),
    }

    def show(n_frames: int, noise_levels: float, scale: int) -> None:
        try:
            display(multiframe_view(hr, n_frames, noise_levels, scale, crop))
        except ValueError as error:  # e.g. a crop that does not fit at this scale
            print(error)

    output = ipywidgets.interactive_output(show, controls)
    time.sleep(settle_s)
    return ipywidgets.VBox([ipywidgets.HBox(list(controls.values())), output])
