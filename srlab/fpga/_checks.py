"""Argument checks shared by the modules of :mod:`srlab.fpga`: bit counts, formats, designs.

They keep :mod:`labcore.checks`' convention: a value of the wrong type raises ``TypeError``;
a value of the right type that is out of range or unknown raises ``ValueError``. A name
chosen from a fixed set is checked by :func:`labcore.checks.check_choice`; a table of named
things is a :class:`labcore.Registry`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np

from labcore.checks import check_type
from srlab.fixed import QFormat

__all__ = ["check_bits", "check_designs", "check_format"]

T = TypeVar("T")


def check_designs(designs: Mapping[str, T], cls: type[T]) -> Mapping[str, T]:
    """``designs`` if it is a non-empty mapping of labels to instances of ``cls``.

    Raises
    ------
    TypeError
        If ``designs`` is not a mapping, or a design is not an instance of ``cls`` (the
        message names its label).
    ValueError
        If ``designs`` is empty.

    Examples
    --------
    >>> check_designs({"a": 1.0}, float)
    {'a': 1.0}
    """
    check_type(
        designs, Mapping, "designs", expected=f"a mapping {{label: {cls.__name__}}}, e.g. a dict"
    )
    if not designs:
        raise ValueError(f"designs is empty; give at least one {{label: {cls.__name__}}}")
    for label, design in designs.items():
        check_type(design, cls, f"design {label!r}")
    return designs


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


def check_format(name: str, value: QFormat | str) -> QFormat:
    """A datapath format: a QFormat (or its HLS spelling) with an integer bit and no negative
    fraction bits.

    Raises
    ------
    TypeError
        If ``value`` is neither a QFormat nor a string.
    ValueError
        If the string is no HLS spelling, ``word_bits < int_bits``, or a signed format has no
        integer bit.
    """
    fmt = QFormat.parse(value) if isinstance(value, str) else value
    if not isinstance(fmt, QFormat):
        raise TypeError(
            f"{name} must be a QFormat or a string such as 'ap_fixed<16,4>', got {value!r}"
        )
    if fmt.word_bits < fmt.int_bits:
        raise ValueError(
            f"{name} {fmt} has word_bits={fmt.word_bits} < int_bits={fmt.int_bits}, i.e. negative "
            "fraction bits; the datapath needs word_bits >= int_bits (drop low bits by narrowing "
            "the word instead)"
        )
    if fmt.int_bits < (1 if fmt.signed else 0):
        raise ValueError(
            f"{name} {fmt} has no integer bit; use int_bits >= {1 if fmt.signed else 0}"
        )
    return fmt
