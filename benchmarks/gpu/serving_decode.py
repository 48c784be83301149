"""Decode speed through the serving engines on an H200, against transformers' ``generate``.

A Mixtral-8x7B-shaped model (random bf16 weights, ``build_base`` of ``consolidation_graphs.py``)
decodes 64 new tokens after a 16-token prompt at batch 1:

* ``generate``: transformers' ``generate`` with its dynamic cache (the default path);
* ``single engine``: :class:`moelab.serving.SingleEngine` with a static KV cache, each decode
  step one replayed CUDA graph, served through :func:`moelab.serving.serve` (the engine's own
  bookkeeping included); then the same with the step compiled first (``compile=True``);
* ``consolidated engine``: two tenants (``PerturbedSource`` of one base, every non-expert set
  resident, ``"swap"`` mode: one graph per tenant) on fewer layers so that base and
  consolidated model fit the GPU together; requests alternate between the tenants, so every
  request starts with a tenant switch, timed apart.

Tokens/s counts decode only (time after the first token / tokens after the first); the
memory-bandwidth floor is the active parameters read per token at 4.25 TB/s.

Run on a CUDA machine: ``python benchmarks/gpu/serving_decode.py`` (``--layers``,
``--consolidated-layers``, ``--out``). Writes ``benchmarks/gpu/serving_decode.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from consolidation_graphs import MIXTRAL_8X7B, build_base  # noqa: E402

from labcore.atomic import atomic_write_text  # noqa: E402
from moelab.consolidation import plan_consolidation  # noqa: E402
from moelab.reconfigure import ConsolidatedMoE  # noqa: E402
from moelab.serving import ConsolidatedEngine, Request, SingleEngine, serve  # noqa: E402
from moelab.sources import PerturbedSource  # noqa: E402

OUT = Path(__file__).with_suffix(".json")
PROMPT, NEW = 16, 64
BANDWIDTH = 4.25e12


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (timings on a GPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free() -> None:
    """Drop unreferenced tensors and give the GPU's cached blocks back."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def active_bytes(layers: int) -> float:
    """Bytes read per token at batch 1: non-expert weights plus top-2 of 8 experts per layer.

    32 layers: 12.8 B parameters, 25.5 GB in bf16 (the issue's 12.9 B active parameters).
    """
    h, f, v = MIXTRAL_8X7B["hidden_size"], MIXTRAL_8X7B["intermediate_size"], 32000
    attention = h * h * 2 + 2 * h * (h // 4)  # q, o; k, v with 8 of 32 heads
    expert = 3 * h * f
    # lm_head whole, one embedding row, the final norm.
    return 2 * (layers * (attention + 2 * expert + 8 * h + 2 * h) + v * h + h + h)


def decode_rate(outcomes) -> dict[str, float]:
    per_token = [
        (o.finish_s - o.first_token_s) / (len(o.tokens) - 1) for o in outcomes if o.status == "done"
    ]
    ms = statistics.median(per_token) * 1e3
    return {"ms_per_token": ms, "tokens_per_s": 1e3 / ms}


def generate_rate(model, prompt: list[int], repeats: int = 3) -> dict[str, float]:
    """transformers' ``generate`` (dynamic cache) timed on the model's device."""
    device = next(model.parameters()).device
    ids = torch.tensor([prompt], device=device)
    times = []
    for _ in range(repeats + 1):
        sync(device)
        start = time.perf_counter()
        with torch.no_grad():
            model.generate(ids, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False)
        sync(device)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times[1:])  # the first call warms up
    return {"seconds_per_request": seconds, "tokens_per_s": NEW / seconds}


def requests(tenants: list[str], n: int) -> list[Request]:
    prompt = list(range(1, PROMPT + 1))
    return [Request(tenants[i % len(tenants)], prompt, NEW, 0.0, request_id=i) for i in range(n)]


def single(layers: int) -> dict[str, Any]:
    base, info = build_base(layers)
    out: dict[str, Any] = {
        "layers": layers,
        "build": {k: v for k, v in info.items() if k != "reference_rotary"},
    }
    out["generate_dynamic_cache"] = generate_rate(base, list(range(1, PROMPT + 1)))
    engine = SingleEngine(base, ["t0"], static_cache=PROMPT + NEW)
    start = time.perf_counter()
    serve(engine, requests(["t0"], 1))  # the first request captures the decode graph
    out["first_request_with_capture_s"] = time.perf_counter() - start
    run = serve(engine, requests(["t0"], 5))
    out["single_engine_static_graph"] = decode_rate(run.outcomes)
    compiled = SingleEngine(base, ["t0"], static_cache=PROMPT + NEW, compile=True)
    start = time.perf_counter()
    serve(compiled, requests(["t0"], 1))  # compiles, then captures
    out["first_request_with_compile_and_capture_s"] = time.perf_counter() - start
    out["single_engine_compiled_static_graph"] = decode_rate(
        serve(compiled, requests(["t0"], 5)).outcomes
    )
    del compiled
    floor = BANDWIDTH / active_bytes(layers)
    out["bandwidth_floor_tokens_per_s"] = floor
    out["fraction_of_floor"] = out["single_engine_static_graph"]["tokens_per_s"] / floor
    out["compiled_fraction_of_floor"] = (
        out["single_engine_compiled_static_graph"]["tokens_per_s"] / floor
    )
    out["speedup_vs_generate"] = (
        out["single_engine_static_graph"]["tokens_per_s"]
        / out["generate_dynamic_cache"]["tokens_per_s"]
    )
    del engine, base, run
    gc.collect()
    torch.cuda.empty_cache()
    return out


def consolidated(layers: int) -> dict[str, Any]:
    base, _ = build_base(layers)
    tenants = {f"t{i}": PerturbedSource(base, seed=i + 1, scale=0.02) for i in range(2)}
    plan = plan_consolidation(tenants, 0.75)
    cmoe = ConsolidatedMoE.from_plan(plan, device="cuda", mode="swap")
    del tenants, plan, base
    gc.collect()
    torch.cuda.empty_cache()
    engine = ConsolidatedEngine(cmoe, static_cache=PROMPT + NEW)
    serve(engine, requests(["t0", "t1"], 2))  # capture one graph per tenant
    run = serve(engine, requests(["t0", "t1"], 8))
    switches = [o.switch_s for o in run.outcomes if o.switch_s > 0]
    out = {
        "layers": layers,
        "shared_slots": cmoe.plan.n_shared,
        "slots": cmoe.plan.memory.n_slots,
        "consolidated_engine_static_graph": decode_rate(run.outcomes),
        "switch_ms_median": statistics.median(switches) * 1e3,
        "switch_ms_max": max(switches) * 1e3,
        "switches": len(switches),
        "bandwidth_floor_tokens_per_s": BANDWIDTH / active_bytes(layers),
    }
    del engine, cmoe, run
    gc.collect()
    torch.cuda.empty_cache()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=32, help="single engine (Mixtral-8x7B: 32)")
    parser.add_argument("--consolidated-layers", type=int, default=16)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    results = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "prompt_tokens": PROMPT,
        "new_tokens": NEW,
        "single": single(args.layers),
        "consolidated": consolidated(args.consolidated_layers),
    }
    atomic_write_text(args.out, json.dumps(results, indent=1) + "\n")
    s, c = results["single"], results["consolidated"]
    print(f"{results['device']}, Mixtral-8x7B shape, batch 1, {PROMPT} + {NEW} tokens")
    print(
        f"  {s['layers']} layers: generate {s['generate_dynamic_cache']['tokens_per_s']:.1f} tok/s | "
        f"single engine (static cache, graph) {s['single_engine_static_graph']['tokens_per_s']:.1f} "
        f"tok/s = {s['speedup_vs_generate']:.2f}x, {s['fraction_of_floor']:.0%} of the "
        f"{s['bandwidth_floor_tokens_per_s']:.0f} tok/s floor; compiled step "
        f"{s['single_engine_compiled_static_graph']['tokens_per_s']:.1f} tok/s "
        f"({s['compiled_fraction_of_floor']:.0%}; first request "
        f"{s['first_request_with_compile_and_capture_s']:.0f} s with the compile)"
    )
    print(
        f"  {c['layers']} layers, 2 tenants consolidated ({c['shared_slots']}/{c['slots']} shared): "
        f"{c['consolidated_engine_static_graph']['tokens_per_s']:.1f} tok/s, switch "
        f"{c['switch_ms_median']:.3f} ms median ({c['switch_ms_max']:.3f} max, {c['switches']} switches)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
