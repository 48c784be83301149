"""OLMoE (``model_type="olmoe"``).

Laid out like Mixtral in memory (fused ``mlp.experts.gate_up_proj`` ``[E, 2F, H]`` and
``mlp.experts.down_proj`` ``[E, H, F]``, router ``mlp.gate``), with no shared expert; attention
adds ``q_norm``/``k_norm``, which count as attention. The original checkpoints, and
``save_pretrained`` by default, name expert ``j`` of layer ``l``
``model.layers.{l}.mlp.experts.{j}.gate_proj|up_proj|down_proj.weight``.
"""

from __future__ import annotations

from moelab.families._fused import FusedGatedFamily

__all__ = ["OlmoeFamily"]


class OlmoeFamily(FusedGatedFamily):
    """Adapter for OLMoE; expert matrices ``("gate_proj", "up_proj", "down_proj")``."""

    name = "olmoe"
    model_types = ("olmoe",)
    matrix_names = ("gate_proj", "up_proj", "down_proj")
    gate_name, up_name, down_name = "gate_proj", "up_proj", "down_proj"
    num_experts_field = "num_experts"
    per_expert_key = "model.layers.{layer}.mlp.experts.{expert}.{matrix}.weight"
    per_expert_router_key = "model.layers.{layer}.mlp.gate.weight"
