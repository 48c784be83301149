"""Whether models can be compared and consolidated slot by slot."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from moelab.errors import IncompatibleModelsError
from moelab.families._base import MoEFamily
from moelab.families._types import config_of

__all__ = ["check_compatible"]


def _describe(source: Any) -> tuple[str, MoEFamily, Any]:
    """Return (readable name, family, config) of a model, checkpoint or config."""
    from moelab.families import detect_family

    family = getattr(source, "family", None)
    config = config_of(source)
    if not isinstance(family, MoEFamily):
        family = detect_family(config)
    name = (
        getattr(source, "name", None)
        or getattr(config, "name_or_path", "")
        or type(source).__name__
    )
    return str(name), family, config


def check_compatible(a: Any, b: Any, *more: Any, names: Sequence[str] | None = None) -> MoEFamily:
    """Check that models share family, expert slots and expert shapes.

    Slot-by-slot similarity and expert consolidation only make sense between models of the
    same architecture and size (fine-tunes of one base model).

    Parameters
    ----------
    a, b, *more : MoEModel or LazyCheckpoint or PreTrainedModel or PretrainedConfig
        The models to compare; each is checked against ``a``.
    names : sequence of str, optional
        What to call them in messages (e.g. tenant names); their own names by default.

    Returns
    -------
    MoEFamily
        The family they share.

    Raises
    ------
    IncompatibleModelsError
        Naming the first difference: family, MoE-layer labels, experts per layer, or the shape
        of an expert matrix.
    UnsupportedModelError
        If a model is not of a supported MoE family.

    Examples
    --------
    >>> from moelab import LazyCheckpoint, load_moe
    >>> check_compatible(load_moe(path_a), LazyCheckpoint(path_b)).name
    'mixtral'
    """
    models = (a, b, *more)
    if names is not None and len(names) != len(models):
        raise ValueError(f"names holds {len(names)} names for {len(models)} models")
    name_a, fam_a, cfg_a = _describe(a)
    name_a = names[0] if names is not None else name_a
    for i, other in enumerate(models[1:], start=1):
        name_b, fam_b, cfg_b = _describe(other)
        name_b = names[i] if names is not None else name_b
        pair = f"{name_a!r} and {name_b!r}"
        if fam_a.name != fam_b.name:
            raise IncompatibleModelsError(
                f"{pair} are of different families ({fam_a.name} vs {fam_b.name}); experts can "
                f"only be compared between fine-tunes of one architecture"
            )
        labels_a, labels_b = fam_a.layer_labels(cfg_a), fam_b.layer_labels(cfg_b)
        if labels_a != labels_b:
            raise IncompatibleModelsError(
                f"{pair} have different MoE layers ({len(labels_a)}: {list(labels_a)} vs "
                f"{len(labels_b)}: {list(labels_b)})"
            )
        n_a, n_b = fam_a.num_experts(cfg_a), fam_b.num_experts(cfg_b)
        if n_a != n_b:
            raise IncompatibleModelsError(
                f"{pair} have different numbers of experts per layer ({n_a} vs {n_b})"
            )
        shapes_a, shapes_b = fam_a.expert_shapes(cfg_a), fam_b.expert_shapes(cfg_b)
        for matrix in fam_a.expert_matrix_names():
            if shapes_a[matrix] != shapes_b[matrix]:
                raise IncompatibleModelsError(
                    f"{pair} have different expert shapes: matrix {matrix!r} is "
                    f"{shapes_a[matrix]} vs {shapes_b[matrix]} ([out, in])"
                )
    return fam_a
