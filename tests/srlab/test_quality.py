"""Tests of srlab.quality: the round-trip PSNR/SSIM table and its summaries."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from srlab import get_kernel
from srlab.images import center_crop, degrade, load_image
from srlab.metrics import psnr, ssim
from srlab.peers import opencv_resize
from srlab.quality import (
    COLUMNS,
    best_methods,
    kernel_quality_table,
    make_pair,
    mean_by_scale,
    method_label,
    peer_agreement,
    reconstruct,
    resolve_methods,
    score_pivot,
)

KERNELS = ["nearest", "bilinear", "bicubic", ("bicubic", {"a": -0.75}), "lanczos3", "shift_add_2x"]


@pytest.fixture(scope="module")
def small_images() -> dict[str, np.ndarray]:
    return {
        "zone_plate": center_crop(load_image("zone_plate"), (60, 60)),
        "camera": center_crop(load_image("camera"), (60, 60)),
        "coffee": center_crop(load_image("coffee"), (60, 60)),
    }


@pytest.fixture(scope="module")
def table(small_images) -> pd.DataFrame:
    return kernel_quality_table(small_images, [2, 3, 1.5], KERNELS, progress=False)


# --------------------------------------------------------------------------- methods
def test_method_labels_and_peer_rows():
    methods = resolve_methods(KERNELS, ("opencv", "pillow"))
    assert [(m.label, m.family) for m in methods] == [
        ("nearest", "ours"),
        ("bilinear", "ours"),
        ("bicubic", "ours"),
        ("bicubic(a=-0.75)", "ours"),
        ("lanczos3", "ours"),
        ("shift_add_2x", "ours"),
        ("opencv:nearest", "opencv"),
        ("opencv:bilinear", "opencv"),
        ("opencv:bicubic", "opencv"),
        ("pillow:nearest", "pillow"),
        ("pillow:bilinear", "pillow"),
        ("pillow:bicubic", "pillow"),
        ("pillow:lanczos3", "pillow"),
    ]
    assert methods[3].kernel.params == {"a": -0.75}
    assert [m.fixed_scale for m in methods[:6]] == [None] * 5 + [2.0]
    assert method_label("pwl4", {"a": -0.5}) == "pwl4(a=-0.5)"


def test_kernel_objects_are_labelled_by_their_non_default_params():
    methods = resolve_methods([get_kernel("bicubic"), get_kernel("bicubic", a=-0.75)], ())
    assert [m.label for m in methods] == ["bicubic", "bicubic(a=-0.75)"]


@pytest.mark.parametrize(
    ("kernels", "peers", "message"),
    [
        (["bicubic"], ["matlab"], "unknown peer 'matlab'; known peers: opencv, pillow"),
        (["spline"], [], "unknown kernel 'spline'; known kernels:"),
        ([("bicubic", {"b": 1})], [], "kernel 'bicubic' got unknown parameter(s) b"),
        (
            ["bicubic", "bicubic"],
            [],
            "methods ['bicubic'] appear more than once; list each kernel once",
        ),
        ([], [], "kernels is empty; give at least one kernel name"),
    ],
)
def test_resolve_methods_bad_input(kernels, peers, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        resolve_methods(kernels, peers)


@pytest.mark.parametrize("spec", [3, ("bicubic", -0.75), ("bicubic", {}, 1)])
def test_resolve_methods_refuses_a_spec_of_another_type(spec):
    message = "kernel spec must be a name, a Kernel or a (name, params) pair"
    with pytest.raises(TypeError, match=re.escape(message)):
        resolve_methods([spec], peers=())


def test_make_pair_is_float_and_keeps_8_bit_quantization():
    lr, hr = make_pair("camera", 3)
    assert lr.shape == (170, 170) and hr.shape == (510, 510)
    assert lr.dtype == hr.dtype == np.float64
    np.testing.assert_allclose(hr, load_image("camera")[:510, :510] / 255.0, rtol=1e-15)
    expected_lr, _ = degrade(load_image("camera"), 3)
    np.testing.assert_allclose(lr, expected_lr / 255.0, rtol=1e-15)
    np.testing.assert_allclose(lr * 255, np.round(lr * 255), atol=1e-9)  # 8-bit levels


def test_reconstruct_matches_peers_in_float():
    lr, hr = make_pair("camera", 2)
    ours = {m.label: m for m in resolve_methods(KERNELS, ("opencv",))}
    np.testing.assert_allclose(
        reconstruct(lr, hr.shape, ours["bicubic(a=-0.75)"]),
        reconstruct(lr, hr.shape, ours["opencv:bicubic"]),
        atol=1e-5,
    )
    np.testing.assert_array_equal(
        reconstruct(lr, hr.shape, ours["opencv:bilinear"]), opencv_resize(lr, hr.shape, "bilinear")
    )
    # Pillow renormalizes at the border instead of replicating: equal away from it.
    pillow = {m.label: m for m in resolve_methods(["bicubic"], ("pillow",))}
    np.testing.assert_allclose(
        reconstruct(lr, hr.shape, pillow["bicubic"])[6:-6, 6:-6],
        reconstruct(lr, hr.shape, pillow["pillow:bicubic"])[6:-6, 6:-6],
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="only works at scale 2"):
        reconstruct(lr, (hr.shape[0] * 3 // 2, hr.shape[1] * 3 // 2), ours["shift_add_2x"])


# --------------------------------------------------------------------------- table
def test_table_rows_and_columns(table):
    assert tuple(table.columns) == COLUMNS
    methods_at = {2.0: 13, 3.0: 12, 1.5: 12}  # shift_add_2x only at scale 2
    assert len(table) == 3 * sum(methods_at.values())
    counts = table.groupby(["image", "scale"]).size()
    for (image, scale), n in counts.items():
        assert n == methods_at[scale], (image, scale)
    assert list(dict.fromkeys(table["image"])) == ["zone_plate", "camera", "coffee"]
    assert set(table.loc[table["method"] == "shift_add_2x", "scale"]) == {2.0}
    assert table["family"].value_counts().to_dict() == {"ours": 48, "opencv": 27, "pillow": 36}


def test_table_scores_are_the_metrics_of_the_round_trip(table, small_images):
    row = table[
        (table.image == "camera") & (table.scale == 3.0) & (table.method == "bicubic")
    ].iloc[0]
    lr, hr = degrade(small_images["camera"], 3)
    lr, hr = lr / 255.0, hr / 255.0
    from srlab import resize

    out = resize(lr, size=hr.shape, kernel="bicubic")
    assert row["psnr"] == pytest.approx(psnr(hr, out, data_range=1.0, border=3), rel=1e-12)
    assert row["ssim"] == pytest.approx(ssim(hr, out, data_range=1.0, border=3), rel=1e-12)


def test_ours_match_peers_within_0_05_db(table):
    wide = table.pivot_table(index=["image", "scale"], columns="method", values="psnr")
    np.testing.assert_allclose(wide["bicubic(a=-0.75)"], wide["opencv:bicubic"], atol=0.05)
    np.testing.assert_allclose(wide["bilinear"], wide["opencv:bilinear"], atol=1e-6)
    # The dyadic 2x constants are Keys' a = -0.5 weights exactly.
    at2 = wide.xs(2.0, level="scale")
    np.testing.assert_allclose(at2["shift_add_2x"], at2["bicubic"], atol=1e-9)


def test_table_orders_kernels_as_expected_on_photos(table):
    photos = table[table.image.isin(["camera", "coffee"])]
    mean = photos.groupby("method")["psnr"].mean()
    assert mean["nearest"] < mean["bilinear"] < mean["bicubic"] < mean["lanczos3"]


def test_table_is_deterministic_and_noise_is_seeded(small_images):
    args = ({"camera": small_images["camera"]}, [2], ["bilinear"])
    a = kernel_quality_table(*args, peers=(), noise_sigma=0.02, seed=5, progress=False)
    b = kernel_quality_table(*args, peers=(), noise_sigma=0.02, seed=5, progress=False)
    c = kernel_quality_table(*args, peers=(), noise_sigma=0.02, seed=6, progress=False)
    clean = kernel_quality_table(*args, peers=(), progress=False)
    pd.testing.assert_frame_equal(a, b)
    assert a["psnr"].iloc[0] != c["psnr"].iloc[0]
    assert a["psnr"].iloc[0] < clean["psnr"].iloc[0]


def test_constant_image_is_perfect_for_every_method():
    flat = {"flat": np.full((40, 40, 3), 90, np.uint8)}
    t = kernel_quality_table(flat, [2, 3], KERNELS, border=0, progress=False)
    # Exact up to float rounding (OpenCV's float path keeps its weights in float32).
    assert t["psnr"].min() > 150
    np.testing.assert_allclose(t["ssim"], 1.0, atol=1e-12)


def test_border_rule(small_images):
    args = ({"camera": small_images["camera"]}, [3], ["bicubic"])
    by_scale = kernel_quality_table(*args, peers=(), progress=False)
    explicit = kernel_quality_table(*args, peers=(), border=3, progress=False)
    none = kernel_quality_table(*args, peers=(), border=0, progress=False)
    pd.testing.assert_frame_equal(by_scale, explicit)
    assert none["psnr"].iloc[0] != by_scale["psnr"].iloc[0]


def test_progress_bar(capsys, small_images):
    kernel_quality_table(
        {"camera": small_images["camera"]}, [2], ["bilinear"], peers=(), progress=True
    )
    assert "quality" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"images": []}, "images is empty; give at least one image name"),
        ({"scales": []}, "scales is empty; give at least one scale"),
        ({"border": -1}, "border must be 'scale' or an integer >= 0 pixels, got -1"),
        ({"images": ["lena"]}, "unknown image 'lena'; known images:"),
        ({"scales": [0.5]}, "scale must be a finite number >= 1, got 0.5"),
    ],
)
def test_table_bad_input(kwargs, message):
    args = {
        "images": ["gradient"],
        "scales": [2],
        "kernels": ["bilinear"],
        "progress": False,
        **kwargs,
    }
    with pytest.raises(ValueError, match=re.escape(message)):
        kernel_quality_table(**args)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"images": "camera"},
            "images must be a list of names or a name -> array mapping, got the string 'camera'",
        ),
        ({"border": 1.5}, "border must be 'scale' or an integer >= 0 pixels, got 1.5"),
        ({"border": True}, "border must be 'scale' or an integer >= 0 pixels, got True"),
    ],
)
def test_table_refuses_arguments_of_another_type(kwargs, message):
    args = {"images": ["gradient"], "scales": [2], "kernels": ["bilinear"], "progress": False}
    with pytest.raises(TypeError, match=re.escape(message)):
        kernel_quality_table(**{**args, **kwargs})


# --------------------------------------------------------------------------- summaries
@pytest.fixture
def toy() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "image": ["a", "a", "a", "a", "b", "b"],
            "scale": [2.0, 2.0, 2.0, 3.0, 2.0, 2.0],
            "method": ["x", "y", "opencv:x", "x", "x", "y"],
            "family": ["ours", "ours", "opencv", "ours", "ours", "ours"],
            "psnr": [30.0, 31.0, 32.0, 25.0, 20.0, 20.0],
            "ssim": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
        }
    )


def test_best_methods(toy):
    best = best_methods(toy)
    assert best[["image", "scale", "method", "psnr"]].values.tolist() == [
        ["a", 2.0, "opencv:x", 32.0],
        ["a", 3.0, "x", 25.0],
        ["b", 2.0, "x", 20.0],  # tie: first listed wins
    ]
    np.testing.assert_allclose(best["margin"], [1.0, np.nan, 0.0])
    assert best_methods(toy, families=["ours"])["method"].tolist() == ["y", "x", "x"]
    assert best_methods(toy, "ssim")["method"].tolist() == ["x", "x", "x"]


def test_summaries_bad_input(toy):
    with pytest.raises(ValueError, match=re.escape("metric must be 'psnr' or 'ssim', got 'mse'")):
        best_methods(toy.assign(mse=1.0), "mse")
    with pytest.raises(
        ValueError,
        match=re.escape("table lacks columns ['psnr']; pass the output of kernel_quality_table"),
    ):
        score_pivot(toy.drop(columns="psnr"))
    with pytest.raises(ValueError, match=re.escape("no rows of families ['pillow']")):
        best_methods(toy, families=["pillow"])


def test_score_pivot_and_mean_by_scale(toy):
    grid = score_pivot(toy)
    assert list(grid.index) == ["x", "y", "opencv:x"]
    assert list(grid.columns) == [("a", 2.0), ("a", 3.0), ("b", 2.0)]
    assert grid.loc["y", ("a", 3.0)] != grid.loc["y", ("a", 3.0)]  # NaN: no such row
    assert grid.loc["x"].tolist() == [30.0, 25.0, 20.0]
    means = mean_by_scale(toy)
    assert means.loc["x"].tolist() == [25.0, 25.0]
    assert means.loc["y", 2.0] == 25.5
    assert np.isnan(means.loc["opencv:x", 3.0])


def test_peer_agreement(table):
    agree = peer_agreement(table).set_index("peer")
    assert agree.loc["opencv:bicubic", "ours"] == "bicubic(a=-0.75)"
    assert agree.loc["pillow:bicubic", "ours"] == "bicubic"
    assert agree.loc["pillow:lanczos3", "ours"] == "lanczos3"
    assert list(agree.index) == [
        "opencv:nearest",
        "opencv:bilinear",
        "opencv:bicubic",
        "pillow:nearest",
        "pillow:bilinear",
        "pillow:bicubic",
        "pillow:lanczos3",
    ]
    assert agree.loc["opencv:bicubic", "max_abs_diff"] < 0.05
    assert agree.loc["opencv:bilinear", "max_abs_diff"] < 1e-6
    wide = score_pivot(table)
    expected = (wide.loc["pillow:bicubic"] - wide.loc["bicubic"]).abs()
    assert agree.loc["pillow:bicubic", "max_abs_diff"] == pytest.approx(expected.max())
    assert agree.loc["pillow:bicubic", "mean_abs_diff"] == pytest.approx(expected.mean())
