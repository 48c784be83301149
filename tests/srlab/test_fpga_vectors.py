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


def read_hex(path, bits: int, signed: bool) -> np.ndarray:
    """One two's-complement value per line in ceil(bits / 4) hex digits, parsed here."""
    lines = path.read_text().split("\n")
    assert lines[-1] == "" and all(len(line) == -(-bits // 4) for line in lines[:-1])
    values = np.array([int(line, 16) for line in lines[:-1]], dtype=np.int64)
    return np.where(values >= 1 << (bits - 1), values - (1 << bits), values) if signed else values


# ROM rows at 6 phase bits and 10 weight fraction bits: row 32 is phase 1/2, row 16 phase 1/4.
# Keys a = -0.5: [-1, 9, 9, -1] / 16 -> codes [-64, 576, 576, -64] -> 12-bit hex fc0 240 240 fc0;
# [-9, 111, 29, -3] / 128 -> [-72, 888, 232, -24] -> fb8 378 0e8 fe8. Phase 0 is [0, 1, 0, 0].
ROM_ROWS = {
    0: ["000", "400", "000", "000"],
    16: ["fb8", "378", "0e8", "fe8"],
    32: ["fc0", "240", "240", "fc0"],
}


@pytest.mark.parametrize(("kernel", "shape"), [("bicubic", (6, 7, 3)), ("shift_add_2x", (5, 4))])
def test_exported_files_hold_the_trace(tmp_path, kernel, shape):
    r = FixedPointResizer(kernel, 2)  # pixels 8-bit unsigned, weights and mid words 12-bit signed
    image = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    folder = tmp_path / "vectors"
    manifest = export_test_vectors(folder, r, image)
    trace = r.trace(image)
    # Raster order (row, column, channel), parsed without srlab's reader.
    assert np.array_equal(read_hex(folder / "input.hex", 8, signed=False), image.ravel())
    assert np.array_equal(read_hex(folder / "mid.hex", 12, signed=True), trace.mid.codes.ravel())
    assert np.array_equal(read_hex(folder / "output.hex", 8, signed=False), r.run(image).ravel())
    coefficients = read_hex(folder / "coefficients.hex", 12, signed=True)
    assert np.array_equal(coefficients, r.coefficients.ravel()) and coefficients.size == 64 * 4
    rom_text = (folder / "coefficients.hex").read_text().split()
    for row, words in ROM_ROWS.items():
        assert rom_text[4 * row : 4 * row + 4] == words
    # srlab's own reader agrees with the independent parse.
    arrays = read_test_vectors(folder)
    assert np.array_equal(arrays["output"].ravel(), r.run(image).ravel())
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
    # Scale 2 with 16 fraction bits: step 1/2 = 32768; start (32768 - 65536) / 2 = -16384, plus
    # half a phase step 2**(16 - 6 - 1) = 512 for nearest-phase rounding.
    assert manifest["design"]["dda"]["y"] == {"step": 32768, "start": -16384 + 512}
    assert manifest["design"]["formats"]["coefficient"]["hls"] == "ap_fixed<12,2,RND,SAT>"
    assert sorted(p.name for p in folder.iterdir()) == [
        "coefficients.hex",
        "input.hex",
        "manifest.json",
        "mid.hex",
        "output.hex",
    ]


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
    with pytest.raises(TypeError, match="resizer must be a FixedPointResizer, got str"):
        export_test_vectors(tmp_path, "bicubic", np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="image dtype float64 is not supported"):
        export_test_vectors(tmp_path, r, np.zeros((8, 8)))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        export_test_vectors(tmp_path / "file", r, np.zeros((8, 8), np.uint8))
    assert not (tmp_path / "manifest.json").exists()
