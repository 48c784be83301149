"""Predicted against measured decode speed of precision plans, on this machine.

A Mixtral-shaped model of random float32 weights (small enough for a CPU) is placed under
several budgets and numbers of 4-bit experts (:func:`moelab.quant.plan_precision`), run as
planned (:func:`moelab.experts.apply_precision_plan`: 4-bit and full-precision experts on the
device, the rest in host memory, copied into cache rows on use or computed where they live) and
decoded at batch 1 through
the routed path; the cost model (:func:`moelab.quant.measure_decode_cost`, primitives timed on
the same machine, weighted by the routing on the decoded tokens) predicts each plan's tokens/s.
On a CPU "device" and host are the same memory, so copies are memory copies; the GPU run is
the one that matters (the issue's 25 % target), this checks the model's bookkeeping.

Run: ``python benchmarks/moe_plan_speed.py``.
"""

from __future__ import annotations

import copy
import sys

import pandas as pd
import torch
from transformers import MixtralConfig

from moelab.experts import apply_precision_plan, use_routed_experts
from moelab.quant import measure_decode_cost, plan_precision
from moelab.routing import routing_counts
from moelab.serving import StaticDecoder
from moelab.sources import RandomSource, materialize

SHAPE = dict(
    vocab_size=1000,
    hidden_size=512,
    intermediate_size=1536,
    num_hidden_layers=4,
    num_attention_heads=8,
    num_key_value_heads=2,
    num_local_experts=8,
    num_experts_per_tok=2,
    max_position_embeddings=256,
)
PROMPT, NEW = 16, 48


def main() -> int:
    torch.set_num_threads(1)
    source = RandomSource(MixtralConfig(**SHAPE), seed=0, dtype=torch.float32)
    base = use_routed_experts(materialize(source))
    prompt = torch.randint(
        1, SHAPE["vocab_size"], (PROMPT,), generator=torch.Generator().manual_seed(0)
    ).tolist()
    decoded = StaticDecoder(base, PROMPT + NEW, graphs=False).generate(prompt, NEW).tokens
    shares = routing_counts(base, prompt + list(decoded))
    cost = measure_decode_cost(base, group_size=64)
    print(
        f"an expert's use: {cost.expert_s[None] * 1e3:.3f} ms on the device, "
        f"{cost.host_expert_s * 1e3:.3f} ms computed where it lives (host memory)"
    )
    slots = source.expert_slots()
    everything = plan_precision(source, 10**12, [], group_size=64)
    rows = []
    grid = [
        (host, fraction, n4)
        for host in ("copy", "compute")
        for fraction in (1.0, 0.6, 0.4)
        for n4 in (0, len(slots) // 2, len(slots))
        if host == "copy" or fraction < 1
    ]
    for host, fraction, n4 in grid:
        budget = int(
            everything.non_expert_bytes
            + fraction * (everything.gpu_bytes - everything.non_expert_bytes)
        )
        try:
            plan = plan_precision(source, budget, slots[:n4], group_size=64, host=host)
        except ValueError:  # a budget below the plan's minimum
            continue
        model = apply_precision_plan(copy.deepcopy(materialize(source)), plan)
        decoder = StaticDecoder(model, PROMPT + NEW, graphs=False)
        decoder.generate(prompt, 4)  # warm-up
        runs = [decoder.generate(prompt, NEW) for _ in range(3)]
        per_token = sorted((r.total_s - r.first_token_s) / (NEW - 1) for r in runs)[1]
        predicted = cost.tokens_per_s(plan, shares)
        rows.append(
            {
                "host": host,
                "budget share": fraction,
                "4-bit experts": n4,
                "GPU experts": plan.device.count("gpu"),
                "measured tok/s": 1 / per_token,
                "predicted tok/s": predicted,
                "predicted / measured": predicted * per_token,
            }
        )
    table = pd.DataFrame(rows)
    print(table.round(3).to_string(index=False))
    worst = (table["predicted / measured"] - 1).abs().max()
    print(f"worst prediction error on this machine: {worst:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
