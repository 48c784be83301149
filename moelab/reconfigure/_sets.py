"""Non-expert sets: where each non-expert parameter is registered, and how a set is read.

A tenant's non-expert set is every parameter that is not an expert (embeddings, attention,
norms, lm_head, router, dense MLPs). The live model binds one set at a time at the sites
:func:`param_sites` lists. Sets are streamed from their source one tensor at a time, straight
to their tier: parameters on the device (``"swap"``), or one flat host buffer per dtype
(``"copy"``: pinned when CUDA is available, so a switch is one asynchronous copy per dtype).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from moelab.errors import IncompatibleModelsError
from moelab.families import MoEFamily
from moelab.reconfigure._tensors import frozen, host_buffer
from moelab.sources import WeightSource

__all__ = [
    "ParamSite",
    "expert_parameter_ids",
    "flat_layout",
    "live_buffers",
    "param_sites",
    "read_set",
    "staged_set",
    "unique_parameters",
]


@dataclass
class ParamSite:
    """One place a parameter is registered: ``params[name]`` of some module."""

    params: dict[str, Any]
    name: str
    qualname: str


def param_sites(model: nn.Module, exclude: set[int]) -> tuple[list[ParamSite], list[int]]:
    """Every registration of a non-excluded parameter and, per site, its unique-tensor index.

    Tied parameters (e.g. Switch's shared embedding and lm_head) are registered at several
    sites but map to one unique index, so binding keeps them tied.
    """
    sites: list[ParamSite] = []
    unique_of: list[int] = []
    seen: dict[int, int] = {}
    for mname, module in model.named_modules(remove_duplicate=False):
        for pname, param in module._parameters.items():
            if param is None or id(param) in exclude:
                continue
            sites.append(
                ParamSite(module._parameters, pname, f"{mname}.{pname}" if mname else pname)
            )
            unique_of.append(seen.setdefault(id(param), len(seen)))
    return sites, unique_of


def unique_parameters(
    model: nn.Module, exclude: set[int]
) -> tuple[list[nn.Parameter], list[list[str]]]:
    """The non-excluded parameters in :func:`param_sites`' unique order, with all their names."""
    sites, unique_of = param_sites(model, exclude)
    params: list[nn.Parameter] = []
    names: list[list[str]] = []
    for site, k in zip(sites, unique_of):
        if k == len(params):
            params.append(site.params[site.name])
            names.append([])
        names[k].append(site.qualname)
    return params, names


def expert_parameter_ids(family: MoEFamily, model: nn.Module) -> set[int]:
    return {id(p) for p in family.expert_parameters(model).values()}


def _read_one(
    source: WeightSource, names: Sequence[str], like: torch.Tensor, tenant: str
) -> torch.Tensor:
    """One unique tensor, under whichever of its tied names the source stores."""
    for name in names:
        if source.has_tensor(name):
            tensor = source.read_tensor(name)
            if tuple(tensor.shape) != tuple(like.shape):
                raise IncompatibleModelsError(
                    f"tenant {tenant!r}: {name!r} has shape {tuple(tensor.shape)}, but the "
                    f"consolidated model expects {tuple(like.shape)}; consolidate fine-tunes of "
                    f"one base model"
                )
            return tensor
    raise IncompatibleModelsError(
        f"tenant {tenant!r} stores no tensor {names[0]!r} (nor its tied names {list(names[1:])}); "
        f"consolidate fine-tunes of one base model"
    )


def read_set(
    source: WeightSource,
    tenant: str,
    like: Sequence[nn.Parameter],
    names: Sequence[Sequence[str]],
    dtype: torch.dtype,
    device: torch.device,
) -> list[nn.Parameter]:
    """A tenant's non-expert set as frozen parameters on ``device``, read one tensor at a time.

    Every tensor gets fresh storage (``copy=True``), so the set never aliases its source.
    """
    return [
        frozen(_read_one(source, n, p, tenant).to(device=device, dtype=dtype, copy=True))
        for p, n in zip(like, names)
    ]


def flat_layout(
    like: Sequence[torch.Tensor], dtype: torch.dtype
) -> tuple[dict[torch.dtype, int], list[tuple[torch.dtype, int, int]]]:
    """How tensors lie back to back in one flat buffer per dtype (floats cast to ``dtype``).

    Returns
    -------
    sizes : dict of dtype to int
        Elements of each flat buffer.
    slices : list of (dtype, start, stop)
        Where each tensor of ``like`` lies, in order.
    """
    sizes: dict[torch.dtype, int] = {}
    slices = []
    for tensor in like:
        target = dtype if tensor.is_floating_point() else tensor.dtype
        start = sizes.get(target, 0)
        sizes[target] = start + tensor.numel()
        slices.append((target, start, sizes[target]))
    return sizes, slices


def staged_set(
    source: WeightSource,
    tenant: str,
    like: Sequence[nn.Parameter],
    names: Sequence[Sequence[str]],
    dtype: torch.dtype,
) -> dict[torch.dtype, torch.Tensor]:
    """A tenant's non-expert set in host memory: one flat buffer per dtype, filled in order."""
    sizes, slices = flat_layout(like, dtype)
    flat = {d: host_buffer((n,), d) for d, n in sizes.items()}
    for param, aliases, (target, start, stop) in zip(like, names, slices):
        tensor = _read_one(source, aliases, param, tenant)
        flat[target][start:stop].copy_(tensor.reshape(-1))
    return flat


def live_buffers(
    like: Sequence[nn.Parameter], dtype: torch.dtype, device: torch.device
) -> tuple[dict[torch.dtype, torch.Tensor], list[nn.Parameter]]:
    """Flat device buffers plus one parameter view per tensor into them.

    Activation in ``"copy"`` mode then moves a whole non-expert set with one copy per dtype,
    into tensors whose addresses never change (a captured CUDA graph stays valid).
    """
    sizes, slices = flat_layout(like, dtype)
    flat = {d: torch.empty(n, dtype=d, device=device) for d, n in sizes.items()}
    views = [
        frozen(flat[target][start:stop].view(param.shape))
        for param, (target, start, stop) in zip(like, slices)
    ]
    return flat, views
