"""Randomized rounding (H3R): the unbiased and lossless claims, on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import array_namespace
from helpers import convert, numpy_of
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy import stats

import landmark_codecs as lc
from landmark_codecs.testing import assert_lossless, heatmap_sizes, landmarks

TOL = {np.float32: 1e-5, np.float64: 1e-9}


def _clamped(c, size):
    w, h = size
    return np.clip(c, 0, [w - 1, h - 1])


@st.composite
def sized_landmarks(draw, region="valid", dtype=np.float64, min_side=2, max_side=256):
    size = draw(heatmap_sizes(min_side=min_side, max_side=max_side))
    return size, draw(landmarks(size, region=region, dtype=dtype))


# -- Claim 1: unbiased ---------------------------------------------------------------------------


@given(data=sized_landmarks(max_side=64), seed=st.integers(0, 2**32 - 1))
def test_sampled_pixel_is_floor_plus_coin(backend, data, seed):
    size, c = data
    noise = np.random.default_rng(seed).random(c.shape)
    maps, weights = lc.encode_randomized_rounding(convert(c, backend), heatmap_size=size, noise=convert(noise, backend))
    m = numpy_of(maps)
    cc = _clamped(c, size)
    want = np.floor(cc) + (noise < cc - np.floor(cc))
    assert np.all(m.sum(axis=(-2, -1)) == 1.0)  # exactly one pixel
    got = np.stack([m.sum(axis=-2).argmax(-1), m.sum(axis=-1).argmax(-1)], axis=-1)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(numpy_of(weights), 1.0)


def _rounding_up_fraction_test(sample_pixels, c, alpha=1e-6):
    """Exact binomial test per coordinate that P(round up) == frac(c); returns the smallest p-value."""
    low = np.floor(c)
    frac = c - low
    ups = (sample_pixels - low).sum(axis=0)
    n = sample_pixels.shape[0]
    pvalues = np.ones(c.shape)
    for idx in np.ndindex(*c.shape):
        f = float(frac[idx])
        if f < 1e-12:  # scipy's binomtest overflows on subnormal p; P(any up in n draws) < n * 1e-12
            pvalues[idx] = 1.0 if ups[idx] == 0 else 0.0
        else:
            pvalues[idx] = stats.binomtest(int(ups[idx]), n, f).pvalue
    return pvalues.min(), alpha / c.size


@given(c=landmarks((16, 12), region="representable", num_landmarks=4))
def test_mean_of_samples_is_the_coordinate(c):
    n = 4000
    rng = np.random.default_rng(1234)
    maps, _ = lc.encode_randomized_rounding(np.broadcast_to(c, (n, *c.shape)), heatmap_size=(16, 12), rng=rng)
    pixels, _ = lc.decode_argmax(maps)
    pmin, threshold = _rounding_up_fraction_test(pixels, c)
    assert pmin >= threshold


def test_the_binomial_check_detects_a_biased_rounding():
    """The check above is not vacuous: noise shifted by 0.05 (a 0.05 px bias) is rejected."""
    n = 4000
    c = np.full((n, 4, 2), 5.5)
    biased = np.random.default_rng(0).random(c.shape) + 0.05
    maps, _ = lc.encode_randomized_rounding(c, heatmap_size=(8, 8), noise=biased)
    pixels, _ = lc.decode_argmax(maps)
    pmin, threshold = _rounding_up_fraction_test(pixels, c[0])
    assert pmin < threshold


@given(data=sized_landmarks())
def test_expected_map_sums_to_one_with_centroid_at_the_coordinate(backend, data):
    size, c = data
    maps, _ = lc.encode_randomized_rounding(convert(c, backend), heatmap_size=size, expected=True)
    m = numpy_of(maps)
    assert np.all(np.count_nonzero(m, axis=(-2, -1)) <= 4)
    np.testing.assert_allclose(m.sum(axis=(-2, -1)), 1.0, rtol=0, atol=1e-12)
    w, h = size
    centroid = np.stack([(m.sum(-2) * np.arange(w)).sum(-1), (m.sum(-1) * np.arange(h)).sum(-1)], axis=-1)
    np.testing.assert_allclose(centroid, _clamped(c, size), rtol=0, atol=1e-9)


# -- Claim 2: lossless ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["topk", "window"])
@pytest.mark.parametrize("input", ["probabilities", "logits"])
@given(data=st.data())
def test_expected_target_decodes_losslessly(backend, dtype, activation, input, data):
    size, c = data.draw(sized_landmarks(dtype=dtype))
    w, h = size
    k = min(9, w * h)

    def encode(x):
        maps, _ = lc.encode_randomized_rounding(x, heatmap_size=size, expected=True)
        if input == "logits":
            return array_namespace(maps).log(maps)
        return maps

    def decode(m):
        return lc.decode_randomized_rounding(m, top_k=k, activation=activation, logits=input == "logits")

    with np.errstate(divide="ignore"):
        assert_lossless(encode, decode, convert(c, backend), atol=TOL[dtype], expected=_clamped(c, size))


def test_border_band_is_clamped_and_the_rest_is_exact():
    c = np.array([[-0.5, -0.5], [np.nextafter(255.5, 0), 0.0], [0.0, 255.0], [127.3, 3.7]])
    maps, _ = lc.encode_randomized_rounding(c, heatmap_size=(256, 256), expected=True)
    got, _ = lc.decode_randomized_rounding(maps, logits=False)
    np.testing.assert_allclose(got, [[0, 0], [255, 0], [0, 255], [127.3, 3.7]], rtol=0, atol=1e-12)


def test_k_below_four_is_lossy():
    """The set must cover the <= 4 target pixels: with top_k=1 the decode is the argmax."""
    maps, _ = lc.encode_randomized_rounding(np.array([[3.3, 4.6]]), heatmap_size=(8, 8), expected=True)
    got, _ = lc.decode_randomized_rounding(maps, top_k=1, logits=False)
    np.testing.assert_array_equal(got, [[3.0, 5.0]])


# -- Claim 5: equivariance -----------------------------------------------------------------------


@given(data=sized_landmarks(region="representable", max_side=48), dx=st.integers(0, 5), dy=st.integers(0, 5))
def test_integer_shift_moves_the_expected_map(data, dx, dy):
    size, c = data
    w, h = size
    maps, _ = lc.encode_randomized_rounding(c, heatmap_size=size, expected=True)
    shifted, _ = lc.encode_randomized_rounding(c + np.array([dx, dy]), heatmap_size=(w + dx, h + dy), expected=True)
    np.testing.assert_allclose(shifted[..., dy:, dx:], maps, rtol=0, atol=1e-12)
    assert np.all(shifted[..., :dy, :] == 0) and np.all(shifted[..., :, :dx] == 0)


@given(data=sized_landmarks(region="valid", max_side=48))
def test_horizontal_flip_mirrors_the_expected_map(data):
    """Holds wherever the flip stays in the valid range: x = -0.5, and x within an ulp of it,
    flip (after rounding) to W - 0.5, just outside the half-open range [-0.5, W - 0.5)."""
    size, c = data
    mirrored = lc.flip_horizontal(c, width=size[0])
    assume(np.all(lc.in_heatmap(mirrored, heatmap_size=size)))
    maps, _ = lc.encode_randomized_rounding(c, heatmap_size=size, expected=True)
    flipped, _ = lc.encode_randomized_rounding(mirrored, heatmap_size=size, expected=True)
    np.testing.assert_allclose(flipped, maps[..., ::-1], rtol=0, atol=1e-12)


def test_flipped_noise_gives_the_flipped_sample():
    """Sampling is flip-equivariant in distribution: u -> 1 - u mirrors every sample (off ties u == frac)."""
    rng = np.random.default_rng(3)
    c = rng.uniform(0, 9, size=(50, 2))
    u = rng.random(c.shape)
    maps, _ = lc.encode_randomized_rounding(c, heatmap_size=(10, 10), noise=u)
    flip_noise = np.stack([1 - u[:, 0], u[:, 1]], axis=-1)
    flipped, _ = lc.encode_randomized_rounding(lc.flip_horizontal(c, width=10), heatmap_size=(10, 10), noise=flip_noise)
    np.testing.assert_array_equal(flipped, maps[..., ::-1])


# -- Options, weights and bad input --------------------------------------------------------------


def test_sigma_smooths_each_sample_and_the_expectation():
    c = np.array([[2.25, 3.0]])
    u = np.array([[0.1, 0.5]])
    smooth, _ = lc.encode_randomized_rounding(c, heatmap_size=(8, 8), noise=u, sigma=1.0)
    ref, _ = lc.encode_gaussian(np.array([[3.0, 3.0]]), heatmap_size=(8, 8), sigma=1.0)
    np.testing.assert_allclose(smooth, ref, atol=1e-15)
    exp_smooth, _ = lc.encode_randomized_rounding(c, heatmap_size=(8, 8), expected=True, sigma=1.0)
    lo, _ = lc.encode_gaussian(np.array([[2.0, 3.0]]), heatmap_size=(8, 8), sigma=1.0)
    np.testing.assert_allclose(exp_smooth, 0.75 * lo + 0.25 * ref, atol=1e-15)


def test_torch_generator_draws_on_the_tensor_device():
    torch = pytest.importorskip("torch")
    c = torch.tensor([[[1.5, 2.5]]] * 3, dtype=torch.float32)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    a, _ = lc.encode_randomized_rounding(c, heatmap_size=(4, 4), rng=g1)
    b, _ = lc.encode_randomized_rounding(c, heatmap_size=(4, 4), rng=g2)
    assert a.dtype == torch.float32 and torch.equal(a, b)


def test_numpy_generator_is_reproducible():
    c = np.random.default_rng(0).uniform(0, 7, size=(100, 2))
    a, _ = lc.encode_randomized_rounding(c, heatmap_size=(8, 8), rng=np.random.default_rng(5))
    b, _ = lc.encode_randomized_rounding(c, heatmap_size=(8, 8), rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


def test_invisible_nan_and_outside_landmarks_get_zero_weight_and_map():
    c = np.array([[1.0, 1.0], [np.nan, 1.0], [8.0, 1.0], [2.0, 2.0]])
    visible = np.array([1, 1, 1, 0])
    maps, weights = lc.encode_randomized_rounding(c, heatmap_size=(8, 8), expected=True, weights=visible)
    np.testing.assert_array_equal(weights, [1, 0, 0, 0])
    assert maps[0].sum() == 1 and np.all(maps[1:] == 0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(), ValueError, "needs noise"),
        (dict(expected=True, rng=np.random.default_rng()), ValueError, "neither noise nor rng"),
        (dict(noise=np.zeros((2, 2)), rng=np.random.default_rng()), ValueError, "not both"),
        (dict(noise=np.zeros((2, 1))), ValueError, r"noise must have shape \(2, 2\)"),
        (dict(rng=42), TypeError, "rng must be a numpy.random.Generator"),
        (dict(expected=True, sigma=0.0), ValueError, "sigma must be positive"),
        (dict(expected=True, weights=np.ones(3)), ValueError, r"weights must have shape \(2,\)"),
    ],
)
def test_encoder_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        lc.encode_randomized_rounding(np.zeros((2, 2)), heatmap_size=(4, 4), **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(top_k=17), r"top_k must be at most H\*W = 16"),
        (dict(top_k=0), "top_k must be a positive int"),
        (dict(activation="window", window_size=4), "window_size must be odd"),
        (dict(activation="box"), "activation must be one of 'topk', 'window', got 'box'"),
    ],
)
def test_decoder_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lc.decode_randomized_rounding(np.zeros((1, 4, 4)), **{"logits": False, **kwargs})


def test_decoder_needs_an_explicit_bool_logits():
    """Probabilities decoded as logits (or the reverse) is silently wrong: no default, no strings."""
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'logits'"):
        lc.decode_randomized_rounding(np.zeros((1, 4, 4)))
    with pytest.raises(TypeError, match="logits must be True or False, got 'probs'"):
        lc.decode_randomized_rounding(np.zeros((1, 4, 4)), logits="probs")


def test_decoder_window_is_clipped_at_the_corner():
    maps = np.zeros((1, 5, 5))
    maps[0, 0, 0], maps[0, 0, 1], maps[0, 4, 4] = 0.6, 0.4, 0.5
    got, scores = lc.decode_randomized_rounding(maps, activation="window", logits=False)
    np.testing.assert_allclose(got, [[0.4, 0.0]])
    got_topk, _ = lc.decode_randomized_rounding(maps, top_k=3, logits=False)
    np.testing.assert_allclose(got_topk, [[(0.4 + 0.5 * 4) / 1.5, 0.5 * 4 / 1.5]])
    assert scores.tolist() == [0.6]


def test_all_zero_probabilities_decode_to_the_maximum():
    got, scores = lc.decode_randomized_rounding(np.zeros((2, 3, 4)), logits=False)
    np.testing.assert_array_equal(got, 0.0)
    np.testing.assert_array_equal(scores, 0.0)
