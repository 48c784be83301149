"""Figures and tables of the kernels themselves: profiles, frequency responses, hardware cost."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from srlab.quality import KernelSpec, Method, resolve_methods
from srlab.viz._layout import titled

__all__ = [
    "DEFAULT_KERNELS",
    "frequency_response",
    "frequency_response_figure",
    "hardware_figure",
    "hardware_table",
    "kernel_shapes_figure",
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
def kernel_shapes_figure(
    kernels: Sequence[KernelSpec] | None = None, *, num: int = 401
) -> go.Figure:
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
    fig = go.Figure(
        [go.Scatter(x=x, y=m.kernel.profile(x), mode="lines", name=m.label) for m in methods]
    )
    return titled(
        fig,
        "Kernel profiles",
        xaxis_title="distance from the output sample (input pixels)",
        yaxis_title="weight k(x)",
    )


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
        raise ValueError(
            f"max_frequency must be a positive number of cycles per pixel, got {max_frequency}"
        )
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
            pd.DataFrame(
                {
                    "kernel": method.label,
                    "frequency": frequency,
                    "magnitude": magnitude,
                    "magnitude_db": db,
                }
            )
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
    kernels, max_frequency
        As in :func:`frequency_response` (the highest frequency shown).
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
    titled(
        fig,
        "Frequency response |K(f)|",
        xaxis_title="frequency (cycles per input pixel)",
        yaxis_title="magnitude (dB)" if db else "magnitude",
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
    return pd.DataFrame(
        rows, columns=["kernel", "taps", "multipliers", "adders", "shifts", "notes"]
    )


def hardware_figure(table: pd.DataFrame) -> go.Figure:
    """Grouped bars of taps, multipliers, adders and shifts per kernel.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`hardware_table`.

    Returns
    -------
    plotly.graph_objects.Figure
        Four bars per kernel, grouped.

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
    return titled(
        fig, "Arithmetic per output sample of a 1-D pass", barmode="group", yaxis_title="count"
    )
