"""From the bit-true model to hardware: generated Verilog, simulated and compared.

Generation
----------
generate_verilog, RtlDesign, filter_spec
    The streaming vertical-first resizer as synthesizable Verilog-2005 for one frame size
    (:mod:`srlab.fpga.rtl._design`); its filter units, their casts and shift-and-add constants
    in :mod:`srlab.fpga.rtl._fixed_verilog`.
Simulation
----------
run_simulation, available_simulators, Handshakes
    A valid/ready testbench under Icarus Verilog or Verilator (:mod:`srlab.fpga.rtl._simulate`).
"""

from srlab.fpga.rtl._design import RtlDesign, filter_spec, generate_verilog
from srlab.fpga.rtl._simulate import Handshakes, available_simulators, run_simulation

__all__ = [
    "Handshakes",
    "RtlDesign",
    "available_simulators",
    "filter_spec",
    "generate_verilog",
    "run_simulation",
]
