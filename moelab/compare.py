"""Quality against memory: consolidation, its ablation and the merging baselines, on a zoo.

:func:`compare_methods` serves the first N variants of a zoo (N = 2, 3, 4) with every method
and scores each tenant on its own held-out domain or task. Methods (a registry; see
:func:`available_serving_methods`):

``"separate"``
    N separate models, each tenant on its own fine-tune (the reference: best quality, most memory).
``"consolidated"``
    :class:`~moelab.reconfigure.ConsolidatedMoE` with a share of the expert slots shared, one
    non-expert set per tenant (runtime reconfiguration).
``"without_reconfiguration"``
    the same pool, every tenant served with the first tenant's non-expert set (the paper's ablation).
``"average"``, ``"task_arithmetic"``, ``"ties"``, ``"dare"``
    one merged model (:func:`moelab.merging.merge_models`), the memory of a single model.

Every row records the method's true total memory: measured resident bytes of the consolidated
models (:meth:`~moelab.reconfigure.ConsolidatedMoE.resident_bytes`), parameter storage of the
others. Results are tidy (one row per configuration and tenant) and resumable: with a
``results`` path, each finished configuration is appended atomically and skipped next time.

Examples
--------
>>> table = compare_methods(load_zoo("switch-tiny"), results="results/switch.csv")  # doctest: +SKIP
>>> summarize(table)                                                             # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from torch import nn

from labcore.atomic import atomic_path
from labcore.registry import Registry
from moelab.consolidation import plan_consolidation
from moelab.loading import MoEModel, load_moe
from moelab.merging import (
    available_merge_methods,
    get_merge_method,
    merge_models,
    without_reconfiguration,
)
from moelab.quality import QualityMetric, available_quality_metrics, get_quality_metric
from moelab.reconfigure import ConsolidatedMoE, storage_bytes

if TYPE_CHECKING:
    from moelab.zoo import Zoo

__all__ = [
    "COLUMNS",
    "DEFAULT_MERGE_SETTINGS",
    "DEFAULT_METHODS",
    "QualityMetric",
    "ServingMethod",
    "available_quality_metrics",
    "available_serving_methods",
    "claims_table",
    "compare_methods",
    "get_quality_metric",
    "get_serving_method",
    "register_serving_method",
    "summarize",
]

#: Columns of :func:`compare_methods`, in order.
COLUMNS = (
    "config",
    "method",
    "tenants",
    "tenant_set",
    "shared_fraction",
    "owner",
    "n_shared",
    "total_bytes",
    "tenant",
    "metric",
    "quality",
)
DEFAULT_METHODS = (
    "separate",
    "consolidated",
    "without_reconfiguration",
    "average",
    "task_arithmetic",
    "ties",
    "dare",
)
#: Settings of the merging baselines in :func:`compare_methods`: the defaults each merge method
#: registered in :mod:`moelab.merging` declares (task arithmetic lambda 0.5, between the mean and
#: the sum of the task vectors; TIES density 0.5, lambda 1, mergekit's example; DARE density 0.5
#: with rescaling, mergekit's ``dare_linear``), fixed in advance, not tuned on the held-out sets.
DEFAULT_MERGE_SETTINGS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {name: get_merge_method(name).defaults for name in available_merge_methods()}
)


# ======================================================================== serving methods
@dataclass
class _Context:
    """Models of one comparison, loaded once."""

    zoo: Any
    variants: dict[str, MoEModel]
    base: MoEModel
    merge_settings: Mapping[str, Mapping[str, Any]]
    metric: str
    device: Any


@dataclass(frozen=True)
class ServingMethod:
    """A way to serve N tenants.

    Parameters
    ----------
    name : str
        Registry name.
    uses_budget : bool
        Whether it runs once per shared fraction and owner policy (the consolidated methods).
    build : callable
        ``build(context, tenants, shared_fraction, owner) -> (model_for, total_bytes,
        n_shared)``: ``model_for(tenant)`` returns the module that serves that tenant.
    """

    name: str
    uses_budget: bool
    build: Callable[..., tuple[Callable[[str], nn.Module], int, int]] = field(repr=False)


def _model_bytes(model: nn.Module) -> int:
    return storage_bytes(list(model.parameters()))


def _separate(ctx: _Context, tenants: Sequence[str], fraction: float | None, owner: str):
    total = sum(_model_bytes(ctx.variants[t].model) for t in tenants)
    return (lambda t: ctx.variants[t].model), total, 0


def _consolidated_builder(reconfigure: bool):
    def build(ctx: _Context, tenants: Sequence[str], fraction: float | None, owner: str):
        models = {t: ctx.variants[t] for t in tenants}
        n_slots = len(ctx.base.expert_slots())
        plan = plan_consolidation(
            models, round(fraction * n_slots), ctx.metric, owner, unit="slots"
        )
        cmoe = (
            ConsolidatedMoE.from_plan(plan, device=ctx.device)
            if reconfigure
            else without_reconfiguration(plan, tenants[0], device=ctx.device)
        )

        def model_for(tenant: str) -> nn.Module:
            cmoe.activate(tenant)
            return cmoe.model

        return model_for, cmoe.resident_bytes(), plan.n_shared

    return build


def _merge_builder(method: str):
    def build(ctx: _Context, tenants: Sequence[str], fraction: float | None, owner: str):
        spec = get_merge_method(method)
        merged = merge_models(
            [ctx.variants[t] for t in tenants],
            method,
            base=ctx.base if spec.needs_base else None,
            **ctx.merge_settings.get(method, {}),
        )
        return (lambda t: merged.model), _model_bytes(merged.model), 0

    return build


# Registration order is the display order of tables and figures, so names stay unsorted.
_SERVING: Registry[ServingMethod] = Registry("serving method", plural="methods", sort=False)
for _serving in (
    ServingMethod("separate", False, _separate),
    ServingMethod("consolidated", True, _consolidated_builder(True)),
    ServingMethod("without_reconfiguration", True, _consolidated_builder(False)),
    *(
        ServingMethod(name, False, _merge_builder(name))
        for name in ("average", "task_arithmetic", "ties", "dare")
    ),
):
    _SERVING.add(_serving.name, _serving)


#: Public faces of the registry: names in display order, lookup by name, and
#: ``register_serving_method(method, overwrite=False)`` (e.g. to wrap a method in a test).
available_serving_methods = _SERVING.names
get_serving_method = _SERVING.get
register_serving_method = _SERVING.add_named


# ================================================================================ the sweep
def _config_key(method: str, n: int, fraction: float | None, owner: str) -> str:
    if fraction is None:
        return f"{method}|N={n}"
    return f"{method}|N={n}|shared={fraction:g}|owner={owner}"


def _read_results(path: Path | None) -> pd.DataFrame:
    if path is None or not path.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    table = pd.read_csv(path, keep_default_na=False, na_values={"shared_fraction": [""]})
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(
            f"results file {str(path)!r} is not a compare_methods table (missing {missing}); "
            f"pass another path or delete it"
        )
    return table[list(COLUMNS)]


def _check_args(
    zoo: Any,
    tenants: Sequence[int],
    budgets: Sequence[float],
    methods: Sequence[str],
    owners: Sequence[str],
) -> None:
    from moelab.consolidation import get_owner_policy

    for m in methods:
        get_serving_method(m)
    for o in owners:
        get_owner_policy(o)
    n_variants = len(zoo.tasks)
    bad = [
        n
        for n in tenants
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 2 <= n <= n_variants
    ]
    if bad or not tenants:
        raise ValueError(
            f"tenants must be counts in [2, {n_variants}] (zoo {zoo.name!r} has {n_variants} "
            f"variants), got {list(tenants)}"
        )
    if not budgets or any(not 0.0 <= b <= 1.0 for b in budgets):
        raise ValueError(
            f"budgets are shares of the expert slots to share, each in [0, 1]; got {list(budgets)}"
        )


def compare_methods(
    zoo: Zoo,
    tenants: Sequence[int] = (2, 3, 4),
    budgets: Sequence[float] = (1.0, 0.5),
    methods: Sequence[str] = DEFAULT_METHODS,
    *,
    results: str | os.PathLike | None = None,
    quality: str | None = None,
    max_items: int | None = None,
    merge_settings: Mapping[str, Mapping[str, Any]] = DEFAULT_MERGE_SETTINGS,
    metric: str = "l2",
    owner: str | Sequence[str] = "round_robin",
    device: Any = "cpu",
    progress: bool = True,
) -> pd.DataFrame:
    """Per-tenant quality and total memory of every serving method, for 2, 3, 4 tenants.

    The tenants of N are the zoo's first N variants (its build order); each is scored on its
    own held-out domain (perplexity) or task (exact match).

    Parameters
    ----------
    zoo : Zoo
        From :func:`moelab.zoo.load_zoo`.
    tenants : sequence of int, default (2, 3, 4)
        Numbers of tenants.
    budgets : sequence of float, default (1.0, 0.5)
        For the consolidated methods: share of the expert slots to share (1.0 = every slot,
        the smallest configuration; 0.5 = half). Rounded to whole slots.
    methods : sequence of str
        Names from :func:`available_serving_methods`.
    results : path-like, optional
        CSV file: finished configurations found there are skipped, each new one is appended
        atomically (the whole file is rewritten through a temporary file and renamed).
    quality : {"perplexity", "exact_match", "rouge1"}, optional
        Default: the zoo's own metric (perplexity for mixtral-tiny, exact match for switch-tiny).
    max_items : int, optional
        Score only this many held-out chunks or examples per tenant (default: the zoo's setting).
    merge_settings : mapping
        Parameters per merge method (default :data:`DEFAULT_MERGE_SETTINGS`).
    metric : str
        Similarity metric of the consolidation plans.
    owner : str or sequence of str, default "round_robin"
        Owner policy (or policies, each run separately) of the consolidation plans.
    device : str or torch.device
        Where consolidated models are built.
    progress : bool, default True
        Show a progress bar over configurations.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`: one row per configuration and tenant, ``shared_fraction``
        NaN and ``owner`` empty for methods without a budget, ``total_bytes`` the method's
        true total memory.

    Raises
    ------
    ValueError
        Unknown method or metric, tenant counts outside ``[2, number of variants]``, budgets
        outside ``[0, 1]``, or a results file of another shape.

    Examples
    --------
    >>> compare_methods(zoo, tenants=(2,), budgets=(1.0,), methods=("separate", "average"))  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    owners = [owner] if isinstance(owner, str) else list(owner)
    _check_args(zoo, tenants, budgets, methods, owners)
    scorer = get_quality_metric(quality or zoo.manifest["evaluation"]["metric"])
    path = Path(results) if results is not None else None
    table = _read_results(path)
    done = set(table["config"])
    configs = [
        (m, int(n), b, o)
        for n in tenants
        for m in methods
        for b in (budgets if get_serving_method(m).uses_budget else [None])
        for o in (owners if get_serving_method(m).uses_budget else [""])
    ]
    todo = [c for c in configs if _config_key(*c) not in done]
    ctx = _Context(
        zoo=zoo,
        variants={v: load_moe(zoo.load_model(v)) for v in zoo.tasks[: max(tenants)]},
        base=load_moe(zoo.load_model("base")),
        merge_settings=merge_settings,
        metric=metric,
        device=device,
    )
    own_scores: dict[str, float] = {}
    for method, n, fraction, policy in tqdm(
        todo, desc=f"compare ({zoo.name})", disable=not progress
    ):
        names = list(zoo.tasks[:n])
        model_for, total, n_shared = get_serving_method(method).build(ctx, names, fraction, policy)
        rows = []
        for tenant in names:
            if method == "separate" and tenant in own_scores:
                score = own_scores[tenant]  # a tenant's own model scores the same for every N
            else:
                score = scorer.score(zoo, model_for(tenant), tenant, max_items)
                if method == "separate":
                    own_scores[tenant] = score
            rows.append(
                {
                    "config": _config_key(method, n, fraction, policy),
                    "method": method,
                    "tenants": n,
                    "tenant_set": "+".join(names),
                    "shared_fraction": np.nan if fraction is None else float(fraction),
                    "owner": policy,
                    "n_shared": n_shared,
                    "total_bytes": int(total),
                    "tenant": tenant,
                    "metric": scorer.name,
                    "quality": float(score),
                }
            )
        new = pd.DataFrame(rows, columns=list(COLUMNS))
        table = new if table.empty else pd.concat([table, new], ignore_index=True)
        if path is not None:
            with atomic_path(path) as tmp:
                table.to_csv(tmp, index=False)
    keys = {_config_key(*c) for c in configs}
    return table[table["config"].isin(keys)].reset_index(drop=True)


# ============================================================================== summaries
def _label(row: Any) -> str:
    if pd.isna(row.shared_fraction):
        return row.method
    return f"{row.method} ({row.shared_fraction:.0%} shared, {row.owner})"


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Mean per-tenant quality and total memory of each configuration.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`compare_methods`.

    Returns
    -------
    pandas.DataFrame
        One row per configuration: ``label``, ``method``, ``tenants``, ``shared_fraction``,
        ``owner``, ``n_shared``, ``total_mb``, ``metric``, ``mean_quality``.
    """
    keys = ["config", "method", "tenants", "shared_fraction", "owner", "n_shared", "metric"]
    grouped = (
        table.groupby(keys, dropna=False, sort=False)
        .agg(total_bytes=("total_bytes", "first"), mean_quality=("quality", "mean"))
        .reset_index()
    )
    grouped["label"] = [_label(r) for r in grouped.itertuples()]
    grouped["total_mb"] = grouped["total_bytes"] / 1e6
    columns = [
        "label",
        "method",
        "tenants",
        "shared_fraction",
        "owner",
        "n_shared",
        "total_mb",
        "metric",
        "mean_quality",
    ]
    return grouped[columns]


def claims_table(table: pd.DataFrame, *, tolerance: float = 0.05) -> pd.DataFrame:
    """Which of the expected results hold, per number of tenants and owner policy.

    Claims, each on the mean per-tenant quality: (1) consolidation with every slot shared beats
    each merging baseline; (2) consolidation with half of the slots shared stays within
    ``tolerance`` of the separate models (perplexity at most ``1 + tolerance`` times theirs,
    accuracy at least ``1 - tolerance`` times theirs); (3) sharing half of the slots beats
    sharing all of them; (4) with every slot shared, swapping each tenant's non-expert layers
    beats serving every tenant with the owners' (when ``without_reconfiguration`` rows exist).

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`compare_methods` with ``"separate"``, ``"consolidated"`` at budgets 1.0
        and 0.5, and any merging baselines.
    tolerance : float, default 0.05
        Relative tolerance of claim 2.

    Returns
    -------
    pandas.DataFrame
        One row per number of tenants, owner policy and comparison: ``tenants``, ``owner``,
        ``claim``, ``ours``, ``theirs``, ``ratio`` (ours / theirs), ``holds``.

    Raises
    ------
    ValueError
        If the table lacks the configurations a claim needs.
    """
    summary = summarize(table)
    higher = get_quality_metric(summary["metric"].iloc[0]).higher_is_better
    consolidated = summary[summary["method"] == "consolidated"]
    owners = list(dict.fromkeys(consolidated["owner"]))

    def mean(n: int, method: str, fraction: float | None = None, owner: str = "") -> float:
        pick = summary[(summary["tenants"] == n) & (summary["method"] == method)]
        if fraction is not None:
            pick = pick[np.isclose(pick["shared_fraction"], fraction) & (pick["owner"] == owner)]
        if pick.empty:
            where = "" if fraction is None else f" at {fraction:.0%} shared"
            raise ValueError(
                f"claims_table needs {method!r} with {n} tenants{where}; run compare_methods with it"
            )
        return float(pick["mean_quality"].iloc[0])

    def better(ours: float, theirs: float) -> bool:
        return ours > theirs if higher else ours < theirs

    if not owners:
        raise ValueError("claims_table needs 'consolidated' rows; run compare_methods with it")
    rows = []
    baselines = [
        b for b in ("average", "task_arithmetic", "ties", "dare") if b in set(summary["method"])
    ]
    has_without = "without_reconfiguration" in set(summary["method"])
    for n in sorted(summary["tenants"].unique()):
        separate = mean(n, "separate")
        bound = separate * (1 - tolerance) if higher else separate * (1 + tolerance)
        for owner in owners:
            all_shared = mean(n, "consolidated", 1.0, owner)
            for baseline in baselines:
                theirs = mean(n, baseline)
                rows.append(
                    {
                        "tenants": int(n),
                        "owner": owner,
                        "claim": f"all shared beats {baseline}",
                        "ours": all_shared,
                        "theirs": theirs,
                        "holds": better(all_shared, theirs),
                    }
                )
            half = mean(n, "consolidated", 0.5, owner)
            rows.append(
                {
                    "tenants": int(n),
                    "owner": owner,
                    "claim": f"half shared within {tolerance:.0%} of separate",
                    "ours": half,
                    "theirs": separate,
                    "holds": bool(half >= bound if higher else half <= bound),
                }
            )
            rows.append(
                {
                    "tenants": int(n),
                    "owner": owner,
                    "claim": "half shared beats all shared",
                    "ours": half,
                    "theirs": all_shared,
                    "holds": better(half, all_shared),
                }
            )
            if has_without:
                without = mean(n, "without_reconfiguration", 1.0, owner)
                rows.append(
                    {
                        "tenants": int(n),
                        "owner": owner,
                        "claim": "all shared beats without_reconfiguration",
                        "ours": all_shared,
                        "theirs": without,
                        "holds": better(all_shared, without),
                    }
                )
    table = pd.DataFrame(rows, columns=["tenants", "owner", "claim", "ours", "theirs", "holds"])
    table.insert(5, "ratio", table["ours"] / table["theirs"])
    return table
