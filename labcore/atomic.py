"""Atomic writes: write a temporary next to the target, then ``os.replace`` it.

A reader (or a resumed run) never sees a half-written file: the target is either the old
file or the complete new one, because ``os.replace`` within one folder is atomic.
:func:`atomic_path` covers writers that want a path rather than bytes (pandas
``to_csv``, safetensors ``save_file``, ``numpy.save``); :func:`atomic_dir` does the same
for a whole folder (a saved model, a cache entry).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_dir", "atomic_path", "atomic_write_bytes", "atomic_write_text"]


def _umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place when the block succeeds.

    The temporary sits in the same folder (so ``os.replace`` is atomic) and keeps the
    target's suffix (some writers, e.g. ``numpy.save``, append their own otherwise). On
    success it is fsynced and replaces ``path``; on any exception it is removed and
    ``path`` is left untouched. Missing parent folders are created. The file gets the
    permissions of a newly created one (``0o666`` less the umask), as ``open`` would give it.

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
    tmp.chmod(0o666 & ~_umask())  # mkstemp makes it private; a new file follows the umask
    try:
        yield tmp
        # Flush the data to disk before the rename, so a crash cannot leave an empty target.
        with open(tmp, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, mode: int = 0o755) -> Iterator[Path]:
    """Yield a fresh temporary folder next to ``path``; rename it into place on success.

    The folder sits beside the target (same file system, so the rename is atomic). When the
    block succeeds, an existing ``path`` is first renamed aside and removed, then the new
    folder takes its place: a reader sees the old folder, nothing for an instant, or the
    complete new one, never a half-written one. If another writer publishes ``path`` between
    those two renames, its (equally complete) folder stays and this one is discarded. On any
    exception the temporary folder is removed and ``path`` is left untouched. Missing parent
    folders are created.

    Parameters
    ----------
    path : str or PathLike
        The folder to create or replace.
    mode : int, default 0o755
        Permissions of the new folder (a temporary folder is private to its owner otherwise).

    Yields
    ------
    Path
        The empty folder the block fills.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_dir(root / "model") as tmp:
    ...     _ = (tmp / "weights.bin").write_bytes(b"0")
    >>> sorted(p.name for p in root.iterdir()), sorted(p.name for p in (root / "model").iterdir())
    (['model'], ['weights.bin'])
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        tmp.chmod(mode)
        yield tmp
        _move_aside(target)
        try:
            os.replace(tmp, target)
        except OSError:
            if not target.is_dir():  # not a concurrent writer's folder: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _move_aside(target: Path) -> None:
    """Remove an existing ``target`` folder by renaming it away first (readers never see it half-deleted)."""
    if not target.exists():
        return
    stale = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    try:
        os.replace(target, stale / "old")
    except FileNotFoundError:
        pass  # another writer moved it already
    shutil.rmtree(stale, ignore_errors=True)


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
