"""What storing every expert in 4 bits costs in perplexity, on the offline zoo's Mixtral tenants.

Each ``mixtral-tiny`` tenant is evaluated on its held-out text as trained (float32) and with
every expert quantized to 4 bits (:func:`moelab.experts.quantize_experts`: group-wise affine
codes by round to nearest, decoded on the routed path), for two group sizes; the expert bytes
are measured from the stored tensors. Random weights (the GPU benchmarks) have no quality to
lose, so this is where the 4-bit path's quality cost is stated.

Run: ``python benchmarks/moe_int4_quality.py`` (builds the zoo on first use, minutes).
"""

from __future__ import annotations

import sys

import pandas as pd
import torch

from moelab import load_moe
from moelab.evaluate import perplexity
from moelab.experts import quantize_experts
from moelab.families import detect_family
from moelab.zoo import ensure_zoo

ZOO, CHUNK, CHUNKS = "mixtral-tiny", 128, 32
GROUP_SIZES = (32, 64)


def expert_bytes(model: torch.nn.Module) -> int:
    family = detect_family(model)
    total = 0
    for layer in range(family.num_moe_layers(model.config)):
        experts = family.moe_block(model, layer).experts
        for name in ("gate_up_proj", "down_proj"):
            weight = getattr(experts, name)
            total += (
                weight.nbytes
                if hasattr(weight, "dense_rows")
                else weight.numel() * weight.element_size()
            )
    return total


def main() -> int:
    import transformers

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(1)
    zoo = ensure_zoo([ZOO])[ZOO]
    rows = []
    for tenant in zoo.tasks:
        ids = zoo.heldout_ids(tenant)
        model = load_moe(zoo.path(tenant), tokenizer=False).model
        row = {"tenant": tenant, "float32": perplexity(model, ids, CHUNK, CHUNKS)}
        row["expert MB, float32"] = expert_bytes(model) / 1e6
        for group in GROUP_SIZES:
            quantized = quantize_experts(
                load_moe(zoo.path(tenant), tokenizer=False).model, group_size=group
            )
            row[f"int4 g{group}"] = perplexity(quantized, ids, CHUNK, CHUNKS)
            row[f"expert MB, int4 g{group}"] = expert_bytes(quantized) / 1e6
        rows.append(row)
    table = pd.DataFrame(rows).set_index("tenant")
    for group in GROUP_SIZES:
        table[f"ppl ratio g{group}"] = table[f"int4 g{group}"] / table["float32"]
    print(table.round(3).to_string())
    print(
        "mean perplexity ratio, all experts 4-bit: "
        + ", ".join(f"g{g} {table[f'ppl ratio g{g}'].mean():.3f}" for g in GROUP_SIZES)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
