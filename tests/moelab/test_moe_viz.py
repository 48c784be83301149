"""moelab.viz: every figure shows the numbers of the table it is given."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import pytest  # noqa: E402
import seaborn as sns  # noqa: E402

from moelab.similarity import (  # noqa: E402
    cross_slot_similarity,
    expert_similarity,
    layer_summary,
    match_experts,
    metric_correlation,
    similarity_matrix,
)
from moelab.viz import (  # noqa: E402
    budget_explorer,
    cross_slot_heatmap,
    layer_profile,
    similarity_clustermap,
    similarity_explorer,
    similarity_heatmap,
    similarity_scatter,
    similarity_view,
)


@pytest.fixture
def tables(tiny_model) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Same-slot table of three tiny models (l2, cka) and the cross-slot table of two."""
    models = {
        name: tiny_model("mixtral", seed) for seed, name in enumerate(["base", "math", "code"])
    }
    same = expert_similarity(models, ["l2", "cka"], progress=False)
    cross = cross_slot_similarity(
        models["base"], models["math"], ["l2", "cka"], names=("base", "math"), progress=False
    )
    return same, cross


def test_similarity_heatmap_one_panel_per_pair(tables):
    same, _ = tables
    fig = similarity_heatmap(same, "l2")
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == ["base vs math", "base vs code", "math vs code"]
    for trace in fig.data:
        np.testing.assert_array_equal(trace.z, similarity_matrix(same, "l2", trace.name).to_numpy())
        assert list(trace.y) == ["layers.0", "layers.1"] and list(trace.x) == ["0", "1", "2", "3"]
    values = same.loc[same.metric == "l2", "value"]
    assert {t.zmin for t in fig.data} == {values.min()} and {t.zmax for t in fig.data} == {
        values.max()
    }
    assert [t.showscale for t in fig.data] == [True, False, False]
    assert fig.data[0].colorbar.title.text == "l2 (distance: lower = more similar)"
    assert not fig.data[0].reversescale
    cka = similarity_heatmap(same, "cka", pairs="base vs code")
    assert len(cka.data) == 1 and cka.data[0].reversescale  # darker = more similar for both
    assert cka.data[0].colorbar.title.text == "cka (similarity: higher = more similar)"
    with pytest.raises(ValueError, match=re.escape("unknown pairs ['x vs y']; the table has")):
        similarity_heatmap(same, "l2", pairs=["x vs y"])
    with pytest.raises(
        ValueError, match=re.escape("unknown metric 'router'; the table has ['l2', 'cka']")
    ):
        similarity_heatmap(same, "router")


def test_cross_slot_heatmap_marks_the_matching(tables):
    _, cross = tables
    fig = cross_slot_heatmap(cross, "l2", layer=1)
    heat, marks = fig.data
    np.testing.assert_array_equal(heat.z, similarity_matrix(cross, "l2", layer=1).to_numpy())
    matched = match_experts(cross, "l2").query("layer == 1")
    assert list(zip(marks.y, marks.x)) == [
        (str(a), str(b)) for a, b in zip(matched.expert_a, matched.expert_b)
    ]
    assert (
        fig.layout.xaxis.title.text == "expert of math"
        and fig.layout.yaxis.title.text == "expert of base"
    )
    assert len(cross_slot_heatmap(cross, "cka", layer=0, show_matching=False).data) == 1
    with pytest.raises(ValueError, match="several values of layer"):
        cross_slot_heatmap(cross, "l2")


def test_layer_profile_draws_per_layer_means(tables):
    same, _ = tables
    fig = layer_profile(same, "cka", pairs=["base vs math", "math vs code"])
    assert [t.name for t in fig.data] == ["base vs math", "math vs code"]
    summary = layer_summary(same, "cka")
    expected = summary[summary.pair == "math vs code"].sort_values("layer")
    np.testing.assert_allclose(fig.data[1].y, expected["mean"])
    np.testing.assert_allclose(fig.data[1].error_y.array, expected["max"] - expected["mean"])


def test_similarity_scatter_uses_distances_and_spearman(tables):
    same, _ = tables
    fig = similarity_scatter(same, "l2", "cka")
    assert len(fig.data) == 3
    rows = same[same.pair == "base vs code"]
    l2 = rows[rows.metric == "l2"].sort_values(["layer", "expert"])["value"].to_numpy()
    cka = rows[rows.metric == "cka"].sort_values(["layer", "expert"])["value"].to_numpy()
    np.testing.assert_allclose(fig.data[1].x, l2)
    np.testing.assert_allclose(fig.data[1].y, 1 - cka)
    rho = metric_correlation(same, "l2", "cka").set_index("pair").loc["base vs code", "coefficient"]
    assert fig.data[1].name == f"base vs code (rho = {rho:.2f})"
    assert fig.layout.yaxis.title.text == "1 - cka"


def test_similarity_clustermap_returns_cluster_grid(tables):
    same, _ = tables
    grid = similarity_clustermap(same, "l2")
    try:
        assert isinstance(grid, sns.matrix.ClusterGrid)
        assert grid.data.shape == (8, 3) and sorted(grid.data.columns) == sorted(set(same.pair))
        assert (
            grid.data.loc["layers.1/e2", "math vs code"]
            == same.query(
                "metric == 'l2' and pair == 'math vs code' and layer == 1 and expert == 2"
            )["value"].item()
        )
        assert grid.dendrogram_row is not None and grid.dendrogram_col is not None
    finally:
        plt.close(grid.figure)
    single = similarity_clustermap(same, "cka", pairs="base vs math")
    try:
        assert single.data.shape == (8, 1) and single.dendrogram_col is None
    finally:
        plt.close(single.figure)


def test_similarity_view_same_slot_and_cross_slot(tables):
    same, cross = tables
    fig = similarity_view(same, "cka", "base vs code", 1)
    heat, bar = fig.data
    assert isinstance(heat, go.Heatmap) and isinstance(bar, go.Bar)
    expected = same.query("metric == 'cka' and pair == 'base vs code' and layer == 1").sort_values(
        "expert"
    )
    np.testing.assert_allclose(bar.y, expected["value"])
    outline = fig.layout.shapes[0]
    assert (outline.y0, outline.y1) == (0.5, 1.5)  # around the row of layer 1
    cross_fig = similarity_view(cross, "l2", "base vs math", 0)
    np.testing.assert_array_equal(
        cross_fig.data[0].z, similarity_matrix(cross, "l2", layer=0).to_numpy()
    )
    with pytest.raises(
        ValueError, match=re.escape("similarity_view: unknown layer 5; the table has [0, 1]")
    ):
        similarity_view(same, "cka", "base vs code", 5)
    with pytest.raises(ValueError, match="unknown pair 'a vs b'"):
        similarity_view(same, "cka", "a vs b", 0)


# --- explorers: ipywidgets around the pure figure functions ---------------------------------


def test_similarity_explorer_offers_the_tables_choices(tables):
    same, _ = tables
    box = similarity_explorer(same)
    metric, pair, layer = box.children[0].children
    assert list(metric.options) == ["l2", "cka"]
    assert list(pair.options) == list(dict.fromkeys(same["pair"]))
    assert (layer.min, layer.max) == (int(same["layer"].min()), int(same["layer"].max()))
    assert layer.continuous_update is False
    only = similarity_explorer(same, metrics=["cka"], pairs=["base vs code"])
    assert list(only.children[0].children[0].options) == ["cka"]
    with pytest.raises(ValueError, match=r"metrics \['cosine'\] are not in the table"):
        similarity_explorer(same, metrics=["cosine"])
    with pytest.raises(ValueError, match="the similarity table is empty"):
        similarity_explorer(same.iloc[:0])


def test_budget_explorer_slides_the_plans_budget(tiny_model):
    from moelab.consolidation import plan_consolidation

    tenants = {name: tiny_model("mixtral", seed) for seed, name in enumerate(["a", "b"])}
    plan = plan_consolidation(tenants, 0.75)
    slider = budget_explorer(plan, step=1 / 8).children[0]
    assert (slider.value, slider.min, slider.max, slider.step) == (0.75, 0.5, 1.0, 0.125)
    assert slider.continuous_update is False
    with pytest.raises(ValueError, match="step must lie in"):
        budget_explorer(plan, step=0)
    with pytest.raises(ValueError, match="budget is in 'slots'"):
        budget_explorer(plan_consolidation(tenants, 2, unit="slots"))


def test_precision_heatmap_shows_each_slots_device_and_precision(tiny_model):
    from moelab.families import detect_family
    from moelab.quant import plan_precision
    from moelab.viz import precision_heatmap

    model = tiny_model("mixtral", 1)
    slots = detect_family(model).expert_slots(model.config)
    everything = plan_precision(model, 10**9, slots[:3], group_size=8)
    # Room for the non-expert layers and a few experts only: the rest on the CPU.
    tight = plan_precision(
        model, everything.gpu_bytes - 2 * everything.slot_bytes[-1], slots[:3], group_size=8
    )
    fig = precision_heatmap(tight)
    z = np.asarray(fig.data[0].z)
    table = tight.table()
    expected = (table["device"] == "cpu") * 2 + (table["bits"] > 0)
    assert np.array_equal(z[table["layer"], table["expert"]], expected.to_numpy())
    assert (z == 2).any() and (z == 1).any() and (z == 0).any()
    assert f"{tight.n_quantized} experts quantized" in fig.layout.title.text
    assert "CPU experts: copy" in fig.layout.title.text
    hover = np.asarray(fig.data[0].customdata)
    cpu = table[table["device"] == "cpu"].iloc[0]
    assert hover[cpu["layer"], cpu["expert"]].endswith("(copy)") and cpu["host"] == "copy"
    assert set(table.loc[table["device"] == "gpu", "host"]) == {""}


def test_precision_view_says_why_a_budget_is_refused(tiny_model):
    from moelab.viz import precision_explorer, precision_view

    model = tiny_model("mixtral", 1)
    assert (
        "too small: the minimum is" in precision_view(model, 0.0, 0, group_size=8).layout.title.text
    )
    assert "GPU" in precision_view(model, 1.0, 2, group_size=8).layout.title.text
    with pytest.raises(ValueError, match="bits must be one of"):  # not a budget: raised
        precision_view(model, 1.0, 2, bits=5, group_size=8)
    explorer = precision_explorer(model, (0.0, 1.0, 0.01), group_size=8)
    assert explorer.children[0].max == 1.0 and explorer.children[1].max == 8


def test_precision_front_figure_marks_the_non_dominated_points():
    from moelab.viz import precision_front_figure

    sweep = pd.DataFrame(
        {
            "policy": ["random", "random", "random", "random", "sensitivity", "sensitivity"],
            "seed": [0, 1, 0, 1, 0, 0],
            "bits": [3] * 6,
            "n_quantized": [0, 0, 4, 4, 0, 4],
            "expert_bytes": [100, 100, 40, 40, 100, 40],
            "perplexity_increase": [0.0, 0.0, 0.3, 0.5, 0.0, 0.1],
        }
    )
    fig = precision_front_figure(sweep, 3)
    lines = {trace.name: trace for trace in fig.data}
    assert list(lines["random"].y) == [0.0, pytest.approx(0.4)]  # seeds averaged
    front = lines["Pareto front"]
    assert sorted(zip(front.x, front.y)) == [(40e-6, 0.1), (100e-6, 0.0), (100e-6, 0.0)]
