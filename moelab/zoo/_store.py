"""Where zoos live on disk and how a cached folder is checked against its manifest."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import platformdirs

from labcore.atomic import atomic_write_text
from moelab.zoo._spec import ZOO_FORMAT_VERSION, ZooSpec, spec_key

__all__ = [
    "MANIFEST",
    "ZOO_DIR_ENV",
    "atomic_write_text",
    "check_zoo_dir",
    "file_hashes",
    "required_files",
    "zoo_dir",
    "zoo_root",
]

#: Environment variable that overrides the cache root (CI points it at a shared folder).
ZOO_DIR_ENV = "MOELAB_ZOO_DIR"
MANIFEST = "manifest.json"
_MODEL_FILES = ("config.json", "model.safetensors")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
HELDOUT = "heldout.json"


def zoo_root(root: str | os.PathLike | None = None) -> Path:
    """Cache root: ``root`` if given, else ``$MOELAB_ZOO_DIR``, else the user cache folder."""
    if root is not None:
        return Path(root)
    env = os.environ.get(ZOO_DIR_ENV)
    if env:
        return Path(env)
    return Path(platformdirs.user_cache_dir("moelab")) / "zoo"


def zoo_dir(spec: ZooSpec, root: str | os.PathLike | None = None) -> Path:
    """Folder of one zoo, keyed by format version and recipe hash so a changed recipe rebuilds."""
    return zoo_root(root) / f"{spec.name}-v{ZOO_FORMAT_VERSION}-{spec_key(spec)}"


def required_files(spec: ZooSpec) -> list[str]:
    """Relative paths (POSIX) every complete zoo folder holds besides the manifest."""
    models = ["base", *(f"variants/{v}" for v in spec.variants)]
    files = [f"{m}/{f}" for m in models for f in _MODEL_FILES]
    files += [f"tokenizer/{f}" for f in _TOKENIZER_FILES]
    return [*files, HELDOUT]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file below ``folder`` except the manifest, keyed by POSIX relative path."""
    return {
        path.relative_to(folder).as_posix(): _sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }


def check_zoo_dir(folder: Path, spec: ZooSpec) -> tuple[dict | None, str | None]:
    """Validate a zoo folder against ``spec``.

    Returns
    -------
    (manifest, None) if the folder is complete and every hash matches, else (None, reason),
    where ``reason`` names the first problem found (missing file, hash mismatch, unreadable
    manifest, other recipe).
    """
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return None, f"{MANIFEST} is missing (an interrupted or partial build)"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        recorded = manifest["files"]
        key = manifest["key"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        return None, f"{MANIFEST} is unreadable ({type(exc).__name__}: {exc})"
    if key != spec_key(spec) or manifest.get("format_version") != ZOO_FORMAT_VERSION:
        return (
            None,
            f"{MANIFEST} belongs to another recipe (key {key!r}, expected {spec_key(spec)!r})",
        )
    for rel in required_files(spec):
        if rel not in recorded:
            return None, f"{MANIFEST} does not list the required file {rel}"
    for rel, expected in recorded.items():
        path = folder / rel
        if not path.is_file():
            return None, f"file {rel} is missing"
        actual = _sha256(path)
        if actual != expected:
            return (
                None,
                f"file {rel} has SHA-256 {actual[:12]}..., the manifest records {expected[:12]}...",
            )
    return manifest, None
