"""Load a mixture-of-experts model from a local folder and pair it with its family adapter."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from labcore.checks import check_type
from moelab.checkpoint import read_config, scan_safetensors
from moelab.families import ExpertSlot, MoEFamily, detect_family, get_family

if TYPE_CHECKING:
    import pandas as pd
    from transformers import PretrainedConfig

__all__ = ["MoEModel", "convert_to_safetensors", "load_moe"]

# Files whose presence means save_pretrained also wrote a tokenizer into the folder.
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "spiece.model")


@dataclass(frozen=True, eq=False)
class MoEModel:
    """A loaded MoE model together with its family adapter.

    Every method delegates to :attr:`family` with :attr:`model` filled in, so callers never
    pass the model twice.

    Parameters
    ----------
    model : PreTrainedModel
        The transformers model.
    family : MoEFamily
        Its adapter; must match ``model.config.model_type``.
    path : Path, optional
        The folder it was loaded from (None for a model built in memory).
    tokenizer : PreTrainedTokenizerBase, optional
        The tokenizer saved next to it, if any.

    Raises
    ------
    ValueError
        If ``model`` is not an ``nn.Module`` with a config.
    UnsupportedModelError
        If ``family`` does not handle the model.
    """

    model: nn.Module
    family: MoEFamily
    path: Path | None = None
    tokenizer: Any = None

    def __post_init__(self) -> None:
        check_type(self.model, nn.Module, "MoEModel.model")
        check_type(self.family, MoEFamily, "MoEModel.family")
        self.family.check_config(self.model)

    def __repr__(self) -> str:
        return (
            f"MoEModel(name={self.name!r}, family={self.family.name!r}, "
            f"moe_layers={self.family.num_moe_layers(self.config)}, "
            f"experts={self.family.num_experts(self.config)})"
        )

    @property
    def config(self) -> PretrainedConfig:
        """The model's transformers config."""
        return self.model.config

    @property
    def name(self) -> str:
        """A readable name: the folder name, else the model class name."""
        return self.path.name if self.path is not None else type(self.model).__name__

    def expert_slots(self) -> list[ExpertSlot]:
        """All expert slots (see :meth:`MoEFamily.expert_slots`)."""
        return self.family.expert_slots(self.model)

    def get_expert(self, slot: ExpertSlot) -> dict[str, torch.Tensor]:
        """One expert's matrices as views (see :meth:`MoEFamily.get_expert`)."""
        return self.family.get_expert(self.model, slot)

    # The WeightSource reading interface (moelab.sources), so a model in memory reads like a
    # checkpoint folder.
    read_expert = get_expert

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the expert weights."""
        return next(iter(self.family.expert_parameters(self.model).values())).dtype

    def has_tensor(self, name: str) -> bool:
        """Whether the model has a parameter of that name."""
        return name in dict(self.model.named_parameters(remove_duplicate=False))

    def read_tensor(self, name: str) -> torch.Tensor:
        """One parameter by name, detached (a view of the model's storage).

        Raises
        ------
        KeyError
            If the model has no such parameter.
        """
        params = dict(self.model.named_parameters(remove_duplicate=False))
        if name not in params:
            raise KeyError(f"{self.name} has no parameter {name!r}")
        return params[name].detach()

    def set_expert(self, slot: ExpertSlot, tensors: Mapping[str, torch.Tensor]) -> None:
        """Overwrite one expert in place (see :meth:`MoEFamily.set_expert`)."""
        self.family.set_expert(self.model, slot, tensors)

    def expert_forward(
        self, tensors: Mapping[str, torch.Tensor], hidden: torch.Tensor
    ) -> torch.Tensor:
        """Apply one expert's function to hidden states (see :meth:`MoEFamily.expert_forward`)."""
        return self.family.expert_forward(self.config, tensors, hidden)

    def moe_block(self, layer: int) -> nn.Module:
        """The sparse block of one MoE layer, for hooks (see :meth:`MoEFamily.moe_block`)."""
        return self.family.moe_block(self.model, layer)

    def router(self, layer: int) -> nn.Module:
        """The router module of one MoE layer."""
        return self.family.router(self.model, layer)

    def router_weight(self, layer: int) -> torch.Tensor:
        """The router weight ``[num_experts, hidden]`` of one MoE layer, as a view."""
        return self.family.router_weight(self.model, layer)

    read_router_weight = router_weight

    def non_expert_modules(self) -> dict[str, dict[str, nn.Module]]:
        """Non-expert modules by group (see :meth:`MoEFamily.non_expert_modules`)."""
        return self.family.non_expert_modules(self.model)

    def memory_table(self) -> pd.DataFrame:
        """Parameter bytes by group, dtype and device (see :meth:`MoEFamily.memory_table`)."""
        return self.family.memory_table(self.model)

    def expert_bytes(self) -> int:
        """Bytes held by expert parameters."""
        return self.family.expert_bytes(self.model)

    def non_expert_bytes(self) -> int:
        """Bytes held by all other parameters."""
        return self.family.non_expert_bytes(self.model)


def _load_tokenizer(folder: Path) -> Any:
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, local_files_only=True)


def load_moe(
    source: str | os.PathLike[str] | nn.Module | MoEModel,
    *,
    family: str | None = None,
    tokenizer: bool = True,
    **from_pretrained_kwargs: Any,
) -> MoEModel:
    """Load a mixture-of-experts model and pair it with its family adapter.

    Parameters
    ----------
    source : str or PathLike or PreTrainedModel or MoEModel
        A local checkpoint folder (written by ``save_pretrained``; nothing is downloaded), a
        model already built in memory, or a ``MoEModel`` (returned unchanged).
    family : str, optional
        Family name (see ``available_families()``); detected from the config by default.
    tokenizer : bool, default True
        Load the tokenizer saved in the folder, if there is one.
    **from_pretrained_kwargs
        Passed to ``from_pretrained`` (e.g. ``dtype=torch.bfloat16``, ``device_map``); only
        for a folder. ``local_files_only`` is always True.

    Returns
    -------
    MoEModel
        The model (in eval mode when loaded from a folder) with its adapter.

    Raises
    ------
    CheckpointNotFoundError
        If the folder, its ``config.json`` or its safetensors weights do not exist.
    UnsupportedModelError
        If the model is not of a supported MoE family; the message names its ``model_type``
        and the supported families.
    CorruptCheckpointError
        If a safetensors file is truncated or corrupt.
    ValueError
        If ``source`` has another type, ``local_files_only=False`` is passed, or
        ``from_pretrained`` kwargs come with an in-memory model.

    Examples
    --------
    >>> moe = load_moe(base_path, dtype=torch.bfloat16)  # a save_pretrained folder
    >>> moe.family.name, len(moe.expert_slots())
    ('mixtral', 8)
    """
    if isinstance(source, MoEModel):
        return source
    if isinstance(source, nn.Module):
        if from_pretrained_kwargs:
            raise ValueError(
                f"from_pretrained arguments {sorted(from_pretrained_kwargs)} only apply when "
                f"loading from a folder; the model passed in is already built"
            )
        adapter = get_family(family) if family is not None else detect_family(source)
        return MoEModel(model=source, family=adapter)
    check_type(
        source,
        (str, os.PathLike),
        "load_moe's source",
        expected="a checkpoint folder path, a transformers model or a MoEModel",
    )
    if from_pretrained_kwargs.pop("local_files_only", True) is not True:
        raise ValueError("load_moe only reads local folders; drop local_files_only=False")
    config = read_config(source)
    folder = Path(source).expanduser()
    adapter = get_family(family) if family is not None else detect_family(config)
    adapter.check_config(config)  # an explicit family must still fit the config
    # Reading every header first turns a truncated download into a clear error naming the file.
    scan_safetensors(folder)
    model = adapter.auto_model_class().from_pretrained(
        folder, local_files_only=True, **from_pretrained_kwargs
    )
    model.eval()
    return MoEModel(
        model=model,
        family=adapter,
        path=folder,
        tokenizer=_load_tokenizer(folder) if tokenizer else None,
    )


def convert_to_safetensors(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Re-save a ``pytorch_model*.bin`` checkpoint folder as safetensors, once.

    Lazy reading (similarity, consolidation) needs safetensors: a ``.bin`` file is a pickle,
    so reading one tensor loads the whole file. This loads the model with transformers
    (``weights_only`` unpickling) and writes ``save_pretrained`` output, tokenizer included.

    Parameters
    ----------
    source : str or PathLike
        Folder with ``config.json`` and ``pytorch_model*.bin``.
    target : str or PathLike
        New folder; must not exist yet.

    Returns
    -------
    Path
        The target folder.

    Raises
    ------
    FileExistsError
        If ``target`` exists.
    CheckpointNotFoundError
        If ``source`` has no config.
    """
    folder, out = Path(source).expanduser(), Path(target).expanduser()
    if out.exists():
        raise FileExistsError(f"{str(out)!r} exists; pass a new folder to convert into")
    config = read_config(folder)
    adapter = detect_family(config)
    model = adapter.auto_model_class().from_pretrained(
        folder, local_files_only=True, use_safetensors=False, dtype="auto"
    )
    model.save_pretrained(out)
    tokenizer = _load_tokenizer(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    return out
