"""Which experts to quantize first: scores measured on calibration tokens, policies over them.

:func:`expert_scores` measures, for every expert slot of a model, on calibration tokens: how
often the router picks it (``share``: a layer's shares sum to top-k), how much the expert's own
output moves when its weights are quantized (``output_error``: relative squared error on the
layer's states), and how much the model's output moves when that expert alone is quantized
(``sensitivity``: mean KL divergence of the next-token distributions, one forward per slot).
A selection policy orders the slots, first to quantize first:

``random``       a seeded permutation (the mixed-precision paper's choice)
``frequency``    least routed first
``sensitivity``  smallest change of the model's output first
``layer``        whole layers, last layer first
``combined``     smallest share x output error first: how often an expert's error occurs times
                 its size, with no forward of the whole model per slot
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from labcore.checks import check_callable, check_int, check_name
from labcore.registry import Registry
from moelab.families import ExpertSlot
from moelab.quant._backends import quantize_matrix

__all__ = [
    "SelectionPolicy",
    "available_selections",
    "expert_scores",
    "fake_quantize",
    "get_selection",
    "select_experts",
]

#: ``(scores table, seed) -> slots in the order to quantize them``.
OrderFn = Callable[[pd.DataFrame, int], list[ExpertSlot]]


@dataclass(frozen=True)
class SelectionPolicy:
    """A named order in which expert slots are quantized.

    Parameters
    ----------
    name : str
        Registry name.
    order : callable
        ``(scores, seed) -> list of ExpertSlot``, from :func:`expert_scores`' table.
    description : str, optional
        One line for tables and widgets.
    """

    name: str
    order: OrderFn = field(repr=False)
    description: str = ""

    def __post_init__(self) -> None:
        check_name(self.name, "SelectionPolicy.name")
        check_callable(self.order, "SelectionPolicy.order")


def _slots(table: pd.DataFrame) -> list[ExpertSlot]:
    return [ExpertSlot(int(r.layer), int(r.expert)) for r in table.itertuples(index=False)]


def _by(*columns: str) -> OrderFn:
    def order(scores: pd.DataFrame, seed: int) -> list[ExpertSlot]:
        return _slots(scores.sort_values([*columns, "layer", "expert"], kind="stable"))

    return order


def _random(scores: pd.DataFrame, seed: int) -> list[ExpertSlot]:
    permutation = np.random.default_rng(seed).permutation(len(scores))
    return _slots(scores.iloc[permutation])


def _layer(scores: pd.DataFrame, seed: int) -> list[ExpertSlot]:
    return _slots(scores.sort_values(["layer", "expert"], ascending=[False, True]))


def _combined(scores: pd.DataFrame, seed: int) -> list[ExpertSlot]:
    expected = scores["share"] * scores["output_error"]
    return _by("expected_error")(scores.assign(expected_error=expected), seed)


_SELECTIONS: Registry[SelectionPolicy] = Registry(
    "selection policy", plural="policies", sort=False, item_type=SelectionPolicy
)
for _policy in (
    SelectionPolicy("random", _random, "a seeded permutation (the paper)"),
    SelectionPolicy("frequency", _by("share"), "least routed first"),
    SelectionPolicy(
        "sensitivity", _by("sensitivity"), "smallest output error when quantized first"
    ),
    SelectionPolicy("layer", _layer, "whole layers, last layer first"),
    SelectionPolicy("combined", _combined, "smallest routing share x expert output error first"),
):
    _SELECTIONS.add_named(_policy)

#: Names of the selection policies; a policy by name (a policy passes through).
available_selections = _SELECTIONS.names
get_selection = _SELECTIONS.resolve


def expert_scores(
    model: Any,
    token_ids: Any,
    bits: int = 4,
    group_size: int = 64,
    backend: str = "rtn",
) -> pd.DataFrame:
    """How often each expert is routed to, and what quantizing it changes.

    Parameters
    ----------
    model : MoEModel or PreTrainedModel
        The model whose experts are scored (a causal language model: its logits are
        compared); restored to its weights afterwards.
    token_ids : (seq,) or (batch, seq) int array-like
        Calibration tokens (e.g. held-out text of the model's own domain).
    bits, group_size, backend
        The quantization scored (see :func:`~moelab.quant.quantize_matrix`).

    Returns
    -------
    pandas.DataFrame
        One row per slot: ``layer``, ``expert``, ``share`` (routing share on the tokens),
        ``output_error`` (``|f_q(x) - f(x)|^2 / |f(x)|^2`` of the expert over the layer's
        states ``x``), ``sensitivity`` (mean KL divergence of the model's next-token
        distribution, exact to quantized, with that expert alone quantized).
    """
    from moelab.loading import MoEModel, load_moe

    moe = model if isinstance(model, MoEModel) else load_moe(model, tokenizer=False)
    training = moe.model.training
    moe.model.eval()  # dropout off: scores of the model as it serves
    try:
        return _scores(moe, token_ids, bits, group_size, backend)
    finally:
        moe.model.train(training)


def _scores(moe: Any, token_ids: Any, bits: int, group_size: int, backend: str) -> pd.DataFrame:
    from moelab.routing import routing_counts
    from moelab.similarity import capture_calibration

    shares = routing_counts(moe, token_ids).set_index(["layer", "expert"])["share"]
    states = capture_calibration(moe, token_ids).hidden
    ids = torch.as_tensor(np.asarray(token_ids), dtype=torch.long)
    ids = (ids if ids.ndim == 2 else ids[None]).to(next(moe.model.parameters()).device)
    rows = []
    with torch.no_grad():
        exact_logp = torch.log_softmax(moe.model(input_ids=ids).logits.double(), -1)
        for slot in moe.expert_slots():
            tensors = {m: w.clone() for m, w in moe.get_expert(slot).items()}
            hidden = states[slot.layer].to(next(iter(tensors.values())).dtype)
            exact = moe.family.expert_forward(moe.config, tensors, hidden).float()
            quantized = _quantized(tensors, bits, group_size, backend)
            moved = moe.family.expert_forward(moe.config, quantized, hidden).float()
            error = (moved - exact).pow(2).sum() / exact.pow(2).sum().clamp_min(1e-30)
            moe.set_expert(slot, quantized)
            logp = torch.log_softmax(moe.model(input_ids=ids).logits.double(), -1)
            moe.set_expert(slot, tensors)  # restored
            kl = (exact_logp.exp() * (exact_logp - logp)).sum(-1).mean()
            rows.append(
                {
                    "layer": slot.layer,
                    "expert": slot.expert,
                    "share": float(shares.get((slot.layer, slot.expert), 0.0)),
                    "output_error": float(error),
                    "sensitivity": max(float(kl), 0.0),  # >= 0 but for rounding
                }
            )
    return pd.DataFrame(rows)


def _quantized(tensors: dict, bits: int, group_size: int, backend: str) -> dict:
    """One expert's matrices as they read back after quantization."""
    return {
        m: quantize_matrix(w, bits, group_size, backend).dequantize() for m, w in tensors.items()
    }


def select_experts(
    scores: pd.DataFrame, n: int, policy: str | SelectionPolicy = "sensitivity", seed: int = 0
) -> list[ExpertSlot]:
    """The first ``n`` slots a policy quantizes.

    Parameters
    ----------
    scores : pandas.DataFrame
        From :func:`expert_scores`.
    n : int
        How many (0 to every slot).
    policy : str or SelectionPolicy, default "sensitivity"
        See :func:`available_selections`.
    seed : int, default 0
        For ``"random"``.

    Returns
    -------
    list of ExpertSlot
    """
    check_int(n, "n", minimum=0)
    if n > len(scores):
        raise ValueError(f"n = {n} exceeds the {len(scores)} expert slots of the model")
    return get_selection(policy).order(scores, seed)[:n]


def fake_quantize(
    model: Any,
    slots: Any,
    bits: int = 4,
    group_size: int = 64,
    backend: str = "rtn",
) -> Any:
    """Replace chosen experts' weights by their quantized values, in place (quality only).

    The model computes what those experts compute after quantization, at every supported bit
    width and with no kernel: how quality is measured (speed comes from the kernels and the cost model).

    Parameters
    ----------
    model : MoEModel or PreTrainedModel
        Changed in place.
    slots : iterable of ExpertSlot
        The experts to quantize (each once; all checked before any is changed).
    bits, group_size, backend
        See :func:`~moelab.quant.quantize_matrix`.

    Returns
    -------
    The model given.
    """
    from moelab.loading import MoEModel, load_moe

    moe = model if isinstance(model, MoEModel) else load_moe(model, tokenizer=False)
    chosen = list(dict.fromkeys(slots))  # each slot once
    unknown = set(chosen) - set(moe.expert_slots())
    if unknown:
        raise ValueError(f"expert slots {sorted(unknown)[:3]} are not in this model")
    with torch.no_grad():
        for slot in chosen:
            tensors = moe.get_expert(slot)
            moe.set_expert(slot, _quantized(tensors, bits, group_size, backend))
    return model
