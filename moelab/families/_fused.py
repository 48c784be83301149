"""Shared adapter for decoder MoEs whose experts transformers 5 stores fused.

Mixtral, OLMoE and their kin keep all experts of a layer in two parameters of
``model.layers.{l}.mlp.experts``: ``gate_up_proj`` ``[E, 2F, H]`` (the gate projection in rows
``:F``, the up projection in rows ``F:``) and ``down_proj`` ``[E, H, F]``; expert ``j`` computes
``down_j @ (act(gate_j @ x) * (up_j @ x))``. The router is ``mlp.gate`` with a ``weight``
``[E, H]``. A concrete family only names its matrices, its config fields and its original
per-expert checkpoint keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from moelab.families._base import MoEFamily
from moelab.families._types import CheckpointLayout, ExpertSlot, TensorRef

__all__ = ["FusedGatedFamily"]

# Module-name patterns shared by the Llama-style decoders ("model." is absent on a bare backbone).
_PREFIX = r"(model\.)?"
DECODER_NON_EXPERT_PATTERNS = (
    ("embeddings", _PREFIX + r"embed_tokens"),
    ("attention", _PREFIX + r"layers\.\d+\.self_attn"),
    ("norms", _PREFIX + r"layers\.\d+\.(input_layernorm|post_attention_layernorm)"),
    ("norms", _PREFIX + r"norm"),
    ("router", _PREFIX + r"layers\.\d+\.mlp\.gate"),
    ("lm_head", r"lm_head"),
)


class FusedGatedFamily(MoEFamily):
    """Adapter base for fused gated-MLP experts (``gate_up_proj`` + ``down_proj``).

    Subclasses set :attr:`gate_name`, :attr:`up_name`, :attr:`down_name`,
    :attr:`num_experts_field` and the per-expert checkpoint key templates.
    """

    auto_class_name = "AutoModelForCausalLM"
    expert_layout = "fused"
    non_expert_patterns = DECODER_NON_EXPERT_PATTERNS

    #: Family-level names of the gate, up and down projections.
    gate_name: ClassVar[str]
    up_name: ClassVar[str]
    down_name: ClassVar[str]
    #: Config field holding the number of experts per layer.
    num_experts_field: ClassVar[str]
    #: Config field holding the expert's intermediate size F.
    intermediate_field: ClassVar[str] = "intermediate_size"
    #: Original per-expert key of one matrix; fields ``layer``, ``expert``, ``matrix``.
    per_expert_key: ClassVar[str]
    #: Original router key; field ``layer``.
    per_expert_router_key: ClassVar[str]

    # ------------------------------------------------------------------ structure
    def num_experts(self, config: Any) -> int:
        return int(getattr(self.check_config(config), self.num_experts_field))

    def experts_per_token(self, config: Any) -> int:
        return int(self.check_config(config).num_experts_per_tok)

    def layer_labels(self, config: Any) -> tuple[str, ...]:
        n_layers = self.check_config(config).num_hidden_layers
        return tuple(f"layers.{layer}" for layer in range(n_layers))

    def expert_shapes(self, config: Any) -> dict[str, tuple[int, int]]:
        config = self.check_config(config)
        hidden, inner = config.hidden_size, getattr(config, self.intermediate_field)
        shapes = {
            self.gate_name: (inner, hidden),
            self.up_name: (inner, hidden),
            self.down_name: (hidden, inner),
        }
        return {name: shapes[name] for name in self.matrix_names}

    # --------------------------------------------------------------- model access
    def _backbone(self, model: nn.Module) -> nn.Module:
        self._check_model(model)
        inner = getattr(model, "model", None)
        return inner if inner is not None and hasattr(inner, "layers") else model

    def moe_block(self, model: nn.Module, layer: int) -> nn.Module:
        self._check_layer(model, layer)
        return self._backbone(model).layers[layer].mlp

    def router(self, model: nn.Module, layer: int) -> nn.Module:
        return self.moe_block(model, layer).gate

    def router_weight(self, model: nn.Module, layer: int) -> torch.Tensor:
        return self.router(model, layer).weight.detach()

    def get_expert(self, model: nn.Module, slot: ExpertSlot) -> dict[str, torch.Tensor]:
        self._check_slot(model, slot)
        experts = self.moe_block(model, slot.layer).experts
        gate_up = experts.gate_up_proj.detach()[slot.expert]
        inner = gate_up.shape[0] // 2
        views = {
            self.gate_name: gate_up[:inner],
            self.up_name: gate_up[inner:],
            self.down_name: experts.down_proj.detach()[slot.expert],
        }
        return {name: views[name] for name in self.matrix_names}

    def expert_parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        wanted = {}
        for layer in range(self.num_moe_layers(model)):
            experts = self.moe_block(model, layer).experts
            wanted[id(experts.gate_up_proj)] = experts.gate_up_proj
            wanted[id(experts.down_proj)] = experts.down_proj
        return {name: p for name, p in model.named_parameters() if id(p) in wanted}

    def expert_forward(
        self, config: Any, tensors: Mapping[str, torch.Tensor], hidden: torch.Tensor
    ) -> torch.Tensor:
        from transformers.activations import ACT2FN

        act = ACT2FN[self.check_config(config).hidden_act]
        # Concatenate gate and up as the fused parameter stores them, so the matmul is the one
        # the model's eager expert path runs and the result matches it bit for bit.
        gate_up = torch.cat([tensors[self.gate_name], tensors[self.up_name]], dim=0)
        down = tensors[self.down_name]
        flat = hidden.reshape(-1, hidden.shape[-1]).to(gate_up.dtype)
        gate, up = F.linear(flat, gate_up).chunk(2, dim=-1)
        out = F.linear(act(gate) * up, down)
        return out.reshape(*hidden.shape[:-1], down.shape[0])

    # ---------------------------------------------------------------- checkpoints
    def checkpoint_keys(
        self, config: Any, slot: ExpertSlot
    ) -> dict[CheckpointLayout, dict[str, TensorRef]]:
        config = self.check_config(config)
        self._check_slot(config, slot)
        inner = getattr(config, self.intermediate_field)
        fused_prefix = f"model.layers.{slot.layer}.mlp.experts"
        gate_up = f"{fused_prefix}.gate_up_proj"
        fused = {
            self.gate_name: TensorRef(gate_up, slot.expert, (0, inner)),
            self.up_name: TensorRef(gate_up, slot.expert, (inner, 2 * inner)),
            self.down_name: TensorRef(f"{fused_prefix}.down_proj", slot.expert),
        }
        per_expert = {
            name: TensorRef(
                self.per_expert_key.format(layer=slot.layer, expert=slot.expert, matrix=name)
            )
            for name in self.matrix_names
        }
        return {
            "fused": {name: fused[name] for name in self.matrix_names},
            "per_expert": per_expert,
        }

    def router_checkpoint_keys(self, config: Any, layer: int) -> dict[CheckpointLayout, TensorRef]:
        config = self.check_config(config)
        self._check_layer(config, layer)
        return {
            "fused": TensorRef(f"model.layers.{layer}.mlp.gate.weight"),
            "per_expert": TensorRef(self.per_expert_router_key.format(layer=layer)),
        }
