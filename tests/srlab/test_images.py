"""Tests of srlab.images: charts, the image registry and the LR/HR degradation model."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from srlab import images
from srlab.images import (
    available_images,
    bars,
    center_crop,
    checkerboard,
    degrade,
    gradient,
    image_kind,
    load_image,
    pair_sizes,
    slanted_edge,
    text_chart,
    zone_plate,
)

CHARTS = [zone_plate, slanted_edge, checkerboard, bars, text_chart, gradient]


# --------------------------------------------------------------------------- charts
@pytest.mark.parametrize("chart", CHARTS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "float64"])
def test_chart_size_dtype_and_range(chart, dtype):
    img = chart((40, 56), dtype=dtype)
    assert img.shape == (40, 56)
    assert img.dtype == np.dtype(dtype)
    top = 1.0 if img.dtype.kind == "f" else np.iinfo(img.dtype).max
    assert img.min() >= 0 and img.max() <= top


@pytest.mark.parametrize("chart", CHARTS, ids=lambda f: f.__name__)
def test_chart_integer_output_is_rounded_float_output(chart):
    as_float = chart((48, 48), dtype="float64")
    np.testing.assert_array_equal(chart((48, 48), dtype="uint8"), np.round(as_float * 255))


@pytest.mark.parametrize("chart", CHARTS, ids=lambda f: f.__name__)
def test_chart_bad_size_and_dtype(chart):
    with pytest.raises(
        ValueError, match=re.escape("size must be a (height, width) pair of integers")
    ):
        chart((4, 64))
    with pytest.raises(
        ValueError, match=re.escape("size must be a (height, width) pair of integers")
    ):
        chart((64.5, 64))
    with pytest.raises(
        ValueError, match=re.escape("unknown image dtype 'int32'; known dtypes: uint8, uint16")
    ):
        chart((64, 64), dtype="int32")


def test_zone_plate_is_symmetric_and_bright_at_centre():
    zp = zone_plate((64, 64))
    np.testing.assert_allclose(zp, zp[::-1, :], atol=1e-12)
    np.testing.assert_allclose(zp, zp[:, ::-1], atol=1e-12)
    np.testing.assert_allclose(zp, zp.T, atol=1e-12)
    assert zp[31:33, 31:33].min() > 0.99


def test_zone_plate_local_frequency_grows_with_radius():
    # Along the central row the local frequency is f_max * r / r_max: count sign changes.
    zp = zone_plate((256, 256), max_frequency=0.5)
    row = zp[128, 128:] - 0.5
    crossings = np.flatnonzero(np.diff(np.sign(row)) != 0)
    inner, outer = np.sum(crossings < 64), np.sum(crossings >= 64)
    # Half-cycles between radii r0 and r1: f_max (r1^2 - r0^2) / r_max.
    r_max = np.hypot(128, 128)
    assert inner == pytest.approx(0.5 * 64**2 / r_max, abs=1)
    assert outer == pytest.approx(0.5 * (128**2 - 64**2) / r_max, abs=1)


def test_zone_plate_bad_frequency():
    with pytest.raises(
        ValueError, match=re.escape("max_frequency must be in (0, 0.5] cycles per pixel, got 0.7")
    ):
        zone_plate((32, 32), max_frequency=0.7)


def test_slanted_edge_levels_and_area_coverage():
    img = slanted_edge((64, 64), angle=0.0, low=0.2, high=0.8)
    # A vertical edge at x = 32 exactly: columns are pure levels.
    np.testing.assert_allclose(img[:, :32], 0.2)
    np.testing.assert_allclose(img[:, 32:], 0.8)
    tilted = slanted_edge((64, 64), angle=5.0)
    # Rows cross the edge at different sub-pixel phases, so mixed values appear.
    assert np.unique(np.round(tilted, 6)).size > 10


def test_slanted_edge_bad_input():
    with pytest.raises(
        ValueError, match=re.escape("angle must be in (-45, 45) degrees from the vertical, got 60")
    ):
        slanted_edge(angle=60)
    with pytest.raises(
        ValueError,
        match=re.escape("levels must satisfy 0 <= low < high <= 1, got low=0.9, high=0.1"),
    ):
        slanted_edge(low=0.9, high=0.1)


def test_checkerboard_exact():
    board = checkerboard((8, 8), square=2, dtype="uint8")
    expected = (np.indices((8, 8)) // 2).sum(axis=0) % 2 * 255
    np.testing.assert_array_equal(board, expected)
    with pytest.raises(ValueError, match=re.escape("square must be an integer >= 1 pixel, got 0")):
        checkerboard(square=0)


def test_bars_first_band_and_orientation():
    img = bars((32, 64), periods=(8.0, 4.0))
    # Top half, first band: period 8 -> 4 bright, 4 dark columns.
    np.testing.assert_allclose(img[0, :16], [1, 1, 1, 1, 0, 0, 0, 0] * 2)
    # Bottom half: horizontal bars, the same pattern down the rows.
    np.testing.assert_allclose(img[16:32, 0], [1, 1, 1, 1, 0, 0, 0, 0] * 2)
    # Period 2.5 is not pixel-aligned: area coverage gives intermediate values.
    assert np.any((bars((16, 16), periods=(2.5,)) > 0.01) & (bars((16, 16), periods=(2.5,)) < 0.99))


def test_bars_bad_periods():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "periods must be a non-empty sequence of numbers >= 2 pixels, got (8.0, 1.5)"
        ),
    ):
        bars(periods=(8.0, 1.5))


def test_text_chart_is_deterministic_dark_on_light():
    a, b = text_chart((96, 128)), text_chart((96, 128))
    np.testing.assert_array_equal(a, b)
    assert np.median(a) > 0.8 and a.min() < 0.2
    with pytest.raises(ValueError, match=re.escape("pair of integers >= 32")):
        text_chart((16, 64))


def test_gradient_formula():
    g = gradient((8, 10))
    # Linear in x, so the pixel mean equals the value at the pixel centre; cos is averaged.
    y = np.arange(8)[:, None] + 0.5
    x = np.arange(10)[None, :] + 0.5
    expected = 0.1 + 0.7 * x / 10 + 0.05 * (1 + np.cos(2 * np.pi * y / 8))
    np.testing.assert_allclose(g, expected, atol=2e-3)
    assert np.all(np.diff(g, axis=1) > 0)


# --------------------------------------------------------------------------- registry
def test_registry_lists_charts_and_photos():
    charts = available_images("chart")
    photos = available_images("photo")
    assert charts == sorted(
        ["bars", "checkerboard", "gradient", "slanted_edge", "text_chart", "zone_plate"]
    )
    assert {"astronaut", "camera", "chelsea", "coffee"} <= set(photos)
    assert available_images() == sorted(charts + photos)
    assert image_kind("camera") == "photo" and image_kind("bars") == "chart"


@pytest.mark.parametrize("name", available_images())
def test_every_registered_image_loads_offline(name):
    img = load_image(name)
    assert img.dtype == np.uint8
    assert img.ndim in (2, 3) and min(img.shape[:2]) >= 128
    if image_kind(name) == "chart":
        assert img.shape == images.DEFAULT_CHART_SIZE


def test_load_image_gray_converts_rgb_photos_only():
    rgb = load_image("coffee")
    gray = load_image("coffee", gray=True)
    assert rgb.shape == (400, 600, 3) and gray.shape == (400, 600)
    # BT.709 luma, as skimage.color.rgb2gray.
    luma = rgb.astype(np.float64) @ np.array([0.2125, 0.7154, 0.0721])
    np.testing.assert_allclose(gray, luma, atol=1.0)
    np.testing.assert_array_equal(load_image("zone_plate", gray=True), load_image("zone_plate"))


def test_load_image_unknown_name_lists_known():
    expected = f"unknown image 'lena'; known images: {', '.join(available_images())}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        load_image("lena")
    with pytest.raises(TypeError, match="image name must be a str such as 'camera', got ndarray"):
        load_image(np.zeros((4, 4)))  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=re.escape("kind must be 'chart', 'photo' or None, got 'video'")
    ):
        available_images("video")


def test_center_crop():
    img = np.arange(10 * 12).reshape(10, 12)
    np.testing.assert_array_equal(center_crop(img, (4, 6)), img[3:7, 3:9])
    with pytest.raises(
        ValueError, match=re.escape("image of shape (10, 12) is smaller than the crop (11, 4)")
    ):
        center_crop(img, (11, 4))


# --------------------------------------------------------------------------- degrade
@pytest.mark.parametrize(
    ("scale", "lr_shape", "hr_shape"),
    [
        (2, (50, 75), (100, 150)),
        (3, (33, 50), (99, 150)),
        (1.7, (50, 80), (85, 136)),
        (4, (25, 37), (100, 148)),
    ],
)
def test_degrade_shapes(scale, lr_shape, hr_shape):
    hr = np.zeros((101, 151, 3), dtype=np.uint8)
    lr, hr_c = degrade(hr, scale)
    assert lr.shape == (*lr_shape, 3) and hr_c.shape == (*hr_shape, 3)
    assert lr.dtype == np.uint8
    assert np.shares_memory(hr_c, hr)


@pytest.mark.parametrize("scale", [2, 3, 1.7, 2.5, 4])
def test_pair_sizes_match_degrade(scale):
    lr, hr = degrade(np.zeros((101, 151)), scale)
    assert pair_sizes((101, 151), scale) == (lr.shape, hr.shape)
    with pytest.raises(
        ValueError, match=re.escape("image of size 4x151 is smaller than the scale")
    ):
        pair_sizes((4, 151), 4.5)


@pytest.mark.parametrize("psf", ["box", "gaussian"])
@pytest.mark.parametrize("scale", [2, 3, 1.7, 2.5])
def test_degrade_constant_stays_constant(psf, scale):
    lr, _ = degrade(np.full((60, 70), 173, dtype=np.uint8), scale, psf=psf)
    assert np.all(lr == 173)
    lr_f, _ = degrade(np.full((60, 70, 3), 0.37), scale, psf=psf)
    np.testing.assert_allclose(lr_f, 0.37, atol=1e-12)


def test_degrade_box_integer_scale_is_block_mean():
    hr = np.random.default_rng(1).random((30, 36, 3))
    lr, _ = degrade(hr, 3)
    np.testing.assert_allclose(lr, hr.reshape(10, 3, 12, 3, 3).mean(axis=(1, 3)), atol=1e-12)


def test_degrade_box_fractional_scale_is_area_average():
    # OpenCV's INTER_AREA integrates the same footprint [i s, (i + 1) s) for non-integer s.
    hr = np.random.default_rng(2).random((68, 85))
    lr, hr_c = degrade(hr, 1.7)
    expected = cv2.resize(hr_c, (50, 40), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(lr, expected, atol=1e-6)


def test_degrade_gaussian_weights_match_sampled_blur():
    # Away from the borders, gaussian PSF + decimation = HR blurred by the pixel-integrated
    # Gaussian, sampled at the LR centres; for scale 2 the centres fall between HR pixels.
    hr = np.zeros((64, 64))
    hr[32, 32] = 1.0
    lr, _ = degrade(hr, 2, psf="gaussian", psf_sigma=1.0)
    from scipy.special import ndtr

    def weights(center):
        edges = np.arange(65) - center
        return np.diff(ndtr(edges))

    expected = np.outer(weights(16.5 * 2), weights(16.5 * 2))[32, 32]
    assert lr[16, 16] == pytest.approx(expected, rel=1e-12)


def test_degrade_noise_is_seeded():
    hr = np.full((128, 128), 0.5)
    a, _ = degrade(hr, 2, noise_sigma=0.05, seed=3)
    b, _ = degrade(hr, 2, noise_sigma=0.05, seed=3)
    c, _ = degrade(hr, 2, noise_sigma=0.05, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.std(a) == pytest.approx(0.05, rel=0.05)
    assert np.mean(a) == pytest.approx(0.5, abs=0.005)
    noisy_u8, _ = degrade(np.full((128, 128), 128, dtype=np.uint8), 2, noise_sigma=0.02, seed=3)
    assert np.std(noisy_u8.astype(float)) == pytest.approx(0.02 * 255, rel=0.05)


def test_degrade_keeps_float_dtype():
    lr, _ = degrade(np.zeros((8, 8), dtype=np.float32), 2)
    assert lr.dtype == np.float32


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": 2, "psf": "disk"}, "unknown psf 'disk'; known: box, gaussian"),
        ({"scale": 2, "noise_sigma": -0.1}, "noise_sigma must be a finite number >= 0, got -0.1"),
        ({"scale": 0.5}, "scale must be a finite number >= 1, got 0.5"),
        (
            {"scale": 1.2345},
            "scale 1.2345 is not a ratio p/q with q <= 16; use an integer or a short decimal",
        ),
        (
            {"scale": 16},
            "image of size 10x12 is smaller than the scale 16 needs (16 pixels per side)",
        ),
        ({"scale": 2, "psf_sigma": 1.0}, "psf_sigma only applies to psf='gaussian', got psf='box'"),
        (
            {"scale": 2, "psf": "gaussian", "psf_sigma": 0.0},
            "psf_sigma must be a positive number of HR pixels, got 0.0",
        ),
    ],
)
def test_degrade_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        degrade(np.zeros((10, 12)), **kwargs)


@pytest.mark.parametrize("scale", ["2", None, True])
def test_degrade_scale_of_another_type(scale):
    with pytest.raises(TypeError, match=re.escape(f"scale must be a number, got {scale!r}")):
        degrade(np.zeros((10, 12)), scale)


def test_degrade_bad_image():
    with pytest.raises(ValueError, match=re.escape("image dtype int64 is not supported")):
        degrade(np.zeros((10, 10), dtype=np.int64), 2)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "image must be 2-D (H, W) or 3-D (H, W, C) with C in 1, 3, 4, got shape (10,)"
        ),
    ):
        degrade(np.zeros(10), 2)
    with pytest.raises(
        ValueError, match=re.escape("image contains NaN values; replace them first")
    ):
        degrade(np.full((10, 10), np.nan), 2)
    with pytest.raises(ValueError, match=re.escape("image contains infinite values")):
        degrade(np.full((10, 10), np.inf), 2)
