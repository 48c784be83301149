"""From the bit-true model to hardware: generated Verilog, simulated and compared.

Generation
----------
generate_verilog, RtlDesign, filter_spec
    The streaming vertical-first resizer as synthesizable Verilog-2005 for one frame size
    (:mod:`srlab.fpga.rtl._design`); its filter units, their casts and shift-and-add constants
    in :mod:`srlab.fpga.rtl._fixed_verilog`.
Simulation
----------
run_simulation, available_simulators, Handshakes, SIMULATORS, Simulator
    A valid/ready testbench under Icarus Verilog or Verilator (:mod:`srlab.fpga.rtl._simulate`);
    a simulator is one :class:`Simulator` entry of the ``SIMULATORS`` registry.
Verification
------------
cosimulate, CosimReport, verification_frames, check_filter_unit, filter_reference
    Generate -> simulate -> compare with the bit-true model (pixel by pixel) and the cycle
    model (handshake by handshake); one filter unit over every input code
    (:mod:`srlab.fpga.rtl._cosim`).
Synthesis
---------
synthesize, yosys_available, SYNTH_TARGETS
    Yosys resource counts for a Zynq UltraScale+ or generic gates (:mod:`srlab.fpga.rtl._synth`);
    a target is one entry of the ``SYNTH_TARGETS`` registry (its Yosys command).
"""

from srlab.fpga.rtl._cosim import (
    CosimReport,
    check_filter_unit,
    cosimulate,
    filter_reference,
    verification_frames,
)
from srlab.fpga.rtl._design import RtlDesign, filter_spec, generate_verilog
from srlab.fpga.rtl._simulate import (
    SIMULATORS,
    Handshakes,
    Simulator,
    available_simulators,
    run_simulation,
)
from srlab.fpga.rtl._synth import SYNTH_TARGETS, synthesize, yosys_available

__all__ = [
    "SIMULATORS",
    "SYNTH_TARGETS",
    "CosimReport",
    "Handshakes",
    "RtlDesign",
    "Simulator",
    "available_simulators",
    "check_filter_unit",
    "cosimulate",
    "filter_reference",
    "filter_spec",
    "generate_verilog",
    "run_simulation",
    "synthesize",
    "verification_frames",
    "yosys_available",
]
