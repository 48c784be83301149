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
    with pytest.raises(ValueError, match=r"\(h, w\) grey or \(h, w, 3\) colour image"):
        register_translation(frames[0][None], frames[1][None])
