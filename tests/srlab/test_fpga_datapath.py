"""The vectorized fixed-point resizer: agreement with the float resize, its two paths, bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import srlab
from srlab.fixed import FixedArray, QFormat, cast, cast_float_codes
from srlab.fpga import FixedPointResizer, PhaseDDA
from srlab.fpga.fastpath import pass_spec
from srlab.fpga.rom import minimum_int_bits
from srlab.images import center_crop, load_image
from srlab.kernels import SHIFT_ADD_CONSTANTS

ROUNDINGS = ["trn", "trn_zero", "rnd", "rnd_zero", "rnd_inf", "rnd_min_inf", "rnd_conv"]
OVERFLOWS = ["wrap", "sat", "sat_zero", "sat_sym"]

# 24 coefficient and 22+ accumulator / line-buffer fraction bits, a 16-bit phase and a
# 36-bit DDA: far beyond what float32 rounding in srlab.resize resolves.
WIDE = {
    "coeff_fmt": "ap_fixed<26,2,RND,SAT>",
    "acc_fmt": "ap_fixed<60,14>",
    "mid_fmt": "ap_fixed<34,12,RND,SAT>",
    "phase_bits": 16,
    "dda_frac_bits": 36,
}


def _image(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize(
    ("kernel", "scale"),
    [
        ("bicubic", 2),
        ("bicubic", 1.5),
        ("bicubic", 3),
        ("bicubic", 0.7),
        ("bilinear", 2),
        ("bilinear", 2.5),
        ("lanczos3", 1.7),
        ("pwl4", 2),
        ("pwl6", 3),
        ("nearest", 1.5),
        ("shift_add_2x", 2),
        ("shift_add_2x_opencv", 2),
    ],
)
@pytest.mark.parametrize("shape", [(23, 17), (19, 26, 3)])
def test_wide_formats_equal_the_float_resize_within_one_lsb(kernel, scale, shape):
    image = _image(np.random.default_rng(7), shape)
    fixed = FixedPointResizer(kernel, scale, **WIDE).run(image)
    # The datapath steps its phase by 1 / scale: compare nearest with the phase rule, not with
    # the peers' index rule of srlab.resize.
    phase_kernel = dataclasses.replace(srlab.get_kernel(kernel), rule=None)
    reference = srlab.resize(image, scale=scale, kernel=phase_kernel, border="replicate")
    assert fixed.shape == reference.shape and fixed.dtype == np.uint8
    assert int(np.abs(fixed.astype(int) - reference).max()) <= 1


def test_wide_formats_on_a_photo_differ_in_few_pixels():
    image = center_crop(load_image("astronaut"), (64, 64))
    fixed = FixedPointResizer(srlab.get_kernel("bicubic", a=-0.75), 2, **WIDE).run(image)
    reference = srlab.resize(image, scale=2, kernel="bicubic", a=-0.75)
    diff = np.abs(fixed.astype(int) - reference)
    assert diff.max() <= 1 and diff.mean() < 1e-3


def test_default_design_is_close_to_the_float_resize():
    image = _image(np.random.default_rng(1), (32, 30, 3))
    fixed = FixedPointResizer("bicubic", 2).run(image)
    reference = srlab.resize(image, scale=2, kernel="bicubic")
    assert np.abs(fixed.astype(int) - reference).max() <= 2


@pytest.mark.parametrize(
    "kernel", ["bicubic", "bilinear", "lanczos4", "pwl2", "nearest", "shift_add_2x"]
)
@pytest.mark.parametrize("value", [0, 1, 128, 255])
def test_flat_images_stay_flat_when_the_mac_keeps_the_product_bits(kernel, value):
    # 5-bit coefficients: only unity-gain ROM rows keep the DC gain at exactly one.
    image = np.full((9, 8, 3), value, np.uint8)
    design = FixedPointResizer.from_fraction_bits(
        kernel, 2, coeff_frac_bits=5, acc_frac_bits=8, mid_frac_bits=3
    )
    assert np.all(design.run(image) == value)


def test_truncating_products_biases_flat_images_down():
    # acc += c * p with TRN drops product bits toward minus infinity: with negative lobes
    # the 4 taps of 2 passes lose up to a grey level; rounding (RND) each product does not.
    image = np.full((9, 8, 3), 255, np.uint8)
    trn = FixedPointResizer.from_fraction_bits("lanczos4", 2, coeff_frac_bits=5, acc_frac_bits=3)
    rnd = FixedPointResizer.from_fraction_bits(
        "lanczos4", 2, coeff_frac_bits=5, acc_frac_bits=3, acc_rounding="rnd"
    )
    assert np.all(trn.run(image) == 254)
    assert np.all(rnd.run(image) == 255)


def test_rom_holds_the_shift_add_constants_exactly():
    for name, (_, table) in SHIFT_ADD_CONSTANTS.items():
        r = FixedPointResizer(name, 2, coeff_fmt="ap_fixed<12,2,RND,SAT>", phase_bits=2)
        for phase, (numerators, denominator) in table.items():
            row = int(phase * 4)
            assert r.coefficients[row].tolist() == [
                n * (1 << 10) // denominator for n in numerators
            ]
        assert r.coefficient_rows.tolist() == [True] * 4


def test_unity_gain_puts_the_rounding_residual_on_the_largest_weight():
    r = FixedPointResizer("bicubic", 2, coeff_fmt="ap_fixed<6,2,RND,SAT>", phase_bits=3)
    assert np.all(r.coefficients.sum(axis=1) == 16)
    raw = FixedPointResizer(
        "bicubic", 2, coeff_fmt="ap_fixed<6,2,RND,SAT>", phase_bits=3, unity_gain=False
    )
    assert np.any(raw.coefficients.sum(axis=1) != 16)
    changed = r.coefficients != raw.coefficients
    assert np.all(changed.sum(axis=1) <= 1)
    assert np.all(~changed[:, [0, 3]])  # the outer taps of a cubic are never the largest


def _random_design(rng: np.random.Generator) -> FixedPointResizer:
    kernel = str(rng.choice(["bicubic", "lanczos3", "bilinear", "pwl6"]))
    scale = float(rng.choice([2, 1.5, 3, 0.6, 2.5]))
    coeff_frac, mid_frac, acc_frac = (
        int(rng.integers(3, 13)),
        int(rng.integers(0, 6)),
        int(rng.integers(4, 20)),
    )
    mid_int, acc_int = int(rng.integers(8, 12)), int(rng.integers(9, 14))

    def pick(options):
        return str(rng.choice(options))

    return FixedPointResizer(
        kernel,
        scale,
        coeff_fmt=f"ap_fixed<{coeff_frac + 2},2,{pick(ROUNDINGS)},SAT>",
        acc_fmt=f"ap_fixed<{acc_int + acc_frac},{acc_int},{pick(ROUNDINGS)},{pick(OVERFLOWS)}>",
        mid_fmt=f"ap_fixed<{mid_int + mid_frac},{mid_int},{pick(ROUNDINGS)},{pick(OVERFLOWS)}>",
        out_fmt=f"ap_ufixed<8,8,{pick(ROUNDINGS)},{pick(OVERFLOWS)}>",
        phase_bits=int(rng.integers(2, 7)),
        phase_rounding=pick(["nearest", "truncate"]),
    )


def test_exact_blas_path_equals_the_tap_by_tap_path():
    rng = np.random.default_rng(2024)
    fast_passes = 0
    for trial in range(50):
        r = _random_design(rng)
        shape = (int(rng.integers(6, 20)), int(rng.integers(6, 20)), int(rng.choice([1, 3])))
        image = _image(rng, shape)
        if trial % 3 == 0:
            image = np.where(image > 128, 255, 0).astype(
                np.uint8
            )  # hard edges: overshoot, overflow
        a, b = r.trace(image), r.trace(image, path="taps")
        assert np.array_equal(a.output, b.output), r
        assert a.mid == b.mid and a.pixels == b.pixels
        fast_passes += (pass_spec(r, r.pixel_fmt, r.mid_fmt, "x", shape[1]).dtype is not None) + (
            pass_spec(r, r.mid_fmt, r.out_fmt, "y", shape[0]).dtype is not None
        )
    assert fast_passes >= 40  # the comparison really exercised the fast path


def test_a_wrapping_accumulator_takes_the_fast_path_and_wraps():
    # 9 integer bits hold [-256, 256): bicubic overshoot on a hard edge exceeds it.
    r = FixedPointResizer("bicubic", 2, acc_fmt="ap_fixed<21,9>", mid_fmt="ap_fixed<14,12,RND,SAT>")
    spec = pass_spec(r, r.pixel_fmt, r.mid_fmt, "x", 12)
    assert spec.dtype is not None and spec.through_acc
    image = np.zeros((8, 12), np.uint8)
    image[:, 6:] = 255
    fast, taps = r.trace(image), r.trace(image, path="taps")
    assert fast.mid == taps.mid and np.array_equal(fast.output, taps.output)
    assert fast.mid.codes.min() < -200  # wrapped, not clipped


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("overflow", OVERFLOWS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_casts_match_srlab_fixed(rounding, overflow, dtype):
    rng = np.random.default_rng(3)
    bound = (1 << 21) - 1
    codes = np.concatenate(
        [rng.integers(-bound, bound + 1, 4000), np.arange(-70, 70) * 64 + 32, [bound, -bound]]
    )
    source = QFormat(23, 11)  # 12 fraction bits
    for target in (
        QFormat(8, 8, False, rounding, overflow),
        QFormat(12, 9, True, rounding, overflow),
        QFormat(20, 6, True, rounding, overflow),
    ):
        expected = cast(FixedArray(codes, source), target).codes
        got = cast_float_codes(codes.astype(dtype), source.frac_bits, bound, target)
        assert np.array_equal(got.astype(np.int64), expected), (target, rounding, overflow)


def test_saturating_and_wrapping_outputs_on_a_bright_edge():
    image = np.zeros((8, 12), np.uint8)
    image[:, 6:] = 255
    sat = FixedPointResizer("bicubic", 2).run(image)
    wrap = FixedPointResizer("bicubic", 2, out_fmt="ap_ufixed<8,8,RND,WRAP>").run(image)
    wide = (
        FixedPointResizer("bicubic", 2, out_fmt="ap_ufixed<8,8,RND,SAT>")
        .trace(image)
        .mid.to_float()
    )
    assert sat.max() == 255 and wide.max() > 255.5  # the cubic overshoots past 255
    over, under = (wrap != sat) & (sat == 255), (wrap != sat) & (sat == 0)
    assert over.any() and under.any()
    assert np.all(wrap[over] < 40) and np.all(
        wrap[under] > 215
    )  # overshoot wraps to dark, undershoot to bright
    assert np.all(wrap[~(over | under)] == sat[~(over | under)])


def test_all_white_image_with_negative_lobes_stays_white():
    image = np.full((6, 6, 3), 255, np.uint8)
    assert np.all(FixedPointResizer("lanczos3", 1.5).run(image) == 255)


# --------------------------------------------------------------------------- DDA


def test_dda_constants():
    dda = PhaseDDA(1 / 3, frac_bits=10, phase_bits=4, phase_rounding="truncate")
    assert dda.step == 341 and dda.start == (341 - 1024) >> 1
    nearest = PhaseDDA(1 / 3, frac_bits=10, phase_bits=4)
    assert nearest.start == dda.start + 32  # half of a 2**-4 phase step in 2**-10 units


@pytest.mark.parametrize("scale", [2, 4, 0.5, 8])
def test_dda_indices_and_phases_equal_the_float_geometry_for_binary_scales(scale):
    n_out = round(37 * scale)
    dda = PhaseDDA(1 / scale, frac_bits=24, phase_bits=8, phase_rounding="truncate")
    i0, phase = dda.positions(n_out)
    u = (np.arange(n_out) + 0.5) / scale - 0.5
    assert np.array_equal(i0, np.floor(u).astype(np.int64))
    assert np.array_equal(phase, np.floor((u - np.floor(u)) * 256).astype(np.int64))


@pytest.mark.parametrize("scale", [1.5, 3, 1.7, 0.7])
@pytest.mark.parametrize("rounding", ["nearest", "truncate"])
def test_dda_indices_equal_the_float_ones_away_from_integers(scale, rounding):
    n_out = 500
    dda = PhaseDDA(1 / scale, frac_bits=36, phase_bits=12, phase_rounding=rounding)
    i0, phase = dda.positions(n_out)
    u = (np.arange(n_out) + 0.5) * (1 / scale) - 0.5
    position = i0 + phase / 4096
    far = np.abs(u - np.round(u)) > 2**-11  # further than a phase step from an integer
    assert far.mean() > 0.5
    assert np.array_equal(i0[far], np.floor(u[far]).astype(np.int64))
    assert np.abs(position - u).max() <= 2**-12 + 1e-9  # quantized to the phase step, either way


def test_tap_table_clips_into_the_image():
    idx, phase, coef = FixedPointResizer("bicubic", 2).tap_table("x", 5)
    assert idx.min() == 0 and idx.max() == 4 and idx.shape == (10, 4)
    assert phase.tolist() == [48, 16] * 5 and coef.shape == (10, 4)
    assert idx[0].tolist() == [0, 0, 0, 1] and idx[-1].tolist() == [3, 4, 4, 4]


def test_from_fraction_bits_gives_minimal_formats():
    r = FixedPointResizer.from_fraction_bits("bicubic", 2, coeff_frac_bits=8, acc_frac_bits=4)
    assert str(r.coeff_fmt) == "ap_fixed<10,2,RND,SAT>"
    assert r.mid_fmt.frac_bits == 4 and r.acc_fmt.frac_bits == 4
    assert (
        str(FixedPointResizer.from_fraction_bits("bilinear", 2, 6, 2).coeff_fmt)
        == "ap_ufixed<7,1,RND,SAT>"
    )


def test_minimum_int_bits():
    assert minimum_int_bits(-72, 1024, 10, True) == 2
    assert minimum_int_bits(0, 1023, 10, True) == 1
    assert minimum_int_bits(0, 255, 0, False) == 8
    assert minimum_int_bits(-129, 0, 0, True) == 9


def test_hls_strings_and_formats_are_equivalent():
    a = FixedPointResizer("bicubic", 2, coeff_fmt=QFormat(12, 2, rounding="rnd", overflow="sat"))
    b = FixedPointResizer("bicubic", 2, coeff_fmt="ap_fixed<12,2,RND,SAT>")
    assert a == b and hash(a) == hash(b)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pixel_fmt": QFormat(6, 8, signed=False)}, "word_bits=6 < int_bits=8"),
        ({"acc_fmt": "ap_fixed<10,12>"}, "word_bits=10 < int_bits=12"),
        ({"acc_fmt": "ap_fixed<63,12>"}, "word_bits=63 is outside 1..62"),
        ({"mid_fmt": "ap_fixed<12,10,RND,CLAMP>"}, "unknown overflow mode 'CLAMP'"),
        ({"coeff_fmt": "ap_fixed<12,2,ROUND,SAT>"}, "unknown rounding mode 'ROUND'"),
        ({"phase_rounding": "floor"}, "unknown phase_rounding 'floor'; known: nearest, truncate"),
        ({"out_fmt": "ap_fixed<9,9,RND,SAT>"}, "8-bit unsigned integer format"),
        ({"coeff_fmt": "ap_ufixed<12,2,RND,SAT>"}, "negative weights"),
        (
            {"phase_bits": 17, "dda_frac_bits": 16},
            "phase_bits=17 exceeds the DDA's 16 fraction bits",
        ),
        ({"coeff_fmt": "ap_fixed<40,2>", "mid_fmt": "ap_fixed<30,12>"}, "needs 70 bits"),
    ],
)
def test_bad_formats_and_modes(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FixedPointResizer("bicubic", 2, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"coeff_fmt": 12}, "coeff_fmt must be a QFormat or a string such as 'ap_fixed<16,4>'"),
        ({"kernel": 3}, "kernel must be a name such as 'bicubic' or a Kernel, got int"),
        ({"scale": None}, r"scale must be a number or a \(sy, sx\) pair of numbers, got None"),
        ({"phase_bits": 6.0}, r"phase_bits must be an integer in 0\.\.20, got 6\.0"),
        ({"phase_rounding": 1}, r"phase_rounding must be a name \(str\), got 1"),
        ({"unity_gain": "yes"}, "unity_gain must be True or False, got 'yes'"),
    ],
)
def test_bad_types(kwargs, message):
    with pytest.raises(TypeError, match=message):
        FixedPointResizer(**{"kernel": "bicubic", "scale": 2, **kwargs})


def test_coefficient_format_too_small_names_the_minimum_integer_bits():
    with pytest.raises(ValueError) as info:
        FixedPointResizer("bicubic", 2, coeff_fmt="ap_fixed<10,1,RND,SAT>")
    text = str(info.value)
    assert "cannot hold the weight 1 of kernel 'bicubic'" in text
    assert "at least 2 integer bits" in text and "ap_fixed<11,2,RND,SAT>" in text


def test_unsigned_coefficient_format_without_an_integer_bit():
    # bilinear's largest weight is exactly one: ap_ufixed<8,0> stops just below it.
    with pytest.raises(ValueError, match="at least 1 integer bits"):
        FixedPointResizer("bilinear", 2, coeff_fmt="ap_ufixed<8,0,RND,SAT>")


def test_fixed_phase_kernel_needs_scale_two():
    with pytest.raises(ValueError, match=r"only works at scale 2; got scale \(1.5, 1.5\)"):
        FixedPointResizer("shift_add_2x", 1.5)
    with pytest.raises(ValueError, match="use phase_bits >= 2"):
        FixedPointResizer("shift_add_2x", 2, phase_bits=1)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (
            np.zeros((3, 10), np.uint8),
            "image of 3x10 pixels is smaller than the 4-tap kernel 'bicubic' needs: at least 4x4",
        ),
        (np.zeros((10, 2, 3), np.uint8), "image of 10x2 pixels is smaller than the 4-tap kernel"),
        (np.zeros((8, 8), np.float32), "image dtype float32 is not supported"),
        (np.zeros((8, 8), np.uint16), "image dtype uint16 is not supported"),
        (np.zeros(8, np.uint8), r"must be 2-D \(H, W\) or 3-D \(H, W, C\) with C channels"),
        (np.zeros((8, 0), np.uint8), r"image is empty \(shape \(8, 0\)\)"),
    ],
)
def test_bad_images(image, message):
    with pytest.raises(ValueError, match=message):
        FixedPointResizer("bicubic", 2).run(image)


def test_bad_path_and_bits():
    r = FixedPointResizer("bilinear", 2)
    with pytest.raises(ValueError, match="unknown path 'fast'; known: auto, taps"):
        r.run(np.zeros((4, 4), np.uint8), path="fast")
    with pytest.raises(TypeError, match=r"path must be a name \(str\), got None; known: auto"):
        r.run(np.zeros((4, 4), np.uint8), path=None)
    with pytest.raises(ValueError, match="dda_frac_bits must be an integer in 1..40"):
        FixedPointResizer("bilinear", 2, dda_frac_bits=41)
    with pytest.raises(ValueError, match="scale must be > 0"):
        FixedPointResizer("bilinear", -1)
    with pytest.raises(ValueError, match="coeff_frac_bits must be an integer in 1..40"):
        FixedPointResizer.from_fraction_bits("bilinear", 2, coeff_frac_bits=0)
    with pytest.raises(TypeError, match="acc_frac_bits must be an integer in 0..40, got '4'"):
        FixedPointResizer.from_fraction_bits("bilinear", 2, acc_frac_bits="4")


def test_gray_and_rgb_channels_are_independent():
    rng = np.random.default_rng(5)
    image = _image(rng, (11, 13, 3))
    r = FixedPointResizer("lanczos3", 1.7)
    rgb = r.run(image)
    for c in range(3):
        assert np.array_equal(rgb[..., c], r.run(np.ascontiguousarray(image[..., c])))


def test_coefficient_table():
    r = FixedPointResizer("bicubic", 2, coeff_fmt="ap_fixed<8,2,RND,SAT>", phase_bits=3)
    table = r.coefficient_table()
    assert len(table) == 8 * 4 and table["rom_row"].nunique() == 8
    assert np.allclose(table["quantized"], table["code"] / 64)
    assert table["error"].abs().max() <= 1.5 / 64  # half an LSB, plus the unity-gain residual
    assert table.groupby("rom_row")["code"].sum().eq(64).all()
    assert len(FixedPointResizer("shift_add_2x", 2).coefficient_table()) == 4 * 4
    with pytest.raises(ValueError, match="rows must be ROM rows 0..7"):
        r.coefficient_table([8])


def test_area_kernel_is_refused_with_what_to_use_instead():
    with pytest.raises(ValueError, match="kernel 'area' averages .* use 'bilinear' or 'bicubic'"):
        FixedPointResizer("area", 0.5)
