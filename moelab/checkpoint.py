"""Read single experts straight from safetensors checkpoints, without building the model.

A Mixtral-8x7B checkpoint is about 93 GB in bf16, one expert 352 MB: comparing two such models
slot by slot only needs two experts in memory at a time. :class:`LazyCheckpoint` maps tensor
names to shard files (through ``model.safetensors.index.json`` when sharded) and reads one
expert's rows with ``safetensors.safe_open(...).get_slice``, which copies only those bytes.
Both on-disk layouts are read: the fused transformers-5 names and the original per-expert names
(see :data:`moelab.families.CHECKPOINT_LAYOUTS`).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from moelab.errors import CheckpointNotFoundError, CorruptCheckpointError
from moelab.families import (
    CheckpointLayout,
    ExpertSlot,
    MoEFamily,
    TensorRef,
    detect_family,
    get_family,
)

if TYPE_CHECKING:
    from transformers import PretrainedConfig

__all__ = ["LazyCheckpoint", "read_config", "scan_safetensors"]

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
CONFIG_FILE = "config.json"


def _folder(path: str | os.PathLike[str]) -> Path:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise CheckpointNotFoundError(
            f"checkpoint folder {str(folder)!r} {what}; pass a local folder written by "
            f"save_pretrained (nothing is downloaded)"
        )
    return folder


def _corrupt(file: Path, err: Exception) -> CorruptCheckpointError:
    return CorruptCheckpointError(
        f"safetensors file {str(file)!r} is truncated or corrupt ({err}); re-download it or "
        f"re-save the model with save_pretrained"
    )


def read_config(path: str | os.PathLike[str]) -> PretrainedConfig:
    """Load the transformers config of a local checkpoint folder.

    Parameters
    ----------
    path : str or PathLike
        Folder holding ``config.json``.

    Returns
    -------
    PretrainedConfig
        The config, built with ``AutoConfig.from_pretrained(path, local_files_only=True)``.

    Raises
    ------
    CheckpointNotFoundError
        If the folder or its ``config.json`` does not exist.
    CorruptCheckpointError
        If ``config.json`` cannot be parsed.
    """
    from transformers import AutoConfig

    folder = _folder(path)
    config_file = folder / CONFIG_FILE
    if not config_file.is_file():
        raise CheckpointNotFoundError(
            f"no {CONFIG_FILE} in {str(folder)!r}; a checkpoint folder written by save_pretrained "
            f"holds config.json next to the safetensors files"
        )
    try:
        json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptCheckpointError(
            f"{str(config_file)!r} is not valid JSON ({err}); re-download it or re-save the model"
        ) from err
    return AutoConfig.from_pretrained(folder, local_files_only=True)


def _header_keys(file: Path) -> list[str]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(file, framework="pt") as handle:
            return list(handle.keys())
    except SafetensorError as err:
        raise _corrupt(file, err) from err


def scan_safetensors(path: str | os.PathLike[str]) -> dict[str, Path]:
    """Map every tensor name of a checkpoint folder to the file that holds it.

    Every file's header is opened, which also catches truncated files (safetensors checks that
    the data section covers every tensor the header lists).

    Parameters
    ----------
    path : str or PathLike
        Folder with ``model.safetensors`` or ``model.safetensors.index.json`` plus shards.

    Returns
    -------
    dict of str to Path
        Tensor name to file.

    Raises
    ------
    CheckpointNotFoundError
        If the folder has no safetensors weights, or the index names a missing shard.
    CorruptCheckpointError
        If a file is truncated or corrupt, the index is unreadable, or a shard lacks a tensor
        the index assigns to it.
    """
    folder = _folder(path)
    index_file = folder / INDEX_FILE
    if index_file.is_file():
        try:
            weight_map: dict[str, str] = json.loads(index_file.read_text("utf-8"))["weight_map"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
            raise CorruptCheckpointError(
                f"{str(index_file)!r} is not a valid safetensors index ({err!r}); re-download it "
                f"or re-save the model with save_pretrained"
            ) from err
        by_file: dict[str, set[str]] = defaultdict(set)
        for key, shard in weight_map.items():
            by_file[shard].add(key)
        mapping: dict[str, Path] = {}
        for shard, keys in sorted(by_file.items()):
            file = folder / shard
            if not file.is_file():
                raise CheckpointNotFoundError(
                    f"shard {str(file)!r} named by {INDEX_FILE} does not exist; re-download the "
                    f"checkpoint or re-save it with save_pretrained"
                )
            missing = keys - set(_header_keys(file))
            if missing:
                raise CorruptCheckpointError(
                    f"safetensors file {str(file)!r} lacks {len(missing)} tensors its index "
                    f"assigns to it (e.g. {sorted(missing)[0]!r}); the file is truncated or "
                    f"corrupt: re-download it or re-save the model with save_pretrained"
                )
            mapping.update(dict.fromkeys(keys, file))
        return mapping
    single = folder / SINGLE_FILE
    if single.is_file():
        return dict.fromkeys(_header_keys(single), single)
    if any(folder.glob("pytorch_model*.bin")):
        raise CheckpointNotFoundError(
            f"{str(folder)!r} holds only pytorch_model*.bin weights, which cannot be read lazily "
            f"(a .bin file is a pickle: reading one tensor loads the whole file). "
            f"Convert it once to safetensors:\n"
            f"    python -m moelab convert {str(folder)!r} {str(folder) + '-safetensors'!r}"
        )
    raise CheckpointNotFoundError(f"no {SINGLE_FILE} or {INDEX_FILE} in {str(folder)!r}")


_SAFETENSORS_DTYPES = {
    "BF16": torch.bfloat16,
    "F16": torch.float16,
    "F32": torch.float32,
    "F64": torch.float64,
}


def _header_dtype(file: Path, key: str) -> torch.dtype:
    from safetensors import safe_open

    with safe_open(file, framework="pt") as handle:
        name = handle.get_slice(key).get_dtype()
    if name not in _SAFETENSORS_DTYPES:
        raise CorruptCheckpointError(f"{key!r} in {str(file)!r} has dtype {name}, not a float")
    return _SAFETENSORS_DTYPES[name]


class LazyCheckpoint:
    """A checkpoint folder read one expert at a time.

    Parameters
    ----------
    path : str or PathLike
        Local folder written by ``save_pretrained`` (``config.json`` plus ``model.safetensors``
        or sharded files with ``model.safetensors.index.json``).
    family : str or MoEFamily, optional
        Family adapter to use; detected from the config by default.

    Attributes
    ----------
    path : Path
        The folder.
    config : PretrainedConfig
        Its config.
    family : MoEFamily
        Its family adapter.
    layout : {"fused", "per_expert"}
        How its expert tensors are named on disk.

    Raises
    ------
    CheckpointNotFoundError
        If the folder, ``config.json`` or the weights are missing.
    UnsupportedModelError
        If the config is not of a supported MoE family.
    CorruptCheckpointError
        If a safetensors file is truncated or corrupt, or holds no expert tensors in a known
        layout.

    Examples
    --------
    >>> ckpt = LazyCheckpoint(base_path)  # a save_pretrained folder
    >>> w = ckpt.read_expert(ckpt.expert_slots()[0])
    >>> sorted(w), w["w1"].shape
    (['w1', 'w2', 'w3'], torch.Size([24, 16]))
    """

    def __init__(self, path: str | os.PathLike[str], *, family: str | MoEFamily | None = None):
        self.path = _folder(path)
        self.config = read_config(self.path)
        if family is None:
            self.family = detect_family(self.config)
        else:
            self.family = get_family(family) if isinstance(family, str) else family
            self.family.check_config(self.config)  # raises if the adapter does not fit the config
        self._files = scan_safetensors(self.path)
        self.layout: CheckpointLayout = self._detect_layout()
        self._renames: dict[str, str] | None = None

    def __repr__(self) -> str:
        return (
            f"LazyCheckpoint({str(self.path)!r}, family={self.family.name!r}, "
            f"layout={self.layout!r}, files={len(self.files)})"
        )

    @property
    def name(self) -> str:
        """The folder's name, used in messages and tables."""
        return self.path.name

    @property
    def files(self) -> tuple[Path, ...]:
        """The safetensors files of the checkpoint, sorted."""
        return tuple(sorted(set(self._files.values())))

    def tensor_names(self) -> list[str]:
        """Every tensor name stored in the checkpoint, sorted.

        Returns
        -------
        list of str
            The names.
        """
        return sorted(self._files)

    def expert_slots(self) -> list[ExpertSlot]:
        """All expert slots, as :meth:`MoEFamily.expert_slots` lists them.

        Returns
        -------
        list of ExpertSlot
            Layer-major, labelled.
        """
        return self.family.expert_slots(self.config)

    def expert_shapes(self) -> dict[str, tuple[int, int]]:
        """Shape ``[out, in]`` of each expert matrix, from the config.

        Returns
        -------
        dict of str to (int, int)
            One entry per expert matrix name.
        """
        return self.family.expert_shapes(self.config)

    def read_expert(self, slot: ExpertSlot) -> dict[str, torch.Tensor]:
        """Read one expert's matrices from disk.

        Parameters
        ----------
        slot : ExpertSlot
            Which expert.

        Returns
        -------
        dict of str to Tensor
            ``{name: [out, in] tensor}`` on the CPU, in the stored dtype; equal to
            ``family.get_expert(model, slot)`` on the loaded model.

        Raises
        ------
        ValueError
            If ``slot`` is out of range.
        CorruptCheckpointError
            If a file cannot be read or a tensor's shape disagrees with the config.
        """
        refs = self.family.checkpoint_keys(self.config, slot)[self.layout]
        tensors = self._read(refs)
        expected = self.expert_shapes()
        for name, tensor in tensors.items():
            if tuple(tensor.shape) != expected[name]:
                raise CorruptCheckpointError(
                    f"{slot}: matrix {name!r} read from {str(self._files[refs[name].key])!r} has "
                    f"shape {tuple(tensor.shape)}, but config.json implies {expected[name]}; the "
                    f"config and the weights do not belong together"
                )
        return tensors

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the expert weights are stored in (read from a safetensors header)."""
        ref = next(
            iter(self.family.checkpoint_keys(self.config, ExpertSlot(0, 0))[self.layout].values())
        )
        return _header_dtype(self._files[ref.key], ref.key)

    def has_tensor(self, name: str) -> bool:
        """Whether the parameter of that transformers name is stored (under any layout's name)."""
        return self._key_of(name) in self._files

    def read_tensor(self, name: str) -> torch.Tensor:
        """Read one parameter by its transformers name (e.g. ``"model.norm.weight"``).

        The router is the only non-expert tensor whose name on disk depends on the layout; it
        is translated through the family adapter.

        Raises
        ------
        KeyError
            If the checkpoint stores no such tensor.
        """
        key = self._key_of(name)
        if key not in self._files:
            raise KeyError(f"{self.name} stores no tensor {name!r}")
        return self._read({name: TensorRef(key)})[name]

    def _key_of(self, name: str) -> str:
        if self._renames is None:
            live, disk = self.family.expert_layout, self.layout
            self._renames = {}
            for layer in range(self.family.num_moe_layers(self.config)):
                refs = self.family.router_checkpoint_keys(self.config, layer)
                self._renames[refs[live].key] = refs[disk].key
        return self._renames.get(name, name)

    def read_router_weight(self, layer: int) -> torch.Tensor:
        """Read one MoE layer's router weight ``[num_experts, hidden]`` from disk.

        Parameters
        ----------
        layer : int
            Global MoE-layer index.

        Returns
        -------
        Tensor
            Equal to ``family.router_weight(model, layer)`` on the loaded model.
        """
        ref = self.family.router_checkpoint_keys(self.config, layer)[self.layout]
        return self._read({"router": ref})["router"]

    # ---------------------------------------------------------------------- helpers
    def _detect_layout(self) -> CheckpointLayout:
        probe = ExpertSlot(0, 0)
        layouts = self.family.checkpoint_keys(self.config, probe)
        for layout, refs in layouts.items():
            if all(ref.key in self._files for ref in refs.values()):
                return layout
        expected = "; ".join(
            f"{layout}: {next(iter(refs.values())).key!r}" for layout, refs in layouts.items()
        )
        raise CorruptCheckpointError(
            f"no expert tensors of a known layout in {str(self.path)!r} (looked for {expected}); "
            f"the weights do not match config.json ({self.family.name}) or are incomplete: "
            f"re-download the checkpoint or re-save it with save_pretrained"
        )

    def _read(self, refs: dict[str, TensorRef]) -> dict[str, torch.Tensor]:
        from safetensors import SafetensorError, safe_open

        by_file: dict[Path, list[str]] = defaultdict(list)
        for name, ref in refs.items():
            if ref.key not in self._files:
                raise CorruptCheckpointError(
                    f"tensor {ref.key!r} is missing from {str(self.path)!r}; the checkpoint is "
                    f"incomplete: re-download it or re-save it with save_pretrained"
                )
            by_file[self._files[ref.key]].append(name)
        out: dict[str, torch.Tensor] = {}
        for file, names in by_file.items():
            try:
                with safe_open(file, framework="pt", device="cpu") as handle:
                    for name in names:
                        ref = refs[name]
                        out[name] = (
                            handle.get_slice(ref.key)[ref.index]
                            if ref.index
                            else handle.get_tensor(ref.key)
                        )
            except SafetensorError as err:
                raise _corrupt(file, err) from err
        return {name: out[name] for name in refs}
