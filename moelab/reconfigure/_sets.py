"""Non-expert sets: where each non-expert parameter is registered, and how a set is staged.

A tenant's non-expert set is every parameter that is not an expert (embeddings, attention,
norms, lm_head, router, dense MLPs). The live model binds one set at a time, at the sites
:func:`param_sites` lists; ``"copy"`` mode keeps the sets as flat buffers (one per dtype).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from moelab.consolidation import ConsolidationPlan
from moelab.errors import IncompatibleModelsError
from moelab.families import MoEFamily
from moelab.reconfigure._tensors import frozen

__all__ = [
    "ParamSite",
    "expert_parameter_ids",
    "live_buffers",
    "param_sites",
    "staged_buffers",
    "tenant_params",
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


def _unique_params(model: nn.Module, exclude: set[int]) -> list[nn.Parameter]:
    """The non-excluded parameters of ``model`` in the unique order of :func:`param_sites`."""
    out: list[nn.Parameter] = []
    seen: set[int] = set()
    for _, module in model.named_modules(remove_duplicate=False):
        for param in module._parameters.values():
            if param is None or id(param) in exclude or id(param) in seen:
                continue
            seen.add(id(param))
            out.append(param)
    return out


def expert_parameter_ids(family: MoEFamily, model: nn.Module) -> set[int]:
    return {id(p) for p in family.expert_parameters(model).values()}


def _flatten(tensors: Sequence[torch.Tensor]) -> dict[torch.dtype, torch.Tensor]:
    """One contiguous 1-D buffer per dtype holding ``tensors`` back to back, in order."""
    groups: dict[torch.dtype, list[torch.Tensor]] = {}
    for tensor in tensors:
        groups.setdefault(tensor.dtype, []).append(tensor.detach().reshape(-1))
    return {dtype: torch.cat(parts) for dtype, parts in groups.items()}


def staged_buffers(tensors: Sequence[torch.Tensor]) -> dict[torch.dtype, torch.Tensor]:
    """A tenant's non-expert set in host memory, one flat buffer per dtype."""
    flat = {dtype: buf.to("cpu", copy=True) for dtype, buf in _flatten(tensors).items()}
    # Pinned host memory makes host-to-device copies asynchronous and fast; it needs CUDA.
    if torch.cuda.is_available():
        flat = {dtype: buf.pin_memory() for dtype, buf in flat.items()}
    return flat


def live_buffers(
    tensors: Sequence[torch.Tensor], device: torch.device
) -> tuple[dict[torch.dtype, torch.Tensor], list[nn.Parameter]]:
    """Flat device buffers plus one parameter view per tensor into them.

    Activation in ``"copy"`` mode then moves a whole non-expert set with one copy per dtype,
    instead of one small copy per parameter.
    """
    flat = {dtype: buf.to(device, copy=True) for dtype, buf in _flatten(tensors).items()}
    offsets = dict.fromkeys(flat, 0)
    views = []
    for tensor in tensors:
        start = offsets[tensor.dtype]
        offsets[tensor.dtype] = start + tensor.numel()
        views.append(frozen(flat[tensor.dtype][start : offsets[tensor.dtype]].view(tensor.shape)))
    return flat, views


def tenant_params(plan: ConsolidationPlan, tenant: str, unique_of: list[int]) -> list[nn.Parameter]:
    """A tenant's non-expert parameters, in the live model's unique order, with the same ties."""
    model = plan.model_of(tenant).model
    exclude = expert_parameter_ids(plan.family, model)
    _, tenant_unique_of = param_sites(model, exclude)
    if tenant_unique_of != unique_of:
        raise IncompatibleModelsError(
            f"tenant {tenant!r} ties or orders its non-expert parameters differently from "
            f"{plan.tenants[0]!r}; consolidate fine-tunes of one base model"
        )
    return _unique_params(model, exclude)
