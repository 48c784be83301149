"""Peak memory of expert similarity: lazy (from checkpoint folders) against eager (loaded models).

Two synthetic Mixtral-family checkpoints are written into a temporary folder (random float32
weights; hidden 1024, expert width 3584, 8 experts per layer, 5 layers: about 1.85 GB each,
95 % of it experts). Model ``b`` is model ``a`` plus small noise, as a fine-tune would be.
The shards are written directly in the original per-expert layout (``block_sparse_moe.experts.
{j}.w1|w2|w3``), one layer at a time, so creating them never holds a whole model; their
tensor names are checked against what ``save_pretrained`` writes for a tiny model of the same
depth.

Then two child processes, one after the other so their peaks do not mix, compute the ``l2``
table for every slot:

* eager: ``load_moe`` both folders, then ``expert_similarity`` on the loaded models;
* lazy: ``expert_similarity`` on the two folders (``LazyCheckpoint.read_expert``, one slot at
  a time).

Each child reports its own peak resident set size (``VmHWM`` of ``/proc/self/status`` on
Linux, ``getrusage(RUSAGE_SELF).ru_maxrss`` elsewhere; see :func:`peak_rss_bytes`) and its
time; the parent checks that the two tables are equal bit for bit and prints the ratio
lazy / eager (target below 0.25). The temporary files are removed at the end.

Run: ``python benchmarks/moe_similarity_lazy.py`` (``--layers N`` to change the size,
``--dir PATH`` to put the checkpoints elsewhere than the system temp folder).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
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


def check_names_match_save_pretrained(num_layers: int) -> None:
    """The planned names equal those save_pretrained writes (tiny model, same depth)."""
    from transformers import MixtralForCausalLM

    tiny = make_config(
        num_layers,
        hidden_size=16,
        intermediate_size=24,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=64,
    )
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


def write_pair(folder_a: Path, folder_b: Path, num_layers: int, seed: int = 0) -> None:
    """Write checkpoints a and b = a + noise, one shard per decoder layer plus one for the rest."""
    config = make_config(num_layers)
    plan = plan_tensors(config)
    gen = torch.Generator().manual_seed(seed)
    groups = [None, *range(num_layers)]
    shard_names = {
        g: f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors" for i, g in enumerate(groups)
    }
    for folder in (folder_a, folder_b):
        folder.mkdir(parents=True)
        config.save_pretrained(folder)
    total = 0
    for group in tqdm(groups, desc="writing checkpoints (per shard)"):
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
    weight_map = {key: shard_names[g] for g in groups for key in plan[g]}
    index = json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1)
    for folder in (folder_a, folder_b):
        (folder / "model.safetensors.index.json").write_text(index)


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir())


def _proc_status_bytes(field: str) -> int | None:
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
    hwm = _proc_status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # KiB on other Unixes


def rss_bytes() -> int:
    """Current resident set size (Linux), else the peak so far."""
    return _proc_status_bytes("VmRSS") or peak_rss_bytes()


def child(mode: str, folder_a: str, folder_b: str, out: str) -> None:
    """Compute the l2 table in this process and report peak memory and time as JSON."""
    from moelab import load_moe
    from moelab.similarity import expert_similarity

    baseline = rss_bytes()
    start = time.perf_counter()
    if mode == "eager":
        models = {
            "a": load_moe(folder_a, tokenizer=False),
            "b": load_moe(folder_b, tokenizer=False),
        }
    else:
        models = {"a": folder_a, "b": folder_b}
    table = expert_similarity(models, "l2", progress=False)
    seconds = time.perf_counter() - start
    with open(out, "wb") as handle:
        pickle.dump(table, handle)
    print(
        json.dumps(
            {
                "mode": mode,
                "peak_rss": peak_rss_bytes(),
                "after_imports_rss": baseline,
                "seconds": seconds,
                "rows": len(table),
            }
        )
    )


def run_child(mode: str, folder_a: Path, folder_b: Path, out: Path) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(folder_a), str(folder_b), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--layers", type=int, default=5, help="decoder layers (5: about 1.85 GB per checkpoint)"
    )
    parser.add_argument("--dir", default=None, help="parent folder of the temporary checkpoints")
    parser.add_argument(
        "--child", nargs=4, metavar=("MODE", "A", "B", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    import pandas as pd

    check_names_match_save_pretrained(args.layers)
    with tempfile.TemporaryDirectory(prefix="moe-similarity-bench-", dir=args.dir) as tmp:
        root = Path(tmp)
        folder_a, folder_b = root / "a", root / "b"
        start = time.perf_counter()
        write_pair(folder_a, folder_b, args.layers)
        size = folder_bytes(folder_a)
        expert_mb = 3 * HIDDEN * INTERMEDIATE * 4 / 1e6
        print(
            f"two Mixtral-family checkpoints: {args.layers} layers x {EXPERTS} experts, "
            f"{size / 1e9:.2f} GB each (one expert {expert_mb:.0f} MB), written in "
            f"{time.perf_counter() - start:.1f} s"
        )
        results = {
            mode: run_child(mode, folder_a, folder_b, root / f"{mode}.pkl")
            for mode in ("eager", "lazy")
        }
        tables = {mode: pd.read_pickle(root / f"{mode}.pkl") for mode in results}
        pd.testing.assert_frame_equal(tables["lazy"], tables["eager"], check_exact=True)
        print(
            f"l2 tables equal bit for bit ({results['lazy']['rows']} slots); "
            f"mean l2 {tables['lazy']['value'].mean():.3f}"
        )
        print(f"{'mode':6s} {'peak RSS GB':>12s} {'after imports GB':>17s} {'time s':>8s}")
        for mode, r in results.items():
            peak, base = r["peak_rss"] / 1e9, r["after_imports_rss"] / 1e9
            print(f"{mode:6s} {peak:12.2f} {base:17.2f} {r['seconds']:8.1f}")
        ratio = results["lazy"]["peak_rss"] / results["eager"]["peak_rss"]
        verdict = "meets" if ratio < 0.25 else "MISSES"
        print(
            f"peak RSS lazy / eager = {ratio:.3f} ({verdict} the target < 0.25); "
            f"time lazy / eager = {results['lazy']['seconds'] / results['eager']['seconds']:.2f}"
        )
    print("temporary checkpoints removed")


if __name__ == "__main__":
    main()
