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

import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from . import _common, _xp
from . import _validation as check
from ._xp import Array
from .coords import Transform, affine, to_heatmap, to_image
from .dark import dark_coords, dark_options, nan_landmarks
from .gaussian import gaussian_targets

__all__ = ["UDPCombinedTargets", "decode_udp", "decode_udp_combined", "encode_udp", "encode_udp_combined"]


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
    xp = _xp.namespace(coords=coords, weights=weights)
    _common.check_landmarks(xp, coords, weights)
    size, sigma = check.size(heatmap_size), check.sigma(sigma)
    transform = affine(check.size(image_size, "image_size"), size, "udp")
    return _xp.in_float32(xp, udp_targets, coords, weights=weights, transform=transform, size=size, sigma=sigma)


def udp_targets(
    xp: Any, coords: Array, *, weights: Array | None, transform: Transform, size: tuple[int, int], sigma: float
) -> _common.HeatmapTargets:
    """Kernel of :func:`encode_udp` (inputs checked; ``transform`` UDP's, image to heatmap)."""
    in_map = to_heatmap(xp, coords, transform)
    return gaussian_targets(xp, in_map, weights=weights, size=size, sigma=sigma, rounding="none", outside="empty")


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
    xp = _xp.namespace(heatmaps=heatmaps)
    check.heatmaps(xp, heatmaps)
    h, w = heatmaps.shape[-2:]
    transform = affine(check.size(image_size, "image_size"), (w, h), "udp")  # a 1-px map refused before refining
    options = dark_options((w, h), sigma, iterations, kernel_size)
    return _xp.in_float32(xp, udp_coords, heatmaps, transform=transform, **options)


def udp_coords(
    xp: Any, heatmaps: Array, *, transform: Transform, sigma: float, iterations: int, radius: int
) -> _common.DecodedLandmarks:
    """Kernel of :func:`decode_udp` (maps checked; ``transform`` UDP's, image to heatmap)."""
    coords, scores = dark_coords(xp, heatmaps, sigma=sigma, iterations=iterations, radius=radius)
    return _common.DecodedLandmarks(to_image(xp, coords, transform), scores)


class UDPCombinedTargets(NamedTuple):
    """What :func:`encode_udp_combined` returns."""

    heatmaps: Array
    """``(..., K, H, W)`` disks: 1 within ``radius`` heatmap pixels of the landmark, else 0."""
    offsets: Array
    """``(..., K, 2, H, W)`` ``((x - j) / radius, (y - i) / radius)`` at every pixel ``(j, i)``."""
    weights: Array
    """``(..., K)`` per-landmark weights (0: NaN, outside the map or weight 0 given)."""


def encode_udp_combined(
    coords: Array,
    /,
    *,
    image_size: Sequence[int],
    heatmap_size: Sequence[int],
    radius: float,
    weights: Array | None = None,
    outside: Literal["empty", "draw"] = "empty",
) -> UDPCombinedTargets:
    """UDP's combined classification and offset target, corner-aligned (mmpose's ``"combined"``).

    Per landmark at heatmap position ``(x, y)`` (``image_to_heatmap(convention="udp")``): a disk
    map, 1 where ``(x - j)^2 + (y - i)^2 <= radius^2``, and two offset maps
    ``(x - j) / radius``, ``(y - i) / radius`` over the whole map (a loss weights them by the
    disk). Any pixel's offsets point exactly at the landmark, so :func:`decode_udp_combined`
    returns it to float rounding wherever its argmax falls in the disk.

    Args:
        coords: ``(..., K, 2)`` landmark ``(x, y)`` in image pixels, real floating.
        image_size: ``(W_i, H_i)`` of the network input, each >= 2.
        heatmap_size: ``(W_h, H_h)``, each >= 2.
        radius: the disk's radius in heatmap pixels, > 0 (mmpose: ``radius_factor * max(W_h,
            H_h)``, 0.0546875 * 64 = 3.5 by default).
        weights: optional ``(..., K)`` per-landmark weights or visibility (bool or numeric);
            0 leaves the landmark out.
        outside: what a finite landmark outside the map gets: ``"empty"`` (all-zero maps and
            weight 0) or ``"draw"`` (the part of its disk on the map, its offsets and its
            weight: mmpose's target for keypoints just outside the crop).

    Returns:
        :class:`UDPCombinedTargets` ``(heatmaps, offsets, weights)`` in ``coords``' dtype and
        device; landmarks of weight 0 or NaN (or, with ``outside="empty"``, outside
        ``[-0.5, W_h - 0.5) x [-0.5, H_h - 0.5)`` in heatmap pixels) get weight 0 and all-zero
        maps.

    Convention:
        ``(x, y)`` in image pixels, integers at pixel centres; offsets in units of ``radius``,
        ``x`` first; sizes are ``(W, H)``.

    Reference:
        J. Huang, Z. Zhu, F. Guo and G. Huang, "The Devil is in the Details: Delving into Unbiased
        Data Processing for Human Pose Estimation", CVPR 2020.

    >>> import numpy as np
    >>> t = encode_udp_combined(np.array([[10.3, 200.7]]), image_size=(256, 256), heatmap_size=(64, 64), radius=3.5)
    >>> t.heatmaps.shape, t.offsets.shape, int(t.heatmaps.sum())
    ((1, 64, 64), (1, 2, 64, 64), 36)
    """
    xp = _xp.namespace(coords=coords, weights=weights)
    _common.check_landmarks(xp, coords, weights)
    size = check.size(heatmap_size)
    transform = affine(check.size(image_size, "image_size"), size, "udp")
    check.choice(outside, "outside", ("empty", "draw"))
    options = {"transform": transform, "size": size, "radius": check.positive(radius, "radius")}
    return _xp.in_float32(xp, udp_combined_targets, coords, weights=weights, outside=outside, **options)


def udp_combined_targets(
    xp: Any,
    coords: Array,
    *,
    weights: Array | None,
    transform: Transform,
    size: tuple[int, int],
    radius: float,
    outside: str,
) -> UDPCombinedTargets:
    """Kernel of :func:`encode_udp_combined` (inputs checked)."""
    r, (w, h) = radius, size
    in_map = to_heatmap(xp, coords, transform)
    safe, weights, keep = _common.landmark_weights(xp, in_map, weights, size, outside)
    zero = xp.zeros((), dtype=in_map.dtype, device=_xp.device(in_map))
    dx = (safe[..., 0:1] - _common.grid(xp, w, in_map)) / r  # (..., K, W)
    dy = (safe[..., 1:2] - _common.grid(xp, h, in_map)) / r  # (..., K, H)
    dx = xp.where(keep[..., None], dx, zero)
    dy = xp.where(keep[..., None], dy, zero)
    shape = (*in_map.shape[:-1], h, w)
    ox = xp.broadcast_to(dx[..., None, :], shape)
    oy = xp.broadcast_to(dy[..., :, None], shape)
    inside = (ox * ox + oy * oy <= 1) & keep[..., None, None]
    disk = xp.astype(inside, in_map.dtype)
    return UDPCombinedTargets(disk, xp.stack([ox, oy], axis=-3), weights)


def decode_udp_combined(
    heatmaps: Array,
    offsets: Array,
    /,
    *,
    image_size: Sequence[int],
    radius: float,
    kernel_size: int | None = 23,
) -> _common.DecodedLandmarks:
    """UDP's combined decoding: the blurred disk map's argmax plus the offsets there.

    Each ``(H, W)`` map is blurred by a Gaussian of side ``kernel_size`` (sigma
    ``0.3 ((kernel_size - 1) / 2 - 1) + 0.8``, OpenCV's rule, borders reflected as OpenCV's
    default ``BORDER_REFLECT_101``: OpenCV's ``GaussianBlur`` for sides from 11 up, which mmpose
    calls with ``2 * blur_kernel_size + 1 = 23``; OpenCV takes fixed kernels up to 9);
    ``None`` skips the blur. At the blurred map's first maximum ``(j, i)`` the landmark is
    ``(j, i) + radius * offsets[:, i, j]``, mapped back to image pixels corner-aligned (UDP's
    scale, the encoder's: mmpose's decoder scales by ``W_i / (W_h - 1)`` and is off by
    ``x / (W_i - 1)``). On :func:`encode_udp_combined`'s targets it returns the landmark to float
    rounding. Scores are the blurred maxima. A map holding NaN or an infinite value (which the
    blur spreads over it) decodes to NaN coordinates with score 0; other landmarks are unaffected.

    Args:
        heatmaps: ``(..., K, H_h, W_h)`` real floating disk scores, ``W_h, H_h >= 2``.
        offsets: ``(..., K, 2, H_h, W_h)`` offset maps in units of ``radius``.
        image_size: ``(W_i, H_i)`` of the network input, each >= 2.
        radius: the encoder's radius in heatmap pixels.
        kernel_size: odd side of the blur kernel, at most ``2 max(W_h, H_h) - 1`` (a wider one
            only wraps around the reflected border), or ``None``.

    Returns:
        ``(coords, scores)``: ``(..., K, 2)`` ``(x, y)`` in image pixels and ``(..., K)``.

    Convention:
        As :func:`encode_udp_combined`.

    >>> import numpy as np
    >>> t = encode_udp_combined(np.array([[10.3, 200.7]]), image_size=(256, 256), heatmap_size=(64, 64), radius=3.5)
    >>> coords, _ = decode_udp_combined(t.heatmaps, t.offsets, image_size=(256, 256), radius=3.5)
    >>> np.round(coords, 6).tolist()
    [[10.3, 200.7]]
    """
    xp = _xp.namespace(heatmaps=heatmaps, offsets=offsets)
    heatmaps, offsets = check_combined(xp, heatmaps, offsets)
    h, w = heatmaps.shape[-2:]
    options = udp_combined_decode_options(image_size, (w, h), radius, kernel_size)
    return _xp.in_float32(xp, udp_combined_coords, heatmaps, offsets, **options)


def check_combined(xp: Any, heatmaps: Array, offsets: Array) -> tuple[Array, Array]:
    """The boundary's checks of UDP's combined outputs; returns them promoted to one dtype."""
    heatmaps, offsets = check.maps_and_offsets(xp, heatmaps, offsets, "offsets")
    h, w = heatmaps.shape[-2:]
    if min(w, h) < 2:  # before kernel_size's bound, which a one-pixel map would seem to break
        raise ValueError(
            "heatmaps must be at least 2x2: UDP's convention maps the first and last pixel centres to "
            f"the image's, got {h}x{w} maps (shape {tuple(heatmaps.shape)})"
        )
    return heatmaps, offsets


def udp_combined_decode_options(
    image_size: Sequence[int], size: tuple[int, int], radius: float, kernel_size: int | None
) -> dict[str, Any]:
    """:func:`decode_udp_combined`'s options checked for ``(W, H)`` maps (at least 2x2), as
    :func:`udp_combined_coords` takes them."""
    w, h = size
    r = check.positive(radius, "radius")
    if kernel_size is not None:
        check.odd_size(kernel_size, "kernel_size", "the kernel is centred on a pixel")
        if kernel_size > 2 * max(w, h) - 1:
            raise ValueError(
                f"kernel_size must be at most 2 * max(W, H) - 1 = {2 * max(w, h) - 1} for {h}x{w} maps "
                f"(a wider kernel only wraps around the reflected border), got {kernel_size}"
            )
    return {
        "transform": affine(check.size(image_size, "image_size"), size, "udp"),
        "radius": r,
        "kernel_size": kernel_size,
    }


def udp_combined_coords(
    xp: Any, heatmaps: Array, offsets: Array, *, transform: Transform, radius: float, kernel_size: int | None
) -> _common.DecodedLandmarks:
    """Kernel of :func:`decode_udp_combined` (maps and offsets checked, of one dtype)."""
    r = radius
    h, w = heatmaps.shape[-2:]
    if kernel_size is not None:
        # a non-finite value would spread over the whole map (and NumPy warn of inf * 0): such
        # maps are blurred as zeros and their landmarks set to NaN below
        finite = xp.all(xp.isfinite(heatmaps), axis=(-2, -1))
        zero = xp.zeros((), dtype=heatmaps.dtype, device=_xp.device(heatmaps))
        blurred = _blur(xp, xp.where(finite[..., None, None], heatmaps, zero), kernel_size)
    else:
        finite = xp.all(xp.isfinite(heatmaps), axis=(-2, -1))
        blurred = heatmaps
    index, scores = _xp.argmax_2d(xp, blurred)  # (..., K, 1), (..., K)
    scores = xp.where(finite, scores, xp.asarray(math.nan, dtype=scores.dtype, device=_xp.device(scores)))
    flat = xp.reshape(offsets, (*offsets.shape[:-2], h * w))  # (..., K, 2, H*W)
    at = _xp.take_along_last(xp, flat, index[..., None, :])[..., 0]  # (..., K, 2)
    x, y = _common.unravel(xp, index[..., 0], w, heatmaps.dtype)
    centre = xp.stack([x, y], axis=-1) + at * r
    coords, scores = nan_landmarks(xp, centre, scores)
    return _common.DecodedLandmarks(to_image(xp, coords, transform), scores)


def _blur(xp: Any, maps: Array, kernel_size: int) -> Array:
    """``B_h @ maps @ B_w^T``: the separable Gaussian with reflected borders, as two matrix products."""
    h, w = maps.shape[-2:]
    dtype, device = maps.dtype, _xp.device(maps)
    bh = _blur_matrix(xp, h, kernel_size, dtype, device)
    bw = bh if w == h else _blur_matrix(xp, w, kernel_size, dtype, device)
    return xp.matmul(xp.matmul(bh, maps), xp.matrix_transpose(bw))


def _blur_matrix(xp: Any, n: int, kernel_size: int, dtype: Any, device: Any) -> Array:
    """The ``(n, n)`` matrix of a 1-D Gaussian blur with ``BORDER_REFLECT_101`` (``dcb|abcd|cba``).

    Built in the maps' namespace (traceable, no host table): a source position ``i + t`` reads
    pixel ``reflect((i + t) mod P)``, ``P = 2 (n - 1)``, so the taps fold onto ``P`` residues, and
    pixel ``j`` is read from residues ``j`` and ``P - j`` (one residue at the two ends): entry
    ``(i, j)`` sums the folded taps at ``(j - i) mod P`` and ``(P - j - i) mod P``. Cost
    ``O(n^2 + kernel_size * P)``, whatever the kernel's width.
    """
    if n == 1:
        return xp.ones((1, 1), dtype=dtype, device=device)
    half, period = kernel_size // 2, 2 * (n - 1)
    sigma = 0.3 * ((kernel_size - 1) * 0.5 - 1) + 0.8
    offsets = xp.arange(-half, half + 1, device=device)
    taps = xp.astype(offsets, dtype)
    kernel = xp.exp(taps * taps * (-0.5 / (sigma * sigma)))
    kernel = kernel / xp.sum(kernel)
    residues = xp.arange(period, device=device)
    zero = xp.zeros((), dtype=dtype, device=device)
    folded = xp.sum(xp.where((offsets % period)[:, None] == residues[None, :], kernel[:, None], zero), axis=0)
    i, j = xp.arange(n, device=device)[:, None], xp.arange(n, device=device)[None, :]
    direct = xp.take(folded, xp.reshape((j - i) % period, (-1,)), axis=0)
    mirrored = xp.take(folded, xp.reshape((period - j - i) % period, (-1,)), axis=0)
    inner = xp.reshape(xp.broadcast_to((j > 0) & (j < n - 1), (n, n)), (-1,))  # the ends have one residue
    mirrored = xp.where(inner, mirrored, zero)
    return xp.reshape(direct + mirrored, (n, n))
