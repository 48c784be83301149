"""How a tenant's quality is scored on its own held-out zoo data: the quality-metric registry.

A :class:`QualityMetric` scores one model for one tenant of a zoo (perplexity on the tenant's
held-out domain, exact match or ROUGE-1 on its held-out task); :func:`moelab.compare.compare_methods`
looks them up by name. Held-out data and tokenizers are read once per zoo folder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import nn

from labcore.registry import Registry

if TYPE_CHECKING:
    from moelab.zoo import Zoo

__all__ = ["QualityMetric", "available_quality_metrics", "get_quality_metric"]


@dataclass(frozen=True)
class QualityMetric:
    """How a tenant's quality is scored on its own held-out data.

    Parameters
    ----------
    name : str
        Registry name.
    higher_is_better : bool
        Direction of the score.
    score : callable
        ``score(zoo, model, tenant, max_items) -> float``; ``max_items`` caps the chunks
        (perplexity) or examples (generation) scored, None for the zoo's own setting.
    """

    name: str
    higher_is_better: bool
    score: Callable[[Any, nn.Module, str, int | None], float] = field(repr=False)


def _eval_spec(zoo: Zoo) -> Mapping[str, Any]:
    return zoo.manifest["spec"]


def _perplexity(zoo: Zoo, model: nn.Module, tenant: str, max_items: int | None) -> float:
    from moelab.evaluate import perplexity

    spec = _eval_spec(zoo)
    chunks = spec["eval_max_chunks"] if max_items is None else max_items
    return perplexity(model, _cached(zoo, "ids", tenant), spec["eval_chunk_len"], chunks)


def _generation_metric(name: str) -> Callable[[Any, nn.Module, str, int | None], float]:
    def score(zoo: Zoo, model: nn.Module, tenant: str, max_items: int | None) -> float:
        from moelab import evaluate

        examples = _cached(zoo, "examples", tenant)
        if max_items is not None:
            examples = examples[:max_items]
        return getattr(evaluate, name)(
            model,
            _cached(zoo, "tokenizer", ""),
            examples,
            _eval_spec(zoo)["eval_max_new_tokens"],
            batch_size=256,
        )

    return score


_ZOO_CACHE: dict[tuple[str, str, str], Any] = {}


def _cached(zoo: Zoo, kind: str, tenant: str) -> Any:
    # Held-out data and the tokenizer are read once per zoo folder and kind.
    key = (str(zoo.root), kind, tenant)
    if key not in _ZOO_CACHE:
        loaders = {
            "ids": lambda: zoo.heldout_ids(tenant),
            "examples": lambda: zoo.heldout_examples(tenant),
            "tokenizer": zoo.load_tokenizer,
        }
        _ZOO_CACHE[key] = loaders[kind]()
    return _ZOO_CACHE[key]


_QUALITY: Registry[QualityMetric] = Registry("quality metric", plural="metrics")
for _quality in (
    QualityMetric("perplexity", False, _perplexity),
    QualityMetric("exact_match", True, _generation_metric("exact_match")),
    QualityMetric("rouge1", True, _generation_metric("rouge1")),
):
    _QUALITY.add(_quality.name, _quality)


#: Public faces of the registry: sorted names, and lookup by name.
available_quality_metrics = _QUALITY.names
get_quality_metric = _QUALITY.get
