"""Tests of srlab.metrics: PSNR and SSIM against hand computations and scikit-image."""

from __future__ import annotations

import re

import numpy as np
import pytest
import skimage.metrics

from srlab.metrics import psnr, resolve_data_range, ssim


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    ref = rng.random((32, 40, 3))
    return ref, np.clip(ref + rng.normal(0, 0.05, ref.shape), 0, 1)


def test_psnr_hand_computation_uint8():
    ref = np.array([[10, 20], [30, 40]], dtype=np.uint8)
    test = np.array([[12, 20], [30, 36]], dtype=np.uint8)
    mse = (2**2 + 0 + 0 + 4**2) / 4  # = 5
    assert psnr(ref, test) == pytest.approx(10 * np.log10(255**2 / mse), rel=1e-12)
    assert psnr(ref, test) == psnr(ref, test, data_range=255)


def test_psnr_hand_computation_float_and_rgb():
    ref = np.zeros((2, 2, 3))
    test = ref.copy()
    test[0, 0, 1] = 0.3
    mse = 0.3**2 / 12  # mean over every pixel and channel
    assert psnr(ref, test, data_range=1.0) == pytest.approx(10 * np.log10(1 / mse), rel=1e-12)
    assert psnr(ref, test, data_range=2.0) == pytest.approx(10 * np.log10(4 / mse), rel=1e-12)


def test_psnr_identical_is_inf():
    img = np.ones((5, 5))
    assert psnr(img, img, data_range=1.0) == np.inf


def test_border_crop(pair):
    ref, test = pair
    assert psnr(ref, test, 1.0, border=3) == pytest.approx(psnr(ref[3:-3, 3:-3], test[3:-3, 3:-3], 1.0))
    assert ssim(ref, test, 1.0, border=3) == pytest.approx(ssim(ref[3:-3, 3:-3], test[3:-3, 3:-3], 1.0))
    damaged = ref.copy()
    damaged[0, :] = 0.0  # only the border row differs
    assert psnr(ref, damaged, 1.0, border=1) == np.inf
    assert ssim(ref, damaged, 1.0, border=1) == pytest.approx(1.0)


def test_ssim_identical_is_one(pair):
    ref, _ = pair
    assert ssim(ref, ref, data_range=1.0) == pytest.approx(1.0, abs=1e-12)
    gray = (ref[..., 0] * 255).astype(np.uint8)
    assert ssim(gray, gray) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_wang_settings_in_skimage(pair):
    ref, test = pair
    expected = skimage.metrics.structural_similarity(
        ref,
        test,
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        channel_axis=-1,
    )
    assert ssim(ref, test, data_range=1.0) == pytest.approx(expected, rel=1e-12)
    per_channel = [ssim(ref[..., c], test[..., c], data_range=1.0) for c in range(3)]
    assert ssim(ref, test, data_range=1.0) == pytest.approx(np.mean(per_channel), rel=1e-12)


def test_ssim_drops_with_noise(pair):
    ref, test = pair
    noisier = np.clip(ref + np.random.default_rng(1).normal(0, 0.2, ref.shape), 0, 1)
    assert 0 < ssim(ref, noisier, 1.0) < ssim(ref, test, 1.0) < 1


def test_data_range_rule():
    u8 = np.zeros((16, 16), np.uint8)
    assert resolve_data_range(u8, u8, None) == 255.0
    assert resolve_data_range(u8, u8, 100) == 100.0
    message = (
        "data_range is required for float64/float64 images (it is inferred as 255 only when "
        "both are uint8): pass data_range=1.0 for images in [0, 1] or data_range=255 for "
        "images in [0, 255]"
    )
    f = np.zeros((16, 16))
    for metric in (psnr, ssim):
        with pytest.raises(ValueError, match=re.escape(message)):
            metric(f, f)
        with pytest.raises(ValueError, match=re.escape("data_range is required for uint16/uint16 images")):
            metric(f.astype(np.uint16), f.astype(np.uint16))
        with pytest.raises(ValueError, match=re.escape("data_range is required for uint8/float64 images")):
            metric(u8, f)
        with pytest.raises(ValueError, match=re.escape("data_range must be a positive finite number, got -1")):
            metric(f, f, data_range=-1)


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_shape_mismatch(metric):
    message = "reference and test must have the same shape, got (16, 16) and (16, 17); resize or crop one of them first"
    with pytest.raises(ValueError, match=re.escape(message)):
        metric(np.zeros((16, 16)), np.zeros((16, 17)), data_range=1.0)
    with pytest.raises(ValueError, match=re.escape("images must be (H, W) or (H, W, C), got shape (16,)")):
        metric(np.zeros(16), np.zeros(16), data_range=1.0)


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_bad_border(metric):
    img = np.zeros((16, 16))
    with pytest.raises(ValueError, match=re.escape("border must be an integer >= 0 pixels, got -1")):
        metric(img, img, 1.0, border=-1)
    with pytest.raises(ValueError, match=re.escape("border=8 removes the whole 16x16 image; use a smaller border")):
        metric(img, img, 1.0, border=8)


def test_ssim_too_small():
    img = np.zeros((10, 30))
    message = (
        "ssim needs images of at least 11x11 pixels after the border crop, got 10x30; "
        "use a larger image or a smaller border"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        ssim(img, img, 1.0)
