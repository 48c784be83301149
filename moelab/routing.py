"""How often the router picks each expert on given tokens.

Routing counts say which experts a workload uses: how much copy traffic host-tier experts cost
(consolidation's ``"offload"`` placement), and which experts matter least (quantization).
Beside the counts, how often a token picks an expert that the token before it picked too: such
a use finds a copied-in expert still in its layer's cache rows (a hit for ``"copy"`` plans).
The counts are taken where the router works: the hidden states entering each MoE block (the
same forward hook as :func:`~moelab.similarity.capture_calibration`), the router's weight, a
softmax and the family's top-k, so any supported family is counted the same way.

Examples
--------
>>> counts = routing_counts(model, token_ids)
>>> counts.pivot(index="layer", columns="expert", values="share").round(2)  # doctest: +NORMALIZE_WHITESPACE
expert     0     1     2     3
layer
0       0.59  0.53  0.45  0.42
1       0.59  0.38  0.47  0.56
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from moelab.loading import MoEModel, load_moe
from moelab.similarity import capture_calibration

__all__ = ["routing_counts"]


def routing_counts(model: Any, token_ids: Any) -> pd.DataFrame:
    """Count the router's top-k choices per MoE layer and expert.

    Parameters
    ----------
    model : MoEModel, PreTrainedModel or ConsolidatedMoE
        The model whose routing is counted (e.g. a tenant, or a consolidated model: its active
        tenant).
    token_ids : (seq,) or (batch, seq) int array-like
        The tokens; every position is routed once per MoE layer.

    Returns
    -------
    pandas.DataFrame
        One row per (layer, expert): ``layer``, ``expert``, ``count`` (tokens that picked it
        among their top-k), ``share`` (count / tokens, so a layer's shares sum to k),
        ``repeats`` (tokens that picked it right after the previous token of their sequence
        did) and ``repeat_share`` (repeats / tokens).

    Raises
    ------
    ValueError
        If ``token_ids`` is not an integer array of at least 2 tokens inside the vocabulary.

    Examples
    --------
    Each token picks two experts per layer, so the shares of a layer sum to 2:

    >>> routing_counts(model, ids).groupby("layer")["share"].sum()
    layer
    0    2.0
    1    2.0
    Name: share, dtype: float64

    A token repeated picks the same experts at every position, so all uses but the first
    repeat the previous token's:

    >>> picked = routing_counts(model, [5] * 10).query("count > 0")
    >>> sorted(set(zip(picked["count"], picked["repeats"])))
    [(10, 9)]
    """
    live = getattr(model, "model", None)
    if not isinstance(model, (MoEModel, torch.nn.Module)) and isinstance(live, torch.nn.Module):
        model = live  # a ConsolidatedMoE: count its live model (the active tenant's routing)
    moe = model if isinstance(model, MoEModel) else load_moe(model, tokenizer=False)
    ids = torch.as_tensor(token_ids)
    if ids.numel() < 2:
        raise ValueError(f"routing_counts counts at least 2 tokens, got {ids.numel()}")
    states = capture_calibration(moe, ids, description="routing")
    seq = ids.shape[-1]
    k = moe.family.experts_per_token(moe.config)
    n_experts = moe.family.num_experts(moe.config)
    rows = []
    for layer, hidden in states.hidden.items():
        weight = moe.router_weight(layer).float().cpu()
        # Every supported router is softmax(W x) over all experts before its top-k.
        picked = torch.softmax(hidden @ weight.T, dim=-1).topk(k, dim=-1).indices
        counts = torch.bincount(picked.reshape(-1), minlength=n_experts)
        repeats = _repeats(picked.reshape(-1, seq, k), n_experts)
        tokens = hidden.shape[0]
        rows += [
            (layer, e, int(c), float(c) / tokens, int(r), float(r) / tokens)
            for e, (c, r) in enumerate(zip(counts.tolist(), repeats.tolist()))
        ]
    return pd.DataFrame(
        rows, columns=["layer", "expert", "count", "share", "repeats", "repeat_share"]
    )


def _repeats(picked: torch.Tensor, n_experts: int) -> torch.Tensor:
    """Per expert, the positions of ``picked`` ``[batch, seq, k]`` that picked it right after the
    previous position of their sequence did.
    """
    chosen = torch.zeros(*picked.shape[:2], n_experts, dtype=torch.bool)
    chosen.scatter_(-1, picked, True)
    return (chosen[:, 1:] & chosen[:, :-1]).sum(dim=(0, 1))
