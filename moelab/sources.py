"""Where a tenant's weights come from: one reading interface over folders, models and stand-ins.

Similarity, consolidation and the consolidated model's build read weights one piece at a
time (an expert, a router, one non-expert tensor) through :class:`WeightSource`, so nothing has
to hold a whole tenant in memory:

* :class:`~moelab.checkpoint.LazyCheckpoint`: a local safetensors folder, read lazily;
* :class:`~moelab.loading.MoEModel`: a model already in memory;
* :class:`PerturbedSource`: a base source plus seeded noise, computed on read where the base
  lives. It makes N Mixtral-8x7B-shaped tenants on a GPU whose disk cannot hold N checkpoints.
* :class:`RandomSource`: a model of seeded random weights, drawn on read on a chosen device
  and never stored: a Mixtral-8x7B-shaped base for tenants that need no checkpoint at all.

:func:`materialize` turns any source into an ordinary model on a device.

Tensors are named as the transformers model names its parameters (``model.named_parameters``);
a checkpoint that stores them under other names (the original per-expert Mixtral layout) is
translated by its family adapter.

Examples
--------
>>> base = load_moe(model)
>>> tenant = PerturbedSource(base, seed=1, scale=0.02)
>>> tenant.read_expert(ExpertSlot(0, 0))["w1"].shape
torch.Size([24, 16])
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from labcore.checks import check_name, check_type
from moelab.checkpoint import LazyCheckpoint
from moelab.families import ExpertSlot, MoEFamily, check_compatible, detect_family
from moelab.loading import load_moe

__all__ = [
    "ModelSource",
    "PerturbedSource",
    "RandomSource",
    "WeightSource",
    "load_into",
    "materialize",
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
    >>> tenant = PerturbedSource(base, seed=3)
    >>> tenant
    PerturbedSource('MixtralForCausalLM', seed=3, scale=0.02)
    """

    def __init__(self, base: Any, seed: int, scale: float = 0.02, *, name: str | None = None):
        self.base = open_source(base)
        check_type(seed, int, "seed")
        check_type(scale, (int, float), "scale")
        if not 0 <= scale < math.inf:
            raise ValueError(f"scale must be a finite number >= 0, got {scale}")
        self.seed, self.scale = seed, float(scale)
        self.name = check_name(name, "name") if name is not None else f"{self.base.name}+seed{seed}"
        self.config, self.family, self.dtype = self.base.config, self.base.family, self.base.dtype

    def __repr__(self) -> str:
        return f"PerturbedSource({self.base.name!r}, seed={self.seed}, scale={self.scale})"

    def _perturb(self, key: str, tensor: torch.Tensor) -> torch.Tensor:
        if self.scale == 0 or not tensor.is_floating_point():
            return tensor
        generator = _seeded(self.seed, key, tensor.device)
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


def _seeded(seed: int, key: str, device: torch.device) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(zlib.crc32(f"{seed}:{key}".encode()))
    return generator


class RandomSource:
    """A model of seeded random weights, drawn when a tensor is read and never stored.

    Matrices read as ``normal(0, std)``, vectors (norm weights) as ones, each from a generator
    seeded by ``(seed, tensor name)`` on ``device``: the same seed gives the same model on the
    same device, and reading a 93 GB Mixtral-8x7B-shaped model costs one tensor at a time.

    Parameters
    ----------
    config : PretrainedConfig
        The architecture (any supported family), e.g. ``MixtralConfig(...)``.
    seed : int, default 0
        Selects the weights.
    device : str or torch.device, default "cpu"
        Where tensors are drawn (and returned).
    dtype : torch.dtype, default torch.bfloat16
        Their dtype.
    std : float, optional
        Standard deviation of the matrices; the config's ``initializer_range`` by default
        (0.02 where the config has none).
    name : str, optional
        Default ``"random-{model_type}-seed{seed}"``.

    Raises
    ------
    UnsupportedModelError
        For a config of no supported family.

    Examples
    --------
    >>> from transformers import MixtralConfig
    >>> config = MixtralConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
    ...                        num_attention_heads=4, num_key_value_heads=2, vocab_size=100)
    >>> base = RandomSource(config, seed=0)
    >>> base.read_expert(base.expert_slots()[0])["w1"].shape
    torch.Size([128, 64])
    >>> torch.equal(base.read_tensor("lm_head.weight"), base.read_tensor("lm_head.weight"))
    True
    """

    def __init__(
        self,
        config: Any,
        seed: int = 0,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.bfloat16,
        std: float | None = None,
        name: str | None = None,
    ) -> None:
        from transformers import PretrainedConfig

        check_type(
            config,
            PretrainedConfig,
            "config",
            expected="a transformers config, e.g. MixtralConfig(...)",
        )
        self.family = detect_family(config)
        self.config = self.family.check_config(config)
        check_type(seed, int, "seed")
        check_type(dtype, torch.dtype, "dtype")
        self.seed, self.dtype, self.device = seed, dtype, torch.device(device)
        default_std = getattr(self.config, "initializer_range", None) or 0.02
        std = default_std if std is None else std
        check_type(std, (int, float), "std")
        if not 0 < std < math.inf:
            raise ValueError(f"std must be a finite number > 0, got {std}")
        self.std = float(std)
        default = f"random-{self.config.model_type}-seed{seed}"
        self.name = check_name(name, "name") if name is not None else default
        skeleton = self.family.meta_model(self.config, dtype)
        experts = {id(p) for p in self.family.expert_parameters(skeleton).values()}
        # Expert parameters are read per expert (read_expert), everything else by name; tied
        # parameters (input and output embeddings) read as one tensor, drawn under one name.
        first: dict[int, str] = {}
        self._shapes, self._drawn_as = {}, {}
        for n, p in skeleton.named_parameters(remove_duplicate=False):
            if id(p) not in experts:
                self._shapes[n] = tuple(p.shape)
                self._drawn_as[n] = first.setdefault(id(p), n)
        self._expert_shapes = self.family.expert_shapes(self.config)
        self._slots = set(self.family.expert_slots(self.config))

    def __repr__(self) -> str:
        return f"RandomSource({self.name!r}, device={str(self.device)!r}, dtype={self.dtype})"

    def _draw(self, key: str, shape: tuple[int, ...]) -> torch.Tensor:
        if len(shape) == 1:
            return torch.ones(shape, dtype=self.dtype, device=self.device)
        out = torch.empty(shape, dtype=self.dtype, device=self.device)
        return out.normal_(0.0, self.std, generator=_seeded(self.seed, key, self.device))

    def expert_slots(self) -> list[ExpertSlot]:
        """All expert slots, layer-major."""
        return self.family.expert_slots(self.config)

    def read_expert(self, slot: ExpertSlot) -> dict[str, torch.Tensor]:
        """One expert's ``{matrix: [out, in]}`` tensors, drawn afresh.

        Raises
        ------
        ValueError
            For a slot the model does not have.
        """
        if slot not in self._slots:
            raise ValueError(f"{self.name} has no expert slot {slot}")
        return {
            m: self._draw(f"expert:{slot.layer}:{slot.expert}:{m}", shape)
            for m, shape in self._expert_shapes.items()
        }

    def read_router_weight(self, layer: int) -> torch.Tensor:
        """One MoE layer's router weight (the same tensor as its ``read_tensor``)."""
        return self.read_tensor(self.family.router_parameter_name(self.config, layer))

    def has_tensor(self, name: str) -> bool:
        """Whether the model has a non-expert parameter of that name."""
        return name in self._shapes

    def read_tensor(self, name: str) -> torch.Tensor:
        """One non-expert parameter by its transformers name, drawn afresh.

        Raises
        ------
        KeyError
            For a name the model does not have, or an expert parameter (read those with
            :meth:`read_expert`).
        """
        if name not in self._shapes:
            raise KeyError(
                f"{self.name} has no non-expert parameter {name!r}; experts are read with "
                f"read_expert"
            )
        return self._draw(self._drawn_as[name], self._shapes[name])


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
    family = check_compatible(*sources, names=names) if len(sources) > 1 else sources[0].family
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


def materialize(
    source: ModelSource, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> nn.Module:
    """A source as an ordinary transformers model on a device.

    Parameters
    ----------
    source : WeightSource, model or folder
        E.g. a :class:`RandomSource` or :class:`PerturbedSource` (anything
        :func:`open_source` accepts).
    device : str or torch.device, default "cpu"
        Where the model is allocated (only once: no copy on another device first).
    dtype : torch.dtype, optional
        Parameter dtype; the source's by default.

    Returns
    -------
    PreTrainedModel
        In eval mode.
    """
    source = open_source(source)
    model = source.family.empty_model(source.config, device, dtype or source.dtype)
    return load_into(source, model)
