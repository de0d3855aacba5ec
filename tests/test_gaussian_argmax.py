"""Gaussian targets and argmax decoding (claim 4), with their bad input."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import convert, numpy_of
from hypothesis import assume, given
from hypothesis import strategies as st

import landmark_codecs as lc
from landmark_codecs.testing import heatmap_sizes, landmarks


@st.composite
def case(draw, region="valid", max_side=64):
    size = draw(heatmap_sizes(min_side=1, max_side=max_side))
    return size, draw(st.floats(0.5, 3.0)), draw(landmarks(size, region=region))


@given(data=case())
def test_separable_rendering_equals_the_2d_formula(backend, data):
    size, sigma, c = data
    maps, weights = lc.encode_gaussian(convert(c, backend), heatmap_size=size, sigma=sigma)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    ref = np.exp(-((xx - c[:, 0, None, None]) ** 2 + (yy - c[:, 1, None, None]) ** 2) / (2 * sigma**2))
    np.testing.assert_allclose(numpy_of(maps), ref, rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(numpy_of(weights), 1.0)


@given(data=case())
def test_vanilla_round_trip_is_within_half_a_pixel(backend, data):
    """Claim 4: the integer-centred target decodes to x rounded half up: at most 0.5 px per axis.

    (Written as floor(x) + [frac >= 0.5]: the common floor(x + 0.5) rounds the largest float
    below n + 0.5 up to n + 1, off the map at x = W - 0.5 - ulp; this test found that.)"""
    size, sigma, c = data
    maps, _ = lc.encode_gaussian(convert(c, backend), heatmap_size=size, sigma=sigma, rounding="nearest")
    got = numpy_of(lc.decode_argmax(maps)[0])
    np.testing.assert_array_equal(got, np.floor(c) + (c - np.floor(c) >= 0.5))
    assert np.all(np.abs(got - c) <= 0.5)


@given(data=case())
def test_quarter_shift_bound_on_subpixel_targets(data):
    """0.25 px per axis where the maximum has both neighbours on that axis, 0.5 px elsewhere
    (sigma >= 0.5, so the neighbours' values do not underflow)."""
    size, sigma, c = data
    maps, _ = lc.encode_gaussian(c, heatmap_size=size, sigma=sigma)
    got, _ = lc.decode_argmax(maps, refine="quarter")
    plain, _ = lc.decode_argmax(maps)
    n = np.array(size)
    inner = (plain > 0) & (plain < n - 1)
    err = np.abs(got - c)
    assert np.all(err[inner] <= 0.25 + 1e-12)
    assert np.all(err <= 0.5)


def test_quarter_bound_is_tight_and_plain_argmax_is_worse():
    c = np.array([[10.25, 3.5], [10.4, 3.1]])
    maps, _ = lc.encode_gaussian(c, heatmap_size=(16, 8), sigma=1.0)
    got, _ = lc.decode_argmax(maps, refine="quarter")
    np.testing.assert_allclose(got, [[10.25, 3.25], [10.25, 3.25]])
    plain, _ = lc.decode_argmax(maps)
    np.testing.assert_allclose(plain, [[10, 3], [10, 3]])


def test_argmax_scores_and_first_maximum_on_ties():
    maps = np.zeros((2, 3, 4))
    maps[0, 1, 1] = maps[0, 2, 3] = 0.9
    got, scores = lc.decode_argmax(maps)
    np.testing.assert_array_equal(got, [[1, 1], [0, 0]])
    np.testing.assert_array_equal(scores, [0.9, 0.0])


@given(data=case(region="valid", max_side=32), dx=st.integers(0, 4), dy=st.integers(0, 4))
def test_decoders_are_equivariant_to_integer_shifts(data, dx, dy):
    """Padding a map by (dx, dy) on the top-left moves every decoder's output by exactly that.

    For top-k this needs the k-th value untied: symmetric maps tie, and which tied pixel joins
    the set is the backend's choice, so such maps are left out.
    """
    size, sigma, c = data
    maps, _ = lc.encode_gaussian(c, heatmap_size=size, sigma=sigma)
    ranked = np.sort(maps.reshape(len(maps), -1), axis=-1)[:, ::-1]
    k = min(9, ranked.shape[-1])
    assume(k == ranked.shape[-1] or np.all(ranked[:, k - 1] != ranked[:, k]))
    padded = np.pad(maps, [(0, 0), (dy, 0), (dx, 0)])
    shift = np.array([dx, dy])
    for decode in (
        lc.decode_argmax,
        lambda m: lc.decode_randomized_rounding(m, top_k=k, logits=False),
        lambda m: lc.decode_soft_argmax(m, logits=False),
    ):
        a, _ = decode(maps)
        b, _ = decode(padded)
        np.testing.assert_allclose(b, a + shift, rtol=0, atol=1e-9)


@given(maps=st.integers(0, 2**32 - 1).map(lambda s: np.random.default_rng(s).random((3, 5, 7))))
def test_decoders_are_equivariant_to_horizontal_flips(maps):
    for decode in (
        lc.decode_argmax,
        lambda m: lc.decode_argmax(m, refine="quarter"),
        lambda m: lc.decode_randomized_rounding(m, logits=False),
        lambda m: lc.decode_randomized_rounding(m, activation="window", logits=False),
        lambda m: lc.decode_soft_argmax(m, logits=True),
    ):
        a, sa = decode(maps)
        b, sb = decode(maps[..., ::-1].copy())
        np.testing.assert_allclose(b, lc.flip_horizontal(a, width=7), atol=1e-12)
        np.testing.assert_array_equal(sa, sb)


def test_gaussian_flip_equivariance_off_exact_halves():
    """rounding="nearest" rounds halves up, so it is flip-equivariant except at x = n + 0.5."""
    c = np.array([[2.3, 1.0], [4.5, 1.0]])
    maps, _ = lc.encode_gaussian(c, heatmap_size=(8, 4), sigma=1.0, rounding="nearest")
    flipped, _ = lc.encode_gaussian(lc.flip_horizontal(c, width=8), heatmap_size=(8, 4), sigma=1.0, rounding="nearest")
    np.testing.assert_allclose(flipped[0], maps[0, :, ::-1])
    assert not np.allclose(flipped[1], maps[1, :, ::-1])


def test_visibility_and_out_of_range():
    c = np.array([[[1.0, 1.0], [-0.6, 1.0], [np.inf, 0.0]], [[1.0, 1.0], [2.0, 2.0], [np.nan, np.nan]]])
    visible = np.array([[0.5, 1.0, 1.0], [True, False, True]], dtype=float)
    maps, weights = lc.encode_gaussian(c, heatmap_size=(4, 4), sigma=1.0, weights=visible)
    np.testing.assert_array_equal(weights, [[0.5, 0, 0], [1, 0, 0]])
    assert np.all(np.isfinite(maps))
    assert maps[0, 0].max() == 1.0 and maps[1, 0].max() == 1.0
    assert np.all(maps[0, 1:] == 0) and np.all(maps[1, 1:] == 0)


def test_empty_batch_and_zero_landmarks():
    for shape in [(0, 5, 2), (3, 0, 2)]:
        maps, weights = lc.encode_gaussian(np.zeros(shape), heatmap_size=(6, 4), sigma=1.0)
        assert maps.shape == (*shape[:-1], 4, 6) and weights.shape == shape[:-1]
        for decode in (
            lc.decode_argmax,
            lambda m: lc.decode_randomized_rounding(m, logits=False),
            lambda m: lc.decode_soft_argmax(m, logits=True),
        ):
            coords, scores = decode(maps)
            assert coords.shape == shape and scores.shape == shape[:-1]


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: lc.encode_gaussian(np.zeros((3,)), heatmap_size=(4, 4), sigma=1.0),
            ValueError,
            r"coords must have shape \(\.\.\., K, 2\).*got shape \(3,\)",
        ),
        (
            lambda: lc.encode_gaussian(np.zeros((2, 3)), heatmap_size=(4, 4), sigma=1.0),
            ValueError,
            r"got shape \(2, 3\)",
        ),
        (
            lambda: lc.encode_gaussian(np.zeros((2, 2), dtype=int), heatmap_size=(4, 4), sigma=1.0),
            TypeError,
            "coords must have a real floating dtype",
        ),
        (
            lambda: lc.encode_gaussian(np.zeros((2, 2)), heatmap_size=(4, 0), sigma=1.0),
            ValueError,
            r"heatmap_size must be a \(width, height\) pair of positive ints, got \(4, 0\)",
        ),
        (
            lambda: lc.encode_gaussian(np.zeros((2, 2)), heatmap_size=(4.0, 4), sigma=1.0),
            TypeError,
            "heatmap_size must be",
        ),
        (lambda: lc.encode_gaussian(np.zeros((2, 2)), heatmap_size=64, sigma=1.0), TypeError, "heatmap_size must be"),
        (
            lambda: lc.encode_gaussian(np.zeros((2, 2)), heatmap_size=(4, 4), sigma=0),
            ValueError,
            "sigma must be positive and finite, got 0",
        ),
        (
            lambda: lc.encode_gaussian(np.zeros((2, 2)), heatmap_size=(4, 4), sigma=float("nan")),
            ValueError,
            "sigma must be positive",
        ),
        (
            lambda: lc.encode_gaussian(np.zeros((2, 2)), heatmap_size=(4, 4), sigma=1.0, rounding="floor"),
            ValueError,
            "rounding must be one of 'none', 'nearest', got 'floor'",
        ),
        (lambda: lc.decode_argmax(np.zeros((4, 4))), ValueError, r"heatmaps must have shape \(\.\.\., K, H, W\)"),
        (lambda: lc.decode_argmax(np.zeros((1, 0, 4))), ValueError, "H >= 1 and W >= 1"),
        (
            lambda: lc.decode_argmax(np.zeros((1, 4, 4), dtype=np.uint8)),
            TypeError,
            "heatmaps must have a real floating dtype, got uint8",
        ),
        (lambda: lc.decode_argmax(np.zeros((1, 4, 4)), refine="dark"), ValueError, "refine must be one of"),
        (lambda: lc.decode_argmax([[[0.0]]]), TypeError, "heatmaps must be an array"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_mixed_array_libraries_are_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(
        TypeError,
        match=r"all arrays must come from one array library, got coords: numpy.ndarray, weights: torch.Tensor",
    ):
        lc.encode_gaussian(np.zeros((2, 2)), heatmap_size=(4, 4), sigma=1.0, weights=torch.ones(2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_tail_is_exp_above_the_smallest_normal_and_zero_below(backend, dtype):
    """Documented in _xp.exp_flushed: values below e * smallest_normal are exactly 0 (torch's
    CPU exp is ~20x slower on subnormal results), every other value is exp's."""
    coords = np.array([[0.0, 0.0]], dtype=dtype)
    sigma = 0.8
    maps, _ = lc.encode_gaussian(convert(coords, backend), heatmap_size=(64, 1), sigma=sigma)
    got = numpy_of(maps)[0, 0]
    d = np.arange(64, dtype=dtype)
    exponent = d * d * dtype(-0.5 / (sigma * sigma))  # the implementation's rounding of the exponent
    floor = np.log(np.finfo(dtype).smallest_normal) + 1.0
    above = exponent >= floor
    assert above.any() and (~above).any()
    np.testing.assert_allclose(got[above], np.exp(exponent[above]), rtol=4 * np.finfo(dtype).eps, atol=0)
    assert np.all(got[~above] == 0)


@pytest.mark.parametrize("rounding", ["none", "nearest"])
def test_drawing_outside_is_the_gaussian_formula_for_any_finite_landmark(backend, rounding):
    """outside="draw": every finite landmark gets exp(-d^2 / 2 sigma^2) on the map's pixels and
    keeps its weight, near the map, far from it and at the float limit (the clamp at 40 sigma
    changes no value); inside the map it is outside="empty"'s target; NaN still gets nothing."""
    coords = np.array([[3.2, 4.7], [-1.3, 2.0], [-6.6, -0.9], [12.4, 9.9], [1e6, 2.0], [-1e300, 3.0], [np.nan, 1.0]])
    weights = np.array([1.0, 0.5, 1.0, 2.0, 1.0, 1.0, 1.0])
    sigma, (w, h) = 1.5, (10, 8)
    maps, got_weights = lc.encode_gaussian(
        convert(coords, backend),
        heatmap_size=(w, h),
        sigma=sigma,
        rounding=rounding,
        weights=convert(weights, backend),
        outside="draw",
    )
    centre = np.floor(coords + 0.5) if rounding == "nearest" else coords
    with np.errstate(invalid="ignore", over="ignore"):
        dx = (np.arange(w) - centre[:, :1]) ** 2
        dy = (np.arange(h) - centre[:, 1:]) ** 2
    want = np.exp(-(dy[:, :, None] + dx[:, None, :]) / (2 * sigma**2))
    want[6] = 0
    np.testing.assert_allclose(numpy_of(maps), want, rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(numpy_of(got_weights), np.where(np.isfinite(coords).all(-1), weights, 0))
    assert numpy_of(maps)[1].max() > 0.1 and numpy_of(maps)[4].max() == 0
    inside, _ = lc.encode_gaussian(convert(coords[:1], backend), heatmap_size=(w, h), sigma=sigma, rounding=rounding)
    np.testing.assert_array_equal(numpy_of(maps)[:1], numpy_of(inside))
    with pytest.raises(ValueError, match="outside must be one of"):
        lc.encode_gaussian(coords, heatmap_size=(w, h), sigma=sigma, outside="clip")
