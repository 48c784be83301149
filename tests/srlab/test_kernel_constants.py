"""The shift-add constants table against two independent implementations of the Keys cubic.

OpenCV's ``INTER_CUBIC`` uses Keys' cubic with a = -0.75 and Pillow's ``BICUBIC`` with
a = -0.5. Each resamples an impulse at a sub-pixel shift: output ``x`` samples the input at
``x + phase`` from taps ``x - 1 .. x + 2``, so with the impulse at ``P`` the tap ``k`` weight
lands in output ``P + 1 - k``. The phases of the table are dyadic, so every weight is exact in
float32 and the comparison is exact.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from srlab.kernels import SHIFT_ADD_CONSTANTS, get_kernel

WIDTH, IMPULSE = 16, 8  # the impulse far from both edges, so no border rule is involved


def _impulse() -> np.ndarray:
    image = np.zeros((5, WIDTH), np.float32)
    image[:, IMPULSE] = 1.0
    return image


def _taps(row: np.ndarray) -> np.ndarray:
    return row[[IMPULSE + 1, IMPULSE, IMPULSE - 1, IMPULSE - 2]]


def opencv_weights(phase: float) -> np.ndarray:
    """Weights of taps -1, 0, 1, 2 at ``phase`` from OpenCV's bicubic (a = -0.75)."""
    shift = np.float32([[1, 0, phase], [0, 1, 0]])  # dst(x) = src(x + phase)
    out = cv2.warpAffine(
        _impulse(), shift, (WIDTH, 5), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    )
    return _taps(out[2])


def pillow_weights(phase: float) -> np.ndarray:
    """Weights of taps -1, 0, 1, 2 at ``phase`` from Pillow's bicubic (a = -0.5)."""
    # A box of the output's own width starting at ``phase``: scale 1, every sample shifted.
    box = (phase, 0, WIDTH - 1 + phase, 5)
    out = np.asarray(
        Image.fromarray(_impulse()).resize((WIDTH - 1, 5), Image.Resampling.BICUBIC, box=box)
    )
    return _taps(out[2])


REFERENCES = {
    "shift_add_2x": (-0.5, pillow_weights),
    "shift_add_2x_opencv": (-0.75, opencv_weights),
}


def test_the_references_are_the_cubics_quoted_in_the_literature():
    # The weights usually quoted for a half-pixel sample: Keys a = -0.5 gives (-1, 9, 9, -1) / 16,
    # OpenCV's a = -0.75 gives (-3, 19, 19, -3) / 32.
    np.testing.assert_array_equal(pillow_weights(0.5) * 16, [-1, 9, 9, -1])
    np.testing.assert_array_equal(opencv_weights(0.5) * 32, [-3, 19, 19, -3])
    np.testing.assert_array_equal(pillow_weights(0.0), [0, 1, 0, 0])


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_shift_add_constants_equal_the_reference_implementation(name):
    a, reference = REFERENCES[name]
    table_a, table = SHIFT_ADD_CONSTANTS[name]
    assert table_a == a
    assert sorted(table) == [0.0, 0.25, 0.5, 0.75]
    for phase, (numerators, denominator) in table.items():
        expected = reference(phase) * denominator
        np.testing.assert_array_equal(
            np.asarray(numerators, dtype=np.float64), expected, err_msg=f"phase {phase}"
        )
        assert denominator & (denominator - 1) == 0  # a power of two: the division is a shift
    kernel = get_kernel(name)
    reference_rows = np.array([reference(p) for p in kernel.phases], dtype=np.float64)
    np.testing.assert_array_equal(kernel.weights(kernel.phases), reference_rows)
