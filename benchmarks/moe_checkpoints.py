"""Synthetic Mixtral-family checkpoints and peak-memory readings, shared by the memory benchmarks.

A pair of checkpoints stands in for two fine-tunes of one base: ``a`` has random weights
(std :data:`WEIGHT_STD`, norms at one) and ``b`` is ``a`` plus small noise. Both are written in
the original per-expert layout that ``save_pretrained`` writes (``block_sparse_moe.experts.{j}.
w1|w2|w3``), one safetensors shard per decoder layer plus one for the rest, with
``model.safetensors.index.json``; :func:`check_names_match_save_pretrained` checks the tensor
names against ``save_pretrained`` on a tiny model of the same depth.

* :func:`write_pair`: float32, one whole shard of each checkpoint in memory at a time.
* :func:`stream_pair`: any float dtype (bfloat16 by default), written tensor by tensor into
  pre-computed safetensors headers, so the writer holds one tensor of each checkpoint at a time.

Peak memory is read from ``/proc/self/status`` on Linux (:func:`peak_rss_bytes`).

Run as a script, it checks on a tiny model that the names match ``save_pretrained`` and that
:func:`stream_pair`'s files read back equal to ``safetensors.torch.save_file``'s.
"""

from __future__ import annotations

import json
import math
import os
import resource
import struct
import sys
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from moelab.families import ExpertSlot, get_family

HIDDEN = 1024
INTERMEDIATE = 3584
EXPERTS = 8
VOCAB = 1024
FINE_TUNE_NOISE = 0.1  # std of b - a, relative to the weights' std
WEIGHT_STD = 0.02

#: safetensors' names of the float dtypes :func:`stream_pair` writes.
SAFETENSORS_DTYPES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
}


def make_config(num_layers: int, **overrides):
    from transformers import MixtralConfig

    kwargs = dict(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=INTERMEDIATE,
        num_hidden_layers=num_layers,
        num_attention_heads=8,
        num_key_value_heads=8,
        num_local_experts=EXPERTS,
        num_experts_per_tok=2,
        max_position_embeddings=256,
        dtype="float32",
    )
    return MixtralConfig(**{**kwargs, **overrides})


def plan_tensors(config) -> dict[int | None, dict[str, tuple[int, ...]]]:
    """Original (per-expert) tensor names and shapes, by decoder layer (None: the others)."""
    from transformers import MixtralForCausalLM

    family = get_family("mixtral")
    with torch.device("meta"):
        model = MixtralForCausalLM(config)
    plan: dict[int | None, dict[str, tuple[int, ...]]] = {}
    for key, tensor in model.state_dict().items():
        if ".mlp.experts." in key or ".mlp.gate." in key:
            continue  # written below under their original names
        layer = int(key.split(".")[2]) if key.startswith("model.layers.") else None
        plan.setdefault(layer, {})[key] = tuple(tensor.shape)
    shapes = family.expert_shapes(config)
    for layer in range(config.num_hidden_layers):
        router = family.router_checkpoint_keys(config, layer)["per_expert"].key
        plan[layer][router] = (config.num_local_experts, config.hidden_size)
        for expert in range(config.num_local_experts):
            refs = family.checkpoint_keys(config, ExpertSlot(layer, expert))["per_expert"]
            for name, ref in refs.items():
                plan[layer][ref.key] = shapes[name]
    return plan


def tiny_config(num_layers: int, **overrides):
    """A config of the same depth and layout, small enough to save in a blink."""
    return make_config(
        num_layers,
        **{
            "hidden_size": 16,
            "intermediate_size": 24,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "vocab_size": 64,
            **overrides,
        },
    )


def check_names_match_save_pretrained(num_layers: int) -> None:
    """The planned names equal those save_pretrained writes (tiny model, same depth)."""
    from transformers import MixtralForCausalLM

    tiny = tiny_config(num_layers)
    planned = {key for group in plan_tensors(tiny).values() for key in group}
    with tempfile.TemporaryDirectory() as tmp:
        MixtralForCausalLM(tiny).save_pretrained(tmp)
        written = set()
        for file in Path(tmp).glob("*.safetensors"):
            with safe_open(file, framework="pt") as handle:
                written |= set(handle.keys())
    if planned != written:
        raise RuntimeError(
            f"planned names differ from save_pretrained: {sorted(planned ^ written)[:5]}"
        )


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, tmp, metadata={"format": "pt"})
    os.replace(tmp, path)


def _shard_names(num_layers: int) -> dict[int | None, str]:
    groups = [None, *range(num_layers)]
    return {g: f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors" for i, g in enumerate(groups)}


def _write_index(folders: tuple[Path, ...], plan, shard_names, total: int) -> None:
    weight_map = {key: shard_names[g] for g in shard_names for key in plan[g]}
    index = json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1)
    for folder in folders:
        (folder / "model.safetensors.index.json").write_text(index)


def write_pair(folder_a: Path, folder_b: Path, num_layers: int, seed: int = 0) -> None:
    """Write checkpoints a and b = a + noise, one shard per decoder layer plus one for the rest."""
    config = make_config(num_layers)
    plan = plan_tensors(config)
    gen = torch.Generator().manual_seed(seed)
    shard_names = _shard_names(num_layers)
    for folder in (folder_a, folder_b):
        folder.mkdir(parents=True)
        config.save_pretrained(folder)
    total = 0
    for group in tqdm(shard_names, desc="writing checkpoints (per shard)"):
        a: dict[str, torch.Tensor] = {}
        b: dict[str, torch.Tensor] = {}
        for key, shape in plan[group].items():
            if key.endswith("norm.weight"):
                a[key] = torch.ones(shape)
                b[key] = a[key].clone()
            else:
                a[key] = WEIGHT_STD * torch.randn(shape, generator=gen)
                b[key] = a[key] + FINE_TUNE_NOISE * WEIGHT_STD * torch.randn(shape, generator=gen)
            total += a[key].numel() * a[key].element_size()
        _atomic_save(a, folder_a / shard_names[group])
        _atomic_save(b, folder_b / shard_names[group])
        del a, b
    _write_index((folder_a, folder_b), plan, shard_names, total)


def safetensors_header(shapes: dict[str, tuple[int, ...]], dtype: torch.dtype) -> tuple[bytes, int]:
    """The bytes a safetensors file starts with, for tensors laid out in ``shapes``' order.

    Returns
    -------
    header : bytes
        The 8-byte little-endian length, then the JSON header padded with spaces to 8 bytes.
    data_bytes : int
        Bytes of the data section that follows.
    """
    entries: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for key, shape in shapes.items():
        size = math.prod(shape) * dtype.itemsize
        entries[key] = {
            "dtype": SAFETENSORS_DTYPES[dtype],
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    text = json.dumps(entries, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, offset


def _tensor_pair(
    key: str, shape: tuple[int, ...], gen: torch.Generator, noise: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    if key.endswith("norm.weight"):
        a = torch.ones(shape, dtype=dtype)
        return a, a
    a32 = WEIGHT_STD * torch.randn(shape, generator=gen)
    b32 = a32 + noise * WEIGHT_STD * torch.randn(shape, generator=gen)
    return a32.to(dtype), b32.to(dtype)


def _raw(tensor: torch.Tensor) -> memoryview:
    return memoryview(tensor.contiguous().view(torch.uint8).numpy()).cast("B")


def stream_pair(
    folder_a: Path,
    folder_b: Path,
    config,
    *,
    dtype: torch.dtype = torch.bfloat16,
    seed: int = 0,
    noise: float = FINE_TUNE_NOISE,
    progress: bool = True,
) -> int:
    """Write checkpoints a and b = a + noise tensor by tensor; return one checkpoint's bytes.

    Each shard's header is computed from the shapes first, then every tensor of ``a`` and its
    noisy copy in ``b`` are generated (in float32) and appended to both files, so at most one
    tensor of each checkpoint is in memory. Shards are written next to their final name and
    renamed into place.
    """
    plan = plan_tensors(config)
    gen = torch.Generator().manual_seed(seed)
    shard_names = _shard_names(config.num_hidden_layers)
    for folder in (folder_a, folder_b):
        folder.mkdir(parents=True)
        config.save_pretrained(folder)
    total = 0
    groups = tqdm(shard_names, desc="writing checkpoints (tensor by tensor)", disable=not progress)
    for group in groups:
        header, size = safetensors_header(plan[group], dtype)
        paths = [folder / shard_names[group] for folder in (folder_a, folder_b)]
        tmps = [path.with_name(f".{path.name}.tmp") for path in paths]
        with open(tmps[0], "wb") as out_a, open(tmps[1], "wb") as out_b:
            out_a.write(header)
            out_b.write(header)
            for key, shape in plan[group].items():
                a, b = _tensor_pair(key, shape, gen, noise, dtype)
                out_a.write(_raw(a))
                out_b.write(_raw(b))
        for tmp, path in zip(tmps, paths):
            if tmp.stat().st_size != len(header) + size:
                raise RuntimeError(f"{path.name}: wrote {tmp.stat().st_size} bytes")
            os.replace(tmp, path)
        total += size
    _write_index((folder_a, folder_b), plan, shard_names, total)
    return total


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir())


def proc_status_bytes(field: str) -> int | None:
    """One ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``, ``RssAnon``, ...)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024  # the kernel reports kB
    except OSError:
        pass
    return None


def peak_rss_bytes() -> int:
    """Peak resident set size of this process.

    Linux's ``VmHWM`` is the high-water mark of this process image alone. ``ru_maxrss`` is not
    used there: when ``subprocess`` spawns the child with vfork, the kernel folds the
    *parent's* peak into the child's ``ru_maxrss`` at exec, which would charge the checkpoint
    writer's memory to both children.
    """
    hwm = proc_status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # KiB on other Unixes


def rss_bytes() -> int:
    """Current resident set size (Linux), else the peak so far."""
    return proc_status_bytes("VmRSS") or peak_rss_bytes()


def _check_stream_pair() -> None:
    """stream_pair's files read back equal to what save_file writes for the same tensors."""
    config = tiny_config(2, dtype="bfloat16")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        stream_pair(root / "a", root / "b", config, seed=3, progress=False)
        gen = torch.Generator().manual_seed(3)
        for group, shapes in plan_tensors(config).items():
            a, b = {}, {}
            for key, shape in shapes.items():
                a[key], b[key] = _tensor_pair(key, shape, gen, FINE_TUNE_NOISE, torch.bfloat16)
            name = _shard_names(config.num_hidden_layers)[group]
            for folder, expected in (("a", a), ("b", b)):
                _atomic_save(expected, root / f"ref-{folder}-{name}")
                with (
                    safe_open(root / folder / name, framework="pt") as got,
                    safe_open(root / f"ref-{folder}-{name}", framework="pt") as ref,
                ):
                    if set(got.keys()) != set(ref.keys()) or not all(
                        torch.equal(got.get_tensor(k), ref.get_tensor(k)) for k in ref.keys()
                    ):
                        raise RuntimeError(f"stream_pair's {folder}/{name} differs from save_file")


if __name__ == "__main__":
    check_names_match_save_pretrained(2)
    _check_stream_pair()
    print("checkpoint names match save_pretrained; stream_pair reads back as save_file writes")
