"""Fixed-point arithmetic as Verilog: casts with every HLS rounding and overflow mode, and the
filter unit (one pass's multiply-accumulate over its taps).

Every value is a signed Verilog wire of exactly the width its integer range needs, tracked
here as a :class:`Value` (name, code range, fraction bits); an unsigned format is carried with
one extra (zero) sign bit. The statements mirror :func:`srlab.fixed.cast` and the MAC of
:mod:`srlab.fpga.datapath` operation for operation (``acc = acc_fmt(acc + c * p)`` tap by
tap), so the generated circuit computes the same bits; the co-simulation proves it.

Constant weights (a pass that addresses few ROM rows, e.g. any 2x design) become
shift-and-add networks from their canonical signed digits, so such a filter has no
multiplier; otherwise the weights come from a ROM (a ``case`` on the phase) and the products
are real multipliers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from srlab.fixed import ROUNDING_BIASES, QFormat, lowest_kept
from srlab.kernels import csd_digits

__all__ = ["FilterSpec", "Value", "cast_statements", "filter_module", "signed_width"]

MAX_RTL_BITS = 60
"""Widest wire the generator emits (the Python model's codes are int64)."""


def signed_width(low: int, high: int) -> int:
    """Bits of a two's complement wire that holds every integer in ``[low, high]``.

    Examples
    --------
    >>> signed_width(0, 255), signed_width(-128, 127), signed_width(-129, 0)
    (9, 8, 9)
    """
    bits = 1
    while not (-(1 << (bits - 1)) <= low and high <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def literal(value: int, width: int) -> str:
    """A signed sized Verilog literal (``-12'sd5``)."""
    return f"{'-' if value < 0 else ''}{width}'sd{abs(value)}"


@dataclass(frozen=True)
class Value:
    """A signed wire ``name`` holding integer codes in ``[low, high]`` with ``frac`` fraction bits."""

    name: str
    low: int
    high: int
    frac: int

    @property
    def width(self) -> int:
        return signed_width(self.low, self.high)

    @classmethod
    def of_format(cls, name: str, fmt: QFormat) -> Value:
        return cls(name, fmt.min_code, fmt.max_code, fmt.frac_bits)


def _wire(lines: list[str], value: Value, expression: str) -> Value:
    if value.width > MAX_RTL_BITS:
        raise ValueError(
            f"wire {value.name} needs {value.width} bits (over {MAX_RTL_BITS}); use narrower formats"
        )
    lines.append(f"    wire signed [{value.width - 1}:0] {value.name} = {expression};")
    return value


def _bias(rounding: str, v: Value, s: int, width: int) -> str:
    """The rounding bias that ``srlab.fixed`` adds before its arithmetic right shift by ``s``.

    Reads the mode's :class:`~srlab.fixed.RoundingBias`, the rule the NumPy model applies.
    """
    rule = ROUNDING_BIASES[rounding]
    base = rule.base(s)
    bias = f" + {literal(base, width)}" if base else ""
    if rule.bit is None:
        return bias
    # Bit s of a wire narrower than s + 1 bits is its sign bit (sign extension).
    index = v.width - 1 if rule.bit == "sign" else min(s, v.width - 1)
    step, zero = literal(rule.step(s), width), literal(0, width)
    chosen, other = (step, zero) if rule.when else (zero, step)
    return f"{bias} + ({v.name}[{index}] ? {chosen} : {other})"


def cast_statements(lines: list[str], v: Value, fmt: QFormat, name: str) -> Value:
    """Append the wires of ``fmt(v)`` (:func:`srlab.fixed.cast`): shift with the format's
    rounding, then its overflow mode; returns the result wire.
    """
    d = fmt.frac_bits - v.frac
    if d >= 0:
        q = Value(f"{name}_q", v.low << d, v.high << d, fmt.frac_bits)
        _wire(lines, q, f"{v.name} <<< {d}" if d else v.name)
    else:
        s = -d
        t = Value(f"{name}_t", v.low, v.high + (1 << s), v.frac)
        _wire(lines, t, f"{v.name}{_bias(fmt.rounding, v, s, t.width)}")
        q = Value(f"{name}_q", v.low >> s, (v.high >> s) + 1, fmt.frac_bits)
        _wire(lines, q, f"{t.name} >>> {s}")
    low = lowest_kept(fmt)
    out = Value(name, fmt.min_code, fmt.max_code, fmt.frac_bits)
    if low <= q.low and q.high <= fmt.max_code:  # no overflow can occur: the mode is moot
        return _wire(lines, out, q.name)
    w = max(q.width, out.width + 1)
    hi, lo = literal(fmt.max_code, w), literal(low, w)
    if fmt.overflow == "wrap":
        if q.width < fmt.word_bits:  # a narrower q (e.g. negatives into an unsigned word)
            wide = 1 << (fmt.word_bits - 1)  # sign-extends to the word before its bits are kept
            q = _wire(
                lines, Value(f"{name}_w", min(q.low, -wide), max(q.high, wide - 1), q.frac), q.name
            )
        bits = f"{q.name}[{fmt.word_bits - 1}:0]"
        return _wire(lines, out, bits if fmt.signed else f"{{1'b0, {bits}}}")
    if fmt.overflow == "sat_zero":
        outside = f"({q.name} > {hi}) || ({q.name} < {literal(fmt.min_code, w)})"
        return _wire(lines, out, f"({outside}) ? {literal(0, out.width)} : {q.name}")
    # sat, sat_sym: clamp to [low, max]
    return _wire(
        lines,
        out,
        f"({q.name} > {hi}) ? {literal(fmt.max_code, out.width)} : "
        f"({q.name} < {lo}) ? {literal(low, out.width)} : {q.name}",
    )


def _constant_product(x: Value, code: int, frac: int, name: str, lines: list[str]) -> Value:
    """``x * code`` as shifts and adds of its canonical signed digits (no multiplier)."""
    corners = (x.low * code, x.high * code)
    out = Value(name, min(corners), max(corners), x.frac + frac)
    terms = []
    for shift, digit in enumerate(csd_digits(code)):
        if digit:
            term = f"({x.name} <<< {shift})" if shift else x.name
            terms.append(("- " if digit < 0 else "+ ") + term)
    expression = " ".join(terms)
    expression = expression[2:] if expression.startswith("+ ") else f"-{expression[2:]}"
    # Operands widen to the declared width before the shifts (context-determined in Verilog).
    return _wire(lines, out, expression)


@dataclass(frozen=True)
class FilterSpec:
    """One pass's filter unit: taps from ``source`` words to one ``target`` word.

    Attributes
    ----------
    name : str
        Verilog module name.
    taps : int
    source : QFormat
        Format of the words the taps read (after ``input_cast``).
    input_format : QFormat or None
        Format the input codes arrive in, cast into ``source`` first (pixels arrive as uint8);
        None: they arrive in ``source``.
    coeff, acc, target : QFormat
        Weights, accumulator (``acc = acc_fmt(acc + c * p)``) and output formats.
    rows : dict of int to tuple of int
        Weight codes of every ROM row this pass addresses.
    phase_bits : int
        Width of the phase input (at least 1).
    constant : bool
        True: one shift-and-add MAC per distinct row and a multiplexer; False: a ROM and
        multipliers.
    """

    name: str
    taps: int
    source: QFormat
    input_format: QFormat | None
    coeff: QFormat
    acc: QFormat
    target: QFormat
    rows: dict[int, tuple[int, ...]]
    phase_bits: int
    constant: bool

    @property
    def input_width(self) -> int:
        """Bits of one tap's input code on the port."""
        return (self.input_format or self.source).signed_width

    @property
    def output_width(self) -> int:
        return self.target.signed_width


def _mac(
    spec: FilterSpec, taps: list[Value], coefficients: list, lines: list[str], tag: str
) -> Value:
    """``acc = acc_fmt(acc + c_k * p_k)`` for k = 0..T-1, then the target format."""
    acc = None
    for k, (x, c) in enumerate(zip(taps, coefficients)):
        if isinstance(c, (int, np.integer)):
            if c == 0:
                continue  # acc_fmt(acc + 0) == acc: the tap costs nothing
            product = _constant_product(x, int(c), spec.coeff.frac_bits, f"{tag}_p{k}", lines)
        else:
            corners = [x.low * c.low, x.low * c.high, x.high * c.low, x.high * c.high]
            product = _wire(
                lines,
                Value(f"{tag}_p{k}", min(corners), max(corners), x.frac + c.frac),
                f"{x.name} * {c.name}",
            )
        if acc is None:
            acc = cast_statements(lines, product, spec.acc, f"{tag}_a{k}")
            continue
        f = max(acc.frac, product.frac)
        a_shift, p_shift = f - acc.frac, f - product.frac
        total = Value(
            f"{tag}_s{k}",
            (acc.low << a_shift) + (product.low << p_shift),
            (acc.high << a_shift) + (product.high << p_shift),
            f,
        )
        terms = [
            f"({v.name} <<< {n})" if n else v.name for v, n in ((acc, a_shift), (product, p_shift))
        ]
        _wire(lines, total, " + ".join(terms))
        acc = cast_statements(lines, total, spec.acc, f"{tag}_a{k}")
    if acc is None:
        acc = _wire(lines, Value(f"{tag}_a", 0, 0, spec.acc.frac_bits), "1'sd0")
    return cast_statements(lines, acc, spec.target, f"{tag}_y")


def filter_module(spec: FilterSpec) -> str:
    """Verilog of a combinational filter unit.

    Ports: ``phase`` (``phase_bits`` wide), ``x`` (``taps`` input codes, tap k in bits
    ``[k*IW +: IW]``, two's complement), ``y`` (the output code, two's complement).
    """
    iw, ow = spec.input_width, spec.output_width
    lines = [
        f"module {spec.name} (",
        f"    input  wire [{spec.phase_bits - 1}:0] phase,",
        f"    input  wire [{spec.taps * iw - 1}:0] x,",
        f"    output wire signed [{ow - 1}:0] y",
        ");",
    ]
    taps = []
    for k in range(spec.taps):
        raw = Value.of_format(f"x{k}_in", spec.input_format or spec.source)
        _wire(lines, raw, f"$signed(x[{k * iw} +: {iw}])")
        if spec.input_format is not None:
            taps.append(cast_statements(lines, raw, spec.source, f"x{k}"))
        else:
            taps.append(raw)
    if spec.constant:
        # One network per distinct weight row (e.g. nearest's two rows serve every phase).
        groups: dict[tuple[int, ...], list[int]] = {}
        for row, codes in sorted(spec.rows.items()):
            groups.setdefault(tuple(codes), []).append(row)
        choice = literal(0, ow)
        for codes, rows in reversed(list(groups.items())):
            value = _mac(spec, taps, list(codes), lines, f"r{rows[0]}")
            hit = " || ".join(f"(phase == {spec.phase_bits}'d{row})" for row in rows)
            choice = f"({hit}) ? {value.name} : {choice}"
        lines.append(f"    assign y = {choice};")
    else:
        codes = np.array(list(spec.rows.values()))
        coefficients = []
        for k in range(spec.taps):
            c = Value(f"c{k}", int(codes[:, k].min()), int(codes[:, k].max()), spec.coeff.frac_bits)
            cw = c.width
            lines.append(f"    reg signed [{cw - 1}:0] {c.name};")
            lines.append("    always @(*) begin")
            lines.append("        case (phase)")
            for row, values in sorted(spec.rows.items()):
                lines.append(
                    f"            {spec.phase_bits}'d{row}: {c.name} = {literal(values[k], cw)};"
                )
            lines.append(f"            default: {c.name} = {literal(0, cw)};")
            lines.append("        endcase")
            lines.append("    end")
            coefficients.append(Value(c.name, min(c.low, 0), max(c.high, 0), c.frac))
        lines.append(f"    assign y = {_mac(spec, taps, coefficients, lines, 'm').name};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"
