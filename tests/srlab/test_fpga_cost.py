"""Hardware cost estimate: multipliers, DSP slices, LUTs, flip-flops, line buffers, BRAM, clocks.

Every expected number is derived by hand in the comments; the default formats are pixels
ap_ufixed<8,8> (9 bits as a signed operand), weights ap_fixed<12,2> (12 bits, 10 fraction
bits), accumulator ap_fixed<24,12>, line-buffer words ap_fixed<12,10>, output 8 bits, 6 phase
bits, 16 DDA fraction bits.
"""

from __future__ import annotations

import numpy as np
import pytest

from srlab.fpga import FixedPointResizer, cost_table, estimate_cost, realtime_table
from srlab.fpga.primitives import (
    PUBLISHED_IP,
    VIDEO_FORMATS,
    bram18_blocks,
    dsp_slices_per_multiply,
    packs_two_products,
)


def test_bilinear_at_1_7x_on_a_small_frame_counted_by_hand():
    r = FixedPointResizer("bilinear", 1.7)
    # 6 x 16 -> round(10.2) x round(27.2); both passes address more than four ROM rows: a ROM.
    assert (
        len(np.unique(r.tap_table("x", 16)[1])) > 4 and len(np.unique(r.tap_table("y", 6)[1])) > 4
    )
    c = estimate_cost(r, (6, 16))
    assert (c.output_shape, c.weight_source, c.pass_order) == ("10x27x1", "rom", "hv")
    # a + f (b - a): one multiplier a pass; 10 x 12 (pixel and the pre-adder's carry bit) and
    # 13 x 12 bits each fit a 27 x 18 slice.
    assert (c.multipliers, c.dsp_per_multiplier, c.dsp_slices) == (2, 1, 2)
    assert c.adders == 2  # the DSP adds; only the two DDA accumulators are in the fabric
    # One ROM copy a pass: 64 rows x 2 taps x 12 bits each.
    assert c.rom_bits == 2 * 64 * 2 * 12
    # LUTs: horizontal pass rounding + saturation 2 x 12 and its LUT6 ROM 2 x 12; vertical 2 x 8
    # and 2 x 12; the two line buffers' row select 1 LUT x 2 taps x 12 bits; DDAs y 21 bits
    # (6 + 2 is 4 bits, a sign, 16 fraction bits) and x 22; counters 2 x (3 + 5 + 4 + 5).
    assert c.lut == 48 + 40 + 24 + 43 + 34 == 189
    # Flip-flops: horizontal window 2 x 8, output 12, ROM read 2 x 12; vertical output 8 and ROM
    # read 24 (its taps come from the buffers' registers); DDAs 43, phases 2 x 6, counters 17.
    assert c.flip_flops == 52 + 32 + 43 + 12 + 17 == 156
    # Two rows of 27 words of 12 bits, one BRAM18 each; vertical first would store two rows of
    # 16 input pixels of 8 bits.
    assert (c.line_buffers, c.line_buffer_bits, c.bram18) == (2, 2 * 27 * 12, 2)
    assert c.cheaper_pass_order == "vh"
    # Per pass: ROM read 1 + DSP 3 + adder level 1 + rounding 1.
    assert c.pipeline_depth == 12
    # Output (0, 0) sits at u = -0.21: taps at -1 and 0, clipped to pixel 0 of row 0.
    assert (c.fill_input_pixels, c.latency_cycles) == (1, 13)
    assert c.cycles_per_frame == 10 * 27  # the output is the busiest stage
    assert (c.clock_1080p60_mhz, c.clock_4k60_mhz) == (148.5, 594.0)
    assert c.storage_bits == 156 + 648 + 3072


def test_two_x_bicubic_needs_no_multiplier_and_vertical_first_halves_the_block_ram():
    hv = estimate_cost(FixedPointResizer("bicubic", 2), (540, 960, 3))
    vh = estimate_cost(FixedPointResizer("bicubic", 2, pass_order="vh"), (540, 960, 3))
    for c in (hv, vh):
        # At 2x the DDA addresses two rows, (-9, 111, 29, -3) / 128 and its mirror: in 10
        # fraction bits -72 = -(64 + 8), 888 = 1024 - 128 - 8, 232 = 256 - 32 + 8, -24 =
        # -(32 - 8): 1 + 2 + 2 + 1 CSD adders and 3 to sum the taps, 9 a row, 18 a filter.
        assert (c.weight_source, c.multipliers, c.dsp_slices, c.rom_bits) == ("constants", 0, 0, 0)
        assert c.adders == 18 * 2 * 3 + 2  # two passes, three channels, two DDAs
    # Horizontal first: 4 rows of 1920 words of 36 bits (3 x 12): 4 BRAM18 a row.
    assert (hv.line_buffer_bits, hv.bram18) == (4 * 1920 * 36, 16)
    # Vertical first: 4 rows of 960 pixels of 24 bits (3 x 8): 2 BRAM18 a row (1024 x 18).
    assert (vh.line_buffer_bits, vh.bram18, vh.bram36) == (4 * 960 * 24, 8, 4.0)
    assert hv.cheaper_pass_order == vh.cheaper_pass_order == "vh"
    # Per pass: read 1 + one shift-add stage + 2 adder levels + rounding 1.
    assert hv.pipeline_depth == 10
    assert hv.fill_input_pixels == 960 + 2  # row 1, pixel 1 holds output (0, 0)'s last tap
    assert hv.cycles_per_frame == 1080 * 1920


def test_lanes_multiply_filters_and_widen_the_buffers():
    r = FixedPointResizer("bicubic", 1.7, pass_order="vh")
    one = estimate_cost(r, (64, 64, 3))
    four = estimate_cost(r, (64, 64, 3), pixels_per_clock=4)
    assert one.weight_source == "rom" and one.dsp_slices == 4 * 3 * 2  # taps x channels x passes
    # Four output pixels a clock need ceil(4 x 64 / 109) = 3 input columns a clock: 3 vertical
    # filters and 4 horizontal ones a channel, each 4 taps.
    assert four.dsp_slices == 4 * 3 * (3 + 4)
    # The four rows of 64 pixels now read 3 pixels (72 bits) a clock: 22 x 72, 2 BRAM18 a row.
    assert four.bram18 == 4 * 2 and one.bram18 == 4
    assert four.cycles_per_frame == -(-109 * 109 // 4)
    assert four.clock_4k60_mhz == 148.5


def test_two_products_share_a_slice_where_the_formats_allow():
    # 7-bit weights: a pixel (9 signed bits) times a weight, summed over 4 taps, fits 18 bits.
    narrow = FixedPointResizer("bicubic", 1.7, coeff_fmt="ap_fixed<7,2,RND,SAT>", pass_order="vh")
    assert packs_two_products(9, 7, 4) and not packs_two_products(13, 7, 4)
    # The vertical pass's three channels share each weight: 2 slices a tap instead of 3; the
    # horizontal pass reads 12-bit words, too wide to pack: 3 a tap.
    assert estimate_cost(narrow, (64, 64, 3)).dsp_slices == 4 * 2 + 4 * 3
    assert estimate_cost(narrow, (64, 64, 3), dsp="dsp48e1").dsp_slices == 4 * 3 * 2
    assert estimate_cost(narrow, (64, 64, 1)).dsp_slices == 4 + 4  # nothing to pair with


def test_a_downscale_is_paced_by_its_input():
    # Halving 4K: the vertical pass reads 4 input pixels an output pixel, so a 1080p60 output
    # needs four times its pixel clock at one lane.
    down = estimate_cost(FixedPointResizer("bilinear", 0.5, pass_order="vh"), (2160, 3840))
    assert down.clock_1080p60_mhz == 4 * 148.5 and down.cycles_per_frame == 2160 * 3840


def test_the_lerp_needs_weights_that_add_up_to_one_and_a_free_pre_adder():
    lerp = FixedPointResizer("bilinear", 1.7)
    direct = FixedPointResizer("bilinear", 1.7, unity_gain=False)
    assert estimate_cost(lerp, (6, 16)).multipliers == 2
    assert estimate_cost(direct, (6, 16)).multipliers == 4  # two products a pass
    # 7-bit pixels and weights would pack two channels' products, but the lerp's b - a takes
    # the pre-adder that packing needs: one slice a product.
    narrow = FixedPointResizer(
        "bilinear",
        1.7,
        pixel_fmt="ap_ufixed<7,7>",
        coeff_fmt="ap_fixed<7,2,RND,SAT>",
        pass_order="vh",
    )
    assert (
        estimate_cost(narrow, (64, 64, 3)).dsp_slices
        == estimate_cost(narrow, (64, 64, 3)).multipliers
        == 6
    )


def test_wide_operands_need_more_dsp_slices():
    wide = FixedPointResizer(
        "bicubic",
        1.7,
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


def test_nearest_picks_pixels_and_buffers_them_as_they_are():
    c = estimate_cost(FixedPointResizer("nearest", 2), (16, 16))
    assert (c.multipliers, c.dsp_slices, c.rom_bits, c.weight_source) == (0, 0, 0, "mux")
    # Two rows of 32 pixels of 8 bits (no 12-bit line-buffer words: nothing is computed).
    assert (c.line_buffers, c.line_buffer_bits) == (2, 2 * 32 * 8)


def test_realtime_table_against_the_published_ip():
    designs = {"2x shift-add": FixedPointResizer("shift_add_2x", 2, pass_order="vh")}
    t = realtime_table(designs, "4k60").set_index("lanes")
    # 4K60 needs a 594 MHz pixel clock: one lane cannot reach 300 MHz, four run at 148.5.
    assert t.loc[1, "clock_mhz"] == 594.0 and not t.loc[1, "meets_clock"]
    assert t.loc[4, "clock_mhz"] == 148.5 and t.loc[4, "meets_clock"]
    # 1080p RGB input at four output pixels a clock: two input columns a clock from four rows
    # of 960 x 48 bits, 3 BRAM18 (1024 x 18) each: 6 BRAM36, and no DSP at all.
    assert t.loc[4, "dsp_slices"] == 0 and t.loc[4, "bram36"] == 6.0
    ip = PUBLISHED_IP["APV21B bicubic 4x (per 8-bit channel)"]
    assert ip["dsp"] == 49 and ip["pixels_per_clock"] == 4
    with pytest.raises(ValueError, match="unknown video format"):
        realtime_table(designs, "8k")


def test_cost_table_is_labelled_an_estimate():
    t = cost_table(
        {"pwl4": FixedPointResizer("pwl4", 1.7), "nearest": FixedPointResizer("nearest", 2)}
    )
    assert "estimate" in t.attrs["note"] and t.loc["pwl4", "weight_source"] == "segments"
    assert t.loc["pwl4", "rom_bits"] == 0 and t.loc["pwl4", "multipliers"] == 24
    assert {"lut", "flip_flops", "bram36", "clock_4k60_mhz"} <= set(t.columns)


def test_a_new_video_format_reaches_the_report_and_the_realtime_table(monkeypatch):
    monkeypatch.setitem(VIDEO_FORMATS, "720p60", (720, 1280, 74.25e6))
    design = FixedPointResizer("bilinear", 2, pass_order="vh")
    report = estimate_cost(design, (360, 640, 3))
    assert report.clock_720p60_mhz == report.clocks_mhz["720p60"] == 74.25
    assert "clock_720p60_mhz" in report.to_frame().columns
    table = realtime_table({"x2": design}, "720p60", lanes=(1,))
    assert table.loc[0, "clock_mhz"] == 74.25 and table.loc[0, "input"] == "640x360"
    with pytest.raises(AttributeError, match="clock_8k_mhz"):
        report.clock_8k_mhz  # noqa: B018 - the attribute access is the test
