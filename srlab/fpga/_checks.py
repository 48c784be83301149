"""Argument checks shared by the modules of :mod:`srlab.fpga`: bit counts and named choices."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_bits", "check_choice"]


def check_choice(kind: str, value: Any, known: dict[str, Any]) -> str:
    """``value`` if it is one of the keys of ``known``.

    Raises
    ------
    ValueError
        Otherwise, listing the known names.

    Examples
    --------
    >>> check_choice("path", "taps", {"auto": None, "taps": None})
    'taps'
    """
    if not isinstance(value, str) or value not in known:
        raise ValueError(f"unknown {kind} {value!r}; known: {', '.join(sorted(known))}")
    return value


def check_bits(name: str, value: Any, low: int, high: int) -> int:
    """``value`` as an int if it is an integer (not a bool) in ``low .. high``.

    Raises
    ------
    ValueError
        Otherwise, naming the argument ``name`` and the range.

    Examples
    --------
    >>> check_bits("phase_bits", np.int64(6), 0, 20)
    6
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or not low <= value <= high
    ):
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")
    return int(value)
