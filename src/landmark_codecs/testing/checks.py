"""Property checks that raise AssertionError with the offending landmarks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _xp

Array = Any

__all__ = ["assert_lossless", "assert_unbiased", "to_numpy"]


def to_numpy(x: Array) -> np.ndarray:
    """Any array (NumPy, torch on any device, array API libraries) as a NumPy array, for checks."""
    return _xp.to_host(x)


def _describe(where: np.ndarray, coords: np.ndarray, got: np.ndarray, want: np.ndarray, limit: int = 5) -> str:
    idx = np.argwhere(where)[:limit]
    lines = [f"  landmark {tuple(int(v) for v in i)}: coords {coords[tuple(i)].tolist()} -> {got[tuple(i)].tolist()}, expected {want[tuple(i)].tolist()}" for i in idx]
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
    """
    decoded = decode(encode(coords))
    if isinstance(decoded, tuple):
        decoded = decoded[0]
    got = to_numpy(decoded).astype(np.float64)
    c = to_numpy(coords).astype(np.float64)
    want = c if expected is None else to_numpy(expected).astype(np.float64)
    if got.shape != want.shape:
        raise AssertionError(f"decoded shape {got.shape} != expected shape {want.shape}")
    err = np.abs(got - want).max(axis=-1, initial=0.0)
    bad = ~(err <= atol)
    if bad.any():
        raise AssertionError(
            f"not lossless: {int(bad.sum())} of {bad.size} landmarks off by more than {atol:g} px "
            f"(worst {float(np.nanmax(err)) if np.isfinite(err).any() else float('nan'):.3g} px)\n{_describe(bad, c, got, want)}"
        )


def assert_unbiased(
    sample: Callable[[Array, np.random.Generator], Array],
    coords: Array,
    /,
    *,
    n_samples: int = 2000,
    alpha: float = 1e-6,
    seed: int = 0,
) -> None:
    """Check that a stochastic codec's decoded samples average to ``coords``.

    ``sample(coords, rng)`` encodes once with randomness from ``rng`` and decodes, returning
    ``(..., K, 2)`` coordinates. It is called ``n_samples`` times (seeded). Each coordinate's
    mean error is tested with a two-sided one-sample t-test (scipy.stats) at family-wise false
    alarm rate ``alpha`` (Bonferroni over all coordinates); coordinates whose samples never vary
    must equal the truth exactly (to 1e-12 relative). The t-test's normal approximation needs
    ``n_samples`` in the hundreds or more.
    """
    from scipy import stats

    rng = np.random.default_rng(seed)
    c = to_numpy(coords).astype(np.float64)
    draws = np.stack([to_numpy(sample(coords, rng)).astype(np.float64) for _ in range(n_samples)])
    err = draws - c
    mean = err.mean(axis=0)
    constant = np.all(draws == draws[:1], axis=0)
    exact = np.abs(err[0]) <= 1e-12 * np.maximum(1.0, np.abs(c))
    if np.any(constant & ~exact):
        bad = np.any(constant & ~exact, axis=-1)
        raise AssertionError(f"biased: deterministic output differs from the truth\n{_describe(bad, c, c + mean, c)}")
    p = np.ones(c.shape)
    varying = ~constant
    if varying.any():
        p[varying] = stats.ttest_1samp(err[:, varying], 0.0, axis=0).pvalue
    threshold = alpha / max(1, p.size)
    if np.any(p < threshold):
        bad = np.any(p < threshold, axis=-1)
        raise AssertionError(
            f"biased at family-wise false-alarm rate {alpha:g}: smallest p = {float(p.min()):.3g} < {threshold:.3g}\n"
            f"{_describe(bad, c, c + mean, c)}"
        )
