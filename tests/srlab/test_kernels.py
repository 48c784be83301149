"""Kernels: registry, the laws every kernel obeys, exact shift-add constants, CSD costs."""

from __future__ import annotations

import dataclasses
import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srlab.kernels import (
    PWL_KNOTS,
    SHIFT_ADD_CONSTANTS,
    HardwareCost,
    Kernel,
    available_kernels,
    csd_adders,
    csd_digits,
    exact_keys_weights,
    get_kernel,
    keys_cubic,
    register_kernel,
)

ALL = available_kernels()
CONTINUOUS = [name for name in ALL if get_kernel(name).phases is None]
FIXED = [name for name in ALL if get_kernel(name).phases is not None]
DENSE = np.linspace(0.0, 1.0, 1024, endpoint=False)


def _keys_fraction(d: Fraction, a: Fraction) -> Fraction:
    """Keys (1981) cubic in exact arithmetic, written out here independently of srlab."""
    d = abs(d)
    if d <= 1:
        return (a + 2) * d**3 - (a + 3) * d**2 + 1
    if d < 2:
        return a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
    return Fraction(0)


def _phases(name: str) -> np.ndarray:
    kernel = get_kernel(name)
    return np.asarray(kernel.phases) if kernel.phases is not None else DENSE


# --------------------------------------------------------------------------- registry


def test_registry_lists_the_required_kernels() -> None:
    required = {
        "nearest",
        "bilinear",
        "bicubic",
        "lanczos2",
        "lanczos3",
        "pwl2",
        "pwl4",
        "pwl6",
        "shift_add_2x",
        "shift_add_2x_opencv",
        "area",
    }
    assert required <= set(ALL)
    assert ALL == sorted(ALL)


def test_unknown_kernel_lists_known_ones() -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown kernel 'cubic'; known kernels: area, bicubic, bilinear, .*nearest",
    ):
        get_kernel("cubic")


@pytest.mark.parametrize("name", [3, None, ("bicubic", {"a": -0.75})])
def test_get_kernel_refuses_a_name_of_another_type(name: object) -> None:
    with pytest.raises(
        TypeError,
        match=rf"kernel must be a name such as 'bicubic' or a Kernel, got {type(name).__name__}; "
        r"known kernels: area, bicubic",
    ):
        get_kernel(name)  # type: ignore[arg-type]


def test_unknown_parameter_lists_accepted_ones() -> None:
    with pytest.raises(
        ValueError, match=r"kernel 'bicubic' got unknown parameter\(s\) b; it accepts a"
    ):
        get_kernel("bicubic", b=1)
    with pytest.raises(
        ValueError, match=r"kernel 'nearest' got unknown parameter\(s\) a; it takes no parameters"
    ):
        get_kernel("nearest", a=-0.5)


@pytest.mark.parametrize("a", [float("nan"), 0.5, -1.5])
def test_invalid_cubic_parameter(a: float) -> None:
    with pytest.raises(ValueError, match=r"cubic parameter a must be finite and in \[-1, 0\]"):
        get_kernel("bicubic", a=a)


def test_register_rejects_duplicates_and_parameters_without_default() -> None:
    with pytest.raises(
        ValueError, match="kernel 'bicubic' is already registered; pass overwrite=True"
    ):
        register_kernel("bicubic", lambda: get_kernel("bilinear"))
    with pytest.raises(ValueError, match="parameter 'width' needs a default value"):
        register_kernel("needs_width", lambda width: get_kernel("bilinear"))
    assert "needs_width" not in available_kernels()


def test_get_kernel_passes_a_built_kernel_through() -> None:
    kernel = get_kernel("bicubic", a=-0.75)
    assert get_kernel(kernel) is kernel
    assert kernel == get_kernel("bicubic", a=-0.75) and hash(kernel) == hash(
        get_kernel("bicubic", a=-0.75)
    )
    assert kernel != get_kernel("bicubic")
    with pytest.raises(ValueError, match="cannot be applied to an already built Kernel 'bicubic'"):
        get_kernel(kernel, a=-0.5)


def test_kernel_and_cost_validation() -> None:
    cost = HardwareCost(taps=4, multipliers=4, adders=3)
    with pytest.raises(ValueError, match="Kernel.taps must be a positive even integer, got 3"):
        Kernel("odd", 3, True, cost, keys_cubic)
    with pytest.raises(ValueError, match="HardwareCost.adders must be an integer >= 0, got -1"):
        HardwareCost(taps=4, multipliers=4, adders=-1)
    with pytest.raises(
        ValueError, match="coefficient_bits_hint must be a positive integer or None, got 0"
    ):
        HardwareCost(taps=4, multipliers=4, adders=3, coefficient_bits_hint=0)
    with pytest.raises(ValueError, match=r"phase_table must have shape \(1, 4\)"):
        Kernel("bad", 4, True, cost, keys_cubic, phases=(0.5,), phase_table=np.zeros((1, 2)))
    with pytest.raises(
        ValueError, match=r"Kernel.rule must be one of \(None, 'nearest', 'area'\), got 'box'"
    ):
        Kernel("bad", 4, True, cost, keys_cubic, rule="box")
    with pytest.raises(TypeError, match="Kernel.taps must be a positive even integer, got 4.0"):
        Kernel("float", 4.0, True, cost, keys_cubic)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="HardwareCost.taps must be an integer >= 0, got '4'"):
        HardwareCost(taps="4", multipliers=4, adders=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="coefficient_bits_hint must be a positive integer or None"):
        HardwareCost(taps=4, multipliers=4, adders=3, coefficient_bits_hint=8.0)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- laws, every kernel


@pytest.mark.parametrize("name", ALL)
def test_weights_shape_and_attributes(name: str) -> None:
    kernel = get_kernel(name)
    phases = _phases(name)
    w = kernel.weights(phases)
    assert w.shape == (len(phases), kernel.taps)
    assert kernel.weights(float(phases[0])).shape == (kernel.taps,)
    assert kernel.support == kernel.taps / 2
    assert kernel.offsets.tolist() == list(range(-(kernel.taps // 2 - 1), kernel.taps // 2 + 1))
    assert kernel.hardware.taps <= kernel.taps


@pytest.mark.parametrize("name", ALL)
def test_weights_sum_to_one_on_a_dense_grid(name: str) -> None:
    np.testing.assert_allclose(
        get_kernel(name).weights(_phases(name)).sum(axis=1), 1.0, rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("name", CONTINUOUS)
@settings(max_examples=100, deadline=None)
@given(phase=st.floats(min_value=0.0, max_value=1.0, exclude_max=True, allow_subnormal=True))
def test_weights_sum_to_one_at_any_phase(name: str, phase: float) -> None:
    assert abs(get_kernel(name).weights([phase]).sum() - 1.0) <= 1e-12


@pytest.mark.parametrize("name", ALL)
def test_weights_are_symmetric(name: str) -> None:
    kernel = get_kernel(name)
    phases = _phases(name)
    t = phases[phases > 0]
    if name == "nearest":
        t = t[t != 0.5]  # the tie goes to the right neighbour, by design
    np.testing.assert_allclose(
        kernel.weights(1.0 - t), kernel.weights(t)[:, ::-1], rtol=0, atol=1e-12
    )


INTERPOLATING = [name for name in ALL if get_kernel(name).interpolating]


def test_the_built_in_kernels_are_interpolating() -> None:
    assert set(INTERPOLATING) >= {
        "nearest",
        "bilinear",
        "bicubic",
        "lanczos3",
        "pwl6",
        "shift_add_2x",
    }


@pytest.mark.parametrize("name", INTERPOLATING)
def test_interpolating_kernels_are_one_hot_at_phase_zero(name: str) -> None:
    kernel = get_kernel(name)
    one_hot = np.zeros(kernel.taps)
    one_hot[kernel.taps // 2 - 1] = 1.0
    np.testing.assert_allclose(kernel.weights(0.0), one_hot, rtol=0, atol=1e-15)
    # The continuous profile agrees: 1 at 0, 0 at the other integers.
    np.testing.assert_allclose(
        kernel.profile(np.arange(-4, 5)), (np.arange(-4, 5) == 0).astype(float), atol=1e-15
    )


@pytest.mark.parametrize("name", [n for n in CONTINUOUS if n != "nearest"])
def test_weights_sample_the_profile(name: str) -> None:
    kernel = get_kernel(name)
    raw = kernel.profile(DENSE[:, None] - kernel.offsets[None, :])
    np.testing.assert_allclose(
        kernel.weights(DENSE), raw / raw.sum(axis=1, keepdims=True), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("phase", [-0.1, 1.0, float("nan")])
def test_phase_outside_unit_interval(phase: float) -> None:
    with pytest.raises(ValueError, match=r"phase values must be finite and lie in \[0, 1\)"):
        get_kernel("bicubic").weights([phase])


# --------------------------------------------------------------------------- individual kernels


def test_bicubic_matches_keys_formula() -> None:
    for a in (-0.5, -0.75, -1.0):
        w = get_kernel("bicubic", a=a).weights(DENSE)
        expected = np.array(
            [
                [float(_keys_fraction(Fraction(t) - k, Fraction(a))) for k in (-1, 0, 1, 2)]
                for t in DENSE[::37]
            ]
        )
        np.testing.assert_allclose(w[::37], expected, rtol=0, atol=1e-13)
    np.testing.assert_allclose(
        get_kernel("bicubic", a=-0.75).weights(0.5), np.array([-3, 19, 19, -3]) / 32, atol=1e-15
    )


def test_nearest_and_bilinear() -> None:
    nearest = get_kernel("nearest").weights([0.0, 0.49, 0.5, 0.99])
    np.testing.assert_array_equal(nearest, [[1, 0], [1, 0], [0, 1], [0, 1]])
    np.testing.assert_allclose(get_kernel("bilinear").weights([0.25]), [[0.75, 0.25]])
    assert (
        get_kernel("nearest").hardware.multipliers == 0
        and get_kernel("nearest").hardware.adders == 0
    )


def test_rules_of_nearest_and_area() -> None:
    # resize builds these two kernels' tables by the peers' own rules (see srlab.resize).
    assert get_kernel("nearest").rule == "nearest" and get_kernel("area").rule == "area"
    assert all(get_kernel(name).rule is None for name in ALL if name not in ("nearest", "area"))
    # The rule is part of what a kernel is: equality and hash (resize's cache key) see it.
    plain = dataclasses.replace(get_kernel("nearest"), rule=None)
    assert plain != get_kernel("nearest") and plain.fingerprint == get_kernel("nearest").fingerprint
    assert hash(plain) != hash(get_kernel("nearest"))


def test_area_as_a_phase_kernel_is_the_triangle() -> None:
    # A footprint one pixel wide covers two pixels by 1 - phase and phase.
    area = get_kernel("area")
    np.testing.assert_allclose(
        area.weights(DENSE), get_kernel("bilinear").weights(DENSE), rtol=0, atol=1e-15
    )
    np.testing.assert_allclose(area.profile([0.0, 0.25, 1.0, 1.5]), [1.0, 0.75, 0.0, 0.0])
    assert not area.interpolating and area != get_kernel("bilinear")  # it averages when downscaling
    assert area.hardware.taps == 2


def test_lanczos_is_a_normalised_windowed_sinc() -> None:
    for lobes in (2, 3, 4):
        kernel = get_kernel(f"lanczos{lobes}")
        x = np.linspace(-lobes - 1, lobes + 1, 101)
        np.testing.assert_allclose(
            kernel.profile(x), np.where(np.abs(x) < lobes, np.sinc(x) * np.sinc(x / lobes), 0)
        )
        raw = kernel.profile(0.3 - kernel.offsets)
        assert abs(raw.sum() - 1) > 1e-4  # the raw window does not add up to one ...
        np.testing.assert_allclose(kernel.weights(0.3), raw / raw.sum())  # ... so it is normalised


@pytest.mark.parametrize("name", list(PWL_KNOTS))
def test_pwl_kernels_are_linear_between_cubic_knots(name: str) -> None:
    kernel = get_kernel(name)
    knots = np.asarray(PWL_KNOTS[name])
    assert {0.0, 1.0, 2.0} <= set(knots) and len(knots) - 1 == int(name[3:])
    np.testing.assert_allclose(kernel.profile(knots), keys_cubic(knots, -0.5), atol=1e-15)
    mid = (knots[:-1] + knots[1:]) / 2
    np.testing.assert_allclose(
        kernel.profile(mid), (keys_cubic(knots[:-1]) + keys_cubic(knots[1:])) / 2, atol=1e-15
    )
    assert kernel.hardware.multipliers == 4 and kernel.hardware.coefficient_bits_hint == 9


def test_pwl2_is_the_tent() -> None:
    np.testing.assert_allclose(
        get_kernel("pwl2").weights(DENSE)[:, 1:3], get_kernel("bilinear").weights(DENSE), atol=1e-15
    )


def test_pwl_knots_are_the_best_quarter_knots() -> None:
    x = np.linspace(0, 2, 4001)
    cubic = keys_cubic(x)

    def l2(knots: tuple[float, ...]) -> float:
        k = np.asarray(sorted(knots))
        return float(np.mean((np.interp(x, k, keys_cubic(k)) - cubic) ** 2))

    for name, per_unit in (("pwl4", 1), ("pwl6", 2)):
        candidates = [
            (0.0, 1.0, 2.0) + a + b
            for a in itertools.combinations((0.25, 0.5, 0.75), per_unit)
            for b in itertools.combinations((1.25, 1.5, 1.75), per_unit)
        ]
        best = min(candidates, key=l2)
        assert tuple(sorted(best)) == PWL_KNOTS[name]
    # More pieces approximate the cubic better.
    assert l2(PWL_KNOTS["pwl2"]) > l2(PWL_KNOTS["pwl4"]) > l2(PWL_KNOTS["pwl6"])


# --------------------------------------------------------------------------- shift-add 2x


@pytest.mark.parametrize("name", FIXED)
def test_shift_add_constants_are_exact_keys_weights(name: str) -> None:
    a, table = SHIFT_ADD_CONSTANTS[name]
    for phase, (numerators, denominator) in table.items():
        assert denominator & (denominator - 1) == 0  # a power of two: the division is a shift
        exact = tuple(_keys_fraction(Fraction(phase) - k, Fraction(a)) for k in (-1, 0, 1, 2))
        assert exact == tuple(Fraction(n, denominator) for n in numerators)
        assert exact_keys_weights(Fraction(phase), Fraction(a)) == exact
        assert sum(numerators) == denominator
    kernel = get_kernel(name)
    np.testing.assert_array_equal(
        kernel.weights(kernel.phases), get_kernel("bicubic", a=a).weights(kernel.phases)
    )


@pytest.mark.parametrize("name", FIXED)
def test_shift_add_rejects_other_phases(name: str) -> None:
    expected = r"only has weights at phases \(0.0, 0.25, 0.5, 0.75\), so it only works at scale 2; got phase 0.3"
    with pytest.raises(ValueError, match=rf"kernel '{name}' {expected}"):
        get_kernel(name).weights([0.25, 0.3])


def test_csd_digits_reconstruct_and_are_non_adjacent() -> None:
    for n in range(-1024, 1025):
        digits = csd_digits(n)
        assert sum(d * 2**i for i, d in enumerate(digits)) == n
        assert all(not (digits[i] and digits[i + 1]) for i in range(len(digits) - 1))
        assert sum(d != 0 for d in digits) <= bin(abs(n)).count("1")  # never worse than binary
    assert csd_digits(111) == (-1, 0, 0, 0, -1, 0, 0, 1)  # 128 - 16 - 1
    assert [csd_adders(n) for n in (0, 1, 3, 9, 19, 27, 29, 67, 111, 225)] == [
        0,
        0,
        1,
        1,
        2,
        2,
        2,
        2,
        2,
        2,
    ]


def test_shift_add_hardware_cost() -> None:
    # Worst phase 0.25. a=-0.5: 9, 111, 29, 3 cost 1+2+2+1 adders, plus 3 to sum four taps.
    # a=-0.75: 27, 225, 67, 9 cost 2+2+2+1, plus 3.
    plain, opencv = get_kernel("shift_add_2x").hardware, get_kernel("shift_add_2x_opencv").hardware
    assert (plain.multipliers, plain.adders) == (0, 9)
    assert (opencv.multipliers, opencv.adders) == (0, 10)
    assert (
        get_kernel("bicubic").hardware.multipliers == 4
        and get_kernel("bicubic").hardware.adders == 3
    )
