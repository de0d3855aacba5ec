"""Exported graphs: every decoder Module and every codec's ``CodecDecoder`` through
``torch.export.export`` with a dynamic batch axis and through ``torch.onnx.export(dynamo=True)``
into ONNX Runtime, equal to eager within float32 rounding at two batch sizes (docs/deploy.md)."""

from __future__ import annotations

import inspect
import pathlib
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from public_calls import INPUTS  # noqa: E402
from test_torch import DECODER_MODULES, _HostSync  # noqa: E402

import landmark_codecs as lc  # noqa: E402
from landmark_codecs import torch as lct  # noqa: E402

IMAGE, SIZE = (64, 48), (16, 12)
EPS32 = float(np.finfo(np.float32).eps)


def _codec(name: str) -> lc.Codec:
    """Each codec of the registry at small sizes, its decoder options away from the defaults where
    that exercises more of it."""
    options = {
        "argmax": dict(sigma=1.5),
        "quarter": dict(sigma=1.5, rounding="none"),
        "dark": dict(sigma=1.5),
        "udp": dict(sigma=1.5),
        "udp_combined": dict(radius=2.0, kernel_size=11),
        "megvii": dict(kernel_size=5),
        "simcc": dict(sigma=2.0),
        "h3r": dict(expected=True, logits=False),
        "soft_argmax": dict(logits=True, debias=True),
        "regression": {},
        "pipnet": dict(mean_shape=INPUTS["mean_shape"], num_neighbors=3),
        "local_soft_argmax": dict(logits=True),
        "locref": dict(kind="plateau"),
    }[name]
    sizes = {"image_size": IMAGE}
    if name not in ("simcc", "regression"):
        sizes["heatmap_size"] = (8, 6) if name == "pipnet" else SIZE
    return lc.get_codec(name, on_outside="ignore", **sizes, **options)


def _codec_outputs(codec: lc.Codec) -> tuple[torch.Tensor, ...]:
    """The codec's target for two instances of six keypoints, perturbed a little (a network's
    output), float32; logits for the softmax codecs."""
    rng = np.random.default_rng(0)
    keypoints = rng.uniform([2, 2], [IMAGE[0] - 3, IMAGE[1] - 3], (2, 6, 2))
    outputs = codec.encode(keypoints).outputs
    noisy = [o + 0.01 * rng.random(o.shape) for o in outputs]
    if codec.name in ("soft_argmax", "local_soft_argmax"):
        noisy = [np.log(o) for o in noisy]
    return tuple(torch.asarray(o, dtype=torch.float32) for o in noisy)


CODEC_NAMES = lc.codec_names()


def _cases():
    a = {k: torch.asarray(v, dtype=torch.float32) for k, v in INPUTS.items()}
    cases = {name: (make, tuple(a[i] for i in inputs)) for name, (make, _, inputs) in DECODER_MODULES.items()}
    for name in CODEC_NAMES:
        codec = _codec(name)
        cases[f"CodecDecoder[{name}]"] = (lambda c=codec: lct.CodecDecoder(c), _codec_outputs(codec))
    return cases


CASES = _cases()


def _batch(args: tuple[torch.Tensor, ...], n: int) -> tuple[torch.Tensor, ...]:
    """The inputs at batch size ``n`` (the two instances repeated, or the first alone)."""
    return tuple(torch.cat([x] * ((n + x.shape[0] - 1) // x.shape[0]))[:n] for x in args)


def _assert_close_to_eager(got, want, what: str) -> None:
    """Float32 rounding: a few tens of ulps of the output's magnitude (the graph's kernels may
    sum in another order; DARK's and SimCC's Newton steps carry the rounding of each step)."""
    for g, w in zip(got, want):
        g, w = np.asarray(g), w.detach().numpy()
        assert g.shape == w.shape and g.dtype == w.dtype, (what, g.shape, w.shape, g.dtype, w.dtype)
        assert (np.isnan(g) == np.isnan(w)).all(), what
        tol = 32 * EPS32 * max(1.0, float(np.nanmax(np.abs(w), initial=0.0)))
        np.testing.assert_allclose(g, w, rtol=0, atol=tol, err_msg=what)


def _dynamic(module, args) -> dict[str, object]:
    """Axis 0 of every input dynamic, keyed by ``forward``'s parameter names (``CodecDecoder``'s
    ``*outputs`` takes a tuple, one entry per output)."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    params = list(inspect.signature(module.forward).parameters.values())
    if params[0].kind is inspect.Parameter.VAR_POSITIONAL:
        return {params[0].name: tuple({0: batch} for _ in args)}
    return {p.name: {0: batch} for p in params[: len(args)]}


def test_every_codec_and_decoder_module_is_exported():
    assert set(CODEC_NAMES) == {n[len("CodecDecoder[") : -1] for n in CASES if n.startswith("CodecDecoder[")}
    assert {n for n in lct.__all__ if n.endswith("Decoder")} <= set(CASES)


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_codec_decoder_is_the_codecs_decode(name):
    """Module == function: bit-equal to ``codec.decode`` (PIPNet's table as buffers included), no
    parameters, and the codec's shape check."""
    codec = _codec(name)
    outputs = tuple(o.double() for o in _codec_outputs(codec))
    module = lct.CodecDecoder(codec)
    got, want = module(*outputs), codec.decode(*outputs)
    assert all(torch.equal(g, w) for g, w in zip(got, want))
    assert list(module.parameters()) == [] and module.state_dict() == {}
    assert repr(codec) in repr(module)
    with pytest.raises(TypeError, match=f"codec {name!r} decodes {len(outputs)} output"):
        module(*outputs, outputs[0])


def test_codec_decoder_refuses_what_is_not_a_codec():
    with pytest.raises(TypeError, match="codec must be a landmark_codecs codec"):
        lct.CodecDecoder("dark")


def test_codec_decoder_pipnet_table_moves_with_the_module_and_reads_nothing_back():
    """The neighbour table is buffers (``.to()`` moves them; a meta-device decode proves no value
    is read on the host)."""
    codec = _codec("pipnet")
    module = lct.CodecDecoder(codec).to(torch.float64)
    assert {n for n, _ in module.named_buffers()} == {"index", "reverse_index", "reverse_count"}
    meta = module.to("meta")
    assert meta.index.device.type == "meta"
    outputs = tuple(o.to("meta") for o in _codec_outputs(codec))
    spy = _HostSync()
    with spy:
        coords, scores = meta(*outputs)
    assert spy.seen == [] and coords.shape == (2, 6, 2) and scores.shape == (2, 6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_torch_export_with_a_dynamic_batch_equals_eager(name):
    make, args = CASES[name]
    module = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        program = torch.export.export(module, args, dynamic_shapes=_dynamic(module, args))
    exported = program.module()
    for n in (1, 3):
        batch = _batch(args, n)
        _assert_close_to_eager([t.detach().numpy() for t in exported(*batch)], module(*batch), f"{name} at batch {n}")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_onnx_runtime_equals_eager_at_two_batch_sizes(name, tmp_path: pathlib.Path):
    pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript (the test extra)")
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime runs the graph (the test extra)")
    make, args = CASES[name]
    module = make()
    path = tmp_path / "decoder.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), dynamo=True, dynamic_shapes=_dynamic(module, args), verbose=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [len(i.shape) for i in session.get_inputs()] == [a.ndim for a in args]
    assert all(isinstance(i.shape[0], str) for i in session.get_inputs()), "the batch axis is not dynamic"
    for n in (1, 3):
        batch = _batch(args, n)
        got = session.run(None, {i.name: t.numpy() for i, t in zip(session.get_inputs(), batch)})
        _assert_close_to_eager(got, module(*batch), f"{name} at batch {n}")


@pytest.mark.slow
@pytest.mark.parametrize("name", CODEC_NAMES)
def test_onnx_runtime_float16_maps_decode_as_float32_rounded_once(name, tmp_path: pathlib.Path):
    """Half precision in a deployed graph (mmpose #2579, #2789: RTMPose under TensorRT FP16): each
    codec's exported decoder fed float16 outputs computes in float32 (the library's 16-bit policy,
    in the graph as Cast nodes around the float32 computation, so ONNX Runtime's CPU provider needs
    no float16 kernel but the casts) and returns the float32 decode of the same float16-rounded
    outputs, rounded once to float16: within one float16 ulp of it. (A float16 coordinate cannot
    be closer than half an ulp, 0.0078 px at 8-16 px, so "within 1e-3 px" can only hold for a
    float32 output: the float32 decode here is that, and the float16 result is it rounded.)"""
    pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript (the test extra)")
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime runs the graph (the test extra)")
    onnx = pytest.importorskip("onnx")
    codec = _codec(name)
    module = lct.CodecDecoder(codec)
    args = tuple(a.half() for a in _codec_outputs(codec))
    path = tmp_path / "decoder16.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), dynamo=True, dynamic_shapes=_dynamic(module, args), verbose=False)
    graph = onnx.load(str(path)).graph
    assert {i.type.tensor_type.elem_type for i in graph.input} == {onnx.TensorProto.FLOAT16}
    assert any(n.op_type == "Cast" for n in graph.node)  # up to float32 first
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 3):
        batch = _batch(args, n)
        got = session.run(None, {i.name: t.numpy() for i, t in zip(session.get_inputs(), batch)})
        want = module(*(t.float() for t in batch))  # the float32 decode of the float16-rounded outputs
        tied = _topk_ties(codec, batch[0])
        for g, w in zip(got, want):
            w = w.detach().numpy()
            if tied.any():  # which of equal values at the top-k boundary is taken is the backend's
                assert tied.mean() < 0.25 and np.isfinite(g[~tied]).all(), name
                g, w = g[~tied], w[~tied]
            assert g.dtype == np.float16 and g.shape == w.shape, (name, g.dtype, g.shape)
            assert (np.isnan(g) == np.isnan(w)).all(), name
            ulp = np.spacing(np.abs(w).astype(np.float16)).astype(np.float32)
            np.testing.assert_array_less(
                np.abs(g.astype(np.float32) - w), ulp * 1.0001 + 1e-7, err_msg=f"{name} at {n}"
            )


def _topk_ties(codec: lc.Codec, maps: torch.Tensor) -> np.ndarray:
    """``(..., K)``: H3R's top-k set is ambiguous there (its k-th and (k+1)-th values tie, as
    float16 rounding makes likely): decode_randomized_rounding leaves the pick to the backend."""
    if codec.name != "h3r" or codec.options["activation"] != "topk":
        return np.zeros(maps.shape[:-2], dtype=bool)
    k = codec.options["top_k"]
    flat = -np.sort(-maps.float().numpy().reshape(*maps.shape[:-2], -1), axis=-1)
    return flat[..., k - 1] == flat[..., k]
