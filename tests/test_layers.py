"""Check once, compute once (issue 44): a public call resolves its array namespace once and
checks each argument once, at its boundary; the kernels it calls, and the composites built from
kernels (decode_udp, the codecs), check nothing again.

Counted, not assumed: the namespace resolver and every validator of ``_validation`` are wrapped
with counters, and every entry of the public-call registry runs once. A validator counts only
when called from outside another validator (``sigma`` calls ``positive`` on the same value: one
check), per validator, argument name and argument object (a loop checking each of K sigmas
checks K values once each).
"""

from __future__ import annotations

import collections
import functools
import inspect
from collections.abc import Callable

import numpy as np
import pytest
from public_calls import CALLS, INPUTS

import landmark_codecs as lc
from landmark_codecs import _validation, _xp, codecs, metrics

_HELPERS = {"is_dtype", "promoted"}  # predicates and casts inside the checks, not checks of an argument


def _counted(monkeypatch) -> tuple[list[tuple[str, collections.Counter]], Callable]:
    """Patch the resolver, the validators and every public entry point; return the list that
    collects, per outermost public call, its name and its counts (a public function called
    inside another counts toward the outer one: that is the double work this test is about)."""
    frames: list[tuple[str, collections.Counter]] = []
    depth = {"public": 0, "check": 0}
    resolve = _xp.namespace

    def current() -> collections.Counter:
        return frames[-1][1] if depth["public"] else collections.Counter()

    def namespace(**arrays):
        current()[("namespace",)] += 1
        return resolve(**arrays)

    monkeypatch.setattr(_xp, "namespace", namespace)
    for name, fn in vars(_validation).items():
        if not inspect.isfunction(fn) or fn.__module__ != _validation.__name__ or name.startswith("_"):
            continue
        if name in _HELPERS:
            continue
        signature = inspect.signature(fn)

        def counting(*args, _fn=fn, _name=name, _signature=signature, **kwargs):
            if depth["check"] == 0:
                bound = _signature.bind(*args, **kwargs)
                bound.apply_defaults()
                arguments = dict(bound.arguments)
                value = next((v for k, v in arguments.items() if k not in ("xp", "name")), None)
                current()[(_name, arguments.get("name"), id(value))] += 1
            depth["check"] += 1
            try:
                return _fn(*args, **kwargs)
            finally:
                depth["check"] -= 1

        monkeypatch.setattr(_validation, name, functools.wraps(fn)(counting))

    def entry(fn, label):
        @functools.wraps(fn)
        def public(*args, **kwargs):
            if depth["public"] == 0:
                frames.append((label, collections.Counter()))
            depth["public"] += 1
            try:
                return fn(*args, **kwargs)
            finally:
                depth["public"] -= 1

        return public

    for module in (lc, metrics):
        for name in module.__all__:
            fn = getattr(module, name)
            if inspect.isfunction(fn):
                monkeypatch.setattr(module, name, entry(fn, f"{module.__name__}.{name}"))
    for cls in (codecs.Codec, codecs.PIPNetCodec):
        for name in ("encode", "decode", "to_heatmap", "to_image"):
            if name in vars(cls):
                monkeypatch.setattr(cls, name, entry(vars(cls)[name], f"{cls.__name__}.{name}"))
    return frames, entry


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_public_call_resolves_and_checks_once(name, dtype, monkeypatch):
    """Also on float16, where the 16-bit policy casts at the boundary (the old decorator resolved
    the namespace for its casts, then the function again)."""
    _, call = CALLS[name]
    inputs = {k: (v.astype(dtype) if v.dtype.kind == "f" else v.copy()) for k, v in INPUTS.items()}
    frames, _ = _counted(monkeypatch)
    call(inputs)
    assert frames, f"{name} called no public entry point the harness patches"
    for label, counts in frames:
        assert counts[("namespace",)] <= 1, f"{label} resolved the namespace {counts[('namespace',)]} times"
        twice = {key[:2]: n for key, n in counts.items() if key != ("namespace",) and n > 1}
        assert not twice, f"{label} checked an argument more than once: {twice}"


def test_the_counter_sees_a_double_check(monkeypatch):
    """The harness counts what it claims to: one public call is one frame; a public function
    calling public functions (the old layering) shows two resolutions, and one checking the same
    argument twice a double check; a check calling another on the same value is one check."""
    frames, entry = _counted(monkeypatch)
    coords = np.full((1, 2), 3.0)
    lc.encode_udp(coords, image_size=(16, 16), heatmap_size=(8, 8), sigma=1.0)
    ((label, counts),) = frames
    assert label == "landmark_codecs.encode_udp" and counts[("namespace",)] == 1
    assert counts[("coords", "coords", id(coords))] == 1 and counts[("sigma", "sigma", id(1.0))] == 1
    assert not any(key[0] == "positive" for key in counts)  # sigma's own positive() is not a second check

    def layered(c):
        return lc.image_to_heatmap(
            lc.image_to_heatmap(c, image_size=(16, 16), heatmap_size=(8, 8)), image_size=(8, 8), heatmap_size=(4, 4)
        )

    def checks_twice(c):
        return lc.in_heatmap(c, heatmap_size=(8, 8)) & lc.in_heatmap(c, heatmap_size=(8, 8))

    frames.clear()
    entry(layered, "layered")(coords)
    entry(checks_twice, "checks_twice")(coords)
    (_, first), (_, second) = frames
    assert first[("namespace",)] == 2
    assert second[("coords", "coords", id(coords))] == 2


def _sources() -> dict[str, str]:
    import pathlib

    root = pathlib.Path(lc.__file__).parent
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*.py")}


@pytest.mark.parametrize(
    ("rule", "pattern", "home"),
    [
        ("the 16-bit policy: which dtype a computation runs in", r"\.bits < 32", "_xp.py"),
        ("the zero-guarded weighted mean", r"where\(positive, total / ", "_common.py"),
        ("what counts as a landmark index", r"operator\.index\(", "_validation.py"),
    ],
)
def test_each_rule_has_one_home(rule, pattern, home):
    """Issue 44: the 16-bit policy, the zero-guarded weighted mean and the index-sequence check
    are written once in src/ (each caller calls that one)."""
    import re

    found = {name: len(re.findall(pattern, text)) for name, text in _sources().items()}
    assert {name for name, n in found.items() if n} == {home}, (rule, found)


def test_landmark_indices_follow_one_rule():
    """One rule for an index everywhere: a NumPy integer counts as an int (the eye corners of
    nme and pckh's excluded joints took Python ints only), a bool or a float does not."""
    from landmark_codecs import metrics

    target = np.zeros((1, 68, 2))
    target[0, 45, 0] = 10.0
    pred = target + 1.0
    want = float(metrics.nme(pred, target)[0])
    assert float(metrics.nme(pred, target, eyes=(np.int64(36), np.int64(45)))[0]) == want
    for bad in ((36.0, 45), (True, 45)):
        with pytest.raises((TypeError, ValueError), match="eyes must be two landmark indices"):
            metrics.nme(pred, target, eyes=bad)
    coords = np.zeros((2, 2))
    np.testing.assert_array_equal(
        lc.flip_horizontal(coords, width=4, flip_index=np.array([1, 0])),
        lc.flip_horizontal(coords, width=4, flip_index=[1, 0]),
    )
    with pytest.raises(TypeError, match=r"boundaries\[0\] must hold int landmark indices"):
        lc.encode_boundaries(np.zeros((3, 2)), heatmap_size=(8, 8), boundaries=[(0, 1.0)])


@pytest.mark.parametrize(
    "dtype", [np.float16, np.float32, np.float64, np.longdouble, np.int8, np.uint16, np.int64, np.bool_, np.complex64]
)
@pytest.mark.parametrize("kinds", [("real floating",), ("integral",), ("bool",), ("numeric",), ("integral", "bool")])
def test_numpy_dtype_kinds_equal_isdtype(dtype, kinds):
    """_validation.is_dtype's NumPy fast path (dtype.kind letters) answers as the array API's
    isdtype (array-api-compat's, which NumPy 1 lacks)."""
    from array_api_compat import numpy as xp

    x = np.zeros(2, dtype=dtype)
    assert _validation.is_dtype(np, x, kinds) == any(xp.isdtype(x.dtype, k) for k in kinds)


def test_checks_come_before_any_computation(monkeypatch):
    """decode_udp on a 1-pixel map used to run DARK's refinement, then refuse the map in the
    conversion back (issue 44): the refusal now comes first, before any kernel is called."""
    from landmark_codecs import udp

    def kernel(*args, **kwargs):
        raise AssertionError("a kernel ran before the arguments were checked")

    monkeypatch.setattr(udp, "udp_coords", kernel)
    with pytest.raises(ValueError, match='convention="udp" needs an image and heatmap width of at least 2'):
        lc.decode_udp(np.ones((1, 4, 1)), image_size=(8, 8), sigma=1.0)
    with pytest.raises(AssertionError, match="a kernel ran"):  # the same call on a valid map does reach it
        lc.decode_udp(np.ones((1, 4, 4)), image_size=(8, 8), sigma=1.0)
