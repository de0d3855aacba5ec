"""Hypothesis strategies: heatmap sizes and landmark coordinates with their borders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from .. import _validation as check

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as err:  # pragma: no cover - exercised only without the test extra
    raise ImportError('landmark_codecs.testing needs hypothesis: pip install "landmark-codecs[test]"') from err

__all__ = ["heatmap_sizes", "landmarks"]


def heatmap_sizes(
    *, min_side: int = 1, max_side: int = 256, square: bool | None = None
) -> st.SearchStrategy[tuple[int, int]]:
    """``(W, H)`` pairs with sides in ``[min_side, max_side]``; ``square=True`` forces ``W == H``.

    ``1 <= min_side <= max_side`` (a map has at least one pixel per side).
    """
    check.positive_int(min_side, "min_side")
    check.positive_int(max_side, "max_side")
    if max_side < min_side:
        raise ValueError(f"max_side must be >= min_side, got min_side={min_side}, max_side={max_side}")
    if square is not None:
        check.boolean(square, "square")
    side = st.integers(min_side, max_side)
    if square:
        return side.map(lambda s: (s, s))
    return st.tuples(side, side)


def _axis_values(n: int, region: str, dtype: Any) -> st.SearchStrategy[float]:
    """Coordinates on one axis of ``n`` pixels, with the region's ends and integers mixed in."""
    dt = np.dtype(dtype)
    width = 8 * dt.itemsize
    if region == "valid":
        lo, hi = -0.5, n - 0.5
        top = float(np.nextafter(dt.type(hi), dt.type(-np.inf)))
        interval = st.floats(lo, hi, exclude_max=True, width=width)
    else:
        lo, hi = 0.0, n - 1.0
        top = hi
        interval = st.floats(lo, hi, width=width)
    special = [lo, top, 0.0, n - 1.0, float(np.nextafter(dt.type(0.0), dt.type(1.0)))]
    if region == "valid":
        special.append(float(np.nextafter(dt.type(lo), dt.type(0.0))))
    special = [v for v in special if lo <= v <= top]
    return st.one_of(st.sampled_from(special), st.integers(0, n - 1).map(float), interval)


_ONE_TO_SIX = st.integers(1, 6)  # landmarks' default count: built once, not per call


@st.composite
def landmarks(
    draw: Any,
    heatmap_size: Sequence[int],
    *,
    num_landmarks: int | st.SearchStrategy[int] = _ONE_TO_SIX,
    batch_shape: Sequence[int] | st.SearchStrategy[tuple[int, ...]] = (),
    region: Literal["valid", "representable"] = "valid",
    dtype: Any = np.float64,
) -> np.ndarray:
    """NumPy ``(*batch_shape, K, 2)`` landmark ``(x, y)`` in heatmap pixels.

    ``region="valid"`` draws from the library's valid range ``[-0.5, W - 0.5) x [-0.5, H - 0.5)``,
    ``"representable"`` from ``[0, W - 1] x [0, H - 1]``, where expectation-based codecs are exact.
    The ends of the range, the largest value below its open end, integers and the smallest
    positive float are drawn often, since that is where codecs break.
    """
    if region not in ("valid", "representable"):
        raise ValueError(f'region must be "valid" or "representable", got {region!r}')
    try:
        floating = np.dtype(dtype) in (np.float16, np.float32, np.float64)  # what hypothesis draws
    except TypeError:
        floating = False
    if not floating:
        raise TypeError(f"dtype must be a real floating dtype (float16, float32 or float64), got {dtype!r}")
    w, h = check.size(heatmap_size)
    k = draw(num_landmarks) if isinstance(num_landmarks, st.SearchStrategy) else num_landmarks
    batch = tuple(draw(batch_shape) if isinstance(batch_shape, st.SearchStrategy) else batch_shape)
    shape = (*batch, k)
    xs = draw(hnp.arrays(dtype, shape, elements=_axis_values(w, region, dtype)))
    ys = draw(hnp.arrays(dtype, shape, elements=_axis_values(h, region, dtype)))
    return np.stack([xs, ys], axis=-1)
