"""Quality of many precision choices: one row per configuration, resumable from its CSV file.

Each configuration quantizes the first ``n_quantized`` experts of a selection policy's order
(:func:`select_experts`) to ``bits`` and measures perplexity with the quantized values written
in place (:func:`fake_quantize`), so every bit width is measured the same way whether a fast
kernel exists or not. Rows are appended to a CSV file as they finish (written atomically); a
run that stops is resumed by calling :func:`sweep_precision` again, which skips finished rows.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from labcore.atomic import atomic_write_text
from labcore.checks import check_int
from moelab.quant._plans import expert_bytes
from moelab.quant._selection import expert_scores, fake_quantize, select_experts

__all__ = ["sweep_precision"]

KEY = ["policy", "seed", "bits", "n_quantized", "group_size", "backend"]
COLUMNS = [*KEY, "perplexity", "perplexity_increase", "expert_bytes", "model"]


def _fingerprint(folder: Path, measured_on: Sequence[Any]) -> str:
    """Which model (its config, and each weight file's size, head and tail) and which
    measurement settings a sweep file belongs to.
    """
    config = json.loads((folder / "config.json").read_text())
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for weights in sorted(folder.glob("*.safetensors")):
        size = weights.stat().st_size
        with weights.open("rb") as f:
            digest.update(str(size).encode() + f.read(1 << 20))
            f.seek(max(size - (1 << 20), 0))
            digest.update(f.read())
    digest.update(repr(measured_on).encode())
    return f"{folder.resolve().name}:{digest.hexdigest()[:12]}"


def _finished(out: Path, model_id: str) -> pd.DataFrame:
    """The rows of an existing sweep file of this model (none if there is no file)."""
    columns = [*KEY, "perplexity", "perplexity_increase", "model"]
    if not out.exists():
        return pd.DataFrame(columns=COLUMNS)
    try:
        done = pd.read_csv(out)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{out} is not a readable sweep file ({err}); delete it or write to another file"
        ) from err
    if set(columns) - set(done.columns) or done[columns].isna().any().any():
        raise ValueError(
            f"{out} is not a sweep file or is damaged (missing columns or values); delete it or write to another file"
        )
    others = set(done["model"]) - {model_id}
    if others:
        raise ValueError(
            f"{out} holds a sweep of {sorted(others)[0]}, not of {model_id}: another model or "
            f"other measurement settings; write to another file"
        )
    return done


def sweep_precision(
    folder: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    policies: Sequence[str] = ("random", "sensitivity"),
    seeds: Sequence[int] = (0,),
    bits: Sequence[int] = (4,),
    n_quantized: Sequence[int] = (0,),
    group_size: int = 64,
    backend: str = "rtn",
    calibration_ids: Sequence[int],
    eval_ids: Sequence[int],
    chunk_len: int = 128,
    max_chunks: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Perplexity of every (policy, seed, bits, number of quantized experts), resumably.

    Parameters
    ----------
    folder : str or PathLike
        The model's checkpoint folder (reloaded for every row, so rows are independent).
    out : str or PathLike
        The CSV file; rows already in it are kept and not measured again.
    policies, seeds, bits, n_quantized : sequences
        The grid (a seed matters to ``"random"`` only; other policies run once per grid point).
    group_size, backend
        See :func:`~moelab.quant.quantize_matrix`.
    calibration_ids : sequence of int
        Tokens the selection scores are measured on.
    eval_ids : sequence of int
        Tokens the perplexity is measured on (disjoint from the calibration tokens).
    chunk_len, max_chunks
        See :func:`moelab.evaluate.perplexity`.
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        Every row of the file: the key columns, ``perplexity``, ``perplexity_increase`` (over
        the unquantized model), ``expert_bytes`` (every expert at its precision, exactly) and
        ``model`` (the model and the measurement settings it belongs to: calibration and
        evaluation tokens, chunking).

    Raises
    ------
    ValueError
        An existing file from another model or other measurement settings, or one that is
        damaged; an unknown policy or backend; a grid value out of range.
    """
    from tqdm.auto import tqdm

    from moelab.evaluate import perplexity
    from moelab.loading import load_moe
    from moelab.quant import get_backend, get_selection

    folder, out = Path(folder), Path(out)
    for name, values in (
        ("policies", policies),
        ("seeds", seeds),
        ("bits", bits),
        ("n_quantized", n_quantized),
    ):
        if isinstance(values, (str, int)):
            raise TypeError(f"{name} must be a sequence, e.g. [{values!r}], got {values!r}")
    for policy in policies:
        get_selection(policy)  # an unknown name fails now, not after the first measurements
    spec = get_backend(backend)
    for width in bits:
        spec.check_bits(width)  # before the first measurements, not midway
    spec.check_group_size(group_size)
    spec.ensure_available()
    settings = (list(calibration_ids), list(eval_ids), chunk_len, max_chunks)
    model_id = _fingerprint(folder, settings)
    done = _finished(out, model_id)
    base = load_moe(folder, tokenizer=False)
    n_slots = len(base.expert_slots())
    shapes = base.family.expert_shapes(base.model.config)
    itemsize = next(base.model.parameters()).element_size()
    for n in n_quantized:
        check_int(n, "n_quantized")
        if n > n_slots:
            raise ValueError(f"n_quantized {n} exceeds the model's {n_slots} expert slots")
    reference = perplexity(base.model, eval_ids, chunk_len, max_chunks)
    grid = [
        (policy, seed if policy == "random" else 0, b, n, group_size, backend)
        for b in bits
        for policy in policies
        for seed in (seeds if policy == "random" else seeds[:1])
        for n in n_quantized
    ]
    finished = {tuple(r) for r in done[KEY].itertuples(index=False)}
    todo = [row for row in dict.fromkeys(grid) if row not in finished]
    scores: dict[int, pd.DataFrame] = {}
    rows = done.to_dict("records")
    for policy, seed, b, n, g, kind in tqdm(todo, desc="precision sweep", disable=not progress):
        if b not in scores:
            scores[b] = expert_scores(base, calibration_ids, b, g, kind)
        model = load_moe(folder, tokenizer=False)
        fake_quantize(model, select_experts(scores[b], n, policy, seed), b, g, kind)
        value = perplexity(model.model, eval_ids, chunk_len, max_chunks)
        rows.append(
            {
                **dict(zip(KEY, (policy, seed, b, n, g, kind))),
                "perplexity": value,
                "perplexity_increase": value - reference,
                "expert_bytes": n * expert_bytes(shapes, b, g, itemsize, kind)
                + (n_slots - n) * expert_bytes(shapes, None, g, itemsize),
                "model": model_id,
            }
        )
        buffer = io.StringIO()
        pd.DataFrame(rows).to_csv(buffer, index=False)
        atomic_write_text(out, buffer.getvalue())
    return pd.DataFrame(rows, columns=COLUMNS)
