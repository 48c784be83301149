"""LazyCheckpoint: single experts read from safetensors equal the loaded model's experts."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from moelab import (
    CheckpointNotFoundError,
    CorruptCheckpointError,
    ExpertSlot,
    IncompatibleModelsError,
    LazyCheckpoint,
    UnsupportedModelError,
    check_compatible,
    get_family,
    load_moe,
)
from moelab.checkpoint import scan_safetensors

MOE_FAMILIES = ("mixtral", "olmoe", "switch_transformers")
# Layout save_pretrained writes by default (it converts fused experts back to original names).
DEFAULT_LAYOUT = {
    "mixtral": "per_expert",
    "olmoe": "per_expert",
    "switch_transformers": "per_expert",
}
# Layout written with save_original_format=False (the in-memory names).
IN_MEMORY_LAYOUT = {"mixtral": "fused", "olmoe": "fused", "switch_transformers": "per_expert"}


def assert_reads_equal_model(ckpt: LazyCheckpoint, model) -> None:
    family = get_family(ckpt.family.name)
    assert ckpt.expert_slots() == family.expert_slots(model)
    for slot in ckpt.expert_slots():
        read = ckpt.read_expert(slot)
        expected = family.get_expert(model, slot)
        assert list(read) == list(expected)
        for name in expected:
            assert torch.equal(read[name], expected[name]), (slot, name)
    for layer in range(family.num_moe_layers(model)):
        assert torch.equal(ckpt.read_router_weight(layer), family.router_weight(model, layer))


@pytest.mark.parametrize("name", MOE_FAMILIES)
def test_read_expert_default_save_pretrained(name, save_tiny):
    model, folder = save_tiny(name)
    ckpt = LazyCheckpoint(folder)
    assert ckpt.family.name == name and ckpt.layout == DEFAULT_LAYOUT[name]
    assert_reads_equal_model(ckpt, model)
    # ... and equal to what from_pretrained builds from the same files.
    assert_reads_equal_model(ckpt, load_moe(folder).model)


@pytest.mark.parametrize("name", MOE_FAMILIES)
def test_read_expert_in_memory_names(name, save_tiny):
    model, folder = save_tiny(name, save_original_format=False)
    ckpt = LazyCheckpoint(folder)
    assert ckpt.layout == IN_MEMORY_LAYOUT[name]
    if name != "switch_transformers":
        assert any(k.endswith("mlp.experts.gate_up_proj") for k in ckpt.tensor_names())
    assert_reads_equal_model(ckpt, model)


@pytest.mark.parametrize("original_format", [True, False])
@pytest.mark.parametrize("name", MOE_FAMILIES)
def test_read_expert_sharded_with_index(name, original_format, save_tiny):
    model, folder = save_tiny(name, max_shard_size="20KB", save_original_format=original_format)
    assert (folder / "model.safetensors.index.json").is_file()
    ckpt = LazyCheckpoint(folder)
    assert len(ckpt.files) > 1
    assert_reads_equal_model(ckpt, model)


def write_original_mixtral(model, folder) -> None:
    """Write a Mixtral checkpoint by hand with the original hub names (w1/w2/w3)."""
    state = {}
    for name, tensor in model.state_dict().items():
        if ".mlp.experts." in name:
            continue
        state[name.replace(".mlp.gate.", ".block_sparse_moe.gate.")] = tensor.contiguous()
    for layer, block in enumerate(model.model.layers):
        f = block.mlp.experts.down_proj.shape[-1]
        for j in range(block.mlp.experts.gate_up_proj.shape[0]):
            prefix = f"model.layers.{layer}.block_sparse_moe.experts.{j}"
            state[f"{prefix}.w1.weight"] = block.mlp.experts.gate_up_proj[j, :f].clone()
            state[f"{prefix}.w3.weight"] = block.mlp.experts.gate_up_proj[j, f:].clone()
            state[f"{prefix}.w2.weight"] = block.mlp.experts.down_proj[j].clone()
    folder.mkdir()
    model.config.save_pretrained(folder)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})


def test_read_expert_hand_written_original_mixtral(tiny_model, tmp_path):
    model = tiny_model("mixtral", seed=4)
    folder = tmp_path / "hub-style"
    write_original_mixtral(model, folder)
    ckpt = LazyCheckpoint(folder)
    assert ckpt.layout == "per_expert"
    assert "model.layers.1.block_sparse_moe.experts.3.w3.weight" in ckpt.tensor_names()
    assert_reads_equal_model(ckpt, model)
    # from_pretrained converts the original names back to the fused layout.
    assert_reads_equal_model(ckpt, load_moe(folder).model)


def test_read_expert_slot_out_of_range(save_tiny):
    _, folder = save_tiny("mixtral")
    with pytest.raises(ValueError, match="expert 4 is out of range"):
        LazyCheckpoint(folder).read_expert(ExpertSlot(0, 4))


def test_repr_and_name(save_tiny):
    _, folder = save_tiny("olmoe", folder="olmoe-base")
    ckpt = LazyCheckpoint(folder)
    assert ckpt.name == "olmoe-base"
    assert repr(ckpt).endswith("family='olmoe', layout='per_expert', files=1)")


# ----------------------------------------------------------------------- bad input
def truncate(path, keep: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - keep])


@pytest.mark.parametrize("keep_off", [8, 10_000])
def test_truncated_single_file(keep_off, save_tiny):
    _, folder = save_tiny("mixtral")
    truncate(folder / "model.safetensors", keep_off)
    pattern = r"model\.safetensors' is truncated or corrupt .*re-download it or re-save the model with save_pretrained"
    with pytest.raises(CorruptCheckpointError, match=pattern):
        LazyCheckpoint(folder)
    with pytest.raises(CorruptCheckpointError, match=pattern):
        load_moe(folder)


def test_truncated_shard(save_tiny):
    _, folder = save_tiny("mixtral", max_shard_size="20KB", save_original_format=False)
    shard = sorted(folder.glob("model-*.safetensors"))[1]
    truncate(shard, 100)
    with pytest.raises(CorruptCheckpointError, match=rf"{shard.name}' is truncated or corrupt"):
        LazyCheckpoint(folder)


def test_missing_shard(save_tiny):
    _, folder = save_tiny("mixtral", max_shard_size="20KB")
    shard = sorted(folder.glob("model-*.safetensors"))[0]
    shard.unlink()
    with pytest.raises(
        CheckpointNotFoundError,
        match=rf"shard .*{shard.name}' named by model.safetensors.index.json does not exist",
    ):
        scan_safetensors(folder)


def test_shard_lacking_indexed_tensor(save_tiny):
    _, folder = save_tiny("mixtral", max_shard_size="20KB")
    index_file = folder / "model.safetensors.index.json"
    index = json.loads(index_file.read_text())
    key, shard = next(iter(index["weight_map"].items()))
    other = next(s for s in index["weight_map"].values() if s != shard)
    index["weight_map"][key] = other
    index_file.write_text(json.dumps(index))
    with pytest.raises(
        CorruptCheckpointError, match=rf"lacks 1 tensors its index assigns to it \(e.g. '{key}'\)"
    ):
        LazyCheckpoint(folder)


def test_corrupt_index_json(save_tiny):
    _, folder = save_tiny("mixtral", max_shard_size="20KB")
    (folder / "model.safetensors.index.json").write_text("{not json")
    with pytest.raises(CorruptCheckpointError, match="is not a valid safetensors index"):
        LazyCheckpoint(folder)


def test_missing_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(
        CheckpointNotFoundError, match=rf"checkpoint folder '{missing}' does not exist"
    ):
        LazyCheckpoint(missing)
    assert issubclass(CheckpointNotFoundError, FileNotFoundError)


def test_folder_without_config_or_weights(save_tiny, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointNotFoundError, match=r"no config.json in .*empty'"):
        LazyCheckpoint(empty)
    _, folder = save_tiny("mixtral")
    os.remove(folder / "model.safetensors")
    with pytest.raises(
        CheckpointNotFoundError, match="no model.safetensors or model.safetensors.index.json in"
    ):
        LazyCheckpoint(folder)


def test_non_moe_checkpoint(save_tiny):
    _, folder = save_tiny("llama")
    with pytest.raises(
        UnsupportedModelError,
        match=r"model_type 'llama' is not a supported mixture-of-experts family; supported: mixtral",
    ):
        LazyCheckpoint(folder)


def test_explicit_family_must_fit(save_tiny):
    _, folder = save_tiny("mixtral")
    assert LazyCheckpoint(folder, family="mixtral").family.name == "mixtral"
    with pytest.raises(UnsupportedModelError, match="'olmoe' adapter handles model_type"):
        LazyCheckpoint(folder, family="olmoe")


def test_weights_not_matching_config(save_tiny):
    _, folder = save_tiny("mixtral")
    config = json.loads((folder / "config.json").read_text())
    config["intermediate_size"] = 32
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        CorruptCheckpointError,
        match=r"matrix 'w1' read from .* has shape \(24, 16\), but config.json implies \(32, 16\)",
    ):
        LazyCheckpoint(folder).read_expert(ExpertSlot(0, 0))


def test_weights_of_another_layout(save_tiny):
    _, folder = save_tiny("mixtral")
    config = json.loads((folder / "config.json").read_text())
    config["num_hidden_layers"] = 3  # layer 2 is absent but layer 0 is found
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        CorruptCheckpointError,
        match=r"tensor 'model.layers.2.block_sparse_moe.experts.0.w1.weight' is missing",
    ):
        LazyCheckpoint(folder).read_expert(ExpertSlot(2, 0))
    (folder / "model.safetensors").rename(folder / "elsewhere.safetensors")
    save_file({"x": torch.zeros(1)}, str(folder / "model.safetensors"))
    with pytest.raises(CorruptCheckpointError, match="no expert tensors of a known layout"):
        LazyCheckpoint(folder)


def test_check_compatible_across_checkpoints_and_models(save_tiny, tiny_model):
    _, folder_a = save_tiny("mixtral", seed=0)
    _, folder_b = save_tiny("mixtral", seed=1, save_original_format=False)
    assert (
        check_compatible(
            LazyCheckpoint(folder_a), LazyCheckpoint(folder_b), load_moe(folder_a)
        ).name
        == "mixtral"
    )
    wider = tiny_model("mixtral", intermediate_size=32)
    with pytest.raises(
        IncompatibleModelsError,
        match=r"'mixtral-0' and 'MixtralForCausalLM' have different expert shapes",
    ):
        check_compatible(LazyCheckpoint(folder_a), wider)
    _, folder_s = save_tiny("switch_transformers")
    with pytest.raises(
        IncompatibleModelsError,
        match=r"'mixtral-0' and 'switch_transformers-0' are of different families",
    ):
        check_compatible(LazyCheckpoint(folder_a), LazyCheckpoint(folder_s))
