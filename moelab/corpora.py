"""Deterministic training corpora built from what every Python install carries.

Four causal-LM domains feed the ``mixtral-tiny`` zoo and four text-to-text tasks feed the
``switch-tiny`` zoo:

* ``prose``: the language reference prose in :mod:`pydoc_data.topics` (one document per topic);
* ``code``: the source of a fixed, sorted list of pure-Python standard-library modules
  (:data:`STDLIB_MODULES`, one document per module);
* ``arithmetic`` and ``sorting``: generated lines such as
  ``"37 + 8: 7 + 8 = 15, carry 1, 3 + 1 = 4, so 45"`` and ``"sort 5 2 9 -> 2 5 9"``;
* tasks ``add``, ``sort``, ``reverse``, ``dedup``: generated (source, target) pairs such as
  ``("add: 312 + 7", "319")``.

Every split is a pure function of its arguments (and, for the two text domains, of the Python
minor version, whose standard library is the source): documents go to held-out by a keyed
SHA-256 of their name, generated lines and examples by a keyed SHA-256 of their text, so the same
text never lands on both sides.

Examples
--------
>>> from moelab.corpora import domain_split, task_split
>>> split = domain_split("arithmetic", seed=0, n_train=64, n_heldout=16)
>>> split.heldout[0].text.splitlines()[0]  # doctest: +SKIP
'37 + 8: 7 + 8 = 15, carry 1, 3 + 1 = 4, so 45'
>>> task_split("add", seed=0, n_train=4, n_heldout=2).train[0]  # doctest: +SKIP
Example(source='add: 312 + 7', target='319')
"""

from __future__ import annotations

import hashlib
import random
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from labcore.registry import Registry

__all__ = [
    "CORPORA_VERSION",
    "DOMAINS",
    "STDLIB_MODULES",
    "TASKS",
    "Document",
    "DomainSplit",
    "Example",
    "TaskSplit",
    "domain_split",
    "iter_texts",
    "stdlib_sources",
    "task_split",
]

DomainName = Literal["prose", "code", "arithmetic", "sorting"]
TaskName = Literal["add", "sort", "reverse", "dedup"]

#: Bumped whenever a generator or split rule changes what a given seed produces; part of the
#: zoo cache key, so zoos trained on older corpora are rebuilt.
CORPORA_VERSION = 1

#: Pure-Python standard-library files (relative to the stdlib folder, without ``.py``) that make
#: up the ``code`` domain. Fixed and sorted so the corpus is the same on every machine with the
#: same Python minor version; all exist from Python 3.10 on.
STDLIB_MODULES: tuple[str, ...] = (
    "abc", "ast", "base64", "bdb", "bisect", "calendar", "cmd", "codeop", "colorsys",
    "configparser", "contextlib", "copy", "csv", "dataclasses", "difflib", "enum", "filecmp",
    "fnmatch", "fractions", "functools", "getopt", "gettext", "glob", "graphlib", "heapq",
    "hmac", "json/decoder", "json/encoder", "keyword", "linecache", "numbers", "operator",
    "pprint", "queue", "quopri", "random", "reprlib", "sched", "secrets", "shlex", "statistics",
    "string", "textwrap", "timeit", "tokenize", "traceback", "types", "weakref", "zipapp",
)  # fmt: skip


@dataclass(frozen=True)
class Document:
    """One named piece of text (a topic, a module, or a block of generated lines)."""

    name: str
    text: str


@dataclass(frozen=True)
class DomainSplit:
    """Train and held-out documents of one causal-LM domain.

    Attributes
    ----------
    domain : str
        Domain name, one of :data:`DOMAINS`.
    train, heldout : tuple of Document
        Disjoint documents; no held-out text occurs in train.
    """

    domain: str
    train: tuple[Document, ...]
    heldout: tuple[Document, ...]

    def __post_init__(self) -> None:
        if not self.train or not self.heldout:
            raise ValueError(
                f"domain {self.domain!r} split has {len(self.train)} train and "
                f"{len(self.heldout)} held-out documents; both need at least one "
                "(raise heldout_fraction or the number of generated lines)"
            )


@dataclass(frozen=True)
class Example:
    """One text-to-text example: the model reads ``source`` and must write ``target``."""

    source: str
    target: str


@dataclass(frozen=True)
class TaskSplit:
    """Train and held-out examples of one text-to-text task (disjoint sources)."""

    task: str
    train: tuple[Example, ...]
    heldout: tuple[Example, ...]


# ---------------------------------------------------------------------------------------------
# Keyed hashing: the split rule shared by every domain and task.


def _unit_hash(seed: int, key: str) -> float:
    """Map ``(seed, key)`` to a float in [0, 1) that is stable across machines and runs."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _check_fraction(heldout_fraction: float) -> None:
    if not 0.0 < heldout_fraction < 1.0:
        raise ValueError(
            f"heldout_fraction must lie in (0, 1), got {heldout_fraction}; "
            "use e.g. 0.1 to hold out a tenth of the documents"
        )


def _split_documents(
    docs: list[Document], heldout_fraction: float, seed: int
) -> tuple[tuple[Document, ...], tuple[Document, ...]]:
    """Hold out the ``round(fraction * n)`` documents whose keyed name hash is smallest."""
    _check_fraction(heldout_fraction)
    ranked = sorted(docs, key=lambda d: (_unit_hash(seed, d.name), d.name))
    n_heldout = max(1, round(heldout_fraction * len(docs)))
    heldout = sorted(ranked[:n_heldout], key=lambda d: d.name)
    train = sorted(ranked[n_heldout:], key=lambda d: d.name)
    return tuple(train), tuple(heldout)


# ---------------------------------------------------------------------------------------------
# Text domains from the standard library.


def stdlib_sources() -> list[tuple[str, str]]:
    """Return ``(module, source)`` for every module of :data:`STDLIB_MODULES`, in order.

    Returns
    -------
    list of (str, str)
        Module path (``"json/decoder"``) and its source text.

    Raises
    ------
    FileNotFoundError
        If this Python install lacks one of the files (a stripped-down distribution).
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    sources = []
    for module in STDLIB_MODULES:
        path = root / f"{module}.py"
        if not path.is_file():
            raise FileNotFoundError(
                f"standard-library file {module}.py not found under the stdlib folder; the code "
                "domain needs a full CPython install (not a stripped or frozen one)"
            )
        sources.append((module, path.read_text(encoding="utf-8")))
    return sources


def _prose_documents() -> list[Document]:
    # pydoc_data ships with CPython; imported lazily because it is 0.5 MB of strings.
    from pydoc_data.topics import topics

    # Some topics are aliases with the same text; keep the first name so no text can land on
    # both sides of the split.
    seen: set[str] = set()
    docs = []
    for name in sorted(topics):
        if topics[name] not in seen:
            seen.add(topics[name])
            docs.append(Document(name, topics[name]))
    return docs


def _code_documents() -> list[Document]:
    return [Document(module, text) for module, text in stdlib_sources()]


# ---------------------------------------------------------------------------------------------
# Generated problems. Each generator draws one problem and returns it as (source, target).


class _Draws:
    """Seeded integer draws built only on ``random.Random.random()``.

    Python guarantees that ``random()`` yields the same sequence for the same seed across
    versions (``randrange`` and friends carry no such promise), and it is ~50x faster per
    scalar draw than a numpy Generator, which matters for tens of thousands of tiny problems.
    """

    def __init__(self, seed: int, salt: str) -> None:
        key = hashlib.sha256(f"{seed}:{salt}".encode()).digest()
        self._rng = random.Random(int.from_bytes(key[:8], "big"))

    def integer(self, low: int, high: int) -> int:
        """Uniform integer in ``[low, high)``."""
        return low + int(self._rng.random() * (high - low))

    def integers(self, low: int, high: int, size: int) -> list[int]:
        return [self.integer(low, high) for _ in range(size)]

    def random(self) -> float:
        return self._rng.random()


def _letters(codes: list[int]) -> list[str]:
    return [chr(ord("a") + c) for c in codes]


def _gen_add(rng: _Draws) -> tuple[str, str]:
    # A multi-digit number plus one digit: every one-digit sum fact recurs across tens, so a
    # tiny model can learn the carry rule from train and apply it to held-out problems.
    a, b = rng.integer(0, 1000), rng.integer(0, 10)
    return f"{a} + {b}", str(a + b)


def _gen_sort(rng: _Draws) -> tuple[str, str]:
    digits = rng.integers(0, 10, rng.integer(3, 7))
    return " ".join(map(str, digits)), " ".join(map(str, sorted(digits)))


def _gen_reverse(rng: _Draws) -> tuple[str, str]:
    letters = _letters(rng.integers(0, 26, rng.integer(3, 6)))
    return " ".join(letters), " ".join(reversed(letters))


def _gen_dedup(rng: _Draws) -> tuple[str, str]:
    # Five letters, so runs of repeats are common: "a a c c c b a" -> "a c b a".
    items = _letters(rng.integers(0, 5, rng.integer(4, 9)))
    kept = [items[0]] + [b for a, b in zip(items, items[1:], strict=False) if a != b]
    return " ".join(items), " ".join(kept)


def _arithmetic_line(rng: _Draws) -> str:
    # Two digits plus one, worked digit by digit. All 100 one-digit sums recur in train, so a
    # held-out line needs no unseen fact, and most tokens follow from the facts by copying: a
    # variant fine-tuned on these lines learns them within the zoo's budget, while the
    # mixture-trained base has not (a bare "37 + 8 = 45" left too few learnable tokens).
    a, b = rng.integer(10, 100), rng.integer(0, 10)
    ones = a % 10 + b
    carry = ones // 10
    tens = a // 10 + carry
    steps = f"{a % 10} + {b} = {ones}, carry {carry}, {a // 10} + {carry} = {tens}"
    return f"{a} + {b}: {steps}, so {a + b}"


def _sorting_line(rng: _Draws) -> str:
    source, target = _gen_sort(rng)
    return f"sort {source} -> {target}"


def _unique_split(
    draw: Callable[[_Draws], str],
    n_train: int,
    n_heldout: int,
    *,
    seed: int,
    salt: str,
    heldout_fraction: float,
) -> tuple[list[str], list[str]]:
    """Draw items until both splits are full; an item's split is fixed by its keyed hash.

    Draws are unique within a split too, so held-out accuracy is not inflated by repeats.
    """
    _check_fraction(heldout_fraction)
    rng = _Draws(seed, salt)
    train: dict[str, None] = {}
    heldout: dict[str, None] = {}
    # Draws a large problem space needs to fill both sides, with a wide margin; running out
    # means the space has too few distinct items.
    expected = max(n_train / (1.0 - heldout_fraction), n_heldout / heldout_fraction)
    max_draws = int(20 * expected) + 1000
    for _ in range(max_draws):
        if len(train) >= n_train and len(heldout) >= n_heldout:
            return list(train), list(heldout)
        item = draw(rng)
        side = heldout if _unit_hash(seed, f"{salt}:{item}") < heldout_fraction else train
        limit = n_heldout if side is heldout else n_train
        if len(side) < limit:
            side[item] = None
    raise ValueError(
        f"could draw only {len(train)} train and {len(heldout)} held-out distinct {salt!r} "
        f"items (asked {n_train} and {n_heldout}); ask for fewer, the problem space is too small"
    )


def _blocks(lines: list[str], prefix: str, lines_per_doc: int) -> list[Document]:
    return [
        Document(f"{prefix}-{i // lines_per_doc:05d}", "\n".join(lines[i : i + lines_per_doc]))
        for i in range(0, len(lines), lines_per_doc)
    ]


# ---------------------------------------------------------------------------------------------
# Registries.


@dataclass(frozen=True)
class _Domain:
    """A causal-LM domain: fixed documents, or lines drawn by a generator (exactly one)."""

    documents: Callable[[], list[Document]] | None = None
    line: Callable[[_Draws], str] | None = None


_DOMAINS: Registry[_Domain] = Registry("domain", plural="domains", sort=False)
_DOMAINS.add("prose", _Domain(documents=_prose_documents))
_DOMAINS.add("code", _Domain(documents=_code_documents))
_DOMAINS.add("arithmetic", _Domain(line=_arithmetic_line))
_DOMAINS.add("sorting", _Domain(line=_sorting_line))
#: Causal-LM domains known to :func:`domain_split`.
DOMAINS: tuple[str, ...] = _DOMAINS.names()

# task -> (source template, generator)
_TASKS: Registry[tuple[str, Callable[[_Draws], tuple[str, str]]]] = Registry(
    "task", plural="tasks", sort=False
)
_TASKS.add("add", ("add: {}", _gen_add))
_TASKS.add("sort", ("sort: {}", _gen_sort))
_TASKS.add("reverse", ("reverse: {}", _gen_reverse))
_TASKS.add("dedup", ("dedup: {}", _gen_dedup))
#: Text-to-text tasks known to :func:`task_split`.
TASKS: tuple[str, ...] = _TASKS.names()


def domain_split(
    domain: DomainName | str,
    *,
    seed: int = 0,
    heldout_fraction: float = 0.1,
    n_train: int = 600,
    n_heldout: int = 100,
    lines_per_doc: int = 32,
) -> DomainSplit:
    """Split one causal-LM domain into train and held-out documents.

    Parameters
    ----------
    domain : {"prose", "code", "arithmetic", "sorting"}
        Which domain.
    seed : int
        Keys the split hash (and the generator of the generated domains).
    heldout_fraction : float
        Share of documents (text domains) or probability per distinct line (generated domains)
        that goes to held-out, in (0, 1).
    n_train, n_heldout : int
        Number of distinct lines per split of a generated domain (ignored by text domains).
    lines_per_doc : int
        Generated lines are grouped into documents of this many lines.

    Returns
    -------
    DomainSplit

    Raises
    ------
    ValueError
        Unknown domain (the message lists the known ones) or a fraction outside (0, 1).

    Examples
    --------
    >>> split = domain_split("prose", seed=0)
    >>> len(split.train) > len(split.heldout) > 0
    True
    """
    source = _DOMAINS.get(domain)
    if source.documents is not None:
        train, heldout = _split_documents(source.documents(), heldout_fraction, seed)
        return DomainSplit(domain, train, heldout)
    if min(n_train, n_heldout, lines_per_doc) < 1:
        raise ValueError(
            f"n_train, n_heldout and lines_per_doc must be >= 1, got {n_train}, "
            f"{n_heldout}, {lines_per_doc}"
        )
    train_lines, heldout_lines = _unique_split(
        source.line,
        n_train,
        n_heldout,
        seed=seed,
        salt=domain,
        heldout_fraction=heldout_fraction,
    )
    return DomainSplit(
        domain,
        tuple(_blocks(train_lines, f"{domain}-train", lines_per_doc)),
        tuple(_blocks(heldout_lines, f"{domain}-heldout", lines_per_doc)),
    )


def task_split(
    task: TaskName | str,
    *,
    seed: int = 0,
    n_train: int = 4_000,
    n_heldout: int = 200,
    heldout_fraction: float = 0.1,
) -> TaskSplit:
    """Generate distinct train and held-out examples of one text-to-text task.

    Sources read ``"<task>: <input>"``, e.g. ``"sort: 5 2 9"`` -> ``"2 5 9"``,
    ``"reverse: q w e"`` -> ``"e w q"``, ``"dedup: a a b b b a"`` -> ``"a b a"`` (collapse runs).

    Parameters
    ----------
    task : {"add", "sort", "reverse", "dedup"}
        Which task.
    seed : int
        Seeds the generator and keys the split hash.
    n_train, n_heldout : int
        Number of distinct examples per split (>= 1).
    heldout_fraction : float
        Probability that a distinct source belongs to held-out, in (0, 1).

    Returns
    -------
    TaskSplit

    Raises
    ------
    ValueError
        Unknown task (the message lists the known ones), counts below 1, or more examples than
        the task has distinct sources.
    """
    template, gen = _TASKS.get(task)
    if min(n_train, n_heldout) < 1:
        raise ValueError(f"n_train and n_heldout must be >= 1, got {n_train} and {n_heldout}")
    targets: dict[str, str] = {}

    def draw(rng: _Draws) -> str:
        source, target = gen(rng)
        text = template.format(source)
        targets[text] = target
        return text

    train, heldout = _unique_split(
        draw, n_train, n_heldout, seed=seed, salt=f"task-{task}", heldout_fraction=heldout_fraction
    )
    return TaskSplit(
        task,
        tuple(Example(s, targets[s]) for s in train),
        tuple(Example(s, targets[s]) for s in heldout),
    )


def iter_texts(split: DomainSplit | TaskSplit, side: Literal["train", "heldout"]) -> Iterator[str]:
    """Yield the texts of one side of a split (documents, or sources and targets of examples)."""
    if side not in ("train", "heldout"):
        raise ValueError(f"side must be 'train' or 'heldout', got {side!r}")
    for item in getattr(split, side):
        if isinstance(item, Document):
            yield item.text
        else:
            yield item.source
            yield item.target
