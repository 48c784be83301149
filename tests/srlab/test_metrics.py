"""Tests of srlab.metrics: PSNR and SSIM against hand computations and the Wang et al. definition."""

from __future__ import annotations

import re

import numpy as np
import pytest

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
    assert psnr(ref, test, 1.0, border=3) == pytest.approx(
        psnr(ref[3:-3, 3:-3], test[3:-3, 3:-3], 1.0)
    )
    assert ssim(ref, test, 1.0, border=3) == pytest.approx(
        ssim(ref[3:-3, 3:-3], test[3:-3, 3:-3], 1.0)
    )
    damaged = ref.copy()
    damaged[0, :] = 0.0  # only the border row differs
    assert psnr(ref, damaged, 1.0, border=1) == np.inf
    assert ssim(ref, damaged, 1.0, border=1) == pytest.approx(1.0)


def test_ssim_identical_is_one(pair):
    ref, _ = pair
    assert ssim(ref, ref, data_range=1.0) == pytest.approx(1.0, abs=1e-12)
    gray = (ref[..., 0] * 255).astype(np.uint8)
    assert ssim(gray, gray) == pytest.approx(1.0, abs=1e-12)


def wang_ssim(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """SSIM of two gray images as Wang et al. (2004) define it, in plain numpy.

    Their ``ssim_index``: an 11x11 Gaussian window of sigma 1.5 normalised to sum 1, means,
    variances and covariance weighted by it (no sample correction), ``C1 = (0.01 L)**2``,
    ``C2 = (0.03 L)**2``, the map at every position where the window fits in the image
    (``filter2(..., 'valid')``), then its mean.
    """
    r = np.arange(-5, 6)
    window = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2))
    window /= window.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    x, y = x.astype(np.float64), y.astype(np.float64)
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            a, b = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mean_a, mean_b = (window * a).sum(), (window * b).sum()
            var_a, var_b = (window * (a - mean_a) ** 2).sum(), (window * (b - mean_b) ** 2).sum()
            cov = (window * (a - mean_a) * (b - mean_b)).sum()
            values.append(
                (2 * mean_a * mean_b + c1)
                * (2 * cov + c2)
                / ((mean_a**2 + mean_b**2 + c1) * (var_a + var_b + c2))
            )
    return float(np.mean(values))


def test_psnr_of_a_one_level_offset_is_20_log10_255():
    ref = np.random.default_rng(2).integers(0, 255, (9, 7, 3), dtype=np.uint8)
    # Every pixel off by one level: MSE = 1, so PSNR = 10 log10(255**2) = 48.1308... dB.
    assert psnr(ref, ref + 1) == pytest.approx(48.130803608679, abs=1e-11)
    assert psnr(ref.astype(float) / 255, (ref + 1.0) / 255, data_range=1.0) == pytest.approx(
        48.130803608679, abs=1e-9
    )


def test_ssim_of_constant_images_by_hand():
    # No variance anywhere: SSIM = (2 a b + C1) / (a**2 + b**2 + C1), C1 = (0.01 x 1)**2.
    a, b = np.full((12, 13), 0.5), np.full((12, 13), 0.25)
    assert ssim(a, b, data_range=1.0) == pytest.approx((0.25 + 1e-4) / (0.3125 + 1e-4), rel=1e-12)
    # On 0..255 C1 = 2.55**2: 8-bit 128 against 64.
    u = np.full((11, 11), 128, np.uint8)
    v = np.full((11, 11), 64, np.uint8)
    expected = (2 * 128 * 64 + 2.55**2) / (128**2 + 64**2 + 2.55**2)
    assert ssim(u, v) == pytest.approx(expected, rel=1e-12)


def test_ssim_matches_the_wang_definition():
    rng = np.random.default_rng(3)
    ref = rng.random((14, 13, 3))
    test = np.clip(ref + rng.normal(0, 0.1, ref.shape), 0, 1)
    per_channel = [wang_ssim(ref[..., c], test[..., c], 1.0) for c in range(3)]
    assert 0.3 < min(per_channel) and max(per_channel) < 0.99  # far from the trivial values
    for c in range(3):
        assert ssim(ref[..., c], test[..., c], data_range=1.0) == pytest.approx(
            per_channel[c], rel=1e-10
        )
    assert ssim(ref, test, data_range=1.0) == pytest.approx(np.mean(per_channel), rel=1e-10)
    gray = (ref[..., 0] * 255).astype(np.uint8)
    noisy = (test[..., 0] * 255).astype(np.uint8)
    assert ssim(gray, noisy) == pytest.approx(wang_ssim(gray, noisy, 255.0), rel=1e-10)


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
        with pytest.raises(
            ValueError, match=re.escape("data_range is required for uint16/uint16 images")
        ):
            metric(f.astype(np.uint16), f.astype(np.uint16))
        with pytest.raises(
            ValueError, match=re.escape("data_range is required for uint8/float64 images")
        ):
            metric(u8, f)
        with pytest.raises(
            ValueError, match=re.escape("data_range must be a positive finite number, got -1")
        ):
            metric(f, f, data_range=-1)


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_shape_mismatch(metric):
    message = "reference and test must have the same shape, got (16, 16) and (16, 17); resize or crop one of them first"
    with pytest.raises(ValueError, match=re.escape(message)):
        metric(np.zeros((16, 16)), np.zeros((16, 17)), data_range=1.0)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "images must be 2-D (H, W) or 3-D (H, W, C) with C channels, got shape (16,)"
        ),
    ):
        metric(np.zeros(16), np.zeros(16), data_range=1.0)


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_bad_border(metric):
    img = np.zeros((16, 16))
    with pytest.raises(
        ValueError, match=re.escape("border must be an integer >= 0 pixels, got -1")
    ):
        metric(img, img, 1.0, border=-1)
    with pytest.raises(
        ValueError, match=re.escape("border=8 removes the whole 16x16 image; use a smaller border")
    ):
        metric(img, img, 1.0, border=8)
    with pytest.raises(
        TypeError, match=re.escape("border must be an integer >= 0 pixels, got True")
    ):
        metric(img, img, 1.0, border=True)


@pytest.mark.parametrize("data_range", [True, "255"])
def test_data_range_of_another_type(data_range):
    img = np.zeros((16, 16))
    with pytest.raises(TypeError, match="data_range must be a positive finite number"):
        psnr(img, img, data_range=data_range)


def test_ssim_too_small():
    img = np.zeros((10, 30))
    message = (
        "ssim needs images of at least 11x11 pixels after the border crop, got 10x30; "
        "use a larger image or a smaller border"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        ssim(img, img, 1.0)
