"""The look srlab's plotly figures share: a row of image panels, and titled charts.

Image panels (crop comparisons, fixed-point difference maps) sit side by side in one row,
without tick labels, at one height; charts (kernel profiles, frequency responses, cost
and quality bars) carry a title and the white template.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["PANEL_HEIGHT", "PANEL_WIDTH", "TEMPLATE", "panel_row", "titled"]

TEMPLATE = "plotly_white"
"""The plotly template of the charts."""
PANEL_HEIGHT = 320
"""Height of a row of image panels, in pixels (titles included)."""
PANEL_WIDTH = 260
"""Width each image panel adds to a row, in pixels."""


def panel_row(titles: Sequence[str], *, min_width: int, title: str | None = None) -> go.Figure:
    """An empty one-row grid of image panels, one per title, without tick labels.

    Parameters
    ----------
    titles : sequence of str
        Panel titles, left to right.
    min_width : int
        Width of the figure when few panels would make it narrower, in pixels.
    title : str, optional
        Figure title.

    Returns
    -------
    plotly.graph_objects.Figure
        Subplots ``(row=1, col=1..len(titles))`` to add the panels' traces to.

    Examples
    --------
    >>> fig = panel_row(["a", "b"], min_width=600)
    >>> fig.layout.width, fig.layout.height, [a.text for a in fig.layout.annotations]
    (600, 320, ['a', 'b'])
    """
    fig = make_subplots(
        rows=1, cols=len(titles), subplot_titles=list(titles), horizontal_spacing=0.02
    )
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(
        title=title,
        height=PANEL_HEIGHT,
        width=max(min_width, PANEL_WIDTH * len(titles)),
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
    )
    return fig


def titled(fig: go.Figure, title: str, **layout: Any) -> go.Figure:
    """``fig`` with ``title``, the charts' template and any other layout (e.g. axis titles).

    Examples
    --------
    >>> fig = titled(go.Figure(), "Kernel profiles", yaxis_title="weight")
    >>> fig.layout.title.text, fig.layout.yaxis.title.text
    ('Kernel profiles', 'weight')
    """
    fig.update_layout(title=title, template=TEMPLATE, **layout)
    return fig
