"""Property checks that raise AssertionError with the offending landmarks."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _validation as check
from .. import _xp

Array = Any

__all__ = ["assert_lossless", "assert_unbiased", "to_numpy", "unbiased_bound"]


def to_numpy(x: Array, /) -> np.ndarray:
    """Any array (NumPy, torch on any device, array API libraries) as a NumPy array, for checks.

    Raises a TypeError for what is not an array (an object without ``__dlpack__``, a ragged
    sequence).
    """
    return _xp.to_host(x, "x")


def _coordinates(x: Array, name: str) -> np.ndarray:
    """An argument of real ``(..., K, 2)`` coordinates as float64 (a TypeError for complex, bool,
    string or object arrays, which a cast would turn into other numbers)."""
    return check.real_host(_xp.to_host(x, name), name).astype(np.float64)


def _returned(x: Array, what: str) -> np.ndarray:
    """A codec's returned coordinates as float64; complex or non-numeric ones fail the check
    (an AssertionError: the codec is broken), instead of being cast to something that passes."""
    try:
        return check.real_host(_xp.to_host(x, what), what).astype(np.float64)
    except TypeError as err:
        raise AssertionError(f"{err}: a codec returns real coordinates") from None


def _tolerance(atol: float) -> float:
    """``atol`` checked: a non-negative finite Python number (True would pass as 1 px)."""
    if isinstance(atol, bool) or not isinstance(atol, (int, float)):
        raise TypeError(f"atol must be a non-negative finite number of pixels, got {atol!r}")
    if not 0.0 <= atol < math.inf:
        raise ValueError(f"atol must be a non-negative finite number of pixels, got {atol!r}")
    return float(atol)


def _describe(where: np.ndarray, coords: np.ndarray, got: np.ndarray, want: np.ndarray, limit: int = 5) -> str:
    idx = np.argwhere(where)[:limit]
    lines = [
        f"  landmark {tuple(int(v) for v in i)}: coords {coords[tuple(i)].tolist()} -> {got[tuple(i)].tolist()}, expected {want[tuple(i)].tolist()}"
        for i in idx
    ]
    return "\n".join(lines)


def assert_lossless(
    encode: Callable[[Array], Array],
    decode: Callable[[Array], Array],
    coords: Array,
    /,
    *,
    atol: float,
    expected: Array | None = None,
) -> None:
    """Check ``decode(encode(coords)) == expected`` to ``atol`` per axis (heatmap pixels).

    ``encode`` maps ``(..., K, 2)`` coordinates to whatever ``decode`` takes; ``decode`` returns
    ``(..., K, 2)`` coordinates (or a ``(coords, scores)`` pair). ``expected`` defaults to
    ``coords``; pass e.g. ``representable_coords(coords, ...)`` where the claim is stated so.

    Raises:
        TypeError, ValueError: ``coords`` or ``expected`` not real arrays, ``atol`` not a
            non-negative finite number.
        AssertionError: a landmark off by more than ``atol`` (NaN included), decoded coordinates
            of another shape or not real (complex ones fail, never cast); the message names the
            landmarks.
    """
    atol = _tolerance(atol)
    c = _coordinates(coords, "coords")
    want = c if expected is None else _coordinates(expected, "expected")
    decoded = decode(encode(coords))
    if isinstance(decoded, tuple):
        decoded = decoded[0]
    got = _returned(decoded, "decode's coordinates")
    if got.shape != want.shape:
        raise AssertionError(f"decoded shape {got.shape} != expected shape {want.shape}")
    err = np.abs(got - want).max(axis=-1, initial=0.0)
    bad = ~(err <= atol)
    if bad.any():
        raise AssertionError(
            f"not lossless: {int(bad.sum())} of {bad.size} landmarks off by more than {atol:g} px "
            f"(worst {float(np.nanmax(err)) if np.isfinite(err).any() else float('nan'):.3g} px)\n{_describe(bad, c, got, want)}"
        )


def _check_options(n_samples: int, alpha: float, support_width: float) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(f"n_samples must be an int >= 2 (a variance needs two samples), got {n_samples!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (0.0 < alpha < 1.0):
        raise ValueError(f"alpha must be a false-alarm rate in (0, 1), got {alpha!r}")
    if (
        isinstance(support_width, bool)
        or not isinstance(support_width, (int, float))
        or not (0.0 < support_width < math.inf)
    ):
        raise ValueError(
            f"support_width must be positive and finite (the width of the interval the samples lie in), got {support_width!r}"
        )


def unbiased_bound(
    variance: Any, n_samples: int, /, *, alpha: float, support_width: float, n_tests: int = 1
) -> np.ndarray:
    """The largest ``|mean - truth|`` :func:`assert_unbiased` accepts: a deviation bound that holds
    with probability ``>= 1 - alpha / n_tests`` for any sampler with that support width.

    With ``n`` samples of a variable in an interval of width ``b``, sample variance ``V``
    (``n - 1`` in the denominator) and ``delta = alpha / n_tests``, the bound is the smaller of

    - Hoeffding's, two-sided at ``delta / 2``: ``b * sqrt(ln(4 / delta) / (2 n))``;
    - the empirical Bernstein bound (Maurer & Pontil, COLT 2009, Theorem 4), two-sided at
      ``delta / 2``: ``sqrt(2 V ln(8 / delta) / n) + 7 b ln(8 / delta) / (3 (n - 1))``.

    Each fails with probability at most ``delta / 2``, so their minimum fails with at most
    ``delta`` (a union bound). Neither assumes normality; the second adapts to small variance
    (a rounding sampler near an integer), the first to large.
    """
    _check_options(n_samples, alpha, support_width)
    if isinstance(n_tests, bool) or not isinstance(n_tests, int) or n_tests < 1:
        raise ValueError(f"n_tests must be a positive int (the number of coordinates tested together), got {n_tests!r}")
    try:
        v = np.asarray(variance, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"variance must be real numbers (the samples' variance per coordinate), got {variance!r}"
        ) from None
    delta = alpha / n_tests
    b = float(support_width)
    hoeffding = b * math.sqrt(math.log(4.0 / delta) / (2.0 * n_samples))
    log_term = math.log(8.0 / delta)
    bernstein = np.sqrt(2.0 * np.maximum(v, 0.0) * log_term / n_samples) + 7.0 * b * log_term / (3.0 * (n_samples - 1))
    return np.minimum(hoeffding, bernstein)


def assert_unbiased(
    sample: Callable[[Array, np.random.Generator], Array],
    coords: Array,
    /,
    *,
    n_samples: int = 2000,
    alpha: float = 1e-6,
    support_width: float = 1.0,
    seed: int = 0,
) -> None:
    """Check that a stochastic codec's decoded samples average to ``coords``.

    ``sample(coords, rng)`` encodes once with randomness from ``rng`` and decodes, returning
    ``(..., K, 2)`` coordinates. It is called ``n_samples`` times (seeded by ``seed``). Every
    coordinate's samples must lie in an interval of width ``support_width`` (1 px for
    randomized rounding: ``floor(c)`` or ``floor(c) + 1``; a cell's width for sampling within a
    cell) and their mean within :func:`unbiased_bound` of the truth, at family-wise false-alarm
    rate ``alpha`` (Bonferroni over the ``m`` coordinates: each is tested at ``alpha / m``).

    The guarantee: for any sampler that is unbiased and whose samples lie in such an interval,
    the check raises with probability at most ``alpha``, whatever the distribution (no normal
    approximation; a sampler that shows no variation, as a rounding sampler near an integer
    often does, is no special case). Measured: docs/testing.md. The price of that guarantee is
    power: at the default 2000 samples, a rounding sampler at a half-integer (variance 1/4, the
    hardest case) biased by 0.08 px is caught in 99.7 % of checks, by 0.05 px in 22 %; more
    samples shrink the detectable bias as ``1 / sqrt(n_samples)``.

    Raises:
        ValueError: ``n_samples`` < 2, ``alpha`` not in (0, 1), ``support_width`` not positive
            and finite, a negative ``seed``, or non-finite ``coords``.
        TypeError: ``coords`` not a real array, ``seed`` not None or an int.
        AssertionError: a sample is NaN or infinite, not real, has the wrong shape, spreads over more than
            ``support_width``, or the mean of a coordinate is further from the truth than the
            bound; the message names the landmarks.
    """
    _check_options(n_samples, alpha, support_width)
    rng = np.random.default_rng(check.seed(seed))
    c = _coordinates(coords, "coords")
    if not np.all(np.isfinite(c)):
        raise ValueError("coords must be finite: a NaN or infinite truth has no mean to test against")
    draws = np.empty((n_samples, *c.shape))
    for i in range(n_samples):
        d = _returned(sample(coords, rng), "sample's coordinates")
        if d.shape != c.shape:
            raise AssertionError(f"sample returned shape {d.shape}, expected the coordinates' shape {c.shape}")
        draws[i] = d
    finite = np.isfinite(draws)
    if not finite.all():
        bad = np.any(~finite.all(axis=0), axis=-1)
        count = int((~finite).any(axis=-1).sum())
        first = draws[int(np.argmax(~finite.reshape(n_samples, -1).all(axis=1)))]  # the first draw with one
        raise AssertionError(
            f"not unbiased: {count} sampled landmarks are NaN or infinite (first such draw shown)\n{_describe(bad, c, first, c)}"
        )
    spread = draws.max(axis=0) - draws.min(axis=0)
    if np.any(spread > support_width):
        bad = np.any(spread > support_width, axis=-1)
        raise AssertionError(
            f"samples spread over {float(spread.max()):.6g} > support_width={support_width:g}: the bound needs the width of "
            f"the interval the samples lie in\n{_describe(bad, c, draws.mean(axis=0), c)}"
        )
    mean = draws.mean(axis=0)
    bound = unbiased_bound(
        draws.var(axis=0, ddof=1), n_samples, alpha=alpha, support_width=support_width, n_tests=max(1, c.size)
    )
    off = np.abs(mean - c) > bound
    if off.any():
        bad = np.any(off, axis=-1)
        ratio = float(np.max(np.abs(mean - c) / bound))
        raise AssertionError(
            f"biased at family-wise false-alarm rate {alpha:g}: {int(off.sum())} coordinates' means are off by more "
            f"than their bound (worst {ratio:.3g}x the bound)\n{_describe(bad, c, mean, c)}"
        )
