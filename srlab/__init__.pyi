# Public names of srlab, loaded lazily by ``lazy.attach_stub`` in __init__.py; type checkers read
# this file. Only relative imports: each line names a module and what srlab takes from it.
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
    "fixed",
    "fpga",
    "get_kernel",
    "images",
    "kernel_quality_table",
    "kernels",
    "load_image",
    "metrics",
    "multiframe",
    "multiply",
    "pareto_front",
    "peers",
    "psnr",
    "quality",
    "quantize",
    "register_kernel",
    "resize",
    "ssim",
    "stream_resize",
    "sub",
    "word_length_sweep",
]

from . import fixed, fpga, images, kernels, metrics, multiframe, peers, quality
from ._resize import resize
from .fixed import FixedArray, QFormat, add, cast, multiply, quantize, sub
from .fpga import (
    FixedPointResizer,
    estimate_cost,
    export_test_vectors,
    pareto_front,
    stream_resize,
    word_length_sweep,
)
from .images import available_images, degrade, load_image
from .kernels import HardwareCost, Kernel, available_kernels, get_kernel, register_kernel
from .metrics import psnr, ssim
from .quality import kernel_quality_table
