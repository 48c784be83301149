"""Argument checks shared by the modules of :mod:`srlab.fpga`: bit counts, named choices, designs.

They keep :mod:`labcore.checks`' convention: a value of the wrong type raises ``TypeError``;
a value of the right type that is out of range or unknown raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np

from labcore.checks import check_type

__all__ = ["check_bits", "check_choice", "check_designs"]

T = TypeVar("T")


def check_designs(designs: Mapping[str, T], cls: type[T]) -> Mapping[str, T]:
    """``designs`` if it is a non-empty mapping of labels to instances of ``cls``.

    Raises
    ------
    TypeError
        If a design is not an instance of ``cls`` (the message names its label).
    ValueError
        If ``designs`` is empty.

    Examples
    --------
    >>> check_designs({"a": 1.0}, float)
    {'a': 1.0}
    """
    if not designs:
        raise ValueError(f"designs is empty; give at least one {{label: {cls.__name__}}}")
    for label, design in designs.items():
        check_type(design, cls, f"design {label!r}")
    return designs


def check_choice(kind: str, value: Any, known: dict[str, Any]) -> str:
    """``value`` if it is one of the keys of ``known``.

    Raises
    ------
    TypeError
        If ``value`` is not a string.
    ValueError
        If it is not a known name; both messages list the known names.

    Examples
    --------
    >>> check_choice("path", "taps", {"auto": None, "taps": None})
    'taps'
    """
    if not isinstance(value, str):
        raise TypeError(
            f"{kind} must be a name (str), got {value!r}; known: {', '.join(sorted(known))}"
        )
    if value not in known:
        raise ValueError(f"unknown {kind} {value!r}; known: {', '.join(sorted(known))}")
    return value


def check_bits(name: str, value: Any, low: int, high: int) -> int:
    """``value`` as an int if it is an integer (not a bool) in ``low .. high``.

    Raises
    ------
    TypeError
        If it is not an integer (a bool is not one).
    ValueError
        If it is outside ``low .. high``; both messages name the argument and the range.

    Examples
    --------
    >>> check_bits("phase_bits", np.int64(6), 0, 20)
    6
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer in {low}..{high}, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")
    return int(value)
