"""Direct regression labels: coordinates as fractions of the image, and RLE's score from a sigma.

Regression heads (DeepPose, RLE) predict each landmark's ``(x, y)`` divided by the input's
``(W, H)``; RLE's head (Li et al., ICCV 2021) adds a ``(sigma_x, sigma_y)`` per landmark, the
scale of its residual distribution, and scores a landmark ``1 - mean(sigma)``. These two
functions are that mapping and its inverse: a scaling, so a round trip is exact to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from . import _common, _xp
from . import _validation as check
from ._xp import Array

__all__ = ["RegressionTargets", "decode_regression", "encode_regression"]


class RegressionTargets(NamedTuple):
    """What :func:`encode_regression` returns."""

    labels: Array
    """``(..., K, 2)`` ``(x / W, y / H)``; 0 for landmarks of weight 0."""
    weights: Array
    """``(..., K)`` per-landmark weights (0: NaN or weight 0 given)."""


def encode_regression(
    coords: Array, /, *, image_size: Sequence[int], weights: Array | None = None
) -> RegressionTargets:
    """Regression labels: each landmark's ``(x, y)`` divided by the image's ``(W, H)``.

    ``labels = coords / (W, H)``: mmpose's ``RegressionLabel`` mapping (a checkpoint trained with
    it reads the same labels), so the image's valid range ``[-0.5, W - 0.5)`` maps to
    ``[-0.5 / W, 1 - 0.5 / W)``. A NaN landmark or one of weight 0 gets label 0 and weight 0 (a
    loss weighted by ``weights`` never sees a NaN); no landmark is dropped for its position (the
    codec gives those outside the image weight 0).

    Args:
        coords: ``(..., K, 2)`` landmark ``(x, y)`` in image pixels, real floating.
        image_size: ``(W, H)`` of the network input.
        weights: optional ``(..., K)`` per-landmark weights or visibility (bool or numeric).

    Returns:
        ``(labels, weights)``: ``(..., K, 2)`` and ``(..., K)``, in ``coords``' dtype and device.

    Convention:
        ``(x, y)`` in image pixels, integers at pixel centres; labels in units of the width and
        height; sizes are ``(W, H)``.

    >>> import numpy as np
    >>> encode_regression(np.array([[48.0, 64.0]]), image_size=(192, 256)).labels.tolist()
    [[0.25, 0.25]]
    """
    xp = _xp.namespace(coords=coords, weights=weights)
    _common.check_landmarks(xp, coords, weights)
    size = check.size(image_size, "image_size")
    return _xp.in_float32(xp, regression_targets, coords, weights=weights, size=size)


def regression_targets(xp: Any, coords: Array, *, weights: Array | None, size: tuple[int, int]) -> RegressionTargets:
    """Kernel of :func:`encode_regression` (inputs checked)."""
    safe, weights, _ = _common.landmark_weights(xp, coords, weights, size, outside="draw")
    scale = xp.asarray([float(size[0]), float(size[1])], dtype=coords.dtype, device=_xp.device(coords))
    return RegressionTargets(safe / scale, weights)


def decode_regression(labels: Array, /, *, image_size: Sequence[int]) -> _common.DecodedLandmarks:
    """Coordinates from regression labels, with RLE's score where a sigma is given.

    ``(..., K, 2)`` labels ``(x / W, y / H)`` decode to ``labels * (W, H)`` with score 1;
    ``(..., K, 4)`` labels ``(x / W, y / H, sigma_x, sigma_y)`` (RLE's head) score each landmark
    ``1 - (sigma_x + sigma_y) / 2``, as RLE and mmpose do (a sigma from a sigmoid gives a score in
    ``(0, 1)``; others are passed through, not clipped). Elementwise: a NaN label spoils only its
    own landmark.

    Args:
        labels: ``(..., K, 2)`` or ``(..., K, 4)`` real floating network outputs.
        image_size: ``(W, H)`` of the network input.

    Returns:
        ``(coords, scores)``: ``(..., K, 2)`` ``(x, y)`` in image pixels and ``(..., K)`` scores.

    Convention:
        As :func:`encode_regression`.

    Reference:
        J. Li, S. Bian, A. Zeng, C. Wang, B. Pang, W. Liu and C. Lu, "Human Pose Regression with
        Residual Log-likelihood Estimation", ICCV 2021.

    >>> import numpy as np
    >>> coords, scores = decode_regression(np.array([[0.25, 0.25, 0.1, 0.3]]), image_size=(192, 256))
    >>> coords.tolist(), [round(s, 6) for s in scores.tolist()]
    ([[48.0, 64.0]], [0.8])
    """
    xp = _xp.namespace(labels=labels)
    check_labels(xp, labels)
    return _xp.in_float32(xp, regression_coords, labels, size=check.size(image_size, "image_size"))


def check_labels(xp: Any, labels: Array) -> None:
    """The boundary's check of regression labels (``decode_regression``'s and the codec's)."""
    check.floating(xp, labels, "labels")
    if labels.ndim < 2 or labels.shape[-1] not in (2, 4):
        raise ValueError(
            "labels must have shape (..., K, 2), or (..., K, 4) with RLE's (sigma_x, sigma_y), "
            f"got shape {tuple(labels.shape)}"
        )


def regression_coords(xp: Any, labels: Array, *, size: tuple[int, int]) -> _common.DecodedLandmarks:
    """Kernel of :func:`decode_regression` (labels checked)."""
    scale = xp.asarray([float(size[0]), float(size[1])], dtype=labels.dtype, device=_xp.device(labels))
    coords = labels[..., :2] * scale
    if labels.shape[-1] == 2:
        scores = xp.ones(labels.shape[:-1], dtype=labels.dtype, device=_xp.device(labels))
    else:
        scores = 1 - (labels[..., 2] * 0.5 + labels[..., 3] * 0.5)  # halved first: no overflow at the float limit
    return _common.DecodedLandmarks(coords, scores)
