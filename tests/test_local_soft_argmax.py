"""decode_local_soft_argmax (issue 45): the plain window mean's bias, measured; with sigma, that
bias inverted, exact on the library's sub-pixel Gaussian target wherever the window has more
than one pixel per axis, borders included."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import landmark_codecs as lc
from landmark_codecs.testing import landmarks

ROOT = pathlib.Path(__file__).resolve().parents[1]


@st.composite
def _cases(draw):
    w, h = draw(st.integers(2, 24)), draw(st.integers(2, 24))
    coords = draw(landmarks((w, h), num_landmarks=st.integers(1, 4), batch_shape=(2,)))
    sigma = draw(st.sampled_from([0.5, 0.8, 1.0, 1.5, 2.0, 3.0, 6.0]))
    window = draw(st.sampled_from([3, 5, 7, 9, 15]))
    return (w, h), coords, sigma, window


@settings(max_examples=150, deadline=None)
@given(case=_cases())
def test_exact_option_round_trips_the_gaussian_target(case):
    """|decoded - landmark| <= 1e-6 px in float64 for probabilities and for their log as logits
    (beta 2: the weights are then a Gaussian of sigma / sqrt(2), which the inversion takes), on
    maps from 2x2 up and anywhere in the valid range, borders included (the window then holds at
    least 2 pixels per axis)."""
    size, coords, sigma, window = case
    maps = lc.encode_gaussian(coords, heatmap_size=size, sigma=sigma).heatmaps
    got = lc.decode_local_soft_argmax(maps, logits=False, sigma=sigma, window_size=window).coords
    np.testing.assert_allclose(got, coords, rtol=0, atol=1e-6)
    with np.errstate(divide="ignore"):  # log 0: -inf logits weigh 0
        logits = np.log(maps)
    got = lc.decode_local_soft_argmax(logits, logits=True, beta=2.0, sigma=sigma, window_size=window).coords
    np.testing.assert_allclose(got, coords, rtol=0, atol=1e-6)


def test_float32_exactness_is_the_mean_s_rounding_amplified():
    """In float32 the inversion divides the window mean's rounding by the truncated Gaussian's
    slope var / sigma^2: 1e-6 px where the window holds the Gaussian's spread (sigma 1.5 on 16 px),
    larger for a sigma much wider than the map (sigma 8 on 3 px: the mean barely moves)."""
    rng = np.random.default_rng(0)
    for (w, h), sigma, bound in (((16, 12), 1.5, 2e-6), ((3, 3), 8.0, 5e-5)):
        coords = rng.uniform(-0.5, [w - 0.5, h - 0.5], (500, 2))
        maps = lc.encode_gaussian(coords, heatmap_size=(w, h), sigma=sigma).heatmaps.astype(np.float32)
        got = lc.decode_local_soft_argmax(maps, logits=False, sigma=sigma).coords
        assert got.dtype == np.float32 and np.abs(got - coords).max() <= bound


def _bias_module():
    spec = importlib.util.spec_from_file_location("local_bias", ROOT / "benchmarks" / "local_soft_argmax.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_plain_window_bias_table_is_the_measurement():
    """docs/quantization.md's table of the plain local soft-argmax's bias is what
    benchmarks/local_soft_argmax.py measures (one row recomputed here; float64, deterministic grid)."""
    bias = _bias_module()
    page = (ROOT / "docs" / "quantization.md").read_text()
    row = bias.format_row(1.5, bias.measure(1.5))
    assert row in page, row
    interior, border = bias.measure(1.5)[5]  # window 5
    assert 0.15 < interior < 0.25 and border > 1.0  # the bias the docstring states


def test_plain_mean_is_pulled_toward_the_window_centre():
    """Without sigma the truncated mean lies between the landmark and the window's centre (the
    maximum's pixel inside the map; the window's clipped middle at a border)."""
    coords = np.array([[5.3, 4.0], [5.7, 4.0], [0.1, 4.0], [-0.4, 4.0]])
    maps = lc.encode_gaussian(coords, heatmap_size=(12, 9), sigma=2.0).heatmaps
    x = lc.decode_local_soft_argmax(maps, logits=False).coords[:, 0]
    assert 5.0 < x[0] < coords[0, 0] and coords[1, 0] < x[1] < 6.0  # inside: towards the maximum's pixel
    assert x[2] > coords[2, 0] and x[3] > coords[3, 0]  # at the left border: pulled into the map


def test_flip_equivariance():
    """Decoding the mirrored map gives the mirrored coordinate (W - 1 - x), plain and exact."""
    rng = np.random.default_rng(3)
    coords = rng.uniform(-0.5, [15.5, 9.5], (50, 2))
    maps = lc.encode_gaussian(coords, heatmap_size=(16, 10), sigma=1.5).heatmaps
    for sigma in (None, 1.5):
        a = lc.decode_local_soft_argmax(maps, logits=False, sigma=sigma).coords
        b = lc.decode_local_soft_argmax(maps[..., ::-1].copy(), logits=False, sigma=sigma).coords
        np.testing.assert_allclose(b[:, 0], 15 - a[:, 0], atol=1e-9)
        np.testing.assert_allclose(b[:, 1], a[:, 1], atol=1e-12)


def test_nan_map_is_isolated_and_degenerate_windows_are_handled():
    maps = lc.encode_gaussian(np.array([[3.2, 2.1], [1.0, 1.0]]), heatmap_size=(6, 5), sigma=1.0).heatmaps
    clean = lc.decode_local_soft_argmax(maps, logits=False, sigma=1.0)
    maps[1, 2, 2] = np.nan
    got = lc.decode_local_soft_argmax(maps, logits=False, sigma=1.0)
    assert np.isnan(got.coords[1]).all() and got.scores[1] == 0
    np.testing.assert_array_equal(got.coords[0], clean.coords[0])
    # a window wider than the map covers it (the same as the whole-map window); a 1-pixel axis
    # has nothing to invert (its coordinate is the pixel's)
    wide = lc.decode_local_soft_argmax(maps[:1], logits=False, sigma=1.0, window_size=41).coords
    np.testing.assert_allclose(wide, [[3.2, 2.1]], atol=1e-9)
    line = lc.encode_gaussian(np.array([[2.4, 0.0]]), heatmap_size=(6, 1), sigma=1.0).heatmaps
    np.testing.assert_allclose(lc.decode_local_soft_argmax(line, logits=False, sigma=1.0).coords, [[2.4, 0.0]])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(window_size=4), ValueError, "window_size must be"),
        (dict(beta=0.0), ValueError, "beta must be"),
        (dict(sigma=-1.0), ValueError, "sigma must be"),
        (dict(logits=1), TypeError, "logits must be"),
    ],
)
def test_bad_options_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        lc.decode_local_soft_argmax(np.ones((1, 4, 4)), **{"logits": False, **kwargs})


def test_an_all_zero_window_keeps_the_maximum():
    """A map of zeros (a missing landmark's target) holds no Gaussian to invert: the exact option
    returns the maximum's pixel, as the plain mean and H3R's decoder do, not a bracket's end."""
    for sigma in (None, 1.0):
        got = lc.decode_local_soft_argmax(np.zeros((2, 4, 5)), logits=False, sigma=sigma).coords
        np.testing.assert_array_equal(got, 0.0)
