"""The MoE layers a comparison visits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from moelab.families import MoEFamily

__all__ = ["resolve_layers"]


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
