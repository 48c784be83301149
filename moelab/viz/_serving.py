"""Figures of serving runs: one run's timeline, and quality of service against load."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

if TYPE_CHECKING:
    from moelab.serving import ServingRun

__all__ = ["qos_figure", "serving_timeline"]


def serving_timeline(run: ServingRun) -> go.Figure:
    """One run over time: each request's wait and service per tenant, and the queue length.

    Parameters
    ----------
    run : ServingRun
        From :func:`moelab.serving.serve`.

    Returns
    -------
    plotly.graph_objects.Figure
        Top: one lane per tenant; a thin line from arrival to start (waiting), a thick one
        from start to finish (served), a marker where the engine switched tenants. Bottom:
        the queue length.
    """
    table = run.requests()
    done = table[table["status"] == "done"]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3])
    for tenant, rows in done.groupby("tenant", sort=False):
        lane = [tenant] * len(rows)
        for start, end, width, name in (
            ("arrival_s", "start_s", 2, f"{tenant} waiting"),
            ("start_s", "finish_s", 10, f"{tenant} served"),
        ):
            xs, ys = [], []
            for a, b in zip(rows[start], rows[end]):
                xs += [a, b, None]
                ys += [tenant, tenant, None]
            fig.add_scatter(x=xs, y=ys, mode="lines", line={"width": width}, name=name)
        switched = rows[rows["switch_s"] > 0]
        fig.add_scatter(
            x=switched["start_s"],
            y=lane[: len(switched)],
            mode="markers",
            marker={"symbol": "line-ns-open", "size": 14},
            name=f"switch to {tenant}",
        )
    times, lengths = zip(*run.queue) if run.queue else ((), ())
    fig.add_scatter(
        x=times, y=lengths, mode="lines", line={"shape": "hv"}, name="queue", row=2, col=1
    )
    fig.update_layout(
        title=f"{run.engine}, {run.scheduler}: {len(done)} requests served",
        xaxis2_title="time (s)",
        yaxis2_title="queued",
    )
    return fig


def qos_figure(
    table: pd.DataFrame, y: str = "mean_turnaround_s", x: str = "rate_per_s", *, log: bool = False
) -> go.Figure:
    """A serving metric against the request rate, one line per engine.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per (engine, rate): an ``engine`` column, ``x`` and ``y`` (e.g. the
        :meth:`ServingRun.summary` of each run with the rate added).
    y : str, default "mean_turnaround_s"
        The metric.
    x : str, default "rate_per_s"
        The load.
    log : bool, default False
        Logarithmic axes (engines whose saturation rates differ by orders of magnitude).

    Returns
    -------
    plotly.graph_objects.Figure

    Raises
    ------
    ValueError
        If a column is missing.
    """
    missing = [c for c in ("engine", x, y) if c not in table.columns]
    if missing:
        raise ValueError(f"qos_figure needs columns {missing}; the table has {list(table.columns)}")
    fig = go.Figure()
    for engine, rows in table.sort_values(x).groupby("engine", sort=False):
        fig.add_scatter(x=rows[x], y=rows[y], mode="lines+markers", name=str(engine))
    fig.update_layout(xaxis_title=x.replace("_", " "), yaxis_title=y.replace("_", " "))
    if log:
        fig.update_xaxes(type="log")
        fig.update_yaxes(type="log")
    return fig
