"""What storing every expert in 4 bits costs in perplexity, on the offline zoo's Mixtral tenants.

Each ``mixtral-tiny`` tenant is evaluated on its held-out text as trained (float32) and with
every expert quantized to 4 bits (:func:`moelab.experts.quantize_experts`: group-wise affine
codes by round to nearest, decoded on the routed path), for two group sizes; the expert bytes
are measured from the stored tensors. Where bitsandbytes is installed (the ``quant`` extra),
its NF4 format (the paper's 4 bits; blocks of 64, values written back with
:func:`moelab.quant.fake_quantize`) is evaluated beside them, its bytes counted as it stores
them. Random weights (the GPU benchmarks) have no quality to lose, so this is where the 4-bit
path's quality cost is stated.

Run: ``python benchmarks/moe_int4_quality.py`` (builds the zoo on first use, minutes).
"""

from __future__ import annotations

import importlib.util
import sys

import pandas as pd
import torch

from moelab import load_moe
from moelab.evaluate import perplexity
from moelab.experts import quantize_experts
from moelab.families import detect_family
from moelab.quant import expert_bytes as quantized_expert_bytes
from moelab.quant import fake_quantize
from moelab.zoo import ensure_zoo

ZOO, CHUNK, CHUNKS = "mixtral-tiny", 128, 32
GROUP_SIZES = (32, 64)
NF4 = "bnb-nf4"


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
    nf4 = importlib.util.find_spec("bitsandbytes") is not None
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
        if nf4:
            moe = load_moe(zoo.path(tenant), tokenizer=False)
            fake_quantize(moe, moe.expert_slots(), 4, 64, NF4)
            row["nf4 g64"] = perplexity(moe.model, ids, CHUNK, CHUNKS)
            shapes = moe.family.expert_shapes(moe.model.config)
            itemsize = next(moe.model.parameters()).element_size()
            one = quantized_expert_bytes(shapes, 4, 64, itemsize, NF4)
            row["expert MB, nf4 g64"] = len(moe.expert_slots()) * one / 1e6
        rows.append(row)
    table = pd.DataFrame(rows).set_index("tenant")
    for name in [f"int4 g{group}" for group in GROUP_SIZES] + ["nf4 g64"] * nf4:
        table[f"ppl ratio {name}"] = table[name] / table["float32"]
    print(table.round(3).to_string())
    print(
        "mean perplexity ratio, all experts 4-bit: "
        + ", ".join(
            f"{c.removeprefix('ppl ratio ')} {table[c].mean():.3f}"
            for c in table.columns
            if c.startswith("ppl ratio")
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
