"""Soft-argmax (integral regression, DSNT-style expectation) decoding and its exact target."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import _common, _xp
from . import _validation as check
from ._xp import Array
from .rounding import representable

__all__ = ["decode_local_soft_argmax", "decode_soft_argmax", "encode_soft_argmax"]

# Safeguarded Newton steps for the tilt (on the logit of the mean, from lam = 0). Measured to
# float64 precision (1e-13 n px) over maps 2 to 1024 wide, landmarks from 1e-300 px off a border
# to the centre: sigma >= 0.35 needs at most 8 steps (sigma 0.35: 6, 0.5: 4, 1e4: 8), below it up
# to 17 (a one-hot-like profile moves its mass by bisection). Margins: 10 and 20 steps;
# tests/test_soft_argmax.py checks both against 40 steps.
_NEWTON_STEPS, _NEWTON_STEPS_NARROW, _NARROW_SIGMA = 10, 20, 0.35


def _newton_steps(sigma: float) -> int:
    return _NEWTON_STEPS_NARROW if sigma < _NARROW_SIGMA else _NEWTON_STEPS


def encode_soft_argmax(
    coords: Array,
    /,
    *,
    heatmap_size: Sequence[int],
    sigma: float,
    weights: Array | None = None,
) -> _common.HeatmapTargets:
    """A probability map (sums to 1) whose expectation is exactly the landmark, borders included.

    A Gaussian truncated to the map is biased near the border: its mean is pulled inward (by
    ~0.4 sigma at the border pixel). This target instead uses, per axis, the discrete Gaussian
    *tilted* to have the right mean::

        p[j] ∝ exp(-(j - c)^2 / (2 sigma^2) + lam * (j - c)),      sum_j p[j] * j = c

    with ``lam`` found by a safeguarded Newton iteration on the logit of the mean, until that
    logit is within ``4 eps`` of ``c``'s (the mean within ``eps (n - 1)`` px, ``eps`` of the dtype)
    (``lam = 0``, the plain Gaussian, in the interior; ``lam -> -inf`` pushes the mass onto pixel
    0 as ``c -> 0``). The 2-D map is the
    outer product of the two axes' distributions, so its expectation is ``(cx, cy)``. As for
    every non-negative map, the expectation can only lie in ``[0, W - 1] x [0, H - 1]``: ``c`` is
    the landmark clamped to that box (see :func:`representable_coords`).

    Args:
        coords: ``(..., K, 2)`` landmark ``(x, y)`` in heatmap pixels, real floating.
        heatmap_size: ``(W, H)``.
        sigma: the Gaussian's standard deviation in heatmap pixels, 0.06 to 1e4.
        weights: optional ``(..., K)`` per-landmark weights or visibility (bool or numeric);
            0 leaves the landmark out.

    Returns:
        ``(heatmaps, weights)``: ``(..., K, H, W)`` probability maps and ``(..., K)`` weights in the
        dtype and on the device of ``coords``. Landmarks of weight 0, NaN or outside the map get weight
        0 and an all-zero map (which is not a distribution: mask them out of the loss).

    Convention:
        Heatmap pixels, integers at pixel centres, ``(x, y)`` order; sizes are ``(W, H)``.

    >>> import numpy as np
    >>> maps, _ = encode_soft_argmax(np.array([[0.25, 2.0]]), heatmap_size=(4, 5), sigma=1.0)
    >>> round(float(maps.sum()), 12), round(float((maps.sum(-2) * np.arange(4)).sum()), 12)
    (1.0, 0.25)
    """
    xp = _xp.namespace(coords=coords, weights=weights)
    _common.check_landmarks(xp, coords, weights)
    size, sigma = check.size(heatmap_size), check.sigma(sigma)
    return _xp.in_float32(xp, soft_argmax_targets, coords, weights=weights, size=size, sigma=sigma)


def soft_argmax_targets(
    xp: Any, coords: Array, *, weights: Array | None, size: tuple[int, int], sigma: float
) -> _common.HeatmapTargets:
    """Kernel of :func:`encode_soft_argmax` (inputs checked, sizes as ``(W, H)``)."""
    w, h = size
    safe, weights, keep = _common.landmark_weights(xp, coords, weights, size)
    c = representable(xp, safe, size)
    px = _tilted_gaussian(xp, c[..., 0], w, sigma)
    py = _tilted_gaussian(xp, c[..., 1], h, sigma)
    return _common.HeatmapTargets(_common.outer(xp, py, px, keep), weights)


def _tilted_gaussian(xp: Any, c: Array, n: int, sigma: float, steps: int | None = None) -> Array:
    """``(..., K)`` centres in ``[0, n-1]`` -> ``(..., K, n)`` distributions with mean exactly ``c``."""
    if n == 1:
        return xp.ones((*c.shape, 1), dtype=c.dtype, device=_xp.device(c))
    lead, c = c.shape, xp.reshape(c, (-1,))  # one row per landmark
    j = _common.grid(xp, n, c)
    d = j - c[..., None]
    base = d * d * (-0.5 / (sigma * sigma))
    tiny = xp.finfo(c.dtype).smallest_normal
    # Newton on the logit of the mean, log(m) - log(n-1-m): it is ~linear in lam on both ends
    # (m ~ exp(lam) as the mass piles onto a border pixel), where Newton on m itself crawls.
    inner = xp.clip(c, tiny, (n - 1) - (n - 1) * xp.finfo(c.dtype).eps)
    goal = xp.log(inner) - xp.log((n - 1) - inner)
    bound = 0.5 / (sigma * sigma) + 750.0  # beyond it the border pixel holds all but exp(-700)
    # Sums over the profile as dot products with fixed vectors (one pass each, where a product
    # and a sum over the short axis cost several); e*j and e*(n-1-j) summed directly, so exact
    # when tiny.
    one = xp.ones(n, dtype=c.dtype, device=_xp.device(c))
    rest = (n - 1) - j
    tol = 4.0 * float(xp.finfo(c.dtype).eps)

    def newton_step(
        base: Array, d: Array, c: Array, goal: Array, lam: Array, lo: Array, hi: Array
    ) -> tuple[Array, Array, Array]:
        e = _tilted_exp(xp, base, d, lam, c, n, sigma)
        total = _xp.dot_last(xp, e, one)
        below = xp.clip(_xp.dot_last(xp, e, j) / total, tiny, None)  # m
        above = xp.clip(_xp.dot_last(xp, e, rest) / total, tiny, None)  # n - 1 - m
        err = xp.log(below) - xp.log(above) - goal
        ed = e * d
        mean_d = _xp.dot_last(xp, ed, one) / total
        # sum e*d*d directly: from sum e*d*j - c * sum e*d, a narrow profile's variance (all but
        # cancelling against mean_d^2) drowns in rounding of size eps * c and Newton stalls.
        slope = (_xp.dot_last(xp, ed, d) / total - mean_d * mean_d) * (1.0 / below + 1.0 / above)
        lo = xp.where(err < 0, lam, lo)
        hi = xp.where(err > 0, lam, hi)
        usable = slope > 0
        newton = lam - err / xp.where(usable, slope, xp.ones_like(slope))
        # A logit of the mean within a few ulps of its goal is there to rounding (the mean within
        # eps (n - 1) px): lam stays, as it does where it no longer moves (same err, same Newton
        # step, inside the bracket it bounds). Either way a fixed point, which iterate_rows freezes.
        rounding = xp.abs(err) <= tol
        new = xp.where(usable & (newton >= lo) & (newton <= hi), newton, 0.5 * (lo + hi))
        return xp.where(usable & rounding, lam, new), lo, hi

    start = (xp.zeros_like(c), xp.full_like(c, -bound), xp.full_like(c, bound))
    lam = _xp.iterate_rows(
        xp, newton_step, (base, d, c, goal), start, _newton_steps(sigma) if steps is None else steps
    )[0]
    e = _tilted_exp(xp, base, d, lam, c, n, sigma)
    p = e / _xp.dot_last(xp, e, one)[..., None]
    # The exact ends are reached only as lam -> -inf or +inf: put the mass on the border pixel.
    first = xp.astype(j == 0, c.dtype)
    last = xp.astype(j == n - 1, c.dtype)
    p = _xp.replace_rows(xp, c <= 0, first, _xp.replace_rows(xp, c >= n - 1, last, p))
    return xp.reshape(p, (*lead, n))


def _tilted_exp(xp: Any, base: Array, d: Array, lam: Array, c: Array, n: int, sigma: float) -> Array:
    """``exp(base + lam d - max)``, ``(N, n)``: the largest entry is 1, or within rounding of it.

    The exponent is a concave parabola in ``j``, so its maximum over the grid is at the grid
    point nearest the vertex ``c + lam sigma^2`` (clipped to the map): computed per landmark,
    with the same operations as the entry itself, instead of a max over the short axis. (A
    vertex within rounding of a half-integer may pick the other neighbour, whose value differs
    from the maximum by as little: no overflow either way.)
    """
    peak = xp.clip(xp.round(c + lam * (sigma * sigma)), 0, n - 1) - c
    top = peak * peak * (-0.5 / (sigma * sigma)) + lam * peak
    return _xp.exp_flushed(xp, base + lam[..., None] * d - top[..., None])


@_xp.non_finite_settled
def decode_soft_argmax(
    heatmaps: Array,
    /,
    *,
    beta: float = 1.0,
    logits: bool,
    debias: bool = False,
) -> _common.DecodedLandmarks:
    """The expectation of each map's softmax: integral regression / soft-argmax.

    ``p = softmax(beta * h)`` over all ``H*W`` pixels (``logits=True``), or
    ``p = max(h, 0)^beta / sum max(h, 0)^beta`` (``logits=False``), then
    ``(x, y) = sum_ij p[i, j] * (j, i)``. The softmax is shifted by each map's maximum, so any
    finite logits (up to the float maximum) and ``-inf`` entries are safe, and the sums are taken
    relative to the maximum's position so float32 keeps ~1e-6 px of precision on large maps.
    Differentiable in ``heatmaps`` on autograd backends. With ``logits=False``, a map
    with no positive value decodes to its maximum's position. Maps whose maximum is not finite:
    a ``+inf`` pixel decodes to the first one (score ``+inf``); a NaN, or logits that are all
    ``-inf``, carry no information: NaN coordinates and score 0. Other landmarks are unaffected.

    ``debias=True`` (logits only) removes the bias of integral regression (Gu et al., ICCV
    2021): a logit of 0 still weighs ``exp(0) = 1``, so the softmax of a peak on a zero
    background has its mean pulled towards the map's centre. With ``C = sum exp(beta h)`` over
    the ``N = H W`` pixels and ``J`` the plain expectation, the compensated one is
    ``(C J - N m) / (C - N)`` (``m`` the grid's centre, ``((W - 1) / 2, (H - 1) / 2)``): the mean of
    the excess ``exp(beta h) - 1``, exactly, on a discrete grid (Gu et al. state it for
    continuous coordinates, ``C / (C - 1) (J - 1 / (2 C))``, with ``C`` per unit area). So it returns
    the landmark exactly for logits ``h = log(1 + a) / beta`` whose excess ``a >= 0`` has its mean
    at the landmark (borders included, e.g. ``a`` = :func:`encode_soft_argmax`'s target times any
    positive scale), where the plain expectation is off by ``N (m - c) / C``. Logits below 0 give a
    negative excess (counted as such: the formula's meaning); where the excess sums to no more
    than 0 (no logit above the background) the compensation is undefined and the plain
    expectation is returned.

    Args:
        heatmaps: ``(..., K, H, W)`` real floating maps.
        beta: inverse temperature, > 0 (larger is closer to the hard argmax).
        logits: whether the maps hold logits (``True``) or non-negative probabilities or scores
            (``False``). Required: decoding one as the other is silently wrong, and no default
            suits every network.
        debias: compensate the softmax's zero-logit background (``logits=True`` only).

    Returns:
        ``(coords, scores)``: ``(..., K, 2)`` ``(x, y)`` in heatmap pixels and the ``(..., K)``
        maximum of each map (in the input's units), in the maps' dtype and device.

    Reference:
        K. Gu, L. Yang and A. Yao, "Removing the Bias of Integral Pose Regression", ICCV 2021.

    Convention:
        Heatmap pixels, integers at pixel centres, ``(x, y)`` order.

    >>> import numpy as np
    >>> maps, _ = encode_soft_argmax(np.array([[0.25, 3.5]]), heatmap_size=(4, 5), sigma=1.0)
    >>> coords, _ = decode_soft_argmax(np.log(maps), logits=True)
    >>> np.round(coords, 9).tolist()
    [[0.25, 3.5]]
    >>> biased = np.log1p(4 * maps)  # a peak on a background of zero logits
    >>> np.round(decode_soft_argmax(biased, logits=True).coords, 3).tolist()
    [[1.292, 2.25]]
    >>> np.round(decode_soft_argmax(biased, logits=True, debias=True).coords, 9).tolist()
    [[0.25, 3.5]]
    """
    options = soft_argmax_decode_options(beta, logits, debias)
    xp = _xp.namespace(heatmaps=heatmaps)
    check.heatmaps(xp, heatmaps)
    return _xp.in_float32(xp, soft_argmax_coords, heatmaps, **options)


def soft_argmax_decode_options(beta: float, logits: bool, debias: bool) -> dict[str, Any]:
    """:func:`decode_soft_argmax`'s options checked, as :func:`soft_argmax_coords` takes them."""
    beta = check.positive(beta, "beta")
    logits = check.boolean(logits, "logits")
    debias = check.boolean(debias, "debias")
    if debias and not logits:
        raise ValueError(
            "decode_soft_argmax(debias=True) compensates the softmax of logits (its zero-logit background weighs "
            "exp(0) = 1); with logits=False there is no softmax and no such bias"
        )
    return {"beta": beta, "logits": logits, "debias": debias}


def soft_argmax_coords(
    xp: Any, heatmaps: Array, *, beta: float, logits: bool, debias: bool = False
) -> _common.DecodedLandmarks:
    """Kernel of :func:`decode_soft_argmax` (maps checked), in blocks of maps (``_xp.map_blocks``)."""
    return _common.DecodedLandmarks(
        *_xp.map_blocks(xp, lambda maps: _soft_argmax(xp, maps, beta, logits, debias), heatmaps)
    )


# Below this shifted maximum beta * max(h) the excess exp(beta h) - 1 is taken with expm1 (exact
# near h = 0, where e - exp(-beta max) cancels); above it exp(-beta max) < 1e-13 and the plain
# difference is as exact. Clipping expm1's argument keeps the unused branch finite (and its
# gradient NaN-free).
_EXPM1_BELOW = 30.0


def _excess(xp: Any, heatmaps: Array, e: Array, top: Array, beta: float) -> Array:
    """``(exp(beta h) - 1) exp(-top)`` for ``top = beta max(h)``, given ``e = exp(beta h - top)``."""
    floor = xp.exp(-top)
    small = top <= _EXPM1_BELOW
    clipped = xp.clip(heatmaps * beta, None, _EXPM1_BELOW)
    return xp.where(small, xp.expm1(clipped) * floor, e - floor)


def _softmax_weights(xp: Any, values: Array, top: Array, beta: float, logits: bool) -> Array:
    """The soft-argmax weights of ``values`` whose maximum is ``top`` (broadcast): ``exp(beta
    (h - top))`` for logits, ``(max(h, 0) / top)^beta`` for probabilities (both decoders' rule)."""
    if logits:
        return _xp.exp_shifted(xp, values, top, beta)
    e = _common.scaled_to_maximum(xp, values, top)
    return e if beta == 1.0 else e**beta


def _soft_argmax(xp: Any, heatmaps: Array, beta: float, logits: bool, debias: bool = False) -> tuple[Array, Array]:
    """:func:`decode_soft_argmax` on checked maps (of any leading shape)."""
    _, anchor, scores = _common.locate_maximum(xp, heatmaps)
    h, w = heatmaps.shape[-2:]
    e = _softmax_weights(xp, heatmaps, scores[..., None, None], beta, logits)
    ax, ay = _common.unravel(xp, anchor, w, heatmaps.dtype)
    x, y = _moments_about(xp, e, ax, ay, w, h)
    if debias:
        # A finite maximum only: an infinite or NaN one is settled below, whatever this gives.
        top = xp.where(xp.isfinite(scores), scores * beta, xp.zeros_like(scores))[..., None, None]
        xd, yd, excess = _moments_about(xp, _excess(xp, heatmaps, e, top, beta), ax, ay, w, h, with_total=True)
        x, y = xp.where(excess > 0, xd, x), xp.where(excess > 0, yd, y)
    return _common.settle_non_finite(xp, xp.stack([x, y], axis=-1), scores, anchor, w, logits=logits)


def _moments_about(xp: Any, e: Array, ax: Array, ay: Array, w: int, h: int, with_total: bool = False) -> Any:
    """The weighted mean ``(x, y)`` of ``(..., K, H, W)`` weights, summed about the anchor."""
    # Two reductions over the map (per row, per column), then moments about the anchor.
    row_sum = _xp.sum_last(xp, e)  # (..., K, H)
    col_sum = _xp.sum_second_last(xp, e)  # (..., K, W)
    total = xp.sum(row_sum, axis=-1)
    norm = xp.where(total > 0, total, xp.ones_like(total))
    dx = _common.grid(xp, w, e) - ax  # (..., K, W)
    dy = _common.grid(xp, h, e) - ay
    x = ax[..., 0] + xp.sum(col_sum * dx, axis=-1) / norm
    y = ay[..., 0] + xp.sum(row_sum * dy, axis=-1) / norm
    return (x, y, total) if with_total else (x, y)


# Steps of the bracketed Newton that inverts the truncated window's mean: it converges in five or
# so (measured: 1e-11 px after 8 over sigma 0.5-8, windows 3-15, maps from 2x2, borders included,
# 4e-14 after 10); fixed, so the exported graph holds no data-dependent loop.
_INVERSION_STEPS = 12


@_xp.non_finite_settled
def decode_local_soft_argmax(
    heatmaps: Array,
    /,
    *,
    window_size: int = 5,
    beta: float = 1.0,
    logits: bool,
    sigma: float | None = None,
) -> _common.DecodedLandmarks:
    """Local soft-argmax: the softmax-weighted mean of the positions in a window around the
    maximum (Bulat et al., "Subpixel Heatmap Regression for Facial Landmark Localization",
    BMVC 2021), optionally inverted for the window's truncation.

    Around each map's first maximum ``m``, the ``window_size x window_size`` window (clipped at
    the map's edges: pixels outside are absent) gets the weights ``exp(beta (h - h_max))`` of
    ``logits``, or ``(h / h_max)^beta`` (negative values as 0) of probabilities, and the estimate
    is their weighted mean position, per axis. On a Gaussian the window cuts off the tails, and
    the mean of what is left is pulled towards the window's centre: on the library's sub-pixel
    target (sigma 1.5, window 5) by up to 0.19 px inside the map and 1.1 px at its border
    (docs/quantization.md measures it).

    ``sigma`` given, that bias is inverted: for a Gaussian of ``sigma`` heatmap pixels (the
    weights are then a Gaussian of ``sigma / sqrt(beta)``), the mean of its samples at the
    window's positions is strictly increasing in its centre, so per axis the centre whose
    truncated mean is the observed one is found (Newton's method, safeguarded by bisection,
    within a pixel beyond the window's ends). On a map that is such a Gaussian (the target
    of ``encode_gaussian(rounding="none")`` as probabilities, or its log as logits) it returns
    the landmark to float rounding wherever the maximum lies, borders included; elsewhere it is
    the centre of the Gaussian that would leave the same mean.

    Args:
        heatmaps: ``(..., K, H, W)`` real floating maps.
        window_size: odd side of the window, >= 1 (a side beyond ``2 max(H, W) - 1`` covers the
            map from any maximum, and is bounded there).
        beta: inverse temperature, > 0.
        logits: ``True`` for a network's logits (the softmax's), ``False`` for probabilities or
            non-negative scores; required, as by :func:`decode_soft_argmax`.
        sigma: the Gaussian's sigma in heatmap pixels, to invert the window's bias; ``None``
            (the default) for the plain local mean.

    Returns:
        ``(coords, scores)``: ``(..., K, 2)`` ``(x, y)`` in heatmap pixels and the ``(..., K)``
        map maxima. Maps holding NaN (or, as logits, only ``-inf``) give NaN coordinates and
        score 0; a ``+inf`` maximum gives its pixel, as the other softmax decoders.

    Convention:
        Heatmap pixels, integers at pixel centres, ``(x, y)`` order.

    >>> import numpy as np
    >>> from landmark_codecs import encode_gaussian
    >>> maps = encode_gaussian(np.array([[0.3, 6.8]]), heatmap_size=(12, 8), sigma=1.5).heatmaps
    >>> plain = decode_local_soft_argmax(maps, logits=False).coords
    >>> exact = decode_local_soft_argmax(maps, logits=False, sigma=1.5).coords
    >>> np.round(plain, 3).tolist(), np.round(exact, 9).tolist()
    ([[0.811, 6.215]], [[0.3, 6.8]])
    """
    size = check.odd_size(window_size, "window_size", "the window is centred on the maximum")
    beta = check.positive(beta, "beta")
    logits = check.boolean(logits, "logits")
    if sigma is not None:
        sigma = check.sigma(sigma)
    xp = _xp.namespace(heatmaps=heatmaps)
    check.heatmaps(xp, heatmaps)
    options = {"window_size": size, "beta": beta, "logits": logits, "sigma": sigma}
    return _xp.in_float32(xp, local_soft_argmax_coords, heatmaps, **options)


def local_soft_argmax_coords(
    xp: Any, heatmaps: Array, *, window_size: int, beta: float, logits: bool, sigma: float | None
) -> _common.DecodedLandmarks:
    """Kernel of :func:`decode_local_soft_argmax` (maps and options checked)."""
    h, w = heatmaps.shape[-2:]
    flat, anchor, scores = _common.locate_maximum(xp, heatmaps)
    r = min(window_size // 2, max(w, h) - 1)  # a wider window covers the map from any maximum
    dev, dtype = _xp.device(heatmaps), heatmaps.dtype
    steps = xp.arange(-r, r + 1, dtype=anchor.dtype, device=dev)
    cols, rows = anchor % w + steps, anchor // w + steps  # (..., K, n)
    in_x, in_y = (cols >= 0) & (cols < w), (rows >= 0) & (rows < h)
    n = 2 * r + 1
    index = xp.clip(rows, 0, h - 1)[..., :, None] * w + xp.clip(cols, 0, w - 1)[..., None, :]
    lead = tuple(index.shape[:-2])
    values = xp.reshape(_xp.take_along_last(xp, flat, xp.reshape(index, (*lead, n * n))), (*lead, n, n))
    e = _softmax_weights(xp, values, scores[..., None, None], beta, logits)
    e = xp.where(in_y[..., :, None] & in_x[..., None, :], e, xp.zeros((), dtype=dtype, device=dev))
    col, row = xp.sum(e, axis=-2), xp.sum(e, axis=-1)  # (..., K, n): the window's marginals
    total = xp.sum(col, axis=-1)
    norm = xp.where(total > 0, total, xp.ones_like(total))
    offsets = xp.astype(steps, dtype)
    # the means as offsets from the maximum: small numbers, full precision on any map size
    mean = xp.stack([xp.sum(col * offsets, axis=-1) / norm, xp.sum(row * offsets, axis=-1) / norm], axis=-1)
    if sigma is not None:
        valid = xp.stack([in_x, in_y], axis=-2)  # (..., K, 2, n)
        inverted = _untruncated_centre(xp, mean, offsets, valid, sigma / beta**0.5)
        # a window of zero weight (an all-zero map) holds no Gaussian to invert: the maximum stays
        mean = xp.where((total > 0)[..., None], inverted, mean)
    ax, ay = _common.unravel(xp, anchor, w, dtype)
    coords = xp.concat([ax, ay], axis=-1) + mean
    return _common.DecodedLandmarks(*_common.settle_non_finite(xp, coords, scores, anchor, w, logits=logits))


def _untruncated_centre(xp: Any, mean: Array, offsets: Array, valid: Array, s: float) -> Array:
    """Per axis, the centre ``t`` of a Gaussian of ``s`` whose samples at the window's valid
    ``offsets`` have the weighted mean ``mean``: ``(..., K, 2)`` -> ``(..., K, 2)``.

    ``f(t) = sum_j d_j g(d_j - t) / sum_j g(d_j - t)`` is strictly increasing (``f' = var / s^2``),
    from the lowest valid offset to the highest; Newton's step is taken where it stays inside
    the bracket, else the bracket's midpoint. The bracket starts a pixel beyond the valid
    offsets, so that the centre of a map that is such a Gaussian (at most half a pixel beyond
    them) lies strictly inside it.
    """
    zero = xp.zeros((), dtype=mean.dtype, device=_xp.device(mean))
    big = xp.asarray(float(offsets.shape[0]), dtype=mean.dtype, device=_xp.device(mean))
    lo = xp.min(xp.where(valid, offsets, big), axis=-1) - 1.0
    hi = xp.max(xp.where(valid, offsets, -big), axis=-1) + 1.0
    single = (hi - lo) <= 2.0  # one valid position: nothing to invert, the mean is that position
    t = xp.clip(mean, lo, hi)
    k = -0.5 / (s * s)
    for _ in range(_INVERSION_STEPS):
        u = offsets - t[..., None]
        q = xp.where(valid, u * u, big * big)
        q = q - xp.min(q, axis=-1, keepdims=True)  # the nearest sample weighs 1: no underflow
        g = xp.where(valid, xp.exp(q * k), zero)
        g_total = xp.sum(g, axis=-1)
        f = xp.sum(g * offsets, axis=-1) / g_total
        spread = xp.sum(g * u * u, axis=-1) / g_total - (f - t) ** 2  # the variance, from small terms
        err = f - mean
        lo = xp.where(err < 0, t, lo)
        hi = xp.where(err > 0, t, hi)
        slope = spread / (s * s)
        usable = slope > 0
        newton = t - err / xp.where(usable, slope, xp.ones_like(slope))
        # >=, <=: a converged step lands on the bracket end it just set (t itself), and stays
        t = xp.where(usable & (newton >= lo) & (newton <= hi), newton, 0.5 * (lo + hi))
    return xp.where(single, mean, t)
