"""The FPGA interpolation datapath: bit-true fixed point, streaming model, cost, sweep.

Datapath
--------
FixedPointResizer, PhaseDDA, DatapathTrace
    Separable fixed-point resizer with a phase accumulator and a weight ROM, bit-true
    and vectorized (:mod:`srlab.fpga.datapath`; the phase accumulator in
    :mod:`srlab.fpga.dda`, the ROM and its format sizing in :mod:`srlab.fpga.rom`, the
    exact float path in :mod:`srlab.fpga.fastpath`).
stream_resize, streaming_agreement, StreamResult, StreamStats
    The same datapath as raster-order pixels, line buffers and a sliding window
    (:mod:`srlab.fpga.streaming`).

Cost and design space
---------------------
estimate_cost, cost_table, HardwareCostReport
    Multipliers, DSP slices, adders, registers, line buffers, BRAM, latency: an
    estimate (:mod:`srlab.fpga.cost`).
word_length_sweep, pareto_front, float_reference, design_quality
    Fraction bits -> PSNR against the float resize and cost (:mod:`srlab.fpga.sweep`);
    its figures (``difference_figure``, ``pareto_figure``) are in :mod:`srlab.viz`.

Hardware testbench
------------------
export_test_vectors, read_test_vectors
    Hex files and a JSON manifest (:mod:`srlab.fpga.vectors`).

Names load lazily (names listed in ``__init__.pyi``); nothing here imports plotly.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
