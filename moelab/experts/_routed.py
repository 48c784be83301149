"""The routed-expert step for decoding: only the selected experts' weights, each read once.

:func:`routed_linear` is a torch custom op (``moelab::routed_linear``), so captured graphs and
``torch.compile(fullgraph=True)`` treat it as one opaque call: on CUDA with Triton it is the
kernel of :mod:`moelab.experts._triton`; elsewhere a torch loop over the distinct experts
selected (one ``F.linear`` each on a view of its weights).

:func:`routed_experts_forward` is an experts implementation in transformers' sense (the
signature of ``ExpertsInterface`` functions): gate-up projection, gating, down projection and
the routing-weighted sum, through :func:`routed_linear`. Steps with more (token, expert)
assignments than :data:`MAX_ROUTED_ASSIGNMENTS` (prefill) go to ``grouped_mm``, which reads each
expert once for all its tokens; so do layouts the kernel does not read (transposed weights,
biases, experts without a gate, a post-expert norm, expert parallelism), and steps that record
gradients (the routed ops are for inference and have no backward).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from moelab.experts._int4 import Int4Experts
from moelab.experts._mixed import MixedExperts
from moelab.experts._triton import routed_gemv, routed_gemv_int4, triton_available

__all__ = [
    "MAX_ROUTED_ASSIGNMENTS",
    "host_linear",
    "routed_experts_forward",
    "routed_linear",
    "routed_linear_int4",
    "routed_linear_mixed",
    "routed_linear_pool",
]

#: Most (token, expert) assignments of one step served by the routed path: batch 8 at top-2.
MAX_ROUTED_ASSIGNMENTS = 16


@torch.library.custom_op("moelab::routed_linear", mutates_args=())
def routed_linear(x: torch.Tensor, weight: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``out[s] = weight[ids[s]] @ x[s]``: each row of ``x`` through the expert it is routed to.

    Parameters
    ----------
    x : Tensor ``[S, K]``
        One row per (token, expert) assignment.
    weight : Tensor ``[E, N, K]``
        The fused expert weights (``nn.Linear`` orientation per expert).
    ids : Tensor ``[S]``, integer
        The expert of each row, on ``x``'s device; below 0: none (a row of zeros).

    Returns
    -------
    Tensor ``[S, N]``
        In ``x``'s dtype; products accumulated in float32.

    Examples
    --------
    >>> w = torch.randn(4, 3, 5); x = torch.randn(2, 5); ids = torch.tensor([3, 0])
    >>> torch.allclose(routed_linear(x, w, ids), torch.stack([w[3] @ x[0], w[0] @ x[1]]))
    True
    """
    if x.is_cuda and weight.stride(-1) == 1 and triton_available():
        return routed_gemv(x, weight, ids)
    return _routed_linear_torch(x, weight, ids)


@routed_linear.register_fake
def _(x: torch.Tensor, weight: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    return x.new_empty((x.shape[0], weight.shape[1]))


def _routed_linear_torch(x: torch.Tensor, weight, ids: torch.Tensor) -> torch.Tensor:
    # Reads the routing on the host: the path for CPUs (and GPUs without Triton, uncaptured).
    # ``weight`` is a dense [E, N, K] tensor or an Int4Experts (dequantized per expert used).
    out = x.new_zeros((x.shape[0], weight.shape[1]))
    for expert in ids.unique().tolist():
        if expert < 0:
            continue
        rows = (ids == expert).nonzero().flatten()
        matrix = weight[expert] if isinstance(weight, torch.Tensor) else weight.dequantize(expert)
        out[rows] = F.linear(x[rows].float(), matrix.float()).to(out.dtype)
    return out


@torch.library.custom_op("moelab::routed_linear_int4", mutates_args=())
def routed_linear_int4(
    x: torch.Tensor,
    packed: torch.Tensor,
    scale: torch.Tensor,
    zero: torch.Tensor,
    ids: torch.Tensor,
    group_size: int,
) -> torch.Tensor:
    """:func:`routed_linear` over 4-bit experts (the fields of an :class:`Int4Experts`).

    Parameters
    ----------
    x : Tensor ``[S, K]``
    packed, scale, zero : Tensor
        ``Int4Experts.packed`` ``[E, N, K/2]``, ``.scale`` and ``.zero`` ``[E, N, K/G]``.
    ids : Tensor ``[S]``
        Row of each assignment; below 0: none (a row of zeros).
    group_size : int
        ``G``.

    Returns
    -------
    Tensor ``[S, N]`` in ``x``'s dtype.
    """
    weights = Int4Experts(packed, scale, zero, group_size)
    if x.is_cuda and triton_available():
        return routed_gemv_int4(x, weights, ids)
    return _routed_linear_torch(x, weights, ids)


@routed_linear_int4.register_fake
def _(x, packed, scale, zero, ids, group_size):  # noqa: ANN001, ANN202
    return x.new_empty((x.shape[0], packed.shape[1]))


def routed_linear_mixed(x: torch.Tensor, weight: MixedExperts, ids: torch.Tensor) -> torch.Tensor:
    """:func:`routed_linear` over a layer whose experts are in several pools (full-precision and
    4-bit, on the device or read in place from host memory).

    Each pool's kernel runs over every assignment and writes zeros for the other pools', so
    the sum is every assignment through its own expert. Host experts that are copied in (if
    any) go to their pool's cache rows first, at most that many at a time; those computed on
    the host are computed there.
    """
    if weight.host_experts:
        return _with_host_experts(x, weight, ids)
    return _sum_of_pools(x, weight, ids)


def routed_linear_pool(
    x: torch.Tensor, weights: torch.Tensor | Int4Experts, rows: torch.Tensor
) -> torch.Tensor:
    """:func:`routed_linear` or :func:`routed_linear_int4`, as ``weights`` are stored.

    Parameters
    ----------
    x : Tensor ``[S, K]``
    weights : Tensor ``[E, N, K]`` or Int4Experts
        One pool of experts (on the device, or read in place from host memory).
    rows : Tensor ``[S]``
        Row of each assignment in the pool; below 0: none (a row of zeros).

    Returns
    -------
    Tensor ``[S, N]`` in ``x``'s dtype.
    """
    if isinstance(weights, Int4Experts):
        q = weights
        return routed_linear_int4(x, q.packed, q.scale, q.zero, rows, q.group_size)
    return routed_linear(x, weights, rows)


def _sum_of_pools(x: torch.Tensor, weight: MixedExperts, ids: torch.Tensor) -> torch.Tensor:
    """Every pool the kernels read in place, summed (None when the layer has none)."""
    out = None
    for weights, rows in weight.pools():
        part = routed_linear_pool(x, weights, rows[ids])
        out = part if out is None else out + part
    return out


def _routable(experts: nn.Module) -> bool:
    """Whether the kernel reads this layout: [E, N, K] weights, a gate, no bias or extras."""
    return (
        getattr(experts, "has_gate", True)
        and not getattr(experts, "has_bias", False)
        and not getattr(experts, "is_transposed", False)
        and not getattr(experts, "has_post_expert_norm", False)
        and not getattr(experts, "_is_expert_parallel", False)
        and getattr(experts, "is_concatenated", True)
        and hasattr(experts, "gate_up_proj")
        and hasattr(experts, "down_proj")
    )


def routed_experts_forward(
    self: nn.Module,
    hidden_states: torch.Tensor,
    top_k_index: torch.Tensor,
    top_k_weights: torch.Tensor,
) -> torch.Tensor:
    """A transformers experts implementation that reads only the routed experts' weights.

    Parameters
    ----------
    self : nn.Module
        A fused experts module (``gate_up_proj`` ``[E, 2F, H]``, ``down_proj`` ``[E, H, F]``).
    hidden_states : Tensor ``[T, H]``
    top_k_index : Tensor ``[T, k]``
        Experts (pool rows in a consolidated model) of each token.
    top_k_weights : Tensor ``[T, k]``
        Their routing weights.

    Returns
    -------
    Tensor ``[T, H]``
    """
    n_tokens, top_k = top_k_index.shape
    mixed = isinstance(self.gate_up_proj, MixedExperts)  # only this path reads those pools
    # The routed ops have no backward: training steps take grouped_mm.
    training = torch.is_grad_enabled() and not mixed and self.gate_up_proj.requires_grad
    if not mixed and (
        top_k_index.numel() > MAX_ROUTED_ASSIGNMENTS or not _routable(self) or training
    ):
        from transformers.integrations.moe import ALL_EXPERTS_FUNCTIONS

        grouped = ALL_EXPERTS_FUNCTIONS["grouped_mm"]
        return grouped(self, hidden_states, top_k_index, top_k_weights)
    ids = top_k_index.reshape(-1)
    x = hidden_states.repeat_interleave(top_k, dim=0)  # one row per assignment
    linear = routed_linear_mixed if mixed else routed_linear
    gated = self._apply_gate(linear(x, self.gate_up_proj, ids))
    out = linear(gated, self.down_proj, ids)
    weighted = out * top_k_weights.reshape(-1, 1)
    # Sum over k in float32, as transformers' batched path does.
    return weighted.view(n_tokens, top_k, -1).float().sum(dim=1).to(hidden_states.dtype)


def host_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T`` computed where ``weight`` lives (host memory), ``x`` moved there and back.

    Parameters
    ----------
    x : Tensor ``[S, K]``
        On the model's device.
    weight : Tensor ``[N, K]``
        One expert's matrix in host memory.

    Returns
    -------
    Tensor ``[S, N]`` on ``x``'s device, in its dtype.
    """
    out = F.linear(x.to(weight.device, weight.dtype), weight)
    return out.to(x.device, x.dtype, non_blocking=True)


def _with_host_experts(x: torch.Tensor, weight: MixedExperts, ids: torch.Tensor) -> torch.Tensor:
    # Reads the routing on the host (which host experts are needed): not capturable.
    if weight.host_compute:
        return _computing_host_experts(x, weight, ids)
    used = ids.unique().tolist()
    # Host experts of each precision in turns of as many as their pool has cache rows; the
    # first turn also runs the resident experts, each later one only the experts it copied in.
    turns = []
    for pool, table, size, quantized in (
        (weight.host, weight.dense_rows, weight.cache_rows, False),
        (weight.host_int4, weight.int4_rows, weight.int4_cache_rows, True),
    ):
        # Experts already in the rows first: a copy then never evicts one this call uses.
        cached = set(weight.cached(quantized))
        wanted = sorted((e for e in used if e in pool), key=lambda e: e not in cached)
        size = max(size, 1)
        turns.append((table, [wanted[i : i + size] for i in range(0, len(wanted), size)]))
    out = None
    for turn in range(max(1, *(len(groups) for _, groups in turns))):
        for (table, groups), pool in zip(turns, (weight.dense, weight.int4)):
            if pool is None or (turn and turn >= len(groups)):
                continue
            rows = table.clone() if turn == 0 else torch.full_like(table, -1)
            for expert in groups[turn] if turn < len(groups) else ():
                rows[expert] = weight.fetch(expert)
            part = routed_linear_pool(x, pool, rows[ids])
            out = part if out is None else out + part
    for pool, table in weight.pools(streamed_only=True):  # read in place: no turns
        part = routed_linear_pool(x, pool, table[ids])
        out = part if out is None else out + part
    return out


def _computing_host_experts(
    x: torch.Tensor, weight: MixedExperts, ids: torch.Tensor
) -> torch.Tensor:
    # The resident pools over every assignment (host experts' rows are -1 there: zeros), then
    # each host expert's assignments computed on the CPU, where its weights live.
    resident = _sum_of_pools(x, weight, ids)
    out = x.new_zeros((x.shape[0], weight.host_shape[0])) if resident is None else resident
    for expert in ids.unique().tolist():
        if expert in weight.host:
            rows = (ids == expert).nonzero().flatten()
            out[rows] += host_linear(x[rows], weight.host[expert])
    return out
