"""Where a tenant's weights come from: one reading interface over folders, models and stand-ins.

Similarity, consolidation and the consolidated model's build read weights one piece at a
time (an expert, a router, one non-expert tensor) through :class:`WeightSource`, so nothing has
to hold a whole tenant in memory:

* :class:`~moelab.checkpoint.LazyCheckpoint`: a local safetensors folder, read lazily;
* :class:`~moelab.loading.MoEModel`: a model already in memory;
* :class:`PerturbedSource`: a base source plus seeded noise, computed on read where the base
  lives. It makes N Mixtral-8x7B-shaped tenants on a GPU whose disk cannot hold N checkpoints.

Tensors are named as the transformers model names its parameters (``model.named_parameters``);
a checkpoint that stores them under other names (the original per-expert Mixtral layout) is
translated by its family adapter.

Examples
--------
>>> base = load_moe(model)                                   # doctest: +SKIP
>>> tenant = PerturbedSource(base, seed=1, scale=0.02)        # doctest: +SKIP
>>> tenant.read_expert(ExpertSlot(0, 0))["w1"].shape          # doctest: +SKIP
torch.Size([14336, 4096])
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from labcore.checks import check_name, check_type
from moelab.checkpoint import LazyCheckpoint
from moelab.families import ExpertSlot, MoEFamily, check_compatible
from moelab.loading import load_moe

__all__ = [
    "ModelSource",
    "PerturbedSource",
    "WeightSource",
    "load_into",
    "open_models",
    "open_source",
]


@runtime_checkable
class WeightSource(Protocol):
    """What similarity, planning and building read from a tenant.

    Attributes
    ----------
    name : str
        A readable name.
    config : PretrainedConfig
        The model's config.
    family : MoEFamily
        Its adapter.
    dtype : torch.dtype
        The dtype its expert weights are stored in.
    """

    name: str
    config: Any
    family: MoEFamily
    dtype: torch.dtype

    def expert_slots(self) -> list[ExpertSlot]:
        """All expert slots, layer-major."""
        ...

    def read_expert(self, slot: ExpertSlot) -> dict[str, torch.Tensor]:
        """One expert's ``{matrix: [out, in]}`` tensors."""
        ...

    def read_router_weight(self, layer: int) -> torch.Tensor:
        """One MoE layer's router weight ``[num_experts, hidden]``."""
        ...

    def has_tensor(self, name: str) -> bool:
        """Whether a parameter of that name (as the transformers model names it) is stored."""
        ...

    def read_tensor(self, name: str) -> torch.Tensor:
        """One parameter by its transformers name."""
        ...


ModelSource = str | os.PathLike | WeightSource | nn.Module
"""A checkpoint folder (read lazily), a :class:`WeightSource`, or a transformers model."""


def open_source(source: Any) -> WeightSource:
    """A folder as a :class:`~moelab.checkpoint.LazyCheckpoint`, a model as a MoEModel.

    Parameters
    ----------
    source : str, PathLike, WeightSource or nn.Module
        A checkpoint folder, anything that already reads like a :class:`WeightSource`
        (returned unchanged), or a transformers model.

    Returns
    -------
    WeightSource
        The source.

    Raises
    ------
    TypeError
        If ``source`` is none of these.
    """
    if isinstance(source, WeightSource):
        return source
    if isinstance(source, (str, os.PathLike)):
        return LazyCheckpoint(source)
    if isinstance(source, nn.Module):
        return load_moe(source)
    raise TypeError(
        f"expected a checkpoint folder path, a LazyCheckpoint, a MoEModel, a PerturbedSource or "
        f"a transformers model, got {type(source).__name__}"
    )


class PerturbedSource:
    """A base source plus seeded Gaussian noise, added when a tensor is read.

    Every tensor ``w`` reads as ``w + scale * rms(w) * z``, with ``z`` standard normal from a
    generator seeded by ``(seed, tensor name)`` on the device ``w`` is read on: the same seed
    gives the same tenant on the same device, and no perturbed copy is ever stored.

    Parameters
    ----------
    base : WeightSource or model or folder
        What is perturbed (anything :func:`open_source` accepts).
    seed : int
        Selects the noise.
    scale : float, default 0.02
        Noise size relative to each tensor's root mean square; 0 reads the base unchanged.
    name : str, optional
        Default ``"{base.name}+seed{seed}"``.

    Examples
    --------
    >>> tenant = PerturbedSource(base, seed=3)  # doctest: +SKIP
    """

    def __init__(self, base: Any, seed: int, scale: float = 0.02, *, name: str | None = None):
        self.base = open_source(base)
        check_type(seed, int, "seed")
        check_type(scale, (int, float), "scale")
        if scale < 0:
            raise ValueError(f"scale must be >= 0, got {scale}")
        self.seed, self.scale = seed, float(scale)
        self.name = check_name(name, "name") if name is not None else f"{self.base.name}+seed{seed}"
        self.config, self.family, self.dtype = self.base.config, self.base.family, self.base.dtype

    def __repr__(self) -> str:
        return f"PerturbedSource({self.base.name!r}, seed={self.seed}, scale={self.scale})"

    def _perturb(self, key: str, tensor: torch.Tensor) -> torch.Tensor:
        if self.scale == 0 or not tensor.is_floating_point():
            return tensor
        generator = torch.Generator(device=tensor.device)
        generator.manual_seed(zlib.crc32(f"{self.seed}:{key}".encode()))
        noise = torch.randn(
            tensor.shape, generator=generator, device=tensor.device, dtype=torch.float32
        )
        rms = tensor.detach().float().pow(2).mean().sqrt()
        return (tensor.detach().float() + self.scale * rms * noise).to(tensor.dtype)

    def expert_slots(self) -> list[ExpertSlot]:
        """The base's expert slots."""
        return self.base.expert_slots()

    def read_expert(self, slot: ExpertSlot) -> dict[str, torch.Tensor]:
        """The base expert plus this tenant's noise (a fresh tensor per matrix)."""
        return {
            m: self._perturb(f"expert:{slot.layer}:{slot.expert}:{m}", t)
            for m, t in self.base.read_expert(slot).items()
        }

    def read_router_weight(self, layer: int) -> torch.Tensor:
        """The base router weight plus noise (the same noise as the router's ``read_tensor``)."""
        weight = self.base.read_router_weight(layer)
        return self._perturb(self.family.router_parameter_name(self.config, layer), weight)

    def has_tensor(self, name: str) -> bool:
        """Whether the base stores that parameter."""
        return self.base.has_tensor(name)

    def read_tensor(self, name: str) -> torch.Tensor:
        """The base parameter plus noise."""
        return self._perturb(name, self.base.read_tensor(name))


def _unique(names: list[str]) -> list[str]:
    if len(set(names)) == len(names):
        return names
    # Models built in memory share their class name: number them in the given order.
    return [f"{name}[{i}]" for i, name in enumerate(names)]


def open_models(
    models: Mapping[str, ModelSource] | Sequence[ModelSource],
    at_least: int = 2,
    purpose: str = "comparing experts",
) -> tuple[list[str], list[WeightSource], MoEFamily]:
    """Open the models to compare and check that they share one architecture.

    Parameters
    ----------
    models : dict of str to ModelSource, or sequence of ModelSource
        A dict names the models; a sequence takes their names (models built in memory, which
        share their class name, are numbered).
    at_least : int, default 2
        Fewest models accepted.
    purpose : str, default "comparing experts"
        What needs them, for the message when too few are given.

    Returns
    -------
    names : list of str
    sources : list of WeightSource
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
        sources = [open_source(m) for m in models.values()]
    elif isinstance(models, Sequence) and not isinstance(models, (str, bytes)):
        sources = [open_source(m) for m in models]
        names = _unique([s.name for s in sources])
    else:
        raise TypeError(
            f"models must be a list of models/folders or a dict {{name: model or folder}}, got "
            f"{type(models).__name__}"
        )
    if len(sources) < at_least:
        raise ValueError(
            f"{purpose} needs at least {at_least} models, got {len(sources)}; pass a list "
            f"or a dict of models or checkpoint folders"
        )
    family = check_compatible(*sources) if len(sources) > 1 else sources[0].family
    return names, sources, family


def load_into(source: WeightSource, model: nn.Module) -> nn.Module:
    """Copy every tensor a source holds into a model of its family, in place.

    Materialises a source (e.g. a :class:`PerturbedSource` tenant) as an ordinary model, to
    compare a consolidated model against it.

    Parameters
    ----------
    source : WeightSource
        Where the weights come from.
    model : PreTrainedModel
        A model of the source's family and shapes; overwritten.

    Returns
    -------
    PreTrainedModel
        ``model``.
    """
    with torch.no_grad():
        for name, param in model.named_parameters():
            if source.has_tensor(name):
                param.copy_(source.read_tensor(name))
        for slot in source.family.expert_slots(model):
            source.family.set_expert(model, slot, source.read_expert(slot))
    return model
