"""Switch Transformers (``model_type="switch_transformers"``), an encoder-decoder MoE.

Transformers 5 keeps one module per expert (not fused): in a sparse block the feed-forward
sub-layer is ``{stack}.block.{b}.layer.{f}.mlp`` with ``router.classifier`` (``nn.Linear``,
weight ``[E, H]``, top-1 routing) and ``experts.expert_{j}.wi|wo`` (``nn.Linear``, no bias);
expert ``j`` computes ``wo @ act(wi x)`` with ``act = config.dense_act_fn``. ``f`` is 1 in the
encoder (self-attention, FF) and 2 in the decoder (self-attention, cross-attention, FF). Blocks
``b`` with ``b % sparse_step == 1`` (every block if the step is 1, none if it is 0) are sparse;
the others hold a dense ``mlp.wi|wo``, listed as the ``dense_mlp`` non-expert group. The same
names are used on disk by the original checkpoints and by ``save_pretrained``.

The global MoE-layer index of :class:`ExpertSlot` counts the encoder's sparse blocks first,
then the decoder's; labels read ``"encoder.block.1"``, ``"decoder.block.3"``. Models must hold
both stacks (``SwitchTransformersForConditionalGeneration`` or ``SwitchTransformersModel``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from moelab.families._base import MoEFamily
from moelab.families._types import CheckpointLayout, ExpertSlot, TensorRef

__all__ = ["SwitchTransformersFamily"]

_STACKS = r"(encoder|decoder)"
# Index of the feed-forward sub-layer inside a block of each stack.
_FF_SUBLAYER = {"encoder": 1, "decoder": 2}


def _is_sparse(block: int, step: int) -> bool:
    # The rule of SwitchTransformersStack.__init__ in transformers.
    return (block % step == 1 or step == 1) if step > 0 else False


class SwitchTransformersFamily(MoEFamily):
    """Adapter for Switch Transformers; expert matrices ``("wi", "wo")``.

    ``router_weight`` returns ``router.classifier.weight`` only; a router bias
    (``config.router_bias``, off in the released models) stays on the module.
    """

    name = "switch_transformers"
    model_types = ("switch_transformers",)
    auto_class_name = "AutoModelForSeq2SeqLM"
    matrix_names = ("wi", "wo")
    expert_layout = "per_expert"
    non_expert_patterns = (
        ("embeddings", rf"shared|{_STACKS}\.embed_tokens"),
        ("attention", rf"{_STACKS}\.block\.\d+\.layer\.\d+\.(SelfAttention|EncDecAttention)"),
        ("norms", rf"{_STACKS}\.block\.\d+\.layer\.\d+\.layer_norm|{_STACKS}\.final_layer_norm"),
        ("router", rf"{_STACKS}\.block\.\d+\.layer\.\d+\.mlp\.router"),
        ("dense_mlp", rf"{_STACKS}\.block\.\d+\.layer\.\d+\.mlp\.(wi|wo)"),
        ("lm_head", r"lm_head"),
    )

    # ------------------------------------------------------------------ structure
    def experts_per_token(self, config: Any) -> int:
        self.check_config(config)
        return 1  # Switch routing is top-1 by design

    def _sparse_blocks(self, config: Any) -> list[tuple[str, int]]:
        config = self.check_config(config)
        stacks = (
            ("encoder", config.num_layers, config.encoder_sparse_step),
            ("decoder", config.num_decoder_layers, config.decoder_sparse_step),
        )
        return [
            (stack, block)
            for stack, n_blocks, step in stacks
            for block in range(n_blocks)
            if _is_sparse(block, step)
        ]

    def num_experts(self, config: Any) -> int:
        return int(self.check_config(config).num_experts)

    def layer_labels(self, config: Any) -> tuple[str, ...]:
        return tuple(f"{stack}.block.{block}" for stack, block in self._sparse_blocks(config))

    def expert_shapes(self, config: Any) -> dict[str, tuple[int, int]]:
        config = self.check_config(config)
        return {"wi": (config.d_ff, config.d_model), "wo": (config.d_model, config.d_ff)}

    # --------------------------------------------------------------- model access
    def moe_block(self, model: nn.Module, layer: int) -> nn.Module:
        self._check_model(model)
        self._check_layer(model, layer)
        stack, block = self._sparse_blocks(model)[layer]
        return getattr(model, stack).block[block].layer[_FF_SUBLAYER[stack]].mlp

    def router(self, model: nn.Module, layer: int) -> nn.Module:
        return self.moe_block(model, layer).router

    def router_weight(self, model: nn.Module, layer: int) -> torch.Tensor:
        return self.router(model, layer).classifier.weight.detach()

    def get_expert(self, model: nn.Module, slot: ExpertSlot) -> dict[str, torch.Tensor]:
        self._check_slot(model, slot)
        expert = self.moe_block(model, slot.layer).experts[f"expert_{slot.expert}"]
        return {"wi": expert.wi.weight.detach(), "wo": expert.wo.weight.detach()}

    def expert_parameters(self, model: nn.Module) -> dict[str, nn.Parameter]:
        wanted = {
            id(p)
            for layer in range(self.num_moe_layers(model))
            for p in self.moe_block(model, layer).experts.parameters()
        }
        return {name: p for name, p in model.named_parameters() if id(p) in wanted}

    def expert_forward(
        self, config: Any, tensors: Mapping[str, torch.Tensor], hidden: torch.Tensor
    ) -> torch.Tensor:
        from transformers.activations import ACT2FN

        act = ACT2FN[self.check_config(config).dense_act_fn]
        wi, wo = tensors["wi"], tensors["wo"]
        # Dropout between wi and wo is the identity at inference, so it is left out.
        return F.linear(act(F.linear(hidden.to(wi.dtype), wi)).to(wo.dtype), wo)

    # ---------------------------------------------------------------- checkpoints
    def _ff_prefix(self, config: Any, layer: int) -> str:
        self._check_layer(config, layer)
        stack, block = self._sparse_blocks(config)[layer]
        return f"{stack}.block.{block}.layer.{_FF_SUBLAYER[stack]}.mlp"

    def checkpoint_keys(
        self, config: Any, slot: ExpertSlot
    ) -> dict[CheckpointLayout, dict[str, TensorRef]]:
        config = self.check_config(config)
        self._check_slot(config, slot)
        prefix = f"{self._ff_prefix(config, slot.layer)}.experts.expert_{slot.expert}"
        return {"per_expert": {m: TensorRef(f"{prefix}.{m}.weight") for m in self.matrix_names}}

    def router_checkpoint_keys(self, config: Any, layer: int) -> dict[CheckpointLayout, TensorRef]:
        config = self.check_config(config)
        key = f"{self._ff_prefix(config, layer)}.router.classifier.weight"
        return {"per_expert": TensorRef(key)}
