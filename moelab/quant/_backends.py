"""Quantizing one expert matrix: backends behind a registry, exact bytes.

Every backend returns a :class:`QuantizedMatrix`: unsigned ``bits``-bit codes ``q`` and, per
row and group of ``group_size`` input columns, a scale ``s``. Affine backends add a zero point
``z`` per group, read back as ``w = (q - z) * s`` (HQQ's affine format along the input axis);
codebook backends read code ``q`` as one of ``2**bits`` fixed levels, ``w = levels[q] * s``.

``"rtn"`` (affine)
    Round to nearest from each group's minimum and maximum (built in).
``"hqq"`` (affine)
    Half-quadratic optimisation of the zero point (``hqq``, the ``quant`` extra): a lower
    error at the same bits, with no calibration data.
``"bnb-nf4"``, ``"bnb-fp4"`` (codebook, 4 bits)
    bitsandbytes' 4-bit formats (the ``quant`` extra), as ``load_in_4bit`` stores a model:
    NormalFloat or 4-bit float levels scaled by each block's absolute maximum (float32).

Storage is counted exactly: codes packed at ``bits`` bits each, plus the scales and zeros
per group in their dtype (and a codebook's level table).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
BNB_MODULE = "bitsandbytes.functional"
#: Block sizes bitsandbytes' 4-bit formats take (a block is a group of input columns here).
BNB_BLOCK_SIZES = (32, 64, 128, 256, 512, 1024, 2048, 4096)
#: Bit widths every backend supports.
SUPPORTED_BITS = (2, 3, 4, 8)


@dataclass(frozen=True)
class QuantizedMatrix:
    """One ``[N, K]`` matrix as ``bits``-bit codes with a scale (and zero) per group.

    Attributes
    ----------
    codes : Tensor ``[N, K]``, uint8
        Unpacked codes, ``0 .. 2**bits - 1``.
    scale : Tensor ``[N, K // group_size]``
        In the compute dtype (a codebook format's own: bitsandbytes keeps float32).
    zero : Tensor ``[N, K // group_size]`` or None
        Affine formats: ``w = (q - zero) * scale``. None for a codebook format.
    bits, group_size : int
    backend : str
        Which backend chose the codes and scales.
    levels : Tensor ``[2**bits]`` or None
        A codebook format's level of each code: ``w = levels[q] * scale``. None: affine.
    dtype : torch.dtype or None
        What :meth:`dequantize` returns (the weights' dtype); None: the scales'.
    """

    codes: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor | None
    bits: int
    group_size: int
    backend: str = ""
    levels: torch.Tensor | None = None
    dtype: torch.dtype | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(N, K)``."""
        return tuple(self.codes.shape)  # type: ignore[return-value]

    @property
    def nbytes(self) -> int:
        """Bytes stored: codes packed at ``bits`` bits, scales, zeros and a codebook's levels."""
        n, k = self.shape
        stored = (t for t in (self.scale, self.zero, self.levels) if t is not None)
        return math.ceil(n * k * self.bits / 8) + sum(t.numel() * t.element_size() for t in stored)

    def dequantize(self) -> torch.Tensor:
        """The matrix ``[N, K]`` in :attr:`dtype` (the scales' where None), on the codes' device."""
        n, k = self.shape
        codes = self.codes.view(n, k // self.group_size, self.group_size)
        if self.levels is None:
            values = codes.float()
        else:
            values = self.levels.to(codes.device, torch.float32)[codes.long()]
        if self.zero is not None:
            values = values - self.zero.float().unsqueeze(-1)
        values = values * self.scale.float().unsqueeze(-1)
        return values.view(n, k).to(self.dtype or self.scale.dtype)


#: ``(weight [N, K] float32, bits, group_size) -> (codes [N, K], scale, zero [N, K/g])``;
#: a codebook backend's zero is None.
QuantizeFn = Callable[
    [torch.Tensor, int, int], tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]
]


@dataclass(frozen=True)
class QuantBackend:
    """A named way of choosing codes, scales and zeros.

    Parameters
    ----------
    name : str
        Registry name.
    quantize : callable
        ``(weight [N, K] float32, bits, group_size) -> (codes, scale, zero)``, scales and
        zeros in float32 (zero None for a codebook backend).
    description : str, optional
        One line for tables.
    requires : str, optional
        The optional module it imports (checked by :meth:`ensure_available`).
    bits : tuple of int, optional
        The widths it quantizes to (default :data:`SUPPORTED_BITS`).
    levels : callable, optional
        ``bits -> Tensor [2**bits]``: a codebook backend's level per code. None: affine.
    scale_itemsize : int, optional
        Bytes of a stored scale; 0 (default): the compute dtype's.
    group_sizes : tuple of int, optional
        The only group sizes it takes; empty (default): any that divides the input columns.
    """

    name: str
    quantize: QuantizeFn = field(repr=False)
    description: str = ""
    requires: str = ""
    bits: tuple[int, ...] = SUPPORTED_BITS
    levels: Callable[[int], torch.Tensor] | None = field(default=None, repr=False)
    scale_itemsize: int = 0
    group_sizes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        check_name(self.name, "QuantBackend.name")
        check_callable(self.quantize, "QuantBackend.quantize")
        if not self.bits or set(self.bits) - set(SUPPORTED_BITS):
            raise ValueError(f"QuantBackend.bits must be among {SUPPORTED_BITS}, got {self.bits}")

    @property
    def affine(self) -> bool:
        """Whether its codes read back as ``(q - zero) * scale`` (what the routed kernel decodes)."""
        return self.levels is None

    def matrix_bytes(self, rows: int, cols: int, bits: int, group_size: int, itemsize: int) -> int:
        """Bytes of a ``[rows, cols]`` matrix it stores (:attr:`QuantizedMatrix.nbytes`).

        ``itemsize`` is the compute dtype's; a codebook's levels are float32.
        """
        groups = rows * (cols // group_size)
        packed = math.ceil(rows * cols * bits / 8)
        if self.affine:
            return packed + 2 * groups * itemsize
        return packed + groups * (self.scale_itemsize or itemsize) + 4 * 2**bits

    def ensure_available(self) -> None:
        """Import what it needs now, or raise :class:`~moelab.errors.MissingExtraError`."""
        if self.requires:
            require(self.requires, f"the {self.name!r} quantization backend")

    def check_affine(self, purpose: str) -> None:
        """Raise ValueError, naming the affine backends, where it stores a codebook format."""
        if not self.affine:
            others = [b.name for b in _BACKENDS.values() if b.affine]
            raise ValueError(
                f"the {self.name!r} backend stores a codebook format, which {purpose} does not "
                f"decode; use an affine backend ({', '.join(others)}), or {self.name!r} for "
                "quality (fake_quantize, expert_scores, sweep_precision)"
            )

    def check_bits(self, bits: int) -> None:
        """Raise ValueError, naming the backends that do, where it cannot store ``bits`` bits."""
        if bits not in SUPPORTED_BITS:
            raise ValueError(f"bits must be one of {SUPPORTED_BITS}, got {bits}")
        if bits not in self.bits:
            others = [b.name for b in _BACKENDS.values() if bits in b.bits]
            raise ValueError(
                f"the {self.name!r} backend stores {' or '.join(map(str, self.bits))} bits, "
                f"not {bits}; for {bits} bits use one of {', '.join(others)}"
            )

    def check_group_size(self, group_size: int) -> None:
        """Raise ValueError, naming those it takes, where it cannot take ``group_size``."""
        if self.group_sizes and group_size not in self.group_sizes:
            raise ValueError(
                f"the {self.name!r} backend takes group sizes {self.group_sizes}, not {group_size}"
            )


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


def _import_bitsandbytes(purpose: str) -> Any:
    """``bitsandbytes.functional``, its import's warning about an optional kernel silenced.

    On CPUs with AVX-512 BF16, bitsandbytes' CPU backend warns at import that a kernel it
    would fetch from the Hugging Face Hub (the ``kernels`` package) is missing; nothing here
    uses that kernel, and nothing may be fetched at run time.
    """
    logger = logging.getLogger("bitsandbytes")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return require(BNB_MODULE, purpose)
    finally:
        logger.setLevel(level)


def _bitsandbytes(quant_type: str) -> QuantizeFn:
    """Quantize to bitsandbytes' 4-bit ``quant_type`` (``"nf4"``, ``"fp4"``), a block a group."""

    def quantize(
        weight: torch.Tensor, bits: int, group_size: int
    ) -> tuple[torch.Tensor, torch.Tensor, None]:
        functional = _import_bitsandbytes(f"the 'bnb-{quant_type}' quantization backend")
        n, k = weight.shape
        # Blocks run along the flattened matrix: as group_size divides K, block j of row r is
        # its group j. bitsandbytes packs two codes a byte, the first in the high nibble.
        packed, state = functional.quantize_4bit(
            weight.contiguous(), blocksize=group_size, quant_type=quant_type
        )
        packed = packed.flatten()
        codes = torch.stack([packed >> 4, packed & 15], dim=-1).reshape(n, k)
        return codes, state.absmax.float().reshape(n, k // group_size), None

    return quantize


def _bitsandbytes_backend(quant_type: str, levels_name: str) -> QuantBackend:
    """The codebook backend ``bnb-<quant_type>``: bitsandbytes' 4-bit ``quant_type``."""

    def levels(bits: int) -> torch.Tensor:
        functional = _import_bitsandbytes(f"the 'bnb-{quant_type}' quantization backend")
        return functional.get_4bit_type(quant_type, device="cpu").float()  # as stored: float32

    return QuantBackend(
        f"bnb-{quant_type}",
        _bitsandbytes(quant_type),
        f"bitsandbytes' {quant_type.upper()}: {levels_name} levels times each block's "
        "absolute maximum",
        requires=BNB_MODULE,
        bits=(4,),
        levels=levels,
        scale_itemsize=4,  # absolute maxima in float32, whatever the weights' dtype
        group_sizes=BNB_BLOCK_SIZES,
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
_BACKENDS.add_named(_bitsandbytes_backend("nf4", "NormalFloat"))
_BACKENDS.add_named(_bitsandbytes_backend("fp4", "4-bit float"))

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
        Floating point; its dtype becomes the compute dtype of the scales and zeros (a
        codebook format keeps its own scales: bitsandbytes', float32) and the dtype read back.
    bits : {2, 3, 4, 8}, default 4
        The backend's widths only (bitsandbytes': 4).
    group_size : int, default 64
        Input columns per scale and zero; must divide K (bitsandbytes: a power of two
        from 32).
    backend : str or QuantBackend, default "rtn"
        See :func:`available_backends`.

    Returns
    -------
    QuantizedMatrix

    Raises
    ------
    ValueError
        Bits outside :data:`SUPPORTED_BITS` or the backend's, a group size below 2, that
        does not divide K or that the backend does not take, a tensor that is not a 2-D float matrix or holds NaN or inf, an
        unknown backend.
    MissingExtraError
        For ``"hqq"`` or ``"bnb-*"`` without the ``quant`` extra.

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
    spec.check_bits(bits)
    spec.check_group_size(group_size)
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
    codes, scale, zero = spec.quantize(dense, bits, group_size)
    if spec.levels is not None:  # a codebook format: its codes and scales as the library keeps them
        levels = spec.levels(bits).to(weight.device)
        return QuantizedMatrix(
            codes.to(torch.uint8), scale, None, bits, group_size, spec.name, levels, weight.dtype
        )
    assert zero is not None, f"affine backend {spec.name!r} returned no zero points"
    # Scales and zeros are stored in the compute dtype: the codes are chosen for the stored
    # values (a weight is within half a step of what it reads back as, but where a rounded
    # zero point pushes a group's extreme past the last code: at most one step).
    scale, zero = scale.to(weight.dtype), zero.to(weight.dtype)
    groups = dense.reshape(dense.shape[0], -1, group_size)
    codes = _codes(groups, scale.float(), zero.float(), bits).reshape(dense.shape)
    return QuantizedMatrix(codes.to(torch.uint8), scale, zero, bits, group_size, spec.name)
