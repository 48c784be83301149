"""resize: equality with OpenCV and Pillow, laws for every kernel, every bad input."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest
from PIL import Image

import srlab
from srlab import peers, polyphase
from srlab.kernels import available_kernels, get_kernel

ALL = available_kernels()
CONTINUOUS = [name for name in ALL if get_kernel(name).phases is None]
FIXED = [name for name in ALL if get_kernel(name).phases is not None]
SCALES = [2, 3, 1.7]
SHAPES = {"gray": (37, 53), "rgb": (37, 53, 3)}


@pytest.fixture(params=list(SHAPES), scope="module")
def unit_image(request: pytest.FixtureRequest) -> np.ndarray:
    """float32 noise in [0, 1]: no smoothness to hide a misplaced tap."""
    return np.random.default_rng(1).random(SHAPES[request.param], dtype=np.float32)


@pytest.fixture(params=list(SHAPES), scope="module")
def smooth_u8(request: pytest.FixtureRequest) -> np.ndarray:
    """A smooth uint8 image in [43, 213]: bicubic overshoot never reaches 0 or 255."""
    shape = SHAPES[request.param]
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]] / np.array(shape[:2])[:, None, None]
    planes = []
    for _ in range(shape[2] if len(shape) == 3 else 1):
        freq, phase = rng.uniform(0.5, 3.0, (4, 2)), rng.uniform(0, 2 * np.pi, 4)
        wave = (
            sum(
                np.sin(2 * np.pi * (freq[i, 0] * yy + freq[i, 1] * xx) + phase[i]) for i in range(4)
            )
            / 4
        )
        planes.append(128 + 85 * wave)
    image = np.stack(planes, axis=-1) if len(shape) == 3 else planes[0]
    return np.round(image).astype(np.uint8)


# --------------------------------------------------------------------------- OpenCV


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize(
    ("kernel", "params", "flag"),
    [("bicubic", {"a": -0.75}, cv2.INTER_CUBIC), ("bilinear", {}, cv2.INTER_LINEAR)],
)
def test_matches_opencv_float(
    unit_image: np.ndarray, scale: float, kernel: str, params: dict, flag: int
) -> None:
    ours = srlab.resize(unit_image, scale=scale, kernel=kernel, **params)
    ref = cv2.resize(unit_image, None, fx=scale, fy=scale, interpolation=flag)
    assert ours.shape == ref.shape and ours.dtype == np.float32
    assert np.abs(ours - ref).max() <= 1e-4


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize(
    ("kernel", "params", "flag"),
    [("bicubic", {"a": -0.75}, cv2.INTER_CUBIC), ("bilinear", {}, cv2.INTER_LINEAR)],
)
def test_matches_opencv_uint8_within_one_lsb(
    unit_image: np.ndarray, scale: float, kernel: str, params: dict, flag: int
) -> None:
    image = np.round(unit_image * 255).astype(np.uint8)
    ours = srlab.resize(image, scale=scale, kernel=kernel, **params)
    ref = cv2.resize(image, None, fx=scale, fy=scale, interpolation=flag)
    assert ours.dtype == np.uint8 and ours.shape == ref.shape
    assert np.abs(ours.astype(int) - ref).max() <= 1


def test_opencv_fx_maps_with_the_given_scale_not_the_size_ratio(unit_image: np.ndarray) -> None:
    # 53 * 1.7 = 90.1 -> 90 columns. With fx OpenCV maps x -> (x + 0.5) / 1.7 - 0.5, with
    # dsize it maps with 53 / 90; srlab's scale= and size= follow the same two rules.
    size = (63, 90)
    by_fx = cv2.resize(unit_image, None, fx=1.7, fy=1.7, interpolation=cv2.INTER_CUBIC)
    by_dsize = cv2.resize(unit_image, size[::-1], interpolation=cv2.INTER_CUBIC)
    assert by_fx.shape[:2] == by_dsize.shape[:2] == size
    assert np.abs(by_fx - by_dsize).max() > 1e-2  # the two rules really differ here
    assert np.abs(srlab.resize(unit_image, scale=1.7, a=-0.75) - by_fx).max() <= 1e-4
    assert np.abs(srlab.resize(unit_image, size=size, a=-0.75) - by_dsize).max() <= 1e-4


@pytest.mark.parametrize("size", [(20, 30), (11, 40)])
def test_plain_downscaling_matches_opencv(unit_image: np.ndarray, size: tuple[int, int]) -> None:
    ours = srlab.resize(unit_image, size=size, a=-0.75)
    assert np.abs(ours - peers.opencv_resize(unit_image, size, "bicubic")).max() <= 1e-4


@pytest.mark.parametrize("size", [(74, 106), (20, 30)])
def test_nearest_and_lanczos4_match_opencv(unit_image: np.ndarray, size: tuple[int, int]) -> None:
    image = np.round(unit_image * 255).astype(np.uint8)
    nearest = srlab.resize(image, size=size, kernel="nearest")
    np.testing.assert_array_equal(nearest, peers.opencv_resize(image, size, "nearest"))
    ours = srlab.resize(unit_image, size=size, kernel="lanczos4")
    assert np.abs(ours - peers.opencv_resize(unit_image, size, "lanczos4")).max() <= 1e-4


def test_shift_add_opencv_equals_opencv_cubic_at_2x(unit_image: np.ndarray) -> None:
    ours = srlab.resize(unit_image, scale=2, kernel="shift_add_2x_opencv")
    assert (
        np.abs(ours - cv2.resize(unit_image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)).max()
        <= 1e-4
    )


# --------------------------------------------------------------------------- Pillow


@pytest.mark.parametrize("size", [(74, 106), (111, 159), (63, 90)])
@pytest.mark.parametrize("kernel", ["bicubic", "bilinear", "lanczos3", "nearest"])
def test_matches_pillow_float(unit_image: np.ndarray, size: tuple[int, int], kernel: str) -> None:
    # Pillow's float mode has no intermediate rounding: equality up to float32 noise.
    ours = srlab.resize(unit_image, size=size, kernel=kernel, border="renormalize")
    assert np.abs(ours - peers.pillow_resize(unit_image, size, kernel)).max() <= 1e-4


@pytest.mark.parametrize("size", [(74, 106), (111, 159), (63, 90)])
def test_matches_pillow_bicubic_uint8_within_one_lsb(
    smooth_u8: np.ndarray, size: tuple[int, int]
) -> None:
    # Pillow rounds and clips to 8 bits between its two passes; on an image whose
    # intermediate stays inside [0, 255] that costs at most one LSB.
    ours = srlab.resize(smooth_u8, size=size, kernel="bicubic", a=-0.5, border="renormalize")
    ref = peers.pillow_resize(smooth_u8, size, "bicubic")
    assert np.abs(ours.astype(int) - ref).max() <= 1


@pytest.mark.parametrize("size", [(20, 30), (10, 13), (18, 26)])
@pytest.mark.parametrize("kernel", ["bicubic", "bilinear", "lanczos3"])
def test_antialiased_downscaling_matches_pillow(
    unit_image: np.ndarray, size: tuple[int, int], kernel: str
) -> None:
    ours = srlab.resize(unit_image, size=size, kernel=kernel, border="renormalize", antialias=True)
    assert np.abs(ours - peers.pillow_resize(unit_image, size, kernel)).max() <= 1e-4


def test_borders_differ_from_pillow_only_at_the_edge(unit_image: np.ndarray) -> None:
    replicate = srlab.resize(unit_image, size=(74, 106))
    pillow = peers.pillow_resize(unit_image, (74, 106), "bicubic")
    assert np.abs(replicate - pillow).max() > 1e-3
    assert np.abs(replicate[3:-3, 3:-3] - pillow[3:-3, 3:-3]).max() <= 1e-4


# --------------------------------------------------------------------------- laws, every kernel


def _scales(name: str) -> list[float]:
    return [2.0] if name in FIXED else [2.0, 3.0, 1.7, 0.6]


@pytest.mark.parametrize("border", ["replicate", "reflect", "renormalize", "constant"])
@pytest.mark.parametrize("name", ALL)
def test_constant_image_stays_constant(name: str, border: str) -> None:
    for scale in _scales(name):
        flat = np.full((9, 14, 3), 0.3, dtype=np.float64)
        out = srlab.resize(flat, scale=scale, kernel=name, border=border, cval=0.3)
        np.testing.assert_allclose(out, 0.3, rtol=0, atol=1e-12)
        flat8 = np.full((9, 14), 77, dtype=np.uint8)
        assert np.all(srlab.resize(flat8, scale=scale, kernel=name, border=border, cval=77) == 77)
        wide = srlab.resize(flat, scale=scale, kernel=name, border=border, cval=0.3, antialias=True)
        np.testing.assert_allclose(wide, 0.3, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", [n for n in ALL if get_kernel(n).interpolating])
def test_interpolating_kernels_reproduce_the_input(name: str, unit_image: np.ndarray) -> None:
    h, w = unit_image.shape[:2]
    for k in [2] if name in FIXED else [2, 3]:
        # align_corners with (n - 1) * k + 1 samples puts every k-th output on an input pixel.
        size = ((h - 1) * k + 1, (w - 1) * k + 1)
        out = srlab.resize(unit_image, size=size, kernel=name, convention="align_corners")
        np.testing.assert_allclose(out[::k, ::k], unit_image, rtol=0, atol=1e-6)
    if name not in FIXED:
        np.testing.assert_allclose(
            srlab.resize(unit_image, scale=1, kernel=name), unit_image, rtol=0, atol=1e-6
        )


@pytest.mark.parametrize("name", ALL)
def test_mirrored_image_gives_mirrored_output(name: str, unit_image: np.ndarray) -> None:
    # Symmetric taps: resizing commutes with flipping. At 2x the phases are 0.25 and 0.75,
    # so nearest's tie rule (phase 0.5 goes right) never applies.
    out = srlab.resize(unit_image, size=(74, 106), kernel=name, border="reflect")
    flipped = srlab.resize(unit_image[::-1, ::-1], size=(74, 106), kernel=name, border="reflect")
    np.testing.assert_allclose(flipped, out[::-1, ::-1], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", FIXED)
def test_shift_add_equals_its_cubic(name: str, unit_image: np.ndarray) -> None:
    a = get_kernel(name).params["a"]
    ours = srlab.resize(unit_image, scale=2, kernel=name)
    np.testing.assert_allclose(ours, srlab.resize(unit_image, scale=2, a=a), atol=1e-6)


# --------------------------------------------------------------------------- borders, shapes, dtypes


@pytest.mark.parametrize(
    ("border", "pad_mode"),
    [("replicate", "edge"), ("reflect", "reflect"), ("constant", "constant")],
)
def test_borders_equal_explicit_padding(unit_image: np.ndarray, border: str, pad_mode: str) -> None:
    # Padding by p pixels and cropping 2p output pixels is the same geometry at scale 2.
    p = 3
    pad = ((p, p), (p, p)) + ((0, 0),) * (unit_image.ndim - 2)
    kwargs = {"constant_values": 0.25} if pad_mode == "constant" else {}
    padded = np.pad(unit_image, pad, mode=pad_mode, **kwargs)
    ref = srlab.resize(padded, scale=2, kernel="lanczos3")[2 * p : -2 * p, 2 * p : -2 * p]
    ours = srlab.resize(unit_image, scale=2, kernel="lanczos3", border=border, cval=0.25)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float16, np.float32, np.float64])
def test_dtype_is_kept(dtype: type) -> None:
    image = (np.random.default_rng(3).random((6, 7, 3)) * 200).astype(dtype)
    out = srlab.resize(image, scale=2.5)
    assert out.dtype == dtype and out.shape == (15, 18, 3)
    ref = srlab.resize(image.astype(np.float64), scale=2.5)
    tol = {np.uint8: 0.5, np.uint16: 0.5, np.float16: 0.25}.get(dtype, 1e-3)
    inside = ref.clip(0, np.iinfo(dtype).max) if np.dtype(dtype).kind == "u" else ref
    assert np.abs(out.astype(np.float64) - inside).max() <= tol


def test_uint8_rounds_half_up_and_clips() -> None:
    ramp = np.array([[0, 255, 255, 0, 100, 101]], dtype=np.uint8).repeat(4, axis=0)
    ours = srlab.resize(ramp, size=(4, 12), kernel="bicubic", a=-0.75)
    exact = srlab.resize(ramp.astype(np.float64), size=(4, 12), kernel="bicubic", a=-0.75)
    np.testing.assert_array_equal(ours, np.clip(np.floor(exact + 0.5), 0, 255))
    assert ours.max() == 255 and ours.min() == 0 and exact.max() > 255 and exact.min() < 0


def test_shapes_scale_pair_size_and_single_channel() -> None:
    image = np.zeros((10, 20, 1), dtype=np.float32)
    assert srlab.resize(image, scale=(2, 0.5)).shape == (20, 10, 1)
    assert srlab.resize(image, size=(7, 33)).shape == (7, 33, 1)
    assert srlab.resize(image[..., 0], size=(1, 1)).shape == (1, 1)
    assert srlab.resize(np.zeros((1, 1, 3), np.uint8), scale=4).shape == (4, 4, 3)


def test_peers_take_height_width() -> None:
    image = np.zeros((10, 20, 3), dtype=np.uint8)
    assert peers.opencv_resize(image, (30, 40), "bicubic").shape == (30, 40, 3)
    assert peers.pillow_resize(image, (30, 40), "bicubic").shape == (30, 40, 3)
    assert peers.opencv_resize(image[..., :1], (5, 7), "bilinear").shape == (5, 7, 1)


def test_peers_reject_kernels_they_lack() -> None:
    image = np.zeros((4, 4), dtype=np.uint8)
    with pytest.raises(
        ValueError,
        match="unknown OpenCV kernel 'lanczos3'; known kernels: nearest, bilinear, bicubic, lanczos4, area",
    ):
        peers.opencv_resize(image, (8, 8), "lanczos3")
    with pytest.raises(
        ValueError,
        match="unknown Pillow kernel 'lanczos4'; known kernels: nearest, bilinear, bicubic, lanczos3",
    ):
        peers.pillow_resize(image, (8, 8), "lanczos4")
    with pytest.raises(ValueError, match="unknown Pillow kernel 'area'"):
        peers.pillow_resize(image, (2, 2), "area")


# --------------------------------------------------------------------------- bad input

GOOD = np.zeros((4, 5), dtype=np.float32)


@pytest.mark.parametrize(
    ("image", "kwargs", "message"),
    [
        (np.zeros((0, 5)), {"scale": 2}, r"image is empty \(shape \(0, 5\)\)"),
        (
            np.zeros(5),
            {"scale": 2},
            r"image must be 2-D \(H, W\) or 3-D \(H, W, C\) with C channels, got shape \(5,\)",
        ),
        (np.zeros((2, 3, 4, 5)), {"scale": 2}, r"image must be 2-D .* got shape \(2, 3, 4, 5\)"),
        (np.zeros((4, 5, 0)), {"scale": 2}, r"image is empty \(shape \(4, 5, 0\)\)"),
        (
            np.zeros((4, 5), np.int32),
            {"scale": 2},
            "image dtype int32 is not supported; use uint8, uint16 or a float dtype",
        ),
        (np.array([[0.0, np.nan]]), {"scale": 2}, r"image contains NaN values; replace them first"),
        (np.array([[0.0, np.inf]]), {"scale": 2}, r"image contains infinite values"),
        (GOOD, {"scale": 0}, r"scale must be > 0 and finite, got 0"),
        (GOOD, {"scale": -2.0}, r"scale must be > 0 and finite, got -2.0"),
        (GOOD, {"scale": (2, 0)}, r"scale must be > 0 and finite"),
        (GOOD, {"scale": float("inf")}, r"scale must be > 0 and finite"),
        (GOOD, {"scale": (1, 2, 3)}, r"scale must be a number or a \(sy, sx\) pair"),
        (GOOD, {"scale": 0.01}, r"turns shape \(4, 5\) into an empty image"),
        (GOOD, {}, r"give exactly one of scale and size \(size is \(height, width\)\)"),
        (GOOD, {"scale": 2, "size": (8, 10)}, r"give exactly one of scale and size"),
        (
            GOOD,
            {"size": (8, 0)},
            r"size must be \(height, width\) with two positive integers, got \(8, 0\) "
            r"\(note: OpenCV's dsize is \(width, height\)\)",
        ),
        (
            GOOD,
            {"scale": 2, "kernel": "cubic"},
            r"unknown kernel 'cubic'; known kernels: area, bicubic, bilinear",
        ),
        (
            GOOD,
            {"scale": 2, "kernel": "bicubic", "b": 1},
            r"kernel 'bicubic' got unknown parameter\(s\) b; it accepts a",
        ),
        (
            GOOD,
            {"scale": 2, "kernel": "bicubic", "a": 1.0},
            r"cubic parameter a must be finite and in \[-1, 0\]",
        ),
        (
            GOOD,
            {"scale": 2, "convention": "corners"},
            r"unknown convention 'corners'; known conventions: align_corners, half_pixel",
        ),
        (
            GOOD,
            {"scale": 2, "border": "wrap"},
            r"unknown border 'wrap'; known borders: constant, reflect, renormalize, replicate",
        ),
    ],
)
def test_bad_input(image: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        srlab.resize(image, **kwargs)
    assert caught.type is ValueError


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": (8.0, 10)}, r"size must be \(height, width\) with two positive integers"),
        ({"size": 8}, r"size must be a \(height, width\) pair, got 8"),
        ({"scale": None, "size": "ab"}, r"size must be \(height, width\) with two positive"),
        ({"scale": "two"}, r"scale must be a number or a \(sy, sx\) pair of numbers, got 'two'"),
        ({"scale": (2, None)}, r"scale must be a number or a \(sy, sx\) pair of numbers"),
        ({"scale": 2, "kernel": 3}, "kernel must be a name such as 'bicubic' or a Kernel, got int"),
        ({"scale": 2, "kernel": ("bicubic", {})}, "kernel must be a name .* got tuple"),
        (
            {"scale": 2, "convention": 0},
            r"convention must be a name \(str\), got 0; known conventions: align_corners, half",
        ),
        ({"scale": 2, "border": None}, r"border must be a name \(str\), got None; known borders"),
    ],
)
def test_bad_types(kwargs: dict, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        srlab.resize(GOOD, **kwargs)


@pytest.mark.parametrize("name", FIXED)
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"scale": 3},
            r"has fixed phases \(0.0, 0.25, 0.5, 0.75\) and only works at scale 2; got scale 3 along y",
        ),
        ({"scale": (2, 1.5)}, r"only works at scale 2; got scale 1.5 along x"),
        ({"size": (8, 11)}, r"only works at scale 2; got scale 2.2 along x"),
        (
            {"scale": 2, "convention": "align_corners"},
            r"only works at scale 2; got scale 2.33333 along y \(with align_corners use size=\(2\*H - 1, 2\*W - 1\)\)",
        ),
    ],
)
def test_shift_add_only_at_scale_two(name: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=rf"kernel '{name}' .*{message}"):
        srlab.resize(GOOD, kernel=name, **kwargs)


# --------------------------------------------------------------------------- nearest: the peers' rule


def _nearest_pick(n_in: int, n_out: int) -> list[int]:
    """The nearest rule of OpenCV's INTER_NEAREST_EXACT and Pillow's NEAREST, restated:
    a float64 source coordinate starts at step / 2, grows by step and is truncated."""
    step = n_in / n_out
    f, picks = step * 0.5, []
    for _ in range(n_out):
        picks.append(min(math.floor(f), n_in - 1))
        f += step
    return picks


@pytest.mark.parametrize("scale", [2.3, 1.7, 0.37, 1.5, 0.6, (1.3, 0.7)])
@pytest.mark.parametrize("shape", [(37, 53), (37, 53, 3), (270, 480, 3)])
def test_nearest_with_scale_maps_as_opencv_does_for_fx(
    scale: float | tuple, shape: tuple[int, ...]
) -> None:
    # OpenCV's INTER_NEAREST_EXACT maps by the two sizes even when given fx/fy (before,
    # srlab mapped with 1/scale here and 4-74 % of the pixels differed at 2.3, 1.7, 0.37).
    image = np.random.default_rng(4).integers(0, 256, shape, dtype=np.uint8)
    sy, sx = scale if isinstance(scale, tuple) else (scale, scale)
    ours = srlab.resize(image, scale=scale, kernel="nearest")
    ref = cv2.resize(image, None, fx=sx, fy=sy, interpolation=cv2.INTER_NEAREST_EXACT)
    np.testing.assert_array_equal(ours, ref)
    pillow = np.asarray(Image.fromarray(image).resize(ours.shape[1::-1], Image.Resampling.NEAREST))
    np.testing.assert_array_equal(ours, pillow)


def test_nearest_tie_rule() -> None:
    # In exact arithmetic output x takes input floor((x + 1/2) * W / w): a centre on the
    # border between two input pixels goes right, always so for integer and dyadic factors.
    ramp = np.arange(8, dtype=np.uint8)[None, :]
    assert srlab.resize(ramp, size=(1, 4), kernel="nearest").tolist() == [[1, 3, 5, 7]]
    assert srlab.resize(ramp, scale=(1, 0.25), kernel="nearest").tolist() == [[2, 6]]
    # Other ratios: the float64 running sum decides an exact tie, as in both peers.
    # 226 -> 67: (2*33 + 1) * 226 / (2*67) = 113 exactly, and the sum lands just below it.
    assert (2 * 33 + 1) * 226 % (2 * 67) == 0 and (2 * 33 + 1) * 226 // (2 * 67) == 113
    row = np.arange(226, dtype=np.float32)[None, :]
    ours = srlab.resize(row, size=(1, 67), kernel="nearest")[0]
    assert ours[33] == 112
    np.testing.assert_array_equal(
        ours, cv2.resize(row, (67, 1), interpolation=cv2.INTER_NEAREST_EXACT)[0]
    )
    np.testing.assert_array_equal(
        ours, np.asarray(Image.fromarray(row).resize((67, 1), Image.Resampling.NEAREST))[0]
    )
    # The rule, restated here in plain Python, over many size pairs (ties included).
    rng = np.random.default_rng(5)
    for n_in, n_out in [
        (226, 67),
        (1246, 1559),
        (960, 1440),
        (540, 810),
        *rng.integers(1, 3000, (40, 2)).tolist(),
    ]:
        line = np.arange(n_in, dtype=np.float64)[:, None]
        picked = srlab.resize(line, size=(n_out, 1), kernel="nearest")[:, 0].astype(int).tolist()
        assert picked == _nearest_pick(n_in, n_out), (n_in, n_out)


def test_nearest_with_size_matches_opencv_at_ties() -> None:
    # 960x540 -> 1440x810: one output in three sits exactly on a pixel border.
    image = np.random.default_rng(6).integers(0, 256, (540, 960, 3), dtype=np.uint8)
    ours = srlab.resize(image, size=(810, 1440), kernel="nearest")
    np.testing.assert_array_equal(ours, peers.opencv_resize(image, (810, 1440), "nearest"))
    np.testing.assert_array_equal(ours, peers.pillow_resize(image, (810, 1440), "nearest"))


def test_nearest_keeps_its_phase_rule_elsewhere(unit_image: np.ndarray) -> None:
    # align_corners and antialiased downscaling still sample the kernel's weights.
    phase_nearest = dataclasses.replace(get_kernel("nearest"), rule=None)
    for kwargs in (
        {"size": (50, 71), "convention": "align_corners"},
        {"scale": 0.4, "antialias": True},
    ):
        ours = srlab.resize(unit_image, kernel="nearest", **kwargs)
        np.testing.assert_array_equal(
            ours, srlab.resize(unit_image, kernel=phase_nearest, **kwargs)
        )
    # Without the rule, scale= maps with 1 / scale: the old mapping, a DDA's.
    old = srlab.resize(unit_image, scale=1.7, kernel=phase_nearest)
    assert np.mean(old != srlab.resize(unit_image, scale=1.7, kernel="nearest")) > 0.01


# --------------------------------------------------------------------------- area: OpenCV's INTER_AREA

AREA_DOWN = [0.5, 1 / 3, 0.25, 0.37, 0.6, 0.75, (0.5, 0.37), (1.0, 0.6)]
AREA_UP_OR_MIXED = [2, 3, 2.3, 1.7, (2, 0.5), (0.6, 1.5)]


def _area_pair(image: np.ndarray, scale: float | tuple) -> tuple[np.ndarray, np.ndarray]:
    sy, sx = scale if isinstance(scale, tuple) else (scale, scale)
    ours = srlab.resize(image, scale=scale, kernel="area")
    ref = cv2.resize(image, None, fx=sx, fy=sy, interpolation=cv2.INTER_AREA)
    return ours, ref.reshape(ours.shape)


@pytest.mark.parametrize("scale", AREA_DOWN + AREA_UP_OR_MIXED)
@pytest.mark.parametrize("shape", [(37, 53), (37, 53, 3), (37, 53, 4)])
def test_area_matches_opencv(scale: float | tuple, shape: tuple[int, ...]) -> None:
    image = np.random.default_rng(7).random(shape, dtype=np.float32)
    ours, ref = _area_pair(image, scale)
    assert ours.dtype == np.float32 and np.abs(ours - ref).max() <= 1e-5
    image8 = np.round(image * 255).astype(np.uint8)
    ours8, ref8 = _area_pair(image8, scale)
    assert ours8.dtype == np.uint8 and np.abs(ours8.astype(int) - ref8).max() <= 1


@pytest.mark.parametrize(
    "size", [(20, 30), (11, 40), (12, 17), (37, 1), (1, 53), (74, 106), (50, 20)]
)
def test_area_with_size_matches_opencv(unit_image: np.ndarray, size: tuple[int, int]) -> None:
    ours = srlab.resize(unit_image, size=size, kernel="area")
    assert np.abs(ours - peers.opencv_resize(unit_image, size, "area")).max() <= 1e-5
    image8 = np.round(unit_image * 255).astype(np.uint8)
    ours8 = srlab.resize(image8, size=size, kernel="area")
    assert np.abs(ours8.astype(int) - peers.opencv_resize(image8, size, "area")).max() <= 1


def test_area_long_lines_follow_opencvs_partial_pixel_rule() -> None:
    # Past 1000 outputs some footprints end within 1e-3 of a pixel border; OpenCV drops
    # that sliver (without renormalising), and so does srlab.
    line = np.random.default_rng(8).random((3, 4001), dtype=np.float32)
    for width in (2000, 1999, 1001, 1333):
        ours = srlab.resize(line, size=(3, width), kernel="area")
        assert (
            np.abs(ours - cv2.resize(line, (width, 3), interpolation=cv2.INTER_AREA)).max() <= 1e-5
        )


def test_area_is_the_block_average_at_integer_factors(unit_image: np.ndarray) -> None:
    image = unit_image[:36, :48].astype(np.float64)
    for k in (2, 3):
        blocks = image.reshape(36 // k, k, 48 // k, k, *image.shape[2:]).mean(axis=(1, 3))
        np.testing.assert_allclose(
            srlab.resize(image, scale=1 / k, kernel="area"), blocks, rtol=0, atol=1e-12
        )
    # Upscaling by an integer factor replicates pixels, as OpenCV's fallback does.
    np.testing.assert_array_equal(srlab.resize(image, scale=2, kernel="area")[::2, ::2], image)
    np.testing.assert_array_equal(srlab.resize(image, scale=2, kernel="area")[1::2, 1::2], image)


def test_area_ignores_border_cval_and_antialias(unit_image: np.ndarray) -> None:
    for scale in (0.37, 2.3, (2, 0.5)):
        plain = srlab.resize(unit_image, scale=scale, kernel="area")
        for kwargs in (
            {"border": "constant", "cval": 5.0},
            {"border": "renormalize"},
            {"antialias": True},
        ):
            np.testing.assert_array_equal(
                srlab.resize(unit_image, scale=scale, kernel="area", **kwargs), plain
            )


def test_area_needs_half_pixel_centres() -> None:
    with pytest.raises(
        ValueError,
        match=r"kernel 'area' averages pixel footprints and needs convention='half_pixel'",
    ):
        srlab.resize(GOOD, scale=0.5, kernel="area", convention="align_corners")


# --------------------------------------------------------------------------- any number of channels


@pytest.mark.parametrize("channels", [1, 2, 4, 5, 7])
@pytest.mark.parametrize(
    ("kernel", "kwargs"),
    [
        ("bicubic", {"scale": 2}),
        ("bicubic", {"scale": 1.7}),
        ("bilinear", {"scale": 0.6, "antialias": True}),
        ("lanczos3", {"scale": 3, "border": "reflect"}),
        ("nearest", {"scale": 2.3}),
        ("area", {"scale": 0.37}),
        ("area", {"scale": 2.3}),
        ("bicubic", {"size": (29, 80), "border": "renormalize"}),
    ],
)
def test_every_channel_is_resized_alike(channels: int, kernel: str, kwargs: dict) -> None:
    image = np.random.default_rng(9).random((19, 26, channels))
    out = srlab.resize(image, kernel=kernel, **kwargs)
    assert out.shape[2] == channels
    for c in range(channels):
        plane = srlab.resize(image[..., c], kernel=kernel, **kwargs)
        np.testing.assert_allclose(out[..., c], plane, rtol=0, atol=1e-12)
    image8 = np.round(image * 255).astype(np.uint8)
    out8 = srlab.resize(image8, kernel=kernel, **kwargs)
    planes = np.stack(
        [srlab.resize(image8[..., c], kernel=kernel, **kwargs) for c in range(channels)], axis=-1
    )
    assert np.abs(out8.astype(int) - planes).max() <= 1 and np.mean(out8 == planes) > 0.999


@pytest.mark.parametrize("channels", [4, 5])
@pytest.mark.parametrize(
    ("kernel", "params", "scale"),
    [
        ("bicubic", {"a": -0.75}, 2),
        ("bicubic", {"a": -0.75}, 1.7),
        ("bilinear", {}, 2.3),
        ("bilinear", {}, 0.6),
        ("area", {}, 0.37),
        ("area", {}, 0.5),
        ("nearest", {}, 2.3),
    ],
)
def test_rgba_and_more_channels_match_opencv(
    channels: int, kernel: str, params: dict, scale: float
) -> None:
    image = np.random.default_rng(10).integers(0, 256, (37, 53, channels), dtype=np.uint8)
    ours = srlab.resize(image, scale=scale, kernel=kernel, **params)
    ref = peers.opencv_resize(image, ours.shape[:2], kernel)
    if kernel != "nearest":  # size= maps by the size ratio; compare OpenCV's fx mapping
        flag = peers.OPENCV_FLAGS[kernel]
        groups = [
            cv2.resize(image[..., c : c + 4], None, fx=scale, fy=scale, interpolation=flag)
            for c in range(0, channels, 4)
        ]
        ref = np.concatenate([g.reshape(ours.shape[:2] + (-1,)) for g in groups], axis=2)
    assert ours.shape == ref.shape and np.abs(ours.astype(int) - ref).max() <= 1


def test_peers_accept_any_channel_count() -> None:
    image = np.random.default_rng(11).integers(0, 256, (10, 12, 5), dtype=np.uint8)
    for name in ("bilinear", "area"):
        out = peers.opencv_resize(image, (7, 9), name)
        assert out.shape == (7, 9, 5)
        np.testing.assert_array_equal(out[..., 4], peers.opencv_resize(image[..., 4], (7, 9), name))
    rgba = image[..., :4]
    out = peers.pillow_resize(rgba, (20, 24), "bicubic")
    assert out.shape == (20, 24, 4)  # each channel alike: not Pillow's premultiplied RGBA
    for c in range(4):
        np.testing.assert_array_equal(
            out[..., c], peers.pillow_resize(rgba[..., c], (20, 24), "bicubic")
        )


# --------------------------------------------------------------------------- integer factors: OpenCV's filter


def _general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(polyphase, "axis_phases", lambda *args: None)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(23, 31), (23, 31, 1), (23, 31, 3), (23, 31, 4)])
@pytest.mark.parametrize(
    ("kernel", "params", "scale", "border"),
    [
        ("bicubic", {"a": -0.75}, 2, "replicate"),
        ("bilinear", {}, 2, "reflect"),
        ("lanczos3", {}, 3, "constant"),
        ("bicubic", {}, (2, 3), "replicate"),
        ("lanczos4", {}, (1, 2), "reflect"),
        ("shift_add_2x", {}, 2, "replicate"),
        ("pwl6", {}, 4, "replicate"),
        ("bilinear", {}, (2, 1), "replicate"),
    ],
)
def test_integer_factors_equal_the_general_path(
    monkeypatch: pytest.MonkeyPatch,
    dtype: type,
    shape: tuple,
    kernel: str,
    params: dict,
    scale: float,
    border: str,
) -> None:
    rng = np.random.default_rng(12)
    top = np.iinfo(dtype).max if np.dtype(dtype).kind == "u" else 1.0
    image = (rng.random(shape) * top).astype(dtype)
    fast = srlab.resize(image, scale=scale, kernel=kernel, border=border, **params)
    _general_path(monkeypatch)
    general = srlab.resize(image, scale=scale, kernel=kernel, border=border, **params)
    assert fast.shape == general.shape and fast.dtype == general.dtype == dtype
    if np.dtype(dtype).kind == "u":
        # float32 sums in another order: a value within rounding noise of a half may flip
        # (for uint16 that noise is about 0.004 of a step).
        agree = 0.999 if dtype == np.uint8 else 0.99
        assert np.abs(fast.astype(int) - general).max() <= 1 and np.mean(fast == general) > agree
    else:
        tol = 1e-12 if dtype == np.float64 else 1e-5
        np.testing.assert_allclose(fast, general, rtol=0, atol=tol)


def test_the_benchmark_geometry_takes_the_filter_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # 960x540 -> 1920x1080 (benchmarks/sr_resize.py) is an integer factor: it must run on
    # OpenCV's separable filter, and there equal the float64 resize rounded half up.
    calls = []
    run = polyphase.run
    monkeypatch.setattr(polyphase, "run", lambda *args: calls.append(1) or run(*args))
    image = np.random.default_rng(13).integers(0, 256, (54, 96, 3), dtype=np.uint8)
    for kernel, params in (("bicubic", {"a": -0.75}), ("bilinear", {})):
        ours = srlab.resize(image, size=(108, 192), kernel=kernel, **params)
        exact = srlab.resize(image.astype(np.float64), size=(108, 192), kernel=kernel, **params)
        np.testing.assert_array_equal(ours, np.clip(np.floor(exact + 0.5), 0, 255))
    assert len(calls) == 4  # two uint8 and two float64 calls


def test_cache_clear_is_public() -> None:
    image = np.random.default_rng(14).random((9, 11, 3))
    before = srlab.resize(image, scale=1.7)
    srlab.resize.cache_clear()
    np.testing.assert_array_equal(srlab.resize(image, scale=1.7), before)
