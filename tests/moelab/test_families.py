"""Family adapters: slots, expert read/write, orientation, non-expert groups, compatibility."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from moelab import (
    ExpertSlot,
    IncompatibleModelsError,
    UnsupportedModelError,
    available_families,
    check_compatible,
    detect_family,
    get_family,
)
from moelab.families import (
    EXPERT_LAYOUTS,
    EXPERTS_GROUP,
    NON_EXPERT_GROUPS,
    MoEFamily,
    TensorRef,
    forbid_conversion,
    register_family,
)

# Sizes of the tiny models built in conftest.py.
HIDDEN, FFN, EXPERTS = 16, 24, 4
MOE_FAMILIES = ("mixtral", "olmoe", "switch_transformers")
# Number of MoE layers of each tiny model.
N_MOE_LAYERS = {"mixtral": 2, "olmoe": 2, "switch_transformers": 4}


def routed_only_to(
    family: MoEFamily, model, slot: ExpertSlot, hidden: torch.Tensor
) -> torch.Tensor:
    """What the model's own experts module computes for tokens all routed to one expert."""
    experts = family.moe_block(model, slot.layer).experts
    n = hidden.shape[0]
    weights = torch.ones(n, 1)
    if family.name == "switch_transformers":
        one_hot = torch.zeros(n, 1, family.num_experts(model), dtype=torch.long)
        one_hot[:, 0, slot.expert] = 1
        return experts(hidden, one_hot, weights)
    return experts(hidden, torch.full((n, 1), slot.expert), weights)


def eager(model):
    # The eager expert loop is the reference the adapter mirrors bit for bit; the default
    # grouped_mm kernel may round differently.
    if (
        hasattr(model, "set_experts_implementation")
        and model.config.model_type != "switch_transformers"
    ):
        model.set_experts_implementation("eager")
    return model


# ----------------------------------------------------------------------------- registry
def test_registry_lists_the_three_families():
    assert available_families() == ("mixtral", "olmoe", "switch_transformers")
    for name in available_families():
        assert get_family(name).name == name


def test_get_family_unknown_name_lists_known():
    with pytest.raises(
        ValueError,
        match=r"unknown MoE family 'gpt2'; known families: mixtral, olmoe, switch_transformers",
    ):
        get_family("gpt2")


def test_register_family_rejects_duplicate_and_non_family():
    with pytest.raises(ValueError, match="'mixtral' is already registered"):
        register_family(get_family("mixtral"))
    with pytest.raises(TypeError, match="a MoE family must be a MoEFamily, got str"):
        register_family("mixtral")


@pytest.mark.parametrize("name", MOE_FAMILIES)
def test_detect_family_from_model_and_config(name, tiny_model):
    model = tiny_model(name)
    assert detect_family(model).name == name
    assert detect_family(model.config).name == name


def test_detect_family_non_moe_names_model_type_and_supported(tiny_model):
    with pytest.raises(
        UnsupportedModelError,
        match=r"model_type 'llama' is not a supported .*mixtral.*olmoe.*switch_transformers",
    ):
        detect_family(tiny_model("llama"))


def test_adapter_rejects_model_of_another_family(tiny_model):
    with pytest.raises(
        UnsupportedModelError,
        match=r"'mixtral' adapter handles model_type \['mixtral'\], got 'switch_transformers'",
    ):
        get_family("mixtral").get_expert(tiny_model("switch_transformers"), ExpertSlot(0, 0))


def test_config_of_rejects_non_model():
    with pytest.raises(
        ValueError, match="expected a transformers PreTrainedModel or PretrainedConfig, got int"
    ):
        get_family("mixtral").expert_slots(3)


# ------------------------------------------------------------------------ value types
def test_expert_slot_equality_ignores_label_and_validates():
    assert ExpertSlot(1, 2) == ExpertSlot(1, 2, "layers.1")
    assert len({ExpertSlot(1, 2), ExpertSlot(1, 2, "x")}) == 1
    assert str(ExpertSlot(0, 3, "encoder.block.1")) == "encoder.block.1/expert.3"
    assert ExpertSlot(0, 3, "a").as_dict() == {"layer": 0, "expert": 3, "label": "a"}
    with pytest.raises(ValueError, match="ExpertSlot.layer must be >= 0, got -1"):
        ExpertSlot(-1, 0)
    with pytest.raises(TypeError, match="ExpertSlot.expert must be an int, got bool True"):
        ExpertSlot(0, True)


def test_tensor_ref_take_and_validation():
    fused = torch.arange(2 * 6 * 3).reshape(2, 6, 3)
    assert torch.equal(TensorRef("k", expert=1, rows=(3, 6)).take({"k": fused}), fused[1, 3:6])
    assert torch.equal(TensorRef("k").take({"k": fused}), fused)
    with pytest.raises(ValueError, match=r"TensorRef.rows must be a \(start, stop\) pair"):
        TensorRef("k", rows=(4, 2))
    with pytest.raises(ValueError, match="TensorRef.key must not be empty"):
        TensorRef("")
    with pytest.raises(TypeError, match="TensorRef.key must be a str, got int"):
        TensorRef(3)


# -------------------------------------------------------------------------- structure
@pytest.mark.parametrize("name", MOE_FAMILIES)
def test_expert_slots_cover_every_sparse_block(name, tiny_model):
    family, model = get_family(name), tiny_model(name)
    slots = family.expert_slots(model)
    assert len(slots) == N_MOE_LAYERS[name] * EXPERTS
    assert slots == family.expert_slots(model.config)
    assert slots[EXPERTS + 1] == ExpertSlot(1, 1)
    # Every module holding experts is the moe_block of exactly one MoE layer, in run order.
    holders = [m for _, m in model.named_modules() if hasattr(m, "experts")]
    assert [family.moe_block(model, layer) for layer in range(N_MOE_LAYERS[name])] == holders


def test_bare_backbone_is_handled_like_the_head_model(tiny_model):
    family, model = get_family("mixtral"), tiny_model("mixtral")
    backbone = model.model  # MixtralModel, parameter names without the "model." prefix
    slot = ExpertSlot(1, 3)
    assert all(
        torch.equal(v, family.get_expert(model, slot)[k])
        for k, v in family.get_expert(backbone, slot).items()
    )
    groups = family.non_expert_modules(backbone)
    assert list(groups["embeddings"]) == ["embed_tokens"] and groups["lm_head"] == {}
    assert family.expert_bytes(backbone) == family.expert_bytes(model)
    assert "other" not in set(family.memory_table(backbone)["group"])


def test_switch_layer_labels_encoder_then_decoder(tiny_model):
    family = get_family("switch_transformers")
    model = tiny_model("switch_transformers")
    labels = family.layer_labels(model)
    assert labels == ("encoder.block.1", "encoder.block.3", "decoder.block.1", "decoder.block.3")
    assert family.moe_block(model, 2) is model.decoder.block[1].layer[2].mlp
    assert [s.label for s in family.expert_slots(model)][::EXPERTS] == list(labels)


@pytest.mark.parametrize("name", MOE_FAMILIES)
def test_out_of_range_layer_and_expert(name, tiny_model):
    family, model = get_family(name), tiny_model(name)
    n = N_MOE_LAYERS[name]
    with pytest.raises(
        ValueError, match=rf"MoE layer {n} is out of range: this {name} model has {n} MoE layers"
    ):
        family.get_expert(model, ExpertSlot(n, 0))
    with pytest.raises(
        ValueError,
        match=rf"expert {EXPERTS} is out of range: this {name} model has {EXPERTS} experts",
    ):
        family.get_expert(model, ExpertSlot(0, EXPERTS))
    with pytest.raises(TypeError, match="slot must be an ExpertSlot, got tuple"):
        family.get_expert(model, (0, 0))


# ---------------------------------------------------------------- reading experts
@pytest.mark.parametrize("name", ["mixtral", "olmoe"])
def test_fused_get_expert_is_the_raw_parameter_slices(name, tiny_model):
    family, model = get_family(name), tiny_model(name)
    gate, up, down = {
        "mixtral": ("w1", "w3", "w2"),
        "olmoe": ("gate_proj", "up_proj", "down_proj"),
    }[name]
    for slot in family.expert_slots(model):
        experts = model.model.layers[slot.layer].mlp.experts
        got = family.get_expert(model, slot)
        assert list(got) == list(family.expert_matrix_names())
        assert torch.equal(got[gate], experts.gate_up_proj[slot.expert, :FFN])
        assert torch.equal(got[up], experts.gate_up_proj[slot.expert, FFN:])
        assert torch.equal(got[down], experts.down_proj[slot.expert])
        assert {k: tuple(v.shape) for k, v in got.items()} == family.expert_shapes(model)
        # Views, not copies: they point into the fused parameter's storage.
        assert (
            got[gate].untyped_storage().data_ptr()
            == experts.gate_up_proj.untyped_storage().data_ptr()
        )
        assert not got[gate].requires_grad


def test_mixtral_matrix_names_and_shapes(tiny_model):
    family = get_family("mixtral")
    assert family.expert_matrix_names() == ("w1", "w2", "w3")
    assert family.expert_shapes(tiny_model("mixtral")) == {
        "w1": (FFN, HIDDEN),
        "w2": (HIDDEN, FFN),
        "w3": (FFN, HIDDEN),
    }


def test_switch_get_expert_is_the_expert_linears(tiny_model):
    family, model = get_family("switch_transformers"), tiny_model("switch_transformers")
    expert = model.encoder.block[3].layer[1].mlp.experts["expert_2"]
    got = family.get_expert(model, ExpertSlot(1, 2))
    assert torch.equal(got["wi"], expert.wi.weight) and torch.equal(got["wo"], expert.wo.weight)
    assert family.expert_shapes(model) == {"wi": (FFN, HIDDEN), "wo": (HIDDEN, FFN)}


@pytest.mark.parametrize("name", MOE_FAMILIES)
def test_expert_forward_equals_the_models_own_expert(name, tiny_model):
    family = get_family(name)
    model = eager(tiny_model(name))
    hidden = torch.randn(7, HIDDEN, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for slot in family.expert_slots(model):
            mine = family.expert_forward(model, family.get_expert(model, slot), hidden)
            assert torch.equal(mine, routed_only_to(family, model, slot, hidden)), slot
        # (batch, seq, hidden) input keeps its leading dims.
        batched = family.expert_forward(
            model, family.get_expert(model, slot), hidden.reshape(1, 7, HIDDEN)
        )
        assert batched.shape == (1, 7, HIDDEN)


@pytest.mark.parametrize("name", ["mixtral", "olmoe"])
def test_expert_forward_matches_default_grouped_kernel(name, tiny_model):
    family, model = get_family(name), tiny_model(name)
    hidden = torch.randn(5, HIDDEN, generator=torch.Generator().manual_seed(1))
    slot = ExpertSlot(1, 3)
    with torch.no_grad():
        mine = family.expert_forward(model, family.get_expert(model, slot), hidden)
        torch.testing.assert_close(
            mine, routed_only_to(family, model, slot, hidden), rtol=1e-5, atol=1e-7
        )


def test_mixtral_expert_forward_against_textbook_formula(tiny_model):
    family, model = get_family("mixtral"), tiny_model("mixtral")
    w = family.get_expert(model, ExpertSlot(0, 1))
    x = torch.randn(3, HIDDEN, generator=torch.Generator().manual_seed(2))
    ref = (torch.nn.functional.silu(x @ w["w1"].T) * (x @ w["w3"].T)) @ w["w2"].T
    torch.testing.assert_close(family.expert_forward(model, w, x), ref, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", MOE_FAMILIES)
def test_moe_block_is_router_weighted_sum_of_expert_forward(name, tiny_model):
    family, model = get_family(name), tiny_model(name)
    layer = 1
    x = torch.randn(1, 5, HIDDEN, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        out = family.moe_block(model, layer)(x)
        router = family.router(model, layer)
        if name == "switch_transformers":
            one_hot, prob, _ = router(x)  # top-1; capacity 64 drops nothing here
            chosen, weights = one_hot.argmax(-1).reshape(-1, 1), prob.reshape(-1, 1)
        else:
            _, weights, chosen = router(x)
        flat = x.reshape(-1, HIDDEN)
        expected = torch.zeros_like(flat)
        for t in range(flat.shape[0]):
            for k in range(chosen.shape[1]):
                tensors = family.get_expert(model, ExpertSlot(layer, int(chosen[t, k])))
                expected[t] += weights[t, k] * family.expert_forward(model, tensors, flat[t])
    torch.testing.assert_close(out.reshape(-1, HIDDEN), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", MOE_FAMILIES)
def test_moe_block_hook_sees_expert_inputs(name, tiny_model):
    family, model = get_family(name), tiny_model(name)
    seen = []
    handle = family.moe_block(model, 0).register_forward_hook(
        lambda m, args, out: seen.append(args[0])
    )
    ids = torch.tensor([[3, 5, 7, 9]])
    with torch.no_grad():
        if name == "switch_transformers":
            model(input_ids=ids, decoder_input_ids=ids)
        else:
            model(input_ids=ids)
    handle.remove()
    assert len(seen) == 1 and seen[0].shape == (1, 4, HIDDEN)


@pytest.mark.parametrize("name", MOE_FAMILIES)
def test_router_and_router_weight(name, tiny_model):
    family, model = get_family(name), tiny_model(name)
    for layer in range(N_MOE_LAYERS[name]):
        weight = family.router_weight(model, layer)
        assert weight.shape == (EXPERTS, HIDDEN)
        params = dict(family.router(model, layer).named_parameters())
        assert any(p.data_ptr() == weight.data_ptr() for p in params.values())


# ---------------------------------------------------------------- writing experts
@pytest.mark.parametrize("name", MOE_FAMILIES)
def test_set_expert_round_trip_copies_exactly_one_expert(name, tiny_model):
    family = get_family(name)
    a, b = eager(tiny_model(name, seed=0)), eager(tiny_model(name, seed=1))
    target = ExpertSlot(1, 2)
    hidden = torch.randn(6, HIDDEN, generator=torch.Generator().manual_seed(3))
    slots = family.expert_slots(a)
    with torch.no_grad():
        before = {s: routed_only_to(family, a, s, hidden) for s in slots}
        weights_before = {
            s: {k: v.clone() for k, v in family.get_expert(a, s).items()} for s in slots
        }
        b_out = routed_only_to(family, b, target, hidden)
        assert not torch.equal(before[target], b_out)

        family.set_expert(a, target, family.get_expert(b, target))

        assert torch.equal(routed_only_to(family, a, target, hidden), b_out)
        for s in slots:
            if s != target:
                assert torch.equal(routed_only_to(family, a, s, hidden), before[s]), s
                for k, v in family.get_expert(a, s).items():
                    assert torch.equal(v, weights_before[s][k]), (s, k)
    # B is untouched by the copy.
    assert torch.equal(routed_only_to(family, b, target, hidden), b_out)


@pytest.mark.parametrize("name", MOE_FAMILIES)
def test_set_expert_converts_dtype_and_rejects_bad_tensors(name, tiny_model):
    family, model = get_family(name), tiny_model(name)
    slot = ExpertSlot(0, 1)
    names = family.expert_matrix_names()
    new = {
        k: torch.full(v.shape, 0.5, dtype=torch.float64)
        for k, v in family.get_expert(model, slot).items()
    }
    family.set_expert(model, slot, new)
    assert all(
        torch.equal(v, torch.full_like(v, 0.5)) for v in family.get_expert(model, slot).values()
    )

    missing = {k: v for k, v in new.items() if k != names[0]}
    with pytest.raises(ValueError, match=rf"missing \['{names[0]}'\], unexpected \[\]"):
        family.set_expert(model, slot, missing)
    with pytest.raises(ValueError, match=r"unexpected \['bias'\]"):
        family.set_expert(model, slot, {**new, "bias": torch.zeros(1)})
    wrong = {**new, names[1]: torch.zeros(3, 3)}
    with pytest.raises(
        ValueError, match=rf"matrix '{names[1]}' has shape \(3, 3\), the model expects"
    ):
        family.set_expert(model, slot, wrong)


# ------------------------------------------------------------ non-expert modules, bytes
@pytest.mark.parametrize("name", MOE_FAMILIES)
def test_non_expert_modules_and_experts_partition_all_parameters(name, tiny_model):
    family, model = get_family(name), tiny_model(name)
    groups = family.non_expert_modules(model)
    assert set(groups) <= set(NON_EXPERT_GROUPS)
    assert {"embeddings", "attention", "norms", "router", "lm_head"} <= set(groups)
    assert all(groups[g] for g in ("embeddings", "attention", "norms", "router"))
    non_expert = {id(p) for mods in groups.values() for m in mods.values() for p in m.parameters()}
    expert = {id(p) for p in family.expert_parameters(model).values()}
    everything = {id(p) for p in model.parameters()}
    assert not non_expert & expert
    assert non_expert | expert == everything
    assert len(groups["router"]) == N_MOE_LAYERS[name]


def test_mixtral_non_expert_groups_by_name(tiny_model):
    groups = get_family("mixtral").non_expert_modules(tiny_model("mixtral"))
    assert list(groups["embeddings"]) == ["model.embed_tokens"]
    assert list(groups["lm_head"]) == ["lm_head"]
    assert list(groups["router"]) == ["model.layers.0.mlp.gate", "model.layers.1.mlp.gate"]
    assert sorted(groups["norms"]) == sorted(
        [
            "model.layers.0.input_layernorm",
            "model.layers.0.post_attention_layernorm",
            "model.layers.1.input_layernorm",
            "model.layers.1.post_attention_layernorm",
            "model.norm",
        ]
    )
    assert list(groups["attention"]) == ["model.layers.0.self_attn", "model.layers.1.self_attn"]


def test_switch_dense_blocks_are_non_expert(tiny_model):
    groups = get_family("switch_transformers").non_expert_modules(tiny_model("switch_transformers"))
    assert "encoder.block.0.layer.1.mlp.wi" in groups["dense_mlp"]
    assert "decoder.block.2.layer.2.mlp.wo" in groups["dense_mlp"]
    assert not any(re.search(r"block\.[13]\.", n) for n in groups["dense_mlp"])


@pytest.mark.parametrize("name", MOE_FAMILIES)
def test_memory_table_and_bytes(name, tiny_model):
    family = get_family(name)
    model = tiny_model(name).to(torch.bfloat16)
    table = family.memory_table(model)
    assert list(table.columns) == ["group", "dtype", "device", "parameters", "bytes"]
    assert "other" not in set(table["group"])
    assert set(table["dtype"]) == {"torch.bfloat16"}
    per_expert = sum(r * c for r, c in family.expert_shapes(model).values())
    assert family.expert_bytes(model) == N_MOE_LAYERS[name] * EXPERTS * per_expert * 2
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    assert family.expert_bytes(model) + family.non_expert_bytes(model) == total
    assert int(table["bytes"].sum()) == total


@pytest.mark.parametrize("name", MOE_FAMILIES)
def test_parameter_groups_name_every_parameter_once(name, tiny_model):
    family, model = get_family(name), tiny_model(name)
    group_of = family.parameter_groups(model)
    assert list(group_of) == [n for n, _ in model.named_parameters()]
    assert {n for n, g in group_of.items() if g == EXPERTS_GROUP} == set(
        family.expert_parameters(model)
    )
    assert set(group_of.values()) <= {EXPERTS_GROUP, *family.non_expert_groups()}
    router = family.router(model, 0)
    router_names = {
        n for n, p in model.named_parameters() if any(p is q for q in router.parameters())
    }
    assert router_names and all(group_of[n] == "router" for n in router_names)


def test_expert_layout_of_each_family():
    layouts = {name: get_family(name).expert_layout for name in MOE_FAMILIES}
    assert layouts == {"mixtral": "fused", "olmoe": "fused", "switch_transformers": "per_expert"}
    assert set(layouts.values()) <= set(EXPERT_LAYOUTS)


# ------------------------------------------------------------------ checkpoint keys
@pytest.mark.parametrize(
    ("name", "layout"),
    [("mixtral", "fused"), ("olmoe", "fused"), ("switch_transformers", "per_expert")],
)
def test_checkpoint_keys_read_the_state_dict(name, layout, tiny_model):
    family, model = get_family(name), tiny_model(name)
    state = model.state_dict()
    for slot in family.expert_slots(model):
        refs = family.checkpoint_keys(model, slot)[layout]
        got = {k: ref.take(state) for k, ref in refs.items()}
        assert all(torch.equal(got[k], v) for k, v in family.get_expert(model, slot).items())
    for layer in range(N_MOE_LAYERS[name]):
        ref = family.router_checkpoint_keys(model, layer)[layout]
        assert torch.equal(ref.take(state), family.router_weight(model, layer))


def test_mixtral_per_expert_keys_use_original_names(tiny_model):
    refs = get_family("mixtral").checkpoint_keys(tiny_model("mixtral"), ExpertSlot(1, 3))[
        "per_expert"
    ]
    assert refs["w2"] == TensorRef("model.layers.1.block_sparse_moe.experts.3.w2.weight")
    fused = get_family("mixtral").checkpoint_keys(tiny_model("mixtral"), ExpertSlot(1, 3))["fused"]
    assert fused["w3"] == TensorRef("model.layers.1.mlp.experts.gate_up_proj", 3, (FFN, 2 * FFN))


# -------------------------------------------------------------------- compatibility
def test_check_compatible_accepts_fine_tunes_of_one_model(tiny_model):
    assert (
        check_compatible(
            tiny_model("mixtral", 0), tiny_model("mixtral", 1), tiny_model("mixtral", 2)
        ).name
        == "mixtral"
    )


def test_check_compatible_different_families(tiny_model):
    with pytest.raises(
        IncompatibleModelsError, match=r"different families \(mixtral vs switch_transformers\)"
    ):
        check_compatible(tiny_model("mixtral"), tiny_model("switch_transformers"))


def test_check_compatible_different_expert_shapes(tiny_model):
    a = tiny_model("mixtral")
    b = tiny_model("mixtral", intermediate_size=32)
    with pytest.raises(IncompatibleModelsError, match=r"matrix 'w1' is \(24, 16\) vs \(32, 16\)"):
        check_compatible(a, b)


def test_check_compatible_different_slots(tiny_model):
    a = tiny_model("mixtral")
    with pytest.raises(
        IncompatibleModelsError, match=r"different numbers of experts per layer \(4 vs 8\)"
    ):
        check_compatible(a, tiny_model("mixtral", num_local_experts=8))
    with pytest.raises(IncompatibleModelsError, match=r"different MoE layers \(2: .* vs 3: "):
        check_compatible(a, tiny_model("mixtral", num_hidden_layers=3))


def test_check_compatible_non_moe(tiny_model):
    with pytest.raises(UnsupportedModelError, match="'llama'"):
        check_compatible(tiny_model("mixtral"), tiny_model("llama"))


def test_forbid_conversion_locks_one_instance():
    locked = forbid_conversion(nn.Linear(2, 2), "rebuild it", save_message="save a tenant")
    for convert in (lambda m: m.to(torch.float16), lambda m: m.half(), lambda m: m.cpu()):
        with pytest.raises(RuntimeError, match="rebuild it"):
            convert(locked)
    with pytest.raises(RuntimeError, match="save a tenant"):
        locked.save_pretrained("anywhere")
    assert nn.Linear(2, 2).half().weight.dtype == torch.float16  # other instances convert
    with pytest.raises(RuntimeError, match="rebuild it"):
        forbid_conversion(nn.Linear(2, 2), "rebuild it").save_pretrained("anywhere")
    with pytest.raises(TypeError, match="model must be a torch module, got str"):
        forbid_conversion("model", "rebuild it")
    with pytest.raises(ValueError, match="message must not be empty"):
        forbid_conversion(nn.Linear(2, 2), "")
