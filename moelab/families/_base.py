"""The family protocol: what every adapter provides (value types in ``_types``).

A *family* adapter is the only place in moelab that knows how one architecture names and
stores its experts. Everything else speaks of :class:`ExpertSlot` objects and of expert
matrices by their family-level names (``"w1"``, ``"w2"``, ``"w3"`` for Mixtral, ``"wi"``,
``"wo"`` for Switch Transformers), each oriented as ``nn.Linear.weight`` is: ``[out, in]``.
"""

from __future__ import annotations

import copy
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from labcore.checks import check_type
from moelab.errors import UnsupportedModelError
from moelab.families._types import (
    EXPERTS_GROUP,
    OTHER_GROUP,
    CheckpointLayout,
    ExpertLayout,
    ExpertSlot,
    NonExpertGroup,
    TensorRef,
    check_index,
    config_of,
)

if TYPE_CHECKING:
    import pandas as pd
    from transformers import PretrainedConfig

__all__ = ["MoEFamily"]


class MoEFamily(ABC):
    """Adapter for one mixture-of-experts architecture.

    Subclasses are stateless; one instance per family lives in the registry of
    :mod:`moelab.families`. Methods that take ``model`` expect a transformers
    ``PreTrainedModel`` of this family (the ``...ForCausalLM`` / ``...ForConditionalGeneration``
    head model or its bare backbone); methods that take ``config`` accept a model too.

    Conventions shared by every family:

    * expert matrices are keyed by :meth:`expert_matrix_names` and shaped ``[out, in]``,
      exactly as ``nn.Linear.weight`` would be;
    * :meth:`get_expert` returns **views** that share storage with the model (detached from
      autograd): writing into them writes into the model; call ``.clone()`` for a copy;
    * :meth:`set_expert` copies in place under ``torch.no_grad()``, converting dtype and device.

    Parameter names mean the same in every method: ``model`` is a transformers model of this
    family, ``config`` its config (a model is accepted too), ``layer`` a global MoE-layer index
    (0 .. :meth:`num_moe_layers` - 1) and ``slot`` an :class:`ExpertSlot`.
    """

    #: Registry name, e.g. ``"mixtral"``.
    name: ClassVar[str]
    #: ``config.model_type`` values this adapter handles.
    model_types: ClassVar[tuple[str, ...]]
    #: Name of the transformers auto class that builds a full model of this family.
    auto_class_name: ClassVar[str]
    #: Expert matrix names, in a fixed order.
    matrix_names: ClassVar[tuple[str, ...]]
    #: How the model holds a layer's experts in memory (see :data:`ExpertLayout`); it decides
    #: how a consolidated model pools them.
    expert_layout: ClassVar[ExpertLayout]
    #: Ordered ``(group, regex)`` pairs; a module whose qualified name fully matches the regex
    #: belongs to that non-expert group. The first matching pair wins.
    non_expert_patterns: ClassVar[tuple[tuple[NonExpertGroup, str], ...]]

    # ----------------------------------------------------------------- structure (config)
    def matches(self, config: Any) -> bool:
        """Whether this adapter handles the given config (or model).

        Parameters
        ----------
        config : PretrainedConfig or PreTrainedModel
            The config to test.

        Returns
        -------
        bool
            True if ``config.model_type`` is one of :attr:`model_types`.
        """
        try:
            model_type = config_of(config).model_type
        except ValueError:
            return False
        return model_type in self.model_types

    def auto_model_class(self) -> type:
        """The transformers auto class used by ``load_moe`` to build a model of this family.

        Returns
        -------
        type
            E.g. ``transformers.AutoModelForCausalLM``.
        """
        import transformers

        return getattr(transformers, self.auto_class_name)

    @abstractmethod
    def num_experts(self, config: Any) -> int:
        """Number of experts per MoE layer.

        Returns
        -------
        int
            Experts per layer.
        """

    @abstractmethod
    def experts_per_token(self, config: Any) -> int:
        """How many experts the router picks per token (its top-k).

        Returns
        -------
        int
            ``k`` of the top-k routing.
        """

    @abstractmethod
    def layer_labels(self, config: Any) -> tuple[str, ...]:
        """Readable label of each MoE layer, indexed by the global MoE-layer index.

        Returns
        -------
        tuple of str
            ``labels[i]`` names MoE layer ``i``, e.g. ``"layers.3"`` or ``"decoder.block.1"``.
        """

    def num_moe_layers(self, config: Any) -> int:
        """Number of layers that hold experts.

        Returns
        -------
        int
            ``len(layer_labels(config))``.
        """
        return len(self.layer_labels(config))

    def expert_slots(self, model_or_config: Any) -> list[ExpertSlot]:
        """All expert slots, layer-major then expert, with labels filled in.

        Returns
        -------
        list of ExpertSlot
            ``num_moe_layers * num_experts`` slots.

        Examples
        --------
        >>> get_family("mixtral").expert_slots(config)[:2]  # doctest: +ELLIPSIS
        [ExpertSlot(layer=0, expert=0, label='layers.0'), ExpertSlot(layer=0, expert=1, ...)]
        """
        config = self.check_config(model_or_config)
        n_experts = self.num_experts(config)
        return [
            ExpertSlot(layer, expert, label)
            for layer, label in enumerate(self.layer_labels(config))
            for expert in range(n_experts)
        ]

    def expert_matrix_names(self) -> tuple[str, ...]:
        """Names of one expert's matrices, in a fixed order.

        Returns
        -------
        tuple of str
            E.g. ``("w1", "w2", "w3")`` for Mixtral, ``("wi", "wo")`` for Switch.
        """
        return self.matrix_names

    @abstractmethod
    def expert_shapes(self, config: Any) -> dict[str, tuple[int, int]]:
        """Shape ``[out, in]`` of each expert matrix.

        Returns
        -------
        dict of str to (int, int)
            One entry per :meth:`expert_matrix_names` name.
        """

    def non_expert_groups(self) -> tuple[str, ...]:
        """The non-expert groups this family has, in a fixed order.

        Returns
        -------
        tuple of str
            A subset of ``NON_EXPERT_GROUPS``.
        """
        return tuple(dict.fromkeys(group for group, _ in self.non_expert_patterns))

    # ------------------------------------------------------------------ model access
    @abstractmethod
    def moe_block(self, model: nn.Module, layer: int) -> nn.Module:
        """The module whose input is the hidden state every expert of ``layer`` sees.

        Register a forward hook on it to capture expert inputs (``args[0]``, shape
        ``(batch, seq, hidden)``) and the block's combined output.

        Returns
        -------
        nn.Module
            The sparse MLP block (router plus experts).
        """

    @abstractmethod
    def router(self, model: nn.Module, layer: int) -> nn.Module:
        """The router (gate) module of one MoE layer.

        Returns
        -------
        nn.Module
            The router; it maps hidden states to one logit per expert.
        """

    @abstractmethod
    def router_weight(self, model: nn.Module, layer: int) -> torch.Tensor:
        """The router's weight, ``[num_experts, hidden]``, as a detached view.

        Returns
        -------
        Tensor
            Row ``j`` scores expert ``j``.
        """

    @abstractmethod
    def get_expert(self, model: nn.Module, slot: ExpertSlot) -> dict[str, torch.Tensor]:
        """One expert's matrices as detached views into the model's parameters.

        Returns
        -------
        dict of str to Tensor
            ``{name: [out, in] tensor}`` for every name of :meth:`expert_matrix_names`. The
            tensors share storage with the model: clone them before changing the model if
            you need the old values.

        Raises
        ------
        ValueError
            If ``slot`` is out of range for this model.
        """

    @abstractmethod
    def expert_parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        """Every parameter that stores expert weights, by qualified name.

        Fused families return the whole ``[E, ...]`` tensors; used to account memory.

        Returns
        -------
        dict of str to Parameter
            Qualified parameter name to parameter.
        """

    @abstractmethod
    def expert_forward(
        self, config: Any, tensors: Mapping[str, torch.Tensor], hidden: torch.Tensor
    ) -> torch.Tensor:
        """The expert's pure function: what one expert computes from hidden states.

        No routing weight is applied. ``hidden`` is cast to the weights' dtype.

        Parameters
        ----------
        config : PretrainedConfig or PreTrainedModel
            Gives the activation function.
        tensors : mapping of str to Tensor
            One expert's matrices, as returned by :meth:`get_expert`.
        hidden : (..., hidden) Tensor
            Expert inputs (the input of :meth:`moe_block`).

        Returns
        -------
        (..., hidden) Tensor
            Expert outputs.
        """

    @abstractmethod
    def checkpoint_keys(
        self, config: Any, slot: ExpertSlot
    ) -> dict[CheckpointLayout, dict[str, TensorRef]]:
        """Where one expert's matrices are stored on disk, for every layout this family uses.

        Returns
        -------
        dict
            ``{layout: {matrix name: TensorRef}}``; keys are those of a head model
            (``...ForCausalLM`` / ``...ForConditionalGeneration``) checkpoint.
        """

    @abstractmethod
    def router_checkpoint_keys(self, config: Any, layer: int) -> dict[CheckpointLayout, TensorRef]:
        """Where one layer's router weight is stored on disk, for every layout.

        Returns
        -------
        dict
            ``{layout: TensorRef}``.
        """

    # ------------------------------------------------------------- shared implementation
    def meta_model(self, config: Any, dtype: torch.dtype | None = None) -> nn.Module:
        """A model of this family with every tensor on the ``meta`` device (no memory).

        Its parameter names, shapes and ties are those of a loaded model; a consolidated model
        is built on it by binding real tensors, so no full model is ever allocated.

        Parameters
        ----------
        dtype : torch.dtype, optional
            Parameter dtype (the config's by default).

        Returns
        -------
        PreTrainedModel
            In eval mode.
        """
        # A copy: settings a model keeps on its config (its experts implementation) stay its own.
        config = copy.deepcopy(self.check_config(config))
        with torch.device("meta"):
            kwargs = {"dtype": dtype} if dtype is not None else {}
            model = self.auto_model_class().from_config(config, **kwargs)
        return model.eval()

    def init_buffers(self, model: nn.Module, device: str | torch.device) -> None:
        """Give a meta model real buffers (rotary tables, ...), computed as transformers does.

        Parameters
        ----------
        model : PreTrainedModel
            A model of this family, e.g. from :meth:`meta_model`; changed in place.
        device : str or torch.device
            Where the buffers go.
        """
        for module in model.modules():
            own = [(n, b) for n, b in module._buffers.items() if b is not None]
            if not own:
                continue
            for name, buffer in own:
                module._buffers[name] = torch.empty_like(buffer, device=device)
            # Buffers are computed from the config by the model's own initialiser; parameters
            # of such a module (none in the supported families) would stay uninitialised.
            with torch.no_grad():
                model._init_weights(module)

    def empty_model(
        self, config: Any, device: str | torch.device, dtype: torch.dtype | None = None
    ) -> nn.Module:
        """A model of this family allocated on ``device``: parameters uninitialised, buffers set.

        Parameters
        ----------
        config : PretrainedConfig
            The model's config.
        device : str or torch.device
            Where it is allocated.
        dtype : torch.dtype, optional
            Parameter dtype (the config's by default).

        Returns
        -------
        PreTrainedModel
            In eval mode, tied weights tied again; fill its parameters before use.
        """
        model = self.meta_model(config, dtype)
        model.to_empty(device=device)  # new Parameter objects: tie them again
        model.tie_weights()
        self.init_buffers(model, device)
        return model

    def live_expert_refs(self, config: Any, slot: ExpertSlot) -> dict[str, TensorRef]:
        """Where one expert's matrices live in the transformers model (its parameter names).

        The transformers model stores experts in this family's :attr:`expert_layout`, which is
        also the name of the checkpoint layout with the same tensor names.

        Returns
        -------
        dict of str to TensorRef
            ``{matrix name: TensorRef}``; ``ref.key`` is a name of ``model.named_parameters()``.
        """
        return self.checkpoint_keys(config, slot)[self.expert_layout]

    def router_parameter_name(self, config: Any, layer: int) -> str:
        """The transformers parameter name of one MoE layer's router weight.

        Returns
        -------
        str
            A name of ``model.named_parameters()``.
        """
        return self.router_checkpoint_keys(config, layer)[self.expert_layout].key

    def set_expert(
        self, model: nn.Module, slot: ExpertSlot, tensors: Mapping[str, torch.Tensor]
    ) -> None:
        """Overwrite one expert in place.

        Parameters
        ----------
        model : PreTrainedModel
            A model of this family; changed in place.
        tensors : mapping of str to Tensor
            Exactly the names of :meth:`expert_matrix_names`, each of the model's ``[out, in]``
            shape; values are converted to the model's dtype and device.

        Raises
        ------
        ValueError
            If names are missing or extra, or a shape differs.

        Examples
        --------
        >>> fam.set_expert(model_a, slot, fam.get_expert(model_b, slot))
        """
        targets = self.get_expert(model, slot)
        self._check_tensors(targets, tensors, slot)
        with torch.no_grad():
            for name, target in targets.items():
                target.copy_(tensors[name])

    def non_expert_modules(self, model: nn.Module) -> dict[str, dict[str, nn.Module]]:
        """Every module that is not an expert, grouped.

        These are what a tenant keeps of its own when experts are pooled: embeddings,
        attention, norms, lm_head and router (plus, for Switch, the dense MLPs of the
        non-sparse blocks). Tied weights appear under every module that uses them.

        Returns
        -------
        dict of str to dict of str to nn.Module
            ``{group: {qualified module name: module}}`` for every group of
            :meth:`non_expert_groups` (possibly empty, e.g. ``lm_head`` of a bare backbone).
        """
        self._check_model(model)
        groups: dict[str, dict[str, nn.Module]] = {g: {} for g in self.non_expert_groups()}
        compiled = [(g, re.compile(p)) for g, p in self.non_expert_patterns]
        for qualified, module in model.named_modules():
            for group, pattern in compiled:
                if pattern.fullmatch(qualified):
                    groups[group][qualified] = module
                    break
        return groups

    def parameter_groups(self, model: nn.Module) -> dict[str, str]:
        """The group of every parameter: ``"experts"``, a non-expert group, or ``"other"``.

        Tied parameters are listed once, under their first name, and belong to the first
        group (in :meth:`non_expert_groups` order) that holds them.

        Returns
        -------
        dict of str to str
            Qualified parameter name (as ``model.named_parameters()`` yields it) to group:
            ``"experts"`` for :meth:`expert_parameters`, a name of :data:`NON_EXPERT_GROUPS`,
            or ``"other"`` for anything no pattern of :attr:`non_expert_patterns` claims.

        Examples
        --------
        >>> get_family("mixtral").parameter_groups(model)["model.layers.0.mlp.gate.weight"]
        'router'
        """
        owner: dict[int, str] = {}
        for param in self.expert_parameters(model).values():
            owner[id(param)] = EXPERTS_GROUP
        for group, modules in self.non_expert_modules(model).items():
            for module in modules.values():
                for param in module.parameters():
                    owner.setdefault(id(param), group)
        return {name: owner.get(id(p), OTHER_GROUP) for name, p in model.named_parameters()}

    def memory_table(self, model: nn.Module) -> pd.DataFrame:
        """Parameter memory by group, dtype and device.

        Tied parameters are counted once, under the first group that holds them.

        Returns
        -------
        pandas.DataFrame
            Columns ``group`` (``"experts"``, a non-expert group, or ``"other"`` for anything no
            pattern claims), ``dtype``, ``device``, ``parameters``, ``bytes``; one row per
            combination present.
        """
        import pandas as pd

        group_of = self.parameter_groups(model)
        rows: dict[tuple[str, str, str], list[int]] = {}
        for name, param in model.named_parameters():  # deduplicates tied parameters
            key = (group_of[name], str(param.dtype), str(param.device))
            acc = rows.setdefault(key, [0, 0])
            acc[0] += param.numel()
            acc[1] += param.numel() * param.element_size()
        records = [
            {"group": g, "dtype": d, "device": dev, "parameters": n, "bytes": b}
            for (g, d, dev), (n, b) in rows.items()
        ]
        columns = ["group", "dtype", "device", "parameters", "bytes"]
        return pd.DataFrame.from_records(records, columns=columns)

    def expert_bytes(self, model: nn.Module) -> int:
        """Bytes held by expert parameters.

        Returns
        -------
        int
            Sum of ``bytes`` over the ``"experts"`` rows of :meth:`memory_table`.
        """
        table = self.memory_table(model)
        return int(table.loc[table["group"] == EXPERTS_GROUP, "bytes"].sum())

    def non_expert_bytes(self, model: nn.Module) -> int:
        """Bytes held by every parameter that is not an expert's.

        Returns
        -------
        int
            Sum of ``bytes`` over the non-expert rows of :meth:`memory_table`.
        """
        table = self.memory_table(model)
        return int(table.loc[table["group"] != EXPERTS_GROUP, "bytes"].sum())

    # ---------------------------------------------------------------------- helpers
    def check_config(self, model_or_config: Any) -> PretrainedConfig:
        """Return the config of a model of this family, or raise.

        Parameters
        ----------
        model_or_config : PreTrainedModel or PretrainedConfig
            Anything :func:`config_of` accepts.

        Returns
        -------
        PretrainedConfig
            Its config.

        Raises
        ------
        UnsupportedModelError
            If this adapter does not handle the config's ``model_type``.
        """
        config = config_of(model_or_config)
        if config.model_type not in self.model_types:
            raise UnsupportedModelError(
                f"the {self.name!r} adapter handles model_type {list(self.model_types)}, got "
                f"{config.model_type!r}; use moelab.families.detect_family to pick the right one"
            )
        return config

    def _check_model(self, model: nn.Module) -> PretrainedConfig:
        check_type(model, nn.Module, "model", expected="a transformers model (nn.Module)")
        return self.check_config(model)

    def _check_layer(self, config: Any, layer: int) -> None:
        check_index(layer, "layer")
        n_layers = self.num_moe_layers(config)
        if layer >= n_layers:
            raise ValueError(
                f"MoE layer {layer} is out of range: this {self.name} model has {n_layers} MoE "
                f"layers (0..{n_layers - 1})"
            )

    def _check_slot(self, config: Any, slot: ExpertSlot) -> None:
        check_type(slot, ExpertSlot, "slot")
        self._check_layer(config, slot.layer)
        n_experts = self.num_experts(config)
        if slot.expert >= n_experts:
            raise ValueError(
                f"expert {slot.expert} is out of range: this {self.name} model has {n_experts} "
                f"experts per layer (0..{n_experts - 1})"
            )

    def _check_tensors(
        self,
        expected: Mapping[str, torch.Tensor],
        tensors: Mapping[str, torch.Tensor],
        slot: ExpertSlot,
    ) -> None:
        missing = sorted(set(expected) - set(tensors))
        extra = sorted(set(tensors) - set(expected))
        if missing or extra:
            raise ValueError(
                f"set_expert({slot}) needs exactly the {self.name} matrices "
                f"{list(self.matrix_names)}; missing {missing}, unexpected {extra}"
            )
        for name, target in expected.items():
            got = tuple(tensors[name].shape)
            if got != tuple(target.shape):
                raise ValueError(
                    f"set_expert({slot}): matrix {name!r} has shape {got}, the model expects "
                    f"{tuple(target.shape)} ([out, in], as nn.Linear.weight)"
                )
