"""UDP: unbiased data processing (Huang et al., CVPR 2020): corner-aligned coordinates end to end.

UDP's point is that encoding and decoding must use one coordinate transform, and that the
transform should map the image's first and last pixel centres onto the heatmap's:
``x_h = x_i * (W_h - 1) / (W_i - 1)`` (``convention="udp"`` in :mod:`landmark_codecs.coords`),
with flips ``x -> W - 1 - x`` in both spaces. These two functions are that pipeline in image
pixels: a sub-pixel Gaussian target at the transformed landmark, and DARK decoding followed by
the inverse transform, so a round trip is exact up to the decoder's error, times
``(W_i - 1) / (W_h - 1)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import _common, _xp
from ._xp import Array
from .coords import heatmap_to_image, image_to_heatmap
from .dark import decode_dark
from .gaussian import encode_gaussian

__all__ = ["decode_udp", "encode_udp"]


@_xp.half_in_float32
def encode_udp(
    coords: Array,
    /,
    *,
    image_size: Sequence[int],
    heatmap_size: Sequence[int],
    sigma: float,
    weights: Array | None = None,
) -> _common.HeatmapTargets:
    """UDP's target: a sub-pixel Gaussian at the landmark moved onto the heatmap corner-aligned.

    ``encode_gaussian(image_to_heatmap(coords, convention="udp"), rounding="none")``.

    Args:
        coords: ``(..., K, 2)`` landmark ``(x, y)`` in image pixels, real floating.
        image_size: ``(W_i, H_i)`` of the network input, each >= 2.
        heatmap_size: ``(W_h, H_h)``, each >= 2.
        sigma: the Gaussian's standard deviation in heatmap pixels, 0.06 to 1e4.
        weights: optional ``(..., K)`` per-landmark weights or visibility (bool or numeric);
            0 leaves the landmark out.

    Returns:
        ``(heatmaps, weights)``: ``(..., K, H_h, W_h)`` maps (peak 1) and ``(..., K)`` weights, as
        :func:`encode_gaussian`. When the heatmap is no larger than the image, every landmark in
        the image's valid range ``[-0.5, W_i - 0.5)`` lands inside the heatmap's.

    Convention:
        ``(x, y)`` in image pixels, integers at pixel centres; sizes are ``(W, H)``.

    Reference:
        J. Huang, Z. Zhu, F. Guo and G. Huang, "The Devil is in the Details: Delving into Unbiased
        Data Processing for Human Pose Estimation", CVPR 2020.

    >>> import numpy as np
    >>> maps, _ = encode_udp(np.array([[0.0, 255.0]]), image_size=(256, 256), heatmap_size=(64, 64), sigma=2.0)
    >>> maps.shape, float(maps[0, 63, 0])
    ((1, 64, 64), 1.0)
    """
    in_map = image_to_heatmap(coords, image_size=image_size, heatmap_size=heatmap_size, convention="udp")
    return encode_gaussian(in_map, heatmap_size=heatmap_size, sigma=sigma, rounding="none", weights=weights)


@_xp.half_in_float32
def decode_udp(
    heatmaps: Array,
    /,
    *,
    image_size: Sequence[int],
    sigma: float,
    iterations: int = 4,
    kernel_size: int | None = None,
) -> _common.DecodedLandmarks:
    """UDP's decoding: :func:`decode_dark`, then back to image pixels corner-aligned.

    On targets from :func:`encode_udp` with the same ``sigma >= 1`` and sizes it returns the
    landmark to DARK's precision (1e-9 heatmap px in float64) times ``(W_i - 1) / (W_h - 1)``.

    Args:
        heatmaps: ``(..., K, H_h, W_h)`` real floating maps (probabilities or non-negative scores),
            ``W_h, H_h >= 2``.
        image_size: ``(W_i, H_i)`` of the network input, each >= 2.
        sigma: the targets' sigma in heatmap pixels (DARK's blur).
        iterations: Newton steps of :func:`decode_dark`.
        kernel_size: :func:`decode_dark`'s blur kernel side.

    Returns:
        ``(coords, scores)``: ``(..., K, 2)`` ``(x, y)`` in image pixels and ``(..., K)`` map maxima,
        as :func:`decode_dark` (NaN maps: NaN coordinates and score 0).

    Convention:
        ``(x, y)`` in image pixels, integers at pixel centres; sizes are ``(W, H)``.

    >>> import numpy as np
    >>> maps, _ = encode_udp(np.array([[10.3, 200.7]]), image_size=(256, 256), heatmap_size=(64, 64), sigma=2.0)
    >>> coords, _ = decode_udp(maps, image_size=(256, 256), sigma=2.0)
    >>> np.round(coords, 6).tolist()
    [[10.3, 200.7]]
    """
    coords, scores = decode_dark(heatmaps, sigma=sigma, iterations=iterations, kernel_size=kernel_size)
    h, w = heatmaps.shape[-2:]
    return _common.DecodedLandmarks(
        heatmap_to_image(coords, image_size=image_size, heatmap_size=(w, h), convention="udp"), scores
    )
