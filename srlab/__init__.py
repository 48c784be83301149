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

Test images and quality
-----------------------
available_images, load_image, degrade
    Synthetic charts, bundled photos and LR/HR pairs (:mod:`srlab.images`).
psnr, ssim
    Metrics with an explicit data range and border crop (:mod:`srlab.metrics`).
kernel_quality_table
    PSNR/SSIM of every kernel and peer on a downscale-upscale round trip
    (:mod:`srlab.quality`); its figures are in :mod:`srlab.viz`.

FPGA datapath
-------------
FixedPointResizer, stream_resize, estimate_cost, word_length_sweep, pareto_front, export_test_vectors
    Bit-true fixed-point resizer, its streaming model, hardware cost estimate,
    word-length sweep and HDL test vectors (:mod:`srlab.fpga`).

Peers (OpenCV, Pillow) live in :mod:`srlab.peers`.
"""

from srlab._resize import resize
from srlab.fixed import FixedArray, QFormat, add, cast, multiply, quantize, sub
from srlab.fpga import (
    FixedPointResizer,
    estimate_cost,
    export_test_vectors,
    pareto_front,
    stream_resize,
    word_length_sweep,
)
from srlab.images import available_images, degrade, load_image
from srlab.kernels import HardwareCost, Kernel, available_kernels, get_kernel, register_kernel
from srlab.metrics import psnr, ssim
from srlab.quality import kernel_quality_table

__all__ = [
    "FixedArray",
    "FixedPointResizer",
    "HardwareCost",
    "Kernel",
    "QFormat",
    "add",
    "available_images",
    "available_kernels",
    "cast",
    "degrade",
    "estimate_cost",
    "export_test_vectors",
    "get_kernel",
    "kernel_quality_table",
    "load_image",
    "multiply",
    "pareto_front",
    "psnr",
    "quantize",
    "register_kernel",
    "resize",
    "ssim",
    "stream_resize",
    "sub",
    "word_length_sweep",
]
