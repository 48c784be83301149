"""Graph-safe runtime reconfiguration at Mixtral-8x7B shape on one GPU.

Two tenants are made from one random bf16 base by :class:`moelab.sources.PerturbedSource` (the
base plus seeded noise, computed on read on the GPU). The base has Mixtral-8x7B's shape (hidden
4096, intermediate 14336, 8 experts, top-2, 32 heads, 8 KV heads, vocab 32000) but fewer layers
(``--layers``, 8 of 32 by default) so that the run takes minutes; everything per layer is the real
size, so per-layer numbers and the bytes moved per switch (embeddings and lm_head included) are
those of the full model up to the layer count. The base is built on ``meta``, materialised with
``to_empty(device="cuda")`` and initialised in place; its rotary tables are rebuilt from the
config and checked against a CPU-built rotary module.

Measured, for reconfiguration modes ``"swap"`` and ``"copy"`` of a resident plan (half of the
expert slots shared; planned with the non-expert sets on the device for ``"swap"``, in host
memory for ``"copy"``):

* build time; ``memory_report`` device and host totals against the growth of
  ``torch.cuda.memory_allocated`` (and of the allocator's requested bytes, before rounding);
* ``activate`` time, median of ``--repeats`` switches, each between ``torch.cuda.synchronize``
  calls; in ``"copy"`` mode the bytes moved per switch and the achieved GB/s, next to one
  pinned-to-device ``Tensor.copy_`` of the same bytes;
* one CUDA graph per tenant, replayed after the other tenant was active: its logits against
  its first replay (bitwise equal when the graph still reads that tenant's tensors) and
  ``torch.equal`` to the eager forward; in ``"copy"`` mode also one graph replayed for both
  tenants. Twice: with transformers' default attention path (no mask), and with an explicit
  causal mask given to the eager and the captured forwards alike.

Controls without consolidation: the plain base model's graph against its eager forward (does
transformers take another attention path while a graph is captured?), and single library ops
(linear, SDPA, grouped_mm) captured against eager.

And for an ``"offload"`` plan whose device budget is 60 % of one model's bytes: device and
host bytes, one-token forward time and expert bytes copied from host memory per token, and the
one-token logits against a resident build that shares the same slots.

Run on a CUDA machine: ``python benchmarks/gpu/consolidation_graphs.py`` (``--layers``,
``--repeats``, ``--tokens``, ``--out``). Writes ``benchmarks/gpu/consolidation_graphs.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
import traceback
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import AutoModelForCausalLM, MixtralConfig

from labcore.atomic import atomic_write_text
from moelab.consolidation import plan_consolidation
from moelab.reconfigure import CapturedForward, ConsolidatedMoE
from moelab.sources import PerturbedSource

OUT = Path(__file__).with_suffix(".json")
GB = 1e9
MIXTRAL_8X7B = dict(
    vocab_size=32000,
    hidden_size=4096,
    intermediate_size=14336,
    num_local_experts=8,
    num_experts_per_tok=2,
    num_attention_heads=32,
    num_key_value_heads=8,
    max_position_embeddings=32768,
)
ALLOCATOR_NOTE = (
    "memory_allocated counts the caching allocator's blocks: each request rounded up to 512 B, "
    "and a remainder of at most 1 MiB not split off a large block; requested_bytes is the "
    "allocator's own count of bytes asked for, before rounding; pinned_active_delta counts the "
    "pinned host allocator's blocks (each rounded up to a power of two): host rows are plain "
    "allocations registered with cudaHostRegister instead, so it stays 0 and rss_delta, the "
    "process's resident memory growth, is what they take"
)


# ---------------------------------------------------------------------------- the base
def build_base(layers: int) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Random bf16 base: built on meta, materialised on the GPU, initialised in place."""
    config = MixtralConfig(**MIXTRAL_8X7B, num_hidden_layers=layers)
    start = time.perf_counter()
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.to_empty(device="cuda")
    generator = torch.Generator(device="cuda").manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim == 1:
                param.fill_(1.0)  # RMSNorm weights
            else:
                param.normal_(0.0, config.initializer_range, generator=generator)
        # to_empty left the rotary tables uninitialised: rebuild them from the config.
        rotary = model.model.rotary_emb
        with torch.device("cpu"):
            reference = type(rotary)(config)
        for name, buffer in reference.named_buffers():
            getattr(rotary, name).copy_(buffer)
    torch.cuda.synchronize()
    rotary_ok = all(
        torch.equal(getattr(rotary, n).cpu(), b.to(getattr(rotary, n).dtype))
        for n, b in reference.named_buffers()
    )
    info = {
        "seconds": time.perf_counter() - start,
        "parameter_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
        "rotary_rebuilt_and_equal_to_cpu_module": rotary_ok,
        "experts_implementation": model.config._experts_implementation,
    }
    return model.eval(), {"reference_rotary": reference, **info}


def rotary_max_error(cmoe: ConsolidatedMoE, reference: torch.nn.Module) -> float:
    """How far the consolidated model's own rotary tables are from the CPU-built ones."""
    rotary = cmoe.model.model.rotary_emb
    return max(
        float((getattr(rotary, n).double().cpu() - b.double()).abs().max())
        for n, b in reference.named_buffers()
    )


# ------------------------------------------------------------------------- measurement
def allocator_state() -> dict[str, int | None]:
    """Allocator counters with earlier garbage freed and finished pinned copies retired."""
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    flush = torch.empty(1, pin_memory=True)  # the pinned allocator retires blocks on allocation
    del flush
    host = getattr(torch.cuda, "host_memory_stats", None)
    return {
        "allocated": torch.cuda.memory_allocated(),
        "requested": torch.cuda.memory_stats().get("requested_bytes.all.current"),
        "pinned_active": None if host is None else host().get("active_bytes.current"),
        "rss": rss_bytes(),
    }


def rss_bytes() -> int:
    """Resident memory of this process (VmRSS), in bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(row for row in status if row.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def timed_build(plan, mode: str | None, reference: torch.nn.Module) -> tuple[ConsolidatedMoE, dict]:
    before = allocator_state()
    start = time.perf_counter()
    cmoe = ConsolidatedMoE.from_plan(plan, device="cuda", mode=mode)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    gc.collect()
    after = {
        "allocated": torch.cuda.memory_allocated(),
        "requested": torch.cuda.memory_stats().get("requested_bytes.all.current"),
    }
    host = getattr(torch.cuda, "host_memory_stats", None)
    report = cmoe.memory_report()
    device = int(report.loc[report["location"] == "device", "bytes"].sum())
    host_rows = int(report.loc[report["location"] == "host", "bytes"].sum())
    grown = after["allocated"] - before["allocated"]
    memory = {
        "report_device_bytes": device,
        "report_host_bytes": host_rows,
        "plan_device_bytes": plan.memory.device_bytes,
        "plan_host_bytes": plan.memory.host_bytes,
        "memory_allocated_delta": grown,
        "memory_allocated_minus_report": grown - device,
        "requested_bytes_delta": None
        if before["requested"] is None
        else after["requested"] - before["requested"],
        "pinned_active_delta": None
        if host is None or before["pinned_active"] is None
        else host().get("active_bytes.current") - before["pinned_active"],
        "rss_delta": rss_bytes() - before["rss"],
        "resident_bytes": cmoe.resident_bytes(),
        "components": report.to_dict(orient="records"),
    }
    built = {
        "build_seconds": seconds,
        "mode": cmoe.mode,
        "experts_implementation": cmoe.model.config._experts_implementation,
        "live_rotary_max_abs_error_vs_cpu_module": rotary_max_error(cmoe, reference),
        "memory": memory,
    }
    return cmoe, built


def activation(cmoe: ConsolidatedMoE, repeats: int) -> dict[str, Any]:
    """Median seconds of activations that each switch tenant, synchronized on both sides."""
    names = list(cmoe.tenants)
    for name in names:  # warm-up; ends with the last tenant active
        cmoe.activate(name)
    synced, reported, moved = [], [], []
    for i in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        reported.append(cmoe.activate(names[i % len(names)]))
        torch.cuda.synchronize()
        synced.append(time.perf_counter() - start)
        moved.append(cmoe.last_copy_bytes)
    median = statistics.median(synced)
    result = {
        "repeats": repeats,
        "median_seconds": median,
        "min_seconds": min(synced),
        "max_seconds": max(synced),
        "median_seconds_returned_by_activate": statistics.median(reported),
        "bytes_copied_per_switch": max(moved),
    }
    if max(moved):
        result["achieved_GBps"] = max(moved) / median / GB
        result.update(peer_copy(max(moved), repeats))
    return result


def peer_copy(n_bytes: int, repeats: int) -> dict[str, float]:
    """One pinned host -> device ``Tensor.copy_`` of the same bytes, the ceiling to compare with."""
    src = torch.empty(n_bytes, dtype=torch.uint8, pin_memory=True).fill_(1)
    dst = torch.empty(n_bytes, dtype=torch.uint8, device="cuda")
    times = []
    for _ in range(repeats + 1):
        torch.cuda.synchronize()
        start = time.perf_counter()
        dst.copy_(src, non_blocking=True)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    median = statistics.median(times[1:])
    return {"peer_one_copy_seconds": median, "peer_one_copy_GBps": n_bytes / median / GB}


def forward(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor | None = None):
    """Logits of one forward; ``mask``: an explicit 4D boolean causal mask (True = attend)."""
    return model(input_ids=ids, attention_mask=mask, use_cache=False).logits


def causal_mask(length: int) -> torch.Tensor:
    return torch.ones(length, length, dtype=torch.bool, device="cuda").tril()[None, None]


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def median_seconds(fn, repeats: int = 10) -> float:
    fn()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def graph_vs_eager(model: torch.nn.Module, ids: torch.Tensor) -> dict[str, Any]:
    """A plain transformers model (no consolidation): its graph against its eager forward.

    Without an attention mask, transformers lets SDPA apply causality itself (``is_causal``)
    in eager mode; this records whether it builds an explicit mask instead while a CUDA graph
    is captured (then graph and eager run different attention kernels), by comparing the
    replay with an eager forward given that explicit mask.
    """
    mask = causal_mask(ids.shape[1])
    eager = forward(model, ids).clone()
    eager_masked = forward(model, ids, mask).clone()
    result: dict[str, Any] = {
        "eager_repeat_equal": torch.equal(forward(model, ids), eager),
        "eager_no_mask_equals_eager_explicit_mask": torch.equal(eager, eager_masked),
    }
    for key, same_stream, with_mask in (
        ("no_mask_side_stream_warmup", False, None),
        ("no_mask_same_stream_capture", True, None),
        ("explicit_mask", False, mask),
    ):
        step = CapturedForward(
            lambda m=with_mask: forward(model, ids, m), warmup=2, same_stream=same_stream
        )
        out = step.replay()
        result[key] = {
            "graph_equals_eager": torch.equal(out, eager if with_mask is None else eager_masked),
            "rel_error_vs_eager": relative_error(out, eager if with_mask is None else eager_masked),
            "graph_equals_eager_explicit_mask": torch.equal(out, eager_masked),
        }
    return result


def op_checks(hidden: int, outputs: tuple[int, ...], tokens: int) -> dict[str, Any]:
    """Single library ops on random bf16 data: captured graph replay against eager."""
    generator = torch.Generator(device="cuda").manual_seed(3)
    x = torch.randn(tokens, hidden, device="cuda", dtype=torch.bfloat16, generator=generator)
    checks: dict[str, Any] = {}
    for n_out in outputs:
        w = torch.randn(n_out, hidden, device="cuda", dtype=torch.bfloat16, generator=generator)

        def linear(w=w):
            return torch.nn.functional.linear(x, w)

        checks[f"linear_{tokens}x{hidden}_to_{n_out}"] = op_graph_equal(linear)
    heads, kv, dim = 32, 8, hidden // 32
    q = torch.randn(1, heads, tokens, dim, device="cuda", dtype=torch.bfloat16)
    k, v = (torch.randn(1, kv, tokens, dim, device="cuda", dtype=torch.bfloat16) for _ in "kv")

    def attention():
        return torch.nn.functional.scaled_dot_product_attention(
            q, k, v, is_causal=True, enable_gqa=True
        )

    checks["sdpa_causal_gqa"] = op_graph_equal(attention)
    grouped_mm = getattr(torch.nn.functional, "grouped_mm", None)
    if grouped_mm is not None:  # the experts' kernel (transformers' "grouped_mm")
        gate_up = 2 * MIXTRAL_8X7B["intermediate_size"]
        experts = torch.randn(8, gate_up, hidden, device="cuda", dtype=x.dtype)
        rows = torch.randn(2 * tokens, hidden, device="cuda", dtype=x.dtype)
        offsets = torch.arange(1, 9, device="cuda", dtype=torch.int32) * (2 * tokens // 8)

        def grouped():
            return grouped_mm(rows, experts.transpose(-2, -1), offs=offsets)

        checks["grouped_mm_8_experts"] = op_graph_equal(grouped)
    return checks


def op_graph_equal(fn) -> dict[str, Any]:
    eager = fn().clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    graph.replay()
    torch.cuda.synchronize()
    return {"equal": torch.equal(out, eager), "rel_error": relative_error(out, eager)}


def graphs(cmoe: ConsolidatedMoE, ids: torch.Tensor, mask: torch.Tensor | None) -> dict[str, Any]:
    """One graph per tenant (and, in copy mode, one for all), against eager and itself.

    ``mask``: None (transformers' default path) or an explicit causal mask, given to the eager
    forwards and the captured ones alike.
    """
    names = list(cmoe.tenants)
    eager, eager_repeat, eager_masked = {}, {}, {}
    for name in names:
        cmoe.activate(name)
        eager[name] = forward(cmoe.model, ids, mask).clone()
        eager_masked[name] = forward(cmoe.model, ids, causal_mask(ids.shape[1])).clone()
    for name in names:
        cmoe.activate(name)
        eager_repeat[name] = torch.equal(forward(cmoe.model, ids, mask), eager[name])
    captured, first = {}, {}
    for name in names:
        cmoe.activate(name)
        captured[name] = CapturedForward(lambda: forward(cmoe.model, ids, mask), warmup=2)
        first[name] = captured[name].replay().clone()
    per_tenant: dict[str, dict[str, Any]] = {}
    for name in [*names, *reversed(names)]:
        other = next(n for n in names if n != name)
        cmoe.activate(other)
        cmoe.activate(name)
        out = captured[name].replay()
        seen = per_tenant.setdefault(name, {"replays_after_switching": 0})
        seen["replays_after_switching"] += 1
        for key, value in (
            ("replay_equals_first_replay", torch.equal(out, first[name])),
            ("graph_equals_eager", torch.equal(out, eager[name])),
            ("graph_equals_eager_explicit_mask", torch.equal(out, eager_masked[name])),
        ):
            seen[key] = seen.get(key, True) and value
        for key, value in (
            ("rel_error_vs_own_eager", relative_error(out, eager[name])),
            ("rel_error_vs_other_tenant_eager", relative_error(out, eager[other])),
        ):
            seen[key] = max(seen.get(key, 0.0), value)
    result: dict[str, Any] = {
        "tokens": ids.shape[1],
        "attention_mask": "none (transformers default)" if mask is None else "explicit causal",
        "eager_repeat_equal": eager_repeat,
        "tenants_rel_difference": relative_error(eager[names[0]], eager[names[1]]),
        "per_tenant_graph": per_tenant,
        "eager_forward_seconds": median_seconds(lambda: forward(cmoe.model, ids, mask)),
        "graph_replay_seconds": median_seconds(captured[cmoe.active].graph.replay),
    }
    del captured
    if cmoe.mode == "copy":
        cmoe.activate(names[-1])
        step = CapturedForward(lambda: forward(cmoe.model, ids, mask), warmup=2)
        one = {}
        for name in [names[0], names[1], names[0], names[1]]:
            cmoe.activate(name)
            out = step.replay()
            one[name] = {
                "graph_equals_eager": torch.equal(out, eager[name]),
                "graph_equals_eager_explicit_mask": torch.equal(out, eager_masked[name]),
                "rel_error_vs_own_eager": relative_error(out, eager[name]),
            }
        result["one_graph_for_all_tenants"] = one
    return result


def offload(tenants, resident_plan, one_model: int, tokens: int, reference) -> dict[str, Any]:
    budget = int(0.6 * one_model)
    start = time.perf_counter()
    plan = plan_consolidation(tenants, budget, unit="bytes", placement="offload")
    plan_seconds = time.perf_counter() - start
    cmoe, built = timed_build(plan, None, reference)
    names = list(cmoe.tenants)
    generator = torch.Generator().manual_seed(1)
    token_ids = torch.randint(1, MIXTRAL_8X7B["vocab_size"], (tokens, 1, 1), generator=generator)
    times, copied, logits = [], [], []
    with torch.no_grad():
        for i, ids in enumerate(token_ids.cuda()):
            name = names[i % len(names)]
            cmoe.activate(name)
            before = cmoe.copied_expert_bytes()
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            logits.append((name, ids, forward(cmoe.model, ids).clone()))
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            copied.append(cmoe.copied_expert_bytes() - before)
    del cmoe
    # The same shared slots, every private copy on the device: the same arithmetic.
    same = resident_plan.with_budget(plan.n_shared, unit="slots")
    assert same.shared_slots == plan.shared_slots
    resident = ConsolidatedMoE.from_plan(same, device="cuda")
    equal = []
    with torch.no_grad():
        for name, ids, got in logits:
            resident.activate(name)
            equal.append(torch.equal(forward(resident.model, ids), got))
    del resident
    return {
        "budget_bytes": budget,
        "budget_fraction_of_one_model": 0.6,
        "plan_seconds": plan_seconds,
        "n_shared": plan.n_shared,
        "n_slots": plan.memory.n_slots,
        "cache_rows": plan.memory.cache_rows,
        **built,
        "one_token_forwards": tokens,
        "first_token_seconds": times[0],
        "median_token_seconds": statistics.median(times),
        "median_token_seconds_after_first_two": statistics.median(times[2:]),
        "copied_expert_bytes_per_token_mean": sum(copied) / len(copied),
        "copied_expert_bytes_per_token": copied,
        "resident_same_slots_logits_equal": equal,
    }


# --------------------------------------------------------------------------------- main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=8, help="decoder layers (Mixtral-8x7B: 32)")
    parser.add_argument("--repeats", type=int, default=50, help="activations timed per mode")
    parser.add_argument("--tokens", type=int, default=12, help="one-token forwards (offload)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA device")
    torch.set_grad_enabled(False)
    results: dict[str, Any] = {
        "what": __doc__.splitlines()[0],
        "shape": {
            **MIXTRAL_8X7B,
            "num_hidden_layers": args.layers,
            "note": f"Mixtral-8x7B shape with {args.layers} of its 32 layers",
        },
        "dtype": "bfloat16",
        "environment": {
            "gpu": torch.cuda.get_device_name(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "allocator_note": ALLOCATOR_NOTE,
    }

    def save() -> None:
        atomic_write_text(args.out, json.dumps(results, indent=2, default=str) + "\n")

    failed = False
    base, info = build_base(args.layers)
    reference = info.pop("reference_rotary")
    results["base"] = info
    ids = torch.randint(1, MIXTRAL_8X7B["vocab_size"], (1, 16), generator=torch.Generator()).cuda()
    # Controls without consolidation: the plain base model, and single library ops.
    for key, control in (
        ("control_base_model_graph", lambda: graph_vs_eager(base, ids)),
        ("control_ops_graph", lambda: op_checks(4096, (1024, 4096, 28672, 32000), 16)),
    ):
        try:
            results[key] = control()
        except Exception:
            failed = True
            results[key] = {"error": traceback.format_exc()}
            print(results[key]["error"])
    save()
    tenants = {f"t{i}": PerturbedSource(base, seed=i + 1, scale=0.02) for i in range(2)}
    plans = {}
    for mode, sets in (("swap", "device"), ("copy", "host")):
        start = time.perf_counter()
        plans[mode] = plan_consolidation(tenants, 0.75, non_expert=sets)
        results[f"{mode}_plan"] = {
            "seconds": time.perf_counter() - start,
            "budget_fraction_of_expert_bytes": 0.75,
            "non_expert_sets_on": sets,
            "n_shared": plans[mode].n_shared,
            "n_slots": plans[mode].memory.n_slots,
            "slot_bytes": plans[mode].memory.slot_bytes,
            "non_expert_set_bytes": plans[mode].memory.non_expert_bytes[0],
        }
    save()
    for mode in ("swap", "copy"):
        try:
            cmoe, built = timed_build(plans[mode], mode, reference)
            built["activate"] = activation(cmoe, args.repeats)
            built["graphs"] = graphs(cmoe, ids, mask=None)
            built["graphs_explicit_causal_mask"] = graphs(cmoe, ids, causal_mask(ids.shape[1]))
            results[mode] = built
            del cmoe
        except Exception:  # keep what the other sections measure
            failed = True
            results[mode] = {"error": traceback.format_exc()}
            print(results[mode]["error"])
        save()
    one_model = plans["swap"].memory.separate_bytes // len(tenants)
    try:
        results["offload"] = offload(tenants, plans["swap"], one_model, args.tokens, reference)
    except Exception:
        failed = True
        results["offload"] = {"error": traceback.format_exc()}
        print(results["offload"]["error"])
    save()
    print_table(results)
    return 1 if failed else 0


def summary(g: dict[str, Any]) -> str:
    per = g["per_tenant_graph"]
    text = (
        f"graph==eager {all(t['graph_equals_eager'] for t in per.values())}, graph==eager(mask) "
        f"{all(t['graph_equals_eager_explicit_mask'] for t in per.values())}, replay==first replay "
        f"{all(t['replay_equals_first_replay'] for t in per.values())}, rel err vs own eager "
        f"{max(t['rel_error_vs_own_eager'] for t in per.values()):.1e} / vs other tenant "
        f"{min(t['rel_error_vs_other_tenant_eager'] for t in per.values()):.1e}"
    )
    if "one_graph_for_all_tenants" in g:
        one = g["one_graph_for_all_tenants"].values()
        text += (
            f"; one graph: ==eager {all(t['graph_equals_eager'] for t in one)}, rel err "
            f"{max(t['rel_error_vs_own_eager'] for t in one):.1e}"
        )
    return text


def print_table(results: dict[str, Any]) -> None:
    print(f"\n{results['shape']['note']}, {results['environment']['gpu']}")
    print(f"  base built in {results['base']['seconds']:.1f} s, {results['base']}")
    print(f"  control, plain base model: {results['control_base_model_graph']}")
    print(f"  control, single ops: {results['control_ops_graph']}")
    for mode in ("swap", "copy"):
        r = results.get(mode, {})
        if "error" in r:
            print(f"  {mode}: FAILED")
            continue
        a, g, m = r["activate"], r["graphs"], r["memory"]
        line = (
            f"  {mode}: build {r['build_seconds']:.1f} s | activate median "
            f"{a['median_seconds'] * 1e3:.3f} ms"
        )
        if a["bytes_copied_per_switch"]:
            line += (
                f", {a['bytes_copied_per_switch'] / GB:.3f} GB/switch = {a['achieved_GBps']:.1f} "
                f"GB/s (one copy: {a['peer_one_copy_GBps']:.1f} GB/s)"
            )
        print(line)
        print(f"      no mask: {summary(g)}")
        print(f"      explicit causal mask: {summary(r['graphs_explicit_causal_mask'])}")
        print(
            f"      eager {g['eager_forward_seconds'] * 1e3:.2f} ms, replay "
            f"{g['graph_replay_seconds'] * 1e3:.2f} ms"
        )
        print(
            f"      report device {m['report_device_bytes'] / GB:.3f} GB, host "
            f"{m['report_host_bytes'] / GB:.3f} GB | memory_allocated +"
            f"{m['memory_allocated_delta'] / GB:.3f} GB (report + "
            f"{m['memory_allocated_minus_report']:,} B), requested +{m['requested_bytes_delta']}"
        )
    o = results.get("offload", {})
    if "error" in o:
        print("  offload: FAILED")
    elif o:
        m = o["memory"]
        print(
            f"  offload (budget {o['budget_bytes'] / GB:.2f} GB, {o['n_shared']}/{o['n_slots']} "
            f"shared): device {m['report_device_bytes'] / GB:.3f} GB, host "
            f"{m['report_host_bytes'] / GB:.3f} GB | token {o['median_token_seconds'] * 1e3:.1f} ms "
            f"median, {o['copied_expert_bytes_per_token_mean'] / GB:.3f} GB copied/token | "
            f"== resident {all(o['resident_same_slots_logits_equal'])}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
