"""FPGA primitives the cost model maps a design onto: DSP slices, block RAM, video pixel clocks.

DSP48E1 (7 series) and DSP48E2 (UltraScale, UltraScale+) multiply two's complement operands of
25 x 18 and 27 x 18 bits; a DSP48E2 also has a 27-bit pre-adder before its multiplier, a
48-bit post-adder after it and a cascade path (PCOUT -> PCIN) into the next slice, so a chain
of slices sums its products without fabric adders (UG579). Two products that share one operand
fit one slice when both land in 18-bit fields of the product (Xilinx WP487's INT8 packing).
A block RAM of 18 Kbit takes one of six aspect ratios (UG573); two make a 36 Kbit block.
"""

from __future__ import annotations

import math
from typing import Literal

from labcore.registry import Registry

__all__ = [
    "BRAM18_SHAPES",
    "DSP_PORTS",
    "PACKED_FIELD_BITS",
    "PUBLISHED_IP",
    "VIDEO_FORMATS",
    "DspFamily",
    "bram18_blocks",
    "dsp_slices_per_multiply",
    "packs_two_products",
]

DspFamily = Literal["dsp48e1", "dsp48e2"]

DSP_PORTS: Registry[tuple[int, int]] = Registry("DSP family", plural="families")
"""Signed input widths of one DSP slice's multiplier, by slice family."""
DSP_PORTS.add("dsp48e1", (25, 18))  # 7 series: 25 x 18 signed multiplier
DSP_PORTS.add("dsp48e2", (27, 18))  # UltraScale(+): 27 x 18 signed multiplier

PACKED_FIELD_BITS = 18
"""Width of each product field when two products share a DSP48E2 (WP487)."""

BRAM18_SHAPES: tuple[tuple[int, int], ...] = (
    (16384, 1),
    (8192, 2),
    (4096, 4),
    (2048, 9),
    (1024, 18),
    (512, 36),
)
"""(depth, width) configurations of one 18 Kbit block RAM (simple dual port)."""

VIDEO_FORMATS: Registry[tuple[int, int, float]] = Registry(
    "video format", plural="formats", sort=False
)
"""Active lines, active pixels a line and the pixel clock (Hz) with standard (CTA-861) blanking."""
VIDEO_FORMATS.add("1080p60", (1080, 1920, 148.5e6))
VIDEO_FORMATS.add("4k60", (2160, 3840, 594e6))

PUBLISHED_IP: dict[str, dict[str, float | str]] = {
    "APV21B bicubic 4x (per 8-bit channel)": {
        "scale": 4,
        "input": "960x540",
        "output": "3840x2160",
        "pixels_per_clock": 4,
        "clock_mhz": 300,
        "lut": 431,
        "flip_flops": 694,
        "dsp": 49,
        "bram36": 2.5,
        "device": "Zynq UltraScale+",
    },
}
"""A commercial bicubic scaler's published resources, the anchor the estimates are set beside."""


def dsp_slices_per_multiply(a_bits: int, b_bits: int, dsp: DspFamily = "dsp48e2") -> int:
    """DSP slices for one ``a_bits x b_bits`` signed multiplication.

    An operand wider than a port is split into a signed top piece of the port's width
    and unsigned lower pieces of one bit less; every pair of pieces takes one slice,
    and the better of the two ways to assign operands to ports is used.

    Parameters
    ----------
    a_bits, b_bits : int
        Signed operand widths (an unsigned ``W``-bit operand needs ``W + 1``).
    dsp : {"dsp48e1", "dsp48e2"}, default "dsp48e2"
        Slice family (:data:`DSP_PORTS`).

    Returns
    -------
    int
        Slices, at least one.

    Raises
    ------
    TypeError
        If the family is not a str.
    ValueError
        If the family is unknown or a width is not positive.

    Examples
    --------
    >>> dsp_slices_per_multiply(9, 12), dsp_slices_per_multiply(27, 18), dsp_slices_per_multiply(30, 20)
    (1, 1, 2)
    >>> dsp_slices_per_multiply(30, 30)
    4
    >>> dsp_slices_per_multiply(26, 18, "dsp48e1"), dsp_slices_per_multiply(26, 18, "dsp48e2")
    (2, 1)
    """
    port_a, port_b = DSP_PORTS.get(dsp)  # unknown: ValueError listing the families
    if min(a_bits, b_bits) < 1:
        raise ValueError(f"operand widths must be positive, got {a_bits} and {b_bits}")

    def pieces(width: int, port: int) -> int:
        return 1 if width <= port else 1 + math.ceil((width - port) / (port - 1))

    return min(
        pieces(a_bits, port_a) * pieces(b_bits, port_b),
        pieces(a_bits, port_b) * pieces(b_bits, port_a),
    )


def packs_two_products(a_bits: int, b_bits: int, terms: int, dsp: DspFamily = "dsp48e2") -> bool:
    """Whether two sums of ``terms`` products ``a x b`` that share ``b`` fit one DSP48E2.

    The pre-adder forms ``a1 * 2**18 + a2`` in its 27-bit port, so ``a1`` may have 9 signed
    bits; each sum of products must stay inside its 18-bit field (WP487).

    Examples
    --------
    >>> packs_two_products(9, 7, 4), packs_two_products(9, 12, 4), packs_two_products(9, 8, 2)
    (True, False, True)
    """
    if dsp != "dsp48e2":
        return False
    grown = a_bits + b_bits + math.ceil(math.log2(max(terms, 1)))
    return a_bits <= DSP_PORTS[dsp][0] - PACKED_FIELD_BITS and grown <= PACKED_FIELD_BITS


def bram18_blocks(depth: int, width: int) -> int:
    """18 Kbit block RAMs for a ``depth x width`` memory (best aspect ratio).

    Examples
    --------
    >>> bram18_blocks(1920, 12), bram18_blocks(1920, 36), bram18_blocks(640, 8)
    (2, 4, 1)
    """
    if depth < 1 or width < 1:
        raise ValueError(f"depth and width must be positive, got {depth} and {width}")
    return min(math.ceil(depth / d) * math.ceil(width / w) for d, w in BRAM18_SHAPES)
