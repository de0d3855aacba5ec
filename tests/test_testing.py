"""The public property checks pass on good codecs and fail on bad ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

import landmark_codecs as lc
from landmark_codecs.testing import assert_lossless, assert_unbiased, heatmap_sizes, landmarks, unbiased_bound


def _rr_sample(c, rng):
    maps, _ = lc.encode_randomized_rounding(c, heatmap_size=(8, 8), rng=rng)
    return lc.decode_argmax(maps)[0]


def test_assert_unbiased_accepts_randomized_rounding_near_integers_and_borders():
    # The old t-test with its exact-equality rule for constant samples rejected 8-12 of 20 seeds
    # at y = 2 - 1/2048 and 2 + 1/4096 (an unbiased rounding sampler rarely varies there).
    coords = np.array([[1.3, 2 - 1 / 2048], [0.5, 2 + 1 / 4096], [0.0, 7.0 - 1e-9], [7.0, 3.5]])
    for seed in range(5):
        assert_unbiased(_rr_sample, coords, seed=seed)


def test_assert_unbiased_rejects_nearest_rounding_and_a_skewed_coin():
    def nearest(c, rng):
        maps, _ = lc.encode_gaussian(c, heatmap_size=(8, 8), sigma=1.0, rounding="nearest")
        return lc.decode_argmax(maps)[0]

    with pytest.raises(AssertionError, match="biased at family-wise false-alarm rate"):
        assert_unbiased(nearest, np.array([[1.3, 6.0]]), n_samples=200)

    def skewed(c, rng):
        maps, _ = lc.encode_randomized_rounding(c, heatmap_size=(8, 8), noise=rng.random(c.shape) * 0.8)
        return lc.decode_argmax(maps)[0]

    with pytest.raises(AssertionError, match="biased at family-wise false-alarm rate"):
        assert_unbiased(skewed, np.array([[1.5, 6.5]]), n_samples=2000)


def test_assert_unbiased_fails_non_finite_and_widely_spread_samples():
    c = np.array([[1.5, 2.5]])
    with pytest.raises(AssertionError, match="NaN or infinite"):
        assert_unbiased(lambda c, rng: np.full_like(c, np.nan), c, n_samples=10)

    def biased_sometimes_nan(c, rng):
        out = c + 5.0
        return out if rng.random() > 0.01 else np.full_like(c, np.nan)

    with pytest.raises(AssertionError, match="NaN or infinite"):
        assert_unbiased(biased_sometimes_nan, c, n_samples=2000)
    with pytest.raises(AssertionError, match="spread over"):
        assert_unbiased(lambda c, rng: c + rng.normal(size=c.shape), c, n_samples=100)
    with pytest.raises(AssertionError, match="shape"):
        assert_unbiased(lambda c, rng: c[0], c, n_samples=10)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("alpha", float("nan")),
        ("alpha", -1.0),
        ("alpha", 0.0),
        ("alpha", 1.0),
        ("alpha", "0.1"),
        ("n_samples", 0),
        ("n_samples", 1),
        ("n_samples", True),
        ("n_samples", 2.5),
        ("support_width", 0.0),
        ("support_width", float("inf")),
    ],
)
def test_assert_unbiased_refuses_bad_options(option, value):
    with pytest.raises(ValueError, match=option):
        assert_unbiased(lambda c, rng: c, np.array([[1.0, 2.0]]), **{option: value})
    with pytest.raises(ValueError, match="coords must be finite"):
        assert_unbiased(lambda c, rng: c, np.array([[np.nan, 2.0]]))
    bound_options = {"alpha": 1e-3, "support_width": 1.0, "n_samples": 100} | {option: value}
    with pytest.raises(ValueError, match=option):
        unbiased_bound(0.1, bound_options.pop("n_samples"), **bound_options)
    with pytest.raises(ValueError, match="n_tests must be a positive int"):
        unbiased_bound(0.1, 100, alpha=1e-3, support_width=1.0, n_tests=0)


def test_unbiased_bound_is_the_documented_formula():
    n, alpha, b, m = 2000, 1e-6, 1.0, 4
    delta = alpha / m
    hoeffding = b * np.sqrt(np.log(4 / delta) / (2 * n))
    bernstein = lambda v: np.sqrt(2 * v * np.log(8 / delta) / n) + 7 * b * np.log(8 / delta) / (3 * (n - 1))  # noqa: E731
    got = unbiased_bound(np.array([0.0, 0.01, 0.25]), n, alpha=alpha, support_width=b, n_tests=m)
    np.testing.assert_allclose(got, [bernstein(0.0), bernstein(0.01), min(hoeffding, bernstein(0.25))], rtol=1e-12)
    assert hoeffding < bernstein(0.25)  # the large-variance end is Hoeffding's


@pytest.mark.parametrize("side", [1 - 1e-6, 1 + 1e-6])
def test_assert_unbiased_threshold_is_pinned_on_both_sides(side):
    """Samples +-0.25 around truth + mu: rejected just above the bound, accepted just below it."""
    n, alpha = 2000, 1e-3
    c = np.array([[3.0, 4.0]])
    spread = np.array([0.25, -0.25] * (n // 2))
    var = spread.var(ddof=1)
    mu = side * float(unbiased_bound(var, n, alpha=alpha, support_width=1.0, n_tests=c.size))
    calls = iter(range(n))

    def sampler(coords, rng):
        return coords + np.array([mu + spread[next(calls)], 0.0])

    if side > 1:
        with pytest.raises(AssertionError, match="biased"):
            assert_unbiased(sampler, c, n_samples=n, alpha=alpha)
    else:
        assert_unbiased(sampler, c, n_samples=n, alpha=alpha)


@pytest.mark.parametrize("side", [1 - 1e-9, 1 + 1e-9])
def test_assert_lossless_tolerance_is_pinned_on_both_sides(side):
    atol = 1e-3
    c = np.array([[2.0, 3.0], [4.0, 1.0]])
    decode = lambda maps: c + np.array([[side * atol, 0.0], [0.0, 0.0]])  # noqa: E731
    if side > 1:
        with pytest.raises(AssertionError, match="not lossless: 1 of 2"):
            assert_lossless(lambda x: x, decode, c, atol=atol)
    else:
        assert_lossless(lambda x: x, decode, c, atol=atol)


def test_assert_lossless_reports_the_worst_landmarks():
    def encode(c):
        return lc.encode_gaussian(c, heatmap_size=(8, 8), sigma=1.0)[0]

    with pytest.raises(
        AssertionError, match=r"not lossless: 1 of 2 landmarks.*\n  landmark \(1,\): coords \[2.25, 3.0\]"
    ):
        assert_lossless(encode, lc.decode_argmax, np.array([[1.0, 2.0], [2.25, 3.0]]), atol=1e-6)
    assert_lossless(encode, lc.decode_argmax, np.array([[1.0, 2.0], [2.0, 3.0]]), atol=0.0)


@given(size=heatmap_sizes(min_side=3, max_side=9), data=__import__("hypothesis").strategies.data())
def test_landmarks_strategy_respects_its_region(size, data):
    w, h = size
    valid = data.draw(landmarks(size, batch_shape=(2,), dtype=np.float32))
    assert valid.shape[:1] == (2,) and valid.shape[-1] == 2 and valid.dtype == np.float32
    assert np.all(lc.in_heatmap(valid, heatmap_size=size))
    rep = data.draw(landmarks(size, region="representable"))
    assert np.all((rep >= 0) & (rep <= [w - 1, h - 1]))


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
def test_testing_helpers_name_a_bad_variance_or_dtype():
    """Before: float()'s bare ValueError, and an OverflowError from hypothesis for an int dtype."""
    with pytest.raises(TypeError, match=r"variance must be real numbers .* got 'a'"):
        unbiased_bound("a", 100, alpha=1e-3, support_width=1.0)
    for dtype in (int, np.int32, "complex128", np.longdouble, "nonsense"):
        with pytest.raises(TypeError, match="dtype must be a real floating dtype"):
            landmarks((8, 8), dtype=dtype).example()
