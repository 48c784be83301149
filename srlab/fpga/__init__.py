"""The FPGA interpolation datapath: bit-true fixed point, streaming model, cost, sweep.

Datapath
--------
FixedPointResizer, PhaseDDA, DatapathTrace
    Separable fixed-point resizer with a phase accumulator and a weight ROM, bit-true
    and vectorized (:mod:`srlab.fpga.datapath`).
stream_resize, streaming_agreement, StreamResult, StreamStats
    The same datapath as raster-order pixels, line buffers and a sliding window
    (:mod:`srlab.fpga.streaming`).

Cost and design space
---------------------
estimate_cost, cost_table, HardwareCostReport
    Multipliers, DSP slices, adders, registers, line buffers, BRAM, latency: an
    estimate (:mod:`srlab.fpga.cost`).
word_length_sweep, pareto_front, float_reference, design_quality
    Fraction bits -> PSNR against the float resize and cost (:mod:`srlab.fpga.sweep`).
difference_figure, pareto_figure
    Figures (:mod:`srlab.fpga.figures`).

Hardware testbench
------------------
export_test_vectors, read_test_vectors
    Hex files and a JSON manifest (:mod:`srlab.fpga.vectors`).
"""

from srlab.fpga.cost import HardwareCostReport, cost_table, estimate_cost
from srlab.fpga.datapath import DatapathTrace, FixedPointResizer, PhaseDDA
from srlab.fpga.figures import difference_figure, pareto_figure
from srlab.fpga.streaming import (
    StreamResult,
    StreamStats,
    stream_resize,
    streaming_agreement,
)
from srlab.fpga.sweep import (
    design_quality,
    float_reference,
    pareto_front,
    word_length_sweep,
)
from srlab.fpga.vectors import export_test_vectors, read_test_vectors

__all__ = [
    "DatapathTrace",
    "FixedPointResizer",
    "HardwareCostReport",
    "PhaseDDA",
    "StreamResult",
    "StreamStats",
    "cost_table",
    "design_quality",
    "difference_figure",
    "estimate_cost",
    "export_test_vectors",
    "float_reference",
    "pareto_figure",
    "pareto_front",
    "read_test_vectors",
    "stream_resize",
    "streaming_agreement",
    "word_length_sweep",
]
