"""One call of every public array function, on shared inputs: the registry the backend,
device, host-round-trip, compile and half-precision suites run over.

``CALLS[name] = (public_name, call)``; ``call(a)`` takes a dict of inputs (converted to the
backend under test) and returns the function's result. ``INPUTS`` holds the NumPy originals.
``test_backends.test_registry_covers_every_public_function`` keeps this list complete.
"""

from __future__ import annotations

import functools

import numpy as np

import landmark_codecs as lc
from landmark_codecs import metrics

SIZE = (16, 12)  # (W, H) of the heatmaps
IMAGE = (64, 48)
GRID = (8, 6)

_rng = np.random.default_rng(0)
_coords = np.concatenate([_rng.uniform(-0.5, 11.5, size=(2, 5, 2)), np.array([[[-0.5, 0.0]], [[15.0, 11.4]]])], axis=1)
_simcc = lc.encode_simcc(_coords * 2, image_size=(32, 24), sigma=2.0)
_mean_shape = _rng.random((6, 2))
_table = lc.pipnet_neighbors(_mean_shape, num_neighbors=3)
_pip = lc.encode_pipnet(_coords / 2, grid_size=GRID, neighbors=_table)

INPUTS: dict[str, np.ndarray] = {
    "coords": _coords,
    "noise": _rng.random(_coords.shape),
    "weights": np.array([[1, 1, 0, 1, 1, 1], [1, 1, 1, 1, 0, 1]], dtype=np.float64),
    "maps": _rng.random((2, 6, 12, 16)),
    "target": _rng.random((2, 6, 12, 16)),
    "x_labels": _simcc.x_labels + 0.01 * _rng.random(_simcc.x_labels.shape),
    "y_labels": _simcc.y_labels + 0.01 * _rng.random(_simcc.y_labels.shape),
    "scores": _pip.scores + 0.1 * _rng.random(_pip.scores.shape),
    "offsets": _pip.offsets + 0.1 * _rng.random(_pip.offsets.shape),
    "neighbor_offsets": _pip.neighbor_offsets + 0.1 * _rng.random(_pip.neighbor_offsets.shape),
    "mean_shape": _mean_shape,
    "matrices": (lambda m: m @ np.swapaxes(m, -1, -2))(_rng.normal(size=(2, 6, 2, 2))),
    "boundary": _rng.random((2, 12, 16)),
    "nme": _rng.random((2, 6)) * 0.2,  # NME fractions of 12 faces
    "thresholds": np.linspace(0.0, 0.2, 5),
}
# The same values in the units other calls take, so that every call passes its inputs untouched
# (tests/test_fuzz.py replaces an input by something hostile: no arithmetic may come first).
INPUTS["coords_cells"] = _coords / 2  # PIPNet grid cells
INPUTS["coords_image"] = _coords * 4  # image pixels of a 4x larger image
INPUTS["areas"] = np.array([2000.0, 3000.0])  # instance areas for OKS, px^2
INPUTS["head_boxes"] = np.array([[[10.0, 5.0], [40.0, 30.0]], [[0.0, 0.0], [8.0, 6.0]]])  # PCKh, image px
INPUTS["coords_simcc"] = _coords * 2  # image pixels for SimCC's (32, 24) image
INPUTS["udp_offsets"] = _rng.normal(size=(2, 6, 2, 12, 16))  # UDP combined x/y offset maps
INPUTS["labels"] = _rng.random((2, 6, 2))  # regression labels (x / W, y / H)
INPUTS["labels_rle"] = _rng.random((2, 6, 4))  # with RLE's (sigma_x, sigma_y)
INPUTS["errors"] = INPUTS["maps"] * 8  # coordinate-scale errors for Wing and Soft Wing
INPUTS["probabilities"] = INPUTS["maps"] / INPUTS["maps"].sum(axis=(-2, -1), keepdims=True)  # maps summing to 1: DSNT
CHAINS = ((0, 1, 2, 3), (3, 4, 5))  # two boundary chains sharing landmark 3
TABLE = _table  # NumPy; the calls that need it on a device build it from a["mean_shape"] or pass it as is


# Codec objects on the same data (image pixels of IMAGE; SimCC's of (32, 24)), built once. The
# registry's copies skip the outside-the-image check, a documented host read (tests/test_codecs.py).
_QUIET = {"on_outside": "ignore"}
CODECS = {
    "argmax": lc.get_codec("argmax", image_size=IMAGE, heatmap_size=SIZE, sigma=1.5, **_QUIET),
    "dark": lc.get_codec("dark", image_size=IMAGE, heatmap_size=SIZE, sigma=1.5, **_QUIET),
    "udp": lc.get_codec("udp", image_size=IMAGE, heatmap_size=SIZE, sigma=1.5, **_QUIET),
    "simcc": lc.get_codec("simcc", image_size=(32, 24), sigma=2.0, **_QUIET),
    "h3r": lc.get_codec("h3r", image_size=IMAGE, heatmap_size=SIZE, expected=True, logits=False, **_QUIET),
    "soft_argmax": lc.get_codec("soft_argmax", image_size=IMAGE, heatmap_size=SIZE, logits=True, **_QUIET),
    "local_soft_argmax": lc.get_codec("local_soft_argmax", image_size=IMAGE, heatmap_size=SIZE, logits=False, **_QUIET),
    "locref": lc.get_codec("locref", image_size=IMAGE, heatmap_size=SIZE, kind="plateau", **_QUIET),
    "pipnet": lc.get_codec("pipnet", image_size=IMAGE, heatmap_size=GRID, neighbors=_table, **_QUIET),
    "udp_combined": lc.get_codec(
        "udp_combined", image_size=IMAGE, heatmap_size=SIZE, radius=2.0, kernel_size=11, **_QUIET
    ),
    "megvii": lc.get_codec("megvii", image_size=IMAGE, heatmap_size=SIZE, kernel_size=5, **_QUIET),
    "regression": lc.get_codec("regression", image_size=IMAGE, **_QUIET),
}


def _pipnet_targets(a):
    return lc.encode_pipnet(a["coords_cells"], grid_size=GRID, neighbors=TABLE, weights=a["weights"])


CALLS = {
    "image_to_heatmap": (
        "image_to_heatmap",
        lambda a: lc.image_to_heatmap(a["coords"], image_size=IMAGE, heatmap_size=SIZE),
    ),
    "image_to_heatmap_legacy": (
        "image_to_heatmap",
        lambda a: lc.image_to_heatmap(a["coords"], image_size=IMAGE, heatmap_size=SIZE, convention="legacy"),
    ),
    "heatmap_to_image_udp": (
        "heatmap_to_image",
        lambda a: lc.heatmap_to_image(a["coords"], image_size=IMAGE, heatmap_size=SIZE, convention="udp"),
    ),
    "flip_horizontal": (
        "flip_horizontal",
        lambda a: lc.flip_horizontal(a["coords"], width=16, flip_index=[5, 4, 3, 2, 1, 0]),
    ),
    "in_heatmap": ("in_heatmap", lambda a: lc.in_heatmap(a["coords"], heatmap_size=SIZE)),
    "representable_coords": ("representable_coords", lambda a: lc.representable_coords(a["coords"], heatmap_size=SIZE)),
    "encode_gaussian": (
        "encode_gaussian",
        lambda a: lc.encode_gaussian(a["coords"], heatmap_size=SIZE, sigma=1.5, weights=a["weights"]),
    ),
    "encode_gaussian_draw": (
        "encode_gaussian",
        lambda a: lc.encode_gaussian(a["coords"], heatmap_size=SIZE, sigma=1.5, weights=a["weights"], outside="draw"),
    ),
    "encode_gaussian_nearest": (
        "encode_gaussian",
        lambda a: lc.encode_gaussian(a["coords"], heatmap_size=SIZE, sigma=1.5, rounding="nearest"),
    ),
    "encode_rr_sample": (
        "encode_randomized_rounding",
        lambda a: lc.encode_randomized_rounding(a["coords"], heatmap_size=SIZE, noise=a["noise"], weights=a["weights"]),
    ),
    "encode_rr_sample_sigma": (
        "encode_randomized_rounding",
        lambda a: lc.encode_randomized_rounding(a["coords"], heatmap_size=SIZE, noise=a["noise"], sigma=1.0),
    ),
    "encode_rr_expected": (
        "encode_randomized_rounding",
        lambda a: lc.encode_randomized_rounding(a["coords"], heatmap_size=SIZE, expected=True, sigma=1.0),
    ),
    "encode_soft_argmax": (
        "encode_soft_argmax",
        lambda a: lc.encode_soft_argmax(a["coords"], heatmap_size=SIZE, sigma=1.0, weights=a["weights"]),
    ),
    "encode_udp": (
        "encode_udp",
        lambda a: lc.encode_udp(
            a["coords_image"], image_size=IMAGE, heatmap_size=SIZE, sigma=1.5, weights=a["weights"]
        ),
    ),
    "encode_simcc": (
        "encode_simcc",
        lambda a: lc.encode_simcc(a["coords_simcc"], image_size=(32, 24), sigma=2.0, weights=a["weights"]),
    ),
    "encode_simcc_normalized": (
        "encode_simcc",
        lambda a: lc.encode_simcc(a["coords_simcc"], image_size=(32, 24), sigma=2.0, normalize=True),
    ),
    "encode_simcc_standard": (
        "encode_simcc",
        lambda a: lc.encode_simcc(
            a["coords_simcc"], image_size=(32, 24), sigma=2.0, smoothing="standard", label_smooth_weight=0.1
        ),
    ),
    "encode_simcc_axis_sigmas": (
        "encode_simcc",
        lambda a: lc.encode_simcc(a["coords_simcc"], image_size=(32, 24), sigma=(2.0, 3.0), weights=a["weights"]),
    ),
    "encode_pipnet": ("encode_pipnet", _pipnet_targets),
    "decode_argmax": ("decode_argmax", lambda a: lc.decode_argmax(a["maps"])),
    "decode_argmax_quarter": ("decode_argmax", lambda a: lc.decode_argmax(a["maps"], refine="quarter")),
    "decode_rr_topk": (
        "decode_randomized_rounding",
        lambda a: lc.decode_randomized_rounding(a["maps"], top_k=9, logits=False),
    ),
    "decode_rr_window_logits": (
        "decode_randomized_rounding",
        lambda a: lc.decode_randomized_rounding(a["maps"], activation="window", window_size=5, logits=True),
    ),
    "decode_soft_argmax": ("decode_soft_argmax", lambda a: lc.decode_soft_argmax(a["maps"], beta=3.0, logits=True)),
    "decode_soft_argmax_prob": ("decode_soft_argmax", lambda a: lc.decode_soft_argmax(a["maps"], logits=False)),
    "decode_soft_argmax_debias": (
        "decode_soft_argmax",
        lambda a: lc.decode_soft_argmax(a["maps"], beta=2.0, logits=True, debias=True),
    ),
    "decode_dark": ("decode_dark", lambda a: lc.decode_dark(a["maps"], sigma=1.5)),
    "decode_udp": ("decode_udp", lambda a: lc.decode_udp(a["maps"], image_size=IMAGE, sigma=1.5)),
    "simcc_visibility": (
        "simcc_visibility",
        lambda a: lc.simcc_visibility(a["x_labels"], a["y_labels"], sigma=2.0),
    ),
    "simcc_visibility_pair": (
        "simcc_visibility",
        lambda a: lc.simcc_visibility(a["x_labels"], a["y_labels"], sigma=(1.5, 2.5), beta=10.0),
    ),
    "encode_udp_combined": (
        "encode_udp_combined",
        lambda a: lc.encode_udp_combined(
            a["coords_image"], image_size=IMAGE, heatmap_size=SIZE, radius=2.0, weights=a["weights"]
        ),
    ),
    "decode_udp_combined": (
        "decode_udp_combined",
        lambda a: lc.decode_udp_combined(a["maps"], a["udp_offsets"], image_size=IMAGE, radius=2.0, kernel_size=11),
    ),
    "decode_udp_combined_unblurred": (
        "decode_udp_combined",
        lambda a: lc.decode_udp_combined(a["maps"], a["udp_offsets"], image_size=IMAGE, radius=2.0, kernel_size=None),
    ),
    "encode_regression": (
        "encode_regression",
        lambda a: lc.encode_regression(a["coords_image"], image_size=IMAGE, weights=a["weights"]),
    ),
    "decode_regression": ("decode_regression", lambda a: lc.decode_regression(a["labels"], image_size=IMAGE)),
    "decode_regression_rle": ("decode_regression", lambda a: lc.decode_regression(a["labels_rle"], image_size=IMAGE)),
    "decode_simcc": (
        "decode_simcc",
        lambda a: lc.decode_simcc(a["x_labels"], a["y_labels"], image_size=(32, 24), refine="none"),
    ),
    "decode_simcc_dark": (
        "decode_simcc",
        lambda a: lc.decode_simcc(a["x_labels"], a["y_labels"], image_size=(32, 24), refine="dark", sigma=2.0),
    ),
    "decode_pipnet": (
        "decode_pipnet",
        lambda a: lc.decode_pipnet(a["scores"], a["offsets"], a["neighbor_offsets"], neighbors=TABLE),
    ),
    "decode_pipnet_original": (
        "decode_pipnet",
        lambda a: lc.decode_pipnet(a["scores"], a["offsets"], a["neighbor_offsets"], neighbors=TABLE, merge="original"),
    ),
    "pipnet_loss": (
        "pipnet_loss",
        lambda a: lc.pipnet_loss(a["scores"], a["offsets"], a["neighbor_offsets"], _pipnet_targets(a)),
    ),
    "pipnet_neighbors": ("pipnet_neighbors", lambda a: lc.pipnet_neighbors(a["mean_shape"], num_neighbors=3)),
    "wing_loss": ("wing_loss", lambda a: lc.wing_loss(a["errors"], a["target"], weights=a["weights"])),
    "adaptive_wing_loss": (
        "adaptive_wing_loss",
        lambda a: lc.adaptive_wing_loss(a["maps"], a["target"], loss_map=lc.weighted_loss_map(a["target"])),
    ),
    "weighted_loss_map": ("weighted_loss_map", lambda a: lc.weighted_loss_map(a["target"])),
    "soft_wing_loss": ("soft_wing_loss", lambda a: lc.soft_wing_loss(a["errors"], a["target"], reduction="none")),
    "star_loss": ("star_loss", lambda a: lc.star_loss(a["maps"], a["coords"], weights=a["weights"])),
    "star_loss_l1_none": ("star_loss", lambda a: lc.star_loss(a["maps"], a["coords"], distance="l1", reduction="none")),
    "dsnt_regularization": (
        "dsnt_regularization",
        lambda a: lc.dsnt_regularization(a["probabilities"], a["coords"], sigma=1.5, weights=a["weights"]),
    ),
    "dsnt_regularization_kl_none": (
        "dsnt_regularization",
        lambda a: lc.dsnt_regularization(a["probabilities"], a["coords"], sigma=1.5, divergence="kl", reduction="none"),
    ),
    "dsnt_regularization_variance": (
        "dsnt_regularization",
        lambda a: lc.dsnt_regularization(
            a["probabilities"], a["coords"], sigma=1.5, divergence="variance", reduction="sum"
        ),
    ),
    "heatmap_moments": ("heatmap_moments", lambda a: lc.heatmap_moments(a["maps"])),
    "eigh_2x2": ("eigh_2x2", lambda a: lc.eigh_2x2(a["matrices"])),
    "encode_boundaries": (
        "encode_boundaries",
        lambda a: lc.encode_boundaries(a["coords"], heatmap_size=SIZE, boundaries=CHAINS, weights=a["weights"]),
    ),
    "encode_boundaries_split": (
        "encode_boundaries",
        lambda a: lc.encode_boundaries(a["coords"], heatmap_size=SIZE, boundaries=CHAINS, sigma=1.5, per_chain=True),
    ),
    "coordinate_channels": (
        "coordinate_channels",
        lambda a: lc.coordinate_channels(SIZE, boundary=a["boundary"], with_r=True),
    ),
    # landmark_codecs.metrics: faces of 6 landmarks, normalized by their box or eyes 0 and 5
    "metrics.nme": (
        "metrics.nme",
        lambda a: metrics.nme(a["coords_image"], a["coords"], normalizer="bbox", weights=a["weights"]),
    ),
    "metrics.nme_eyes": (
        "metrics.nme",
        lambda a: metrics.nme(a["coords_image"], a["coords"], normalizer="inter_pupil", eyes=((0, 1), 5)),
    ),
    "metrics.pck": (
        "metrics.pck",
        lambda a: metrics.pck(a["coords_image"], a["coords"], threshold=0.5, weights=a["weights"]),
    ),
    "metrics.pckh": (
        "metrics.pckh",
        lambda a: metrics.pckh(
            a["coords_image"], a["coords"], head_boxes=a["head_boxes"], weights=a["weights"], excluded=(2, 3)
        ),
    ),
    "metrics.oks": (
        "metrics.oks",
        lambda a: metrics.oks(
            a["coords_image"], a["coords"], areas=a["areas"], sigmas=metrics.COCO_SIGMAS[:6], weights=a["weights"]
        ),
    ),
    "metrics.normalizing_distance": (
        "metrics.normalizing_distance",
        lambda a: metrics.normalizing_distance(a["coords"], normalizer="diagonal"),
    ),
    "metrics.failure_rate": ("metrics.failure_rate", lambda a: metrics.failure_rate(a["nme"])),
    "metrics.auc": ("metrics.auc", lambda a: metrics.auc(a["nme"], threshold=0.15)),
    "metrics.auc_simpson": (
        "metrics.auc",
        lambda a: metrics.auc(a["nme"], threshold=0.1, integration="simpson", step=1e-3),
    ),
    "metrics.ced": ("metrics.ced", lambda a: metrics.ced(a["nme"], a["thresholds"])),
    # codec objects: encode image-pixel keypoints, decode network outputs
    "codec.argmax.encode": ("get_codec", lambda a: CODECS["argmax"].encode(a["coords_image"], weights=a["weights"])),
    "codec.dark.encode": ("get_codec", lambda a: CODECS["dark"].encode(a["coords_image"])),
    "codec.dark.decode": ("get_codec", lambda a: CODECS["dark"].decode(a["maps"])),
    "codec.udp.encode": ("get_codec", lambda a: CODECS["udp"].encode(a["coords_image"], weights=a["weights"])),
    "codec.udp.decode": ("get_codec", lambda a: CODECS["udp"].decode(a["maps"])),
    "codec.simcc.encode": ("get_codec", lambda a: CODECS["simcc"].encode(a["coords_simcc"], weights=a["weights"])),
    "codec.simcc.decode": ("get_codec", lambda a: CODECS["simcc"].decode(a["x_labels"], a["y_labels"])),
    "codec.h3r.encode": ("get_codec", lambda a: CODECS["h3r"].encode(a["coords_image"], weights=a["weights"])),
    "codec.h3r.decode": ("get_codec", lambda a: CODECS["h3r"].decode(a["maps"])),
    "codec.soft_argmax.decode": ("get_codec", lambda a: CODECS["soft_argmax"].decode(a["maps"])),
    "codec.local_soft_argmax.encode": (
        "get_codec",
        lambda a: CODECS["local_soft_argmax"].encode(a["coords_image"], weights=a["weights"]),
    ),
    "codec.local_soft_argmax.decode": ("get_codec", lambda a: CODECS["local_soft_argmax"].decode(a["maps"])),
    "encode_locref": (
        "encode_locref",
        lambda a: lc.encode_locref(a["coords"], heatmap_size=SIZE, radius=1.5, locref_std=2.0, weights=a["weights"]),
    ),
    "encode_locref_plateau": (
        "encode_locref",
        lambda a: lc.encode_locref(a["coords"], heatmap_size=SIZE, radius=2.0, locref_std=1.0, kind="plateau"),
    ),
    "decode_locref": ("decode_locref", lambda a: lc.decode_locref(a["maps"], a["udp_offsets"], locref_std=2.0)),
    "codec.locref.encode": ("get_codec", lambda a: CODECS["locref"].encode(a["coords_image"], weights=a["weights"])),
    "codec.locref.decode": ("get_codec", lambda a: CODECS["locref"].decode(a["maps"], a["udp_offsets"])),
    "decode_local_soft_argmax": (
        "decode_local_soft_argmax",
        lambda a: lc.decode_local_soft_argmax(a["maps"], logits=True, window_size=3, beta=2.0),
    ),
    "decode_local_soft_argmax_exact": (
        "decode_local_soft_argmax",
        lambda a: lc.decode_local_soft_argmax(a["maps"], logits=False, sigma=1.5),
    ),
    "codec.udp_combined.encode": (
        "get_codec",
        lambda a: CODECS["udp_combined"].encode(a["coords_image"], weights=a["weights"]),
    ),
    "codec.udp_combined.decode": ("get_codec", lambda a: CODECS["udp_combined"].decode(a["maps"], a["udp_offsets"])),
    "codec.megvii.encode": ("get_codec", lambda a: CODECS["megvii"].encode(a["coords_image"], weights=a["weights"])),
    "codec.megvii.decode": ("get_codec", lambda a: CODECS["megvii"].decode(a["maps"])),
    "codec.regression.encode": (
        "get_codec",
        lambda a: CODECS["regression"].encode(a["coords_image"], weights=a["weights"]),
    ),
    "codec.regression.decode": ("get_codec", lambda a: CODECS["regression"].decode(a["labels_rle"])),
    "codec.pipnet.encode": ("get_codec", lambda a: CODECS["pipnet"].encode(a["coords_image"], weights=a["weights"])),
    "codec.pipnet.decode": (
        "get_codec",
        lambda a: CODECS["pipnet"].decode(a["scores"], a["offsets"], a["neighbor_offsets"]),
    ),
}

# Helpers that take no arrays, and the result types: nothing to run on a backend.
NOT_ARRAY_FUNCTIONS = {
    "__version__",
    "simcc_bins",
    "SimCCTargets",
    "PIPNetNeighbors",
    "PIPNetTargets",
    "UDPCombinedTargets",
    "RegressionTargets",
    "LocRefTargets",
    "face_boundaries",
    "BoundaryTargets",
    "HeatmapMoments",
    "Eigh2x2",
    "codec_names",
    "codec_options",
    "Codec",
    "EncodedTargets",
    "LandmarksOutsideWarning",
    "HeatmapTargets",
    "DecodedLandmarks",
    "mean_shape",
    "MEAN_SHAPES",
    "pose_layout",
    "POSE_LAYOUTS",
    "PoseLayout",
}
# Built once from a mean shape on the host (documented), never in a training step.
HOST_SIDE = {"pipnet_neighbors"}


def resolve(public: str):
    """The public function a registry name stands for: ``lc.name`` or ``lc.module.name``."""
    return functools.reduce(getattr, public.split("."), lc)


def assert_matches_reference(got_all, reference, dtype, name: str) -> None:
    """A backend's outputs (as NumPy) against NumPy's: the same count and shapes, floats in the
    input's ``dtype`` within 1e-5 (float32) or 1e-12 (float64), the rest equal."""
    assert len(got_all) == len(reference), f"{name}: {len(got_all)} outputs, NumPy gives {len(reference)}"
    for got, want in zip(got_all, reference):
        assert got.shape == want.shape, f"{name}: shape {got.shape}, NumPy gives {want.shape}"
        if want.dtype.kind == "f":
            assert got.dtype == dtype, f"{name} returned {got.dtype} for {np.dtype(dtype)} input"
            tol = 1e-5 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=name)
        else:
            np.testing.assert_array_equal(got, want, err_msg=name)


def outputs(result) -> list:
    """The arrays of a result: a tuple or NamedTuple's items (recursively), or the array itself."""
    if isinstance(result, tuple):
        return [o for item in result for o in outputs(item)]
    return [result]
