"""Figures of precision and placement: a plan's slot map and a sweep's quality/memory fronts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go

if TYPE_CHECKING:
    from moelab.quant import PrecisionPlan

__all__ = ["precision_front_figure", "precision_heatmap"]

# Category of a slot (bits quantized or not, device) -> colour index and label.
_CATEGORIES = (
    ("gpu", False, "GPU, as stored", "#2a9d8f"),
    ("gpu", True, "GPU, quantized", "#e9c46a"),
    ("cpu", False, "CPU, as stored", "#e76f51"),
    ("cpu", True, "CPU, quantized", "#9b5de5"),
)


def precision_heatmap(plan: PrecisionPlan) -> go.Figure:
    """Layers x experts map of a plan: each slot's device and whether it is quantized.

    Parameters
    ----------
    plan : PrecisionPlan
        The plan to draw (:func:`moelab.quant.plan_precision`).

    Returns
    -------
    plotly.graph_objects.Figure
        One cell per slot, coloured by category (GPU or CPU, as stored or quantized; a CPU
        slot's hover says what happens to it when routed to); the title gives the GPU and CPU
        bytes, the cache rows (of each precision) and the plan's host mode.
    """
    table = plan.table()
    index = {(device, quantized): i for i, (device, quantized, _, _) in enumerate(_CATEGORIES)}
    table["category"] = [index[(d, b > 0)] for d, b in zip(table["device"], table["bits"])]
    grid = table.pivot(index="layer", columns="expert", values="category")
    labels = [label for _, _, label, _ in _CATEGORIES]
    table["hover"] = [
        labels[c] + (f" ({h})" if h else "") for c, h in zip(table["category"], table["host"])
    ]
    hover = table.pivot(index="layer", columns="expert", values="hover")
    n = len(_CATEGORIES)
    # A discrete colour scale: category i fills [i / n, (i + 1) / n].
    scale = []
    for i, (_, _, _, colour) in enumerate(_CATEGORIES):
        scale += [[i / n, colour], [(i + 1) / n, colour]]
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(dtype=float),
            x=[str(c) for c in grid.columns],
            y=list(grid.index),
            zmin=-0.5,
            zmax=n - 0.5,
            colorscale=scale,
            customdata=hover.to_numpy(),
            colorbar={"tickvals": list(range(n)), "ticktext": labels},
            hovertemplate="layer %{y} expert %{x}<br>%{customdata}<extra></extra>",
        )
    )
    fig.update_layout(
        title=(
            f"GPU {plan.gpu_bytes / 1e9:.2f} GB (budget {plan.budget / 1e9:.2f}), CPU "
            f"{plan.cpu_bytes / 1e9:.2f} GB; {plan.n_quantized} experts quantized, "
            f"{plan.cache_rows} cache rows"
            + (f" + {plan.quantized_cache_rows} quantized" if plan.quantized_cache_rows else "")
            + f"; CPU experts: {plan.host}"
        ),
        xaxis_title="expert",
        yaxis_title="MoE layer",
        yaxis={"autorange": "reversed"},
    )
    return fig


def precision_front_figure(sweep: pd.DataFrame, bits: int) -> go.Figure:
    """Perplexity increase against expert memory, one line per selection policy, fronts marked.

    Parameters
    ----------
    sweep : pandas.DataFrame
        Rows of :func:`moelab.quant.sweep_precision` (``policy``, ``bits``, ``n_quantized``,
        ``expert_bytes``, ``perplexity_increase``; seeds averaged here).
    bits : int
        The width drawn.

    Returns
    -------
    plotly.graph_objects.Figure
        x: expert megabytes; y: perplexity increase over the unquantized model; the Pareto
        front over all policies drawn as large open circles.
    """
    from moelab.quant import pareto_front

    rows = sweep[sweep["bits"] == bits]
    mean = (
        rows.groupby(["policy", "n_quantized"], as_index=False)[
            ["expert_bytes", "perplexity_increase"]
        ]
        .mean()
        .sort_values(["policy", "n_quantized"])
    )
    fig = go.Figure()
    for policy, part in mean.groupby("policy", sort=False):
        fig.add_scatter(
            x=part["expert_bytes"] / 1e6,
            y=part["perplexity_increase"],
            mode="lines+markers",
            name=policy,
            customdata=part["n_quantized"],
            hovertemplate=(
                f"{policy}<br>%{{customdata}} quantized<br>%{{x:.3f}} MB<br>"
                "+%{y:.4f} perplexity<extra></extra>"
            ),
        )
    front = pareto_front(mean, minimize=["expert_bytes", "perplexity_increase"])
    fig.add_scatter(
        x=front["expert_bytes"] / 1e6,
        y=front["perplexity_increase"],
        mode="markers",
        name="Pareto front",
        marker={"size": 14, "symbol": "circle-open", "color": "black"},
        hoverinfo="skip",
    )
    fig.update_layout(
        title=f"{bits}-bit experts: quality against memory per selection policy",
        xaxis_title="expert memory (MB)",
        yaxis_title="perplexity increase",
    )
    return fig
