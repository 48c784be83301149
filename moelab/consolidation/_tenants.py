"""Checks that N tenants can be consolidated: one family, one shape, one dtype."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from labcore.checks import check_type
from moelab.errors import IncompatibleModelsError
from moelab.families import MoEFamily
from moelab.sources import WeightSource

__all__ = ["check_dtypes", "check_same_shapes"]


def check_dtypes(
    sources: Sequence[WeightSource], names: Sequence[str], dtype: torch.dtype | None
) -> torch.dtype:
    """The plan's dtype: the sources' common one, or an explicit cast."""
    if dtype is not None:
        check_type(dtype, torch.dtype, "dtype")
        return dtype
    found = {name: src.dtype for name, src in zip(names, sources)}
    if len(set(found.values())) > 1:
        listed = ", ".join(f"{n}: {str(d).removeprefix('torch.')}" for n, d in found.items())
        raise ValueError(
            f"the tenants' weights have different dtypes ({listed}); consolidate checkpoints of "
            f"one dtype, or ask for a cast explicitly, e.g. dtype=torch.bfloat16"
        )
    return next(iter(found.values()))


def check_same_shapes(sources: Sequence[WeightSource], names: Sequence[str]) -> MoEFamily:
    """Check that tenants share family, expert slots and every parameter's name and shape.

    The shapes come from each tenant's config (a model on the ``meta`` device), so nothing is
    read; a tensor on disk that disagrees with its config is caught when it is read.

    Parameters
    ----------
    sources : sequence of WeightSource
        The tenants.
    names : sequence of str
        Their names, for the message.

    Returns
    -------
    MoEFamily
        Their family.

    Raises
    ------
    IncompatibleModelsError
        Naming the first tenant and parameter that differ.
    """
    family = sources[0].family

    def shapes(source: WeightSource) -> dict[str, tuple[int, ...]]:
        meta = family.meta_model(source.config)
        return {n: tuple(p.shape) for n, p in meta.named_parameters()}

    reference = shapes(sources[0])
    for name, source in zip(names[1:], sources[1:]):
        other = shapes(source)
        if other.keys() != reference.keys():
            diff = sorted(set(other) ^ set(reference))[:3]
            raise IncompatibleModelsError(
                f"tenants {names[0]!r} and {name!r} have different parameters (e.g. {diff}); "
                f"consolidate fine-tunes of one base model"
            )
        for key, value in reference.items():
            if other[key] != value:
                raise IncompatibleModelsError(
                    f"tenants {names[0]!r} and {name!r} differ in {key!r}: shape "
                    f"{value} vs {other[key]}; consolidate fine-tunes of one base model"
                )
    return family
