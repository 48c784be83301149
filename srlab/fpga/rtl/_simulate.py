"""Simulating the generated Verilog: a valid/ready testbench and the open-source simulators.

The testbench streams frames in raster order into the design and writes every handshake:
``I <cycle>`` when an input pixel is accepted, ``O <cycle> <hex pixel> <last>`` when an output
pixel leaves. Back-pressure comes from two 32-bit xorshift generators, drawn once a clock:
the source offers its next pixel when ``draw < valid_rate`` (and, as AXI4-Stream requires,
keeps offering it until it is taken), the sink is ready when ``draw < ready_rate``.
:mod:`srlab.fpga.cycle` draws the same numbers (:func:`~srlab.fpga.cycle.xorshift32`), so it
predicts every handshake.

Simulators are registered by name: ``icarus`` (Icarus Verilog, ``iverilog`` + ``vvp``) and
``verilator`` (``verilator --binary``, C++ through the system compiler); both are Debian
packages. :func:`available_simulators` lists those installed here.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labcore.checks import check_type
from labcore.registry import Registry
from srlab.fpga.cycle import clock_limit, rate_threshold
from srlab.fpga.rtl._design import RtlDesign
from srlab.imagecheck import check_frames

__all__ = [
    "SIMULATORS",
    "Handshakes",
    "Simulator",
    "available_simulators",
    "installed_simulator",
    "run_simulation",
    "testbench",
]


@dataclass(frozen=True)
class Simulator:
    """A Verilog simulator: how to run it and what it needs installed.

    Attributes
    ----------
    name : str
        Its registry name.
    run : callable
        ``run(folder, sources, top) -> log``: compile ``sources`` with top module ``top``
        in ``folder``, simulate, and return the simulator's output.
    programs : tuple of str
        The executables it needs on the ``PATH``.
    package : str
        The Debian package that installs them (for the not-installed message).
    """

    name: str
    run: Callable[[Path, list[Path], str], str]
    programs: tuple[str, ...]
    package: str

    def installed(self) -> bool:
        """Whether every program it needs is on the ``PATH``."""
        return all(shutil.which(p) for p in self.programs)


SIMULATORS: Registry[Simulator] = Registry("simulator", plural="simulators", item_type=Simulator)
"""Simulator name -> :class:`Simulator`; adding a simulator is adding one entry."""


def testbench(
    design: RtlDesign, n_frames: int, seeds: tuple[int, int], rates: tuple[float, float]
) -> str:
    """Verilog of the testbench for ``n_frames`` frames read from ``pixels.hex``."""
    h, w, channels = design.input_shape
    ho, wo, _ = design.output_shape
    pix = 8 * channels
    n_in, n_out = n_frames * h * w, n_frames * ho * wo
    tv, tr = (rate_threshold(r) for r in rates)
    limit = clock_limit(n_in, n_out, rates)
    return f"""`timescale 1ns/1ps
module tb;
    reg clk = 1'b0, rst = 1'b1;
    reg in_valid = 1'b0, out_ready = 1'b0;
    reg [{pix - 1}:0] in_data = {pix}'d0;
    wire in_ready, out_valid, out_last;
    wire [{pix - 1}:0] out_data;
    {design.name} dut (.clk(clk), .rst(rst), .in_valid(in_valid), .in_ready(in_ready),
        .in_data(in_data), .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data),
        .out_last(out_last));
    reg [{pix - 1}:0] pixels [0:{n_in - 1}];
    reg [31:0] rv = 32'd{seeds[0]}, rr = 32'd{seeds[1]};
    integer n_in = 0, n_out = 0, cycle = 0, warm = 0, fd;
    reg fire, hold;
    function [31:0] xorshift(input [31:0] x);
        reg [31:0] t;
        begin
            t = x ^ (x << 13); t = t ^ (t >> 17); xorshift = t ^ (t << 5);
        end
    endfunction
    task draw;  // the source's and the sink's choices for the next clock
        begin
            rv = xorshift(rv); rr = xorshift(rr);
            in_valid <= (n_in < {n_in}) && (hold || ({{15'd0, rv[15:0]}} < 17'd{tv}));
            in_data <= (n_in < {n_in}) ? pixels[n_in] : {pix}'d0;
            out_ready <= ({{15'd0, rr[15:0]}} < 17'd{tr});
        end
    endtask
    initial begin
        $readmemh("pixels.hex", pixels);
        fd = $fopen("handshakes.txt", "w");
    end
    always #5 clk = ~clk;
    always @(posedge clk) begin
        if (warm < 2) begin
            warm = warm + 1;
            hold = 1'b0;
            if (warm == 2) begin
                rst <= 1'b0;
                draw;
            end
        end else begin
            fire = in_valid && in_ready;
            if (fire) begin
                $fwrite(fd, "I %0d\\n", cycle);
                n_in = n_in + 1;
            end
            hold = in_valid && !fire;
            if (out_valid && out_ready) begin
                $fwrite(fd, "O %0d %h %0d\\n", cycle, out_data, out_last);
                n_out = n_out + 1;
            end
            if (n_out == {n_out}) begin
                $fclose(fd);
                $finish;
            end
            if (cycle > {limit}) begin
                $display("TIMEOUT after %0d clocks: %0d of {n_out} outputs", cycle, n_out);
                $fclose(fd);
                $finish;
            end
            cycle <= cycle + 1;
            draw;
        end
    end
endmodule
"""


@dataclass(frozen=True)
class Handshakes:
    """What a simulation wrote.

    Attributes
    ----------
    input_cycles : ndarray of int64
        Clock of each accepted input pixel.
    output_cycles : ndarray of int64
        Clock of each output pixel.
    outputs : ndarray of uint8 ``(n, C)``
        The output pixels in order.
    last : ndarray of bool
        Each output's ``out_last``.
    log : str
        The simulator's own output.
    """

    input_cycles: np.ndarray
    output_cycles: np.ndarray
    outputs: np.ndarray
    last: np.ndarray
    log: str


def _run(command: list[str], cwd: Path, what: str) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(
            f"{what} failed ({' '.join(command[:2])} ...):\n{done.stdout}{done.stderr}"
        )
    return done.stdout + done.stderr


def _icarus(folder: Path, sources: list[Path], top: str) -> str:
    _run(
        ["iverilog", "-g2005", "-Wall", "-s", top, "-o", "sim.vvp", *map(str, sources)],
        folder,
        "iverilog",
    )
    return _run(["vvp", "-n", "sim.vvp"], folder, "vvp")


def _verilator(folder: Path, sources: list[Path], top: str) -> str:
    _run(
        [
            "verilator",
            "--binary",
            "--timing",
            "-O1",
            "-Wno-fatal",
            "-Wno-lint",
            "-Wno-style",
            "--top-module",
            top,
            "-Mdir",
            "obj",
            *map(str, sources),
        ],
        folder,
        "verilator",
    )
    return _run([str(folder / "obj" / f"V{top}")], folder, "the Verilator model")


SIMULATORS.add_named(Simulator("icarus", _icarus, ("iverilog", "vvp"), "iverilog"))
SIMULATORS.add_named(Simulator("verilator", _verilator, ("verilator",), "verilator"))


def available_simulators() -> list[str]:
    """Registered simulators whose programs are installed here."""
    return [name for name, sim in SIMULATORS.items() if sim.installed()]


def installed_simulator(name: str) -> Simulator:
    """The registered simulator ``name``, if its programs are installed here.

    Raises
    ------
    TypeError
        ``name`` is not a str.
    ValueError
        An unknown simulator.
    RuntimeError
        The simulator is not installed here.
    """
    simulator = SIMULATORS.get(name)
    if not simulator.installed():
        raise RuntimeError(
            f"simulator {name!r} is not installed here (apt-get install {simulator.package}); "
            f"installed: {available_simulators()}"
        )
    return simulator


def run_simulation(
    design: RtlDesign,
    frames: np.ndarray,
    simulator: str = "icarus",
    seeds: tuple[int, int] = (1, 2),
    rates: tuple[float, float] = (1.0, 1.0),
    workdir: str | Path | None = None,
) -> Handshakes:
    """Simulate ``design`` on ``frames`` ``(n, H, W[, C])`` uint8 and read back its handshakes.

    Raises
    ------
    TypeError
        A design that is not an RtlDesign, frames that are not an array of numbers, a
        simulator name that is not a str.
    ValueError
        Frames of another size than the design's, an unknown simulator, a rate outside (0, 1].
    RuntimeError
        The simulator is not installed, fails, or the design stops producing pixels.
    """
    check_type(design, RtlDesign, "design", expected="an RtlDesign (from generate_verilog)")
    h, w, channels = design.input_shape
    frames = check_frames(frames, design.input_shape, needed_by="this design")
    sim = installed_simulator(simulator)
    frames = frames.reshape(len(frames), h, w, channels)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        folder = Path(tmp)
        words = frames.reshape(-1, channels)[:, ::-1]  # channel 0 in the low byte
        (folder / "pixels.hex").write_text("\n".join(bytes(p).hex() for p in words) + "\n")
        (folder / "design.v").write_text(design.verilog)
        (folder / "tb.v").write_text(testbench(design, len(frames), seeds, rates))
        log = sim.run(folder, [folder / "tb.v", folder / "design.v"], "tb")
        if "TIMEOUT" in log:
            raise RuntimeError(f"the simulated design stalled: {log.strip()}")
        lines = (folder / "handshakes.txt").read_text().split("\n")
    inputs = [int(line.split()[1]) for line in lines if line.startswith("I ")]
    outputs = [line.split() for line in lines if line.startswith("O ")]
    for index, (_, clock, value, _) in enumerate(outputs):
        if any(c in "xXzZ" for c in value):
            raise RuntimeError(
                f"the design produced unknown (X/Z) bits: output pixel {index} (frame "
                f"{index // (design.output_shape[0] * design.output_shape[1])}) at clock {clock} "
                f"reads {value}"
            )
    pixels = np.array([list(bytes.fromhex(o[2]))[::-1] for o in outputs], dtype=np.uint8).reshape(
        len(outputs), channels
    )
    return Handshakes(
        np.array(inputs, dtype=np.int64),
        np.array([int(o[1]) for o in outputs], dtype=np.int64),
        pixels,
        np.array([o[3] == "1" for o in outputs]),
        log,
    )
