"""UDP and SimCC: round trips exact to their bounds under every convention, flips, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import convert, numpy_of
from hypothesis import given
from hypothesis import strategies as st

import landmark_codecs as lc
from landmark_codecs.coords import CONVENTIONS


def image_points(
    rng: np.random.Generator, size: tuple[int, int], n: int, dtype=np.float64, ends: bool = True
) -> np.ndarray:
    """Landmarks over the image's valid range; with ``ends``, its ends (the last float below the open one) too."""
    w, h = size
    c = rng.uniform(-0.5, [w - 0.5, h - 0.5], (n, 2)).astype(dtype)
    top = [np.nextafter(dtype(w - 0.5), dtype(0)), np.nextafter(dtype(h - 0.5), dtype(0))]
    c[:4] = [[-0.5, -0.5], top, [0, h - 1], [w - 1, 0]]
    # -0.5 flips to W - 0.5, just outside the half-open range
    return c if ends else c[1:]


# ---------------------------------------------------------------- UDP


@pytest.mark.parametrize("dtype, atol", [(np.float64, 1e-9), (np.float32, 1e-4)])
@given(
    seed=st.integers(0, 2**32 - 1),
    image=st.sampled_from([(256, 256), (192, 256), (64, 48), (17, 9)]),
    heatmap=st.sampled_from([(64, 64), (48, 64), (8, 8), (3, 5)]),
    sigma=st.floats(1.0, 3.0),
)
def test_udp_round_trip_is_exact(backend, dtype, atol, seed, image, heatmap, sigma):
    c = image_points(np.random.default_rng(seed), image, 8, dtype)
    maps, weights = lc.encode_udp(convert(c, backend), image_size=image, heatmap_size=heatmap, sigma=sigma)
    keep = numpy_of(weights) == 1
    if heatmap[0] <= image[0] and heatmap[1] <= image[1]:
        assert keep.all()  # no larger than the image: every image point lands inside the heatmap
    coords, _ = lc.decode_udp(maps, image_size=image, sigma=sigma)
    scale = max((image[0] - 1) / (heatmap[0] - 1), (image[1] - 1) / (heatmap[1] - 1))
    np.testing.assert_allclose(numpy_of(coords)[keep], c[keep], atol=atol * max(scale, 1.0))


def test_udp_is_the_gaussian_target_at_the_corner_aligned_point():
    c = np.array([[0.0, 0.0], [255.0, 191.0], [100.3, 7.9]])
    maps, _ = lc.encode_udp(c, image_size=(256, 192), heatmap_size=(64, 48), sigma=2.0)
    expect, _ = lc.encode_gaussian(c * [63 / 255, 47 / 191], heatmap_size=(64, 48), sigma=2.0)
    np.testing.assert_allclose(maps, expect, atol=1e-15)
    assert maps[0, 0, 0] == 1.0 and maps[1, 47, 63] == 1.0  # first and last pixel centres coincide


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_every_convention_round_trips_through_dark(convention):
    """Encode and decode with the same convention: no scale or half-pixel error."""
    c = image_points(np.random.default_rng(0), (256, 192), 200)
    c = c[
        lc.in_heatmap(
            lc.image_to_heatmap(c, image_size=(256, 192), heatmap_size=(64, 48), convention=convention),
            heatmap_size=(64, 48),
        )
    ]
    h = lc.image_to_heatmap(c, image_size=(256, 192), heatmap_size=(64, 48), convention=convention)
    maps, _ = lc.encode_gaussian(h, heatmap_size=(64, 48), sigma=2.0)
    back = lc.heatmap_to_image(
        lc.decode_dark(maps, sigma=2.0)[0], image_size=(256, 192), heatmap_size=(64, 48), convention=convention
    )
    np.testing.assert_allclose(back, c, atol=1e-8)


def test_mixing_conventions_costs_exactly_their_difference():
    """UDP targets decoded as pixel-centre ones: off by the affine difference, 1.5 px at stride 4."""
    c = np.array([[0.0, 0.0], [128.0, 64.0], [255.0, 191.0]])
    maps, _ = lc.encode_udp(c, image_size=(256, 192), heatmap_size=(64, 48), sigma=2.0)
    coords, _ = lc.decode_dark(maps, sigma=2.0)
    wrong = lc.heatmap_to_image(coords, image_size=(256, 192), heatmap_size=(64, 48), convention="pixel_center")
    want = lc.heatmap_to_image(c * [63 / 255, 47 / 191], image_size=(256, 192), heatmap_size=(64, 48))
    np.testing.assert_allclose(wrong, want, atol=1e-8)
    np.testing.assert_allclose(np.abs(wrong - c).max(), 1.5, atol=1e-8)  # (stride - 1) / 2 at the ends


@pytest.mark.parametrize("convention", ["pixel_center", "udp"])
def test_flipping_the_image_flips_the_maps(convention):
    """Under pixel-centre and UDP conventions, x -> W_i - 1 - x in the image is x -> W_h - 1 - x on the map."""
    c = image_points(np.random.default_rng(1), (256, 192), 50, ends=False)
    h = lc.image_to_heatmap(c, image_size=(256, 192), heatmap_size=(64, 48), convention=convention)
    hf = lc.image_to_heatmap(
        lc.flip_horizontal(c, width=256), image_size=(256, 192), heatmap_size=(64, 48), convention=convention
    )
    np.testing.assert_allclose(hf, lc.flip_horizontal(h, width=64), atol=1e-12)
    maps, _ = lc.encode_gaussian(h, heatmap_size=(64, 48), sigma=2.0)
    flipped, _ = lc.encode_gaussian(hf, heatmap_size=(64, 48), sigma=2.0)
    np.testing.assert_allclose(flipped, maps[..., ::-1], atol=1e-12)


def test_legacy_flip_is_off_by_one_minus_the_stride():
    """The legacy x / stride map is not flip-equivariant: flipped maps decode stride - 1 px to the right."""
    c = np.array([[10.0, 5.0], [200.5, 100.0]])
    h = lc.image_to_heatmap(c, image_size=(256, 256), heatmap_size=(64, 64), convention="legacy")
    maps, _ = lc.encode_gaussian(h, heatmap_size=(64, 64), sigma=2.0)
    coords, _ = lc.decode_dark(np.ascontiguousarray(maps[..., ::-1]), sigma=2.0)
    back = lc.heatmap_to_image(coords, image_size=(256, 256), heatmap_size=(64, 64), convention="legacy")
    np.testing.assert_allclose(back[:, 0] - lc.flip_horizontal(c, width=256)[:, 0], 1 - 256 / 64, atol=1e-8)


def test_udp_bad_input():
    with pytest.raises(ValueError, match='convention="udp" needs an image and heatmap width of at least 2'):
        lc.encode_udp(np.zeros((1, 2)), image_size=(1, 4), heatmap_size=(4, 4), sigma=1.0)
    with pytest.raises(ValueError, match='convention="udp" needs an image and heatmap width of at least 2'):
        lc.decode_udp(np.zeros((1, 4, 1)), image_size=(8, 8), sigma=1.0)
    with pytest.raises(ValueError, match="sigma must be positive"):
        lc.decode_udp(np.zeros((1, 4, 4)), image_size=(8, 8), sigma=0.0)


# ---------------------------------------------------------------- SimCC

RATIOS = [(1.0, (17, 9)), (2.0, (192, 256)), (2.0, (7, 3)), (3.0, (32, 24)), (1.5, (64, 48)), (2.5, (6, 4))]


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("dtype, atol", [(np.float64, 1e-9), (np.float32, 2e-4)])
@given(seed=st.integers(0, 2**32 - 1), case=st.sampled_from(RATIOS), sigma=st.floats(1.0, 8.0))
def test_simcc_dark_round_trip_is_exact(backend, convention, dtype, atol, seed, case, sigma):
    ratio, image = case
    c = image_points(np.random.default_rng(seed), image, 8, dtype)
    x = convert(c, backend)
    xl, yl, weights = lc.encode_simcc(x, image_size=image, split_ratio=ratio, sigma=sigma, convention=convention)
    keep = numpy_of(weights) > 0
    coords, _scores = lc.decode_simcc(
        xl, yl, image_size=image, split_ratio=ratio, convention=convention, refine="dark", sigma=sigma
    )
    assert coords.dtype == x.dtype and lc._xp.device(coords) == lc._xp.device(x)
    # the bound is in bins: one bin is 1 / ratio image px ((n - 1) / (n * ratio - 1) under udp)
    bins = lc.simcc_bins(image, ratio)
    scale = max((n - 1) / (b - 1) if convention == "udp" else 1 / ratio for n, b in zip(image, bins))
    np.testing.assert_allclose(numpy_of(coords)[keep], c[keep], atol=atol * scale)
    if convention == "pixel_center":  # maps the image's valid range onto the bins'
        assert keep.all()


@pytest.mark.parametrize("convention", CONVENTIONS)
@given(seed=st.integers(0, 2**32 - 1), sx=st.floats(1.0, 8.0), sy=st.floats(1.0, 8.0))
def test_simcc_per_axis_sigmas_are_each_axis_own_label_and_decode_exactly(backend, convention, seed, sx, sy):
    """An (x, y) sigma pair: each axis's labels are those of its own scalar sigma, and the 1-D
    DARK decode with the same pair returns the landmark to float64 rounding."""
    image = (32, 24)
    c = image_points(np.random.default_rng(seed), image, 6, np.float64)
    x = convert(c, backend)
    pair = lc.encode_simcc(x, image_size=image, sigma=(sx, sy), convention=convention)
    np.testing.assert_array_equal(
        numpy_of(pair.x_labels),
        numpy_of(lc.encode_simcc(x, image_size=image, sigma=sx, convention=convention).x_labels),
    )
    np.testing.assert_array_equal(
        numpy_of(pair.y_labels),
        numpy_of(lc.encode_simcc(x, image_size=image, sigma=sy, convention=convention).y_labels),
    )
    coords, _ = lc.decode_simcc(pair.x_labels, pair.y_labels, image_size=image, sigma=(sx, sy), convention=convention)
    keep = numpy_of(pair.weights) > 0
    np.testing.assert_allclose(numpy_of(coords)[keep], c[keep], atol=1e-9)


@pytest.mark.parametrize("convention", CONVENTIONS)
@given(seed=st.integers(0, 2**32 - 1), smooth=st.sampled_from([0.0, 0.1, 0.5, 1.0]))
def test_simcc_standard_labels_are_one_hot_at_the_nearest_bin_with_smoothing(backend, convention, seed, smooth):
    """smoothing="standard": 1 - e at round(c) (ties to even), e / (n - 1) elsewhere, a
    distribution; decoded by the argmax to that bin (within half a bin of the landmark)."""
    image, ratio = (24, 16), 3.0
    c = image_points(np.random.default_rng(seed), image, 7, np.float64)
    c[0] = [(10 + 0.5) / ratio, 4.0]  # a tie on x under legacy: bin 10.5 -> 10
    t = lc.encode_simcc(
        convert(c, backend),
        image_size=image,
        sigma=1.0,
        split_ratio=ratio,
        convention=convention,
        smoothing="standard",
        label_smooth_weight=smooth,
    )
    keep = numpy_of(t.weights) > 0
    in_bins = lc.image_to_heatmap(c, image_size=image, heatmap_size=lc.simcc_bins(image, ratio), convention=convention)
    for axis, labels in enumerate((numpy_of(t.x_labels), numpy_of(t.y_labels))):
        n = labels.shape[-1]
        hot = np.around(in_bins[..., axis])
        want = np.where(np.arange(n) == hot[..., None], 1.0 - smooth, smooth / (n - 1))
        np.testing.assert_allclose(labels[keep], want[keep], rtol=0, atol=1e-15)
        np.testing.assert_allclose(labels[keep].sum(axis=-1), 1.0, rtol=1e-12)
        assert (labels[~keep] == 0).all()
    if smooth < 0.5:
        coords, _ = lc.decode_simcc(
            t.x_labels, t.y_labels, image_size=image, split_ratio=ratio, convention=convention, refine="none"
        )
        scale = max(
            (n - 1) / (b - 1) if convention == "udp" else 1 / ratio for n, b in zip(image, lc.simcc_bins(image, ratio))
        )
        assert np.abs(numpy_of(coords)[keep] - c[keep]).max() <= 0.5 * scale + 1e-9
    if convention == "legacy" and smooth < 0.5:
        assert np.argmax(numpy_of(t.x_labels)[0]) == 10


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_simcc_argmax_is_within_half_a_bin(convention):
    ratio, image = 2.0, (64, 48)
    c = image_points(np.random.default_rng(5), image, 500)
    xl, yl, w = lc.encode_simcc(c, image_size=image, split_ratio=ratio, sigma=4.0, convention=convention)
    coords, _ = lc.decode_simcc(xl, yl, image_size=image, split_ratio=ratio, convention=convention, refine="none")
    keep = w > 0
    scale = {"pixel_center": 1 / ratio, "legacy": 1 / ratio, "udp": (image[0] - 1) / (image[0] * ratio - 1)}[convention]
    err = np.abs(coords - c)[keep]
    assert err.max() <= 0.5 * scale + 1e-9 and err.max() > 0.4 * scale


def test_simcc_labels_are_the_formula():
    """mmpose's SimCC (x * ratio against bin indices) is the "legacy" convention."""
    c = np.array([[10.3, 20.7], [0.0, 255.0]])
    xl, yl, _w = lc.encode_simcc(c, image_size=(192, 256), split_ratio=2.0, sigma=6.0, convention="legacy")
    b = np.arange(384)
    np.testing.assert_allclose(xl, np.exp(-((b - 2 * c[:, :1]) ** 2) / 72.0), atol=1e-15)
    xl_n, yl_n, _ = lc.encode_simcc(
        c, image_size=(192, 256), split_ratio=2.0, sigma=6.0, convention="legacy", normalize=True
    )
    np.testing.assert_allclose(xl_n.sum(-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(yl_n * yl.sum(-1, keepdims=True), yl, atol=1e-15)
    xc, _, _ = lc.encode_simcc(c, image_size=(192, 256), split_ratio=2.0, sigma=6.0)
    np.testing.assert_allclose(xc, np.exp(-((b - (2 * c[:, :1] + 0.5)) ** 2) / 72.0), atol=1e-15)


def test_simcc_scores_are_the_smaller_axis_maximum_and_invisible_landmarks_are_zero():
    c = np.array([[3.0, 4.0], [5.0, 1.0], [np.nan, 1.0], [3.0, 99.0]])
    xl, yl, w = lc.encode_simcc(c, image_size=(8, 8), sigma=1.0, weights=np.array([1, 0, 1, 1]))
    np.testing.assert_array_equal(w, [1, 0, 0, 0])
    assert np.all(xl[1:] == 0) and np.all(yl[1:] == 0)
    xl = xl.copy()
    xl[0] *= 0.5
    _, scores = lc.decode_simcc(xl, yl, image_size=(8, 8), refine="none")
    assert scores[0] == min(xl[0].max(), yl[0].max()) == xl[0].max()


@pytest.mark.parametrize("convention", ["pixel_center", "udp"])
def test_simcc_flip(convention):
    c = image_points(np.random.default_rng(2), (32, 24), 20, ends=False)
    xl, yl, w = lc.encode_simcc(c, image_size=(32, 24), sigma=2.0, convention=convention)
    fx, fy, _ = lc.encode_simcc(lc.flip_horizontal(c, width=32), image_size=(32, 24), sigma=2.0, convention=convention)
    np.testing.assert_allclose(fx, xl[..., ::-1], atol=1e-12)
    np.testing.assert_allclose(fy, yl, atol=1e-12)
    coords, _ = lc.decode_simcc(
        np.ascontiguousarray(xl[..., ::-1]), yl, image_size=(32, 24), convention=convention, refine="dark", sigma=2.0
    )
    keep = w > 0  # udp at ratio 2 maps the image's outermost half bin off the bins
    np.testing.assert_allclose(coords[keep], lc.flip_horizontal(c, width=32)[keep], atol=1e-9)


def test_simcc_nan_label_gives_nan_for_that_landmark_only(backend):
    c = np.array([[[3.2, 4.1], [5.0, 1.5]], [[1.0, 2.0], [6.5, 6.5]]])
    xl, yl, _ = lc.encode_simcc(c, image_size=(8, 8), sigma=1.5)
    bad = yl.copy()
    bad[1, 0, 3] = np.nan
    for refine in ("none", "dark"):
        ref_c, ref_s = (
            numpy_of(a)
            for a in lc.decode_simcc(
                convert(xl, backend), convert(yl, backend), image_size=(8, 8), refine=refine, sigma=1.5
            )
        )
        got_c, got_s = (
            numpy_of(a)
            for a in lc.decode_simcc(
                convert(xl, backend), convert(bad, backend), image_size=(8, 8), refine=refine, sigma=1.5
            )
        )
        assert np.all(np.isnan(got_c[1, 0])) and got_s[1, 0] == 0
        keep = np.ones((2, 2), bool)
        keep[1, 0] = False
        np.testing.assert_array_equal(got_c[keep], ref_c[keep])
        np.testing.assert_array_equal(got_s[keep], ref_s[keep])


def test_simcc_leaves_inputs_alone_and_backends_agree(backend):
    c = image_points(np.random.default_rng(3), (16, 12), 6)
    x = convert(c, backend)
    xl, yl, w = lc.encode_simcc(x, image_size=(16, 12), sigma=2.0)
    ref = lc.encode_simcc(c, image_size=(16, 12), sigma=2.0)
    for got, want in zip((xl, yl, w), ref):
        np.testing.assert_allclose(numpy_of(got), want, atol=1e-12)
    noisy_x = numpy_of(xl) + 0.01 * np.random.default_rng(0).random(xl.shape)
    before = noisy_x.copy()
    got, _ = lc.decode_simcc(convert(noisy_x, backend), yl, image_size=(16, 12), refine="dark", sigma=2.0)
    want, _ = lc.decode_simcc(noisy_x, ref.y_labels, image_size=(16, 12), refine="dark", sigma=2.0)
    np.testing.assert_allclose(numpy_of(got), want, atol=1e-9)
    np.testing.assert_array_equal(noisy_x, before)
    np.testing.assert_array_equal(numpy_of(x), c)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"split_ratio": 0.0}, ValueError, "split_ratio must be positive"),
        ({"split_ratio": -2.0}, ValueError, "split_ratio must be positive"),
        ({"split_ratio": 1.3}, ValueError, "split_ratio \\* image size must be a whole number of bins"),
        ({"sigma": 0.0}, ValueError, "sigma must be positive"),
        ({"convention": "corner"}, ValueError, "convention must be one of"),
        ({"sigma": (1.0, 2.0, 3.0)}, ValueError, r"sigma must be one number or an \(x, y\) pair, got 3 values"),
        ({"sigma": (1.0, 0.0)}, ValueError, r"sigma\[1\] must be positive"),
        ({"sigma": (1.0, "2")}, TypeError, r"sigma\[1\]"),
        ({"smoothing": "uniform"}, ValueError, "smoothing must be one of"),
        ({"smoothing": "standard", "label_smooth_weight": 1.5}, ValueError, r"label_smooth_weight must be in \[0, 1\]"),
        ({"label_smooth_weight": 0.1}, ValueError, 'label_smooth_weight is only used with smoothing="standard"'),
        (
            {"smoothing": "standard", "label_smooth_weight": float("nan")},
            ValueError,
            "label_smooth_weight must be finite",
        ),
    ],
)
def test_simcc_encode_bad_input(kwargs, error, match):
    args = {"image_size": (8, 8), "sigma": 1.0, **kwargs}
    with pytest.raises(error, match=match):
        lc.encode_simcc(np.zeros((1, 2)), **args)


def test_simcc_decode_bad_input():
    xl, yl = np.zeros((2, 16)), np.zeros((2, 12))
    with pytest.raises(ValueError, match=r"x_labels must have shape \(\.\.\., K, 16\)"):
        lc.decode_simcc(np.zeros((2, 15)), yl, image_size=(8, 6), sigma=1.0)
    with pytest.raises(ValueError, match=r"y_labels must have shape \(\.\.\., K, 12\)"):
        lc.decode_simcc(xl, np.zeros((2, 16)), image_size=(8, 6), sigma=1.0)
    with pytest.raises(ValueError, match="share their leading shape"):
        lc.decode_simcc(xl, np.zeros((3, 12)), image_size=(8, 6), sigma=1.0)
    with pytest.raises(ValueError, match=r'refine="dark" \(the default\) needs sigma.*refine="none"'):
        lc.decode_simcc(xl, yl, image_size=(8, 6))
    with pytest.raises(ValueError, match="refine must be one of"):
        lc.decode_simcc(xl, yl, image_size=(8, 6), refine="quarter", sigma=1.0)
    with pytest.raises(ValueError, match="sigma must be positive"):
        lc.decode_simcc(xl, yl, image_size=(8, 6), refine="dark", sigma=-1.0)
    with pytest.raises(ValueError, match="split_ratio must be positive"):
        lc.decode_simcc(xl, yl, image_size=(8, 6), split_ratio=0.0, sigma=1.0)
    with pytest.raises(TypeError, match="x_labels must have a real floating dtype"):
        lc.decode_simcc(np.zeros((2, 16), dtype=np.int32), yl, image_size=(8, 6), sigma=1.0)


def test_simcc_flat_labels_keep_the_argmax_bin():
    """No peak, nothing to refine: a flat label decodes to its first bin, as in 2-D."""
    flat, peak = np.ones((1, 16)), lc.encode_simcc(np.array([[3.3, 2.0]]), image_size=(8, 8), sigma=1.5).y_labels
    coords, _ = lc.decode_simcc(flat, peak, image_size=(8, 8), refine="dark", sigma=1.5)
    np.testing.assert_allclose(
        coords[0],
        [lc.heatmap_to_image(np.zeros((1, 2)), image_size=(8, 8), heatmap_size=(16, 16))[0, 0], 2.0],
        atol=1e-9,
    )


# ---------------------------------------------------------------- SimCC visibility (RTMPose)


def _softmax_peak(labels: np.ndarray, scale: float) -> np.ndarray:
    """The literal definition: softmax(labels * scale) over the bins, its largest value."""
    z = labels.astype(np.float64) * scale
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e.max(axis=-1) / e.sum(axis=-1)


@given(
    seed=st.integers(0, 2**32 - 1),
    sigma=st.sampled_from([2.0, (4.9, 5.66), (1.0, 3.0)]),
    beta=st.sampled_from([150.0, 1.0, 10.0]),
)
def test_simcc_visibility_is_the_smaller_axis_softmax_peak(backend, seed, sigma, beta):
    """Per axis the peak of ``softmax(labels * beta * sigma_axis)``, the smaller of the two, to
    float64 rounding: the exponents ``z`` (up to ``beta sigma max|label|``) are rounded
    differently (``(l - max) s`` here, ``l s - max s`` there), which moves ``exp(z)`` by
    ``eps |z|`` relative, plus the sum over the bins; in (0, 1]."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(0, [31.5, 23.5], (2, 5, 2))
    t = lc.encode_simcc(c, image_size=(32, 24), sigma=sigma)
    x = t.x_labels + 0.02 * rng.random(t.x_labels.shape)
    y = t.y_labels + 0.02 * rng.random(t.y_labels.shape)
    sx, sy = sigma if isinstance(sigma, tuple) else (sigma, sigma)
    got = numpy_of(lc.simcc_visibility(convert(x, backend), convert(y, backend), sigma=sigma, beta=beta))
    want = np.minimum(_softmax_peak(x, beta * sx), _softmax_peak(y, beta * sy))
    exponent = beta * max(sx, sy) * max(np.abs(x).max(), np.abs(y).max())
    tol = np.finfo(np.float64).eps * (4 * exponent + 2 * max(x.shape[-1], y.shape[-1]))
    np.testing.assert_allclose(got, want, rtol=tol, atol=0)
    assert got.shape == (2, 5) and ((got > 0) & (got <= 1)).all()


def test_simcc_visibility_ties_flat_huge_and_non_finite_labels():
    """m tied maxima give 1 / m, flat labels 1 / bins, labels near the float maximum stay finite
    (the softmax is taken relative to the maximum), and a NaN or infinite maximum gives NaN for
    that landmark alone."""
    x = np.zeros((5, 8))
    x[0, [2, 5]] = 1.0  # two tied maxima, the rest far below at beta * sigma = 150
    x[2] = [1e308, -1e308, 0, 0, 0, 0, 0, 0]
    x[3, 1] = np.nan
    x[4, 0] = np.inf
    y = np.zeros((5, 4))
    y[:, 0] = 1.0
    got = lc.simcc_visibility(x, y, sigma=1.0)
    np.testing.assert_allclose(got[:3], [0.5, 1 / 8, 1.0], rtol=1e-15, atol=0)
    assert np.isnan(got[3:]).all()


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda x, y: lc.simcc_visibility(x, y[:1], sigma=2.0), ValueError, "x_labels and y_labels must share"),
        (lambda x, y: lc.simcc_visibility(x, y, sigma=2.0, beta=0.0), ValueError, "beta must be positive"),
        (lambda x, y: lc.simcc_visibility(x, y, sigma=(1.0, 2.0, 3.0)), ValueError, "sigma must be one number"),
        (
            lambda x, y: lc.simcc_visibility(x[0], y, sigma=2.0),
            ValueError,
            r"x_labels must have shape \(\.\.\., K, bins\)",
        ),
        (
            lambda x, y: lc.simcc_visibility(x.astype(int), y, sigma=2.0),
            TypeError,
            "x_labels must have a real floating",
        ),
    ],
)
def test_simcc_visibility_bad_input(call, error, match):
    x, y = np.zeros((2, 8)), np.zeros((2, 6))
    with pytest.raises(error, match=match):
        call(x, y)


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(seed=st.integers(0, 2**32 - 1), lead=st.sampled_from([(), (1,), (3, 2)]))
def test_simcc_argmax_fast_path_is_the_general_path_bit_for_bit(convention, dtype, seed, lead):
    """The NumPy fast path of ``refine="none"`` (one instance's decode without the generic array
    calls) gives the general path's bits: ties (first maximum), a NaN in one axis (NaN
    coordinates, score 0), any leading shape."""
    from landmark_codecs import simcc

    rng = np.random.default_rng(seed)
    x = rng.random((*lead, 5, 32)).astype(dtype)
    y = rng.random((*lead, 5, 24)).astype(dtype)
    x[..., 0, 3] = x[..., 0, 9] = 2.0  # a tie: the first wins
    y[..., 1, rng.integers(0, 24)] = np.nan
    kw = dict(image_size=(16, 12), refine="none", convention=convention)
    fast = lc.decode_simcc(x, y, **kw)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(simcc, "_FAST_NUMPY", False)
        general = lc.decode_simcc(x, y, **kw)
    for f, g in zip(fast, general):
        assert f.dtype == g.dtype == dtype and f.shape == g.shape
        np.testing.assert_array_equal(f, g)
    assert np.isnan(fast.coords[..., 1, :]).all() and (fast.scores[..., 1] == 0).all()
