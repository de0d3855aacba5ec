"""PIPNet: neighbour tables from a mean shape, score/offset/neighbour targets, decoding with merging.

Pixel-in-Pixel Net (Jin, Liao and Shao, "Pixel-in-Pixel Net: Towards Efficient Facial Landmark
Detection in the Wild", IJCV 2021) predicts, on a coarse grid (stride 32: 8x8 for a 256 crop),
a score map per landmark, the landmark's ``(x, y)`` offset inside the best cell and, from that
same cell, the offsets of the landmark's ``N`` nearest neighbours on the mean shape. At test time
each landmark is merged from its own prediction and the predictions of it made by the landmarks
that have it as a neighbour ("neighbourhood regression").

Layouts (``...`` any leading batch axes, ``K`` landmarks, ``N`` neighbours, ``(Hg, Wg)`` the grid):

========================  ============================  ==========================================
array                     shape                         meaning
========================  ============================  ==========================================
``scores``                ``(..., K, Hg, Wg)``           score map (target: one-hot at the cell)
``offsets``               ``(..., K, 2, Hg, Wg)``        landmark ``(x, y)`` minus the cell centre
``neighbor_offsets``      ``(..., K, N, 2, Hg, Wg)``     neighbour ``n``'s ``(x, y)`` minus the
                                                         same cell's centre (``n = index[k, m]``)
``offset_weights``        ``(..., K, Hg, Wg)``           where (and how much) the offset loss
                                                         applies: the landmark's cell only
``neighbor_weights``      ``(..., K, N)``                weight of each neighbour-offset term
                                                         (applied at the same cell)
``weights``               ``(..., K)``                   per-landmark weight of the score loss
========================  ============================  ==========================================

A PIPNet head's channels map onto these by a reshape and a stack, e.g. with torch
``offsets = torch.stack([x, y], dim=-3)`` for ``x, y`` of shape ``(B, K, Hg, Wg)`` and
``neighbor_offsets = torch.stack([nb_x, nb_y], dim=-3).unflatten(1, (K, N))`` for ``nb_x,
nb_y`` of shape ``(B, K * N, Hg, Wg)`` (the original repository's channel ``N * k + m``).

Convention:
    Grid coordinates are heatmap coordinates on the grid: ``(x, y)`` in cell units, an integer
    is a cell *centre*, the valid range is ``[-0.5, Wg - 0.5) x [-0.5, Hg - 0.5)``; convert from
    image pixels with ``image_to_heatmap(..., heatmap_size=grid_size)`` (``"pixel_center"``).
    A landmark's cell is the one containing it, ``floor(x + 0.5)``, and its offset lies in
    ``[-0.5, 0.5)``. The original repository's grid is corner-based: its grid coordinate is
    ``x + 0.5`` (``image_to_heatmap(..., convention="legacy")`` of the image point), the cell is
    the same one, and its own and neighbour offsets, measured from the cell's top-left corner,
    are ours plus 0.5 (docs/pipnet.md says how to reproduce it exactly).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from . import _common, _xp
from . import _validation as check
from ._xp import Array

Merge = Literal["mean", "original", "none"]

__all__ = ["PIPNetNeighbors", "PIPNetTargets", "decode_pipnet", "encode_pipnet", "pipnet_loss", "pipnet_neighbors"]

_MERGES = ("mean", "original", "none")


class PIPNetNeighbors(NamedTuple):
    """The neighbour table of a mean shape (from :func:`pipnet_neighbors`).

    Attributes:
        index: ``(K, N)`` integer; ``index[k, m]`` is landmark ``k``'s ``m``-th nearest neighbour.
        reverse_index: ``(K, R)`` integer; row ``t`` lists the predictions of landmark ``t`` made
            by others, as flat indices ``k * N + m`` with ``index[k, m] == t`` (ascending), repeated
            cyclically to the longest such list, ``R = reverse_count.max()`` (the original
            repository's padding). A landmark nobody has as a neighbour has an all-zero row.
        reverse_count: ``(K,)`` integer; how many predictions of each landmark the others make.
    """

    index: Array
    reverse_index: Array
    reverse_count: Array


class PIPNetTargets(NamedTuple):
    """The training targets of :func:`encode_pipnet` (shapes in :mod:`landmark_codecs.pipnet`).

    The first three are what the network predicts, so ``decode_pipnet(*targets[:3], ...)``
    decodes them; :func:`pipnet_loss` takes the whole tuple.
    """

    scores: Array
    offsets: Array
    neighbor_offsets: Array
    offset_weights: Array
    neighbor_weights: Array
    weights: Array


def pipnet_neighbors(mean_shape: Array, /, *, num_neighbors: int = 10) -> PIPNetNeighbors:
    """Each landmark's ``num_neighbors`` nearest other landmarks on the mean shape, and the reverse table.

    Distances are Euclidean, in float64 (``hypot``: no underflow, no overflow); two whose exact
    values differ by less than float64 rounding, relative ``2**-51``, may tie or swap; a landmark is never its own neighbour;
    ties are broken by the lower landmark index (a stable sort), so the table is deterministic,
    and duplicate points are each other's nearest neighbours. Without ties this is the original
    repository's table (its ``argsort(...)[1:1 + N]`` skips the first entry, assuming it is the
    landmark itself, which a duplicate point can break). The table is built on the host, once;
    its arrays come back in ``mean_shape``'s library and on its device, ready for
    :func:`encode_pipnet` and :func:`decode_pipnet` on that device.

    Args:
        mean_shape: ``(K, 2)`` ``(x, y)`` of the mean shape, any units (the PIPNet files hold
            ``[0, 1]``-normalized ones: ``np.loadtxt(f).reshape(-1, 2)``); finite, ``K >= 2``.
        num_neighbors: ``N``, with ``1 <= N < K``.

    Returns:
        :class:`PIPNetNeighbors` ``(index, reverse_index, reverse_count)``, int64.

    >>> import numpy as np
    >>> table = pipnet_neighbors(np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]]), num_neighbors=1)
    >>> table.index.tolist(), table.reverse_index.tolist(), table.reverse_count.tolist()
    ([[1], [0], [1]], [[1, 1], [0, 2], [0, 0]], [1, 2, 0])
    """
    if isinstance(mean_shape, (np.ndarray, list, tuple)):
        xp, dev = None, None
    else:
        xp = _xp.namespace(mean_shape=mean_shape)
        dev = _xp.device(mean_shape)
    points = _xp.to_host(mean_shape, "mean_shape")
    if points.ndim != 2 or points.shape[-1] != 2:
        raise ValueError(f"mean_shape must have shape (K, 2) with (x, y) in the last axis, got shape {points.shape}")
    if points.dtype.kind not in "iuf":
        raise TypeError(f"mean_shape must hold real numbers, got dtype {points.dtype}")
    k = points.shape[0]
    if k < 2:
        raise ValueError(f"mean_shape needs at least 2 landmarks to have neighbours, got shape {points.shape}")
    check.positive_int(num_neighbors, "num_neighbors")
    if num_neighbors >= k:
        raise ValueError(
            f"num_neighbors must be less than K = {k} (a landmark is not its own neighbour), got {num_neighbors}"
        )
    points = points.astype(np.float64)
    bad = ~np.isfinite(points).all(axis=-1)
    if bad.any():
        raise ValueError(f"mean_shape must be finite, got NaN or inf at landmarks {np.flatnonzero(bad).tolist()}")
    # hypot neither underflows (a subnormal shape, or tiny distances in a large one: squares would)
    # nor overflows; halving (exact for normal numbers) keeps the differences finite.
    if np.abs(points).max() >= 2.0**1022:
        points = points * 0.5
    dist = np.hypot(points[:, None, 0] - points[None, :, 0], points[:, None, 1] - points[None, :, 1])
    np.fill_diagonal(dist, np.inf)
    index = np.argsort(dist, axis=1, kind="stable")[:, :num_neighbors]
    # Group the K*N predictions by the landmark they predict, in ascending flat order.
    flat = index.reshape(-1)
    order = np.argsort(flat, kind="stable")
    count = np.bincount(flat, minlength=k)
    start = np.cumsum(count) - count
    r = np.arange(count.max())
    cyclic = start[:, None] + r[None, :] % np.maximum(count, 1)[:, None]
    reverse = np.where(count[:, None] > 0, order[np.minimum(cyclic, flat.size - 1)], 0)
    arrays = (index.astype(np.int64), reverse.astype(np.int64), count.astype(np.int64))
    if xp is None:
        return PIPNetNeighbors(*arrays)
    return PIPNetNeighbors(*(xp.asarray(a, device=dev) for a in arrays))


def encode_pipnet(
    coords: Array,
    /,
    *,
    grid_size: Sequence[int],
    neighbors: PIPNetNeighbors | Array,
    weights: Array | None = None,
) -> PIPNetTargets:
    """PIPNet training targets: one-hot score maps, own and neighbour offsets at the landmark's cell.

    For landmark ``k`` at ``(x, y)`` in cell ``c = (floor(x + 0.5), floor(y + 0.5))``::

        scores[k, c] = 1                  offsets[k, :, c] = (x, y) - c
        neighbor_offsets[k, m, :, c] = (x, y)[index[k, m]] - c          (0 elsewhere)
        offset_weights[k, c] = weights[k]       neighbor_weights[k, m] = weights[k] if index[k, m] is kept

    A landmark is *kept* when it is finite, inside the grid's valid range and of non-zero weight; the others
    get weight 0 and all-zero maps and offset weights, and the neighbour terms that point at them get
    weight 0 (and a zero target), so a missing landmark never corrupts another's targets. The
    neighbour terms' weights are kept per term, ``(..., K, N)``, not as ``N`` more maps: they
    apply at the cell where ``offset_weights`` is non-zero.

    Args:
        coords: ``(..., K, 2)`` landmark ``(x, y)`` in grid cells (see Convention), real floating.
        grid_size: ``(Wg, Hg)``.
        neighbors: the table from :func:`pipnet_neighbors`, or its ``(K, N)`` integer
            ``index`` array with values in ``[0, K)`` (in ``coords``' library, or NumPy or a
            nested list, which are checked and copied to ``coords``' device). A table already
            on a device is not read back to check it (a host round-trip): an entry outside
            ``[0, K)`` makes that neighbour's offset targets NaN, never another landmark's.
        weights: optional ``(..., K)`` per-landmark weights or visibility (bool or numeric);
            0 leaves the landmark out.

    Returns:
        :class:`PIPNetTargets` ``(scores, offsets, neighbor_offsets, offset_weights, neighbor_weights,
        weights)`` in ``coords``' dtype and on its device.

    Convention:
        Grid cells, integers at cell centres, ``(x, y)`` order; offsets in cell units in
        ``[-0.5, 0.5)``; sizes are ``(W, H)``. See :mod:`landmark_codecs.pipnet` for the original
        repository's corner-based offsets.

    Reference:
        H. Jin, S. Liao and L. Shao, "Pixel-in-Pixel Net: Towards Efficient Facial Landmark
        Detection in the Wild", IJCV 2021.

    >>> import numpy as np
    >>> table = pipnet_neighbors(np.array([[0.0, 0.0], [1.0, 0.0]]), num_neighbors=1)
    >>> t = encode_pipnet(np.array([[0.75, 0.0], [1.25, 0.5]]), grid_size=(2, 2), neighbors=table)
    >>> t.scores[0].tolist(), t.offsets[0, :, 0, 1].tolist(), t.neighbor_offsets[0, 0, :, 0, 1].tolist()
    ([[0.0, 1.0], [0.0, 0.0]], [-0.25, 0.0], [0.25, 0.5])
    """
    size = check.size(grid_size, "grid_size")
    xp = _xp.namespace(coords=coords, weights=weights)
    _common.check_landmarks(xp, coords, weights)
    index = neighbors.index if isinstance(neighbors, PIPNetNeighbors) else neighbors
    if isinstance(index, (list, tuple)):
        index = np.asarray(index)
    if not _xp.is_array(index):
        raise TypeError(
            f"neighbors must be the table from pipnet_neighbors or its (K, N) index array, got {type(index).__qualname__}"
        )
    index, outside = _index(xp, index, coords, coords.shape[-2], "coords")
    return _xp.in_float32(xp, pipnet_targets, coords, weights=weights, size=size, index=index, outside=outside)


def pipnet_targets(
    xp: Any, coords: Array, *, weights: Array | None, size: tuple[int, int], index: Array, outside: Array | None
) -> PIPNetTargets:
    """Kernel of :func:`encode_pipnet` (inputs checked; ``index`` and ``outside`` from ``_index``)."""
    w, h = size
    safe, weights, keep = _common.landmark_weights(xp, coords, weights, size)
    k = coords.shape[-2]
    n = index.shape[1]
    lead = tuple(coords.shape[:-2])
    dev = _xp.device(coords)
    zero = xp.zeros((), dtype=coords.dtype, device=dev)
    # Per axis, on contiguous (..., K) and (..., K*N) arrays: NumPy is slow on a last axis of 2.
    x, y = safe[..., 0], safe[..., 1]
    # The cell containing the landmark, floor(c + 0.5); the min only matters for the last float
    # below W - 0.5, where c + 0.5 rounds to W.
    cx = xp.minimum(xp.floor(x + 0.5), xp.asarray(w - 1.0, dtype=coords.dtype, device=dev))
    cy = xp.minimum(xp.floor(y + 0.5), xp.asarray(h - 1.0, dtype=coords.dtype, device=dev))
    at = xp.astype(cy, xp.int64) * w + xp.astype(cx, xp.int64)  # flat cell index (..., K)
    own = xp.stack([x - cx, y - cy], axis=-1)  # 0 for a landmark not kept (safe = 0, cell 0)
    term = xp.reshape(index, (k * n,))  # the neighbour of term j = k * N + m ...
    by = xp.arange(k * n, dtype=term.dtype, device=dev) // n  # ... and the landmark it is predicted from
    used = xp.take(keep, by, axis=-1) & xp.take(keep, term, axis=-1)  # (..., K*N)
    nx = xp.where(used, xp.take(x, term, axis=-1) - xp.take(cx, by, axis=-1), zero)
    ny = xp.where(used, xp.take(y, term, axis=-1) - xp.take(cy, by, axis=-1), zero)
    if outside is not None:  # a device table's entry outside [0, K): NaN targets, not another landmark's
        bad = xp.reshape(outside, (k * n,))
        nan = xp.asarray(math.nan, dtype=coords.dtype, device=dev)
        nx, ny = xp.where(bad, nan, nx), xp.where(bad, nan, ny)
    neighbor_own = xp.reshape(xp.stack([nx, ny], axis=-1), (*lead, k, n, 2))
    # Zeros everywhere but the landmark's cell: written there, not compared against every cell.
    return PIPNetTargets(
        scores=_maps(xp, xp.astype(keep, coords.dtype), at, (h, w)),
        offsets=_maps(xp, own, at[..., None], (h, w)),
        neighbor_offsets=_maps(xp, neighbor_own, at[..., None, None], (h, w)),
        offset_weights=_maps(xp, weights, at, (h, w)),
        neighbor_weights=xp.reshape(xp.where(used, xp.take(weights, by, axis=-1), zero), (*lead, k, n)),
        weights=weights,
    )


def _maps(xp: Any, values: Array, at: Array, size: tuple[int, int]) -> Array:
    """``(*S, H, W)`` zeros with ``values`` (shape ``S``) at the flat cell ``at`` (broadcast to ``S``)."""
    out = _xp.place_last(xp, values, at, size[0] * size[1])
    return xp.reshape(out, (*out.shape[:-1], *size))


def decode_pipnet(
    scores: Array,
    offsets: Array,
    neighbor_offsets: Array,
    /,
    *,
    neighbors: PIPNetNeighbors,
    merge: Merge = "mean",
) -> _common.DecodedLandmarks:
    """PIPNet decoding: the best cell, the offset there, merged with the neighbours' predictions.

    Landmark ``k``'s best cell ``c_k`` is its score map's argmax (the first in row-major order
    on ties); its own prediction is ``c_k + offsets[k, :, c_k]``; landmark ``k`` predicts its
    neighbour ``t = index[k, m]`` at ``c_k + neighbor_offsets[k, m, :, c_k]``. With ``P_t`` the
    ``L_t = reverse_count[t]`` predictions of ``t`` by others and ``R = max_t L_t``:

    - ``merge="mean"``: the plain mean of the own prediction and the ``L_t`` others, each
      ``1 / (1 + L_t)``.
    - ``merge="original"``: the original repository's: ``P_t`` repeated cyclically to ``R``
      entries, then the mean of the own prediction and those ``R``: the own prediction weighs
      ``1 / (1 + R)`` whatever ``L_t`` is, and when ``R`` is not a multiple of ``L_t`` the first
      ``R mod L_t`` predictors (in landmark order) count once more than the rest, so unless
      every ``L_t`` divides ``R`` this merge depends on the order of the landmarks, not only on
      the shape. (A landmark nobody predicts gets its own prediction; the original fails there.)
    - ``merge="none"``: the own prediction only.

    Everything is computed relative to ``c_t``, so exact targets decode exactly up to float
    rounding: within 1e-5 cells in float32 for grids up to 64 cells a side.

    Args:
        scores: ``(..., K, Hg, Wg)`` real floating score maps (any monotone scale: logits,
            probabilities).
        offsets: ``(..., K, 2, Hg, Wg)`` own ``(x, y)`` offsets from the cell centre.
        neighbor_offsets: ``(..., K, N, 2, Hg, Wg)`` neighbour offsets from the same cell centre.
        neighbors: the table from :func:`pipnet_neighbors` (NumPy, checked, or the arrays'
            library on their device, not read back: an entry outside its range makes the merged
            landmarks it reaches NaN, never a wrap-around to another landmark).
        merge: ``"mean"``, ``"original"`` or ``"none"``.

    Returns:
        ``(coords, scores)``: ``(..., K, 2)`` ``(x, y)`` in grid cells in the promoted dtype of the
        offsets, and the ``(..., K)`` maximum score, on the arrays' device. A landmark has no
        cell when its score map holds a NaN (its score is then NaN) or, on a grid of more than
        one cell, is constant (no cell stands out: the all-zero target :func:`encode_pipnet`
        gives a missing landmark, a dead output). Such a landmark gets NaN coordinates, and its
        predictions of its neighbours are left out of their merge (each then averages the
        predictions that remain), so it moves no other landmark; a NaN offset reaches only the
        landmarks it predicts.

    Convention:
        Grid cells, integers at cell centres, ``(x, y)`` order; see :mod:`landmark_codecs.pipnet`.

    Reference:
        H. Jin, S. Liao and L. Shao, "Pixel-in-Pixel Net: Towards Efficient Facial Landmark
        Detection in the Wild", IJCV 2021.

    >>> import numpy as np
    >>> table = pipnet_neighbors(np.array([[0.0, 0.0], [1.0, 0.0]]), num_neighbors=1)
    >>> t = encode_pipnet(np.array([[0.75, 0.0], [1.25, 0.5]]), grid_size=(2, 2), neighbors=table)
    >>> coords, scores = decode_pipnet(t.scores, t.offsets, t.neighbor_offsets, neighbors=table)
    >>> coords.tolist(), scores.tolist()
    ([[0.75, 0.0], [1.25, 0.5]], [1.0, 1.0])
    """
    check.choice(merge, "merge", _MERGES)
    if not isinstance(neighbors, PIPNetNeighbors):
        raise TypeError(
            f"neighbors must be the PIPNetNeighbors table from pipnet_neighbors (decoding needs its reverse index), "
            f"got {type(neighbors).__qualname__}"
        )
    xp = _xp.namespace(scores=scores, offsets=offsets, neighbor_offsets=neighbor_offsets)
    scores, offsets, neighbor_offsets, plan = check_outputs(xp, scores, offsets, neighbor_offsets, neighbors)
    return _xp.in_float32(xp, pipnet_coords, scores, offsets, neighbor_offsets, merge=merge, **plan)


def check_outputs(
    xp: Any, scores: Array, offsets: Array, neighbor_offsets: Array, neighbors: PIPNetNeighbors
) -> tuple[Array, Array, Array, dict[str, Any]]:
    """The boundary's checks of PIPNet's outputs against the table: the outputs promoted to one
    dtype, and the table on their device as :func:`pipnet_coords` takes it."""
    check.heatmaps(xp, scores, "scores")
    check.floating(xp, offsets, "offsets")
    check.floating(xp, neighbor_offsets, "neighbor_offsets")
    scores, offsets, neighbor_offsets = check.promoted(xp, scores, offsets, neighbor_offsets)
    index, outside = _index(xp, neighbors.index, scores, scores.shape[-3], "scores")
    reverse, count = _reverse(xp, neighbors, index.shape, scores)
    lead, (k, h, w) = tuple(scores.shape[:-3]), tuple(scores.shape[-3:])
    n = index.shape[1]
    check.same_shape(
        offsets, (*lead, k, 2, h, w), "offsets", "(..., K, 2, Hg, Wg) for scores of shape (..., K, Hg, Wg)"
    )
    check.same_shape(
        neighbor_offsets,
        (*lead, k, n, 2, h, w),
        "neighbor_offsets",
        f"(..., K, N, 2, Hg, Wg) with N = {n} neighbours in the table",
    )
    plan = {"index": index, "outside": outside, "reverse": reverse, "count": count}
    return scores, offsets, neighbor_offsets, plan


def pipnet_coords(
    xp: Any,
    scores: Array,
    offsets: Array,
    neighbor_offsets: Array,
    *,
    merge: str,
    index: Array,
    outside: Array | None,
    reverse: Array,
    count: Array,
) -> _common.DecodedLandmarks:
    """Kernel of :func:`decode_pipnet` (outputs and table from :func:`check_outputs`)."""
    reverse_outside = None
    if outside is not None:  # a device table (see _index): the same for its reverse lists
        predictions = index.shape[0] * index.shape[1]
        reverse_outside = (reverse < 0) | (reverse >= predictions)
        reverse = xp.clip(reverse, 0, predictions - 1)
    lead, (k, h, w) = tuple(scores.shape[:-3]), tuple(scores.shape[-3:])
    n = index.shape[1]
    dtype = xp.result_type(offsets.dtype, neighbor_offsets.dtype)
    flat, anchor, best = _common.locate_maximum(xp, scores)
    # No cell: a NaN in the map, or (on a grid of more than one cell) a constant map, where no cell
    # stands out (the all-zero target of a missing landmark, a dead output channel).
    no_cell = xp.isnan(best)
    if h * w > 1:
        no_cell = no_cell | (xp.min(flat, axis=-1) == best)
    cx, cy = _common.unravel(xp, anchor, w, dtype)
    cell = xp.concat([cx, cy], axis=-1)  # (..., K, 2)
    own = _at_cell(xp, offsets, anchor[..., None, :], dtype)  # (..., K, 2)
    if merge == "none":
        return _common.DecodedLandmarks(nan_where_no_cell(xp, cell + own, no_cell), best)
    predicted = _at_cell(xp, neighbor_offsets, anchor[..., None, None, :], dtype)  # (..., K, N, 2)
    flat_index = xp.reshape(index, (k * n,))
    # Each prediction relative to the cell of the landmark it predicts: an exact integer
    # difference plus the offset, so the terms summed below are small and keep their precision.
    target_cell = xp.reshape(xp.take(cell, flat_index, axis=-2), (*lead, k, n, 2))
    relative = xp.reshape((cell[..., None, :] - target_cell) + predicted, (*lead, k * n * 2))  # x, y interleaved
    # Entry 2 * k * n holds 0: the mean merge points its padding there, so a padding entry can
    # neither count twice nor carry another landmark's NaN.
    if outside is not None:
        bad = xp.reshape(xp.broadcast_to(outside[..., None], (k, n, 2)), (k * n * 2,))
        relative = xp.where(bad, xp.asarray(math.nan, dtype=dtype, device=_xp.device(scores)), relative)
    relative = xp.concat([relative, xp.zeros((*lead, 1), dtype=dtype, device=_xp.device(scores))], axis=-1)
    # A landmark without a cell: its predictions of others are left out of their merge (which
    # then averages the rest), so it cannot move them.
    trusted = xp.broadcast_to(~no_cell[..., None, None], (*lead, k, n, 2))
    trusted = xp.concat(
        [xp.reshape(trusted, (*lead, k * n * 2)), xp.zeros((*lead, 1), dtype=xp.bool, device=_xp.device(scores))],
        axis=-1,
    )
    gather = _merge_plan(xp, reverse, count, k * n, merge)
    r = reverse.shape[1]
    flat_gather = xp.reshape(gather, (2 * k * r,))
    taken = xp.reshape(xp.take(relative, flat_gather, axis=-1), (*lead, 2, k, r))
    if reverse_outside is not None:
        taken = xp.where(
            reverse_outside[None, ...], xp.asarray(math.nan, dtype=dtype, device=_xp.device(scores)), taken
        )
    used = xp.reshape(xp.take(trusted, flat_gather, axis=-1), (*lead, 2, k, r))
    zero = xp.zeros((), dtype=dtype, device=_xp.device(scores))
    others = _xp.sum_last(xp, xp.where(used, taken, zero))  # (..., 2, K)
    scale = 1.0 / (1.0 + xp.sum(xp.astype(used, dtype), axis=-1))  # 1 / (1 + predictions merged)
    swap = (*range(len(lead)), len(lead) + 1, len(lead))  # (..., K, 2) <-> (..., 2, K)
    merged = xp.permute_dims((xp.permute_dims(own, swap) + others) * scale, swap)
    return _common.DecodedLandmarks(nan_where_no_cell(xp, cell + merged, no_cell), best)


def pipnet_loss(
    scores: Array,
    offsets: Array,
    neighbor_offsets: Array,
    targets: PIPNetTargets,
    /,
    *,
    score_weight: float = 10.0,
    offset_weight: float = 1.0,
) -> Array:
    """PIPNet's training loss: score-map MSE plus L1 on own and neighbour offsets at the landmark's cell.

    ``score_weight * MSE(scores) + offset_weight * (L1(offsets) + L1(neighbor_offsets))`` where

    - ``MSE`` is the mean squared error over the maps of landmarks with ``weights > 0``, each
      weighted by its weight (the mean divides by the weights' sum times ``Hg * Wg``);
    - ``L1`` sums ``|pred - target|`` over ``x`` and ``y`` at the cells where ``offset_weights``
      is positive, weighted by ``offset_weights`` (own offsets) or by ``neighbor_weights`` (neighbour offsets),
      and divides by the sum of those weights.

    With every landmark visible this is the original repository's loss exactly (its ``x`` and
    ``y`` L1 means are added: hence the sum over the two axes). All-zero weights give a 0 term.
    Masked-out predictions never enter the loss or its gradient, even when not finite.

    Args:
        scores, offsets, neighbor_offsets: the network's outputs, shaped as ``targets``' first
            three fields (see :mod:`landmark_codecs.pipnet`), real floating.
        targets: the :class:`PIPNetTargets` from :func:`encode_pipnet`.
        score_weight: weight of the score-map term, >= 0 (the paper's 10).
        offset_weight: weight of the offset terms, >= 0 (the paper's 1).

    Returns:
        A 0-d array in the promoted dtype of the predictions and targets (float16 and bfloat16
        are computed in float32 and the result cast back).

    >>> import numpy as np
    >>> table = pipnet_neighbors(np.array([[0.0, 0.0], [1.0, 0.0]]), num_neighbors=1)
    >>> t = encode_pipnet(np.array([[0.75, 0.0], [1.25, 0.5]]), grid_size=(2, 2), neighbors=table)
    >>> float(pipnet_loss(t.scores, t.offsets + 0.5, t.neighbor_offsets, t))  # |0.5| on x and on y
    1.0
    """
    score_weight, offset_weight = loss_weights(score_weight, offset_weight)
    if not isinstance(targets, tuple) or len(targets) != len(PIPNetTargets._fields):
        raise TypeError(f"targets must be the PIPNetTargets from encode_pipnet, got {type(targets).__qualname__}")
    targets = PIPNetTargets(*targets)
    named = {f"targets.{field}": a for field, a in targets._asdict().items()}
    xp = _xp.namespace(scores=scores, offsets=offsets, neighbor_offsets=neighbor_offsets, **named)
    for name, pred, want in (
        ("scores", scores, targets.scores),
        ("offsets", offsets, targets.offsets),
        ("neighbor_offsets", neighbor_offsets, targets.neighbor_offsets),
    ):
        check.floating(xp, pred, name)
        check.same_shape(pred, tuple(want.shape), name, f"targets.{name}'s shape")
    # The weights, as encode_pipnet shapes them for these predictions.
    lead_k, n = tuple(scores.shape[:-2]), neighbor_offsets.shape[-4] if neighbor_offsets.ndim >= 4 else 0
    for field, want in (
        ("offset_weights", tuple(scores.shape)),
        ("neighbor_weights", (*lead_k, n)),
        ("weights", lead_k),
    ):
        value = getattr(targets, field)
        check.numeric(xp, value, f"targets.{field}")
        check.same_shape(value, want, f"targets.{field}", "as encode_pipnet gives it for these predictions")
    out_dtype = xp.result_type(scores.dtype, offsets.dtype, neighbor_offsets.dtype, targets.offsets.dtype)
    work = _xp.work_dtype(xp, out_dtype)
    h, w = scores.shape[-2:]
    cast = [x if x.dtype == work else xp.astype(x, work) for x in (scores, offsets, neighbor_offsets, *targets)]
    s, o, no, ts, to, tno, offset_weights, neighbor_weights, weights = cast
    score_term = _masked_mean(xp, s, ts, weights[..., None, None], float(h * w), squared=True)
    own_term = _masked_mean(xp, o, to, offset_weights[..., None, :, :], 1.0, squared=False)
    at_cell = xp.astype(offset_weights > 0, work)[..., None, :, :]  # (..., K, 1, Hg, Wg)
    neighbor_term = _masked_mean(
        xp, no, tno, (neighbor_weights[..., None, None] * at_cell)[..., None, :, :], 1.0, squared=False
    )
    total = score_term * score_weight + (own_term + neighbor_term) * offset_weight
    return total if total.dtype == out_dtype else xp.astype(total, out_dtype)


def loss_weights(score_weight: float, offset_weight: float) -> tuple[float, float]:
    """:func:`pipnet_loss`'s weights, checked (also used by the torch Module at construction)."""
    return (
        check.at_least(score_weight, 0.0, "score_weight", "a weight"),
        check.at_least(offset_weight, 0.0, "offset_weight", "a weight"),
    )


def _masked_mean(xp: Any, pred: Array, target: Array, weight: Array, per_weight: float, *, squared: bool) -> Array:
    """``sum(weight * loss) / (per_weight * sum(weight))`` of the squared or absolute error; 0 when the sum is 0."""
    zero = xp.zeros((), dtype=pred.dtype, device=_xp.device(pred))
    # Where the weight is 0 the prediction is replaced, not multiplied by 0: a NaN or inf there
    # reaches neither the loss nor (through where's backward) the gradient.
    keep = _xp.marked(xp, weight)  # the one weights rule: > 0
    weight = xp.where(keep, weight, zero)  # a negative or NaN weight counts as 0, as in the other losses
    d = xp.where(keep, pred, target) - target
    total = xp.sum((d * d if squared else xp.abs(d)) * weight)
    return _common.weighted_mean(xp, total, xp.sum(weight) * per_weight)


def _at_cell(xp: Any, maps: Array, anchor: Array, dtype: Any) -> Array:
    """``maps[..., c]`` at the flat cell index ``anchor`` (broadcast over the middle axes)."""
    flat = _common.flatten_maps(xp, maps)
    out = _xp.take_along_last(xp, flat, anchor)[..., 0]
    return out if out.dtype == dtype else xp.astype(out, dtype)


def _merge_plan(xp: Any, reverse: Array, count: Array, predictions: int, merge: str) -> Array:
    """``gather (2, K, R)``: merged = (own + sum of the gathered entries) / (1 + entries gathered).

    ``gather[c, t, j]`` indexes the ``2 * predictions + 1`` interleaved ``(x, y)`` predictions
    plus a trailing 0: coordinate ``c`` of the ``j``-th prediction of landmark ``t``, or the 0
    (which the caller counts as no entry).
    """
    dev = _xp.device(reverse)
    slot = xp.arange(reverse.shape[1], dtype=reverse.dtype, device=dev)[None, :]
    if merge == "mean":
        used = slot < count[:, None]
    else:
        # The table's rows are already cyclically padded to R; a landmark nobody predicts gets 0s.
        used = (count > 0)[:, None] & (slot >= 0)
    axis = xp.reshape(xp.arange(2, dtype=reverse.dtype, device=dev), (2, 1, 1))
    zero_slot = xp.asarray(2 * predictions, dtype=reverse.dtype, device=dev)
    return xp.where(used[None, ...], 2 * reverse[None, ...] + axis, zero_slot)


def nan_where_no_cell(xp: Any, coords: Array, no_cell: Array) -> Array:
    """NaN coordinates for the landmarks without a cell (``no_cell``, ``(..., K)``)."""
    nan = xp.asarray(float("nan"), dtype=coords.dtype, device=_xp.device(coords))
    return xp.where(no_cell[..., None], nan, coords)


def host_checked_table(table: PIPNetNeighbors) -> PIPNetNeighbors:
    """``table`` as NumPy int64 arrays, every check of :func:`decode_pipnet` done once on the host.

    For adapters that keep a table on a device (the codec, the torch Module): a decode in a
    training step never reads a device table back, so its values are checked here, once.
    """
    parts = [_xp.to_host(t, f"neighbors.{name}") for name, t in zip(PIPNetNeighbors._fields, table)]
    for name, part, original in zip(PIPNetNeighbors._fields, parts, table):
        if part.dtype.kind not in "iu":
            raise TypeError(
                f"neighbors.{name} must hold integer indices, got dtype {getattr(original, 'dtype', part.dtype)}"
            )
    index, reverse, count = (np.asarray(a, dtype=np.int64) for a in parts)
    if index.ndim != 2 or index.shape[1] < 1 or index.shape[1] >= max(index.shape[0], 2):
        raise ValueError(f"neighbors.index must have shape (K, N) with 1 <= N < K, got shape {index.shape}")
    k, n = index.shape
    _host_index(index, k, "neighbors.index", index.shape)
    _reverse(np, PIPNetNeighbors(index, reverse, count), (k, n), index)
    return PIPNetNeighbors(index, reverse, count)


def _host_reverse_values(reverse: np.ndarray, count: np.ndarray, predictions: int) -> None:
    if reverse.size and (reverse.min() < 0 or reverse.max() >= predictions):
        raise ValueError(
            f"neighbors.reverse_index values must lie in [0, K * N = {predictions}), got values from {reverse.min()} to {reverse.max()}"
        )
    if count.size and (count.min() < 0 or count.max() > reverse.shape[1]):
        raise ValueError(
            f"neighbors.reverse_count values must lie in [0, R = {reverse.shape[1]}], got values from {count.min()} to {count.max()}"
        )


def _host_index(index: Array, k: int, name: str, shape: tuple[int, ...]) -> None:
    """Checks of a host (NumPy) index: its values can be read without a device round trip."""
    if index.dtype.kind not in "iu":
        raise TypeError(f"neighbors must hold integer landmark indices, got dtype {index.dtype}")
    _index_shape(index, k, name, shape)
    if index.size and (index.min() < 0 or index.max() >= k):
        raise ValueError(
            f"neighbors values must be landmark indices in [0, {k}), got values from {index.min()} to {index.max()}"
        )


def _index_shape(index: Array, k: int, name: str, shape: tuple[int, ...]) -> None:
    if index.ndim != 2 or index.shape[0] != k or not 1 <= index.shape[1] < max(k, 2):
        raise ValueError(
            f"neighbors must have shape (K, N) with K = {k} (from {name} of shape {shape}) and 1 <= N < K, "
            f"got shape {tuple(index.shape)}"
        )


def _reverse(xp: Any, neighbors: PIPNetNeighbors, shape: tuple[int, ...], like: Array) -> tuple[Array, Array]:
    """The table's ``reverse_index`` and ``reverse_count``, their shapes checked against the
    ``(K, N)`` index (and, for NumPy tables, their values), in ``like``'s library and device."""
    k, n = shape
    reverse, count = neighbors.reverse_index, neighbors.reverse_count
    for name, part in (("reverse_index", reverse), ("reverse_count", count)):
        if not _xp.is_array(part):
            raise TypeError(
                f"neighbors.{name} must be an integer array from pipnet_neighbors, got {type(part).__qualname__}"
            )
        if not _xp.is_integral(part):  # the table may come from another library than the outputs
            raise TypeError(f"neighbors.{name} must hold integer indices, got dtype {part.dtype}")
    if reverse.ndim != 2 or reverse.shape[0] != k or reverse.shape[1] < 1 or tuple(count.shape) != (k,):
        raise ValueError(
            f"neighbors.reverse_index must have shape (K, R) with K = {k} and R >= 1, and neighbors.reverse_count shape (K,), "
            f"got shapes {tuple(reverse.shape)} and {tuple(count.shape)}: pass the table pipnet_neighbors built"
        )
    if _xp.on_host(reverse) and _xp.on_host(count):
        _host_reverse_values(reverse, count, k * n)
    return _xp.on_device_of(xp, reverse, like, "neighbors"), _xp.on_device_of(xp, count, like, "neighbors")


def _index(xp: Any, index: Array, like: Array, k: int, name: str) -> tuple[Array, Array | None]:
    """The ``(K, N)`` neighbour index, checked, in ``like`` (named ``name``)'s library and on its
    device, and where its values lie outside ``[0, K)`` (``None`` when checked on the host).

    A NumPy table's values are checked (a clear error). A table already on a device is not read
    back (that would be a host round-trip in a training step): its out-of-range entries are
    clipped for the gather and reported, and the caller makes what they feed NaN, never a silent
    wrap-around to another landmark.
    """
    shape = tuple(like.shape)
    if _xp.on_host(index):
        _host_index(index, k, name, shape)
    out = _xp.on_device_of(xp, index, like, "neighbors")
    if not check.is_dtype(xp, out, ("integral",)):
        raise TypeError(f"neighbors must hold integer landmark indices, got dtype {out.dtype}")
    _index_shape(out, k, name, shape)
    if _xp.on_host(index):
        return out, None
    return xp.clip(out, 0, k - 1), (out < 0) | (out >= k)
