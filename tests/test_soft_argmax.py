"""Soft-argmax: the exact target and the stable decoder."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import array_namespace
from helpers import convert, full_step_count, numpy_of
from hypothesis import example, given
from hypothesis import strategies as st

import landmark_codecs as lc
from landmark_codecs.testing import assert_lossless, heatmap_sizes, landmarks


@st.composite
def case(draw, max_side=256, dtype=np.float64):
    size = draw(heatmap_sizes(min_side=2, max_side=max_side))
    sigma = draw(st.floats(0.3, 8.0))
    return size, sigma, draw(landmarks(size, region="valid", dtype=dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_decode_of_log_target_returns_the_coordinate(backend, dtype, data):
    """Claim 3: within 1e-4 px everywhere, borders included (clamped to the representable box)."""
    size, sigma, c = data.draw(case(dtype=dtype))
    w, h = size

    def encode(x):
        maps, _ = lc.encode_soft_argmax(x, heatmap_size=size, sigma=sigma)
        return array_namespace(maps).log(maps)

    with np.errstate(divide="ignore"):
        assert_lossless(
            encode,
            lambda m: lc.decode_soft_argmax(m, logits=True),
            convert(c, backend),
            atol=1e-4,
            expected=np.clip(c, 0, [w - 1, h - 1]),
        )


@given(data=case(max_side=64))
def test_target_is_a_distribution_with_the_exact_mean(data):
    size, sigma, c = data
    maps, _weights = lc.encode_soft_argmax(c, heatmap_size=size, sigma=sigma)
    w, h = size
    np.testing.assert_allclose(maps.sum(axis=(-2, -1)), 1.0, atol=1e-12)
    assert np.all(maps >= 0)
    mean = np.stack([(maps.sum(-2) * np.arange(w)).sum(-1), (maps.sum(-1) * np.arange(h)).sum(-1)], axis=-1)
    np.testing.assert_allclose(mean, np.clip(c, 0, [w - 1, h - 1]), atol=1e-9)


def test_a_truncated_gaussian_is_biased_where_this_target_is_not():
    """Why the tilt exists: near the border the plain Gaussian's mean is off by a third of a pixel."""
    c = np.array([[0.2, 31.0], [31.0, 0.0]])
    plain, _ = lc.encode_gaussian(c, heatmap_size=(32, 32), sigma=2.0)
    plain = np.log(plain / plain.sum(axis=(-2, -1), keepdims=True))
    exact, _ = lc.encode_soft_argmax(c, heatmap_size=(32, 32), sigma=2.0)
    biased, _ = lc.decode_soft_argmax(plain, logits=True)
    with np.errstate(divide="ignore"):
        unbiased, _ = lc.decode_soft_argmax(np.log(exact), logits=True)
    assert np.abs(biased - c).max() > 0.3
    np.testing.assert_allclose(unbiased, c, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data(), scale=st.floats(-3.0, 8.0).map(lambda e: 10.0**e))
def test_debiased_decode_returns_the_mean_of_the_excess_over_zero_logits(backend, dtype, data, scale):
    """Gu et al.'s compensation, exact on a discrete grid: for logits ``log(1 + s p)`` (a peak on
    a zero background) whose excess ``s p`` has its mean at the landmark (``p`` the exact
    soft-argmax target: borders included), ``debias=True`` returns the landmark for any scale
    ``s`` (1e-3 to 1e8: from an excess far below the background's weight to one far above it),
    while the plain expectation is ``(s c + N m) / (s + N)``, pulled towards the centre ``m``.
    float64: 1e-9 px. float32: each pixel's weight ``1 + s p`` carries a rounding of about eps
    times itself (the logit's, through exp), summed over the map ``eps (N + s)`` against an
    excess of ``s``, each at most ``max(W, H)`` px from the mean: ``4 eps (N + s) / s max(W, H)``
    (measured at most half of ``eps (N + s) / s max(W, H)`` over 4000 random cases)."""
    size, sigma, c = data.draw(case(max_side=64, dtype=dtype))
    w, h = size
    inside = np.clip(c, 0, [w - 1, h - 1])
    p = lc.encode_soft_argmax(c, heatmap_size=size, sigma=sigma).heatmaps.astype(np.float64)
    maps = convert(np.log1p(scale * p).astype(dtype), backend)
    got = numpy_of(lc.decode_soft_argmax(maps, logits=True, debias=True).coords)
    plain = numpy_of(lc.decode_soft_argmax(maps, logits=True).coords)
    n, centre = w * h, np.array([(w - 1) / 2, (h - 1) / 2])
    eps = np.finfo(dtype).eps
    tol = 1e-9 if dtype == np.float64 else 4 * eps * (n + scale) / scale * max(w, h)
    np.testing.assert_allclose(got, inside, atol=tol)
    np.testing.assert_allclose(plain, (scale * inside + n * centre) / (scale + n), atol=max(tol, 1e-9 * max(w, h)))


def test_debias_with_no_logit_above_the_background_is_the_plain_expectation():
    """No excess to take the mean of (every logit <= 0): the documented fallback; a map with an
    excess beside it is compensated, and a NaN map stays NaN, each landmark on its own."""
    maps = np.zeros((4, 6, 7))
    maps[0] = -np.linspace(0, 3, 42).reshape(6, 7)  # all <= 0
    maps[1, 4, 5] = np.log(1 + 10.0)  # one pixel of excess 10: exactly that pixel
    maps[2, 1, 1] = np.nan
    maps[3] = 1e4  # a huge constant: no bias to remove, exp(-max) underflows (the plain branch)
    got = lc.decode_soft_argmax(maps, logits=True, debias=True).coords
    plain = lc.decode_soft_argmax(maps, logits=True).coords
    np.testing.assert_array_equal(got[0], plain[0])
    np.testing.assert_allclose(got[1], [5.0, 4.0], atol=1e-12)
    assert np.isnan(got[2]).all()
    np.testing.assert_allclose(got[3], [3.0, 2.5], atol=1e-12)
    with pytest.raises(ValueError, match=r"debias=True\) compensates the softmax of logits"):
        lc.decode_soft_argmax(maps, logits=False, debias=True)
    with pytest.raises(TypeError, match="debias must be True or False"):
        lc.decode_soft_argmax(maps, logits=True, debias="yes")


def test_interior_target_is_the_plain_gaussian():
    c = np.array([[20.0, 16.5]])
    exact, _ = lc.encode_soft_argmax(c, heatmap_size=(40, 32), sigma=1.5)
    plain, _ = lc.encode_gaussian(c, heatmap_size=(40, 32), sigma=1.5)
    np.testing.assert_allclose(exact, plain / plain.sum(), atol=1e-12)


@pytest.mark.parametrize("offset", [1e-12, 1e-7, 1e-3])
def test_solver_converges_next_to_the_border(offset):
    c = np.array([[offset, 9.0 - offset]])
    maps, _ = lc.encode_soft_argmax(c, heatmap_size=(10, 10), sigma=3.0)
    got, _ = lc.decode_soft_argmax(np.log(maps), logits=True)
    np.testing.assert_allclose(got, c, atol=1e-12)


def test_decoder_is_stable_for_huge_logits_and_minus_inf():
    maps = np.full((2, 5, 6), -np.inf, dtype=np.float32)
    maps[0, 2, 3] = 1e30
    maps[0, 2, 4] = 1e30
    maps[1, 4, 0] = -3.0
    got, scores = lc.decode_soft_argmax(maps, logits=True)
    np.testing.assert_allclose(got, [[3.5, 2.0], [0.0, 4.0]])
    np.testing.assert_array_equal(scores, np.array([1e30, -3.0], dtype=np.float32))


def test_beta_sharpens_towards_the_argmax():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(4, 8, 9))
    hard, _ = lc.decode_argmax(maps)
    soft, _ = lc.decode_soft_argmax(maps, beta=1e4, logits=True)
    np.testing.assert_allclose(soft, hard, atol=1e-9)


def test_probabilities_input_matches_logits_of_their_log():
    rng = np.random.default_rng(1)
    p = rng.random((3, 7, 5))
    a, _ = lc.decode_soft_argmax(p, logits=False, beta=2.0)
    b, _ = lc.decode_soft_argmax(np.log(p), beta=2.0, logits=True)
    np.testing.assert_allclose(a, b, atol=1e-12)
    zero, _ = lc.decode_soft_argmax(np.zeros((1, 3, 3)), logits=False)
    np.testing.assert_array_equal(zero, [[0.0, 0.0]])


def test_nan_map_only_spoils_its_own_landmark():
    maps = np.zeros((3, 4, 4))
    maps[1, 2, 2] = np.nan
    got, _ = lc.decode_soft_argmax(maps, logits=True)
    assert np.all(np.isnan(got[1])) and np.all(np.isfinite(got[[0, 2]]))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: lc.encode_soft_argmax(np.zeros((1, 2)), heatmap_size=(4, 4), sigma=-1.0),
            ValueError,
            "sigma must be positive",
        ),
        (
            lambda: lc.decode_soft_argmax(np.zeros((1, 4, 4)), beta=0.0, logits=True),
            ValueError,
            "beta must be positive",
        ),
        (
            lambda: lc.decode_soft_argmax(np.zeros((1, 4, 4)), logits="True"),
            TypeError,
            "logits must be True or False, got 'True'",
        ),
        (
            lambda: lc.decode_soft_argmax(np.zeros((1, 4, 4))),
            TypeError,
            "missing 1 required keyword-only argument: 'logits'",
        ),
        (
            lambda: lc.decode_soft_argmax(np.zeros((4, 4)), logits=True),
            ValueError,
            r"heatmaps must have shape \(\.\.\., K, H, W\), got shape \(4, 4\)",
        ),
        (
            lambda: lc.decode_soft_argmax(np.zeros((1, 4, 4), dtype=np.int64), logits=True),
            TypeError,
            "heatmaps must have a real floating dtype, got int64",
        ),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(
    n=st.integers(2, 1024),
    sigma=st.floats(-1.23, 4.0).map(lambda e: 10.0**e),  # 0.06 to 1e4, log-uniform
    where=st.sampled_from(["interior", "near0", "nearEnd", "tiny"]),
    u=st.floats(0.0, 1.0),
    e=st.floats(1.0, 300.0),
)
@example(n=64, sigma=0.2, where="interior", u=52.016205 / 63, e=1.0).via(
    "narrow in the interior: a variance from raw moments stalls Newton in float32"
)
@example(n=7, sigma=0.06, where="interior", u=4.041083 / 6, e=1.0).via("one-hot-like")
def test_the_tilt_converges_within_its_fixed_newton_steps(dtype, n, sigma, where, u, e):
    """10 safeguarded Newton steps (20 below sigma 0.35) put the mean on the centre to the
    dtype's precision, from 1e-300 px (float32: its smallest normal) off a border to the middle,
    maps 2 to 1024 wide (measured worst case in float64: 8 and 17 steps, see _NEWTON_STEPS).
    float64: 1e-12 n px. float32: each of the n probabilities carries a relative rounding of a
    few eps, so the mean carries ~eps (n - 1) times a small constant; 64 eps (n - 1) bounds it
    (measured worst: 13 eps)."""
    import array_api_compat.numpy as xp

    from landmark_codecs import soft_argmax

    c = {"interior": u * (n - 1), "near0": u, "nearEnd": n - 1 - u, "tiny": 10.0**-e}[where]
    c = float(np.clip(np.asarray(c, dtype=dtype), 0.0, n - 1.0))
    if dtype == np.float32 and 0 < c < np.finfo(np.float32).smallest_normal:
        c = float(np.finfo(np.float32).smallest_normal)
    p = soft_argmax._tilted_gaussian(xp, np.array([c], dtype=dtype), n, sigma)[0].astype(np.float64)
    tol = 1e-12 * max(1, n) if dtype == np.float64 else 64 * np.finfo(np.float32).eps * max(1, n - 1)
    assert abs(float((p * np.arange(n)).sum()) - c) <= tol
    assert abs(float(p.sum()) - 1.0) <= (1e-12 if dtype == np.float64 else 64 * np.finfo(np.float32).eps)


@pytest.mark.parametrize("sigma", [0.2, 2.0])
def test_a_landmark_target_is_the_same_bits_alone_or_in_any_batch(backend, sigma):
    """NumPy iterates only the landmarks still converging (_xp.iterate_rows), so a batch's
    composition changes which rows go through each step, and BLAS products over rows change a
    row's last bits with their count: each target must still be exactly the one the landmark
    gets alone, on every backend."""
    rng = np.random.default_rng(1)
    c = np.concatenate([rng.uniform(0, 31, size=(40, 2)), rng.uniform(0, 0.5, size=(10, 2))]).astype(np.float32)
    batch = numpy_of(lc.encode_soft_argmax(convert(c, backend), heatmap_size=(32, 24), sigma=sigma).heatmaps)
    for i in rng.choice(len(c), 12, replace=False):
        alone = lc.encode_soft_argmax(convert(c[i : i + 1], backend), heatmap_size=(32, 24), sigma=sigma).heatmaps
        np.testing.assert_array_equal(numpy_of(alone)[0], batch[i])


@pytest.mark.parametrize("sigma", [0.1, 0.5, 2.0])
def test_numpy_stopping_converged_landmarks_gives_the_full_step_count_bits(sigma, monkeypatch):
    """NumPy stops a landmark's Newton steps once its tilt no longer moves (a fixed point of the
    step): the targets are the same bits as running the full count on every landmark."""
    from landmark_codecs import _xp

    rng = np.random.default_rng(2)
    c = np.concatenate(
        [rng.uniform(0, 47, size=(60, 2)), rng.uniform(0, 1e-3, size=(10, 2)), 47 - rng.uniform(0, 1e-3, size=(10, 2))]
    )
    for dtype in (np.float32, np.float64):
        fast = lc.encode_soft_argmax(c.astype(dtype), heatmap_size=(48, 40), sigma=sigma).heatmaps

        with monkeypatch.context() as m:
            m.setattr(_xp, "iterate_rows", full_step_count)
            slow = lc.encode_soft_argmax(c.astype(dtype), heatmap_size=(48, 40), sigma=sigma).heatmaps
        np.testing.assert_array_equal(fast, slow)


def test_debias_is_exact_where_the_continuous_formula_mmpose_applies_is_not():
    """docs/mmpose.md: Gu et al.'s continuous compensation ``C / (C - 1) (J - 1 / (2 C))``, as
    mmpose's IntegralRegressionHead applies it (``J`` on the unit square, ``C`` the unnormalized
    sum over the pixels), moves a border landmark's expectation by under 0.01 px of a bias of
    over 10 px on a 48x64 map; the discrete compensation returns the landmark."""
    w, h = 48, 64
    c = np.array([[[6.3, 9.7]]])
    target = lc.encode_soft_argmax(c, heatmap_size=(w, h), sigma=2.0).heatmaps
    for scale in (10.0, 1000.0):
        logits = np.log1p(scale * target)
        plain = lc.decode_soft_argmax(logits, logits=True).coords
        ours = lc.decode_soft_argmax(logits, logits=True, debias=True).coords
        big_c = np.exp(logits).sum()
        unit = plain / [w, h]
        continuous = big_c / (big_c - 1) * (unit - 1 / (2 * big_c)) * [w, h]
        np.testing.assert_allclose(ours, c, rtol=0, atol=1e-9)
        assert np.abs(plain - c).max() > 10 and np.abs(continuous - plain).max() < 0.01
