"""Exceptions raised by moelab.

Every class subclasses a built-in exception (``ValueError``, ``FileNotFoundError`` or
``ImportError``) so that callers catching the built-in keep working; the subclass lets tests and
notebooks tell the failures apart.
"""

from __future__ import annotations

__all__ = [
    "CheckpointNotFoundError",
    "CorruptCheckpointError",
    "IncompatibleModelsError",
    "MissingExtraError",
    "UnsupportedModelError",
]


class UnsupportedModelError(ValueError):
    """The model or config belongs to no registered mixture-of-experts family."""


class IncompatibleModelsError(ValueError):
    """Two models cannot be compared slot by slot (family, expert shapes or slots differ)."""


class CorruptCheckpointError(ValueError):
    """A checkpoint file is truncated, corrupt, or does not match its config or index."""


class CheckpointNotFoundError(FileNotFoundError):
    """A checkpoint folder, or a file it must contain, does not exist."""


class MissingExtraError(ImportError):
    """An optional package is not installed; the message names the extra that installs it."""
