"""Similarity metrics and their registry: how two experts of one slot are compared.

The built-in metrics are ``"l2"``, ``"cosine"`` (weights), ``"cka"`` (outputs on calibration
tokens) and ``"router"`` (routing probabilities); their definitions are in the docstring of
:mod:`moelab.similarity`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import torch

from labcore.checks import check_callable, check_name
from labcore.registry import Registry

__all__ = [
    "DIRECTIONS",
    "METRIC_INPUTS",
    "Direction",
    "MetricInput",
    "MetricName",
    "SimilarityMetric",
    "available_metrics",
    "get_metric",
    "linear_cka",
    "register_metric",
    "resolve_metrics",
]

MetricName = Literal["l2", "cosine", "cka", "router"]
"""Names of the built-in metrics."""
Direction = Literal["distance", "similarity"]
"""``"distance"``: lower = more similar (0 for identical experts); ``"similarity"``: higher =
more similar (1 for identical experts)."""
DIRECTIONS: tuple[str, ...] = get_args(Direction)
MetricInput = Literal["weights", "outputs", "routing"]
"""What a metric compares: the expert's matrices, its outputs on calibration tokens, or the
probability its router gives it on calibration tokens."""
METRIC_INPUTS: tuple[str, ...] = get_args(MetricInput)

# Weights are compared in float64 chunks of this many elements: accurate sums over the 176 M
# values of a Mixtral-8x7B expert without a float64 copy of the whole expert.
_CHUNK = 1 << 20


@dataclass(frozen=True)
class SimilarityMetric:
    """One way to compare two experts.

    Parameters
    ----------
    name : str
        Registry name.
    direction : {"distance", "similarity"}
        ``"distance"``: lower = more similar, 0 for identical experts. ``"similarity"``: higher
        = more similar, 1 for identical experts.
    needs : {"weights", "outputs", "routing"}
        What :attr:`compute` receives for each expert: its matrices (``{name: [out, in]
        Tensor}``), its outputs on the calibration tokens (``(N, hidden)`` Tensor), or the
        probability the router gives it on each calibration token (``(N,)`` Tensor).
    compute : callable
        ``compute(a, b) -> float``.
    description : str
        One line for tables and figure captions.

    Raises
    ------
    ValueError
        If a field is empty, not callable, or not one of the allowed choices.
    """

    name: str
    direction: Direction
    needs: MetricInput
    compute: Callable[[Any, Any], float] = field(repr=False)
    description: str = ""

    def __post_init__(self) -> None:
        check_name(self.name, "SimilarityMetric.name")
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"SimilarityMetric.direction must be one of {DIRECTIONS}, got {self.direction!r}"
            )
        if self.needs not in METRIC_INPUTS:
            raise ValueError(
                f"SimilarityMetric.needs must be one of {METRIC_INPUTS}, got {self.needs!r}"
            )
        check_callable(self.compute, "SimilarityMetric.compute")

    def as_distance(self, values: Any) -> Any:
        """Orient values so that lower = more similar.

        Parameters
        ----------
        values : float or array-like or Series
            Values of this metric.

        Returns
        -------
        same type as ``values``
            Unchanged for a distance, ``1 - values`` for a similarity (so identical experts
            give 0 either way).
        """
        return values if self.direction == "distance" else 1 - values


def _weight_chunks(
    a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield matching float64 chunks of two experts' flattened matrices (w1, w2, w3 order).

    Every chunk is a fresh copy, so the arithmetic does not depend on where the source tensor
    lives (a view into a loaded model or a tensor read from disk): lazy and eager give the same
    bits.
    """
    if list(a) != list(b):
        raise ValueError(f"experts hold different matrices: {list(a)} vs {list(b)}")
    for name in a:
        fa = a[name].reshape(-1)
        fb = b[name].reshape(-1).to(fa.device)
        if fa.shape != fb.shape:
            raise ValueError(f"matrix {name!r} has {fa.numel()} vs {fb.numel()} elements")
        for start in range(0, fa.numel(), _CHUNK):
            stop = start + _CHUNK
            yield (
                fa[start:stop].to(torch.float64, copy=True),
                fb[start:stop].to(torch.float64, copy=True),
            )


def _l2(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    # The paper's score (as the Multi-MoE code computes it): the norm of the difference of the
    # flattened w1, w2, w3 concatenated; summing squared chunk norms gives the same number
    # without building the concatenation.
    total = 0.0
    for xa, xb in _weight_chunks(a, b):
        diff = xa.sub_(xb)
        total += float(torch.dot(diff, diff))
    return math.sqrt(total)


def _cosine(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    dot = norm_a = norm_b = 0.0
    for xa, xb in _weight_chunks(a, b):
        dot += float(torch.dot(xa, xb))
        norm_a += float(torch.dot(xa, xa))
        norm_b += float(torch.dot(xb, xb))
    denom = math.sqrt(norm_a * norm_b)
    return dot / denom if denom > 0 else math.nan


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear centered kernel alignment of two sets of representations of the same inputs.

    ``CKA(X, Y) = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` with column-centred
    ``Xc, Yc`` (Kornblith et al., 2019). It is 1 for identical outputs and invariant to
    rotations and isotropic scaling of either side, so it asks whether two experts compute the
    same function up to such changes. Written here because it is a few lines of linear algebra
    that no maintained library exposes for torch tensors.

    Parameters
    ----------
    x, y : (N, Dx) and (N, Dy) Tensor
        Representations of the same ``N`` inputs (e.g. two experts' outputs on calibration
        tokens). Leading dimensions are flattened into ``N``.

    Returns
    -------
    float
        In ``[0, 1]``; NaN if either side is constant over the inputs.

    Raises
    ------
    ValueError
        If ``x`` and ``y`` describe different numbers of inputs, or fewer than two.

    Examples
    --------
    >>> x = torch.randn(100, 8)
    >>> round(linear_cka(x, 3 * x), 6)
    1.0
    """
    x = x.reshape(-1, x.shape[-1]).to(torch.float64)
    y = y.reshape(-1, y.shape[-1]).to(torch.float64).to(x.device)
    if x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise ValueError(
            f"linear_cka needs the same N >= 2 inputs on both sides, got {x.shape[0]} and "
            f"{y.shape[0]} rows"
        )
    x = x - x.mean(dim=0)
    y = y - y.mean(dim=0)
    if x.shape[0] <= x.shape[1] + y.shape[1]:
        # Fewer inputs than features: the N x N Gram form is cheaper and equal.
        kx, ky = x @ x.T, y @ y.T
        hsic, norm_x, norm_y = (kx * ky).sum(), kx.norm(), ky.norm()
    else:
        hsic, norm_x, norm_y = (y.T @ x).square().sum(), (x.T @ x).norm(), (y.T @ y).norm()
    denom = float(norm_x * norm_y)
    return float(hsic) / denom if denom > 0 else math.nan


def _pearson(p: torch.Tensor, q: torch.Tensor) -> float:
    p = p.to(torch.float64)
    q = q.to(torch.float64).to(p.device)
    p, q = p - p.mean(), q - q.mean()
    denom = float(p.norm() * q.norm())
    return float(p @ q) / denom if denom > 0 else math.nan


_METRICS: Registry[SimilarityMetric] = Registry(
    "similarity metric",
    plural="metrics",
    duplicate_hint="pick another name",
    item_type=SimilarityMetric,
)


#: Public faces of the registry: ``register_metric(metric)``, ``available_metrics()``
#: (sorted names), ``get_metric(name_or_metric)`` (a metric passes through unchanged).
register_metric = _METRICS.add_named
available_metrics = _METRICS.names
get_metric = _METRICS.resolve


for _metric in (
    SimilarityMetric(
        "l2",
        "distance",
        "weights",
        _l2,
        "L2 norm of the difference of the flattened expert matrices (the paper's score)",
    ),
    SimilarityMetric(
        "cosine",
        "similarity",
        "weights",
        _cosine,
        "cosine of the flattened expert matrices",
    ),
    SimilarityMetric(
        "cka",
        "similarity",
        "outputs",
        linear_cka,
        "linear CKA of the experts' outputs on the calibration tokens",
    ),
    SimilarityMetric(
        "router",
        "similarity",
        "routing",
        _pearson,
        "Pearson correlation, over the calibration tokens, of the probability each model's "
        "router gives the expert",
    ),
):
    register_metric(_metric)
del _metric


def resolve_metrics(
    metrics: str | SimilarityMetric | Sequence[str | SimilarityMetric],
) -> list[SimilarityMetric]:
    """The metrics of a table, looked up by name.

    Parameters
    ----------
    metrics : str or SimilarityMetric or sequence of them
        One metric or several, by name (:func:`available_metrics`) or object.

    Returns
    -------
    list of SimilarityMetric
        In the given order.

    Raises
    ------
    ValueError
        If a name is unknown, none is given, or one is given twice.
    """
    if isinstance(metrics, (str, SimilarityMetric)):
        metrics = [metrics]
    resolved = [get_metric(m) for m in metrics]
    if not resolved:
        raise ValueError(
            f"pass at least one metric; known metrics: {', '.join(available_metrics())}"
        )
    names = [m.name for m in resolved]
    if len(set(names)) != len(names):
        raise ValueError(f"metrics must be distinct, got {names}")
    return resolved
