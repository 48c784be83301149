"""Quality of service of N Mixtral-8x7B-shaped tenants on one H200: wall-clock runs.

Tenants are made from one random base that is never stored (``RandomSource``: every tensor
drawn on the GPU when it is read) by seeded perturbations (``PerturbedSource``), so two or four
93 GB models need neither a disk nor a copy of the base on the GPU. Three ways of serving them
take the same Poisson traces (16 prompt + 64 new tokens per request, batch 1):

``consolidated``
    One :class:`~moelab.reconfigure.ConsolidatedMoE` under a 125 GB device budget: shared
    experts, every tenant's non-expert set resident, one decode graph per tenant (``"swap"``).
``partitioned``
    MIG-style: each tenant alone on a 3g.71gb slice (two slices split an H200). A tenant does
    not fit 71 GB, so the plan keeps what fits on the device and the rest of its experts in
    host memory, copied in on use; measured times are stretched by the slice's share of the
    device (``serve_partitioned``). Slice ``t0`` runs for real; slice ``t1`` has the same
    shapes and placement and is served by a :class:`~moelab.serving.SimulatedEngine` with
    ``t0``'s measured costs (two slices' host tiers do not fit this machine's memory at once).
``single``
    Tenant ``t0``'s model alone, serving every request: the throughput bound.

Traces, all set from the consolidated engine's service time measured first by
:func:`~moelab.serving.calibrate`: ``L50``, ``L90``, ``L150`` at 0.5, 0.9 and 1.5 times its
capacity, and ``P`` at the rate that keeps a slice about half busy, taking a slice to be
``SLICE_SLOWER`` times slower than consolidation (an estimate: its expert copies over PCIe
dominate; the slice's service time is then measured and recorded, so P's true load is known).
P is the first seeded trace that gives every tenant two requests at least. Every cost model
measured here is written out, so sweeps too long to run are simulated from them (notebook 03).
Each phase writes the JSON as it ends; one that no longer fits ``--deadline`` is skipped.

Run on a CUDA machine: ``python benchmarks/gpu/serving_qos.py`` (``--out``, ``--deadline``);
``--tiny`` runs the same code on the CPU with a tiny Mixtral (a check of the script).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import MixtralConfig

from labcore.atomic import atomic_write_text
from moelab.consolidation import plan_consolidation
from moelab.reconfigure import ConsolidatedMoE
from moelab.serving import (
    ConsolidatedEngine,
    CostModel,
    Engine,
    Request,
    ServingRun,
    SimulatedEngine,
    SingleEngine,
    calibrate,
    get_mig_profile,
    poisson_arrivals,
    serve,
    serve_partitioned,
)
from moelab.sources import PerturbedSource, RandomSource, materialize

OUT = Path(__file__).with_suffix(".json")
PROMPT, NEW = 16, 64
MIXTRAL_8X7B = dict(
    vocab_size=32000,
    hidden_size=4096,
    intermediate_size=14336,
    num_local_experts=8,
    num_experts_per_tok=2,
    num_attention_heads=32,
    num_key_value_heads=8,
    num_hidden_layers=32,
    max_position_embeddings=32768,
)
TINY = dict(
    vocab_size=128,
    hidden_size=64,
    intermediate_size=128,
    num_local_experts=8,
    num_experts_per_tok=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    num_hidden_layers=4,
    max_position_embeddings=256,
)
CONSOLIDATED_BUDGET_GB = 125.0  # of the H200's ~150 GB: room for caches, graphs and reads
SLICE = "3g.71gb"
SLICE_HEADROOM_GB = 1.0  # of the slice's memory, for the KV cache and activations
LOADS = {"L50": 0.5, "L90": 0.9, "L150": 1.5}
LOAD_SECONDS = 8.0
SLICE_LOAD, SLICE_SLOWER, SLICE_REQUESTS = 0.5, 25.0, 2  # trace P (see above)


class Deadline:
    """Seconds left of the script's allowance; a phase that needs more is skipped."""

    def __init__(self, seconds: float) -> None:
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()


class Bench:
    """The shape, the device, the tenants' sources and the results written as they come."""

    def __init__(self, tiny: bool, out: Path, deadline: float) -> None:
        self.tiny, self.out, self.deadline = tiny, out, Deadline(deadline)
        self.device = torch.device("cpu" if tiny else "cuda")
        self.config = MixtralConfig(**(TINY if tiny else MIXTRAL_8X7B))
        base = RandomSource(self.config, seed=0, device=self.device)
        self.base = base
        self.one_model = sum(
            p.numel() * p.element_size()
            for p in base.family.meta_model(self.config, base.dtype).parameters()
        )
        # Budgets in bytes; on the tiny shape, the same fractions of one model.
        scale = self.one_model / 93.4e9 if tiny else 1.0
        self.consolidated_budget = int(CONSOLIDATED_BUDGET_GB * 1e9 * scale)
        profile = get_mig_profile(SLICE)
        self.slice_budget = int((profile.memory_gb - SLICE_HEADROOM_GB) * 1e9 * scale)
        generator = torch.Generator().manual_seed(0)
        vocab = self.config.vocab_size
        self.prompts = {
            f"t{i}": [
                torch.randint(1, vocab, (PROMPT,), generator=generator).tolist() for _ in range(8)
            ]
            for i in range(4)
        }
        self.results: dict[str, Any] = {
            "what": __doc__.splitlines()[0],
            "device": torch.cuda.get_device_name() if not tiny else "cpu (tiny shape)",
            "torch": torch.__version__,
            "shape": {**(TINY if tiny else MIXTRAL_8X7B), "dtype": "bfloat16"},
            "one_model_bytes": self.one_model,
            "prompt_tokens": PROMPT,
            "new_tokens": NEW,
            "consolidated_budget_bytes": self.consolidated_budget,
            "slice": {"profile": SLICE, "budget_bytes": self.slice_budget},
            "traces": {},
            "phases": {},
        }

    def tenants(self, n: int) -> dict[str, PerturbedSource]:
        return {f"t{i}": PerturbedSource(self.base, seed=i + 1, scale=0.02) for i in range(n)}

    def save(self) -> None:
        atomic_write_text(self.out, json.dumps(self.results, indent=1) + "\n")

    def phase(self, name: str, needs_s: float, fn: Callable[[], dict[str, Any]]) -> None:
        left = self.deadline.left()
        if left < needs_s:
            self.results["phases"][name] = {"skipped": f"{left:.0f} s left, needs ~{needs_s:.0f}"}
            print(f"[{name}] skipped: {left:.0f} s left", flush=True)
            self.save()
            return
        start = time.perf_counter()
        try:
            result = fn()
        except Exception as err:  # keep what the other phases measure
            result = {"error": f"{type(err).__name__}: {err}", "trace": traceback.format_exc()}
        result["phase_seconds"] = time.perf_counter() - start
        self.results["phases"][name] = result
        print(f"[{name}] {result['phase_seconds']:.1f} s {result.get('error', '')}", flush=True)
        self.free()
        self.save()

    def free(self) -> None:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.empty_cache()

    def allocated(self) -> int:
        return torch.cuda.memory_allocated() if self.device.type == "cuda" else 0

    def trace(
        self, name: str, rate_per_tenant: float, seconds: float, n: int, at_least: int = 0
    ) -> list[Request]:
        tenants = [f"t{i}" for i in range(n)]
        for seed in range(1000):
            stream = poisson_arrivals(
                {t: rate_per_tenant for t in tenants},
                seconds,
                {t: self.prompts[t] for t in tenants},
                NEW,
                seed=seed,
            )
            if all(sum(r.tenant == t for r in stream) >= at_least for t in tenants):
                break
        self.results["traces"][name] = {
            "tenants": n,
            "rate_per_tenant_per_s": rate_per_tenant,
            "seconds": seconds,
            "seed": seed,
            "requests": [[r.tenant, r.arrival_s] for r in stream],
        }
        return stream


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cost_dict(cost: CostModel) -> dict[str, float]:
    return dataclasses.asdict(cost)


def run_record(run: ServingRun) -> dict[str, Any]:
    summary = run.summary()
    table = run.requests()
    return {
        "summary": {k: (v.item() if hasattr(v, "item") else v) for k, v in summary.items()},
        "requests": table[
            [
                "request_id",
                "tenant",
                "status",
                "arrival_s",
                "start_s",
                "first_token_s",
                "finish_s",
                "switch_s",
            ]
        ].to_dict(orient="list"),
        "decode_tokens_per_s": decode_rate(run),
    }


def decode_rate(run: ServingRun) -> float:
    per_token = [
        (o.finish_s - o.first_token_s) / (len(o.tokens) - 1)
        for o in run.outcomes
        if o.status == "done"
    ]
    return 1 / statistics.median(per_token) if per_token else float("nan")


def simulated_vs_measured(
    cost: CostModel, engine: Engine, runs: dict[str, ServingRun], traces
) -> dict:
    out = {}
    for name, run in runs.items():
        sim = serve(SimulatedEngine(cost, engine.tenants, engine.max_context), traces[name])
        measured = run.summary()["mean_turnaround_s"]
        simulated = sim.summary()["mean_turnaround_s"]
        out[name] = {
            "measured_s": measured,
            "simulated_s": simulated,
            "ratio": simulated / measured,
        }
    return out


def calibration_prompts(bench: Bench) -> list[list[int]]:
    return [bench.prompts["t0"][0][:8], bench.prompts["t1"][0], bench.prompts["t0"][1][:4]]


# ------------------------------------------------------------------------------ phases
def partition_phase(bench: Bench, state: dict[str, Any]) -> dict[str, Any]:
    """Slice t0 (3g.71gb): build with host-tier experts, calibrate, serve trace P for real."""
    profile = get_mig_profile(SLICE)
    tenants = bench.tenants(2)
    start = time.perf_counter()
    plan = plan_consolidation(
        {"t0": tenants["t0"]}, bench.slice_budget, unit="bytes", placement="offload"
    )
    before, rss = bench.allocated(), rss_bytes()
    cmoe = ConsolidatedMoE.from_plan(plan, device=bench.device)
    build = time.perf_counter() - start
    memory = {
        "plan_device_bytes": plan.memory.device_bytes,
        "plan_host_bytes": plan.memory.host_bytes,
        "memory_allocated_delta": bench.allocated() - before,
        "rss_delta": rss_bytes() - rss,
        "cache_rows": plan.memory.cache_rows,
        "device_slots": plan.n_shared,
        "slots": plan.memory.n_slots,
    }
    engine = ConsolidatedEngine(cmoe, static_cache=PROMPT + NEW)
    copied = cmoe.copied_expert_bytes()
    t0 = time.perf_counter()
    cost = calibrate(engine, calibration_prompts(bench)[::2], new_tokens=8, repeats=1)
    calibrate_s = time.perf_counter() - t0
    copied = cmoe.copied_expert_bytes() - copied
    state["slice_cost"] = cost
    first, total = cost.generation(PROMPT, NEW)
    slice_service = first * profile.prefill_slowdown + (total - first) * profile.decode_slowdown
    trace = state["P"]
    rate = bench.results["traces"]["P"]["rate_per_tenant_per_s"]
    out: dict[str, Any] = {
        "build_seconds": build,
        "memory": memory,
        "cost_full_device": cost_dict(cost),
        "calibration_seconds": calibrate_s,
        "calibration_copied_bytes": copied,
        "slice_service_s": slice_service,
        "trace_P_slice_load": rate * slice_service,
    }
    t0_requests = sum(r.tenant == "t0" for r in trace)
    real_s = t0_requests * total
    if bench.deadline.left() < real_s + 45:  # keep room for the four-tenant build
        out["P_real"] = f"skipped: {t0_requests} requests need ~{real_s:.0f} s"
        sliced: dict[str, Engine] = {"t0": SimulatedEngine(cost, ["t0"], engine.max_context)}
    else:
        sliced = {"t0": engine}
    sliced["t1"] = SimulatedEngine(cost, ["t1"], engine.max_context)
    run = serve_partitioned(sliced, trace, SLICE)
    out["P"] = run_record(run)
    out["P"]["t0_slice"] = "measured" if sliced["t0"] is engine else "simulated"
    out["P"]["t1_slice"] = "simulated from t0's measured costs"
    return out


def consolidated_phase(bench: Bench, state: dict[str, Any], n: int) -> dict[str, Any]:
    """N tenants consolidated: build, measure memory, calibrate, serve the traces."""
    tenants = bench.tenants(n)
    start = time.perf_counter()
    plan = plan_consolidation(tenants, bench.consolidated_budget, unit="bytes")
    plan_s = time.perf_counter() - start
    before = bench.allocated()
    cmoe = ConsolidatedMoE.from_plan(plan, device=bench.device, mode="swap")
    out: dict[str, Any] = {
        "plan_seconds": plan_s,
        "build_seconds": time.perf_counter() - start - plan_s,
        "memory": {
            "plan_device_bytes": plan.memory.device_bytes,
            "memory_allocated_delta": bench.allocated() - before,
            "shared_slots": plan.n_shared,
            "slots": plan.memory.n_slots,
            "tenants_bytes_if_separate": n * bench.one_model,
        },
    }
    del tenants
    engine = ConsolidatedEngine(cmoe, static_cache=PROMPT + NEW)
    out["warmup_seconds"] = engine.warmup(bench.prompts["t0"][0][:4], 3)
    cost = calibrate(engine, calibration_prompts(bench), new_tokens=32, repeats=2)
    out["cost"] = cost_dict(cost)
    key = f"consolidated{n}_cost"
    state[key] = cost
    if n == 2:
        first, total = cost.generation(PROMPT, NEW)
        service = total + cost.switch_s / 2
        out["service_s"] = service
        for name, load in LOADS.items():
            state[name] = bench.trace(name, load / service / 2, LOAD_SECONDS, 2)
        rate = SLICE_LOAD / (SLICE_SLOWER * service)
        state["P"] = bench.trace("P", rate, SLICE_REQUESTS / rate, 2, SLICE_REQUESTS)
    runs = {}
    for name in ("P", *LOADS) if n == 2 else ():
        if name in state:
            runs[name] = serve(engine, state[name])
    out["runs"] = {name: run_record(run) for name, run in runs.items()}
    out["simulated_vs_measured"] = simulated_vs_measured(cost, engine, runs, state)
    switches = [o.switch_s for run in runs.values() for o in run.outcomes if o.reconfigured]
    if not switches:  # four tenants: time the switches alone
        for i in range(4 * n):
            switches.append(engine.switch(f"t{(i + 1) % n}"))
    out["switch_ms_median"] = statistics.median(switches) * 1e3
    out["switch_ms_max"] = max(switches) * 1e3
    return out


def single_phase(bench: Bench, state: dict[str, Any]) -> dict[str, Any]:
    """Tenant t0's model alone serving every request of the same traces."""
    start = time.perf_counter()
    before = bench.allocated()
    model = materialize(bench.tenants(1)["t0"], bench.device)
    out: dict[str, Any] = {
        "build_seconds": time.perf_counter() - start,
        "memory_allocated_delta": bench.allocated() - before,
    }
    engine = SingleEngine(model, ["t0", "t1"], static_cache=PROMPT + NEW)
    out["warmup_seconds"] = engine.warmup(bench.prompts["t0"][0][:4], 3)
    cost = calibrate(engine, calibration_prompts(bench), new_tokens=32, repeats=1)
    out["cost"] = cost_dict(cost)
    runs = {name: serve(engine, state[name]) for name in ("P", *LOADS) if name in state}
    out["runs"] = {name: run_record(run) for name, run in runs.items()}
    return out


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's claims, from what was measured (missing parts give None)."""
    phases = results["phases"]

    def summary(phase: str, trace: str) -> dict[str, Any] | None:
        record = (
            phases.get(phase, {}).get("runs", {}).get(trace)
            if phase != "partition"
            else (phases.get("partition", {}).get(trace))
        )
        return record["summary"] if isinstance(record, dict) else None

    out: dict[str, Any] = {}
    c, p = summary("consolidated2", "P"), summary("partition", "P")
    if c and p:
        out["P_turnaround_cut"] = 1 - c["mean_turnaround_s"] / p["mean_turnaround_s"]
    for trace in LOADS:
        c, s = summary("consolidated2", trace), summary("single", trace)
        if c and s:
            out[f"{trace}_throughput_vs_single"] = c["tokens_per_s"] / s["tokens_per_s"]
    runs = phases.get("consolidated2", {}).get("runs", {})
    switch = sum(r["summary"]["switch_s"] for r in runs.values())
    done = sum(r["summary"]["done"] for r in runs.values())
    ttft = [r["summary"]["mean_ttft_s"] * r["summary"]["done"] for r in runs.values()]
    if done:
        out["switch_share_of_mean_ttft"] = (switch / done) / (sum(ttft) / done)
    sims = phases.get("consolidated2", {}).get("simulated_vs_measured", {})
    if sims:
        out["simulator_worst_error"] = max(abs(v["ratio"] - 1) for v in sims.values())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--deadline", type=float, default=1e9, help="seconds for all phases")
    parser.add_argument("--tiny", action="store_true", help="tiny Mixtral on the CPU")
    args = parser.parse_args()
    bench = Bench(args.tiny, args.out, args.deadline)
    state: dict[str, Any] = {}
    bench.phase("consolidated2", 45, lambda: consolidated_phase(bench, state, 2))
    bench.phase("single", 30, lambda: single_phase(bench, state))
    bench.phase("partition", 40, lambda: partition_phase(bench, state))
    bench.phase("consolidated4", 30, lambda: consolidated_phase(bench, state, 4))
    bench.results["headline"] = headline(bench.results)
    bench.save()
    print(json.dumps(bench.results["headline"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
