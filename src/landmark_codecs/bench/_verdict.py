"""What the synthetic runs and ``--predictions`` share: the verdict's tie test, and the text
helpers that keep every printed line within 100 columns."""

from __future__ import annotations

import textwrap

import numpy as np

# Every line the bench prints fits a 100-column terminal (tested on the CLI's output).
COLUMNS = 100


def wrap(text: str, indent: str = "") -> str:
    return textwrap.fill(text, COLUMNS, subsequent_indent=indent, break_on_hyphens=False)


def figure(value: float) -> str:
    """Four significant digits (three under 1e-3), in at most 8 characters."""
    if value == 0 or 1e-3 <= abs(value) < 1e4:
        return f"{value:.4g}"
    return f"{value:.0f}" if abs(value) >= 1e4 else f"{value:.1e}"


# A codec ties with the best when the 95 % confidence interval of their mean paired difference
# (normal approximation, 1.96 sd / sqrt(n)) contains 0.
Z95 = 1.959963984540054
# Differences below this are float rounding (the exact codecs' errors are 1e-17..1e-14), which
# differs between CPUs: they tie, whatever their spread, so that a verdict is the same anywhere.
EXACT = 1e-9


def tied(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Whether the paired samples ``a`` and ``b`` (one value per face, instance or landmark, the
    same seeded units for both) are statistically indistinguishable: the 95 % confidence
    interval of their mean difference, over the units where both are finite, contains 0, or
    that difference is float rounding (at most ``EXACT``)."""
    if a is None or b is None or a.shape != b.shape:
        return False
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    if d.size == 0:
        return False
    mean = float(np.mean(d))
    if abs(mean) <= EXACT:
        return True
    spread = float(np.std(d, ddof=1)) if d.size > 1 else 0.0
    return abs(mean) <= Z95 * spread / np.sqrt(d.size) or mean == 0.0
