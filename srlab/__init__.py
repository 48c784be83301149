"""srlab: a lab for cheap super-resolution hardware.

Kernels and resizing
--------------------
get_kernel, available_kernels, register_kernel, Kernel, HardwareCost
    Interpolation kernels by name, their weights per phase and hardware cost
    (:mod:`srlab.kernels`).
resize
    Separable resizing with any registered kernel (:mod:`srlab._resize`); its fast path
    for integer upscaling factors is :mod:`srlab.polyphase`.

Fixed point
-----------
QFormat, FixedArray, quantize, cast, add, sub, multiply
    Bit-true ``ap_fixed<W, I, Q, O>`` arithmetic on int64 codes (:mod:`srlab.fixed`).

Test images and quality
-----------------------
available_images, load_image, degrade
    Synthetic charts, bundled photos and LR/HR pairs (:mod:`srlab.images`; the charts in
    :mod:`srlab._charts`, the degradation model, its PSF registry and crops in
    :mod:`srlab._degrade`).
srlab.imagecheck
    The one image check of the lab (``check_image``: shape, size, dtype, finite values; a
    non-numeric image is a TypeError), crop windows and dtype conversions.
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

Multi-frame super-resolution
----------------------------
simulate_sequence, register_frames, fuse
    Frames of one scene with known motion, their registration and their fusion onto the
    high-resolution grid (:mod:`srlab.multiframe`).

Peers (OpenCV, Pillow) live in :mod:`srlab.peers`.

Figures
-------
Kernel profiles, crops, quality bars, fixed-point difference maps and the word-length
Pareto front, and the widgets notebooks display, are in :mod:`srlab.viz`.

Names load lazily (``lazy_loader``, names listed in ``__init__.pyi``): ``import srlab`` is cheap,
and a name imports its module on first use. The figures (:mod:`srlab.viz`) are the only
modules that import plotly; nothing in srlab imports torch.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
