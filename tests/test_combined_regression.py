"""The families behind mmpose's other codecs: UDP's combined target, direct regression with RLE's
score, and the Megvii codec. Round trips exact to their bounds, the formulas, OpenCV's blur,
one landmark never changing another, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import convert, numpy_of
from hypothesis import given
from hypothesis import strategies as st

import landmark_codecs as lc
from landmark_codecs import udp


def image_points(rng: np.random.Generator, size: tuple[int, int], n: int, dtype=np.float64) -> np.ndarray:
    """Landmarks over the image's valid range, its corners among them."""
    w, h = size
    c = rng.uniform(-0.5, [w - 0.5, h - 0.5], (n, 2)).astype(dtype)
    c[:3] = [[-0.5, -0.5], [w - 1, h - 1], [0, h - 1]]
    return c


# ---------------------------------------------------------------- UDP combined


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(
    seed=st.integers(0, 2**32 - 1),
    image=st.sampled_from([(256, 256), (192, 256), (64, 48), (17, 9)]),
    heatmap=st.sampled_from([(64, 64), (48, 64), (8, 8), (3, 5)]),
    radius=st.floats(0.3, 12.0),
    kernel=st.sampled_from([None, 1, 3, 11, 23]),
)
def test_udp_combined_round_trip_is_exact(backend, dtype, seed, image, heatmap, radius, kernel):
    """Every pixel's offsets point at the landmark, so the decode is exact wherever the argmax
    lands (an empty disk of radius 0.3 included). Rounding: the offset ``(x - j) / r`` and its
    product by ``r`` carry a few eps of ``max(W_h, H_h)``, scaled to the image by the UDP stride."""
    w, h = heatmap
    if kernel is not None and kernel > 2 * max(w, h) - 1:
        kernel = None
    c = image_points(np.random.default_rng(seed), image, 8, dtype)
    t = lc.encode_udp_combined(convert(c, backend), image_size=image, heatmap_size=heatmap, radius=radius)
    keep = numpy_of(t.weights) == 1
    got = lc.decode_udp_combined(t.heatmaps, t.offsets, image_size=image, radius=radius, kernel_size=kernel)
    stride = max((image[0] - 1) / (w - 1), (image[1] - 1) / (h - 1))
    tol = 16 * np.finfo(dtype).eps * max(w, h) * stride + 8 * np.finfo(dtype).eps * max(image)
    assert keep[1:3].all()  # the far corners (x = W - 1, y = H - 1) are on the map's last pixel centres
    np.testing.assert_allclose(numpy_of(got.coords)[keep], c[keep], atol=tol, rtol=0)
    assert numpy_of(got.coords).dtype == dtype


def test_udp_combined_target_is_the_disk_and_the_offsets():
    c = np.array([[10.3, 200.7], [255.0, 0.0]])
    t = lc.encode_udp_combined(c, image_size=(256, 256), heatmap_size=(64, 64), radius=3.5)
    x, y = lc.image_to_heatmap(c, image_size=(256, 256), heatmap_size=(64, 64), convention="udp").T
    j, i = np.arange(64)[None, None, :], np.arange(64)[None, :, None]
    dx, dy = (x[:, None, None] - j) / 3.5, (y[:, None, None] - i) / 3.5
    np.testing.assert_array_equal(t.heatmaps, (dx * dx + dy * dy <= 1).astype(float))
    np.testing.assert_allclose(t.offsets[:, 0], np.broadcast_to(dx, (2, 64, 64)), rtol=0, atol=1e-15)
    np.testing.assert_allclose(t.offsets[:, 1], np.broadcast_to(dy, (2, 64, 64)), rtol=0, atol=1e-15)


@pytest.mark.parametrize("kernel", [11, 23, 31])
@pytest.mark.parametrize("shape", [(64, 48), (7, 30), (12, 16)])
def test_udp_combined_blur_is_opencvs_gaussian_blur(kernel, shape):
    """OpenCV's GaussianBlur (sigma from the side, BORDER_REFLECT_101) for sides from 11 up, also
    where the kernel is wider than the map (reflected more than once): equal to float32 rounding
    of the sums (OpenCV blurs float32 in float32)."""
    cv2 = pytest.importorskip("cv2", reason="OpenCV (opencv-python-headless) is the reference blur")
    h, w = shape
    maps = np.random.default_rng(0).random((3, h, w)).astype(np.float32)
    got = udp._blur(np, maps.astype(np.float64), kernel)
    want = np.stack([cv2.GaussianBlur(m, (kernel, kernel), 0) for m in maps])
    np.testing.assert_allclose(got, want, rtol=0, atol=kernel * np.finfo(np.float32).eps)


def test_udp_combined_keeps_landmarks_apart(backend):
    """A NaN or infinite map decodes to NaN with score 0, a NaN landmark to all-zero maps and
    weight 0; the others are what they are alone."""
    c = np.array([[10.3, 20.7], [np.nan, 3.0], [40.0, 50.0]])
    t = lc.encode_udp_combined(convert(c, backend), image_size=(64, 64), heatmap_size=(16, 16), radius=2.0)
    assert numpy_of(t.weights).tolist() == [1.0, 0.0, 1.0]
    assert not numpy_of(t.heatmaps)[1].any() and not numpy_of(t.offsets)[1].any()
    maps = numpy_of(t.heatmaps).copy()
    maps[1] = 0.5
    maps[1, 3, 4] = np.nan
    maps[2, 3, 4] = np.inf
    got = lc.decode_udp_combined(convert(maps, backend), t.offsets, image_size=(64, 64), radius=2.0)
    alone = lc.decode_udp_combined(t.heatmaps[:1, ...], t.offsets[:1, ...], image_size=(64, 64), radius=2.0)
    coords, scores = numpy_of(got.coords), numpy_of(got.scores)
    np.testing.assert_array_equal(coords[0], numpy_of(alone.coords)[0])
    assert np.isnan(coords[1:]).all() and scores[1:].tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda t: lc.decode_udp_combined(t.heatmaps, t.offsets[..., 0, :, :], image_size=(64, 64), radius=2.0),
            ValueError,
            r"offsets must have shape \(\.\.\., K, 2, H, W\) = \(1, 2, 16, 16\) for heatmaps of shape \(1, 16, 16\), "
            r"got shape \(1, 16, 16\)",
        ),
        (
            lambda t: lc.decode_udp_combined(t.heatmaps, t.offsets, image_size=(64, 64), radius=2.0, kernel_size=33),
            ValueError,
            r"kernel_size must be at most 2 \* max\(W, H\) - 1 = 31 for 16x16 maps",
        ),
        (
            lambda t: lc.decode_udp_combined(t.heatmaps, t.offsets, image_size=(64, 64), radius=2.0, kernel_size=4),
            ValueError,
            "kernel_size must be odd",
        ),
        (
            lambda t: lc.decode_udp_combined(t.heatmaps, t.offsets, image_size=(64, 64), radius=-1.0),
            ValueError,
            "radius must be positive",
        ),
        (
            lambda t: lc.encode_udp_combined(
                np.zeros((1, 2)), image_size=(64, 64), heatmap_size=(16, 16), radius=np.inf
            ),
            ValueError,
            "radius must be positive and finite, got inf",
        ),
        (
            lambda t: lc.decode_udp_combined(t.heatmaps, t.offsets.astype(np.int64), image_size=(64, 64), radius=2.0),
            TypeError,
            "offsets must have a real floating dtype",
        ),
    ],
)
def test_udp_combined_bad_input(call, error, match):
    t = lc.encode_udp_combined(np.array([[10.0, 20.0]]), image_size=(64, 64), heatmap_size=(16, 16), radius=2.0)
    with pytest.raises(error, match=match):
        call(t)


# ---------------------------------------------------------------- regression


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(seed=st.integers(0, 2**32 - 1), image=st.sampled_from([(256, 192), (192, 256), (17, 9), (2, 2)]))
def test_regression_labels_are_the_division_and_decode_back(backend, dtype, seed, image):
    """``labels = coords / (W, H)`` within one ulp (one division; XLA, JAX's compiler, divides
    through a reciprocal, one more rounding); back within one rounding of each of the two
    operations (2 eps of the coordinate, 1 ulp of the largest)."""
    c = image_points(np.random.default_rng(seed), image, 10, dtype)
    t = lc.encode_regression(convert(c, backend), image_size=image)
    np.testing.assert_allclose(
        numpy_of(t.labels), c / np.array(image, dtype=dtype), rtol=2 * np.finfo(dtype).eps, atol=0
    )
    got = lc.decode_regression(t.labels, image_size=image)
    np.testing.assert_allclose(numpy_of(got.coords), c, rtol=0, atol=2 * np.finfo(dtype).eps * max(image))
    assert numpy_of(got.scores).tolist() == [1.0] * 10 and numpy_of(got.coords).dtype == dtype


def test_regression_rle_score_and_missing_landmarks(backend):
    c = np.array([[[10.0, 20.0], [np.nan, 1.0], [30.0, 5.0]]])
    w = np.array([[1.0, 1.0, 0.0]])
    t = lc.encode_regression(convert(c, backend), image_size=(64, 32), weights=convert(w, backend))
    labels, weights = numpy_of(t.labels), numpy_of(t.weights)
    assert weights.tolist() == [[1.0, 0.0, 0.0]] and labels[0, 1:].tolist() == [[0.0, 0.0], [0.0, 0.0]]
    out = np.concatenate([labels, np.array([[[0.1, 0.3], [0.5, 0.5], [np.nan, 0.0]]])], axis=-1)
    got = lc.decode_regression(convert(out, backend), image_size=(64, 32))
    np.testing.assert_allclose(numpy_of(got.scores)[0, :2], [0.8, 0.5], rtol=0, atol=1e-15)
    assert np.isnan(numpy_of(got.scores)[0, 2]) and numpy_of(got.coords)[0, 0].tolist() == [10.0, 20.0]


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: lc.decode_regression(np.zeros((2, 3)), image_size=(4, 4)),
            ValueError,
            r"labels must have shape \(\.\.\., K, 2\), or \(\.\.\., K, 4\) with RLE's \(sigma_x, sigma_y\), got shape \(2, 3\)",
        ),
        (lambda: lc.decode_regression(np.zeros(2), image_size=(4, 4)), ValueError, r"got shape \(2,\)"),
        (
            lambda: lc.decode_regression(np.zeros((1, 2), dtype=np.int64), image_size=(4, 4)),
            TypeError,
            "labels must have a real floating dtype",
        ),
        (lambda: lc.encode_regression(np.zeros((1, 2)), image_size=(0, 4)), ValueError, "image_size"),
        (
            lambda: lc.get_codec("regression", image_size=(64, 64), heatmap_size=(16, 16)),
            ValueError,
            r"codec 'regression' predicts coordinates, not maps: leave heatmap_size out, got \(16, 16\)",
        ),
    ],
)
def test_regression_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------- Megvii


@pytest.mark.parametrize("convention", ["pixel_center", "legacy"])
@pytest.mark.parametrize("kernel", [5, 11, 23])
def test_megvii_codec_returns_the_centre_of_the_pixel_holding_the_keypoint(convention, kernel):
    """Exactly the centre of the nearest heatmap pixel (the target's quantization): within half
    a stride, and for keypoints uniform over the image the mean error is 0 (within 4 standard
    errors of the uniform's, ``stride / sqrt(12 n)``)."""
    c = lc.get_codec("megvii", image_size=(256, 192), heatmap_size=(64, 48), kernel_size=kernel, convention=convention)
    assert c.sigma == pytest.approx(0.3 * ((kernel - 1) / 2 - 1) + 0.8)
    rng = np.random.default_rng(kernel)
    k = rng.uniform([8, 8], [248, 184], (1, 4000, 2))
    got = c.decode(*c.encode(k).outputs).coords
    np.testing.assert_allclose(got, c.to_image(np.round(c.to_heatmap(k))), rtol=0, atol=1e-9)
    assert np.abs(got - k).max() <= 2.0 + 1e-9
    assert np.abs((got - k).mean(axis=1)).max() < 4 * 4.0 / np.sqrt(12 * 4000)
    with pytest.raises(ValueError, match="kernel_size must be at least 5 for codec 'megvii'"):
        lc.get_codec("megvii", image_size=(256, 192), heatmap_size=(64, 48), kernel_size=3)


def test_rle_score_at_the_float_limit_is_finite():
    """1 - (sx + sy) / 2 overflowed to -inf (with a RuntimeWarning) for sigmas near the float
    maximum; halving first keeps the finite true value."""
    scores = lc.decode_regression(np.array([[0.5, 0.5, 1e308, 1e308]]), image_size=(10, 10)).scores
    assert scores[0] == -1e308


def test_udp_combined_decode_names_the_one_pixel_map_not_the_kernel():
    maps, offsets = np.ones((1, 1, 1)), np.zeros((1, 2, 1, 1))
    for kernel_size in (23, None):
        with pytest.raises(ValueError, match=r"heatmaps must be at least 2x2: UDP's convention .* got 1x1 maps"):
            lc.decode_udp_combined(maps, offsets, image_size=(4, 4), radius=2.0, kernel_size=kernel_size)
