"""Figures of a consolidation: the plan's slot heatmap and the consolidated model's memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go

if TYPE_CHECKING:
    from moelab.consolidation import ConsolidationPlan
    from moelab.reconfigure import ConsolidatedMoE

__all__ = ["memory_figure", "plan_heatmap"]


def plan_heatmap(plan: ConsolidationPlan) -> go.Figure:
    """Layers x experts heatmap of the slot distances, shared slots marked with their owner.

    Parameters
    ----------
    plan : ConsolidationPlan
        The plan to draw.

    Returns
    -------
    plotly.graph_objects.Figure
        Colour: summed distance; text in a cell: the owner of a shared slot (blank = private).
    """
    dist = plan.grid("distance")
    owner = plan.grid("owner").fillna("")
    fig = go.Figure(
        go.Heatmap(
            z=dist.to_numpy(dtype=float),
            x=[str(c) for c in dist.columns],
            y=list(dist.index),
            text=owner.to_numpy(),
            texttemplate="%{text}",
            colorscale="Viridis",
            colorbar={"title": f"{plan.metric} distance"},
            hovertemplate="%{y} expert %{x}<br>distance %{z:.4g}<br>owner %{text}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"{plan.n_shared} of {plan.memory.n_slots} slots shared (labelled by owner)",
        xaxis_title="expert",
        yaxis_title="MoE layer",
        yaxis={"autorange": "reversed"},
    )
    return fig


def memory_figure(cmoe: ConsolidatedMoE) -> go.Figure:
    """Stacked bars of a consolidated model's memory against N separate models.

    Parameters
    ----------
    cmoe : ConsolidatedMoE
        The consolidated model.

    Returns
    -------
    plotly.graph_objects.Figure
        Two bars in MB: the consolidated model (stacked by component, from
        :meth:`ConsolidatedMoE.memory_report`) and N separate models (non-expert sets and
        experts).
    """
    report = cmoe.memory_report().groupby("component", sort=False, as_index=False)["bytes"].sum()
    acc = cmoe.plan.memory
    consolidated = f"consolidated ({cmoe.mode})"
    separate = f"{acc.n_tenants} separate models"
    parts = [(row.component, consolidated, row.bytes) for row in report.itertuples()]
    parts += [
        ("non-expert set", separate, sum(acc.non_expert_bytes)),
        ("experts (separate)", separate, acc.naive_expert_bytes),
    ]
    fig = go.Figure()
    for component in dict.fromkeys(p[0] for p in parts):
        xs = [bar for c, bar, _ in parts if c == component]
        ys = [b / 1e6 for c, _, b in parts if c == component]
        fig.add_bar(name=component, x=xs, y=ys)
    fig.update_layout(barmode="stack", yaxis_title="MB", title="Resident parameter memory")
    return fig
