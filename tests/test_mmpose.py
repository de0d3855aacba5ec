"""The mmpose plugin against mmpose itself: built from a config, round trips, and beside
mmpose's own MSRAHeatmap, UDPHeatmap and SimCCLabel on the same keypoints, with every
difference measured and explained (docs/mmpose.md)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

try:
    from mmpose.codecs import MSRAHeatmap, SimCCLabel, UDPHeatmap
    from mmpose.registry import KEYPOINT_CODECS

    import landmark_codecs.mmpose  # registers LandmarkCodec
except Exception as err:  # not installed, or installed but broken: skip with the reason
    pytest.skip(
        f"mmpose is not usable here ({type(err).__name__}: {err}); pip install the mmpose extra (README)",
        allow_module_level=True,
    )

import landmark_codecs as lc

INPUT, HEATMAP = (256, 256), (64, 64)


def build(**config):
    return KEYPOINT_CODECS.build(dict(type="LandmarkCodec", input_size=INPUT, **config))


def face(seed: int = 0, shape: str = "wflw98") -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    points = lc.mean_shape(shape) * 180 + 38
    keypoints = (points + rng.normal(0, 2, points.shape))[None].astype(np.float32)
    return keypoints, np.ones(keypoints.shape[:2], dtype=np.float32)


@pytest.mark.parametrize(
    "config, bound",
    [
        (dict(name="argmax", heatmap_size=HEATMAP, sigma=2.0), 2.0),  # half the stride of 4
        (dict(name="quarter", heatmap_size=HEATMAP, sigma=2.0), 2.0),
        (dict(name="dark", heatmap_size=HEATMAP, sigma=2.0), 1e-4),
        (dict(name="udp", heatmap_size=HEATMAP, sigma=2.0), 1e-4),
        (dict(name="h3r", heatmap_size=HEATMAP, expected=True, logits=False), 1e-4),
        (dict(name="h3r", heatmap_size=HEATMAP, seed=3, logits=False), 4.0),  # one heatmap pixel
        (dict(name="soft_argmax", heatmap_size=HEATMAP, logits=False), 1e-4),
        (dict(name="simcc", sigma=6.0), 1e-4),
        (dict(name="pipnet", heatmap_size=(8, 8), mean_shape="wflw98"), 1e-4),
    ],
)
def test_plugin_builds_from_a_config_and_round_trips(config, bound):
    """float32, as mmpose's pipelines: 1e-4 px is a few float32 ulps of 256."""
    codec = build(**config)
    keypoints, visible = face()
    # A missing landmark: weight 0. (Not for PIPNet, whose decoder lets every landmark's map vote
    # for its neighbours: an empty target map votes garbage, a network's map never is empty.)
    visible[0, 5] = config["name"] == "pipnet"
    encoded = codec.encode(keypoints, visible)
    outputs = [encoded[k] for k in codec.output_keys]
    assert encoded["keypoint_weights"].shape == (1, 98) and encoded["keypoint_weights"][0, 5] == visible[0, 5]
    if config["name"] not in ("simcc", "pipnet"):
        assert outputs[0].shape == (98, 64, 64)  # one instance's (K, H, W), as mmpose's heads take it
        coords, scores = codec.decode(*outputs)
    else:
        coords, scores = codec.decode(*(o[0] for o in outputs))
    assert coords.shape == (1, 98, 2) and scores.shape == (1, 98)
    assert np.abs(coords - keypoints)[0, np.arange(98) != 5].max() <= bound
    # batch_decode: tensors (B, ...) on their device, in one call; mmpose's per-instance lists
    import torch

    batch = [
        torch.as_tensor(
            np.stack([o if o.ndim == outputs[0].ndim and config["name"] not in ("simcc", "pipnet") else o[0]] * 3)
        )
        for o in outputs
    ]
    many, many_scores = codec.batch_decode(*batch)
    assert len(many) == len(many_scores) == 3 and all(np.allclose(c, coords, atol=1e-4) for c in many)
    assert codec.support_batch_decoding and pickle.loads(pickle.dumps(codec)).codec.name == config["name"]


def test_plugin_refuses_what_mmpose_heatmap_codecs_refuse_and_names_the_codec():
    codec = build(name="dark", heatmap_size=HEATMAP)
    keypoints, _ = face()
    with pytest.raises(ValueError, match=r"LandmarkCodec\('dark'\) encodes one instance"):
        codec.encode(np.concatenate([keypoints, keypoints]))
    with pytest.raises(ValueError, match=r"keypoints must have shape \(N, K, 2\)"):
        codec.encode(keypoints[0])
    with pytest.raises(ValueError, match="unknown codec 'msra'"):
        build(name="msra", heatmap_size=HEATMAP)
    assert "LandmarkCodec(get_codec('dark'" in repr(codec)


def test_sampling_plugin_is_reproducible_by_seed_and_fresh_per_call():
    keypoints, visible = face()
    a, b = (build(name="h3r", heatmap_size=HEATMAP, seed=7, logits=False) for _ in range(2))
    first, second = a.encode(keypoints, visible)["heatmaps"], a.encode(keypoints, visible)["heatmaps"]
    assert np.array_equal(first, b.encode(keypoints, visible)["heatmaps"]) and not np.array_equal(first, second)


# --- beside mmpose's own codecs -------------------------------------------------------------------


def test_argmax_codec_is_msra_heatmap_within_its_gaussian_window():
    """Same target where mmpose draws one: its Gaussian is cut to a (6 sigma + 1)^2 window
    (exp(-4.5) = 1.1 % of the peak and below are zeroed); ours is not cut."""
    keypoints, visible = face()
    theirs = MSRAHeatmap(input_size=INPUT, heatmap_size=HEATMAP, sigma=2.0).encode(keypoints, visible)
    ours = build(name="argmax", heatmap_size=HEATMAP, sigma=2.0, convention="legacy").encode(keypoints, visible)
    inside = theirs["heatmaps"] > 0
    np.testing.assert_allclose(
        ours["heatmaps"][inside], theirs["heatmaps"][inside], rtol=0, atol=4 * np.finfo(np.float32).eps
    )
    assert ours["heatmaps"][~inside].max() <= np.exp(-((3 * 2.0) ** 2) / (2 * 2.0**2))
    np.testing.assert_array_equal(ours["keypoint_weights"], theirs["keypoint_weights"])


def test_quarter_codec_is_msra_decode_but_where_mmpose_skips_a_neighbour():
    """mmpose shifts x only for 1 < x < W - 1 and y > 0 (y: 1 < y < H - 1 and x > 0), so the
    maxima in the first two rows or columns keep an unrefined axis there; everywhere else the two
    decoders agree exactly."""
    maps = np.random.default_rng(0).random((4000, 16, 16)).astype(np.float32)
    theirs = MSRAHeatmap(input_size=(64, 64), heatmap_size=(16, 16), sigma=2.0).decode(maps)[0][0]
    ours = KEYPOINT_CODECS.build(
        dict(type="LandmarkCodec", name="quarter", input_size=(64, 64), heatmap_size=(16, 16), convention="legacy")
    ).decode(maps)[0][0]
    peak = lc.decode_argmax(maps)[0]
    differ = np.abs(ours - theirs).max(axis=-1) > 0
    assert differ.any() and np.all((peak[differ] <= 1).any(axis=-1))
    np.testing.assert_array_equal(ours[~differ], theirs[~differ])


def test_dark_codec_decodes_mmpose_dark_target_exactly_and_mmpose_does_not():
    """mmpose's DARK (MSRAHeatmap(unbiased=True)) draws the same sub-pixel target to float32
    rounding; its decoder (one Newton step on a blurred log-map, none near the border) is off by
    up to ~1e-3 px inside and by up to 2 px (half the stride) near the border; ours is exact."""
    keypoints, visible = face()
    keypoints[0, :10, 0] = np.linspace(0.2, 6.0, 10)  # the first 1.5 heatmap pixels
    mm = MSRAHeatmap(input_size=INPUT, heatmap_size=HEATMAP, sigma=2.0, unbiased=True)
    ours = build(name="dark", heatmap_size=HEATMAP, sigma=2.0, convention="legacy")
    theirs = mm.encode(keypoints, visible)["heatmaps"]
    inside = theirs > 0
    np.testing.assert_allclose(
        ours.encode(keypoints, visible)["heatmaps"][inside], theirs[inside], rtol=0, atol=8 * np.finfo(np.float32).eps
    )
    ours_error = np.abs(ours.decode(theirs)[0] - keypoints)
    their_error = np.abs(mm.decode(theirs)[0] - keypoints)
    assert ours_error.max() < 1e-4
    assert 1e-4 < their_error[0, 10:].max() < 1e-2 and their_error[0, :10].max() > 1.0


def test_udp_codec_matches_mmpose_udp_target_and_round_trips_where_mmpose_scales_wrong():
    """UDPHeatmap encodes with the corner-aligned (W_i - 1) / (W_h - 1) and decodes with
    W_i / (W_h - 1): a scale error of 1 / (W_i - 1), x / 255 px at 256 (0.8 px at x = 205)."""
    keypoints, visible = face()
    mm = UDPHeatmap(input_size=INPUT, heatmap_size=HEATMAP, sigma=2.0)
    ours = build(name="udp", heatmap_size=HEATMAP, sigma=2.0)
    theirs = mm.encode(keypoints, visible)["heatmaps"]
    inside = theirs > 0
    np.testing.assert_allclose(
        ours.encode(keypoints, visible)["heatmaps"][inside], theirs[inside], rtol=0, atol=16 * np.finfo(np.float32).eps
    )
    assert np.abs(ours.decode(theirs)[0] - keypoints).max() < 1e-4
    their_error = mm.decode(theirs)[0] - keypoints
    np.testing.assert_allclose(their_error, keypoints / (INPUT[0] - 1), atol=2e-3)


def test_simcc_codec_matches_simcc_label_where_mmpose_keeps_the_sub_bin_position():
    """SimCCLabel rounds each label's centre to a whole bin (np.around(x * ratio)): up to a
    quarter image pixel at ratio 2. With keypoints on whole bins (multiples of 1/ratio) the
    labels agree (convention "legacy": bin = x * ratio); elsewhere ours keep the position."""
    keypoints, visible = face()
    mm = SimCCLabel(input_size=INPUT, sigma=6.0, simcc_split_ratio=2.0, normalize=False)
    ours = build(name="simcc", sigma=6.0, convention="legacy")
    on_bins = np.round(keypoints * 2) / 2
    a, b = mm.encode(on_bins, visible), ours.encode(on_bins, visible)
    for key in ("keypoint_x_labels", "keypoint_y_labels"):
        np.testing.assert_allclose(b[key], a[key], rtol=0, atol=4 * np.finfo(np.float32).eps)
    theirs = mm.encode(keypoints, visible)
    decoded = ours.decode(theirs["keypoint_x_labels"][0], theirs["keypoint_y_labels"][0])[0]
    assert 0.05 < np.abs(decoded - keypoints).max() <= 0.25 + 1e-4  # their rounding, read back exactly
    assert (
        np.abs(
            ours.decode(*(o[0] for o in ours.encode(keypoints, visible).values() if o.ndim == 3))[0] - keypoints
        ).max()
        < 1e-4
    )


def test_the_configs_on_the_mmpose_page_build_and_round_trip():
    """docs/mmpose.md's codec lines (the drop-in, LandmarkCodec's active one and its commented
    alternative) are configs that build, and each decodes its own target back."""
    import pathlib
    import re

    page = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "mmpose.md").read_text()
    blocks = "\n".join(re.findall(r"```python\n(.*?)```", page, re.S))
    configs = re.findall(r"^#? ?codec = (dict\(.*?\))$", blocks.replace("\n#              ", " "), re.M)
    assert sum("LandmarkCodec" in c for c in configs) == 2
    assert sum("landmark_codecs.MSRAHeatmap" in c for c in configs) == 1
    keypoints, visible = face()
    for text in configs:
        if "LandmarkCodec" not in text and "landmark_codecs." not in text:
            continue  # mmpose's own, the "before" line
        codec = KEYPOINT_CODECS.build(eval(text))  # the page's own literal
        points = keypoints * 0.7 if "MSRAHeatmap" in text else keypoints  # a 192x256 crop
        maps = codec.encode(points, visible)["heatmaps"]
        if getattr(codec, "codec", None) is not None and codec.codec.name == "h3r":  # it decodes logits
            maps = np.log(np.clip(maps, 1e-30, None))
        assert np.abs(codec.decode(maps)[0] - points).max() < 1e-3, text


# --- the drop-ins: type="landmark_codecs.<mmpose's name>" ------------------------------------------

DROP_IN = dict(input_size=(192, 256), heatmap_size=(48, 64), sigma=2.0)


def drop_in(name: str, **options):
    return KEYPOINT_CODECS.build(dict(type=f"landmark_codecs.{name}", **{**DROP_IN, **options}))


def hostile_people(seed: int = 0, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints over and well beyond the crop, with mmpose's visibility values and others."""
    rng = np.random.default_rng(seed)
    keypoints = rng.uniform(-40, 300, (1, n, 2)).astype(np.float32)
    visible = rng.choice([0.0, 0.3, 0.5, 0.6, 1.0, 2.0], (1, n)).astype(np.float32)
    return keypoints, visible


def test_msra_drop_in_builds_by_scope_beside_mmpose_own():
    ours, theirs = drop_in("MSRAHeatmap"), KEYPOINT_CODECS.build(dict(type="MSRAHeatmap", **DROP_IN))
    assert type(ours) is landmark_codecs.mmpose.MSRAHeatmap and type(theirs) is MSRAHeatmap
    for attribute in ("input_size", "heatmap_size", "sigma", "unbiased", "blur_kernel_size"):
        assert getattr(ours, attribute) == getattr(theirs, attribute), attribute
    np.testing.assert_array_equal(ours.scale_factor, theirs.scale_factor)
    assert ours.scale_factor.dtype == theirs.scale_factor.dtype
    assert ours.label_mapping_table == theirs.label_mapping_table
    assert ours.field_mapping_table == theirs.field_mapping_table


@pytest.mark.parametrize("unbiased", [False, True])
def test_msra_drop_in_weights_are_mmpose_and_maps_agree_in_its_window(unbiased):
    """Weights bit-equal to mmpose's (visibility kept, 0 when the 3-sigma window misses the map,
    no Gaussian below 0.5); maps equal to float32 rounding inside mmpose's window, where the
    centre is not left of or above the map (there mmpose's int() truncates toward 0: one pixel
    nearer the map, unbiased=False only); below exp(-4.5) of the peak outside its window."""
    keypoints, visible = hostile_people()
    ours = drop_in("MSRAHeatmap", unbiased=unbiased).encode(keypoints, visible)
    theirs = KEYPOINT_CODECS.build(dict(type="MSRAHeatmap", unbiased=unbiased, **DROP_IN)).encode(keypoints, visible)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key].shape == theirs[key].shape and ours[key].dtype == theirs[key].dtype, key
    np.testing.assert_array_equal(ours["keypoint_weights"], theirs["keypoint_weights"])
    window = theirs["heatmaps"] > 0
    centre = keypoints[0] / 4
    rounded_alike = unbiased | (centre >= -0.5).all(axis=-1)
    assert unbiased or (~rounded_alike).sum() > 100  # the case is exercised
    a, b = ours["heatmaps"][rounded_alike], theirs["heatmaps"][rounded_alike]
    np.testing.assert_allclose(
        a[window[rounded_alike]], b[window[rounded_alike]], rtol=0, atol=8 * np.finfo(np.float32).eps
    )
    assert a[~window[rounded_alike]].max() <= np.exp(-4.5) * (1 + 1e-6)
    drawn = (visible[0] >= 0.5) & (theirs["keypoint_weights"][0] > 0)
    assert (ours["heatmaps"].max(axis=(1, 2)) > 0).tolist() == drawn.tolist()


def test_msra_drop_in_decodes_mmpose_dark_target_to_the_keypoint():
    """mmpose's DARK target, decoded by ours: the keypoint to float32 rounding, also in the first
    pixels of the map, where mmpose's own decoder is off by up to half the stride."""
    rng = np.random.default_rng(1)
    keypoints = rng.uniform(0, 190, (1, 17, 2)).astype(np.float32)
    keypoints[0, :6, 0] = np.linspace(0.3, 5.0, 6)
    theirs = KEYPOINT_CODECS.build(dict(type="MSRAHeatmap", unbiased=True, **DROP_IN))
    maps = theirs.encode(keypoints)["heatmaps"]
    ours_error = np.abs(drop_in("MSRAHeatmap", unbiased=True).decode(maps)[0] - keypoints)
    their_error = np.abs(theirs.decode(maps)[0] - keypoints)
    assert ours_error.max() < 1e-3 and their_error[0, :6].max() > 1.0


def test_msra_drop_in_decode_is_mmpose_but_where_mmpose_skips_a_neighbour():
    maps = np.random.default_rng(0).random((3000, 16, 12)).astype(np.float32)
    maps[:5] = -1.0  # no positive maximum: mmpose's marker, pixel (-1, -1) times the stride
    config = dict(input_size=(48, 64), heatmap_size=(12, 16), sigma=2.0)
    ours, ours_scores = drop_in("MSRAHeatmap", **config).decode(maps)
    theirs, their_scores = MSRAHeatmap(**config).decode(maps)
    assert ours.shape == theirs.shape == (1, 3000, 2) and ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours_scores, their_scores)
    np.testing.assert_array_equal(ours[0, :5], theirs[0, :5])
    peak = lc.decode_argmax(maps)[0]
    differ = np.abs(ours - theirs)[0].max(axis=-1) > 0
    assert differ.any() and np.all((peak[differ] <= 1).any(axis=-1) | (peak[differ] >= [10, 14]).any(axis=-1))
    np.testing.assert_array_equal(ours[0, ~differ], theirs[0, ~differ])


def test_msra_drop_in_batch_decode_on_tensors_equals_decode():
    torch = pytest.importorskip("torch")
    codec = drop_in("MSRAHeatmap", unbiased=True)
    # Trained-looking maps (targets plus 5% noise): on pure noise DARK's Newton problem is
    # ill-conditioned (a flat log-map, |H| near 0) and two libraries' float32 roundings move the
    # fixed point by up to 1e-4 heatmap px (measured), which says nothing of the batch path.
    rng = np.random.default_rng(2)
    targets = lc.encode_gaussian(rng.uniform(0, 47, (3, 17, 2)), heatmap_size=(48, 64), sigma=2.0).heatmaps
    maps = (targets + 0.05 * rng.random(targets.shape)).astype(np.float32)
    keypoints, scores = codec.batch_decode(torch.from_numpy(maps))
    assert codec.support_batch_decoding and len(keypoints) == len(scores) == 3
    for i in range(3):
        one, one_scores = codec.decode(maps[i])
        np.testing.assert_allclose(keypoints[i], one, rtol=0, atol=1e-4)
        np.testing.assert_array_equal(scores[i], one_scores)


def test_msra_drop_in_errors_name_the_argument_and_keep_mmpose_types():
    codec = drop_in("MSRAHeatmap")
    with pytest.raises(AssertionError, match="only support single-instance"):
        codec.encode(np.random.rand(2, 17, 2), np.random.rand(2, 17))
    with pytest.raises(ValueError, match="only support single-instance"):  # also a ValueError
        codec.encode(np.random.rand(2, 17, 2))
    with pytest.raises(ValueError, match=r"keypoints_visible must have shape \(N, K\) = \(1, 17\)"):
        codec.encode(np.random.rand(1, 17, 2), np.ones(17))
    with pytest.raises(TypeError, match="keypoints must hold real numbers"):
        codec.encode(np.ones((1, 17, 2), dtype=complex))
    with pytest.raises(ValueError, match=r"encoded must be one instance's heatmaps \(K, H, W\)"):
        codec.decode(np.zeros((1, 17, 64, 48)))
    with pytest.raises(ValueError, match=r"heatmaps must have shape \(\.\.\., K, H, W\) = \(\.\.\., K, 64, 48\)"):
        codec.decode(np.zeros((17, 48, 64)))
    with pytest.raises(TypeError, match="unbiased must be True or False"):
        drop_in("MSRAHeatmap", unbiased="False")


def test_msra_drop_in_nan_keypoint_changes_no_other_and_inputs_stay():
    keypoints, visible = face()
    keypoints = keypoints[:, :, :] * 0.75
    damaged = keypoints.copy()
    damaged[0, 3] = np.nan
    kept = damaged.copy()
    codec = drop_in("MSRAHeatmap", unbiased=True)
    clean, got = codec.encode(keypoints, visible), codec.encode(damaged, visible)
    np.testing.assert_array_equal(damaged, kept)
    assert got["keypoint_weights"][0, 3] == 0 and got["heatmaps"][3].max() == 0
    others = np.arange(keypoints.shape[1]) != 3
    np.testing.assert_array_equal(got["heatmaps"][others], clean["heatmaps"][others])
    np.testing.assert_array_equal(got["keypoint_weights"][0, others], clean["keypoint_weights"][0, others])


def test_udp_drop_in_is_mmpose_udp_heatmap_where_mmpose_is_exact():
    """UDPHeatmap: attributes, weights (bit-equal) and maps (inside mmpose's window, to float32
    rounding) as mmpose's; decoding mmpose's own target returns the keypoint, where mmpose's
    decode is off (its scale error x / (w - 1), and its refinement near the border); the
    no-maximum marker is mmpose's."""
    ours, theirs = drop_in("UDPHeatmap"), KEYPOINT_CODECS.build(dict(type="UDPHeatmap", **DROP_IN))
    assert type(ours) is landmark_codecs.mmpose.UDPHeatmap and type(theirs) is UDPHeatmap
    for attribute in ("input_size", "heatmap_size", "sigma", "heatmap_type", "radius_factor", "blur_kernel_size"):
        assert getattr(ours, attribute) == getattr(theirs, attribute), attribute
    np.testing.assert_array_equal(ours.scale_factor, theirs.scale_factor)
    keypoints, visible = hostile_people(3)
    a, b = ours.encode(keypoints, visible), theirs.encode(keypoints, visible)
    np.testing.assert_array_equal(a["keypoint_weights"], b["keypoint_weights"])
    window = b["heatmaps"] > 0
    np.testing.assert_allclose(a["heatmaps"][window], b["heatmaps"][window], rtol=0, atol=16 * np.finfo(np.float32).eps)
    assert a["heatmaps"][~window].max() <= np.exp(-4.5) * (1 + 1e-6)
    inside = np.random.default_rng(4).uniform(0, [191, 255], (1, 17, 2)).astype(np.float32)
    maps = theirs.encode(inside)["heatmaps"]
    assert np.abs(ours.decode(maps)[0] - inside).max() < 1e-3
    their_error = np.abs(theirs.decode(maps)[0] - inside)
    assert their_error.mean() > 0.3 and their_error.max() > 1.0  # docs/mmpose.md: 0.85 mean, 5 px at the border
    empty = -np.ones((2, 64, 48), dtype=np.float32)
    np.testing.assert_allclose(ours.decode(empty)[0], theirs.decode(empty)[0], rtol=1e-6)


def test_udp_drop_in_refuses_what_mmpose_refuses_with_its_message():
    with pytest.raises(ValueError, match="invalid `heatmap_type`"):
        drop_in("UDPHeatmap", heatmap_type="invalid")
    for kind in ("gaussian", "combined"):
        with pytest.raises(AssertionError, match="only support single-instance"):
            drop_in("UDPHeatmap", heatmap_type=kind).encode(np.random.rand(2, 17, 2))
    with pytest.raises(ValueError, match="radius_factor must be positive"):
        drop_in("UDPHeatmap", heatmap_type="combined", radius_factor=0.0)
    with pytest.raises(ValueError, match=r"combined heatmaps \(3 K, H, W\) = \(3 K, 64, 48\)"):
        drop_in("UDPHeatmap", heatmap_type="combined").decode(np.zeros((17, 64, 48)))


def test_udp_combined_drop_in_is_mmpose_target_and_decodes_the_keypoint():
    """heatmap_type="combined": maps (disk and offsets) equal to mmpose's to float32 rounding of
    the offsets, weights bit-equal (mmpose's visibility values), the scores of the decode to the
    blur's float32 rounding, which returns the keypoint from mmpose's own target where mmpose's scale is off
    by x / (w - 1); batch_decode equals decode; inputs untouched; a NaN keypoint changes no other."""
    config = dict(DROP_IN, heatmap_type="combined")
    del config["sigma"]
    ours = KEYPOINT_CODECS.build(dict(type="landmark_codecs.UDPHeatmap", **config))
    theirs = UDPHeatmap(**config)
    rng = np.random.default_rng(9)
    keypoints = (rng.uniform(0, 1, (1, 500, 2)) * [191, 255]).astype(np.float32)
    visible = rng.choice([0.0, 0.3, 0.5, 1.0, 2.0], (1, 500)).astype(np.float32)
    got, want = ours.encode(keypoints, visible), theirs.encode(keypoints, visible)
    assert got.keys() == want.keys()
    for key in got:
        assert got[key].shape == want[key].shape and got[key].dtype == want[key].dtype, key
    np.testing.assert_array_equal(got["keypoint_weights"], want["keypoint_weights"])
    np.testing.assert_array_equal(got["heatmaps"][::3], want["heatmaps"][::3])  # the disks
    np.testing.assert_allclose(got["heatmaps"], want["heatmaps"], rtol=0, atol=16 * np.finfo(np.float32).eps)
    maps = theirs.encode(keypoints)["heatmaps"]
    before = maps.copy()
    xy, scores = ours.decode(maps)
    np.testing.assert_array_equal(maps, before)
    their_xy, their_scores = theirs.decode(maps)
    # the blurred maxima: the same 23-tap sums as OpenCV's, in another order (two matrix products)
    np.testing.assert_allclose(scores, their_scores, rtol=0, atol=23 * np.finfo(np.float32).eps)
    np.testing.assert_allclose(xy, keypoints, rtol=0, atol=1e-4)
    np.testing.assert_allclose(their_xy / [192 / 191, 256 / 255], keypoints, rtol=0, atol=1e-3)  # mmpose's scale
    assert np.abs(their_xy - keypoints).max() > 0.9
    torch = pytest.importorskip("torch")
    batch_xy, batch_scores = ours.batch_decode(torch.from_numpy(np.stack([maps, maps])))
    assert ours.support_batch_decoding and len(batch_xy) == 2
    # torch's float32 matrix products, not NumPy's: equal to their rounding
    np.testing.assert_allclose(batch_xy[1], xy, rtol=0, atol=1e-4)
    np.testing.assert_allclose(batch_scores[0], scores, rtol=0, atol=23 * np.finfo(np.float32).eps)
    damaged = keypoints[:, :20].copy()
    damaged[0, 4] = np.nan
    clean, hurt = ours.encode(keypoints[:, :20]), ours.encode(damaged)
    assert hurt["keypoint_weights"][0, 4] == 0 and not hurt["heatmaps"][12:15].any()
    others = np.repeat(np.arange(20) != 4, 3)
    np.testing.assert_array_equal(hurt["heatmaps"][others], clean["heatmaps"][others])


SIMCC = dict(input_size=(192, 256))
SIMCC_CONFIGS = [
    dict(sigma=6.0),
    dict(sigma=(4.9, 5.66), simcc_split_ratio=2.0, normalize=False),
    dict(smoothing_type="standard", simcc_split_ratio=3.0, label_smooth_weight=0.1),
    dict(smoothing_type="standard", simcc_split_ratio=3.0),
]


def simcc_pair(**options):
    ours = KEYPOINT_CODECS.build(dict(type="landmark_codecs.SimCCLabel", **SIMCC, **options))
    theirs = KEYPOINT_CODECS.build(dict(type="SimCCLabel", **SIMCC, **options))
    return ours, theirs


def test_simcc_drop_in_builds_by_scope_with_mmpose_attributes():
    for options in SIMCC_CONFIGS:
        ours, theirs = simcc_pair(**options)
        assert type(ours) is landmark_codecs.mmpose.SimCCLabel and type(theirs) is SimCCLabel
        for attribute in (
            "input_size",
            "smoothing_type",
            "simcc_split_ratio",
            "label_smooth_weight",
            "normalize",
            "use_dark",
            "decode_visibility",
            "decode_beta",
        ):
            assert getattr(ours, attribute) == getattr(theirs, attribute), attribute
        np.testing.assert_array_equal(ours.sigma, theirs.sigma)  # SimCCHead(output_heatmaps=True) reads it
        assert ours.label_mapping_table == theirs.label_mapping_table
        assert ours.support_batch_decoding == theirs.support_batch_decoding


@pytest.mark.parametrize("options", SIMCC_CONFIGS)
def test_simcc_drop_in_weights_are_mmpose_and_labels_agree_on_whole_bins(options):
    """Weights bit-equal to mmpose's on keypoints over and beyond the crop with mmpose's
    visibility values; labels equal to float32 rounding where the keypoint lies on a whole bin
    (mmpose's rounding to a bin is then exact), keys, shapes and dtypes alike."""
    keypoints, visible = hostile_people(n=2000)
    ratio = options.get("simcc_split_ratio", 2.0)
    ours, theirs = simcc_pair(**options)
    got, want = ours.encode(keypoints, visible), theirs.encode(keypoints, visible)
    assert got.keys() == want.keys()
    for key in got:
        assert got[key].shape == want[key].shape and got[key].dtype == want[key].dtype, key
    np.testing.assert_array_equal(got["keypoint_weights"], want["keypoint_weights"])
    whole = np.round(keypoints * ratio) / ratio  # on whole bins, far and near the crop alike
    got, want = ours.encode(whole, visible), theirs.encode(whole, visible)
    np.testing.assert_array_equal(got["keypoint_weights"], want["keypoint_weights"])
    for key in ("keypoint_x_labels", "keypoint_y_labels"):
        peak = max(float(want[key].max()), 1e-30)
        np.testing.assert_allclose(got[key], want[key], rtol=0, atol=4 * np.finfo(np.float32).eps * peak)
    assert (want["keypoint_x_labels"].max(axis=-1) > 0).sum() > 500  # drawn labels are compared


def test_simcc_drop_in_gaussian_label_is_centred_on_the_exact_bin():
    """Off whole bins mmpose's label is centred on the rounded bin (up to half a bin off); ours
    on the exact one: its 1-D DARK decode returns the keypoint, and so does ours on mmpose's
    label the bin mmpose centred it on (mmpose's answer minus its bias)."""
    rng = np.random.default_rng(3)
    keypoints = rng.uniform(5, 185, (1, 17, 2)).astype(np.float32)
    ours, theirs = simcc_pair(sigma=6.0, use_dark=True)
    encoded = ours.encode(keypoints)
    decoded, _ = ours.decode(encoded["keypoint_x_labels"], encoded["keypoint_y_labels"])
    np.testing.assert_allclose(decoded, keypoints, rtol=0, atol=2e-3)  # float32 labels
    mm = theirs.encode(keypoints)
    before = {k: v.copy() for k, v in mm.items()}
    centred = np.around(keypoints * 2.0) / 2.0
    ours_on_theirs, _ = ours.decode(mm["keypoint_x_labels"], mm["keypoint_y_labels"])
    for key in mm:  # ours leaves its input alone (mmpose's use_dark decode overwrites it)
        np.testing.assert_array_equal(mm[key], before[key])
    theirs_on_theirs, _ = theirs.decode(mm["keypoint_x_labels"].copy(), mm["keypoint_y_labels"].copy())
    np.testing.assert_allclose(ours_on_theirs, centred, rtol=0, atol=2e-3)
    assert np.abs(theirs_on_theirs - centred).max() > 0.01  # mmpose's refinement is off its own label


@pytest.mark.parametrize("visibility", [False, True])
def test_simcc_drop_in_decode_without_dark_is_mmpose_decode(visibility):
    """The argmax decode, mmpose's marker for a non-positive score, the (N, K, 2) shape for 2-D
    and 3-D labels and the visibility: equal to mmpose's (the visibility in the scores' shape)."""
    rng = np.random.default_rng(4)
    x, y = rng.random((3, 17, 384)), rng.random((3, 17, 512))
    x[0, :3] = -1.0  # no positive score
    ours, theirs = simcc_pair(sigma=(4.9, 5.66), decode_visibility=visibility)
    for labels in ((x, y), (x[1], y[1])):
        got, want = ours.decode(*labels), theirs.decode(*labels)
        np.testing.assert_array_equal(got[0], want[0])
        assert got[0].shape == want[0].shape == ((3, 17, 2) if labels[0].ndim == 3 else (1, 17, 2))
        if visibility:  # mmpose's is (K,) for 2-D labels, which InstanceData refuses beside (1, K, 2)
            np.testing.assert_array_equal(got[1][0], want[1][0])
            assert got[1][1].shape == got[1][0].shape
            np.testing.assert_allclose(got[1][1], want[1][1].reshape(got[1][0].shape), rtol=1e-12, atol=0)
        else:
            np.testing.assert_array_equal(got[1], want[1])


def test_simcc_drop_in_errors_keep_mmpose_types_and_name_the_argument():
    for options, match in (
        (dict(smoothing_type="uniform"), "got invalid `smoothing_type`"),
        (dict(smoothing_type="standard", label_smooth_weight=1.1), "`label_smooth_weight` should be"),
        (dict(label_smooth_weight=0.1), "is only used for `standard` mode."),
        (dict(sigma=(1.0, 2.0, 3.0)), r"sigma must be one number or an \(x, y\) pair"),
        (dict(simcc_split_ratio=1.3), "split_ratio"),
    ):
        with pytest.raises(ValueError, match=match):
            simcc_pair(**options)[0]
    ours = simcc_pair()[0]
    with pytest.raises(TypeError, match="use_dark must be True or False"):
        simcc_pair(use_dark="yes")
    with pytest.raises(ValueError, match=r"keypoints must have shape \(N, K, 2\)"):
        ours.encode(np.zeros((17, 2)))
    with pytest.raises(ValueError, match=r"simcc_x and simcc_y must both be \(K, bins\) or \(N, K, bins\)"):
        ours.decode(np.zeros(384), np.zeros(512))
    with pytest.raises(
        ValueError, match=r"x_labels must have shape \(\.\.\., K, W \* split_ratio\) = \(\.\.\., K, 384\)"
    ):
        ours.decode(np.zeros((17, 383)), np.zeros((17, 512)))


def test_simcc_drop_in_nan_keypoint_changes_no_other_and_inputs_stay():
    keypoints, visible = face()
    keypoints = keypoints * 0.7
    damaged = keypoints.copy()
    damaged[0, 5] = np.nan
    kept = damaged.copy()
    ours = simcc_pair()[0]
    clean, got = ours.encode(keypoints, visible), ours.encode(damaged, visible)
    np.testing.assert_array_equal(damaged, kept)
    assert got["keypoint_weights"][0, 5] == 0 and got["keypoint_x_labels"][0, 5].max() == 0
    others = np.arange(keypoints.shape[1]) != 5
    for key in clean:
        np.testing.assert_array_equal(got[key][0, others], clean[key][0, others])


def test_plugin_simcc_decode_takes_mmpose_shapes():
    """(K, bins) labels -> (1, K, 2); (N, K, bins) -> (N, K, 2), each instance as decoded alone."""
    codec = build(name="simcc", sigma=6.0, refine="dark")
    keypoints = np.random.default_rng(5).uniform(20, 230, (3, 17, 2)).astype(np.float32)
    encoded = codec.encode(keypoints)
    x, y = encoded["keypoint_x_labels"], encoded["keypoint_y_labels"]
    coords, scores = codec.decode(x, y)
    assert coords.shape == (3, 17, 2) and scores.shape == (3, 17)
    np.testing.assert_allclose(coords, keypoints, rtol=0, atol=1e-3)
    for i in range(3):
        one, one_scores = codec.decode(x[i], y[i])
        assert one.shape == (1, 17, 2) and one_scores.shape == (1, 17)
        np.testing.assert_array_equal(one[0], coords[i])


def test_plugin_warns_once_per_codec_object_for_keypoints_outside_the_input():
    """A pose pipeline truncates instances all the time: of 200 samples, 1 in 10 with most
    keypoints outside the crop, one warning per codec object (naming how to silence it), weight 0
    for each such keypoint, and none with on_outside="ignore"."""
    import warnings

    rng = np.random.default_rng(6)
    samples = rng.uniform(10, 240, (200, 1, 17, 2)).astype(np.float32)
    samples[::10, 0, :9] = [-20.0, 100.0]  # truncated: most of the body off the crop (the codec's warning case)
    for options, expected in ((dict(), 1), (dict(on_outside="ignore"), 0)):
        for _ in range(2):  # each codec object warns once
            codec = build(name="dark", heatmap_size=HEATMAP, sigma=2.0, **options)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                weights = [codec.encode(s)["keypoint_weights"] for s in samples]
            outside = [w for w in caught if issubclass(w.category, lc.LandmarksOutsideWarning)]
            assert len(outside) == expected and len(caught) == expected
            if expected:
                assert "once per codec object" in str(outside[0].message) and "on_outside='ignore'" in str(
                    outside[0].message
                )
            assert all((w[0, :9] == 0).all() and (w[0, 9:] == 1).all() for w in weights[::10])
            assert all((w == 1).all() for i, w in enumerate(weights) if i % 10)


def test_regression_drop_ins_are_mmpose_labels_weights_and_decode():
    """RegressionLabel and IntegralRegressionLabel: labels and weights bit-equal to mmpose's on
    keypoints over and beyond the crop (NaN aside: weight 0 in both), decode equal for (N, K, 2)
    labels and RLE's (N, K, 4); the integral maps are the MSRAHeatmap drop-in's, summing to 1."""
    from mmpose.codecs import IntegralRegressionLabel, RegressionLabel

    keypoints, visible = hostile_people(n=2000)
    ours = KEYPOINT_CODECS.build(dict(type="landmark_codecs.RegressionLabel", input_size=(192, 256)))
    theirs = RegressionLabel(input_size=(192, 256))
    got, want = ours.encode(keypoints, visible), theirs.encode(keypoints, visible)
    assert got.keys() == want.keys() and ours.label_mapping_table == theirs.label_mapping_table
    for key in got:
        assert got[key].dtype == want[key].dtype
        np.testing.assert_array_equal(got[key], want[key])
    rng = np.random.default_rng(7)
    for labels in (rng.random((2, 17, 2)), rng.random((2, 17, 4))):
        for a, b in zip(ours.decode(labels), theirs.decode(labels)):
            np.testing.assert_array_equal(a, b)
    back, _ = ours.decode(got["keypoint_labels"])
    np.testing.assert_allclose(back, keypoints, rtol=2 * np.finfo(np.float32).eps, atol=1e-4)
    with pytest.raises(ValueError, match="Keypoint dimension should be 2 or 4"):
        ours.decode(np.zeros((1, 17, 3)))
    damaged = keypoints[:, :50].copy()
    damaged[0, 7] = np.nan
    assert ours.encode(damaged)["keypoint_weights"][0, 7] == 0

    config = dict(input_size=(192, 256), heatmap_size=(48, 64), sigma=2.0, unbiased=True)
    ours = KEYPOINT_CODECS.build(dict(type="landmark_codecs.IntegralRegressionLabel", **config))
    theirs = IntegralRegressionLabel(**config)
    face_points, face_visible = face()
    face_points = face_points * 0.7
    got, want = ours.encode(face_points, face_visible), theirs.encode(face_points, face_visible)
    assert got.keys() == want.keys()
    for key in ("keypoint_labels", "keypoint_weights"):
        np.testing.assert_array_equal(got[key], want[key])
    assert got["heatmaps"].shape == want["heatmaps"].shape and got["heatmaps"].dtype == want["heatmaps"].dtype
    np.testing.assert_allclose(got["heatmaps"].sum(axis=(1, 2)), 1.0, rtol=1e-5)
    maps = drop_in("MSRAHeatmap", unbiased=True).encode(face_points, face_visible)["heatmaps"]
    np.testing.assert_allclose(got["heatmaps"], maps / maps.sum(axis=(1, 2), keepdims=True), rtol=1e-6, atol=0)
    # Inside mmpose's 3-sigma window the unnormalized maps agree (test above), so the normalized
    # ones differ by exactly the share of our map's sum that mmpose's window keeps.
    window = want["heatmaps"] > 0
    theirs_raw = KEYPOINT_CODECS.build(dict(type="MSRAHeatmap", **config)).encode(face_points, face_visible)["heatmaps"]
    kept_share = theirs_raw.sum(axis=(1, 2), keepdims=True) / np.maximum(maps.sum(axis=(1, 2), keepdims=True), 1e-30)
    assert 0.9 < kept_share[face_visible[0] > 0].min() and kept_share.max() <= 1 + 1e-6
    np.testing.assert_allclose(got["heatmaps"][window], (want["heatmaps"] * kept_share)[window], rtol=1e-5, atol=1e-12)


def test_megvii_drop_in_is_mmpose_target_and_decodes_the_cell_centre():
    """MegviiHeatmap: attributes, weights bit-equal (over and beyond the crop, mmpose's
    visibility values), maps equal to mmpose's where its kernel does not reach the border (to
    float32 rounding at peak 255); on its own target the drop-in decodes the centre of the
    keypoint's stride cell everywhere, and on mmpose's where OpenCV's reflection does not reach,
    as mmpose's own decode does (which in the first and last two rows and columns is half a
    stride off or more); scores as mmpose's."""
    from mmpose.codecs import MegviiHeatmap

    config = dict(input_size=(192, 256), heatmap_size=(48, 64), kernel_size=11)
    ours = KEYPOINT_CODECS.build(dict(type="landmark_codecs.MegviiHeatmap", **config))
    theirs = MegviiHeatmap(**config)
    for attribute in ("input_size", "heatmap_size", "kernel_size"):
        assert getattr(ours, attribute) == getattr(theirs, attribute)
    np.testing.assert_array_equal(ours.scale_factor, theirs.scale_factor)
    assert ours.field_mapping_table == theirs.field_mapping_table
    keypoints, visible = hostile_people(n=2000)
    got, want = ours.encode(keypoints, visible), theirs.encode(keypoints, visible)
    assert got.keys() == want.keys() and got["heatmaps"].dtype == want["heatmaps"].dtype
    np.testing.assert_array_equal(got["keypoint_weights"], want["keypoint_weights"])
    cell = np.trunc(keypoints[0] / 4)
    # OpenCV reflects the one-hot about the edge pixel (BORDER_REFLECT_101): within 5 pixels of it
    # the reflection's kernel reaches the map
    clear = ((cell >= 6) & (cell < np.array([48, 64]) - 6)).all(axis=-1) & (visible[0] >= 0.5)
    window = want["heatmaps"] > 0
    assert clear.sum() > 200
    np.testing.assert_allclose(
        got["heatmaps"][clear][window[clear]], want["heatmaps"][clear][window[clear]], rtol=0, atol=255 * 8e-7
    )
    rng = np.random.default_rng(8)
    points = rng.uniform(0, 1, (1, 17, 2)).astype(np.float32) * [191, 255]
    points[0, :4, 0] = [0.5, 3.0, 5.0, 190.0]  # first and last heatmap columns
    ones = np.ones((1, 17), dtype=np.float32)  # mmpose's encode needs the visibility
    centre = (np.trunc(points / 4) + 0.5) * 4
    own_xy, own_scores = ours.decode(ours.encode(points, ones)["heatmaps"])
    np.testing.assert_allclose(own_xy, centre, rtol=0, atol=1e-3)  # everywhere, borders included
    np.testing.assert_allclose(own_scores, 1.5, rtol=1e-6)
    maps = theirs.encode(points, ones)["heatmaps"]
    ours_xy, ours_scores = ours.decode(maps)
    theirs_xy, their_scores = theirs.decode(maps)
    np.testing.assert_allclose(ours_scores, their_scores, rtol=1e-6)
    cells = np.trunc(points[0] / 4)
    reflected = ((cells < 6) | (cells >= np.array([48, 64]) - 6)).any(axis=-1)
    border = ((cells <= 1) | (cells >= np.array([48, 64]) - 1)).any(axis=-1)
    np.testing.assert_allclose(ours_xy[0, ~reflected], centre[0, ~reflected], rtol=0, atol=1e-3)
    np.testing.assert_allclose(theirs_xy[0, ~reflected], centre[0, ~reflected], rtol=0, atol=1e-3)
    assert border.any() and np.abs(theirs_xy[0, border] - centre[0, border]).max() >= 2.0  # half a stride
    with pytest.raises(AssertionError, match="only support single-instance"):
        ours.encode(np.random.rand(2, 17, 2), np.random.rand(2, 17))
    with pytest.raises(ValueError, match=r"kernel_size must be odd"):
        KEYPOINT_CODECS.build(dict(type="landmark_codecs.MegviiHeatmap", **{**config, "kernel_size": 10}))
    with pytest.raises(ValueError, match=r"encoded must be one instance's heatmaps \(K, H, W\) = \(K, 64, 48\)"):
        ours.decode(np.zeros((17, 48, 64)))


class _CompiledOpStandIn:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("a stand-in for an mmcv compiled op (tests/test_mmpose.py::_mmpose_heads)")


def _mmpose_heads():
    """mmpose's HeatmapHead and SimCCHead. Importing mmpose.models imports, for other heads
    only, two things this machine cannot install, each given a stand-in where it is missing:
    mmdet.utils (RTMO's head reads ConfigType and reduce_mean at module level; mmdet refuses
    mmcv 2.2), and mmcv.ops's MultiScaleDeformableAttention (EDPose's transformer names it at
    module level; it is compiled, which mmcv-lite is not). Neither is called by the heads under
    test: the stand-in op raises if anything builds it. Anything else missing skips."""
    import sys
    import types

    try:
        import mmdet.utils  # noqa: F401
    except Exception:
        stub, utils = types.ModuleType("mmdet"), types.ModuleType("mmdet.utils")
        utils.ConfigType, utils.reduce_mean = dict, lambda tensor: tensor
        stub.utils = utils
        sys.modules.setdefault("mmdet", stub)
        sys.modules.setdefault("mmdet.utils", utils)
    try:
        import mmcv.ops  # noqa: F401
    except Exception:
        ops = types.ModuleType("mmcv.ops")
        ops.MultiScaleDeformableAttention = _CompiledOpStandIn
        sys.modules["mmcv.ops"] = ops
    try:
        from mmpose.models.heads import HeatmapHead, SimCCHead
        from mmpose.structures import PoseDataSample
    except Exception as err:
        pytest.skip(f"mmpose's heads are not importable here ({type(err).__name__}: {err})")
    return HeatmapHead, SimCCHead, PoseDataSample


FLIP = [1, 0, 3, 2, 4]  # two symmetric pairs and a keypoint on the axis


def _flip_test_error(head, encode, keypoints, width, test_cfg, PoseDataSample):
    """Mean signed x error (image px) of head.predict on an ideal network: its output is the
    codec's target, of the image and of the flipped image (x -> w - 1 - x, pairs swapped)."""
    torch = pytest.importorskip("torch")
    flipped = keypoints[:, FLIP].copy()
    flipped[..., 0] = width - 1 - flipped[..., 0]
    outputs = [tuple(torch.from_numpy(o)[None] for o in encode(k)) for k in (keypoints, flipped)]
    head.forward = lambda feats: feats if len(feats) > 1 else feats[0]  # the ideal network
    sample = PoseDataSample(metainfo=dict(flip_indices=FLIP))
    feats = outputs if test_cfg.get("flip_test") else outputs[0]
    preds = head.predict(feats, [sample], test_cfg=test_cfg)
    error = preds[0].keypoints - keypoints
    return float(error[..., 0].mean()), float(np.abs(error[..., 1]).max())


@pytest.mark.parametrize(
    "decoder, shift, want",
    [
        # pixel_center and udp flip onto themselves: exact without the one-pixel shift
        (dict(type="LandmarkCodec", name="dark", heatmap_size=(48, 64), sigma=2.0), False, 0.0),
        (dict(type="LandmarkCodec", name="dark", heatmap_size=(48, 64), sigma=2.0), True, 2.0),  # half a stride
        (dict(type="landmark_codecs.UDPHeatmap", heatmap_size=(48, 64)), False, 0.0),
        # legacy (x / stride): no integer shift is exact; the shift leaves (1 / s) / 2 heatmap px
        (dict(type="landmark_codecs.MSRAHeatmap", heatmap_size=(48, 64), sigma=2.0, unbiased=True), True, 0.5),
        (dict(type="landmark_codecs.MSRAHeatmap", heatmap_size=(48, 64), sigma=2.0, unbiased=True), False, -1.5),
        (dict(type="MSRAHeatmap", heatmap_size=(48, 64), sigma=2.0, unbiased=True), True, 0.5),  # mmpose's own
    ],
)
def test_flip_test_through_heatmap_head_on_an_ideal_network(decoder, shift, want):
    """HeatmapHead.predict with flip_test: the x bias each codec and shift_heatmap give, derived
    (docs/mmpose.md): pixel_center and udp are exact without the shift, legacy's best is the
    shift with half of 1 / stride heatmap px left (+0.5 px at stride 4), as mmpose's own."""
    HeatmapHead, _, PoseDataSample = _mmpose_heads()
    decoder = dict(input_size=(192, 256), **decoder)
    head = HeatmapHead(in_channels=5, out_channels=5, decoder=decoder)
    codec = KEYPOINT_CODECS.build(decoder)
    keypoints = np.array([[[70.3, 90.1], [120.6, 91.4], [80.2, 150.7], [110.9, 149.3], [96.4, 120.2]]], np.float32)
    bias, y_error = _flip_test_error(
        head,
        lambda k: (codec.encode(k)["heatmaps"],),
        keypoints,
        192,
        dict(flip_test=True, flip_mode="heatmap", shift_heatmap=shift),
        PoseDataSample,
    )
    assert bias == pytest.approx(want, abs=2e-3) and y_error < 2e-3
    no_flip, _ = _flip_test_error(
        head, lambda k: (codec.encode(k)["heatmaps"],), keypoints, 192, dict(flip_test=False), PoseDataSample
    )
    assert no_flip == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize("convention, want", [("pixel_center", 0.0), ("legacy", 0.25)])
def test_flip_test_through_simcc_head_on_an_ideal_network(convention, want):
    """SimCCHead.predict with flip_test reverses the x labels without a shift: exact under
    pixel_center (the simcc codec's default), a quarter pixel at ratio 2 under legacy (mmpose's
    SimCCLabel and the drop-in: half of (r - 1) / r image px)."""
    _, SimCCHead, PoseDataSample = _mmpose_heads()
    if convention == "legacy":
        decoder = dict(type="landmark_codecs.SimCCLabel", input_size=(192, 256), sigma=6.0, use_dark=True)
    else:
        decoder = dict(type="LandmarkCodec", name="simcc", input_size=(192, 256), sigma=6.0)
    head = SimCCHead(in_channels=5, out_channels=5, input_size=(192, 256), in_featuremap_size=(6, 8), decoder=decoder)
    codec = KEYPOINT_CODECS.build(decoder)
    keypoints = np.array([[[70.3, 90.1], [120.6, 91.4], [80.2, 150.7], [110.9, 149.3], [96.4, 120.2]]], np.float32)

    def encode(k):
        e = codec.encode(k)
        return e["keypoint_x_labels"][0], e["keypoint_y_labels"][0]

    bias, y_error = _flip_test_error(head, encode, keypoints, 192, dict(flip_test=True), PoseDataSample)
    assert bias == pytest.approx(want, abs=2e-3) and y_error < 2e-3


_COCO_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]


def _simcc_flip_worst(decoder: dict, keypoints: np.ndarray) -> tuple[float, float]:
    """Worst |error| (image px) of SimCCHead.predict on an ideal network, with and without the
    flip test, over the instances of ``keypoints`` (N, 17, 2) in a 192x256 input."""
    torch = pytest.importorskip("torch")
    _, SimCCHead, PoseDataSample = _mmpose_heads()
    codec = KEYPOINT_CODECS.build(decoder)
    head = SimCCHead(
        in_channels=17,
        out_channels=17,
        input_size=(192, 256),
        in_featuremap_size=(6, 8),
        decoder=decoder,
        simcc_split_ratio=decoder["simcc_split_ratio"],
    )
    head.forward = lambda feats: feats if len(feats) > 1 else feats[0]  # the ideal network
    worst = [0.0, 0.0]
    for instance in keypoints:
        k = instance[None]
        flipped = k[:, _COCO_FLIP].copy()
        flipped[..., 0] = 191 - flipped[..., 0]
        labels = [codec.encode(kk) for kk in (k, flipped)]
        outputs = [(torch.from_numpy(e["keypoint_x_labels"]), torch.from_numpy(e["keypoint_y_labels"])) for e in labels]
        for i, (feats, flip) in enumerate(((outputs, True), (outputs[0], False))):
            sample = PoseDataSample(metainfo=dict(flip_indices=_COCO_FLIP))
            got = head.predict(feats, [sample], test_cfg=dict(flip_test=flip))[0].keypoints
            worst[i] = max(worst[i], float(np.abs(got - k).max()))
    return worst[0], worst[1]


@pytest.mark.parametrize("use_dark", [False, True])
@pytest.mark.parametrize("ratio", [1.0, 2.0, 3.0])
def test_simcc_drop_in_is_no_worse_than_mmpose_under_flip_test(ratio, use_dark):
    """RTMPose-m's COCO label (sigma (4.9, 5.66), normalize=False) through SimCCHead's flip test on
    an ideal network. Reversing the x labels maps bin x r of the mirrored image to x r + (r - 1),
    so both codecs' averaged labels are centred (r - 1) / (2 r) px right of the keypoint (the
    legacy convention's bias, table in docs/mmpose.md). Without DARK, a sub-bin label put the
    average's maximum up to a bin off (0.49 px at ratio 2, where mmpose's two on-bin peaks tie
    and its argmax takes the first, 0.25 px); the drop-in's label is now mmpose's there. With
    DARK the drop-in keeps its exact sub-bin label and is better than mmpose's at every ratio."""
    keypoints = np.stack(
        [np.random.default_rng(0).uniform(5, 186, (12, 17)), np.random.default_rng(1).uniform(5, 250, (12, 17))], -1
    ).astype(np.float32)
    common = dict(input_size=(192, 256), sigma=(4.9, 5.66), normalize=False, simcc_split_ratio=ratio, use_dark=use_dark)
    ours = _simcc_flip_worst(dict(type="landmark_codecs.SimCCLabel", **common), keypoints)
    theirs = _simcc_flip_worst(dict(type="SimCCLabel", **common), keypoints)
    assert ours[0] <= theirs[0] + 1e-4 and ours[1] <= theirs[1] + 1e-4, (ours, theirs)
    if use_dark:  # the bias alone, (r - 1) / (2 r) px, and exact without the flip
        assert ours[0] == pytest.approx((ratio - 1) / (2 * ratio), abs=2e-3) and ours[1] < 2e-3


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (dict(type="landmark_codecs.MSRAHeatmap", heatmap_size=(48, 64), sigma=2.0), "MSRAHeatmap"),
        (dict(type="landmark_codecs.MegviiHeatmap", heatmap_size=(48, 64), kernel_size=11), "MegviiHeatmap"),
        (dict(type="landmark_codecs.UDPHeatmap", heatmap_size=(48, 64), heatmap_type="combined"), "UDPHeatmap"),
        (dict(type="landmark_codecs.SimCCLabel", sigma=(4.9, 5.66)), "SimCCLabel"),
        (dict(type="landmark_codecs.RegressionLabel"), "RegressionLabel"),
        (
            dict(type="landmark_codecs.IntegralRegressionLabel", heatmap_size=(48, 64), sigma=2.0),
            "IntegralRegressionLabel",
        ),
        (dict(type="LandmarkCodec", name="simcc", sigma=6.0), "SimCCLabel"),
    ],
)
def test_generate_target_and_pack_pose_inputs_carry_each_drop_in_as_mmpose_own(ours, theirs):
    """The train pipeline's GenerateTarget -> PackPoseInputs: the packed data sample holds the
    same fields and labels, shapes and dtypes, with our codec as with its mmpose twin."""
    try:
        from mmpose.datasets.transforms import GenerateTarget, PackPoseInputs
    except Exception as err:
        pytest.skip(f"mmpose's transforms are not importable here ({type(err).__name__}: {err})")
    twin = {k: v for k, v in ours.items() if k not in ("type", "name")}
    if theirs == "SimCCLabel" and "name" in ours:
        twin = dict(sigma=6.0)
    rng = np.random.default_rng(10)

    def packed(encoder):
        results = dict(
            img=np.zeros((256, 192, 3), np.uint8),
            img_shape=(256, 192),
            keypoints=(rng.uniform(20, 170, (1, 17, 2))).astype(np.float32),
            keypoints_visible=np.ones((1, 17), np.float32),
            id=0,
            img_id=0,
        )
        sample = PackPoseInputs()(GenerateTarget(encoder=dict(input_size=(192, 256), **encoder))(results))[
            "data_samples"
        ]
        fields = {k: (tuple(v.shape), v.dtype) for k, v in getattr(sample, "_gt_fields", {}).items()}
        labels = {k: (tuple(v.shape), v.dtype) for k, v in sample.gt_instance_labels.items()}
        return fields, labels

    assert packed(ours) == packed(dict(type=theirs, **twin))


def test_simcc_head_output_heatmaps_reads_the_decoders_sigma():
    """SimCCHead(test_cfg=dict(output_heatmaps=True)) reads decoder.sigma (an (x, y) pair):
    LandmarkCodec(name="simcc") and the SimCCLabel drop-in carry it, as mmpose's SimCCLabel."""
    torch = pytest.importorskip("torch")
    _, SimCCHead, PoseDataSample = _mmpose_heads()
    for decoder in (
        dict(type="LandmarkCodec", name="simcc", input_size=(192, 256), sigma=(4.9, 5.66)),
        dict(type="landmark_codecs.SimCCLabel", input_size=(192, 256), sigma=(4.9, 5.66)),
    ):
        head = SimCCHead(
            in_channels=5, out_channels=5, input_size=(192, 256), in_featuremap_size=(6, 8), decoder=decoder
        )
        np.testing.assert_array_equal(head.decoder.sigma, [4.9, 5.66])
        assert head.decoder.simcc_split_ratio == 2.0
        encoded = KEYPOINT_CODECS.build(decoder).encode(np.full((1, 5, 2), 100.0, np.float32))
        labels = tuple(torch.from_numpy(encoded[k]) for k in ("keypoint_x_labels", "keypoint_y_labels"))
        head.forward = lambda feats, labels=labels: labels  # the ideal network
        preds, heatmaps = head.predict(labels, [PoseDataSample(metainfo={})], test_cfg=dict(output_heatmaps=True))
        np.testing.assert_allclose(preds[0].keypoints, 100.0, atol=1e-3)
        assert tuple(heatmaps[0].heatmaps.shape) == (5, 512, 384)


@pytest.mark.parametrize("flip_test", [False, True])
def test_topdown_pose_estimator_trains_and_tests_with_a_drop_in(flip_test):
    """One train_step and test_step of mmpose's TopdownPoseEstimator (a one-layer backbone, a
    HeatmapHead decoding with the MSRAHeatmap drop-in): finite losses whose gradient moves the
    backbone, and predictions with the keys and shapes mmpose's own codec gives."""
    torch = pytest.importorskip("torch")
    _mmpose_heads()  # the stand-ins mmpose.models needs here
    try:
        import mmpose.models  # noqa: F401  registers the estimator, its preprocessor and losses
        from mmengine.dataset import pseudo_collate
        from mmengine.model import BaseModule
        from mmengine.optim import OptimWrapper
        from mmengine.registry import DefaultScope
        from mmpose.datasets.transforms import GenerateTarget, PackPoseInputs
        from mmpose.registry import MODELS
    except Exception as err:
        pytest.skip(f"mmpose's models are not usable here ({type(err).__name__}: {err})")

    @MODELS.register_module(name="LandmarkCodecsTestBackbone", force=True)
    class Backbone(BaseModule):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 4, stride=4)

        def forward(self, x):
            return (self.conv(x),)

    rng = np.random.default_rng(11)
    meta = ("id", "img_id", "input_size", "input_center", "input_scale", "flip_indices", "ori_shape", "img_shape")

    def run(codec):
        torch.manual_seed(0)
        model = MODELS.build(
            dict(
                type="TopdownPoseEstimator",
                data_preprocessor=dict(type="PoseDataPreprocessor", mean=[128] * 3, std=[64] * 3),
                backbone=dict(type="LandmarkCodecsTestBackbone"),
                head=dict(
                    type="HeatmapHead",
                    in_channels=8,
                    out_channels=17,
                    deconv_out_channels=None,
                    loss=dict(type="KeypointMSELoss", use_target_weight=True),
                    decoder=codec,
                ),
                test_cfg=dict(flip_test=flip_test, flip_mode="heatmap", shift_heatmap=True),
            )
        )
        samples = []
        for i in range(2):
            results = dict(
                img=rng.integers(0, 255, (256, 192, 3)).astype(np.uint8),
                img_shape=(256, 192),
                keypoints=rng.uniform(20, 170, (1, 17, 2)).astype(np.float32),
                keypoints_visible=np.ones((1, 17), np.float32),
                id=i,
                img_id=i,
                input_size=(192, 256),
                input_center=np.array([[96.0, 128.0]]),
                input_scale=np.array([[192.0, 256.0]]),
                flip_indices=list(range(17)),
                ori_shape=(256, 192),
                bbox=np.array([[0.0, 0.0, 192.0, 256.0]], np.float32),
                bbox_score=np.ones(1, np.float32),
            )
            samples.append(PackPoseInputs(meta_keys=meta)(GenerateTarget(encoder=codec)(results)))
        batch = pseudo_collate(samples)
        before = model.backbone.conv.weight.detach().clone()
        losses = model.train_step(batch, OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-4)))
        moved = float((model.backbone.conv.weight - before).abs().max())
        preds = model.test_step(batch)
        return losses, moved, preds

    config = dict(input_size=(192, 256), heatmap_size=(48, 64), sigma=2.0, unbiased=True)
    with DefaultScope.overwrite_default_scope("mmpose"):
        losses, moved, preds = run(dict(type="landmark_codecs.MSRAHeatmap", **config))
        their_losses, _, their_preds = run(dict(type="MSRAHeatmap", **config))
    assert losses.keys() == their_losses.keys() and all(np.isfinite(float(v)) for v in losses.values())
    assert moved > 0
    assert len(preds) == len(their_preds) == 2
    for ours, theirs in zip(preds, their_preds):
        assert ours.pred_instances.keys() == theirs.pred_instances.keys()
        for key in ours.pred_instances.keys():
            a, b = ours.pred_instances[key], theirs.pred_instances[key]
            assert np.shape(a) == np.shape(b) and np.isfinite(np.asarray(a, dtype=float)).all(), key
