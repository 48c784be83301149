"""srlab refuses a wrong type with TypeError and a bad value with ValueError, naming the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from srlab.fixed import QFormat
from srlab.fpga import FixedPointResizer, estimate_cost, pareto_front, realtime_table
from srlab.fpga.cycle import line_buffer_count
from srlab.fpga.dda import PhaseDDA
from srlab.fpga.primitives import dsp_slices_per_multiply
from srlab.fpga.rtl import verification_frames
from srlab.fpga.vectors import format_hex, parse_hex
from srlab.kernels import csd_digits
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
