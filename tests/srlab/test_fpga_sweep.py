"""Word-length sweep (resumable), Pareto front and the fixed-point figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from srlab.fpga import FixedPointResizer, float_reference, pareto_front, word_length_sweep
from srlab.metrics import psnr
from srlab.viz import difference_figure, pareto_figure


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:24, 0:24]
    chart = (
        (127.5 + 127.5 * np.cos(0.02 * (x**2 + y**2))).round().astype(np.uint8)
    )  # a small zone plate
    return {"chart": chart, "noise": rng.integers(0, 256, (20, 22, 3), dtype=np.uint8)}


def _dominates(a: pd.Series, b: pd.Series, x: str, y: str) -> bool:
    return a[x] <= b[x] and a[y] >= b[y] and (a[x] < b[x] or a[y] > b[y])


@pytest.mark.parametrize("seed", range(5))
def test_pareto_front_has_no_dominated_point_and_covers_the_rest(seed):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {"cost": rng.integers(0, 15, 60), "psnr": rng.integers(20, 40, 60).astype(float)}
    )
    df.loc[3, "psnr"] = np.nan
    front = pareto_front(df, "cost", "psnr")
    assert 3 not in front.index
    for _, p in front.iterrows():
        assert not any(_dominates(q, p, "cost", "psnr") for _, q in df.dropna().iterrows())
    for i, p in df.dropna().drop(front.index).iterrows():
        assert any(_dominates(q, p, "cost", "psnr") for _, q in front.iterrows()), i
    assert front["cost"].is_monotonic_increasing and front["psnr"].is_monotonic_increasing


def test_pareto_front_directions_and_ties():
    df = pd.DataFrame({"a": [1, 1, 2, 3], "b": [5.0, 5.0, 9.0, 1.0]})
    assert sorted(pareto_front(df, "a", "b").index) == [0, 1, 2]  # equal points are both kept
    assert pareto_front(df, "a", "b", x_better="max", y_better="min").index.tolist() == [3]
    with pytest.raises(ValueError, match="column 'c' is not in the frame"):
        pareto_front(df, "a", "c")
    with pytest.raises(ValueError, match="y_better must be 'min' or 'max'"):
        pareto_front(df, "a", "b", y_better="up")


def test_sweep_scores_against_the_float_resize(images):
    df = word_length_sweep(images, ["bicubic", "bilinear"], 2, [3, 8], [0, 8], progress=False)
    assert len(df) == 2 * 2 * 2 * 2
    row = df[
        (df.image == "noise")
        & (df.kernel == "bicubic")
        & (df.coeff_frac_bits == 8)
        & (df.acc_frac_bits == 8)
    ].iloc[0]
    design = FixedPointResizer.from_fraction_bits("bicubic", 2, 8, 8)
    expected = psnr(
        float_reference(images["noise"], 2, "bicubic"),
        design.run(images["noise"]).astype(float),
        data_range=255,
    )
    assert row["psnr"] == pytest.approx(expected, abs=1e-12)
    assert (
        row["coeff_fmt"] == str(design.coeff_fmt) and row["storage_bits"] > row["line_buffer_bits"]
    )
    # More bits never hurt here, and 8/8 is within the 8-bit output rounding (about 59 dB).
    pivot = df.groupby(["kernel", "coeff_frac_bits", "acc_frac_bits"])["psnr"].mean()
    assert (
        pivot["bicubic", 8, 8] > pivot["bicubic", 3, 8]
        and pivot["bicubic", 8, 8] > pivot["bicubic", 8, 0]
    )
    assert pivot["bicubic", 8, 8] > 55
    assert df["max_abs_error"].min() >= 0


def test_sweep_resumes_from_its_csv(images, tmp_path):
    path = tmp_path / "sweep.csv"
    first = word_length_sweep(images, ["bicubic"], 2, [4, 6], [2], path=path, progress=False)
    on_disk = pd.read_csv(path)
    assert len(on_disk) == 4 and not list(tmp_path.glob(".*.tmp"))
    # Mark a finished row and drop another: the marked one must be kept, the dropped one redone.
    on_disk.loc[0, "psnr"] = -1.0
    on_disk.drop(index=3).to_csv(path, index=False)
    again = word_length_sweep(images, ["bicubic"], 2, [4, 6], [2], path=path, progress=False)
    assert len(again) == 4 and (again["psnr"] == -1.0).sum() == 1
    redone = again.iloc[-1]
    original = first.set_index(["image", "coeff_frac_bits"]).loc[
        (redone["image"], redone["coeff_frac_bits"])
    ]
    assert redone["psnr"] == pytest.approx(original["psnr"])
    assert len(pd.read_csv(path)) == 4


def test_sweep_bad_input(images):
    with pytest.raises(ValueError, match="images is empty"):
        word_length_sweep({}, progress=False)
    with pytest.raises(ValueError, match="unknown image 'nope'"):
        word_length_sweep(["nope"], progress=False)
    with pytest.raises(ValueError, match="coeff_frac_bits must be a non-empty list of integers"):
        word_length_sweep(images, coeff_frac_bits=[], progress=False)
    with pytest.raises(TypeError, match=r"acc_frac_bits must be a non-empty list of integers"):
        word_length_sweep(images, acc_frac_bits=[4, 4.5], progress=False)
    with pytest.raises(TypeError, match="images must be a list of names or a {name: image}"):
        word_length_sweep("camera", progress=False)
    with pytest.raises(ValueError, match="image 'f' dtype float64 is not supported; use uint8"):
        word_length_sweep({"f": np.zeros((8, 8))}, progress=False)
    with pytest.raises(ValueError, match="unknown kernel 'cubic'"):
        word_length_sweep(images, ["cubic"], progress=False)


def test_figures(images):
    df = word_length_sweep(images, ["bicubic", "bilinear"], 2, [3, 6], [0, 4], progress=False)
    fig = pareto_figure(df[df.image == "chart"], color="kernel")
    assert isinstance(fig, go.Figure) and [t.name for t in fig.data] == [
        "bicubic: designs",
        "bicubic: Pareto front",
        "bilinear: designs",
        "bilinear: Pareto front",
    ]
    front = pareto_front(
        df[(df.image == "chart") & (df.kernel == "bicubic")], "storage_bits", "psnr"
    )
    assert list(fig.data[1].x) == front["storage_bits"].tolist()
    reference = float_reference(images["noise"], 2, "bicubic")
    outputs = {
        "coarse": FixedPointResizer.from_fraction_bits("bicubic", 2, 3, 0).run(images["noise"])
    }
    diff = difference_figure(reference, outputs, crop=(0, 0, 16, 16))
    assert diff.data[0].z.shape == (16, 16) and diff.data[0].zmax == -diff.data[0].zmin
    with pytest.raises(ValueError, match="has shape"):
        difference_figure(reference, {"bad": np.zeros((4, 4), np.uint8)})
    with pytest.raises(ValueError, match="does not fit"):
        difference_figure(reference, outputs, crop=(30, 0, 16, 16))
    with pytest.raises(ValueError, match="the frame is empty"):
        pareto_figure(df.iloc[:0])


def test_design_quality(images):
    from srlab.fpga import design_quality

    designs = {
        "wide": FixedPointResizer(
            "bicubic",
            2,
            coeff_fmt="ap_fixed<20,2,RND,SAT>",
            mid_fmt="ap_fixed<24,12,RND,SAT>",
            acc_fmt="ap_fixed<40,12>",
        ),
        "coarse": FixedPointResizer.from_fraction_bits("bicubic", 2, 3, 0),
    }
    table, outputs = design_quality(images["noise"], designs)
    assert table.loc["wide", "psnr"] > 58 and table.loc["wide", "max_abs_error"] <= 0.5 + 1e-9
    assert table.loc["coarse", "psnr"] < table.loc["wide", "psnr"] - 10
    assert table.loc["wide", "changed_pixels"] < 0.01 < table.loc["coarse", "changed_pixels"]
    assert np.array_equal(outputs["coarse"], designs["coarse"].run(images["noise"]))
    with pytest.raises(ValueError, match="designs is empty"):
        design_quality(images["noise"], {})
    with pytest.raises(TypeError, match="design 'a' must be a FixedPointResizer, got dict"):
        design_quality(images["noise"], {"a": {}})


def test_sweep_line_buffer_bits_axis(images):
    df = word_length_sweep(
        {"chart": images["chart"]},
        ["bicubic"],
        2,
        [8],
        [0, 14],
        mid_frac_bits=[0, 2],
        progress=False,
    )
    assert sorted(zip(df.acc_frac_bits, df.mid_frac_bits)) == [(0, 0), (0, 2), (14, 0), (14, 2)]
    psnr_of = df.set_index(["acc_frac_bits", "mid_frac_bits"])["psnr"]
    # Rounding once into the line buffer beats truncating every product in the accumulator.
    assert psnr_of[14, 0] > psnr_of[0, 0] + 10 and psnr_of[14, 2] > psnr_of[14, 0]
    assert (
        df.set_index(["acc_frac_bits", "mid_frac_bits"]).loc[(14, 2), "mid_fmt"]
        == "ap_fixed<12,10,RND,SAT>"
    )
