"""DeepLabCut's heatmap and location refinement ("locref"): a score map per keypoint and two
offset maps that carry the sub-cell position, decoded at the score map's argmax.

Per keypoint at ``(x, y)`` (heatmap pixels, integers at cell centres) and every cell ``(j, i)``
at distance ``d``:

- the score map: ``kind="gaussian"``, ``exp(-d^2 / (2 s^2))`` with ``s = 2 radius / 3``
  (DeepLabCut's ``pos_dist_thresh`` is three standard deviations); ``kind="plateau"``, 1 where
  ``d <= radius``, else 0;
- the locref maps ``((x - j) / locref_std, (y - i) / locref_std)``: everywhere for the Gaussian,
  inside the disk for the plateau (0 outside), as DeepLabCut writes them;
- the locref mask, 1 where ``d <= radius`` (where a loss reads the locref maps).

Decoding takes each score map's first maximum ``(j, i)`` (row-major, NumPy's and PyTorch's
argmax rule) and adds the locref there: ``(j, i) + locref_std * locref[:, i, j]``. On its own
target that is the keypoint to float rounding, for every keypoint inside the map (the Gaussian's
maximum is the nearest cell; a plateau's first cell lies in the disk, whose cells all hold the
exact offset) as long as the disk holds a cell: ``radius >= sqrt(2) / 2``.

DeepLabCut (3.0, PyTorch engine) works in image pixels with cell ``j`` centred at
``j * stride + stride / 2``; the codec ``"locref"`` converts (``convention="deeplabcut"``), and
its ``radius`` and ``locref_std`` are DeepLabCut's ``pos_dist_thresh`` and ``locref_std`` over the
stride. docs/deeplabcut.md maps the config keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from . import _common, _xp
from . import _validation as check
from ._xp import Array

__all__ = ["LocRefTargets", "decode_locref", "encode_locref"]

LocRefKind = Literal["gaussian", "plateau"]


class LocRefTargets(NamedTuple):
    """What :func:`encode_locref` returns."""

    heatmaps: Array
    """``(..., K, H, W)`` score maps (Gaussian or plateau), peak 1."""
    locref: Array
    """``(..., K, 2, H, W)`` ``((x - j) / locref_std, (y - i) / locref_std)`` per cell ``(j, i)``."""
    locref_mask: Array
    """``(..., K, H, W)`` 1 where the cell lies within ``radius`` of the keypoint, else 0."""
    weights: Array
    """``(..., K)`` per-keypoint weights (0: NaN, outside the map, or weight 0 given); a keypoint
    of weight 0 has all-zero maps and mask."""


def encode_locref(
    coords: Array,
    /,
    *,
    heatmap_size: Sequence[int],
    radius: float,
    locref_std: float,
    kind: LocRefKind = "gaussian",
    weights: Array | None = None,
) -> LocRefTargets:
    """DeepLabCut's targets: a score map, the locref maps and their mask per keypoint.

    Args:
        coords: ``(..., K, 2)`` keypoint ``(x, y)`` in heatmap pixels, real floating.
        heatmap_size: ``(W, H)`` of the maps.
        radius: the disk's radius in heatmap pixels (DeepLabCut's ``pos_dist_thresh / stride``);
            the Gaussian's standard deviation ``2 radius / 3`` within the library's sigmas (0.06
            to 1e4 px).
        locref_std: the locref maps' unit in heatmap pixels (DeepLabCut's
            ``locref_std / stride``), 0.06 to 1e4.
        kind: ``"gaussian"`` (DeepLabCut's ``HeatmapGaussianGenerator``) or ``"plateau"``
            (``HeatmapPlateauGenerator``).
        weights: optional ``(..., K)`` per-keypoint weights or visibility (bool or numeric);
            0 (or negative, or NaN) leaves the keypoint out.

    Returns:
        :class:`LocRefTargets` ``(heatmaps, locref, locref_mask, weights)`` in ``coords``' dtype
        and device.

    Convention:
        Heatmap pixels, integers at cell centres, ``(x, y)`` order; the locref maps are ``x``
        first. See :mod:`landmark_codecs.locref` for DeepLabCut's image-pixel convention.

    >>> import numpy as np
    >>> t = encode_locref(np.array([[2.25, 1.0]]), heatmap_size=(5, 3), radius=1.5, locref_std=2.0)
    >>> t.heatmaps.shape, t.locref.shape, float(t.locref[0, 0, 1, 2]), int(t.locref_mask.sum())
    ((1, 3, 5), (1, 2, 3, 5), 0.125, 7)
    """
    xp = _xp.namespace(coords=coords, weights=weights)
    _common.check_landmarks(xp, coords, weights)
    options = {"size": check.size(heatmap_size), **locref_options(radius, locref_std, kind)}
    return _xp.in_float32(xp, locref_targets, coords, weights=weights, **options)


def locref_options(radius: float, locref_std: float, kind: str) -> dict[str, Any]:
    """:func:`encode_locref`'s options checked (and the codec's, once): the Gaussian's standard
    deviation ``2 radius / 3`` and ``locref_std`` within the sigmas the library renders."""
    check.choice(kind, "kind", ("gaussian", "plateau"))
    radius = 1.5 * check.sigma(2.0 * check.positive(radius, "radius") / 3.0, "2 * radius / 3 (the Gaussian's std)")
    return {"radius": radius, "locref_std": check.sigma(locref_std, "locref_std"), "kind": kind}


def locref_targets(
    xp: Any,
    coords: Array,
    *,
    weights: Array | None,
    size: tuple[int, int],
    radius: float,
    locref_std: float,
    kind: str,
) -> LocRefTargets:
    """Kernel of :func:`encode_locref` (inputs checked)."""
    w, h = size
    safe, weights, keep = _common.landmark_weights(xp, coords, weights, size)
    zero = xp.zeros((), dtype=coords.dtype, device=_xp.device(coords))
    dx = safe[..., 0:1] - _common.grid(xp, w, coords)  # (..., K, W): x - j
    dy = safe[..., 1:2] - _common.grid(xp, h, coords)  # (..., K, H): y - i
    d2 = dy[..., :, None] * dy[..., :, None] + dx[..., None, :] * dx[..., None, :]  # (..., K, H, W)
    kept = keep[..., None, None]
    disk = (d2 <= radius * radius) & kept
    if kind == "gaussian":
        s = 2.0 * radius / 3.0
        px = _common.gaussian_profile(xp, safe[..., 0], w, s)
        py = _common.gaussian_profile(xp, safe[..., 1], h, s)
        heatmaps = _common.outer(xp, py, px, keep)
        inside = kept
    else:
        heatmaps = xp.astype(disk, coords.dtype)
        inside = disk
    shape = (*coords.shape[:-1], h, w)
    ox = xp.where(inside, xp.broadcast_to(dx[..., None, :] / locref_std, shape), zero)
    oy = xp.where(inside, xp.broadcast_to(dy[..., :, None] / locref_std, shape), zero)
    return LocRefTargets(heatmaps, xp.stack([ox, oy], axis=-3), xp.astype(disk, coords.dtype), weights)


def decode_locref(heatmaps: Array, locref: Array, /, *, locref_std: float) -> _common.DecodedLandmarks:
    """DeepLabCut's decoding: each score map's first maximum plus the locref there.

    ``coords = (j, i) + locref_std * locref[..., :, i, j]`` at the first maximum ``(j, i)`` in
    row-major order (DeepLabCut's ``HeatmapPredictor``, which takes ``torch.argmax``); its score
    is that maximum (DeepLabCut reports ``sigmoid`` of it when its heads output logits: the same
    argmax, as the sigmoid is increasing). On :func:`encode_locref`'s targets it returns the
    keypoint to float rounding wherever it lies inside the map (and ``radius >= sqrt(2) / 2`` for
    the plateau).

    Args:
        heatmaps: ``(..., K, H, W)`` real floating score maps (scores or logits).
        locref: ``(..., K, 2, H, W)`` locref maps, ``x`` first.
        locref_std: their unit in heatmap pixels, 0.06 to 1e4.

    Returns:
        ``(coords, scores)``: ``(..., K, 2)`` ``(x, y)`` in heatmap pixels and ``(..., K)``. A
        NaN in a map (or in its locref at the maximum) gives that keypoint NaN coordinates and
        score 0; other keypoints are unaffected.

    Convention:
        As :func:`encode_locref`.

    >>> import numpy as np
    >>> t = encode_locref(np.array([[2.25, 1.0]]), heatmap_size=(5, 3), radius=1.5, locref_std=2.0)
    >>> decode_locref(t.heatmaps, t.locref, locref_std=2.0).coords.tolist()
    [[2.25, 1.0]]
    """
    xp = _xp.namespace(heatmaps=heatmaps, locref=locref)
    heatmaps, locref = check_outputs(xp, heatmaps, locref)
    return _xp.in_float32(xp, locref_coords, heatmaps, locref, locref_std=check.sigma(locref_std, "locref_std"))


def check_outputs(xp: Any, heatmaps: Array, locref: Array) -> tuple[Array, Array]:
    """The boundary's checks of the score and locref maps (``decode_locref``'s and the codec's);
    returns them promoted to one dtype."""
    return check.maps_and_offsets(xp, heatmaps, locref, "locref")


def locref_coords(xp: Any, heatmaps: Array, locref: Array, *, locref_std: float) -> _common.DecodedLandmarks:
    """Kernel of :func:`decode_locref` (inputs checked, of one dtype)."""
    h, w = heatmaps.shape[-2:]
    _, anchor, scores = _common.locate_maximum(xp, heatmaps)
    flat = xp.reshape(locref, (*locref.shape[:-2], h * w))  # (..., K, 2, H*W)
    at = _xp.take_along_last(xp, flat, anchor[..., None, :])[..., 0]  # (..., K, 2)
    x, y = _common.unravel(xp, anchor[..., 0], w, heatmaps.dtype)
    coords = xp.stack([x, y], axis=-1) + at * locref_std
    bad = xp.isnan(scores) | xp.any(xp.isnan(at), axis=-1)
    nan = xp.asarray(float("nan"), dtype=coords.dtype, device=_xp.device(coords))
    zero = xp.zeros((), dtype=scores.dtype, device=_xp.device(scores))
    return _common.DecodedLandmarks(xp.where(bad[..., None], nan, coords), xp.where(bad, zero, scores))
