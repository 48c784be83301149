"""The value types of the family protocol: expert slots, tensor references, group and layout names.

Everything outside :mod:`moelab.families` speaks of :class:`ExpertSlot` objects and of expert
matrices by their family-level names, each oriented as ``nn.Linear.weight`` is: ``[out, in]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

import torch

if TYPE_CHECKING:
    from transformers import PretrainedConfig

from labcore.checks import check_int, check_name, check_type

__all__ = [
    "CHECKPOINT_LAYOUTS",
    "EXPERTS_GROUP",
    "EXPERT_LAYOUTS",
    "NON_EXPERT_GROUPS",
    "OTHER_GROUP",
    "CheckpointLayout",
    "ExpertLayout",
    "ExpertSlot",
    "NonExpertGroup",
    "TensorRef",
    "check_index",
    "config_of",
]

NonExpertGroup = Literal[
    "embeddings", "attention", "norms", "lm_head", "router", "dense_mlp", "shared_expert"
]
"""Groups of non-expert modules: what a tenant keeps of its own when experts are shared."""
NON_EXPERT_GROUPS: tuple[str, ...] = get_args(NonExpertGroup)

CheckpointLayout = Literal["fused", "per_expert"]
"""How expert tensors are named on disk.

``"fused"``: the transformers-5 in-memory layout, one 3-D tensor per layer holding all experts
(written by ``save_pretrained(..., save_original_format=False)``).
``"per_expert"``: one 2-D tensor per expert and matrix, as in the original hub checkpoints
(written by ``save_pretrained`` by default, which converts back to the original names).
"""
CHECKPOINT_LAYOUTS: tuple[str, ...] = get_args(CheckpointLayout)

ExpertLayout = Literal["fused", "per_expert"]
"""How a model in memory holds the experts of one layer.

``"fused"``: one ``[E, ...]`` parameter per matrix holds all experts of the layer (Mixtral and
OLMoE in transformers 5). ``"per_expert"``: one parameter per expert and matrix (Switch
Transformers).
"""
EXPERT_LAYOUTS: tuple[str, ...] = get_args(ExpertLayout)

#: Name of the memory-table group that holds every expert parameter.
EXPERTS_GROUP = "experts"
#: Name of the memory-table group for parameters no adapter pattern claims.
OTHER_GROUP = "other"


def check_index(value: Any, what: str) -> None:
    check_int(value, what, minimum=0)


@dataclass(frozen=True, order=True)
class ExpertSlot:
    """One expert position in a mixture-of-experts model.

    Parameters
    ----------
    layer : int
        Global index of the MoE layer, counting only layers that hold experts, from 0, in the
        order the model runs them. For a decoder-only model (Mixtral, OLMoE) it equals the
        decoder layer index. For Switch Transformers, which has experts in every other block of
        the encoder and of the decoder, the encoder's MoE blocks come first, then the decoder's:
        with 12 + 12 blocks and a sparse step of 2, layers 0..5 are ``encoder.block.1, 3, ..., 11``
        and layers 6..11 are ``decoder.block.1, 3, ..., 11``.
    expert : int
        Index of the expert inside that layer, from 0.
    label : str, optional
        Readable name of the layer, e.g. ``"layers.3"`` or ``"encoder.block.1"``. Filled in by
        :meth:`MoEFamily.expert_slots`; not part of equality or hashing, so
        ``ExpertSlot(1, 2) == ExpertSlot(1, 2, "layers.1")``.

    Raises
    ------
    ValueError
        If ``layer`` or ``expert`` is not a non-negative int.

    Examples
    --------
    >>> ExpertSlot(0, 3, "encoder.block.1")
    ExpertSlot(layer=0, expert=3, label='encoder.block.1')
    >>> ExpertSlot(0, 3) == ExpertSlot(0, 3, "encoder.block.1")
    True
    """

    layer: int
    expert: int
    label: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        check_index(self.layer, "ExpertSlot.layer")
        check_index(self.expert, "ExpertSlot.expert")
        check_type(self.label, str, "ExpertSlot.label")

    def __str__(self) -> str:
        where = self.label or f"moe_layer.{self.layer}"
        return f"{where}/expert.{self.expert}"

    def as_dict(self) -> dict[str, int | str]:
        """Return ``{"layer", "expert", "label"}``, one tidy DataFrame row.

        Returns
        -------
        dict
            The three fields.
        """
        return {"layer": self.layer, "expert": self.expert, "label": self.label}


@dataclass(frozen=True)
class TensorRef:
    """Where one expert matrix lives in a state dict or a safetensors file.

    The matrix is ``tensor[key]``, then indexed by ``expert`` on dimension 0 if given, then
    restricted to rows ``rows[0]:rows[1]`` if given.

    Parameters
    ----------
    key : str
        Full tensor name in the state dict or the checkpoint.
    expert : int, optional
        Index along dimension 0 of a fused ``[E, ...]`` tensor.
    rows : (int, int), optional
        Half-open row range inside the selected matrix (e.g. the gate half of ``gate_up_proj``).

    Raises
    ------
    ValueError
        If ``key`` is empty, ``expert`` is negative, or ``rows`` is not an increasing pair.

    Examples
    --------
    >>> TensorRef("model.layers.0.mlp.experts.gate_up_proj", expert=2, rows=(0, 14336))
    TensorRef(key='model.layers.0.mlp.experts.gate_up_proj', expert=2, rows=(0, 14336))
    """

    key: str
    expert: int | None = None
    rows: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        check_name(self.key, "TensorRef.key")
        if self.expert is not None:
            check_index(self.expert, "TensorRef.expert")
        if self.rows is not None:
            ok = (
                isinstance(self.rows, tuple)
                and len(self.rows) == 2
                and all(isinstance(r, int) and not isinstance(r, bool) for r in self.rows)
                and 0 <= self.rows[0] < self.rows[1]
            )
            if not ok:
                raise ValueError(
                    f"TensorRef.rows must be a (start, stop) pair of ints with 0 <= start < stop, "
                    f"got {self.rows!r}"
                )

    @property
    def index(self) -> tuple[int | slice, ...]:
        """The indexing tuple to apply to the named tensor (empty: the whole tensor)."""
        index: tuple[int | slice, ...] = ()
        if self.expert is not None:
            index += (self.expert,)
        if self.rows is not None:
            index += (slice(*self.rows),)
        return index

    def take(self, state_dict: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Read the referenced matrix from an in-memory state dict.

        Parameters
        ----------
        state_dict : mapping of str to Tensor
            E.g. ``model.state_dict()`` or ``safetensors.torch.load_file(path)``.

        Returns
        -------
        Tensor
            A view of the stored tensor.

        Raises
        ------
        KeyError
            If ``key`` is not in the state dict.
        """
        tensor = state_dict[self.key]
        return tensor[self.index] if self.index else tensor


def config_of(model_or_config: Any) -> PretrainedConfig:
    """Return the transformers config of a model, or the config itself.

    Parameters
    ----------
    model_or_config : PreTrainedModel or PretrainedConfig or object with ``.config``
        Anything that is or carries a transformers config (``MoEModel`` and ``LazyCheckpoint``
        carry one).

    Returns
    -------
    PretrainedConfig
        The config.

    Raises
    ------
    ValueError
        If no config can be found.
    """
    from transformers import PretrainedConfig

    if isinstance(model_or_config, PretrainedConfig):
        return model_or_config
    config = getattr(model_or_config, "config", None)
    if isinstance(config, PretrainedConfig):
        return config
    raise ValueError(
        f"expected a transformers PreTrainedModel or PretrainedConfig, got "
        f"{type(model_or_config).__name__}; load the model with moelab.load_moe first"
    )
