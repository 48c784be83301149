"""Tests of srlab.imagecheck: the one image check and the one crop-window check of srlab."""

from __future__ import annotations

import re

import numpy as np
import pytest

from srlab import FixedPointResizer, degrade, psnr, resize
from srlab.imagecheck import check_crop, check_image
from srlab.peers import opencv_resize, pillow_resize
from srlab.viz import difference_figure


def test_check_crop_returns_ints():
    assert check_crop((np.int64(1), 2, 3.0, 4), (8, 8, 3)) == (1, 2, 3, 4)


@pytest.mark.parametrize(
    ("crop", "message"),
    [
        ((0, 0, 4), "crop must be (top, left, height, width) integers, got (0, 0, 4)"),
        ((0, 0.5, 4, 4), "crop must be (top, left, height, width) integers, got (0, 0.5, 4, 4)"),
        (None, "crop must be (top, left, height, width) integers, got None"),
        (
            (-1, 0, 4, 4),
            "crop (-1, 0, 4, 4) (top, left, height, width) does not fit in the 8x8 image",
        ),
        ((0, 0, 0, 4), "does not fit in the 8x8 image; move it or make it smaller"),
    ],
)
def test_check_crop_bad_input(crop, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_crop(crop, (8, 8))


def test_difference_figure_uses_the_same_check():
    with pytest.raises(
        ValueError, match=re.escape("crop must be (top, left, height, width) integers")
    ):
        difference_figure(np.zeros((8, 8)), {"a": np.zeros((8, 8), np.uint8)}, crop=(0, 1.5, 2, 2))


def test_check_image_defaults_are_what_degrade_takes():
    image = np.zeros((4, 5, 3), np.uint8)
    assert check_image(image) is image
    assert check_image([[0.0, 1.0]]).dtype == np.float64
    with pytest.raises(ValueError, match=re.escape("with C in 1, 3, 4, got shape (4, 5, 2)")):
        check_image(np.zeros((4, 5, 2), np.uint8))
    message = "image dtype float16 is not supported; use uint8, uint16, float32 or float64"
    with pytest.raises(ValueError, match=re.escape(message)):
        check_image(np.zeros((4, 5), np.float16))


@pytest.mark.parametrize(
    ("image", "options", "message"),
    [
        (np.zeros((4, 5, 7)), {"channels": None}, None),
        (np.zeros((4, 5), np.float16), {"dtypes": ("uint8", "float")}, None),
        (np.zeros((4, 5), np.int32), {"dtypes": None}, None),
        (np.full((4, 5), np.nan), {"finite": False}, None),
        (
            np.zeros((4, 5), np.int32),
            {"dtypes": ("uint8", "float")},
            "image dtype int32 is not supported; use uint8 or a float dtype",
        ),
        (
            np.zeros((4, 5), np.int32),
            {"dtypes": ("uint8",), "dtype_hint": " (convert it)"},
            "image dtype int32 is not supported; use uint8 (convert it)",
        ),
        (
            np.zeros((0, 5)),
            {"min_side": 1},
            "image is empty (shape (0, 5)); give at least one pixel",
        ),
        (
            np.zeros((3, 5)),
            {"min_side": 4},
            "image of 3x5 pixels is smaller than 4x4 pixels",
        ),
        (
            np.zeros((5, 3)),
            {"min_side": 4, "needed_by": "the filter"},
            "image of 5x3 pixels is smaller than the filter needs: at least 4x4 pixels",
        ),
        (
            np.zeros(5),
            {"name": "frame"},
            "frame must be 2-D (H, W) or 3-D (H, W, C) with C in 1, 3, 4, got shape (5,)",
        ),
        (np.array([[np.inf]]), {}, "image contains infinite values; replace them first"),
    ],
)
def test_check_image_options(image, options, message):
    if message is None:
        assert check_image(image, **options).shape == image.shape
    else:
        with pytest.raises(ValueError, match=re.escape(message)):
            check_image(image, **options)


@pytest.mark.parametrize(
    "call",
    [
        lambda image: resize(image, scale=2),
        lambda image: FixedPointResizer("bilinear", 2).run(image),
        lambda image: opencv_resize(image, (4, 4), "bilinear"),
        lambda image: pillow_resize(image, (4, 4), "bilinear"),
        lambda image: degrade(image, 2),
    ],
)
def test_every_image_taker_gives_the_shared_shape_message(call):
    with pytest.raises(ValueError, match=re.escape("image must be 2-D (H, W) or 3-D (H, W, C)")):
        call(np.zeros(8, np.uint8))


def test_metrics_name_both_images():
    with pytest.raises(ValueError, match=re.escape("images must be 2-D (H, W) or 3-D (H, W, C)")):
        psnr(np.zeros(8, np.uint8), np.zeros(8, np.uint8))
