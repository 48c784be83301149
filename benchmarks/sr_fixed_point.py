"""Fixed-point resize speed: srlab.fpga against srlab's float resize and against apytypes.

960x540 -> 1920x1080 bicubic (Keys a = -0.5), uint8 RGB, one CPU core, the default design
of ``FixedPointResizer`` (8-bit pixels, 12-bit weights, 24-bit accumulator, 12-bit
line-buffer words, RND/SAT output). Three runs of the same image, in the same process:

* **float**: ``srlab.resize`` (float32 BLAS), the reference the fixed-point design is
  compared with in quality;
* **fixed**: ``FixedPointResizer.run`` (bit-true; this design takes the exact float BLAS
  path), and the same run forced onto the tap-by-tap int64 path that narrower
  accumulators take;
* **apytypes**: the same two passes written with ``apytypes.APyFixedArray`` arithmetic:
  per tap, the pixels the tap reads (gathered with NumPy, as apytypes arrays have no
  integer-array indexing) times the weight of each output, ``acc = (acc + product)``
  cast into the accumulator format, then casts into the line-buffer and output formats.
  It is checked to give the same bits as ``FixedPointResizer`` on a small image first.

Targets: fixed / float <= 3, apytypes / fixed >= 10. The ratios are printed as measured.

Run: ``python benchmarks/sr_fixed_point.py`` (``--repeats N``, ``--apytypes-repeats N``).
"""

from __future__ import annotations

import os

# One thread for BLAS and for apytypes' pool must be set before they load.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "APYTYPES_THREAD_COUNT"):
    os.environ[_var] = "1"

import argparse
import statistics
import time
from collections.abc import Callable

import apytypes as apy
import numpy as np

import srlab
from srlab.fixed import QFormat
from srlab.fpga import FixedPointResizer

IN_SIZE = (540, 960)
SCALE = 2

# srlab.fixed rounding and overflow modes -> apytypes (HLS names in the apytypes docs).
_QUANTIZATION = {
    "trn": apy.QuantizationMode.TO_NEG,
    "trn_zero": apy.QuantizationMode.TO_ZERO,
    "rnd": apy.QuantizationMode.TIES_POS,
    "rnd_zero": apy.QuantizationMode.TIES_ZERO,
    "rnd_inf": apy.QuantizationMode.TIES_AWAY,
    "rnd_min_inf": apy.QuantizationMode.TIES_NEG,
    "rnd_conv": apy.QuantizationMode.TIES_EVEN,
}
_OVERFLOW = {"wrap": apy.OverflowMode.WRAP, "sat": apy.OverflowMode.SAT}


def _signed(fmt: QFormat) -> tuple[int, int]:
    """apytypes arrays are two's complement: an unsigned format needs one more integer bit."""
    return fmt.int_bits + (not fmt.signed), fmt.frac_bits


def _apy(codes: np.ndarray, fmt: QFormat) -> apy.APyFixedArray:
    int_bits, frac_bits = _signed(fmt)
    return apy.APyFixedArray(
        np.ascontiguousarray(codes, dtype=np.int64), int_bits=int_bits, frac_bits=frac_bits
    )


def _cast(x: apy.APyFixedArray, fmt: QFormat) -> apy.APyFixedArray:
    int_bits, frac_bits = _signed(fmt)
    if fmt.overflow not in _OVERFLOW:
        raise ValueError(f"apytypes has no {fmt.overflow!r} overflow mode")
    return x.cast(
        int_bits=int_bits,
        frac_bits=frac_bits,
        quantization=_QUANTIZATION[fmt.rounding],
        overflow=_OVERFLOW[fmt.overflow],
    )


def _codes(x: apy.APyFixedArray, fmt: QFormat) -> np.ndarray:
    """Two's-complement bit patterns -> int64 codes of ``fmt``."""
    bits = x.to_bits(numpy=True).astype(np.int64)
    width = x.bits
    return np.where(bits >> (width - 1) & 1, bits - (1 << width), bits)


def _cast_codes(x: apy.APyFixedArray, fmt: QFormat) -> np.ndarray:
    """Cast into ``fmt`` and return its codes. apytypes saturates two's-complement ranges
    only, so an unsigned saturating target is cast with one more integer bit (rounding
    and the upper clamp happen there) and its negative codes are clamped to 0 in NumPy."""
    if fmt.signed or fmt.overflow != "sat":
        return _codes(_cast(x, fmt), fmt)
    wider = QFormat(fmt.word_bits + 1, fmt.int_bits + 1, True, fmt.rounding, "sat")
    return np.clip(_codes(_cast(x, wider), wider), 0, fmt.max_code)


def _apytypes_pass(
    r: FixedPointResizer, codes: np.ndarray, fmt: QFormat, axis: str, target: QFormat
) -> np.ndarray:
    n_in = codes.shape[0 if axis == "y" else 1]
    idx, _, coef = r.tap_table(axis, n_in)
    shape = (len(idx), 1, 1) if axis == "y" else (1, len(idx), 1)
    acc = None
    for k in range(r.taps):
        pixels = _apy(np.take(codes, idx[:, k], axis=0 if axis == "y" else 1), fmt)
        product = pixels * _apy(coef[:, k].reshape(shape), r.coeff_fmt)
        acc = _cast(product if acc is None else acc + product, r.acc_fmt)
    return _cast_codes(acc, target)


def apytypes_resize(r: FixedPointResizer, image: np.ndarray) -> np.ndarray:
    """The two passes of ``r`` in apytypes arithmetic; uint8 out, shaped like ``r.run``."""
    h, w = image.shape[:2]
    codes = (
        image.reshape(h, w, -1).astype(np.int64) << r.pixel_fmt.frac_bits
    )  # exact for ap_ufixed<8+F,8>
    mid = _apytypes_pass(r, codes, r.pixel_fmt, "x", r.mid_fmt)
    out = _apytypes_pass(r, mid, r.mid_fmt, "y", r.out_fmt)
    return out.astype(np.uint8).reshape(out.shape[:2] + image.shape[2:])


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--apytypes-repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    resizer = FixedPointResizer("bicubic", SCALE)

    small = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    same = np.array_equal(apytypes_resize(resizer, small), resizer.run(small))
    print(f"apytypes threads: {apy.n_threads()}")
    print(f"apytypes version gives the same bits as FixedPointResizer on a 31x23 RGB image: {same}")
    if not same:
        raise SystemExit(
            "the apytypes datapath differs from FixedPointResizer; ratios would be meaningless"
        )

    image = rng.integers(0, 256, IN_SIZE + (3,), dtype=np.uint8)
    h_out, w_out = resizer.output_shape(image.shape)[:2]
    print(
        f"{IN_SIZE[1]}x{IN_SIZE[0]} -> {w_out}x{h_out} bicubic uint8 RGB, one core; design: "
        f"coeff {resizer.coeff_fmt}, acc {resizer.acc_fmt}, mid {resizer.mid_fmt}, out {resizer.out_fmt}"
    )
    float_ms = median_ms(lambda: srlab.resize(image, scale=SCALE, kernel="bicubic"), args.repeats)
    fixed_ms = median_ms(lambda: resizer.run(image), args.repeats)
    taps_ms = median_ms(lambda: resizer.run(image, path="taps"), args.apytypes_repeats)
    apy_ms = median_ms(lambda: apytypes_resize(resizer, image), args.apytypes_repeats)
    print(
        f"{'float ms':>9s} {'fixed ms':>9s} {'apytypes ms':>12s} {'fixed/float':>12s} {'apytypes/fixed':>15s}"
    )
    print(
        f"{float_ms:9.1f} {fixed_ms:9.1f} {apy_ms:12.1f} {fixed_ms / float_ms:12.2f} {apy_ms / fixed_ms:15.1f}"
    )
    print(
        f"tap-by-tap path (taken when the accumulator rounds products or saturates partial sums): "
        f"{taps_ms:.1f} ms = {taps_ms / float_ms:.1f} x float, apytypes is {apy_ms / taps_ms:.1f} x slower"
    )
    print(
        f"targets: fixed/float <= 3 ({'met' if fixed_ms / float_ms <= 3 else 'missed'}), "
        f"apytypes/fixed >= 10 ({'met' if apy_ms / fixed_ms >= 10 else 'missed'})"
    )


if __name__ == "__main__":
    main()
