"""Mixtral (``model_type="mixtral"``).

In memory (transformers 5): ``model.layers.{l}.mlp.experts.gate_up_proj`` ``[E, 2F, H]`` and
``mlp.experts.down_proj`` ``[E, H, F]``; expert ``j`` is ``w1 = gate_up_proj[j, :F]``,
``w3 = gate_up_proj[j, F:]``, ``w2 = down_proj[j]`` and computes ``w2 @ (silu(w1 x) * (w3 x))``.
The router is ``mlp.gate`` (``weight`` ``[E, H]``, softmax then top-k renormalised).

On disk: the hub checkpoints, and ``save_pretrained`` by default, use the original names
``model.layers.{l}.block_sparse_moe.experts.{j}.w1|w2|w3.weight`` and
``block_sparse_moe.gate.weight``; ``save_pretrained(..., save_original_format=False)`` writes
the fused in-memory names. ``from_pretrained`` accepts both.
"""

from __future__ import annotations

from moelab.families._fused import FusedGatedFamily

__all__ = ["MixtralFamily"]


class MixtralFamily(FusedGatedFamily):
    """Adapter for Mixtral; expert matrices ``("w1", "w2", "w3")`` = gate, down, up."""

    name = "mixtral"
    model_types = ("mixtral",)
    matrix_names = ("w1", "w2", "w3")
    gate_name, up_name, down_name = "w1", "w3", "w2"
    num_experts_field = "num_local_experts"
    per_expert_key = "model.layers.{layer}.block_sparse_moe.experts.{expert}.{matrix}.weight"
    per_expert_router_key = "model.layers.{layer}.block_sparse_moe.gate.weight"
