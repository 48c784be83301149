"""Tiny stand-ins for the names the docstring examples use (``pytest --doctest-modules``).

The examples read as a user's notebook would: ``model`` is a Mixtral, ``plan``
consolidates two tenants, ``ids`` are token ids. Here ``model`` is a random Mixtral of hidden
size 16 with 2 MoE layers of 4 experts and a vocabulary of 64, built in milliseconds, and
every other name is derived from it with fixed seeds, so the printed results are reproducible.

Each example gets only the names its source mentions that its module does not define, built
for it alone (models are copied, so an example that changes one changes no other example),
and runs in its own temporary folder, so files it writes land there.
"""

from __future__ import annotations

import copy
import functools
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

SEED = 0
VOCAB = 64
WORDS = "the router sends each token to two experts of every layer".split()


@functools.cache
def tiny_config() -> Any:
    """A Mixtral config small enough to build and run in milliseconds."""
    from transformers import MixtralConfig

    return MixtralConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        intermediate_size=24,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_local_experts=4,
        num_experts_per_tok=2,
        max_position_embeddings=64,
        eos_token_id=None,  # generation runs for max_new_tokens, whatever it draws
    )


@functools.cache
def base_model() -> torch.nn.Module:
    """The random base Mixtral (seed 0), in eval mode; callers copy it before handing it out."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(SEED)
    return AutoModelForCausalLM.from_config(tiny_config()).eval()


@functools.cache
def tenant(seed: int) -> torch.nn.Module:
    """A fine-tune stand-in: the base with every tensor perturbed by seeded noise."""
    from moelab.sources import PerturbedSource, materialize

    return materialize(PerturbedSource(base_model(), seed, scale=0.05))


@functools.cache
def plan() -> Any:
    """Tenants ``"prose"`` (seed 1) and ``"code"`` (seed 2), at 3/4 of their expert bytes."""
    from moelab import plan_consolidation

    return plan_consolidation({"prose": tenant(1), "code": tenant(2)}, 0.75)


def token_ids() -> torch.Tensor:
    """A stream of 64 seeded token ids, shape (64,)."""
    return torch.randint(0, VOCAB, (64,), generator=torch.Generator().manual_seed(SEED))


def tokenizer() -> Any:
    """A whitespace word-level tokenizer over :data:`WORDS` (ids below the vocabulary size)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate(["<unk>", *dict.fromkeys(WORDS)])}
    words = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=words, unk_token="<unk>")


def saved(model: torch.nn.Module, folder: Path) -> Path:
    """``model`` written by ``save_pretrained`` into ``folder``."""
    model.save_pretrained(folder)
    return folder


# Name in an example -> what it is bound to, built from the example's temporary folder.
BUILDERS: dict[str, Callable[[Path], Any]] = {
    "torch": lambda _: torch,
    "get_family": lambda _: _public("get_family"),
    "fam": lambda _: _public("get_family")("mixtral"),
    "slot": lambda _: _public("ExpertSlot")(0, 1),
    "config": lambda _: copy.deepcopy(tiny_config()),
    "model": lambda _: copy.deepcopy(base_model()),
    "base": lambda _: copy.deepcopy(base_model()),
    "a": lambda _: copy.deepcopy(tenant(1)),
    "b": lambda _: copy.deepcopy(tenant(2)),
    "c": lambda _: copy.deepcopy(tenant(3)),
    "model_a": lambda _: copy.deepcopy(tenant(1)),
    "model_b": lambda _: copy.deepcopy(tenant(2)),
    "variant": lambda _: copy.deepcopy(tenant(1)),
    "plan": lambda _: plan(),
    "cmoe": lambda _: _consolidated(),
    "token_ids": lambda _: token_ids(),
    "ids": lambda _: token_ids()[:8].unsqueeze(0),
    "prompts": lambda _: {"prose": [[1, 2, 3], [4, 5, 6, 7]], "code": [[8, 9], [10, 11, 12]]},
    "tokenizer": lambda _: tokenizer(),
    "text": lambda _: " ".join(WORDS),
    "base_path": lambda tmp: saved(base_model(), tmp / "base"),
    "path_a": lambda tmp: saved(tenant(1), tmp / "a"),
    "path_b": lambda tmp: saved(tenant(2), tmp / "b"),
}


def _public(name: str) -> Any:
    import moelab

    return getattr(moelab, name)


def _consolidated() -> Any:
    from moelab import ConsolidatedMoE

    return ConsolidatedMoE.from_plan(plan())


_NAME = re.compile(r"[A-Za-z_]\w*")


@pytest.fixture(autouse=True)
def doctest_objects(
    request: pytest.FixtureRequest,
    doctest_namespace: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[None]:
    """Bind the names a doctest uses, seed the generators and run it in ``tmp_path``."""
    test = getattr(request.node, "dtest", None)
    if test is None:
        yield
        return
    used = {name for example in test.examples for name in _NAME.findall(example.source)}
    names = sorted((used & BUILDERS.keys()) - test.globs.keys())
    monkeypatch.chdir(tmp_path)
    for name in names:
        doctest_namespace[name] = BUILDERS[name](tmp_path)
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    yield
    for name in names:  # the namespace is shared by every doctest of the run: no leaks
        doctest_namespace.pop(name, None)
