"""Routing counts: the router's top-k choices, counted where the experts receive them."""

from __future__ import annotations

import pytest
import torch

from moelab.families import get_family
from moelab.loading import load_moe
from moelab.routing import routing_counts


def test_counts_equal_the_indices_the_experts_receive(tiny_model):
    model = tiny_model("mixtral", 3)
    family = get_family("mixtral")
    ids = torch.randint(1, 64, (2, 11), generator=torch.Generator().manual_seed(0))
    seen: dict[int, torch.Tensor] = {}
    repeated: dict[int, list[int]] = {}

    def hook_for(layer):
        def hook(module, args, kwargs):
            index = args[1] if len(args) > 1 else kwargs["top_k_index"]
            seen[layer] = torch.bincount(index.reshape(-1), minlength=family.num_experts(model))
            # An expert a token picks that the previous token of its sequence picked too.
            picks = [set(row) for row in index.reshape(-1, 2).tolist()]
            repeated[layer] = [0] * family.num_experts(model)
            for t, now in enumerate(picks):
                if t % 11:
                    for e in now & picks[t - 1]:
                        repeated[layer][e] += 1

        return hook

    handles = [
        family.moe_block(model, layer).experts.register_forward_pre_hook(
            hook_for(layer), with_kwargs=True
        )
        for layer in range(family.num_moe_layers(model))
    ]
    with torch.no_grad():
        model(input_ids=ids)
    for handle in handles:
        handle.remove()
    counts = routing_counts(load_moe(model), ids)
    for layer, expected in seen.items():
        got = counts[counts["layer"] == layer].sort_values("expert")["count"].tolist()
        assert got == expected.tolist(), layer
        rows = counts[counts["layer"] == layer].sort_values("expert")
        assert rows["repeats"].tolist() == repeated[layer], layer
        assert (rows["repeat_share"] == rows["repeats"] / ids.numel()).all()
    # Every token picks top-2 experts in every layer.
    assert (counts.groupby("layer")["share"].sum().round(9) == 2.0).all()


def test_switch_routes_each_token_to_one_expert(tiny_model):
    counts = routing_counts(tiny_model("switch_transformers", 1), torch.arange(1, 21))
    assert (counts.groupby("layer")["count"].sum() == 20).all()
    assert list(counts.columns) == [
        "layer",
        "expert",
        "count",
        "share",
        "repeats",
        "repeat_share",
    ]
    assert (counts["repeats"] <= counts["count"]).all()


def test_one_token_is_refused_with_what_is_needed(tiny_model):
    with pytest.raises(ValueError, match="routing_counts counts at least 2 tokens, got 1"):
        routing_counts(tiny_model("mixtral", 1), [5])
