"""Interactive explorers for JupyterLab: ``ipywidgets`` controls around pure figure functions.

Each explorer wraps a pure function (``update(**params) -> Figure``) with
``ipywidgets.interactive_output``, so tests drive the function and notebooks only display the
explorer. Sliders update on release (``continuous_update=False``): every update redraws a figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets
import pandas as pd
import plotly.graph_objects as go
from IPython.display import display

from moelab.consolidation import ConsolidationPlan
from moelab.viz._consolidation import plan_heatmap
from moelab.viz._quant import precision_heatmap
from moelab.viz._similarity import similarity_view

__all__ = ["budget_explorer", "precision_explorer", "precision_view", "similarity_explorer"]


def similarity_explorer(
    table: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    pairs: Sequence[str] | None = None,
) -> ipywidgets.VBox:
    """Explore a similarity table by metric, pair and layer (:func:`similarity_view`).

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`~moelab.similarity.expert_similarity` or
        :func:`~moelab.similarity.cross_slot_similarity`.
    metrics, pairs : sequence of str, optional
        Choices offered; by default every metric and pair of the table, in table order.

    Returns
    -------
    ipywidgets.VBox
        The controls (``children[0].children``: metric, pair, layer) over the figure.

    Raises
    ------
    ValueError
        If the table is empty or a requested metric or pair is not in it.
    """
    if table.empty:
        raise ValueError("the similarity table is empty; compute it with expert_similarity first")
    metrics = list(dict.fromkeys(table["metric"])) if metrics is None else list(metrics)
    pairs = list(dict.fromkeys(table["pair"])) if pairs is None else list(pairs)
    for kind, chosen, present in (
        ("metric", metrics, table["metric"]),
        ("pair", pairs, table["pair"]),
    ):
        missing = sorted(set(chosen) - set(present))
        if missing or not chosen:
            raise ValueError(
                f"{kind}s {missing or chosen} are not in the table; it has {sorted(set(present))}"
            )
    controls = {
        "metric": ipywidgets.Dropdown(options=metrics, description="metric"),
        "pair": ipywidgets.Dropdown(options=pairs, description="pair"),
        "layer": ipywidgets.IntSlider(
            min=int(table["layer"].min()),
            max=int(table["layer"].max()),
            description="layer",
            continuous_update=False,
        ),
    }
    output = ipywidgets.interactive_output(
        lambda metric, pair, layer: display(similarity_view(table, metric, pair, layer)), controls
    )
    return ipywidgets.VBox([ipywidgets.HBox(list(controls.values())), output])


def budget_explorer(plan: ConsolidationPlan, step: float = 1 / 64) -> ipywidgets.VBox:
    """Explore a consolidation plan's budget: the shared slots and their owners (:func:`plan_heatmap`).

    Moving the slider re-plans from the stored distances (:meth:`ConsolidationPlan.with_budget`);
    no weights are read again.

    Parameters
    ----------
    plan : ConsolidationPlan
        A plan whose budget is a fraction of the separate models' expert bytes.
    step : float, default 1/64
        Slider step, in (0, 1].

    Returns
    -------
    ipywidgets.VBox
        The budget slider (``children[0]``) over the heatmap.

    Raises
    ------
    ValueError
        If ``step`` is not in (0, 1] or the plan's budget is not a fraction.
    """
    if not 0 < step <= 1:
        raise ValueError(f"step must lie in (0, 1], got {step}")
    if plan.budget_unit != "fraction":
        raise ValueError(
            f"budget_explorer slides a fraction budget, but this plan's budget is in "
            f"{plan.budget_unit!r}; plan with a fraction, e.g. plan_consolidation(models, 0.75)"
        )
    tenants = len(plan.tenants)
    slider = ipywidgets.FloatSlider(
        value=plan.budget,
        min=1 / tenants,
        max=1.0,
        step=step,
        description="budget",
        continuous_update=False,
        readout_format=".3f",
    )
    output = ipywidgets.interactive_output(
        lambda budget: display(plan_heatmap(plan.with_budget(budget))), {"budget": slider}
    )
    return ipywidgets.VBox([slider, output])


def precision_view(
    model: object, budget_gb: float, n_quantized: int, order: Sequence | None = None, **plan_kwargs
) -> go.Figure:
    """The plan of ``n_quantized`` quantized experts under ``budget_gb``, as a heatmap.

    Parameters
    ----------
    model : MoEModel, PreTrainedModel or WeightSource
        Gives shapes and dtype (:func:`moelab.quant.plan_precision`; nothing is read).
    budget_gb : float
        GPU budget in GB (1e9 bytes).
    n_quantized : int
        How many experts of ``order`` are quantized.
    order : sequence of ExpertSlot, optional
        The quantization order (e.g. :func:`moelab.quant.select_experts`); layer-major by
        default.
    **plan_kwargs
        Passed to :func:`~moelab.quant.plan_precision` (``bits``, ``group_size``, ``rows``).

    Returns
    -------
    plotly.graph_objects.Figure
        :func:`precision_heatmap` of the plan, or an empty figure whose title says why the
        budget cannot hold it.

    Raises
    ------
    ValueError
        Any other invalid request (bits, group size, slots), as :func:`plan_precision` says.
    """
    from moelab.quant import plan_precision
    from moelab.sources import open_source

    slots = list(order) if order is not None else open_source(model).expert_slots()
    try:
        plan = plan_precision(model, int(budget_gb * 1e9), slots[:n_quantized], **plan_kwargs)
    except ValueError as err:
        if "too small" not in str(err):  # only a budget's refusal is an answer to draw
            raise
        return go.Figure().update_layout(title=str(err).split(" (")[0])
    return precision_heatmap(plan)


def precision_explorer(
    model: object,
    budgets_gb: tuple[float, float, float],
    order: Sequence | None = None,
    **plan_kwargs,
) -> ipywidgets.VBox:
    """Explore precision plans: a GPU budget slider and a number-of-quantized-experts slider.

    Parameters
    ----------
    model : MoEModel, PreTrainedModel or WeightSource
        Gives shapes and dtype (nothing is read, so a Mixtral-8x7B shape plans instantly).
    budgets_gb : (min, max, step)
        The budget slider's range in GB.
    order : sequence of ExpertSlot, optional
        The quantization order; layer-major by default.
    **plan_kwargs
        Passed to :func:`~moelab.quant.plan_precision`.

    Returns
    -------
    ipywidgets.VBox
        The two sliders (``children[0]``, ``children[1]``) over :func:`precision_view`.
    """
    from moelab.sources import open_source

    low, high, step = budgets_gb
    order = list(order) if order is not None else None  # read once, an iterator too
    n_slots = len(order if order is not None else open_source(model).expert_slots())
    budget = ipywidgets.FloatSlider(
        value=high, min=low, max=high, step=step, description="GPU GB", continuous_update=False
    )
    count = ipywidgets.IntSlider(
        value=0, min=0, max=n_slots, description="quantized", continuous_update=False
    )
    output = ipywidgets.interactive_output(
        lambda budget_gb, n: display(precision_view(model, budget_gb, n, order, **plan_kwargs)),
        {"budget_gb": budget, "n": count},
    )
    return ipywidgets.VBox([budget, count, output])
