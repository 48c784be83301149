"""Computing the routed experts at decode time: each selected expert's weights read once.

At batch 1 a Mixtral-8x7B-shaped layer needs two of its eight experts per token; transformers'
fused-expert paths either gather those experts' weights into a new tensor (``batched_mm``) or
run grouped GEMMs over mostly empty groups (``grouped_mm``). :func:`routed_experts_forward`
reads the expert index on the device and streams only the selected rows (a Triton kernel on
CUDA, a torch loop elsewhere), with no host synchronisation, so a decode step stays one
captured graph.

Experts can be stored in 4 bits (:func:`quantize_int4`: group-wise affine codes, HQQ's format),
all or some of a layer's (:func:`quantize_experts`, :class:`MixedExperts`), and decode through
the same path (a 4-bit Triton kernel that unpacks in registers). Experts a precision plan
leaves in host memory are copied into cache rows on use, computed on the CPU, or read there in
place by the same kernels across the host bus (:func:`apply_precision_plan`).

It plugs in through transformers' experts-implementation registry under the name
``"moelab_routed"``: any model whose experts module is built with
``@use_experts_implementation`` (Mixtral, OLMoE, ...) and a :class:`ConsolidatedMoE`'s live
model (whose pool rows the index tables pick) use it after :func:`use_routed_experts`.

Examples
--------
>>> model = use_routed_experts(model)  # doctest: +SKIP
>>> model.config._experts_implementation  # doctest: +SKIP
'moelab_routed'
"""

from __future__ import annotations

from torch import nn
from transformers.integrations.moe import ALL_EXPERTS_FUNCTIONS

from moelab.experts._int4 import Int4Experts, quantize_int4
from moelab.experts._mixed import (
    FUSED_MATRICES,
    MixedExperts,
    apply_precision_plan,
    quantize_experts,
)
from moelab.experts._routed import (
    MAX_ROUTED_ASSIGNMENTS,
    host_linear,
    routed_experts_forward,
    routed_linear,
    routed_linear_int4,
    routed_linear_mixed,
    routed_linear_pool,
)
from moelab.experts._triton import (
    Tiles,
    block_sizes,
    routed_gemv,
    routed_gemv_int4,
    triton_available,
)

__all__ = [
    "FUSED_MATRICES",
    "MAX_ROUTED_ASSIGNMENTS",
    "ROUTED",
    "Int4Experts",
    "MixedExperts",
    "Tiles",
    "apply_precision_plan",
    "block_sizes",
    "host_linear",
    "quantize_experts",
    "quantize_int4",
    "reads_routing_on_host",
    "routed_experts_forward",
    "routed_gemv",
    "routed_gemv_int4",
    "routed_linear",
    "routed_linear_int4",
    "routed_linear_mixed",
    "routed_linear_pool",
    "triton_available",
    "use_routed_experts",
]

#: The name the routed path is registered under in transformers' ``ExpertsInterface``.
ROUTED = "moelab_routed"
ALL_EXPERTS_FUNCTIONS.register(ROUTED, routed_experts_forward)


def reads_routing_on_host(model: nn.Module) -> bool:
    """Whether a forward of ``model`` reads the routing on the host to serve some experts
    (copied in from host memory or computed there), so that it cannot be captured as a graph.

    Examples
    --------
    >>> from torch import nn
    >>> reads_routing_on_host(nn.Linear(2, 2))
    False
    """
    return any(
        isinstance(weight, MixedExperts) and bool(weight.host_experts)
        for module in model.modules()
        for weight in (getattr(module, "gate_up_proj", None), getattr(module, "down_proj", None))
    )


def use_routed_experts(model: nn.Module) -> nn.Module:
    """Switch a transformers MoE model to the routed experts path, in place.

    Parameters
    ----------
    model : PreTrainedModel
        A model whose experts support transformers' experts implementations (for a
        :class:`~moelab.reconfigure.ConsolidatedMoE`, pass its ``.model``).

    Returns
    -------
    PreTrainedModel
        ``model``.

    Raises
    ------
    ValueError
        For a model whose experts cannot switch implementation (e.g. one module per expert).
    """
    from moelab.families import detect_family

    family = detect_family(model)
    if not hasattr(model, "set_experts_implementation") or family.expert_layout != "fused":
        raise ValueError(
            f"{type(model).__name__} keeps one module per expert; the routed path reads fused "
            f"expert weights (Mixtral, OLMoE)"
        )
    model.set_experts_implementation(ROUTED)
    return model
