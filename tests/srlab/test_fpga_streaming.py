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
        "lanczos3",
        2,
        mid_fmt="ap_fixed<11,9,RND,WRAP>",
        out_fmt="ap_ufixed<8,8,TRN,WRAP>",
        acc_fmt="ap_fixed<20,9,RND,SAT>",
    )
    for r in (FixedPointResizer("lanczos3", 2), FixedPointResizer("bicubic", 2), wrapping):
        _assert_identical(r, white)
        _assert_identical(r, checker)
    assert np.all(stream_resize(FixedPointResizer("lanczos3", 2), white).output == 255)


def test_narrow_formats_that_round_every_product():
    r = FixedPointResizer.from_fraction_bits(
        "bicubic", 1.5, coeff_frac_bits=4, acc_frac_bits=1, acc_rounding="rnd_conv"
    )
    _assert_identical(r, np.random.default_rng(9).integers(0, 256, (7, 8, 3), dtype=np.uint8))


# Streams counted by hand. Output sample y sits at u = (y + 0.5) / scale - 0.5 and reads input
# rows floor(u) - taps/2 + 1 .. floor(u) + taps/2 (clipped to the image); it is computed when
# the last of them arrives, and further outputs of the same window after that row has ended.
@pytest.mark.parametrize(
    ("kernel", "scale", "shape", "fill", "rows_in_use", "outputs"),
    [
        # Output (0, 0) at u = -0.25 reads rows and columns -1..0, clipped to 0: the first
        # pixel is enough. Output row 2 (u = 0.75) reads rows 0 and 1 after row 1 has ended.
        # Horizontal 4 x 32 words, vertical 8 x 32.
        ("bilinear", 2, (4, 16), 1, 2, (4 * 32, 8 * 32)),
        # Output (0, 0) reads rows and columns -2..1, clipped to 0..1: row 0 (8 pixels) and
        # pixels 0, 1 of row 1 = 10. Output row 4 (u = 1.75) reads rows 0..3.
        ("bicubic", 2, (6, 8, 3), 10, 4, (6 * 16, 12 * 16)),
        # Output (0, 0) at u = 0.5 reads -1..2, clipped to 0..2: rows 0, 1 (16 pixels) and
        # pixels 0..2 of row 2 = 19. Output row 1 (u = 2.5) reads rows 1..4.
        ("bicubic", 0.5, (8, 8), 19, 4, (8 * 4, 4 * 4)),
        # Output (0, 0) at u = 1/3 reads -2..3: rows 0..2 (3 x 13 pixels) and pixels 0..3 of
        # row 3 = 43. Output row 1 (u = 2) reads rows 0..5. 7 x 8 outputs.
        ("lanczos3", 0.6, (12, 13), 43, 6, (12 * 8, 7 * 8)),
    ],
)
def test_stats_against_hand_counts(kernel, scale, shape, fill, rows_in_use, outputs):
    r = FixedPointResizer(kernel, scale)
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    stats = stream_resize(r, image).stats
    assert stats.input_pixels_at_first_output == fill
    assert stats.rows_in_use == rows_in_use
    assert (stats.horizontal_outputs, stats.vertical_outputs) == outputs
    cost = estimate_cost(r, shape)
    assert cost.fill_input_pixels == fill
    # The estimate's line buffers are exactly the rows the stream reads at once.
    assert cost.line_buffers == stats.line_buffer_rows == rows_in_use


def test_one_line_buffer_fewer_is_not_enough():
    image = np.random.default_rng(0).integers(0, 256, (6, 8), dtype=np.uint8)
    r = FixedPointResizer("bicubic", 2)
    with pytest.raises(RuntimeError, match="line buffer slot .* holds row"):
        stream_resize(r, image, line_buffers=r.taps - 1)
    with pytest.raises(ValueError, match="line_buffers must be >= 1"):
        stream_resize(r, image, line_buffers=0)
    with pytest.raises(TypeError, match="line_buffers must be an int"):
        stream_resize(r, image, line_buffers="3")


def test_upscaling_needs_every_line_buffer():
    stats = stream_resize(FixedPointResizer("bicubic", 2), np.zeros((8, 8), np.uint8)).stats
    assert stats.rows_in_use == 4


def test_bad_input():
    with pytest.raises(TypeError, match="resizer must be a FixedPointResizer, got str"):
        stream_resize("bicubic", np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="image of 2x8 pixels is smaller than the 4-tap kernel"):
        stream_resize(FixedPointResizer("bicubic", 2), np.zeros((2, 8), np.uint8))
    with pytest.raises(ValueError, match="image dtype float64 is not supported"):
        stream_resize(FixedPointResizer("bicubic", 2), np.zeros((8, 8)))


def test_streaming_agreement_table():
    from srlab.fpga import streaming_agreement

    image = np.random.default_rng(4).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    table = streaming_agreement(
        {
            "bicubic": FixedPointResizer("bicubic", 2),
            "bilinear": FixedPointResizer("bilinear", 1.5),
        },
        image,
    )
    assert table["identical_output"].all() and table["identical_line_buffers"].all()
    assert (table["fill_streamed"] == table["fill_estimated"]).all()
    assert table.loc["bicubic", "outputs"] == 12 * 14
    with pytest.raises(ValueError, match="designs is empty"):
        streaming_agreement({}, image)
    with pytest.raises(TypeError, match="design 'x' must be a FixedPointResizer, got str"):
        streaming_agreement({"x": "bicubic"}, image)
