"""Atomic file writes: write a temporary next to the target, then ``os.replace`` it.

A reader (or a resumed run) never sees a half-written file: the target is either the old
file or the complete new one, because ``os.replace`` within one folder is atomic.
:func:`atomic_path` covers writers that want a path rather than bytes (pandas
``to_csv``, safetensors ``save_file``, ``numpy.save``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place when the block succeeds.

    The temporary sits in the same folder (so ``os.replace`` is atomic) and keeps the
    target's suffix (some writers, e.g. ``numpy.save``, append their own otherwise). On
    success it is fsynced and replaces ``path``; on any exception it is removed and
    ``path`` is left untouched. Missing parent folders are created.

    Parameters
    ----------
    path : str or PathLike
        The file to write.

    Yields
    ------
    Path
        Where the block writes the new content.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(folder / "a.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (folder / "a.txt").read_text(), sorted(p.name for p in folder.iterdir())
    ('hello', ['a.txt'])
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=f".tmp{target.suffix}"
    )
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        # Flush the data to disk before the rename, so a crash cannot leave an empty target.
        with open(tmp, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the path.

    Raises
    ------
    TypeError
        If ``data`` is not bytes-like.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"data must be bytes, got {type(data).__name__}; use atomic_write_text for str"
        )
    target = Path(path)
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (no newline translation); return the path.

    Raises
    ------
    TypeError
        If ``text`` is not a str.
    """
    if not isinstance(text, str):
        raise TypeError(
            f"text must be a str, got {type(text).__name__}; use atomic_write_bytes for bytes"
        )
    return atomic_write_bytes(path, text.encode(encoding))
