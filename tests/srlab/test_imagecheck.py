"""Tests of srlab.imagecheck: the one crop-window check every figure uses."""

from __future__ import annotations

import re

import numpy as np
import pytest

from srlab.imagecheck import check_crop
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
