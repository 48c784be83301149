"""Placement tiers, lazy builds from checkpoints and seeded stand-ins, graph-safe addresses."""

from __future__ import annotations

import copy
import gc
import weakref

import pytest
import torch
from test_reconfigure import inputs, logits, make_tenants, reference
from torch.utils._python_dispatch import TorchDispatchMode

from moelab.checkpoint import LazyCheckpoint
from moelab.consolidation import MemoryAccounting, fill_budget, plan_consolidation
from moelab.errors import CheckpointNotFoundError, IncompatibleModelsError
from moelab.families import ExpertSlot, get_family
from moelab.loading import load_moe
from moelab.reconfigure import ConsolidatedMoE
from moelab.sources import PerturbedSource, RandomSource, load_into, materialize


def device_param_bytes(cmoe: ConsolidatedMoE) -> int:
    report = cmoe.memory_report()
    params = report[report["component"] != "buffers and index tables"]
    return int(params.loc[params["location"] == "device", "bytes"].sum())


# ------------------------------------------------------------------------------ offload
@pytest.mark.parametrize("mode", ["swap", "copy"])
def test_offload_keeps_unshared_slots_on_the_host_and_computes_the_same(tiny_model, mode):
    tenants = make_tenants(tiny_model, "mixtral", 3)
    resident = plan_consolidation(tenants, 3, unit="slots")
    non_expert = "device" if mode == "swap" else "host"
    probe = plan_consolidation(tenants, 3, unit="slots", placement="offload", non_expert=non_expert)
    m = probe.memory
    # A device budget for the non-expert layers, 3 shared slots and the cache rows, plus change.
    budget = m.device_non_expert_bytes + (3 + m.cache_rows) * m.slot_bytes + m.slot_bytes // 2
    plan = plan_consolidation(
        tenants, budget, unit="bytes", placement="offload", non_expert=non_expert
    )
    assert plan.n_shared == 3 and plan.shared_slots == resident.shared_slots
    assert {d.tier for d in plan.decisions if not d.shared} == {"host"}
    # Mixtral-tiny: 2 MoE layers x top-2 -> 4 device rows for host-tier experts.
    assert plan.memory.cache_rows == 4
    cmoe = ConsolidatedMoE.from_plan(plan, device="cpu")
    assert cmoe.mode == mode
    one_token = torch.tensor([[5]])
    for name in ["t1", "t0", "t2", "t1"]:
        expected = reference(resident, name)
        # One token routes to top-2 experts per layer, which fit the cache rows: one pass, the
        # same arithmetic as the resident model. Nine tokens need the experts in groups, which
        # only reorders a sum.
        with torch.no_grad():
            got = cmoe.forward(name, input_ids=one_token).logits
            assert torch.equal(got, expected(input_ids=one_token).logits), name
        assert torch.allclose(
            logits(cmoe, "mixtral", name), logits(expected, "mixtral"), atol=1e-5, rtol=1e-5
        )
    assert cmoe.copied_expert_bytes() > 0
    assert device_param_bytes(cmoe) == plan.memory.device_bytes <= budget
    report = cmoe.memory_report()
    host = int(report.loc[report["location"] == "host", "bytes"].sum())
    assert host == plan.memory.host_bytes


def test_offload_cache_smaller_than_one_forward_still_computes_exactly(tiny_model):
    # 18 tokens x top-2 route to every expert: more host experts than the 2 cache rows of a
    # layer, so the experts run once per group of host experts.
    tenants = make_tenants(tiny_model, "mixtral", 2)
    plan = plan_consolidation(tenants, 0, unit="slots", placement="offload")
    cmoe = ConsolidatedMoE.from_plan(plan, device="cpu")
    for name, model in tenants.items():
        assert torch.allclose(
            logits(cmoe, "mixtral", name), logits(model, "mixtral"), atol=1e-5, rtol=1e-5
        )


def test_offload_uses_the_experts_in_its_cache_rows_before_it_copies_others(tiny_model):
    tenants = make_tenants(tiny_model, "mixtral", 2)
    plan = plan_consolidation(tenants, 0, unit="slots", placement="offload")
    cmoe = ConsolidatedMoE.from_plan(plan, device="cpu")
    cmoe.activate("t0")
    experts = get_family("mixtral").moe_block(cmoe.model, 0).experts
    hidden = torch.randn(1, cmoe.model.config.hidden_size)

    def copies(ids: list[int]) -> int:
        before = cmoe.copied_expert_bytes()
        with torch.no_grad():
            experts(hidden, torch.tensor([ids]), torch.full((1, 2), 0.5))
        return (cmoe.copied_expert_bytes() - before) // plan.memory.slot_bytes

    # Nothing shared: the layer's four experts are on the host, copied into its two rows.
    assert [copies([e, e]) for e in range(4)] == [1, 1, 1, 1]  # the rows now hold 2, then 3
    # Experts 1 and 2: 2 is still in a row and is used first, so copying 1 in evicts 3, not 2.
    assert copies([1, 2]) == 1
    assert copies([2, 1]) == 0


def test_offload_budget_errors_name_the_minimum(tiny_model):
    tenants = make_tenants(tiny_model, "mixtral", 2)
    probe = plan_consolidation(tenants, 0, unit="slots", placement="offload")
    minimum = probe.memory.device_non_expert_bytes + 4 * probe.memory.slot_bytes
    with pytest.raises(ValueError, match=f"the minimum is {minimum:,} bytes"):
        plan_consolidation(tenants, minimum - 1, unit="bytes", placement="offload")
    with pytest.raises(ValueError, match="placement 'offload' takes a device budget in bytes"):
        plan_consolidation(tenants, 0.5, placement="offload")
    with pytest.raises(ValueError, match="unknown placement 'gpu'; known placements"):
        plan_consolidation(tenants, 0.5, placement="gpu")
    switch = make_tenants(tiny_model, "switch_transformers", 2)
    # Refused when planned, before the similarity pass; sharing every slot leaves none on the host.
    with pytest.raises(ValueError, match="keep 16 slots in host memory.*placement='resident'"):
        plan_consolidation(switch, 0, unit="slots", placement="offload")
    every = plan_consolidation(switch, 16, unit="slots", placement="offload")
    assert ConsolidatedMoE.from_plan(every, device="cpu").memory_report()["bytes"].sum() > 0
    with pytest.raises(ValueError, match="non_expert must be one of .*got 'cpu'"):
        plan_consolidation(tenants, 1.0, non_expert="cpu")
    host_sets = plan_consolidation(tenants, 1.0, non_expert="host")
    with pytest.raises(ValueError, match="use mode='copy'"):
        ConsolidatedMoE.from_plan(host_sets, device="cpu", mode="swap")


def test_fill_budget_shares_as_many_slots_as_fit():
    acc = MemoryAccounting(("a", "b"), (100, 100), slot_bytes=10, n_slots=8, n_shared=0)
    assert fill_budget(220, "bytes", acc, 2) == (0, 2)
    assert fill_budget(279, "bytes", acc, 2) == (5, 2)
    assert fill_budget(280, "bytes", acc, 2) == (8, 0)
    host = MemoryAccounting(
        ("a", "b"), (100, 100), 10, 8, 0, non_expert_tier="host", private_tier="host"
    )
    # One live set of 100 on the device instead of two.
    assert fill_budget(180, "bytes", host, 2) == (8, 0)
    assert host.device_non_expert_bytes == 100 and host.host_bytes == 200 + 16 * 10


# ------------------------------------------------------------------------------ sources
def test_perturbed_source_is_seeded_and_builds_like_a_materialized_tenant(tiny_model):
    base = load_moe(tiny_model("mixtral", 0))
    slot = ExpertSlot(1, 2)
    a, b = PerturbedSource(base, seed=1), PerturbedSource(base, seed=1)
    assert torch.equal(a.read_expert(slot)["w1"], b.read_expert(slot)["w1"])
    assert not torch.equal(a.read_expert(slot)["w1"], base.read_expert(slot)["w1"])
    assert torch.equal(
        PerturbedSource(base, 5, scale=0).read_tensor("model.norm.weight"),
        base.read_tensor("model.norm.weight"),
    )
    tenants = {f"t{i}": PerturbedSource(base, seed=i) for i in range(2)}
    plan = plan_consolidation(tenants, 1.0)
    cmoe = ConsolidatedMoE.from_plan(plan, device="cpu")
    for name, source in tenants.items():
        model = load_into(source, copy.deepcopy(base.model))
        assert torch.equal(logits(cmoe, "mixtral", name), logits(model, "mixtral"))
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="scale must be a finite number >= 0"):
            PerturbedSource(base, 1, scale=bad)
    with pytest.raises(TypeError, match="seed must be an int"):
        PerturbedSource(base, "1")


@pytest.mark.parametrize("family", ["mixtral", "switch_transformers"])
def test_random_source_is_seeded_and_builds_like_its_materialized_model(tiny_config, family):
    config = tiny_config(family)
    base = RandomSource(config, seed=3, dtype=torch.float32)
    slot = base.expert_slots()[-1]
    again, other = RandomSource(config, seed=3, dtype=torch.float32), RandomSource(config, seed=4)
    for m, tensor in base.read_expert(slot).items():
        assert torch.equal(tensor, again.read_expert(slot)[m])
        assert not torch.equal(tensor.to(torch.bfloat16), other.read_expert(slot)[m])
        assert abs(tensor.std().item() - base.std) < 0.2 * base.std
    router = get_family(family).router_parameter_name(config, slot.layer)
    assert torch.equal(base.read_router_weight(slot.layer), base.read_tensor(router))
    model = materialize(base)
    assert next(model.parameters()).dtype == torch.float32 and not model.training
    for name, param in model.named_parameters():
        if base.has_tensor(name):
            assert torch.equal(param, base.read_tensor(name)), name
    for s in base.expert_slots():
        for m, tensor in get_family(family).get_expert(model, s).items():
            assert torch.equal(tensor, base.read_expert(s)[m])
    # Tenants of a random base: the consolidated model computes what each materialized one does.
    tenants = {f"t{i}": PerturbedSource(base, seed=i + 1) for i in range(2)}
    cmoe = ConsolidatedMoE.from_plan(plan_consolidation(tenants, 1.0), device="cpu")
    for name, source in tenants.items():
        assert torch.equal(logits(cmoe, family, name), logits(materialize(source), family))
    with pytest.raises(KeyError, match="experts are read with read_expert"):
        base.read_tensor(next(iter(get_family(family).expert_parameters(model))))
    for bad in (0.0, float("inf")):
        with pytest.raises(ValueError, match="std must be a finite number > 0"):
            RandomSource(config, std=bad)
    with pytest.raises(TypeError, match="std must be"):
        RandomSource(config, std="0.1")
    with pytest.raises(ValueError, match="has no expert slot"):
        base.read_expert(ExpertSlot(99, 0))
    with pytest.raises(TypeError, match="config must be a transformers config"):
        RandomSource(None)
    assert torch.equal(  # any model materializes, not only a source
        next(materialize(model).parameters()), next(model.parameters())
    )
    if family == "mixtral":  # tenants of different shapes are named as the caller named them
        wider = RandomSource(tiny_config(family, intermediate_size=48))
        with pytest.raises(IncompatibleModelsError, match="'small' and 'wide'"):
            plan_consolidation({"small": base, "wide": wider}, 1.0)
    # Tied parameters read as one tensor, as the model holds one.
    model_params = dict(model.named_parameters(remove_duplicate=False))
    for a, b in [(a, b) for a in model_params for b in model_params if a < b]:
        if model_params[a] is model_params[b]:
            assert torch.equal(base.read_tensor(a), base.read_tensor(b)), (a, b)


@pytest.mark.parametrize("family", ["mixtral", "switch_transformers"])
def test_lazy_build_from_folders_equals_each_from_pretrained_model(save_tiny, family):
    folders = {f"t{i}": save_tiny(family, seed=i)[1] for i in range(2)}
    plan = plan_consolidation(folders, 1.0)
    assert all(isinstance(s, LazyCheckpoint) for s in plan.sources)
    cmoe = ConsolidatedMoE.from_plan(plan, device="cpu")
    for name, folder in folders.items():
        own = load_moe(folder).model
        assert torch.equal(logits(cmoe, family, name), logits(own, family)), name


def test_dtypes_must_agree_or_be_cast(tiny_model):
    a = tiny_model("mixtral", 0)
    b = tiny_model("mixtral", 1).to(torch.bfloat16)
    with pytest.raises(ValueError, match="different dtypes .*a: float32, b: bfloat16.*dtype="):
        plan_consolidation({"a": a, "b": b}, 1.0)
    plan = plan_consolidation({"a": a, "b": b}, 1.0, dtype=torch.bfloat16)
    cmoe = ConsolidatedMoE.from_plan(plan, device="cpu")
    assert {p.dtype for p in cmoe.model.parameters()} == {torch.bfloat16}
    assert torch.equal(logits(cmoe, "mixtral", "b"), logits(b, "mixtral"))


def test_consolidated_model_keeps_no_source_alive(tiny_model):
    tenants = make_tenants(tiny_model, "mixtral", 2)
    refs = [weakref.ref(m) for m in tenants.values()]
    plan = plan_consolidation(tenants, 0.75)
    cmoe = ConsolidatedMoE.from_plan(plan, device="cpu")
    del tenants, plan
    gc.collect()
    assert all(r() is None for r in refs)
    assert cmoe.plan.sources == ()
    with pytest.raises(ValueError, match="detached from its sources"):
        cmoe.plan.source_of("t0")


def test_bin_only_folder_is_refused_with_the_conversion_command(save_tiny, tmp_path):
    model, folder = save_tiny("mixtral", seed=0)
    from safetensors.torch import load_file

    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointNotFoundError, match="python -m moelab convert"):
        LazyCheckpoint(folder)
    from moelab.__main__ import main

    assert main(["convert", str(folder), str(tmp_path / "converted")]) == 0
    converted = LazyCheckpoint(tmp_path / "converted")
    slot = ExpertSlot(1, 3)
    expected = get_family("mixtral").get_expert(model, slot)
    assert all(torch.equal(converted.read_expert(slot)[k], v) for k, v in expected.items())


# ----------------------------------------------------------------------- graph safety
class _ReadAddresses(TorchDispatchMode):
    """Storage addresses of every tensor an op reads during a forward."""

    def __init__(self) -> None:
        super().__init__()
        self.read: set[int] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        for value in torch.utils._pytree.tree_leaves((args, kwargs or {})):
            if isinstance(value, torch.Tensor):
                self.read.add(value.untyped_storage().data_ptr())
        return func(*args, **(kwargs or {}))


def held_addresses(cmoe: ConsolidatedMoE, tenant: str) -> set[int]:
    """Addresses of the consolidated model's own storages that one forward reads."""
    cmoe.activate(tenant)
    held = {t.untyped_storage().data_ptr() for t in cmoe.held_tensors()}
    with torch.no_grad(), _ReadAddresses() as mode:
        cmoe.model(**inputs("mixtral"))
    return mode.read & held


@pytest.mark.parametrize("mode", ["swap", "copy"])
def test_activation_changes_no_address_a_forward_reads(tiny_model, mode):
    tenants = make_tenants(tiny_model, "mixtral", 3)
    cmoe = ConsolidatedMoE.from_plan(plan_consolidation(tenants, 0.6), device="cpu", mode=mode)
    first = {t: held_addresses(cmoe, t) for t in cmoe.tenants}
    again = {t: held_addresses(cmoe, t) for t in reversed(cmoe.tenants)}
    # A graph captured for a tenant reads the same tensors every time that tenant is active.
    assert first == again
    if mode == "copy":
        # One live non-expert set and one live index table: one graph serves every tenant.
        assert first["t0"] == first["t1"] == first["t2"]


@pytest.mark.parametrize(
    ("family", "placement", "mode"),
    [
        ("mixtral", "resident", "swap"),
        ("mixtral", "offload", "copy"),
        ("switch_transformers", "resident", "copy"),
    ],
)
def test_saved_tenant_is_a_checkpoint_of_what_it_computes(
    tiny_model, tmp_path, family, placement, mode
):
    tenants = make_tenants(tiny_model, family, 2)
    unit_budget = 3
    plan = plan_consolidation(
        tenants,
        unit_budget,
        unit="slots",
        placement=placement,
        non_expert="host" if mode == "copy" else "device",
    )
    cmoe = ConsolidatedMoE.from_plan(plan, device="cpu")
    with pytest.raises(RuntimeError, match="save one tenant with ConsolidatedMoE.save_tenant"):
        cmoe.model.save_pretrained(tmp_path / "live")
    for name in plan.tenants:
        folder = cmoe.save_tenant(name, tmp_path / name)
        saved = load_moe(folder).model
        assert torch.equal(logits(saved, family), logits(reference(plan, name), family)), name


def test_the_live_model_refuses_in_place_conversion_and_cpu_capture(tiny_model):
    tenants = make_tenants(tiny_model, "mixtral", 2)
    cmoe = ConsolidatedMoE.from_plan(plan_consolidation(tenants, 0.75), device="cpu")
    for convert in (lambda m: m.to(torch.bfloat16), lambda m: m.half(), lambda m: m.float()):
        with pytest.raises(RuntimeError, match="cannot be converted in place"):
            convert(cmoe.model)
    with pytest.raises(ValueError, match="CUDA graphs need a model on CUDA"):
        cmoe.capture(lambda: cmoe.model(**inputs("mixtral")).logits)


def test_with_budget_keeps_the_unit_and_can_change_the_placement(tiny_model):
    tenants = make_tenants(tiny_model, "mixtral", 2)
    plan = plan_consolidation(tenants, 3, unit="slots")
    assert plan.with_budget(5).n_shared == 5 and plan.with_budget(5).budget_unit == "slots"
    offload = plan.with_budget(2, placement="offload")
    assert offload.placement == "offload" and offload.memory.private_tier == "host"
    assert {d.tier for d in offload.decisions if not d.shared} == {"host"}
    assert "of one separate model" in offload.summary()


def test_one_model_alone_is_placed_under_a_device_budget(tiny_model):
    model = tiny_model("mixtral", 5)
    probe = plan_consolidation({"alone": model}, 0, unit="slots", placement="offload")
    m = probe.memory
    assert m.cache_rows == 4  # before ranking: top-2 rows in both layers (4 experts each)
    budget = m.device_non_expert_bytes + (m.cache_rows + 3) * m.slot_bytes
    plan = plan_consolidation({"alone": model}, budget, unit="bytes", placement="offload")
    # Layer 0 wholly on the device needs no cache rows: their room holds two more slots.
    assert (plan.n_shared, plan.memory.cache_rows) == (5, 2)
    assert plan.memory.device_bytes == budget
    assert [d.slot for d in plan.decisions if d.shared] == plan.family.expert_slots(model)[:5]
    cmoe = ConsolidatedMoE.from_plan(plan, device="cpu")
    assert device_param_bytes(cmoe) == plan.memory.device_bytes  # what is built is what was planned
    one_token = torch.tensor([[7]])
    with torch.no_grad():
        assert torch.equal(
            cmoe.forward("alone", input_ids=one_token).logits, model(input_ids=one_token).logits
        )
    with pytest.raises(ValueError, match="consolidation needs at least 2 models"):
        plan_consolidation({"alone": model}, 1.0)
