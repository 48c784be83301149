"""Tensor storage: measuring it, and owning it (fresh, frozen parameters)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

__all__ = ["frozen", "storage_bytes", "storage_key"]


def storage_bytes(tensors: Iterator[torch.Tensor] | Sequence[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind some tensors (views and aliases counted once).

    Parameters
    ----------
    tensors : iterable of Tensor
        Tensors that may share storage.

    Returns
    -------
    int
        Sum of ``untyped_storage().nbytes()`` over distinct ``(device, data_ptr)`` storages.

    Examples
    --------
    >>> t = torch.zeros(4)
    >>> storage_bytes([t, t[:2], t.view(2, 2)])
    16
    """
    seen: dict[tuple[str, int], int] = {}
    for tensor in tensors:
        seen[storage_key(tensor)] = tensor.untyped_storage().nbytes()
    return sum(seen.values())


def storage_key(tensor: torch.Tensor) -> tuple[str, int]:
    return str(tensor.device), tensor.untyped_storage().data_ptr()


def frozen(tensor: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(tensor, requires_grad=False)
