"""One rule per kind of input, tried on every public call of the registry (public_calls.py) that
takes that kind, not only on the call where a fuzzing run first found it broken:

- mixed floating dtypes are promoted (float32 with float64 gives float64), every floating result
  in the promoted dtype; weights and noise are not data and take the data's dtype;
- a NaN or negative weight is weight 0: the same result as 0, nothing drawn, weight 0 returned,
  masked out of a loss and out of its mean's denominator, unlabelled in a metric.
"""

from __future__ import annotations

import numpy as np
import pytest
from public_calls import CALLS, INPUTS, outputs

AUXILIARY = {"weights", "noise"}  # cast to the data's dtype, by the documented rule


class _Tracking(dict):
    """The inputs, noting which a call reads."""

    def __init__(self, values):
        super().__init__(values)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)


def _read_by(call) -> set[str]:
    inputs = _Tracking(INPUTS)
    call(inputs)
    return inputs.read


_READ = {name: _read_by(call) for name, (_, call) in CALLS.items()}
_MIXED = [
    (name, key)
    for name in sorted(CALLS)
    for key in sorted(_READ[name])
    if INPUTS[key].dtype.kind == "f"
    and key not in AUXILIARY
    and sum(INPUTS[k].dtype.kind == "f" and k not in AUXILIARY for k in _READ[name]) >= 2
]
_WEIGHTED = sorted(name for name in CALLS if "weights" in _READ[name])


def test_the_registry_has_calls_of_each_kind():
    families = {CALLS[name][0].split("_")[0] for name in _WEIGHTED}
    assert len(_MIXED) >= 20 and len(_WEIGHTED) >= 10 and {"encode", "metrics.nme", "wing"} <= families


@pytest.mark.parametrize("wide", ["float64", "float32"])
@pytest.mark.parametrize("name, key", _MIXED)
def test_mixed_floating_dtypes_are_promoted(name, key, wide):
    """``key`` in one dtype, every other floating input in the other: every floating result is
    float64. (Before: SimCC refused the mix, PIPNet's and UDP's combined decoders returned float64
    coordinates with float32 scores, ced, oks and pckh kept the first argument's dtype.)"""
    other = "float32" if wide == "float64" else "float64"
    arrays = {
        k: (v.astype(wide if k == key else other) if v.dtype.kind == "f" and k not in AUXILIARY else v)
        for k, v in INPUTS.items()
    }
    got = [o for o in outputs(CALLS[name][1](arrays)) if getattr(o, "dtype", np.dtype(int)).kind == "f"]
    assert got and all(o.dtype == np.float64 for o in got), (name, key, [o.dtype for o in got])


def _with_weight(value: float) -> dict:
    arrays = dict(INPUTS)
    weights = INPUTS["weights"].copy()
    weights[0, 1] = value  # a labelled landmark (weight 1 in INPUTS)
    arrays["weights"] = weights
    return arrays


@pytest.mark.parametrize("bad", [np.nan, -5.0])
@pytest.mark.parametrize("name", _WEIGHTED)
def test_a_nan_or_negative_weight_is_weight_zero(name, bad):
    """The same result, bit for bit, as weight 0. Before: encoders returned the NaN (or negative)
    weight and drew the landmark, the metrics counted it as labelled, the losses masked it out of
    the sum but not out of the mean's denominator (a negative total could flip the loss's sign)."""
    call = CALLS[name][1]
    got = outputs(call(_with_weight(bad)))
    want = outputs(call(_with_weight(0.0)))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w), err_msg=name)
