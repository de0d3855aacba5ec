"""Gaussian heatmap targets: the vanilla integer-centred one and the sub-pixel one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from . import _common, _xp
from . import _validation as check
from ._xp import Array

__all__ = ["encode_gaussian"]


def encode_gaussian(
    coords: Array,
    /,
    *,
    heatmap_size: Sequence[int],
    sigma: float,
    rounding: Literal["none", "nearest"] = "none",
    weights: Array | None = None,
    outside: Literal["empty", "draw"] = "empty",
) -> _common.HeatmapTargets:
    """Unnormalized Gaussian heatmaps (peak 1) centred on each landmark.

    ``G[..., k, i, j] = exp(-((j - cx)^2 + (i - cy)^2) / (2 sigma^2))``, rendered separably as the
    outer product of two 1-D profiles (no loop over landmarks, no ``K*H*W`` distance array).

    - ``rounding="none"``: ``(cx, cy) = (x, y)``, the sub-pixel target used with DARK and UDP.
    - ``rounding="nearest"``: ``(cx, cy)`` = ``(x, y)`` rounded to the nearest integer, halves up
      (as ``int(x + 0.5)`` does for the vanilla target of Tompson et al. / SimpleBaseline, but
      computed exactly, also for the largest float below a half). It loses the
      sub-pixel part: decoding it with :func:`decode_argmax` is off by up to 0.5 px per axis.

    The map is not truncated (MSRA's code zeroes it beyond ``3 sigma``); values far from the
    centre underflow to 0 on their own.

    Args:
        coords: ``(..., K, 2)`` landmark ``(x, y)`` in heatmap pixels, real floating.
        heatmap_size: ``(W, H)``.
        sigma: the Gaussian's standard deviation in heatmap pixels, 0.06 to 1e4 (below 0.06 a
            landmark between pixel centres would get an all-zero map in float32).
        rounding: ``"none"`` or ``"nearest"``.
        weights: optional ``(..., K)`` per-landmark weights or visibility (bool or numeric);
            0 leaves the landmark out.
        outside: what a finite landmark outside the map gets: ``"empty"`` (an all-zero map and
            weight 0) or ``"draw"`` (the part of its Gaussian that falls on the map, and its
            weight: mmpose's MSRA and DARK targets for keypoints just outside the crop).

    Returns:
        ``(heatmaps, weights)``: ``(..., K, H, W)`` maps and ``(..., K)`` weights, in the dtype and
        on the device of ``coords``. A landmark of weight <= 0 or NaN, a NaN landmark, or (``outside="empty"``)
        outside ``[-0.5, W - 0.5) x [-0.5, H - 0.5)``, gets weight 0 and an all-zero map.

    Convention:
        Heatmap pixels, integers at pixel centres, ``(x, y)`` order; sizes are ``(W, H)``.

    >>> import numpy as np
    >>> maps, weights = encode_gaussian(np.array([[1.0, 0.0], [9.0, 0.0]]), heatmap_size=(3, 2), sigma=1.0)
    >>> maps.shape, weights.tolist()
    ((2, 2, 3), [1.0, 0.0])
    >>> np.round(maps[0], 3).tolist()
    [[0.607, 1.0, 0.607], [0.368, 0.607, 0.368]]
    """
    xp = _xp.namespace(coords=coords, weights=weights)
    _common.check_landmarks(xp, coords, weights)
    check.choice(rounding, "rounding", ("none", "nearest"))
    check.choice(outside, "outside", ("empty", "draw"))
    options = {"size": check.size(heatmap_size), "sigma": check.sigma(sigma), "rounding": rounding, "outside": outside}
    return _xp.in_float32(xp, gaussian_targets, coords, weights=weights, **options)


def gaussian_targets(
    xp: Any, coords: Array, *, weights: Array | None, size: tuple[int, int], sigma: float, rounding: str, outside: str
) -> _common.HeatmapTargets:
    """Kernel of :func:`encode_gaussian` (inputs checked, sizes as ``(W, H)``)."""
    w, h = size
    safe, weights, keep = _common.landmark_weights(xp, coords, weights, size, outside)
    if outside == "draw":
        # Past 40 sigma from every pixel a profile is exp(-800): 0 after flushing, so clamping
        # there changes no value and keeps the squared distances finite for any finite landmark.
        reach = 40.0 * sigma
        safe = xp.stack(
            [xp.clip(safe[..., 0], -reach, w - 1 + reach), xp.clip(safe[..., 1], -reach, h - 1 + reach)], axis=-1
        )
    if rounding == "nearest":
        # floor(x + 0.5) would round the largest float below n + 0.5 up (x + 0.5 rounds to n + 1),
        # pushing W - 0.5 - ulp off the map; x - floor(x) is exact.
        low = xp.floor(safe)
        centre = low + xp.astype(safe - low >= 0.5, safe.dtype)
    else:
        centre = safe
    px = _common.gaussian_profile(xp, centre[..., 0], w, sigma)
    py = _common.gaussian_profile(xp, centre[..., 1], h, sigma)
    return _common.HeatmapTargets(_common.outer(xp, py, px, keep), weights)
