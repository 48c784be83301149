"""Figures of the quality table: PSNR or SSIM bars per image and scale, and a heatmap."""

from __future__ import annotations

import matplotlib.figure
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import seaborn as sns

from srlab.quality import Metric, score_pivot
from srlab.viz._layout import titled

__all__ = ["quality_figure", "quality_heatmap"]


def quality_figure(
    table: pd.DataFrame, metric: Metric = "psnr", *, baseline: str | None = None
) -> go.Figure:
    """Bars of one score per image, methods side by side, one row of panels per scale.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`srlab.quality.kernel_quality_table`.
    metric : {"psnr", "ssim"}
        Score to plot.
    baseline : str, optional
        A method label; when given, bars show the gain over it on the same image and scale.

    Returns
    -------
    plotly.graph_objects.Figure
        Grouped bars in one row of panels per scale.

    Raises
    ------
    ValueError
        If the table lacks columns, the metric is unknown or the baseline is not a method.

    Examples
    --------
    >>> t = pd.DataFrame({"image": ["a", "a"], "scale": [2.0, 2.0], "method": ["x", "y"],
    ...                   "family": ["ours", "ours"], "psnr": [30.0, 31.0], "ssim": [0.9, 0.9]})
    >>> quality_figure(t, baseline="x").data[1].y.tolist()
    [1.0]
    """
    grid = score_pivot(table, metric)  # validates table and metric
    y_title = metric.upper() + (" (dB)" if metric == "psnr" else "")
    data = table[["image", "scale", "method", metric]].rename(columns={metric: "value"})
    if baseline is not None:
        if baseline not in grid.index:
            raise ValueError(
                f"baseline {baseline!r} is not a method of the table; methods: {', '.join(grid.index)}"
            )
        keys = pd.MultiIndex.from_frame(data[["image", "scale"]])
        data = data.assign(
            value=data["value"].to_numpy() - grid.loc[baseline].reindex(keys).to_numpy()
        )
        y_title = f"{y_title} gain over {baseline}"
    fig = px.bar(
        data,
        x="image",
        y="value",
        color="method",
        barmode="group",
        facet_row="scale",
        category_orders={"method": list(grid.index)},
        color_discrete_sequence=px.colors.qualitative.Alphabet,
        labels={"value": y_title},
    )
    titled(fig, f"{metric.upper()} per image and scale", height=280 * data["scale"].nunique() + 120)
    return go.Figure(fig)


def quality_heatmap(
    table: pd.DataFrame, metric: Metric = "psnr", *, annotate: bool = True
) -> matplotlib.figure.Figure:
    """Seaborn heatmap of one score: methods down, (image, scale) across.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`srlab.quality.kernel_quality_table`.
    metric : {"psnr", "ssim"}
        Score to show.
    annotate : bool
        Write the value in each cell.

    Returns
    -------
    matplotlib.figure.Figure
        Built without pyplot, so it is shown once when returned in a notebook.

    Raises
    ------
    ValueError
        If the table lacks columns or the metric is unknown.

    Examples
    --------
    >>> t = pd.DataFrame({"image": ["a"], "scale": [2.0], "method": ["x"], "psnr": [30.0]})
    >>> quality_heatmap(t).axes[0].get_ylabel()
    'method'
    """
    grid = score_pivot(table, metric)
    grid.columns = [f"{image} {scale:g}x" for image, scale in grid.columns]
    fig = matplotlib.figure.Figure(
        figsize=(1.0 + 0.75 * grid.shape[1], 1.5 + 0.35 * grid.shape[0]), layout="constrained"
    )
    ax = fig.add_subplot()
    sns.heatmap(
        grid,
        ax=ax,
        annot=annotate,
        fmt=".1f" if metric == "psnr" else ".3f",
        cmap="viridis",
        cbar_kws={"label": metric.upper() + (" (dB)" if metric == "psnr" else "")},
        annot_kws={"fontsize": 7},
    )
    ax.set_xlabel("image and scale")
    ax.set_ylabel("method")
    ax.set_title(f"{metric.upper()} of every method")
    return fig
