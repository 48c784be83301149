"""How similar the experts of several fine-tuned mixture-of-experts models are.

Fine-tunes of one base MoE keep the base's expert slots; the question this module answers is
how far each fine-tune moved each expert, and whether experts kept their positions. Every
function returns a tidy ``pandas.DataFrame`` (one row per layer, expert, model pair and metric);
:mod:`moelab.viz` draws them.

Metrics (a registry; see :func:`available_metrics`)
    ``"l2"`` (distance), ``"cosine"`` (similarity), ``"cka"`` (similarity), ``"router"``
    (similarity); :class:`SimilarityMetric`, :func:`get_metric`, :func:`register_metric`,
    :func:`linear_cka`
Calibration tokens (what ``"cka"`` and ``"router"`` feed the experts)
    :class:`Calibration`, :func:`capture_calibration`, :func:`gaussian_calibration`
Tables
    :func:`expert_similarity` (same slot, every pair of N >= 2 models),
    :func:`sum_over_pairs` (the paper's score), :func:`cross_slot_similarity` (every expert
    against every expert of a layer), :func:`match_experts` (Hungarian matching),
    :func:`similarity_matrix`, :func:`layer_summary`, :func:`pair_summary`,
    :func:`metric_correlation`
Demonstration
    :func:`permute_experts` (shuffle a model's expert slots without changing what it computes)

Models are given as checkpoint folders (read lazily, one expert at a time, with
:class:`~moelab.checkpoint.LazyCheckpoint`), :class:`~moelab.loading.MoEModel` objects or
transformers models (eager); :func:`~moelab.families.check_compatible` runs first.

Notes
-----
Metric definitions, for experts ``A`` and ``B`` of the same slot (or of any two slots in the
cross-slot table) and calibration states ``X`` of that layer:

* ``l2`` = ``||vec(A) - vec(B)||_2`` where ``vec`` concatenates the flattened expert matrices
  in family order (Mixtral: w1, w2, w3, as the Multi-MoE code does). Distance, 0 if identical.
* ``cosine`` = ``<vec(A), vec(B)> / (||vec(A)|| ||vec(B)||)``. Similarity, 1 if identical.
* ``cka`` = :func:`linear_cka` of ``A(X)`` and ``B(X)`` (``family.expert_forward``, no routing
  weight). Similarity in [0, 1], 1 if the outputs agree up to rotation and scale.
* ``router`` = Pearson correlation, over the tokens of ``X``, of ``p_A(e | x)`` and
  ``p_B(e | x)``: the probability each model's router gives the expert (softmax of the router
  logits over all experts, before top-k). Similarity in [-1, 1]. Correlation rather than the
  cosine of the two probability columns: probabilities are positive, so their cosine is high
  even for unrelated routers, while their correlation is near 0 then and 1 when the two
  routers rank tokens for the expert the same way.

``cka`` and ``router`` are NaN when a side is constant over the calibration tokens.

Examples
--------
>>> models = {"base": "ckpt/base", "chat": "ckpt/chat"}
>>> table = expert_similarity(models, ["l2", "cka"])  # doctest: +SKIP
>>> sum_over_pairs(table).query("metric == 'l2'").nsmallest(3, "value")  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from moelab.checkpoint import LazyCheckpoint, read_config
from moelab.families import MoEFamily, check_compatible, detect_family
from moelab.families._base import ExpertSlot, config_of
from moelab.loading import MoEModel, load_moe

__all__ = [
    "DIRECTIONS",
    "METRIC_INPUTS",
    "Calibration",
    "Direction",
    "MetricInput",
    "MetricName",
    "ModelSource",
    "SimilarityMetric",
    "available_metrics",
    "capture_calibration",
    "cross_slot_similarity",
    "expert_similarity",
    "gaussian_calibration",
    "get_metric",
    "layer_summary",
    "linear_cka",
    "match_experts",
    "metric_correlation",
    "pair_summary",
    "permute_experts",
    "register_metric",
    "similarity_matrix",
    "sum_over_pairs",
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
CorrelationMethod = Literal["spearman", "kendall", "pearson"]

ModelSource = str | os.PathLike | LazyCheckpoint | MoEModel | nn.Module
"""A checkpoint folder (lazy), a LazyCheckpoint, a MoEModel or a transformers model (eager)."""

#: Column order of same-slot tables.
SAME_SLOT_COLUMNS = (
    "layer",
    "label",
    "expert",
    "model_a",
    "model_b",
    "pair",
    "metric",
    "direction",
    "value",
)
#: Column order of cross-slot tables.
CROSS_SLOT_COLUMNS = (
    "layer",
    "label",
    "expert_a",
    "expert_b",
    "model_a",
    "model_b",
    "pair",
    "metric",
    "direction",
    "value",
)
#: ``pair`` value of the rows written by :func:`sum_over_pairs`.
SUM_PAIR = "sum"

# Weights are compared in float64 chunks of this many elements: accurate sums over the 176 M
# values of a Mixtral-8x7B expert without a float64 copy of the whole expert.
_CHUNK = 1 << 20
# Default size of seeded Gaussian calibration sets.
DEFAULT_CALIBRATION_TOKENS = 512


# =============================================================================== metrics
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
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"SimilarityMetric.name must be a non-empty str, got {self.name!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"SimilarityMetric.direction must be one of {DIRECTIONS}, got {self.direction!r}"
            )
        if self.needs not in METRIC_INPUTS:
            raise ValueError(
                f"SimilarityMetric.needs must be one of {METRIC_INPUTS}, got {self.needs!r}"
            )
        if not callable(self.compute):
            raise ValueError(f"SimilarityMetric.compute must be callable, got {self.compute!r}")

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


_METRICS: dict[str, SimilarityMetric] = {}


def register_metric(metric: SimilarityMetric) -> SimilarityMetric:
    """Add a metric to the registry.

    Parameters
    ----------
    metric : SimilarityMetric
        The metric; its name must be new.

    Returns
    -------
    SimilarityMetric
        The same metric.

    Raises
    ------
    ValueError
        If ``metric`` is not a SimilarityMetric or its name is taken.
    """
    if not isinstance(metric, SimilarityMetric):
        raise ValueError(f"expected a SimilarityMetric, got {type(metric).__name__}")
    if metric.name in _METRICS:
        raise ValueError(f"a metric named {metric.name!r} is already registered; pick another name")
    _METRICS[metric.name] = metric
    return metric


def available_metrics() -> tuple[str, ...]:
    """Names of the registered similarity metrics, sorted.

    Returns
    -------
    tuple of str
        ``("cka", "cosine", "l2", "router")`` plus any registered later.
    """
    return tuple(sorted(_METRICS))


def get_metric(name: str | SimilarityMetric) -> SimilarityMetric:
    """Look a metric up by name.

    Parameters
    ----------
    name : str or SimilarityMetric
        A name from :func:`available_metrics` (a metric object is returned unchanged).

    Returns
    -------
    SimilarityMetric
        The metric.

    Raises
    ------
    ValueError
        If no metric has that name; the message lists the known ones.

    Examples
    --------
    >>> get_metric("l2").direction
    'distance'
    """
    if isinstance(name, SimilarityMetric):
        return name
    try:
        return _METRICS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown similarity metric {name!r}; known metrics: {', '.join(available_metrics())}"
        ) from None


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


def _resolve_metrics(
    metrics: str | SimilarityMetric | Sequence[str | SimilarityMetric],
) -> list[SimilarityMetric]:
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


# =========================================================================== calibration
def _freeze_hidden(hidden: Mapping[int, torch.Tensor]) -> Mapping[int, torch.Tensor]:
    if not isinstance(hidden, Mapping) or not hidden:
        raise ValueError(
            "Calibration.hidden must be a non-empty mapping {moe_layer: (N, hidden) Tensor}"
        )
    bad = [k for k in hidden if isinstance(k, bool) or not isinstance(k, int) or k < 0]
    if bad:
        raise ValueError(f"Calibration layers must be non-negative ints, got {bad[0]!r}")
    frozen: dict[int, torch.Tensor] = {}
    sizes = set()
    for layer in sorted(hidden):
        tensor = hidden[layer]
        if not isinstance(tensor, torch.Tensor) or tensor.ndim != 2 or tensor.shape[0] < 2:
            shape = (
                tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            )
            raise ValueError(
                f"Calibration layer {layer}: expected an (N, hidden) Tensor with N >= 2 tokens, "
                f"got {shape}"
            )
        if not tensor.is_floating_point():
            raise ValueError(
                f"Calibration layer {layer}: hidden states must be floats, got {tensor.dtype}"
            )
        sizes.add(tensor.shape[1])
        frozen[layer] = tensor.detach()
    if len(sizes) != 1:
        raise ValueError(f"Calibration layers have different hidden sizes {sorted(sizes)}")
    return MappingProxyType(frozen)


@dataclass(frozen=True, eq=False)
class Calibration:
    """Hidden states fed to the experts (``"cka"``) and routers (``"router"``) of each layer.

    Parameters
    ----------
    hidden : mapping of int to (N, hidden) Tensor
        For each global MoE-layer index, the states every expert of that layer sees (the input
        of the family's ``moe_block``). Layers may hold different numbers of tokens.
    description : str, optional
        Where they come from, e.g. ``"captured from base on 256 tokens"``.

    Raises
    ------
    ValueError
        If the mapping is empty, a layer is not a non-negative int, a value is not a 2-D float
        Tensor with at least two rows, or hidden sizes differ.

    See Also
    --------
    capture_calibration : hidden states of a reference model on given token ids.
    gaussian_calibration : seeded Gaussian stand-ins when no model is in memory.
    """

    hidden: Mapping[int, torch.Tensor]
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", _freeze_hidden(self.hidden))
        if not isinstance(self.description, str):
            raise ValueError(f"Calibration.description must be a str, got {self.description!r}")

    def __repr__(self) -> str:
        tokens = sorted({t.shape[0] for t in self.hidden.values()})
        return (
            f"Calibration(layers={list(self.hidden)}, tokens={tokens}, "
            f"hidden_size={self.hidden_size}, description={self.description!r})"
        )

    @property
    def hidden_size(self) -> int:
        """Width of the hidden states."""
        return next(iter(self.hidden.values())).shape[1]

    def layer(self, layer: int) -> torch.Tensor:
        """The ``(N, hidden)`` states of one MoE layer.

        Parameters
        ----------
        layer : int
            Global MoE-layer index.

        Returns
        -------
        Tensor
            The states.

        Raises
        ------
        ValueError
            If the calibration holds no states for that layer.
        """
        if layer not in self.hidden:
            raise ValueError(
                f"calibration has no hidden states for MoE layer {layer} (it covers layers "
                f"{list(self.hidden)}); capture it from a model of the same architecture"
            )
        return self.hidden[layer]

    def check(self, family: MoEFamily, config: Any, layers: Sequence[int]) -> None:
        """Raise unless the calibration fits a model's hidden size and covers ``layers``.

        Parameters
        ----------
        family : MoEFamily
            The models' family.
        config : PretrainedConfig
            Their config.
        layers : sequence of int
            The MoE layers about to be compared.

        Raises
        ------
        ValueError
            Naming the mismatch and the fix.
        """
        expected = _hidden_size(family, config)
        if self.hidden_size != expected:
            raise ValueError(
                f"calibration hidden states have width {self.hidden_size}, but the models' "
                f"hidden size is {expected}; capture them from a model of the same architecture "
                f"or use gaussian_calibration"
            )
        for layer in layers:
            self.layer(layer)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the calibration to a safetensors file, atomically.

        Parameters
        ----------
        path : str or PathLike
            Target file (e.g. ``"calibration.safetensors"``).

        Returns
        -------
        Path
            The file written.
        """
        from safetensors.torch import save_file

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tensors = {f"layer.{k}": v.contiguous().cpu() for k, v in self.hidden.items()}
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata={"description": self.description})
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Calibration:
        """Read a calibration written by :meth:`save`.

        Parameters
        ----------
        path : str or PathLike
            The safetensors file.

        Returns
        -------
        Calibration
            The calibration.

        Raises
        ------
        FileNotFoundError
            If the file does not exist.
        ValueError
            If it holds no ``layer.{i}`` tensors.
        """
        from safetensors import safe_open

        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(
                f"no calibration file {file.name!r}; write one with Calibration.save"
            )
        with safe_open(file, framework="pt") as handle:
            names = [k for k in handle.keys() if k.startswith("layer.")]  # noqa: SIM118
            if not names:
                raise ValueError(
                    f"{file.name!r} holds no 'layer.N' tensors; write it with Calibration.save"
                )
            hidden = {int(k.split(".", 1)[1]): handle.get_tensor(k) for k in names}
            description = (handle.metadata() or {}).get("description", "")
        return cls(hidden, description)


def _hidden_size(family: MoEFamily, config: Any) -> int:
    # The input width of the first expert matrix: every family's experts read the hidden state.
    first = family.expert_matrix_names()[0]
    return family.expert_shapes(config)[first][1]


def _config_and_family(source: Any) -> tuple[Any, MoEFamily]:
    if isinstance(source, (str, os.PathLike)):
        config = read_config(source)
        return config, detect_family(config)
    family = getattr(source, "family", None)
    config = config_of(source)
    return config, family if isinstance(family, MoEFamily) else detect_family(config)


def gaussian_calibration(
    model_or_config: Any,
    *,
    n_tokens: int = DEFAULT_CALIBRATION_TOKENS,
    seed: int = 0,
    layers: Sequence[int] | None = None,
) -> Calibration:
    """Seeded standard-normal hidden states of the model's width, one set per MoE layer.

    The stand-in when no model is in memory to capture real states from (e.g. comparing two
    large checkpoints lazily). The input of every supported family's MoE block comes right
    after an RMSNorm or LayerNorm, so each token has roughly unit root-mean-square, which
    ``N(0, 1)`` entries match. The results then describe the experts as functions on isotropic
    inputs rather than on the model's real token distribution; prefer
    :func:`capture_calibration` (captured once, saved with :meth:`Calibration.save`) when a
    reference model fits in memory.

    Parameters
    ----------
    model_or_config : MoEModel or LazyCheckpoint or PreTrainedModel or PretrainedConfig or path
        Gives the hidden size and the number of MoE layers.
    n_tokens : int, default 512
        Tokens per layer.
    seed : int, default 0
        Seed of a private ``torch.Generator``; layer ``l`` draws from ``seed + l``.
    layers : sequence of int, optional
        MoE layers to cover (default: all).

    Returns
    -------
    Calibration
        ``(n_tokens, hidden)`` float32 states per layer.

    Raises
    ------
    ValueError
        If ``n_tokens < 2`` or a layer is out of range.

    Examples
    --------
    >>> calib = gaussian_calibration("checkpoints/mixtral-base", n_tokens=256)  # doctest: +SKIP
    """
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 2:
        raise ValueError(f"n_tokens must be an int >= 2, got {n_tokens!r}")
    config, family = _config_and_family(model_or_config)
    layers = _resolve_layers(family, config, layers)
    width = _hidden_size(family, config)
    hidden = {
        layer: torch.randn(n_tokens, width, generator=torch.Generator().manual_seed(seed + layer))
        for layer in layers
    }
    return Calibration(hidden, f"seeded Gaussian N(0, 1), {n_tokens} tokens, seed {seed}")


def _token_batch(token_ids: Any, vocab_size: int) -> torch.Tensor:
    ids = torch.as_tensor(token_ids)
    if ids.ndim == 1:
        ids = ids.unsqueeze(0)
    if ids.ndim != 2 or ids.numel() == 0 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(
            f"token_ids must be a non-empty (seq,) or (batch, seq) integer array, got "
            f"{tuple(ids.shape)} {ids.dtype}"
        )
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab_size:
        raise ValueError(
            f"token_ids must lie in [0, {vocab_size}) (the model's vocabulary), got values from "
            f"{low} to {high}"
        )
    return ids.long()


def capture_calibration(
    model: Any, token_ids: Any, *, description: str | None = None
) -> Calibration:
    """Capture the hidden states every MoE block of a reference model sees on given tokens.

    A forward hook on each ``family.moe_block(model, layer)`` records its input, the state the
    layer's router and experts read. An encoder-decoder (Switch Transformers) gets the same ids
    as encoder input and as decoder input, so its decoder MoE layers see states too.

    Parameters
    ----------
    model : MoEModel or PreTrainedModel or path
        The reference model (usually the base model of the fine-tunes being compared); a path
        is loaded with :func:`~moelab.loading.load_moe`.
    token_ids : (seq,) or (batch, seq) int array-like
        Token ids in the model's vocabulary; every position becomes one calibration token.
    description : str, optional
        Stored with the result; by default names the model and the token count.

    Returns
    -------
    Calibration
        ``(batch * seq, hidden)`` float32 states per MoE layer, on the CPU.

    Raises
    ------
    ValueError
        If ``token_ids`` is not a non-empty integer array inside the vocabulary.
    UnsupportedModelError
        If the model is not of a supported MoE family.

    Examples
    --------
    >>> ids = tokenizer(text, return_tensors="pt").input_ids  # doctest: +SKIP
    >>> capture_calibration(base, ids).save("calibration.safetensors")  # doctest: +SKIP
    """
    moe = load_moe(model, tokenizer=False) if not isinstance(model, MoEModel) else model
    ids = _token_batch(token_ids, int(moe.config.vocab_size))
    device = next(moe.model.parameters()).device
    ids = ids.to(device)
    captured: dict[int, torch.Tensor] = {}

    def hook_for(layer: int) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            states = args[0] if args else kwargs["hidden_states"]
            captured[layer] = states.detach().reshape(-1, states.shape[-1]).float().cpu()

        return hook

    n_layers = moe.family.num_moe_layers(moe.config)
    handles = [
        moe.moe_block(layer).register_forward_hook(hook_for(layer), with_kwargs=True)
        for layer in range(n_layers)
    ]
    was_training = moe.model.training
    moe.model.eval()  # router jitter and dropout are training-only
    try:
        inputs = {"input_ids": ids}
        if getattr(moe.config, "is_encoder_decoder", False):
            inputs["decoder_input_ids"] = ids
        with torch.no_grad():
            moe.model(**inputs)
    finally:
        for handle in handles:
            handle.remove()
        moe.model.train(was_training)
    text = (
        description
        if description is not None
        else f"captured from {moe.name} on {ids.numel()} tokens"
    )
    return Calibration(captured, text)


def _as_calibration(
    calibration: Calibration | Mapping[int, torch.Tensor] | None,
    sources: Sequence[Any],
    family: MoEFamily,
    layers: Sequence[int],
) -> Calibration:
    if calibration is None:
        # Documented default: seeded Gaussian states, so lazy runs need no model in memory.
        calibration = gaussian_calibration(sources[0], layers=layers)
    elif not isinstance(calibration, Calibration):
        if not isinstance(calibration, Mapping):
            raise ValueError(
                f"calibration must be a Calibration, a mapping {{moe_layer: (N, hidden) Tensor}} "
                f"or None, got {type(calibration).__name__}"
            )
        calibration = Calibration(calibration)
    calibration.check(family, sources[0].config, layers)
    return calibration


# ================================================================================ inputs
def _open(source: Any) -> LazyCheckpoint | MoEModel:
    if isinstance(source, (LazyCheckpoint, MoEModel)):
        return source
    if isinstance(source, (str, os.PathLike)):
        return LazyCheckpoint(source)
    if isinstance(source, nn.Module):
        return load_moe(source)
    raise ValueError(
        f"expected a checkpoint folder path, a LazyCheckpoint, a MoEModel or a transformers "
        f"model, got {type(source).__name__}"
    )


def _unique(names: list[str]) -> list[str]:
    if len(set(names)) == len(names):
        return names
    # Models built in memory share their class name: number them in the given order.
    return [f"{name}[{i}]" for i, name in enumerate(names)]


def _open_all(
    models: Mapping[str, ModelSource] | Sequence[ModelSource], at_least: int = 2
) -> tuple[list[str], list[LazyCheckpoint | MoEModel], MoEFamily]:
    if isinstance(models, Mapping):
        names = [str(n) for n in models]
        sources = [_open(m) for m in models.values()]
    elif isinstance(models, Sequence) and not isinstance(models, (str, bytes)):
        sources = [_open(m) for m in models]
        names = _unique([s.name for s in sources])
    else:
        raise ValueError(
            f"models must be a list of models/folders or a dict {{name: model or folder}}, got "
            f"{type(models).__name__}"
        )
    if len(sources) < at_least:
        raise ValueError(
            f"comparing experts needs at least {at_least} models, got {len(sources)}; pass a list "
            f"or a dict of models or checkpoint folders"
        )
    family = check_compatible(*sources)
    return names, sources, family


def _resolve_layers(family: MoEFamily, config: Any, layers: Sequence[int] | None) -> list[int]:
    n_layers = family.num_moe_layers(config)
    if layers is None:
        return list(range(n_layers))
    if isinstance(layers, int):
        layers = [layers]
    chosen = list(layers)
    bad = [
        layer
        for layer in chosen
        if isinstance(layer, bool)
        or not isinstance(layer, (int, np.integer))
        or not 0 <= layer < n_layers
    ]
    if bad or not chosen:
        raise ValueError(f"layers must be MoE-layer indices in 0..{n_layers - 1}, got {layers!r}")
    return sorted({int(layer) for layer in chosen})


def _read_expert(source: LazyCheckpoint | MoEModel, slot: ExpertSlot) -> dict[str, torch.Tensor]:
    if isinstance(source, LazyCheckpoint):
        return source.read_expert(slot)
    return source.get_expert(slot)


def _routing_probs(
    source: LazyCheckpoint | MoEModel, layer: int, hidden: torch.Tensor
) -> torch.Tensor:
    # Every supported router is softmax(W x) over all experts in float32 before its top-k
    # (Mixtral, OLMoE, Switch; a Switch router bias, off in released models, is left out).
    weight = (
        source.read_router_weight(layer)
        if isinstance(source, LazyCheckpoint)
        else source.router_weight(layer)
    )
    logits = hidden.to(weight.device, weight.dtype) @ weight.T
    return torch.softmax(logits.float(), dim=-1)


def _expert_features(
    source: LazyCheckpoint | MoEModel,
    slot: ExpertSlot,
    needs: set[str],
    hidden: torch.Tensor | None,
    probs: torch.Tensor | None,
) -> dict[str, Any]:
    features: dict[str, Any] = {}
    if needs & {"weights", "outputs"}:
        tensors = _read_expert(source, slot)
        if "weights" in needs:
            features["weights"] = tensors
        if "outputs" in needs:
            device = next(iter(tensors.values())).device
            with torch.no_grad():
                features["outputs"] = source.family.expert_forward(
                    source.config, tensors, hidden.to(device)
                )
    if "routing" in needs:
        features["routing"] = probs[:, slot.expert]
    return features


def _pair_name(a: str, b: str) -> str:
    return f"{a} vs {b}"


def _rows(
    slot: ExpertSlot,
    expert_b: int | None,
    names: tuple[str, str],
    metrics: Sequence[SimilarityMetric],
    features_a: Mapping[str, Any],
    features_b: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Table rows comparing expert ``slot`` of model a with ``expert_b`` (None: same slot) of b."""
    where: dict[str, Any] = {"layer": slot.layer, "label": slot.label}
    if expert_b is None:
        where["expert"] = slot.expert
    else:
        where |= {"expert_a": slot.expert, "expert_b": expert_b}
    where |= {"model_a": names[0], "model_b": names[1], "pair": _pair_name(*names)}
    return [
        {
            **where,
            "metric": m.name,
            "direction": m.direction,
            "value": m.compute(features_a[m.needs], features_b[m.needs]),
        }
        for m in metrics
    ]


def _frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    table = pd.DataFrame.from_records(rows, columns=list(columns))
    return table.astype(
        {c: "int64" for c in columns if c.startswith(("layer", "expert"))} | {"value": "float64"}
    )


def _layer_inputs(
    metrics: Sequence[SimilarityMetric],
    sources: Sequence[LazyCheckpoint | MoEModel],
    family: MoEFamily,
    layers: Sequence[int],
    calibration: Any,
) -> tuple[set[str], Calibration | None]:
    needs = {m.needs for m in metrics}
    calib = (
        _as_calibration(calibration, sources, family, layers)
        if needs & {"outputs", "routing"}
        else None
    )
    return needs, calib


# ================================================================================ tables
def expert_similarity(
    models: Mapping[str, ModelSource] | Sequence[ModelSource],
    metrics: MetricName | str | Sequence[str | SimilarityMetric] = "l2",
    *,
    calibration: Calibration | Mapping[int, torch.Tensor] | None = None,
    layers: Sequence[int] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Compare the experts in the same slot of every pair of models.

    Slots are visited one at a time: each model's expert is read (a checkpoint folder reads
    only that expert's bytes from its safetensors files), compared with the others, and freed,
    so peak memory is about one expert per model whatever the models' size.

    Parameters
    ----------
    models : list of ModelSource or dict of str to ModelSource
        N >= 2 fine-tunes of one architecture: checkpoint folders (lazy), LazyCheckpoint,
        MoEModel or transformers models (eager). A dict names them; a list takes the folder
        names (models built in memory are numbered).
    metrics : str or list of str, default "l2"
        Names from :func:`available_metrics`.
    calibration : Calibration or dict of int to Tensor, optional
        States fed to experts and routers for ``"cka"`` and ``"router"``. Default: seeded
        Gaussian states of the model's hidden size (:func:`gaussian_calibration`, 512 tokens,
        seed 0); pass :func:`capture_calibration` of the base model for real token states.
    layers : sequence of int, optional
        MoE layers to compare (default: all).
    progress : bool, default True
        Show a tqdm progress bar over slots.

    Returns
    -------
    pandas.DataFrame
        One row per layer, expert, pair and metric; columns ``layer``, ``label``, ``expert``,
        ``model_a``, ``model_b``, ``pair`` (``"a vs b"``, pairs in input order), ``metric``,
        ``direction`` (``"distance"``: lower = more similar; ``"similarity"``: higher = more
        similar), ``value``.

    Raises
    ------
    ValueError
        If fewer than two models are given, a metric is unknown, a layer is out of range or
        the calibration does not fit.
    IncompatibleModelsError
        If the models differ in family, MoE layers, experts per layer or expert shapes.
    UnsupportedModelError
        If a model is not a supported mixture of experts.
    CheckpointNotFoundError
        If a folder, its config or its weights do not exist.
    CorruptCheckpointError
        If a safetensors file is truncated or corrupt.

    Examples
    --------
    >>> expert_similarity(["ckpt/base", "ckpt/math"], ["l2", "cosine"])  # doctest: +SKIP
    """
    names, sources, family = _open_all(models)
    resolved = _resolve_metrics(metrics)
    config = sources[0].config
    layers = _resolve_layers(family, config, layers)
    needs, calib = _layer_inputs(resolved, sources, family, layers, calibration)
    labels = family.layer_labels(config)
    pairs = list(itertools.combinations(range(len(sources)), 2))
    n_experts = family.num_experts(config)
    rows: list[dict[str, Any]] = []
    with tqdm(total=len(layers) * n_experts, desc="expert similarity", disable=not progress) as bar:
        for layer in layers:
            hidden = calib.layer(layer) if calib is not None else None
            probs = [
                _routing_probs(s, layer, hidden) if "routing" in needs else None for s in sources
            ]
            for expert in range(n_experts):
                slot = ExpertSlot(layer, expert, labels[layer])
                features = [
                    _expert_features(s, slot, needs, hidden, p) for s, p in zip(sources, probs)
                ]
                for i, j in pairs:
                    rows += _rows(
                        slot, None, (names[i], names[j]), resolved, features[i], features[j]
                    )
                del features
                bar.update()
    return _frame(rows, SAME_SLOT_COLUMNS)


def cross_slot_similarity(
    a: ModelSource,
    b: ModelSource,
    metrics: MetricName | str | Sequence[str | SimilarityMetric] = "l2",
    *,
    names: tuple[str, str] | None = None,
    calibration: Calibration | Mapping[int, torch.Tensor] | None = None,
    layers: Sequence[int] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Compare every expert of model ``a`` with every expert of model ``b``, layer by layer.

    Same-slot comparison assumes fine-tuning kept each expert in its position. This table shows
    whether it did: if ``b``'s experts were permuted, the most similar partner of ``a``'s
    expert ``i`` sits off the diagonal; :func:`match_experts` finds the best one-to-one
    assignment. Per layer, ``b``'s experts are held in memory (for the weight metrics) while
    ``a``'s are streamed one at a time: peak memory is one layer of ``b`` plus one expert.

    Parameters
    ----------
    a, b : ModelSource
        Two fine-tunes of one architecture (folder, LazyCheckpoint, MoEModel or model).
    metrics : str or list of str, default "l2"
        Names from :func:`available_metrics`.
    names : (str, str), optional
        Names of the two models in the table (default: folder or class names).
    calibration : Calibration or dict of int to Tensor, optional
        As in :func:`expert_similarity`.
    layers : sequence of int, optional
        MoE layers to compare (default: all).
    progress : bool, default True
        Show a tqdm progress bar over ``a``'s experts.

    Returns
    -------
    pandas.DataFrame
        One row per layer, ``expert_a``, ``expert_b`` and metric; columns ``layer``,
        ``label``, ``expert_a``, ``expert_b``, ``model_a``, ``model_b``, ``pair``, ``metric``,
        ``direction``, ``value``. Rows with ``expert_a == expert_b`` equal
        :func:`expert_similarity`.

    Raises
    ------
    ValueError
        As :func:`expert_similarity`, and if ``names`` is not two distinct strings.
    IncompatibleModelsError, UnsupportedModelError, CheckpointNotFoundError, CorruptCheckpointError
        As :func:`expert_similarity`.

    Examples
    --------
    >>> cross = cross_slot_similarity("ckpt/base", "ckpt/math", "l2", layers=[0])  # doctest: +SKIP
    >>> match_experts(cross)                                                        # doctest: +SKIP
    """
    if names is not None:
        if len(names) != 2 or len(set(names)) != 2 or not all(isinstance(n, str) for n in names):
            raise ValueError(f"names must be two distinct strings, got {names!r}")
        models: Any = dict(zip(names, (a, b)))
    else:
        models = [a, b]
    (name_a, name_b), (src_a, src_b), family = _open_all(models)
    resolved = _resolve_metrics(metrics)
    config = src_a.config
    layers = _resolve_layers(family, config, layers)
    needs, calib = _layer_inputs(resolved, [src_a, src_b], family, layers, calibration)
    labels = family.layer_labels(config)
    n_experts = family.num_experts(config)
    rows: list[dict[str, Any]] = []
    with tqdm(
        total=len(layers) * n_experts, desc="cross-slot similarity", disable=not progress
    ) as bar:
        for layer in layers:
            hidden = calib.layer(layer) if calib is not None else None
            probs_a, probs_b = (
                (_routing_probs(src_a, layer, hidden), _routing_probs(src_b, layer, hidden))
                if "routing" in needs
                else (None, None)
            )
            slots = [ExpertSlot(layer, e, labels[layer]) for e in range(n_experts)]
            held_b = [_expert_features(src_b, s, needs, hidden, probs_b) for s in slots]
            for slot in slots:
                feat_a = _expert_features(src_a, slot, needs, hidden, probs_a)
                for expert_b, feat_b in enumerate(held_b):
                    rows += _rows(slot, expert_b, (name_a, name_b), resolved, feat_a, feat_b)
                del feat_a
                bar.update()
            del held_b
    return _frame(rows, CROSS_SLOT_COLUMNS)


def _require(table: Any, columns: Sequence[str], what: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise ValueError(
            f"{what} expects a DataFrame from moelab.similarity, got {type(table).__name__}"
        )
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(
            f"{what} expects a table with columns {list(columns)}; missing {missing} (build it "
            f"with expert_similarity or cross_slot_similarity)"
        )


def _choose(table: pd.DataFrame, column: str, value: Any, what: str) -> pd.DataFrame:
    known = list(dict.fromkeys(table[column]))
    if value not in known:
        raise ValueError(f"{what}: unknown {column} {value!r}; the table has {known}")
    return table[table[column] == value]


def sum_over_pairs(table: pd.DataFrame) -> pd.DataFrame:
    """The paper's score for more than two models: each slot's value summed over all pairs.

    Parameters
    ----------
    table : pandas.DataFrame
        A same-slot table from :func:`expert_similarity`.

    Returns
    -------
    pandas.DataFrame
        Same columns; one row per layer, expert and metric, with ``pair = "sum"``, ``model_a``
        and ``model_b`` set to ``"all"``, and ``value`` the sum over pairs (NaN if any pair's
        value is NaN).

    Raises
    ------
    ValueError
        If the table lacks the same-slot columns.

    Examples
    --------
    >>> table = expert_similarity([base, math, code])  # doctest: +SKIP
    >>> sum_over_pairs(table).nsmallest(5, "value")  # doctest: +SKIP
    """
    _require(table, SAME_SLOT_COLUMNS, "sum_over_pairs")
    keys = ["layer", "label", "expert", "metric", "direction"]
    summed = (
        table[table["pair"] != SUM_PAIR]
        .groupby(keys, sort=False, as_index=False)["value"]
        .sum(min_count=1, skipna=False)
    )
    summed["model_a"] = summed["model_b"] = "all"
    summed["pair"] = SUM_PAIR
    return summed[list(SAME_SLOT_COLUMNS)].reset_index(drop=True)


def match_experts(cross: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """Best one-to-one assignment of ``a``'s experts to ``b``'s, per layer (Hungarian method).

    Uses ``scipy.optimize.linear_sum_assignment``: minimising the summed distance, or
    maximising the summed similarity. NaN cells (constant outputs) count as the worst value.

    Parameters
    ----------
    cross : pandas.DataFrame
        A table from :func:`cross_slot_similarity`.
    metric : str, optional
        Match on one metric only (default: every metric in the table, separately).

    Returns
    -------
    pandas.DataFrame
        One row per layer, pair, metric and ``expert_a``; columns ``layer``, ``label``,
        ``model_a``, ``model_b``, ``pair``, ``metric``, ``direction``, ``expert_a``,
        ``expert_b`` (its matched partner), ``value`` (of the matched pair),
        ``same_slot_value`` (of ``expert_b == expert_a``), ``moved`` (partner is in another
        slot).

    Raises
    ------
    ValueError
        If the table is not a cross-slot table or ``metric`` is not in it.

    Examples
    --------
    >>> match_experts(cross_slot_similarity(base, permuted, "l2")).query("moved")  # doctest: +SKIP
    """
    from scipy.optimize import linear_sum_assignment

    _require(cross, CROSS_SLOT_COLUMNS, "match_experts")
    if metric is not None:
        cross = _choose(cross, "metric", metric, "match_experts")
    rows: list[dict[str, Any]] = []
    for (layer, pair, name), group in cross.groupby(["layer", "pair", "metric"], sort=True):
        grid = group.pivot(index="expert_a", columns="expert_b", values="value")
        direction = group["direction"].iloc[0]
        values = grid.to_numpy(dtype=float)
        worst = np.nanmin(values) if direction == "similarity" else np.nanmax(values)
        cost = np.where(np.isnan(values), 0.0 if np.isnan(worst) else worst, values)
        row_idx, col_idx = linear_sum_assignment(cost, maximize=direction == "similarity")
        first = group.iloc[0]
        for r, c in zip(row_idx, col_idx):
            expert_a, expert_b = int(grid.index[r]), int(grid.columns[c])
            same = grid.loc[expert_a, expert_a] if expert_a in grid.columns else math.nan
            rows.append(
                {
                    "layer": int(layer),
                    "label": first["label"],
                    "model_a": first["model_a"],
                    "model_b": first["model_b"],
                    "pair": pair,
                    "metric": name,
                    "direction": direction,
                    "expert_a": expert_a,
                    "expert_b": expert_b,
                    "value": float(values[r, c]),
                    "same_slot_value": float(same),
                    "moved": expert_a != expert_b,
                }
            )
    columns = (
        "layer",
        "label",
        "model_a",
        "model_b",
        "pair",
        "metric",
        "direction",
        "expert_a",
        "expert_b",
        "value",
        "same_slot_value",
        "moved",
    )
    return _frame(rows, columns).astype({"same_slot_value": "float64", "moved": "bool"})


def similarity_matrix(
    table: pd.DataFrame, metric: str, pair: str | None = None, layer: int | None = None
) -> pd.DataFrame:
    """One metric of one pair as a matrix.

    Parameters
    ----------
    table : pandas.DataFrame
        A same-slot table (:func:`expert_similarity` or :func:`sum_over_pairs`) or a cross-slot
        table (:func:`cross_slot_similarity`).
    metric : str
        A metric present in the table.
    pair : str, optional
        A pair present in the table; may be omitted when the table holds one pair.
    layer : int, optional
        For a cross-slot table, the layer to show (may be omitted when it holds one layer);
        ignored for a same-slot table.

    Returns
    -------
    pandas.DataFrame
        Same-slot: layers (index, by ``label``) x experts (columns). Cross-slot: ``expert_a``
        (index) x ``expert_b`` (columns) of that layer.

    Raises
    ------
    ValueError
        If the table has neither layout, or ``metric``, ``pair`` or ``layer`` is not in it.
    """
    cross = isinstance(table, pd.DataFrame) and "expert_a" in table.columns
    _require(table, CROSS_SLOT_COLUMNS if cross else SAME_SLOT_COLUMNS, "similarity_matrix")
    chosen = _choose(table, "metric", metric, "similarity_matrix")
    pair = _single(chosen, "pair", pair)
    chosen = _choose(chosen, "pair", pair, "similarity_matrix")
    if not cross:
        grid = chosen.pivot(index=["layer", "label"], columns="expert", values="value")
        grid.index = grid.index.get_level_values("label")
        return grid
    layer = _single(chosen, "layer", layer)
    chosen = _choose(chosen, "layer", layer, "similarity_matrix")
    return chosen.pivot(index="expert_a", columns="expert_b", values="value")


def _single(table: pd.DataFrame, column: str, value: Any) -> Any:
    if value is not None:
        return value
    known = list(dict.fromkeys(table[column]))
    if len(known) != 1:
        raise ValueError(f"the table holds several values of {column} {known}; pass {column}=...")
    return known[0]


def layer_summary(table: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """Per-layer statistics of a same-slot table: which layers stay shared across fine-tunes.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`expert_similarity` or :func:`sum_over_pairs`.
    metric : str, optional
        Keep one metric only.

    Returns
    -------
    pandas.DataFrame
        One row per layer, pair and metric; columns ``layer``, ``label``, ``pair``, ``metric``,
        ``direction``, ``mean``, ``min``, ``max`` and ``distance_mean`` (the mean of
        :meth:`SimilarityMetric.as_distance`, so layers of every metric sort the same way:
        lower = more shared).

    Raises
    ------
    ValueError
        If the table lacks the same-slot columns or ``metric`` is not in it.
    """
    _require(table, SAME_SLOT_COLUMNS, "layer_summary")
    if metric is not None:
        table = _choose(table, "metric", metric, "layer_summary")
    table = table.assign(distance=_as_distance(table))
    keys = ["layer", "label", "pair", "metric", "direction"]
    summary = table.groupby(keys, sort=False, as_index=False).agg(
        mean=("value", "mean"),
        min=("value", "min"),
        max=("value", "max"),
        distance_mean=("distance", "mean"),
    )
    return summary.sort_values(["metric", "pair", "layer"], kind="stable").reset_index(drop=True)


def pair_summary(table: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """Statistics over all slots of a same-slot table, per pair: how far each fine-tune moved.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`expert_similarity` or :func:`sum_over_pairs`.
    metric : str, optional
        Keep one metric only.

    Returns
    -------
    pandas.DataFrame
        One row per pair and metric, in table order; columns ``pair``, ``model_a``,
        ``model_b``, ``metric``, ``direction``, ``mean``, ``min``, ``max``, ``distance_mean``
        (as in :func:`layer_summary`).

    Raises
    ------
    ValueError
        If the table lacks the same-slot columns or ``metric`` is not in it.
    """
    _require(table, SAME_SLOT_COLUMNS, "pair_summary")
    if metric is not None:
        table = _choose(table, "metric", metric, "pair_summary")
    table = table.assign(distance=_as_distance(table))
    keys = ["pair", "model_a", "model_b", "metric", "direction"]
    return table.groupby(keys, sort=False, as_index=False).agg(
        mean=("value", "mean"),
        min=("value", "min"),
        max=("value", "max"),
        distance_mean=("distance", "mean"),
    )


def _as_distance(table: pd.DataFrame) -> pd.Series:
    out = table["value"].astype(float).copy()
    similar = table["direction"] == "similarity"
    out[similar] = 1 - out[similar]
    return out


_CORRELATIONS: dict[str, str] = {
    "spearman": "spearmanr",
    "kendall": "kendalltau",
    "pearson": "pearsonr",
}


def metric_correlation(
    table: pd.DataFrame, x: str = "l2", y: str = "cka", *, method: CorrelationMethod = "spearman"
) -> pd.DataFrame:
    """How two metrics agree over slots, per pair (does weight distance predict output distance?).

    Both metrics are first oriented as distances (:meth:`SimilarityMetric.as_distance`: a
    similarity ``s`` becomes ``1 - s``), so a positive coefficient means agreement.

    Parameters
    ----------
    table : pandas.DataFrame
        A same-slot table holding both metrics.
    x, y : str
        The two metrics.
    method : {"spearman", "kendall", "pearson"}, default "spearman"
        The ``scipy.stats`` coefficient (``spearmanr``, ``kendalltau``, ``pearsonr``).

    Returns
    -------
    pandas.DataFrame
        One row per pair; columns ``pair``, ``x``, ``y``, ``method``, ``n`` (slots with both
        values), ``coefficient``, ``pvalue``.

    Raises
    ------
    ValueError
        If the method is unknown, a metric is not in the table, or a pair has fewer than three
        slots with both values.
    """
    import scipy.stats

    if method not in _CORRELATIONS:
        raise ValueError(
            f"unknown correlation method {method!r}; known methods: {', '.join(_CORRELATIONS)}"
        )
    _require(table, SAME_SLOT_COLUMNS, "metric_correlation")
    for name in (x, y):
        _choose(table, "metric", name, "metric_correlation")
    oriented = table.assign(distance=_as_distance(table))
    wide = oriented.pivot_table(
        index=["pair", "layer", "expert"], columns="metric", values="distance", dropna=False
    )
    rows = []
    for pair in dict.fromkeys(table["pair"]):
        both = wide.loc[pair, [x, y]].dropna()
        if len(both) < 3:
            raise ValueError(
                f"pair {pair!r} has {len(both)} slots with both {x} and {y}; need at least 3"
            )
        result = getattr(scipy.stats, _CORRELATIONS[method])(both[x], both[y])
        rows.append(
            {
                "pair": pair,
                "x": x,
                "y": y,
                "method": method,
                "n": len(both),
                "coefficient": float(result.statistic),
                "pvalue": float(result.pvalue),
            }
        )
    return pd.DataFrame(rows, columns=["pair", "x", "y", "method", "n", "coefficient", "pvalue"])


# ========================================================================= demonstration
def permute_experts(
    model: MoEModel | nn.Module,
    permutations: Mapping[int, Sequence[int]],
    *,
    router: bool = True,
) -> MoEModel:
    """Move the experts of some layers to other slots, in place.

    Expert ``i`` of layer ``l`` moves to slot ``permutations[l][i]``. With ``router=True`` the
    router's rows move with them, so the model computes exactly what it computed before: only
    the slot numbering changed. This is what a fine-tune that reorders experts looks like, and
    what :func:`cross_slot_similarity` with :func:`match_experts` should see through.

    Parameters
    ----------
    model : MoEModel or PreTrainedModel
        The model, changed in place (through ``set_expert`` and the router weight).
    permutations : dict of int to sequence of int
        For each MoE layer to change, a permutation of ``range(num_experts)``.
    router : bool, default True
        Permute the router rows too (keeps the model's function).

    Returns
    -------
    MoEModel
        The same model, wrapped.

    Raises
    ------
    ValueError
        If a layer is out of range or a value is not a permutation of the experts.

    Examples
    --------
    >>> permute_experts(variant, {0: [1, 2, 3, 0]})  # doctest: +SKIP
    """
    moe = load_moe(model, tokenizer=False) if not isinstance(model, MoEModel) else model
    n_experts = moe.family.num_experts(moe.config)
    for layer, perm in permutations.items():
        _resolve_layers(moe.family, moe.config, [layer])
        perm = [int(p) for p in perm]
        if sorted(perm) != list(range(n_experts)):
            raise ValueError(
                f"layer {layer}: {perm} is not a permutation of the {n_experts} experts "
                f"(0..{n_experts - 1})"
            )
        old = [
            {k: v.clone() for k, v in moe.get_expert(ExpertSlot(layer, e)).items()}
            for e in range(n_experts)
        ]
        for expert, target in enumerate(perm):
            moe.set_expert(ExpertSlot(layer, target), old[expert])
        if router:
            weight = moe.router_weight(layer)
            rows = weight.clone()
            with torch.no_grad():
                weight[perm] = rows
    return moe
