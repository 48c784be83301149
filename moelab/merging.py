"""Merging baselines: one model for N fine-tuned variants, to compare with consolidation.

Merging serves every tenant with one set of weights: the memory of one model, but every tenant
loses some of what its fine-tune learned. Methods (a registry; see :func:`available_merge_methods`):

``"average"``
    parameter average of the variants (the serving paper's baseline).
``"task_arithmetic"``
    ``base + lambda * sum_i (variant_i - base)`` (Ilharco et al., 2023).
``"ties"``
    trim each task vector to its largest ``density`` share of entries, elect a sign per entry
    by the summed deltas, average the deltas that agree, scale by ``lambda`` (Yadav et al., 2023).
``"dare"``
    drop each delta entry with probability ``1 - density``, rescale the survivors, and average
    (DARE, Yu et al., 2024, in mergekit's ``dare_linear`` form).

Task arithmetic, TIES and DARE run mergekit's own tensor code (``merge_group`` of its registered
``task_arithmetic``, ``ties`` and ``dare_linear`` methods), tensor by tensor; expert matrices
are merged one expert at a time, as mergekit sees them in the original per-expert checkpoints.
mergekit comes with the ``merging`` extra (``pip install 'moe-sr-lab[merging]'``); without it
these three methods raise :class:`~moelab.errors.MissingExtraError` and ``"average"`` still works.

The serving paper's ablation, consolidation without reconfiguration (every tenant served with
one tenant's non-expert set), is :func:`without_reconfiguration`.

Examples
--------
>>> merged = merge_models([a, b, c], "ties", base=base, density=0.5)
>>> merged
MoEModel(name='MixtralForCausalLM', family='mixtral', moe_layers=2, experts=4)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import torch

from labcore.checks import check_callable, check_name
from labcore.registry import Registry
from moelab.consolidation import ConsolidationPlan, check_same_shapes
from moelab.extras import require
from moelab.loading import MoEModel, load_moe

__all__ = [
    "MergeMethod",
    "MergeMethodName",
    "available_merge_methods",
    "get_merge_method",
    "merge_models",
    "merge_tensors",
    "register_merge_method",
    "without_reconfiguration",
]

MergeMethodName = Literal["average", "task_arithmetic", "ties", "dare"]
"""Names of the built-in merge methods."""


@dataclass(frozen=True)
class MergeMethod:
    """One way to merge N variants' tensors into one.

    Parameters
    ----------
    name : str
        Registry name.
    merge : callable
        ``merge(base, variants, **params) -> Tensor``; ``base`` is None for methods that do not
        need one; ``variants`` is a list of tensors of one shape.
    needs_base : bool
        Whether a base model is required.
    defaults : mapping of str to value
        Default parameters; also the only parameter names accepted.
    description : str
        One line, with the defaults' rationale.
    requires : tuple of str
        Optional modules ``merge`` imports (e.g. ``("mergekit",)``); :func:`merge_models` and
        :func:`merge_tensors` import them before any work, so a missing extra fails at once.

    Raises
    ------
    ValueError
        If ``name`` is empty or ``merge`` not callable.
    TypeError
        If ``requires`` is not a sequence of module names (a bare str included).
    """

    name: str
    merge: Callable[..., torch.Tensor] = field(repr=False)
    needs_base: bool
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    requires: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_name(self.name, "MergeMethod.name")
        check_callable(self.merge, "MergeMethod.merge")
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))
        if isinstance(self.requires, str) or not all(isinstance(m, str) for m in self.requires):
            raise TypeError(
                f"MergeMethod.requires must be a tuple of module names, e.g. ('mergekit',), "
                f"got {self.requires!r}"
            )
        object.__setattr__(self, "requires", tuple(self.requires))

    def resolve(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overridden by ``params``.

        Raises
        ------
        ValueError
            A parameter this method does not take; the message lists the accepted ones.
        """
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"merge method {self.name!r} takes parameters {sorted(self.defaults) or 'none'}; "
                f"got unknown {unknown}"
            )
        return {**self.defaults, **params}

    def check_installed(self) -> None:
        """Import the optional modules in ``requires``.

        Raises
        ------
        MissingExtraError
            One is not installed; the message names the extra that installs it.
        """
        for module in self.requires:
            require(module, f"merge method {self.name!r}")


def _average(base: torch.Tensor | None, variants: Sequence[torch.Tensor]) -> torch.Tensor:
    # A plain mean; accumulated in float32 so bf16 variants do not lose the low bits.
    stacked = torch.stack([v.to(torch.float32) for v in variants])
    return stacked.mean(dim=0).to(variants[0].dtype)


def _mergekit_group(
    method_name: str, base: torch.Tensor, variants: Sequence[torch.Tensor], **parameters: Any
) -> torch.Tensor:
    purpose = f"mergekit's {method_name!r} merge"
    registry = require("mergekit.merge_methods.registry", purpose)
    tensor_group = require("mergekit.merge_methods.base", purpose).TensorGroup
    group = tensor_group.from_tensors([base, *variants], base_index=0)
    ids = range(1, len(variants) + 1)
    weight, density = parameters.pop("weight"), parameters.pop("density", 1.0)
    return registry.get(method_name).merge_group(
        group,
        int8_mask=False,
        weight={i: weight for i in ids},
        density={i: density for i in ids},
        **parameters,
    )


def _task_arithmetic(
    base: torch.Tensor, variants: Sequence[torch.Tensor], *, lambda_: float
) -> torch.Tensor:
    return _mergekit_group(
        "task_arithmetic",
        base,
        variants,
        weight=1.0,
        normalize=False,
        rescale=False,
        **{"lambda": lambda_},
    )


def _ties(
    base: torch.Tensor, variants: Sequence[torch.Tensor], *, density: float, lambda_: float
) -> torch.Tensor:
    # normalize=True (mergekit's TIES default) divides by the weight of the agreeing deltas:
    # the "disjoint mean" of the TIES paper.
    return _mergekit_group(
        "ties",
        base,
        variants,
        weight=1.0,
        density=density,
        normalize=True,
        rescale=False,
        **{"lambda": lambda_},
    )


def _dare(
    base: torch.Tensor, variants: Sequence[torch.Tensor], *, density: float, rescale: bool
) -> torch.Tensor:
    # Weights 1/N: the mean of the sparsified, rescaled task vectors added to the base.
    n = len(variants)
    return _mergekit_group(
        "dare_linear",
        base,
        variants,
        weight=1.0 / n,
        density=density,
        normalize=False,
        rescale=rescale,
        **{"lambda": 1.0},
    )


_METHODS: Registry[MergeMethod] = Registry(
    "merge method", plural="methods", duplicate_hint="pick another name", item_type=MergeMethod
)


#: Public faces of the registry: ``register_merge_method(method)``,
#: ``available_merge_methods()`` (sorted names), ``get_merge_method(name_or_method)``.
register_merge_method = _METHODS.add_named
available_merge_methods = _METHODS.names
get_merge_method = _METHODS.resolve


for _method in (
    MergeMethod(
        "average",
        lambda base, variants: _average(base, variants),
        needs_base=False,
        description="parameter average of the variants",
    ),
    MergeMethod(
        "task_arithmetic",
        _task_arithmetic,
        needs_base=True,
        defaults={"lambda_": 0.5},
        description="base + lambda * sum of task vectors; lambda 0.5 lies between the mean "
        "(1/N) and the sum (1) of the task vectors; not tuned",
        requires=("mergekit",),
    ),
    MergeMethod(
        "ties",
        _ties,
        needs_base=True,
        defaults={"density": 0.5, "lambda_": 1.0},
        description="TIES: keep the top 50% of each task vector, elect signs, disjoint mean "
        "(mergekit's example settings)",
        requires=("mergekit",),
    ),
    MergeMethod(
        "dare",
        _dare,
        needs_base=True,
        defaults={"density": 0.5, "rescale": True},
        description="DARE: drop half of each task vector at random, rescale, average "
        "(mergekit dare_linear)",
        requires=("mergekit",),
    ),
):
    register_merge_method(_method)
del _method


def merge_tensors(
    method: MergeMethodName | str | MergeMethod,
    variants: Sequence[torch.Tensor],
    base: torch.Tensor | None = None,
    *,
    seed: int = 0,
    **params: Any,
) -> torch.Tensor:
    """Merge one tensor of N variants.

    Parameters
    ----------
    method : str or MergeMethod
        A name from :func:`available_merge_methods`.
    variants : sequence of Tensor
        The variants' tensors (one shape).
    base : Tensor, optional
        The base model's tensor; required by methods with ``needs_base``.
    seed : int, default 0
        Seeds the random drop of ``"dare"`` (the global RNG is restored afterwards).
    **params
        Method parameters (see the method's ``defaults``).

    Returns
    -------
    Tensor
        The merged tensor, in the variants' dtype.

    Raises
    ------
    ValueError
        Unknown method or parameter, no variants, shapes that differ, or a missing base.
    MissingExtraError
        The method needs mergekit and the ``merging`` extra is not installed.

    Examples
    --------
    >>> merge_tensors("average", [torch.tensor([1.0, 3.0]), torch.tensor([3.0, 5.0])])
    tensor([2., 4.])
    """
    spec = get_merge_method(method)
    resolved = spec.resolve(params)
    spec.check_installed()
    if not variants:
        raise ValueError("merge_tensors needs at least one variant tensor")
    shapes = {tuple(v.shape) for v in variants} | (
        {tuple(base.shape)} if base is not None else set()
    )
    if len(shapes) != 1:
        raise ValueError(f"merge_tensors: variant and base shapes differ: {sorted(shapes)}")
    if spec.needs_base and base is None:
        raise ValueError(f"merge method {spec.name!r} needs the base model's tensor; pass base=...")
    variants = [v.detach() for v in variants]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if spec.needs_base:
            return spec.merge(base.detach(), variants, **resolved)
        return spec.merge(None, variants, **resolved)


def merge_models(
    models: Mapping[str, Any] | Sequence[Any],
    method: MergeMethodName | str | MergeMethod = "average",
    *,
    base: Any = None,
    seed: int = 0,
    progress: bool = False,
    **params: Any,
) -> MoEModel:
    """Merge N fine-tuned variants into one model.

    Every floating-point parameter is merged; expert matrices one expert at a time (as
    mergekit merges the per-expert tensors of original checkpoints), the others tensor by
    tensor. Tied parameters are merged once.

    Parameters
    ----------
    models : list or dict of MoEModel, transformers model or checkpoint folder
        The variants (N >= 1), fine-tunes of one base.
    method : str or MergeMethod, default "average"
        A name from :func:`available_merge_methods`.
    base : MoEModel, transformers model or folder, optional
        The base model; required by task arithmetic, TIES and DARE.
    seed : int, default 0
        Seeds DARE's random drop (each tensor gets ``seed + its index``).
    progress : bool, default False
        Show a progress bar over tensors.
    **params
        Method parameters, e.g. ``density=0.5``, ``lambda_=1.0``.

    Returns
    -------
    MoEModel
        A new model (the variants are not changed), in eval mode, with the first variant's
        tokenizer.

    Raises
    ------
    ValueError
        Unknown method or parameter, no variants, or a missing base.
    IncompatibleModelsError
        Variants (or base) of different families or shapes.
    MissingExtraError
        The method needs mergekit and the ``merging`` extra is not installed.

    Examples
    --------
    With ``lambda_=0.5``, task arithmetic of two variants is their average:

    >>> merged = merge_models([a, b], "task_arithmetic", base=base, lambda_=0.5)
    >>> torch.allclose(merged.model.lm_head.weight, (a.lm_head.weight + b.lm_head.weight) / 2)
    True
    """
    from tqdm.auto import tqdm

    spec = get_merge_method(method)
    resolved = spec.resolve(params)
    spec.check_installed()
    variants = [load_moe(m) for m in (models.values() if isinstance(models, Mapping) else models)]
    if not variants:
        raise ValueError("merge_models needs at least one variant")
    if spec.needs_base and base is None:
        raise ValueError(f"merge method {spec.name!r} needs the base model; pass base=...")
    base_moe = load_moe(base) if base is not None else None
    everyone = variants + ([base_moe] if base_moe is not None else [])
    if len(everyone) > 1:
        check_same_shapes(everyone, [m.name for m in everyone])
    first = variants[0]
    merged_model = copy.deepcopy(first.model).eval()
    merged = MoEModel(model=merged_model, family=first.family, tokenizer=first.tokenizer)
    family = first.family
    expert_names = set(family.expert_parameters(first.model))
    jobs: list[tuple[Callable[[MoEModel], torch.Tensor], Callable[[torch.Tensor], None]]] = []
    for name, param in merged_model.named_parameters():
        if name in expert_names or not param.is_floating_point():
            continue
        jobs.append((lambda m, name=name: m.model.get_parameter(name), param))
    for slot in family.expert_slots(merged_model):
        for matrix, target in family.get_expert(merged_model, slot).items():
            jobs.append((lambda m, slot=slot, matrix=matrix: m.get_expert(slot)[matrix], target))
    with torch.no_grad():
        for index, (read, target) in enumerate(
            tqdm(jobs, desc=f"merge ({spec.name})", disable=not progress)
        ):
            value = merge_tensors(
                spec,
                [read(v) for v in variants],
                read(base_moe) if spec.needs_base else None,
                seed=seed + index,
                **resolved,
            )
            target.copy_(value)
    return merged


def without_reconfiguration(
    plan: ConsolidationPlan,
    non_expert_from: str | None = None,
    *,
    device: str | torch.device | None = None,
) -> Any:
    """The serving paper's ablation: consolidation without runtime reconfiguration.

    The expert pool and every tenant's expert mapping are those of ``plan``, but all tenants
    are served with one tenant's non-expert set (embeddings, attention, norms, router,
    lm_head), so only one non-expert set is stored.

    Parameters
    ----------
    plan : ConsolidationPlan
        The consolidation plan.
    non_expert_from : str, optional
        Whose non-expert set serves everyone; the first tenant by default.
    device : str or torch.device, optional
        As in :meth:`ConsolidatedMoE.from_plan`.

    Returns
    -------
    ConsolidatedMoE
        With ``non_expert_from`` set; ``activate(t)`` changes only the expert mapping.

    Raises
    ------
    ValueError
        Unknown tenant.
    """
    from moelab.reconfigure import ConsolidatedMoE

    return ConsolidatedMoE.from_plan(
        plan, device=device, non_expert_from=non_expert_from or plan.tenants[0]
    )
