"""Test vectors for an HDL testbench of the resizer: hex files and a JSON manifest.

:func:`export_test_vectors` writes, for one design and one image:

==================  ====================================================================
``input.hex``       pixel codes (``pixel_fmt``), raster order: row, column, channel
``coefficients.hex`` the weight ROM (``coeff_fmt``), ``2**phase_bits`` rows of ``taps``
                    words, row-major (for a fixed-phase kernel only its phases' rows
                    are non-zero)
``mid.hex``         expected words (``mid_fmt``) after the first pass: horizontal first
                    ``(H, W_out)``, vertical first ``(H_out, W)`` (``pass_order``)
``output.hex``      expected output pixels (``out_fmt``), raster order
``manifest.json``   formats, DDA constants, sizes, file names, value counts, SHA-256
==================  ====================================================================

One value per line, lowercase hex of the two's-complement code in ``ceil(W / 4)``
digits (``$readmemh`` reads it as is). Every file is written to a temporary file in
the same folder and moved into place, and the manifest last, so a reader never sees
a half-written set. The manifest holds file names only, never a path.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from labcore.atomic import atomic_write_bytes
from labcore.checks import check_type
from srlab.fixed import QFormat
from srlab.fpga.datapath import FixedPointResizer

__all__ = ["MANIFEST_NAME", "export_test_vectors", "format_hex", "parse_hex", "read_test_vectors"]

MANIFEST_NAME = "manifest.json"
_FORMAT_VERSION = 1


def format_hex(codes: np.ndarray, fmt: QFormat) -> str:
    r"""Codes as hex lines: two's complement in ``fmt.word_bits`` bits, ``ceil(W/4)`` digits.

    Examples
    --------
    >>> format_hex(np.array([-1, 5]), QFormat(12, 2))
    'fff\n005\n'
    """
    check_type(fmt, QFormat, "fmt", expected="a QFormat, e.g. QFormat(12, 2)")
    digits = -(-fmt.word_bits // 4)
    mask = (1 << fmt.word_bits) - 1
    return "".join(f"{int(c) & mask:0{digits}x}\n" for c in np.asarray(codes).ravel())


def parse_hex(text: str, fmt: QFormat) -> np.ndarray:
    r"""Inverse of :func:`format_hex`: hex lines -> int64 codes of ``fmt``.

    Raises
    ------
    TypeError
        If ``text`` is not a str or ``fmt`` not a QFormat.
    ValueError
        If a line is not hex or does not fit ``fmt.word_bits``.

    Examples
    --------
    >>> parse_hex("fff\n005\n", QFormat(12, 2)).tolist()
    [-1, 5]
    """
    check_type(text, str, "text", expected="a str of hex lines (format_hex's output)")
    check_type(fmt, QFormat, "fmt", expected="a QFormat, e.g. QFormat(12, 2)")
    values = []
    for number, line in enumerate(text.split(), start=1):
        try:
            raw = int(line, 16)
        except ValueError:
            raise ValueError(f"line {number}: {line!r} is not a hex number") from None
        if raw >> fmt.word_bits:
            raise ValueError(f"line {number}: {line!r} does not fit {fmt.word_bits} bits")
        if fmt.signed and raw >> (fmt.word_bits - 1):
            raw -= 1 << fmt.word_bits
        values.append(raw)
    return np.asarray(values, dtype=np.int64)


def _format_entry(fmt: QFormat) -> dict[str, Any]:
    return {
        "hls": str(fmt),
        "word_bits": fmt.word_bits,
        "int_bits": fmt.int_bits,
        "frac_bits": fmt.frac_bits,
        "signed": fmt.signed,
        "rounding": fmt.rounding,
        "overflow": fmt.overflow,
    }


def _write_atomic(folder: Path, name: str, text: str) -> str:
    """Write ``text`` to ``folder/name`` atomically; return its SHA-256."""
    data = text.encode("ascii")
    atomic_write_bytes(folder / name, data)
    return hashlib.sha256(data).hexdigest()


def export_test_vectors(
    folder: str | os.PathLike, resizer: FixedPointResizer, image: np.ndarray
) -> dict[str, Any]:
    """Write input, ROM and expected-output hex files plus a manifest for an HDL testbench.

    Parameters
    ----------
    folder : str or PathLike
        Target folder, created if missing; files of the same names are replaced.
    resizer : FixedPointResizer
        The design.
    image : (H, W) or (H, W, C) ndarray of uint8
        The stimulus.

    Returns
    -------
    dict
        The manifest as written to ``manifest.json``: ``design`` (kernel, scale, taps and
        their offsets, border, DDA constants, formats), ``sizes`` and ``files`` (name,
        format, value count, hex digits, order, SHA-256 of the bytes).

    Raises
    ------
    TypeError
        If ``resizer`` is not a FixedPointResizer.
    ValueError
        If the image is not valid for it, or ``folder`` exists and is not a folder.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     m = export_test_vectors(tmp, FixedPointResizer("bilinear", 2), np.zeros((4, 4), np.uint8))
    >>> m["sizes"]["output"], m["files"]["coefficients"]["values"]
    ([8, 8, 1], 128)
    """
    check_type(resizer, FixedPointResizer, "resizer")
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise ValueError(
            f"{target.name!r} exists and is not a folder; give a folder for the vectors"
        )
    trace = resizer.trace(image)
    target.mkdir(parents=True, exist_ok=True)
    h, w, channels = trace.pixels.shape
    out = trace.output.reshape(trace.output.shape[:2] + (channels,))
    r = resizer
    payloads = {
        "input": ("input.hex", r.pixel_fmt, trace.pixels.codes, "row, column, channel"),
        "coefficients": ("coefficients.hex", r.coeff_fmt, r.coefficients, "phase row, tap"),
        "mid": ("mid.hex", r.mid_fmt, trace.mid.codes, "row, column, channel"),
        "output": ("output.hex", r.out_fmt, out.astype(np.int64), "row, column, channel"),
    }
    files = {}
    for key, (name, fmt, codes, order) in payloads.items():
        digest = _write_atomic(target, name, format_hex(codes, fmt))
        files[key] = {
            "name": name,
            "format": str(fmt),
            "values": int(np.asarray(codes).size),
            "hex_digits": -(-fmt.word_bits // 4),
            "order": order,
            "sha256": digest,
        }
    manifest = {
        "format_version": _FORMAT_VERSION,
        "design": {
            "kernel": r.kernel.name,
            "kernel_params": dict(r.kernel.params),
            "scale": list(r.scale),
            "taps": r.taps,
            "tap_offsets": [int(o) for o in r.kernel.offsets],
            "pass_order": r.pass_order,
            "border": "replicate",
            "accumulation": "acc = acc_fmt(acc + c[k] * p[k]) for k = 0 .. taps-1, then out = target_fmt(acc)",
            "phase_bits": r.phase_bits,
            "dda": {
                "frac_bits": r.dda_frac_bits,
                "phase_rounding": r.phase_rounding,
                "y": {"step": r.dda_y.step, "start": r.dda_y.start},
                "x": {"step": r.dda_x.step, "start": r.dda_x.start},
                "rule": "acc(n) = start + n * step; index = acc >> frac_bits; "
                "rom_row = (acc mod 2**frac_bits) >> (frac_bits - phase_bits)",
            },
            "unity_gain": bool(r.unity_gain),
            "formats": {
                "pixel": _format_entry(r.pixel_fmt),
                "coefficient": _format_entry(r.coeff_fmt),
                "accumulator": _format_entry(r.acc_fmt),
                "mid": _format_entry(r.mid_fmt),
                "output": _format_entry(r.out_fmt),
            },
        },
        "sizes": {
            "input": [h, w, channels],
            "mid": list(trace.mid.shape),
            "output": list(out.shape),
            "rom": list(r.coefficients.shape),
        },
        "files": files,
    }
    _write_atomic(target, MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_test_vectors(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a vector set back, checking every file's SHA-256 and value count.

    Returns
    -------
    dict of str to ndarray
        ``input``, ``coefficients``, ``mid``, ``output`` codes, shaped as the manifest says.

    Raises
    ------
    ValueError
        If the manifest is missing, a file is missing, or a digest or count differs.
    """
    target = Path(folder)
    path = target / MANIFEST_NAME
    if not path.is_file():
        raise ValueError(f"no {MANIFEST_NAME} in the folder; export the vectors first")
    manifest = json.loads(path.read_text())
    shapes = manifest["sizes"]
    shape_of = {
        "input": shapes["input"],
        "coefficients": shapes["rom"],
        "mid": shapes["mid"],
        "output": shapes["output"],
    }
    arrays = {}
    for key, entry in manifest["files"].items():
        data = (target / entry["name"]).read_bytes() if (target / entry["name"]).is_file() else None
        if data is None:
            raise ValueError(f"{entry['name']} is missing from the vector folder")
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise ValueError(
                f"{entry['name']} does not match its SHA-256 in the manifest; export again"
            )
        codes = parse_hex(data.decode("ascii"), QFormat.parse(entry["format"]))
        if codes.size != entry["values"]:
            raise ValueError(
                f"{entry['name']} holds {codes.size} values, the manifest says {entry['values']}"
            )
        arrays[key] = codes.reshape(shape_of[key])
    return arrays
