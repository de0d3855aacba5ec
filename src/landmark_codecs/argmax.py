"""Argmax decoding, plain or with the +/-0.25 "quarter" shift."""

from __future__ import annotations

from typing import Any, Literal

from . import _common, _xp
from . import _validation as check
from ._xp import Array

__all__ = ["decode_argmax"]


def decode_argmax(heatmaps: Array, /, *, refine: Literal["none", "quarter"] = "none") -> _common.DecodedLandmarks:
    """Coordinates of each map's maximum, optionally shifted a quarter pixel toward the higher neighbour.

    - ``refine="none"``: the integer position of the maximum (the first one in row-major order on
      ties, as NumPy and PyTorch's argmax do). On a vanilla target (:func:`encode_gaussian` with
      ``rounding="nearest"``) or an exact sub-pixel one the error is at most 0.5 px per axis.
    - ``refine="quarter"``: the classic shift of Newell et al. / SimpleBaseline,
      ``x += 0.25 * sign(h[y, x + 1] - h[y, x - 1])``, likewise for ``y``. It is applied on an axis
      only where the maximum has both neighbours on that axis; on a map's first or last column
      (row) that axis is not shifted. On a sub-pixel Gaussian target (``rounding="none"``) it
      lowers the error bound to 0.25 px per axis away from the border (0.5 px on it). Equal
      neighbours, infinite ones included (the log of a one-hot map), give no shift.

    Args:
        heatmaps: ``(..., K, H, W)`` real floating maps (probabilities, logits or scores).

    Returns:
        ``(coords, scores)``: ``(..., K, 2)`` ``(x, y)`` in heatmap pixels and the ``(..., K)``
        maximum value of each map, in the maps' dtype and device. A NaN anywhere in a map makes
        that landmark's score NaN (its position is then whatever the backend's argmax says).

    Convention:
        Heatmap pixels, integers at pixel centres, ``(x, y)`` order.

    >>> import numpy as np
    >>> maps = np.zeros((1, 3, 4)); maps[0, 1, 2] = 1.0; maps[0, 1, 3] = 0.5
    >>> coords, scores = decode_argmax(maps, refine="quarter")
    >>> coords.tolist(), scores.tolist()
    ([[2.25, 1.0]], [1.0])
    """
    xp = _xp.namespace(heatmaps=heatmaps)
    check.heatmaps(xp, heatmaps)
    check.choice(refine, "refine", ("none", "quarter"))
    return _xp.in_float32(xp, argmax_coords, heatmaps, refine=refine)


def argmax_coords(xp: Any, heatmaps: Array, *, refine: str) -> _common.DecodedLandmarks:
    """Kernel of :func:`decode_argmax` (maps checked)."""
    flat, index, scores = _common.locate_maximum(xp, heatmaps)
    h, w = heatmaps.shape[-2:]
    x, y = _common.unravel(xp, index[..., 0], w, heatmaps.dtype)
    coords = xp.stack([x, y], axis=-1)
    if refine == "quarter":
        coords = coords + _quarter_shift(xp, flat, index, coords, w, h)
    return _common.DecodedLandmarks(coords, scores)


def _quarter_shift(xp: Any, flat: Array, index: Array, coords: Array, w: int, h: int) -> Array:
    """``0.25 * sign(next - previous)`` per axis, ``(..., K, 2)``; 0 on an axis's ends. The four
    neighbours in one gather (x: flat strides +1, -1; y: +W, -W)."""
    last = flat.shape[-1] - 1
    dev = _xp.device(flat)
    steps = xp.asarray([1, w, -1, -w], dtype=index.dtype, device=dev)
    near = _xp.take_along_last(xp, flat, xp.clip(index + steps, 0, last))  # (..., K, 4)
    after, before = near[..., 0:2], near[..., 2:4]
    inner = (coords > 0) & (coords < xp.asarray([w - 1, h - 1], dtype=coords.dtype, device=dev))
    # Compared, not subtracted: equal infinite neighbours (-inf on both sides of a log one-hot
    # map's peak) give no shift, where sign(-inf - -inf) would be NaN.
    sign = xp.astype(after > before, flat.dtype) - xp.astype(after < before, flat.dtype)
    return xp.where(inner, 0.25 * sign, xp.zeros((), dtype=flat.dtype, device=dev))
