"""Every public function agrees across NumPy, array_api_strict and torch; keeps dtype and device;
never writes to its inputs."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import convert, numpy_of
from public_calls import CALLS, INPUTS, NOT_ARRAY_FUNCTIONS, assert_matches_reference, outputs

import landmark_codecs as lc


def test_registry_covers_every_public_function():
    """The equivalence, device, compile and half-precision suites run over public_calls.CALLS."""
    from landmark_codecs import metrics

    covered = {public for public, _ in CALLS.values()}
    # coco_ap is a host-side summary (Python floats, tested against pycocotools in
    # test_pose_metrics.py); CocoAP and PCKh are result types
    functions = {
        f"metrics.{n}"
        for n in metrics.__all__
        if callable(getattr(metrics, n)) and n not in ("coco_ap", "CocoAP", "PCKh")
    }
    assert (set(lc.__all__) - NOT_ARRAY_FUNCTIONS) | functions == covered


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_result_dtype_device_and_untouched_inputs(backend, name, dtype):
    _, call = CALLS[name]
    arrays = {k: v.astype(dtype) for k, v in INPUTS.items()}
    reference = [numpy_of(o) for o in outputs(call({k: v.copy() for k, v in arrays.items()}))]
    inputs = {k: convert(v, backend) for k, v in arrays.items()}
    before = {k: numpy_of(v).copy() for k, v in inputs.items()}
    got_all = outputs(call(inputs))
    assert_matches_reference([numpy_of(g) for g in got_all], reference, dtype, name)
    for got in got_all:
        assert str(getattr(got, "device", "cpu")) == str(getattr(inputs["coords"], "device", "cpu"))
    for k, v in inputs.items():
        np.testing.assert_array_equal(numpy_of(v), before[k])


def test_torch_soft_argmax_decoding_has_gradients():
    torch = pytest.importorskip("torch")
    m = torch.tensor(INPUTS["maps"][:1, :2], requires_grad=True)
    coords, _ = lc.decode_soft_argmax(m, logits=True)
    coords.sum().backward()
    assert m.grad is not None and torch.isfinite(m.grad).all() and m.grad.abs().sum() > 0


def test_boolean_visibility_on_every_backend(backend):
    c = convert(np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]), backend)
    visible = convert(np.array([True, False, True]), backend)
    maps, weights = lc.encode_gaussian(c, heatmap_size=(4, 4), sigma=1.0, weights=visible)
    np.testing.assert_array_equal(numpy_of(weights), [1.0, 0.0, 1.0])
    assert np.all(numpy_of(maps)[1] == 0) and numpy_of(maps)[2].max() == 1.0


@pytest.mark.parametrize("name", sorted(CALLS))
def test_native_numpy_namespace_equals_array_api_compat_numpy(name, monkeypatch):
    """NumPy >= 2.1 arrays run on numpy itself (no wrapper's cost per call); older NumPy runs on
    array-api-compat's wrapper. The two give the same results, to float64 rounding."""
    import landmark_codecs._xp as xp_module

    _, call = CALLS[name]
    native = [numpy_of(o) for o in outputs(call({k: v.copy() for k, v in INPUTS.items()}))]
    monkeypatch.setattr(xp_module, "_NATIVE_NUMPY", False)
    monkeypatch.setattr(xp_module, "_NAMESPACES", {})  # the per-type cache holds numpy itself
    assert xp_module.namespace(coords=INPUTS["coords"]) is not np  # the wrapper, as on NumPy < 2.1
    wrapped = [numpy_of(o) for o in outputs(call({k: v.copy() for k, v in INPUTS.items()}))]
    assert len(native) == len(wrapped)
    for a, b in zip(native, wrapped):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
