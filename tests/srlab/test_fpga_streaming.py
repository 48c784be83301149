"""The streaming model (raster pixels, line buffers, window) is bit-identical to the vectorized one."""

from __future__ import annotations

import numpy as np
import pytest

from srlab.fpga import FixedPointResizer, estimate_cost, stream_resize


def _assert_identical(r: FixedPointResizer, image: np.ndarray) -> None:
    streamed = stream_resize(r, image)
    vectorized = r.trace(image)
    assert streamed.output.shape == vectorized.output.shape
    assert np.array_equal(streamed.output, vectorized.output)
    assert streamed.mid == vectorized.mid
    assert np.array_equal(r.run(image, path="taps"), streamed.output)


@pytest.mark.parametrize(
    ("kernel", "scale", "shape"),
    [
        ("bicubic", 2, (9, 7)),
        ("bicubic", 2, (8, 6, 3)),
        ("bicubic", 1.5, (11, 8, 3)),
        ("bicubic", (1.7, 0.8), (10, 11, 3)),
        ("lanczos3", 0.6, (13, 12)),
        ("lanczos4", 2.5, (8, 9)),
        ("bilinear", 3, (5, 4, 3)),
        ("pwl4", 2.5, (6, 5)),
        ("nearest", 1.5, (5, 7, 3)),
        ("shift_add_2x", 2, (7, 9)),
        ("shift_add_2x_opencv", 2, (6, 5, 3)),
    ],
)
def test_random_images_gray_and_rgb(kernel, scale, shape):
    rng = np.random.default_rng(11)
    _assert_identical(FixedPointResizer(kernel, scale), rng.integers(0, 256, shape, dtype=np.uint8))


def test_one_pixel_wide_borders():
    # A 1-pixel frame of white around black, and a 1-pixel black column and row at the edge.
    frame = np.zeros((9, 10, 3), np.uint8)
    frame[0, :] = frame[-1, :] = frame[:, 0] = frame[:, -1] = 255
    _assert_identical(FixedPointResizer("bicubic", 2), frame)
    edge = np.full((7, 8), 200, np.uint8)
    edge[:, -1] = 0
    edge[-1, :] = 0
    _assert_identical(FixedPointResizer("lanczos3", 1.5), edge)


@pytest.mark.parametrize("shape", [(4, 4), (4, 5), (5, 4, 3), (7, 9), (9, 7, 3)])
def test_odd_and_smallest_sizes(shape):
    image = np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8)
    _assert_identical(FixedPointResizer("bicubic", 2.5), image)
    _assert_identical(FixedPointResizer("bicubic", 0.9), image)


def test_saturating_inputs_with_negative_lobes():
    white = np.full((6, 7, 3), 255, np.uint8)
    checker = (np.indices((8, 8)).sum(axis=0) % 2 * 255).astype(np.uint8)
    wrapping = FixedPointResizer(
        "lanczos3", 2, mid_fmt="ap_fixed<11,9,RND,WRAP>", out_fmt="ap_ufixed<8,8,TRN,WRAP>", acc_fmt="ap_fixed<20,9,RND,SAT>"
    )
    for r in (FixedPointResizer("lanczos3", 2), FixedPointResizer("bicubic", 2), wrapping):
        _assert_identical(r, white)
        _assert_identical(r, checker)
    assert np.all(stream_resize(FixedPointResizer("lanczos3", 2), white).output == 255)


def test_narrow_formats_that_round_every_product():
    r = FixedPointResizer.from_fraction_bits("bicubic", 1.5, coeff_frac_bits=4, acc_frac_bits=1, acc_rounding="rnd_conv")
    _assert_identical(r, np.random.default_rng(9).integers(0, 256, (7, 8, 3), dtype=np.uint8))


@pytest.mark.parametrize(("kernel", "scale"), [("bicubic", 2), ("lanczos3", 0.6), ("bilinear", 3), ("lanczos4", 1.3)])
def test_stats_match_the_cost_model(kernel, scale):
    r = FixedPointResizer(kernel, scale)
    image = np.random.default_rng(0).integers(0, 256, (12, 13, 3), dtype=np.uint8)
    stats = stream_resize(r, image).stats
    cost = estimate_cost(r, image.shape)
    assert stats.input_pixels_at_first_output == cost.fill_input_pixels
    assert stats.line_buffer_rows == cost.line_buffers == r.taps
    assert stats.rows_in_use <= stats.line_buffer_rows
    h_out, w_out = r.output_shape(image.shape[:2])
    assert stats.vertical_outputs == h_out * w_out and stats.horizontal_outputs == 12 * w_out


def test_upscaling_needs_every_line_buffer():
    stats = stream_resize(FixedPointResizer("bicubic", 2), np.zeros((8, 8), np.uint8)).stats
    assert stats.rows_in_use == 4


def test_bad_input():
    with pytest.raises(ValueError, match="resizer must be a FixedPointResizer"):
        stream_resize("bicubic", np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="image of 2x8 pixels is smaller than the 4-tap kernel"):
        stream_resize(FixedPointResizer("bicubic", 2), np.zeros((2, 8), np.uint8))
    with pytest.raises(ValueError, match="image dtype float64 is not supported"):
        stream_resize(FixedPointResizer("bicubic", 2), np.zeros((8, 8)))


def test_streaming_agreement_table():
    from srlab.fpga import streaming_agreement

    image = np.random.default_rng(4).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    table = streaming_agreement({"bicubic": FixedPointResizer("bicubic", 2), "bilinear": FixedPointResizer("bilinear", 1.5)}, image)
    assert table["identical_output"].all() and table["identical_line_buffers"].all()
    assert (table["fill_streamed"] == table["fill_estimated"]).all()
    assert table.loc["bicubic", "outputs"] == 12 * 14
    with pytest.raises(ValueError, match="designs is empty"):
        streaming_agreement({}, image)
