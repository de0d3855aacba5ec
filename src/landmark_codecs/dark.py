"""DARK: distribution-aware refinement of the maximum (Zhang et al., CVPR 2020), exact at the border.

DARK blurs a heatmap with a Gaussian of the training sigma ("distribution modulation") and
moves from the argmax ``m`` by the Taylor step ``mu = m - H^-1 g`` on the *log* of the blurred
map. On a Gaussian target far from the border the blurred map is a Gaussian, its log a
quadratic, and one step lands on the centre. Near a border, where every landmark of a small map
lies, two things break that: the blur mixes in zeros beyond the map, and the target itself is
cut off there. The published method is then off by up to 2 px (worse than the argmax) at
sigma 2, whatever the map size.

Here the blurred map is the correlation with the training Gaussian ``T_u`` over the pixels that
exist, evaluated at any ``u`` (not only at pixel centres), and divided by the template's norm
over those same pixels::

    J(u) = log sum_j P_j T_u(j) - 1/2 log sum_j T_u(j)^2,     T_u(j) = exp(-|j - u|^2 / (2 sigma^2))

``j`` runs over the pixels of the patch around ``m`` that lie in the map; ``P`` is the map there.
By Cauchy-Schwarz, ``J`` is largest at the centre of any Gaussian of that sigma, however the map
and the patch cut it; in the interior the normalizer is constant and ``J`` is DARK's
log-blurred map. Newton steps on ``J`` (gradient and Hessian in closed form from the patch)
find that maximum.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

from . import _common, _xp
from . import _validation as check
from ._xp import Array

__all__ = ["decode_dark"]


def decode_dark(
    heatmaps: Array,
    /,
    *,
    sigma: float,
    iterations: int = 4,
    kernel_size: int | None = None,
) -> _common.DecodedLandmarks:
    """DARK decoding: the argmax refined by Taylor (Newton) steps on the log of the blurred map.

    ``J(u)`` is the log of the map correlated with a Gaussian of ``sigma`` (DARK's blur) over the
    ``kernel_size`` square patch centred on the argmax ``m`` (the first maximum in row-major
    order), less half the log of that Gaussian's energy over the patch's pixels that lie in the
    map (see :mod:`landmark_codecs.dark`). Starting from the vertex of the parabola through the log of
    the map at ``m`` and its neighbours along each axis (exact on a Gaussian, and moved inside
    the map at its edges), ``iterations`` steps ``u <- u - H^-1 g`` climb ``J``; ``g`` and ``H``
    come in closed form from the patch. A step is skipped for a landmark whose ``H`` is not
    negative definite (a flat, all-zero or non-peaked patch: a singular Hessian keeps the argmax,
    never NaN), and ``u`` stays within one pixel of ``m`` and inside the map's closed range
    ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``.

    On a Gaussian target of the same ``sigma >= 1`` it returns the landmark to 1e-9 px
    (float64), borders included; the claims, where they hold and what it does elsewhere
    (measured) are on the docs page, docs/dark_udp_simcc.md, each with its test. Decode with the
    sigma the maps have.

    Clamp before the log: negative map values count as 0 and ``+inf`` as the largest float
    (logits are not densities: pass probabilities or scores). Only the patch is blurred, never
    the whole map, and a kernel wider than the map is fine: pixels outside the map are absent,
    neither zeros nor copies.

    Args:
        heatmaps: ``(..., K, H, W)`` real floating maps (probabilities or non-negative scores).
        sigma: the blur's standard deviation in heatmap pixels, 0.06 to 1e4: the sigma the
            targets were made with.
        iterations: Newton steps, 1 to 100. A step shorter than ``4 eps max(W, H)`` px (``eps``
            of the work dtype: rounding, not progress) is not taken, and a landmark that a step
            leaves where it was takes no more (a fixed point: the same result, sooner).
        kernel_size: odd side of the blur kernel (and patch), default ``2 * ceil(2.5 sigma) + 1``
            (11 at sigma 2, as DARK's code).

    Returns:
        ``(coords, scores)``: ``(..., K, 2)`` ``(x, y)`` in heatmap pixels and the ``(..., K)``
        maximum of each map, in the maps' dtype and on their device. A map containing NaN gives
        that landmark NaN coordinates and score 0 (NumPy's and torch's argmax find a NaN
        anywhere in the map); the other landmarks are unaffected. float16 and bfloat16 maps are
        refined in float32.

    Convention:
        Heatmap pixels, integers at pixel centres, ``(x, y)`` order.

    Reference:
        F. Zhang, X. Zhu, H. Dai, M. Ye and C. Zhu, "Distribution-Aware Coordinate Representation
        for Human Pose Estimation", CVPR 2020.

    >>> import numpy as np
    >>> from landmark_codecs import encode_gaussian
    >>> maps, _ = encode_gaussian(np.array([[0.3, 6.8]]), heatmap_size=(8, 8), sigma=2.0)
    >>> coords, scores = decode_dark(maps, sigma=2.0)
    >>> np.round(coords, 9).tolist(), np.round(scores, 3).tolist()
    ([[0.3, 6.8]], [0.984])
    """
    xp = _xp.namespace(heatmaps=heatmaps)
    check.heatmaps(xp, heatmaps)
    h, w = heatmaps.shape[-2:]
    return _xp.in_float32(xp, dark_coords, heatmaps, **dark_options((w, h), sigma, iterations, kernel_size))


def dark_options(size: tuple[int, int], sigma: float, iterations: int, kernel_size: int | None) -> dict[str, Any]:
    """:func:`decode_dark`'s options checked for ``(W, H)`` maps, as :func:`dark_coords` takes them."""
    sigma = check.sigma(sigma)
    check.iterations(iterations)
    w, h = size
    # A patch wider than the map covers it from any argmax (pixels outside are absent, not
    # zeros): the same result at a cost bounded by the map, whatever sigma or kernel_size.
    return {"sigma": sigma, "iterations": iterations, "radius": min(blur_radius(sigma, kernel_size), max(w, h) - 1)}


def dark_coords(xp: Any, heatmaps: Array, *, sigma: float, iterations: int, radius: int) -> _common.DecodedLandmarks:
    """Kernel of :func:`decode_dark` (maps checked; 16-bit maps already in float32)."""
    lead, (h, w) = heatmaps.shape[:-2], heatmaps.shape[-2:]
    maps = xp.reshape(heatmaps, (-1, h, w))

    def decode(block: Array) -> tuple[Array, Array]:
        return _dark_rows(xp, block, sigma=sigma, iterations=iterations, radius=radius)

    coords, scores = _xp.map_blocks(xp, decode, maps, per_block=BLOCK_MAPS, torch_blocks=False)
    return _common.DecodedLandmarks(xp.reshape(coords, (*lead, 2)), xp.reshape(scores, lead))


# Maps per block (NumPy): the whole refinement runs block by block, its temporaries (a patch is
# a few per cent of its map) in cache. Measured at B=32, K=98, 64x64 float32 on this project's
# 2-core AMD EPYC (AVX-512), in one run: one call 11.8 ms, blocks of 128 maps 14.9 ms, of 1024 maps 9.7 ms.
# torch on the CPU takes the one call (11.8 ms against 16.4 ms in 16 MB blocks, its default).
BLOCK_MAPS = 1024


def _dark_rows(xp: Any, maps: Array, *, sigma: float, iterations: int, radius: int) -> tuple[Array, Array]:
    """:func:`dark_coords` on ``(N, H, W)`` maps: ``(N, 2)`` coordinates and ``(N,)`` scores."""
    h, w = maps.shape[-2:]
    work = maps.dtype
    anchor = _xp.argmax_index_2d(xp, maps)
    c = _xp.constants(xp, _xp.device(maps), _Constants.build, work, anchor.dtype, w, h, radius)
    m, centre, inside, patch, three = _samples(xp, maps, anchor, c)
    scores = patch[:, radius, radius]  # the maximum's value
    at = xp.astype(m, work)
    lo, hi = xp.maximum(at - 1.0, c.lowest), xp.minimum(at + 1.0, c.highest)
    start, peaked = _parabola_start(xp, three, centre, at, c, w, h)
    rows = (at[..., None] + c.offsets, xp.astype(inside, work), _unit_patch(xp, patch, scores, work), lo, hi, peaked)
    # A step shorter than a few ulps of the map's largest coordinate is rounding, not progress:
    # not taking it makes the landmark a fixed point (and NumPy stops stepping it).
    tol = 4.0 * float(xp.finfo(work).eps) * max(w, h)
    step = functools.partial(_newton_step, xp, sigma=sigma, tol=tol, size=(w, h), zero=c.zero, one=c.one)
    (u,) = _xp.iterate_rows(xp, step, rows, (_xp.clip(xp, start, lo, hi),), iterations)
    return nan_landmarks(xp, u, scores, nan=c.nan, zero=c.zero)


class _Constants(NamedTuple):
    """The small arrays :func:`_dark_rows` needs for one map size, radius and dtype pair (made
    once per such plan on NumPy: :func:`_xp.constants`)."""

    lowest: Array  # -0.5 (work dtype from here): where the map's closed range starts
    highest: Array  # (W - 0.5, H - 0.5)
    offsets: Array  # -radius .. radius
    zero: Array
    one: Array
    nan: Array
    minus_one: Array
    index_offsets: Array  # index dtype from here: -radius .. radius
    last: Array  # ((W - 1,), (H - 1,))
    inner: Array  # (W - 2, H - 2): the 3-sample centres' range
    stride: Array  # (1, W): a step along x, y in a flat map
    around: Array  # before, at and after along x then y, in a flat map: (-1, -W, 0, 0, 1, W)

    @staticmethod
    def build(xp: Any, device: Any, work: Any, index: Any, w: int, h: int, radius: int) -> _Constants:
        def real(v: Any) -> Array:
            return xp.asarray(v, dtype=work, device=device)

        def integer(v: Any) -> Array:
            return xp.asarray(v, dtype=index, device=device)

        span = range(-radius, radius + 1)
        return _Constants(
            real(-0.5), real([w - 0.5, h - 0.5]), real(list(span)), real(0.0), real(1.0), real(math.nan), real(-1.0),
            integer(list(span)), integer([[w - 1], [h - 1]]), integer([w - 2, h - 2]), integer([1, w]),
            integer([-1, -w, 0, 0, 1, w]),
        )  # fmt: skip


def _samples(xp: Any, maps: Array, anchor: Array, c: _Constants) -> tuple[Array, Array, Array, Array, Array]:
    """What DARK reads from ``(N, H, W)`` maps whose first maximum is at flat index ``anchor``
    ``(N, 1)``: the argmax ``m`` ``(N, 2)`` ``(x, y)`` and :func:`_parabola_start`'s 3-sample
    centre ``(N, 2)`` (integers), whether each of the patch's columns and rows
    ``m + (-radius .. radius)`` lies in the map ``(N, 2, n)``, the ``(N, n, n)`` patch (positions
    clipped into the map: the Newton steps weigh those outside by 0; its centre is the maximum)
    and the ``(N, 6)`` values of :func:`_parabola_start`'s three samples per axis."""
    h, w = maps.shape[-2:]
    flat = _common.flatten_maps(xp, maps)
    m = xp.concat([anchor % w, anchor // w], axis=-1)
    pos = m[..., None] + c.index_offsets
    clipped = _xp.clip(xp, pos, 0, c.last)
    patch = _xp.take_patch(xp, flat, clipped[..., 1, :], clipped[..., 0, :], w)
    # Per axis, the samples before, at and after the argmax, moved inside the map at its edges
    # (an axis shorter than 3 has no parabola: its indices are only kept in the map).
    centre = _xp.clip(xp, m, 1, c.inner)
    mid = anchor + (centre - m) * c.stride
    index = xp.concat([mid, mid, mid], axis=-1) + c.around
    index = index if w >= 3 and h >= 3 else _xp.clip(xp, index, 0, w * h - 1)
    return m, centre, pos == clipped, patch, _xp.take_along_last(xp, flat, index)


def _newton_step(
    xp: Any,
    j: Array,
    inside: Array,
    patch: Array,
    lo: Array,
    hi: Array,
    peaked: Array,
    u: Array,
    *,
    sigma: float,
    tol: float,
    size: tuple[int, int],
    zero: Array,
    one: Array,
) -> tuple[Array]:
    """One Newton step ``u <- u - H^-1 g`` on ``J`` for ``(N, 2)`` ``u``, kept in ``[lo, hi]``;
    ``u`` where ``H`` is not negative definite or the step not finite, and per axis where the
    step is at most ``tol``. ``j`` and ``inside`` are :func:`_template_terms`'; ``zero`` and
    ``one`` are 0-d arrays of ``u``'s dtype."""
    w, h = size
    e, n1, n2 = _template_terms(xp, j, inside, u, sigma)
    # mom[:, 3 a + b]: sum_j P_j (y-term a)(x-term b) of the template; terms = T, dT/du, d2T/du2.
    mom = xp.reshape(xp.matrix_transpose(e[:, 1, :, :]) @ (patch @ e[:, 0, :, :]), (-1, 9))  # (N, 3 x 3)
    ok = mom[:, 0] > 0
    mom = mom / xp.where(ok, mom[:, 0], one)[:, None]
    g = mom[:, 1:4:2]  # (x, y): entries (0, 1) and (1, 0)
    hd = mom[:, 2:7:4] - g * g - 0.5 * n2  # (0, 2) and (2, 0)
    hxx, hyy, hxy = hd[:, 0], hd[:, 1], mom[:, 4] - g[:, 0] * g[:, 1]
    g = g - 0.5 * n1
    gx, gy = g[:, 0], g[:, 1]
    if w > 1 and h > 1:
        det = hxx * hyy - hxy * hxy
        ok = ok & peaked & (hxx < 0) & (det > 0)
        det = xp.where(ok, det, one)
        # (hxy gy - hyy gx, hxy gx - hxx gy) / det
        step = (hxy[:, None] * _xp.flip_last(xp, g) - _xp.flip_last(xp, hd) * g) / det[:, None]
    else:
        # A map one pixel wide (tall) holds nothing to refine along that axis (its Hessian
        # there is exactly 0, and a step would follow rounding noise): Newton on the other.
        ok = ok & peaked & ((hxx < 0) | (w == 1)) & ((hyy < 0) | (h == 1))
        still = xp.zeros_like(gx)
        sx = still if w == 1 else -gx / xp.where(ok, hxx, one)
        sy = still if h == 1 else -gy / xp.where(ok, hyy, one)
        step = xp.stack([sx, sy], axis=-1)
    ok = ok[..., None] & xp.isfinite(step) & (xp.abs(step) > tol)
    # u lies in [lo, hi] (it starts there, every step is clipped there): u + 0 stays u, bit for bit.
    return (xp.minimum(xp.maximum(u + xp.where(ok, step, zero), lo), hi),)


def _parabola_start(xp: Any, v: Array, centre: Array, at: Array, c: _Constants, w: int, h: int) -> tuple[Array, Array]:
    """Per axis, the vertex of the parabola through the log of 3 map values ``v`` (before, at and
    after ``centre``, the argmax ``at`` moved inside the map at its edges: x's then y's) along the
    argmax's row (x) and column (y); the argmax where that fails.

    Exact on a Gaussian target of any sigma, so the Newton steps on ``J`` start where they end for
    such maps and need few steps on others. Also returns whether the map has a peak at the argmax
    (``(..., K)``): where it has none (flat there, or log-convex along an axis), DARK has nothing
    to refine and the argmax stands.
    """
    work, dev = at.dtype, _xp.device(at)
    v = v if v.dtype == work else xp.astype(v, work)
    # NaN for a sample that is not positive: the curvature is then not finite, as it is for +inf
    logv = xp.log(xp.where(v > 0, v, c.nan))
    before, mid, after = logv[..., 0:2], logv[..., 2:4], logv[..., 4:6]
    curvature = before - 2.0 * mid + after
    positive = xp.isfinite(curvature)  # (..., K, 2): per axis, its three samples positive and finite
    down = curvature < 0
    if w >= 3 and h >= 3:
        ok, level = positive & down, ~positive | down
    else:  # an axis shorter than 3 has no parabola, and no say in whether there is a peak
        long_axis = xp.asarray([w >= 3, h >= 3], device=dev)
        ok, level = positive & long_axis & down, ~long_axis | ~positive | down
    vertex = xp.astype(centre, work) + 0.5 * (before - after) / xp.where(ok, curvature, c.minus_one)
    # No peak: flat at the maximum, or log-convex along an axis (a zero neighbour is a sharp peak).
    peaked = level[..., 0] & level[..., 1]
    return xp.where(ok & xp.isfinite(vertex) & peaked[..., None], vertex, at), peaked


def refine_1d(xp: Any, labels: Array, m: Array, sigma: float, iterations: int, radius: int) -> Array:
    """The 1-D version of :func:`decode_dark`'s refinement: ``(..., N)`` labels -> ``(...)`` positions.

    ``m`` ``(..., 1)`` is the labels' argmax (first maximum), which the caller has. From there, the parabola through the log of 3 values, then
    ``iterations`` Newton steps on ``J(u) = log sum_j P_j T_u(j) - 1/2 log sum_j T_u(j)^2`` over
    the ``2 * radius + 1`` positions around the argmax that lie in ``[0, N)``.
    """
    n_bins = labels.shape[-1]
    dev = _xp.device(labels)
    work = labels.dtype  # float32 or float64: the boundary computes 16-bit labels in float32
    pos = m + xp.arange(-radius, radius + 1, dtype=m.dtype, device=dev)
    inside = (pos >= 0) & (pos < n_bins)
    patch = _xp.take_along_last(xp, labels, _xp.clip(xp, pos, 0, n_bins - 1))
    patch = patch if patch.dtype == work else xp.astype(patch, work)
    patch = _unit_patch(xp, patch, _xp.take_along_last(xp, labels, m)[..., 0], work)
    centre = _xp.clip(xp, m, 1, max(n_bins - 2, 1))
    three = _xp.take_along_last(
        xp,
        labels,
        _xp.clip(xp, centre + xp.asarray([-1, 0, 1], dtype=m.dtype, device=dev), 0, n_bins - 1),
    )
    three = three if three.dtype == work else xp.astype(three, work)
    positive = xp.all((three > 0) & (three < math.inf), axis=-1)
    logv = xp.log(xp.where(three > 0, three, xp.ones_like(three)))
    curvature = logv[..., 0] - 2.0 * logv[..., 1] + logv[..., 2]
    ok = positive & (n_bins >= 3) & (curvature < 0)
    # As in 2-D: no peak (flat, or log-convex at an end) keeps the argmax.
    peaked = (n_bins < 3) | ~positive | (curvature < 0)
    mf = xp.astype(m[..., 0], work)
    vertex = xp.astype(centre[..., 0], work) + 0.5 * (logv[..., 0] - logv[..., 2]) / xp.where(
        ok, curvature, xp.full_like(curvature, -1.0)
    )
    lo, hi = (
        xp.maximum(mf - 1.0, xp.full_like(mf, -0.5)),
        xp.minimum(mf + 1.0, xp.full_like(mf, n_bins - 0.5)),
    )
    u = _xp.clip(xp, xp.where(ok & xp.isfinite(vertex), vertex, mf), lo, hi)
    j = xp.astype(pos, work)[..., None, :]  # (..., 1, n): one axis
    inside = xp.astype(inside, work)[..., None, :]
    for _ in range(iterations):
        e, n1, n2 = _template_terms(xp, j, inside, u[..., None], sigma)
        mom = (patch[..., None, :] @ e[..., 0, :, :])[..., 0, :]  # (..., 3): sum_j P_j [T, T', T'']
        f = mom[..., 0]
        good = f > 0
        f = xp.where(good, f, xp.ones_like(f))
        g = mom[..., 1] / f
        hess = mom[..., 2] / f - g * g - 0.5 * n2[..., 0]
        g = g - 0.5 * n1[..., 0]
        good = good & peaked & (hess < 0)
        step = -g / xp.where(good, hess, xp.full_like(hess, -1.0))
        good = good & xp.isfinite(step)
        u = xp.where(good, _xp.clip(xp, u + xp.where(good, step, xp.zeros_like(step)), lo, hi), u)
    return u


def _unit_patch(xp: Any, patch: Array, peak: Array, work: Any) -> Array:
    """The patch around the argmax (whose value is ``peak``, the patch's maximum) clamped to
    ``[0, float max]`` (negative values count as 0, +inf as the largest float, NaN stays NaN) and
    divided by ``peak`` clamped to ``[smallest normal, float max]``: ``J`` moves by a constant, its
    steps not at all, the sums of a patch near the float maximum cannot overflow, and a subnormal
    patch is brought into the normal range by that exact power of two (no steps lost to
    underflow)."""
    finfo = xp.finfo(work)
    top = float(finfo.max)
    peak = peak if peak.dtype == work else xp.astype(peak, work)
    scale = 1.0 / _xp.clip(xp, peak, float(finfo.smallest_normal), top)
    return _xp.clip(xp, patch, 0.0, top) * scale[(...,) + (None,) * (patch.ndim - peak.ndim)]


def blur_radius(sigma: float, kernel_size: int | None) -> int:
    """Half the blur kernel: ``ceil(2.5 sigma)`` (DARK's 11 at sigma 2) unless a size is given."""
    if kernel_size is None:
        return math.ceil(2.5 * sigma)
    return check.odd_size(kernel_size, "kernel_size", "the kernel is centred on a pixel") // 2


def _template_terms(xp: Any, j: Array, inside: Array, u: Array, sigma: float) -> tuple[Array, Array, Array]:
    """The separable Gaussian template at ``u`` (``(..., A)``, one entry per axis) over patch
    positions ``j`` (``(..., A, n)``); ``inside`` (``j``'s shape, in its dtype) is 1 where the
    position lies in the map, else 0.

    Returns ``E`` ``(..., A, n, 3)`` = ``[T, dT/du, d2T/du2]`` = ``T [1, d, d^2 - 1 / sigma^2]``
    per axis and position, ``d = (j - u) / sigma^2`` (0 outside the map, which is how the border
    enters), and per axis the first and second derivatives in ``u`` of ``log sum_j T(j)^2``,
    the template's energy over the patch's pixels in the map. Every sum over positions is a
    product per landmark (and axis), so each landmark's bits are its own.
    """
    s2 = sigma * sigma
    d = (j - u[..., None]) / s2
    dd = d * d
    t = xp.exp((-0.5 * s2) * dd) * inside
    # E in its own memory, laid out (..., A, n, 3) (concat of new axes: NumPy's stack is a Python
    # function several times slower on small arrays). Its products below are per landmark, with
    # strides that do not depend on how many landmarks come: NumPy 1.26 picks BLAS or its own
    # loop by the strides, and a reduction over the positions axis orders its sums by the
    # array's shape, either of which made a landmark's last bits depend on the others passed
    # with it (which iterate_rows forbids).
    e = xp.concat([t[..., None], (t * d)[..., None], (t * (dd - 1.0 / s2))[..., None]], axis=-1)
    energy = (t[..., None, :] @ e)[..., 0, :]  # sum T^2 [1, d, d^2 - 1 / s2] per axis
    n0 = energy[..., 0]
    n1 = 2.0 * energy[..., 1] / n0
    n2 = 4.0 * energy[..., 2] / n0 + 2.0 / s2 - n1 * n1
    return e, n1, n2


def nan_landmarks(
    xp: Any, coords: Array, scores: Array, *, nan: Array | None = None, zero: Array | None = None
) -> tuple[Array, Array]:
    """NaN coordinates and score 0 where the map held a NaN (NumPy's and torch's argmax find it);
    ``nan`` and ``zero``: those 0-d arrays in the coordinates' dtype, if the caller has them."""
    dev = _xp.device(coords)
    nan = xp.asarray(math.nan, dtype=coords.dtype, device=dev) if nan is None else nan
    zero = xp.zeros((), dtype=scores.dtype, device=dev) if zero is None else zero
    bad = xp.isnan(scores)
    return xp.where(bad[..., None], nan, coords), xp.where(bad, zero, scores)
