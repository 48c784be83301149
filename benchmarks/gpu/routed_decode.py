"""Decode at batch 1 through the routed experts path against transformers' experts paths.

First each expert matrix of Mixtral-8x7B (gate_up ``[28672, 4096]``, down ``[4096, 14336]``)
is timed alone at 2 and 8 assignments: the routed kernels in bf16 and 4 bits (group 64) with
their default tiles and a sweep of tiles, against one ``F.linear`` per assignment. Then a
Mixtral-8x7B-shaped model (random bf16 weights drawn on the GPU by ``RandomSource``) decodes 64
new tokens after a 16-token prompt through :class:`moelab.serving.SingleEngine` (static KV
cache, each decode step one replayed CUDA graph, the engine's bookkeeping included), with each
experts implementation in turn: ``moelab_routed`` (:mod:`moelab.experts`: only the selected
experts' weights, read once), transformers' ``grouped_mm`` (its default) and ``batched_mm``,
each also with the step compiled first (the plain compiled loop); batch 4 (a ``StaticDecoder``
of four rows, graphs); transformers' ``generate`` with its dynamic cache and with a static
cache (compiled by transformers), the peers measured in the same run; then every expert in 4
bits (``quantize_experts``, group 64) on the routed path, at batch 1 and 4 and compiled. The
one-token logits of each bf16 path are compared with a float32 copy (4 layers), and two
consolidated tenants (16 layers) decode on the routed path with a tenant switch before every request.

Tokens/s counts decode only; the floor is the active parameters read per token at 4.25 TB/s.
Each step writes the JSON as it ends; one that no longer fits ``--deadline`` is skipped, and
one that fails records its error while the others go on.

Run on a CUDA machine: ``python benchmarks/gpu/routed_decode.py`` (``--layers``, ``--out``,
``--deadline``, ``--only`` steps); ``--tiny`` runs the same code on the CPU with a tiny Mixtral (no kernel sweep,
graphs or compile).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from traceback import format_exc
from typing import Any

import torch
from transformers import MixtralConfig

sys.path.insert(0, str(Path(__file__).parent))
from serving_decode import (  # noqa: E402
    BANDWIDTH,
    NEW,
    PROMPT,
    active_bytes,
    decode_rate,
    free,
    generate_rate,
    requests,
    sync,
)
from serving_qos import MIXTRAL_8X7B, TINY  # noqa: E402

from labcore.atomic import atomic_write_text  # noqa: E402
from moelab.consolidation import plan_consolidation  # noqa: E402
from moelab.experts import (  # noqa: E402
    ROUTED,
    Tiles,
    block_sizes,
    quantize_experts,
    quantize_int4,
    routed_gemv,
    routed_gemv_int4,
    use_routed_experts,
)
from moelab.reconfigure import ConsolidatedMoE  # noqa: E402
from moelab.serving import ConsolidatedEngine, SingleEngine, StaticDecoder, serve  # noqa: E402
from moelab.sources import PerturbedSource, RandomSource, materialize  # noqa: E402

OUT = Path(__file__).with_suffix(".json")


class Steps:
    """Named measurements written to the JSON as each ends; one that no longer fits is skipped."""

    def __init__(
        self, results: dict[str, Any], out: Path, deadline_s: float, only: list[str] | None = None
    ) -> None:
        self.results, self.out, self.only = results, out, only
        self.end = time.perf_counter() + deadline_s

    def save(self) -> None:
        atomic_write_text(self.out, json.dumps(self.results, indent=1) + "\n")

    def __call__(self, where: dict[str, Any], key: str, needs_s: float, fn: Callable[[], Any]):
        left = self.end - time.perf_counter()
        if self.only and key not in self.only:
            return {}  # not selected: not run, not recorded
        if left < needs_s:
            where[key] = {"skipped": f"{left:.0f} s left, needs ~{needs_s:.0f}"}
        else:
            start = time.perf_counter()
            try:
                where[key] = fn()
            except Exception as err:  # keep what the other steps measure
                where[key] = {"error": f"{type(err).__name__}: {err}", "trace": format_exc()}
            seconds = time.perf_counter() - start
            shown = where[key].get("tokens_per_s", "") if isinstance(where[key], dict) else ""
            print(f"  {key}: {seconds:.1f} s {shown} {where[key].get('error', '')}", flush=True)
        self.save()
        return where[key]


def engine_rate(model, implementation: str, compile: bool) -> dict[str, Any]:
    model.set_experts_implementation(implementation)
    engine = SingleEngine(model, ["t0"], static_cache=PROMPT + NEW, compile=compile)
    start = time.perf_counter()
    serve(engine, requests(["t0"], 1))  # captures (and compiles) the decode step
    first = time.perf_counter() - start
    rate = decode_rate(serve(engine, requests(["t0"], 5)).outcomes)
    return {**rate, "first_request_s": first}


def static_generate_rate(model, repeats: int = 3) -> dict[str, float]:
    """transformers' ``generate`` with a static cache (it compiles the forward on first use)."""
    device = next(model.parameters()).device
    ids = torch.tensor([list(range(1, PROMPT + 1))], device=device)
    times = []
    for _ in range(repeats + 1):
        sync(device)
        start = time.perf_counter()
        with torch.no_grad():
            model.generate(
                ids,
                max_new_tokens=NEW,
                min_new_tokens=NEW,
                do_sample=False,
                cache_implementation="static",
            )
        sync(device)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times[1:])
    return {"first_call_s": times[0], "seconds_per_request": seconds, "tokens_per_s": NEW / seconds}


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


def logits_agreement(
    config: MixtralConfig, device: torch.device, layers: int = 4
) -> dict[str, Any]:
    """One-token logits of each bf16 path against a float32 copy of the same model.

    Over many layers of random weights a router tie can flip between two summation orders, so
    two bf16 paths are compared through their error against float32 (on ``layers`` layers, so
    that the float32 copy fits beside the bf16 model), transformers' own paths giving the scale.
    """
    small = MixtralConfig(**{**config.to_dict(), "num_hidden_layers": layers})
    model = materialize(RandomSource(small, seed=0, device=device), device)
    ids = torch.tensor([[7]], device=device)
    with torch.no_grad():
        model.set_experts_implementation("batched_mm")
        reference = model.float()(input_ids=ids).logits.float()
        model.to(torch.bfloat16)
        logits = {}
        for implementation in ("batched_mm", "grouped_mm", ROUTED):
            model.set_experts_implementation(implementation)
            logits[implementation] = model(input_ids=ids).logits.float()
    peak = reference.abs().max().item()
    out: dict[str, Any] = {"layers": layers}
    for implementation, value in logits.items():
        out[implementation] = {
            "max_error_vs_float32_relative_to_max_logit": (value - reference).abs().max().item()
            / peak,
            "max_difference_vs_batched_mm_relative": (value - logits["batched_mm"])
            .abs()
            .max()
            .item()
            / peak,
            "same_argmax_as_float32": bool(torch.equal(value.argmax(-1), reference.argmax(-1))),
        }
    del model
    free()
    return out


def kernel_time_us(fn: Callable[[], Any], device: torch.device, repeats: int = 20) -> float:
    for _ in range(3):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeats * 1e6


def kernel_sweep(
    config: MixtralConfig,
    device: torch.device,
    budget_s: float,
    kinds: tuple[str, ...] = ("bf16", "int4"),
) -> dict[str, Any]:
    """Each expert matrix at batch 1 and 4: the routed kernels' tiles against ``F.linear``.

    Bandwidth counts the selected experts' distinct bytes once; the peer is one ``F.linear``
    per assignment on a view of its expert (no copy).
    """
    end = time.perf_counter() + budget_s
    h, f = config.hidden_size, config.intermediate_size
    shapes = {"gate_up": (2 * f, h), "down": (h, f)}
    generator = torch.Generator(device=device).manual_seed(0)
    out: dict[str, Any] = {}
    for name, (n, k) in shapes.items():
        weight = torch.randn(8, n, k, device=device, dtype=torch.bfloat16, generator=generator)
        q = quantize_int4(weight, 64)
        for assignments in (2, 8):
            ids = torch.randperm(8, device=device, generator=generator)[:assignments]
            x = torch.randn(assignments, k, device=device, dtype=torch.bfloat16)
            distinct = len(set(ids.tolist()))
            bf16_bytes, int4_bytes = distinct * n * k * 2, distinct * q.nbytes / 8
            row: dict[str, Any] = {}
            row["f_linear_us"] = kernel_time_us(
                lambda x=x, w=weight, ids=ids: [
                    torch.nn.functional.linear(x[i], w[e]) for i, e in enumerate(ids)
                ],
                device,
            )
            for kind, fn, nbytes, block_ns, block_ks in (
                (
                    "bf16",
                    partial(routed_gemv, x, weight, ids),
                    bf16_bytes,
                    (8, 16, 32, 64),
                    (128, 256, 512),
                ),
                (
                    "int4",
                    partial(routed_gemv_int4, x, q, ids),
                    int4_bytes,
                    (8, 16, 32, 64),
                    (256, 512, 1024),
                ),
            ):
                if kind not in kinds:
                    continue
                bits = 16 if kind == "bf16" else 4
                default = list(block_sizes(assignments, n, k, bits=bits))
                times = {"default": kernel_time_us(partial(fn, None), device)}
                for block_n in block_ns:
                    for block_k in block_ks:
                        for warps in (4, 8):
                            if time.perf_counter() > end:
                                break
                            tiles = Tiles(block_n, block_k, warps)
                            times[str(list(tiles))] = kernel_time_us(partial(fn, tiles), device)
                best = min(times, key=times.get)
                row[kind] = {
                    "default_tiles": default,
                    "default_us": times["default"],
                    "default_tb_per_s": nbytes / times["default"] / 1e6,
                    "best": best,
                    "best_us": times[best],
                    "best_tb_per_s": nbytes / times[best] / 1e6,
                    "all_us": times,
                }
            out[f"{name} x{assignments}"] = row
            print(
                f"  {name} x{assignments}: F.linear {row['f_linear_us']:.0f} us, "
                + ", ".join(
                    f"{kind} {row[kind]['default_us']:.0f} (best {row[kind]['best_us']:.0f} "
                    f"{row[kind]['best']})"
                    for kind in kinds
                ),
                flush=True,
            )
        del weight, q
        free()
    return out


def single(config: MixtralConfig, device: torch.device, tiny: bool, steps: Steps) -> dict[str, Any]:
    base = RandomSource(config, seed=0, device=device)
    start = time.perf_counter()
    model = materialize(base, device)
    out: dict[str, Any] = {
        "layers": config.num_hidden_layers,
        "build_s": time.perf_counter() - start,
    }
    steps.results["single"] = out
    floor = BANDWIDTH / active_bytes(config.num_hidden_layers)
    out["bandwidth_floor_tokens_per_s"] = floor
    paths = [(ROUTED, False)] + ([] if tiny else [(ROUTED, True)])
    paths += [("grouped_mm", False), ("batched_mm", False)]
    paths += [] if tiny else [("grouped_mm", True)]
    for implementation, compiled in paths:
        key = f"{implementation}{' compiled' if compiled else ''}"
        steps(
            out, key, 45 if compiled else 15, partial(engine_rate, model, implementation, compiled)
        )
    steps(
        out,
        "generate_dynamic_cache",
        35,
        lambda: generate_rate(model, list(range(1, PROMPT + 1)), repeats=2),
    )
    for implementation in (ROUTED, "grouped_mm"):
        model.set_experts_implementation(implementation)
        steps(out, f"{implementation} batch 4", 20, lambda: batch_rate(model, 4))

    def quantize() -> dict[str, float]:
        use_routed_experts(model)
        ids = torch.tensor([[7]], device=device)
        with torch.no_grad():
            reference = model(input_ids=ids).logits.float()
        start = time.perf_counter()
        quantize_experts(model, "all", group_size=64)
        sync(device)
        seconds = time.perf_counter() - start
        with torch.no_grad():
            quantized = model(input_ids=ids).logits.float()
        # Random weights: no quality to state here (see moe_int4_quality.py).
        change = ((quantized - reference).norm() / reference.norm()).item()
        return {"seconds": seconds, "logits_relative_change": change}

    if not tiny:  # before the experts are quantized: generate compiles its own forward
        steps(out, "generate_static_compiled", 110, lambda: static_generate_rate(model))
    if "error" not in steps(out, "int4_quantize", 40, quantize):
        steps(out, "int4", 15, lambda: engine_rate(model, ROUTED, False))
        steps(out, "int4 batch 4", 20, lambda: batch_rate(model, 4))
        if not tiny:
            steps(out, "int4 compiled", 45, lambda: engine_rate(model, ROUTED, True))
    rates = {
        key: value["tokens_per_s"]
        for key, value in out.items()
        if isinstance(value, dict) and "tokens_per_s" in value and "batch" not in key
    }
    for key, rate in rates.items():
        out.setdefault("fraction_of_floor", {})[key] = rate / floor
    generate = max(rates.get("generate_dynamic_cache", 0), rates.get("generate_static_compiled", 0))
    if generate:
        out["vs_best_generate"] = {key: rate / generate for key, rate in rates.items()}
    return out  # the model is freed on return


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
    parser.add_argument("--deadline", type=float, default=1e9, help="seconds for all steps")
    parser.add_argument("--kernel-sweep-s", type=float, default=100.0)
    parser.add_argument(
        "--kernel-kinds", nargs="+", default=["bf16", "int4"], help="kernels the sweep times"
    )
    parser.add_argument("--only", nargs="+", help="run only these steps (e.g. kernels int4)")
    parser.add_argument("--tiny", action="store_true", help="tiny Mixtral on the CPU")
    args = parser.parse_args()
    device = torch.device("cpu" if args.tiny else "cuda")
    shape = TINY if args.tiny else MIXTRAL_8X7B
    results: dict[str, Any] = {
        "device": "cpu (tiny shape)" if args.tiny else torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "prompt_tokens": PROMPT,
        "new_tokens": NEW,
    }
    steps = Steps(results, args.out, args.deadline, args.only)
    config = MixtralConfig(
        **{**shape, "num_hidden_layers": shape["num_hidden_layers"] if args.tiny else args.layers}
    )
    if not args.tiny:
        steps(
            results,
            "kernels",
            args.kernel_sweep_s,
            lambda: kernel_sweep(config, device, args.kernel_sweep_s, tuple(args.kernel_kinds)),
        )
    steps(results, "logits", 30, lambda: logits_agreement(config, device))
    single(config, device, args.tiny, steps)
    free()
    layers = shape["num_hidden_layers"] if args.tiny else args.consolidated_layers
    config = MixtralConfig(**{**shape, "num_hidden_layers": layers})
    steps(results, "consolidated", 60, lambda: consolidated(config, device))
    s, c = results["single"], results.get("consolidated", {})

    def rate(entry: Any) -> str:
        return f"{entry['tokens_per_s']:.1f}" if "tokens_per_s" in entry else "-"

    print(
        f"{results['device']}: floor {s['bandwidth_floor_tokens_per_s']:.0f} tok/s; "
        + "; ".join(
            f"{key} {rate(value)}"
            for key, value in s.items()
            if isinstance(value, dict)
            and key not in ("logits", "fraction_of_floor", "vs_best_generate", "int4_quantize")
        )
        + f"; consolidated routed {rate(c.get('routed', {}))}, switch {c.get('switch_ms_median', float('nan')):.3f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
