"""The torch path: no host round-trips, device propagation (meta; CUDA where present), gradients,
torch.compile, float16/bfloat16, and the adapter in landmark_codecs.torch."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from public_calls import CALLS, CODECS, HOST_SIDE, INPUTS, TABLE, outputs  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

import landmark_codecs as lc  # noqa: E402
from landmark_codecs import torch as lct  # noqa: E402

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _torch_inputs(dtype=torch.float64, device="cpu"):
    return {k: torch.asarray(v, dtype=dtype, device=device) for k, v in INPUTS.items()}


class _HostSync(TorchDispatchMode):
    """Records ops that read a tensor's value back to Python or size a result by its values."""

    SYNCING = ("aten._local_scalar_dense", "aten.nonzero", "aten.masked_select", "aten.unique", "aten.item")

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if str(func).startswith(self.SYNCING):
            self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


# --------------------------------------------------------------------------- device and host


@pytest.mark.parametrize("name", sorted(set(CALLS) - {n for n, (p, _) in CALLS.items() if p in HOST_SIDE}))
def test_no_host_round_trip(name):
    """No .item(), no value-sized result: the op sequence does not depend on values."""
    _, call = CALLS[name]
    a = _torch_inputs()
    spy = _HostSync()
    with spy:
        call(a)
    assert spy.seen == [], f"{name} reads values back to the host: {spy.seen}"


def test_the_spy_sees_a_host_read():
    spy = _HostSync()
    with spy:
        torch.ones(3).sum().item()
    assert spy.seen


def test_pipnet_neighbors_is_the_documented_host_side_exception():
    """Built once from a mean shape on the host (it needs the values: a meta mean shape has none);
    the table then lives on the mean shape's library and device."""
    assert HOST_SIDE == {"pipnet_neighbors"}
    with pytest.raises(ValueError, match="mean_shape is a tensor on the meta device, which holds no values"):
        lc.pipnet_neighbors(torch.empty(6, 2, device="meta"), num_neighbors=3)
    table = lc.pipnet_neighbors(torch.asarray(INPUTS["mean_shape"]), num_neighbors=3)
    assert all(isinstance(t, torch.Tensor) and t.device.type == "cpu" for t in table)
    np.testing.assert_array_equal(table.index.numpy(), TABLE.index)


@pytest.mark.parametrize("name", sorted(set(CALLS) - {n for n, (p, _) in CALLS.items() if p in HOST_SIDE}))
def test_meta_device_propagates(name):
    """Shapes, dtypes and device flow through every function without any value (meta tensors
    have none: a host read or a NumPy conversion raises)."""
    _, call = CALLS[name]
    real = [o for o in outputs(call(_torch_inputs(torch.float32)))]
    meta = outputs(call(_torch_inputs(torch.float32, "meta")))
    assert len(meta) == len(real)
    for m, r in zip(meta, real):
        assert m.device.type == "meta", name
        assert m.shape == r.shape and m.dtype == r.dtype, name


@CUDA
@pytest.mark.parametrize("name", sorted(CALLS))
def test_cuda_matches_cpu_and_stays_on_the_device(name):
    _, call = CALLS[name]
    cpu = outputs(call(_torch_inputs(torch.float32)))
    gpu = outputs(call(_torch_inputs(torch.float32, "cuda")))
    for g, c in zip(gpu, cpu):
        assert g.device.type == "cuda"
        torch.testing.assert_close(g.cpu(), c, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- float16 / bfloat16


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", sorted(set(CALLS) - {n for n, (p, _) in CALLS.items() if p in HOST_SIDE}))
def test_half_precision_is_the_float32_result_rounded_once(name, half):
    """16-bit inputs are computed in float32: the result equals the float32 computation on the
    same (already rounded) values, cast once to the input's dtype; finite, dtype kept."""
    _, call = CALLS[name]
    a_half = {k: v.to(half) for k, v in _torch_inputs(torch.float32).items()}
    a_half["weights"] = a_half["weights"].float()  # a weight may stay float32
    a_float = {k: v.float() if v.dtype == half else v for k, v in a_half.items()}
    got, want = outputs(call(a_half)), outputs(call(a_float))
    if name == "pipnet_loss":  # its targets are encoded inside the call: compare on the half call's targets
        t = lc.encode_pipnet(a_half["coords"] / 2, grid_size=(8, 6), neighbors=TABLE, weights=a_half["weights"])
        t32 = type(t)(*(x.float() if x.dtype == half else x for x in t))
        want = [lc.pipnet_loss(a_float["scores"], a_float["offsets"], a_float["neighbor_offsets"], t32)]
    for g, w in zip(got, want):
        if w.dtype == torch.float32:
            assert g.dtype == half, f"{name} returned {g.dtype}"
            assert torch.isfinite(g).all()
            assert torch.equal(g, w.to(half)), f"{name}: max difference {(g.float() - w.to(half).float()).abs().max()}"
        else:
            assert torch.equal(g, w)


# --------------------------------------------------------------------------- gradients

GRADCHECK = {
    # name: (inputs, function of those inputs); float64, points away from kinks (argmax ties,
    # integer coordinates of the piecewise-linear H3R expectation, map borders).
    "encode_gaussian": (("coords",), lambda c: lc.encode_gaussian(c, heatmap_size=(9, 7), sigma=1.5)[0]),
    "encode_soft_argmax": (("coords",), lambda c: lc.encode_soft_argmax(c, heatmap_size=(9, 7), sigma=1.5)[0]),
    "encode_rr_expected": (
        ("coords",),
        lambda c: lc.encode_randomized_rounding(c, heatmap_size=(9, 7), expected=True, sigma=1.0)[0],
    ),
    "encode_udp": (("coords",), lambda c: lc.encode_udp(c * 4, image_size=(36, 28), heatmap_size=(9, 7), sigma=1.5)[0]),
    "encode_simcc": (("coords",), lambda c: lc.encode_simcc(c, image_size=(9, 7), sigma=2.0)[:2]),
    "encode_udp_combined": (
        ("coords",),
        lambda c: lc.encode_udp_combined(c * 4, image_size=(36, 28), heatmap_size=(9, 7), radius=2.0).offsets,
    ),
    # the offsets carry the gradient (the argmax picks where they are read)
    "decode_udp_combined": (
        ("maps",),
        lambda m: lc.decode_udp_combined(
            m.detach(), torch.stack([m, -m], dim=-3), image_size=(36, 28), radius=2.0, kernel_size=11
        )[0],
    ),
    "encode_regression": (("coords",), lambda c: lc.encode_regression(c, image_size=(9, 7))[0]),
    "decode_regression_rle": (
        ("coords",),
        lambda c: lc.decode_regression(torch.cat([c, c * 0.1], dim=-1), image_size=(9, 7)),
    ),
    "image_to_heatmap": (("coords",), lambda c: lc.image_to_heatmap(c, image_size=(36, 28), heatmap_size=(9, 7))),
    "decode_soft_argmax": (("maps",), lambda m: lc.decode_soft_argmax(m, beta=2.0, logits=True)[0]),
    "decode_soft_argmax_prob": (("maps",), lambda m: lc.decode_soft_argmax(m, logits=False, beta=1.5)[0]),
    # both branches of the excess: beta * max below 30 (expm1) and above it (exp difference)
    "decode_soft_argmax_debias": (("maps",), lambda m: lc.decode_soft_argmax(m, beta=2.0, logits=True, debias=True)[0]),
    "decode_soft_argmax_debias_large": (
        ("maps",),
        lambda m: lc.decode_soft_argmax(m * 20 + 5.0, beta=2.0, logits=True, debias=True)[0],
    ),
    "decode_rr_topk": (("maps",), lambda m: lc.decode_randomized_rounding(m, top_k=5, logits=False)[0]),
    "decode_rr_window_logits": (
        ("maps",),
        lambda m: lc.decode_randomized_rounding(m, activation="window", logits=True)[0],
    ),
    "decode_dark": (("maps",), lambda m: lc.decode_dark(m + 1.0, sigma=1.5, iterations=2)[0]),
    "encode_boundaries": (
        ("coords",),
        lambda c: lc.encode_boundaries(c, heatmap_size=(9, 7), boundaries=((0, 1, 2),), sigma=1.5, truncate=10.0)[0],
    ),
    "heatmap_moments": (("maps",), lambda m: lc.heatmap_moments(m)),
    "dsnt_regularization_js": (
        ("maps", "coords"),
        lambda m, c: lc.dsnt_regularization(m / m.sum((-2, -1), keepdim=True), c, sigma=1.5, reduction="none"),
    ),
    "dsnt_regularization_kl": (
        ("maps", "coords"),
        lambda m, c: lc.dsnt_regularization(m / m.sum((-2, -1), keepdim=True), c, sigma=1.5, divergence="kl"),
    ),
    "dsnt_regularization_variance": (
        ("maps",),
        lambda m: lc.dsnt_regularization(
            m / m.sum((-2, -1), keepdim=True), torch.zeros(2, 3, 2, dtype=m.dtype), sigma=1.5, divergence="variance"
        ),
    ),
}


# encode_soft_argmax's gradcheck differentiates 20 Newton steps numerically: 14 s, so slow.
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n == "encode_soft_argmax" else n for n in sorted(GRADCHECK)]
)
def test_gradcheck_float64(name):
    rng = np.random.default_rng(3)
    coords = torch.tensor(rng.uniform(0.6, 5.4, (2, 3, 2)) + 0.013, requires_grad=True)
    maps = torch.tensor(rng.random((2, 3, 7, 9)), requires_grad=True)
    given, fn = GRADCHECK[name]
    args = tuple({"coords": coords, "maps": maps}[g] for g in given)
    assert torch.autograd.gradcheck(fn, args)


def test_encoder_gradient_moves_the_target_with_the_landmark():
    """Not only finite: d(sum of x-weighted target)/dx is the map's mass (the centroid moves 1:1)."""
    c = torch.tensor([[3.3, 2.6]], dtype=torch.float64, requires_grad=True)
    maps, _ = lc.encode_soft_argmax(c, heatmap_size=(9, 7), sigma=1.5)
    x_moment = (maps * torch.arange(9.0, dtype=torch.float64)).sum()
    (g,) = torch.autograd.grad(x_moment, c)
    torch.testing.assert_close(g, torch.tensor([[1.0, 0.0]], dtype=torch.float64), rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------- torch.compile

_COMPILE_SCRIPT = """
import sys, warnings
sys.path.insert(0, {tests!r})
import torch
import landmark_codecs as lc
from landmark_codecs import torch as lct
from public_calls import CALLS, INPUTS, HOST_SIDE, outputs
a = {{k: torch.asarray(v, dtype=torch.float32) for k, v in INPUTS.items()}}
table = lc.pipnet_neighbors(torch.asarray(INPUTS["mean_shape"]), num_neighbors=3)  # on the device
import public_calls
public_calls.TABLE = table
public_calls.CODECS["pipnet"] = lc.get_codec("pipnet", image_size=public_calls.IMAGE, heatmap_size=public_calls.GRID, neighbors=table, on_outside="ignore")
failed = []
shard, shards = {shard!r}, {shards!r}
for index, (name, (public, call)) in enumerate(CALLS.items()):
    if public in HOST_SIDE or index % shards != shard:
        continue
    torch._dynamo.reset()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            got = outputs(torch.compile(lambda: call(a), fullgraph=True, backend="aot_eager")())
        except Exception as err:
            failed.append(f"{{name}}: {{type(err).__name__}}: {{str(err).splitlines()[0]}}")
            continue
    noisy = [str(w.message)[:80] for w in caught if "landmark_codecs" in str(w.filename) or "Dynamo" in str(w.message)]
    if noisy:
        failed.append(f"{{name}} warns: {{noisy[0]}}")
    want = outputs(call(a))
    if not all(torch.allclose(g.float(), w.float(), equal_nan=True) for g, w in zip(got, want)):
        failed.append(f"{{name}}: compiled != eager")
modules = [
    (lct.SoftArgmaxDecoder(beta=2.0, logits=True), (a["maps"],)),
    (lct.RandomizedRoundingDecoder(activation="window", logits=False), (a["maps"],)),
    (lct.DarkDecoder(sigma=1.5), (a["maps"],)),
    (lct.SimCCDecoder(image_size=(32, 24), refine="dark", sigma=2.0), (a["x_labels"], a["y_labels"])),
    (lct.PIPNetDecoder(table, merge="original"), (a["scores"], a["offsets"], a["neighbor_offsets"])),
    (lct.UDPCombinedDecoder(image_size=(64, 48), radius=2.0, kernel_size=11), (a["maps"], a["udp_offsets"])),
    (lct.CodecDecoder(lc.get_codec("pipnet", image_size=public_calls.IMAGE, heatmap_size=public_calls.GRID, mean_shape=INPUTS["mean_shape"], num_neighbors=3)), (a["scores"], a["offsets"], a["neighbor_offsets"])),
    (lct.CodecDecoder(public_calls.CODECS["simcc"]), (a["x_labels"], a["y_labels"])),
    (lct.AdaptiveWingLoss(weighted_loss_map=True), (a["maps"], a["target"])),
    (lct.STARLoss(distance="l1"), (a["maps"], a["coords"])),
    (lct.DSNTRegularization(sigma=1.5, divergence="kl"), (a["maps"], a["coords"])),
    (lct.CoordConv2d(6, 3, 3, padding=1, with_r=True, with_boundary=True), (a["maps"], a["boundary"])),
]
for module, args in modules[shard::shards]:
    torch._dynamo.reset()
    try:
        got = outputs(torch.compile(module, fullgraph=True, backend="aot_eager")(*args))
    except Exception as err:
        failed.append(f"{{type(module).__name__}}: {{type(err).__name__}}: {{str(err).splitlines()[0]}}")
        continue
    if not all(torch.allclose(g, w) for g, w in zip(got, outputs(module(*args)))):
        failed.append(f"{{type(module).__name__}}: compiled != eager")
print("\\n".join(failed) if failed else "ok")
"""


_COMPILE_SHARDS = 3  # a minute of compiling in all: in parts, so pytest-xdist's workers share it


@pytest.mark.slow
@pytest.mark.parametrize("shard", range(_COMPILE_SHARDS))
def test_torch_compile_fullgraph_every_function_and_module(shard):
    """Every public function (the device table for PIPNet) and the decoder Modules compile with
    fullgraph=True (no graph break), without warnings, and give the eager result; a fresh
    interpreter, so the first call of the process is the compiled one (each shard takes every
    third call and Module)."""
    import pathlib

    code = _COMPILE_SCRIPT.format(tests=str(pathlib.Path(__file__).parent), shard=shard, shards=_COMPILE_SHARDS)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok", done.stdout


# --------------------------------------------------------------------------- Modules

DECODER_MODULES = {
    "ArgmaxDecoder": (
        lambda: lct.ArgmaxDecoder(refine="quarter"),
        lambda a: lc.decode_argmax(a["maps"], refine="quarter"),
        ("maps",),
    ),
    "RandomizedRoundingDecoder": (
        lambda: lct.RandomizedRoundingDecoder(top_k=4, logits=True),
        lambda a: lc.decode_randomized_rounding(a["maps"], top_k=4, logits=True),
        ("maps",),
    ),
    "SoftArgmaxDecoder": (
        lambda: lct.SoftArgmaxDecoder(beta=2.0, logits=True, debias=True),
        lambda a: lc.decode_soft_argmax(a["maps"], beta=2.0, logits=True, debias=True),
        ("maps",),
    ),
    "LocRefDecoder": (
        lambda: lct.LocRefDecoder(locref_std=2.0),
        lambda a: lc.decode_locref(a["maps"], a["udp_offsets"], locref_std=2.0),
        ("maps", "udp_offsets"),
    ),
    "LocalSoftArgmaxDecoder": (
        lambda: lct.LocalSoftArgmaxDecoder(logits=False, window_size=3, sigma=1.5),
        lambda a: lc.decode_local_soft_argmax(a["maps"], logits=False, window_size=3, sigma=1.5),
        ("maps",),
    ),
    "DarkDecoder": (
        lambda: lct.DarkDecoder(sigma=1.5, iterations=2),
        lambda a: lc.decode_dark(a["maps"], sigma=1.5, iterations=2),
        ("maps",),
    ),
    "UDPDecoder": (
        lambda: lct.UDPDecoder(image_size=(64, 48), sigma=1.5),
        lambda a: lc.decode_udp(a["maps"], image_size=(64, 48), sigma=1.5),
        ("maps",),
    ),
    "UDPCombinedDecoder": (
        lambda: lct.UDPCombinedDecoder(image_size=(64, 48), radius=2.0, kernel_size=11),
        lambda a: lc.decode_udp_combined(a["maps"], a["udp_offsets"], image_size=(64, 48), radius=2.0, kernel_size=11),
        ("maps", "udp_offsets"),
    ),
    "RegressionDecoder": (
        lambda: lct.RegressionDecoder(image_size=(64, 48)),
        lambda a: lc.decode_regression(a["labels_rle"], image_size=(64, 48)),
        ("labels_rle",),
    ),
    "SimCCDecoder": (
        lambda: lct.SimCCDecoder(image_size=(32, 24), refine="dark", sigma=2.0),
        lambda a: lc.decode_simcc(a["x_labels"], a["y_labels"], image_size=(32, 24), refine="dark", sigma=2.0),
        ("x_labels", "y_labels"),
    ),
    "CodecDecoder": (
        lambda: lct.CodecDecoder(CODECS["dark"]),
        lambda a: CODECS["dark"].decode(a["maps"]),
        ("maps",),
    ),
    "PIPNetDecoder": (
        lambda: lct.PIPNetDecoder(TABLE, merge="original"),
        lambda a: lc.decode_pipnet(a["scores"], a["offsets"], a["neighbor_offsets"], neighbors=TABLE, merge="original"),
        ("scores", "offsets", "neighbor_offsets"),
    ),
}


def test_every_decoder_has_a_module():
    names = {n for n in lct.__all__ if n.endswith("Decoder")}
    assert names == set(DECODER_MODULES)


@pytest.mark.parametrize("name", sorted(DECODER_MODULES))
def test_decoder_module_equals_function(name):
    make, function, inputs = DECODER_MODULES[name]
    a = _torch_inputs()
    module = make()
    got = module(*(a[i] for i in inputs))
    want = function(a)
    for g, w in zip(got, want):
        assert torch.equal(g, w)
    assert isinstance(module, torch.nn.Module) and list(module.parameters()) == []
    assert "=" in repr(module)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: lct.ArgmaxDecoder(refine="half"), "refine"),
        (lambda: lct.RandomizedRoundingDecoder(top_k=0, logits=False), "k"),
        (lambda: lct.RandomizedRoundingDecoder(activation="window", window_size=2, logits=False), "window_size"),
        (lambda: lct.SoftArgmaxDecoder(beta=0.0, logits=True), "beta"),
        (lambda: lct.DarkDecoder(sigma=-1.0), "sigma"),
        (lambda: lct.DarkDecoder(sigma=2.0, kernel_size=4), "kernel_size"),
        (lambda: lct.UDPDecoder(image_size=(1, 64), sigma=2.0), "image_size"),
        (lambda: lct.SimCCDecoder(image_size=(32, 24)), "sigma"),
        (lambda: lct.UDPCombinedDecoder(image_size=(64, 48), radius=0.0), "radius"),
        (lambda: lct.UDPCombinedDecoder(image_size=(64, 48), radius=2.0, kernel_size=8), "kernel_size"),
        (lambda: lct.RegressionDecoder(image_size=(64, 0)), "image_size"),
        (lambda: lct.SimCCDecoder(image_size=(32, 24), split_ratio=1.3, sigma=2.0), "split_ratio"),
        (lambda: lct.PIPNetDecoder(TABLE, merge="median"), "merge"),
        (lambda: lct.PIPNetDecoder(np.zeros((6, 3), dtype=int)), "PIPNetNeighbors"),
    ],
)
def test_decoder_modules_validate_at_construction(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_pipnet_decoder_table_moves_with_the_module_and_stays_out_of_the_state_dict():
    module = lct.PIPNetDecoder(TABLE)
    assert module.state_dict() == {}
    assert module.index.dtype == torch.int64 or not module.index.dtype.is_floating_point
    moved = module.to("meta")
    assert moved.index.device.type == "meta" and moved.neighbors.reverse_index.device.type == "meta"
    a = _torch_inputs(torch.float32, "meta")
    coords, _ = moved(a["scores"], a["offsets"], a["neighbor_offsets"])
    assert coords.device.type == "meta" and coords.shape == (2, 6, 2)


def test_soft_argmax_module_is_a_differentiable_head():
    head = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), lct.SoftArgmaxDecoder(logits=True))
    x = torch.randn(2, 3, 8, 8)
    coords, _ = head(x)
    coords.sum().backward()
    assert coords.shape == (2, 4, 2)
    assert head[0].weight.grad is not None and head[0].weight.grad.abs().sum() > 0


# --------------------------------------------------------------------------- noise


def test_uniform_noise_shape_range_dtype_and_reproducibility():
    c = torch.zeros(3, 98, 2, dtype=torch.float64)
    a = lct.uniform_noise(c, rng=torch.Generator().manual_seed(5))
    b = lct.uniform_noise(c, rng=torch.Generator().manual_seed(5))
    other = lct.uniform_noise(c, rng=torch.Generator().manual_seed(6))
    assert a.shape == c.shape and a.dtype == torch.float64 and a.device == c.device
    assert torch.equal(a, b) and not torch.equal(a, other)
    assert bool(((a >= 0) & (a < 1)).all())
    # Uniform: the mean of 588 draws is within 4 standard errors of 1/2.
    assert abs(a.mean().item() - 0.5) < 4 * (1 / 12 / a.numel()) ** 0.5


def test_uniform_noise_feeds_the_sampler_like_an_explicit_rng():
    c = torch.tensor(np.random.default_rng(2).uniform(0, 15, (4, 6, 2)))
    noise = lct.uniform_noise(c, rng=torch.Generator().manual_seed(1))
    direct, _ = lc.encode_randomized_rounding(c, heatmap_size=(16, 16), rng=torch.Generator().manual_seed(1))
    via, _ = lc.encode_randomized_rounding(c, heatmap_size=(16, 16), noise=noise)
    assert torch.equal(direct, via)


def test_uniform_noise_bad_input():
    with pytest.raises(TypeError, match=r"rng must be a torch.Generator"):
        lct.uniform_noise(torch.zeros(2, 2), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"coords must have shape \(\.\.\., K, 2\)"):
        lct.uniform_noise(torch.zeros(2, 3), rng=torch.Generator())


@CUDA
def test_uniform_noise_on_cuda_draws_there_and_refuses_a_cpu_generator():
    c = torch.zeros(2, 5, 2, device="cuda")
    assert lct.uniform_noise(c, rng=torch.Generator(device="cuda")).device.type == "cuda"
    with pytest.raises(ValueError, match=r"torch.Generator on cpu"):
        lct.uniform_noise(c, rng=torch.Generator())


# --------------------------------------------------------------------------- TargetEncoder

LANDMARKS = np.random.default_rng(7).uniform(0, 63, (4, 6, 2))
VISIBLE = np.array([1, 1, 0, 1, 1, 1], dtype=bool)
VISIBLE_BATCH = np.stack([VISIBLE] * 4)


def _codec(name, **options):
    size = {} if name == "simcc" else {"heatmap_size": (16, 16)}
    if "logits" in lc.codec_options(name):  # these tests decode the codecs' own targets
        options.setdefault("logits", False)
    return lc.get_codec(name, image_size=(64, 64), **size, **options)


@pytest.mark.parametrize(
    "name, options",
    [
        ("dark", {"sigma": 1.5}),
        ("h3r", {"expected": True}),
        ("soft_argmax", {"sigma": 1.0}),
        ("udp", {"sigma": 2.0}),
        ("simcc", {"sigma": 3.0}),
        ("pipnet", {"neighbors": TABLE}),
    ],
)
def test_target_encoder_equals_the_codec(name, options):
    codec = _codec(name, **options)
    encoder = lct.TargetEncoder(codec)
    got = encoder(LANDMARKS, VISIBLE_BATCH)
    want = codec.encode(torch.asarray(LANDMARKS, dtype=torch.float32), weights=torch.asarray(VISIBLE_BATCH))
    assert len(got.outputs) == len(want.outputs) == len(codec.output_names)
    for g, w in zip((*got.outputs, got.weights), (*want.outputs, want.weights)):
        assert g.dtype == w.dtype == torch.float32 and torch.equal(g, w)
    assert got.weights[:, 2].eq(0).all()
    # The same from a list of per-sample arrays, and from a tensor (left untouched).
    listed = encoder(list(LANDMARKS), list(VISIBLE_BATCH))
    tensor = torch.asarray(LANDMARKS)
    before = tensor.clone()
    as_tensor = encoder(tensor, torch.asarray(VISIBLE_BATCH))
    assert all(
        torch.equal(a, b) and torch.equal(a, c) for a, b, c in zip(got.outputs, listed.outputs, as_tensor.outputs)
    )
    assert torch.equal(tensor, before)


def test_target_encoder_samples_from_its_generator():
    codec = _codec("h3r")

    def encoder():
        return lct.TargetEncoder(codec, rng=torch.Generator().manual_seed(3))

    a, b = encoder(), encoder()
    first, second = a(LANDMARKS).outputs[0], a(LANDMARKS).outputs[0]
    assert torch.equal(first, b(LANDMARKS).outputs[0])  # same seed, same draws
    assert not torch.equal(first, second)  # a fresh sample each call
    c = lc.image_to_heatmap(torch.asarray(LANDMARKS, dtype=torch.float32), image_size=(64, 64), heatmap_size=(16, 16))
    noise = lct.uniform_noise(c, rng=torch.Generator().manual_seed(3))
    assert torch.equal(first, lc.encode_randomized_rounding(c, heatmap_size=(16, 16), noise=noise)[0])


class _Faces(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return {"keypoints": LANDMARKS[i % 4], "weights": VISIBLE, "index": i}


def _loader(encoder, workers, seed):
    return torch.utils.data.DataLoader(
        _Faces(),
        batch_size=2,
        collate_fn=encoder.collate,
        num_workers=workers,
        generator=torch.Generator().manual_seed(seed),
    )


def test_collate_stacks_the_samples_and_adds_the_targets():
    encoder = lct.TargetEncoder(_codec("dark", sigma=1.5))
    batch = next(iter(_loader(encoder, 0, 0)))
    assert batch["index"].tolist() == [0, 1]
    (maps,), weights, _ = batch["targets"]
    want = encoder(LANDMARKS[:2], np.stack([VISIBLE] * 2))
    assert torch.equal(maps, want.outputs[0]) and torch.equal(weights, want.weights)
    assert weights[:, 2].eq(0).all()


class _SameFace(_Faces):
    def __getitem__(self, i):
        return {"keypoints": LANDMARKS[0], "index": i}


def test_collate_in_workers_gives_each_worker_its_own_reproducible_noise():
    """A pickled generator would repeat the same noise in every worker; each worker seeds its
    own from get_worker_info().seed, so workers differ and a seeded DataLoader reproduces."""
    encoder = lct.TargetEncoder(_codec("h3r"), rng=torch.Generator().manual_seed(0))

    def samples(seed):
        loader = torch.utils.data.DataLoader(
            _SameFace(),
            batch_size=2,
            collate_fn=encoder.collate,
            num_workers=2,
            generator=torch.Generator().manual_seed(seed),
        )
        return [b["targets"].outputs[0] for b in loader]

    first, again, other = samples(11), samples(11), samples(12)
    assert all(torch.equal(x, y) for x, y in zip(first, again))
    assert not all(torch.equal(x, y) for x, y in zip(first, other))
    # Batches 0 and 1 are the first draws of workers 0 and 1, on the same face.
    assert not torch.equal(first[0], first[1])


@pytest.mark.parametrize(
    "codec, kwargs, error, message",
    [
        ("dsnt", {}, TypeError, "codec must be a codec object from landmark_codecs.get_codec"),
        (None, {}, TypeError, "codec must be a codec object"),
        ("h3r", {}, ValueError, "codec 'h3r' samples its target: pass rng=torch.Generator"),
        ("h3r", {"rng": np.random.default_rng(0)}, TypeError, "rng must be a torch.Generator, got numpy"),
        ("dark", {"rng": 0}, TypeError, "rng must be a torch.Generator, got builtins.int"),
        ("dark", {"keypoints_key": 1}, TypeError, "keypoints_key must be a str"),
        ("dark", {"weights_key": "keypoints"}, ValueError, "keypoints_key and weights_key must differ"),
        ("dark", {"dtype": torch.int32}, TypeError, "dtype must be a real floating torch.dtype"),
    ],
)
def test_target_encoder_bad_construction(codec, kwargs, error, message):
    given = _codec(codec) if codec in ("h3r", "dark") else codec
    with pytest.raises(error, match=message):
        lct.TargetEncoder(given, **kwargs)


def test_target_encoder_takes_rng_and_keys_as_codec_encode_does():
    """A codec that does not sample ignores rng (Codec.encode's contract, codec.samples False);
    collate reads the keypoints and weights under the keys it was given."""
    dark = _codec("dark")
    assert not dark.samples and _codec("h3r").samples
    points = torch.tensor([[[30.25, 40.5], [10.0, 70.75]]])
    with_rng = lct.TargetEncoder(dark, rng=torch.Generator().manual_seed(3))(points)
    torch.testing.assert_close(with_rng.outputs[0], lct.TargetEncoder(dark)(points).outputs[0], rtol=0, atol=0)
    enc = lct.TargetEncoder(dark, keypoints_key="points", weights_key="visible")
    batch = enc.collate([{"points": points[0], "visible": torch.tensor([True, False]), "id": i} for i in range(3)])
    assert batch["points"].shape == (3, 2, 2) and batch["id"].tolist() == [0, 1, 2]
    assert batch["targets"].weights.tolist() == [[1.0, 0.0]] * 3
    with pytest.raises(ValueError, match="each with a 'points' entry"):
        enc.collate([{"keypoints": points[0]}])


def test_target_encoder_bad_calls():
    encoder = lct.TargetEncoder(_codec("dark", sigma=1.5))
    with pytest.raises(ValueError, match=r"keypoints must have shape \(\.\.\., K, 2\)"):
        encoder(np.zeros((4, 6, 3)))
    with pytest.raises(ValueError, match=r"weights must have shape \(4, 6\)"):
        encoder(LANDMARKS, np.ones(5))
    with pytest.raises(ValueError, match="'keypoints' entry"):
        encoder.collate([{"points": LANDMARKS[0]}])
    assert repr(encoder).startswith("TargetEncoder(get_codec('dark'") and "sigma=1.5" in repr(encoder)


def test_score_gradient_reaches_only_the_first_maximum():
    """Ties in the maximum's row: the score is the anchor pixel's value, so is its gradient."""
    maps = torch.zeros(1, 3, 4, dtype=torch.float64)
    maps[0, 1, 1] = maps[0, 1, 3] = maps[0, 2, 0] = 1.0
    maps.requires_grad_()
    _, scores = lc.decode_argmax(maps)
    (g,) = torch.autograd.grad(scores.sum(), maps)
    want = torch.zeros_like(maps)
    want[0, 1, 1] = 1.0
    assert torch.equal(g, want)


def test_mixed_half_and_float32_positional_arrays_keep_the_promoted_dtype():
    """decode_pipnet promotes its three outputs' dtypes: float16 scores with float32 offsets give
    float32 coordinates, exactly those of float32 scores (the scores only pick the cell)."""
    a = _torch_inputs(torch.float32)
    mixed, _ = lc.decode_pipnet(a["scores"].half(), a["offsets"], a["neighbor_offsets"], neighbors=TABLE)
    assert mixed.dtype == torch.float32
    same, _ = lc.decode_pipnet(a["scores"].half().float(), a["offsets"], a["neighbor_offsets"], neighbors=TABLE)
    assert torch.equal(mixed, same)


def _function_modules():
    return sorted(
        (name, obj)
        for name, obj in vars(lct).items()
        if isinstance(obj, type) and issubclass(obj, lct._FunctionModule) and obj is not lct._FunctionModule
    )


@pytest.mark.parametrize("name, module", _function_modules())
def test_module_defaults_are_its_functions_defaults(name, module):
    """Every option a Module shares with its function has the function's default (the tests that
    compare a Module with its function pass every option, so they cannot see a changed default:
    DarkDecoder's iterations 4 -> 1 left them green). AdaptiveWingLoss's map_* options are
    weighted_loss_map's."""
    import inspect

    function = getattr(lc, re.search(r":func:`landmark_codecs\.(\w+)`", module.__doc__).group(1))
    theirs = inspect.signature(function).parameters
    maps = inspect.signature(lc.weighted_loss_map).parameters
    compared = 0
    for option, p in inspect.signature(module.__init__).parameters.items():
        if p.default is inspect.Parameter.empty:
            continue
        twin = maps.get(option.removeprefix("map_")) if option.startswith("map_") else theirs.get(option)
        if twin is None or twin.default is inspect.Parameter.empty:
            continue
        assert p.default == twin.default, (
            f"{name}({option}={p.default!r}), but {function.__name__}'s is {twin.default!r}"
        )
        compared += 1
    assert compared or name in ("RegressionDecoder", "LocRefDecoder"), name  # their options have no default
