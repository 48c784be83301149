"""Peak host memory of building a consolidated model lazily from two checkpoint folders.

Two synthetic Mixtral-family checkpoints are written into a temporary folder (bfloat16;
hidden 1024, expert width 3584, 8 experts per layer, 9 layers: about 1.67 GB each, 95 % of it
experts), in the per-expert layout ``save_pretrained`` writes; ``b`` is ``a`` plus small
noise, as a fine-tune would be. They are written tensor by tensor (``moe_checkpoints.
stream_pair``), so the writer holds one tensor of each at a time.

A first plan (placement ``"offload"``, nothing shared) gives the sizes; the device budget is
then the device-side non-expert bytes, the minimum cache rows (one token's top-k experts in
every layer) and :data:`SHARED_SLOTS` shared slots: well under one model. Then child
processes, one after the other so that each peak is its own, measure:

* lazy: ``plan_consolidation`` of the two folders under that budget (``unit="bytes"``,
  ``placement="offload"``), then ``ConsolidatedMoE.from_plan(plan, device="cpu")``; once with
  every non-expert set on the device (the default), once with the sets staged on the host and
  one live set on the device (``non_expert="host"``). After the peak is read, one forward
  per tenant fills the cache rows (untouched, hence not yet resident, after the build) and the
  RSS after serving is reported too;
* eager: both folders loaded with ``from_pretrained`` (the alternative's first step);
* exact: nothing shared, the consolidated model's logits for each tenant against that
  tenant's ``from_pretrained`` model, with ``torch.equal``: a resident build
  (``plan_consolidation(folders, 0, unit="slots")``) on a 7-token prompt, and an offloaded one
  under a device budget of the non-expert sets plus the minimum cache rows (well under one
  model) on every step of a greedy decode (one token per step: a layer never routes to more
  host experts than it has rows), and on the 7-token prompt with transformers' ``eager``
  experts loop on both sides. With the default ``grouped_mm`` that prompt's host experts, run in
  turns, are batched differently, and its logits are reported beside (equal within bf16).

On a CPU-only machine the "device" tier lives in host memory too, so the bound checked is the
target's ("peak host memory while building two Mixtral-family checkpoints: at most 1.2x the
host-tier bytes plus one layer") over both tiers: peak RSS <= baseline + 1.2 x
(``plan.memory.device_bytes + plan.memory.host_bytes``) + one layer (its non-expert tensors
and all its experts, of one tenant), where the baseline is the RSS of the same child after its
imports. Peak RSS is ``VmHWM`` (see ``moe_checkpoints.peak_rss_bytes``); it counts the file
pages that safetensors maps and reads, so a sampling thread also records the peaks of
``RssAnon`` (allocated memory) and ``RssFile`` (mapped file pages) separately.

Writes every measurement to ``moe_consolidation_lazy.json`` beside this script (``--out``); exits
non-zero if a lazy build misses the bound or a tenant's logits differ.

Run: ``python benchmarks/moe_consolidation_lazy.py`` (``--layers N`` to change the size,
``--dir PATH`` to put the checkpoints elsewhere than the system temp folder).
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import math
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from moe_checkpoints import (
    EXPERTS,
    check_names_match_save_pretrained,
    folder_bytes,
    make_config,
    peak_rss_bytes,
    plan_tensors,
    proc_status_bytes,
    rss_bytes,
    stream_pair,
)

from labcore.atomic import atomic_write_text

SHARED_SLOTS = 4  # slots the device budget shares beyond its minimum
BOUND_FACTOR = 1.2
TOKEN_IDS = [[1, 5, 42, 7, 300, 511, 1023]]
DECODE_STEPS = 12
OUT = Path(__file__).with_suffix(".json")
GB = 1e9


class PeakSampler:
    """Peaks of ``RssAnon`` and ``RssFile`` (``/proc/self/status``), sampled every few ms.

    ``VmHWM`` is exact but counts both together; sampling can miss a spike shorter than the
    interval, so these peaks are lower bounds of the true ones.
    """

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.peaks = {"RssAnon": 0, "RssFile": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for field in self.peaks:
            self.peaks[field] = max(self.peaks[field], proc_status_bytes(field) or 0)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> PeakSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def _imports() -> None:
    """Everything a child uses, imported before its baseline is read."""
    import transformers.models.mixtral.modeling_mixtral  # noqa: F401
    from transformers import AutoModelForCausalLM  # noqa: F401

    import moelab.similarity  # noqa: F401
    from moelab.consolidation import plan_consolidation  # noqa: F401
    from moelab.reconfigure import ConsolidatedMoE  # noqa: F401


def _memory_fields(memory) -> dict:
    return {
        "device_bytes": memory.device_bytes,
        "host_bytes": memory.host_bytes,
        "n_shared": memory.n_shared,
        "n_slots": memory.n_slots,
        "cache_rows": memory.cache_rows,
        "slot_bytes": memory.slot_bytes,
    }


def child_lazy(folder_a: str, folder_b: str, budget: str, non_expert: str) -> dict:
    """Plan under a device budget and build the offloaded consolidated model."""
    import torch

    from moelab.consolidation import plan_consolidation
    from moelab.reconfigure import ConsolidatedMoE

    gc.collect()
    baseline = rss_bytes()
    base_anon, base_file = proc_status_bytes("RssAnon") or 0, proc_status_bytes("RssFile") or 0
    with PeakSampler() as sampler:
        start = time.perf_counter()
        plan = plan_consolidation(
            {"a": folder_a, "b": folder_b},
            int(budget),
            unit="bytes",
            placement="offload",
            non_expert=non_expert,
        )
        planned = time.perf_counter()
        after_plan = rss_bytes()
        cmoe = ConsolidatedMoE.from_plan(plan, device="cpu")
        built = time.perf_counter()
    peak, after_build = peak_rss_bytes(), rss_bytes()
    report = cmoe.memory_report()
    held = report.groupby("location")["bytes"].sum().to_dict()
    # Serving fills the cache rows (untouched, so not yet resident, after the build).
    ids = torch.tensor(TOKEN_IDS)
    with torch.no_grad():
        for tenant in cmoe.tenants:
            cmoe.forward(tenant, input_ids=ids)
    return {
        "baseline": baseline,
        "peak": peak,
        "after_plan": after_plan,
        "after_build": after_build,
        "after_serve": rss_bytes(),
        "peak_serve": peak_rss_bytes(),
        "copied": cmoe.copied_expert_bytes(),
        "anon_increase": sampler.peaks["RssAnon"] - base_anon,
        "file_increase": sampler.peaks["RssFile"] - base_file,
        "plan_s": planned - start,
        "build_s": built - planned,
        "mode": cmoe.mode,
        "held_device": int(held.get("device", 0)),
        "held_host": int(held.get("host", 0)),
        **_memory_fields(plan.memory),
    }


def _from_pretrained(folder: str):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch.bfloat16, local_files_only=True
    ).eval()


def child_eager(folder_a: str, folder_b: str) -> dict:
    """Both checkpoints loaded with from_pretrained."""
    gc.collect()
    baseline = rss_bytes()
    base_anon, base_file = proc_status_bytes("RssAnon") or 0, proc_status_bytes("RssFile") or 0
    with PeakSampler() as sampler:
        start = time.perf_counter()
        models = [_from_pretrained(folder) for folder in (folder_a, folder_b)]
        seconds = time.perf_counter() - start
    params = sum(p.numel() * p.element_size() for m in models for p in m.parameters())
    return {
        "baseline": baseline,
        "peak": peak_rss_bytes(),
        "after_build": rss_bytes(),
        "anon_increase": sampler.peaks["RssAnon"] - base_anon,
        "file_increase": sampler.peaks["RssFile"] - base_file,
        "build_s": seconds,
        "param_bytes": params,
    }


def _decode_logits(generate, ids) -> object:
    """Per-step logits of a greedy decode from ``ids`` (one token per step after the first)."""
    out = generate(
        input_ids=ids,
        max_new_tokens=DECODE_STEPS,
        do_sample=False,
        output_logits=True,
        return_dict_in_generate=True,
    )
    import torch

    return torch.stack(out.logits)


def _compare(got, expected) -> dict:
    import torch

    return {
        "equal": bool(torch.equal(got, expected)),
        "dtype": str(got.dtype),
        "max_abs_diff": float((got.float() - expected.float()).abs().max()),
    }


def child_exact(folder_a: str, folder_b: str, budget: str) -> dict:
    """Nothing shared: each tenant's logits against its own from_pretrained model, for a
    resident build and for an offloaded one under ``budget`` (smaller than one model).
    """
    import torch

    from moelab.consolidation import plan_consolidation
    from moelab.reconfigure import ConsolidatedMoE

    start = time.perf_counter()
    folders = {"a": folder_a, "b": folder_b}
    resident = ConsolidatedMoE.from_plan(plan_consolidation(folders, 0, unit="slots"), device="cpu")
    plan = plan_consolidation(folders, int(budget), unit="bytes", placement="offload")
    if plan.memory.n_shared:
        raise RuntimeError(f"the exact check needs nothing shared, got {plan.memory.n_shared}")
    offload = ConsolidatedMoE.from_plan(plan, device="cpu")
    offload_impl = offload.model.config._experts_implementation
    ids, first = torch.tensor(TOKEN_IDS), torch.tensor(TOKEN_IDS)[:, :1]
    results = {}
    for tenant, folder in folders.items():
        reference = _from_pretrained(folder)
        with torch.no_grad():
            expected = reference(input_ids=ids).logits
            steps = _decode_logits(reference.generate, first)
            results[tenant] = {
                "resident": _compare(resident.forward(tenant, input_ids=ids).logits, expected),
                # Decoding: one token per step, so every layer routes to at most its rows.
                "offload_decode": _compare(
                    _decode_logits(functools.partial(offload.generate, tenant), first),
                    steps,
                ),
                # A 7-token forward routes to more host experts than a layer has rows, which run
                # in turns: grouped_mm batches each turn's products differently (within bf16).
                "offload_prompt": _compare(offload.forward(tenant, input_ids=ids).logits, expected),
            }
            # The same prompt with transformers' eager experts loop on both sides (one matrix
            # product per expert, on exactly its tokens): the turns change no product.
            for model in (reference, offload.model):
                model.set_experts_implementation("eager")
            results[tenant]["offload_prompt_eager"] = _compare(
                offload.forward(tenant, input_ids=ids).logits, reference(input_ids=ids).logits
            )
            offload.model.set_experts_implementation(offload_impl)
        del reference
        gc.collect()
    return {
        "tenants": results,
        "seconds": time.perf_counter() - start,
        "offload_budget": int(budget),
        "offload": _memory_fields(plan.memory),
    }


CHILDREN = {"lazy": child_lazy, "eager": child_eager, "exact": child_exact}


def run_child(kind: str, *args: object) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, *map(str, args)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise RuntimeError(f"child {kind} failed with exit code {result.returncode}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def device_budget(
    folders: dict[str, Path], non_expert: str, shared: int = SHARED_SLOTS
) -> tuple[int, object]:
    """A first plan (nothing shared) gives the sizes; the budget shares ``shared`` slots."""
    from moelab.consolidation import plan_consolidation

    probe = plan_consolidation(folders, 0, unit="slots", placement="offload", non_expert=non_expert)
    m = probe.memory
    budget = m.device_non_expert_bytes + (m.cache_rows + shared) * m.slot_bytes
    expected = probe.with_budget(budget, unit="bytes").memory
    return budget, expected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--layers", type=int, default=9, help="decoder layers (9: about 1.67 GB per checkpoint)"
    )
    parser.add_argument("--dir", default=None, help="parent folder of the temporary checkpoints")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON of every measurement")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        _imports()
        print(json.dumps(CHILDREN[kind](*rest)))
        return 0

    config = make_config(args.layers, dtype="bfloat16")
    itemsize = 2  # bfloat16
    layer_bytes = sum(itemsize * math.prod(shape) for shape in plan_tensors(config)[0].values())
    check_names_match_save_pretrained(args.layers)
    failures = []
    with tempfile.TemporaryDirectory(prefix="moe-consolidation-bench-", dir=args.dir) as tmp:
        root = Path(tmp)
        folders = {"a": root / "a", "b": root / "b"}
        before = rss_bytes()
        start = time.perf_counter()
        stream_pair(folders["a"], folders["b"], config)
        size = folder_bytes(folders["a"])
        print(
            f"two Mixtral-family checkpoints (bf16, per-expert layout): {args.layers} layers x "
            f"{EXPERTS} experts, {size / GB:.3f} GB each, one layer {layer_bytes / GB:.3f} GB; "
            f"written tensor by tensor in {time.perf_counter() - start:.1f} s, writer peak RSS "
            f"{peak_rss_bytes() / GB:.2f} GB ({before / GB:.2f} GB before writing)"
        )
        lazy = {}
        for non_expert in ("device", "host"):
            start = time.perf_counter()
            budget, expected = device_budget(folders, non_expert)
            print(
                f"non_expert={non_expert}: device budget {budget / GB:.3f} GB "
                f"({budget / size:.2f} of one model; {expected.n_shared} slots shared, "
                f"{expected.cache_rows} cache rows; first plan {time.perf_counter() - start:.1f} s)"
            )
            lazy[non_expert] = run_child("lazy", folders["a"], folders["b"], budget, non_expert)
        eager = run_child("eager", folders["a"], folders["b"])
        exact_budget, _ = device_budget(folders, "device", shared=0)
        exact = run_child("exact", folders["a"], folders["b"], exact_budget)

    print()
    print(
        f"{'measurement':26s} {'baseline':>8s} {'peak':>6s} {'peak-base':>9s} {'anon+':>6s} "
        f"{'file+':>6s} {'after':>6s} {'device':>6s} {'host':>6s} {'bound':>6s} "
        f"{'peak/bound':>10s} {'time s':>6s}"
    )
    rows = []
    for non_expert, r in lazy.items():
        tiers = r["device_bytes"] + r["host_bytes"]
        r["bound"] = r["baseline"] + BOUND_FACTOR * tiers + layer_bytes
        r["ratio"] = r["peak"] / r["bound"]
        r["increase_ratio"] = (r["peak"] - r["baseline"]) / (BOUND_FACTOR * tiers + layer_bytes)
        gb = [r[k] / GB for k in ("device_bytes", "host_bytes", "bound")]
        rows.append(
            (f"lazy ({r['mode']}, sets {non_expert})", r, [f"{v:6.2f}" for v in gb], r["ratio"])
        )
    rows.append(("eager (from_pretrained x2)", eager, ["-".rjust(6)] * 3, None))
    for name, r, tiers_text, ratio in rows:
        ratio_text = f"{ratio:10.3f}" if ratio is not None else "-".rjust(10)
        seconds = r.get("plan_s", 0.0) + r["build_s"]
        print(
            f"{name:26s} {r['baseline'] / GB:8.2f} {r['peak'] / GB:6.2f} "
            f"{(r['peak'] - r['baseline']) / GB:9.2f} {r['anon_increase'] / GB:6.2f} "
            f"{r['file_increase'] / GB:6.2f} {r['after_build'] / GB:6.2f} {' '.join(tiers_text)} "
            f"{ratio_text} {seconds:6.1f}"
        )
    print(
        "(GB. peak: VmHWM; anon+, file+: sampled peak increase of RssAnon, RssFile; after: RSS "
        "once built; device, host: plan.memory; bound: baseline + 1.2 x (device + host) + one "
        f"layer; eager holds {eager['param_bytes'] / GB:.2f} GB of parameters)"
    )
    print()
    for non_expert, r in lazy.items():
        ok = r["peak"] <= r["bound"]
        held_ok = r["held_device"] + r["held_host"]
        print(
            f"lazy, sets {non_expert}: {r['n_shared']}/{r['n_slots']} slots shared, "
            f"{r['cache_rows']} cache rows; plan {r['plan_s']:.1f} s, build {r['build_s']:.1f} s; "
            f"memory_report holds {held_ok / GB:.3f} GB vs planned "
            f"{(r['device_bytes'] + r['host_bytes']) / GB:.3f} GB"
        )
        print(
            f"  then one {len(TOKEN_IDS[0])}-token forward per tenant ({r['copied'] / GB:.2f} GB "
            f"copied into cache rows): RSS {r['after_serve'] / GB:.2f} GB, peak "
            f"{r['peak_serve'] / GB:.2f} GB (not part of the bound)"
        )
        print(
            f"  peak / bound = {r['ratio']:.3f}, (peak - baseline) / (1.2 x tiers + one layer) "
            f"= {r['increase_ratio']:.3f} ({'meets' if ok else 'MISSES'} the target <= 1); "
            f"peak lazy / eager = {r['peak'] / eager['peak']:.3f}, "
            f"increase lazy / eager = "
            f"{(r['peak'] - r['baseline']) / (eager['peak'] - eager['baseline']):.3f}"
        )
        if not ok:
            failures.append(f"lazy build (sets {non_expert}) misses the bound")
    one_model = size
    print(
        f"exact (nothing shared, {args.layers}-layer {size / GB:.2f} GB pair; offload under "
        f"{exact['offload_budget'] / GB:.3f} GB = {exact['offload_budget'] / one_model:.2f} of "
        "one model):"
    )
    for tenant, checks in exact["tenants"].items():
        for check, t in checks.items():
            print(
                f"  tenant {tenant}, {check}: logits {t['dtype']} equal from_pretrained's: "
                f"{t['equal']} (max |diff| {t['max_abs_diff']:.3g})"
            )
            if check != "offload_prompt" and not t["equal"]:
                failures.append(f"tenant {tenant}'s {check} logits differ")
    results = {
        "layers": args.layers,
        "checkpoint_bytes": size,
        "layer_bytes": layer_bytes,
        "bound_factor": BOUND_FACTOR,
        "lazy": lazy,
        "eager": eager,
        "exact": exact,
        "failures": failures,
    }
    atomic_write_text(args.out, json.dumps(results, indent=1) + "\n")
    print("temporary checkpoints removed")
    if failures:
        print("FAILED: " + "; ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
