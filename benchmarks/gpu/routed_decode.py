"""Decode at batch 1 through the routed experts path against transformers' experts paths.

A Mixtral-8x7B-shaped model (random bf16 weights drawn on the GPU by ``RandomSource``) decodes
64 new tokens after a 16-token prompt through :class:`moelab.serving.SingleEngine` (static KV
cache, each decode step one replayed CUDA graph, the engine's bookkeeping included), with each
experts implementation in turn: transformers' ``grouped_mm`` (its default) and ``batched_mm``,
and ``moelab_routed`` (:mod:`moelab.experts`: only the selected experts' weights, read once);
then the step compiled first, for ``grouped_mm`` and ``moelab_routed``; then batch 4 (a
``StaticDecoder`` of four rows, graphs) for both; then every expert in 4 bits
(``quantize_experts``, group 64) on the routed path, at batch 1 and 4. transformers'
``generate`` with its dynamic cache is the peer, measured in the same run. The one-token logits
of the routed path are compared with ``batched_mm``'s, and two consolidated tenants (16 layers)
decode on the routed path with a tenant switch before every request.

Tokens/s counts decode only; the floor is the active parameters read per token at 4.25 TB/s.

Run on a CUDA machine: ``python benchmarks/gpu/routed_decode.py`` (``--layers``, ``--out``);
``--tiny`` runs the same code on the CPU with a tiny Mixtral (no graphs, no compile).
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
from transformers import MixtralConfig

sys.path.insert(0, str(Path(__file__).parent))
from serving_decode import (  # noqa: E402
    BANDWIDTH,
    active_bytes,
    decode_rate,
    generate_rate,
    requests,
)
from serving_qos import MIXTRAL_8X7B, TINY  # noqa: E402

from labcore.atomic import atomic_write_text  # noqa: E402
from moelab.consolidation import plan_consolidation  # noqa: E402
from moelab.experts import ROUTED, quantize_experts, use_routed_experts  # noqa: E402
from moelab.reconfigure import ConsolidatedMoE  # noqa: E402
from moelab.serving import ConsolidatedEngine, SingleEngine, StaticDecoder, serve  # noqa: E402
from moelab.sources import PerturbedSource, RandomSource, materialize  # noqa: E402

OUT = Path(__file__).with_suffix(".json")
PROMPT, NEW = 16, 64


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def free() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def engine_rate(model, implementation: str, compile: bool) -> dict[str, Any]:
    model.set_experts_implementation(implementation)
    engine = SingleEngine(model, ["t0"], static_cache=PROMPT + NEW, compile=compile)
    start = time.perf_counter()
    serve(engine, requests(["t0"], 1))  # captures (and compiles) the decode step
    first = time.perf_counter() - start
    rate = decode_rate(serve(engine, requests(["t0"], 5)).outcomes)
    return {**rate, "first_request_s": first}


def batch_rate(model, batch: int, repeats: int = 3) -> dict[str, float]:
    """Decode tokens/s of ``batch`` prompts decoded together (graphs on CUDA)."""
    decoder = StaticDecoder(model, PROMPT + NEW, batch_size=batch)
    prompts = [list(range(1 + i, PROMPT + 1 + i)) for i in range(batch)]
    decoder.generate_batch(prompts, NEW)  # captures the step
    per_token = []
    for _ in range(repeats):
        out = decoder.generate_batch(prompts, NEW)[0]
        per_token.append((out.total_s - out.first_token_s) / (NEW - 1))
    ms = statistics.median(per_token) * 1e3
    return {"batch": batch, "ms_per_step": ms, "tokens_per_s": batch * 1e3 / ms}


def logits_agreement(model, device: torch.device) -> dict[str, float]:
    ids = torch.tensor([[7]], device=device)
    with torch.no_grad():
        model.set_experts_implementation("batched_mm")
        reference = model(input_ids=ids).logits.float()
        use_routed_experts(model)
        routed = model(input_ids=ids).logits.float()
    error = (routed - reference).abs().max().item()
    return {
        "max_abs_error_vs_batched_mm": error,
        "relative_to_max_logit": error / reference.abs().max().item(),
        "same_argmax": bool(torch.equal(routed.argmax(-1), reference.argmax(-1))),
    }


def single(config: MixtralConfig, device: torch.device, tiny: bool) -> dict[str, Any]:
    base = RandomSource(config, seed=0, device=device)
    start = time.perf_counter()
    model = materialize(base, device)
    out: dict[str, Any] = {
        "layers": config.num_hidden_layers,
        "build_s": time.perf_counter() - start,
    }
    model.set_experts_implementation("grouped_mm")
    out["generate_dynamic_cache"] = generate_rate(model, list(range(1, PROMPT + 1)))
    out["logits"] = logits_agreement(model, device)
    paths = [("grouped_mm", False), ("batched_mm", False), (ROUTED, False)]
    if not tiny:
        paths += [("grouped_mm", True), (ROUTED, True)]
    keys = [
        f"{implementation}{' compiled' if compiled else ''}" for implementation, compiled in paths
    ]
    for key, (implementation, compiled) in zip(keys, paths):
        out[key] = engine_rate(model, implementation, compiled)
        print(f"  {key}: {out[key]['tokens_per_s']:.1f} tok/s", flush=True)
    for implementation in ("grouped_mm", ROUTED):
        model.set_experts_implementation(implementation)
        out[f"{implementation} batch 4"] = batch_rate(model, 4)
    use_routed_experts(model)
    with torch.no_grad():
        reference = model(input_ids=torch.tensor([[7]], device=device)).logits.float()
    start = time.perf_counter()
    quantize_experts(model, "all", group_size=64)
    sync(device)
    out["int4_quantize_s"] = time.perf_counter() - start
    with torch.no_grad():
        quantized = model(input_ids=torch.tensor([[7]], device=device)).logits.float()
    out["int4_logits_relative_change"] = (
        (quantized - reference).norm() / reference.norm()
    ).item()  # random weights: no quality to state here (see moe_int4_quality.py)
    out["int4"] = engine_rate(model, ROUTED, False)
    out["int4 batch 4"] = batch_rate(model, 4)
    floor = BANDWIDTH / active_bytes(config.num_hidden_layers)
    out["bandwidth_floor_tokens_per_s"] = floor
    out["routed_fraction_of_floor"] = out[ROUTED]["tokens_per_s"] / floor
    best = max(out[key]["tokens_per_s"] for key in keys)
    out["int4_vs_generate"] = (
        out["int4"]["tokens_per_s"] / out["generate_dynamic_cache"]["tokens_per_s"]
    )
    out["best_tokens_per_s"] = best
    out["best_vs_generate"] = best / out["generate_dynamic_cache"]["tokens_per_s"]
    del model
    free()
    return out


def consolidated(config: MixtralConfig, device: torch.device) -> dict[str, Any]:
    base = RandomSource(config, seed=0, device=device)
    tenants = {f"t{i}": PerturbedSource(base, seed=i + 1, scale=0.02) for i in range(2)}
    cmoe = ConsolidatedMoE.from_plan(plan_consolidation(tenants, 0.75), device=device, mode="swap")
    use_routed_experts(cmoe.model)
    engine = ConsolidatedEngine(cmoe, static_cache=PROMPT + NEW)
    engine.warmup()
    run = serve(engine, requests(["t0", "t1"], 8))  # every request starts with a switch
    switches = [o.switch_s for o in run.outcomes if o.reconfigured]
    out = {
        "layers": config.num_hidden_layers,
        "routed": decode_rate(run.outcomes),
        "switch_ms_median": statistics.median(switches) * 1e3,
        "switch_ms_max": max(switches) * 1e3,
        "bandwidth_floor_tokens_per_s": BANDWIDTH / active_bytes(config.num_hidden_layers),
    }
    del engine, cmoe, run
    free()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--consolidated-layers", type=int, default=16)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--tiny", action="store_true", help="tiny Mixtral on the CPU")
    args = parser.parse_args()
    device = torch.device("cpu" if args.tiny else "cuda")
    shape = TINY if args.tiny else MIXTRAL_8X7B
    layers = shape["num_hidden_layers"] if args.tiny else args.layers
    results = {
        "device": "cpu (tiny shape)" if args.tiny else torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "prompt_tokens": PROMPT,
        "new_tokens": NEW,
        "single": single(
            MixtralConfig(**{**shape, "num_hidden_layers": layers}), device, args.tiny
        ),
    }
    atomic_write_text(args.out, json.dumps(results, indent=1) + "\n")
    layers = shape["num_hidden_layers"] if args.tiny else args.consolidated_layers
    config = MixtralConfig(**{**shape, "num_hidden_layers": layers})
    results["consolidated"] = consolidated(config, device)
    atomic_write_text(args.out, json.dumps(results, indent=1) + "\n")
    s, c = results["single"], results["consolidated"]
    print(
        f"{results['device']}: generate {s['generate_dynamic_cache']['tokens_per_s']:.1f} tok/s; "
        f"routed {s[ROUTED]['tokens_per_s']:.1f} tok/s ({s['routed_fraction_of_floor']:.0%} of the "
        f"{s['bandwidth_floor_tokens_per_s']:.0f} tok/s floor); best {s['best_tokens_per_s']:.1f} "
        f"= {s['best_vs_generate']:.2f}x generate; all experts 4-bit {s['int4']['tokens_per_s']:.1f} "
        f"tok/s; batch 4 routed {s[ROUTED + ' batch 4']['tokens_per_s']:.1f} tok/s; consolidated routed "
        f"{c['routed']['tokens_per_s']:.1f} tok/s, switch {c['switch_ms_median']:.3f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
