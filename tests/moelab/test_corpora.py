"""Corpora: deterministic, disjoint train / held-out splits with correct generated answers."""

from __future__ import annotations

import re
import sysconfig
from pathlib import Path

import pytest

from moelab.corpora import (
    DOMAINS,
    STDLIB_MODULES,
    TASKS,
    Document,
    DomainSplit,
    domain_split,
    iter_texts,
    stdlib_sources,
    task_split,
)

GENERATED = dict(n_train=300, n_heldout=60)


@pytest.mark.parametrize("domain", DOMAINS)
def test_domain_split_is_deterministic(domain: str) -> None:
    assert domain_split(domain, seed=3, **GENERATED) == domain_split(domain, seed=3, **GENERATED)


@pytest.mark.parametrize("domain", DOMAINS)
def test_domain_split_is_disjoint(domain: str) -> None:
    split = domain_split(domain, seed=0, heldout_fraction=0.15, **GENERATED)
    assert split.train and split.heldout
    assert not {d.name for d in split.train} & {d.name for d in split.heldout}
    train_lines = {line for d in split.train for line in d.text.splitlines()}
    heldout_texts = [d.text for d in split.heldout]
    if domain in ("arithmetic", "sorting"):
        # Line level: no generated problem is on both sides.
        heldout_lines = {line for t in heldout_texts for line in t.splitlines()}
        assert not train_lines & heldout_lines
        assert sum(len(d.text.splitlines()) for d in split.train) == GENERATED["n_train"]
        assert len(heldout_lines) == GENERATED["n_heldout"]
    else:
        train_texts = {d.text for d in split.train}
        assert not train_texts & set(heldout_texts)


def test_text_domains_hold_out_the_requested_share() -> None:
    for domain, n_docs in (("prose", None), ("code", len(STDLIB_MODULES))):
        split = domain_split(domain, heldout_fraction=0.2)
        total = len(split.train) + len(split.heldout)
        if n_docs is not None:
            assert total == n_docs
        assert len(split.heldout) == round(0.2 * total)


def test_seed_changes_the_split() -> None:
    a = domain_split("prose", seed=0)
    b = domain_split("prose", seed=1)
    assert {d.name for d in a.heldout} != {d.name for d in b.heldout}
    assert task_split("add", seed=0, n_train=20, n_heldout=5) != task_split(
        "add", seed=1, n_train=20, n_heldout=5
    )


def test_code_domain_is_the_fixed_stdlib_list() -> None:
    assert list(STDLIB_MODULES) == sorted(STDLIB_MODULES)
    sources = stdlib_sources()
    assert [m for m, _ in sources] == list(STDLIB_MODULES)
    root = Path(sysconfig.get_paths()["stdlib"])
    for module, text in sources[:3]:
        assert text == (root / f"{module}.py").read_text(encoding="utf-8")
    split = domain_split("code")
    assert sorted(d.name for d in split.train + split.heldout) == list(STDLIB_MODULES)


def test_generated_lines_are_correct() -> None:
    split = domain_split("arithmetic", n_train=200, n_heldout=40)
    for doc in split.train + split.heldout:
        for line in doc.text.splitlines():
            pattern = (
                r"(\d+) \+ (\d): (\d) \+ (\d) = (\d+), carry (\d), (\d) \+ (\d) = (\d+), so (\d+)"
            )
            groups = re.fullmatch(pattern, line).groups()
            a, b, a1, b1, ones, carry, a10, c1, tens, total = map(int, groups)
            assert (a1, b1, a10, c1) == (a % 10, b, a // 10, carry)
            assert (ones, carry, tens, total) == (a1 + b, ones // 10, a10 + carry, a + b)
    split = domain_split("sorting", n_train=200, n_heldout=40)
    for doc in split.train + split.heldout:
        for line in doc.text.splitlines():
            source, target = re.fullmatch(r"sort ([\d ]+) -> ([\d ]+)", line).groups()
            assert sorted(source.split()) == target.split()


@pytest.mark.parametrize("task", TASKS)
def test_task_split_is_deterministic_disjoint_and_distinct(task: str) -> None:
    split = task_split(task, seed=2, n_train=300, n_heldout=50)
    assert split == task_split(task, seed=2, n_train=300, n_heldout=50)
    train_sources = [e.source for e in split.train]
    heldout_sources = [e.source for e in split.heldout]
    assert len(set(train_sources)) == 300 and len(set(heldout_sources)) == 50
    assert not set(train_sources) & set(heldout_sources)


def _solve(source: str) -> str:
    """Independent reference answers for every task."""
    if m := re.fullmatch(r"add: (\d+) \+ (\d+)", source):
        return str(int(m[1]) + int(m[2]))
    if m := re.fullmatch(r"sort: ([\d ]+)", source):
        return " ".join(sorted(m[1].split(), key=int))
    if m := re.fullmatch(r"reverse: ([a-z ]+)", source):
        return " ".join(m[1].split()[::-1])
    if m := re.fullmatch(r"dedup: ([a-z ]+)", source):
        items = m[1].split()
        return " ".join(x for i, x in enumerate(items) if i == 0 or items[i - 1] != x)
    raise AssertionError(f"unexpected source {source!r}")


@pytest.mark.parametrize("task", TASKS)
def test_task_targets_are_correct(task: str) -> None:
    split = task_split(task, n_train=200, n_heldout=50)
    for example in split.train + split.heldout:
        assert example.source.startswith(task)
        assert example.target == _solve(example.source)


def test_iter_texts_yields_documents_and_both_sides_of_examples() -> None:
    split = task_split("reverse", n_train=3, n_heldout=2)
    texts = list(iter_texts(split, "heldout"))
    assert texts == [t for e in split.heldout for t in (e.source, e.target)]
    docs = domain_split("sorting", n_train=10, n_heldout=5, lines_per_doc=4)
    assert list(iter_texts(docs, "train")) == [d.text for d in docs.train]
    with pytest.raises(ValueError, match="side must be 'train' or 'heldout'"):
        list(iter_texts(split, "test"))


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown domain 'poetry'; known domains: prose, code, "):
        domain_split("poetry")
    with pytest.raises(
        ValueError, match=r"unknown task 'divide'; known tasks: add, sort, reverse, dedup"
    ):
        task_split("divide")


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_bad_heldout_fraction(fraction: float) -> None:
    with pytest.raises(ValueError, match=r"heldout_fraction must lie in \(0, 1\)"):
        domain_split("prose", heldout_fraction=fraction)
    with pytest.raises(ValueError, match=r"heldout_fraction must lie in \(0, 1\)"):
        task_split("add", heldout_fraction=fraction)


def test_more_examples_than_the_problem_space_has() -> None:
    # Two digits plus one digit: 900 distinct arithmetic lines only.
    with pytest.raises(ValueError, match="ask for fewer, the problem space is too small"):
        domain_split("arithmetic", n_train=5000, n_heldout=100)


def test_non_positive_counts() -> None:
    with pytest.raises(ValueError, match="n_train and n_heldout must be >= 1"):
        task_split("add", n_train=0)
    with pytest.raises(ValueError, match="n_train, n_heldout and lines_per_doc must be >= 1"):
        domain_split("sorting", lines_per_doc=0)


def test_empty_side_is_rejected() -> None:
    with pytest.raises(ValueError, match="both need at least one"):
        DomainSplit("prose", train=(Document("a", "x"),), heldout=())
