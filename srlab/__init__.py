"""srlab: a lab for cheap super-resolution hardware.

Kernels and resizing
--------------------
get_kernel, available_kernels, register_kernel, Kernel, HardwareCost
    Interpolation kernels by name, their weights per phase and hardware cost
    (:mod:`srlab.kernels`).
resize
    Separable resizing with any registered kernel (:mod:`srlab._resize`).

Fixed point
-----------
QFormat, FixedArray, quantize, cast, add, sub, multiply
    Bit-true ``ap_fixed<W, I, Q, O>`` arithmetic on int64 codes (:mod:`srlab.fixed`).

Peers (OpenCV, Pillow) live in :mod:`srlab.peers`.
"""

from srlab._resize import resize
from srlab.fixed import FixedArray, QFormat, add, cast, multiply, quantize, sub
from srlab.kernels import HardwareCost, Kernel, available_kernels, get_kernel, register_kernel

__all__ = [
    "FixedArray",
    "HardwareCost",
    "Kernel",
    "QFormat",
    "add",
    "available_kernels",
    "cast",
    "get_kernel",
    "multiply",
    "quantize",
    "register_kernel",
    "resize",
    "sub",
]
