"""Word-length sweep: fraction bits -> quality against the float resize and hardware cost.

:func:`word_length_sweep` runs one :class:`~srlab.fpga.datapath.FixedPointResizer` per
(kernel, coefficient fraction bits, accumulator fraction bits), built with
:meth:`FixedPointResizer.from_fraction_bits`, on every image, and scores it against the
float resize of the same kernel. :func:`pareto_front` keeps the designs that no other
design beats on both cost and quality.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from labcore.atomic import atomic_path
from labcore.checks import check_type
from labcore.pareto import non_dominated
from srlab._resize import resize
from srlab.fpga._checks import check_designs
from srlab.fpga.cost import estimate_cost
from srlab.fpga.datapath import FixedPointResizer
from srlab.imagecheck import check_image
from srlab.images import load_image
from srlab.kernels import Kernel, get_kernel
from srlab.metrics import psnr

__all__ = ["KEY_COLUMNS", "design_quality", "float_reference", "pareto_front", "word_length_sweep"]

Better = Literal["min", "max"]

KEY_COLUMNS = (
    "image",
    "kernel",
    "scale",
    "coeff_frac_bits",
    "acc_frac_bits",
    "mid_frac_bits",
    "phase_bits",
)
"""Columns that identify one configuration of the sweep (finished rows are skipped by them)."""


def float_reference(
    image: np.ndarray, scale: float | tuple[float, float], kernel: str | Kernel
) -> np.ndarray:
    """The float resize a fixed-point design is scored against: float64, clipped to [0, 255].

    The uint8 image is resized as float64 (no rounding to 8 bits), so even a perfect
    fixed-point design scores the 8-bit output rounding, about 59 dB, not infinity.

    Parameters
    ----------
    image : (H, W) or (H, W, C) ndarray of uint8
    scale : float or (sy, sx)
    kernel : str or Kernel

    Returns
    -------
    ndarray of float64

    Examples
    --------
    >>> float(float_reference(np.full((4, 4), 9, np.uint8), 2, "bicubic").max())
    9.0
    """
    # The datapath applies the kernel's weights at the phase its accumulator steps to (1 / scale
    # per output pixel); the peers' index rule of ``nearest`` is not part of the hardware model.
    phase_kernel = dataclasses.replace(get_kernel(kernel), rule=None)
    return np.clip(
        resize(np.asarray(image, dtype=np.float64), scale=scale, kernel=phase_kernel), 0.0, 255.0
    )


def design_quality(
    image: np.ndarray, designs: Mapping[str, FixedPointResizer]
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Run several designs on one image and score each against its float resize.

    Parameters
    ----------
    image : (H, W) or (H, W, C) ndarray of uint8
    designs : mapping of str to FixedPointResizer
        Label -> design; each is scored against :func:`float_reference` of its own
        kernel and scale.

    Returns
    -------
    table : pandas.DataFrame
        Index ``design``: ``coeff_fmt``, ``acc_fmt``, ``mid_fmt``, ``out_fmt``,
        ``phase_bits``, ``psnr`` (dB), ``max_abs_error`` (grey levels) and
        ``changed_pixels`` (fraction of output values that differ from the rounded float
        resize).
    outputs : dict of str to ndarray
        Each design's uint8 output.

    Raises
    ------
    TypeError
        If a design is not a FixedPointResizer.
    ValueError
        If there is no design, or as :meth:`FixedPointResizer.run` for a bad image.

    Examples
    --------
    >>> img = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    >>> table, _ = design_quality(img, {"default": FixedPointResizer("bicubic", 2)})
    >>> round(float(table.loc["default", "psnr"]), 1)
    58.6
    """
    rows, outputs = [], {}
    for label, design in check_designs(designs, FixedPointResizer).items():
        output = design.run(image)
        reference = float_reference(image, design.scale, design.kernel)
        rounded = np.floor(reference + 0.5)
        outputs[label] = output
        rows.append(
            {
                "design": label,
                "coeff_fmt": str(design.coeff_fmt),
                "acc_fmt": str(design.acc_fmt),
                "mid_fmt": str(design.mid_fmt),
                "out_fmt": str(design.out_fmt),
                "phase_bits": design.phase_bits,
                "psnr": psnr(reference, output.astype(np.float64), data_range=255.0),
                "max_abs_error": float(np.abs(output - reference).max()),
                "changed_pixels": float(np.mean(output != rounded)),
            }
        )
    return pd.DataFrame(rows).set_index("design"), outputs


def _images(images: Mapping[str, np.ndarray] | Sequence[str]) -> dict[str, np.ndarray]:
    if isinstance(images, Mapping):
        items = dict(images)
    elif isinstance(images, (str, bytes)):
        raise TypeError(
            f"images must be a list of names or a {{name: image}} mapping, got the string {images!r}"
        )
    else:
        items = {name: load_image(name) for name in images}
    if not items:
        raise ValueError("images is empty; give at least one image name or {name: uint8 image}")
    # The designs check each image's size; here every image is refused up front if not uint8.
    return {
        name: check_image(image, dtypes=("uint8",), channels=None, name=f"image {name!r}")
        for name, image in items.items()
    }


def _bit_list(name: str, values: Sequence[int]) -> list[int]:
    values = list(values)
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in values):
        raise TypeError(f"{name} must be a non-empty list of integers, got {values!r}")
    if not values:
        raise ValueError(f"{name} must be a non-empty list of integers, got {values!r}")
    return [int(v) for v in values]


def _key(row: Mapping) -> tuple:
    return tuple(str(row[c]) if c in ("image", "kernel") else float(row[c]) for c in KEY_COLUMNS)


def word_length_sweep(
    images: Mapping[str, np.ndarray] | Sequence[str],
    kernels: Sequence[str | Kernel] = ("bicubic",),
    scale: float = 2.0,
    coeff_frac_bits: Sequence[int] = (3, 4, 6, 8, 10),
    acc_frac_bits: Sequence[int] = (0, 2, 4, 8),
    *,
    mid_frac_bits: Sequence[int] | None = None,
    phase_bits: int = 6,
    cost_shape: tuple[int, ...] = (540, 960, 3),
    path: str | os.PathLike | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """PSNR against the float resize and estimated cost for every word-length choice.

    Parameters
    ----------
    images : sequence of str or mapping of str to ndarray
        Names for :func:`srlab.images.load_image` (charts and photos) or uint8 images.
    kernels : sequence of str or Kernel, default ("bicubic",)
        Kernels to build designs for.
    scale : float, default 2.0
        Resize factor of every design.
    coeff_frac_bits, acc_frac_bits : sequence of int
        Fraction bits of the weights and of the accumulator, see
        :meth:`FixedPointResizer.from_fraction_bits` (the accumulator truncates each
        product that has more, TRN).
    mid_frac_bits : sequence of int, optional
        Fraction bits of the line-buffer words (rounded once, RND); default: as many as
        the accumulator, one design per (coefficient, accumulator) pair.
    phase_bits : int, default 6
        Weight ROM rows ``2**phase_bits``.
    cost_shape : tuple, default (540, 960, 3)
        Frame size for :func:`srlab.fpga.cost.estimate_cost`.
    path : str or PathLike, optional
        CSV file that receives one row per finished configuration (written atomically
        after each); rows already in it are not run again, so an interrupted sweep
        resumes where it stopped.
    progress : bool, default True
        Show a tqdm progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per (image, kernel, coefficient, accumulator and line-buffer bits): the keys of
        :data:`KEY_COLUMNS`, the formats, ``psnr`` (dB, against :func:`float_reference`),
        ``max_abs_error`` (grey levels), and the cost estimate's ``dsp_slices``,
        ``adders``, ``flip_flops``, ``line_buffer_bits``, ``rom_bits``, ``storage_bits``.

    Raises
    ------
    TypeError
        For ``images`` given as one string, or bit counts that are not integers.
    ValueError
        For an empty list, an unknown image or kernel, an image that is not uint8, or a
        design the resizer rejects.

    Examples
    --------
    >>> img = np.random.default_rng(0).integers(0, 256, (12, 12), dtype=np.uint8)
    >>> df = word_length_sweep({"noise": img}, coeff_frac_bits=[4, 10], acc_frac_bits=[4], progress=False)
    >>> df[["coeff_frac_bits", "psnr"]].round(1).values.tolist()
    [[4.0, 31.5], [10.0, 56.9]]
    """
    items = _images(images)
    built = [get_kernel(k) for k in kernels]
    if not built:
        raise ValueError("kernels is empty; give at least one kernel name")
    coeff_bits = _bit_list("coeff_frac_bits", coeff_frac_bits)
    acc_bits = _bit_list("acc_frac_bits", acc_frac_bits)
    mid_bits = None if mid_frac_bits is None else _bit_list("mid_frac_bits", mid_frac_bits)
    target = Path(path) if path is not None else None
    done = pd.read_csv(target) if target is not None and target.exists() else pd.DataFrame()
    finished = {_key(row) for row in done.to_dict("records")} if len(done) else set()
    rows = done.to_dict("records") if len(done) else []
    references = {
        (name, k.name, i): float_reference(image, scale, k)
        for i, k in enumerate(built)
        for name, image in items.items()
    }

    configs = [
        (i, k, c, a, m)
        for i, k in enumerate(built)
        for c in coeff_bits
        for a in acc_bits
        for m in (mid_bits if mid_bits is not None else [a])
    ]
    with tqdm(
        total=len(configs) * len(items), desc="word-length sweep", disable=not progress
    ) as bar:
        for i, k, c, a, m in configs:
            todo = [
                n for n in items if _key(_row_key(n, k, scale, c, a, m, phase_bits)) not in finished
            ]
            if not todo:
                bar.update(len(items))
                continue
            design = FixedPointResizer.from_fraction_bits(
                k, scale, c, a, mid_frac_bits=m, phase_bits=phase_bits
            )
            cost = estimate_cost(design, cost_shape)
            for name in todo:
                output = design.run(items[name])
                reference = references[(name, k.name, i)]
                rows.append(
                    _row_key(name, k, scale, c, a, m, phase_bits)
                    | {
                        "coeff_fmt": str(design.coeff_fmt),
                        "acc_fmt": str(design.acc_fmt),
                        "mid_fmt": str(design.mid_fmt),
                        "psnr": psnr(reference, output.astype(np.float64), data_range=255.0),
                        "max_abs_error": float(np.abs(output - reference).max()),
                        "dsp_slices": cost.dsp_slices,
                        "adders": cost.adders,
                        "flip_flops": cost.flip_flops,
                        "line_buffer_bits": cost.line_buffer_bits,
                        "rom_bits": cost.rom_bits,
                        "storage_bits": cost.storage_bits,
                    }
                )
                if target is not None:
                    with atomic_path(target) as tmp:
                        pd.DataFrame(rows).to_csv(tmp, index=False)
                bar.update(1)
            bar.update(len(items) - len(todo))
    return pd.DataFrame(rows)


def _row_key(
    image: str, kernel: Kernel, scale: float, coeff: int, acc: int, mid: int, phase_bits: int
) -> dict:
    return {
        "image": image,
        "kernel": kernel.name,
        "scale": float(scale),
        "coeff_frac_bits": coeff,
        "acc_frac_bits": acc,
        "mid_frac_bits": mid,
        "phase_bits": phase_bits,
    }


def pareto_front(
    df: pd.DataFrame, x: str, y: str, *, x_better: Better = "min", y_better: Better = "max"
) -> pd.DataFrame:
    """Rows that no other row dominates on ``x`` and ``y``, sorted by ``x``.

    Row ``j`` dominates row ``i`` when it is at least as good on both columns and better
    on one. Rows equal on both columns do not dominate each other; all are kept. Rows
    with NaN in ``x`` or ``y`` are left out. The front is :func:`labcore.pareto.non_dominated`,
    the one both labs use.

    Parameters
    ----------
    df : pandas.DataFrame
    x, y : str
        Column names (e.g. ``"storage_bits"`` and ``"psnr"``).
    x_better, y_better : {"min", "max"}, default "min" and "max"
        Which direction is better.

    Returns
    -------
    pandas.DataFrame
        The non-dominated rows, original index kept.

    Raises
    ------
    TypeError
        If ``df`` is not a DataFrame.
    ValueError
        If a column is missing or a direction is not "min" or "max".

    Examples
    --------
    >>> df = pd.DataFrame({"cost": [1, 2, 3, 2], "psnr": [30.0, 35.0, 34.0, 31.0]})
    >>> pareto_front(df, "cost", "psnr").index.tolist()
    [0, 1]
    """
    check_type(df, pd.DataFrame, "df", expected="a pandas DataFrame (e.g. a sweep's table)")
    for column in (x, y):
        if column not in df.columns:
            raise ValueError(
                f"column {column!r} is not in the frame; columns: {', '.join(map(str, df.columns))}"
            )
    for name, better in (("x_better", x_better), ("y_better", y_better)):
        if better not in ("min", "max"):
            raise ValueError(f"{name} must be 'min' or 'max', got {better!r}")
    data = df[df[[x, y]].notna().all(axis=1)]
    signs = (1.0 if x_better == "min" else -1.0, 1.0 if y_better == "min" else -1.0)
    # Both "smaller is better" after the signs; labcore's front keeps equal points.
    points = [(signs[0] * float(a), signs[1] * float(b)) for a, b in zip(data[x], data[y])]
    front = data.iloc[non_dominated(points)]
    return front.sort_values([x, y], ascending=[x_better == "min", y_better == "min"])
