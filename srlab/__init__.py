"""srlab: a lab for cheap super-resolution hardware.

Kernels and resizing
--------------------
get_kernel, available_kernels, register_kernel, Kernel, HardwareCost
    Interpolation kernels by name, their weights per phase and hardware cost
    (:mod:`srlab.kernels`).
resize
    Separable resizing with any registered kernel (:mod:`srlab._resize`).

Peers (OpenCV, Pillow) live in :mod:`srlab.peers`.
"""

from srlab._resize import resize
from srlab.kernels import HardwareCost, Kernel, available_kernels, get_kernel, register_kernel

__all__ = ["HardwareCost", "Kernel", "available_kernels", "get_kernel", "register_kernel", "resize"]
