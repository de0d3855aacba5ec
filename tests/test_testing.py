"""The public property checks pass on good codecs and fail on bad ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

import landmark_codecs as lc
from landmark_codecs.testing import assert_lossless, assert_unbiased, heatmap_sizes, landmarks


def _rr_sample(c, rng):
    maps, _ = lc.encode_randomized_rounding(c, heatmap_size=(8, 8), rng=rng)
    return lc.decode_argmax(maps)[0]


def test_assert_unbiased_accepts_randomized_rounding():
    assert_unbiased(_rr_sample, np.array([[1.3, 6.0], [0.5, 2.9]]), n_samples=1000)


def test_assert_unbiased_rejects_nearest_rounding_and_a_skewed_coin():
    def nearest(c, rng):
        maps, _ = lc.encode_gaussian(c, heatmap_size=(8, 8), sigma=1.0, rounding="nearest")
        return lc.decode_argmax(maps)[0]

    with pytest.raises(AssertionError, match="deterministic output differs"):
        assert_unbiased(nearest, np.array([[1.3, 6.0]]), n_samples=50)

    def skewed(c, rng):
        maps, _ = lc.encode_randomized_rounding(c, heatmap_size=(8, 8), noise=rng.random(c.shape) * 0.9)
        return lc.decode_argmax(maps)[0]

    with pytest.raises(AssertionError, match="biased at family-wise false-alarm rate"):
        assert_unbiased(skewed, np.array([[1.5, 6.5]]), n_samples=2000)


def test_assert_lossless_reports_the_worst_landmarks():
    def encode(c):
        return lc.encode_gaussian(c, heatmap_size=(8, 8), sigma=1.0)[0]

    with pytest.raises(AssertionError, match=r"not lossless: 1 of 2 landmarks.*\n  landmark \(1,\): coords \[2.25, 3.0\]"):
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
