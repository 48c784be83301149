"""Phase accumulator (DDA) of one axis: output sample -> tap index and ROM phase.

The DDA and the float reference
-------------------------------
:func:`srlab.resize` (``convention="half_pixel"``) samples output ``x`` at the input
coordinate ``u = (x + 0.5) / s - 0.5`` computed in float64, taps at ``floor(u) + k``,
weights at the exact phase ``u - floor(u)``. The hardware has no division and no
float: a :class:`PhaseDDA` adds a constant step to an accumulator with ``F``
fraction bits once per output sample:

* the step ``1 / s`` is rounded to ``F`` fraction bits, so the position drifts by at
  most ``x * 2**-(F + 1)`` pixels after ``x`` outputs;
* the start ``step / 2 - 1/2`` is computed from the rounded step (an arithmetic shift),
  so the grid stays centred for the step actually used;
* the integer part of the accumulator is the tap index ``i0``; the top ``P`` bits of
  its fraction address a ROM of ``2**P`` weight rows, so the phase is quantized to
  ``2**-P``. With ``phase_rounding="nearest"`` half a phase step is added to the start
  (a constant, free in hardware), so dropping the low bits rounds the phase to the
  nearest ROM entry instead of truncating it (a systematic shift of half a phase step).

The two agree exactly when ``1 / s`` is a short binary fraction (``s`` = 2, 4, 0.5,
1.25 = 5/4 needs ``1/s = 0.8``: not exact) and ``F`` holds it: then with
``phase_rounding="truncate"`` every ``i0`` equals the float ``floor(u)`` and the
phase is its top ``P`` bits. For other scales the indices are equal wherever ``u`` is
further than the drift (plus half a phase step for ``"nearest"``) from an integer;
where ``u`` is that close to an integer, ``(i0, phase ~ 1)`` and ``(i0 + 1, phase ~ 0)``
are the same sample of an interpolating kernel (the tap that changes has weight ~0).
So with 30+ DDA fraction bits, 16 phase bits and 20+ coefficient and accumulator
fraction bits, the output equals the float resize within one LSB (a float value that
lands within rounding noise of ``k + 0.5`` may round either way).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from numbers import Real
from typing import Literal

import numpy as np

from labcore.checks import check_choice
from srlab.fpga._checks import check_bits

__all__ = ["MAX_DDA_FRAC_BITS", "MAX_PHASE_BITS", "PhaseDDA", "PhaseRounding"]

PhaseRounding = Literal["nearest", "truncate"]

MAX_DDA_FRAC_BITS = 40
"""Widest DDA fraction: positions up to ``2**20`` pixels stay inside int64."""

MAX_PHASE_BITS = 20
"""Largest phase ROM (``2**20`` rows), already far beyond any FPGA ROM."""

# Offset added to the DDA start so that keeping the top phase bits rounds as named.
_PHASE_OFFSETS: dict[str, Callable[[int, int], int]] = {
    "nearest": lambda frac_bits, phase_bits: (
        (1 << (frac_bits - phase_bits - 1)) if frac_bits > phase_bits else 0
    ),
    "truncate": lambda frac_bits, phase_bits: 0,
}


@dataclass(frozen=True)
class PhaseDDA:
    """Phase accumulator of one axis: output sample -> (tap index, ROM phase).

    Parameters
    ----------
    in_per_out : float
        Input pixels per output pixel, ``1 / scale``.
    frac_bits : int, default 16
        Fraction bits ``F`` of the accumulator (and of the quantized step).
    phase_bits : int, default 6
        Bits ``P <= F`` of the fraction that address the weight ROM (``2**P`` rows).
    phase_rounding : {"nearest", "truncate"}, default "nearest"
        ``"nearest"`` adds half a phase step to the start, so the top bits round the
        phase to the nearest ROM row; ``"truncate"`` keeps them as they are.

    Attributes
    ----------
    step : int
        ``round(in_per_out * 2**F)``, the increment per output sample.
    start : int
        Accumulator of output 0: ``(step - 2**F) >> 1`` plus the rounding offset.

    Raises
    ------
    TypeError
        If ``in_per_out`` is not a real number, a bit count not an integer or the rounding not
        a string.
    ValueError
        If ``in_per_out`` is not positive and finite, a bit count is out of range,
        ``phase_bits > frac_bits``, the step rounds to zero, or the rounding is unknown.

    Examples
    --------
    >>> dda = PhaseDDA(0.5, frac_bits=8, phase_bits=2, phase_rounding="truncate")
    >>> dda.step, dda.start
    (128, -64)
    >>> [a.tolist() for a in dda.positions(4)]
    [[-1, 0, 0, 1], [3, 1, 3, 1]]
    """

    in_per_out: float
    frac_bits: int = 16
    phase_bits: int = 6
    phase_rounding: PhaseRounding = "nearest"
    step: int = field(init=False)
    start: int = field(init=False)

    def __post_init__(self) -> None:
        if isinstance(self.in_per_out, bool) or not isinstance(self.in_per_out, Real):
            raise TypeError(
                f"in_per_out must be a real number (1 / scale), got {self.in_per_out!r}"
            )
        ratio = float(self.in_per_out)
        if not math.isfinite(ratio) or ratio <= 0:
            raise ValueError(
                f"in_per_out must be a positive finite number (1 / scale), got {self.in_per_out!r}"
            )
        frac = check_bits("dda_frac_bits", self.frac_bits, 1, MAX_DDA_FRAC_BITS)
        phase = check_bits("phase_bits", self.phase_bits, 0, MAX_PHASE_BITS)
        if phase > frac:
            raise ValueError(
                f"phase_bits={phase} exceeds the DDA's {frac} fraction bits; the phase is taken from "
                "the accumulator's fraction, so use dda_frac_bits >= phase_bits"
            )
        check_choice(self.phase_rounding, "phase_rounding", _PHASE_OFFSETS)
        step = round(Fraction(ratio) * (1 << frac))
        if step <= 0:
            raise ValueError(
                f"the DDA step 1/scale = {ratio:g} rounds to 0 with {frac} fraction bits; use more dda_frac_bits"
            )
        object.__setattr__(self, "in_per_out", ratio)
        object.__setattr__(self, "frac_bits", frac)
        object.__setattr__(self, "phase_bits", phase)
        object.__setattr__(self, "step", int(step))
        start = ((int(step) - (1 << frac)) >> 1) + _PHASE_OFFSETS[self.phase_rounding](frac, phase)
        object.__setattr__(self, "start", start)

    def accumulator(self, n_out: int) -> np.ndarray:
        """Accumulator values of outputs ``0 .. n_out - 1``: ``start + x * step`` (int64)."""
        if abs(self.start) + n_out * self.step >= 1 << 62:
            raise ValueError(
                f"{n_out} outputs overflow the int64 DDA accumulator; use fewer dda_frac_bits"
            )
        return self.start + np.arange(n_out, dtype=np.int64) * self.step

    def split(self, acc: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """Tap index ``acc >> F`` and ROM row (top ``P`` fraction bits) of accumulator values."""
        acc = np.asarray(acc, dtype=np.int64)
        mask = (1 << self.frac_bits) - 1
        return acc >> self.frac_bits, (acc & mask) >> (self.frac_bits - self.phase_bits)

    def positions(self, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        """``(i0, phase_row)`` of every output sample, each ``(n_out,)`` int64."""
        return self.split(self.accumulator(n_out))

    def register_bits(self, n_in: int) -> int:
        """Width of the signed accumulator register for an input of ``n_in`` pixels."""
        # The position stays within [-1, n_in + 1) for any upscaling or downscaling.
        return (n_in + 2).bit_length() + 1 + self.frac_bits
