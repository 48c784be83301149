"""Tests of srlab.viz: figure contents and the data behind them."""

from __future__ import annotations

import base64
import io
import math
import re

import matplotlib.figure
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from PIL import Image

from srlab import get_kernel
from srlab.images import center_crop, load_image
from srlab.kernels import available_kernels
from srlab.metrics import psnr
from srlab.quality import kernel_quality_table, make_pair, reconstruct, resolve_methods
from srlab.viz import (
    DEFAULT_KERNELS,
    compare_crops,
    crop_explorer,
    crops_figure,
    frequency_response,
    frequency_response_figure,
    hardware_figure,
    hardware_table,
    kernel_crops_figure,
    kernel_shapes_figure,
    quality_figure,
    quality_heatmap,
)


def decode(trace: go.Image) -> np.ndarray:
    """Pixels of a go.Image whose source is a PNG data URI."""
    header, data = trace.source.split(",", 1)
    assert header == "data:image/png;base64"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    images = {name: center_crop(load_image(name), (48, 48)) for name in ("camera", "zone_plate")}
    return kernel_quality_table(
        images, [2, 3], ["bilinear", "bicubic", "shift_add_2x"], peers=("opencv",), progress=False
    )


# --------------------------------------------------------------------------- kernels
def test_kernel_shapes_follow_profiles():
    fig = kernel_shapes_figure(["bilinear", ("bicubic", {"a": -0.75}), "lanczos3"], num=61)
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == ["bilinear", "bicubic(a=-0.75)", "lanczos3"]
    x = np.asarray(fig.data[1].x)
    assert x[0] == -3.0 and x[-1] == 3.0  # widest support (lanczos3)
    np.testing.assert_allclose(fig.data[1].y, get_kernel("bicubic", a=-0.75).profile(x))
    assert len(kernel_shapes_figure().data) == len(DEFAULT_KERNELS)
    with pytest.raises(ValueError, match=re.escape("num must be at least 11 points, got 3")):
        kernel_shapes_figure(num=3)


def test_frequency_response_matches_closed_forms():
    r = frequency_response(
        ["nearest", "bilinear", "bicubic", "lanczos3"], max_frequency=1.0, num=41
    )
    f = np.linspace(0, 1, 41)
    by = {name: g for name, g in r.groupby("kernel")}
    np.testing.assert_allclose(by["nearest"]["magnitude"], np.abs(np.sinc(f)), atol=1e-5)
    np.testing.assert_allclose(by["bilinear"]["magnitude"], np.sinc(f) ** 2, atol=1e-5)
    # Interpolating kernels integrate to 1 (DC gain) and vanish at f = 1 for the box family.
    assert by["bicubic"]["magnitude"].iloc[0] == pytest.approx(1.0, abs=1e-6)
    # Sharper kernels keep more of the pass band and leak less above Nyquist.

    def at(name: str, freq: float) -> float:
        return float(by[name]["magnitude"].iloc[round(freq * 40)])

    assert at("bilinear", 0.25) < at("bicubic", 0.25) < at("lanczos3", 0.25)
    assert at("lanczos3", 0.75) < at("bicubic", 0.75) < at("bilinear", 0.75)
    assert list(r.columns) == ["kernel", "frequency", "magnitude", "magnitude_db"]
    np.testing.assert_allclose(
        by["bicubic"]["magnitude_db"].iloc[:-1], 20 * np.log10(by["bicubic"]["magnitude"].iloc[:-1])
    )
    assert by["nearest"]["magnitude_db"].iloc[-1] == -120.0  # sinc zero, floored


def test_frequency_response_bad_input():
    with pytest.raises(
        ValueError,
        match=re.escape("max_frequency must be a positive number of cycles per pixel, got 0"),
    ):
        frequency_response(max_frequency=0)
    with pytest.raises(ValueError, match=re.escape("num must be at least 2 frequencies, got 1")):
        frequency_response(num=1)
    with pytest.raises(ValueError, match=re.escape("unknown kernel 'box'")):
        frequency_response(["box"])


def test_frequency_response_figure():
    fig = frequency_response_figure(["bilinear", "lanczos2"], db=True)
    assert [t.name for t in fig.data] == ["bilinear", "lanczos2"]
    assert fig.layout.shapes[0].x0 == 0.5
    assert tuple(fig.layout.yaxis.range) == (-60, 3)
    linear = frequency_response_figure(["bilinear"], db=False)
    assert max(linear.data[0].y) == pytest.approx(1.0)


def test_hardware_table_reads_kernel_costs():
    t = hardware_table()
    assert list(t.columns) == ["kernel", "taps", "multipliers", "adders", "shifts", "notes"]
    assert t["kernel"].tolist()[-2:] == ["shift_add_2x", "shift_add_2x_opencv"]
    for label, name, params in [
        ("bicubic(a=-0.75)", "bicubic", {"a": -0.75}),
        ("shift_add_2x", "shift_add_2x", {}),
    ]:
        row = t.set_index("kernel").loc[label]
        cost = get_kernel(name, **params).hardware
        assert (row.taps, row.multipliers, row.adders, row.shifts) == (
            cost.taps,
            cost.multipliers,
            cost.adders,
            cost.shifts,
        )
    assert t.set_index("kernel").loc["shift_add_2x", "multipliers"] == 0


def test_hardware_figure():
    fig = hardware_figure(hardware_table(["bilinear", "bicubic"]))
    assert [t.name for t in fig.data] == ["taps", "multipliers", "adders", "shifts"]
    assert list(fig.data[1].y) == [get_kernel("bilinear").hardware.multipliers, 4]
    with pytest.raises(
        ValueError,
        match=re.escape("table lacks columns ['shifts']; pass the output of hardware_table"),
    ):
        hardware_figure(hardware_table(["bilinear"]).drop(columns="shifts"))


# --------------------------------------------------------------------------- crops
def test_crops_figure_shows_the_same_window():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (30, 40), dtype=np.uint8)
    rgb_float = rng.random((30, 40, 3))
    fig = crops_figure({"gray": gray, "rgb": rgb_float}, (5, 7, 10, 12))
    assert [a.text for a in fig.layout.annotations] == ["gray", "rgb"]
    np.testing.assert_array_equal(decode(fig.data[0]), np.stack([gray[5:15, 7:19]] * 3, axis=-1))
    np.testing.assert_array_equal(decode(fig.data[1]), np.round(rgb_float[5:15, 7:19] * 255))


@pytest.mark.parametrize(
    ("images", "crop", "message"),
    [
        ({}, (0, 0, 4, 4), "images is empty; give at least one title -> image pair"),
        (
            {"a": np.zeros((8, 8)), "b": np.zeros((8, 9))},
            (0, 0, 4, 4),
            "images must share one (height, width)",
        ),
        (
            {"a": np.zeros((8, 8))},
            (6, 0, 4, 4),
            "crop (6, 0, 4, 4) (top, left, height, width) does not fit in the 8x8 image",
        ),
        (
            {"a": np.zeros((8, 8))},
            (0, 0, 4),
            "crop must be (top, left, height, width) integers, got (0, 0, 4)",
        ),
    ],
)
def test_crops_figure_bad_input(images, crop, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        crops_figure(images, crop)


def test_compare_crops_panels_and_psnr():
    fig = compare_crops("camera", "bicubic", 3, crop=(100, 120, 40, 50))
    titles = [a.text for a in fig.layout.annotations]
    assert [t.split(" ")[0] for t in titles] == ["HR", "nearest", "bicubic", "opencv:bicubic"]
    lr, hr = make_pair("camera", 3)
    method = resolve_methods(["bicubic"], ())[0]
    expected = psnr(hr, reconstruct(lr, hr.shape, method), data_range=1.0, border=3)
    assert titles[2] == f"bicubic {expected:.2f} dB"
    np.testing.assert_array_equal(
        decode(fig.data[0])[..., 0], load_image("camera")[100:140, 120:170]
    )
    assert fig.layout.title.text == "camera, 3x, crop (100, 120, 40, 50)"


def test_compare_crops_fixed_phase_and_peerless_kernels():
    fig = compare_crops("coffee", "shift_add_2x", 2, crop=(0, 0, 32, 32))
    assert [a.text.split(" ")[0] for a in fig.layout.annotations] == [
        "HR",
        "nearest",
        "shift_add_2x",
    ]
    message = "kernel 'shift_add_2x' only works at scale 2, got scale 3; pick scale 2 or a continuous kernel"
    with pytest.raises(ValueError, match=re.escape(message)):
        compare_crops("coffee", "shift_add_2x", 3)
    with pytest.raises(ValueError, match=re.escape("does not fit in the 400x600 image")):
        compare_crops("coffee", "bilinear", 2, crop=(390, 0, 32, 32))
    with pytest.raises(ValueError, match=re.escape("unknown image 'lena'")):
        compare_crops("lena", "bilinear", 2)


def test_kernel_crops_figure_with_peers():
    fig = kernel_crops_figure(
        "zone_plate",
        ["bilinear", ("bicubic", {"a": -0.75})],
        1.7,
        (10, 20, 30, 40),
        peers=("pillow",),
    )
    titles = [a.text for a in fig.layout.annotations]
    assert [t.split(" ")[0] for t in titles] == [
        "HR",
        "bilinear",
        "bicubic(a=-0.75)",
        "pillow:bilinear",
        "pillow:bicubic",
    ]
    lr, hr = make_pair("zone_plate", 1.7)
    assert hr.shape == (255, 255) and lr.shape == (150, 150)
    pillow = resolve_methods(["bilinear"], ("pillow",))[1]
    out = reconstruct(lr, hr.shape, pillow)
    assert titles[3] == f"pillow:bilinear {psnr(hr, out, data_range=1.0, border=2):.2f} dB"
    np.testing.assert_array_equal(
        decode(fig.data[3])[..., 0], np.round(np.clip(out[10:40, 20:60], 0, 1) * 255)
    )
    with pytest.raises(ValueError, match=re.escape("unknown peer 'matlab'")):
        kernel_crops_figure("zone_plate", ["bilinear"], 2, peers=("matlab",))


# --------------------------------------------------------------------------- quality
def test_quality_figure_bars_and_baseline(table):
    fig = quality_figure(table)
    assert isinstance(fig, go.Figure)
    names = [t.name for t in fig.data]
    assert set(names) == {
        "bilinear",
        "bicubic",
        "shift_add_2x",
        "opencv:bilinear",
        "opencv:bicubic",
    }
    bars = [t for t in fig.data if t.name == "bicubic"]
    values = sorted(float(v) for t in bars for v in t.y)
    assert values == sorted(table.loc[table.method == "bicubic", "psnr"].tolist())
    gain = quality_figure(table, baseline="bilinear")
    zero = [v for t in gain.data if t.name == "bilinear" for v in t.y]
    np.testing.assert_allclose(zero, 0.0)
    with pytest.raises(
        ValueError, match=re.escape("baseline 'lanczos9' is not a method of the table")
    ):
        quality_figure(table, baseline="lanczos9")
    with pytest.raises(ValueError, match=re.escape("metric must be 'psnr' or 'ssim', got 'mae'")):
        quality_figure(table.assign(mae=0.0), "mae")


def test_quality_heatmap(table):
    fig = quality_heatmap(table)
    assert isinstance(fig, matplotlib.figure.Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(dict.fromkeys(table["method"]))
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "camera 2x",
        "camera 3x",
        "zone_plate 2x",
        "zone_plate 3x",
    ]
    texts = {t.get_text() for t in ax.texts}
    assert f"{table['psnr'].iloc[0]:.1f}" in texts
    # shift_add_2x has no 3x cells: 2 annotated cells instead of 4.
    n_cells = len(table)
    assert len(ax.texts) == n_cells
    ssim_fig = quality_heatmap(table, "ssim", annotate=False)
    assert len(ssim_fig.axes[0].texts) == 0
    assert not math.isnan(float(ssim_fig.axes[0].collections[0].get_array().max()))


# --------------------------------------------------------------------------- widget
def test_crop_explorer_controls_and_updates(capsys):
    box = crop_explorer(["text_chart", "coffee"], scales=[2, 1.7], crop_size=64, settle_s=0)
    (image, kernel, scale), (top, left) = box.children[0].children, box.children[1].children
    assert list(image.options) == ["text_chart", "coffee"] and kernel.value == "bicubic"
    assert list(scale.options) == [2, 1.7]
    assert set(kernel.options) == set(available_kernels())
    # text_chart at 1.7 keeps 255 x 255 HR pixels: the window's corner goes up to 255 - 64.
    assert (top.max, left.max, top.continuous_update, left.continuous_update) == (
        191,
        191,
        False,
        False,
    )
    capsys.readouterr()
    kernel.value = "bilinear"  # outside a kernel, the output area prints to stdout
    assert "bilinear" in capsys.readouterr().out
    kernel.value = "shift_add_2x"
    scale.value = 1.7
    assert "kernel 'shift_add_2x' only works at scale 2, got scale 1.7" in capsys.readouterr().out


def test_crop_explorer_bad_input():
    with pytest.raises(ValueError, match=re.escape("images and scales must be non-empty")):
        crop_explorer([], settle_s=0)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "crop_size must be between 8 and 255 pixels (the smallest HR image), got 300"
        ),
    ):
        crop_explorer(["text_chart"], scales=[1.7], crop_size=300, settle_s=0)
    with pytest.raises(ValueError, match=re.escape("settle_s must be >= 0 seconds, got -1")):
        crop_explorer(["text_chart"], settle_s=-1)
    with pytest.raises(ValueError, match=re.escape("unknown image 'lena'")):
        crop_explorer(["lena"], settle_s=0)
