"""Hostile inputs, systematically: every public call of the registry (tests/public_calls.py) gets
each of its array inputs replaced by something wrong, drawn by hypothesis.

Per call, the profile's ``max_examples`` cases (40 by default, 1000 under
``LANDMARK_CODECS_PROFILE=thorough``) are drawn from: ``None``; a string; complex, object,
bool and int arrays; rank 0 and rank 1; a zero-size axis; read-only and non-contiguous copies;
NaN, +inf, -inf or +-1e308 in one landmark or in one whole batch item (NumPy and torch). The
outcome must be one of:

- a ``TypeError`` or ``ValueError`` whose message names an argument of the function (never
  another exception type, never an error from inside NumPy or torch);
- a result, where the input is legal: then a read-only or non-contiguous input gives the same
  result as the plain one, and a non-finite value in one landmark (batch item) leaves every
  other landmark (batch item) of every per-landmark output bit-identical.

In every case no input is changed, and the peak memory stays within a fixed multiple of the
inputs' and outputs' size.
"""

from __future__ import annotations

import functools
import inspect
import io
import math
import pathlib
import re
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from public_calls import CALLS, HOST_SIDE, INPUTS, outputs, resolve

import landmark_codecs as lc
from landmark_codecs.metrics import COCO_SIGMAS
from landmark_codecs.testing import to_numpy

torch = pytest.importorskip("torch")

B, K = INPUTS["coords"].shape[:2]
# Inputs for which an integer or boolean array is legal (a visibility mask, a mean shape), and
# those that may be None (optional arguments).
INTEGER_OK = {"weights", "mean_shape"}
OPTIONAL = {"weights", "noise", "boundary", "loss_map"}
# Calls whose output landmark k depends on other input landmarks by design: PIPNet's neighbour
# targets and merge (a non-finite neighbour is invisible to the landmarks that predict it),
# flips' landmark permutation, and reductions to a scalar.
# Boundary chains join landmarks, and a boundary channel or a mean loss covers several.
NOT_PER_LANDMARK = {
    "flip_horizontal",
    "encode_pipnet",
    "decode_pipnet",
    "decode_pipnet_original",
    "pipnet_loss",
    "pipnet_neighbors",
    "encode_boundaries",
    "encode_boundaries_split",
    "star_loss",
    "dsnt_regularization",
    "dsnt_regularization_variance",
    "coordinate_channels",
    "codec.pipnet.encode",
    "codec.pipnet.decode",
}
MUTATIONS = [
    "none",
    "string",
    "complex",
    "object",
    "bool",
    "int",
    "rank0",
    "rank1",
    "zero_axis",
    "readonly",
    "noncontiguous",
    "poison_landmark",
    "poison_batch",
    "tiny",
    "huge",
    "other_size",
    "other_device",
]
# "tiny" and "huge" scale a finite input so that its largest magnitude is subnormal or 1e300:
# no output may become NaN where the clean one is not, and the calls below, whose result does not
# depend on the scale of that input, give the clean result (where the scaled input keeps its bits).
SCALES = {"tiny": [3e-310, 5e-323], "huge": [1e300]}
SCALE_FREE = {
    "decode_argmax": {"maps"},
    "decode_argmax_quarter": {"maps"},
    "decode_rr_topk": {"maps"},
    "decode_soft_argmax_prob": {"maps"},
    "decode_dark": {"maps"},
    "decode_udp": {"maps"},
    "decode_udp_combined": {"maps"},
    "decode_udp_combined_unblurred": {"maps"},
    "decode_simcc": {"x_labels", "y_labels"},
    "decode_simcc_dark": {"x_labels", "y_labels"},
    "decode_pipnet": {"scores"},
    "decode_pipnet_original": {"scores"},
    "heatmap_moments": {"maps"},
    "codec.dark.decode": {"maps"},
    "codec.udp.decode": {"maps"},
    "codec.udp_combined.decode": {"maps"},
    "codec.megvii.decode": {"maps"},
    "codec.simcc.decode": {"x_labels", "y_labels"},
    "codec.h3r.decode": {"maps"},
    "codec.pipnet.decode": {"scores"},
    "pipnet_neighbors": {"mean_shape"},
}
POISONS = [math.nan, math.inf, -math.inf, 1e308, -1e308]
META = torch.device("meta")


class _Recorder(dict):
    def __init__(self, data):
        super().__init__(data)
        self.used: list[str] = []

    def __getitem__(self, key):
        if key not in self.used:
            self.used.append(key)
        return super().__getitem__(key)


def _used_inputs(name: str) -> list[str]:
    rec = _Recorder({k: v.copy() for k, v in INPUTS.items()})
    CALLS[name][1](rec)
    return rec.used


USED = {name: _used_inputs(name) for name in CALLS}


# Public functions a registry call runs on its inputs before the one it tests.
ALSO_CALLED = {"pipnet_loss": ["encode_pipnet"], "adaptive_wing_loss": ["weighted_loss_map"]}
# A codec's methods and the family functions they call (whose messages name their own arguments).
_FAMILY = {
    "argmax": ["encode_gaussian", "decode_argmax"],
    "dark": ["encode_gaussian", "decode_dark"],
    "udp": ["encode_udp", "decode_udp"],
    "udp_combined": ["encode_udp_combined", "decode_udp_combined"],
    "megvii": ["encode_gaussian", "decode_dark"],
    "regression": ["encode_regression", "decode_regression"],
    "simcc": ["encode_simcc", "decode_simcc"],
    "h3r": ["encode_randomized_rounding", "decode_randomized_rounding"],
    "soft_argmax": ["encode_soft_argmax", "decode_soft_argmax"],
    "pipnet": ["encode_pipnet", "decode_pipnet"],
    "local_soft_argmax": ["encode_gaussian", "decode_local_soft_argmax"],
    "locref": ["encode_locref", "decode_locref"],
}
ALSO_CALLED.update(
    {n: ["Codec.encode", "Codec.decode", *_FAMILY[n.split(".")[1]]] for n in CALLS if n.startswith("codec.")}
)


def _names(message: str, names: set[str]) -> bool:
    """Whether ``message`` names one of ``names`` as a word (a one-letter name only as its first word)."""
    return any(
        message.startswith(f"{n} ") or (len(n) > 1 and re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", message))
        for n in names
    )


def _argument_names(name: str) -> set[str]:
    names = set()
    for public in [CALLS[name][0], *ALSO_CALLED.get(name, [])]:
        names |= set(inspect.signature(resolve(public)).parameters)
    return names


def _mutate(value: np.ndarray, mutation: str, key: str, data) -> object:
    if mutation == "none":
        return None
    if mutation == "string":
        return "abc"
    if mutation in ("complex", "object", "bool", "int"):
        return value.astype({"complex": complex, "object": object, "bool": bool, "int": np.int64}[mutation])
    if mutation == "rank0":
        return np.asarray(value.reshape(-1)[0])
    if mutation == "rank1":
        return value.reshape(-1)
    if mutation == "zero_axis":
        axis = data.draw(st.integers(0, value.ndim - 1), label="axis")
        return np.take(value, np.arange(0), axis=axis)
    if mutation == "readonly":
        out = value.copy()
        out.flags.writeable = False
        return out
    if mutation == "noncontiguous":
        wide = np.zeros((*value.shape[:-1], 2 * value.shape[-1]), dtype=value.dtype)
        wide[..., ::2] = value
        return wide[..., ::2]
    if mutation in SCALES:
        target = data.draw(st.sampled_from(SCALES[mutation]), label="largest magnitude")
        return value * (target / np.abs(value).max())
    if mutation == "other_size":  # the last two axes swapped, or the last one longer
        if value.ndim >= 2 and value.shape[-1] != value.shape[-2]:
            return np.swapaxes(value, -1, -2).copy()
        return np.concatenate([value, value], axis=-1)
    if mutation == "other_device":
        return value  # moved to the meta device by _convert
    out = value.copy()
    poison = data.draw(st.sampled_from(POISONS), label="poison")
    where = (data.draw(st.integers(0, out.shape[0] - 1), label="batch item"),)
    if mutation == "poison_landmark" and out.ndim >= 3 and key != "mean_shape":
        where += (data.draw(st.integers(0, out.shape[1] - 1), label="landmark"),)
    out[where] = poison
    return out, where


def _convert(value, lib: str):
    if lib == "torch" and isinstance(value, np.ndarray) and value.dtype.kind in "fcbiu":
        if not value.flags.c_contiguous:  # the same strided layout in torch: every other element
            return torch.asarray(np.repeat(value, 2, axis=-1))[..., ::2]
        return torch.asarray(value.copy())  # torch has no read-only tensors: a plain copy
    return value


def _run(name: str, inputs: dict, lib: str):
    if lib != "numpy":  # tracemalloc sees NumPy's allocations only; it slows every call
        return CALLS[name][1](inputs), 0
    tracemalloc.start()
    try:
        result = CALLS[name][1](inputs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, peak


@functools.cache
def _clean(name: str, lib: str) -> tuple[np.ndarray, ...]:
    return tuple(to_numpy(o) for o in outputs(CALLS[name][1]({k: _convert(v.copy(), lib) for k, v in INPUTS.items()})))


# NumPy's overflow warnings on +-1e308 are honest (the loss of such an error is inf); the
# suite's rule that turns the library's RuntimeWarnings into errors is for legal inputs.
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
# The torch half is slow-marked to keep the fast run under 2 minutes; CI runs both.
@pytest.mark.parametrize("lib", ["numpy", pytest.param("torch", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", sorted(CALLS))
@given(data=st.data())
def test_hostile_inputs_give_a_clear_error_or_a_contained_result(name, lib, data):
    key = data.draw(st.sampled_from(USED[name]), label="input")
    mutation = data.draw(st.sampled_from(MUTATIONS), label="mutation")
    clean = _clean(name, lib)
    hostile, where = _mutate(INPUTS[key], mutation, key, data), None
    if mutation.startswith("poison"):
        hostile, where = hostile
    if mutation == "other_device" and lib != "torch":
        return  # NumPy has one device
    inputs = {k: _convert(v.copy(), lib) for k, v in INPUTS.items() if k in USED[name]}
    inputs[key] = _convert(hostile, lib)
    if mutation == "other_device":
        inputs[key] = inputs[key].to("meta")
    before = {
        k: (
            to_numpy(v).copy()
            if hasattr(v, "shape") and v.dtype != object and getattr(v, "device", None) != META
            else v
        )
        for k, v in inputs.items()
    }
    try:
        result, peak = _run(name, inputs, lib)
    except (TypeError, ValueError) as err:
        message = str(err)
        assert _names(message, _argument_names(name)), f"{name}: {type(err).__name__} names no argument: {message!r}"
        assert mutation not in ("readonly", "noncontiguous"), f"{name}: a legal {mutation} input was refused: {message}"
        if mutation.startswith("poison"):
            assert CALLS[name][0] in HOST_SIDE, f"{name}: array values are never inspected, yet: {message}"
        result = None
    for k, v in inputs.items():  # inputs are never modified
        if hasattr(v, "shape") and v.dtype != object and getattr(v, "device", None) != META:
            np.testing.assert_array_equal(to_numpy(v), before[k], err_msg=f"{name} modified {k}")
    if result is None:
        if mutation in SCALES:
            pytest.fail(f"{name}: a finite {key} scaled to {np.abs(hostile).max():g} was refused")
        return
    if mutation == "other_device":
        # Mixed devices are refused by name; an input on the meta device alone is legal.
        assert len(inputs) == 1, f"{name}: {key} on the meta device, the other inputs on the CPU, gave a result"
        return
    if mutation == "other_size" and name.startswith("codec.") and name.endswith(".decode"):
        pytest.fail(f"{name}: decoded outputs of another size ({tuple(hostile.shape)}) than the codec's")
    assert mutation not in ("string", "complex", "object"), f"{name}: accepted {mutation} for {key}"
    if mutation == "none":
        assert key in OPTIONAL, f"{name}: accepted None for {key}"
        return
    if mutation in ("bool", "int"):
        assert key in INTEGER_OK, f"{name}: accepted an {mutation} array for {key}"
    got = [to_numpy(o) for o in outputs(result)]
    size = sum(np.asarray(to_numpy(v)).nbytes for v in inputs.values() if hasattr(v, "shape")) + sum(
        g.nbytes for g in got
    )
    if lib == "numpy":
        assert peak <= 64 * size + 2**22, f"{name}: peak {peak} bytes for {size} bytes of arrays"
    if mutation in ("readonly", "noncontiguous"):
        for g, c in zip(got, clean):
            np.testing.assert_allclose(g, c, rtol=1e-12, atol=1e-12, err_msg=name)
    if mutation in SCALES:
        for g, c in zip(got, clean):
            if g.shape == c.shape and g.dtype.kind == "f":
                assert not (np.isnan(g) & ~np.isnan(c)).any(), (
                    f"{name}: {key} scaled to {np.abs(hostile).max():g} gave NaN"
                )
        # 5e-323 keeps 4 bits of each value (no longer the same map); 3e-310 keeps 45
        if key in SCALE_FREE.get(name, ()) and np.abs(hostile).max() > 1e-315:
            # coordinates and tables only: scores scale with the maps
            first = got[0] if name != "pipnet_neighbors" else np.concatenate([g.ravel() for g in got])
            want = clean[0] if name != "pipnet_neighbors" else np.concatenate([c.ravel() for c in clean])
            np.testing.assert_allclose(
                first, want, rtol=0, atol=1e-6, err_msg=f"{name}: {key} scaled to {np.abs(hostile).max():g}"
            )
    if mutation.startswith("poison") and hostile.ndim >= 3 and key != "mean_shape":
        item = where[:1] if name in NOT_PER_LANDMARK else where
        for g, c in zip(got, clean):
            if g.shape[:2] != (B, K) or g.shape != c.shape:
                continue  # reductions and tables have no per-landmark axes
            untouched = np.ones((B, K), dtype=bool)
            untouched[item] = False
            np.testing.assert_array_equal(
                g[untouched], c[untouched], err_msg=f"{name}: poisoning {key}{list(item)} moved another landmark"
            )


# --- options: every keyword argument of every public function ------------------------------

_I = INPUTS
OPTION_CALLS = {
    "image_to_heatmap": (["coords"], dict(image_size=(64, 48), heatmap_size=(16, 12), convention="pixel_center")),
    "heatmap_to_image": (["coords"], dict(image_size=(64, 48), heatmap_size=(16, 12), convention="udp")),
    "flip_horizontal": (["coords"], dict(width=16, flip_index=[5, 4, 3, 2, 1, 0])),
    "in_heatmap": (["coords"], dict(heatmap_size=(16, 12))),
    "representable_coords": (["coords"], dict(heatmap_size=(16, 12))),
    "encode_gaussian": (["coords"], dict(heatmap_size=(16, 12), sigma=1.5, rounding="none", outside="draw")),
    "encode_randomized_rounding": (["coords"], dict(heatmap_size=(16, 12), expected=True, sigma=1.0)),
    "encode_soft_argmax": (["coords"], dict(heatmap_size=(16, 12), sigma=1.0)),
    "encode_udp": (["coords_image"], dict(image_size=(64, 48), heatmap_size=(16, 12), sigma=1.5)),
    "encode_udp_combined": (["coords_image"], dict(image_size=(64, 48), heatmap_size=(16, 12), radius=2.0)),
    "decode_udp_combined": (["maps", "udp_offsets"], dict(image_size=(64, 48), radius=2.0, kernel_size=11)),
    "encode_regression": (["coords_image"], dict(image_size=(64, 48))),
    "simcc_visibility": (["x_labels", "y_labels"], dict(sigma=2.0, beta=150.0)),
    "decode_regression": (["labels_rle"], dict(image_size=(64, 48))),
    "encode_simcc": (
        ["coords_simcc"],
        dict(image_size=(32, 24), sigma=2.0, split_ratio=2.0, convention="pixel_center", normalize=False),
    ),
    "encode_pipnet": (["coords_cells"], dict(grid_size=(8, 6), neighbors=None)),
    "decode_argmax": (["maps"], dict(refine="quarter")),
    "decode_randomized_rounding": (["maps"], dict(top_k=9, activation="window", window_size=3, logits=False)),
    "decode_soft_argmax": (["maps"], dict(beta=1.0, logits=True, debias=True)),
    "decode_local_soft_argmax": (["maps"], dict(window_size=5, beta=1.0, logits=False, sigma=1.5)),
    "encode_locref": (
        ["coords"],
        dict(heatmap_size=(16, 12), radius=1.5, locref_std=2.0, kind="gaussian", weights=None),
    ),
    "decode_locref": (["maps", "udp_offsets"], dict(locref_std=2.0)),
    "decode_dark": (["maps"], dict(sigma=1.5, iterations=4, kernel_size=None)),
    "decode_udp": (["maps"], dict(image_size=(64, 48), sigma=1.5, iterations=4, kernel_size=None)),
    "decode_simcc": (
        ["x_labels", "y_labels"],
        dict(image_size=(32, 24), split_ratio=2.0, refine="dark", sigma=2.0, iterations=4, kernel_size=None),
    ),
    "decode_pipnet": (["scores", "offsets", "neighbor_offsets"], dict(neighbors=None, merge="mean")),
    "pipnet_neighbors": (["mean_shape"], dict(num_neighbors=3)),
    "wing_loss": (["errors", "target"], dict(omega=10.0, epsilon=2.0, reduction="mean")),
    "adaptive_wing_loss": (["maps", "target"], dict(omega=14.0, theta=0.5, epsilon=1.0, alpha=2.1, reduction="mean")),
    "soft_wing_loss": (["errors", "target"], dict(omega1=2.0, omega2=20.0, epsilon=0.5, reduction="mean")),
    "weighted_loss_map": (["target"], dict(threshold=0.2, foreground_weight=10.0, kernel_size=3)),
    "star_loss": (["maps", "coords"], dict(omega=1.0, distance="smooth_l1", epsilon=1e-5, reduction="mean")),
    "heatmap_moments": (["maps"], dict(normalize=True)),
    "dsnt_regularization": (
        ["probabilities", "coords"],
        dict(sigma=1.5, divergence="js", weights=None, reduction="mean"),
    ),
    "encode_boundaries": (
        ["coords"],
        dict(heatmap_size=(16, 12), boundaries=((0, 1, 2, 3), (3, 4, 5)), sigma=1.0, truncate=3.0, per_chain=False),
    ),
    # a non-string key is a positional argument passed as is
    "coordinate_channels": ([(16, 12)], dict(boundary=None, threshold=0.05, with_r=True, like=None)),
    "metrics.nme": (["coords_image", "coords"], dict(normalizer="bbox", eyes=None)),
    "metrics.pck": (["coords_image", "coords"], dict(threshold=0.5, normalizer="bbox", eyes=None)),
    "metrics.normalizing_distance": (["coords"], dict(normalizer="inter_pupil", eyes=((0, 1), 5))),
    "metrics.oks": (["coords_image", "coords"], dict(areas=INPUTS["areas"], sigmas=COCO_SIGMAS[:6])),
    "metrics.pckh": (
        ["coords_image", "coords"],
        dict(head_boxes=INPUTS["head_boxes"], threshold=0.5, weights=None, excluded=(2, 3)),
    ),
    "metrics.coco_ap": (
        ["coords_image", "coords"],
        dict(areas=INPUTS["areas"], scores=np.array([0.3, 0.7]), sigmas=COCO_SIGMAS[:6]),
    ),
    "metrics.failure_rate": (["nme"], dict(threshold=0.1)),
    "metrics.auc": (["nme"], dict(threshold=0.1, integration="simpson", step=1e-4)),
}
HOSTILE_OPTIONS = [
    None,
    "abc",
    True,
    0,
    -1,
    0.5,
    3,
    1e-300,
    1e300,
    math.nan,
    math.inf,
    -math.inf,
    10**12,
    10**12 + 1,
    (1,),
    (0, 0),
    (1, 1),
    (10**30, 1),
    (2**21, 2**20),
    (2**16, 2),
    {4, 5},
    (3.5, 2.5),
    "none",
    "dark",
    "logits",
]


def test_option_registry_covers_every_public_function_with_options():
    from public_calls import NOT_ARRAY_FUNCTIONS

    from landmark_codecs import metrics

    names = (set(lc.__all__) - NOT_ARRAY_FUNCTIONS) | {
        f"metrics.{n}" for n in metrics.__all__ if callable(getattr(metrics, n))
    }
    with_options = {
        n for n in names if any(p.kind is p.KEYWORD_ONLY for p in inspect.signature(resolve(n)).parameters.values())
    }
    # pipnet_loss's two weights: tests/test_pipnet.py; get_codec's options: tests/test_codecs.py
    assert with_options - {"pipnet_loss", "get_codec"} == set(OPTION_CALLS)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", sorted(OPTION_CALLS))
@given(data=st.data())
def test_hostile_options_give_a_clear_error_or_a_bounded_result(name, data):
    from public_calls import TABLE

    keys, base = OPTION_CALLS[name]
    fn = resolve(name)
    options = {k: (TABLE if k == "neighbors" else v) for k, v in base.items()}
    names = [
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.name not in ("weights", "noise", "rng", "loss_map")
    ]
    option = data.draw(st.sampled_from(names), label="option")
    options[option] = data.draw(st.sampled_from(HOSTILE_OPTIONS), label="value")
    arrays = [_I[k].copy() if isinstance(k, str) else k for k in keys]
    try:
        tracemalloc.start()
        try:
            result = fn(*arrays, **options)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    except (TypeError, ValueError) as err:
        assert _names(str(err), {option}), f"{name}({option}=...): {err}"
        return
    except MemoryError as err:  # an output larger than this machine: NumPy's own clear message
        assert "Unable to allocate" in str(err), err
        return
    for a, k in zip(arrays, keys):
        if isinstance(k, str):
            np.testing.assert_array_equal(a, _I[k], err_msg=f"{name} modified {k}")
    got = [to_numpy(o) for o in outputs(result)]
    size = sum(getattr(a, "nbytes", 0) for a in arrays) + sum(g.nbytes for g in got)
    assert peak <= 64 * size + 2**22, (
        f"{name}({option}={options[option]!r}): peak {peak} bytes for {size} bytes of arrays"
    )


def test_the_naming_rule_needs_the_argument_as_a_word():
    assert _names("heatmaps must have shape (..., K, H, W)", {"heatmaps", "k"})
    assert _names("k must be at most H*W = 4", {"k"}) and not _names("cannot take k of them", {"k"})
    assert _names("neighbors.index values must lie in [0, 6)", {"neighbors"})
    assert not _names("unsupported operand type(s) for /: 'NoneType' and 'int'", {"coords", "heatmap_size", "input"})
    assert not _names("the coordsystem is wrong", {"coords"})


# --- the adapters: conversions from whatever a user holds, validated before they convert ------


def _adapter_calls() -> dict:
    from landmark_codecs import torch as lct
    from landmark_codecs.testing import assert_lossless, assert_unbiased

    dark = lc.get_codec("dark", image_size=(64, 48), heatmap_size=(16, 12), on_outside="ignore")
    encoder = lct.TargetEncoder(dark)
    calls = {
        "TargetEncoder": (["landmarks", "weights"], lambda a: encoder(a["landmarks"], a["weights"])),
        "TargetEncoder.collate": (
            ["sample"],
            lambda a: encoder.collate([{"keypoints": a["sample"]}, {"keypoints": ADAPTER_INPUTS["sample"]}]),
        ),
        "to_numpy": (["landmarks"], lambda a: to_numpy(a["landmarks"])),
        "assert_lossless": (
            ["landmarks"],
            lambda a: assert_lossless(lambda c: c, lambda c: c, a["landmarks"], atol=0.0),
        ),
        "assert_unbiased": (["landmarks"], lambda a: assert_unbiased(lambda c, rng: c, a["landmarks"], n_samples=2)),
        "pipnet mean_shape": (
            ["mean_shape"],
            lambda a: lc.get_codec(
                "pipnet", image_size=(64, 48), heatmap_size=(8, 6), mean_shape=a["mean_shape"], num_neighbors=3
            ),
        ),
    }
    try:
        from landmark_codecs.mmpose import LandmarkCodec, MSRAHeatmap
    except ImportError:  # mmpose is optional: its adapter is fuzzed where it is installed
        return calls
    for unbiased in (False, True):
        msra = MSRAHeatmap(input_size=(64, 48), heatmap_size=(16, 12), sigma=2.0, unbiased=unbiased)
        name = f"MSRAHeatmap(unbiased={unbiased})"
        calls[f"{name}.encode"] = (["instance", "visible"], lambda a, m=msra: m.encode(a["instance"], a["visible"]))
        calls[f"{name}.decode"] = (["maps"], lambda a, m=msra: m.decode(a["maps"]))
        calls[f"{name}.batch_decode"] = (["batch"], lambda a, m=msra: m.batch_decode(a["batch"]))
    codec = LandmarkCodec("dark", input_size=(64, 48), heatmap_size=(16, 12), on_outside="ignore")
    maps = dark.encode(ADAPTER_INPUTS["landmarks"][:1]).outputs[0][0]
    calls["LandmarkCodec.encode"] = (["instance", "visible"], lambda a: codec.encode(a["instance"], a["visible"]))
    calls["LandmarkCodec.decode"] = (["maps"], lambda a: codec.decode(a["maps"]))
    calls["LandmarkCodec.batch_decode"] = (["batch"], lambda a: codec.batch_decode(a["batch"]))
    ADAPTER_INPUTS.setdefault("maps", maps)
    ADAPTER_INPUTS.setdefault("batch", maps[None])
    return calls


ADAPTER_INPUTS = {
    "landmarks": INPUTS["coords_image"][:, :5],
    "weights": INPUTS["weights"][:, :5],
    "mean_shape": INPUTS["mean_shape"],
    "instance": INPUTS["coords_image"][:1, :5],
    "visible": INPUTS["weights"][:1, :5],
    "sample": INPUTS["coords_image"][0, :5],
}
ADAPTER_MUTATIONS = [
    "none",
    "string",
    "complex",
    "object",
    "bool",
    "int",
    "ragged",
    "nested_list",
    "rank0",
    "rank1",
    "poison",
    "tensor",
    "meta",
]
# What a user may pass where: a visibility may be boolean; integers are coordinates in pixels.
ADAPTER_BOOL_OK = {"weights", "visible"}
ADAPTER_OPTIONAL = {"weights", "visible"}


def _adapter_value(value: np.ndarray, mutation: str, data):
    if mutation == "none":
        return None
    if mutation == "string":
        return "abc"
    if mutation in ("complex", "object", "bool", "int"):
        return value.astype({"complex": complex, "object": object, "bool": bool, "int": np.int64}[mutation])
    if mutation == "ragged":
        return [value.reshape(-1).tolist(), [1.0]]
    if mutation == "nested_list":
        return value.tolist()
    if mutation == "rank0":
        return np.asarray(value.reshape(-1)[0])
    if mutation == "rank1":
        return value.reshape(-1)
    if mutation == "poison":
        out = value.copy()
        out.reshape(-1)[data.draw(st.integers(0, out.size - 1), label="where")] = data.draw(
            st.sampled_from(POISONS), label="poison"
        )
        return out
    t = torch.asarray(value.copy())
    return t.to("meta") if mutation == "meta" else t


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@given(data=st.data())
def test_adapters_validate_what_they_convert(data):
    calls = _adapter_calls()
    name = data.draw(st.sampled_from(sorted(calls)), label="adapter")
    keys, call = calls[name]
    key = data.draw(st.sampled_from(keys), label="input")
    mutation = data.draw(st.sampled_from(ADAPTER_MUTATIONS), label="mutation")
    inputs = {k: ADAPTER_INPUTS[k].copy() for k in keys}
    inputs[key] = _adapter_value(inputs[key], mutation, data)
    before = (
        to_numpy(inputs[key]).copy() if isinstance(inputs[key], np.ndarray) and inputs[key].dtype != object else None
    )
    try:
        call(inputs)
    except (TypeError, ValueError) as err:
        names = {
            "x",
            "landmarks",
            "keypoints",
            "keypoints_visible",
            "coords",
            "weights",
            "mean_shape",
            "heatmaps",
            "encoded",
            "samples",
            "all arrays",
        }
        assert _names(str(err), names), f"{name}: {type(err).__name__} names no argument: {err}"
        assert mutation not in ("nested_list", "tensor", "int") or key not in ("landmarks", "instance", "mean_shape"), (
            f"{name}: refused a legal {mutation} {key}: {err}"
        )
        return
    except AssertionError as err:  # the checks' verdict on the identity codec: only for values it cannot pass
        assert name.startswith("assert_") and mutation in ("poison", "rank0", "rank1"), f"{name}: {err}"
        return
    if before is not None:
        np.testing.assert_array_equal(to_numpy(inputs[key]), before, err_msg=f"{name} modified {key}")
    assert mutation not in ("string", "ragged"), f"{name}: accepted {mutation} for {key}"
    if name == "to_numpy":  # a conversion, not a consumer: any dtype is an array
        return
    assert mutation not in ("complex", "object"), f"{name}: accepted {mutation} for {key}"
    assert mutation != "bool" or key in ADAPTER_BOOL_OK, f"{name}: accepted a bool array for {key}"
    assert mutation != "none" or key in ADAPTER_OPTIONAL, f"{name}: accepted None for {key}"


# --- malformed prediction files: a ValueError naming the file, never a traceback ---------------


def _prediction_file(tmp, data) -> pathlib.Path:

    rng = np.random.default_rng(0)
    arrays = {
        "heatmaps": rng.random((2, 68, 8, 8)),
        "landmarks": rng.uniform(0, 31, (2, 68, 2)),
        "image_size": np.array([32, 32]),
        "weights": np.ones((2, 68), dtype=bool),
        "logits": np.array(False),
        "sigma": np.array(1.0),
        "convention": np.array("legacy"),
    }
    key = data.draw(st.sampled_from(sorted(arrays)), label="member")
    how = data.draw(
        st.sampled_from(
            [
                "drop",
                "string",
                "object",
                "complex",
                "nan",
                "rank0",
                "rank1",
                "float",
                "negative",
                "raw",
                "lie",
                "truncate",
                "npy",
            ]
        ),
        label="how",
    )
    value = arrays[key]
    if how == "drop":
        del arrays[key]
    elif how == "string":
        arrays[key] = np.array("abc")
    elif how == "complex":
        arrays[key] = value.astype(complex) if value.dtype.kind != "U" else np.array(1j)
    elif how == "nan":
        arrays[key] = np.full(value.shape, np.nan)
    elif how == "rank0":
        arrays[key] = np.asarray(value.reshape(-1)[0])
    elif how == "rank1":
        arrays[key] = value.reshape(-1)
    elif how == "float":
        arrays[key] = value.astype(float) if value.dtype.kind != "U" else value
    elif how == "negative":
        arrays[key] = -np.abs(value.astype(float)) if value.dtype.kind != "U" else value
    path = pathlib.Path(tmp) / f"p-{key}-{how}.npz"
    if how == "npy":
        np.save(path.with_suffix(".npy"), value)
        return path.with_suffix(".npy").rename(path)
    if how == "object":
        arrays[key] = np.array([{"a": 1}], dtype=object)
        np.savez(path, **arrays)
        return path
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    raw = buffer.getvalue()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(path, "w") as dst:
        for member in src.namelist():
            blob = src.read(member)
            if member == f"{key}.npy" and how == "raw":
                dst.writestr(key, blob[128:])
                continue
            if member == f"{key}.npy" and how == "lie":
                header = io.BytesIO()
                np.lib.format.write_array_header_2_0(
                    header, {"descr": "<f8", "fortran_order": False, "shape": (2**40, 2**10)}
                )
                blob = np.lib.format.magic(2, 0) + header.getvalue()[8:] + blob[128:]
            if member == f"{key}.npy" and how == "truncate":
                blob = blob[: len(blob) // 2]
            dst.writestr(member, blob)
    return path


@given(data=st.data())
def test_malformed_prediction_files_give_a_clear_error(tmp_path_factory, data):
    from landmark_codecs.bench import _predictions as predictions

    path = _prediction_file(tmp_path_factory.mktemp("p"), data)
    try:
        rows = predictions.decode_predictions(path).rows
    except ValueError as err:
        assert "predictions file" in str(err) and path.name in str(err), err
        return
    assert rows and all(r.decoder for r in rows)
