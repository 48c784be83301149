"""The routed GEMV as a Triton kernel: each selected expert's rows read once, no gather copy.

transformers' ``batched_mm`` gathers the selected experts' weights into a new tensor before a
batched matmul (every weight read twice and written once), and ``grouped_mm`` launches grouped
GEMMs over mostly empty groups. At batch 1 the work is a handful of matrix-vector products, so
this kernel reads the expert index of each (token, expert) assignment on the device and streams
that expert's rows straight from the fused weight tensor: one read of each selected weight, no
host synchronisation, safe inside a captured CUDA graph. No maintained library ships such a
kernel for transformers' fused expert layout, hence this one.

Triton is imported lazily: a machine without it (or without CUDA) uses the torch path of
:mod:`moelab.experts._routed`. With ``TRITON_INTERPRET=1`` the same kernel runs on the CPU
(how the tests check it without a GPU).
"""

from __future__ import annotations

import functools
from typing import Any

import torch


@functools.cache
def _kernel() -> Any:
    import triton
    import triton.language as tl

    @triton.jit
    def routed_gemv(
        x_ptr,
        w_ptr,
        ids_ptr,
        out_ptr,
        stride_we,
        stride_wn,
        N: tl.constexpr,
        K: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr,
    ):
        # Program (s, nb): rows nb*BLOCK_N.. of expert ids[s] times x[s], accumulated in fp32.
        s = tl.program_id(0)
        nb = tl.program_id(1)
        expert = tl.load(ids_ptr + s).to(tl.int64)
        rows = nb * BLOCK_N + tl.arange(0, BLOCK_N)
        acc = tl.zeros((BLOCK_N,), dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            cols = k0 + tl.arange(0, BLOCK_K)
            x = tl.load(x_ptr + s * K + cols, mask=cols < K, other=0.0).to(tl.float32)
            w = tl.load(
                w_ptr + expert * stride_we + rows[:, None].to(tl.int64) * stride_wn + cols[None, :],
                mask=(rows[:, None] < N) & (cols[None, :] < K),
                other=0.0,
            ).to(tl.float32)
            acc += tl.sum(w * x[None, :], axis=1)
        tl.store(out_ptr + s * N + rows, acc.to(out_ptr.dtype.element_ty), mask=rows < N)

    return routed_gemv


def triton_available() -> bool:
    """Whether Triton can be imported here."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def block_sizes(n_assignments: int, rows: int, cols: int) -> tuple[int, int]:
    """Tile sizes: enough programs to fill a large GPU, 16-byte loads along the rows.

    Parameters
    ----------
    n_assignments : int
        (token, expert) pairs.
    rows, cols : int
        Output features and input features of one expert's matrix.

    Returns
    -------
    (BLOCK_N, BLOCK_K)
    """
    block_n = 64
    # Fewer rows per program where few assignments would leave the GPU's SMs idle (e.g. the
    # down projection at batch 1: 2 x 4096 rows).
    while block_n > 8 and n_assignments * -(-rows // block_n) < 1024:
        block_n //= 2
    block_k = min(256, max(16, 1 << (max(cols, 1) - 1).bit_length()))
    return block_n, block_k


def routed_gemv(x: torch.Tensor, weight: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``out[s] = weight[ids[s]] @ x[s]`` with the Triton kernel.

    Parameters
    ----------
    x : Tensor ``[S, K]``
    weight : Tensor ``[E, N, K]``
        Contiguous along K (transformers' fused layout).
    ids : Tensor ``[S]``
        Expert of each row of ``x``.

    Returns
    -------
    Tensor ``[S, N]`` in ``x``'s dtype.
    """
    n_rows, n_cols = weight.shape[1], weight.shape[2]
    out = torch.empty((x.shape[0], n_rows), dtype=x.dtype, device=x.device)
    block_n, block_k = block_sizes(x.shape[0], n_rows, n_cols)
    grid = (x.shape[0], -(-n_rows // block_n))
    _kernel()[grid](
        x.contiguous(),
        weight,
        ids.contiguous(),
        out,
        weight.stride(0),
        weight.stride(1),
        N=n_rows,
        K=n_cols,
        BLOCK_N=block_n,
        BLOCK_K=block_k,
    )
    return out
