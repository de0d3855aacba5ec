"""Coordinate conventions: image <-> heatmap coordinates, flips and the valid range.

Convention
----------
Coordinates are arrays of shape ``(..., K, 2)`` holding ``(x, y)``; sizes are ``(width, height)``.
In heatmap coordinates an integer is a pixel *centre*: pixel (row ``i``, column ``j``) covers
``x in [j - 0.5, j + 0.5)`` and ``y in [i - 0.5, i + 0.5)``, so the map's valid range is
``[-0.5, W - 0.5) x [-0.5, H - 0.5)``.

Image -> heatmap conversions (per axis, ``W_i`` the image and ``W_h`` the heatmap width):

``"pixel_center"`` (area-preserving, the default)
    ``x_h = (x_i + 0.5) * W_h / W_i - 0.5``. Image pixel centres are integers too, and the image's
    valid range ``[-0.5, W_i - 0.5)`` maps exactly onto the heatmap's.
``"legacy"``
    ``x_h = x_i * W_h / W_i``: the plain division by the stride used by the MSRA / SimpleBaseline
    code and H3R's repository. It shifts the map by ``0.5 - 0.5 * W_h / W_i`` heatmap pixels
    against ``"pixel_center"`` (0.375 px at stride 4).
``"udp"``
    ``x_h = x_i * (W_h - 1) / (W_i - 1)``: UDP's corner-aligned transform (Huang et al., CVPR 2020),
    which maps the first and last pixel centres onto each other. Needs ``W_i, W_h >= 2``.

Each is affine, ``x_h = a * x_i + b``, and :func:`heatmap_to_image` applies its exact inverse
(round trips agree to a few units in the last place).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from . import _common, _xp
from . import _validation as check
from ._xp import Array

Convention = Literal["pixel_center", "legacy", "udp"]
CONVENTIONS: tuple[str, ...] = ("pixel_center", "legacy", "udp")

__all__ = ["CONVENTIONS", "Convention", "flip_horizontal", "heatmap_to_image", "image_to_heatmap", "in_heatmap"]


Transform = tuple[tuple[float, float], tuple[float, float]]


def scale_offset(image_size: Sequence[int], heatmap_size: Sequence[int], convention: str) -> Transform:
    """The checked per-axis ``(scale, offset)`` of the image -> heatmap map ``x_h = scale * x_i + offset``.

    What a boundary computes once from its size and convention arguments; the kernels
    (:func:`to_heatmap`, :func:`to_image`) apply it without further checks.
    """
    check.choice(convention, "convention", CONVENTIONS)
    return affine(check.size(image_size, "image_size"), check.size(heatmap_size, "heatmap_size"), convention)


def affine(image: tuple[int, int], heatmap: tuple[int, int], convention: str) -> Transform:
    """:func:`scale_offset` for sizes and a convention already checked (``(W, H)`` int tuples):
    what a boundary that checked them calls. (Not an ``lru_cache``: torch.compile warns on one,
    and these few float operations cost less than its lookup would save.)"""
    scales: list[float] = []
    offsets: list[float] = []
    for n_i, n_h, axis in ((image[0], heatmap[0], "width"), (image[1], heatmap[1], "height")):
        if convention == "pixel_center":
            a = n_h / n_i
            scales.append(a)
            offsets.append(0.5 * a - 0.5)
        elif convention == "legacy":
            scales.append(n_h / n_i)
            offsets.append(0.0)
        else:
            if n_i < 2 or n_h < 2:
                raise ValueError(
                    f'convention="udp" needs an image and heatmap {axis} of at least 2, got image_size={image}, '
                    f"heatmap_size={heatmap}"
                )
            scales.append((n_h - 1) / (n_i - 1))
            offsets.append(0.0)
    return (scales[0], scales[1]), (offsets[0], offsets[1])


def to_heatmap(xp: Any, coords: Array, transform: Transform) -> Array:
    """Kernel of :func:`image_to_heatmap` (``transform`` from :func:`scale_offset`)."""
    offset, scale = _xp.constants(xp, _xp.device(coords), _transform_arrays, coords.dtype, transform)
    return coords * scale + offset


def to_image(xp: Any, coords: Array, transform: Transform) -> Array:
    """Kernel of :func:`heatmap_to_image`: the inverse of :func:`to_heatmap`."""
    (ax, ay), (bx, by) = transform
    if ax == ay and bx == by:
        # One scale and offset for both axes (square crops, SimCC): Python scalars, which take the
        # coordinates' dtype, give the same values as the per-axis arrays without building them.
        return (coords if bx == 0 else coords - bx) / ax
    offset, scale = _xp.constants(xp, _xp.device(coords), _transform_arrays, coords.dtype, transform)
    return (coords - offset) / scale


def _transform_arrays(xp: Any, device: Any, dtype: Any, transform: Transform) -> tuple[Array, Array]:
    """A transform's ``((bx, by), (ax, ay))`` as arrays (per plan: :func:`_xp.constants`)."""
    (ax, ay), (bx, by) = transform
    return xp.asarray([bx, by], dtype=dtype, device=device), xp.asarray([ax, ay], dtype=dtype, device=device)


def image_to_heatmap(
    coords: Array,
    /,
    *,
    image_size: Sequence[int],
    heatmap_size: Sequence[int],
    convention: Convention = "pixel_center",
) -> Array:
    """Image pixel coordinates ``(..., K, 2)`` to heatmap pixel coordinates ``(..., K, 2)``.

    Args:
        coords: ``(..., K, 2)`` landmark ``(x, y)`` in image pixels (integers are pixel centres).
        image_size: ``(width, height)`` of the image (the network input).
        heatmap_size: ``(width, height)`` of the heatmap.
        convention: ``"pixel_center"``, ``"legacy"`` or ``"udp"``; see :mod:`landmark_codecs.coords`.

    Returns:
        ``(..., K, 2)`` heatmap coordinates, same dtype and device as ``coords``.

    Convention:
        ``(x, y)`` order; the image's valid range ``[-0.5, W_i - 0.5)`` maps onto the heatmap's
        ``[-0.5, W_h - 0.5)`` under ``"pixel_center"``.

    >>> import numpy as np
    >>> image_to_heatmap(np.array([[0.0, 255.0]]), image_size=(256, 256), heatmap_size=(64, 64)).tolist()
    [[-0.375, 63.375]]
    >>> image_to_heatmap(np.array([[0.0, 255.0]]), image_size=(256, 256), heatmap_size=(64, 64), convention="udp").tolist()
    [[0.0, 63.0]]
    """
    xp = _xp.namespace(coords=coords)
    check.coords(xp, coords)
    return _xp.in_float32(xp, to_heatmap, coords, scale_offset(image_size, heatmap_size, convention))


def heatmap_to_image(
    coords: Array,
    /,
    *,
    image_size: Sequence[int],
    heatmap_size: Sequence[int],
    convention: Convention = "pixel_center",
) -> Array:
    """Heatmap pixel coordinates ``(..., K, 2)`` back to image pixels: the inverse of :func:`image_to_heatmap`.

    Args:
        coords: ``(..., K, 2)`` ``(x, y)`` in heatmap pixels.
        image_size: ``(width, height)`` of the image.
        heatmap_size: ``(width, height)`` of the heatmap.
        convention: the one the heatmap coordinates were made with.

    Returns:
        ``(..., K, 2)`` image coordinates, same dtype and device as ``coords``.

    >>> import numpy as np
    >>> heatmap_to_image(np.array([[-0.375, 63.375]]), image_size=(256, 256), heatmap_size=(64, 64)).tolist()
    [[0.0, 255.0]]
    """
    xp = _xp.namespace(coords=coords)
    check.coords(xp, coords)
    return _xp.in_float32(xp, to_image, coords, scale_offset(image_size, heatmap_size, convention))


def flip_horizontal(coords: Array, /, *, width: int, flip_index: Sequence[int] | None = None) -> Array:
    """Mirror coordinates ``(..., K, 2)`` left-right in a map or image of ``width`` pixels.

    ``x' = width - 1 - x``: under the pixel-centre convention this is exactly the coordinate of
    the same point after reversing the map's last axis (``heatmaps[..., ::-1]``), so the valid
    range ``[-0.5, width - 0.5)`` maps onto itself (up to its open end).

    Args:
        coords: ``(..., K, 2)`` ``(x, y)`` in pixels of the map or image being flipped.
        width: its width in pixels.
        flip_index: optional permutation of the K landmarks (e.g. left eye <-> right eye);
            landmark ``k`` of the result is the flipped landmark ``flip_index[k]``.

    >>> import numpy as np
    >>> flip_horizontal(np.array([[0.0, 1.0], [2.5, 3.0]]), width=4, flip_index=[1, 0]).tolist()
    [[0.5, 3.0], [3.0, 1.0]]
    """
    xp = _xp.namespace(coords=coords)
    check.coords(xp, coords)
    check.positive_int(width, "width")
    order = None if flip_index is None else _permutation(flip_index, coords.shape[-2])
    return _xp.in_float32(xp, _flip, coords, width, order)


def _permutation(flip_index: Sequence[int], k: int) -> list[int]:
    try:  # ints only: int(2.7) would truncate a wrong table into a plausible one
        values = list(flip_index) if isinstance(flip_index, (list, tuple)) else _xp.to_host(flip_index).tolist()
        order = list(check.indices(values, None))
    except Exception:  # whatever it is, it is not a table of ints
        raise TypeError(f"flip_index must be a sequence of int landmark indices, got {flip_index!r}") from None
    if sorted(order) != list(range(k)):
        raise ValueError(f"flip_index must be a permutation of range({k}) (K = coords.shape[-2]), got {order!r}")
    return order


def _flip(xp: Any, coords: Array, width: int, order: list[int] | None) -> Array:
    dev = _xp.device(coords)
    out = coords * xp.asarray([-1.0, 1.0], dtype=coords.dtype, device=dev) + xp.asarray(
        [width - 1.0, 0.0], dtype=coords.dtype, device=dev
    )
    if order is not None:
        out = xp.take(out, xp.asarray(order, device=dev), axis=-2)
    return out


def in_heatmap(coords: Array, /, *, heatmap_size: Sequence[int]) -> Array:
    """Boolean ``(..., K)``: the landmark is finite and inside ``[-0.5, W - 0.5) x [-0.5, H - 0.5)``.

    >>> import numpy as np
    >>> in_heatmap(np.array([[-0.5, 0.0], [3.5, 0.0], [np.nan, 1.0]]), heatmap_size=(4, 4)).tolist()
    [True, False, False]
    """
    xp = _xp.namespace(coords=coords)
    check.coords(xp, coords)
    return _common.inside_map(coords, *check.size(heatmap_size))
