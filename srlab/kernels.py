"""Interpolation kernels: weights per phase, continuous profile and hardware cost.

A :class:`Kernel` answers two questions. ``weights(phase)`` gives the ``taps`` weights
that one output sample applies to its neighbours, for a sample that lies the fraction
``phase`` past an input pixel; ``profile(x)`` gives the continuous kernel value at a
distance ``x``, for plots and frequency responses. Its :class:`HardwareCost` says what one
output sample of a 1-D pass costs in a datapath.

This module holds the registry (:func:`register_kernel`, :func:`get_kernel`) and the
built-in kernels; the :class:`Kernel` and :class:`HardwareCost` types live in the private
``srlab._kernel`` and are re-exported here.

Tap convention
--------------
For a sample at input coordinate ``u`` with ``i0 = floor(u)`` and ``phase = u - i0``, the
taps sit at input indices ``i0 + k`` for ``k = -(taps/2 - 1), ..., taps/2``; so the sample
lies between tap ``taps/2 - 1`` (weight 1 at phase 0 for an interpolating kernel) and tap
``taps/2``. ``weights(phase)[:, j] = profile(phase - k_j)`` for continuous kernels.

Kernels
-------
============================  ====  =====================================================
name                          taps  what it is
============================  ====  =====================================================
``nearest``                    2    nearest neighbour; ties (phase 0.5) go to the right;
                                    :func:`srlab.resize` picks pixels by the peers' rule
``bilinear``                   2    triangle (linear interpolation)
``area``                       2    pixel-area averaging (OpenCV's INTER_AREA); as a phase
                                    kernel the triangle, see :func:`srlab.resize`
``bicubic``                    4    Keys cubic convolution, ``a`` (default -0.5, Pillow;
                                    -0.75 is OpenCV's INTER_CUBIC)
``lanczos2|3|4``               4|6|8  windowed sinc, weights normalised per phase
``pwl2|4|6``                   4    the cubic replaced by 2, 4 or 6 linear segments
``shift_add_2x``               4    fixed-phase 2x Keys a=-0.5, dyadic constants
``shift_add_2x_opencv``        4    fixed-phase 2x Keys a=-0.75, dyadic constants
============================  ====  =====================================================

Examples
--------
>>> k = get_kernel("bicubic", a=-0.75)
>>> k.taps, k.support, k.params
(4, 2.0, {'a': -0.75})
>>> k.weights([0.5]).round(5).tolist()
[[-0.09375, 0.59375, 0.59375, -0.09375]]
>>> get_kernel("shift_add_2x").hardware.multipliers
0
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

import numpy as np

from labcore.registry import Registry
from srlab._kernel import KERNEL_RULES, HardwareCost, Kernel, csd_adders, csd_digits

__all__ = [
    "HardwareCost",
    "KERNEL_RULES",
    "Kernel",
    "available_kernels",
    "csd_adders",
    "csd_digits",
    "exact_keys_weights",
    "get_kernel",
    "keys_cubic",
    "register_kernel",
]

# --------------------------------------------------------------------------- registry

KernelFactory = Callable[..., Kernel]
_KERNELS: Registry[KernelFactory] = Registry("kernel", plural="kernels")


def register_kernel(
    name: str, factory: KernelFactory | None = None, *, overwrite: bool = False
) -> KernelFactory | Callable[[KernelFactory], KernelFactory]:
    """Register a kernel factory under ``name``; usable as a decorator.

    The factory's keyword arguments (with defaults) are the kernel's parameters; calling
    :func:`get_kernel` with any other keyword raises ``ValueError``.

    Parameters
    ----------
    name : str
        Registry name.
    factory : callable, optional
        ``factory(**params) -> Kernel``. Omit it to use ``register_kernel(name)`` as a
        decorator.
    overwrite : bool, default False
        Allow replacing an existing entry.

    Returns
    -------
    callable
        The factory (or, without ``factory``, a decorator that registers and returns it).

    Raises
    ------
    ValueError
        If ``name`` is already registered and ``overwrite`` is False, or a factory
        parameter has no default.

    Examples
    --------
    >>> @register_kernel("box2", overwrite=True)
    ... def _box2() -> Kernel:
    ...     return Kernel("box2", 2, False, HardwareCost(2, 0, 1),
    ...                   profile_fn=lambda x: (np.abs(x) <= 1).astype(float))
    >>> get_kernel("box2").weights(0.5).tolist()
    [0.5, 0.5]
    """

    def decorate(fn: KernelFactory) -> KernelFactory:
        for p in inspect.signature(fn).parameters.values():
            if p.default is inspect.Parameter.empty:
                raise ValueError(
                    f"kernel factory {name!r}: parameter {p.name!r} needs a default value"
                )
        return _KERNELS.add(name, fn, overwrite=overwrite)

    return decorate if factory is None else decorate(factory)


def available_kernels() -> list[str]:
    """Names of the registered kernels, sorted.

    Returns
    -------
    list of str

    Examples
    --------
    >>> {"bicubic", "nearest", "shift_add_2x"} <= set(available_kernels())
    True
    """
    return list(_KERNELS.names())


def get_kernel(name: str | Kernel, **params: Any) -> Kernel:
    """Build the kernel registered under ``name`` with the given parameters.

    Parameters
    ----------
    name : str or Kernel
        Registry name (see :func:`available_kernels`); a :class:`Kernel` is returned as is.
    **params
        Kernel parameters, e.g. ``a=-0.75`` for ``bicubic``.

    Returns
    -------
    Kernel

    Raises
    ------
    TypeError
        If ``name`` is neither a string nor a Kernel.
    ValueError
        If the name is unknown (the message lists the known ones), a parameter is unknown
        (the message lists the accepted ones) or has an invalid value.

    Examples
    --------
    >>> get_kernel("lanczos3").taps
    6
    """
    if isinstance(name, Kernel):
        if params:
            raise ValueError(
                f"parameters {sorted(params)} cannot be applied to an already built Kernel {name.name!r}"
            )
        return name
    if not isinstance(name, str):
        raise TypeError(
            f"kernel must be a name such as 'bicubic' or a Kernel, got {type(name).__name__}; "
            f"known kernels: {', '.join(available_kernels())}"
        )
    factory = _KERNELS.get(name)
    accepted = list(inspect.signature(factory).parameters)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        hint = f"it accepts {', '.join(accepted)}" if accepted else "it takes no parameters"
        raise ValueError(f"kernel {name!r} got unknown parameter(s) {', '.join(unknown)}; {hint}")
    return factory(**params)


# --------------------------------------------------------------------------- profiles


def keys_cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys cubic convolution kernel (support 2).

    ``(a+2)|x|^3 - (a+3)|x|^2 + 1`` for ``|x| <= 1``, ``a|x|^3 - 5a|x|^2 + 8a|x| - 4a`` for
    ``1 < |x| < 2``, 0 beyond (R. Keys, IEEE TASSP 1981).

    Parameters
    ----------
    x : array_like
        Distances.
    a : float, default -0.5
        Slope at ``|x| = 1``; -0.5 is third-order accurate (Pillow), -0.75 is OpenCV's.

    Returns
    -------
    ndarray of float64

    Examples
    --------
    >>> keys_cubic(np.array([0.5]), a=-0.75).tolist()
    [0.59375]
    """
    d = np.abs(np.asarray(x, dtype=np.float64))
    inner = ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0
    outer = ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a
    return np.where(d <= 1.0, inner, np.where(d < 2.0, outer, 0.0))


def _check_a(a: float) -> float:
    a = float(a)
    if not math.isfinite(a) or not -1.0 <= a <= 0.0:
        raise ValueError(
            f"cubic parameter a must be finite and in [-1, 0] (-0.5 Keys/Pillow, -0.75 OpenCV), got {a}"
        )
    return a


def _lanczos_profile(lobes: int) -> Callable[[np.ndarray], np.ndarray]:
    def profile(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return np.where(np.abs(x) < lobes, np.sinc(x) * np.sinc(x / lobes), 0.0)

    return profile


def _nearest_profile(x: np.ndarray) -> np.ndarray:
    # Pillow's BOX: 1 on (-0.5, 0.5], so a widened (antialiased) box matches Pillow's.
    x = np.asarray(x, dtype=np.float64)
    return ((x > -0.5) & (x <= 0.5)).astype(np.float64)


def _nearest_weights(t: np.ndarray) -> np.ndarray:
    # Round half up, u -> floor(u + 0.5), in exact arithmetic the rule of Pillow's NEAREST and
    # OpenCV's INTER_NEAREST_EXACT. With half-pixel centres resize does not sample these
    # weights: it picks pixels exactly as the two peers compute them (rule="nearest").
    right = (t >= 0.5).astype(np.float64)
    return np.stack([1.0 - right, right], axis=1)


def _rom_cost(taps: int, notes: str) -> HardwareCost:
    # Weights read from a phase-indexed ROM: one multiplier per tap, an adder tree.
    # 11 fractional bits is what OpenCV uses for its fixed-point resize weights.
    return HardwareCost(
        taps=taps, multipliers=taps, adders=taps - 1, coefficient_bits_hint=11, notes=notes
    )


# --------------------------------------------------------------------------- continuous kernels


@register_kernel("nearest")
def _nearest() -> Kernel:
    cost = HardwareCost(
        taps=1,
        multipliers=0,
        adders=0,
        notes="a multiplexer picks one of two pixels",
        weights="mux",
    )
    return Kernel(
        "nearest", 2, True, cost, _nearest_profile, weights_fn=_nearest_weights, rule="nearest"
    )


@register_kernel("bilinear")
def _bilinear() -> Kernel:
    cost = _rom_cost(
        2, "weights (1 - t, t); the form p0 + t (p1 - p0) needs 1 multiplier and 2 adders"
    )
    return Kernel("bilinear", 2, True, cost, lambda x: np.clip(1.0 - np.abs(x), 0.0, None))


@register_kernel("bicubic")
def _bicubic(a: float = -0.5) -> Kernel:
    a = _check_a(a)
    cost = _rom_cost(4, "weights read from a ROM indexed by the quantised phase")
    return Kernel("bicubic", 4, True, cost, lambda x: keys_cubic(x, a), params={"a": a})


@register_kernel("area")
def _area() -> Kernel:
    # resize averages the input over each output pixel's footprint (rule="area"), so its
    # weights depend on the scale. At scale 1 a footprint one pixel wide, shifted by the
    # phase, covers two pixels by 1 - phase and phase: the triangle, box (*) box. That is
    # what weights(phase) and profile(x) give, for plots, frequency responses and tables.
    cost = HardwareCost(
        taps=2,
        multipliers=2,
        adders=1,
        coefficient_bits_hint=11,
        notes=(
            "per output at scale 1 (two pixels weighted by their coverage); downscaling by k "
            "accumulates about k + 1 pixels per output, then one multiplication by 1/k"
        ),
    )
    return Kernel(
        "area", 2, False, cost, lambda x: np.clip(1.0 - np.abs(x), 0.0, None), rule="area"
    )


def _lanczos_factory(lobes: int) -> KernelFactory:
    def factory() -> Kernel:
        taps = 2 * lobes
        cost = _rom_cost(taps, "weights read from a ROM indexed by the quantised phase")
        # Windowed-sinc weights do not add up to one; normalising them per phase (as
        # OpenCV and Pillow do) keeps flat areas flat.
        return Kernel(f"lanczos{lobes}", taps, True, cost, _lanczos_profile(lobes))

    return factory


for _lobes in (2, 3, 4):
    register_kernel(f"lanczos{_lobes}", _lanczos_factory(_lobes))


# --------------------------------------------------------------------------- piecewise-linear cubic

# Knots of the piecewise-linear approximations, in |x|. 0, 1 and 2 are always knots, so the
# kernel is 1 at 0 and 0 at every other integer: it stays interpolating. The interior knots
# sit on quarter positions (a 2-bit comparison of the phase selects the segment) and are the
# choice, among all quarter positions with the same number of segments per unit interval,
# with the smallest L2 distance to the a = -0.5 cubic over [0, 2] (tests repeat the search).
# With a = -0.5 every knot value is a multiple of 1/128, so all slopes are dyadic.
PWL_KNOTS: dict[str, tuple[float, ...]] = {
    "pwl2": (0.0, 1.0, 2.0),
    "pwl4": (0.0, 0.25, 1.0, 1.25, 2.0),
    "pwl6": (0.0, 0.25, 0.75, 1.0, 1.25, 1.5, 2.0),
}
_PWL_BITS = 9  # fractional bits of the position in the Boukhtache et al. datapath


def _pwl_cost(knots: np.ndarray, values: np.ndarray) -> HardwareCost:
    # Each weight is intercept + slope * distance on its segment; the slope is a constant
    # multiplication (shift-and-add, CSD adders at 9 fractional bits) plus one adder for the
    # intercept. Two taps fall in [0, 1], two in [1, 2]; each pays its costliest segment.
    slopes = np.diff(values) / np.diff(knots)
    intercepts = values[:-1] - slopes * knots[:-1]
    seg_adders, seg_shifts = [], []
    for slope, intercept in zip(slopes, intercepts):
        code = int(round(slope * 2**_PWL_BITS))
        digits = sum(d != 0 for d in csd_digits(code))
        seg_adders.append(csd_adders(code) + (1 if abs(intercept) > 1e-12 and code else 0))
        seg_shifts.append(digits)
    first = knots[1:] <= 1.0
    gen_adders = 2 * max(a for a, f in zip(seg_adders, first) if f) + 2 * max(
        a for a, f in zip(seg_adders, first) if not f
    )
    gen_shifts = 2 * max(s for s, f in zip(seg_shifts, first) if f) + 2 * max(
        s for s, f in zip(seg_shifts, first) if not f
    )
    return HardwareCost(
        taps=4,
        multipliers=4,
        adders=3 + gen_adders,
        shifts=gen_shifts,
        coefficient_bits_hint=_PWL_BITS,
        weights="segments",
        notes=(
            "weights computed from the phase by shift-add line segments (no ROM, no cubic "
            f"evaluation): {gen_adders} adders for the 4 weights, then 4 pixel x weight "
            "multipliers and 3 adders"
        ),
    )


def _pwl_factory(name: str) -> KernelFactory:
    def factory(a: float = -0.5) -> Kernel:
        a = _check_a(a)
        knots = np.asarray(PWL_KNOTS[name])
        values = keys_cubic(knots, a)

        def profile(x: np.ndarray) -> np.ndarray:
            return np.interp(np.abs(np.asarray(x, dtype=np.float64)), knots, values, right=0.0)

        # Segments that do not line up with the phase grid make the four weights of a phase
        # add up to slightly less or more than one; normalise per phase so flat areas stay flat.
        return Kernel(name, 4, True, _pwl_cost(knots, values), profile, params={"a": a})

    return factory


for _name in PWL_KNOTS:
    register_kernel(_name, _pwl_factory(_name))


# --------------------------------------------------------------------------- fixed-phase 2x shift-add

# Integer numerators and the power-of-two denominator of the 2x weights, per phase, taps at
# offsets -1, 0, 1, 2. They are the Keys cubic sampled at the phase (tests derive them again
# with exact fractions). A hardware 2x upscaler (half-pixel centres) only ever needs phases
# 0.25 and 0.75; 0 and 0.5 occur when output pixels fall on and halfway between input pixels.
SHIFT_ADD_CONSTANTS: dict[str, tuple[float, dict[float, tuple[tuple[int, ...], int]]]] = {
    "shift_add_2x": (
        -0.5,
        {
            0.0: ((0, 1, 0, 0), 1),
            0.25: ((-9, 111, 29, -3), 128),
            0.5: ((-1, 9, 9, -1), 16),
            0.75: ((-3, 29, 111, -9), 128),
        },
    ),
    "shift_add_2x_opencv": (
        -0.75,
        {
            0.0: ((0, 1, 0, 0), 1),
            0.25: ((-27, 225, 67, -9), 256),
            0.5: ((-3, 19, 19, -3), 32),
            0.75: ((-9, 67, 225, -27), 256),
        },
    ),
}


def _shift_add_cost(table: Mapping[float, tuple[tuple[int, ...], int]]) -> HardwareCost:
    # Direct form, no sharing between taps: each constant costs its CSD adders, the
    # non-zero taps are summed, the division by 2^k is a wired shift. The worst phase counts.
    adders, shifts = [], []
    for numerators, denominator in table.values():
        nonzero = [n for n in numerators if n]
        adders.append(sum(csd_adders(n) for n in nonzero) + len(nonzero) - 1)
        shifts.append(
            sum(sum(d != 0 for d in csd_digits(abs(n))[1:]) for n in nonzero) + (denominator > 1)
        )
    return HardwareCost(
        taps=4,
        multipliers=0,
        adders=max(adders),
        shifts=max(shifts),
        notes="dyadic constant weights as shift-and-add (CSD), direct form, worst phase",
    )


def _shift_add_factory(name: str) -> KernelFactory:
    a, table = SHIFT_ADD_CONSTANTS[name]

    def factory() -> Kernel:
        phases = tuple(sorted(table))
        weights = np.array(
            [np.asarray(table[p][0], dtype=np.float64) / table[p][1] for p in phases]
        )
        return Kernel(
            name,
            4,
            True,
            _shift_add_cost(table),
            lambda x: keys_cubic(x, a),
            params={"a": a},
            phases=phases,
            phase_table=weights,
            normalize=False,  # the constants add up to one exactly
        )

    return factory


for _name in SHIFT_ADD_CONSTANTS:
    register_kernel(_name, _shift_add_factory(_name))


def exact_keys_weights(phase: Fraction, a: Fraction) -> tuple[Fraction, ...]:
    """Keys cubic weights at a rational phase, in exact arithmetic (taps -1, 0, 1, 2).

    Parameters
    ----------
    phase : Fraction
        Phase in [0, 1).
    a : Fraction
        Cubic parameter.

    Returns
    -------
    tuple of Fraction
        The four weights; they add up to one.

    Examples
    --------
    >>> [str(w) for w in exact_keys_weights(Fraction(1, 2), Fraction(-1, 2))]
    ['-1/16', '9/16', '9/16', '-1/16']
    """

    def k(d: Fraction) -> Fraction:
        d = abs(d)
        if d <= 1:
            return (a + 2) * d**3 - (a + 3) * d**2 + 1
        if d < 2:
            return a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
        return Fraction(0)

    return tuple(k(phase - off) for off in (-1, 0, 1, 2))
