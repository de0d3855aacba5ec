"""Every public function agrees across NumPy, array_api_strict and torch; keeps dtype and device;
never writes to its inputs."""

from __future__ import annotations

import numpy as np
import pytest

import landmark_codecs as lc

from conftest import convert, numpy_of

RNG = np.random.default_rng(0)
COORDS = np.concatenate([RNG.uniform(-0.5, 15.5, size=(2, 5, 2)), np.array([[[-0.5, 0.0]], [[15.0, 11.9]]])], axis=1)
NOISE = RNG.random(COORDS.shape)
VISIBLE = np.array([[1, 1, 0, 1, 1, 1], [1, 1, 1, 1, 0, 1]], dtype=np.float64)
MAPS = RNG.random((2, 6, 12, 16))
SIZE = (16, 12)

CALLS = {
    "image_to_heatmap": (lambda c, m, n, v: lc.image_to_heatmap(c, image_size=(64, 48), heatmap_size=SIZE, convention="pixel_center"), "coords"),
    "heatmap_to_image": (lambda c, m, n, v: lc.heatmap_to_image(c, image_size=(64, 48), heatmap_size=SIZE, convention="udp"), "coords"),
    "flip_horizontal": (lambda c, m, n, v: lc.flip_horizontal(c, width=16, flip_index=[5, 4, 3, 2, 1, 0]), "coords"),
    "in_heatmap": (lambda c, m, n, v: lc.in_heatmap(c, heatmap_size=SIZE), "coords"),
    "representable_coords": (lambda c, m, n, v: lc.representable_coords(c, heatmap_size=SIZE), "coords"),
    "encode_gaussian": (lambda c, m, n, v: lc.encode_gaussian(c, heatmap_size=SIZE, sigma=1.5, visible=v), "coords"),
    "encode_gaussian_nearest": (lambda c, m, n, v: lc.encode_gaussian(c, heatmap_size=SIZE, sigma=1.5, rounding="nearest"), "coords"),
    "encode_rr_sample": (lambda c, m, n, v: lc.encode_randomized_rounding(c, heatmap_size=SIZE, noise=n, visible=v), "coords"),
    "encode_rr_sample_sigma": (lambda c, m, n, v: lc.encode_randomized_rounding(c, heatmap_size=SIZE, noise=n, sigma=1.0), "coords"),
    "encode_rr_expected": (lambda c, m, n, v: lc.encode_randomized_rounding(c, heatmap_size=SIZE, expected=True, sigma=1.0), "coords"),
    "encode_soft_argmax": (lambda c, m, n, v: lc.encode_soft_argmax(c, heatmap_size=SIZE, sigma=1.0, visible=v), "coords"),
    "decode_argmax": (lambda c, m, n, v: lc.decode_argmax(m), "maps"),
    "decode_argmax_quarter": (lambda c, m, n, v: lc.decode_argmax(m, refine="quarter"), "maps"),
    "decode_rr_topk": (lambda c, m, n, v: lc.decode_randomized_rounding(m, k=9), "maps"),
    "decode_rr_window_logits": (lambda c, m, n, v: lc.decode_randomized_rounding(m, activation="window", window_size=5, input="logits"), "maps"),
    "decode_soft_argmax": (lambda c, m, n, v: lc.decode_soft_argmax(m, beta=3.0), "maps"),
    "decode_soft_argmax_prob": (lambda c, m, n, v: lc.decode_soft_argmax(m, input="probabilities"), "maps"),
}


def _outputs(result):
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_result_dtype_device_and_untouched_inputs(backend, name, dtype):
    call, _ = CALLS[name]
    args = [COORDS.astype(dtype), MAPS.astype(dtype), NOISE.astype(dtype), VISIBLE.astype(dtype)]
    reference = [numpy_of(o) for o in _outputs(call(*[a.copy() for a in args]))]
    inputs = [convert(a, backend) for a in args]
    before = [numpy_of(i).copy() for i in inputs]
    outputs = _outputs(call(*inputs))
    for got, want in zip(outputs, reference):
        g = numpy_of(got)
        assert g.shape == want.shape
        if want.dtype.kind == "f":
            assert g.dtype == dtype, f"{name} returned {g.dtype} for {np.dtype(dtype)} input"
            np.testing.assert_allclose(g, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6 if dtype == np.float32 else 1e-12)
        else:
            np.testing.assert_array_equal(g, want)
        assert str(getattr(got, "device", "cpu")) == str(getattr(inputs[0], "device", "cpu"))
    for i, b in zip(inputs, before):
        np.testing.assert_array_equal(numpy_of(i), b)


def test_torch_meta_device_propagates():
    """Shapes, dtype and device flow through without touching values (no host round-trip)."""
    torch = pytest.importorskip("torch")
    c = torch.empty((2, 6, 2), device="meta")
    m = torch.empty((2, 6, 12, 16), device="meta")
    for out in (
        lc.encode_gaussian(c, heatmap_size=SIZE, sigma=1.0)[0],
        lc.encode_randomized_rounding(c, heatmap_size=SIZE, expected=True)[0],
        lc.decode_argmax(m, refine="quarter")[0],
        lc.decode_randomized_rounding(m)[0],
        lc.decode_soft_argmax(m)[0],
    ):
        assert out.device.type == "meta"


def test_torch_soft_argmax_decoding_has_gradients():
    torch = pytest.importorskip("torch")
    m = torch.tensor(MAPS[:1, :2], requires_grad=True)
    coords, _ = lc.decode_soft_argmax(m)
    coords.sum().backward()
    assert m.grad is not None and torch.isfinite(m.grad).all() and m.grad.abs().sum() > 0


def test_boolean_visibility_on_every_backend(backend):
    c = convert(np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]), backend)
    visible = convert(np.array([True, False, True]), backend)
    maps, weights = lc.encode_gaussian(c, heatmap_size=(4, 4), sigma=1.0, visible=visible)
    np.testing.assert_array_equal(numpy_of(weights), [1.0, 0.0, 1.0])
    assert np.all(numpy_of(maps)[1] == 0) and numpy_of(maps)[2].max() == 1.0
