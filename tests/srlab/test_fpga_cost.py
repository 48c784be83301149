"""Hardware cost estimate: multipliers, DSP slices, line buffers, BRAM, latency."""

from __future__ import annotations

import pytest

from srlab.fpga import FixedPointResizer, cost_table, estimate_cost
from srlab.fpga.cost import bram18_blocks, dsp_slices_per_multiply

# Hand counts use the default formats: pixels ap_ufixed<8,8> (8 bits, 9 as a signed DSP
# operand), weights ap_fixed<12,2> (12 bits), accumulator ap_fixed<24,12> (24 bits),
# line-buffer words ap_fixed<12,10> (12 bits), output 8 bits, 6 phase bits, 16 DDA fraction
# bits. A product is as wide as its operands together: 8 x 12 -> 20 bits, 12 x 12 -> 24 bits.


def test_bilinear_2x_on_a_16_pixel_row_counted_by_hand():
    c = estimate_cost(FixedPointResizer("bilinear", 2), (4, 16))
    assert (c.input_shape, c.output_shape, c.weight_source) == ("4x16x1", "8x32x1", "rom")
    # 2 taps x 2 passes x 1 channel; 9 x 12 and 12 x 12 bits each fit one 27 x 18 slice.
    assert (c.multipliers, c.dsp_per_multiplier, c.dsp_slices) == (4, 1, 4)
    # One adder per pass (two taps), plus the two DDA accumulators.
    assert c.adders == 1 + 1 + 2
    # Horizontal: window 2 x 8 + products 2 x 20 + 1 accumulator x 24 + output word 12 = 92.
    # Vertical: window 2 x 12 + products 2 x 24 + 1 x 24 + output 8 = 104.
    # Weights: 2 x 12 per pass = 48. DDAs: y 3 + 1 + 16 = 20 bits (4 + 2 = 6 is 3 bits, a sign,
    # 16 fraction bits), x 5 + 1 + 16 = 22 bits (16 + 2 = 18 is 5 bits), phases 2 x 6 = 12.
    assert c.register_bits == 92 + 104 + 48 + 20 + 22 + 12 == 298
    # 2 rows of 32 words of 12 bits; each row a 32 x 12 memory, one BRAM18 (1024 x 18).
    assert (c.line_buffers, c.line_buffer_bits, c.bram18) == (2, 2 * 32 * 12, 2)
    # 64 phases x 2 taps x 12 bits, one dual-port ROM for both passes.
    assert c.rom_bits == 64 * 2 * 12 == 1536
    # Per pass: ROM read 1 + DSP 3 + adder tree 1 + rounding 1 = 6.
    assert c.pipeline_depth == 12
    # Output (0, 0) sits at u = -0.25: taps at -1 and 0, clipped to pixel 0 of row 0.
    assert (c.fill_input_pixels, c.latency_cycles) == (1, 1 + 12)
    # The vertical pass writes 8 x 32 outputs, the busiest stage (input 4 x 16, horizontal 4 x 32).
    assert c.cycles_per_frame == 256
    assert c.storage_bits == 298 + 768 + 1536


def test_two_lanes_double_arithmetic_not_line_buffer_bits():
    one = estimate_cost(FixedPointResizer("bilinear", 2), (4, 16))
    two = estimate_cost(FixedPointResizer("bilinear", 2), (4, 16), pixels_per_clock=2)
    assert (two.multipliers, two.dsp_slices, two.adders) == (8, 8, 2 * 2 + 2)
    # Both lanes' pass registers and weights (92 + 104 + 48) x 2, one set of DDAs 54.
    assert two.register_bits == (92 + 104 + 48) * 2 + 54 == 542
    # Same 768 bits, now 2 rows of 16 words of 24 bits (both lanes side by side): 1 BRAM18 each.
    assert (two.line_buffer_bits, two.bram18) == (one.line_buffer_bits, 2) == (768, 2)
    # Per clock the horizontal pass reads 2 ROM rows (outputs 2k and 2k + 1 have phases 0.75
    # and 0.25) and the vertical pass 1: 3 reads need two dual-port copies.
    assert two.rom_bits == 2 * 1536
    assert two.cycles_per_frame == 256 // 2


@pytest.mark.parametrize(
    ("kernel", "adders_per_pass"), [("shift_add_2x", 9), ("shift_add_2x_opencv", 10)]
)
def test_shift_add_kernels_use_no_multiplier(kernel, adders_per_pass):
    # Worst phase 0.25. a = -0.5: 9 = 8 + 1, 111 = 128 - 16 - 1, 29 = 32 - 4 + 1, 3 = 4 - 1 take
    # 1 + 2 + 2 + 1 adders, and summing four taps 3 more: 9. a = -0.75: 27 = 32 - 4 - 1,
    # 225 = 256 - 32 + 1, 67 = 64 + 2 + 1, 9 = 8 + 1 take 2 + 2 + 2 + 1, plus 3: 10.
    table = cost_table(
        {kernel: FixedPointResizer(kernel, 2), "bicubic": FixedPointResizer("bicubic", 2)},
        (6, 8, 3),
    )
    row = table.loc[kernel]
    assert (row["multipliers"], row["dsp_slices"], row["rom_bits"], row["weight_source"]) == (
        0,
        0,
        0,
        "constants",
    )
    assert row["adders"] == adders_per_pass * 2 * 3 + 2  # per pass and channel, + 2 DDAs
    assert table.loc["bicubic", "multipliers"] == 4 * 2 * 3  # taps x passes x channels
    # Per pass: read 1 + one shift-add stage + adder tree 2 + rounding 1 = 5.
    assert row["pipeline_depth"] == 10
    # The bicubic registers of 6x8x3 less the weight registers (none for constants): per channel
    # horizontal 4 x 8 + 4 x 20 + 3 x 24 + 12 = 196, vertical 4 x 12 + 4 x 24 + 3 x 24 + 8 = 224;
    # DDAs y and x 4 + 1 + 16 = 21 bits each (6 + 2 and 8 + 2 are 4 bits), phases 12.
    assert row["register_bits"] == (196 + 224) * 3 + 21 + 21 + 12 == 1314
    assert table.loc["bicubic", "register_bits"] == 1314 + 2 * 4 * 12


def test_bicubic_1080p_counts():
    r = FixedPointResizer("bicubic", 2)  # 8-bit pixels, 12-bit weights, 12-bit line-buffer words
    c = estimate_cost(r, (540, 960, 3))
    assert c.output_shape == "1080x1920x3" and c.weight_source == "rom"
    assert c.dsp_per_multiplier == 1 and c.dsp_slices == 24
    assert c.line_buffers == 4 and c.line_buffer_bits == 4 * 1920 * 12 * 3
    # A row is 1920 words of 36 bits (3 channels): 4 x (512 x 36), 4 x (1024 x 18) or
    # 4 x (2048 x 9) blocks, so 4 BRAM18 per row.
    assert c.bram18 == 4 * 4
    # Two lanes: a row is 960 words of 72 bits, 2 x 2 blocks of 512 x 36 or 1 x 4 of 1024 x 18.
    assert estimate_cost(r, (540, 960, 3), pixels_per_clock=2).bram18 == 4 * 4
    assert c.rom_bits == 64 * 4 * 12
    assert c.pipeline_depth == 2 * (1 + 3 + 2 + 1)
    assert (
        c.fill_input_pixels == 1 * 960 + 1 + 1
    )  # rows 0-1 and pixels 0-1 of row 1 for output (0, 0)
    assert c.latency_cycles == 962 + 14
    assert c.cycles_per_frame == 1080 * 1920
    # Registers (196 + 224) x 3 + weights 2 x 4 x 12 + DDAs 2 x (10 + 1 + 16) (542 and 962
    # are 10 bits) + phases 12 = 1260 + 96 + 54 + 12.
    assert c.register_bits == 1422
    assert c.storage_bits == 1422 + 276480 + 3072


def test_wide_operands_need_more_dsp_slices():
    wide = FixedPointResizer(
        "bicubic",
        2,
        coeff_fmt="ap_fixed<26,2,RND,SAT>",
        mid_fmt="ap_fixed<30,12,RND,SAT>",
        acc_fmt="ap_fixed<40,14>",
    )
    assert estimate_cost(wide, (64, 64), dsp="dsp48e2").dsp_per_multiplier == 2
    assert estimate_cost(wide, (64, 64), dsp="dsp48e1").dsp_per_multiplier == 4


@pytest.mark.parametrize(
    ("a", "b", "family", "slices"),
    [
        (9, 12, "dsp48e2", 1),
        (27, 18, "dsp48e2", 1),
        (25, 18, "dsp48e1", 1),
        (26, 18, "dsp48e1", 2),
        (28, 18, "dsp48e2", 2),
        (18, 30, "dsp48e2", 2),
        (35, 35, "dsp48e2", 4),
        (44, 35, "dsp48e1", 4),
        (50, 35, "dsp48e1", 6),
    ],
)
def test_dsp_slices_per_multiply(a, b, family, slices):
    assert dsp_slices_per_multiply(a, b, family) == slices


def test_bram18_blocks():
    assert bram18_blocks(1920, 12) == 2  # 2K x 9 twice, or 1K x 18 twice
    assert bram18_blocks(512, 36) == 1 and bram18_blocks(513, 36) == 2
    assert bram18_blocks(16384, 1) == 1 and bram18_blocks(100, 1) == 1


def test_nearest_is_a_multiplexer():
    c = estimate_cost(FixedPointResizer("nearest", 2), (16, 16))
    assert (c.multipliers, c.dsp_slices, c.rom_bits, c.weight_source, c.line_buffers) == (
        0,
        0,
        0,
        "mux",
        2,
    )


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
    with pytest.raises(TypeError, match="pixels_per_clock must be an integer >= 1, got 1.0"):
        estimate_cost(r, pixels_per_clock=1.0)
    with pytest.raises(ValueError, match="H, W >= 4"):
        estimate_cost(r, (3, 100))
    with pytest.raises(TypeError, match="resizer must be a FixedPointResizer, got str"):
        estimate_cost("bicubic")
    with pytest.raises(ValueError, match="designs is empty"):
        cost_table({})
    with pytest.raises(TypeError, match="design 'b' must be a FixedPointResizer, got str"):
        cost_table({"a": r, "b": "bicubic"})
