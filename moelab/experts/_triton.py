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
from typing import Any, NamedTuple

import torch


@functools.cache
def _kernels() -> tuple[Any, Any]:
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
        # Program (s, nb): rows nb*BLOCK_N.. of expert ids[s] times x[s], accumulated in fp32;
        # an id below 0 (an assignment served by another pool) reads nothing and writes zeros.
        s = tl.program_id(0)
        nb = tl.program_id(1)
        expert = tl.load(ids_ptr + s).to(tl.int64)
        rows = nb * BLOCK_N + tl.arange(0, BLOCK_N)
        # Elementwise (not a scalar mask): the same on every Triton version and the interpreter.
        row_ok = (rows < N) & ((rows * 0 + expert) >= 0)
        expert = tl.maximum(expert, 0)
        acc = tl.zeros((BLOCK_N,), dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            cols = k0 + tl.arange(0, BLOCK_K)
            x = tl.load(x_ptr + s * K + cols, mask=cols < K, other=0.0).to(tl.float32)
            w = tl.load(
                w_ptr + expert * stride_we + rows[:, None].to(tl.int64) * stride_wn + cols[None, :],
                mask=row_ok[:, None] & (cols[None, :] < K),
                other=0.0,
            ).to(tl.float32)
            acc += tl.sum(w * x[None, :], axis=1)
        tl.store(out_ptr + s * N + rows, acc.to(out_ptr.dtype.element_ty), mask=rows < N)

    @triton.jit
    def routed_gemv_int4(
        x_ptr,
        q_ptr,
        scale_ptr,
        zero_ptr,
        ids_ptr,
        out_ptr,
        one,
        N: tl.constexpr,
        K: tl.constexpr,
        GROUP: tl.constexpr,
        WORDS: tl.constexpr,
        GROUP_P2: tl.constexpr,
        BLOCK_N: tl.constexpr,
        GROUPS: tl.constexpr,
        EVEN: tl.constexpr,
    ):
        # Program (s, nb) over GROUPS groups per step: a [BLOCK_N, GROUPS * WORDS] tile of
        # 32-bit words (WORDS: GROUP // 8 rounded up to a power of two; EVEN: no padding and
        # whole steps, so the words of a row are contiguous and load as vectors). Nibble i of
        # word w of group g holds column g * GROUP + i * (GROUP // 8) + w, so for each i the
        # words meet contiguous inputs.
        #
        # Each code becomes a float with no int-to-float conversion (a quarter-rate
        # instruction; with it the kernel issued about nine instructions a code): shifted
        # into the top mantissa bits of 1.0 (``one`` is its bit pattern, an argument so that
        # the mask and the OR fuse into one LOP3) it reads 1 + q/16, three instructions a
        # code with the multiply-add. Per row and group, sum((1 + q/16) x) = sum(x) +
        # sum(q x)/16, so sum((q - z) s x) = s (16 part - (16 + z) sum(x)).
        PER: tl.constexpr = GROUP // 8
        COLS: tl.constexpr = GROUPS * WORDS
        N_GROUPS: tl.constexpr = K // GROUP
        s = tl.program_id(0)
        nb = tl.program_id(1)
        expert = tl.load(ids_ptr + s).to(tl.int64)
        rows = nb * BLOCK_N + tl.arange(0, BLOCK_N)
        row_ok = (rows < N) & ((rows * 0 + expert) >= 0)
        expert = tl.maximum(expert, 0)
        row_words = expert * (N * (K // 8)) + rows.to(tl.int64) * (K // 8)
        row_meta = expert * (N * N_GROUPS) + rows.to(tl.int64) * N_GROUPS
        j = tl.arange(0, COLS)
        g = j // WORDS
        w = j % WORDS
        step_groups = tl.arange(0, GROUPS)
        c = tl.arange(0, GROUP_P2)
        acc = tl.zeros((BLOCK_N, GROUPS), dtype=tl.float32)
        for g0 in range(0, N_GROUPS, GROUPS):
            x_at = x_ptr + s * K + (g0 + g) * GROUP + w
            if EVEN:  # contiguous words, no column mask: vector loads
                words = tl.load(
                    q_ptr + row_words[:, None] + (g0 * PER + j)[None, :],
                    mask=row_ok[:, None],
                    other=0,
                )
            else:
                word_ok = ((g0 + g) < N_GROUPS) & (w < PER)
                words = tl.load(
                    q_ptr + row_words[:, None] + ((g0 + g) * PER + w)[None, :],
                    mask=row_ok[:, None] & word_ok[None, :],
                    other=0,
                )
            dot = tl.zeros((BLOCK_N, COLS), dtype=tl.float32)
            for i in tl.static_range(8):
                if EVEN:
                    x = tl.load(x_at + i * PER).to(tl.float32)
                else:
                    x = tl.load(x_at + i * PER, mask=word_ok, other=0.0).to(tl.float32)
                if 4 * i < 19:
                    bits = words << (19 - 4 * i)
                else:
                    bits = words >> (4 * i - 19)
                code = ((bits & 0x780000) | one).to(tl.float32, bitcast=True)  # 1 + q/16
                dot += code * x[None, :]
            part = tl.sum(tl.reshape(dot, (BLOCK_N, GROUPS, WORDS)), axis=2)
            group = g0 + step_groups
            x_sum = tl.sum(
                tl.load(
                    x_ptr + s * K + group[:, None] * GROUP + c[None, :],
                    mask=(group[:, None] < N_GROUPS) & (c[None, :] < GROUP),
                    other=0.0,
                ).to(tl.float32),
                axis=1,
            )
            meta = row_meta[:, None] + group[None, :]
            meta_ok = row_ok[:, None] & (group[None, :] < N_GROUPS)
            scale = tl.load(scale_ptr + meta, mask=meta_ok, other=0.0).to(tl.float32)
            zero = tl.load(zero_ptr + meta, mask=meta_ok, other=0.0).to(tl.float32)
            acc += scale * (16.0 * part - (16.0 + zero) * x_sum[None, :])
        total = tl.sum(acc, axis=1)
        tl.store(out_ptr + s * N + rows, total.to(out_ptr.dtype.element_ty), mask=rows < N)

    return routed_gemv, routed_gemv_int4


def triton_available() -> bool:
    """Whether Triton can be imported here."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


class Tiles(NamedTuple):
    """Launch configuration of a routed GEMV: output rows and input columns per step, warps."""

    block_n: int
    block_k: int
    num_warps: int = 4


def block_sizes(n_assignments: int, rows: int, cols: int, bits: int = 16) -> Tiles:
    """Tile sizes measured best on an H200 at Mixtral-8x7B's expert shapes (batch 1 and 4).

    ``benchmarks/gpu/routed_decode.py`` sweeps them; its JSON holds every time. In bf16, 16 rows
    a program (8 where fewer than 1024 programs would leave streaming multiprocessors idle, e.g.
    the down projection at batch 1: 2 x 4096 rows), 256 input columns per step and 8 warps were
    within 2 % of the best tiles at every shape, where 32-64 rows with 4 warps took 6 % to 3.7x
    as long. In 4 bits, 32 rows (16 where fewer than 512 programs would run), 1024 columns (16
    groups of 64) and 4 warps were within 8 % of the best at every shape; the 16-row, 512-column
    tiles of the bf16 kernel took 1.7-2.2x as long.

    Parameters
    ----------
    n_assignments : int
        (token, expert) pairs.
    rows, cols : int
        Output features and input features of one expert's matrix.
    bits : {16, 4}, default 16
        Weight bits: 16 (bf16/fp16) or 4.

    Returns
    -------
    Tiles
        ``block_k`` counts input columns (for 4-bit weights: half as many bytes; the kernel
        steps over a power-of-two number of whole groups, at least one).

    Raises
    ------
    ValueError
        Bits other than 16 or 4 (no routed kernel reads them).
    """
    if bits not in (16, 4):
        raise ValueError(f"the routed kernels read 16- or 4-bit weights, not {bits}-bit ones")
    if bits == 4:
        block_n = 32 if n_assignments * -(-rows // 32) >= 512 else 16
        return Tiles(block_n, 1024, 4)
    block_n = 16
    while block_n > 8 and n_assignments * -(-rows // block_n) < 1024:
        block_n //= 2
    return Tiles(block_n, min(256, _next_power_of_two(max(cols, 16))), 8)


_ONE_BITS = 0x3F800000  # 1.0 in float32


def _next_power_of_two(n: int) -> int:
    return 1 << (max(n, 1) - 1).bit_length()


def routed_gemv(
    x: torch.Tensor, weight: torch.Tensor, ids: torch.Tensor, tiles: Tiles | None = None
) -> torch.Tensor:
    """``out[s] = weight[ids[s]] @ x[s]`` with the Triton kernel.

    Parameters
    ----------
    x : Tensor ``[S, K]``
    weight : Tensor ``[E, N, K]``
        Contiguous along K (transformers' fused layout).
    ids : Tensor ``[S]``
        Expert of each row of ``x``, below E (not checked on the device); below 0: not this
        pool's (zeros written).
    tiles : Tiles, optional
        Launch configuration; :func:`block_sizes` by default.

    Returns
    -------
    Tensor ``[S, N]`` in ``x``'s dtype.
    """
    if weight.stride(-1) != 1:
        raise ValueError(
            "routed_gemv reads each expert's rows contiguously along K; pass weight.contiguous() "
            "(transposed layouts take transformers' grouped_mm)"
        )
    n_rows, n_cols = weight.shape[1], weight.shape[2]
    out = torch.empty((x.shape[0], n_rows), dtype=x.dtype, device=x.device)
    tiles = tiles or block_sizes(x.shape[0], n_rows, n_cols)
    grid = (x.shape[0], -(-n_rows // tiles.block_n))
    _kernels()[0][grid](
        x.contiguous(),
        weight,
        ids.contiguous(),
        out,
        weight.stride(0),
        weight.stride(1),
        N=n_rows,
        K=n_cols,
        BLOCK_N=tiles.block_n,
        BLOCK_K=tiles.block_k,
        num_warps=tiles.num_warps,
    )
    return out


def routed_gemv_int4(
    x: torch.Tensor, weights: Any, ids: torch.Tensor, tiles: Tiles | None = None
) -> torch.Tensor:
    """``out[s] = dequantize(weights, ids[s]) @ x[s]`` with the 4-bit Triton kernel.

    Parameters
    ----------
    x : Tensor ``[S, K]``
    weights : Int4Experts
        Codes, scales and zeros of ``[E, N, K]`` (contiguous).
    ids : Tensor ``[S]``
        Row of each assignment in ``weights``; below 0: not this pool's (zeros written).
    tiles : Tiles, optional
        Launch configuration; :func:`block_sizes` by default (``block_k`` in whole groups).

    Returns
    -------
    Tensor ``[S, N]`` in ``x``'s dtype.
    """
    _, n_rows, n_cols = weights.shape
    group = weights.group_size
    out = torch.empty((x.shape[0], n_rows), dtype=x.dtype, device=x.device)
    tiles = tiles or block_sizes(x.shape[0], n_rows, n_cols, bits=4)
    grid = (x.shape[0], -(-n_rows // tiles.block_n))
    words, groups = (
        _next_power_of_two(group // 8),
        _next_power_of_two(max(1, tiles.block_k // group)),
    )
    _kernels()[1][grid](
        x.contiguous(),
        weights.packed.view(torch.int32),
        weights.scale,
        weights.zero,
        ids.contiguous(),
        out,
        _ONE_BITS,
        N=n_rows,
        K=n_cols,
        GROUP=group,
        WORDS=words,
        GROUP_P2=_next_power_of_two(group),
        BLOCK_N=tiles.block_n,
        GROUPS=groups,
        EVEN=words == group // 8 and (n_cols // group) % groups == 0,
        num_warps=tiles.num_warps,
    )
    return out
