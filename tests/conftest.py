"""Backends, conversions and hypothesis profiles shared by the tests.

Profiles (select with LANDMARK_CODECS_PROFILE): "default" (fast, random), "ci" (the same size,
derandomized; chosen automatically when CI is set) and "thorough" (many more examples).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from landmark_codecs.testing import to_numpy

settings.register_profile("default", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True, print_blob=True)
settings.register_profile("thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("LANDMARK_CODECS_PROFILE", "ci" if os.environ.get("CI") else "default"))

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


def pytest_generate_tests(metafunc):
    # A plain parameter, not a fixture, so hypothesis-driven tests can take it too.
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS)


def numpy_of(x) -> np.ndarray:
    return to_numpy(x)
