"""Tiny random MoE models of every supported family, built from configs in memory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MixtralConfig,
    MixtralForCausalLM,
    OlmoeConfig,
    OlmoeForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
    SwitchTransformersConfig,
    SwitchTransformersForConditionalGeneration,
)

VOCAB = 64
HIDDEN = 16
FFN = 24
EXPERTS = 4


def _mixtral(**overrides: Any) -> MixtralConfig:
    kwargs = dict(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=FFN,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_local_experts=EXPERTS,
        num_experts_per_tok=2,
        max_position_embeddings=64,
    )
    return MixtralConfig(**{**kwargs, **overrides})


def _olmoe(**overrides: Any) -> OlmoeConfig:
    kwargs = dict(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=FFN,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_experts=EXPERTS,
        num_experts_per_tok=2,
        max_position_embeddings=64,
        pad_token_id=0,
        eos_token_id=1,
    )
    return OlmoeConfig(**{**kwargs, **overrides})


def _switch(**overrides: Any) -> SwitchTransformersConfig:
    # 4 + 4 blocks with a sparse step of 2: MoE in encoder.block.1, 3 and decoder.block.1, 3.
    kwargs = dict(
        vocab_size=VOCAB,
        d_model=HIDDEN,
        d_kv=8,
        d_ff=FFN,
        num_layers=4,
        num_decoder_layers=4,
        num_heads=2,
        num_experts=EXPERTS,
        expert_capacity=64,
        encoder_sparse_step=2,
        decoder_sparse_step=2,
        decoder_start_token_id=0,
    )
    return SwitchTransformersConfig(**{**kwargs, **overrides})


def _llama(**overrides: Any) -> LlamaConfig:
    kwargs = dict(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=FFN,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
    )
    return LlamaConfig(**{**kwargs, **overrides})


# name -> (config factory, model class); "llama" is the non-MoE model for bad-input tests.
TINY = {
    "mixtral": (_mixtral, MixtralForCausalLM),
    "olmoe": (_olmoe, OlmoeForCausalLM),
    "switch_transformers": (_switch, SwitchTransformersForConditionalGeneration),
    "llama": (_llama, LlamaForCausalLM),
}


def build_tiny_config(name: str, **overrides: Any) -> PretrainedConfig:
    """Tiny config of a family (hidden 16, FFN 24, 4 experts), with overrides."""
    return TINY[name][0](**overrides)


def build_tiny_model(name: str, seed: int = 0, **overrides: Any) -> PreTrainedModel:
    """Tiny random model in eval mode; the same seed gives the same weights."""
    torch.manual_seed(seed)
    return TINY[name][1](build_tiny_config(name, **overrides)).eval()


@pytest.fixture
def tiny_config() -> Callable[..., PretrainedConfig]:
    """Factory: ``tiny_config(name, **overrides)``."""
    return build_tiny_config


@pytest.fixture
def tiny_model() -> Callable[..., PreTrainedModel]:
    """Factory: ``tiny_model(name, seed=0, **overrides)``."""
    return build_tiny_model


@pytest.fixture
def save_tiny(tmp_path: Path) -> Callable[..., tuple[PreTrainedModel, Path]]:
    """Factory: ``save_tiny(name, seed=0, folder="name", **save_pretrained_kwargs)``.

    Builds a tiny model, saves it with ``save_pretrained`` into ``tmp_path / folder`` and
    returns ``(model, folder)``.
    """

    def save(
        name: str, seed: int = 0, folder: str | None = None, **save_kwargs: Any
    ) -> tuple[PreTrainedModel, Path]:
        model = build_tiny_model(name, seed)
        out = tmp_path / (folder or f"{name}-{seed}")
        model.save_pretrained(out, **save_kwargs)
        return model, out

    return save
