"""Heatmap moments, the closed-form 2x2 eigendecomposition and STAR: the definitions, the
repository's formula, gradients where the eigenvalues coincide, masks and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import convert, numpy_of
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import landmark_codecs as lc

EPS64 = np.finfo(np.float64).eps


def literal_moments(maps: np.ndarray, normalize: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """The definition, one map at a time, with every pixel's (x, y) written out; and the size
    of the largest sum's terms, sum |p| (|x| + |mean|)^2, which bounds its rounding error."""
    *lead, h, w = maps.shape
    flat = maps.reshape(-1, h, w)
    means, covs, size = [], [], 0.0
    pts = np.array([(j, i) for i in range(h) for j in range(w)], dtype=np.float64)
    for m in flat:
        weights = (m / m.sum() if normalize else m).reshape(-1)
        mu = weights @ pts
        d = pts - mu
        means.append(mu)
        covs.append((weights[:, None] * d).T @ d)
        size = max(size, float(np.abs(weights).sum() * (np.abs(pts).max() + np.abs(mu).max()) ** 2))
    return np.array(means).reshape(*lead, 2), np.array(covs).reshape(*lead, 2, 2), size


# --------------------------------------------------------------------------- heatmap_moments


@given(
    maps=hnp.arrays(
        np.float64, st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)), elements=st.floats(0.0, 1.0)
    ).filter(lambda m: (m.sum(axis=(-2, -1)) > 1e-3).all()),
    normalize=st.booleans(),
)
def test_heatmap_moments_are_the_definition(backend, maps, normalize):
    mean, cov = lc.heatmap_moments(convert(maps, backend), normalize=normalize)
    want_mean, want_cov, size = literal_moments(maps, normalize)
    h, w = maps.shape[-2:]
    atol = 4 * (h * w + 2) * EPS64 * size  # sums of H*W terms, each rounded a few times
    np.testing.assert_allclose(numpy_of(mean), want_mean, rtol=0, atol=atol)
    np.testing.assert_allclose(numpy_of(cov), want_cov, rtol=0, atol=atol)


def test_a_sampled_gaussian_has_its_centre_as_mean_and_sigma_squared_as_variance():
    """Away from the border, a pixel-sampled Gaussian's moments are the continuous ones up to
    exp(-2 pi^2 sigma^2) (Poisson summation): exact in float64 for sigma >= 1.5."""
    rng = np.random.default_rng(1)
    coords = rng.uniform(40.0, 88.0, size=(5, 2))  # at least 13 sigma from every border
    for sigma in (1.5, 2.0, 3.0):
        maps, _ = lc.encode_gaussian(coords, heatmap_size=(128, 128), sigma=sigma)
        mean, cov = lc.heatmap_moments(maps)
        np.testing.assert_allclose(mean, coords, rtol=0, atol=1e-12)
        np.testing.assert_allclose(cov, np.broadcast_to(sigma**2 * np.eye(2), cov.shape), rtol=0, atol=1e-11)


def test_moments_move_with_the_map_and_ignore_its_scale():
    rng = np.random.default_rng(2)
    maps = np.zeros((1, 20, 24))
    maps[0, 3:8, 2:9] = rng.random((5, 7))
    shifted = np.roll(maps, (4, 6), axis=(-2, -1))
    m0, c0 = lc.heatmap_moments(maps)
    m1, c1 = lc.heatmap_moments(7.5 * shifted)
    np.testing.assert_allclose(m1 - m0, [[6.0, 4.0]], rtol=0, atol=1e-12)
    np.testing.assert_allclose(c1, c0, rtol=0, atol=1e-12)


def test_unnormalized_moments_of_a_probability_map_are_the_normalized_ones():
    rng = np.random.default_rng(3)
    p = rng.random((4, 6, 7))
    p /= p.sum(axis=(-2, -1), keepdims=True)
    for a, b in zip(lc.heatmap_moments(p, normalize=False), lc.heatmap_moments(p)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_an_all_zero_map_has_nan_moments_and_leaves_the_others_alone():
    maps = np.zeros((2, 4, 5))
    maps[1, 2, 3] = 1.0
    mean, cov = lc.heatmap_moments(maps)
    assert np.isnan(mean[0]).all() and np.isnan(cov[0]).all()
    assert mean[1].tolist() == [3.0, 2.0] and (cov[1] == 0).all()


# --------------------------------------------------------------------------- eigh_2x2


@given(
    m=hnp.arrays(np.float64, st.tuples(st.integers(1, 20), st.just(2), st.just(2)), elements=st.floats(-1e3, 1e3)),
    equal=st.booleans(),
)
def test_eigh_2x2_decomposes_like_lapack(backend, m, equal):
    if equal:  # coinciding eigenvalues: multiples of the identity
        m = m[..., :1, :1] * np.eye(2)
    got_values, got_vectors = (numpy_of(x) for x in lc.eigh_2x2(convert(m, backend)))
    sym = np.tril(m) + np.swapaxes(np.tril(m, -1), -1, -2)  # what the lower triangle says
    values, _ = np.linalg.eigh(sym)
    # the accuracy is relative to the largest entry, and absolute below the normal range (a
    # subnormal's rounding is one smallest subnormal per operation, whatever the magnitude)
    scale = np.abs(sym).max(axis=(-2, -1))[:, None]
    tiny = 4 * np.finfo(np.float64).smallest_subnormal
    assert (np.diff(got_values, axis=-1) >= 0).all(), "eigenvalues must be ascending"
    assert (np.abs(got_values - values) <= 8 * EPS64 * scale + tiny).all()
    # orthonormal columns that diagonalize the matrix: V^T V = I, V diag(lambda) V^T = A
    eye = np.swapaxes(got_vectors, -1, -2) @ got_vectors
    np.testing.assert_allclose(eye, np.broadcast_to(np.eye(2), eye.shape), rtol=0, atol=8 * EPS64)
    rebuilt = got_vectors @ (got_values[..., :, None] * np.swapaxes(got_vectors, -1, -2))
    assert (np.abs(rebuilt - sym) <= 16 * EPS64 * scale[..., None] + tiny).all()
    # LAPACK's 2x2 form: a symmetric reflection
    np.testing.assert_allclose(got_vectors, np.swapaxes(got_vectors, -1, -2), rtol=0, atol=0)
    np.testing.assert_allclose(np.linalg.det(got_vectors), -1.0, rtol=0, atol=8 * EPS64)


def test_eigh_2x2_reads_only_the_lower_triangle_and_gives_the_axes_for_a_multiple_of_identity():
    values, vectors = lc.eigh_2x2(np.array([[[2.0, 99.0], [0.0, 2.0]], [[1.0, -5.0], [0.0, 3.0]]]))
    assert values.tolist() == [[2.0, 2.0], [1.0, 3.0]]
    assert np.abs(vectors[0]).tolist() == [[0.0, 1.0], [1.0, 0.0]]  # theta = 0: the axes
    np.testing.assert_allclose(np.abs(vectors[1]), np.eye(2), rtol=0, atol=EPS64)  # theta = pi / 2, rounded


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((3, 3)), "matrices must have shape"),
        (np.zeros(2), "matrices must have shape"),
        (np.zeros((2, 2), dtype=int), "matrices must have a real floating dtype"),
    ],
)
def test_eigh_2x2_bad_input(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        lc.eigh_2x2(bad)


def test_eigh_2x2_gradients_are_right_away_from_and_finite_at_coinciding_eigenvalues():
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 2, 2, generator=g, dtype=torch.float64)
    sym = a + a.transpose(-1, -2)
    x = sym.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda m: lc.eigh_2x2(m + m.transpose(-1, -2)).eigenvalues, (x,))
    assert torch.autograd.gradcheck(lambda m: lc.eigh_2x2(m + m.transpose(-1, -2)).eigenvectors, (x,))
    iso = (3.0 * torch.eye(2, dtype=torch.float64)).requires_grad_(True)
    values, vectors = lc.eigh_2x2(iso)
    (values.sum() + vectors.sum()).backward()
    assert torch.isfinite(iso.grad).all()
    # the sum of eigenvalues is the trace everywhere, also here
    assert torch.equal(iso.grad.diagonal(), torch.ones(2, dtype=torch.float64))


# --------------------------------------------------------------------------- STAR


def star_repository(heatmap, gt, *, w=1.0, dist="smoothl1", eps=1e-5, grid_dtype=None):
    """The STAR repository's STARLoss.forward, transcribed step by step (its grid, its
    reliability-weighted covariance, its eigen solver on the CPU, its `pts @ V^T` projection and
    its distance functions), on ground truth in its [-1, 1] units."""
    import torch

    bs, n, h, wd = heatmap.shape
    hm = heatmap / torch.clamp(heatmap.sum([2, 3]), min=1e-6).view(bs, n, 1, 1)
    gd = grid_dtype or heatmap.dtype
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=gd) / (h - 1) * 2 - 1, torch.arange(wd, dtype=gd) / (wd - 1) * 2 - 1, indexing="ij"
    )
    yy, xx = yy.to(hm), xx.to(hm)
    mx, my = (xx * hm).sum([2, 3]), (yy * hm).sum([2, 3])
    means = torch.stack([mx, my], -1)
    vec = torch.stack(
        [(xx - mx[..., None, None]).reshape(bs * n, -1), (yy - my[..., None, None]).reshape(bs * n, -1)], 1
    )
    cov = torch.bmm(hm.reshape(bs * n, 1, -1).expand(-1, 2, -1) * vec, vec.transpose(1, 2)).view(bs, n, 2, 2)
    v1 = hm.sum([2, 3]) + 1e-5
    v2 = hm.pow(2).sum([2, 3]) + 1e-5
    cov = cov / (v1 - v2 / v1)[..., None, None]
    values, vectors = torch.linalg.eigh(cov.reshape(-1, 2, 2).cpu())
    values, vectors = values.view(bs, n, 2).to(hm), vectors.view(bs, n, 2, 2).to(hm)
    rotated = torch.matmul((gt - means).view(bs, n, 1, 2), vectors.transpose(-1, -2)).view(bs, n, 2)
    err = rotated / torch.sqrt(values + eps)
    if dist in ("smoothl1", "wing"):
        d2 = err.pow(2).sum(-1)
        d = d2.clamp(min=1e-6).sqrt()
        if dist == "smoothl1":
            trans = torch.where(d2 < 0.01 * 0.01, 0.5 / 0.01 * d2, d - 0.5 * 0.01).mean()
        else:
            c = 0.01 - 0.01 * math.log(1 + 0.01 / 2)
            trans = torch.where(d < 0.01, 0.01 * torch.log(1 + d / 2), d - c).mean()
    elif dist == "l1":
        trans = torch.nn.functional.l1_loss(torch.zeros_like(err), err)
    else:
        trans = torch.nn.functional.mse_loss(torch.zeros_like(err), err)
    return trans + w * values.abs().sum(-1).mean()


DISTANCES = {"smooth_l1": "smoothl1", "l1": "l1", "l2": "l2", "wing": "wing"}


def _star_inputs(torch, dtype, seed=0, shape=(3, 5, 16, 12)):
    g = torch.Generator().manual_seed(seed)
    maps = torch.rand(*shape, generator=g, dtype=dtype) ** 4  # peaked, non-negative
    size = torch.tensor([shape[-1] - 1, shape[-2] - 1], dtype=dtype)
    coords = torch.rand(*shape[:-2], 2, generator=g, dtype=dtype) * size
    return maps, coords, coords * (2 / size) - 1


@pytest.mark.parametrize("distance", sorted(DISTANCES))
@pytest.mark.parametrize("omega", [1.0, 0.3])
def test_star_equals_the_repository_formula(distance, omega):
    torch = pytest.importorskip("torch")
    maps, coords, gt = _star_inputs(torch, torch.float64)
    want = star_repository(maps, gt, w=omega, dist=DISTANCES[distance])
    got = lc.star_loss(maps, coords, omega=omega, distance=distance)
    # float64 rounding of sums over 192 pixels and a 2x2 solve: a few hundred ulps of the loss
    torch.testing.assert_close(got, want, rtol=256 * EPS64, atol=0)


@pytest.mark.parametrize("distance", sorted(DISTANCES))
def test_star_in_float32_matches_the_repository_code_path(distance):
    """The repository builds its grid in float32 and sums in float32; so do we for float32
    maps: the two agree to float32 rounding of the sums (64x64 maps, 4096 terms)."""
    torch = pytest.importorskip("torch")
    maps, coords, gt = _star_inputs(torch, torch.float32, seed=1, shape=(2, 4, 64, 64))
    want = star_repository(maps, gt, dist=DISTANCES[distance], grid_dtype=torch.float32)
    got = lc.star_loss(maps, coords, distance=distance)
    torch.testing.assert_close(got, want, rtol=64 * 4096**0.5 * np.finfo(np.float32).eps, atol=0)


def test_star_penalizes_an_error_across_the_ambiguity_less_than_along_it():
    """The paper's claim: on a map elongated along x (a contour's direction), an error along x
    costs less than the same error along y."""
    elongated = (
        np.exp(-((np.arange(33) - 16.0) ** 2) / (2 * 5.0**2))[None, None, :]
        * np.exp(-((np.arange(33) - 16.0) ** 2) / 2)[None, :, None]
    )
    along = lc.star_loss(elongated, np.array([[19.0, 16.0]]), omega=0.0)
    across = lc.star_loss(elongated, np.array([[16.0, 19.0]]), omega=0.0)
    assert along < across / 3


@pytest.mark.parametrize("distance", sorted(DISTANCES))
def test_star_gradcheck_and_finite_gradients_where_the_eigenvalues_coincide(distance):
    torch = pytest.importorskip("torch")
    maps, coords, _ = _star_inputs(torch, torch.float64, seed=2, shape=(2, 3, 7, 6))
    m, c = maps.clone().requires_grad_(True), coords.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: lc.star_loss(a + 0.05, b, distance=distance), (m, c))
    # an isotropic map (a symmetric blob): the covariance is a multiple of the identity
    iso = torch.zeros(1, 7, 7, dtype=torch.float64)
    iso[0, 2:5, 2:5] = 1.0
    iso.requires_grad_(True)
    gt = torch.tensor([[3.4, 2.7]], dtype=torch.float64, requires_grad=True)
    lc.star_loss(iso, gt, distance=distance).backward()
    assert torch.isfinite(iso.grad).all() and torch.isfinite(gt.grad).all()
    assert gt.grad.abs().sum() > 0


def test_star_mask_excludes_a_landmark_whatever_it_holds():
    torch = pytest.importorskip("torch")
    maps, coords, _ = _star_inputs(torch, torch.float64, seed=3, shape=(2, 4, 9, 8))
    mask = torch.tensor([[1.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    poisoned_maps, poisoned_coords = maps.clone(), coords.clone()
    poisoned_maps[0, 2] = math.nan
    poisoned_coords[1, 1] = math.inf
    m = poisoned_maps.requires_grad_(True)
    got = lc.star_loss(m, poisoned_coords, weights=mask)
    per = lc.star_loss(maps, coords, reduction="none")
    torch.testing.assert_close(got, (per * mask).sum() / mask.sum(), rtol=8 * EPS64, atol=0)
    got.backward()
    assert torch.isfinite(m.grad).all() and (m.grad[0, 2] == 0).all()
    assert lc.star_loss(maps, coords, weights=torch.zeros(2, 4)).item() == 0.0
    torch.testing.assert_close(lc.star_loss(maps, coords, reduction="sum"), per.sum())


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda m, c: lc.star_loss(m[..., :1, :], c), ValueError, "heatmaps must be at least 2x2"),
        (lambda m, c: lc.star_loss(m, c[:, :2]), ValueError, "coords must have shape"),
        (lambda m, c: lc.star_loss(m, c, distance="huber"), ValueError, "distance must be one of"),
        (lambda m, c: lc.star_loss(m, c, omega=-1.0), ValueError, "omega must be >= 0"),
        (lambda m, c: lc.star_loss(m, c, epsilon=0.0), ValueError, "epsilon must be positive"),
        (lambda m, c: lc.star_loss(m, c, weights=np.ones(4)), ValueError, "weights must broadcast"),
    ],
)
def test_star_bad_input(call, error, message):
    maps = np.random.default_rng(0).random((2, 3, 5, 6))
    coords = np.ones((2, 3, 2))
    with pytest.raises(error, match=message):
        call(maps, coords)


def test_star_module_equals_the_function_and_validates_at_construction():
    torch = pytest.importorskip("torch")
    from landmark_codecs import torch as lct

    maps, coords, _ = _star_inputs(torch, torch.float32, seed=4)
    module = lct.STARLoss(omega=0.5, distance="l1", reduction="none")
    assert torch.equal(module(maps, coords), lc.star_loss(maps, coords, omega=0.5, distance="l1", reduction="none"))
    assert "distance='l1'" in repr(module) and list(module.parameters()) == []
    with pytest.raises(ValueError, match="distance"):
        lct.STARLoss(distance="huber")
