"""Argument checks that raise clear errors naming the argument, the expected and the actual value.

Only shapes, dtypes and Python hyperparameters are checked: array *values* are never inspected,
since that would need a host round-trip.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._xp import Array


def floating(xp: Any, x: Array, name: str) -> None:
    if not is_dtype(xp, x, ("real floating",)):
        raise TypeError(f"{name} must have a real floating dtype, got {x.dtype}")


def promoted(xp: Any, *arrays: Array) -> tuple[Array, ...]:
    """The floating ``arrays`` (already checked) cast to their promoted dtype: the library's one
    rule for mixed floating dtypes (the array API's promotion, float32 with float64 is float64;
    docs/conventions.md). Weights and noise are not data: they take the data's dtype instead."""
    dtype = xp.result_type(*arrays)
    return tuple(a if a.dtype == dtype else xp.astype(a, dtype) for a in arrays)


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


def indices(values: Any, k: int | None) -> tuple[int, ...]:
    """Landmark indices, the library's one rule for them: each an int (``operator.index``: a
    Python or NumPy integer; not a bool, not a float) in ``[0, k)`` (any when ``k`` is None).

    Raises a bare TypeError (not a sequence of ints) or a ValueError whose argument is the first
    index out of range: each caller names its argument and what it expected (eye corners,
    excluded joints, a boundary chain, a flip permutation).
    """
    try:
        if any(isinstance(i, bool) for i in values):
            raise TypeError
        out = tuple(operator.index(i) for i in values)
    except TypeError:
        raise TypeError from None
    if k is not None:
        bad = [i for i in out if not 0 <= i < k]
        if bad:
            raise ValueError(bad[0])
    return out


def maps_and_offsets(xp: Any, maps: Array, offsets: Array, name: str) -> tuple[Array, Array]:
    """``(..., K, H, W)`` score maps and their ``(..., K, 2, H, W)`` x/y offset maps (UDP's
    combined target, DeepLabCut's locref), checked; returned promoted to one dtype."""
    heatmaps(xp, maps)
    floating(xp, offsets, name)
    maps, offsets = promoted(xp, maps, offsets)
    h, w = maps.shape[-2:]
    want = (*maps.shape[:-2], 2, h, w)
    if tuple(offsets.shape) != want:
        raise ValueError(
            f"{name} must have shape (..., K, 2, H, W) = {want} for heatmaps of shape {tuple(maps.shape)}, "
            f"got shape {tuple(offsets.shape)}"
        )
    return maps, offsets


def size(value: Sequence[int], name: str = "heatmap_size") -> tuple[int, int]:
    """A (width, height) pair of positive Python ints whose product is at most MAX_PIXELS."""
    if isinstance(value, (set, frozenset, dict, str, bytes)):
        raise TypeError(f"{name} must be an ordered (width, height) pair of positive ints, got {value!r}")
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
    if out[0] * out[1] > MAX_PIXELS:
        raise ValueError(f"{name} must describe at most 2**40 pixels (width * height), got {value!r}")
    return out[0], out[1]


def positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive Python number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return float(value)


# A Gaussian of sigma below this, centred half a pixel from the nearest pixel centre on both
# axes, underflows float32 there (exp(-0.5 / (2 sigma^2)) < 1e-37): the map would be all zero
# while the landmark keeps weight 1. Above the maximum, sigma^2 and the template's derivatives
# leave float32's range; no map is that large.
MIN_SIGMA, MAX_SIGMA = 0.06, 1e4
# A map of more pixels cannot be allocated on any machine (flat indices are int64 everywhere).
MAX_PIXELS = 2**40


def sigma(value: float, name: str = "sigma") -> float:
    """A Gaussian's standard deviation in heatmap pixels (or bins), within [MIN_SIGMA, MAX_SIGMA]."""
    value = positive(value, name)
    if not MIN_SIGMA <= value <= MAX_SIGMA:
        raise ValueError(
            f"{name} must be between {MIN_SIGMA} and {MAX_SIGMA:g} pixels (below, the Gaussian underflows to an all-zero map "
            f"between pixel centres; above, its square and derivatives leave float32's range), got {value!r}"
        )
    return value


def axis_sigmas(value: Any, name: str = "sigma") -> tuple[float, float]:
    """One sigma for both axes, or an ``(x, y)`` pair: each checked as :func:`sigma`."""
    if isinstance(value, (tuple, list)) or (isinstance(value, np.ndarray) and value.ndim == 1):
        if len(value) != 2:
            raise ValueError(f"{name} must be one number or an (x, y) pair, got {len(value)} values: {value!r}")
        return sigma(_number(value[0]), f"{name}[0]"), sigma(_number(value[1]), f"{name}[1]")
    s = sigma(_number(value), name)
    return s, s


def _number(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


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


MAX_ITERATIONS = 100  # Newton steps converge in a handful; a cap keeps the cost bounded


def iterations(value: int, name: str = "iterations") -> int:
    positive_int(value, name)
    if value > MAX_ITERATIONS:
        raise ValueError(
            f"{name} must be at most {MAX_ITERATIONS} (Newton steps converge in a few; the cost grows with each), got {value}"
        )
    return value


def odd_size(value: int, name: str, why: str) -> int:
    """A positive odd int (a window with a centre pixel)."""
    positive_int(value, name)
    if value % 2 == 0:
        raise ValueError(f"{name} must be odd so {why}, got {value}")
    return value


def boolean(value: bool, name: str) -> bool:
    """A Python (or NumPy) bool: a string such as "False" is truthy and would silently act as True."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def seed(value: int | None, name: str = "seed") -> int | None:
    """None or a non-negative int (what ``numpy.random.default_rng`` takes as a seed)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be None or a non-negative int, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be None or a non-negative int, got {value!r}")
    return int(value)


def choice(value: str, name: str, options: Sequence[str]) -> str:
    if not isinstance(value, str):
        expected = ", ".join(repr(o) for o in options)
        raise TypeError(f"{name} must be one of {expected}, got {value!r}")
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
    if not is_dtype(xp, x, ("bool", "integral", "real floating")):
        raise TypeError(f"{name} must be a boolean, integer or real floating array, got {x.dtype}")


def real_host(x: np.ndarray, name: str, *, booleans: bool = False) -> np.ndarray:
    """A host array of real numbers (integers or floats; booleans only where ``booleans``):
    casting a complex, string or object array to float would drop its imaginary part or fail
    inside NumPy, and a boolean one would become 0/1 coordinates."""
    kinds = "iuf" + ("b" if booleans else "")
    if x.dtype.kind not in kinds:
        expected = "booleans or real numbers" if booleans else "real numbers (integer or floating)"
        raise TypeError(f"{name} must hold {expected}, got dtype {x.dtype}")
    return x


# The array API's dtype kinds as NumPy's dtype.kind letters: NumPy arrays are checked by a
# string test (a few hundred ns) instead of xp.isdtype (a few microseconds, per call and kind).
_NUMPY_KINDS = {"real floating": "f", "integral": "iu", "bool": "b", "complex floating": "c", "numeric": "iufc"}


def is_dtype(xp: Any, x: Array, kinds: tuple[str, ...]) -> bool:
    """``xp.isdtype`` for any of ``kinds``; False for dtypes the standard does not know (object, str)."""
    if type(x) is np.ndarray and all(k in _NUMPY_KINDS for k in kinds):  # not JAX's: its bfloat16 is kind "V"
        return x.dtype.kind in "".join(_NUMPY_KINDS[k] for k in kinds)
    try:
        return any(xp.isdtype(x.dtype, kind) for kind in kinds)
    except (TypeError, ValueError):
        return False


def leading_axes(x: Array, shape: tuple[int, ...], name: str) -> None:
    """``x`` matches ``shape``'s leading axes (size-1 axes allowed): a per-landmark array."""
    if x.ndim > len(shape) or not all(a in (1, b) for a, b in zip(x.shape, shape)):
        raise ValueError(
            f"{name} must have pred's shape {shape} or its leading axes {shape[: x.ndim]} "
            f"(one value per landmark), with size-1 axes allowed, got shape {tuple(x.shape)}"
        )
