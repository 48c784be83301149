"""Synthesis resource counts of the generated Verilog with Yosys (a Debian package).

``xilinx`` runs ``synth_xilinx -family xcup`` (Zynq UltraScale+: LUT6, flip-flops, CARRY,
DSP48E2, RAMB18E2/RAMB36E2 block RAM), the target of the published bicubic IP that
``srlab.fpga.cost`` compares with; ``generic`` runs ``synth`` to Yosys' own gate cells.
Counts come from Yosys' ``stat`` of the flattened top module: a technology-mapped netlist
before placement, so LUT counts are an upper bound of what a vendor tool packs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd

from labcore.checks import check_type
from labcore.registry import Registry
from srlab.fpga.rtl._design import RtlDesign

__all__ = ["SYNTH_TARGETS", "synthesize", "yosys_available"]

SYNTH_TARGETS: Registry[str] = Registry(
    "synthesis target", plural="targets", sort=False, item_type=str
)
"""Target name -> the Yosys synthesis command (``{top}`` is the top module's name)."""
SYNTH_TARGETS.add("xilinx", "synth_xilinx -family xcup -flatten -top {top}")
SYNTH_TARGETS.add("generic", "synth -flatten -top {top}")


def yosys_available() -> bool:
    """Whether ``yosys`` is installed here."""
    return shutil.which("yosys") is not None


def _group(cell: str) -> str:
    if re.fullmatch(r"LUT\d", cell):
        return "lut"
    if re.fullmatch(r"FD[A-Z]*", cell) or cell.startswith("$_DFF") or cell.startswith("$_SDFF"):
        return "flip_flops"
    if cell.startswith("DSP48") or cell == "$mul":
        return "dsp"
    if cell.startswith("RAMB18"):
        return "bram18"
    if cell.startswith("RAMB36"):
        return "bram36"
    if cell.startswith("CARRY"):
        return "carry"
    if re.fullmatch(r"RAM\d+[MSX]\w*", cell) or cell.startswith("SRL"):
        return "lutram"
    return "other"


def synthesize(design: RtlDesign, target: str = "xilinx", timeout_s: float = 600) -> pd.Series:
    """Synthesize ``design`` with Yosys and count its cells.

    Parameters
    ----------
    design : RtlDesign
    target : {"xilinx", "generic"}, default "xilinx"
    timeout_s : float, default 600

    Returns
    -------
    pandas.Series
        ``lut``, ``flip_flops``, ``dsp``, ``bram18``, ``bram36``, ``carry``, ``lutram``,
        ``other`` and ``cells`` (all cells of the mapped netlist), then each cell type's count.

    Raises
    ------
    RuntimeError
        Yosys is not installed, or fails.
    TypeError
        A design that is not an RtlDesign, a target that is not a str.
    ValueError
        An unknown target.

    Examples
    --------
    >>> from srlab.fpga import FixedPointResizer
    >>> from srlab.fpga.rtl import generate_verilog
    >>> d = generate_verilog(FixedPointResizer("bilinear", 2, pass_order="vh"), (4, 6))
    >>> int(synthesize(d)["dsp"]) if yosys_available() else 0  # 2x: constant weights, no multiplier
    0
    """
    check_type(design, RtlDesign, "design", expected="an RtlDesign (from generate_verilog)")
    command = SYNTH_TARGETS.get(target)
    if not yosys_available():
        raise RuntimeError("yosys is not installed here (apt-get install yosys)")
    script = f"read_verilog design.v; {command.format(top=design.name)}; tee -o stat.txt stat"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "design.v").write_text(design.verilog)
        done = subprocess.run(
            ["yosys", "-q", "-p", script],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"yosys failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        stat = (folder / "stat.txt").read_text()
    cells = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s+(\S+)\s+(\d+)\s*$", stat, re.M)}
    total = re.search(r"Number of cells:\s+(\d+)", stat)
    counts = dict.fromkeys(
        ("lut", "flip_flops", "dsp", "bram18", "bram36", "carry", "lutram", "other"), 0
    )
    for cell, n in cells.items():
        if cell in ("IBUF", "OBUF", "BUFG"):  # pads of a design synthesized as a chip top
            continue
        counts[_group(cell)] += n
    counts["cells"] = int(total.group(1)) if total else sum(cells.values())
    return pd.Series({**counts, **cells}, name=design.name, dtype=object).map(int)
