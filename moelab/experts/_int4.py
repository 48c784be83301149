"""Experts in 4 bits: group-wise affine quantization and its packed layout.

One fused expert matrix ``[E, N, K]`` is stored as unsigned 4-bit codes ``q`` with one scale
``s`` and one zero point ``z`` per row and per group of ``group_size`` input columns, and reads
back as ``w = (q - z) * s``: HQQ's affine format (axis 1), so codes, scales and zeros computed
by HQQ's optimiser load into it unchanged. :func:`quantize_int4` computes them with a backend of
:mod:`moelab.quant` (round to nearest by default).

Eight codes share a 32-bit word, interleaved within their group (as GPTQ and AWQ kernels pack
them): in a group of ``G`` columns, nibble ``i`` of word ``w`` holds column ``i * G/8 + w``. The
Triton kernel reads whole words, and for each nibble position the words of a group meet
``G/8`` contiguous inputs (one vector load instead of eight strided ones).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from labcore.checks import check_int

__all__ = ["Int4Experts", "quantize_int4"]


@dataclass(frozen=True)
class Int4Experts:
    """One fused expert matrix of a layer in 4 bits.

    Attributes
    ----------
    packed : Tensor ``[E, N, K // 2]``, uint8
        Eight codes per little-endian 32-bit word (four bytes), interleaved within each group:
        nibble ``i`` of the group's word ``w`` is column ``i * group_size / 8 + w``.
    scale, zero : Tensor ``[E, N, K // group_size]``
        Per row and group: ``w = (q - zero) * scale``, in the compute dtype.
    group_size : int
        Input columns per scale and zero, a multiple of 8 (whole words).
    """

    packed: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor
    group_size: int

    def __post_init__(self) -> None:
        e, n, half = self.packed.shape
        if self.group_size < 8 or self.group_size % 8 or (2 * half) % self.group_size:
            # A word holds eight codes, so a group must hold whole words (the kernel relies on it).
            raise ValueError(
                f"group_size {self.group_size} must be a multiple of 8 and divide the "
                f"{2 * half} input columns"
            )
        groups = (e, n, 2 * half // self.group_size)
        if self.packed.dtype != torch.uint8 or tuple(self.scale.shape) != groups:
            raise ValueError(
                f"Int4Experts needs uint8 codes [E, N, K/2] and scales [E, N, K/group_size]; got "
                f"{self.packed.dtype} {tuple(self.packed.shape)} and {tuple(self.scale.shape)}"
            )
        if self.zero.shape != self.scale.shape:
            raise ValueError(f"zero {tuple(self.zero.shape)} != scale {tuple(self.scale.shape)}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(E, N, K)`` of the dense matrix it stands for."""
        e, n, half = self.packed.shape
        return e, n, 2 * half

    @property
    def dtype(self) -> torch.dtype:
        """The compute dtype (of the scales)."""
        return self.scale.dtype

    @property
    def nbytes(self) -> int:
        """Bytes stored: codes, scales and zeros."""
        return sum(t.numel() * t.element_size() for t in (self.packed, self.scale, self.zero))

    def codes(self, expert: int) -> torch.Tensor:
        """One expert's unpacked codes ``[N, K]`` (uint8, 0..15)."""
        packed = self.packed[expert]
        n, k = self.shape[1:]
        nibbles = torch.stack((packed & 0xF, packed >> 4), dim=-1)  # [N, K/2, 2]: word order
        words = nibbles.view(n, k // self.group_size, self.group_size // 8, 8)
        return words.transpose(-1, -2).reshape(n, k)

    def dequantize(self, expert: int) -> torch.Tensor:
        """One expert's matrix ``[N, K]`` in the compute dtype."""
        n, k = self.shape[1:]
        groups = self.codes(expert).view(n, k // self.group_size, self.group_size).float()
        scale = self.scale[expert].float().unsqueeze(-1)
        zero = self.zero[expert].float().unsqueeze(-1)
        return ((groups - zero) * scale).view(n, k).to(self.dtype)


def quantize_int4(weight: torch.Tensor, group_size: int = 64, backend: str = "rtn") -> Int4Experts:
    """Quantize fused expert weights ``[E, N, K]`` to 4 bits, one expert at a time.

    Parameters
    ----------
    weight : Tensor ``[E, N, K]``
        Floating point; its dtype becomes the scales' (the compute dtype).
    group_size : int, default 64
        Input columns per scale and zero; a multiple of 8 that divides K.
    backend : str, default "rtn"
        How scales and zeros are chosen (:func:`moelab.quant.available_backends`: ``"rtn"``
        round to nearest, ``"hqq"`` half-quadratic; an affine one).

    Returns
    -------
    Int4Experts

    Raises
    ------
    ValueError
        A group size that does not divide K or is no multiple of 8; a tensor that is not 3-D
        float; a codebook backend (bitsandbytes').

    Examples
    --------
    >>> w = torch.randn(2, 8, 128)
    >>> q = quantize_int4(w, group_size=64)
    >>> error = (q.dequantize(1) - w[1]).abs().max() / w[1].abs().max()
    >>> bool(error < 0.1), q.nbytes < w.numel() * w.element_size() / 4
    (True, True)
    """
    from moelab.quant import get_backend, quantize_matrix

    get_backend(backend).check_affine("the routed 4-bit kernel")
    check_int(group_size, "group_size", minimum=1)
    if weight.ndim != 3 or not weight.is_floating_point():
        raise ValueError(
            f"expected fused float expert weights [E, N, K], got {weight.dtype} "
            f"{tuple(weight.shape)}"
        )
    e, n, k = weight.shape
    if k % group_size or group_size % 8:
        raise ValueError(
            f"group_size {group_size} must be a multiple of 8 and divide the {k} input columns "
            f"of the experts; pick such a divisor of {k}"
        )
    matrices = [quantize_matrix(w, 4, group_size, backend) for w in weight.detach()]
    codes = torch.stack([m.codes for m in matrices]).to(torch.uint8)
    # [.., group, nibble, word] -> [.., group, word, nibble]: eight codes per word, interleaved
    words = codes.view(e, n, k // group_size, 8, group_size // 8).transpose(-1, -2)
    words = words.reshape(e, n, k // 2, 2)
    packed = words[..., 0] | (words[..., 1] << 4)
    scale = torch.stack([m.scale for m in matrices])
    zero = torch.stack([m.zero for m in matrices])
    return Int4Experts(packed.contiguous(), scale, zero, group_size)
