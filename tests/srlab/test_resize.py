"""resize: equality with OpenCV and Pillow, laws for every kernel, every bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import srlab
from srlab import peers
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
        wave = sum(np.sin(2 * np.pi * (freq[i, 0] * yy + freq[i, 1] * xx) + phase[i]) for i in range(4)) / 4
        planes.append(128 + 85 * wave)
    image = np.stack(planes, axis=-1) if len(shape) == 3 else planes[0]
    return np.round(image).astype(np.uint8)


# --------------------------------------------------------------------------- OpenCV


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize(("kernel", "params", "flag"), [
    ("bicubic", {"a": -0.75}, cv2.INTER_CUBIC), ("bilinear", {}, cv2.INTER_LINEAR)])
def test_matches_opencv_float(
    unit_image: np.ndarray, scale: float, kernel: str, params: dict, flag: int
) -> None:
    ours = srlab.resize(unit_image, scale=scale, kernel=kernel, **params)
    ref = cv2.resize(unit_image, None, fx=scale, fy=scale, interpolation=flag)
    assert ours.shape == ref.shape and ours.dtype == np.float32
    assert np.abs(ours - ref).max() <= 1e-4


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize(("kernel", "params", "flag"), [
    ("bicubic", {"a": -0.75}, cv2.INTER_CUBIC), ("bilinear", {}, cv2.INTER_LINEAR)])
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
    assert np.abs(ours - cv2.resize(unit_image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)).max() <= 1e-4


# --------------------------------------------------------------------------- Pillow


@pytest.mark.parametrize("size", [(74, 106), (111, 159), (63, 90)])
@pytest.mark.parametrize("kernel", ["bicubic", "bilinear", "lanczos3", "nearest"])
def test_matches_pillow_float(unit_image: np.ndarray, size: tuple[int, int], kernel: str) -> None:
    # Pillow's float mode has no intermediate rounding: equality up to float32 noise.
    ours = srlab.resize(unit_image, size=size, kernel=kernel, border="renormalize")
    assert np.abs(ours - peers.pillow_resize(unit_image, size, kernel)).max() <= 1e-4


@pytest.mark.parametrize("size", [(74, 106), (111, 159), (63, 90)])
def test_matches_pillow_bicubic_uint8_within_one_lsb(smooth_u8: np.ndarray, size: tuple[int, int]) -> None:
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
        np.testing.assert_allclose(srlab.resize(unit_image, scale=1, kernel=name), unit_image, rtol=0, atol=1e-6)


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
    ("border", "pad_mode"), [("replicate", "edge"), ("reflect", "reflect"), ("constant", "constant")]
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
    with pytest.raises(ValueError, match="OpenCV has no kernel 'lanczos3'; it offers: nearest, bilinear, bicubic, lanczos4"):
        peers.opencv_resize(image, (8, 8), "lanczos3")
    with pytest.raises(ValueError, match="Pillow has no kernel 'lanczos4'; it offers: nearest, bilinear, bicubic, lanczos3"):
        peers.pillow_resize(image, (8, 8), "lanczos4")


# --------------------------------------------------------------------------- bad input

GOOD = np.zeros((4, 5), dtype=np.float32)


@pytest.mark.parametrize(("image", "kwargs", "message"), [
    (np.zeros((0, 5)), {"scale": 2}, r"image is empty \(shape \(0, 5\)\)"),
    (np.zeros(5), {"scale": 2}, r"image must be 2-D \(H, W\) gray or 3-D \(H, W, 3\) RGB, got shape \(5,\)"),
    (np.zeros((2, 3, 4, 5)), {"scale": 2}, r"image must be 2-D .* got shape \(2, 3, 4, 5\)"),
    (np.zeros((4, 5, 4), np.uint8), {"scale": 2}, r"RGB only; drop the alpha channel first \(image\[\.\.\., :3\]\)"),
    (np.zeros((4, 5, 2)), {"scale": 2}, "image must have 1 or 3 channels"),
    (np.zeros((4, 5), np.int32), {"scale": 2}, "image dtype int32 is not supported; use uint8, uint16 or a float dtype"),
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
    (GOOD, {"size": (8, 0)},
     r"size must be \(height, width\) with two positive integers, got \(8, 0\) "
     r"\(note: OpenCV's dsize is \(width, height\)\)"),
    (GOOD, {"size": (8.0, 10)}, r"size must be \(height, width\) with two positive integers"),
    (GOOD, {"size": 8}, r"size must be a \(height, width\) pair, got 8"),
    (GOOD, {"scale": 2, "kernel": "cubic"}, r"unknown kernel 'cubic'; known kernels: bicubic, bilinear"),
    (GOOD, {"scale": 2, "kernel": "bicubic", "b": 1}, r"kernel 'bicubic' got unknown parameter\(s\) b; it accepts a"),
    (GOOD, {"scale": 2, "kernel": "bicubic", "a": 1.0}, r"cubic parameter a must be finite and in \[-1, 0\]"),
    (GOOD, {"scale": 2, "convention": "corners"}, r"unknown convention 'corners'; known conventions: align_corners, half_pixel"),
    (GOOD, {"scale": 2, "border": "wrap"}, r"unknown border 'wrap'; known borders: constant, reflect, renormalize, replicate"),
])
def test_bad_input(image: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        srlab.resize(image, **kwargs)
    assert caught.type is ValueError


@pytest.mark.parametrize("name", FIXED)
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"scale": 3}, r"has fixed phases \(0.0, 0.25, 0.5, 0.75\) and only works at scale 2; got scale 3 along y"),
    ({"scale": (2, 1.5)}, r"only works at scale 2; got scale 1.5 along x"),
    ({"size": (8, 11)}, r"only works at scale 2; got scale 2.2 along x"),
    ({"scale": 2, "convention": "align_corners"},
     r"only works at scale 2; got scale 2.33333 along y \(with align_corners use size=\(2\*H - 1, 2\*W - 1\)\)"),
])
def test_shift_add_only_at_scale_two(name: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=rf"kernel '{name}' .*{message}"):
        srlab.resize(GOOD, kernel=name, **kwargs)
