"""Figures of the fixed-point study (:mod:`srlab.fpga`): difference maps and the word-length Pareto front.

Both functions return a ``plotly.graph_objects.Figure`` and never show it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from srlab.fpga.sweep import pareto_front
from srlab.imagecheck import check_crop
from srlab.metrics import psnr
from srlab.viz._layout import panel_row

__all__ = ["difference_figure", "pareto_figure"]


def difference_figure(
    reference: np.ndarray,
    images: Mapping[str, np.ndarray],
    *,
    crop: Sequence[int] | None = None,
    limit: float | None = None,
) -> go.Figure:
    """Maps of ``image - reference`` in grey levels, one panel per image, one colour scale.

    RGB differences are averaged over the channels. Titles give the PSNR of the whole
    image against the reference (data range 255) and the largest difference.

    Parameters
    ----------
    reference : (H, W) or (H, W, C) ndarray
        E.g. :func:`srlab.fpga.sweep.float_reference`.
    images : mapping of str to ndarray
        Label -> image of the reference's shape (e.g. fixed-point outputs).
    crop : (top, left, height, width), optional
        Window to show (scores still use the whole image).
    limit : float, optional
        Colour scale from ``-limit`` to ``limit``; default the largest difference shown.

    Returns
    -------
    plotly.graph_objects.Figure
        One heatmap per image in a row of panels, on one red-blue scale of grey levels.

    Raises
    ------
    ValueError
        If ``images`` is empty, a shape differs from the reference, or the crop is bad.

    Examples
    --------
    >>> ref = np.zeros((8, 8))
    >>> fig = difference_figure(ref, {"one": np.ones((8, 8), np.uint8)})
    >>> fig.layout.annotations[0].text
    'one<br>48.13 dB, max 1.00'
    """
    if not images:
        raise ValueError("images is empty; give at least one {label: image}")
    reference = np.asarray(reference, dtype=np.float64)
    rows, cols = slice(None), slice(None)
    if crop is not None:
        top, left, height, width = check_crop(crop, reference.shape)
        rows, cols = slice(top, top + height), slice(left, left + width)
    maps, titles = [], []
    for label, image in images.items():
        image = np.asarray(image)
        if image.shape != reference.shape:
            raise ValueError(
                f"image {label!r} has shape {image.shape}, the reference {reference.shape}"
            )
        diff = image.astype(np.float64) - reference
        score = psnr(reference, image.astype(np.float64), data_range=255.0)
        titles.append(f"{label}<br>{score:.2f} dB, max {np.abs(diff).max():.2f}")
        window = diff[rows, cols]
        # float32 is far finer than a colour map shows and halves what a notebook stores.
        maps.append((window.mean(axis=2) if window.ndim == 3 else window).astype(np.float32))
    top = float(limit) if limit is not None else max(float(np.abs(m).max()) for m in maps) or 1.0
    fig = panel_row(titles, min_width=420)
    for col, window in enumerate(maps, start=1):
        fig.add_trace(
            go.Heatmap(
                z=window,
                zmin=-top,
                zmax=top,
                colorscale="RdBu_r",
                showscale=col == len(maps),
                colorbar={"title": "grey levels"},
                name=titles[col - 1].split("<br>")[0],
            ),
            row=1,
            col=col,
        )
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{col}", row=1, col=col)
    return fig


def pareto_figure(
    df: pd.DataFrame,
    x: str = "storage_bits",
    y: str = "psnr",
    *,
    color: str | None = None,
    hover: Sequence[str] = ("coeff_fmt", "acc_fmt", "mid_fmt"),
) -> go.Figure:
    """Every design as a point, and the Pareto front (lower ``x``, higher ``y``) as a line.

    Parameters
    ----------
    df : pandas.DataFrame
        E.g. from :func:`srlab.fpga.sweep.word_length_sweep`, averaged over images if wanted.
    x, y : str, default "storage_bits" and "psnr"
        Cost column (lower is better) and quality column (higher is better).
    color : str, optional
        Column whose values get their own colour and their own front (e.g. "kernel").
    hover : sequence of str
        Columns shown on hover (those present).

    Returns
    -------
    plotly.graph_objects.Figure
        Per colour group, the designs as markers and their front as a step line.

    Raises
    ------
    ValueError
        If a column is missing or the frame is empty.

    See Also
    --------
    srlab.fpga.pareto_front : The front of one group, as a table.

    Examples
    --------
    >>> df = pd.DataFrame({"storage_bits": [1, 2, 3], "psnr": [30.0, 35.0, 34.0]})
    >>> [t.name for t in pareto_figure(df).data]
    ['designs', 'Pareto front']
    """
    if df.empty:
        raise ValueError("the frame is empty; run word_length_sweep first")
    for column in (x, y) + ((color,) if color else ()):
        if column not in df.columns:
            raise ValueError(
                f"column {column!r} is not in the frame; columns: {', '.join(map(str, df.columns))}"
            )
    hover = [h for h in hover if h in df.columns]
    groups = list(df.groupby(color, sort=True)) if color else [(None, df)]
    fig = go.Figure()
    for key, group in groups:
        template = "<br>".join(f"{h}=%{{customdata[{i}]}}" for i, h in enumerate(hover))
        designs = {
            "mode": "markers",
            "customdata": group[hover].to_numpy() if hover else None,
            "hovertemplate": f"{x}=%{{x}}<br>{y}=%{{y:.2f}}<br>{template}<extra></extra>",
            "marker": {"opacity": 0.45, "size": 7},
        }
        front = {
            "mode": "lines+markers",
            "line": {"shape": "hv", "width": 2},
            "marker": {"size": 9},
        }
        for rows, name, style in (
            (group, "designs", designs),
            (pareto_front(group, x, y), "Pareto front", front),
        ):
            label = f"{key}: {name}" if color else name
            fig.add_trace(
                go.Scatter(x=rows[x], y=rows[y], name=label, legendgroup=str(key), **style)
            )
    fig.update_layout(
        xaxis_title=f"{x} (estimate)", yaxis_title=f"{y} (dB)" if y == "psnr" else y, height=420
    )
    return fig
