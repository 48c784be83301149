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

Cycles
------
simulate_cycles, cycle_stats
    The generated circuit clock by clock: every handshake under back-pressure, latency,
    initiation interval, pixels per clock (:mod:`srlab.fpga.cycle`).

Cost and design space
---------------------
estimate_cost, cost_table, realtime_table, HardwareCostReport
    Multipliers, DSP slices, adders, LUTs, flip-flops, line buffers, BRAM, latency, video
    clocks: an estimate (:mod:`srlab.fpga.cost`) on the primitives of
    :mod:`srlab.fpga.primitives` (DSP48E2, block RAM, video formats, a published IP).
word_length_sweep, pareto_front, float_reference, design_quality
    Fraction bits -> PSNR against the float resize and cost (:mod:`srlab.fpga.sweep`);
    its figures (``difference_figure``, ``pareto_figure``) are in :mod:`srlab.viz`.

Checks
------
The argument checks the modules share (bit counts, datapath formats, a mapping of designs)
are in :mod:`srlab.fpga._checks`; named choices use :func:`labcore.checks.check_choice` and
tables of named things (DSP families, video formats, simulators) are :class:`labcore.Registry`.

Hardware
--------
export_test_vectors, read_test_vectors
    Hex files and a JSON manifest (:mod:`srlab.fpga.vectors`).
srlab.fpga.rtl
    Generated Verilog, simulated (Icarus, Verilator) and compared with the bit-true and cycle
    models, synthesized with Yosys.

Names load lazily (names listed in ``__init__.pyi``); nothing here imports plotly.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
