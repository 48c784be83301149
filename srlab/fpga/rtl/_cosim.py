"""Generate -> simulate -> compare: the Verilog against the bit-true model and the cycle model.

:func:`cosimulate` streams frames through the generated resizer under random valid/ready
back-pressure and reports every output pixel that differs from
:meth:`FixedPointResizer.run` and every handshake that lands on another clock than
:func:`srlab.fpga.cycle.simulate_cycles` predicts. :func:`check_filter_unit` drives one filter
unit alone with every input code at every tap and every phase it is used with.
:func:`verification_frames` makes the frames: random, extreme values, borders, ramps and
crops of the bundled photos.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from labcore.checks import check_int, check_type
from srlab.fixed import FixedArray, add, cast, multiply
from srlab.fpga.cycle import simulate_cycles
from srlab.fpga.datapath import FixedPointResizer
from srlab.fpga.rtl._design import RtlDesign, generate_verilog
from srlab.fpga.rtl._fixed_verilog import FilterSpec, filter_module
from srlab.fpga.rtl._simulate import installed_simulator, run_simulation
from srlab.imagecheck import check_frames
from srlab.images import available_images, load_image

__all__ = [
    "CosimReport",
    "check_filter_unit",
    "cosimulate",
    "filter_reference",
    "verification_frames",
]


def verification_frames(shape: tuple[int, ...], n: int = 160, seed: int = 0) -> np.ndarray:
    """``n`` uint8 frames of ``shape`` that exercise a datapath's corners.

    A quarter are uniform random; then extremes (all 0, all 255, checkerboards and stripes of
    0 and 255, a lone 255 or 0 at each corner and edge midpoint), border frames (a random ring
    around a constant inside), ramps, and the rest crops of the bundled photos (gray, or RGB
    when ``shape`` has three channels), at random places.

    Raises
    ------
    TypeError
        If ``shape`` is not a tuple of ints or ``n`` not an int.
    ValueError
        If ``shape`` has not 2 or 3 sides, or a side or ``n`` is below 1.

    Examples
    --------
    >>> f = verification_frames((6, 8), n=40)
    >>> f.shape, f.dtype, bool((f == 255).all(axis=(1, 2)).any())
    ((40, 6, 8), dtype('uint8'), True)
    """
    check_type(shape, tuple, "shape", expected="a tuple (H, W) or (H, W, C) of ints")
    if len(shape) not in (2, 3):
        raise ValueError(f"shape must be (H, W) or (H, W, C), got {shape!r}")
    h, w = (check_int(v, "shape's sides", minimum=1) for v in shape[:2])
    channels = check_int(shape[2], "shape's channels", minimum=1) if len(shape) == 3 else 1
    check_int(n, "n", minimum=1)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    frames: list[np.ndarray] = [rng.integers(0, 256, (h, w)) for _ in range(n // 4)]
    frames += [np.zeros((h, w)), np.full((h, w), 255)]
    frames += [
        255 * ((yy + xx) % 2),
        255 * (yy % 2),
        255 * (xx % 2),
        255 * ((yy // 2 + xx // 2) % 2),
    ]
    for y, x in [
        (0, 0),
        (0, w - 1),
        (h - 1, 0),
        (h - 1, w - 1),
        (0, w // 2),
        (h // 2, 0),
        (h - 1, w // 2),
        (h // 2, w - 1),
    ]:
        for background, spot in ((0, 255), (255, 0)):
            frame = np.full((h, w), background)
            frame[y, x] = spot
            frames.append(frame)
    for value in (0, 128, 255):
        ring = rng.integers(0, 256, (h, w))
        ring[1:-1, 1:-1] = value
        frames.append(ring)
    frames += [
        255 * xx // max(w - 1, 1),
        255 * yy // max(h - 1, 1),
        255 - 255 * (yy + xx) // max(h + w - 2, 1),
    ]
    photos = [load_image(name, gray=channels != 3) for name in available_images("photo")]
    while len(frames) < n:
        photo = photos[len(frames) % len(photos)]
        reps = (-(-h // photo.shape[0]) + 1, -(-w // photo.shape[1]) + 1) + (1,) * (photo.ndim - 2)
        if max(reps[:2]) > 2:  # a frame larger than the photo sees it tiled
            photo = np.tile(photo, reps)
        y0 = rng.integers(0, photo.shape[0] - h + 1)
        x0 = rng.integers(0, photo.shape[1] - w + 1)
        frames.append(photo[y0 : y0 + h, x0 : x0 + w])
    out = []
    for frame in frames[:n]:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8:
            frame = np.clip(frame, 0, 255).astype(np.uint8)
        if frame.ndim == 2 and channels > 1:
            frame = np.repeat(frame[..., None], channels, axis=2)
        out.append(frame.reshape(shape))
    return np.stack(out)


@dataclass(frozen=True, eq=False)
class CosimReport:
    """Outcome of :func:`cosimulate`.

    Attributes
    ----------
    design : RtlDesign
    simulator : str
    frames : int
    mismatches : pandas.DataFrame
        One row per differing output value: ``frame``, ``y``, ``x``, ``channel``,
        ``expected`` (the bit-true model), ``simulated``.
    cycle_mismatches : int
        Handshakes (inputs and outputs) on another clock than the cycle model's.
    clocks : int
        Clock of the last output pixel, plus one.
    """

    design: RtlDesign
    simulator: str
    frames: int
    mismatches: pd.DataFrame
    cycle_mismatches: int
    clocks: int

    @property
    def identical(self) -> bool:
        """Every pixel equal to the model's and every handshake on the predicted clock."""
        return self.mismatches.empty and self.cycle_mismatches == 0


def _differences(got: np.ndarray, expected: np.ndarray) -> pd.DataFrame:
    frame, y, x, channel = np.nonzero(got != expected)
    return pd.DataFrame(
        {
            "frame": frame,
            "y": y,
            "x": x,
            "channel": channel,
            "expected": expected[frame, y, x, channel],
            "simulated": got[frame, y, x, channel],
        }
    )


def cosimulate(
    resizer: FixedPointResizer,
    frames: np.ndarray,
    simulator: str = "icarus",
    seeds: tuple[int, int] = (1, 2),
    rates: tuple[float, float] = (0.7, 0.7),
    workdir: str | Path | None = None,
    reference: FixedPointResizer | None = None,
) -> CosimReport:
    """Generate the Verilog of ``resizer``, simulate it on ``frames``, compare pixel by pixel.

    Parameters
    ----------
    resizer : FixedPointResizer
        With ``pass_order="vh"`` (the generated order).
    frames : ndarray of uint8 ``(n, H, W)`` or ``(n, H, W, C)``
        All of one size (:func:`verification_frames` makes a set).
    simulator : str, default "icarus"
        A name of :func:`~srlab.fpga.rtl.available_simulators`.
    seeds, rates : pairs
        Back-pressure of the source and the sink (:func:`srlab.fpga.cycle.simulate_cycles`).
    workdir : path, optional
        Where the temporary simulation folder goes.
    reference : FixedPointResizer, optional
        The model the pixels are compared with; default ``resizer`` itself (e.g. its
        horizontal-first twin shows what the pass order changes).

    Returns
    -------
    CosimReport

    Raises
    ------
    RuntimeError
        The simulator is not installed, or fails.
    ValueError
        As :func:`generate_verilog`; frames that are not uint8 of one size.
    """
    frames = check_frames(frames)
    design = generate_verilog(resizer, frames.shape[1:])
    run = run_simulation(design, frames, simulator, seeds, rates, workdir)
    ho, wo, channels = design.output_shape
    model = resizer if reference is None else reference
    expected = np.stack([model.run(f) for f in frames]).reshape(len(frames), ho, wo, channels)
    flat = np.zeros((expected.size // channels, channels), dtype=np.uint8)
    flat[: len(run.outputs)] = run.outputs[: len(flat)]  # a short run leaves zeros: mismatches
    got = flat.reshape(expected.shape)
    mismatches = _differences(got, expected)
    trace = simulate_cycles(resizer, frames.shape[1:3], len(frames), seeds, rates)
    cycle_mismatches = _count_differences(run.input_cycles, trace.input_cycles)
    cycle_mismatches += _count_differences(run.output_cycles, trace.output_cycles)
    cycle_mismatches += int((run.last != trace.last[: len(run.last)]).sum())
    return CosimReport(
        design, simulator, len(frames), mismatches, cycle_mismatches, int(run.output_cycles[-1]) + 1
    )


def _count_differences(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    return int((a[:n] != b[:n]).sum()) + abs(len(a) - len(b))


def filter_reference(spec: FilterSpec, x: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """What the filter unit computes, with :mod:`srlab.fixed` (as the bit-true model does).

    ``x``: ``(n, taps)`` input codes; ``phase``: ``(n,)`` ROM rows of ``spec.rows``.
    """
    codes = np.array([spec.rows[int(p)] for p in phase], dtype=np.int64).reshape(len(phase), -1)
    source = FixedArray(np.asarray(x, dtype=np.int64), spec.input_format or spec.source)
    if spec.input_format is not None:
        source = cast(source, spec.source)
    acc = None
    for k in range(spec.taps):
        product = multiply(
            FixedArray(source.codes[:, k], spec.source), FixedArray(codes[:, k], spec.coeff)
        )
        acc = cast(product if acc is None else add(acc, product), spec.acc)
    return cast(acc, spec.target).codes


def check_filter_unit(
    spec: FilterSpec, simulator: str = "icarus", seed: int = 0, workdir: str | Path | None = None
) -> pd.DataFrame:
    """Drive one filter unit with every input code at every tap, for every phase it uses.

    For each phase and tap, every code of the input format takes that tap in turn while the
    other taps hold random codes. Returns the vectors whose simulated output differs from
    :func:`filter_reference` (empty when the unit is exact): ``phase``, ``x`` (the taps),
    ``expected``, ``simulated``; ``attrs["vectors"]`` counts the vectors driven.
    """
    check_type(spec, FilterSpec, "spec")
    run = installed_simulator(simulator).run
    fmt = spec.input_format or spec.source
    values = np.arange(fmt.min_code, fmt.max_code + 1, dtype=np.int64)
    rng = np.random.default_rng(seed)
    xs, phases = [], []
    for row in spec.rows:
        for k in range(spec.taps):
            x = rng.integers(fmt.min_code, fmt.max_code + 1, (len(values), spec.taps))
            x[:, k] = values
            xs.append(x)
            phases.append(np.full(len(values), row))
    x, phase = np.concatenate(xs), np.concatenate(phases)
    expected = filter_reference(spec, x, phase)
    simulated = _simulate_filter(spec, x, phase, run, workdir)
    bad = np.flatnonzero(simulated != expected)
    out = pd.DataFrame(
        {
            "phase": phase[bad],
            "x": list(x[bad]),
            "expected": expected[bad],
            "simulated": simulated[bad],
        }
    )
    out.attrs["vectors"] = len(x)
    return out


def _simulate_filter(
    spec: FilterSpec,
    x: np.ndarray,
    phase: np.ndarray,
    run: Callable[[Path, list[Path], str], str],
    workdir: str | Path | None,
) -> np.ndarray:
    iw, pb = spec.input_width, spec.phase_bits
    bits = pb + spec.taps * iw
    words = phase.astype(object) << (spec.taps * iw)
    for k in range(spec.taps):
        words = words | ((x[:, k].astype(object) & ((1 << iw) - 1)) << (k * iw))
    bench = f"""`timescale 1ns/1ps
module tbf;
    reg [{pb - 1}:0] phase;
    reg [{spec.taps * iw - 1}:0] x;
    wire signed [{spec.output_width - 1}:0] y;
    {spec.name} dut (.phase(phase), .x(x), .y(y));
    reg [{bits - 1}:0] vectors [0:{len(x) - 1}];
    integer i, fd;
    initial begin
        $readmemh("vectors.hex", vectors);
        fd = $fopen("y.txt", "w");
        for (i = 0; i < {len(x)}; i = i + 1) begin
            {{phase, x}} = vectors[i];
            #1 $fwrite(fd, "%0d\\n", y);
        end
        $fclose(fd);
        $finish;
    end
endmodule
"""
    digits = -(-bits // 4)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        folder = Path(tmp)
        (folder / "vectors.hex").write_text("".join(f"{int(v):0{digits}x}\n" for v in words))
        (folder / "filter.v").write_text(filter_module(spec))
        (folder / "tbf.v").write_text(bench)
        run(folder, [folder / "tbf.v", folder / "filter.v"], "tbf")
        values = (folder / "y.txt").read_text().split()
    unknown = [i for i, v in enumerate(values) if not v.lstrip("-").isdigit()]
    if unknown:
        i = unknown[0]
        raise RuntimeError(
            f"filter unit {spec.name} produced unknown (X/Z) bits {values[i]!r} for vector {i} "
            f"(phase {phase[i]}, taps {x[i].tolist()})"
        )
    return np.array(values, dtype=np.int64)
