"""The kernel value type: :class:`Kernel` and its :class:`HardwareCost`.

Private module of :mod:`srlab.kernels`, which re-exports these names and holds the
registry and the built-in kernels; import them from there. Kept apart so the kernel
object and its cost model (with the canonical-signed-digit counts it uses) are one
concept, and the registry module stays under the size limit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labcore.checks import check_choice, check_int

__all__ = ["KERNEL_RULES", "WEIGHT_SOURCES", "HardwareCost", "Kernel", "csd_adders", "csd_digits"]

#: Values of :attr:`Kernel.rule`: how :func:`srlab.resize` builds a kernel's tables.
KERNEL_RULES = (None, "nearest", "area")

# A phase closer than this to an allowed fixed phase counts as that phase (resize computes
# phases in float64; at scale 2 they are exact, the tolerance only absorbs rounding noise).
_PHASE_TOL = 1e-9


# --------------------------------------------------------------------------- hardware cost


WEIGHT_SOURCES = ("rom", "segments", "constants", "mux")
"""Where a hardware filter gets its weights (:attr:`HardwareCost.weights`)."""


@dataclass(frozen=True)
class HardwareCost:
    """Arithmetic per output sample of a 1-D interpolation pass.

    Parameters
    ----------
    taps : int
        Input pixels read per output sample.
    multipliers : int
        General (pixel x variable weight) multipliers.
    adders : int
        Adders and subtracters, including those that realise constant multiplications
        by shift-and-add.
    shifts : int, default 0
        Wired shifts (free in logic, counted for completeness).
    coefficient_bits_hint : int or None, default None
        Fractional bits a fixed-point design would typically give the weights.
    notes : str, default ""
        How the count was made.
    weights : {"rom", "segments", "constants", "mux"}, optional
        Where a hardware filter gets its weights: a ROM of phases, shift-add line segments
        computed from the phase, wired constants (shift-add, no multiplier) or a multiplexer
        that picks a tap (no weights at all). By default "rom" with multipliers, else
        "constants". The FPGA cost model reads it, so a new kernel needs no edit there.

    Raises
    ------
    TypeError
        If a count or ``coefficient_bits_hint`` is not an integer, or ``weights`` not a str.
    ValueError
        If a count is negative, ``coefficient_bits_hint`` is not positive or ``weights`` is
        unknown.

    Examples
    --------
    >>> HardwareCost(taps=4, multipliers=4, adders=3).adders
    3
    """

    taps: int
    multipliers: int
    adders: int
    shifts: int = 0
    coefficient_bits_hint: int | None = None
    notes: str = ""
    weights: str | None = None

    def __post_init__(self) -> None:
        for name in ("taps", "multipliers", "adders", "shifts"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)):
                raise TypeError(f"HardwareCost.{name} must be an integer >= 0, got {value!r}")
            if value < 0:
                raise ValueError(f"HardwareCost.{name} must be an integer >= 0, got {value!r}")
        hint = self.coefficient_bits_hint
        message = (
            f"HardwareCost.coefficient_bits_hint must be a positive integer or None, got {hint!r}"
        )
        if hint is not None and not isinstance(hint, (int, np.integer)):
            raise TypeError(message)
        if hint is not None and hint <= 0:
            raise ValueError(message)
        if self.weights is None:
            object.__setattr__(self, "weights", "rom" if self.multipliers else "constants")
        check_choice(self.weights, "HardwareCost.weights", WEIGHT_SOURCES)


def csd_digits(n: int) -> tuple[int, ...]:
    """Canonical signed-digit (non-adjacent form) digits of an integer, least significant first.

    The CSD form has the fewest non-zero digits of any signed-binary form, so a constant
    multiplication ``n * x`` costs ``nonzero_digits - 1`` adders in a shift-and-add circuit.

    Parameters
    ----------
    n : int
        The constant; its sign is carried by the digits.

    Returns
    -------
    tuple of int
        Digits in {-1, 0, 1}; ``sum(d * 2**i) == n``. ``()`` for zero.

    Examples
    --------
    >>> csd_digits(111)  # 128 - 16 - 1
    (-1, 0, 0, 0, -1, 0, 0, 1)
    """
    n = check_int(n, "n", minimum=None)  # '5' or 5.0 would hide a bug
    digits = []
    while n != 0:
        if n % 2:
            digit = 2 - (
                n % 4
            )  # +1 when n = 1 (mod 4), -1 when n = 3 (mod 4): no two adjacent non-zeros
            n -= digit
        else:
            digit = 0
        digits.append(digit)
        n //= 2
    return tuple(digits)


def csd_adders(n: int) -> int:
    """Adders needed to multiply by the integer constant ``n`` with shifts and adds.

    Parameters
    ----------
    n : int
        The constant.

    Returns
    -------
    int
        ``max(nonzero CSD digits - 1, 0)``.

    Examples
    --------
    >>> csd_adders(9), csd_adders(111), csd_adders(8)
    (1, 2, 0)
    """
    return max(sum(d != 0 for d in csd_digits(n)) - 1, 0)


# --------------------------------------------------------------------------- kernel object


def _tap_offsets(taps: int) -> np.ndarray:
    return np.arange(-(taps // 2 - 1), taps // 2 + 1)


@dataclass(frozen=True)
class Kernel:
    """An interpolation kernel: weights per phase, continuous profile, hardware cost.

    Build kernels with :func:`get_kernel`; construct one directly only to register a new
    kernel.

    Parameters
    ----------
    name : str
        Registry name.
    taps : int
        Even number of taps per output sample.
    interpolating : bool
        Whether the kernel reproduces the input at integer positions (weight one-hot at
        phase 0).
    hardware : HardwareCost
        Cost of one output sample of a 1-D pass.
    profile_fn : callable
        ``profile_fn(x) -> ndarray``, the continuous kernel at distances ``x``.
    params : dict, optional
        Parameters the kernel was built with, e.g. ``{"a": -0.5}``.
    phases : tuple of float or None, default None
        For fixed-phase kernels, the only phases that have weights.
    phase_table : (len(phases), taps) ndarray or None
        Weights of a fixed-phase kernel, row ``i`` for ``phases[i]``.
    weights_fn : callable or None
        ``weights_fn(phase) -> (P, taps)`` overriding the sampled profile (nearest uses it
        for its tie rule).
    normalize : bool, default True
        Divide the weights of each phase by their sum so they add up to one.
    rule : {None, "nearest", "area"}, default None
        How :func:`srlab.resize` builds this kernel's tables. ``None``: it samples
        :meth:`weights` at each output's phase. ``"nearest"``: it picks one input pixel per
        output from the two sizes, as OpenCV's INTER_NEAREST_EXACT and Pillow's NEAREST do.
        ``"area"``: it averages each output pixel's footprint, as OpenCV's INTER_AREA does.
        Part of equality and hash.

    Attributes
    ----------
    support : float
        Radius of the kernel, ``taps / 2``.
    fingerprint : str
        Digest of the weights and profile on a probe grid; part of equality and hash.

    Raises
    ------
    TypeError
        If ``taps`` is not an integer.
    ValueError
        If ``taps`` is not a positive even number, or a fixed-phase table does not match
        ``phases`` and ``taps``.
    """

    name: str
    taps: int
    interpolating: bool
    hardware: HardwareCost
    profile_fn: Callable[[np.ndarray], np.ndarray] = field(repr=False, compare=False)
    params: dict[str, Any] = field(default_factory=dict)
    phases: tuple[float, ...] | None = None
    phase_table: np.ndarray | None = field(default=None, repr=False, compare=False)
    weights_fn: Callable[[np.ndarray], np.ndarray] | None = field(
        default=None, repr=False, compare=False
    )
    normalize: bool = True
    rule: str | None = None
    support: float = field(init=False)
    fingerprint: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        message = f"Kernel.taps must be a positive even integer, got {self.taps!r}"
        if not isinstance(self.taps, (int, np.integer)):
            raise TypeError(message)
        if self.taps < 2 or self.taps % 2:
            raise ValueError(message)
        if self.rule not in KERNEL_RULES:
            raise ValueError(f"Kernel.rule must be one of {KERNEL_RULES}, got {self.rule!r}")
        object.__setattr__(self, "support", self.taps / 2)
        object.__setattr__(self, "params", dict(self.params))
        if self.phases is not None:
            phases = tuple(float(p) for p in self.phases)
            table = np.asarray(self.phase_table, dtype=np.float64)
            if table.shape != (len(phases), self.taps):
                raise ValueError(
                    f"Kernel {self.name!r}: phase_table must have shape ({len(phases)}, {self.taps}), "
                    f"got {table.shape}"
                )
            if any(not 0.0 <= p < 1.0 for p in phases):
                raise ValueError(
                    f"Kernel {self.name!r}: fixed phases must lie in [0, 1), got {phases}"
                )
            table.setflags(write=False)
            object.__setattr__(self, "phases", phases)
            object.__setattr__(self, "phase_table", table)
        # Equality and hashing go by what the kernel computes, not by which function object
        # computes it: equal kernels share resize's cached weight tables, and a kernel
        # re-registered under the same name with other weights does not.
        probe = np.asarray(self.phases) if self.phases is not None else np.arange(64) / 64 + 1 / 257
        x = np.linspace(-self.support - 1, self.support + 1, 97)
        digest = hashlib.sha1(self.weights(probe).tobytes() + self.profile(x).tobytes())
        object.__setattr__(self, "fingerprint", digest.hexdigest())

    def __hash__(self) -> int:
        return hash((self.name, self.taps, self.rule, self.fingerprint))

    @property
    def offsets(self) -> np.ndarray:
        """Tap offsets relative to ``floor(u)``: ``-(taps/2 - 1), ..., taps/2``."""
        return _tap_offsets(self.taps)

    def weights(self, phase: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """Weights of the taps for samples at the given phases.

        Parameters
        ----------
        phase : float or (P,) array_like
            Fractional positions in [0, 1).

        Returns
        -------
        (P, taps) ndarray of float64, or (taps,) for a scalar phase
            Row ``p`` holds the weights of the taps at offsets :attr:`offsets`.

        Raises
        ------
        ValueError
            If a phase is outside [0, 1) or not finite, or (fixed-phase kernels) not one
            of :attr:`phases`.

        Examples
        --------
        >>> from srlab.kernels import get_kernel
        >>> get_kernel("bilinear").weights(0.25).tolist()
        [0.75, 0.25]
        """
        t = np.asarray(phase, dtype=np.float64)
        scalar = t.ndim == 0
        t = np.atleast_1d(t)
        if t.ndim != 1:
            raise ValueError(f"phase must be a scalar or a 1-D array, got shape {t.shape}")
        if not np.all(np.isfinite(t)) or np.any(t < 0.0) or np.any(t >= 1.0):
            raise ValueError("phase values must be finite and lie in [0, 1)")
        if self.phases is not None:
            w = self._fixed_weights(t)
        elif self.weights_fn is not None:
            w = np.asarray(self.weights_fn(t), dtype=np.float64)
        else:
            w = self.profile_fn(t[:, None] - self.offsets[None, :])
        if self.normalize:
            w = w / w.sum(axis=1, keepdims=True)
        return w[0] if scalar else w

    def _fixed_weights(self, t: np.ndarray) -> np.ndarray:
        allowed = np.asarray(self.phases)
        distance = np.abs(t[:, None] - allowed[None, :])
        row = distance.argmin(axis=1)
        bad = distance[np.arange(t.size), row] > _PHASE_TOL
        if np.any(bad):
            raise ValueError(
                f"kernel {self.name!r} only has weights at phases {self.phases}, so it only works "
                f"at scale 2; got phase {float(t[bad][0])!r}. Resize by exactly 2 or use a "
                f"continuous kernel such as 'bicubic'."
            )
        return self.phase_table[row]

    def profile(self, x: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """Continuous kernel value at distance ``x`` (not normalised).

        Parameters
        ----------
        x : float or array_like
            Distances in input pixels.

        Returns
        -------
        ndarray of float64
            Same shape as ``x``.

        Examples
        --------
        >>> from srlab.kernels import get_kernel
        >>> get_kernel("bicubic").profile([0.0, 1.0, 1.5]).tolist()
        [1.0, 0.0, -0.0625]
        """
        return np.asarray(self.profile_fn(np.asarray(x, dtype=np.float64)), dtype=np.float64)
