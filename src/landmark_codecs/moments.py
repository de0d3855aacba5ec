"""Heatmap moments: each map's mean and 2x2 covariance, and the closed-form 2x2 symmetric
eigendecomposition, on every backend and device (no ``linalg.eigh``, no host round-trip).

The moments are what STAR (:func:`landmark_codecs.star_loss`) and Gaussian-likelihood heads
(LUVLi, DSLPT) read from a heatmap: the mean is the soft-argmax location, the covariance the
map's spread, its eigenvectors the directions of ambiguity (along a face contour, across it).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from . import _common, _xp
from . import _validation as check
from ._xp import Array

__all__ = ["Eigh2x2", "HeatmapMoments", "eigh_2x2", "heatmap_moments"]


class HeatmapMoments(NamedTuple):
    """What :func:`heatmap_moments` returns."""

    mean: Array
    """``(..., K, 2)``: ``(x, y)`` in heatmap pixels."""
    covariance: Array
    """``(..., K, 2, 2)``: ``[[var_x, cov_xy], [cov_xy, var_y]]`` in heatmap pixels squared."""


class Eigh2x2(NamedTuple):
    """What :func:`eigh_2x2` returns, as ``numpy.linalg.eigh`` does."""

    eigenvalues: Array
    """``(..., 2)``, ascending."""
    eigenvectors: Array
    """``(..., 2, 2)``, orthonormal; column ``i`` (``[..., :, i]``) belongs to eigenvalue ``i``."""


@_xp.non_finite_settled
def heatmap_moments(heatmaps: Array, /, *, normalize: bool = True) -> HeatmapMoments:
    """The mean and covariance of each heatmap, read as a distribution over pixel centres.

    With weights ``p[i, j]`` at pixel centre ``(x, y) = (j, i)``::

        mean = sum p (x, y)
        covariance = sum p ((x, y) - mean)^T ((x, y) - mean)

    - ``normalize=True``: ``p = heatmap / sum(heatmap)``, for non-negative maps of any scale (a
      Gaussian target, a ReLU or sigmoid output). A map that sums to 0 gives NaN.
    - ``normalize=False``: ``p = heatmap`` as given, for maps that are already probabilities (a
      softmax's output); no division. Then the result is the distribution's moments only where
      the map sums to 1.

    The covariance is the distribution's own (divided by the total weight, not the "unbiased"
    ``V1 - V2 / V1`` of reliability weights; :func:`landmark_codecs.star_loss` applies that
    factor itself). Computed from the row and column marginals and one matrix-vector product
    per map: two passes over the maps, no ``(K, H, W, 2, 2)`` temporary.

    Args:
        heatmaps: ``(..., K, H, W)`` real floating maps, non-negative for the result to be a
            covariance (negative weights can make it indefinite).
        normalize: whether to divide by each map's sum.

    Returns:
        :class:`HeatmapMoments` ``(mean, covariance)``: ``(..., K, 2)`` and ``(..., K, 2, 2)`` in
        the heatmaps' dtype and device. A NaN anywhere in a map makes its moments NaN, and
        only its own.

    Convention:
        Heatmap pixels, integers at pixel centres, ``(x, y)`` order: ``mean[..., 0]`` is the
        column coordinate, ``covariance[..., 0, 0]`` the variance along x.

    >>> import numpy as np
    >>> maps = np.zeros((1, 3, 4)); maps[0, 1, 1] = maps[0, 1, 3] = 1.0
    >>> mean, cov = heatmap_moments(maps)
    >>> mean.tolist(), cov.tolist()
    ([[2.0, 1.0]], [[[1.0, 0.0], [0.0, 0.0]]])
    """
    normalize = check.boolean(normalize, "normalize")
    xp = _xp.namespace(heatmaps=heatmaps)
    check.heatmaps(xp, heatmaps)
    return _xp.in_float32(xp, map_moments, heatmaps, normalize=normalize)


def map_moments(xp: Any, heatmaps: Array, *, normalize: bool) -> HeatmapMoments:
    """Kernel of :func:`heatmap_moments` (maps checked)."""
    h, w = heatmaps.shape[-2:]
    gx, gy = _common.grid(xp, w, heatmaps), _common.grid(xp, h, heatmaps)
    maps = _common.at_most_one(xp, heatmaps) if normalize else heatmaps
    _, mean, cov = weighted_moments(xp, maps, gx, gy, normalize=normalize)
    return HeatmapMoments(mean, cov)


def weighted_moments(
    xp: Any, maps: Array, gx: Array, gy: Array, *, normalize: bool, floor: float = 0.0
) -> tuple[Array, Array, Array]:
    """``(total, mean, covariance)`` of ``maps`` on the grid ``(gx[j], gy[i])``.

    ``total`` is each map's sum as given. ``normalize=False`` takes the maps as the weights;
    ``normalize=True`` divides them by ``max(total, floor)`` (by linearity, the marginals and one
    product are divided, never the maps). The covariance is centred on the returned mean.
    Shared by :func:`heatmap_moments` (pixel grid) and STAR (its [-1, 1] grid, floor 1e-6).
    """
    col = xp.sum(maps, axis=-2)  # (..., K, W): the x marginal
    row = xp.sum(maps, axis=-1)  # (..., K, H): the y marginal
    total = xp.sum(row, axis=-1)
    scale = (
        total if floor == 0 else xp.maximum(total, xp.asarray(floor, dtype=total.dtype, device=_xp.device(total)))
    )[..., None]
    if normalize:
        col, row = col / scale, row / scale
    mx = xp.sum(col * gx, axis=-1)
    my = xp.sum(row * gy, axis=-1)
    dx = gx - mx[..., None]  # (..., K, W)
    dy = gy - my[..., None]  # (..., K, H)
    sxx = xp.sum(col * dx * dx, axis=-1)
    syy = xp.sum(row * dy * dy, axis=-1)
    # sum_ij p_ij dx_j dy_i: each row's dot product with dx, then with dy
    row_dx = xp.matmul(maps, dx[..., None])[..., 0]
    if normalize:
        row_dx = row_dx / scale
    sxy = xp.sum(row_dx * dy, axis=-1)
    mean = xp.stack([mx, my], axis=-1)
    cov = xp.stack([xp.stack([sxx, sxy], axis=-1), xp.stack([sxy, syy], axis=-1)], axis=-2)
    return total, mean, cov


@_xp.non_finite_settled
def eigh_2x2(matrices: Array, /) -> Eigh2x2:
    """Eigendecomposition of real symmetric 2x2 matrices in closed form, vectorized.

    For ``[[a, b], [b, c]]`` (only the lower triangle is read, as ``numpy.linalg.eigh`` does),
    with ``m = (a + c) / 2``, ``d = (a - c) / 2``, ``r = hypot(d, b)`` and
    ``theta = atan2(b, d) / 2``::

        eigenvalues  = (m - r, m + r)                    ascending
        eigenvectors = [[-sin theta, cos theta],          columns: the eigenvector of m - r,
                        [ cos theta, sin theta]]          then that of m + r

    Stable where the two eigenvalues are equal (``r = 0``: ``theta = 0``, the axes, and finite
    gradients: 0 through ``r`` and ``theta`` there), no iteration, no host round-trip, so it
    runs on a GPU inside a compiled graph (``torch.linalg.eigh`` of a batch of 2x2 matrices
    launches a solver per call and, on CUDA, synchronises). The eigenvector matrix is symmetric
    (a reflection, determinant -1), the sign convention LAPACK's 2x2 solver returns.

    Accuracy: the eigenvalues to a few units of rounding of ``max(|a|, |b|, |c|)`` (absolute:
    a tiny eigenvalue beside a large one has only that absolute accuracy, as with any solver
    that does not reuse the determinant); the eigenvectors to a few units of rounding divided by
    the eigenvalue gap relative to that scale.

    Args:
        matrices: ``(..., 2, 2)`` real floating.

    Returns:
        :class:`Eigh2x2` ``(eigenvalues, eigenvectors)``: ``(..., 2)`` and ``(..., 2, 2)``, in the
        input's dtype and device. A NaN entry gives NaN for that matrix only.

    >>> import numpy as np
    >>> values, vectors = eigh_2x2(np.array([[2.0, 1.0], [1.0, 2.0]]))
    >>> values.tolist()
    [1.0, 3.0]
    >>> np.round(vectors * np.sqrt(2), 12).tolist()
    [[-1.0, 1.0], [1.0, 1.0]]
    """
    xp = _xp.namespace(matrices=matrices)
    if matrices.ndim < 2 or tuple(matrices.shape[-2:]) != (2, 2):
        raise ValueError(f"matrices must have shape (..., 2, 2), got shape {tuple(matrices.shape)}")
    check.floating(xp, matrices, "matrices")
    return _xp.in_float32(xp, eigh_symmetric, matrices)


def eigh_symmetric(xp: Any, matrices: Array) -> Eigh2x2:
    """Kernel of :func:`eigh_2x2` (matrices checked)."""
    a, b, c = matrices[..., 0, 0], matrices[..., 1, 0], matrices[..., 1, 1]
    m, d = half_sum(xp, a, c), half_sum(xp, a, -c)
    r, theta = polar_half(xp, d, b)
    values = xp.stack([m - r, m + r], axis=-1)
    cos, sin = xp.cos(theta), xp.sin(theta)
    vectors = xp.stack([xp.stack([-sin, cos], axis=-1), xp.stack([cos, sin], axis=-1)], axis=-2)
    return Eigh2x2(values, vectors)


def half_sum(xp: Any, a: Array, c: Array) -> Array:
    """``(a + c) / 2`` without overflow: halved first where the sum leaves the float range (halving
    first everywhere would round subnormal entries to 0)."""
    whole = a + c
    return xp.where(xp.isinf(whole) & xp.isfinite(a) & xp.isfinite(c), a / 2 + c / 2, whole / 2)


def polar_half(xp: Any, d: Array, b: Array) -> tuple[Array, Array]:
    """``(hypot(d, b), atan2(b, d) / 2)`` with value 0 and gradient 0 at ``d = b = 0`` (where
    ``hypot`` and ``atan2`` have none), instead of NaN."""
    zero = (d == 0) & (b == 0)
    one = xp.ones((), dtype=d.dtype, device=_xp.device(d))
    d_safe = xp.where(zero, one, d)
    r = xp.where(zero, xp.zeros_like(d), xp.hypot(d_safe, b))
    theta = xp.atan2(b, d_safe) / 2
    return r, theta


def absolute_eigenvalue_sum(xp: Any, matrices: Array) -> Array:
    """``|lambda_1| + |lambda_2|`` of symmetric 2x2 matrices without the eigenvectors:
    ``max(|a + c|, 2 r)`` (the trace when both eigenvalues share a sign, their gap otherwise),
    with a finite gradient also where they coincide."""
    a, b, c = matrices[..., 0, 0], matrices[..., 1, 0], matrices[..., 1, 1]
    r, _ = polar_half(xp, half_sum(xp, a, -c), b)
    return 2 * xp.maximum(xp.abs(half_sum(xp, a, c)), r)
