"""Figures of the quality-against-memory sweep (:func:`moelab.compare.compare_methods`)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from moelab.compare import summarize

__all__ = ["quality_memory_figure", "scalability_figure"]


def _summary_of(table: pd.DataFrame, methods: Sequence[str] | None) -> pd.DataFrame:
    summary = summarize(table)
    if methods is not None:
        summary = summary[summary["method"].isin(list(methods))]
    if summary.empty:
        raise ValueError(
            f"no rows to draw for methods {methods}; the table has {sorted(set(table['method']))}"
        )
    return summary


def quality_memory_figure(table: pd.DataFrame, methods: Sequence[str] | None = None) -> go.Figure:
    """Mean per-tenant quality against true total memory, one marker per configuration.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`~moelab.compare.compare_methods`.
    methods : sequence of str, optional
        Draw only these methods (default: all in the table).

    Returns
    -------
    plotly.graph_objects.Figure
        x: total MB; y: mean quality; one trace per method label, marker symbol by tenants.
    """
    summary = _summary_of(table, methods)
    fig = go.Figure()
    symbols = {2: "circle", 3: "square", 4: "diamond"}
    for label, group in summary.groupby("label", sort=False):
        fig.add_scatter(
            x=group["total_mb"],
            y=group["mean_quality"],
            mode="markers+lines",
            name=label,
            marker={"symbol": [symbols.get(int(n), "x") for n in group["tenants"]], "size": 10},
            text=[f"{int(n)} tenants" for n in group["tenants"]],
            hovertemplate="%{text}<br>%{x:.3f} MB<br>%{y:.4g}<extra>" + label + "</extra>",
        )
    metric = summary["metric"].iloc[0]
    fig.update_layout(
        xaxis_title="total parameter memory (MB, measured)",
        yaxis_title=f"mean per-tenant {metric}",
        title="Quality vs memory (circle: 2 tenants, square: 3, diamond: 4)",
    )
    return fig


def scalability_figure(table: pd.DataFrame, methods: Sequence[str] | None = None) -> go.Figure:
    """Mean per-tenant quality against the number of tenants (the paper's Switch figure).

    Parameters
    ----------
    table, methods
        As :func:`quality_memory_figure`.

    Returns
    -------
    plotly.graph_objects.Figure
        One line per method label over N = 2, 3, 4 tenants.
    """
    summary = _summary_of(table, methods).sort_values("tenants", kind="stable")
    fig = go.Figure()
    for label, group in summary.groupby("label", sort=False):
        fig.add_scatter(
            x=group["tenants"], y=group["mean_quality"], mode="lines+markers", name=label
        )
    metric = summary["metric"].iloc[0]
    fig.update_layout(
        xaxis={"title": "tenants", "dtick": 1},
        yaxis_title=f"mean per-tenant {metric}",
        title="Scalability: more tenants served by one model",
    )
    return fig
