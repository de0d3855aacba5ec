"""Adaptive Wing's third part: facial boundary heatmaps and CoordConv's coordinate channels
(Wang, Bo, Fuxin, "Adaptive Wing Loss for Robust Face Alignment via Heatmap Regression",
ICCV 2019, section 3.4 "Boundary prediction and CoordConv with boundary coordinates").

The boundary target is a heatmap of the distance from each pixel centre to the facial contours
(cheek, brows, eyelids, nose, lips), each drawn as a polyline through its landmarks. It is
computed here exactly, in closed form, from sub-pixel landmarks; the authors' code floors the
landmarks to the heatmap grid, rasterizes a spline through them and runs a distance transform
(docs/boundaries.md measures the difference).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from . import _common, _xp
from . import _validation as check
from ._xp import Array

Chains = Sequence[Sequence[int]]

__all__ = ["BoundaryTargets", "coordinate_channels", "encode_boundaries", "face_boundaries"]


# The facial-part chains of the AdaptiveWingLoss repository's data loader, in its order.
_BOUNDARIES: dict[int, tuple[tuple[str, tuple[int, ...]], ...]] = {
    68: (
        ("cheek", tuple(range(0, 17))),
        ("left_eyebrow", tuple(range(17, 22))),
        ("right_eyebrow", tuple(range(22, 27))),
        ("upper_left_eyelid", tuple(range(36, 40))),
        ("lower_left_eyelid", (36, 41, 40, 39)),
        ("upper_right_eyelid", tuple(range(42, 46))),
        ("lower_right_eyelid", (42, 47, 46, 45)),
        ("nose", tuple(range(27, 31))),
        ("nose_bottom", tuple(range(31, 36))),
        ("upper_outer_lip", tuple(range(48, 55))),
        ("upper_inner_lip", (60, 61, 62, 63, 64)),
        ("lower_outer_lip", (48, 59, 58, 57, 56, 55, 54)),
        ("lower_inner_lip", (60, 67, 66, 65, 64)),
    ),
    98: (
        ("cheek", tuple(range(0, 33))),
        ("left_eyebrow", tuple(range(33, 38))),
        ("right_eyebrow", tuple(range(42, 47))),
        ("upper_left_eyelid", tuple(range(60, 65))),
        ("lower_left_eyelid", (60, 67, 66, 65, 64)),
        ("upper_right_eyelid", tuple(range(68, 73))),
        ("lower_right_eyelid", (68, 75, 74, 73, 72)),
        ("nose", tuple(range(51, 55))),
        ("nose_bottom", tuple(range(55, 60))),
        ("upper_outer_lip", tuple(range(76, 83))),
        ("upper_inner_lip", (88, 89, 90, 91, 92)),
        ("lower_outer_lip", (76, 87, 86, 85, 84, 83, 82)),
        ("lower_inner_lip", (88, 95, 94, 93, 92)),
    ),
    29: (
        ("upper_left_eyebrow", (0, 4, 2)),
        ("lower_left_eyebrow", (0, 5, 2)),
        ("upper_right_eyebrow", (1, 6, 3)),
        ("lower_right_eyebrow", (1, 7, 3)),
        ("upper_left_eye", (8, 12, 10)),
        ("lower_left_eye", (8, 13, 10)),
        ("upper_right_eye", (9, 14, 11)),
        ("lower_right_eye", (9, 15, 11)),
        ("nose", (18, 21, 19)),
        ("outer_upper_lip", (22, 24, 23)),
        ("inner_upper_lip", (22, 25, 23)),
        ("outer_lower_lip", (22, 26, 23)),
        ("inner_lower_lip", (22, 27, 23)),
    ),
    19: (
        ("left_eyebrow", (0, 1, 2)),
        ("right_eyebrow", (3, 4)),  # sic: the repository's slice 3:5 leaves out landmark 5
        ("left_eye", (6, 7, 8)),
        ("right_eye", (9, 10, 11)),
        ("nose", (12, 13, 14)),
    ),
}


def face_boundaries(num_landmarks: int, /) -> tuple[tuple[int, ...], ...]:
    """The facial-part chains of Adaptive Wing's boundary target, for a landmark layout.

    Each chain is an ordered tuple of landmark indices; :func:`encode_boundaries` draws the
    polyline through them. The chains and their order are the AdaptiveWingLoss repository's
    (``data/dataloader.py``, ``AddBoundary``):

    - 68 (300W) and 98 (WFLW), 13 chains: cheek, left and right eyebrow, upper and lower left
      eyelid, upper and lower right eyelid, nose bridge, nose bottom, upper outer, upper inner,
      lower outer and lower inner lip. WFLW's eyebrows are their upper contours (33-37,
      42-46), as there.
    - 29 (COFW), 13 three-point chains: upper and lower contour of each eyebrow and eye, the
      nose, and four lip contours between the mouth corners 22 and 23.
    - 19 (AFLW), 5 chains: eyebrows, eyes, nose. The right eyebrow is ``(3, 4)``: the
      repository slices ``3:5`` and leaves out landmark 5; pass your own chains to include it.

    Args:
        num_landmarks: 68, 98, 29 or 19.

    Returns:
        A tuple of chains, each a tuple of ints, usable as ``boundaries=`` (add, remove or
        reorder chains freely).

    >>> face_boundaries(19)
    ((0, 1, 2), (3, 4), (6, 7, 8), (9, 10, 11), (12, 13, 14))
    """
    if isinstance(num_landmarks, bool) or not isinstance(num_landmarks, int):
        raise TypeError(f"num_landmarks must be an int, one of 68, 98, 29, 19, got {num_landmarks!r}")
    if num_landmarks not in _BOUNDARIES:
        raise ValueError(
            f"num_landmarks must be one of 68 (300W), 98 (WFLW), 29 (COFW) or 19 (AFLW), the layouts "
            f"Adaptive Wing defines boundaries for, got {num_landmarks!r}; pass your own chains as boundaries="
        )
    return tuple(chain for _, chain in _BOUNDARIES[num_landmarks])


class BoundaryTargets(NamedTuple):
    """What :func:`encode_boundaries` returns."""

    heatmaps: Array
    """``(..., C, H, W)``: ``C = 1`` by default, one channel per chain with ``per_chain=True``."""
    weights: Array
    """``(..., C)``: 1 where every landmark of the channel's chains is visible and finite (and no
    segment too long to measure), else 0."""


def _chains(boundaries: Chains, num_landmarks: int) -> tuple[tuple[int, ...], ...]:
    """``boundaries`` as a tuple of int tuples, checked against the number of landmarks."""
    if isinstance(boundaries, (str, bytes)) or not isinstance(boundaries, Sequence):
        raise TypeError(
            f"boundaries must be a sequence of chains (sequences of landmark indices), e.g. face_boundaries(68), got {boundaries!r}"
        )
    if len(boundaries) == 0:
        raise ValueError("boundaries must hold at least one chain, got none")
    out = []
    for c, chain in enumerate(boundaries):
        if isinstance(chain, (str, bytes)) or not isinstance(chain, Sequence):
            raise TypeError(f"boundaries[{c}] must be a sequence of landmark indices, got {chain!r}")
        try:
            idx = check.indices(chain, None)
        except TypeError:
            raise TypeError(f"boundaries[{c}] must hold int landmark indices, got {chain!r}") from None
        if len(idx) < 2:
            raise ValueError(f"boundaries[{c}] must hold at least 2 landmark indices (a polyline), got {chain!r}")
        try:
            check.indices(idx, num_landmarks)
        except ValueError as err:
            raise ValueError(
                f"boundaries[{c}] indices must lie in [0, {num_landmarks}) for coords with K={num_landmarks} landmarks, got {err.args[0]}"
            ) from None
        out.append(idx)
    return tuple(out)


@_xp.non_finite_settled
def encode_boundaries(
    coords: Array,
    /,
    *,
    heatmap_size: Sequence[int],
    boundaries: Chains,
    sigma: float = 1.0,
    truncate: float = 3.0,
    per_chain: bool = False,
    weights: Array | None = None,
) -> BoundaryTargets:
    """Boundary heatmaps: a Gaussian of the exact distance from each pixel centre to the
    polylines through the landmark chains (Adaptive Wing's boundary target; LAB's with
    ``per_chain=True``).

    For a chain with points ``P_0 .. P_n`` the distance of pixel centre ``q = (j, i)`` is the
    minimum over its segments of the closed-form point-to-segment distance::

        t = clip(((q - P_s) . (P_{s+1} - P_s)) / |P_{s+1} - P_s|^2, 0, 1)
        d_s(q) = |q - P_s - t (P_{s+1} - P_s)|

    and the map is ``exp(-d^2 / (2 sigma^2))`` where ``d < truncate * sigma``, else 0. The
    cut-off is exact where the nearest point is a segment's end, or the segment is horizontal or
    vertical (``d`` is then the difference of two exact coordinates); elsewhere ``d`` carries the
    float rounding of the projection, a few units in the last place.
    By default one channel, the maximum over chains (the single boundary channel
    Adaptive Wing's network predicts and its loss map weights); ``per_chain=True`` one channel per
    chain. Landmarks are used at their sub-pixel positions (the repository floors them to the
    grid first, up to a pixel of shift).

    Missing landmarks break their chain: a segment is drawn only when both its end points are
    visible and finite, so a chain with an occluded landmark keeps its other segments, and the
    channel's weight is 0 (its target is incomplete). A segment whose length overflows (end
    points near the float maximum, ~1e308 apart) is not drawn either and also zeroes the weight;
    a segment of any finite length, however short, is measured exactly. Landmarks outside the map
    are drawn (a cheek contour may leave the crop); the map shows the part of the polyline near
    it.

    Cost: one ``(..., S, H, W)`` pass for the ``S`` segments of all chains (about 60 for the
    13 chains of 300W), vectorized over pixels, segments and batch; the loop over chains of
    ``per_chain=True`` runs over the layout's chains, never over landmarks or batch items.

    Args:
        coords: ``(..., K, 2)`` landmark ``(x, y)`` in heatmap pixels, real floating.
        heatmap_size: ``(W, H)``.
        boundaries: the chains, e.g. ``face_boundaries(K)`` (:func:`face_boundaries`): a sequence of
            sequences of at least two landmark indices in ``[0, K)``.
        sigma: the Gaussian's standard deviation in heatmap pixels (the paper's 1).
        truncate: the cut-off in units of sigma, > 0 (the paper's 3).
        per_chain: one channel per chain (True) or one for all chains (False, the default).
        weights: optional ``(..., K)`` per-landmark weights or visibility (bool or numeric);
            0 leaves the landmark out.

    Returns:
        :class:`BoundaryTargets` ``(heatmaps, weights)``: ``(..., C, H, W)`` with values in
        [0, 1] (1 on the polyline) and ``(..., C)``, in the coordinates' dtype and device.

    Convention:
        Heatmap pixels, integers at pixel centres, ``(x, y)`` order; sizes are ``(W, H)``.

    >>> import numpy as np
    >>> maps, weights = encode_boundaries(np.array([[0.0, 1.0], [4.0, 1.0]]), heatmap_size=(5, 3),
    ...                                   boundaries=[(0, 1)], sigma=1.0)
    >>> np.round(maps[0], 3).tolist(), weights.tolist()
    ([[0.607, 0.607, 0.607, 0.607, 0.607], [1.0, 1.0, 1.0, 1.0, 1.0], [0.607, 0.607, 0.607, 0.607, 0.607]], [1.0])
    """
    xp = _xp.namespace(coords=coords, weights=weights)
    check.coords(xp, coords)
    w, h = check.size(heatmap_size)
    sigma = check.sigma(sigma)
    truncate = check.positive(truncate, "truncate")
    per_chain = check.boolean(per_chain, "per_chain")
    chains = _chains(boundaries, coords.shape[-2])
    if weights is not None:
        check.numeric(xp, weights, "weights")
        check.same_shape(weights, coords.shape[:-1], "weights", "coords.shape[:-1], one value per landmark")
    options = {"size": (w, h), "sigma": sigma, "truncate": truncate, "per_chain": per_chain, "chains": chains}
    return _xp.in_float32(xp, boundary_targets, coords, weights=weights, **options)


def boundary_targets(
    xp: Any,
    coords: Array,
    *,
    weights: Array | None,
    size: tuple[int, int],
    sigma: float,
    truncate: float,
    per_chain: bool,
    chains: tuple[tuple[int, ...], ...],
) -> BoundaryTargets:
    """Kernel of :func:`encode_boundaries` (inputs checked, chains from ``_chains``)."""
    w, h = size
    dev, dtype = _xp.device(coords), coords.dtype
    valid = xp.all(xp.isfinite(coords), axis=-1)
    if weights is not None:
        valid = valid & _xp.marked(xp, weights)
    zero = xp.zeros((), dtype=dtype, device=dev)
    safe = xp.where(valid[..., None], coords, zero)

    starts = np.array([c[s] for c in chains for s in range(len(c) - 1)], dtype=np.int64)
    ends = np.array([c[s + 1] for c in chains for s in range(len(c) - 1)], dtype=np.int64)
    a = xp.take(safe, xp.asarray(starts, device=dev), axis=-2)  # (..., S, 2)
    b = xp.take(safe, xp.asarray(ends, device=dev), axis=-2)
    drawn = xp.take(valid, xp.asarray(starts, device=dev), axis=-1) & xp.take(
        valid, xp.asarray(ends, device=dev), axis=-1
    )
    d2, measurable = _segment_distance2(xp, a, b, w, h)  # (..., S, H, W)
    far = xp.asarray(math.inf, dtype=dtype, device=dev)
    d2 = xp.where((drawn & measurable)[..., None, None], d2, far)

    if not per_chain:
        groups = [(0, d2.shape[-3])]
        members = [sorted({i for c in chains for i in c})]
    else:
        bounds = np.cumsum([0] + [len(c) - 1 for c in chains])
        groups = list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))
        members = [sorted(set(c)) for c in chains]
    nearest = xp.stack([xp.min(d2[..., s:e, :, :], axis=-3) for s, e in groups], axis=-3)
    radius = truncate * sigma
    cut = radius * radius if radius < 1e150 else math.inf  # no cut beyond any map
    maps = xp.where(nearest < cut, _xp.exp_flushed(xp, xp.clip(nearest, None, cut) * (-0.5 / (sigma * sigma))), zero)
    # complete: every landmark of the channel visible and finite, every segment measurable
    complete = [
        xp.all(xp.take(valid, xp.asarray(np.array(m, dtype=np.int64), device=dev), axis=-1), axis=-1)
        & xp.all(measurable[..., s:e], axis=-1)
        for m, (s, e) in zip(members, groups)
    ]
    return BoundaryTargets(maps, xp.astype(xp.stack(complete, axis=-1), dtype))


def _segment_distance2(xp: Any, a: Array, b: Array, w: int, h: int) -> tuple[Array, Array]:
    """Squared distance ``(..., S, H, W)`` from every pixel centre to each segment ``a -> b``,
    and ``(..., S)`` whether the segment's length is finite (a segment between points near the
    float maximum overflows it, and its distances would be NaN: it is not drawn).

    Measured along the unit direction ``u = (b - a) / |b - a|``: the projection ``(q - a) . u``
    clipped to ``[0, |b - a|]``. No squared length enters, so a segment shorter than the square
    root of the smallest float (whose square would be subnormal or 0) is measured as exactly as
    any other; a point segment (``a == b``) is the distance to the point.
    """
    gx = _common.grid(xp, w, a)  # (W,)
    gy = _common.grid(xp, h, a)  # (H,)
    dx, dy = b[..., 0] - a[..., 0], b[..., 1] - a[..., 1]  # (..., S)
    length = xp.hypot(dx, dy)
    one = xp.ones((), dtype=a.dtype, device=_xp.device(a))
    # divided, not multiplied by 1 / length: a subnormal length's reciprocal overflows
    positive = xp.where(length > 0, length, one)
    ux, uy = dx / positive, dy / positive  # 0 for a point segment
    rx = gx - a[..., 0][..., None]  # (..., S, W)
    ry = gy - a[..., 1][..., None]  # (..., S, H)
    # the projection (q - a) . u, separable before the clip
    px = (rx * ux[..., None])[..., None, :]  # (..., S, 1, W)
    py = (ry * uy[..., None])[..., :, None]  # (..., S, H, 1)
    projection = px + py
    t = xp.clip(projection, xp.zeros((), dtype=a.dtype, device=_xp.device(a)), length[..., None, None])
    ex = rx[..., None, :] - t * ux[..., None, None]
    ey = ry[..., :, None] - t * uy[..., None, None]
    # Nearest to an end: the difference to that end, exactly (length * u rounds off the end, and a
    # pixel exactly truncate * sigma from it would be drawn)
    end = projection >= length[..., None, None]
    start = projection <= 0
    ex = xp.where(start, rx[..., None, :], xp.where(end, (gx - b[..., 0][..., None])[..., None, :], ex))
    ey = xp.where(start, ry[..., :, None], xp.where(end, (gy - b[..., 1][..., None])[..., :, None], ey))
    return ex * ex + ey * ey, xp.isfinite(length)


def coordinate_channels(
    heatmap_size: Sequence[int],
    /,
    *,
    boundary: Array | None = None,
    threshold: float = 0.05,
    with_r: bool = False,
    like: Array | None = None,
) -> Array:
    """CoordConv's coordinate channels on Adaptive Wing's grid, optionally with boundary
    coordinates (Liu et al., "An Intriguing Failing of Convolutional Neural Networks and the
    CoordConv Solution", NeurIPS 2018; Wang et al., ICCV 2019, section 3.4).

    Channels, in this order::

        x = 2 j / (W - 1) - 1,  y = 2 i / (H - 1) - 1       always
        r = sqrt(x^2 + y^2) / sqrt(2)                        with_r=True (scaled to max 1)
        x_b = x where boundary > threshold else 0, y_b       with a boundary map

    so 2, 3, 4 or 5 channels, as the AdaptiveWingLoss repository's ``AddCoordsTh`` builds them.

    Args:
        heatmap_size: ``(W, H)``, both >= 2 (the grid puts -1 and 1 on the first and last pixel
            centres).
        boundary: optional ``(..., H, W)`` boundary heatmap (the network's predicted boundary
            channel, e.g. ``heatmaps[:, -1]``); its library, dtype and device are the result's.
        threshold: where ``boundary`` exceeds it, a pixel is on the boundary (the paper's 0.05).
        with_r: add the radius channel.
        like: without ``boundary``, an array whose library, floating dtype and device the
            channels take (default: NumPy float64).

    Returns:
        ``(C, H, W)`` without a boundary (broadcast it to a batch with the batch's leading axes),
        ``(..., C, H, W)`` with one.

    Convention:
        This grid is corner-aligned: x = -1 at the first pixel centre and +1 at the last, as
        CoordConv and the repository define it, unlike the pixel-centre heatmap coordinates
        of the rest of this library (``x_grid = 2 x_heatmap / (W - 1) - 1``). Channel 0 varies
        along W (x), channel 1 along H (y); the repository's ``AddCoordsTh`` appends them in
        the other order (its first channel varies along the rows), so a checkpoint of it wants
        channels ``[1, 0, ...]`` (and ``[..., 4, 3]`` for the boundary pair).

    >>> import numpy as np
    >>> coordinate_channels((3, 2)).tolist()
    [[[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]], [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]]
    """
    w, h = check.size(heatmap_size)
    if w < 2 or h < 2:
        raise ValueError(
            f"heatmap_size must be at least (2, 2) (the grid maps the first and last pixel centres to -1 and 1), got {heatmap_size!r}"
        )
    threshold = check.finite(threshold, "threshold")
    with_r = check.boolean(with_r, "with_r")
    if boundary is not None:
        xp = _xp.namespace(boundary=boundary)
        if boundary.ndim < 2 or tuple(boundary.shape[-2:]) != (h, w):
            raise ValueError(
                f"boundary must have shape (..., H, W) = (..., {h}, {w}) for heatmap_size={heatmap_size!r}, got shape {tuple(boundary.shape)}"
            )
        check.floating(xp, boundary, "boundary")
        dtype, dev = boundary.dtype, _xp.device(boundary)
    elif like is not None:
        xp = _xp.namespace(like=like)
        check.floating(xp, like, "like")
        dtype, dev = like.dtype, _xp.device(like)
    else:
        xp = _xp.namespace(like=np.zeros(0))
        dtype, dev = xp.float64, None
    # as the repository: j / (W - 1) * 2 - 1; in float32 for 16-bit dtypes, rounded once
    work = _xp.work_dtype(xp, dtype)
    x = xp.arange(w, dtype=work, device=dev) / (w - 1) * 2 - 1
    y = xp.arange(h, dtype=work, device=dev) / (h - 1) * 2 - 1
    xx = xp.broadcast_to(x[None, :], (h, w))
    yy = xp.broadcast_to(y[:, None], (h, w))
    channels = [xx, yy]
    if with_r:
        channels.append(xp.sqrt(xx * xx + yy * yy) / math.sqrt(2.0))
    grid = xp.astype(xp.stack(channels, axis=0), dtype)
    if boundary is None:
        return grid
    lead = tuple(boundary.shape[:-2])
    # compared in float32 for 16-bit maps: the threshold itself would round to the map's dtype
    on = ((boundary if boundary.dtype == work else xp.astype(boundary, work)) > threshold)[..., None, :, :]
    zero = xp.zeros((), dtype=dtype, device=dev)
    masked = xp.where(on, grid[:2, ...], zero)  # (..., 2, H, W)
    return xp.concat([xp.broadcast_to(grid, (*lead, *grid.shape)), masked], axis=-3)
