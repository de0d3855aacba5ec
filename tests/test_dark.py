"""DARK decoding: exact on sub-pixel Gaussian targets (borders included), a maximum of J elsewhere."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import convert, full_step_count, numpy_of
from hypothesis import given
from hypothesis import strategies as st

import landmark_codecs as lc
from landmark_codecs.testing import assert_lossless, heatmap_sizes, landmarks


@st.composite
def target_case(draw, min_side=3, max_side=64, dtype=np.float64):
    size = draw(heatmap_sizes(min_side=min_side, max_side=max_side))
    sigma = draw(st.floats(1.0, 3.0))
    return size, sigma, draw(landmarks(size, region="valid", dtype=dtype, batch_shape=st.sampled_from([(), (2,)])))


def objective(patch_map: np.ndarray, u: np.ndarray, m: tuple[int, int], sigma: float, radius: int) -> float:
    """J(u) by a literal loop: log sum_j P_j T_u(j) - 1/2 log sum_j T_u(j)^2 over the patch in the map."""
    h, w = patch_map.shape
    num = energy = 0.0
    for row in range(m[1] - radius, m[1] + radius + 1):
        for col in range(m[0] - radius, m[0] + radius + 1):
            if 0 <= row < h and 0 <= col < w:
                t = math.exp(-((col - u[0]) ** 2 + (row - u[1]) ** 2) / (2 * sigma * sigma))
                num += max(float(patch_map[row, col]), 0.0) * t
                energy += t * t
    return math.log(num) - 0.5 * math.log(energy)


@pytest.mark.parametrize("dtype, atol", [(np.float64, 1e-9), (np.float32, 1e-4)])
@given(data=st.data())
def test_exact_on_subpixel_gaussian_targets(backend, dtype, atol, data):
    """The claim: borders and corners included, sigma 1-3, every size from 3x3 up (issue: 8x8 up)."""
    size, sigma, c = data.draw(target_case(dtype=dtype))

    def encode(x):
        return lc.encode_gaussian(x, heatmap_size=size, sigma=sigma)[0]

    assert_lossless(encode, lambda m: lc.decode_dark(m, sigma=sigma), convert(c, backend), atol=atol)


@given(data=target_case(min_side=2, max_side=2))
def test_two_pixel_maps_need_the_steps_from_the_argmax(data):
    """No 3-pixel parabola fits a 2-pixel axis: the Newton steps alone get there, 5 of them."""
    size, sigma, c = data
    maps, _ = lc.encode_gaussian(c, heatmap_size=size, sigma=sigma)
    assert_lossless(lambda x: maps, lambda m: lc.decode_dark(m, sigma=sigma, iterations=5), c, atol=1e-9)


def test_far_below_argmax_and_the_published_step_where_they_fail():
    """Argmax is off by up to 0.5 px per axis; the single published step on a zero-padded blur by ~2 px at the border."""
    rng = np.random.default_rng(0)
    for n, sigma in [(8, 1.0), (8, 3.0), (64, 2.0)]:
        c = rng.uniform(-0.5, n - 0.5, (2000, 2))
        maps, _ = lc.encode_gaussian(c, heatmap_size=(n, n), sigma=sigma)
        dark = np.abs(lc.decode_dark(maps, sigma=sigma)[0] - c).max()
        argmax = np.abs(lc.decode_argmax(maps)[0] - c)
        published = np.abs(published_dark(maps, sigma) - c).max()
        assert dark < 1e-9 and argmax.max() > 0.45 and argmax.mean() > 0.2
        assert published > 0.5  # the border bias this module removes


def published_dark(maps: np.ndarray, sigma: float) -> np.ndarray:
    """DARK as published: zero-padded blur of the whole map (kernel 2 ceil(2.5 sigma) + 1), one
    Taylor step from the argmax with central differences on the log, none if the Hessian is singular."""
    r = math.ceil(2.5 * sigma)
    t = np.arange(-r, r + 1)
    k = np.exp(-(t**2) / (2 * sigma**2))
    k /= k.sum()
    k_, h, w = maps.shape
    padded = np.zeros((k_, h + 2 * r + 2, w + 2 * r + 2))
    padded[:, r + 1 : r + 1 + h, r + 1 : r + 1 + w] = maps
    blur = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), -1, padded)
    blur = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), -2, blur)
    out = np.zeros((k_, 2))
    for i in range(k_):
        y, x = divmod(int(np.argmax(maps[i])), w)
        b = np.log(np.maximum(blur[i, y + r : y + r + 3, x + r : x + r + 3], 1e-10))
        g = np.array([(b[1, 2] - b[1, 0]) / 2, (b[2, 1] - b[0, 1]) / 2])
        hxy = (b[2, 2] - b[0, 2] - b[2, 0] + b[0, 0]) / 4
        hess = np.array([[b[1, 2] - 2 * b[1, 1] + b[1, 0], hxy], [hxy, b[2, 1] - 2 * b[1, 1] + b[0, 1]]])
        step = -np.linalg.solve(hess, g) if abs(np.linalg.det(hess)) > 1e-12 else np.zeros(2)
        out[i] = [x + step[0], y + step[1]]
    return out


@given(seed=st.integers(0, 2**32 - 1), sigma=st.floats(1.0, 3.0), size=heatmap_sizes(min_side=5, max_side=24))
def test_noisy_maps_decode_to_a_maximum_of_j(seed, sigma, size):
    """On maps that are not Gaussians the result is a stationary maximum of the oracle J."""
    rng = np.random.default_rng(seed)
    w, h = size
    c = rng.uniform(-0.5, [w - 0.5, h - 0.5], (4, 2))
    maps, _ = lc.encode_gaussian(c, heatmap_size=size, sigma=sigma)
    maps = maps + rng.uniform(-0.05, 0.1, maps.shape)
    coords, _ = lc.decode_dark(maps, sigma=sigma, iterations=30)
    radius = math.ceil(2.5 * sigma)
    for k in range(4):
        y, x = divmod(int(np.argmax(maps[k])), w)
        u = coords[k]
        if not peaked(maps[k], x, y):
            np.testing.assert_array_equal(u, [x, y])  # no peak: DARK has nothing to refine
            continue
        if np.any(np.abs(u - [x, y]) > 0.999) or np.any(u <= -0.499) or np.any(u >= [w - 0.501, h - 0.501]):
            continue  # held at the box's edge: not a free maximum
        centre = objective(maps[k], u, (x, y), sigma, radius)
        for d in ([1e-3, 0], [-1e-3, 0], [0, 1e-3], [0, -1e-3]):
            assert objective(maps[k], u + np.array(d), (x, y), sigma, radius) <= centre + 1e-12


def peaked(one_map: np.ndarray, x: int, y: int) -> bool:
    """The documented rule: along each axis of >= 3 pixels, the 3 values around the argmax (moved
    inside at the edges) are log-concave, or one of them is <= 0 (a sharp peak)."""
    for values, at in ((one_map[y, :], x), (one_map[:, x], y)):
        n = len(values)
        if n < 3:
            continue
        c = min(max(at, 1), n - 2)
        v = values[c - 1 : c + 2]
        if np.all(v > 0) and np.log(v[0]) - 2 * np.log(v[1]) + np.log(v[2]) >= 0:
            return False
    return True


@pytest.mark.parametrize("sigma, bound", [(1.0, 1e-3), (2.0, 1e-6), (3.0, 1e-6)])
def test_default_steps_reach_the_maximum_on_noisy_maps(sigma, bound):
    rng = np.random.default_rng(3)
    c = rng.uniform(-0.5, 15.5, (5000, 2))
    maps, _ = lc.encode_gaussian(c, heatmap_size=(16, 16), sigma=sigma)
    maps = maps + 0.05 * rng.standard_normal(maps.shape)
    converged, _ = lc.decode_dark(maps, sigma=sigma, iterations=30)
    assert np.abs(lc.decode_dark(maps, sigma=sigma)[0] - converged).max() < bound


def test_flat_zero_and_negative_maps_keep_the_argmax():
    maps = np.zeros((4, 6, 7))
    maps[1] = 3.0  # flat
    maps[2] = -np.arange(42.0).reshape(6, 7)  # negative everywhere: all clamp to 0
    coords, scores = lc.decode_dark(maps, sigma=2.0)
    assert np.all(np.isfinite(coords))
    np.testing.assert_array_equal(coords, np.zeros((4, 2)))
    np.testing.assert_array_equal(scores, [0.0, 3.0, 0.0, 0.0])


def test_a_spike_stays_put_in_the_interior_and_is_pulled_toward_a_near_border():
    """The documented cost of the border normalization on maps sharper than sigma."""
    maps = np.zeros((2, 20, 20))
    maps[0, 9, 10] = 1.0  # 9 px from every border: J is symmetric about it
    maps[1, 2, 10] = 1.0  # 2 px from the top
    coords, _ = lc.decode_dark(maps, sigma=2.0)
    np.testing.assert_allclose(coords[0], [10, 9], atol=1e-12)
    assert abs(coords[1, 0] - 10) < 1e-12 and -0.2 < coords[1, 1] - 2 < -0.1


def test_singular_hessian_falls_back_to_the_argmax_without_nan():
    # A ridge along x: no curvature along it, so the Hessian is singular.
    maps = np.zeros((1, 9, 9))
    maps[0, 4, :] = 1.0
    maps[0, 4, 3] = 1.0 + 1e-9
    coords, _ = lc.decode_dark(maps, sigma=1.0)
    assert np.all(np.isfinite(coords)) and abs(coords[0, 1] - 4.0) < 1e-9 and abs(coords[0, 0] - 3.0) <= 1.0


def test_steps_stay_within_a_pixel_of_the_argmax_and_inside_the_map():
    rng = np.random.default_rng(1)
    maps = rng.random((500, 5, 6)) ** 8
    coords, _ = lc.decode_dark(maps, sigma=1.5)
    arg, _ = lc.decode_argmax(maps)
    assert np.all(np.abs(coords - arg) <= 1.0)
    assert np.all(coords >= -0.5) and np.all(coords <= [5.5, 4.5])


@pytest.mark.parametrize("size", [(1, 1), (1, 5), (5, 1), (2, 2), (3, 3)])
def test_maps_smaller_than_the_blur_kernel(size):
    """A kernel wider than the map is fine: absent pixels are neither zeros nor copies."""
    w, h = size
    c = np.array([[min(0.3, w - 1.0), min(0.2, h - 1.0)], [max(w - 1.4, 0.0), max(h - 1.2, 0.0)]])
    maps, _ = lc.encode_gaussian(c, heatmap_size=size, sigma=3.0)
    coords, _ = lc.decode_dark(maps, sigma=3.0, kernel_size=31, iterations=8)
    # An axis of one pixel carries no position: it decodes to that pixel.
    expect = np.where([w == 1, h == 1], 0.0, c)
    np.testing.assert_allclose(coords, expect, atol=1e-9)


def test_nan_map_gives_nan_coordinates_and_zero_score_for_that_landmark_only(backend):
    rng = np.random.default_rng(2)
    c = rng.uniform(0, 15, (2, 3, 2))
    maps, _ = lc.encode_gaussian(c, heatmap_size=(16, 16), sigma=2.0)
    bad = maps.copy()
    bad[1, 2, 7, 3] = np.nan
    ref_c, ref_s = (numpy_of(a) for a in lc.decode_dark(convert(maps, backend), sigma=2.0))
    got_c, got_s = (numpy_of(a) for a in lc.decode_dark(convert(bad, backend), sigma=2.0))
    assert np.all(np.isnan(got_c[1, 2])) and got_s[1, 2] == 0
    keep = np.ones((2, 3), bool)
    keep[1, 2] = False
    np.testing.assert_array_equal(got_c[keep], ref_c[keep])
    np.testing.assert_array_equal(got_s[keep], ref_s[keep])


def test_infinite_peak_keeps_its_pixel():
    maps = np.zeros((1, 8, 8))
    maps[0, 3, 5] = np.inf
    maps[0, 3, 6] = 0.5
    with np.errstate(over="ignore", invalid="ignore"):
        coords, scores = lc.decode_dark(maps, sigma=1.0)
    assert np.all(np.isfinite(coords)) and np.all(np.abs(coords[0] - [5, 3]) <= 1.0) and scores[0] == np.inf


@pytest.mark.parametrize("flip", ["x", "y"])
@given(seed=st.integers(0, 2**32 - 1), size=heatmap_sizes(min_side=3, max_side=20), sigma=st.floats(1.0, 3.0))
def test_flip_equivariance(flip, seed, size, sigma):
    rng = np.random.default_rng(seed)
    w, h = size
    maps = rng.random((3, h, w)) ** 4  # continuous values: a unique argmax
    flipped = maps[..., ::-1] if flip == "x" else maps[..., ::-1, :]
    coords, scores = lc.decode_dark(maps, sigma=sigma)
    got, got_scores = lc.decode_dark(np.ascontiguousarray(flipped), sigma=sigma)
    want = lc.flip_horizontal(coords, width=w) if flip == "x" else coords * [1, -1] + [0, h - 1]
    np.testing.assert_allclose(got, want, atol=1e-9)
    np.testing.assert_array_equal(got_scores, scores)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backends_agree_keep_dtype_and_leave_input_alone(backend, dtype):
    rng = np.random.default_rng(4)
    c = rng.uniform(-0.5, 11.5, (2, 5, 2))
    maps, _ = lc.encode_gaussian(c, heatmap_size=(12, 12), sigma=1.5)
    maps = (maps + 0.05 * rng.random(maps.shape)).astype(dtype)
    x = convert(maps, backend)
    before = numpy_of(x).copy()
    coords, scores = lc.decode_dark(x, sigma=1.5)
    ref_c, ref_s = lc.decode_dark(maps, sigma=1.5)
    assert coords.dtype == x.dtype and scores.dtype == x.dtype
    assert lc._xp.device(coords) == lc._xp.device(x)
    np.testing.assert_allclose(numpy_of(coords), ref_c, atol=1e-4 if dtype == np.float32 else 1e-10)
    np.testing.assert_array_equal(numpy_of(scores), ref_s)
    np.testing.assert_array_equal(numpy_of(x), before)


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_half_precision_is_refined_in_float32(half):
    torch = pytest.importorskip("torch")
    c = np.array([[[3.3, 4.7], [0.2, 9.6]]])
    maps, _ = lc.encode_gaussian(c, heatmap_size=(12, 12), sigma=2.0)
    coords, _scores = lc.decode_dark(torch.asarray(maps).to(getattr(torch, half)), sigma=2.0)
    assert coords.dtype == getattr(torch, half)
    # the maps themselves are rounded to 8 (bfloat16) or 11 (float16) bits
    np.testing.assert_allclose(coords.double().numpy(), c, atol=0.05 if half == "bfloat16" else 0.01)


def test_meta_device_keeps_shape_and_device():
    torch = pytest.importorskip("torch")
    coords, scores = lc.decode_dark(torch.zeros((2, 3, 8, 8), device="meta"), sigma=1.0)
    assert coords.shape == (2, 3, 2) and coords.device.type == "meta" and scores.shape == (2, 3)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"sigma": 0.0}, ValueError, "sigma must be positive"),
        ({"sigma": -1.0}, ValueError, "sigma must be positive"),
        ({"sigma": float("nan")}, ValueError, "sigma must be positive"),
        ({"sigma": 1.0, "kernel_size": 4}, ValueError, "kernel_size must be odd"),
        ({"sigma": 1.0, "kernel_size": 0}, ValueError, "kernel_size must be a positive int"),
        ({"sigma": 1.0, "iterations": 0}, ValueError, "iterations must be a positive int"),
    ],
)
def test_bad_hyperparameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        lc.decode_dark(np.zeros((1, 4, 4)), **kwargs)


def test_bad_maps():
    with pytest.raises(ValueError, match=r"heatmaps must have shape \(\.\.\., K, H, W\), got shape \(4, 4\)"):
        lc.decode_dark(np.zeros((4, 4)), sigma=1.0)
    with pytest.raises(TypeError, match="heatmaps must have a real floating dtype, got int64"):
        lc.decode_dark(np.zeros((1, 4, 4), dtype=np.int64), sigma=1.0)


@pytest.mark.parametrize("sigma", [0.8, 2.0, 3.0])
def test_numpy_stopping_fixed_landmarks_gives_the_full_step_count_bits(sigma, monkeypatch):
    """NumPy stops a landmark's Newton steps once a step leaves it where it was (a fixed point:
    every later step would too): the decode is the same bits as the full count on every
    landmark, on noisy maps, at borders, with NaN and flat maps among them."""
    from landmark_codecs import _xp

    rng = np.random.default_rng(5)
    c = np.concatenate([rng.uniform(-0.5, 39.5, size=(150, 2)), rng.uniform(-0.5, 0.5, size=(20, 2))])
    for dtype in (np.float32, np.float64):
        maps = lc.encode_gaussian(c.astype(dtype), heatmap_size=(40, 32), sigma=sigma).heatmaps
        maps = (maps + 0.05 * rng.random(maps.shape)).astype(dtype)
        maps[3] = np.nan
        maps[4] = 0.0
        fast = lc.decode_dark(maps, sigma=sigma, iterations=6)

        with monkeypatch.context() as m:
            m.setattr(_xp, "iterate_rows", full_step_count)
            slow = lc.decode_dark(maps, sigma=sigma, iterations=6)
        np.testing.assert_array_equal(fast.coords, slow.coords)
        np.testing.assert_array_equal(fast.scores, slow.scores)


def test_a_landmark_decodes_to_the_same_bits_alone_or_in_any_batch():
    """Which landmarks NumPy still steps depends on the batch, so a landmark's decode must not
    depend on the others passed with it (no BLAS product over landmarks), down to the last bit."""
    rng = np.random.default_rng(6)
    c = rng.uniform(-0.5, 47.5, size=(80, 2)).astype(np.float32)
    maps = lc.encode_gaussian(c, heatmap_size=(48, 40), sigma=2.0).heatmaps
    maps = (maps + 0.05 * rng.random(maps.shape, dtype=np.float32)).astype(np.float32)
    batch = lc.decode_dark(maps, sigma=2.0).coords
    for i in rng.choice(len(c), 12, replace=False):
        np.testing.assert_array_equal(lc.decode_dark(maps[i : i + 1], sigma=2.0).coords[0], batch[i])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_step_of_rounding_size_is_not_taken(dtype, monkeypatch):
    """The parabola start is exact on a Gaussian target, so the first Newton step there is
    rounding: shorter than ``4 eps max(W, H)``, it is not taken and every landmark is at its fixed
    point after one step (in float32 a one-ulp step used to cost every landmark a second one)."""
    from landmark_codecs import dark

    calls = []

    def counted(*args, **kwargs):
        calls.append(args[1].shape[0])  # the landmarks (rows) this step moves
        return dark_step(*args, **kwargs)

    dark_step = dark._newton_step
    monkeypatch.setattr(dark, "_newton_step", counted)
    rng = np.random.default_rng(8)
    c = (rng.uniform(0.1, 0.9, (200, 2)) * (191, 255)).astype(dtype)
    maps = lc.encode_udp(c, image_size=(192, 256), heatmap_size=(48, 64), sigma=2.0).heatmaps
    coords, _ = lc.decode_udp(maps, image_size=(192, 256), sigma=2.0)
    assert calls == [200]
    # DARK's claim in heatmap px (1e-4 float32, 1e-9 float64), times UDP's scale to the image
    scale = max((192 - 1) / (48 - 1), (256 - 1) / (64 - 1))
    np.testing.assert_allclose(coords, c, rtol=0, atol=(1e-4 if dtype == np.float32 else 1e-9) * scale)


def test_a_batch_of_several_blocks_decodes_as_its_parts():
    """NumPy refines a large batch block by block (dark.BLOCK_MAPS maps each): the same bits as
    its parts decoded apart, whatever the blocks' boundaries."""
    from landmark_codecs import dark

    rng = np.random.default_rng(9)
    n = 2 * dark.BLOCK_MAPS + 100
    c = rng.uniform(-0.5, 7.5, size=(n, 2)).astype(np.float32)
    maps = lc.encode_gaussian(c, heatmap_size=(8, 8), sigma=1.5).heatmaps
    maps = (maps + 0.05 * rng.random(maps.shape, dtype=np.float32)).astype(np.float32)
    maps[5] = np.nan
    whole = lc.decode_dark(maps, sigma=1.5)
    parts = [lc.decode_dark(maps[a:b], sigma=1.5) for a, b in ((0, 700), (700, 1500), (1500, n))]
    np.testing.assert_array_equal(whole.coords, np.concatenate([p.coords for p in parts]))
    np.testing.assert_array_equal(whole.scores, np.concatenate([p.scores for p in parts]))
