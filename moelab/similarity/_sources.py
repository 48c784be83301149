"""The models compared: folders opened lazily, models in memory wrapped, MoE layers chosen."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from torch import nn

from moelab.checkpoint import LazyCheckpoint
from moelab.families import MoEFamily, check_compatible
from moelab.loading import MoEModel, load_moe

__all__ = ["ModelSource", "open_model", "open_models", "resolve_layers"]

ModelSource = str | os.PathLike | LazyCheckpoint | MoEModel | nn.Module
"""A checkpoint folder (lazy), a LazyCheckpoint, a MoEModel or a transformers model (eager)."""


def open_model(source: Any) -> LazyCheckpoint | MoEModel:
    """A folder as a :class:`~moelab.checkpoint.LazyCheckpoint`, a model as a MoEModel.

    Parameters
    ----------
    source : ModelSource
        A checkpoint folder, a LazyCheckpoint, a MoEModel or a transformers model.

    Returns
    -------
    LazyCheckpoint or MoEModel
        LazyCheckpoint and MoEModel are returned unchanged.

    Raises
    ------
    ValueError
        If ``source`` is none of these.
    """
    if isinstance(source, (LazyCheckpoint, MoEModel)):
        return source
    if isinstance(source, (str, os.PathLike)):
        return LazyCheckpoint(source)
    if isinstance(source, nn.Module):
        return load_moe(source)
    raise TypeError(
        f"expected a checkpoint folder path, a LazyCheckpoint, a MoEModel or a transformers "
        f"model, got {type(source).__name__}"
    )


def _unique(names: list[str]) -> list[str]:
    if len(set(names)) == len(names):
        return names
    # Models built in memory share their class name: number them in the given order.
    return [f"{name}[{i}]" for i, name in enumerate(names)]


def open_models(
    models: Mapping[str, ModelSource] | Sequence[ModelSource], at_least: int = 2
) -> tuple[list[str], list[LazyCheckpoint | MoEModel], MoEFamily]:
    """Open the models to compare and check that they share one architecture.

    Parameters
    ----------
    models : dict of str to ModelSource, or sequence of ModelSource
        A dict names the models; a sequence takes their names (models built in memory, which
        share their class name, are numbered).
    at_least : int, default 2
        Fewest models accepted.

    Returns
    -------
    names : list of str
    sources : list of LazyCheckpoint or MoEModel
    family : MoEFamily
        Their family (:func:`~moelab.families.check_compatible`).

    Raises
    ------
    ValueError
        If ``models`` is neither a dict nor a sequence, or holds too few models.
    IncompatibleModelsError
        If the models differ in architecture.
    """
    if isinstance(models, Mapping):
        names = [str(n) for n in models]
        sources = [open_model(m) for m in models.values()]
    elif isinstance(models, Sequence) and not isinstance(models, (str, bytes)):
        sources = [open_model(m) for m in models]
        names = _unique([s.name for s in sources])
    else:
        raise TypeError(
            f"models must be a list of models/folders or a dict {{name: model or folder}}, got "
            f"{type(models).__name__}"
        )
    if len(sources) < at_least:
        raise ValueError(
            f"comparing experts needs at least {at_least} models, got {len(sources)}; pass a list "
            f"or a dict of models or checkpoint folders"
        )
    family = check_compatible(*sources)
    return names, sources, family


def resolve_layers(family: MoEFamily, config: Any, layers: Sequence[int] | None) -> list[int]:
    """The MoE layers to visit, sorted and without repeats.

    Parameters
    ----------
    family, config : MoEFamily, PretrainedConfig
        The compared models' family and config.
    layers : int or sequence of int, optional
        Global MoE-layer indices; None for all.

    Returns
    -------
    list of int
        The layers.

    Raises
    ------
    ValueError
        If ``layers`` is empty or holds something other than an index in range.
    """
    n_layers = family.num_moe_layers(config)
    if layers is None:
        return list(range(n_layers))
    if isinstance(layers, int):
        layers = [layers]
    chosen = list(layers)
    bad = [
        layer
        for layer in chosen
        if isinstance(layer, bool)
        or not isinstance(layer, (int, np.integer))
        or not 0 <= layer < n_layers
    ]
    if bad or not chosen:
        raise ValueError(f"layers must be MoE-layer indices in 0..{n_layers - 1}, got {layers!r}")
    return sorted({int(layer) for layer in chosen})
