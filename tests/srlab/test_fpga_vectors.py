"""Test-vector export: hex files and manifest, read back bit for bit."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from srlab.fixed import QFormat
from srlab.fpga import FixedPointResizer, export_test_vectors, read_test_vectors
from srlab.fpga.vectors import format_hex, parse_hex


def test_hex_round_trip_and_twos_complement():
    fmt = QFormat(12, 2)
    codes = np.array([fmt.min_code, -1, 0, 1, fmt.max_code])
    text = format_hex(codes, fmt)
    assert text.splitlines() == ["800", "fff", "000", "001", "7ff"]
    assert np.array_equal(parse_hex(text, fmt), codes)
    assert format_hex(np.array([255, 0]), QFormat(8, 8, signed=False)) == "ff\n00\n"
    with pytest.raises(ValueError, match="does not fit 12 bits"):
        parse_hex("1000\n", fmt)
    with pytest.raises(ValueError, match="is not a hex number"):
        parse_hex("xyz\n", fmt)


@pytest.mark.parametrize(("kernel", "shape"), [("bicubic", (6, 7, 3)), ("shift_add_2x", (5, 4))])
def test_export_writes_vectors_that_read_back_as_the_trace(tmp_path, kernel, shape):
    r = FixedPointResizer(kernel, 2)
    image = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    folder = tmp_path / "vectors"
    manifest = export_test_vectors(folder, r, image)
    trace = r.trace(image)
    arrays = read_test_vectors(folder)
    assert np.array_equal(arrays["input"], trace.pixels.codes)
    assert np.array_equal(arrays["mid"], trace.mid.codes)
    assert np.array_equal(arrays["output"].astype(np.uint8).reshape(trace.output.shape), trace.output)
    assert np.array_equal(arrays["coefficients"], r.coefficients)
    on_disk = json.loads((folder / "manifest.json").read_text())
    assert on_disk == manifest
    for entry in manifest["files"].values():
        data = (folder / entry["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data.splitlines()) == entry["values"]
    text = json.dumps(manifest)
    assert str(tmp_path) not in text and '"/' not in text  # names only, no paths
    assert manifest["design"]["dda"]["x"] == {"step": r.dda_x.step, "start": r.dda_x.start}
    assert manifest["design"]["formats"]["coefficient"]["hls"] == "ap_fixed<12,2,RND,SAT>"
    assert sorted(p.name for p in folder.iterdir()) == ["coefficients.hex", "input.hex", "manifest.json", "mid.hex", "output.hex"]


def test_corrupted_vectors_are_detected(tmp_path):
    export_test_vectors(tmp_path, FixedPointResizer("bilinear", 2), np.zeros((4, 4), np.uint8))
    (tmp_path / "output.hex").write_text("00\n")
    with pytest.raises(ValueError, match="output.hex does not match its SHA-256"):
        read_test_vectors(tmp_path)
    (tmp_path / "mid.hex").unlink()
    with pytest.raises(ValueError, match="mid.hex is missing"):
        read_test_vectors(tmp_path)
    with pytest.raises(ValueError, match="no manifest.json"):
        read_test_vectors(tmp_path / "elsewhere")


def test_export_bad_input(tmp_path):
    r = FixedPointResizer("bicubic", 2)
    with pytest.raises(ValueError, match="resizer must be a FixedPointResizer"):
        export_test_vectors(tmp_path, "bicubic", np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="image dtype float64 is not supported"):
        export_test_vectors(tmp_path, r, np.zeros((8, 8)))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        export_test_vectors(tmp_path / "file", r, np.zeros((8, 8), np.uint8))
    assert not (tmp_path / "manifest.json").exists()
