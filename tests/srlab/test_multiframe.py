"""srlab.multiframe: sequences with known motion, and registration that recovers it."""

from __future__ import annotations

import numpy as np
import pytest

from srlab.images import degrade, load_image
from srlab.multiframe import (
    Motion,
    register_ecc,
    register_frames,
    register_translation,
    simulate_sequence,
    warp,
)


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    return load_image("camera")


def rms(estimated, motions) -> float:
    error = np.array([[e.dy - m.dy, e.dx - m.dx] for e, m in zip(estimated, motions)])
    return float(np.sqrt((error**2).sum(axis=1).mean()))


def test_the_reference_frame_is_the_degraded_scene_and_motion_moves_the_content(camera):
    seq = simulate_sequence(camera[:96, :128], 3, 2, shifts=[[0, 0], [0, 1.0], [-2.0, 0]])
    assert [f.shape for f in seq.frames] == [(48, 64)] * 3 and seq.frames[0].dtype == np.uint8
    expected, hr = degrade(camera[:96, :128], 2)
    assert np.abs(seq.frames[0].astype(int) - expected).max() <= 1 and seq.hr.shape == hr.shape
    # A whole LR pixel right, two up: the content moves with the motion (away from the edges).
    assert np.array_equal(seq.frames[1][:, 3:-3], seq.frames[0][:, 2:-4])
    assert np.array_equal(seq.frames[2][3:-5, :], seq.frames[0][5:-3, :])
    assert seq.motions[1] == Motion(0.0, 1.0, 0.0)
    assert np.array_equal(seq.shifts(), [[0, 0], [0, 1.0], [-2.0, 0]])


def test_warp_rotates_counter_clockwise_about_the_centre():
    image = np.zeros((33, 33))
    image[16, 24] = 1.0  # right of the centre pixel (16, 16)
    turned = warp(image, Motion(0.0, 0.0, 90.0))
    assert np.unravel_index(np.argmax(turned), turned.shape) == (8, 16)  # now above it


@pytest.mark.parametrize("method", ["phase", "ecc"])
@pytest.mark.parametrize(("noise", "limit"), [(0.0, 0.05), (2 / 255, 0.15)])
def test_registration_recovers_sub_pixel_translations(camera, method, noise, limit):
    seq = simulate_sequence(camera, 8, 2, noise_sigma=noise, seed=3)
    estimated = register_frames(seq.frames, method)
    assert estimated[0] == Motion(0.0, 0.0, 0.0)
    assert rms(estimated, seq.motions) <= limit


def test_ecc_recovers_rotations(camera):
    seq = simulate_sequence(camera, 6, 2, rotation=True, noise_sigma=2 / 255, seed=5)
    estimated = register_frames(seq.frames, "ecc")
    angles = np.array([[e.angle, m.angle] for e, m in zip(estimated, seq.motions)])
    assert np.abs(angles[:, 0] - angles[:, 1]).max() <= 0.2 and np.abs(angles[:, 1]).max() > 0.3
    assert rms(estimated, seq.motions) <= 0.05


def test_bad_sequences_and_frames_are_refused(camera):
    with pytest.raises(ValueError, match="n_frames must be"):
        simulate_sequence(camera, 1, 2)
    with pytest.raises(ValueError, match=r"shifts must be 3 finite \(dy, dx\) pairs"):
        simulate_sequence(camera, 3, 2, shifts=[[0, 0], [1, 1]])
    frames = simulate_sequence(camera[:64, :64], 2, 2).frames
    with pytest.raises(ValueError, match="at least 2 frames, got 1"):
        register_frames(frames[:1])
    with pytest.raises(ValueError, match="the frames differ in size"):
        register_translation(frames[0], frames[1][:-1])
    with pytest.raises(ValueError, match="unknown registration method 'sift'"):
        register_frames(frames, "sift")
    with pytest.raises(ValueError, match="too small to register"):
        register_ecc(frames[0][:4, :4], frames[1][:4, :4])
    with pytest.raises(
        ValueError, match=r"reference must be 2-D \(H, W\) or 3-D \(H, W, C\) with C in 1, 3, 4"
    ):
        register_translation(frames[0][None], frames[1][None])


@pytest.fixture(scope="module")
def noisy(camera):
    """camera at 2x, 8 frames, noise sigma 2 grey levels, and the motions registered."""
    seq = simulate_sequence(camera, 8, 2, noise_sigma=2 / 255, seed=3)
    return seq, register_frames(seq.frames)


def test_back_projection_beats_bicubic_of_the_reference_by_2_db(noisy):
    from srlab import resize
    from srlab.metrics import psnr
    from srlab.multiframe import fuse

    seq, estimated = noisy
    hr = seq.hr / 255
    bicubic = psnr(hr, resize(seq.frames[0], scale=2) / 255, 1.0, border=8)
    fused = fuse(seq.frames, estimated, 2, "back_project", iterations=10)
    assert fused.shape == seq.hr.shape and 0 <= fused.min() and fused.max() <= 1
    assert psnr(hr, fused, 1.0, border=8) >= bicubic + 2.0
    # Shift-and-add and interpolation gain less (no deblurring) but still gain.
    for method in ("shift_and_add", "interpolate"):
        assert psnr(hr, fuse(seq.frames, estimated, 2, method), 1.0, border=8) > bicubic


def test_fixed_point_kernels_in_the_chain_match_their_float_versions(noisy):
    from srlab.fpga import FixedPointResizer
    from srlab.metrics import psnr
    from srlab.multiframe import interpolate

    seq, estimated = noisy
    for kernel in ("shift_add_2x", "shift_add_2x_opencv"):
        datapath = FixedPointResizer(kernel=kernel, scale=2)
        exact = interpolate(seq.frames, estimated, 2, kernel=kernel)
        bit_true = interpolate(
            seq.frames, estimated, 2, kernel=lambda f, s, run=datapath.run: run(f)
        )
        loss = psnr(seq.hr / 255, exact, 1.0, border=8) - psnr(
            seq.hr / 255, bit_true, 1.0, border=8
        )
        assert abs(loss) <= 0.1, (kernel, loss)


def test_median_fusion_ignores_an_outlier_frame(camera):
    from srlab.metrics import psnr
    from srlab.multiframe import back_project, shift_and_add

    seq = simulate_sequence(camera[128:384, 128:384], 9, 2, seed=4)
    frames = list(seq.frames)
    frames[4] = 255 - frames[4]  # a frame that shows something else
    hr = seq.hr / 255
    for fuse_with in (
        lambda reducer: shift_and_add(frames, seq.motions, 2, reducer),
        lambda reducer: back_project(frames, seq.motions, 2, 5, robust=reducer == "median"),
    ):
        mean, median = (psnr(hr, fuse_with(r), 1.0, border=8) for r in ("mean", "median"))
        assert median >= mean + 3.0, (mean, median)


def test_bad_fusion_requests_are_refused(noisy):
    from srlab.multiframe import fuse, shift_and_add

    seq, estimated = noisy
    with pytest.raises(ValueError, match="8 frames but 7 motions"):
        fuse(seq.frames, estimated[:7], 2)
    with pytest.raises(ValueError, match="at least 2 frames, got 1"):
        fuse(seq.frames[:1], estimated[:1], 2)
    with pytest.raises(ValueError, match="the frames differ in size"):
        fuse([seq.frames[0], seq.frames[1][:-2]], estimated[:2], 2)
    with pytest.raises(ValueError, match="unknown fusion method 'magic'"):
        fuse(seq.frames, estimated, 2, "magic")
    with pytest.raises(ValueError, match="unknown reducer 'max'"):
        shift_and_add(seq.frames, estimated, 2, "max")
    from srlab.fpga import FixedPointResizer

    two = FixedPointResizer(kernel="bicubic", scale=2)
    with pytest.raises(ValueError, match=r"upscaler returned \(512, 512\) .* at scale 3"):
        fuse(seq.frames, estimated, 3, "interpolate", kernel=lambda f, s: two.run(f))
    with pytest.raises(ValueError, match="initial is .* the scale does not match"):
        fuse(seq.frames, estimated, 2, "back_project", initial=seq.hr[:-2] / 255)


def test_the_protocol_table_scores_every_method_against_the_baseline(camera):
    from srlab.multiframe import BASELINE, protocol_table

    table = protocol_table(
        {"camera": camera[128:320, 128:320]},
        n_frames=(4,),
        methods=("shift_and_add", "back_project"),
        iterations=3,
        progress=False,
    )
    assert len(table) == 1 + 2 * 2 and set(table["shifts"]) == {"-", "true", "estimated"}
    baseline = table[table["method"] == BASELINE].iloc[0]
    assert baseline["gain_db"] == 0 and np.allclose(
        table["gain_db"], table["psnr"] - baseline["psnr"]
    )
    estimated = table[table["shifts"] == "estimated"]
    assert (estimated["registration_rms"] < 0.15).all()


def test_the_multiframe_view_titles_each_fusion_with_its_psnr(camera):
    from srlab.viz import multiframe_explorer, multiframe_view

    fig = multiframe_view(camera[128:256, 128:256], 4, 2.0, 2, (0, 0, 64, 64), iterations=2)
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0] == "scene" and all(t.endswith(" dB") for t in titles[1:]) and len(titles) == 4
    explorer = multiframe_explorer(camera[:64, :64], (0, 0, 32, 32), settle_s=0)
    assert [c.description for c in explorer.children[0].children] == ["frames", "noise", "scale"]


def test_shift_and_add_places_samples_where_the_reference_saw_them(camera):
    from srlab.metrics import psnr
    from srlab.multiframe import shift_and_add

    # The classic design: four frames half an LR pixel apart, no noise. At 2x every sample sits
    # on an HR pixel corner; the fused image must match the scene, not the scene moved by half
    # an HR pixel.
    seq = simulate_sequence(
        camera[128:256, 128:256], 4, 2, shifts=[[0, 0], [0, 0.5], [0.5, 0], [0.5, 0.5]]
    )
    hr = seq.hr / 255
    # The scene moved half an HR pixel (a quarter of an LR one) along each diagonal.
    moved = [warp(hr, Motion(dy, dx)) for dy in (-0.25, 0.25) for dx in (-0.25, 0.25)]
    for reducer in ("mean", "median"):
        fused = shift_and_add(seq.frames, seq.motions, 2, reducer)
        closest = max(psnr(m, fused, 1.0, border=8) for m in moved)
        assert psnr(hr, fused, 1.0, border=8) > closest + 0.5, reducer


def test_a_warp_and_its_inverse_give_the_image_back(camera):
    image = camera[100:228, 100:228] / 255
    motion = Motion(0.7, -1.3, 4.0)
    back = warp(warp(image, motion, pixel=2), motion.inverse(), pixel=2)
    assert np.abs(back - image)[16:-16, 16:-16].mean() < 0.01


def test_ecc_finds_rotations_of_several_degrees(camera):
    # Six degrees: a rotation centre half a pixel off would show as a 0.05 px translation error.
    seq = simulate_sequence(camera, 2, 2, shifts=[[0, 0], [0.3, -0.4]], seed=1)
    frame = degrade(warp(seq.hr / 255, Motion(0.3, -0.4, 6.0), pixel=2), 2)[0]
    estimate = register_ecc(seq.frames[0], frame)
    assert abs(estimate.angle - 6.0) <= 0.2
    assert np.hypot(estimate.dy - 0.3, estimate.dx + 0.4) <= 0.05


def test_the_reference_frame_cannot_move(camera):
    with pytest.raises(ValueError, match=r"frame 0 is the reference .* subtract it from every row"):
        simulate_sequence(camera[:64, :64], 2, 2, shifts=[[0.5, 0], [1, 1]])
