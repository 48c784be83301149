"""The streaming resizer as synthesizable Verilog-2005: line buffers, phase accumulators, the
two filter units, valid/ready handshakes on both sides.

The design is the vertical-first datapath of :class:`~srlab.fpga.datapath.FixedPointResizer`
(``pass_order="vh"``): input pixels go into ``S`` line buffers (``S`` = taps, rounded up to a
power of two), one memory per buffer with a registered read port (block RAM); the vertical
filter turns the taps' rows at one input column into one ``mid_fmt`` word; a window of ``T``
such words slides along the row, and the horizontal filter turns it into an output pixel.

Per clock (``srlab.fpga.cycle`` is the same schedule in Python):

* **write**: an input pixel is accepted when its row's buffer is free (every output row still
  to come starts at or after the row it held), into buffer ``row mod S``;
* **push**: when the window lacks the next output's last tap and that column has been in its
  buffer since the last clock, the vertical filter's word enters the window (the first column
  of a row fills it, the last is repeated past the right edge: replicated borders);
* **emit**: when the window (after the push) holds the next output's taps and the output
  register is free or being read, the horizontal filter's pixel enters it.

So at most one input pixel and one output pixel move per clock; an upscale by 2 emits every
clock with the input stalled three clocks in four. A frame ends when its last pixel has left
and its last input pixel has arrived; the next starts on the following clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from labcore.checks import check_choice, check_int, check_type
from srlab.fixed import QFormat
from srlab.fpga.cycle import line_buffer_count
from srlab.fpga.datapath import FixedPointResizer
from srlab.fpga.rom import constant_weights
from srlab.fpga.rtl._fixed_verilog import FilterSpec, filter_module, literal, signed_width

__all__ = ["RtlDesign", "filter_spec", "generate_verilog"]

UINT8 = QFormat(8, 8, signed=False)


@dataclass(frozen=True)
class RtlDesign:
    """Generated Verilog of one resizer for one input size.

    Attributes
    ----------
    name : str
        Top module name.
    resizer : FixedPointResizer
        The design it implements (vertical first).
    input_shape : tuple of int
        ``(H, W, C)``.
    output_shape : tuple of int
        ``(H_out, W_out, C)``.
    line_buffers : int
        Line buffers ``S`` (rows of ``W`` input pixels each).
    vertical, horizontal : FilterSpec
        The two filter units.
    verilog : str
        The modules: both filter units and the top.
    """

    name: str
    resizer: FixedPointResizer
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    line_buffers: int
    vertical: FilterSpec
    horizontal: FilterSpec
    verilog: str


def check_module_name(name: str) -> str:
    """``name`` if it is a Verilog module name (letters, digits and ``_``, no keyword).

    Raises
    ------
    TypeError
        ``name`` is not a str.
    ValueError
        It is no Verilog identifier, or a keyword.
    """
    check_type(name, str, "name", expected="a Verilog module name (str)")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name in _KEYWORDS:
        raise ValueError(
            f"name {name!r} is not a Verilog module name: letters, digits and _, not starting "
            "with a digit, and no keyword"
        )
    return name


def filter_spec(r: FixedPointResizer, axis: str, n_in: int, name: str) -> FilterSpec:
    """The filter unit of one pass of the vertical-first design (``axis`` "y" first, then "x").

    Parameters
    ----------
    r : FixedPointResizer
        The design.
    axis : {"y", "x"}
        The pass: "y" (first, from uint8 pixels) or "x" (second, from line-buffer words).
    n_in : int
        Input samples along ``axis`` (frame height or width).
    name : str
        Verilog module name of the unit.

    Returns
    -------
    FilterSpec

    Raises
    ------
    TypeError
        A wrong type of any argument.
    ValueError
        An unknown axis, ``n_in`` below 1, a name that is no Verilog identifier.
    """
    check_type(r, FixedPointResizer, "r")
    check_choice(axis, "axis", ("y", "x"))
    check_int(n_in, "n_in", minimum=1)
    check_module_name(name)
    _, phase, _ = r.tap_table(axis, n_in)
    used = sorted({int(p) for p in phase})
    rows = {p: tuple(int(c) for c in r.coefficients[p]) for p in used}
    first = axis == "y"
    return FilterSpec(
        name=name,
        taps=r.taps,
        source=r.pixel_fmt if first else r.mid_fmt,
        input_format=UINT8 if first else None,
        coeff=r.coeff_fmt,
        acc=r.acc_fmt,
        target=r.mid_fmt if first else r.out_fmt,
        rows=rows,
        phase_bits=max(r.phase_bits, 1),
        constant=constant_weights(len(set(rows.values()))),
    )


def _check(resizer: FixedPointResizer, shape: tuple[int, ...]) -> tuple[int, int, int]:
    if not isinstance(resizer, FixedPointResizer):
        raise TypeError(f"expected a FixedPointResizer, got {type(resizer).__name__}")
    if resizer.pass_order != "vh":
        raise ValueError(
            "the generated RTL runs the vertical pass first, which rounds in other places than "
            "the horizontal-first model; pass dataclasses.replace(resizer, pass_order='vh')"
        )
    if len(shape) not in (2, 3) or any(
        isinstance(n, bool) or not float(n).is_integer() or n < 1 for n in shape
    ):
        raise ValueError(f"input_shape must be (H, W) or (H, W, C) of positive ints, got {shape!r}")
    h, w = int(shape[0]), int(shape[1])
    if min(h, w) < resizer.taps:
        raise ValueError(
            f"a {h}x{w} input is smaller than the {resizer.taps}-tap kernel; use at least "
            f"{resizer.taps} pixels a side"
        )
    return h, w, int(shape[2]) if len(shape) == 3 else 1


def generate_verilog(
    resizer: FixedPointResizer, input_shape: tuple[int, ...], name: str = "sr_resizer"
) -> RtlDesign:
    """Verilog of the streaming vertical-first resizer for one input size.

    Parameters
    ----------
    resizer : FixedPointResizer
        With ``pass_order="vh"``; its formats, DDAs and ROM are built in.
    input_shape : (H, W) or (H, W, C)
        Frame size (fixed in the circuit) and channels (carried side by side, 8 bits each).
    name : str, default "sr_resizer"
        Top module name; the filter units are ``{name}_vfilter`` and ``{name}_hfilter``.

    Returns
    -------
    RtlDesign

    Raises
    ------
    TypeError
        If ``resizer`` is not a FixedPointResizer, or ``name`` not a str.
    ValueError
        A horizontal-first design, a frame smaller than the kernel, a name that is no Verilog
        identifier, or a format whose wires would exceed 60 bits.

    Examples
    --------
    >>> r = FixedPointResizer("bilinear", 2, pass_order="vh")
    >>> d = generate_verilog(r, (4, 6))
    >>> d.output_shape, d.line_buffers, d.vertical.constant
    ((8, 12, 1), 2, True)
    """
    h, w, channels = _check(resizer, tuple(input_shape))
    check_module_name(name)
    h_out, w_out = resizer.output_shape((h, w))
    vertical = filter_spec(resizer, "y", h, f"{name}_vfilter")
    horizontal = filter_spec(resizer, "x", w, f"{name}_hfilter")
    slots = line_buffer_count(resizer.taps)
    top = _top(resizer, name, (h, w, channels), (h_out, w_out), slots, vertical, horizontal)
    verilog = "\n".join(
        [
            f"// Generated by srlab.fpga.rtl: {resizer.kernel.name} x{resizer.scale}, "
            f"{h}x{w}x{channels} -> {h_out}x{w_out}x{channels}, vertical pass first.",
            "// pixel " + ", ".join(f"{k} {getattr(resizer, k)}" for k in _FORMATS),
            filter_module(vertical),
            filter_module(horizontal),
            top,
        ]
    )
    return RtlDesign(
        name,
        resizer,
        (h, w, channels),
        (h_out, w_out, channels),
        slots,
        vertical,
        horizontal,
        verilog,
    )


_FORMATS = ("pixel_fmt", "coeff_fmt", "acc_fmt", "mid_fmt", "out_fmt")
_KEYWORDS = frozenset(
    "always and assign begin case default else end endcase endfunction endmodule function if "
    "initial inout input integer localparam module negedge or output parameter posedge reg "
    "signed wire".split()
)


def _bits(n: int) -> int:
    """Unsigned bits that count 0..n."""
    return max(int(n).bit_length(), 1)


def _top(
    r: FixedPointResizer,
    name: str,
    shape: tuple[int, int, int],
    out_hw: tuple[int, int],
    slots: int,
    vertical: FilterSpec,
    horizontal: FilterSpec,
) -> str:
    h, w, channels = shape
    h_out, w_out = out_hw
    taps, offsets = r.taps, [int(o) for o in r.kernel.offsets]
    dy, dx = r.dda_y, r.dda_x
    ay_w = dy.register_bits(h) + 2
    ax_w = dx.register_bits(w) + 2
    pb = max(r.phase_bits, 1)
    mw = vertical.output_width  # a mid word (signed)
    sb = max((slots - 1).bit_length(), 1)
    pix = 8 * channels
    rw, cw = _bits(h), _bits(w)
    iw = signed_width(-2, max(h, w) + taps + 2)  # indices, columns, window positions
    yw, xw = _bits(h_out), _bits(w_out)

    def phase(acc: str, frac: int) -> str:
        if r.phase_bits == 0:
            return "1'b0"
        return f"{acc}[{frac - 1}:{frac - r.phase_bits}]"

    def clip_row(expr: str) -> str:
        return f"(({expr}) < 0) ? {literal(0, iw)} : (({expr}) > {literal(h - 1, iw)}) ? {literal(h - 1, iw)} : ({expr})"

    v = []
    add = v.append
    add(f"module {name} (")
    add("    input  wire clk,")
    add("    input  wire rst,")
    add("    input  wire in_valid,")
    add("    output wire in_ready,")
    add(f"    input  wire [{pix - 1}:0] in_data,")
    add("    output reg  out_valid,")
    add("    input  wire out_ready,")
    add(f"    output reg  [{pix - 1}:0] out_data,")
    add("    output reg  out_last")
    add(");")
    add(f"    localparam integer W = {w}, H = {h}, WO = {w_out}, HO = {h_out};")
    add("    // ---- writer: input pixels into line buffer (row mod S)")
    add(f"    reg [{rw - 1}:0] wr_row;")
    add(f"    reg [{cw - 1}:0] wr_col;")
    add(f"    reg [{rw - 1}:0] wr_row_d;  // the writer's position a clock ago: the pixels")
    add(f"    reg [{cw - 1}:0] wr_col_d;  // before it have been in the buffers for a clock")
    add("    // ---- reader: output row y, its DDA; output column, its DDA; the window")
    add(f"    reg [{yw - 1}:0] y;")
    add(f"    reg [{xw - 1}:0] xo;")
    add(f"    reg signed [{ay_w - 1}:0] ay;")
    add(f"    reg signed [{ax_w - 1}:0] ax;")
    add(
        f"    reg signed [{iw - 1}:0] newest;  // input column of the window's newest word (-1: empty)"
    )
    for k in range(taps):
        add(f"    reg [{channels * mw - 1}:0] win{k};")
    add(f"    wire signed [{iw - 1}:0] iy = ay >>> {dy.frac_bits};")
    add(f"    wire signed [{iw - 1}:0] ix = ax >>> {dx.frac_bits};")
    add(f"    wire [{pb - 1}:0] phase_y = {phase('ay', dy.frac_bits)};")
    add(f"    wire [{pb - 1}:0] phase_x = {phase('ax', dx.frac_bits)};")
    for k, off in enumerate(offsets):
        add(f"    wire signed [{iw - 1}:0] row{k} = {clip_row(f'iy + {literal(off, iw)}')};")
    add(
        f"    wire signed [{iw - 1}:0] need = ix + {literal(offsets[-1], iw)};  // last tap of output xo"
    )
    add("    wire row_active = (y < HO);")
    add("    wire frame_done = !row_active && (wr_row == H);")
    add("    wire advance = !out_valid || out_ready;")
    add(f"    wire signed [{iw - 1}:0] col_next = newest + {literal(1, iw)};")
    add(
        f"    wire signed [{iw - 1}:0] col = (col_next > {literal(w - 1, iw)}) ? {literal(w - 1, iw)} : col_next;"
    )
    last_row = f"row{taps - 1}[{rw}:0]"  # the column's last tap: in the buffer a clock ago?
    add(
        f"    wire col_ready = ({{1'b0, wr_row_d}} > {last_row}) || "
        f"(({{1'b0, wr_row_d}} == {last_row}) && ({{1'b0, wr_col_d}} > col[{cw}:0]));"
    )
    add("    wire do_push = row_active && advance && (newest < need) && col_ready;")
    add(f"    wire signed [{iw - 1}:0] newest1 = do_push ? newest + {literal(1, iw)} : newest;")
    add("    wire do_emit = row_active && advance && (newest1 >= need);")
    add("    wire row_end = do_emit && (xo == WO - 1);")
    add(
        f"    wire signed [{iw - 1}:0] newest_next = frame_done || row_end ? {literal(-1, iw)} : newest1;"
    )
    add(f"    wire signed [{iw - 1}:0] rd_col_s = newest_next + {literal(1, iw)};")
    add(
        f"    wire [{cw - 1}:0] rd_col = (rd_col_s > {literal(w - 1, iw)}) ? W - 1 : rd_col_s[{cw - 1}:0];"
    )
    add(
        f"    wire [{sb - 1}:0] wr_slot = wr_row[{sb - 1}:0];"
        if slots > 1
        else f"    wire [{sb - 1}:0] wr_slot = 1'b0;"
    )
    add(f"    wire [{rw:d}:0] lo_plus_s = row0[{rw}:0] + {slots};")
    add("    assign in_ready = (wr_row < H) && (!row_active || (wr_row < lo_plus_s));")
    add("    wire in_fire = in_valid && in_ready;")
    add("    // ---- line buffers: one memory per buffer, registered read at column rd_col")
    for s in range(slots):
        add(f"    reg [{pix - 1}:0] lb{s} [0:W-1];")
        add(f"    reg [{pix - 1}:0] rd{s};")
        add("    always @(posedge clk) begin")
        add(f"        if (in_fire && wr_slot == {sb}'d{s}) lb{s}[wr_col] <= in_data;")
        add(f"        rd{s} <= lb{s}[rd_col];")
        add("    end")
    add("    // ---- taps of the vertical filter: each tap's row from its buffer")
    for k in range(taps):
        add(f"    reg [{pix - 1}:0] tap{k};")
        add("    always @(*) begin")
        if slots > 1:
            add(f"        case (row{k}[{sb - 1}:0])")
            for s in range(slots):
                add(f"            {sb}'d{s}: tap{k} = rd{s};")
            add(f"            default: tap{k} = {pix}'d0;")
            add("        endcase")
        else:
            add(f"        tap{k} = rd0;")
        add("    end")
    for c in range(channels):  # uint8 taps enter the filter as 9-bit two's complement codes
        bus = ", ".join(f"{{1'b0, tap{k}[{8 * c + 7}:{8 * c}]}}" for k in reversed(range(taps)))
        add(f"    wire signed [{mw - 1}:0] vword{c};")
        add(f"    {vertical.name} vf{c} (.phase(phase_y), .x({{{bus}}}), .y(vword{c}));")
    vword = "{" + ", ".join(f"vword{c}" for c in reversed(range(channels))) + "}"
    add(f"    wire [{channels * mw - 1}:0] vword = {vword};")
    add("    // ---- the window after this clock's push")
    for k in range(taps):
        shifted = "vword" if k == taps - 1 else f"win{k + 1}"
        add(
            f"    wire [{channels * mw - 1}:0] win{k}_next = !do_push ? win{k} : "
            f"(newest < 0) ? vword : {shifted};"
        )
    ow = horizontal.output_width
    for c in range(channels):
        bus = ", ".join(f"win{k}_next[{c * mw + mw - 1}:{c * mw}]" for k in reversed(range(taps)))
        add(f"    wire signed [{ow - 1}:0] pixel{c};")
        add(f"    {horizontal.name} hf{c} (.phase(phase_x), .x({{{bus}}}), .y(pixel{c}));")
    pixel = "{" + ", ".join(f"pixel{c}[7:0]" for c in reversed(range(channels))) + "}"
    add("    always @(posedge clk) begin")
    add("        if (rst) begin")
    add("            wr_row <= 0; wr_col <= 0; wr_row_d <= 0; wr_col_d <= 0;")
    add(
        f"            y <= 0; xo <= 0; ay <= {literal(dy.start, ay_w)}; ax <= {literal(dx.start, ax_w)};"
    )
    add(
        f"            newest <= {literal(-1, iw)}; out_valid <= 1'b0; out_last <= 1'b0; out_data <= 0;"
    )
    add("        end else begin")
    add("            wr_row_d <= wr_row; wr_col_d <= wr_col;")
    add("            if (in_fire) begin")
    add("                if (wr_col == W - 1) begin wr_col <= 0; wr_row <= wr_row + 1'b1; end")
    add("                else wr_col <= wr_col + 1'b1;")
    add("            end")
    add("            if (advance) begin")
    add("                out_valid <= do_emit;")
    add(
        f"                if (do_emit) begin out_data <= {pixel}; out_last <= (y == HO - 1) && (xo == WO - 1); end"
    )
    add("            end")
    add("            if (do_push) begin")
    for k in range(taps):
        add(f"                win{k} <= win{k}_next;")
    add("            end")
    add("            newest <= newest_next;")
    add("            if (do_emit) begin")
    add("                if (xo == WO - 1) begin")
    add(
        f"                    xo <= 0; ax <= {literal(dx.start, ax_w)}; y <= y + 1'b1; ay <= ay + {literal(dy.step, ay_w)};"
    )
    add("                end else begin")
    add(f"                    xo <= xo + 1'b1; ax <= ax + {literal(dx.step, ax_w)};")
    add("                end")
    add("            end")
    add("            if (frame_done) begin")
    add(f"                y <= 0; ay <= {literal(dy.start, ay_w)}; wr_row <= 0; wr_col <= 0;")
    add("                wr_row_d <= 0; wr_col_d <= 0;")
    add("            end")
    add("        end")
    add("    end")
    add("endmodule")
    return "\n".join(v) + "\n"
