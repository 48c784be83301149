"""Quality of service of N Mixtral-8x7B-shaped tenants on one H200: wall-clock runs.

Tenants are made from one random base that is never stored (``RandomSource``: every tensor
drawn on the GPU when it is read) by seeded perturbations (``PerturbedSource``), so two or four
93 GB models need neither a disk nor a copy of the base on the GPU. Three ways of serving them
take the same Poisson traces (16 prompt + 64 new tokens per request, batch 1):

``consolidated``
    One :class:`~moelab.reconfigure.ConsolidatedMoE` under a 125 GB device budget: shared
    experts, every tenant's non-expert set resident, one decode graph per tenant (``"swap"``).
``partitioned``
    MIG-style: each tenant alone on a slice, 3g.71gb for two tenants, 1g.35gb for four (the
    largest profile of which N fit an H200). A tenant does not fit its slice, so the plan keeps
    what fits on the device and the rest of its experts in host memory, copied in on use;
    measured times are stretched by the slice's share of the device (``serve_partitioned``).
    As many slices are built for real as the device and three quarters of the host memory
    hold (their host tiers add up); the others have the same shapes and placement and are
    served by a :class:`~moelab.serving.SimulatedEngine` with the first slice's measured costs.
``single``
    Tenant ``t0``'s model alone, serving every request: the throughput bound.

Traces, all set from the two-tenant consolidated engine's service time measured first by
:func:`~moelab.serving.calibrate`, for two tenants and (suffix ``x4``) four: ``L50``, ``L90``,
``L150`` at 0.5, 0.9 and 1.5 times its capacity, and ``P`` at the rate that keeps a slice about
half busy, taking a slice to be ``SLICE_SLOWER`` times slower than consolidation (an estimate:
its expert copies over PCIe dominate; the slice's service time is then measured and recorded,
so P's true load is known). P is the first seeded trace that gives every tenant
``SLICE_REQUESTS`` requests at least (rounded down). Every cost model
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

sys.path.insert(0, str(Path(__file__).parent))
from consolidation_graphs import MIXTRAL_8X7B as CONSOLIDATION_SHAPE  # noqa: E402

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
MIXTRAL_8X7B = {**CONSOLIDATION_SHAPE, "num_hidden_layers": 32}
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
TENANT_COUNTS = (2, 4)
SLICES = {2: "3g.71gb", 4: "1g.35gb"}  # the largest profile of which N fit one H200
SLICE_HEADROOM_GB = 1.0  # of the slice's memory, for the KV cache and activations
LOADS = {"L50": 0.5, "L90": 0.9, "L150": 1.5}
LOAD_SECONDS = 8.0
# Trace P per tenant count (see above): load of a slice, slice / consolidated service time
# (estimates), requests per tenant expected and at least.
SLICE_LOAD = 0.5
SLICE_SLOWER = {2: 25.0, 4: 80.0}
SLICE_REQUESTS = {2: 2.0, 4: 1.5}


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
        self.scale = self.one_model / 93.4e9 if tiny else 1.0
        self.consolidated_budget = int(CONSOLIDATED_BUDGET_GB * 1e9 * self.scale)
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
            "slices": {n: SLICES[n] for n in TENANT_COUNTS},
            "traces": {},
            "phases": {},
        }

    def slice_budget(self, profile: Any) -> int:
        """Device bytes for one tenant on a slice: its memory less the headroom."""
        return int((profile.memory_gb - SLICE_HEADROOM_GB) * 1e9 * self.scale)

    def room_for_another(self, memory: dict[str, Any], slices: int) -> bool:
        """Whether ``slices`` slices like this one fit the device and 3/4 of the host memory."""
        with open("/proc/meminfo") as f:
            host = int(next(line for line in f if line.startswith("MemTotal")).split()[1]) * 1024
        device = (
            torch.cuda.get_device_properties(self.device).total_memory
            if self.device.type == "cuda"
            else host
        )
        return (
            slices * memory["plan_host_bytes"] <= 0.75 * host
            and slices * memory["plan_device_bytes"] <= device - 8e9 * self.scale
        )

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
def trace_name(base: str, n: int) -> str:
    """Two tenants' traces keep their plain names; others carry the count: ``L50x4``."""
    return base if n == 2 else f"{base}x{n}"


def define_traces(bench: Bench, state: dict[str, Any], service: float) -> None:
    """Every trace, from the consolidated engine's measured service time (see the docstring)."""
    for n in TENANT_COUNTS:
        for name, load in LOADS.items():
            state[trace_name(name, n)] = bench.trace(
                trace_name(name, n), load / service / n, LOAD_SECONDS, n
            )
        rate = SLICE_LOAD / (SLICE_SLOWER[n] * service)
        state[trace_name("P", n)] = bench.trace(
            trace_name("P", n), rate, SLICE_REQUESTS[n] / rate, n, int(SLICE_REQUESTS[n])
        )


def traces_of(state: dict[str, Any], n: int) -> list[str]:
    return [t for t in (trace_name(b, n) for b in ("P", *LOADS)) if t in state]


def build_slice(bench: Bench, source: PerturbedSource, tenant: str, budget: int):
    """One tenant alone under a slice's device budget, its other experts in host memory."""
    start = time.perf_counter()
    plan = plan_consolidation({tenant: source}, budget, unit="bytes", placement="offload")
    before, rss = bench.allocated(), rss_bytes()
    cmoe = ConsolidatedMoE.from_plan(plan, device=bench.device)
    memory = {
        "plan_device_bytes": plan.memory.device_bytes,
        "plan_host_bytes": plan.memory.host_bytes,
        "memory_allocated_delta": bench.allocated() - before,
        "rss_delta": rss_bytes() - rss,
        "cache_rows": plan.memory.cache_rows,
        "device_slots": plan.n_shared,
        "slots": plan.memory.n_slots,
        "build_seconds": time.perf_counter() - start,
    }
    return ConsolidatedEngine(cmoe, static_cache=PROMPT + NEW), memory


def partition_phase(bench: Bench, state: dict[str, Any], n: int, reserve_s: float) -> dict:
    """N slices of the profile for N tenants: as many built for real as the host holds, the
    first one calibrated; the others served by its costs. Serves trace P for real if time
    allows (``reserve_s`` kept for the later phases)."""
    profile = get_mig_profile(SLICES[n])
    budget = bench.slice_budget(profile)
    tenants = bench.tenants(n)
    engines: dict[str, Engine] = {}
    memory: dict[str, Any] = {}
    for tenant, source in tenants.items():
        engine, memory[tenant] = build_slice(bench, source, tenant, budget)
        engines[tenant] = engine
        if not bench.room_for_another(memory[tenant], len(engines) + 1):
            break
    first = engines["t0"]
    copied = first.consolidated.copied_expert_bytes()
    start = time.perf_counter()
    cost = calibrate(first, calibration_prompts(bench)[::2], new_tokens=8, repeats=1)
    calibrate_s = time.perf_counter() - start
    first_s, total_s = cost.generation(PROMPT, NEW)
    service = first_s * profile.prefill_slowdown + (total_s - first_s) * profile.decode_slowdown
    name = trace_name("P", n)
    trace = state[name]
    rate = bench.results["traces"][name]["rate_per_tenant_per_s"]
    out: dict[str, Any] = {
        "profile": profile.name,
        "budget_bytes": budget,
        "memory": memory,
        "cost_full_device": cost_dict(cost),
        "calibration_seconds": calibrate_s,
        "calibration_copied_bytes": first.consolidated.copied_expert_bytes() - copied,
        "slice_service_s": service,
        "trace_slice_load": rate * service,
    }
    real_s = sum(r.tenant in engines for r in trace) * total_s
    if bench.deadline.left() < real_s + reserve_s:
        out["real_run"] = f"skipped: the real slices' requests need ~{real_s:.0f} s"
        engines = {}
    sliced = {
        t: engines.get(t) or SimulatedEngine(cost, [t], first.max_context, name="simulated slice")
        for t in tenants
    }
    run = serve_partitioned(sliced, trace, profile)
    out[name] = run_record(run)
    out[name]["measured_slices"] = sorted(engines)
    out[name]["simulated_slices"] = sorted(set(tenants) - set(engines))
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
    if not state:  # the first phase: the traces follow this engine's service time
        service = cost.generation(PROMPT, NEW)[1] + cost.switch_s / 2
        out["service_s"] = service
        define_traces(bench, state, service)
    runs = {name: serve(engine, state[name]) for name in traces_of(state, n)}
    out["runs"] = {name: run_record(run) for name, run in runs.items()}
    out["simulated_vs_measured"] = simulated_vs_measured(cost, engine, runs, state)
    switches = [o.switch_s for run in runs.values() for o in run.outcomes if o.reconfigured]
    if not switches:  # no run: time the switches alone
        switches = [engine.switch(f"t{(i + 1) % n}") for i in range(4 * n)]
    out["switch_ms_median"] = statistics.median(switches) * 1e3
    out["switch_ms_max"] = max(switches) * 1e3
    return out


def single_phase(bench: Bench, state: dict[str, Any]) -> dict[str, Any]:
    """Tenant t0's model alone serving every request of every trace."""
    start = time.perf_counter()
    before = bench.allocated()
    model = materialize(bench.tenants(1)["t0"], bench.device)
    out: dict[str, Any] = {
        "build_seconds": time.perf_counter() - start,
        "memory_allocated_delta": bench.allocated() - before,
    }
    everyone = [f"t{i}" for i in range(max(TENANT_COUNTS))]
    engine = SingleEngine(model, everyone, static_cache=PROMPT + NEW)
    out["warmup_seconds"] = engine.warmup(bench.prompts["t0"][0][:4], 3)
    cost = calibrate(engine, calibration_prompts(bench), new_tokens=32, repeats=1)
    out["cost"] = cost_dict(cost)
    names = [name for n in TENANT_COUNTS for name in traces_of(state, n)]
    out["runs"] = {name: run_record(serve(engine, state[name])) for name in names}
    return out


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's claims, from what was measured (absent where a phase did not run)."""
    phases = results["phases"]

    def summary(phase: str, trace: str) -> dict[str, Any] | None:
        where = phases.get(phase, {})
        record = (
            where.get(trace) if phase.startswith("partition") else where.get("runs", {}).get(trace)
        )
        return record["summary"] if isinstance(record, dict) else None

    out: dict[str, Any] = {}
    for n in TENANT_COUNTS:
        suffix = "" if n == 2 else f"x{n}"
        partition = "partition" if n == 2 else f"partition{n}"
        c, p = (
            summary(f"consolidated{n}", trace_name("P", n)),
            summary(partition, trace_name("P", n)),
        )
        if c and p:
            out[f"P{suffix}_turnaround_cut"] = 1 - c["mean_turnaround_s"] / p["mean_turnaround_s"]
        for trace in LOADS:
            c = summary(f"consolidated{n}", trace_name(trace, n))
            s = summary("single", trace_name(trace, n))
            if c and s:
                out[f"{trace_name(trace, n)}_throughput_vs_single"] = (
                    c["tokens_per_s"] / s["tokens_per_s"]
                )
        runs = phases.get(f"consolidated{n}", {}).get("runs", {})
        done = sum(r["summary"]["done"] for r in runs.values())
        if done:
            switch = sum(r["summary"]["switch_s"] for r in runs.values())
            ttft = sum(r["summary"]["mean_ttft_s"] * r["summary"]["done"] for r in runs.values())
            out[f"switch_share_of_mean_ttft{suffix}"] = switch / ttft
        sims = phases.get(f"consolidated{n}", {}).get("simulated_vs_measured", {})
        if sims:
            out[f"simulator_worst_error{suffix}"] = max(abs(v["ratio"] - 1) for v in sims.values())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--deadline", type=float, default=1e9, help="seconds for all phases")
    parser.add_argument("--tiny", action="store_true", help="tiny Mixtral on the CPU")
    args = parser.parse_args()
    bench = Bench(args.tiny, args.out, args.deadline)
    state: dict[str, Any] = {}
    # Most important first; each phase frees the device for the next.
    bench.phase("consolidated2", 45, lambda: consolidated_phase(bench, state, 2))
    bench.phase("single", 40, lambda: single_phase(bench, state))
    bench.phase("partition", 60, lambda: partition_phase(bench, state, 2, reserve_s=150))
    bench.phase("consolidated4", 45, lambda: consolidated_phase(bench, state, 4))
    bench.phase("partition4", 60, lambda: partition_phase(bench, state, 4, reserve_s=0))
    bench.results["headline"] = headline(bench.results)
    bench.save()
    print(json.dumps(bench.results["headline"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
