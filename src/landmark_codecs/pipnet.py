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
``mask``                  ``(..., K, Hg, Wg)``           where the offset loss applies
``neighbor_mask``         ``(..., K, N, Hg, Wg)``        where the neighbour-offset loss applies
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
    ``[-0.5, 0.5)``. The original repository measures offsets from the cell's top-left corner
    (in ``[0, 1)``) on normalized coordinates ``u = (x + 0.5) / Wg``: the cell is the same, its
    offsets are ours plus 0.5, and its coordinates are ``heatmap_to_image`` of ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from . import _common, _xp
from . import _validation as check

Array = Any
Merge = Literal["mean", "original", "none"]

__all__ = ["PIPNetNeighbors", "PIPNetTargets", "pipnet_neighbors", "encode_pipnet", "decode_pipnet", "pipnet_loss"]

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
    """The training targets of :func:`encode_pipnet` (shapes in the module docstring).

    The first three are what the network predicts, so ``decode_pipnet(*targets[:3], ...)``
    decodes them; :func:`pipnet_loss` takes the whole tuple.
    """

    scores: Array
    offsets: Array
    neighbor_offsets: Array
    mask: Array
    neighbor_mask: Array
    weights: Array


def pipnet_neighbors(mean_shape: Array, /, *, num_neighbors: int = 10) -> PIPNetNeighbors:
    """Each landmark's ``num_neighbors`` nearest other landmarks on the mean shape, and the reverse table.

    Distances are Euclidean (squared, in float64); a landmark is never its own neighbour; ties
    are broken by the lower landmark index (a stable sort), so the table is deterministic, and
    duplicate points are each other's nearest neighbours. Without ties this is the original
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
    points = _xp.to_host(mean_shape)
    if points.ndim != 2 or points.shape[-1] != 2:
        raise ValueError(f"mean_shape must have shape (K, 2) with (x, y) in the last axis, got shape {points.shape}")
    if points.dtype.kind not in "iuf":
        raise TypeError(f"mean_shape must hold real numbers, got dtype {points.dtype}")
    k = points.shape[0]
    if k < 2:
        raise ValueError(f"mean_shape needs at least 2 landmarks to have neighbours, got shape {points.shape}")
    check.positive_int(num_neighbors, "num_neighbors")
    if num_neighbors >= k:
        raise ValueError(f"num_neighbors must be less than K = {k} (a landmark is not its own neighbour), got {num_neighbors}")
    points = points.astype(np.float64)
    bad = ~np.isfinite(points).all(axis=-1)
    if bad.any():
        raise ValueError(f"mean_shape must be finite, got NaN or inf at landmarks {np.flatnonzero(bad).tolist()}")
    d2 = ((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=-1)
    np.fill_diagonal(d2, np.inf)
    index = np.argsort(d2, axis=1, kind="stable")[:, :num_neighbors]
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
    neighbor_index: PIPNetNeighbors | Array,
    visible: Array | None = None,
) -> PIPNetTargets:
    """PIPNet training targets: one-hot score maps, own and neighbour offsets at the landmark's cell.

    For landmark ``k`` at ``(x, y)`` in cell ``c = (floor(x + 0.5), floor(y + 0.5))``::

        scores[k, c] = 1                  offsets[k, :, c] = (x, y) - c
        neighbor_offsets[k, m, :, c] = (x, y)[index[k, m]] - c          (0 elsewhere)
        mask[k, c] = weights[k]           neighbor_mask[k, m, c] = weights[k] if index[k, m] is kept

    A landmark is *kept* when it is finite, inside the grid's valid range and visible; the others
    get weight 0 and all-zero maps and masks, and the neighbour terms that point at them get mask
    0, so a missing landmark never corrupts another's targets.

    Args:
        coords: ``(..., K, 2)`` landmark ``(x, y)`` in grid cells (see Convention), real floating.
        grid_size: ``(Wg, Hg)``.
        neighbor_index: the table from :func:`pipnet_neighbors`, or its ``(K, N)`` integer
            ``index`` array with values in ``[0, K)`` (in ``coords``' library, or NumPy or a
            nested list, which are checked and copied to ``coords``' device).
        visible: optional ``(..., K)`` visibility or weight (0 means invisible).

    Returns:
        :class:`PIPNetTargets` ``(scores, offsets, neighbor_offsets, mask, neighbor_mask,
        weights)`` in ``coords``' dtype and on its device.

    Convention:
        Grid cells, integers at cell centres, ``(x, y)`` order; offsets in cell units in
        ``[-0.5, 0.5)``; sizes are ``(W, H)``. See the module docstring for the original
        repository's corner-based offsets.

    Reference:
        H. Jin, S. Liao and L. Shao, "Pixel-in-Pixel Net: Towards Efficient Facial Landmark
        Detection in the Wild", IJCV 2021.

    >>> import numpy as np
    >>> table = pipnet_neighbors(np.array([[0.0, 0.0], [1.0, 0.0]]), num_neighbors=1)
    >>> t = encode_pipnet(np.array([[0.75, 0.0], [1.25, 0.5]]), grid_size=(2, 2), neighbor_index=table)
    >>> t.scores[0].tolist(), t.offsets[0, :, 0, 1].tolist(), t.neighbor_offsets[0, 0, :, 0, 1].tolist()
    ([[0.0, 1.0], [0.0, 0.0]], [-0.25, 0.0], [0.25, 0.5])
    """
    w, h = check.size(grid_size, "grid_size")
    xp, _, safe, weights, keep = _common.prepare_coords(coords, visible, (w, h))
    k = coords.shape[-2]
    index = neighbor_index.index if isinstance(neighbor_index, PIPNetNeighbors) else neighbor_index
    if isinstance(index, (list, tuple)):
        index = np.asarray(index)
    if not _xp.is_array(index):
        raise TypeError(f"neighbor_index must be the table from pipnet_neighbors or its (K, N) index array, got {type(index).__qualname__}")
    index = _index(xp, index, coords, "coords")
    n = index.shape[1]
    dev = _xp.device(coords)
    zero = xp.zeros((), dtype=coords.dtype, device=dev)
    cell = _cell(xp, safe, w, h)
    at_x = _common.grid(xp, w, cell) == cell[..., 0:1]
    at_y = _common.grid(xp, h, cell) == cell[..., 1:2]
    at = at_y[..., :, None] & at_x[..., None, :] & keep[..., None, None]  # (..., K, Hg, Wg)
    own = safe - cell
    flat = xp.reshape(index, (k * n,))
    neighbors = xp.reshape(xp.take(safe, flat, axis=-2), (*coords.shape[:-2], k, n, 2))
    neighbor_keep = xp.reshape(xp.take(keep, flat, axis=-1), (*coords.shape[:-2], k, n))
    neighbor_at = at[..., None, :, :] & neighbor_keep[..., None, None]  # (..., K, N, Hg, Wg)
    return PIPNetTargets(
        scores=xp.astype(at, coords.dtype),
        offsets=xp.where(at[..., None, :, :], own[..., None, None], zero),
        neighbor_offsets=xp.where(neighbor_at[..., None, :, :], (neighbors - cell[..., None, :])[..., None, None], zero),
        mask=xp.where(at, weights[..., None, None], zero),
        neighbor_mask=xp.where(neighbor_at, weights[..., None, None, None], zero),
        weights=weights,
    )


def decode_pipnet(
    scores: Array,
    offsets: Array,
    neighbor_offsets: Array,
    /,
    *,
    neighbor_index: PIPNetNeighbors,
    merge: Merge = "mean",
) -> tuple[Array, Array]:
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
        neighbor_index: the table from :func:`pipnet_neighbors` (NumPy, or the arrays' library
            on their device).
        merge: ``"mean"``, ``"original"`` or ``"none"``.

    Returns:
        ``(coords, scores)``: ``(..., K, 2)`` ``(x, y)`` in grid cells in the promoted dtype of the
        offsets, and the ``(..., K)`` maximum score, on the arrays' device. A NaN in a landmark's
        score map makes its score NaN (its cell is then whatever the backend's argmax says); a
        NaN offset reaches only the landmarks it predicts.

    Convention:
        Grid cells, integers at cell centres, ``(x, y)`` order; see the module docstring.

    Reference:
        H. Jin, S. Liao and L. Shao, "Pixel-in-Pixel Net: Towards Efficient Facial Landmark
        Detection in the Wild", IJCV 2021.

    >>> import numpy as np
    >>> table = pipnet_neighbors(np.array([[0.0, 0.0], [1.0, 0.0]]), num_neighbors=1)
    >>> t = encode_pipnet(np.array([[0.75, 0.0], [1.25, 0.5]]), grid_size=(2, 2), neighbor_index=table)
    >>> coords, scores = decode_pipnet(t.scores, t.offsets, t.neighbor_offsets, neighbor_index=table)
    >>> coords.tolist(), scores.tolist()
    ([[0.75, 0.0], [1.25, 0.5]], [1.0, 1.0])
    """
    check.choice(merge, "merge", _MERGES)
    if not isinstance(neighbor_index, PIPNetNeighbors):
        raise TypeError(
            f"neighbor_index must be the PIPNetNeighbors table from pipnet_neighbors (decoding needs its reverse index), "
            f"got {type(neighbor_index).__qualname__}"
        )
    xp = _xp.namespace(scores=scores, offsets=offsets, neighbor_offsets=neighbor_offsets)
    check.heatmaps(xp, scores, "scores")
    check.floating(xp, offsets, "offsets")
    check.floating(xp, neighbor_offsets, "neighbor_offsets")
    index = _index(xp, neighbor_index.index, scores, "scores")
    reverse, count = (_xp.on_device_of(xp, a, scores, "neighbor_index") for a in neighbor_index[1:])
    lead, (k, h, w) = tuple(scores.shape[:-3]), tuple(scores.shape[-3:])
    n = index.shape[1]
    check.same_shape(offsets, (*lead, k, 2, h, w), "offsets", "(..., K, 2, Hg, Wg) for scores of shape (..., K, Hg, Wg)")
    check.same_shape(
        neighbor_offsets, (*lead, k, n, 2, h, w), "neighbor_offsets", f"(..., K, N, 2, Hg, Wg) with N = {n} neighbours in the table"
    )
    dtype = xp.result_type(offsets.dtype, neighbor_offsets.dtype)
    _, _, anchor, best = _common.locate_maximum(scores)
    cx, cy = _common.unravel(xp, anchor, w, dtype)
    cell = xp.concat([cx, cy], axis=-1)  # (..., K, 2)
    own = _at_cell(xp, offsets, anchor[..., None, :], dtype)  # (..., K, 2)
    if merge == "none":
        return cell + own, best
    predicted = _at_cell(xp, neighbor_offsets, anchor[..., None, None, :], dtype)  # (..., K, N, 2)
    r = reverse.shape[1]
    flat = xp.reshape(reverse, (k * r,))
    by = xp.reshape(xp.take(xp.reshape(predicted, (*lead, k * n, 2)), flat, axis=-2), (*lead, k, r, 2))
    from_cell = xp.reshape(xp.take(cell, flat // n, axis=-2), (*lead, k, r, 2))
    # Each prediction of t relative to t's cell: an exact integer difference plus the offset.
    relative = (from_cell - cell[..., None, :]) + by
    own_weight, weight = _merge_weights(xp, count, r, merge, dtype, _xp.device(scores))
    zero = xp.zeros((), dtype=dtype, device=_xp.device(scores))
    # Padding entries weigh 0 and must not carry another landmark's NaN into t.
    others = xp.sum(xp.where(weight[:, :, None] > 0, relative * weight[:, :, None], zero), axis=-2)
    return cell + (own * own_weight[:, None] + others), best


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
    - ``L1`` sums ``|pred - target|`` over ``x`` and ``y`` at the cells where the mask is
      positive, weighted by the mask, and divides by the mask's sum.

    With every landmark visible this is the original repository's loss exactly (its ``x`` and
    ``y`` L1 means are added: hence the sum over the two axes). An all-zero mask gives a 0 term.
    Masked-out predictions never enter the loss or its gradient, even when not finite.

    Args:
        scores, offsets, neighbor_offsets: the network's outputs, shaped as ``targets``' first
            three fields (see the module docstring), real floating.
        targets: the :class:`PIPNetTargets` from :func:`encode_pipnet`.
        score_weight: weight of the score-map term, >= 0 (the paper's 10).
        offset_weight: weight of the offset terms, >= 0 (the paper's 1).

    Returns:
        A 0-d array in the promoted dtype of the predictions and targets (float16 and bfloat16
        are computed in float32 and the result cast back).

    >>> import numpy as np
    >>> table = pipnet_neighbors(np.array([[0.0, 0.0], [1.0, 0.0]]), num_neighbors=1)
    >>> t = encode_pipnet(np.array([[0.75, 0.0], [1.25, 0.5]]), grid_size=(2, 2), neighbor_index=table)
    >>> float(pipnet_loss(t.scores, t.offsets + 0.5, t.neighbor_offsets, t))  # |0.5| on x and on y
    1.0
    """
    score_weight = check.at_least(score_weight, 0.0, "score_weight", "a weight")
    offset_weight = check.at_least(offset_weight, 0.0, "offset_weight", "a weight")
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
    out_dtype = xp.result_type(scores.dtype, offsets.dtype, neighbor_offsets.dtype, targets.offsets.dtype)
    work = xp.float32 if xp.finfo(out_dtype).bits < 32 else out_dtype
    h, w = scores.shape[-2:]
    cast = [x if x.dtype == work else xp.astype(x, work) for x in (scores, offsets, neighbor_offsets, *targets)]
    s, o, no, ts, to, tno, mask, nmask, weights = cast
    score_term = _masked_mean(xp, s, ts, weights[..., None, None], float(h * w), squared=True)
    own_term = _masked_mean(xp, o, to, mask[..., None, :, :], 1.0, squared=False)
    neighbor_term = _masked_mean(xp, no, tno, nmask[..., None, :, :], 1.0, squared=False)
    total = score_term * score_weight + (own_term + neighbor_term) * offset_weight
    return total if total.dtype == out_dtype else xp.astype(total, out_dtype)


def _masked_mean(xp: Any, pred: Array, target: Array, weight: Array, per_weight: float, *, squared: bool) -> Array:
    """``sum(weight * loss) / (per_weight * sum(weight))`` of the squared or absolute error; 0 when the sum is 0."""
    zero = xp.zeros((), dtype=pred.dtype, device=_xp.device(pred))
    # Where the weight is 0 the prediction is replaced, not multiplied by 0: a NaN or inf there
    # reaches neither the loss nor (through where's backward) the gradient.
    d = xp.where(weight > 0, pred, target) - target
    total = xp.sum((d * d if squared else xp.abs(d)) * weight)
    norm = xp.sum(weight) * per_weight
    positive = norm > 0
    return xp.where(positive, total / xp.where(positive, norm, 1.0), zero)


def _cell(xp: Any, coords: Array, w: int, h: int) -> Array:
    """The cell centre containing each landmark: ``floor(c + 0.5)``, kept on the grid.

    The clip only matters for the last float below ``W - 0.5``, where ``c + 0.5`` rounds to ``W``.
    """
    upper = xp.asarray([w - 1.0, h - 1.0], dtype=coords.dtype, device=_xp.device(coords))
    return xp.minimum(xp.floor(coords + 0.5), upper)


def _at_cell(xp: Any, maps: Array, anchor: Array, dtype: Any) -> Array:
    """``maps[..., c]`` at the flat cell index ``anchor`` (broadcast over the middle axes)."""
    flat = _common.flatten_maps(xp, maps)
    out = _xp.take_along_last(xp, flat, anchor)[..., 0]
    return out if out.dtype == dtype else xp.astype(out, dtype)


def _merge_weights(xp: Any, count: Array, r: int, merge: str, dtype: Any, dev: Any) -> tuple[Array, Array]:
    """``(own (K,), others (K, R))`` merge weights for the reverse table's rows."""
    c = xp.astype(count, dtype)[:, None]
    slot = xp.arange(r, dtype=dtype, device=dev)[None, :]
    zero = xp.zeros((), dtype=dtype, device=dev)
    if merge == "mean":
        return 1.0 / (1.0 + c[:, 0]), xp.where(slot < c, 1.0 / (1.0 + c), zero)
    predicted = c > 0
    share = xp.asarray(1.0 / (1.0 + r), dtype=dtype, device=dev)
    return xp.where(predicted[:, 0], share, 1.0), xp.where(predicted & (slot >= 0), share, zero)


def _host_index(index: Array, k: int, name: str, shape: tuple[int, ...]) -> None:
    """Checks of a host (NumPy) index: its values can be read without a device round trip."""
    if index.dtype.kind not in "iu":
        raise TypeError(f"neighbor_index must hold integer landmark indices, got dtype {index.dtype}")
    _index_shape(index, k, name, shape)
    if index.size and (index.min() < 0 or index.max() >= k):
        raise ValueError(f"neighbor_index values must be landmark indices in [0, {k}), got values from {index.min()} to {index.max()}")


def _index_shape(index: Array, k: int, name: str, shape: tuple[int, ...]) -> None:
    if index.ndim != 2 or index.shape[0] != k or not 1 <= index.shape[1] < max(k, 2):
        raise ValueError(
            f"neighbor_index must have shape (K, N) with K = {k} (from {name} of shape {shape}) and 1 <= N < K, "
            f"got shape {tuple(index.shape)}"
        )


def _index(xp: Any, index: Array, like: Array, name: str) -> Array:
    """The ``(K, N)`` neighbour index, checked, in ``like``'s library and on its device."""
    shape = tuple(like.shape)
    k = shape[-2] if name == "coords" else shape[-3]
    if isinstance(index, np.ndarray):
        _host_index(index, k, name, shape)
    out = _xp.on_device_of(xp, index, like, "neighbor_index")
    if not xp.isdtype(out.dtype, "integral"):
        raise TypeError(f"neighbor_index must hold integer landmark indices, got dtype {out.dtype}")
    _index_shape(out, k, name, shape)
    return out
