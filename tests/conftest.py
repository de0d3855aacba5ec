"""The hypothesis profiles, and the ``backend`` parameter of every test that takes one (helpers.py).

Profiles (select with LANDMARK_CODECS_PROFILE): "default" (fast, random), "ci" (the same size,
derandomized; chosen automatically when CI is set) and "thorough" (many more examples).
"""

from __future__ import annotations

import os

from helpers import BACKENDS
from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True, print_blob=True)
settings.register_profile("thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("LANDMARK_CODECS_PROFILE", "ci" if os.environ.get("CI") else "default"))


def pytest_generate_tests(metafunc):
    # A plain parameter, not a fixture, so hypothesis-driven tests can take it too.
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS)
