"""Helpers shared by the tests: the backends a test runs on and conversions to and from them.

Import them from here (``from helpers import convert``), not from conftest.py, which pytest
loads as a plugin and discourages importing.
"""

from __future__ import annotations

import numpy as np
import pytest

from landmark_codecs.testing import to_numpy

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

try:
    import array_api_strict
except ImportError:  # pragma: no cover
    array_api_strict = None

BACKENDS = ["numpy", "array_api_strict", "torch"]
if torch is not None and torch.cuda.is_available():
    BACKENDS.append("torch_cuda")


def convert(a: np.ndarray, backend: str):
    """A copy of NumPy array ``a`` on ``backend``."""
    a = np.array(a)  # copy: tests must never share memory with the backend array
    if backend == "numpy":
        return a
    if backend == "array_api_strict":
        if array_api_strict is None:
            pytest.skip("array_api_strict is not installed")
        return array_api_strict.asarray(a)
    if torch is None:
        pytest.skip("torch is not installed")
    t = torch.asarray(a)
    return t.cuda() if backend == "torch_cuda" else t


def numpy_of(x) -> np.ndarray:
    return to_numpy(x)


def full_step_count(xp, step, rows, state, steps):
    """``_xp.iterate_rows`` without its NumPy shortcut: every row through every step (the
    reference that stopping fixed rows must equal bit for bit)."""
    for _ in range(steps):
        state = step(*rows, *state)
    return state
