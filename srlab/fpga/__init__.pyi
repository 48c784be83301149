# Public names of srlab.fpga, loaded lazily by ``lazy.attach_stub`` in __init__.py; type checkers
# read this file. Only relative imports: each line names a module and what srlab.fpga takes from it.
__all__ = [
    "DatapathTrace",
    "FixedPointResizer",
    "HardwareCostReport",
    "PhaseDDA",
    "StreamResult",
    "StreamStats",
    "cost",
    "cost_table",
    "cycle",
    "cycle_stats",
    "datapath",
    "design_quality",
    "estimate_cost",
    "export_test_vectors",
    "float_reference",
    "pareto_front",
    "primitives",
    "read_test_vectors",
    "realtime_table",
    "simulate_cycles",
    "stream_resize",
    "streaming",
    "streaming_agreement",
    "sweep",
    "vectors",
    "word_length_sweep",
]

from . import cost, cycle, datapath, primitives, streaming, sweep, vectors
from .cost import HardwareCostReport, cost_table, estimate_cost, realtime_table
from .cycle import cycle_stats, simulate_cycles
from .datapath import DatapathTrace, FixedPointResizer, PhaseDDA
from .streaming import StreamResult, StreamStats, stream_resize, streaming_agreement
from .sweep import design_quality, float_reference, pareto_front, word_length_sweep
from .vectors import export_test_vectors, read_test_vectors
