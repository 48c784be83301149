"""Quantizing one expert matrix: backends behind a registry, one affine format, exact bytes.

Every backend returns the same thing, a :class:`QuantizedMatrix`: unsigned ``bits``-bit codes
``q``, and per row and group of ``group_size`` input columns a scale ``s`` and a zero point
``z``, read back as ``w = (q - z) * s`` (HQQ's affine format along the input axis). Backends
differ in how they choose ``s`` and ``z``:

``"rtn"``
    Round to nearest from each group's minimum and maximum (built in).
``"hqq"``
    Half-quadratic optimisation of the zero point (``hqq``, the ``quant`` extra): a lower
    error at the same bits, with no calibration data.

Storage is counted exactly: codes packed at ``bits`` bits each, plus one scale and one zero
per group in the compute dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from labcore.checks import check_callable, check_int, check_name, check_type
from labcore.registry import Registry
from moelab.extras import require

__all__ = [
    "SUPPORTED_BITS",
    "QuantBackend",
    "QuantizedMatrix",
    "available_backends",
    "get_backend",
    "quantize_matrix",
]

HQQ_MODULE = "hqq.core.quantize"
#: Bit widths every backend supports.
SUPPORTED_BITS = (2, 3, 4, 8)


@dataclass(frozen=True)
class QuantizedMatrix:
    """One ``[N, K]`` matrix as ``bits``-bit codes with a scale and zero per group.

    Attributes
    ----------
    codes : Tensor ``[N, K]``, uint8
        Unpacked codes, ``0 .. 2**bits - 1``.
    scale, zero : Tensor ``[N, K // group_size]``
        In the compute dtype: ``w = (q - zero) * scale``.
    bits, group_size : int
    backend : str
        Which backend chose the scales and zeros.
    """

    codes: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor
    bits: int
    group_size: int
    backend: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        """``(N, K)``."""
        return tuple(self.codes.shape)  # type: ignore[return-value]

    @property
    def nbytes(self) -> int:
        """Bytes stored: codes packed at ``bits`` bits, scales and zeros."""
        n, k = self.shape
        meta = (self.scale.numel() + self.zero.numel()) * self.scale.element_size()
        return math.ceil(n * k * self.bits / 8) + meta

    def dequantize(self) -> torch.Tensor:
        """The matrix ``[N, K]`` in the compute dtype."""
        n, k = self.shape
        groups = self.codes.view(n, k // self.group_size, self.group_size).float()
        values = (groups - self.zero.float().unsqueeze(-1)) * self.scale.float().unsqueeze(-1)
        return values.view(n, k).to(self.scale.dtype)


#: ``(weight [N, K] float32, bits, group_size) -> (codes [N, K], scale, zero [N, K/g])``.
QuantizeFn = Callable[[torch.Tensor, int, int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class QuantBackend:
    """A named way of choosing codes, scales and zeros.

    Parameters
    ----------
    name : str
        Registry name.
    quantize : callable
        ``(weight [N, K] float32, bits, group_size) -> (codes, scale, zero)``, scales and
        zeros in float32.
    description : str, optional
        One line for tables.
    requires : str, optional
        The optional module it imports (checked by :meth:`ensure_available`).
    """

    name: str
    quantize: QuantizeFn = field(repr=False)
    description: str = ""
    requires: str = ""

    def __post_init__(self) -> None:
        check_name(self.name, "QuantBackend.name")
        check_callable(self.quantize, "QuantBackend.quantize")

    def ensure_available(self) -> None:
        """Import what it needs now, or raise :class:`~moelab.errors.MissingExtraError`."""
        if self.requires:
            require(self.requires, f"the {self.name!r} quantization backend")


def _round_to_nearest(
    weight: torch.Tensor, bits: int, group_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n, k = weight.shape
    top = 2**bits - 1
    groups = weight.reshape(n, k // group_size, group_size)
    low, high = groups.amin(-1), groups.amax(-1)
    # A constant group gets scale 1 and zero -low: code 0 reads back as the value exactly.
    span = high - low
    scale = torch.where(span > 0, span / top, torch.ones_like(span))
    zero = -low / scale
    return _codes(groups, scale, zero, bits).reshape(n, k), scale, zero


def _codes(
    groups: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int
) -> torch.Tensor:
    """The nearest code of every weight for given scales and zeros (``[N, K/g, g]`` groups)."""
    codes = torch.round(groups / scale.unsqueeze(-1) + zero.unsqueeze(-1))
    return torch.clamp(codes, 0, 2**bits - 1)


def _half_quadratic(
    weight: torch.Tensor, bits: int, group_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    quantize = require(HQQ_MODULE, "the 'hqq' quantization backend")
    n, k = weight.shape
    codes, meta = quantize.Quantizer.quantize(
        weight,
        nbits=bits,
        group_size=group_size,
        optimize=True,
        axis=1,
        bitpack=False,
        compute_dtype=torch.float32,
        device=str(weight.device),
    )
    # HQQ groups rows of the flattened matrix: group j of row r is its row r * (K / g) + j.
    return (
        codes.reshape(n, k),
        meta["scale"].reshape(n, k // group_size).float(),
        meta["zero"].reshape(n, k // group_size).float(),
    )


_BACKENDS: Registry[QuantBackend] = Registry(
    "quantization backend", plural="backends", sort=False, item_type=QuantBackend
)
_BACKENDS.add_named(
    QuantBackend("rtn", _round_to_nearest, "round to nearest from each group's min and max")
)
_BACKENDS.add_named(
    QuantBackend(
        "hqq",
        _half_quadratic,
        "HQQ: half-quadratic optimisation of the zero point",
        requires=HQQ_MODULE,
    )
)

#: Names of the registered backends; a backend by name (a backend passes through).
available_backends = _BACKENDS.names
get_backend = _BACKENDS.resolve


def quantize_matrix(
    weight: torch.Tensor, bits: int = 4, group_size: int = 64, backend: str | QuantBackend = "rtn"
) -> QuantizedMatrix:
    """Quantize one matrix ``[N, K]`` (an expert's ``nn.Linear`` weight) per group of inputs.

    Parameters
    ----------
    weight : Tensor ``[N, K]``
        Floating point; its dtype becomes the compute dtype of the scales and zeros.
    bits : {2, 3, 4, 8}, default 4
    group_size : int, default 64
        Input columns per scale and zero; must divide K.
    backend : str or QuantBackend, default "rtn"
        See :func:`available_backends`.

    Returns
    -------
    QuantizedMatrix

    Raises
    ------
    ValueError
        Bits outside :data:`SUPPORTED_BITS`, a group size below 2 or that does not divide K,
        a tensor that is not a 2-D float matrix or holds NaN or inf, an unknown backend.
    MissingExtraError
        For ``"hqq"`` without the ``quant`` extra.

    Examples
    --------
    >>> w = torch.randn(8, 128)
    >>> q = quantize_matrix(w, bits=4, group_size=64)
    >>> q.nbytes  # 8 x 128 codes at 4 bits + 8 x 2 scales and zeros in float32
    640
    """
    spec = get_backend(backend)
    check_int(bits, "bits")
    check_int(group_size, "group_size", minimum=2)
    if bits not in SUPPORTED_BITS:
        raise ValueError(f"bits must be one of {SUPPORTED_BITS}, got {bits}")
    check_type(weight, torch.Tensor, "weight")
    if weight.ndim != 2 or not weight.is_floating_point():
        raise ValueError(
            f"expected a float matrix [N, K], got {weight.dtype} {tuple(weight.shape)}"
        )
    if not torch.isfinite(weight).all():
        raise ValueError("the weights hold NaN or inf values: quantize finite weights only")
    k = weight.shape[1]
    if k % group_size:
        raise ValueError(
            f"group_size {group_size} does not divide the {k} input columns; pick a divisor of {k}"
        )
    dense = weight.detach().float()
    _, scale, zero = spec.quantize(dense, bits, group_size)
    # Scales and zeros are stored in the compute dtype: the codes are chosen for the stored
    # values (a weight is within half a step of what it reads back as, but where a rounded
    # zero point pushes a group's extreme past the last code: at most one step).
    scale, zero = scale.to(weight.dtype), zero.to(weight.dtype)
    groups = dense.reshape(dense.shape[0], -1, group_size)
    codes = _codes(groups, scale.float(), zero.float(), bits).reshape(dense.shape)
    return QuantizedMatrix(codes.to(torch.uint8), scale, zero, bits, group_size, spec.name)
