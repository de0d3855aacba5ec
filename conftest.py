"""Collection of the package's doctests (modules for optional extras are skipped without them), and
the two environment variables by which CI's legs share work (.ci/run, CONTRIBUTING.md):

- ``LANDMARK_CODECS_RECORD=FILE``: the ids of the tests that passed are written to FILE;
- ``LANDMARK_CODECS_SKIP_PASSED=FILE``: the tests FILE lists (passed in an earlier leg, in an
  environment this one only adds extras to) are deselected, so only what the extras un-skip runs.

Both print one summary line of counts, so every leg says how many tests passed in it.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One pytest-xdist worker per core, each computing on one thread: torch, OpenMP and BLAS
    # default to every core, and two workers each using both would fight over them.
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

collect_ignore = []
if importlib.util.find_spec("mmpose") is None:
    collect_ignore.append("src/landmark_codecs/mmpose.py")
if importlib.util.find_spec("torch") is None:
    # the torch adapter and its backend special cases import torch at module level
    collect_ignore += ["src/landmark_codecs/torch.py", "src/landmark_codecs/_xp_torch.py"]

_RECORD = os.environ.get("LANDMARK_CODECS_RECORD")
_SKIP_PASSED = os.environ.get("LANDMARK_CODECS_SKIP_PASSED")
_passed: list[str] = []


def pytest_addoption(parser, pluginmanager):
    # pyproject.toml's addopts ask pytest-xdist (the test extra) for -n auto --dist worksteal.
    # Where it is missing or disabled (-p no:xdist), the suite runs in one process instead of
    # stopping at "unrecognized arguments: -n".
    if not pluginmanager.has_plugin("xdist"):
        group = parser.getgroup("xdist stand-in", "accepted and ignored: pytest-xdist is not loaded")
        group._addoption("-n", "--numprocesses", dest="numprocesses", default=None)  # as xdist adds it
        group.addoption("--dist", dest="dist", default="no")


def _ids(path: str) -> set[str]:
    """The test ids a record holds, one per line (ids hold spaces: "[face-alignment get_preds]")."""
    return {line for line in pathlib.Path(path).read_text().split("\n") if line}


def pytest_collection_modifyitems(config, items):
    # The slow tests first: spread over the workers from the start instead of one of them
    # finishing a minute-long test alone at the end (a stable sort keeps the rest in order).
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    if not _SKIP_PASSED:
        return
    done = _ids(_SKIP_PASSED)
    keep = [item for item in items if item.nodeid not in done]
    deselected = [item for item in items if item.nodeid in done]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = keep


def pytest_runtest_logreport(report):
    # Under pytest-xdist the controller receives every worker's reports: it alone writes.
    if report.passed and report.when == "call":
        _passed.append(report.nodeid)


def pytest_sessionfinish(session):
    if _RECORD and not hasattr(session.config, "workerinput"):
        pathlib.Path(_RECORD).write_text("\n".join(sorted(_passed)) + "\n")


def pytest_terminal_summary(terminalreporter, config):
    if not (_RECORD or _SKIP_PASSED) or hasattr(config, "workerinput"):
        return
    line = f"landmark_codecs CI: {len(_passed)} passed in this leg"
    if _SKIP_PASSED:
        # counted on the controller: each worker deselects the same items
        already = len(_ids(_SKIP_PASSED))
        line += f", {already} passed in the earlier leg ({_SKIP_PASSED}) and were not rerun"
        line += f"; {len(_passed) + already} in all"
    terminalreporter.write_line(line, bold=True)
