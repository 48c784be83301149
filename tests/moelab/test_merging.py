"""Merging baselines against hand-computed tiny examples, and merging whole models."""

from __future__ import annotations

import copy

import pytest
import torch

from moelab.errors import IncompatibleModelsError
from moelab.families import ExpertSlot, get_family
from moelab.merging import (
    MergeMethod,
    available_merge_methods,
    get_merge_method,
    merge_models,
    merge_tensors,
)

BASE = torch.zeros(4)
A = torch.tensor([1.0, -2.0, 3.0, 0.5])
B = torch.tensor([-1.0, -1.0, 2.0, 4.0])


def test_average_is_the_mean():
    assert torch.equal(merge_tensors("average", [A, B]), torch.tensor([0.0, -1.5, 2.5, 2.25]))


def test_task_arithmetic_adds_scaled_task_vectors():
    base = torch.tensor([1.0, 1.0, 1.0, 1.0])
    # base + 0.5 * ((A - base) + (B - base)) = 0.5 * (A + B) here, since 2 * 0.5 * base cancels.
    out = merge_tensors("task_arithmetic", [A, B], base, lambda_=0.5)
    assert torch.allclose(out, torch.tensor([0.0, -1.5, 2.5, 2.25]))
    out = merge_tensors("task_arithmetic", [A, B], base, lambda_=1.0)
    assert torch.allclose(out, base + (A - base) + (B - base))


def test_ties_trims_elects_and_takes_the_disjoint_mean():
    # density 0.5 keeps the two largest |delta| of each: A -> [0, -2, 3, 0], B -> [0, 0, 2, 4].
    # Summed: [0, -2, 5, 4] -> elected signs [+, -, +, +]; agreeing entries averaged:
    # [0 (none), -2 (A), (3 + 2) / 2, 4 (B)].
    out = merge_tensors("ties", [A, B], BASE, density=0.5, lambda_=1.0)
    assert torch.equal(out, torch.tensor([0.0, -2.0, 2.5, 4.0]))
    assert torch.equal(merge_tensors("ties", [A, B], BASE, density=0.5, lambda_=2.0), 2 * out)


def test_dare_drops_at_random_and_rescales_to_the_l1_norm():
    delta = torch.arange(1.0, 101.0)
    base = torch.full((100,), 10.0)
    out = merge_tensors("dare", [base + delta], base, density=0.3, seed=4)
    kept = out != base
    assert 10 < int(kept.sum()) < 60
    # Survivors are scaled so the task vector keeps its L1 norm (mergekit's rescale).
    scale = delta.sum() / delta[kept].sum()
    assert torch.allclose(out[kept] - base[kept], delta[kept] * scale)
    assert torch.equal(out, merge_tensors("dare", [base + delta], base, density=0.3, seed=4))
    assert not torch.equal(out, merge_tensors("dare", [base + delta], base, density=0.3, seed=5))
    # density 1 drops nothing: the mean task vector is added to the base.
    assert torch.allclose(merge_tensors("dare", [A, B], BASE, density=1.0), (A + B) / 2)
    no_rescale = merge_tensors("dare", [base + delta], base, density=0.3, rescale=False, seed=4)
    assert torch.equal(no_rescale[kept] - base[kept], delta[kept])


def test_registry_and_bad_input():
    assert available_merge_methods() == ("average", "dare", "task_arithmetic", "ties")
    with pytest.raises(
        ValueError,
        match="unknown merge method 'slerp'; known methods: average, dare, task_arithmetic, ties",
    ):
        merge_tensors("slerp", [A, B])
    with pytest.raises(
        ValueError, match=r"takes parameters \['density', 'lambda_'\]; got unknown \['weight'\]"
    ):
        merge_tensors("ties", [A, B], BASE, weight=1.0)
    with pytest.raises(ValueError, match="needs the base model's tensor"):
        merge_tensors("ties", [A, B])
    with pytest.raises(ValueError, match="shapes differ"):
        merge_tensors("average", [A, torch.zeros(3)])
    assert get_merge_method("dare").defaults["density"] == 0.5
    assert get_merge_method("ties").requires == ("mergekit",)
    assert get_merge_method("average").requires == ()
    with pytest.raises(
        TypeError, match=r"requires must be a tuple of module names, e\.g\. \('mergekit',\)"
    ):
        MergeMethod("x", lambda base, variants: variants[0], needs_base=False, requires="mergekit")


def perturbed(model, seed):
    out = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in out.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.05)
    return out


@pytest.mark.parametrize("family", ["mixtral", "switch_transformers"])
def test_merge_models_average_and_ties(tiny_model, family):
    base = tiny_model(family, 0)
    variants = [perturbed(base, s) for s in (1, 2, 3)]
    before = [copy.deepcopy(v.state_dict()) for v in variants]
    merged = merge_models(variants, "average").model
    for name, param in merged.named_parameters():
        expected = torch.stack([dict(v.named_parameters())[name] for v in variants]).mean(0)
        assert torch.allclose(param, expected, atol=1e-7), name
    for v, state in zip(variants, before):
        assert all(torch.equal(v.state_dict()[k], t) for k, t in state.items())
    # TIES trims per expert matrix: check one expert against merge_tensors on that matrix.
    adapter = get_family(family)
    slot = ExpertSlot(1, 2)
    ties = merge_models(variants, "ties", base=base, density=0.3)
    name = adapter.expert_matrix_names()[0]
    expected = merge_tensors(
        "ties",
        [adapter.get_expert(v, slot)[name] for v in variants],
        adapter.get_expert(base, slot)[name],
        density=0.3,
    )
    assert torch.equal(ties.get_expert(slot)[name], expected)


def test_merge_models_keeps_ties_and_rejects_bad_input(tiny_model):
    base = tiny_model("switch_transformers", 0)
    variants = [perturbed(base, s) for s in (1, 2)]
    merged = merge_models(variants, "dare", base=base, seed=1).model
    assert merged.shared.weight is merged.lm_head.weight
    with pytest.raises(ValueError, match="needs the base model; pass base="):
        merge_models(variants, "task_arithmetic")
    with pytest.raises(IncompatibleModelsError):
        merge_models([variants[0], tiny_model("switch_transformers", 0, d_ff=32)], "average")
    with pytest.raises(ValueError, match="at least one variant"):
        merge_models([], "average")
