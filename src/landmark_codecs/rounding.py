"""Heatmap regression via randomized rounding (H3R; Yu & Tao, TPAMI 2021).

Encoding rounds each coordinate up with probability equal to its fractional part, so the target
pixel is an unbiased estimate of the coordinate; its expectation is the bilinear split of one
unit of mass over the <= 4 pixels around it. Decoding takes the weighted mean of a set of
activation points, which recovers the coordinate exactly from that expectation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from . import _common, _xp
from . import _validation as check
from ._xp import Array

__all__ = ["decode_randomized_rounding", "encode_randomized_rounding", "representable_coords"]


def representable_coords(coords: Array, /, *, heatmap_size: Sequence[int]) -> Array:
    """Clamp ``(..., K, 2)`` coordinates to ``[0, W - 1] x [0, H - 1]``, the pixel centres' hull.

    A map whose values are non-negative weights on pixel centres can only have its weighted
    mean (its "expectation") inside this box. The half-pixel bands ``[-0.5, 0)`` and
    ``(W - 1, W - 0.5)`` of the valid range are therefore moved to the nearest representable
    point (an error below 0.5 px) by the expectation-based encoders: randomized rounding and the
    soft-argmax target. This function says where such an encoder puts a landmark.

    >>> import numpy as np
    >>> representable_coords(np.array([[-0.5, 2.0], [3.4, 0.25]]), heatmap_size=(4, 3)).tolist()
    [[0.0, 2.0], [3.0, 0.25]]
    """
    xp = _xp.namespace(coords=coords)
    check.coords(xp, coords)
    return _xp.in_float32(xp, representable, coords, check.size(heatmap_size))


def representable(xp: Any, coords: Array, size: tuple[int, int]) -> Array:
    """Kernel of :func:`representable_coords` (coordinates checked, size ``(W, H)``)."""
    w, h = size
    upper = xp.asarray([w - 1.0, h - 1.0], dtype=coords.dtype, device=_xp.device(coords))
    return xp.minimum(xp.maximum(coords, xp.zeros((), dtype=coords.dtype, device=_xp.device(coords))), upper)


def encode_randomized_rounding(
    coords: Array,
    /,
    *,
    heatmap_size: Sequence[int],
    noise: Array | None = None,
    rng: Any = None,
    expected: bool = False,
    sigma: float | None = None,
    weights: Array | None = None,
) -> _common.HeatmapTargets:
    """H3R target: a one-hot map at the randomly rounded pixel, or its expectation.

    Per axis, with ``c`` the coordinate clamped to ``[0, W - 1]`` (see :func:`representable_coords`)
    and ``u`` uniform on [0, 1)::

        sample:    p = floor(c) + [u < c - floor(c)]          E[p] = c   (unbiased)
        expected:  M[j] = max(0, 1 - |j - c|)                  (bilinear weights, sum 1)

    The 2-D map is the outer product of the two axes' maps (the axes' noises are independent),
    so ``expected=True`` puts mass on at most 4 pixels, sums to 1 and has centroid exactly ``c``.
    With ``sigma``, each one-hot pixel is replaced by a Gaussian of that sigma centred on it
    (peak 1); with ``expected=True`` too, by the expectation of that Gaussian over the rounding.

    Args:
        coords: ``(..., K, 2)`` landmark ``(x, y)`` in heatmap pixels, real floating.
        heatmap_size: ``(W, H)``.
        noise: ``(..., K, 2)`` uniform [0, 1) values, one per landmark and axis, same library
            and device as ``coords``. Values are not range-checked (that would need a host
            round-trip): ``u < 0`` never rounds up, ``u >= 1`` always rounds down.
        rng: instead of ``noise``, a ``numpy.random.Generator`` or ``torch.Generator`` to draw
            it from. Exactly one of ``noise`` and ``rng`` is needed unless ``expected=True``,
            which takes neither.
        expected: return the expectation of the sample instead of a sample.
        sigma: optional Gaussian smoothing in heatmap pixels, 0.06 to 1e4.
        weights: optional ``(..., K)`` per-landmark weights or visibility (bool or numeric);
            0 leaves the landmark out.

    Returns:
        ``(heatmaps, weights)``: ``(..., K, H, W)`` and ``(..., K)`` in the dtype and on the device
        of ``coords``. Landmarks of weight 0, NaN or outside the map get weight 0 and an all-zero map.

    Convention:
        Heatmap pixels, integers at pixel centres, ``(x, y)`` order; sizes are ``(W, H)``.

    Reference:
        B. Yu and D. Tao, "Heatmap Regression via Randomized Rounding", TPAMI 2021.

    >>> import numpy as np
    >>> maps, _ = encode_randomized_rounding(np.array([[1.25, 0.5]]), heatmap_size=(3, 2), expected=True)
    >>> maps[0].tolist()
    [[0.0, 0.375, 0.125], [0.0, 0.375, 0.125]]
    >>> maps, _ = encode_randomized_rounding(np.array([[1.25, 0.5]]), heatmap_size=(3, 2), noise=np.array([[0.1, 0.9]]))
    >>> maps[0].tolist()
    [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    """
    expected = check.boolean(expected, "expected")
    xp = _xp.namespace(coords=coords, weights=weights, noise=noise)
    _common.check_landmarks(xp, coords, weights)
    size = check.size(heatmap_size)
    if sigma is not None:
        sigma = check.sigma(sigma)
    if expected:
        if noise is not None or rng is not None:
            raise ValueError("expected=True takes neither noise nor rng: the expected target is deterministic")
    elif noise is None and rng is None:
        raise ValueError(
            "encode_randomized_rounding needs noise (uniform [0, 1), shape (..., K, 2)) or rng, or expected=True"
        )
    elif noise is not None and rng is not None:
        raise ValueError("pass noise or rng, not both")
    elif noise is not None:
        check.floating(xp, noise, "noise")
        check.same_shape(noise, coords.shape, "noise", "one uniform value per landmark and axis, like coords")
    options = {"size": size, "expected": expected, "sigma": sigma, "rng": rng}
    return _xp.in_float32(xp, rounding_targets, coords, weights=weights, noise=noise, **options)


def rounding_targets(
    xp: Any,
    coords: Array,
    *,
    weights: Array | None,
    noise: Array | None,
    size: tuple[int, int],
    expected: bool,
    sigma: float | None,
    rng: Any,
) -> _common.HeatmapTargets:
    """Kernel of :func:`encode_randomized_rounding` (inputs checked; ``noise`` or ``rng`` given
    unless ``expected``)."""
    w, h = size
    safe, weights, keep = _common.landmark_weights(xp, coords, weights, size)
    c = representable(xp, safe, size)
    low = xp.floor(c)
    frac = c - low
    if expected:
        px = _expected_profile(xp, c[..., 0], low[..., 0], frac[..., 0], w, sigma)
        py = _expected_profile(xp, c[..., 1], low[..., 1], frac[..., 1], h, sigma)
    else:
        if noise is None:
            noise = _xp.uniform(xp, tuple(coords.shape), dtype=coords.dtype, device=_xp.device(coords), rng=rng)
        pixel = low + xp.astype(noise < frac, coords.dtype)
        px = _sample_profile(xp, pixel[..., 0], w, sigma)
        py = _sample_profile(xp, pixel[..., 1], h, sigma)
    return _common.HeatmapTargets(_common.outer(xp, py, px, keep), weights)


def _sample_profile(xp: Any, pixel: Array, n: int, sigma: float | None) -> Array:
    if sigma is None:
        return xp.astype(_common.grid(xp, n, pixel) == pixel[..., None], pixel.dtype)
    return _common.gaussian_profile(xp, pixel, n, sigma)


def _expected_profile(xp: Any, c: Array, low: Array, frac: Array, n: int, sigma: float | None) -> Array:
    if sigma is None:
        # The tent max(0, 1 - |j - c|) is (1 - frac) at floor(c), frac at floor(c) + 1, else 0.
        d = _common.grid(xp, n, c) - c[..., None]
        return xp.maximum(1.0 - xp.abs(d), xp.zeros((), dtype=c.dtype, device=_xp.device(c)))
    f = frac[..., None]
    return (1.0 - f) * _common.gaussian_profile(xp, low, n, sigma) + f * _common.gaussian_profile(
        xp, low + 1.0, n, sigma
    )


@_xp.non_finite_settled
def decode_randomized_rounding(
    heatmaps: Array,
    /,
    *,
    top_k: int = 9,
    activation: Literal["topk", "window"] = "topk",
    window_size: int = 3,
    logits: bool,
) -> _common.DecodedLandmarks:
    """H3R decoding: the weighted mean of the positions in a set of activation points.

    The set ``S`` is either the ``top_k`` highest pixels of the map (``activation="topk"``) or the
    ``window_size x window_size`` window centred on its maximum (``activation="window"``,
    clipped at the map's edges). With ``h`` the map values on ``S``::

        probabilities:  w = max(h, 0) / sum_S max(h, 0)        logits:  w = softmax_S(h)
        coords = sum_S w * position

    computed relative to the maximum's position (the first in row-major order on ties, as in
    :func:`decode_argmax`), so float32 keeps ~1e-6 px even on 256-px maps. If every value in the
    set is <= 0 with ``logits=False`` the maximum's position is returned. A map whose
    maximum is ``+inf`` decodes to its first ``+inf`` pixel (score ``+inf``); one holding NaN,
    or logits that are all ``-inf``, carries no information: NaN coordinates and score 0. Top-k ties at
    the ``top_k``-th value are broken by the backend (NumPy and PyTorch may pick different pixels of
    equal value; the result differs only if those pixels' weights are non-zero).

    Decoding the expected target of :func:`encode_randomized_rounding` (or its ``log``,
    with ``logits=True``) gives back :func:`representable_coords` of the input exactly, to
    float precision, whenever the set covers the target's <= 4 pixels (``top_k >= 4``, or any
    ``window_size >= 3``).

    Args:
        heatmaps: ``(..., K, H, W)`` real floating maps.
        top_k: size of the top-k set, ``1 <= top_k <= H*W`` (only used with ``activation="topk"``).
        activation: ``"topk"`` or ``"window"``.
        window_size: odd window side, >= 1 (only used with ``activation="window"``).
        logits: whether the maps hold logits (``True``) or non-negative probabilities or scores
            (``False``). Required: decoding one as the other is silently wrong, and no default
            suits every network.

    Returns:
        ``(coords, scores)``: ``(..., K, 2)`` ``(x, y)`` in heatmap pixels and the ``(..., K)``
        maximum of each map, in the maps' dtype and device.

    Convention:
        Heatmap pixels, integers at pixel centres, ``(x, y)`` order.

    Reference:
        B. Yu and D. Tao, "Heatmap Regression via Randomized Rounding", TPAMI 2021.

    >>> import numpy as np
    >>> maps = np.zeros((1, 3, 4)); maps[0, 1, 1:3] = [0.75, 0.25]
    >>> coords, scores = decode_randomized_rounding(maps, logits=False)
    >>> coords.tolist(), scores.tolist()
    ([[1.25, 1.0]], [0.75])
    """
    xp = _xp.namespace(heatmaps=heatmaps)
    check.heatmaps(xp, heatmaps)
    h, w = heatmaps.shape[-2:]
    options = rounding_decode_options((w, h), top_k, activation, window_size, logits, heatmaps.shape)
    return _xp.in_float32(xp, rounding_coords, heatmaps, **options)


def rounding_decode_options(
    size: tuple[int, int], top_k: int, activation: str, window_size: int, logits: bool, shape: Any = None
) -> dict[str, Any]:
    """:func:`decode_randomized_rounding`'s options checked for ``(W, H)`` maps, as
    :func:`rounding_coords` takes them (``shape``: the maps', for the message)."""
    check.choice(activation, "activation", ("topk", "window"))
    logits = check.boolean(logits, "logits")
    w, h = size
    if activation == "topk":
        check.positive_int(top_k, "top_k")
        if top_k > h * w:
            raise ValueError(
                f"top_k must be at most H*W = {h * w} for heatmaps of shape {tuple(shape or (h, w))}, got top_k={top_k}"
            )
    else:
        check.odd_size(window_size, "window_size", "the window is centred on the maximum")
    return {"top_k": top_k, "activation": activation, "window_size": window_size, "logits": logits}


def rounding_coords(
    xp: Any, heatmaps: Array, *, top_k: int, activation: str, window_size: int, logits: bool
) -> _common.DecodedLandmarks:
    """Kernel of :func:`decode_randomized_rounding` (maps and options checked)."""
    return _common.DecodedLandmarks(*_activation_set_mean(xp, heatmaps, top_k, activation, window_size, logits))


def _activation_set_mean(
    xp: Any, heatmaps: Array, top_k: int, activation: str, window_size: int, logits: bool
) -> tuple[Array, Array]:
    """:func:`decode_randomized_rounding` on checked maps and options (any leading shape)."""
    # The anchor is the first maximum in row-major order, as decode_argmax's, whatever order
    # or tie-breaking the backend's top-k has.
    h, w = heatmaps.shape[-2:]
    if activation == "topk":
        index, values, anchor, scores = _xp.topk_and_first_maximum(xp, heatmaps, top_k)
        in_set = None
    else:
        flat, anchor, scores = _common.locate_maximum(xp, heatmaps)
        # A window wider than the map covers it from any anchor: the same set at a bounded cost.
        span = 2 * max(w, h) - 1
        index, in_set = _window_indices(xp, anchor, w, h, min(window_size, span))
        values = _xp.take_along_last(xp, flat, index)
    ax, ay = _common.unravel(xp, anchor, w, heatmaps.dtype)
    px, py = _common.unravel(xp, index, w, heatmaps.dtype)
    zero = xp.zeros((), dtype=heatmaps.dtype, device=_xp.device(heatmaps))
    if not logits:
        weight = _common.scaled_to_maximum(xp, values, scores[..., None])
    else:
        weight = _xp.exp_shifted(xp, values, scores[..., None], 1.0)
    if in_set is not None:
        weight = xp.where(in_set, weight, zero)
    total = xp.sum(weight, axis=-1)
    # An all-zero set would divide 0 by 0: its offsets then sum to 0, leaving the maximum.
    norm = xp.where(total > 0, total, xp.ones((), dtype=heatmaps.dtype, device=_xp.device(heatmaps)))
    x = ax[..., 0] + xp.sum(weight * (px - ax), axis=-1) / norm
    y = ay[..., 0] + xp.sum(weight * (py - ay), axis=-1) / norm
    return _common.settle_non_finite(xp, xp.stack([x, y], axis=-1), scores, anchor, w, logits=logits)


def _window_indices(xp: Any, anchor: Array, w: int, h: int, size: int) -> tuple[Array, Array]:
    """Flat indices ``(..., K, size*size)`` of the window around ``anchor`` and which lie in the map."""
    r = size // 2
    dev = _xp.device(anchor)
    offsets = xp.arange(-r, r + 1, dtype=anchor.dtype, device=dev)
    dx = xp.reshape(xp.broadcast_to(offsets[None, :], (size, size)), (size * size,))
    dy = xp.reshape(xp.broadcast_to(offsets[:, None], (size, size)), (size * size,))
    col = anchor % w + dx
    row = anchor // w + dy
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    index = xp.clip(row, 0, h - 1) * w + xp.clip(col, 0, w - 1)
    return index, inside
