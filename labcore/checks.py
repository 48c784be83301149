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

from typing import Any

__all__ = ["check_callable", "check_int", "check_name", "check_type"]


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
