"""Argument checks with one error convention for both labs.

A value of the wrong type raises ``TypeError``; a value of the right type that is out of range
raises ``ValueError``. Each message names the argument, what it must be, and what it got.

Examples
--------
>>> check_int(3, "layer")
3
>>> check_int(True, "layer")
Traceback (most recent call last):
...
TypeError: layer must be an int, got bool True
>>> check_int(-1, "layer")
Traceback (most recent call last):
...
ValueError: layer must be >= 0, got -1
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "check_callable",
    "check_choice",
    "check_int",
    "check_name",
    "check_type",
    "unknown_name",
]


def _type_names(types: type | tuple[type, ...]) -> str:
    types = types if isinstance(types, tuple) else (types,)
    names = [t.__name__ for t in types]
    return " or ".join(("an " if n[0].lower() in "aeiou" else "a ") + n for n in names)


def check_type(
    value: Any, types: type | tuple[type, ...], what: str, *, expected: str | None = None
) -> None:
    """Raise ``TypeError`` unless ``value`` is an instance of ``types``.

    Parameters
    ----------
    value : object
        The argument.
    types : type or tuple of type
        The accepted types.
    what : str
        The argument's name in the message (e.g. ``"MoEModel.model"``).
    expected : str, optional
        How to describe the accepted values (default: the type names), e.g.
        ``"a checkpoint folder path or a transformers model"``.

    Raises
    ------
    TypeError
        ``"{what} must be {expected}, got {type}"``.
    """
    if not isinstance(value, types):
        wanted = expected or _type_names(types)
        raise TypeError(f"{what} must be {wanted}, got {type(value).__name__}")


def check_int(value: Any, what: str, *, minimum: int | None = 0) -> int:
    """Return ``value`` if it is an int (not a bool) of at least ``minimum``.

    Parameters
    ----------
    value : object
        The argument; numpy integers are accepted.
    what : str
        Its name in the message.
    minimum : int or None, default 0
        The smallest accepted value; None for no bound.

    Returns
    -------
    int
        The value as a Python int.

    Raises
    ------
    TypeError
        If ``value`` is not an integer (``True`` as a count or index is always a bug).
    ValueError
        If it is below ``minimum``.
    """
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{what} must be an int, got {type(value).__name__} {value!r}")
    number = value.__index__()
    if minimum is not None and number < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {number}")
    return number


def check_name(value: Any, what: str) -> str:
    """Return ``value`` if it is a non-empty str.

    Raises
    ------
    TypeError
        If ``value`` is not a str.
    ValueError
        If it is empty.
    """
    check_type(value, str, what)
    if not value:
        raise ValueError(f"{what} must not be empty")
    return value


def check_callable(value: Any, what: str) -> None:
    """Raise ``TypeError`` unless ``value`` is callable."""
    if not callable(value):
        raise TypeError(f"{what} must be callable, got {type(value).__name__} {value!r}")


def _known(plural: str | None) -> str:
    return f"known {plural}" if plural else "known"


def unknown_name(
    kind: str, value: object, known: Iterable[str], plural: str | None = None
) -> ValueError:
    """The error for a name that is not among ``known``: it lists the known names.

    Parameters
    ----------
    kind : str
        What the name names, e.g. ``"kernel"``.
    value : object
        The name that was given.
    known : iterable of str
        The accepted names, in the order the message lists them.
    plural : str, optional
        The word after "known" (``"known kernels: a, b"``); without it ``"known: a, b"``.

    Returns
    -------
    ValueError
        ``"unknown {kind} {value!r}; known {plural}: a, b"``, to raise.

    Examples
    --------
    >>> unknown_name("path", "fast", ["auto", "taps"])
    ValueError("unknown path 'fast'; known: auto, taps")
    """
    names = list(known)
    return ValueError(f"unknown {kind} {value!r}; {_known(plural)}: {', '.join(names)}")


def check_choice(
    value: Any, kind: str, known: Iterable[str], *, plural: str | None = None, also: str = ""
) -> str:
    """Return ``value`` if it is one of the names in ``known``.

    The one check of a name chosen from a fixed set (a mode, a direction); a table of named
    things is a :class:`~labcore.registry.Registry`, whose lookups raise the same errors.

    Parameters
    ----------
    value : object
        The argument.
    kind : str
        What it names, in the messages (e.g. ``"phase_rounding"``).
    known : iterable of str
        The accepted names, in the order the messages list them.
    plural : str, optional
        The word after "known" in the messages (see :func:`unknown_name`).
    also : str, optional
        Other accepted types for the type message, e.g. ``" or a Kernel"``.

    Returns
    -------
    str
        ``value``.

    Raises
    ------
    TypeError
        If ``value`` is not a str: ``"{kind} must be a name (str), got 3; known: a, b"``.
    ValueError
        If it is not a known name: ``"unknown {kind} 'c'; known: a, b"``.

    Examples
    --------
    >>> check_choice("taps", "path", ("auto", "taps"))
    'taps'
    >>> check_choice(None, "path", ("auto", "taps"))
    Traceback (most recent call last):
    ...
    TypeError: path must be a name (str), got None; known: auto, taps
    """
    names = list(known)
    if not isinstance(value, str):
        raise TypeError(
            f"{kind} must be a name (str){also}, got {value!r}; "
            f"{_known(plural)}: {', '.join(names)}"
        )
    if value not in names:
        raise unknown_name(kind, value, names, plural)
    return value
