"""load_moe and the MoEModel handle."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from moelab import (
    CheckpointNotFoundError,
    ExpertSlot,
    MoEModel,
    UnsupportedModelError,
    get_family,
    load_moe,
)

MOE_FAMILIES = ("mixtral", "olmoe", "switch_transformers")


@pytest.mark.parametrize("name", MOE_FAMILIES)
def test_load_from_folder_restores_the_saved_weights(name, save_tiny):
    model, folder = save_tiny(name)
    moe = load_moe(folder)
    assert isinstance(moe, MoEModel)
    assert moe.family is get_family(name)
    assert moe.path == folder and moe.name == folder.name
    assert moe.config.model_type == name
    assert moe.tokenizer is None
    assert not moe.model.training
    saved, loaded = model.state_dict(), moe.model.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)


def test_load_accepts_str_path_and_from_pretrained_kwargs(save_tiny):
    _, folder = save_tiny("mixtral")
    moe = load_moe(str(folder), dtype=torch.bfloat16)
    assert {str(p.dtype) for p in moe.model.parameters()} == {"torch.bfloat16"}
    assert set(moe.memory_table()["dtype"]) == {"torch.bfloat16"}


def test_load_wraps_an_in_memory_model(tiny_model):
    model = tiny_model("switch_transformers")
    moe = load_moe(model)
    assert moe.model is model and moe.path is None
    assert moe.family.name == "switch_transformers"
    assert moe.name == "SwitchTransformersForConditionalGeneration"
    assert load_moe(moe) is moe


def test_moe_model_methods_delegate_to_the_family(tiny_model):
    model = tiny_model("mixtral")
    moe, family = load_moe(model), get_family("mixtral")
    slot = ExpertSlot(1, 0)
    assert moe.expert_slots() == family.expert_slots(model)
    assert all(
        torch.equal(moe.get_expert(slot)[k], v) for k, v in family.get_expert(model, slot).items()
    )
    x = torch.randn(3, 16)
    assert torch.equal(
        moe.expert_forward(moe.get_expert(slot), x),
        family.expert_forward(model, family.get_expert(model, slot), x),
    )
    assert moe.router(1) is family.router(model, 1)
    assert moe.moe_block(0) is family.moe_block(model, 0)
    assert torch.equal(moe.router_weight(0), family.router_weight(model, 0))
    assert moe.non_expert_modules().keys() == family.non_expert_modules(model).keys()
    assert moe.expert_bytes() + moe.non_expert_bytes() == sum(
        p.numel() * 4 for p in model.parameters()
    )
    moe.set_expert(slot, {k: torch.zeros_like(v) for k, v in moe.get_expert(slot).items()})
    assert all(not v.any() for v in family.get_expert(model, slot).values())
    assert (
        repr(moe)
        == "MoEModel(name='MixtralForCausalLM', family='mixtral', moe_layers=2, experts=4)"
    )


def test_load_finds_the_tokenizer_saved_with_the_model(save_tiny):
    _, folder = save_tiny("mixtral")
    vocab = {"[UNK]": 0, "hello": 1, "experts": 2}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]").save_pretrained(folder)
    moe = load_moe(folder)
    assert moe.tokenizer("hello experts")["input_ids"] == [1, 2]
    assert load_moe(folder, tokenizer=False).tokenizer is None


# ----------------------------------------------------------------------- bad input
def test_missing_folder_names_the_path(tmp_path):
    missing = tmp_path / "not-saved-yet"
    with pytest.raises(
        CheckpointNotFoundError,
        match=rf"checkpoint folder '{missing}' does not exist; pass a local folder",
    ):
        load_moe(missing)
    with pytest.raises(FileNotFoundError):
        load_moe(str(missing))


def test_non_moe_model_names_model_type_and_families(save_tiny, tiny_model):
    _, folder = save_tiny("llama")
    message = r"model_type 'llama' is not a supported mixture-of-experts family; supported: mixtral \(model_type mixtral\), olmoe .*switch_transformers"
    with pytest.raises(UnsupportedModelError, match=message):
        load_moe(folder)
    with pytest.raises(UnsupportedModelError, match=message):
        load_moe(tiny_model("llama"))


def test_explicit_family_must_match(save_tiny, tiny_model):
    _, folder = save_tiny("olmoe")
    assert load_moe(folder, family="olmoe").family.name == "olmoe"
    with pytest.raises(
        UnsupportedModelError,
        match=r"'mixtral' adapter handles model_type \['mixtral'\], got 'olmoe'",
    ):
        load_moe(folder, family="mixtral")
    with pytest.raises(ValueError, match="unknown MoE family 'gpt'"):
        load_moe(tiny_model("olmoe"), family="gpt")


def test_downloads_are_refused(save_tiny):
    _, folder = save_tiny("mixtral")
    with pytest.raises(
        ValueError, match="load_moe only reads local folders; drop local_files_only=False"
    ):
        load_moe(folder, local_files_only=False)


def test_kwargs_with_in_memory_model_and_bad_source(tiny_model):
    with pytest.raises(
        ValueError,
        match=r"from_pretrained arguments \['dtype'\] only apply when loading from a folder",
    ):
        load_moe(tiny_model("mixtral"), dtype=torch.float16)
    with pytest.raises(
        TypeError,
        match="load_moe's source must be a checkpoint folder path, a transformers model or a "
        "MoEModel, got int",
    ):
        load_moe(42)


def test_moe_model_validates_its_fields(tiny_model):
    with pytest.raises(TypeError, match="MoEModel.model must be a Module, got str"):
        MoEModel(model="mixtral", family=get_family("mixtral"))
    with pytest.raises(UnsupportedModelError, match="'switch_transformers' adapter handles"):
        MoEModel(model=tiny_model("mixtral"), family=get_family("switch_transformers"))
