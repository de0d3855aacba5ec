"""How often ``landmark_codecs.testing.assert_unbiased`` raises: on correct samplers (its false-alarm
rate, which must be at most ``alpha``) and on biased ones (its power), at the default 2000 samples.

Each check is one landmark (two coordinates, so Bonferroni over 2), sampled with the library's
own H3R encoder on an 8x8 map and decoded by argmax: one sampled one-hot target per draw, exactly
as ``assert_unbiased(sample, coords)`` would draw it, for 10,000 independent checks at once. The
decision per check is the checker's: a coordinate's samples non-finite, spread over more than the
support width, or its mean further from the truth than :func:`unbiased_bound`.

    python benchmarks/unbiased.py            # about a minute on 2 cores
    python benchmarks/unbiased.py --checks 2000 --samples 500
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import landmark_codecs as lc
from landmark_codecs.testing import unbiased_bound

SIZE = (8, 8)


def scenario_coords(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, 1, 2)`` true coordinates (representable: H3R's expectation can reach them)."""
    w = SIZE[0] - 1
    if name == "near integers":  # within 1/1024 px of an integer: the sampler rarely varies
        base = rng.integers(1, w, size=(n, 1, 2)).astype(np.float64)
        return base + rng.uniform(-1 / 1024, 1 / 1024, size=(n, 1, 2))
    if name == "away from integers":
        return rng.uniform(0.0, w, size=(n, 1, 2))
    if name == "borders":  # on the first/last pixel centre or within 1e-9 px of it
        edge = rng.choice([0.0, 1e-9, w - 1e-9, float(w)], size=(n, 1, 2))
        return edge
    if name == "half-integers":  # the largest variance a rounding sampler has (1/4)
        return rng.integers(0, w, size=(n, 1, 2)) + 0.5
    raise ValueError(name)


def decisions(
    coords: np.ndarray, *, samples: int, alpha: float, bias: float, dtype: type, rng: np.random.Generator
) -> np.ndarray:
    """Whether the checker rejects each of the ``len(coords)`` checks (``(n,)`` bool).

    ``bias`` > 0 rounds up with probability ``frac + bias`` (a biased sampler)."""
    c = coords.astype(dtype)
    total = np.zeros(coords.shape)
    total_sq = np.zeros(coords.shape)
    lo = np.full(coords.shape, np.inf)
    hi = np.full(coords.shape, -np.inf)
    for _ in range(samples):
        noise = (rng.random(coords.shape) - bias).astype(dtype)
        maps, _ = lc.encode_randomized_rounding(c, heatmap_size=SIZE, noise=noise)
        d = lc.decode_argmax(maps)[0].astype(np.float64)
        total += d
        total_sq += d * d
        np.minimum(lo, d, out=lo)
        np.maximum(hi, d, out=hi)
    truth = lc.representable_coords(c, heatmap_size=SIZE).astype(np.float64)
    mean = total / samples
    var = np.maximum(total_sq - samples * mean * mean, 0.0) / (samples - 1)
    bound = unbiased_bound(var, samples, alpha=alpha, support_width=1.0, n_tests=2)
    bad = ~np.isfinite(mean) | (hi - lo > 1.0) | (np.abs(mean - truth) > bound)
    return bad.reshape(len(coords), -1).any(axis=-1)


def clopper_pearson_upper(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided upper confidence bound on a rate from ``k`` events in ``n`` trials."""
    if k == n:
        return 1.0
    if k == 0:
        return 1.0 - (1.0 - confidence) ** (1.0 / n)
    from scipy import stats

    return float(stats.beta.ppf(confidence, k + 1, n - k))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=10_000, help="checks per dtype (split over the scenarios)")
    parser.add_argument("--samples", type=int, default=2000, help="n_samples of each check (assert_unbiased's default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    scenarios = ["near integers", "away from integers", "borders", "half-integers"]
    per = args.checks // len(scenarios)
    print(
        f"False alarms on correct samplers: H3R sampled + argmax, 8x8, n_samples={args.samples}, {per} checks per row"
    )
    print(f"{'dtype':<8} {'scenario':<20} {'alpha':>7} {'rejected':>9} {'rate':>8} {'95% upper':>10}")
    for dtype in (np.float64, np.float32):
        for alpha in (1e-6, 0.05):
            rejected, n = 0, 0
            for name in scenarios:
                r = decisions(
                    scenario_coords(name, per, rng), samples=args.samples, alpha=alpha, bias=0.0, dtype=dtype, rng=rng
                )
                rejected, n = rejected + int(r.sum()), n + len(r)
                print(
                    f"{np.dtype(dtype).name:<8} {name:<20} {alpha:>7g} {int(r.sum()):>9} {r.mean():>8.4f} {clopper_pearson_upper(int(r.sum()), len(r)):>10.2e}"
                )
            print(
                f"{np.dtype(dtype).name:<8} {'all':<20} {alpha:>7g} {rejected:>9} {rejected / n:>8.4f} {clopper_pearson_upper(rejected, n):>10.2e}"
            )
    print()
    print(
        f"Power: rounding up with probability frac + bias at half-integers (variance 1/4, the hardest case), alpha=1e-6, {per} checks per row"
    )
    print(f"{'bias (px)':>9} {'detected':>9} {'bound (px)':>11}")
    worst_bound = float(unbiased_bound(0.25, args.samples, alpha=1e-6, support_width=1.0, n_tests=2))
    for bias in (0.02, 0.05, 0.08, 0.1, 0.12, 0.15, 0.2):
        r = decisions(
            scenario_coords("half-integers", per, rng),
            samples=args.samples,
            alpha=1e-6,
            bias=bias,
            dtype=np.float64,
            rng=rng,
        )
        print(f"{bias:>9.2f} {r.mean():>9.4f} {worst_bound:>11.4f}")
    print(
        f"\nThe bound at variance 0 (a sampler that never varies) is {float(unbiased_bound(0.0, args.samples, alpha=1e-6, support_width=1.0, n_tests=2)):.4f} px;"
        f" 1 / sqrt(n_samples) = {1 / math.sqrt(args.samples):.4f}."
    )


if __name__ == "__main__":
    main()
