"""Decode speed of precision and placement plans at Mixtral-8x7B shape on one GPU.

For each GPU budget, number of 4-bit experts and host mode, :func:`moelab.quant.plan_precision`
places the experts (non-expert layers, 4-bit experts, then full-precision ones while room lasts;
the rest in host memory: copied into each layer's cache rows on use, computed on the CPU, or read
in place by the GPU's kernels across the host bus), :func:`moelab.experts.apply_precision_plan`
stores a fresh random bf16 model that way, and it decodes 16 prompt + 64 new tokens at batch 1
on the routed path (one captured graph per step when every expert is on the GPU or read in
place; eagerly when experts are copied in or computed on the CPU, since that reads the routing
on the host). The cost
model (:func:`moelab.quant.measure_decode_cost`, timed once on the unquantized model) predicts
each plan's tokens/s, written beside the measurement (a copied expert that the previous token
picked too is still in its layer's cache rows: the routing's ``repeat_share``). Random weights
have no quality: the quality side of these plans comes from the zoo
(``benchmarks/moe_int4_quality.py``, notebook 04).

Every configuration writes the JSON as it ends; one that no longer fits ``--deadline`` is
skipped, so a run can be split (``--budgets``, ``--n4``, ``--hosts``) and repeated into the
same file; every measured configuration gets the latest run's prediction
(``predicted_tokens_per_s``) and keeps the one of the run that measured it
(``predicted_in_run_tokens_per_s``, with ``run``): plans that read the routing on the host run
their step eagerly, at a speed that follows the host's CPU, which differs between machines.
``--again`` measures configurations the file holds again (``--only 70/64/compute ...`` picks
them); an entry keeps its earlier measurements under ``earlier``.

Run on a CUDA machine: ``python benchmarks/gpu/quant_placement.py`` (``--out``, ``--deadline``);
``--tiny`` runs the same code on the CPU with a tiny Mixtral.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from transformers import MixtralConfig

sys.path.insert(0, str(Path(__file__).parent))
from serving_decode import NEW, PROMPT, free  # noqa: E402
from serving_qos import MIXTRAL_8X7B, TINY  # noqa: E402

from labcore.atomic import atomic_write_text  # noqa: E402
from moelab.experts import MixedExperts, apply_precision_plan, use_routed_experts  # noqa: E402
from moelab.quant import expected_copy_traffic, measure_decode_cost, plan_precision  # noqa: E402
from moelab.routing import routing_counts  # noqa: E402
from moelab.serving import StaticDecoder  # noqa: E402
from moelab.sources import RandomSource, materialize  # noqa: E402

OUT = Path(__file__).with_suffix(".json")
BUDGETS_GB = (25, 35, 45, 53, 70)
N4 = (0, 64, 128, 192, 256)
SUFFIX = {"copy": "", "compute": ", computed on the CPU", "stream": ", read in place"}


def copy_traffic(model) -> dict[str, int]:
    """Uses of copied-in host experts and copies into cache rows so far, over every layer (the
    gate-up matrices: one use per routed expert)."""
    total = {"uses": 0, "copies": 0}
    for module in model.modules():
        weight = getattr(module, "gate_up_proj", None)
        if isinstance(weight, MixedExperts):
            for key, value in weight.copy_traffic().items():
                total[key] += value
    return total


def parse_configuration(text: str) -> tuple[float, int, str]:
    """``"70/64/compute"`` -> ``(70.0, 64, "compute")``: budget in GB, 4-bit experts, host mode."""
    try:
        gb, n4, host = text.split("/")
        parsed = (float(gb), int(n4), host)
    except ValueError:
        parsed = None
    if parsed is None or host not in SUFFIX:
        raise SystemExit(f"--only takes GB/N4/HOST with HOST one of {sorted(SUFFIX)}, got {text!r}")
    return parsed


def earlier_measurements(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """An entry's earlier measurements, oldest first, with its current one (measured again, it
    is kept beside the new one rather than lost)."""
    earlier = list(entry.get("earlier", []))
    if "measured" in entry:
        earlier.append(
            {
                "run": entry["run"],
                "tokens_per_s": entry["measured"]["tokens_per_s"],
                "predicted_in_run_tokens_per_s": entry["predicted_in_run_tokens_per_s"],
            }
        )
    return earlier


def decode(model, device: torch.device, graphs: bool, prompt: list[int]) -> dict[str, float]:
    """Decode speed, and per decoded token the uses of copied-in experts and their copies."""
    decoder = StaticDecoder(model, PROMPT + NEW, graphs=graphs and device.type == "cuda")
    decoder.generate(prompt, 4)  # warm-up (and the capture)
    per_token, traffic = [], []
    for _ in range(2):
        before = copy_traffic(model)
        run = decoder.generate(prompt, NEW)
        traffic.append({k: v - before[k] for k, v in copy_traffic(model).items()})
        per_token.append((run.total_s - run.first_token_s) / (NEW - 1))
    ms = statistics.median(per_token) * 1e3
    # The prompt's share of the first timed run's traffic, counted alone, leaves the decoded
    # tokens'.
    before = copy_traffic(model)
    decoder.generate(prompt, 1)
    prompt_traffic = {k: v - before[k] for k, v in copy_traffic(model).items()}
    per_decoded = {
        f"{k}_per_token": (traffic[0][k] - prompt_traffic[k]) / (NEW - 1) for k in prompt_traffic
    }
    return {"ms_per_token": ms, "tokens_per_s": 1e3 / ms, **per_decoded}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--deadline", type=float, default=1e9)
    parser.add_argument("--budgets", type=float, nargs="+", default=BUDGETS_GB)
    parser.add_argument("--n4", type=int, nargs="+", default=N4)
    parser.add_argument(
        "--hosts",
        nargs="+",
        default=["copy", "compute", "stream"],
        choices=["copy", "compute", "stream"],
    )
    parser.add_argument(
        "--again", action="store_true", help="measure configurations the file holds again"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        default=[],
        metavar="GB/N4/HOST",
        help="these configurations alone, in this order (e.g. 70/64/compute), instead of the "
        "grid of --budgets, --n4 and --hosts",
    )
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    end = time.perf_counter() + args.deadline
    device = torch.device("cpu" if args.tiny else "cuda")
    config = MixtralConfig(**(TINY if args.tiny else MIXTRAL_8X7B))
    source = RandomSource(config, seed=0, device=device)
    results: dict[str, Any] = (
        json.loads(args.out.read_text()) if args.out.exists() else {"configurations": {}}
    )
    results.update(
        device="cpu (tiny shape)" if args.tiny else torch.cuda.get_device_name(),
        torch=torch.__version__,
        prompt_tokens=PROMPT,
        new_tokens=NEW,
    )
    prompt = list(range(1, PROMPT + 1))
    base = use_routed_experts(materialize(source, device))
    with torch.no_grad():
        out = StaticDecoder(base, PROMPT + NEW, graphs=False).generate(prompt, NEW)
    shares = routing_counts(base, prompt + list(out.tokens))
    cost = measure_decode_cost(base, group_size=64)
    results["cost"] = {
        "non_expert_s": cost.non_expert_s,
        "non_expert_eager_s": cost.non_expert_eager_s,
        "host_expert_s": cost.host_expert_s,
        "expert_s": {str(k): v for k, v in cost.expert_s.items()},
        "copy_bytes_per_s": cost.copy_bytes_per_s,
        "stream_expert_s": {str(k): v for k, v in cost.stream_expert_s.items()},
        "copy_use_s": {str(k): v for k, v in cost.copy_use_s.items()},
        "copy_hit_s": {str(k): v for k, v in cost.copy_hit_s.items()},
    }
    # Uses per token, and those that follow the previous token's (a copied expert still in its
    # row), over the decode the plans repeat.
    results["routing"] = {
        "share": float(shares["share"].sum()),
        "repeat_share": float(shares["repeat_share"].sum()),
    }
    results["full_gpu"] = decode(base, device, True, prompt)
    runs = results.setdefault("runs", {})
    run = len(runs) + 1
    runs[str(run)] = (
        f"configurations {args.only}"
        if args.only
        else f"budgets {args.budgets} GB, n4 {args.n4}, hosts {args.hosts}"
    )
    del base
    free()
    slots = source.expert_slots()
    scale = 1.0
    if args.tiny:  # the same fractions of one model
        everything = plan_precision(source, 10**12, [], group_size=16)
        scale = everything.gpu_bytes / 93.4e9
    configurations = [
        (gb, n4, host) for host in args.hosts for gb in args.budgets for n4 in args.n4
    ]
    if args.only:
        configurations = [parse_configuration(text) for text in args.only]
    for gb, n4, host in configurations:
        key = f"{gb:g} GB, {n4} x 4-bit" + SUFFIX[host]
        done = key in results["configurations"] and not args.again
        if done or time.perf_counter() > end - 60:
            continue
        n = min(n4, len(slots))
        try:
            plan = plan_precision(
                source,
                int(gb * 1e9 * scale),
                slots[:n],
                group_size=16 if args.tiny else 64,
                host=host,
            )
        except ValueError as err:
            results["configurations"][key] = {"refused": str(err)}
            continue
        start = time.perf_counter()
        try:
            model = apply_precision_plan(materialize(source, device), plan)
        except ValueError as err:  # a plan no pool layout holds
            results["configurations"][key] = {"refused": str(err)}
            free()
            continue
        entry = {
            "budget_gb": gb,
            "n4": n,
            "host": host,
            "gpu_experts": plan.device.count("gpu"),
            "gpu_bytes": plan.gpu_bytes,
            "cpu_bytes": plan.cpu_bytes,
            "cache_rows": plan.cache_rows,
            "build_s": time.perf_counter() - start,
            "measured": decode(model, device, plan.graph_safe, prompt),
            "predicted_tokens_per_s": cost.tokens_per_s(plan, shares),
        }
        entry["predicted_vs_measured"] = (
            entry["predicted_tokens_per_s"] / entry["measured"]["tokens_per_s"]
        )
        entry["predicted_traffic"] = expected_copy_traffic(plan, shares)
        entry.update(
            run=run,
            predicted_by_run=run,
            graph_safe=plan.graph_safe,
            predicted_in_run_tokens_per_s=entry["predicted_tokens_per_s"],
            predicted_in_run_vs_measured=entry["predicted_vs_measured"],
        )
        entry["earlier"] = earlier_measurements(results["configurations"].get(key, {}))
        results["configurations"][key] = entry
        print(
            f"{key}: {entry['measured']['tokens_per_s']:.1f} tok/s measured, {entry['predicted_tokens_per_s']:.1f} predicted",
            flush=True,
        )
        del model
        free()
        atomic_write_text(args.out, json.dumps(results, indent=1) + "\n")
    # Every measured configuration predicted by this run's cost model (entries measured by an
    # earlier run keep their measurement, and get this run's prediction beside it).
    for entry in results["configurations"].values():
        if "measured" not in entry:
            continue
        n = entry["n4"]
        plan = plan_precision(
            source,
            int(entry["budget_gb"] * 1e9 * scale),
            slots[:n],
            group_size=16 if args.tiny else 64,
            host=entry.get("host", "copy"),
        )
        entry["predicted_tokens_per_s"] = cost.tokens_per_s(plan, shares)
        entry["predicted_vs_measured"] = (
            entry["predicted_tokens_per_s"] / entry["measured"]["tokens_per_s"]
        )
        entry["predicted_by_run"] = run
    atomic_write_text(args.out, json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
