"""Bit-true fixed-point resizer: the FPGA interpolation datapath, vectorized.

The datapath
------------
A separable resizer that a line-buffer FPGA design implements, pass by pass::

    uint8 pixel  -> pixel_fmt
    horizontal pass, output column x:
        DDA_x -> (i0, phase);  ROM[phase] -> c_0 .. c_{T-1}      (coeff_fmt)
        acc = 0; for k in 0..T-1: acc = acc_fmt(acc + c_k * p[i0 + off_k])
        mid = mid_fmt(acc)                                       -> line buffers
    vertical pass, output row y: the same MAC over T buffered rows
        out = out_fmt(acc)                                       -> uint8

``acc = acc_fmt(acc + c * p)`` is the HLS statement ``acc += c * p`` with ``acc``
declared ``acc_fmt``: the product is exact, the sum is exact, the assignment rounds
and overflows with ``acc_fmt``'s modes (:func:`srlab.fixed.cast`). Taps are
accumulated in order ``k = 0 .. T-1`` at offsets ``-(T/2 - 1) .. T/2``; a tap outside
the image reads the edge pixel (replicate), as a line buffer that repeats its first
and last pixel does.

Where the parts live
--------------------
:mod:`srlab.fpga.dda`
    The phase accumulator (:class:`PhaseDDA`) and how its positions compare with the
    float geometry of :func:`srlab.resize`.
:mod:`srlab.fpga.rom`
    The coefficient ROM and the sizing of the formats (:func:`minimum_int_bits`).
:mod:`srlab.fpga.fastpath`
    The exact float path that :meth:`FixedPointResizer.run` takes where the formats
    allow it; elsewhere it runs tap by tap (``int64`` gathers and :mod:`srlab.fixed`
    arithmetic), equally bit-true and about ten times slower.
This module
    :class:`FixedPointResizer`, which puts them together, and the tap-by-tap path.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from labcore.checks import check_choice
from srlab._separable import check_scale, geometry, horizontal, vertical
from srlab.fixed import (
    MAX_WORD_BITS,
    FixedArray,
    QFormat,
    add,
    add_format,
    cast,
    multiply,
    multiply_format,
    quantize,
)
from srlab.fpga._checks import check_bits, check_format
from srlab.fpga.dda import MAX_DDA_FRAC_BITS, MAX_PHASE_BITS, PhaseDDA, PhaseRounding
from srlab.fpga.fastpath import TAP_BY_TAP, coefficient_plan, finish_sums, pass_spec, pixel_floats
from srlab.fpga.rom import (
    build_rom,
    check_rom_fits,
    minimum_int_bits,
    prefix_bounds,
    shift_outward,
)
from srlab.imagecheck import check_image
from srlab.kernels import Kernel, get_kernel

# The DDA names and minimum_int_bits stay importable from here, where they were first.
__all__ = [
    "MAX_DDA_FRAC_BITS",
    "MAX_PHASE_BITS",
    "DatapathTrace",
    "FixedPointResizer",
    "PhaseDDA",
    "PhaseRounding",
    "minimum_int_bits",
]

RunPath = Literal["auto", "taps"]
PassOrder = Literal["hv", "vh"]
FormatLike = QFormat | str


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class DatapathTrace:
    """What each stage of one run produced.

    Attributes
    ----------
    pixels : FixedArray
        Input pixels in ``pixel_fmt``, ``(H, W, C)``.
    mid : FixedArray
        First pass output in ``mid_fmt``: ``(H, W_out, C)`` horizontal first (what the line
        buffers hold), ``(H_out, W, C)`` vertical first.
    output : ndarray of uint8
        The resized image, ``(H_out, W_out)`` or ``(H_out, W_out, C)`` like the input.
    """

    pixels: FixedArray
    mid: FixedArray
    output: np.ndarray


# --------------------------------------------------------------------------- resizer


@dataclass(frozen=True)
class FixedPointResizer:
    """Bit-true model of a separable fixed-point resizer (see the module notes).

    Parameters
    ----------
    kernel : str or Kernel, default "bicubic"
        Interpolation kernel (:func:`srlab.kernels.get_kernel`); build one with
        parameters first, e.g. ``get_kernel("bicubic", a=-0.75)``.
    scale : float or (sy, sx), default 2.0
        Output size ``round(H * sy), round(W * sx)``, mapped with ``1 / scale`` as
        :func:`srlab.resize` does. Fixed-phase kernels (``shift_add_2x*``) need exactly 2.
    pixel_fmt : QFormat or str, default "ap_ufixed<8,8>"
        Input pixels; uint8 values are converted with its rounding and overflow modes.
    coeff_fmt : QFormat or str, default "ap_fixed<12,2,RND,SAT>"
        Weight ROM words; the float weights are rounded with its rounding mode.
    acc_fmt : QFormat or str, default "ap_fixed<24,12>"
        Accumulator of both passes (``acc += c * p`` rounds and overflows with it).
    out_fmt : QFormat or str, default "ap_ufixed<8,8,RND,SAT>"
        Output pixels: unsigned with 8 integer and 0 fraction bits; its modes choose the
        output rounding and what happens to overshoot (``SAT`` clamps, ``WRAP`` wraps).
    mid_fmt : QFormat or str or None, default "ap_fixed<12,10,RND,SAT>"
        Words between the passes (the line buffers); ``None`` keeps ``acc_fmt``.
    phase_bits : int, default 6
        ROM rows ``2**phase_bits``.
    dda_frac_bits : int, default 16
        Fraction bits of the phase accumulators.
    phase_rounding : {"nearest", "truncate"}, default "nearest"
        See :class:`PhaseDDA`.
    unity_gain : bool, default True
        Correct each ROM row so its codes add up to exactly one.
    pass_order : {"hv", "vh"}, default "hv"
        ``"hv"``: the horizontal pass first, its ``mid_fmt`` words in the line buffers (the
        module notes); ``"vh"``: the vertical pass first over line buffers of input pixels,
        then the horizontal pass (what :mod:`srlab.fpga.rtl` generates). The two round in
        different places, so their bits differ slightly.

    Attributes
    ----------
    dda_y, dda_x : PhaseDDA
        Phase accumulators of the vertical and horizontal pass.
    coefficients : (2**phase_bits, taps) ndarray of int64
        ROM codes in ``coeff_fmt``; for fixed-phase kernels only the rows of their
        phases hold weights (the others are zero and never addressed at scale 2).

    Raises
    ------
    TypeError
        A format that is neither a QFormat nor a string, a kernel that is neither a name
        nor a Kernel, a bit count that is not an integer, a name that is not a string,
        or a ``unity_gain`` that is not a bool.
    ValueError
        A format string that is not an HLS spelling, a format with ``word_bits < int_bits``
        or more than 62 bits, or an unknown mode; an output format other than an 8-bit
        unsigned integer; a coefficient format that cannot hold the kernel's weights (the
        message gives the minimum integer bits); a product or sum wider than 62 bits; a
        fixed-phase kernel at a scale other than 2; bit counts out of range or unknown names.

    Examples
    --------
    >>> r = FixedPointResizer("bicubic", 2)
    >>> r.run(np.full((6, 5), 200, np.uint8)).tolist()[0]
    [200, 200, 200, 200, 200, 200, 200, 200, 200, 200]
    >>> str(r.coeff_fmt), r.coefficients.shape
    ('ap_fixed<12,2,RND,SAT>', (64, 4))
    """

    kernel: str | Kernel = "bicubic"
    scale: float | tuple[float, float] = 2.0
    pixel_fmt: FormatLike = "ap_ufixed<8,8>"
    coeff_fmt: FormatLike = "ap_fixed<12,2,RND,SAT>"
    acc_fmt: FormatLike = "ap_fixed<24,12>"
    out_fmt: FormatLike = "ap_ufixed<8,8,RND,SAT>"
    mid_fmt: FormatLike | None = "ap_fixed<12,10,RND,SAT>"
    phase_bits: int = 6
    dda_frac_bits: int = 16
    phase_rounding: PhaseRounding = "nearest"
    unity_gain: bool = True
    pass_order: PassOrder = "hv"
    dda_y: PhaseDDA = field(init=False, repr=False)
    dda_x: PhaseDDA = field(init=False, repr=False)
    coefficients: np.ndarray = field(init=False, repr=False, compare=False)
    coefficient_rows: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = functools.partial(object.__setattr__, self)
        kernel = get_kernel(self.kernel)
        if kernel.rule == "area":
            raise ValueError(
                "kernel 'area' averages each output pixel's footprint, which a phase accumulator "
                "with a coefficient ROM does not compute; use 'bilinear' or 'bicubic' for the datapath"
            )
        set_("kernel", kernel)
        sy, sx = check_scale(self.scale)
        set_("scale", (sy, sx))
        for name in ("pixel_fmt", "coeff_fmt", "acc_fmt", "out_fmt"):
            set_(name, check_format(name, getattr(self, name)))
        set_(
            "mid_fmt",
            self.acc_fmt if self.mid_fmt is None else check_format("mid_fmt", self.mid_fmt),
        )
        if self.out_fmt.signed or self.out_fmt.word_bits != 8 or self.out_fmt.int_bits != 8:
            raise ValueError(
                f"out_fmt {self.out_fmt} must be an 8-bit unsigned integer format, ap_ufixed<8,8,Q,O>, "
                "since the output is uint8; choose its rounding and overflow modes, e.g. 'ap_ufixed<8,8,RND,SAT>'"
            )
        check_choice(self.pass_order, "pass_order", ("hv", "vh"))
        if not isinstance(self.unity_gain, (bool, np.bool_)):
            raise TypeError(f"unity_gain must be True or False, got {self.unity_gain!r}")
        if kernel.phases is not None and (abs(sy - 2.0) > 1e-12 or abs(sx - 2.0) > 1e-12):
            raise ValueError(
                f"kernel {kernel.name!r} has fixed phases {kernel.phases} and only works at scale 2; got scale "
                f"({sy:g}, {sx:g}); use scale=2 or a continuous kernel such as 'bicubic'"
            )
        set_("dda_y", PhaseDDA(1.0 / sy, self.dda_frac_bits, self.phase_bits, self.phase_rounding))
        set_("dda_x", PhaseDDA(1.0 / sx, self.dda_frac_bits, self.phase_bits, self.phase_rounding))
        set_("phase_bits", self.dda_x.phase_bits)
        set_("dda_frac_bits", self.dda_x.frac_bits)
        codes, rows = build_rom(kernel, self.phase_bits, self.coeff_fmt, bool(self.unity_gain))
        check_rom_fits(codes[rows], self.coeff_fmt, kernel)
        codes.setflags(write=False)
        rows.setflags(write=False)
        set_("coefficients", codes)
        set_("coefficient_rows", rows)
        # Every product and sum must fit the 62-bit codes of srlab.fixed; fail here, not mid-image.
        for source in (self.pixel_fmt, self.mid_fmt):
            add_format(self.acc_fmt, multiply_format(source, self.coeff_fmt))

    @classmethod
    def from_fraction_bits(
        cls,
        kernel: str | Kernel = "bicubic",
        scale: float | tuple[float, float] = 2.0,
        coeff_frac_bits: int = 10,
        acc_frac_bits: int = 12,
        *,
        mid_frac_bits: int | None = None,
        acc_rounding: str = "trn",
        **options: Any,
    ) -> FixedPointResizer:
        """A design given by its fraction bits, with the fewest integer bits that never overflow.

        Coefficients are ``ap_fixed`` (``ap_ufixed`` when no weight is negative) with
        rounding to nearest and just enough integer bits for the ROM; the line-buffer
        words keep ``mid_frac_bits`` (default ``acc_frac_bits``) and the range of the
        horizontal pass (RND, SAT); the accumulator gets the integer bits of the largest
        partial sum of either pass (``acc_rounding``, WRAP); pixels are ``ap_ufixed<8,8>``
        and the output ``ap_ufixed<8,8,RND,SAT>``.

        Parameters
        ----------
        kernel, scale
            As for the class.
        coeff_frac_bits : int, default 10
            Fraction bits of the weights, 1..40.
        acc_frac_bits : int, default 12
            Fraction bits of the accumulator, 0..40.
        mid_frac_bits : int, optional
            Fraction bits of the line-buffer words, 0..40; default ``acc_frac_bits``.
        acc_rounding : str, default "trn"
            Rounding of ``acc += c * p`` when the product has more fraction bits
            (TRN drops them, which costs nothing in hardware).
        **options
            ``phase_bits``, ``dda_frac_bits``, ``phase_rounding``, ``unity_gain``.

        Returns
        -------
        FixedPointResizer

        Raises
        ------
        TypeError
            For a bit count that is not an integer, or as the class does.
        ValueError
            For bit counts out of range, or as the class does.

        Examples
        --------
        >>> r = FixedPointResizer.from_fraction_bits("bicubic", 2, coeff_frac_bits=8, acc_frac_bits=4)
        >>> str(r.coeff_fmt), str(r.mid_fmt), str(r.acc_fmt)
        ('ap_fixed<10,2,RND,SAT>', 'ap_fixed<14,10,RND,SAT>', 'ap_fixed<15,11>')
        """
        coeff_frac = check_bits("coeff_frac_bits", coeff_frac_bits, 1, 40)
        acc_frac = check_bits("acc_frac_bits", acc_frac_bits, 0, 40)
        mid_frac = (
            acc_frac if mid_frac_bits is None else check_bits("mid_frac_bits", mid_frac_bits, 0, 40)
        )
        k = get_kernel(kernel)
        phase_bits = check_bits("phase_bits", options.get("phase_bits", 6), 0, MAX_PHASE_BITS)
        pixel = QFormat(8, 8, signed=False)
        wide = QFormat(MAX_WORD_BITS, MAX_WORD_BITS - coeff_frac, rounding="rnd")
        codes, rows = build_rom(k, phase_bits, wide, bool(options.get("unity_gain", True)))
        codes = np.unique(codes[rows], axis=0)
        low, high = int(codes.min()), int(codes.max())
        signed = low < 0
        coeff_int = minimum_int_bits(low, high, coeff_frac, signed)
        coeff = QFormat(coeff_int + coeff_frac, coeff_int, signed, "rnd", "sat")
        # Range of the horizontal pass output, then of the partial sums of both passes.
        h_low, h_high = prefix_bounds(codes, pixel)
        to_mid = mid_frac - coeff_frac
        mid_low, mid_high = shift_outward(h_low, to_mid) - 1, shift_outward(h_high, to_mid) + 1
        mid_int = minimum_int_bits(mid_low, mid_high, mid_frac, True)
        mid = QFormat(mid_int + mid_frac, mid_int, True, "rnd", "sat")
        v_low, v_high = prefix_bounds(codes, mid)
        to_acc_h, to_acc_v = acc_frac - coeff_frac, acc_frac - mid_frac - coeff_frac
        acc_low = min(shift_outward(h_low, to_acc_h), shift_outward(v_low, to_acc_v)) - 1
        acc_high = max(shift_outward(h_high, to_acc_h), shift_outward(v_high, to_acc_v)) + 1
        acc_int = minimum_int_bits(acc_low, acc_high, acc_frac, True)
        acc = QFormat(acc_int + acc_frac, acc_int, True, acc_rounding)
        return cls(k, scale, pixel, coeff, acc, QFormat(8, 8, False, "rnd", "sat"), mid, **options)

    # ----------------------------------------------------------------- geometry

    @property
    def taps(self) -> int:
        """Taps per output sample of each pass."""
        return self.kernel.taps

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Output shape for an input of ``shape`` (``(H, W)`` or ``(H, W, C)``).

        Examples
        --------
        >>> FixedPointResizer("bilinear", 1.5).output_shape((10, 7, 3))
        (15, 10, 3)
        """
        (h_out, w_out), _ = geometry(tuple(shape[:2]), self.scale, None)
        return (h_out, w_out) + tuple(shape[2:])

    def tap_table(
        self, axis: Literal["y", "x"], n_in: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Tap indices (replicated border), ROM rows and coefficient codes of one axis.

        Parameters
        ----------
        axis : {"y", "x"}
            Vertical or horizontal pass.
        n_in : int
            Input pixels along the axis.

        Returns
        -------
        idx : (n_out, taps) ndarray of int64
            Input indices, clipped into ``[0, n_in)``.
        phase : (n_out,) ndarray of int64
            ROM row of each output.
        coef : (n_out, taps) ndarray of int64
            ``coefficients[phase]``.

        Examples
        --------
        >>> idx, phase, coef = FixedPointResizer("bilinear", 2, phase_bits=2).tap_table("x", 3)
        >>> idx.tolist(), phase.tolist()
        ([[0, 0], [0, 1], [0, 1], [1, 2], [1, 2], [2, 2]], [3, 1, 3, 1, 3, 1])
        """
        return _tap_table(self, axis, int(n_in))

    def coefficient_table(self, rows: Any = None) -> pd.DataFrame:
        """The weight ROM next to the float weights it approximates.

        Parameters
        ----------
        rows : sequence of int, optional
            ROM rows to show; default every row that holds weights.

        Returns
        -------
        pandas.DataFrame
            One row per (ROM row, tap): ``rom_row``, ``phase``, ``offset``, ``weight``
            (float), ``code``, ``quantized`` (``code * 2**-frac_bits``), ``error``.

        Raises
        ------
        ValueError
            If a row is outside the ROM or holds no weights.

        See Also
        --------
        tap_table : The ROM row each output sample reads.

        Examples
        --------
        >>> t = FixedPointResizer("bicubic", 2, phase_bits=2).coefficient_table([2])
        >>> t["code"].tolist(), t["weight"].tolist()
        ([-64, 576, 576, -64], [-0.0625, 0.5625, 0.5625, -0.0625])
        """
        size = len(self.coefficients)
        chosen = (
            np.flatnonzero(self.coefficient_rows)
            if rows is None
            else np.asarray(rows, dtype=np.int64).ravel()
        )
        if chosen.size and (
            chosen.min() < 0 or chosen.max() >= size or not self.coefficient_rows[chosen].all()
        ):
            raise ValueError(f"rows must be ROM rows 0..{size - 1} that hold weights, got {rows!r}")
        phases = chosen / size
        weights = self.kernel.weights(phases) if chosen.size else np.zeros((0, self.taps))
        codes = self.coefficients[chosen]
        return pd.DataFrame(
            {
                "rom_row": np.repeat(chosen, self.taps),
                "phase": np.repeat(phases, self.taps),
                "offset": np.tile(self.kernel.offsets, len(chosen)),
                "weight": weights.ravel(),
                "code": codes.ravel(),
                "quantized": codes.ravel() * self.coeff_fmt.lsb,
                "error": codes.ravel() * self.coeff_fmt.lsb - weights.ravel(),
            }
        )

    # ----------------------------------------------------------------- running

    def run(self, image: np.ndarray, path: RunPath = "auto") -> np.ndarray:
        """Resize a uint8 image bit-true.

        Parameters
        ----------
        image : (H, W) or (H, W, C) ndarray of uint8
            At least ``taps`` pixels along each side.
        path : {"auto", "taps"}, default "auto"
            ``"auto"`` takes the exact BLAS path where the formats allow it (module
            notes); ``"taps"`` forces the tap-by-tap path. Both give the same bits.

        Returns
        -------
        ndarray of uint8
            ``output_shape(image.shape)``.

        Raises
        ------
        TypeError
            If ``path`` is not a string.
        ValueError
            If the image is not uint8, not 2-D or 3-D, or smaller than the kernel, or
            ``path`` is unknown.
        """
        return _run(self, self.check_image(image), keep=False, path=path).output

    def trace(self, image: np.ndarray, path: RunPath = "auto") -> DatapathTrace:
        """Run and keep the input codes and the line-buffer words as well (see :meth:`run`).

        Returns
        -------
        DatapathTrace
        """
        return _run(self, self.check_image(image), keep=True, path=path)

    def check_image(self, image: Any) -> np.ndarray:
        """Validate an input image (:func:`srlab.imagecheck.check_image`); returns it as an ndarray.

        Raises
        ------
        ValueError
            If it is not uint8, not ``(H, W)`` or ``(H, W, C)``, or smaller than the kernel.
        """
        return check_image(
            image,
            dtypes=("uint8",),
            channels=None,
            min_side=self.taps,
            needed_by=f"the {self.taps}-tap kernel {self.kernel.name!r}",
            dtype_hint=" (the datapath reads 8-bit pixels; convert with skimage.util.img_as_ubyte "
            "or np.clip(...).astype(np.uint8))",
        )


# --------------------------------------------------------------------------- tables and plans


@functools.lru_cache(maxsize=64)
def _tap_table(
    r: FixedPointResizer, axis: str, n_in: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if axis not in ("y", "x"):
        raise ValueError(f"unknown axis {axis!r}; known: x, y")
    dda = r.dda_y if axis == "y" else r.dda_x
    n_out = round(n_in * r.scale[0 if axis == "y" else 1])  # as srlab.resize sizes its output
    if n_out < 1:
        raise ValueError(
            f"scale {r.scale} turns {n_in} pixels along {axis} into none; use a larger scale"
        )
    i0, phase = dda.positions(n_out)
    if not r.coefficient_rows[phase].all():
        bad = int(phase[~r.coefficient_rows[phase]][0])
        raise ValueError(
            f"the DDA addressed ROM row {bad} (phase {bad / (1 << r.phase_bits):g}), which kernel "
            f"{r.kernel.name!r} has no weights for; use a continuous kernel at this scale"
        )
    idx = np.clip(i0[:, None] + r.kernel.offsets[None, :], 0, n_in - 1)
    coef = r.coefficients[phase]
    for array in (idx, phase, coef):
        array.setflags(write=False)
    return idx, phase, coef


# --------------------------------------------------------------------------- passes


def _mac_taps(
    r: FixedPointResizer, source: FixedArray, idx: np.ndarray, coef: np.ndarray, axis: int
) -> FixedArray:
    """``acc += c_k * p_k`` tap by tap on whole images (int64 gathers)."""
    acc = None
    shape = [1, 1, 1]
    shape[axis] = len(idx)
    for k in range(idx.shape[1]):
        pixels = FixedArray(np.take(source.codes, idx[:, k], axis=axis), source.fmt)
        weights = FixedArray(coef[:, k].reshape(shape), r.coeff_fmt)
        product = multiply(pixels, weights)
        acc = cast(product if acc is None else add(acc, product), r.acc_fmt)
    return acc


@functools.lru_cache(maxsize=16)
def _transposed(r: FixedPointResizer) -> FixedPointResizer:
    """The horizontal-first design that, on the transposed image, is ``r``'s vertical-first one."""
    return dataclasses.replace(r, scale=r.scale[::-1], pass_order="hv")


def _run(r: FixedPointResizer, image: np.ndarray, keep: bool, path: str) -> DatapathTrace:
    check_choice(path, "path", ("auto", "taps"))
    if r.pass_order == "vh":
        # Vertical first == horizontal first on the transposed image with the scales swapped:
        # the same DDA, ROM and formats meet the same pixels in the same order.
        t = _run(_transposed(r), image.swapaxes(0, 1), keep, path)
        pixels, mid = (
            FixedArray(a.codes.swapaxes(0, 1), a.fmt) if a is not None else None
            for a in (t.pixels, t.mid)
        )
        return DatapathTrace(pixels, mid, t.output.swapaxes(0, 1))
    h, w = image.shape[:2]
    channels = image.shape[2] if image.ndim == 3 else 1
    flat = image.reshape(h, w * channels)
    pixels = quantize(image.reshape(h, w, channels), r.pixel_fmt) if keep else None

    h_spec = pass_spec(r, r.pixel_fmt, r.mid_fmt, "x", w) if path == "auto" else TAP_BY_TAP
    mid_codes = mid_float = None
    if h_spec.dtype is None:
        pixels = quantize(image.reshape(h, w, channels), r.pixel_fmt) if pixels is None else pixels
        idx, _, coef = _tap_table(r, "x", w)
        mid_codes = cast(_mac_taps(r, pixels, idx, coef, axis=1), r.mid_fmt)
        w_out = len(idx)
    else:
        plan = coefficient_plan(r, "x", w, channels, h_spec.dtype)
        source = pixel_floats(flat, r.pixel_fmt, h_spec.dtype)
        if source is None:
            pixels = (
                quantize(image.reshape(h, w, channels), r.pixel_fmt) if pixels is None else pixels
            )
            source = pixels.codes.reshape(h, w * channels).astype(h_spec.dtype)
        mid_float = finish_sums(r, horizontal(source, plan, channels, 0.0), h_spec, r.mid_fmt)
        w_out = plan.n_out

    v_spec = pass_spec(r, r.mid_fmt, r.out_fmt, "y", h) if path == "auto" else TAP_BY_TAP
    if (keep or v_spec.dtype is None) and mid_codes is None:
        mid_codes = FixedArray(mid_float.astype(np.int64).reshape(h, w_out, channels), r.mid_fmt)
    if v_spec.dtype is None:
        idx, _, coef = _tap_table(r, "y", h)
        out = cast(_mac_taps(r, mid_codes, idx, coef, axis=0), r.out_fmt).codes.astype(np.uint8)
    else:
        plan = coefficient_plan(r, "y", h, None, v_spec.dtype)
        if mid_float is not None:
            source = mid_float.astype(v_spec.dtype, copy=False)
        else:
            source = mid_codes.codes.reshape(h, w_out * channels).astype(v_spec.dtype)
        out = np.empty((plan.n_out, w_out * channels), dtype=np.uint8)

        def finish(band: np.ndarray, rows: slice) -> None:
            np.copyto(out[rows], finish_sums(r, band, v_spec, r.out_fmt), casting="unsafe")

        vertical(source, plan, 0.0, finish, v_spec.dtype)
    h_out = out.shape[0]
    return DatapathTrace(pixels, mid_codes, out.reshape((h_out, w_out) + image.shape[2:]))
