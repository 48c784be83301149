"""Serving several tenants from one device: requests, engines, schedulers and their metrics.

Requests and streams (``_requests``)
    Request, poisson_arrivals (independent Poisson arrivals per tenant), save_trace,
    load_trace (CSV)
Decoding (``_decode``, ``_static``)
    greedy_decode (prefill + KV-cached greedy decode, timed to the first and last token),
    Generation; StaticDecoder (a static KV cache reset in place; on CUDA each decode step is
    one replayed graph, per tenant where the weights are re-pointed)
Engines (``_engines``: one interface, one live model)
    Engine, ConsolidatedEngine (shared experts, partial reconfiguration), SingleEngine (one
    model for everyone: the upper bound), SwapEngine (whole weights copied in per switch)
Schedulers (``_schedulers``: a registry; see :func:`available_schedulers`)
    ``"fifo"`` (the paper's), ``"tenant_grouping"`` (the active tenant first, bounded by a
    fairness limit); Scheduler, FifoScheduler, TenantGroupingScheduler, get_scheduler
MIG-style partitions (``_partition``)
    serve_partitioned (one tenant per slice, slices side by side, measured times stretched by
    the slice's share of the device), MigProfile, available_mig_profiles, get_mig_profile
Simulation (``_simulate``)
    calibrate (time an engine's primitives) -> CostModel; SimulatedEngine (computes nothing,
    takes the predicted time): ``serve(SimulatedEngine(...), stream)`` is the discrete-event
    simulation of the same loop
Sweeps (``_sweep``)
    sweep_loads (the same streams through several engines: one summary row per engine and rate)
Serving a stream (``_serve``)
    serve -> ServingRun (``requests()`` per-request table: queue wait, time to first token,
    time per output token, turnaround; ``summary()``), Outcome

Every request gets an outcome: done, rejected with a reason (unknown tenant, longer than the
context, queue full) or failed with its error; a failing request does not stop the engine.

Examples
--------
>>> from moelab import ConsolidatedMoE
>>> engine = ConsolidatedEngine(ConsolidatedMoE.from_plan(plan))
>>> stream = poisson_arrivals({"prose": 0.5, "code": 0.5}, 10, prompts, 2)
>>> serve(engine, stream, "tenant_grouping").summary()[["requests", "done"]].to_dict()
{'requests': 5, 'done': 5}
"""

from __future__ import annotations

from moelab.serving._decode import Generation, greedy_decode
from moelab.serving._engines import ConsolidatedEngine, Engine, SingleEngine, SwapEngine
from moelab.serving._partition import (
    MigProfile,
    available_mig_profiles,
    get_mig_profile,
    serve_partitioned,
)
from moelab.serving._requests import Request, load_trace, poisson_arrivals, save_trace
from moelab.serving._schedulers import (
    FifoScheduler,
    Scheduler,
    TenantGroupingScheduler,
    available_schedulers,
    get_scheduler,
)
from moelab.serving._serve import Outcome, ServingRun, serve
from moelab.serving._simulate import CostModel, SimulatedEngine, calibrate
from moelab.serving._static import StaticDecoder
from moelab.serving._sweep import sweep_loads

__all__ = [
    "ConsolidatedEngine",
    "CostModel",
    "Engine",
    "FifoScheduler",
    "MigProfile",
    "Generation",
    "Outcome",
    "Request",
    "Scheduler",
    "ServingRun",
    "SimulatedEngine",
    "SingleEngine",
    "StaticDecoder",
    "SwapEngine",
    "TenantGroupingScheduler",
    "available_mig_profiles",
    "available_schedulers",
    "calibrate",
    "get_mig_profile",
    "get_scheduler",
    "greedy_decode",
    "load_trace",
    "poisson_arrivals",
    "save_trace",
    "serve",
    "serve_partitioned",
    "sweep_loads",
]
