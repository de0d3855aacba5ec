"""DSNT's heatmap regularizers (dsnt_regularization): equal to dsntnn's, to the formula where it
is exact, bounded as divergences are, weighted as the other losses (issue 45)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import landmark_codecs as lc


def _softmax_maps(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    z = rng.normal(size=shape) * scale
    e = np.exp(z - z.max(axis=(-2, -1), keepdims=True))
    return e / e.sum(axis=(-2, -1), keepdims=True)


def _target(x: float, y: float, w: int, h: int, sigma: float) -> np.ndarray:
    """The normalized sampled Gaussian, written out in float64 (not through the library)."""
    j, i = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    g = np.exp(-((j - x) ** 2 + (i - y) ** 2) / (2 * sigma * sigma))
    return g / (g.sum() + 1e-24)


@pytest.mark.parametrize("divergence", ["js", "kl", "variance"])
def test_equals_dsntnn(divergence):
    """dsntnn's js/kl/variance_reg_losses on the same maps, its normalized coordinates
    ``(2 x + 1) / W - 1`` for our heatmap pixels; H != W, so an axis swap would show. float64:
    the differences are rounding (1e-13 of values up to ~500 for the variance)."""
    torch = pytest.importorskip("torch")
    dsntnn = pytest.importorskip("dsntnn", reason="dsntnn is the peers extra's")
    rng = np.random.default_rng(0)
    b, k, h, w = 3, 4, 12, 16
    maps = torch.tensor(_softmax_maps(rng, (b, k, h, w), scale=2.0))
    xy = torch.tensor(rng.uniform(-0.5, [w - 0.5, h - 0.5], (b, k, 2)))
    mu = (2 * xy + 1) / torch.tensor([w, h], dtype=torch.float64) - 1
    theirs = {
        "js": lambda: dsntnn.js_reg_losses(maps, mu, 1.5),
        "kl": lambda: dsntnn.kl_reg_losses(maps, mu, 1.5),
        "variance": lambda: dsntnn.variance_reg_losses(maps, 1.5),
    }[divergence]()
    ours = lc.dsnt_regularization(maps, xy, sigma=1.5, divergence=divergence, reduction="none")
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    mask = torch.tensor(rng.random((b, k)) > 0.3, dtype=torch.float64)
    torch.testing.assert_close(
        lc.dsnt_regularization(maps, xy, sigma=1.5, divergence=divergence, weights=mask),
        dsntnn.average_loss(theirs, mask),
        rtol=1e-12,
        atol=1e-12,
    )


def test_variance_is_the_formula_on_a_two_point_map():
    """A map of two halves 2a apart along x: var_x = a^2, var_y = 0, exactly."""
    maps = np.zeros((3, 9, 11))
    for n, a in enumerate((1, 2, 4)):
        maps[n, 4, 5 - a] = maps[n, 4, 5 + a] = 0.5
    got = lc.dsnt_regularization(maps, np.zeros((3, 2)), sigma=1.5, divergence="variance", reduction="none")
    want = [(a * a - 2.25) ** 2 + 2.25**2 for a in (1, 2, 4)]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("divergence", ["js", "kl"])
def test_divergence_of_the_target_itself_is_zero(divergence):
    """p = q (the normalized target, written out independently): 0 to float64 rounding."""
    xy = [(3.3, 2.6), (0.0, 0.0), (10.5, 6.99)]
    maps = np.stack([_target(x, y, 11, 7, 1.25) for x, y in xy])
    got = lc.dsnt_regularization(maps, np.array(xy), sigma=1.25, divergence=divergence, reduction="none")
    np.testing.assert_allclose(got, 0.0, atol=1e-14)


def test_kl_of_a_one_hot_map_is_minus_the_log_of_the_target_there():
    """KL(delta_(j, i) || q) = log(1 + eps) - log(q_ij + eps) = -log q_ij (eps = 1e-24)."""
    q = _target(4.2, 3.7, 11, 7, 1.5)
    maps = np.zeros((2, 7, 11))
    maps[0, 3, 4] = maps[1, 6, 0] = 1.0
    got = lc.dsnt_regularization(maps, np.array([[4.2, 3.7]] * 2), sigma=1.5, divergence="kl", reduction="none")
    np.testing.assert_allclose(got, [-math.log(q[3, 4] + 1e-24), -math.log(q[6, 0] + 1e-24)], rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([0.1, 1.0, 10.0, 100.0]),
    sigma=st.floats(0.5, 4.0),
    x=st.floats(-0.5, 9.49),
    y=st.floats(-0.5, 5.49),
)
def test_js_is_bounded_and_kl_is_not_negative(seed, scale, sigma, x, y):
    """JS in [0, log 2] and KL >= 0 for any probability map (Gibbs' inequality; float64 rounding
    of a sum over 60 pixels aside), also for maps as peaked as a softmax of scale 100."""
    maps = _softmax_maps(np.random.default_rng(seed), (2, 6, 10), scale)
    coords = np.array([[x, y], [9.0 - x, 5.0 - y]])
    js = lc.dsnt_regularization(maps, coords, sigma=sigma, reduction="none")
    kl = lc.dsnt_regularization(maps, coords, sigma=sigma, divergence="kl", reduction="none")
    assert np.all(js >= -1e-15) and np.all(js <= math.log(2) + 1e-15)
    assert np.all(kl >= -1e-13)


def test_weight_zero_leaves_a_nan_landmark_out():
    """A landmark of weight 0 contributes nothing, its NaN map and coordinates included; the mean
    is over the weights' sum; a NaN in one landmark's map never reaches another's value."""
    rng = np.random.default_rng(1)
    maps = _softmax_maps(rng, (2, 3, 6, 8))
    coords = rng.uniform(0, 5, (2, 3, 2))
    weights = np.array([[1.0, 0.0, 2.0], [1.0, 1.0, 0.0]])
    clean = lc.dsnt_regularization(maps, coords, sigma=1.0, reduction="none")
    maps[0, 1] = np.nan
    coords[1, 2] = np.nan
    for divergence in ("js", "kl", "variance"):
        per = lc.dsnt_regularization(maps, coords, sigma=1.0, divergence=divergence, reduction="none")
        nan = np.zeros((2, 3), dtype=bool)
        nan[0, 1] = True
        nan[1, 2] = divergence != "variance"  # the variance reads no coordinates
        np.testing.assert_array_equal(np.isnan(per), nan)
        got = lc.dsnt_regularization(maps, coords, sigma=1.0, divergence=divergence, weights=weights)
        want_per = lc.dsnt_regularization(
            np.nan_to_num(maps), np.nan_to_num(coords), sigma=1.0, divergence=divergence, reduction="none"
        )
        assert float(got) == pytest.approx(float((want_per * weights).sum() / weights.sum()), rel=1e-12)
    np.testing.assert_allclose(
        lc.dsnt_regularization(maps, coords, sigma=1.0, weights=weights, reduction="none")[0, 0], clean[0, 0] * 1.0
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(divergence="l2"), ValueError, "divergence must be one of"),
        (dict(sigma=0.0), ValueError, "sigma must be"),
        (dict(coords=np.zeros((3, 2))), ValueError, r"coords must have shape .*heatmaps.shape\[:-2\] \+ \(2,\)"),
        (dict(weights=np.ones(3)), ValueError, "weights must"),
        (dict(reduction="avg"), ValueError, "reduction must be one of"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, message):
    args = {"coords": np.zeros((2, 2)), "sigma": 1.0, **kwargs}
    coords = args.pop("coords")
    with pytest.raises(error, match=message):
        lc.dsnt_regularization(np.full((2, 4, 4), 1 / 16), coords, **args)


def test_module_equals_function_and_checks_at_construction():
    torch = pytest.importorskip("torch")
    from landmark_codecs.torch import DSNTRegularization

    rng = np.random.default_rng(2)
    maps = torch.tensor(_softmax_maps(rng, (2, 3, 6, 8)), requires_grad=True)
    coords = torch.tensor(rng.uniform(0, 5, (2, 3, 2)))
    weights = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    for divergence in ("js", "kl", "variance"):
        module = DSNTRegularization(sigma=1.5, divergence=divergence)
        assert torch.equal(
            module(maps, coords, weights),
            lc.dsnt_regularization(maps, coords, sigma=1.5, divergence=divergence, weights=weights),
        )
    module(maps, coords).backward()
    assert maps.grad is not None and bool(torch.isfinite(maps.grad).all())
    with pytest.raises(ValueError, match="divergence must be one of"):
        DSNTRegularization(sigma=1.0, divergence="l1")
