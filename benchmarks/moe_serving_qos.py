"""Serving two zoo tenants on this machine: QoS of each engine, and the simulator against it.

Two ``mixtral-tiny`` variants (``prose``, ``code``; the zoo is built on first use) are served
from one Poisson trace (16-token prompts from each tenant's held-out text, 25 new tokens, the
serving paper's output length) by:

* ``consolidated``: half of the expert slots shared, ``copy`` reconfiguration (the paper);
* ``partitioned``: each tenant alone on a MIG-style slice (two 3g.71gb; see
  ``moelab.serving.serve_partitioned``);
* ``single``: one model for every request, the throughput upper bound.

The rate is set from a first calibration so that the consolidated engine is busy about
``--load`` of the time. Then the same trace is simulated (``calibrate`` + ``SimulatedEngine``)
and the simulated mean turnaround is compared with the measured one (target: within 15 %).

Run: ``python benchmarks/moe_serving_qos.py`` (``--seconds``, ``--load``, ``--seed``).
"""

from __future__ import annotations

import os

# One intra-op thread: a tiny model decodes fastest without a thread pool; runs compare fairly.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import sys

import pandas as pd
import torch

from moelab import load_moe
from moelab.consolidation import plan_consolidation
from moelab.reconfigure import ConsolidatedMoE
from moelab.serving import (
    ConsolidatedEngine,
    SimulatedEngine,
    SingleEngine,
    calibrate,
    poisson_arrivals,
    serve,
    serve_partitioned,
)
from moelab.zoo import ensure_zoo

TENANTS = ("prose", "code")
NEW_TOKENS = 25
PROMPT_TOKENS = 16


def prompts_of(zoo, tenant: str, n: int = 32) -> list[list[int]]:
    ids = zoo.heldout_ids(tenant)
    return [ids[i * PROMPT_TOKENS : (i + 1) * PROMPT_TOKENS] for i in range(n)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="length of the trace")
    parser.add_argument("--load", type=float, default=0.6, help="target busy share")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    zoo = ensure_zoo(["mixtral-tiny"])["mixtral-tiny"]
    folders = {t: zoo.path(t) for t in TENANTS}
    plan = plan_consolidation(folders, 0.75, non_expert="host")
    consolidated = ConsolidatedEngine(ConsolidatedMoE.from_plan(plan, device="cpu"))
    models = {t: load_moe(folders[t], tokenizer=False).model for t in TENANTS}
    prompts = {t: prompts_of(zoo, t) for t in TENANTS}
    calibration = [prompts[t][i][:n] for t in TENANTS for i, n in enumerate((4, 8, 16))]
    cost = calibrate(consolidated, calibration, NEW_TOKENS, repeats=5)
    # Under FIFO with two tenants at equal rates, about every other request switches.
    service = cost.generation(PROMPT_TOKENS, NEW_TOKENS)[1] + cost.switch_s / 2
    rate = args.load / service  # requests per second, split over the tenants
    rates = {t: rate / len(TENANTS) for t in TENANTS}
    trace = poisson_arrivals(rates, args.seconds, prompts, NEW_TOKENS, seed=args.seed)
    print(
        f"{len(trace)} requests in {args.seconds:.0f} s ({rate:.2f} req/s), service "
        f"~{service * 1e3:.1f} ms each; cost model: {cost}"
    )

    runs = {
        "consolidated": serve(consolidated, trace),
        "partitioned (2 x 3g.71gb)": serve_partitioned(
            {t: SingleEngine(models[t], [t]) for t in TENANTS}, trace, "3g.71gb"
        ),
        "single": serve(SingleEngine(models["prose"], TENANTS), trace),
    }
    runs["consolidated, simulated"] = serve(
        SimulatedEngine(cost, TENANTS, consolidated.max_context, "consolidated (simulated)"), trace
    )
    table = pd.DataFrame({name: run.summary() for name, run in runs.items()}).T
    columns = [
        "done",
        "mean_turnaround_s",
        "p95_turnaround_s",
        "mean_ttft_s",
        "tokens_per_s",
        "reconfigurations",
    ]
    with pd.option_context(
        "display.width", 160, "display.max_columns", None, "display.float_format", "{:.4f}".format
    ):
        print(table[columns])

    real = table.loc["consolidated", "mean_turnaround_s"]
    sim = table.loc["consolidated, simulated", "mean_turnaround_s"]
    part = table.loc["partitioned (2 x 3g.71gb)", "mean_turnaround_s"]
    error = abs(sim - real) / real
    print(
        f"simulated / measured mean turnaround: {sim / real:.3f} (|error| {error:.1%}, target <= 15 %)"
    )
    print(f"consolidated / partitioned mean turnaround: {real / part:.3f}")
    return 0 if error <= 0.15 else 1


if __name__ == "__main__":
    sys.exit(main())
