"""Resize speed: srlab.resize against OpenCV and Pillow, one CPU core each.

960x540 -> 1920x1080 uint8 RGB, median of several runs, measured in the same process.
OpenCV runs with ``cv2.setNumThreads(1)`` and BLAS (which srlab's passes use) with one
thread, so the ratios compare one core with one core. Pillow is timed on ``Image.resize``
of an already built image (its array conversions are extra) and also through
``srlab.peers.pillow_resize`` (array in, array out, like srlab). srlab's per-geometry
weight tables are cached, so repeated calls (the median) do not rebuild them; the first
call's time is printed too.

Run: ``python benchmarks/sr_resize.py`` (``--repeats N`` to change the number of runs).
"""

from __future__ import annotations

import os

# One thread for BLAS must be set before NumPy loads it.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import srlab  # noqa: E402
from srlab import peers  # noqa: E402
from srlab._resize import _axis_plan  # noqa: E402

IN_SIZE = (540, 960)  # (height, width)
OUT_SIZE = (1080, 1920)
CASES = [("bicubic", {"a": -0.75}, cv2.INTER_CUBIC, Image.BICUBIC), ("bilinear", {}, cv2.INTER_LINEAR, Image.BILINEAR)]


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def first_call_ms(fn: Callable[[], object]) -> float:
    """Time of a call with srlab's table cache emptied."""
    _axis_plan.cache_clear()
    start = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    image = np.random.default_rng(0).integers(0, 256, IN_SIZE + (3,), dtype=np.uint8)
    pil_image = Image.fromarray(image)
    print(f"{IN_SIZE[1]}x{IN_SIZE[0]} -> {OUT_SIZE[1]}x{OUT_SIZE[0]} uint8 RGB, one core, median of {args.repeats}")
    print(f"{'kernel':9s} {'srlab ms':>9s} {'first ms':>9s} {'OpenCV ms':>10s} {'Pillow ms':>10s} "
          f"{'srlab/OpenCV':>13s} {'srlab/Pillow':>13s} {'srlab/Pillow(arrays)':>21s}")
    for name, params, cv_flag, pil_flag in CASES:
        ours = median_ms(lambda: srlab.resize(image, size=OUT_SIZE, kernel=name, **params), args.repeats)
        first = first_call_ms(lambda: srlab.resize(image, size=OUT_SIZE, kernel=name, **params))
        opencv = median_ms(lambda: cv2.resize(image, OUT_SIZE[::-1], interpolation=cv_flag), args.repeats)
        pillow = median_ms(lambda: pil_image.resize(OUT_SIZE[::-1], pil_flag), args.repeats)
        pillow_arrays = median_ms(lambda: peers.pillow_resize(image, OUT_SIZE, name), args.repeats)
        print(f"{name:9s} {ours:9.2f} {first:9.2f} {opencv:10.2f} {pillow:10.2f} "
              f"{ours / opencv:13.2f} {ours / pillow:13.2f} {ours / pillow_arrays:21.2f}")


if __name__ == "__main__":
    main()
