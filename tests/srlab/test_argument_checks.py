"""srlab refuses a wrong type with TypeError and a bad value with ValueError, naming the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import srlab
from srlab.fixed import QFormat, quantize
from srlab.fpga import FixedPointResizer, estimate_cost, pareto_front, realtime_table
from srlab.fpga.cycle import line_buffer_count
from srlab.fpga.dda import PhaseDDA
from srlab.fpga.primitives import dsp_slices_per_multiply
from srlab.fpga.rtl import (
    filter_spec,
    generate_verilog,
    run_simulation,
    synthesize,
    verification_frames,
)
from srlab.fpga.vectors import format_hex, parse_hex
from srlab.imagecheck import check_frames
from srlab.images import center_crop, checkerboard
from srlab.kernels import csd_digits
from srlab.metrics import psnr
from srlab.multiframe import (
    Motion,
    fuse,
    register_frames,
    register_translation,
    shift_and_add,
    simulate_sequence,
    warp,
)

IMAGE = np.zeros((16, 16), np.uint8)
FRAMES = [np.zeros((16, 16)) for _ in range(4)]


@pytest.fixture(scope="module")
def design() -> FixedPointResizer:
    return FixedPointResizer("bilinear", 2)


def rtl(r: FixedPointResizer):
    """The generated Verilog of ``r``'s vertical-first twin for a small frame."""
    return generate_verilog(FixedPointResizer(r.kernel, 2, pass_order="vh"), (4, 6))


WRONG_TYPES = [
    (lambda r: estimate_cost(r, dsp=5), r"DSP family must be a name \(str\), got 5; known fam"),
    (lambda r: estimate_cost(r, "540x960"), "input_shape must be a tuple"),
    (lambda r: realtime_table({"a": r}, video=4), r"video format must be a name \(str\)"),
    (lambda r: realtime_table([r]), r"designs must be a mapping \{label: FixedPointResizer\}"),
    (lambda r: dsp_slices_per_multiply(9, 9, 3), r"DSP family must be a name \(str\)"),
    (lambda r: register_frames(FRAMES, method=3), r"registration method must be a name \(str\)"),
    (lambda r: shift_and_add(FRAMES, [Motion(0, 0)] * 4, 2, reducer=1), r"reducer must be a na"),
    (lambda r: fuse(FRAMES, ["a"] * 4, 2), "each motion must be a Motion"),
    (lambda r: warp(np.zeros((4, 4)), "m"), "motion must be a Motion"),
    (lambda r: simulate_sequence("img", 4, 2), "hr must be an image: a numeric"),
    (lambda r: register_translation(IMAGE, IMAGE, upsample="a"), "upsample must be an int"),
    (lambda r: Motion("a", 0), "Motion.dy must be a real number"),
    (lambda r: PhaseDDA("0.5"), "in_per_out must be a real number"),
    (lambda r: line_buffer_count("4"), "taps must be an int"),
    (lambda r: csd_digits("5"), "n must be an int"),
    (lambda r: format_hex(np.zeros(2), "q"), "fmt must be a QFormat"),
    (lambda r: parse_hex(5, QFormat(8, 2)), "text must be a str of hex lines"),
    (lambda r: verification_frames("4x6"), r"shape must be a tuple \(H, W\)"),
    (lambda r: pareto_front("df", "a", "b"), "df must be a pandas DataFrame"),
    (lambda r: generate_verilog(rtl(r).resizer, (4, 6), name=5), "name must be a Verilog modu"),
    (lambda r: synthesize(rtl(r), target=3), r"synthesis target must be a name \(str\), got 3"),
    (lambda r: synthesize("design"), "design must be an RtlDesign"),
    (lambda r: run_simulation(rtl(r), "frames"), r"frames must be a uint8 array \(n, H, W\)"),
    (lambda r: run_simulation(rtl(r), IMAGE[None, :4, :6], 3), r"simulator must be a name \(s"),
    (lambda r: psnr("a", IMAGE), "images must be an image: a numeric"),
    (
        lambda r: center_crop(IMAGE, "8"),
        r"size must be a \(height, width\) pair of integers, got str",
    ),
    (lambda r: checkerboard(square="8"), "square must be an integer number of pixels, got str"),
    (lambda r: quantize("a", QFormat(8, 4)), "quantize expects real numbers, got dtype <U1"),
    (lambda r: srlab.resize(IMAGE, "2"), r"scale must be a number or a \(sy, sx\) pair of num"),
    (lambda r: FixedPointResizer("bilinear", "2"), r"scale must be a number or a \(sy, sx\) pair"),
    (lambda r: filter_spec(r, "x", "8", "f"), "n_in must be an int, got str '8'"),
    (lambda r: filter_spec(r, 1, 8, "f"), r"axis must be a name \(str\), got 1; known: y, x"),
    (lambda r: filter_spec(r, "x", 8, 0), "name must be a Verilog module name"),
    (lambda r: check_frames(["a"]), r"frames must be a uint8 array \(n, H, W\)"),
]

BAD_VALUES = [
    (lambda r: estimate_cost(r, dsp="dsp58"), "unknown DSP family 'dsp58'; known families: dsp"),
    (lambda r: realtime_table({"a": r}, video="8k"), "unknown video format '8k'; known formats"),
    (lambda r: register_frames(FRAMES, "sift"), "unknown registration method 'sift'; known"),
    (lambda r: fuse(FRAMES, [Motion(0, 0)] * 4, 2, method="x"), "unknown fusion method 'x'"),
    (lambda r: Motion(float("nan"), 0), "Motion.dy must be finite"),
    (lambda r: line_buffer_count(0), "taps must be >= 1, got 0"),
    (lambda r: line_buffer_count(-3), "taps must be >= 1, got -3"),
    (lambda r: verification_frames((4, 6), n=0), "n must be >= 1, got 0"),
    (lambda r: verification_frames((4,)), r"shape must be \(H, W\) or \(H, W, C\)"),
    (lambda r: synthesize(rtl(r), target="asic"), "unknown synthesis target 'asic'; known tar"),
    (lambda r: run_simulation(rtl(r), IMAGE[:4, :6]), r"frames\[None\]\), got uint8 \(4, 6\)"),
    (lambda r: run_simulation(rtl(r), IMAGE[None]), r"shape \(n, 4, 6, 1\) with n >= 1 for this"),
    (lambda r: run_simulation(rtl(r), IMAGE[None, :4, :6], "x"), "unknown simulator 'x'; known"),
    (lambda r: center_crop(IMAGE, (8,)), r"size must be a \(height, width\) pair of integers"),
    (lambda r: checkerboard(square=0), "square must be an integer >= 1 pixel, got 0"),
    (lambda r: filter_spec(r, "z", 8, "f"), "unknown axis 'z'; known: y, x"),
    (lambda r: filter_spec(r, "x", 0, "f"), "n_in must be >= 1, got 0"),
    (lambda r: filter_spec(r, "x", 8, "1f"), "name '1f' is not a Verilog module name"),
    (lambda r: check_frames(np.zeros((0, 4, 6), np.uint8)), "with n >= 1"),
    (lambda r: check_frames(np.zeros((1, 4, 6), np.float32)), "got float32"),
]


@pytest.mark.parametrize(("call", "message"), WRONG_TYPES)
def test_a_wrong_type_is_a_type_error(design, call, message) -> None:
    with pytest.raises(TypeError, match=message):
        call(design)


@pytest.mark.parametrize(("call", "message"), BAD_VALUES)
def test_a_bad_value_is_a_value_error(design, call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call(design)


def test_the_checks_leave_good_arguments_alone(design) -> None:
    assert line_buffer_count(np.int64(3)) == 4
    assert csd_digits(np.int64(3)) == (-1, 0, 1)
    assert Motion(np.float64(0.5), 1).dx == 1
    assert PhaseDDA(np.float64(0.5)).in_per_out == 0.5
    front = pareto_front(pd.DataFrame({"a": [1, 2, np.nan], "b": [1.0, 2.0, 3.0]}), "a", "b")
    assert front.index.tolist() == [0, 1]  # NaN rows left out, sorted by x
