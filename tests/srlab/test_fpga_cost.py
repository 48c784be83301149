"""Hardware cost estimate: multipliers, DSP slices, line buffers, BRAM, latency."""

from __future__ import annotations

import pytest

from srlab.fpga import FixedPointResizer, cost_table, estimate_cost
from srlab.fpga.cost import bram18_blocks, dsp_slices_per_multiply
from srlab.kernels import get_kernel


@pytest.mark.parametrize("kernel", ["shift_add_2x", "shift_add_2x_opencv"])
def test_shift_add_kernels_use_no_multiplier(kernel):
    table = cost_table({kernel: FixedPointResizer(kernel, 2), "bicubic": FixedPointResizer("bicubic", 2)})
    assert table.loc[kernel, "multipliers"] == 0 and table.loc[kernel, "dsp_slices"] == 0
    assert table.loc[kernel, "rom_bits"] == 0 and table.loc[kernel, "weight_source"] == "constants"
    assert table.loc["bicubic", "multipliers"] == 4 * 2 * 3  # taps x passes x channels
    # Shift-add constants cost the CSD adders of get_kernel(...).hardware, per pass and channel, + 2 DDAs.
    assert table.loc[kernel, "adders"] == get_kernel(kernel).hardware.adders * 2 * 3 + 2


def test_bicubic_1080p_counts():
    r = FixedPointResizer("bicubic", 2)  # 8-bit pixels, 12-bit weights, 12-bit line-buffer words
    c = estimate_cost(r, (540, 960, 3))
    assert c.output_shape == "1080x1920x3" and c.weight_source == "rom"
    assert c.dsp_per_multiplier == 1 and c.dsp_slices == 24
    assert c.line_buffers == 4 and c.line_buffer_bits == 4 * 1920 * 12 * 3
    assert c.bram18 == 4 * bram18_blocks(1920, 36) == 16
    assert c.rom_bits == 64 * 4 * 12
    assert c.pipeline_depth == 2 * (1 + 3 + 2 + 1)
    assert c.fill_input_pixels == 1 * 960 + 1 + 1  # rows 0-1 and pixels 0-1 of row 1 for output (0, 0)
    assert c.latency_cycles == c.fill_input_pixels + c.pipeline_depth
    assert c.cycles_per_frame == 1080 * 1920
    assert c.storage_bits == c.register_bits + c.line_buffer_bits + c.rom_bits


def test_wide_operands_need_more_dsp_slices():
    wide = FixedPointResizer("bicubic", 2, coeff_fmt="ap_fixed<26,2,RND,SAT>", mid_fmt="ap_fixed<30,12,RND,SAT>", acc_fmt="ap_fixed<40,14>")
    assert estimate_cost(wide, (64, 64), dsp="dsp48e2").dsp_per_multiplier == 2
    assert estimate_cost(wide, (64, 64), dsp="dsp48e1").dsp_per_multiplier == 4


@pytest.mark.parametrize(
    ("a", "b", "family", "slices"),
    [(9, 12, "dsp48e2", 1), (27, 18, "dsp48e2", 1), (25, 18, "dsp48e1", 1), (26, 18, "dsp48e1", 2), (28, 18, "dsp48e2", 2),
     (18, 30, "dsp48e2", 2), (35, 35, "dsp48e2", 4), (44, 35, "dsp48e1", 4), (50, 35, "dsp48e1", 6)],
)
def test_dsp_slices_per_multiply(a, b, family, slices):
    assert dsp_slices_per_multiply(a, b, family) == slices


def test_bram18_blocks():
    assert bram18_blocks(1920, 12) == 2  # 2K x 9 twice, or 1K x 18 twice
    assert bram18_blocks(512, 36) == 1 and bram18_blocks(513, 36) == 2
    assert bram18_blocks(16384, 1) == 1 and bram18_blocks(100, 1) == 1


def test_lanes_multiply_arithmetic_not_line_buffer_bits():
    r = FixedPointResizer("bilinear", 2)
    one, two = estimate_cost(r, (100, 120, 3)), estimate_cost(r, (100, 120, 3), pixels_per_clock=2)
    assert two.multipliers == 2 * one.multipliers and two.line_buffer_bits == one.line_buffer_bits
    assert two.cycles_per_frame == one.cycles_per_frame // 2


def test_nearest_is_a_multiplexer():
    c = estimate_cost(FixedPointResizer("nearest", 2), (16, 16))
    assert (c.multipliers, c.dsp_slices, c.rom_bits, c.weight_source, c.line_buffers) == (0, 0, 0, "mux", 2)


def test_frame_is_labelled_an_estimate():
    frame = estimate_cost(FixedPointResizer("pwl4", 2)).to_frame()
    assert "estimate" in frame.attrs["note"] and frame.loc[0, "weight_source"] == "segments"
    assert frame.loc[0, "rom_bits"] == 0 and frame.loc[0, "multipliers"] == 24


def test_bad_input():
    r = FixedPointResizer("bicubic", 2)
    with pytest.raises(ValueError, match="unknown DSP family 'dsp58'; known: dsp48e1, dsp48e2"):
        estimate_cost(r, dsp="dsp58")
    with pytest.raises(ValueError, match="pixels_per_clock must be an integer >= 1"):
        estimate_cost(r, pixels_per_clock=0)
    with pytest.raises(ValueError, match="H, W >= 4"):
        estimate_cost(r, (3, 100))
    with pytest.raises(ValueError, match="resizer must be a FixedPointResizer"):
        estimate_cost("bicubic")
    with pytest.raises(ValueError, match="designs is empty"):
        cost_table({})
