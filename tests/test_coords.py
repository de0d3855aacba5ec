"""Coordinate conventions: known values, exact round trips, flips."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import convert, numpy_of
from hypothesis import given
from hypothesis import strategies as st

import landmark_codecs as lc
from landmark_codecs.testing import landmarks

sizes = st.integers(2, 512)


@pytest.mark.parametrize("convention", lc.coords.CONVENTIONS)
@given(wi=sizes, hi=sizes, wh=sizes, hh=sizes, data=st.data())
def test_round_trip(backend, convention, wi, hi, wh, hh, data):
    c = data.draw(landmarks((wi, hi), num_landmarks=4))
    kw = dict(image_size=(wi, hi), heatmap_size=(wh, hh), convention=convention)
    back = lc.heatmap_to_image(lc.image_to_heatmap(convert(c, backend), **kw), **kw)
    np.testing.assert_allclose(numpy_of(back), c, rtol=1e-13, atol=1e-12)


@given(wi=sizes, wh=sizes)
def test_pixel_center_maps_the_valid_range_onto_itself(wi, wh):
    c = np.array([[-0.5, -0.5], [wi - 0.5, wi - 0.5]])
    got = lc.image_to_heatmap(c, image_size=(wi, wi), heatmap_size=(wh, wh))
    np.testing.assert_allclose(got, [[-0.5, -0.5], [wh - 0.5, wh - 0.5]], atol=1e-12)


def test_known_values_at_stride_4():
    c = np.array([[0.0, 255.0], [2.0, 128.0]])
    kw = dict(image_size=(256, 256), heatmap_size=(64, 64))
    np.testing.assert_allclose(lc.image_to_heatmap(c, **kw), [[-0.375, 63.375], [0.125, 31.625]])
    np.testing.assert_allclose(lc.image_to_heatmap(c, convention="legacy", **kw), [[0, 63.75], [0.5, 32]])
    np.testing.assert_allclose(
        lc.image_to_heatmap(c, convention="udp", **kw), [[0, 63], [2 * 63 / 255, 128 * 63 / 255]]
    )


def test_non_square_axes_use_their_own_sizes():
    got = lc.image_to_heatmap(np.array([[191.5, 255.5]]), image_size=(192, 256), heatmap_size=(48, 64))
    np.testing.assert_allclose(got, [[47.5, 63.5]])


@given(c=landmarks((9, 5)))
def test_flip_is_an_involution_and_mirrors_pixels(c):
    once = lc.flip_horizontal(c, width=9)
    np.testing.assert_allclose(lc.flip_horizontal(once, width=9), c, atol=1e-12)

    def pixel(x):  # the j with x in [j - 0.5, j + 0.5)
        return np.floor(x) + (x - np.floor(x) >= 0.5)

    x = c[..., 0]
    off_edges = x - np.floor(x) != 0.5  # a pixel edge flips onto the edge the other pixel owns
    np.testing.assert_array_equal(pixel(once[..., 0])[off_edges], (8 - pixel(x))[off_edges])


def test_flip_index_and_inputs_untouched():
    c = np.array([[[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]])
    keep = c.copy()
    got = lc.flip_horizontal(c, width=10, flip_index=[2, 1, 0])
    np.testing.assert_array_equal(got, [[[5.0, 5.0], [7.0, 3.0], [9.0, 1.0]]])
    np.testing.assert_array_equal(c, keep)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: lc.image_to_heatmap(
                np.zeros((1, 2)), image_size=(256, 256), heatmap_size=(64, 64), convention="msra"
            ),
            ValueError,
            "convention must be one of 'pixel_center', 'legacy', 'udp', got 'msra'",
        ),
        (
            lambda: lc.image_to_heatmap(np.zeros((1, 2)), image_size=(1, 256), heatmap_size=(64, 64), convention="udp"),
            ValueError,
            "udp.*at least 2",
        ),
        (
            lambda: lc.image_to_heatmap(np.zeros((1, 2)), image_size=(256,), heatmap_size=(64, 64)),
            TypeError,
            r"image_size must be a \(width, height\) pair",
        ),
        (
            lambda: lc.flip_horizontal(np.zeros((2, 2)), width=4, flip_index=[0, 0]),
            ValueError,
            r"flip_index must be a permutation of range\(2\)",
        ),
        (lambda: lc.flip_horizontal(np.zeros((2, 2)), width=0), ValueError, "width must be a positive int"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_one_scale_for_both_axes_gives_the_per_axis_arrays_bits(dtype):
    """to_image with one scale and offset for both axes computes with Python scalars: the same
    bits as with the per-axis arrays in the coordinates' dtype."""
    from landmark_codecs.coords import to_image

    rng = np.random.default_rng(0)
    c = (rng.uniform(-5, 70, size=(20, 2)) * 8).astype(dtype)
    for a, b in ((2.0, 0.0), (0.25, -0.375), (1 / 3, 0.1)):
        want = (c - np.asarray([b, b], dtype=dtype)) / np.asarray([a, a], dtype=dtype)
        got = to_image(np, c, ((a, a), (b, b)))
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)
