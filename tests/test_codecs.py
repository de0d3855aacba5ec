"""Codec objects: every name round-trips real faces in image pixels, equals the functions it
calls, keeps landmarks apart, catches keypoints in the wrong unit and refuses bad options.

The registry's backend, device, compile, half-precision and hostile-input suites run codecs too
(``tests/public_calls.py``, entries ``codec.*``).
"""

from __future__ import annotations

import dataclasses
import inspect
import pickle
import warnings

import numpy as np
import pytest
from helpers import convert, numpy_of

import landmark_codecs as lc
from landmark_codecs.testing import assert_unbiased

IMAGE = (256, 192)  # not square: a swapped axis shows
HEATMAP = (64, 48)  # stride 4 on both axes
STRIDE = 4.0


def faces(shape: str, n: int = 8, seed: int = 0) -> np.ndarray:
    """``n`` jittered copies of a packaged mean face, in image pixels of IMAGE, inside it."""
    rng = np.random.default_rng(seed)
    w, h = IMAGE
    base = lc.mean_shape(shape) * np.array([0.7 * w, 0.9 * h]) + np.array([0.15 * w, 0.05 * h]) - 0.5
    return base[None] + rng.normal(0.0, 3.0, size=(n, *base.shape))


def codec(name: str, shape: str = "wflw98", **options):
    if name == "pipnet":
        options.setdefault("mean_shape", shape)
    if "logits" in lc.codec_options(name):  # these tests decode the codecs' own targets
        options.setdefault("logits", False)
    return lc.get_codec(
        name, image_size=IMAGE, heatmap_size=None if name in ("simcc", "regression") else HEATMAP, **options
    )


def rng_for(backend: str, seed: int = 0):
    if backend == "torch":
        torch = pytest.importorskip("torch")
        return torch.Generator().manual_seed(seed)
    return np.random.default_rng(seed)


# Bound on |decoded - keypoint| per axis in image pixels, on a codec's own target, for keypoints
# inside the map (beyond float rounding): see the module docstring of landmark_codecs.codecs.
BOUNDS = {
    "argmax": 0.5 * STRIDE,  # the target sits at the rounded pixel
    "quarter": 0.5 * STRIDE,  # a symmetric target: the two neighbours tie, no shift
    "megvii": 0.5 * STRIDE,  # the target sits at the pixel holding the keypoint
    "h3r": STRIDE,  # sampled: one of the <= 4 neighbouring pixels
}
EXACT = (
    "dark",
    "udp",
    "udp_combined",
    "simcc",
    "soft_argmax",
    "regression",
    "pipnet",
    "h3r_expected",
    "local_soft_argmax",
    "locref",
)


def _rounding(dtype) -> float:
    """A few units in the last place of the largest image coordinate: one conversion each way,
    a decoder's sums and Newton steps (observed at most 1.5 ulps in float32)."""
    return 8 * np.finfo(dtype).eps * max(IMAGE)


@pytest.mark.parametrize("shape", lc.MEAN_SHAPES)
@pytest.mark.parametrize("name", [*lc.codec_names(), "h3r_expected"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_codec_round_trips_real_faces_in_image_pixels(backend, name, shape, dtype):
    c = codec("h3r", expected=True) if name == "h3r_expected" else codec(name, shape)
    keypoints = faces(shape).astype(dtype)
    given = convert(keypoints, backend)
    encoded = c.encode(given, rng=rng_for(backend))
    decoded = c.decode(*encoded.outputs)
    assert len(encoded.outputs) == len(c.output_names)
    assert tuple(decoded.coords.shape) == keypoints.shape and tuple(decoded.scores.shape) == keypoints.shape[:-1]
    assert (
        decoded.coords.dtype == given.dtype
        and numpy_of(encoded.weights).tolist() == np.ones(keypoints.shape[:-1]).tolist()
    )
    error = np.abs(numpy_of(decoded.coords) - keypoints)
    bound = 0.0 if name in EXACT else BOUNDS[name]
    assert error.max() <= bound + _rounding(dtype), f"{name}: {error.max()} px"
    if name == "h3r":
        assert error.max() > 1.0  # sampled: the rounding shows (an exact path would be a bug here)
    np.testing.assert_array_equal(numpy_of(given), keypoints)  # input untouched


def test_sampled_h3r_codec_is_unbiased_in_image_pixels():
    """Randomized rounding's claim survives the codec's two conversions: the mean of the decoded
    samples is the keypoint (distribution-free check, support one heatmap pixel = STRIDE)."""
    c = codec("h3r")
    keypoints = faces("300w68", n=1)[0]
    assert_unbiased(
        lambda x, rng: c.decode(*c.encode(x, rng=rng).outputs).coords, keypoints, support_width=STRIDE, n_samples=2000
    )


@pytest.mark.parametrize(
    "name, function",
    [
        ("argmax", lambda h, w: lc.encode_gaussian(h, heatmap_size=HEATMAP, sigma=2.0, rounding="nearest", weights=w)),
        ("dark", lambda h, w: lc.encode_gaussian(h, heatmap_size=HEATMAP, sigma=2.0, weights=w)),
        ("soft_argmax", lambda h, w: lc.encode_soft_argmax(h, heatmap_size=HEATMAP, sigma=1.0, weights=w)),
        ("h3r_expected", lambda h, w: lc.encode_randomized_rounding(h, heatmap_size=HEATMAP, expected=True, weights=w)),
    ],
)
def test_codec_encode_is_the_function_on_converted_keypoints(name, function):
    c = codec("h3r", expected=True) if name == "h3r_expected" else codec(name)
    keypoints, weights = faces("wflw98", n=3), np.random.default_rng(1).random((3, 98))
    heatmap_points = lc.image_to_heatmap(keypoints, image_size=IMAGE, heatmap_size=HEATMAP)
    want = function(heatmap_points, weights)
    got = c.encode(keypoints, weights=weights)
    np.testing.assert_array_equal(got.outputs[0], want.heatmaps)
    np.testing.assert_array_equal(got.weights, want.weights)
    assert type(got.targets) is type(want) and all(np.array_equal(a, b) for a, b in zip(got.targets, want))


def test_codec_decode_is_the_function_then_to_image():
    maps = np.random.default_rng(2).random((2, 98, 48, 64))
    c = codec("dark", convention="legacy", iterations=2)
    want, scores = lc.decode_dark(maps, sigma=2.0, iterations=2)
    got = c.decode(maps)
    np.testing.assert_array_equal(
        got.coords, lc.heatmap_to_image(want, image_size=IMAGE, heatmap_size=HEATMAP, convention="legacy")
    )
    np.testing.assert_array_equal(got.scores, scores)
    np.testing.assert_array_equal(
        c.to_image(c.to_heatmap(faces("aflw19"))),
        lc.heatmap_to_image(
            lc.image_to_heatmap(faces("aflw19"), image_size=IMAGE, heatmap_size=HEATMAP, convention="legacy"),
            image_size=IMAGE,
            heatmap_size=HEATMAP,
            convention="legacy",
        ),
    )


@pytest.mark.parametrize("name", lc.codec_names())
def test_a_missing_landmark_gets_weight_zero_and_changes_no_other(backend, name):
    """NaN, outside the image, or weight 0: weight 0, and every other landmark's outputs are the
    ones it gets alone (PIPNet's neighbour terms that point at the missing one excepted)."""
    c = codec(name, on_outside="ignore")
    keypoints = faces("wflw98", n=2)
    damaged = keypoints.copy()
    damaged[0, 3] = np.nan
    damaged[1, 5] = [-40.0, 10.0]
    weights = np.ones((2, 98))
    weights[0, 7] = 0
    rng = rng_for(backend)
    clean = c.encode(convert(keypoints, backend), rng=rng_for(backend, 5))
    got = c.encode(convert(damaged, backend), weights=convert(weights, backend), rng=rng_for(backend, 5))
    w = numpy_of(got.weights)
    assert w[0, 3] == w[1, 5] == w[0, 7] == 0 and w.sum() == 2 * 98 - 3
    keep = np.ones((2, 98), dtype=bool)
    keep[0, [3, 7]] = keep[1, 5] = False
    for a, b in zip(got.outputs, clean.outputs):
        a, b = numpy_of(a), numpy_of(b)
        if name == "pipnet" and a.ndim == 6:  # neighbour offsets: only the terms that point at kept landmarks
            continue
        np.testing.assert_array_equal(a[keep], b[keep])
    del rng


# --- keypoints in the wrong unit ----------------------------------------------------------------


def test_heatmap_pixels_given_as_image_pixels_are_caught():
    """The mistake the codecs exist to prevent, the other way round: image pixels of the
    uncropped 4x larger frame passed as crop pixels. More than half fall outside: warn."""
    c = codec("dark")
    keypoints = faces("300w68") * 4
    with pytest.warns(
        lc.LandmarksOutsideWarning, match=r"outside the 256x192 image .* Codecs take keypoints in image pixels"
    ):
        encoded = c.encode(keypoints)
    assert (numpy_of(encoded.weights) == 0).mean() > 0.5
    with pytest.raises(ValueError, match=r"of \d+ keypoints \(finite, weight > 0\) lie outside the 256x192 image"):
        codec("dark", on_outside="raise").encode(keypoints)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        codec("dark", on_outside="ignore").encode(keypoints)


def test_the_outside_check_counts_only_finite_weighted_keypoints_and_needs_a_majority(backend):
    c = codec("argmax", on_outside="raise")
    k = np.full((1, 4, 2), 100.0)
    k[0, :2] = -50.0  # exactly half outside: allowed
    c.encode(convert(k, backend))
    k[0, 2] = np.nan  # one of three finite ones inside: more than half outside
    with pytest.raises(ValueError, match="2 of 3 keypoints"):
        c.encode(convert(k, backend))
    c.encode(convert(k, backend), weights=convert(np.array([[0.0, 1.0, 1.0, 1.0]]), backend))  # one out of two counted
    c.encode(convert(np.full((0, 4, 2), 1.0), backend))  # nothing to count


# --- the objects ----------------------------------------------------------------------------------


def test_codec_names_are_the_registry_and_each_builds_with_defaults():
    assert lc.codec_names() == (
        "argmax",
        "quarter",
        "dark",
        "udp",
        "udp_combined",
        "megvii",
        "simcc",
        "h3r",
        "soft_argmax",
        "regression",
        "pipnet",
        "local_soft_argmax",
        "locref",
    )
    for name in lc.codec_names():
        c = codec(name)
        assert c.name == name and isinstance(c, lc.Codec)


@pytest.mark.parametrize("name", lc.codec_names())
def test_codecs_are_frozen_picklable_and_readable(name):
    c = codec(name, on_outside="ignore")
    again = pickle.loads(pickle.dumps(c))
    keypoints = faces("wflw98", n=2)
    a, b = c.encode(keypoints, rng=np.random.default_rng(0)), again.encode(keypoints, rng=np.random.default_rng(0))
    assert all(np.array_equal(x, y) for x, y in zip(a.outputs, b.outputs))
    assert repr(again) == repr(c) and repr(c).startswith(f"get_codec({name!r}, image_size=(256, 192)")
    assert "on_outside='ignore'" in repr(c)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.image_size = (1, 1)
    rebuilt = lc.get_codec(name, image_size=c.image_size, heatmap_size=c.heatmap_size, **c.options)
    assert repr(rebuilt) == repr(c)


def test_pipnet_codec_takes_a_name_an_array_or_a_table():
    shape = lc.mean_shape("cofw29")
    table = lc.pipnet_neighbors(shape, num_neighbors=5)
    by_name = codec("pipnet", mean_shape="cofw29", num_neighbors=5)
    by_array = codec("pipnet", mean_shape=shape, num_neighbors=5)
    by_table = lc.get_codec("pipnet", image_size=IMAGE, heatmap_size=HEATMAP, neighbors=table)
    keypoints = faces("cofw29", n=2)
    outs = [c.encode(keypoints).outputs for c in (by_name, by_array, by_table)]
    assert all(np.array_equal(x, y) for o in outs[1:] for x, y in zip(o, outs[0]))
    assert "mean_shape=<(29, 2) array>" in repr(by_array) and "neighbors=<PIPNetNeighbors K=29 N=5>" in repr(by_table)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: lc.get_codec("dsnt", image_size=IMAGE, heatmap_size=HEATMAP),
            ValueError,
            r"unknown codec 'dsnt'; choose from argmax, quarter, dark",
        ),
        (lambda: lc.get_codec("dark", image_size=IMAGE), ValueError, r"codec 'dark' needs heatmap_size=\(W, H\)"),
        (
            lambda: lc.get_codec("dark", image_size=IMAGE, heatmap_size=HEATMAP, sigmaa=2.0),
            TypeError,
            r"codec 'dark' has no option\(s\) sigmaa; its options are on_outside, convention, sigma, iterations, kernel_size",
        ),
        (lambda: lc.get_codec("dark", image_size=IMAGE, heatmap_size=HEATMAP, sigma=-1.0), ValueError, "sigma"),
        (
            lambda: lc.get_codec("dark", image_size=256, heatmap_size=HEATMAP),
            TypeError,
            r"image_size must be a \(width, height\) pair",
        ),
        (
            lambda: lc.get_codec("dark", image_size=IMAGE, heatmap_size=HEATMAP, convention="centre"),
            ValueError,
            "convention must be one of",
        ),
        (
            lambda: lc.get_codec("dark", image_size=IMAGE, heatmap_size=HEATMAP, on_outside="drop"),
            ValueError,
            "on_outside must be one of 'warn', 'raise', 'ignore'",
        ),
        (
            lambda: lc.get_codec("h3r", image_size=IMAGE, heatmap_size=HEATMAP, top_k=0, logits=False),
            ValueError,
            "top_k must be a positive int",
        ),
        (
            lambda: lc.get_codec("h3r", image_size=IMAGE, heatmap_size=HEATMAP, expected="yes", logits=False),
            TypeError,
            "expected must be True or False",
        ),
        (
            lambda: lc.get_codec("soft_argmax", image_size=IMAGE, heatmap_size=HEATMAP, logits="True"),
            TypeError,
            "logits must be True or False",
        ),
        (
            lambda: lc.get_codec("simcc", image_size=IMAGE, smoothing="standard"),
            ValueError,
            r'smoothing="standard" \(one-hot labels\) decodes with refine="none"',
        ),
        (
            lambda: lc.get_codec("soft_argmax", image_size=IMAGE, heatmap_size=HEATMAP),
            TypeError,
            r"codec 'soft_argmax' needs logits=True .* or logits=False",
        ),
        (
            lambda: lc.get_codec("h3r", image_size=IMAGE, heatmap_size=HEATMAP, expected=True),
            TypeError,
            r"codec 'h3r' needs logits=True .* or logits=False",
        ),
        (
            lambda: lc.get_codec("simcc", image_size=IMAGE, heatmap_size=HEATMAP),
            ValueError,
            r"codec 'simcc' has 512x384 bins .* heatmap_size must be left out or equal \(512, 384\)",
        ),
        (
            lambda: lc.get_codec("pipnet", image_size=IMAGE, heatmap_size=HEATMAP),
            ValueError,
            "needs exactly one of mean_shape= .* and neighbors=",
        ),
        (
            lambda: lc.get_codec("pipnet", image_size=IMAGE, heatmap_size=HEATMAP, mean_shape="lfw"),
            ValueError,
            "mean_shape must be a .* or one of 300w68, wflw98",
        ),
        (
            lambda: lc.get_codec("pipnet", image_size=IMAGE, heatmap_size=HEATMAP, mean_shape=np.zeros((5, 3))),
            ValueError,
            r"mean_shape must have shape \(K, 2\)",
        ),
        (lambda: codec("h3r").encode(faces("aflw19")), ValueError, "codec 'h3r' samples its target: pass rng="),
        (
            lambda: codec("pipnet", "aflw19").encode(faces("wflw98")),
            ValueError,
            r"codec 'pipnet' was built for K = 19 landmarks",
        ),
        (lambda: codec("dark").encode(np.zeros((2, 3))), ValueError, r"keypoints must have shape \(\.\.\., K, 2\)"),
        (
            lambda: codec("dark").encode(faces("aflw19"), weights=np.ones(5)),
            ValueError,
            r"weights must have shape \(8, 19\)",
        ),
        (
            lambda: codec("simcc").decode(np.zeros((1, 2, 512))),
            TypeError,
            r"codec 'simcc' decodes 2 output\(s\) \(x_labels, y_labels\), got 1",
        ),
        (lambda: codec("dark").decode(np.zeros((2, 48))), ValueError, r"heatmaps must have shape \(\.\.\., K, H, W\)"),
    ],
)
def test_bad_options_and_calls_say_what_is_wrong(call, error, match):
    with pytest.raises(error, match=match):
        call()


# The functions behind each codec, and the options where a codec means another default than its
# function's, each with the reason (anything else must agree: a changed default is a test failure).
_CODEC_FUNCTIONS = {
    "argmax": ("encode_gaussian", "decode_argmax"),
    "quarter": ("encode_gaussian", "decode_argmax"),
    "dark": ("encode_gaussian", "decode_dark"),
    "udp": ("encode_udp", "decode_udp"),
    "udp_combined": ("encode_udp_combined", "decode_udp_combined"),
    "megvii": ("encode_gaussian", "decode_argmax"),
    "simcc": ("encode_simcc", "decode_simcc"),
    "h3r": ("encode_randomized_rounding", "decode_randomized_rounding"),
    "soft_argmax": ("encode_soft_argmax", "decode_soft_argmax"),
    "regression": ("encode_regression", "decode_regression"),
    "pipnet": ("pipnet_neighbors", "encode_pipnet", "decode_pipnet"),
    "local_soft_argmax": ("encode_gaussian", "decode_local_soft_argmax"),
    "locref": ("encode_locref", "decode_locref"),
}
_CODEC_OWN_DEFAULTS = {
    ("argmax", "rounding"): "the vanilla codec: its target sits on the rounded pixel",
    ("quarter", "rounding"): "mmpose's MSRAHeatmap: the rounded pixel",
    ("simcc", "sigma"): "decode_simcc's None means 'give it': the codec gives its own to both sides",
    ("local_soft_argmax", "sigma"): "the target's sigma, which exact=True inverts (the decoder's None: the plain mean)",
}


@pytest.mark.parametrize("name", lc.codec_names())
def test_codec_defaults_are_its_functions_defaults(name):
    fields = {
        f.name: f.default
        for f in dataclasses.fields(lc.codecs._REGISTRY[name])
        if f.default is not dataclasses.MISSING and f.name not in ("heatmap_size", "on_outside")
    }
    compared = 0
    for function in _CODEC_FUNCTIONS[name]:
        parameters = inspect.signature(getattr(lc, function)).parameters
        for option, default in fields.items():
            theirs = parameters[option].default if option in parameters else inspect.Parameter.empty
            if theirs is inspect.Parameter.empty or (name, option) in _CODEC_OWN_DEFAULTS:
                continue
            assert default == theirs, f"{name}.{option} = {default!r}, but {function}'s default is {theirs!r}"
            compared += 1
    assert compared or name in ("argmax", "quarter", "megvii", "regression"), name
    assert set(_CODEC_FUNCTIONS) == set(lc.codec_names())


@pytest.mark.parametrize("name", ["dark", "simcc", "udp_combined", "regression"])
def test_decode_checks_each_numpy_signature_once_with_the_same_result(name, monkeypatch):
    """A codec remembers the NumPy (dtype, shape) signatures whose outputs passed its checks and
    skips them for the next outputs of that signature (the checks read nothing else): the same
    coordinates and scores as when checked, a new signature checked, and outputs of a bad shape
    or dtype still refused with the checks' message, every time."""
    c = codec(name)
    outputs = c.encode(np.array([[[30.3, 60.7], [100.0, 20.25]]])).outputs
    calls = []
    original = type(c)._check_outputs
    monkeypatch.setattr(type(c), "_check_outputs", lambda self, o: calls.append(o[0].shape) or original(self, o))
    first = c.decode(*outputs)
    second = c.decode(*outputs)
    assert calls == [outputs[0].shape]
    np.testing.assert_array_equal(first.coords, second.coords)
    np.testing.assert_array_equal(first.scores, second.scores)
    batch = tuple(np.concatenate([o, o]) for o in outputs)
    again = c.decode(*batch)
    assert calls == [outputs[0].shape, batch[0].shape]
    np.testing.assert_array_equal(again.coords[:1], first.coords)
    for _ in range(2):
        with pytest.raises(ValueError, match="must have shape"):
            c.decode(*(o[..., :-1] for o in outputs))
        with pytest.raises(TypeError, match="real floating"):
            c.decode(*(o.astype(np.int32) for o in outputs))


def test_decode_remembers_no_signature_whose_outputs_it_had_to_promote():
    """Mixed dtypes are promoted by the checks (float32 with float64 is float64): such outputs are
    never taken as they come, so their signature is not remembered."""
    c = codec("simcc")
    x, y = c.encode(np.array([[[30.3, 60.7]]], dtype=np.float32)).outputs
    for _ in range(2):
        got = c.decode(x, y.astype(np.float64))
        assert got.coords.dtype == np.float64
    assert ((x.dtype, x.shape), (np.dtype(np.float64), y.shape)) not in c._decode_plans
