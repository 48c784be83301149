"""Expert matching across slots (Hungarian method) and its demonstration, permuting a model's
experts without changing what it computes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from moelab.families import ExpertSlot
from moelab.loading import MoEModel, load_moe
from moelab.similarity._layout import CROSS_SLOT_COLUMNS, check_table, select_rows, to_frame
from moelab.similarity._sources import resolve_layers

__all__ = ["match_experts", "permute_experts"]


def match_experts(cross: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """Best one-to-one assignment of ``a``'s experts to ``b``'s, per layer (Hungarian method).

    Uses ``scipy.optimize.linear_sum_assignment``: minimising the summed distance, or
    maximising the summed similarity. NaN cells (constant outputs) count as the worst value.

    Parameters
    ----------
    cross : pandas.DataFrame
        A table from :func:`cross_slot_similarity`.
    metric : str, optional
        Match on one metric only (default: every metric in the table, separately).

    Returns
    -------
    pandas.DataFrame
        One row per layer, pair, metric and ``expert_a``; columns ``layer``, ``label``,
        ``model_a``, ``model_b``, ``pair``, ``metric``, ``direction``, ``expert_a``,
        ``expert_b`` (its matched partner), ``value`` (of the matched pair),
        ``same_slot_value`` (of ``expert_b == expert_a``), ``moved`` (partner is in another
        slot).

    Raises
    ------
    ValueError
        If the table is not a cross-slot table or ``metric`` is not in it.

    Examples
    --------
    A variant whose layer-0 experts moved one slot up is matched back:

    >>> from moelab import cross_slot_similarity
    >>> permuted = permute_experts(variant, {0: [1, 2, 3, 0]})
    >>> matched = match_experts(cross_slot_similarity(base, permuted, "l2", progress=False))
    >>> matched.query("moved")[["layer", "expert_a", "expert_b"]]
       layer  expert_a  expert_b
    0      0         0         1
    1      0         1         2
    2      0         2         3
    3      0         3         0
    """
    from scipy.optimize import linear_sum_assignment

    check_table(cross, CROSS_SLOT_COLUMNS, "match_experts")
    if metric is not None:
        cross = select_rows(cross, "metric", metric, "match_experts")
    rows: list[dict[str, Any]] = []
    for (layer, pair, name), group in cross.groupby(["layer", "pair", "metric"], sort=True):
        grid = group.pivot(index="expert_a", columns="expert_b", values="value")
        direction = group["direction"].iloc[0]
        values = grid.to_numpy(dtype=float)
        worst = np.nanmin(values) if direction == "similarity" else np.nanmax(values)
        cost = np.where(np.isnan(values), 0.0 if np.isnan(worst) else worst, values)
        row_idx, col_idx = linear_sum_assignment(cost, maximize=direction == "similarity")
        first = group.iloc[0]
        for r, c in zip(row_idx, col_idx):
            expert_a, expert_b = int(grid.index[r]), int(grid.columns[c])
            same = grid.loc[expert_a, expert_a] if expert_a in grid.columns else math.nan
            rows.append(
                {
                    "layer": int(layer),
                    "label": first["label"],
                    "model_a": first["model_a"],
                    "model_b": first["model_b"],
                    "pair": pair,
                    "metric": name,
                    "direction": direction,
                    "expert_a": expert_a,
                    "expert_b": expert_b,
                    "value": float(values[r, c]),
                    "same_slot_value": float(same),
                    "moved": expert_a != expert_b,
                }
            )
    columns = (
        "layer",
        "label",
        "model_a",
        "model_b",
        "pair",
        "metric",
        "direction",
        "expert_a",
        "expert_b",
        "value",
        "same_slot_value",
        "moved",
    )
    return to_frame(rows, columns).astype({"same_slot_value": "float64", "moved": "bool"})


def permute_experts(
    model: MoEModel | nn.Module,
    permutations: Mapping[int, Sequence[int]],
    *,
    router: bool = True,
) -> MoEModel:
    """Move the experts of some layers to other slots, in place.

    Expert ``i`` of layer ``l`` moves to slot ``permutations[l][i]``. With ``router=True`` the
    router's rows move with them, so the model computes exactly what it computed before: only
    the slot numbering changed. This is what a fine-tune that reorders experts looks like, and
    what :func:`cross_slot_similarity` with :func:`match_experts` should see through.

    Parameters
    ----------
    model : MoEModel or PreTrainedModel
        The model, changed in place (through ``set_expert`` and the router weight).
    permutations : dict of int to sequence of int
        For each MoE layer to change, a permutation of ``range(num_experts)``.
    router : bool, default True
        Permute the router rows too (keeps the model's function).

    Returns
    -------
    MoEModel
        The same model, wrapped.

    Raises
    ------
    ValueError
        If a layer is out of range or a value is not a permutation of the experts.

    Examples
    --------
    >>> permute_experts(variant, {0: [1, 2, 3, 0]})
    MoEModel(name='MixtralForCausalLM', family='mixtral', moe_layers=2, experts=4)
    """
    moe = load_moe(model, tokenizer=False) if not isinstance(model, MoEModel) else model
    n_experts = moe.family.num_experts(moe.config)
    for layer, perm in permutations.items():
        resolve_layers(moe.family, moe.config, [layer])
        perm = [int(p) for p in perm]
        if sorted(perm) != list(range(n_experts)):
            raise ValueError(
                f"layer {layer}: {perm} is not a permutation of the {n_experts} experts "
                f"(0..{n_experts - 1})"
            )
        old = [
            {k: v.clone() for k, v in moe.get_expert(ExpertSlot(layer, e)).items()}
            for e in range(n_experts)
        ]
        for expert, target in enumerate(perm):
            moe.set_expert(ExpertSlot(layer, target), old[expert])
        if router:
            weight = moe.router_weight(layer)
            rows = weight.clone()
            with torch.no_grad():
                weight[perm] = rows
    return moe
