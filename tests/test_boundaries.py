"""Adaptive Wing's boundary heatmaps and CoordConv channels: the repository's chains, exactness
against a brute-force distance on real face shapes, translation and flip equivariance,
visibility, the repository's grid, and bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from helpers import convert, numpy_of
from hypothesis import given
from hypothesis import strategies as st

import landmark_codecs as lc
from landmark_codecs.bench import mean_shape

LAYOUTS = {68: "300w68", 98: "wflw98", 29: "cofw29", 19: "aflw19"}
# 300W's horizontal flip: each landmark's mirror partner
FLIP_68 = [
    *range(16, -1, -1),
    *range(26, 16, -1),
    27,
    28,
    29,
    30,
    35,
    34,
    33,
    32,
    31,
    45,
    44,
    43,
    42,
    47,
    46,
    39,
    38,
    37,
    36,
    41,
    40,
    54,
    53,
    52,
    51,
    50,
    49,
    48,
    59,
    58,
    57,
    56,
    55,
    64,
    63,
    62,
    61,
    60,
    67,
    66,
    65,
]


def mean_face(k: int, size: int = 64) -> np.ndarray:
    return mean_shape(LAYOUTS[k]) * size - 0.5  # crop [0, 1] -> heatmap pixels


def brute_force(coords: np.ndarray, chains, size, sigma=1.0, truncate=3.0) -> np.ndarray:
    """Per segment, the distance of every pixel centre by another route than the library's: the
    nearer end point, or the perpendicular distance |cross(b - a, q - a)| / |b - a| where the
    foot of the perpendicular lies inside the segment."""
    w, h = size
    qx, qy = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    best = np.full((h, w), np.inf)
    for chain in chains:
        for s, e in itertools.pairwise(chain):
            (ax, ay), (bx, by) = coords[s], coords[e]
            ends = np.minimum(np.hypot(qx - ax, qy - ay), np.hypot(qx - bx, qy - by))
            length = math.hypot(bx - ax, by - ay)
            if length > 0:
                along = ((qx - ax) * (bx - ax) + (qy - ay) * (by - ay)) / length
                inside = (along >= 0) & (along <= length)
                perp = np.abs((bx - ax) * (qy - ay) - (by - ay) * (qx - ax)) / length
                ends = np.where(inside, np.minimum(ends, perp), ends)
            best = np.minimum(best, ends)
    return np.where(best < truncate * sigma, np.exp(-(best**2) / (2 * sigma**2)), 0.0)


# --------------------------------------------------------------------------- the chains


def test_face_boundaries_68_are_the_repository_chains():
    assert lc.face_boundaries(68) == (
        tuple(range(0, 17)),
        tuple(range(17, 22)),
        tuple(range(22, 27)),
        (36, 37, 38, 39),
        (36, 41, 40, 39),
        (42, 43, 44, 45),
        (42, 47, 46, 45),
        (27, 28, 29, 30),
        (31, 32, 33, 34, 35),
        tuple(range(48, 55)),
        (60, 61, 62, 63, 64),
        (48, 59, 58, 57, 56, 55, 54),
        (60, 67, 66, 65, 64),
    )


def test_face_boundaries_98_29_19_are_the_repository_chains():
    b98 = lc.face_boundaries(98)
    assert b98[0] == tuple(range(33)) and b98[1] == tuple(range(33, 38)) and b98[2] == tuple(range(42, 47))
    assert b98[4] == (60, 67, 66, 65, 64) and b98[6] == (68, 75, 74, 73, 72) and b98[11] == (76, 87, 86, 85, 84, 83, 82)
    assert len(b98) == 13 and len(lc.face_boundaries(29)) == 13
    assert lc.face_boundaries(29)[0] == (0, 4, 2) and lc.face_boundaries(29)[12] == (22, 27, 23)
    assert lc.face_boundaries(19)[1] == (3, 4)  # the repository's 3:5, documented
    for k in LAYOUTS:
        assert all(len(c) >= 2 and all(0 <= i < k for i in c) for c in lc.face_boundaries(k))


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (21, ValueError, "num_landmarks must be one of 68"),
        ("68", TypeError, "num_landmarks must be an int"),
        (True, TypeError, "num_landmarks"),
    ],
)
def test_face_boundaries_bad_input(bad, error, message):
    with pytest.raises(error, match=message):
        lc.face_boundaries(bad)


# --------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("k", sorted(LAYOUTS))
def test_boundaries_are_exact_against_brute_force_on_real_faces(k):
    coords = mean_face(k)
    chains = lc.face_boundaries(k)
    got = lc.encode_boundaries(coords, heatmap_size=(64, 64), boundaries=chains, per_chain=True).heatmaps
    for c, chain in enumerate(chains):
        np.testing.assert_allclose(got[c], brute_force(coords, [chain], (64, 64)), rtol=0, atol=1e-12)
    merged = lc.encode_boundaries(coords, heatmap_size=(64, 64), boundaries=chains).heatmaps
    np.testing.assert_allclose(merged[0], brute_force(coords, chains, (64, 64)), rtol=0, atol=1e-12)
    assert (merged[0] == got.max(axis=0)).all()


@pytest.mark.parametrize("sigma, truncate", [(1.0, 3.0), (2.5, 2.0), (0.7, 10.0)])
def test_boundaries_options_against_brute_force_in_float32(sigma, truncate):
    coords = mean_face(68, size=48).astype(np.float32)
    chains = lc.face_boundaries(68)
    got = lc.encode_boundaries(
        coords, heatmap_size=(48, 40), boundaries=chains, sigma=sigma, truncate=truncate
    ).heatmaps
    want = brute_force(coords.astype(np.float64), chains, (48, 40), sigma, truncate)
    # float32 distances: d^2 to ~1e-6 relative; the cut-off may flip a pixel within that of it
    near_cut = np.abs(np.sqrt(-2 * np.log(np.maximum(want, 1e-300))) * sigma - truncate * sigma) < 1e-3
    np.testing.assert_allclose(np.where(near_cut, 0, got[0]), np.where(near_cut, 0, want), rtol=0, atol=1e-5)


@given(
    shift=st.tuples(st.floats(-0.5, 0.5), st.floats(-0.5, 0.5)), whole=st.tuples(st.integers(-3, 3), st.integers(-3, 3))
)
def test_a_sub_pixel_translation_moves_the_map_with_the_landmarks(shift, whole):
    """Translating the landmarks by whole + shift pixels gives the map of the shift, translated by
    whole pixels: exact on every pixel (the map is a function of q - landmark only)."""
    coords = mean_face(68, size=40) + 12.0  # in the middle of a 64x64 map, away from its borders
    chains = lc.face_boundaries(68)
    base = lc.encode_boundaries(coords + np.array(shift), heatmap_size=(64, 64), boundaries=chains).heatmaps[0]
    moved = lc.encode_boundaries(
        coords + np.array(shift) + np.array(whole, float), heatmap_size=(64, 64), boundaries=chains
    ).heatmaps[0]
    np.testing.assert_allclose(moved, np.roll(base, (whole[1], whole[0]), axis=(0, 1)), rtol=0, atol=1e-12)
    np.testing.assert_allclose(base, brute_force(coords + np.array(shift), chains, (64, 64)), rtol=0, atol=1e-12)


def test_flipping_the_face_flips_the_map_with_the_chains_mapped():
    coords = mean_face(68) + np.random.default_rng(0).normal(0, 0.7, size=(68, 2))
    chains = lc.face_boundaries(68)
    flipped = lc.flip_horizontal(coords, width=64, flip_index=FLIP_68)
    merged = lc.encode_boundaries(coords, heatmap_size=(64, 64), boundaries=chains).heatmaps
    merged_flipped = lc.encode_boundaries(flipped, heatmap_size=(64, 64), boundaries=chains).heatmaps
    np.testing.assert_allclose(merged_flipped, merged[..., ::-1], rtol=0, atol=1e-12)  # the chain set maps onto itself
    mapped = [tuple(FLIP_68[i] for i in c) for c in chains]
    split = lc.encode_boundaries(coords, heatmap_size=(64, 64), boundaries=chains, per_chain=True).heatmaps
    split_flipped = lc.encode_boundaries(flipped, heatmap_size=(64, 64), boundaries=mapped, per_chain=True).heatmaps
    np.testing.assert_allclose(split_flipped, split[..., ::-1], rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- visibility, batch, backends


def test_a_missing_landmark_breaks_its_chain_and_zeroes_its_weight():
    coords = mean_face(68)
    chains = lc.face_boundaries(68)
    visible = np.ones(68, dtype=bool)
    visible[8] = False  # the chin, in the middle of the cheek chain
    nan = coords.copy()
    nan[8] = np.nan
    broken = [c for c in chains[1:]] + [tuple(range(0, 8)), tuple(range(9, 17))]
    want = lc.encode_boundaries(coords, heatmap_size=(64, 64), boundaries=broken).heatmaps
    for got in (
        lc.encode_boundaries(coords, heatmap_size=(64, 64), boundaries=chains, weights=visible),
        lc.encode_boundaries(nan, heatmap_size=(64, 64), boundaries=chains),
    ):
        np.testing.assert_array_equal(got.heatmaps, want)
        assert got.weights.tolist() == [0.0]
    split = lc.encode_boundaries(coords, heatmap_size=(64, 64), boundaries=chains, per_chain=True, weights=visible)
    assert split.weights.tolist() == [0.0] + [1.0] * 12


def test_a_batch_is_each_face_on_its_own_on_every_backend(backend):
    rng = np.random.default_rng(5)
    faces = mean_face(68, size=32)[None, None] + rng.normal(0, 1.0, size=(2, 3, 68, 2))
    chains = lc.face_boundaries(68)
    got = lc.encode_boundaries(convert(faces, backend), heatmap_size=(32, 32), boundaries=chains, per_chain=True)
    assert tuple(got.heatmaps.shape) == (2, 3, 13, 32, 32) and tuple(got.weights.shape) == (2, 3, 13)
    for b in range(2):
        for f in range(3):
            one = lc.encode_boundaries(faces[b, f], heatmap_size=(32, 32), boundaries=chains, per_chain=True).heatmaps
            np.testing.assert_allclose(numpy_of(got.heatmaps)[b, f], one, rtol=0, atol=1e-12)


def test_landmarks_off_the_map_draw_the_part_of_their_polyline_near_it():
    coords = np.array([[-10.0, 2.0], [20.0, 2.0]])
    maps = lc.encode_boundaries(coords, heatmap_size=(8, 5), boundaries=[(0, 1)]).heatmaps
    assert (maps[0, 2] == 1.0).all() and maps[0, 4, 0] == pytest.approx(math.exp(-2.0))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(boundaries=[(0, 7)]), ValueError, r"boundaries\[0\] indices must lie in \[0, 3\)"),
        (dict(boundaries=[(0,)]), ValueError, r"boundaries\[0\] must hold at least 2"),
        (dict(boundaries=[(0, 1.5)]), TypeError, r"boundaries\[0\] must hold int"),
        (dict(boundaries=[(0, True)]), TypeError, r"boundaries\[0\] must hold int"),
        (dict(boundaries=[]), ValueError, "boundaries must hold at least one chain"),
        (dict(boundaries="012"), TypeError, "boundaries must be a sequence of chains"),
        (dict(boundaries=[(0, 1)], truncate=0.0), ValueError, "truncate must be positive"),
        (dict(boundaries=[(0, 1)], sigma=0.0), ValueError, "sigma"),
        (dict(boundaries=[(0, 1)], per_chain="no"), TypeError, "per_chain must be True or False"),
        (dict(boundaries=[(0, 1)], weights=np.ones(2)), ValueError, "weights must have shape"),
    ],
)
def test_encode_boundaries_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        lc.encode_boundaries(np.zeros((3, 2)), heatmap_size=(8, 8), **kwargs)


# --------------------------------------------------------------------------- CoordConv


def add_coords_repository(input_tensor, *, with_r, heatmap=None):
    """The AdaptiveWingLoss repository's AddCoordsTh.forward, transcribed (its x_dim is the
    tensor's dimension 2, the rows)."""
    import torch

    b, _, x_dim, y_dim = input_tensor.shape
    xx = torch.matmul(torch.ones([1, y_dim, 1]), torch.arange(x_dim, dtype=torch.float32)[None, None, :]).unsqueeze(-1)
    yy = torch.matmul(torch.arange(y_dim, dtype=torch.float32)[None, :, None], torch.ones([1, 1, x_dim])).unsqueeze(-1)
    xx = xx.permute(0, 3, 2, 1) / (x_dim - 1) * 2 - 1
    yy = yy.permute(0, 3, 2, 1) / (y_dim - 1) * 2 - 1
    xx, yy = xx.repeat(b, 1, 1, 1), yy.repeat(b, 1, 1, 1)
    out = [input_tensor, xx, yy]
    if with_r:
        rr = torch.sqrt(xx**2 + yy**2)
        out.append(rr / torch.max(rr))
    if heatmap is not None:
        boundary = torch.clamp(heatmap[:, -1:], 0.0, 1.0)
        out += [
            torch.where(boundary > 0.05, xx, torch.zeros_like(xx)),
            torch.where(boundary > 0.05, yy, torch.zeros_like(yy)),
        ]
    return torch.cat(out, dim=1)


@pytest.mark.parametrize("with_r", [False, True])
@pytest.mark.parametrize("size", [(64, 64), (24, 16)])
def test_coordinate_channels_are_the_repository_grid(with_r, size):
    torch = pytest.importorskip("torch")
    w, h = size
    boundary = torch.rand(2, 1, h, w, generator=torch.Generator().manual_seed(0))
    boundary[0, 0, 3, 4] = 0.05  # exactly at the threshold: not on the boundary
    want = add_coords_repository(torch.zeros(2, 0, h, w), with_r=with_r, heatmap=boundary)
    got = lc.coordinate_channels((w, h), boundary=boundary[:, 0], with_r=with_r)
    # the repository's first channel varies along dimension 2 (rows): ours is y
    order = [1, 0] + ([2] if with_r else []) + ([4, 3] if with_r else [3, 2])
    if h == w:
        torch.testing.assert_close(got[:, order], want, rtol=0, atol=2 * np.finfo(np.float32).eps)
    assert got[0, 0, 0, 0] == -1 and got[0, 0, 0, -1] == 1 and got[0, 1, 0, 0] == -1 and got[0, 1, -1, 0] == 1
    x = 2 * np.arange(w) / (w - 1) - 1
    np.testing.assert_allclose(got[0, 0].numpy(), np.broadcast_to(x, (h, w)), rtol=0, atol=2e-7)
    masked = got[:, -2:].numpy()
    on = (boundary[:, 0] > 0.05).numpy()[:, None]
    np.testing.assert_array_equal(masked, np.where(on, got[:, :2].numpy(), 0.0))


def test_coordinate_channels_take_like_s_library_dtype_and_device(backend):
    like = convert(np.zeros((1,), dtype=np.float32), backend)
    got = lc.coordinate_channels((5, 3), like=like, with_r=True)
    assert type(got) is type(like) and got.dtype == like.dtype and tuple(got.shape) == (3, 3, 5)
    np.testing.assert_allclose(
        numpy_of(got)[2], np.hypot(*np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 3))) / math.sqrt(2), atol=1e-7
    )
    assert lc.coordinate_channels((5, 3)).dtype == np.float64


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(heatmap_size=(1, 4)), "heatmap_size must be at least"),
        (
            dict(heatmap_size=(4, 4), boundary=np.zeros((3, 4))),
            r"boundary must have shape \(\.\.\., H, W\) = \(\.\.\., 4, 4\)",
        ),
        (dict(heatmap_size=(4, 4), boundary=np.zeros((4, 4), dtype=int)), "boundary must have a real floating dtype"),
        (dict(heatmap_size=(4, 4), threshold=math.nan), "threshold must be finite"),
        (dict(heatmap_size=(4, 4), like="x"), "like must be an array"),
    ],
)
def test_coordinate_channels_bad_input(kwargs, message):
    size = kwargs.pop("heatmap_size")
    with pytest.raises((ValueError, TypeError), match=message):
        lc.coordinate_channels(size, **kwargs)


def test_coordconv2d_is_a_conv_of_the_input_with_the_channels_appended():
    torch = pytest.importorskip("torch")
    from landmark_codecs import torch as lct

    torch.manual_seed(0)
    conv = lct.CoordConv2d(3, 4, 3, padding=1, with_r=True, with_boundary=True)
    assert conv.in_channels == 3 + 2 + 1 + 2
    x = torch.randn(2, 3, 10, 12)
    boundary = torch.rand(2, 1, 10, 12)
    grid = lc.coordinate_channels((12, 10), boundary=boundary[:, 0], with_r=True)
    want = torch.nn.functional.conv2d(torch.cat([x, grid], dim=1), conv.weight, conv.bias, padding=1)
    torch.testing.assert_close(conv(x, boundary), want, rtol=0, atol=0)
    assert "with_boundary=True" in repr(conv)
    with pytest.raises(ValueError, match="boundary is required"):
        conv(x)
    plain = lct.CoordConv2d(3, 4, 1)
    with pytest.raises(ValueError, match="built with with_boundary=False"):
        plain(x, boundary)
    assert plain(x).shape == (2, 4, 10, 12)


def test_a_segment_of_any_finite_length_is_drawn_exactly():
    # Before: a length above ~1e154 overflowed its square and the segment was not drawn, though
    # it crosses the map (here along the diagonal).
    coords = np.array([[0.0, 0.0], [1e200, 1e200], [0.0, 0.0], [5.0, 5.0]])
    split = lc.encode_boundaries(coords, heatmap_size=(8, 8), boundaries=[(0, 1), (2, 3)], per_chain=True)
    assert split.weights.tolist() == [1.0, 1.0]
    np.testing.assert_allclose(split.heatmaps[0], brute_force(coords, [(0, 1)], (8, 8)), rtol=0, atol=1e-12)
    assert split.heatmaps[0].diagonal().min() == 1.0
    np.testing.assert_allclose(split.heatmaps[1], brute_force(coords, [(2, 3)], (8, 8)), rtol=0, atol=1e-12)


def test_a_segment_whose_length_overflows_is_not_drawn_and_zeroes_the_weight():
    coords = np.array([[-1e308, 2.0], [1e308, 2.0], [0.0, 0.0], [5.0, 5.0]])
    split = lc.encode_boundaries(coords, heatmap_size=(8, 8), boundaries=[(0, 1), (2, 3)], per_chain=True)
    assert split.weights.tolist() == [0.0, 1.0] and split.heatmaps[0].max() == 0.0
    np.testing.assert_allclose(split.heatmaps[1], brute_force(coords, [(2, 3)], (8, 8)), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "dtype, gap", [(np.float64, 1e-160), (np.float64, 1e-300), (np.float32, 1e-20), (np.float32, 1e-40)]
)
def test_a_segment_shorter_than_the_root_of_the_smallest_float_is_a_point(dtype, gap):
    # Before: a squared length that is subnormal made 1 / |b - a|^2 infinite, the distances NaN,
    # and the map all zero with weight 1 (merged: every chain erased).
    coords = np.array([[0.0, 0.0], [gap, gap], [6.0, 4.25]], dtype=dtype)  # near 0, where such gaps exist
    merged = lc.encode_boundaries(coords, heatmap_size=(8, 6), boundaries=[(0, 1, 2)])
    assert merged.weights.tolist() == [1.0] and not np.isnan(merged.heatmaps).any()
    want = brute_force(coords.astype(np.float64), [(0, 1, 2)], (8, 6))
    np.testing.assert_allclose(merged.heatmaps[0], want, rtol=0, atol=8 * np.finfo(dtype).eps)


@pytest.mark.parametrize(
    "points, pixel, nearer",
    [
        ([[3.0, 3.0], [8.0, 10.0]], (11, 10), (10, 10)),  # 3 px right of the end (8, 10): was drawn, 0.0111
        ([[8.0, 10.0], [3.0, 3.0]], (11, 10), (10, 10)),  # the same end as the start
        ([[2.0, 5.0], [12.0, 5.0]], (7, 8), (7, 7)),  # 3 px below a horizontal segment's middle
        ([[6.0, 1.0], [6.0, 12.0]], (3, 9), (4, 9)),  # 3 px left of a vertical one
    ],
)
def test_a_pixel_exactly_at_the_cut_off_is_not_drawn(points, pixel, nearer):
    """``d < truncate * sigma`` as documented, exactly where ``d`` is exact (nearest to an end, or
    an axis-aligned segment); the pixel 2 px away is drawn with exp(-d^2 / (2 sigma^2))."""
    maps = lc.encode_boundaries(np.array(points), heatmap_size=(20, 16), boundaries=[(0, 1)], sigma=1.0).heatmaps
    assert maps[0, pixel[1], pixel[0]] == 0.0
    assert maps[0, nearer[1], nearer[0]] == pytest.approx(np.exp(-(2.0**2) / 2), rel=1e-12)
