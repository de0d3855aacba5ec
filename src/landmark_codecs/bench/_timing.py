"""The one timing helper of ``landmark-codecs bench --speed`` and every script in ``benchmarks/``.

Calls are timed interleaved (each round runs every case once, so all see the same machine load),
after warm-up calls (caches, lazy imports, JIT compilation), with the device synchronised before
and after each timed call (CUDA runs asynchronously: an unsynchronised timer measures the launch).
This machine is shared and noisy: report ratios of medians taken in one run, never seconds alone.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["device_sync", "median_times"]


def median_times(
    cases: Mapping[str, Callable[[], Any]],
    *,
    repeat: int,
    sync: Callable[[], None] | None = None,
    number: int = 1,
    warmup: int = 1,
) -> dict[str, float]:
    """Seconds per call of each case: the median over ``repeat`` interleaved rounds, each round
    timing ``number`` back-to-back calls of every case in turn (divided by ``number``)."""
    if repeat < 1 or number < 1 or warmup < 0:
        raise ValueError(f"repeat and number must be >= 1 and warmup >= 0, got {repeat}, {number}, {warmup}")
    sync = sync or (lambda: None)
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    sync()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            sync()
            start = time.perf_counter()
            for _ in range(number):
                fn()
            sync()
            times[name].append((time.perf_counter() - start) / number)
    return {name: statistics.median(t) for name, t in times.items()}


def device_sync(device: Any) -> Callable[[], None]:
    """``torch.cuda.synchronize`` for a CUDA device (a string such as ``"cuda:0"`` or a
    ``torch.device``), else a no-op."""
    if str(device).startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    return lambda: None


def cpu_line() -> str:
    """The CPU's model, and NumPy's version with the SIMD levels it dispatches to: what a timing
    ratio means nothing without."""
    import numpy as np

    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import importlib

    try:
        umath: Any = importlib.import_module("numpy._core._multiarray_umath")
    except ImportError:  # NumPy 1.x
        umath = importlib.import_module("numpy.core._multiarray_umath")
    features = umath.__cpu_features__
    simd = [
        k for k in ("SSE42", "AVX2", "AVX512F", "AVX512_SKX", "AVX512_ICL", "AVX512_SPR", "ASIMD") if features.get(k)
    ]
    return f"{model}; NumPy {np.__version__} with {', '.join(simd) or 'no listed SIMD'}"
