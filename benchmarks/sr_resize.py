"""Resize speed: srlab.resize against OpenCV and Pillow, one CPU core each.

960x540 -> 1920x1080 uint8 RGB, bicubic and bilinear, medians of several calls measured in
the same process. OpenCV runs with ``cv2.setNumThreads(1)`` (srlab's integer-factor path
calls OpenCV's separable filter, so this holds for srlab too) and BLAS (srlab's general
path) with one thread, so the ratios compare one core with one core. The three libraries
are timed in turns, call after call, so that a change in the load of a shared machine
falls on all of them alike and the ratios hold on every run, not on a lucky one.

Pillow is timed on ``Image.resize`` of an already built image (its array conversions are
extra) and also through ``srlab.peers.pillow_resize`` (array in, array out, like srlab).
srlab's per-geometry tables are cached, so repeated calls (the medians) do not rebuild
them; the first call's time (``srlab.resize.cache_clear()`` before it) is printed too.
Target (issue #8): srlab at most 0.8x Pillow's time and within 8x of OpenCV's.

Run: ``python benchmarks/sr_resize.py`` (``--repeats N`` to change the number of calls).
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

IN_SIZE = (540, 960)  # (height, width)
OUT_SIZE = (1080, 1920)
#: Targets: faster than Pillow with margin on every run, and within 8x of OpenCV's SIMD code.
MAX_OF_PILLOW, MAX_OF_OPENCV = 0.8, 8.0
CASES = [
    ("bicubic", {"a": -0.75}, cv2.INTER_CUBIC, Image.BICUBIC),
    ("bilinear", {}, cv2.INTER_LINEAR, Image.BILINEAR),
]


def median_ms_in_turns(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time of each function in milliseconds, the functions called in turns."""
    for fn in fns.values():
        fn()  # warm-up: caches, lazy imports, first-touch of buffers
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(values) for name, values in times.items()}


def first_call_ms(fn: Callable[[], object]) -> float:
    """Time of a call with srlab's table caches emptied."""
    srlab.resize.cache_clear()
    start = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=25)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    image = np.random.default_rng(0).integers(0, 256, IN_SIZE + (3,), dtype=np.uint8)
    pil_image = Image.fromarray(image)
    print(
        f"{IN_SIZE[1]}x{IN_SIZE[0]} -> {OUT_SIZE[1]}x{OUT_SIZE[0]} uint8 RGB, one core, "
        f"median of {args.repeats} calls in turns"
    )
    print(
        f"{'kernel':9s} {'srlab ms':>9s} {'first ms':>9s} {'OpenCV ms':>10s} {'Pillow ms':>10s} "
        f"{'srlab/OpenCV':>13s} {'srlab/Pillow':>13s} {'srlab/Pillow(arrays)':>21s}"
    )
    verdicts = []
    for name, params, cv_flag, pil_flag in CASES:

        def run_srlab(name: str = name, params: dict = params) -> np.ndarray:
            return srlab.resize(image, size=OUT_SIZE, kernel=name, **params)

        first = first_call_ms(run_srlab)
        ms = median_ms_in_turns(
            {
                "srlab": run_srlab,
                "opencv": lambda flag=cv_flag: cv2.resize(
                    image, OUT_SIZE[::-1], interpolation=flag
                ),
                "pillow": lambda flag=pil_flag: pil_image.resize(OUT_SIZE[::-1], flag),
                "pillow_arrays": lambda name=name: peers.pillow_resize(image, OUT_SIZE, name),
            },
            args.repeats,
        )
        ours = ms["srlab"]
        print(
            f"{name:9s} {ours:9.2f} {first:9.2f} {ms['opencv']:10.2f} {ms['pillow']:10.2f} "
            f"{ours / ms['opencv']:13.2f} {ours / ms['pillow']:13.2f} {ours / ms['pillow_arrays']:21.2f}"
        )
        verdicts.append(
            f"{name}: srlab/Pillow {ours / ms['pillow']:.2f} <= {MAX_OF_PILLOW} "
            f"{'met' if ours / ms['pillow'] <= MAX_OF_PILLOW else 'MISSED'}, "
            f"srlab/OpenCV {ours / ms['opencv']:.2f} <= {MAX_OF_OPENCV} "
            f"{'met' if ours / ms['opencv'] <= MAX_OF_OPENCV else 'MISSED'}"
        )
    print("targets:", "; ".join(verdicts))


if __name__ == "__main__":
    main()
