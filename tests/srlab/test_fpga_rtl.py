"""The generated Verilog against the bit-true model and the cycle model, and its synthesis.

Simulation tests run under every simulator installed (Icarus Verilog, Verilator) and skip with
the reason where none is; CI installs both (``.ci/run``).
"""

import dataclasses

import numpy as np
import pytest

from srlab.fpga import FixedPointResizer, estimate_cost
from srlab.fpga.cycle import cycle_stats, simulate_cycles
from srlab.fpga.rtl import (
    available_simulators,
    check_filter_unit,
    cosimulate,
    filter_reference,
    generate_verilog,
    synthesize,
    verification_frames,
    yosys_available,
)

SIMULATORS = available_simulators()
needs_simulator = pytest.mark.skipif(
    not SIMULATORS, reason="no Verilog simulator installed (apt-get install iverilog verilator)"
)
needs_yosys = pytest.mark.skipif(not yosys_available(), reason="yosys not installed")

# Two format choices per datapath: the defaults, and narrow words with other rounding and
# overflow modes (every mode of the cast appears in one of the filter units).
NARROW = dict(
    coeff_fmt="ap_fixed<10,2,RND_CONV,SAT>",
    acc_fmt="ap_fixed<18,10,RND_ZERO,WRAP>",
    mid_fmt="ap_fixed<11,10,RND_INF,SAT_SYM>",
    out_fmt="ap_ufixed<8,8,RND_MIN_INF,SAT_ZERO>",
)
NARROW_TRN = dict(acc_fmt="ap_fixed<14,10,TRN_ZERO,SAT>", out_fmt="ap_ufixed<8,8,TRN,WRAP>")
DATAPATHS = {  # label: (kernel, scale, extra options); "rom": more phases than constants take
    "bilinear 2x": ("bilinear", 2, {}),
    "bicubic 2x": ("bicubic", 2, {}),
    "bicubic 1.7x rom": ("bicubic", 1.7, {"phase_bits": 4}),
}
FORMATS = {"default": {}, "narrow": NARROW, "truncating": NARROW_TRN}


def design(label: str, formats: str) -> FixedPointResizer:
    kernel, scale, options = DATAPATHS[label]
    return FixedPointResizer(kernel, scale, pass_order="vh", **options, **FORMATS[formats])


def test_vertical_first_is_the_transposed_horizontal_first_model():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    vh = FixedPointResizer("bicubic", (1.5, 0.75), pass_order="vh")
    hv = FixedPointResizer("bicubic", (0.75, 1.5))
    expected = hv.run(image.swapaxes(0, 1)).swapaxes(0, 1)
    assert np.array_equal(vh.run(image), expected)
    assert np.array_equal(vh.run(image, path="taps"), expected)
    assert vh.trace(image).mid.codes.shape == (14, 13, 3)  # the vertical pass's words
    differs = vh.run(image) != FixedPointResizer("bicubic", (1.5, 0.75)).run(image)
    assert 0 < differs.mean() < 0.2  # rounding happens elsewhere: a few pixels move by 1 LSB
    with pytest.raises(ValueError, match="pass_order"):
        FixedPointResizer("bicubic", 2, pass_order="hvh")


def test_generation_refuses_what_the_circuit_does_not_compute():
    with pytest.raises(ValueError, match="pass_order='vh'"):
        generate_verilog(FixedPointResizer("bicubic", 2), (8, 8))
    with pytest.raises(ValueError, match="smaller than the 4-tap kernel"):
        generate_verilog(FixedPointResizer("bicubic", 2, pass_order="vh"), (3, 8))
    with pytest.raises(TypeError, match="FixedPointResizer"):
        generate_verilog("bicubic", (8, 8))
    with pytest.raises(ValueError, match="not a Verilog module name"):
        generate_verilog(FixedPointResizer("bicubic", 2, pass_order="vh"), (8, 8), name="my top")
    with pytest.raises(ValueError, match="positive ints"):
        generate_verilog(FixedPointResizer("bicubic", 2, pass_order="vh"), (8.5, 8))
    with pytest.raises(ValueError, match="vertical pass first"):
        simulate_cycles(FixedPointResizer("bicubic", 2), (8, 8))
    with pytest.raises(ValueError, match="over 60"):
        generate_verilog(
            FixedPointResizer("bicubic", 2, acc_fmt="ap_fixed<61,12>", pass_order="vh"), (8, 8)
        )


def test_two_x_filters_are_shift_and_add_and_other_scales_read_a_rom():
    d2 = generate_verilog(design("bicubic 2x", "default"), (8, 8))
    assert d2.vertical.constant and sorted(d2.vertical.rows) == [16, 48]  # phases 1/4 and 3/4
    assert d2.vertical.rows[16] == (-72, 888, 232, -24)  # (-9, 111, 29, -3) / 128 in 10 bits
    assert " * " not in d2.verilog  # no multiplier anywhere
    rom = generate_verilog(design("bicubic 1.7x rom", "default"), (8, 8))
    assert not rom.vertical.constant and "case (phase)" in rom.verilog


def test_the_filter_reference_is_the_bit_true_models_mac():
    r = design("bicubic 1.7x rom", "narrow")
    d = generate_verilog(r, (8, 8))
    idx, phase, _ = r.tap_table("y", 8)
    image = np.random.default_rng(1).integers(0, 256, (8, 8), dtype=np.uint8)
    mid = r.trace(image).mid.codes[:, 0, 0]  # the vertical pass at column 0
    assert np.array_equal(filter_reference(d.vertical, image[:, 0][idx], phase), mid)


@needs_simulator
@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("label", list(DATAPATHS))
def test_filter_units_are_exact_for_every_input_code_and_phase(simulator, label):
    for formats in ("default", "narrow"):
        d = generate_verilog(design(label, formats), (8, 8))
        for spec in (d.vertical, d.horizontal):
            bad = check_filter_unit(spec, simulator)
            fmt = spec.input_format or spec.source
            codes = fmt.max_code - fmt.min_code + 1
            assert bad.attrs["vectors"] == len(spec.rows) * spec.taps * codes
            assert bad.empty, (label, formats, spec.name, bad.head())


@needs_simulator
@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("label", list(DATAPATHS))
@pytest.mark.parametrize("formats", ["default", "narrow", "truncating"])
def test_simulated_rtl_equals_the_model_bit_for_bit_and_clock_for_clock(simulator, label, formats):
    # 160 frames (random, extremes, borders, photo crops) under random back-pressure.
    r = design(label, formats)
    frames = verification_frames((8, 11), n=160, seed=len(label))
    report = cosimulate(r, frames, simulator, seeds=(5, 6), rates=(0.7, 0.6))
    assert report.frames == 160
    assert report.mismatches.empty, report.mismatches.head()
    assert report.cycle_mismatches == 0


@needs_simulator
def test_wrapping_into_unsigned_words_is_exact():
    # Negative sums wrap into unsigned accumulator and line-buffer words: the wire that keeps
    # the word's bits must be sign-extended first, or the circuit reads undefined bits.
    r = FixedPointResizer(
        "bicubic",
        2,
        pass_order="vh",
        acc_fmt="ap_ufixed<24,20,TRN,WRAP>",
        mid_fmt="ap_ufixed<14,11,RND,WRAP>",
    )
    report = cosimulate(r, verification_frames((6, 7), n=12), SIMULATORS[0], rates=(0.5, 0.5))
    assert report.identical
    d = generate_verilog(r, (6, 7))
    assert check_filter_unit(d.vertical, SIMULATORS[0]).empty
    assert check_filter_unit(d.horizontal, SIMULATORS[0]).empty


def test_verification_frames_fit_any_channels_and_size():
    for shape in [(6, 6, 4), (9, 9, 2), (300, 700), (4, 4, 3), (1, 1)]:
        frames = verification_frames(shape, n=120)
        assert frames.shape == (120,) + shape and frames.dtype == np.uint8
    with pytest.raises(ValueError, match=r"frames\[None\]"):
        cosimulate(design("bilinear 2x", "default"), np.zeros((0, 6, 6), np.uint8))


@needs_simulator
def test_rgb_frames_and_a_mismatch_is_reported_by_pixel():
    r = design("bicubic 2x", "default")
    frames = verification_frames((6, 7, 3), n=6, seed=2)
    assert cosimulate(r, frames, SIMULATORS[0], rates=(1.0, 0.5)).identical
    # Against the horizontal-first model the report names the pixels the pass order moves.
    hv = dataclasses.replace(r, pass_order="hv")
    report = cosimulate(r, frames, SIMULATORS[0], reference=hv)
    assert not report.identical and report.cycle_mismatches == 0
    assert set(report.mismatches.columns) == {"frame", "y", "x", "channel", "expected", "simulated"}
    assert (report.mismatches.expected.astype(int) - report.mismatches.simulated).abs().max() == 1


def test_cycle_model_figures_derived_by_hand():
    # Bilinear 2x: pixel (0, 0) arrives on clock 0, is readable on clock 2, fills the window
    # and the first output (taps at columns -1 and 0) leaves on clock 3.
    assert cycle_stats(design("bilinear 2x", "default"), (4, 6)).latency == 3
    # Bicubic 2x: the first output needs row 1 (taps -1..2 clipped) up to column 1, which
    # arrives on clock W + 1 and is readable two clocks later; the output leaves a clock after.
    for w in (6, 10, 16):
        assert cycle_stats(design("bicubic 2x", "default"), (6, w)).latency == w + 4
    up = cycle_stats(design("bicubic 2x", "default"), (16, 32))
    assert up.interval == 1 and 0.9 < up.output_pixels_per_clock < 1
    # A row of 64 output pixels takes 64 clocks and one more to refill the window (columns 0 and
    # 1, the second pushed in the emit's clock); a row that needs a new input row waits two
    # more: the writer starts that row only when the previous output row is done, and its
    # column 1 is readable two clocks after it is written.
    assert up.row_clocks == 64 + 1 + 2
    assert up.input_stall_share > 0.7  # an upscale by 2 takes one input pixel in four clocks
    down = cycle_stats(FixedPointResizer("bilinear", 0.5, pass_order="vh"), (8, 8))
    assert down.interval == 2  # two input columns a pixel
    assert up.clock_mhz(148.5e6) > 148.5 and up.clock_mhz(594e6, lanes=4) == up.clock_mhz(148.5e6)


def test_cycle_model_back_pressure_only_delays():
    r = design("bicubic 2x", "default")
    free = simulate_cycles(r, (6, 8), 2)
    slow = simulate_cycles(r, (6, 8), 2, seeds=(3, 4), rates=(0.5, 0.3))
    assert len(free.output_cycles) == len(slow.output_cycles) == 2 * 12 * 16
    assert (slow.output_cycles >= free.output_cycles).all()
    assert list(np.flatnonzero(slow.last)) == [191, 383]
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        simulate_cycles(r, (6, 8), rates=(0.0, 1.0))


@needs_yosys
def test_synthesis_counts_line_buffers_and_multipliers():
    # 960 8-bit pixels a line fit one RAMB18 (18 Kb); 960 RGB pixels need a RAMB36 each.
    gray = synthesize(generate_verilog(design("bicubic 2x", "default"), (540, 960)))
    assert gray["dsp"] == 0 and gray["bram18"] == 4 and gray["bram36"] == 0
    rgb = synthesize(generate_verilog(design("bilinear 2x", "default"), (540, 960, 3)))
    assert rgb["dsp"] == 0 and rgb["bram36"] == 2
    rom = synthesize(generate_verilog(design("bicubic 1.7x rom", "default"), (64, 64)))
    assert rom["dsp"] == 8  # one multiplier a tap in each pass
    # Nearest at 1.7x addresses many ROM rows but holds two distinct ones: a multiplexer.
    nearest = FixedPointResizer("nearest", 1.7, pass_order="vh")
    assert generate_verilog(nearest, (8, 64)).vertical.constant
    assert synthesize(generate_verilog(nearest, (8, 64)))["dsp"] == 0
    assert gray["lut"] > 0 and gray["flip_flops"] > 0
    # The cost model's DSP and block RAM counts are the synthesized ones; its LUTs are within
    # a factor of two (the Verilog sums taps in the fabric where the model assumes a cascade).
    for counted, r, shape in (
        (gray, design("bicubic 2x", "default"), (540, 960)),
        (rgb, design("bilinear 2x", "default"), (540, 960, 3)),
    ):
        estimate = estimate_cost(r, shape)
        assert estimate.dsp_slices == counted["dsp"]
        assert estimate.bram18 == counted["bram18"] + 2 * counted["bram36"]
        assert 0.5 < estimate.lut / counted["lut"] < 2
