"""The package as a user imports it: submodules reachable as attributes, the import light."""

from __future__ import annotations

import subprocess
import sys

import pytest

_CHECK = """
import sys
import landmark_codecs as lc
heavy = sorted(m for m in ("torch", "matplotlib", "jax", "mmpose", "scipy", "landmark_codecs.metrics") if m in sys.modules)
print(",".join(heavy) or "light")
import numpy as np
print(float(lc.metrics.nme(np.zeros((1, 2, 2)), np.array([[[0.0, 0.0], [3.0, 4.0]]]), normalizer=np.array([5.0]))[0]))
print(lc.testing.landmarks.__name__, "metrics" in dir(lc))
"""


def test_submodules_are_attributes_imported_on_first_use():
    """``lc.metrics.nme`` after ``import landmark_codecs as lc`` (was AttributeError), without
    the import pulling torch, matplotlib or the metrics themselves; a fresh interpreter, since
    this one has imported everything already."""
    done = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:3] == ["light", "0.5", "landmarks True"], done.stdout


def test_an_unknown_attribute_is_still_an_attribute_error():
    import landmark_codecs as lc

    with pytest.raises(AttributeError, match="module 'landmark_codecs' has no attribute 'metric'"):
        lc.metric  # noqa: B018
    assert lc.metrics.nme is __import__("landmark_codecs.metrics", fromlist=["nme"]).nme


def test_torch_and_mmpose_are_attributes_where_installed():
    import landmark_codecs as lc

    pytest.importorskip("torch")
    assert lc.torch.DarkDecoder.__module__ == "landmark_codecs.torch"


def test_the_layouts_module_keeps_its_old_name():
    """Mean face shapes and pose layouts live in landmark_codecs.layouts; landmark_codecs.shapes,
    the old name (it read as array shapes), gives the same objects."""
    from landmark_codecs import layouts, shapes

    assert shapes.mean_shape is layouts.mean_shape and shapes.MEAN_SHAPES is layouts.MEAN_SHAPES
    assert shapes.__all__ == layouts.__all__ and "pose_layout" in layouts.__all__


def test_a_result_passed_whole_where_one_of_its_arrays_is_meant_names_the_field():
    """A user's encoder returned the library's HeatmapTargets and got 'heatmaps must be an array
    ... got HeatmapTargets', which did not say to pass .heatmaps (issue 43)."""
    import numpy as np

    import landmark_codecs as lc

    targets = lc.encode_gaussian(np.array([[3.0, 4.0]]), heatmap_size=(8, 8), sigma=1.0)
    with pytest.raises(
        TypeError, match=r"got .*HeatmapTargets: pass one of its fields, e\.g\. heatmaps=<result>\.heatmaps"
    ):
        lc.decode_dark(targets, sigma=1.0)
    decoded = lc.decode_dark(targets.heatmaps, sigma=1.0)
    with pytest.raises(TypeError, match=r"pred=<result>\.coords \(its arrays: coords, scores\)"):
        lc.metrics.nme(decoded, np.zeros((1, 2)), normalizer=np.array(1.0))


def test_the_suite_runs_without_pytest_xdist():
    """pyproject's addopts ask pytest-xdist for -n auto; without it (disabled here, or not
    installed) conftest.py accepts and ignores those options and the tests run in one process."""
    import os
    import pathlib

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANDMARK_CODECS_", "PYTEST_"))}
    root = pathlib.Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:randomly", "-p", "no:cacheprovider", "-q",
         "tests/test_package.py::test_an_unknown_attribute_is_still_an_attribute_error"],
        capture_output=True, text=True, check=False, timeout=300, cwd=root, env=env,
    )  # fmt: skip
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
