"""The multi-frame protocol as a table: sequences, registration, every fusion, scored.

One row per (image, frames, shifts, method): random sub-pixel translations (uniform in [-1, 1]
LR pixel, frame 0 fixed; with one seed a shorter sequence is the start of a longer one), a box PSF (pixel integration) and decimation by ``scale``, Gaussian
noise of ``noise_sigma`` (fraction of the range), then fusion with the true motions and with the
registered ones, scored against the HR scene by PSNR and SSIM (``border`` pixels left out). The
baseline is the reference frame interpolated alone (``"bicubic (reference frame)"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from srlab._resize import resize
from srlab.imagecheck import to_unit
from srlab.metrics import psnr, ssim
from srlab.multiframe._fuse import fuse
from srlab.multiframe._register import register_frames
from srlab.multiframe._sequence import simulate_sequence

__all__ = ["BASELINE", "protocol_table"]

BASELINE = "bicubic (reference frame)"


def protocol_table(
    images: Mapping[str, np.ndarray],
    n_frames: Sequence[int] = (4, 8, 16),
    scale: int = 2,
    noise_sigma: float = 2 / 255,
    methods: Sequence[str] = ("shift_and_add", "interpolate", "back_project"),
    registration: str = "phase",
    iterations: int = 10,
    border: int = 8,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """PSNR and SSIM of every fusion method against single-frame bicubic, per image and K.

    Parameters
    ----------
    images : mapping of str to ndarray
        Name -> HR scene (grey or colour; uint8 or float in [0, 1]).
    n_frames : sequence of int, default (4, 8, 16)
        Sequence lengths K.
    scale : int, default 2
    noise_sigma : float, default 2 / 255
        Noise as a fraction of the range (2 / 255: two grey levels of 8 bits).
    methods : sequence of str
        Fusion methods of :func:`~srlab.multiframe.fuse`.
    registration : {"phase", "ecc"}, default "phase"
        How the estimated motions are found (:func:`~srlab.multiframe.register_frames`).
    iterations : int, default 10
        Of ``back_project``.
    border : int, default 8
        HR pixels left out on each side when scoring.
    seed : int, default 0
        Seeds each sequence (the same motions for every method).
    progress : bool, default True

    Returns
    -------
    pandas.DataFrame
        ``image``, ``frames``, ``shifts`` ("true", "estimated", or "-" for the baseline),
        ``method``, ``psnr``,
        ``ssim``, ``gain_db`` (PSNR over the baseline of the same sequence), and
        ``registration_rms`` (LR pixels, estimated shifts only).
    """
    from tqdm.auto import tqdm

    if len(set(n_frames)) != len(n_frames) or len(set(images)) != len(images):
        raise ValueError(f"n_frames and the image names must not repeat, got {list(n_frames)}")
    rows = []
    work = [(name, k) for name in images for k in n_frames]
    for name, k in tqdm(work, desc="multi-frame protocol", disable=not progress):
        seq = simulate_sequence(images[name], k, scale, noise_sigma=noise_sigma, seed=seed)
        hr = to_unit(seq.hr)
        estimated = register_frames(seq.frames, registration)
        error = np.array([[e.dy - m.dy, e.dx - m.dx] for e, m in zip(estimated, seq.motions)])
        rms = float(np.sqrt((error[1:] ** 2).sum(axis=1).mean()))
        base = resize(to_unit(seq.frames[0]), scale=scale)
        score = {
            "psnr": psnr(hr, base, 1.0, border=border),
            "ssim": ssim(hr, base, 1.0, border=border),
        }
        rows.append({"image": name, "frames": k, "shifts": "-", "method": BASELINE, **score})
        for shifts, motions in (("true", seq.motions), ("estimated", estimated)):
            for method in methods:
                options = {"iterations": iterations} if method == "back_project" else {}
                out = fuse(seq.frames, motions, scale, method, **options)
                rows.append(
                    {
                        "image": name,
                        "frames": k,
                        "shifts": shifts,
                        "method": method,
                        "psnr": psnr(hr, out, 1.0, border=border),
                        "ssim": ssim(hr, out, 1.0, border=border),
                        "registration_rms": rms if shifts == "estimated" else np.nan,
                    }
                )
    table = pd.DataFrame(rows)
    baseline = table[table["method"] == BASELINE].set_index(["image", "frames"])["psnr"]
    table["gain_db"] = (
        table["psnr"] - baseline.loc[list(zip(table["image"], table["frames"]))].to_numpy()
    )
    return table
