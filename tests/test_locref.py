"""DeepLabCut's score + location refinement codec (issue 47): exact round trip on its own
targets, flip equivariance, NaN isolation, DeepLabCut's image convention, and (where DeepLabCut
can be imported) equality with its target generators and predictor."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import landmark_codecs as lc
from landmark_codecs.testing import landmarks


@settings(max_examples=80, deadline=None)
@given(
    data=st.data(),
    size=st.tuples(st.integers(1, 20), st.integers(1, 20)),
    kind=st.sampled_from(["gaussian", "plateau"]),
    radius=st.sampled_from([math.sqrt(2) / 2 + 1e-9, 1.0, 2.125, 5.0]),
    locref_std=st.sampled_from([0.25, 0.91, 7.0]),
)
def test_round_trip_is_exact_inside_the_map(data, size, kind, radius, locref_std):
    """Every keypoint in the valid range decodes back to float rounding: the Gaussian's maximum is
    its nearest cell, a plateau's first cell lies in its disk, and every cell of the disk holds
    the exact offset (the plateau needs radius >= sqrt(2) / 2, so that the disk holds a cell)."""
    coords = data.draw(landmarks(size, batch_shape=(2,)))
    t = lc.encode_locref(coords, heatmap_size=size, radius=radius, locref_std=locref_std, kind=kind)
    got = lc.decode_locref(t.heatmaps, t.locref, locref_std=locref_std).coords
    np.testing.assert_allclose(got, coords, rtol=0, atol=1e-12 * max(1.0, locref_std) * max(size))
    assert (np.asarray(t.weights) == 1).all()


def test_plateau_needs_a_cell_in_its_disk():
    """The condition is tight: below sqrt(2) / 2 a keypoint at a cell's corner has no cell
    within the radius, its plateau is empty and its decode is not the keypoint."""
    coords = np.array([[2.5, 1.5]])
    t = lc.encode_locref(coords, heatmap_size=(6, 4), radius=0.7, locref_std=1.0, kind="plateau")
    assert t.heatmaps.max() == 0
    assert not np.allclose(lc.decode_locref(t.heatmaps, t.locref, locref_std=1.0).coords, coords)


def test_targets_are_what_the_docstring_says():
    coords = np.array([[3.3, 1.6]])
    g = lc.encode_locref(coords, heatmap_size=(8, 5), radius=3.0, locref_std=0.5)
    j, i = np.meshgrid(np.arange(8.0), np.arange(5.0))
    d2 = (j - 3.3) ** 2 + (i - 1.6) ** 2
    np.testing.assert_allclose(g.heatmaps[0], np.exp(-d2 / (2 * 2.0**2)), rtol=1e-14)
    np.testing.assert_allclose(g.locref[0, 0], (3.3 - j) / 0.5, rtol=1e-14)  # everywhere, as DeepLabCut
    np.testing.assert_allclose(g.locref[0, 1], (1.6 - i) / 0.5, rtol=1e-14)
    np.testing.assert_array_equal(g.locref_mask[0], d2 <= 9.0)
    p = lc.encode_locref(coords, heatmap_size=(8, 5), radius=3.0, locref_std=0.5, kind="plateau")
    np.testing.assert_array_equal(p.heatmaps[0], d2 <= 9.0)
    np.testing.assert_allclose(p.locref[0, 0], np.where(d2 <= 9.0, (3.3 - j) / 0.5, 0.0), rtol=1e-14)


@pytest.mark.parametrize("kind", ["gaussian", "plateau"])
def test_flip_equivariance(kind):
    """Mirroring the keypoints mirrors the score maps and the mask and negates the x locref."""
    rng = np.random.default_rng(0)
    coords = rng.uniform(-0.5, [9.5, 5.5], (7, 2))
    flipped = lc.flip_horizontal(coords, width=10)
    a = lc.encode_locref(coords, heatmap_size=(10, 6), radius=2.0, locref_std=1.5, kind=kind)
    b = lc.encode_locref(flipped, heatmap_size=(10, 6), radius=2.0, locref_std=1.5, kind=kind)
    np.testing.assert_allclose(b.heatmaps, a.heatmaps[..., ::-1], atol=1e-15)
    np.testing.assert_array_equal(b.locref_mask, a.locref_mask[..., ::-1])
    np.testing.assert_allclose(b.locref[:, 0], -a.locref[:, 0, :, ::-1], atol=1e-14)
    np.testing.assert_allclose(b.locref[:, 1], a.locref[:, 1, :, ::-1], atol=1e-14)


def test_nan_and_weight_zero_are_contained():
    coords = np.array([[2.2, 1.1], [np.nan, 1.0], [4.0, 2.0]])
    t = lc.encode_locref(coords, heatmap_size=(6, 4), radius=1.5, locref_std=1.0, weights=np.array([1.0, 1.0, 0.0]))
    np.testing.assert_array_equal(t.weights, [1.0, 0.0, 0.0])
    assert not t.heatmaps[1:].any() and not t.locref[1:].any() and not t.locref_mask[1:].any()
    maps, offsets = t.heatmaps.copy(), t.locref.copy()
    clean = lc.decode_locref(maps, offsets, locref_std=1.0)
    maps[1, 0, 0] = np.nan
    offsets[2, 0] = np.nan  # the third keypoint's x locref everywhere
    got = lc.decode_locref(maps, offsets, locref_std=1.0)
    np.testing.assert_array_equal(got.coords[0], clean.coords[0])
    assert np.isnan(got.coords[1:]).all() and (got.scores[1:] == 0).all()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"locref must have shape \(\.\.\., K, 2, H, W\)"):
        lc.decode_locref(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), locref_std=1.0)
    with pytest.raises(ValueError, match="kind must be one of"):
        lc.encode_locref(np.zeros((1, 2)), heatmap_size=(4, 4), radius=1.0, locref_std=1.0, kind="disk")
    with pytest.raises(ValueError, match="locref_std must be"):
        lc.decode_locref(np.zeros((1, 4, 4)), np.zeros((1, 2, 4, 4)), locref_std=0.0)


def test_codec_puts_cells_where_deeplabcut_does():
    """convention="deeplabcut": cell j's centre is image x = j * stride + stride / 2 (stride 8
    here): a keypoint there gets the peak at cell j and zero locref; "pixel_center" puts it at
    j * stride + stride / 2 - 1/2."""
    codec = lc.get_codec("locref", image_size=(64, 48), heatmap_size=(8, 6))
    assert codec.options["convention"] == "deeplabcut"
    (maps, offsets), _, _ = codec.encode(np.array([[3 * 8 + 4.0, 2 * 8 + 4.0]]))
    assert np.unravel_index(maps[0].argmax(), maps[0].shape) == (2, 3) and maps[0, 2, 3] == 1.0
    assert offsets[0, :, 2, 3].tolist() == [0.0, 0.0]
    pixel = lc.get_codec("locref", image_size=(64, 48), heatmap_size=(8, 6), convention="pixel_center")
    (_, offsets), _, _ = pixel.encode(np.array([[3 * 8 + 3.5, 2 * 8 + 3.5]]))
    assert offsets[0, :, 2, 3].tolist() == [0.0, 0.0]


def test_equals_deeplabcut():
    """DeepLabCut's HeatmapGaussianGenerator / HeatmapPlateauGenerator targets and its
    HeatmapPredictor's decode, on the same keypoints (anywhere in its grid's [0, W)), equal ours
    with convention="deeplabcut", radius = pos_dist_thresh / stride, locref_std = its locref_std /
    stride: to the float32 rounding its float32 arrays carry (docs/deeplabcut.md: measured)."""
    torch = pytest.importorskip("torch")
    targets = pytest.importorskip(
        "deeplabcut.pose_estimation_pytorch.models.target_generators.heatmap_targets",
        reason="DeepLabCut is not installed (its comparison is measured in docs/deeplabcut.md)",
    )
    predictors = pytest.importorskip("deeplabcut.pose_estimation_pytorch.models.predictors.single_predictor")
    eps = float(np.finfo(np.float32).eps)
    rng = np.random.default_rng(0)
    stride, (w, h), k, b = 8, (16, 12), 5, 4
    keypoints = rng.uniform(0, [w * stride, h * stride], (b, k, 2))
    labels = {"keypoints": torch.tensor(np.concatenate([keypoints, np.ones((b, k, 1))], axis=-1))}
    outputs = {"heatmap": torch.zeros(b, k, h, w), "locref": torch.zeros(b, 2 * k, h, w)}
    generators = {"gaussian": targets.HeatmapGaussianGenerator, "plateau": targets.HeatmapPlateauGenerator}
    for kind, generator in generators.items():
        theirs = generator(num_heatmaps=k, pos_dist_thresh=17, locref_std=7.2801)(stride, outputs, labels)
        their_maps = theirs["heatmap"]["target"].numpy()
        their_locref = theirs["locref"]["target"].numpy().reshape(b, k, 2, h, w)
        codec = lc.get_codec(
            "locref",
            image_size=(w * stride, h * stride),
            heatmap_size=(w, h),
            radius=17 / stride,
            locref_std=7.2801 / stride,
            kind=kind,
        )
        (maps, offsets), _, encoded = codec.encode(keypoints)
        np.testing.assert_allclose(maps, their_maps, rtol=0, atol=eps)
        np.testing.assert_allclose(offsets, their_locref, rtol=0, atol=2 * eps * np.abs(their_locref).max())
        np.testing.assert_array_equal(np.repeat(encoded.locref_mask, 2, axis=1), theirs["locref"]["weights"].numpy())
        predictor = predictors.HeatmapPredictor(apply_sigmoid=False, locref_std=7.2801)
        poses = predictor(stride, {"heatmap": theirs["heatmap"]["target"], "locref": theirs["locref"]["target"]})
        ours = codec.decode(their_maps.astype(np.float64), their_locref.astype(np.float64)).coords
        np.testing.assert_allclose(ours, poses["poses"][:, 0, :, :2].numpy(), rtol=0, atol=4 * eps * w * stride)
