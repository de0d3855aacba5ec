"""Argument checks that raise clear errors naming the argument, the expected and the actual value.

Only shapes, dtypes and Python hyperparameters are checked: array *values* are never inspected,
since that would need a host round-trip.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

Array = Any


def floating(xp: Any, x: Array, name: str) -> None:
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"{name} must have a real floating dtype, got {x.dtype}")


def coords(xp: Any, x: Array, name: str = "coords") -> None:
    if x.ndim < 2 or x.shape[-1] != 2:
        raise ValueError(f"{name} must have shape (..., K, 2) with (x, y) in the last axis, got shape {tuple(x.shape)}")
    floating(xp, x, name)


def heatmaps(xp: Any, x: Array, name: str = "heatmaps") -> None:
    if x.ndim < 3:
        raise ValueError(f"{name} must have shape (..., K, H, W), got shape {tuple(x.shape)}")
    if x.shape[-1] < 1 or x.shape[-2] < 1:
        raise ValueError(f"{name} must have H >= 1 and W >= 1, got shape {tuple(x.shape)}")
    floating(xp, x, name)


def size(value: Sequence[int], name: str = "heatmap_size") -> tuple[int, int]:
    """A (width, height) pair of positive Python ints."""
    try:
        w, h = value
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a (width, height) pair of positive ints, got {value!r}") from None
    out = []
    for v in (w, h):
        try:
            if isinstance(v, bool):
                raise TypeError
            out.append(operator.index(v))
        except TypeError:
            raise TypeError(f"{name} must be a (width, height) pair of positive ints, got {value!r}") from None
        if out[-1] < 1:
            raise ValueError(f"{name} must be a (width, height) pair of positive ints, got {value!r}")
    return out[0], out[1]


def positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive Python number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return float(value)


def finite(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a finite Python number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def at_least(value: float, bound: float, name: str, why: str) -> float:
    value = finite(value, name)
    if value < bound:
        raise ValueError(f"{name} must be >= {bound} ({why}), got {value!r}")
    return value


def positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def odd_size(value: int, name: str, why: str) -> int:
    """A positive odd int (a window with a centre pixel)."""
    positive_int(value, name)
    if value % 2 == 0:
        raise ValueError(f"{name} must be odd so {why}, got {value}")
    return value


def choice(value: str, name: str, options: Sequence[str]) -> str:
    if value not in options:
        expected = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name} must be one of {expected}, got {value!r}")
    return value


def same_shape(x: Array, expected: tuple[int, ...], name: str, what: str) -> None:
    if tuple(x.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)} ({what}), got shape {tuple(x.shape)}")


def broadcasts_to(x: Array, shape: tuple[int, ...], name: str, what: str) -> None:
    """``x`` broadcasts to ``shape`` without enlarging it (standard right-aligned broadcasting)."""
    xs, shape = tuple(x.shape), tuple(shape)
    ok = len(xs) <= len(shape) and all(a in (1, b) for a, b in zip(reversed(xs), reversed(shape)))
    if not ok:
        raise ValueError(f"{name} must broadcast to shape {shape} ({what}), got shape {xs}")


def numeric(xp: Any, x: Array, name: str) -> None:
    if not (xp.isdtype(x.dtype, "bool") or xp.isdtype(x.dtype, "integral") or xp.isdtype(x.dtype, "real floating")):
        raise TypeError(f"{name} must be a boolean, integer or real floating array, got {x.dtype}")


def leading_axes(x: Array, shape: tuple[int, ...], name: str) -> None:
    """``x`` matches ``shape``'s leading axes (size-1 axes allowed): a per-landmark array."""
    if x.ndim > len(shape) or not all(a in (1, b) for a, b in zip(x.shape, shape)):
        raise ValueError(
            f"{name} must have pred's shape {shape} or its leading axes {shape[: x.ndim]} "
            f"(one value per landmark), with size-1 axes allowed, got shape {tuple(x.shape)}"
        )
