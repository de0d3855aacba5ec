"""Pieces shared by the encoders and decoders: landmark weights, separable rendering, flat indexing."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from . import _validation as check
from . import _xp
from ._xp import Array


class HeatmapTargets(NamedTuple):
    """What a heatmap encoder returns."""

    heatmaps: Array
    """``(..., K, H, W)`` target maps."""
    weights: Array
    """``(..., K)`` per-landmark weights: the given weights (1 when none were given) where the
    landmark is finite and inside the map, else 0."""


class DecodedLandmarks(NamedTuple):
    """What every decoder returns."""

    coords: Array
    """``(..., K, 2)`` ``(x, y)`` coordinates (heatmap pixels unless the decoder says otherwise)."""
    scores: Array
    """``(..., K)`` confidence of each landmark (the decoder says which quantity)."""


def check_landmarks(xp: Any, coords: Array, weights: Array | None) -> None:
    """The boundary's checks of an encoder's landmarks and optional per-landmark weights."""
    check.coords(xp, coords)
    if weights is not None:
        check.numeric(xp, weights, "weights")
        check.same_shape(weights, coords.shape[:-1], "weights", "coords.shape[:-1], one value per landmark")


def landmark_weights(
    xp: Any, coords: Array, weights: Array | None, size: tuple[int, int], outside: str = "empty"
) -> tuple[Array, Array, Array]:
    """The encoders' kernel of landmark weights (inputs checked): ``(safe_coords, weights, keep)``.

    ``keep`` (bool, ``(..., K)``) marks landmarks that are finite, inside the map (any finite
    position with ``outside="draw"``) and of weight > 0 (``_xp.marked``: 0, negative and NaN
    weights leave a landmark out). The returned ``weights`` are the given ones (as the
    coordinates' dtype; 1 when absent) where ``keep``, else 0. ``safe_coords`` replaces the other
    landmarks by 0 so no NaN or inf reaches the rendering (nor its gradient).
    """
    w, h = size
    if outside == "draw":
        keep = xp.isfinite(coords[..., 0]) & xp.isfinite(coords[..., 1])
    else:
        keep = inside_map(coords, w, h)
    zero = xp.zeros((), dtype=coords.dtype, device=_xp.device(coords))
    if weights is None:
        weights = xp.astype(keep, coords.dtype)
    else:
        keep = keep & _xp.marked(xp, weights)
        vis = weights if weights.dtype == coords.dtype else xp.astype(weights, coords.dtype)
        weights = xp.where(keep, vis, zero)
    return xp.where(keep[..., None], coords, zero), weights, keep


def inside_map(coords: Array, w: int, h: int) -> Array:
    """``(..., K)``: finite and inside ``[-0.5, W - 0.5) x [-0.5, H - 0.5)`` (NaN fails every
    comparison, so NaN landmarks come out False without a separate test)."""
    x, y = coords[..., 0], coords[..., 1]
    return (x >= -0.5) & (x < w - 0.5) & (y >= -0.5) & (y < h - 0.5)


def weighted_mean(xp: Any, total: Array, weight: Array) -> Array:
    """``total / weight`` where the summed weight is positive, else 0 (a batch whose landmarks
    all have weight 0 contributes no loss and no NaN): the losses' one zero-guarded mean. The
    guard is arrays of ``total``'s dtype, not Python floats (NumPy 1 would promote a 0-d)."""
    positive = weight > 0
    one, zero = xp.ones_like(total), xp.zeros_like(total)
    return xp.where(positive, total / xp.where(positive, weight, one), zero)


def grid(xp: Any, n: int, like: Array) -> Array:
    """Pixel-centre positions ``0, 1, ..., n-1`` in ``like``'s dtype and device."""
    return xp.arange(n, dtype=like.dtype, device=_xp.device(like))


def gaussian_profile(xp: Any, centre: Array, n: int, sigma: float) -> Array:
    """``exp(-(j - centre)^2 / (2 sigma^2))`` for ``j = 0..n-1``: ``(..., K)`` -> ``(..., K, n)``.

    Values below ``e * smallest_normal`` of the dtype are 0 (see ``_xp.exp_flushed``).
    """
    d = grid(xp, n, centre) - centre[..., None]
    return _xp.exp_flushed(xp, d * d * (-0.5 / (sigma * sigma)))


def outer(xp: Any, profile_y: Array, profile_x: Array, keep: Array) -> Array:
    """The separable map ``(..., K, H, W)`` from per-axis profiles, zero where ``keep`` is False."""
    py = xp.where(keep[..., None], profile_y, xp.zeros((), dtype=profile_y.dtype, device=_xp.device(profile_y)))
    return py[..., :, None] * profile_x[..., None, :]


def locate_maximum(xp: Any, heatmaps: Array) -> tuple[Array, Array, Array]:
    """The decoders' first step (maps checked): ``(flat, anchor, scores)``.

    ``flat`` is ``(..., K, H*W)``; ``anchor`` ``(..., K, 1)`` the flat index of the first maximum
    in row-major order (NumPy's and PyTorch's argmax tie rule); ``scores`` ``(..., K)`` its value.
    """
    anchor, scores = _xp.argmax_2d(xp, heatmaps)
    return flatten_maps(xp, heatmaps), anchor, scores


def flatten_maps(xp: Any, heatmaps: Array) -> Array:
    """``(..., K, H, W)`` -> ``(..., K, H*W)``, row-major (index = row * W + column)."""
    return xp.reshape(heatmaps, (*heatmaps.shape[:-2], heatmaps.shape[-2] * heatmaps.shape[-1]))


def unravel(xp: Any, index: Array, width: int, dtype: Any) -> tuple[Array, Array]:
    """Flat row-major indices to ``(x, y)`` = (column, row) in ``dtype``."""
    return xp.astype(index % width, dtype), xp.astype(index // width, dtype)


def settle_non_finite(
    xp: Any, coords: Array, scores: Array, anchor: Array, width: int, *, logits: bool
) -> tuple[Array, Array]:
    """The decoders' rule for maps whose maximum is not finite, per landmark (no host round-trip).

    - A map holding ``+inf`` (an overflowed output) decodes to its first ``+inf`` pixel, the
      argmax, with score ``+inf``: the limit of the weighted mean as that pixel's weight grows.
    - A map holding NaN, or (``logits``) whose every value is ``-inf``, carries no information:
      NaN coordinates and score 0, as :func:`decode_dark` gives for a NaN map.
    Other landmarks are untouched.
    """
    ax, ay = unravel(xp, anchor[..., 0], width, coords.dtype)
    at_max = xp.stack([ax, ay], axis=-1)
    coords = xp.where((scores == math.inf)[..., None], at_max, coords)
    empty = xp.isnan(scores)
    if logits:
        empty = empty | (scores == -math.inf)
    nan = xp.asarray(math.nan, dtype=coords.dtype, device=_xp.device(coords))
    zero = xp.zeros((), dtype=scores.dtype, device=_xp.device(scores))
    return xp.where(empty[..., None], nan, coords), xp.where(empty, zero, scores)


def scaled_to_maximum(xp: Any, values: Array, maxima: Array) -> Array:
    """``max(values / maxima, 0)`` for non-negative weights, the maxima broadcast against ``values``.

    Scaled by the maximum, the weights of a map sum to at most its pixel count (no overflow near
    the float maximum). A subnormal maximum is first brought into the normal range by an exact
    power of two (``1 / eps``), since its reciprocal overflows. Where the maximum is not positive
    and finite the values are only clipped at 0 (the caller settles such maps).
    """
    one = xp.ones((), dtype=maxima.dtype, device=_xp.device(maxima))
    ok = (maxima > 0) & (maxima < math.inf)
    finfo = xp.finfo(maxima.dtype)
    pre = xp.where(ok & (maxima < finfo.smallest_normal), one / finfo.eps, one)
    post = one / xp.where(ok, maxima * pre, one)
    return _xp.scaled_nonnegative(xp, values, pre, post)


def at_most_one(xp: Any, maps: Array) -> Array:
    """``(..., H, W)`` maps divided by their maximum where it exceeds 1, else as given.

    For the consumers whose result does not depend on a map's scale above 1 (normalized moments,
    STAR): their sums of a map near the float maximum would overflow. A NaN or infinite maximum
    leaves the map as it is (the caller's rule for non-finite maps applies).
    """
    peak = xp.max(maps, axis=(-2, -1))
    one = xp.ones((), dtype=maps.dtype, device=_xp.device(maps))
    big = (peak > 1) & (peak < math.inf)
    # 1 / where(...), not where(..., 1 / peak, 1): no 1/0 whose gradient would leak through where
    return maps * (one / xp.where(big, peak, one))[..., None, None]
