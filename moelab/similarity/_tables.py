"""The similarity tables: the same slot across every pair of models, every slot against every slot.

Both read the models one expert at a time (a checkpoint folder reads only that expert's bytes)
and write one row per compared pair of experts and metric, with the columns
``SAME_SLOT_COLUMNS`` or ``CROSS_SLOT_COLUMNS``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from labcore.checks import check_type
from moelab.families import ExpertSlot, MoEFamily
from moelab.similarity._calibration import Calibration, as_calibration
from moelab.similarity._layout import CROSS_SLOT_COLUMNS, SAME_SLOT_COLUMNS, to_frame
from moelab.similarity._metrics import MetricName, SimilarityMetric, resolve_metrics
from moelab.similarity._sources import resolve_layers
from moelab.sources import ModelSource, WeightSource, open_models

__all__ = ["cross_slot_similarity", "expert_similarity"]


def _routing_probs(source: WeightSource, layer: int, hidden: torch.Tensor) -> torch.Tensor:
    # Every supported router is softmax(W x) over all experts in float32 before its top-k
    # (Mixtral, OLMoE, Switch; a Switch router bias, off in released models, is left out).
    weight = source.read_router_weight(layer)
    logits = hidden.to(weight.device, weight.dtype) @ weight.T
    return torch.softmax(logits.float(), dim=-1)


def _expert_features(
    source: WeightSource,
    slot: ExpertSlot,
    needs: set[str],
    hidden: torch.Tensor | None,
    probs: torch.Tensor | None,
) -> dict[str, Any]:
    features: dict[str, Any] = {}
    if needs & {"weights", "outputs"}:
        tensors = source.read_expert(slot)
        if "weights" in needs:
            features["weights"] = tensors
        if "outputs" in needs:
            device = next(iter(tensors.values())).device
            with torch.no_grad():
                features["outputs"] = source.family.expert_forward(
                    source.config, tensors, hidden.to(device)
                )
    if "routing" in needs:
        features["routing"] = probs[:, slot.expert]
    return features


def _pair_name(a: str, b: str) -> str:
    return f"{a} vs {b}"


def _rows(
    slot: ExpertSlot,
    expert_b: int | None,
    names: tuple[str, str],
    metrics: Sequence[SimilarityMetric],
    features_a: Mapping[str, Any],
    features_b: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Table rows comparing expert ``slot`` of model a with ``expert_b`` (None: same slot) of b."""
    where: dict[str, Any] = {"layer": slot.layer, "label": slot.label}
    if expert_b is None:
        where["expert"] = slot.expert
    else:
        where |= {"expert_a": slot.expert, "expert_b": expert_b}
    where |= {"model_a": names[0], "model_b": names[1], "pair": _pair_name(*names)}
    return [
        {
            **where,
            "metric": m.name,
            "direction": m.direction,
            "value": m.compute(features_a[m.needs], features_b[m.needs]),
        }
        for m in metrics
    ]


def _layer_inputs(
    metrics: Sequence[SimilarityMetric],
    sources: Sequence[WeightSource],
    family: MoEFamily,
    layers: Sequence[int],
    calibration: Any,
) -> tuple[set[str], Calibration | None]:
    needs = {m.needs for m in metrics}
    calib = (
        as_calibration(calibration, sources, family, layers)
        if needs & {"outputs", "routing"}
        else None
    )
    return needs, calib


def expert_similarity(
    models: Mapping[str, ModelSource] | Sequence[ModelSource],
    metrics: MetricName | str | Sequence[str | SimilarityMetric] = "l2",
    *,
    calibration: Calibration | Mapping[int, torch.Tensor] | None = None,
    layers: Sequence[int] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Compare the experts in the same slot of every pair of models.

    Slots are visited one at a time: each model's expert is read (a checkpoint folder reads
    only that expert's bytes from its safetensors files), compared with the others, and freed,
    so peak memory is about one expert per model whatever the models' size.

    Parameters
    ----------
    models : list of ModelSource or dict of str to ModelSource
        N >= 2 fine-tunes of one architecture: checkpoint folders (lazy), LazyCheckpoint,
        MoEModel or transformers models (eager). A dict names them; a list takes the folder
        names (models built in memory are numbered).
    metrics : str or list of str, default "l2"
        Names from :func:`available_metrics`.
    calibration : Calibration or dict of int to Tensor, optional
        States fed to experts and routers for ``"cka"`` and ``"router"``. Default: seeded
        Gaussian states of the model's hidden size (:func:`gaussian_calibration`, 512 tokens,
        seed 0); pass :func:`capture_calibration` of the base model for real token states.
    layers : sequence of int, optional
        MoE layers to compare (default: all).
    progress : bool, default True
        Show a tqdm progress bar over slots.

    Returns
    -------
    pandas.DataFrame
        One row per layer, expert, pair and metric; columns ``layer``, ``label``, ``expert``,
        ``model_a``, ``model_b``, ``pair`` (``"a vs b"``, pairs in input order), ``metric``,
        ``direction`` (``"distance"``: lower = more similar; ``"similarity"``: higher = more
        similar), ``value``.

    Raises
    ------
    ValueError
        If fewer than two models are given, a metric is unknown, a layer is out of range or
        the calibration does not fit.
    IncompatibleModelsError
        If the models differ in family, MoE layers, experts per layer or expert shapes.
    UnsupportedModelError
        If a model is not a supported mixture of experts.
    CheckpointNotFoundError
        If a folder, its config or its weights do not exist.
    CorruptCheckpointError
        If a safetensors file is truncated or corrupt.

    Examples
    --------
    >>> table = expert_similarity([base_path, path_a], ["l2", "cosine"], progress=False)
    >>> table.groupby("metric")["value"].mean().round(3)
    metric
    cosine    0.999
    l2        0.034
    Name: value, dtype: float64
    """
    names, sources, family = open_models(models)
    resolved = resolve_metrics(metrics)
    config = sources[0].config
    layers = resolve_layers(family, config, layers)
    needs, calib = _layer_inputs(resolved, sources, family, layers, calibration)
    labels = family.layer_labels(config)
    pairs = list(itertools.combinations(range(len(sources)), 2))
    n_experts = family.num_experts(config)
    rows: list[dict[str, Any]] = []
    with tqdm(total=len(layers) * n_experts, desc="expert similarity", disable=not progress) as bar:
        for layer in layers:
            hidden = calib.layer(layer) if calib is not None else None
            probs = [
                _routing_probs(s, layer, hidden) if "routing" in needs else None for s in sources
            ]
            for expert in range(n_experts):
                slot = ExpertSlot(layer, expert, labels[layer])
                features = [
                    _expert_features(s, slot, needs, hidden, p) for s, p in zip(sources, probs)
                ]
                for i, j in pairs:
                    rows += _rows(
                        slot, None, (names[i], names[j]), resolved, features[i], features[j]
                    )
                del features
                bar.update()
    return to_frame(rows, SAME_SLOT_COLUMNS)


def cross_slot_similarity(
    a: ModelSource,
    b: ModelSource,
    metrics: MetricName | str | Sequence[str | SimilarityMetric] = "l2",
    *,
    names: tuple[str, str] | None = None,
    calibration: Calibration | Mapping[int, torch.Tensor] | None = None,
    layers: Sequence[int] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Compare every expert of model ``a`` with every expert of model ``b``, layer by layer.

    Same-slot comparison assumes fine-tuning kept each expert in its position. This table shows
    whether it did: if ``b``'s experts were permuted, the most similar partner of ``a``'s
    expert ``i`` sits off the diagonal; :func:`match_experts` finds the best one-to-one
    assignment. Per layer, ``b``'s experts are held in memory (for the weight metrics) while
    ``a``'s are streamed one at a time: peak memory is one layer of ``b`` plus one expert.

    Parameters
    ----------
    a, b : ModelSource
        Two fine-tunes of one architecture (folder, LazyCheckpoint, MoEModel or model).
    metrics : str or list of str, default "l2"
        Names from :func:`available_metrics`.
    names : (str, str), optional
        Names of the two models in the table (default: folder or class names).
    calibration : Calibration or dict of int to Tensor, optional
        As in :func:`expert_similarity`.
    layers : sequence of int, optional
        MoE layers to compare (default: all).
    progress : bool, default True
        Show a tqdm progress bar over ``a``'s experts.

    Returns
    -------
    pandas.DataFrame
        One row per layer, ``expert_a``, ``expert_b`` and metric; columns ``layer``,
        ``label``, ``expert_a``, ``expert_b``, ``model_a``, ``model_b``, ``pair``, ``metric``,
        ``direction``, ``value``. Rows with ``expert_a == expert_b`` equal
        :func:`expert_similarity`.

    Raises
    ------
    ValueError
        As :func:`expert_similarity`, and if ``names`` is not two distinct strings.
    IncompatibleModelsError, UnsupportedModelError, CheckpointNotFoundError, CorruptCheckpointError
        As :func:`expert_similarity`.

    Examples
    --------
    >>> from moelab import match_experts
    >>> cross = cross_slot_similarity(base_path, path_a, "l2", layers=[0], progress=False)
    >>> match_experts(cross)[["layer", "expert_a", "expert_b", "moved"]]
       layer  expert_a  expert_b  moved
    0      0         0         0  False
    1      0         1         1  False
    2      0         2         2  False
    3      0         3         3  False
    """
    if names is not None:
        for name in names:
            check_type(name, str, "each of names")
        if len(names) != 2 or len(set(names)) != 2:
            raise ValueError(f"names must be two distinct strings, got {names!r}")
        models: Any = dict(zip(names, (a, b)))
    else:
        models = [a, b]
    (name_a, name_b), (src_a, src_b), family = open_models(models)
    resolved = resolve_metrics(metrics)
    config = src_a.config
    layers = resolve_layers(family, config, layers)
    needs, calib = _layer_inputs(resolved, [src_a, src_b], family, layers, calibration)
    labels = family.layer_labels(config)
    n_experts = family.num_experts(config)
    rows: list[dict[str, Any]] = []
    with tqdm(
        total=len(layers) * n_experts, desc="cross-slot similarity", disable=not progress
    ) as bar:
        for layer in layers:
            hidden = calib.layer(layer) if calib is not None else None
            probs_a, probs_b = (
                (_routing_probs(src_a, layer, hidden), _routing_probs(src_b, layer, hidden))
                if "routing" in needs
                else (None, None)
            )
            slots = [ExpertSlot(layer, e, labels[layer]) for e in range(n_experts)]
            held_b = [_expert_features(src_b, s, needs, hidden, probs_b) for s in slots]
            for slot in slots:
                feat_a = _expert_features(src_a, slot, needs, hidden, probs_a)
                for expert_b, feat_b in enumerate(held_b):
                    rows += _rows(slot, expert_b, (name_a, name_b), resolved, feat_a, feat_b)
                del feat_a
                bar.update()
            del held_b
    return to_frame(rows, CROSS_SLOT_COLUMNS)
