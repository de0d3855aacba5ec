"""PIPNet: the neighbour table, lossless targets, merging, masks and the loss, on every backend."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from helpers import convert, numpy_of
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import landmark_codecs as lc
from landmark_codecs.testing import assert_lossless, heatmap_sizes, landmarks

MERGES = ["mean", "original", "none"]
TOL = {np.float32: 1e-5, np.float64: 1e-9}


# -- oracles: per-landmark Python loops, written from the paper's and the repository's description --


def _exact_squared_distances(points):
    """Exact rational squared distances (float squares underflow for tiny coordinates, ~1e-190)."""
    k = len(points)
    return [
        [sum((Fraction(a) - Fraction(b)) ** 2 for a, b in zip(points[i], points[j])) for j in range(k)]
        for i in range(k)
    ]


def _oracle_neighbors(points, n):
    d2 = _exact_squared_distances(points)
    rows = []
    for i in range(len(points)):
        others = [(d2[i][j], j) for j in range(len(points)) if j != i]
        rows.append([j for _, j in sorted(others)[:n]])  # ties: lower index first
    return np.array(rows)


def _oracle_reverse(index):
    """Lists of flat predictors k * N + m of each landmark, padded the repository's way."""
    k, n = index.shape
    lists = [[] for _ in range(k)]
    for i in range(k):
        for m in range(n):
            lists[index[i, m]].append(i * n + m)
    longest = max(len(v) for v in lists)
    return [(v * (1 + 10))[:longest] for v in lists], [len(v) for v in lists], longest


def _oracle_decode(scores, offsets, nb_offsets, index, merge):
    """The decode, one landmark and one neighbour at a time (batch axis 0)."""
    b, k, _h, w = scores.shape
    n = index.shape[1]
    padded, lengths, _longest = _oracle_reverse(index)
    out = np.zeros((b, k, 2))
    for bi in range(b):
        own, by = {}, {}
        for i in range(k):
            cell = int(np.argmax(scores[bi, i]))
            cy, cx = divmod(cell, w)
            own[i] = np.array([cx + offsets[bi, i, 0, cy, cx], cy + offsets[bi, i, 1, cy, cx]])
            for m in range(n):
                by[i * n + m] = np.array([cx + nb_offsets[bi, i, m, 0, cy, cx], cy + nb_offsets[bi, i, m, 1, cy, cx]])
        for t in range(k):
            if merge == "none" or lengths[t] == 0:
                out[bi, t] = own[t]
            elif merge == "mean":
                preds = [by[f] for f in padded[t][: lengths[t]]]
                out[bi, t] = np.mean([own[t], *preds], axis=0)
            else:
                out[bi, t] = np.mean([own[t], *[by[f] for f in padded[t]]], axis=0)
    return out


@st.composite
def mean_shapes(draw, min_k=2, max_k=24):
    k = draw(st.integers(min_k, max_k))
    pts = draw(hnp.arrays(np.float64, (k, 2), elements=st.floats(0, 1, allow_nan=False)))
    n = draw(st.integers(1, k - 1))
    return pts, n


# -- the neighbour table --------------------------------------------------------------------------


@given(shape=mean_shapes())
def test_neighbor_table_equals_the_brute_force_oracle(shape):
    pts, n = shape
    table = lc.pipnet_neighbors(pts, num_neighbors=n)
    oracle = _oracle_neighbors(pts, n)
    # The documented condition: distances are rounded to float64 (hypot, within 1.5 eps of the
    # exact value), so two whose exact values differ by less than 4 eps (relative 2**-51 of the
    # distance; 2**-50 of its square) may tie or swap; the neighbours' exact squared distances
    # agree with the oracle's to that, rank by rank, and a row without such near ties is exactly
    # the oracle's (exact ties: lower index first).
    d2 = _exact_squared_distances(pts)
    near = Fraction(2) ** -50
    for i in range(len(pts)):
        for ours, exact in zip(table.index[i], oracle[i]):
            assert abs(d2[i][ours] - d2[i][exact]) <= near * d2[i][exact], (i, ours, exact)
        ds = sorted(d2[i][j] for j in range(len(pts)) if j != i)
        if all(b - a > near * b for a, b in itertools.pairwise(ds) if a != b):
            assert table.index[i].tolist() == oracle[i].tolist(), i
    padded, lengths, longest = _oracle_reverse(table.index)
    np.testing.assert_array_equal(table.reverse_count, lengths)
    assert table.reverse_index.shape == (len(pts), longest)
    for t, row in enumerate(padded):
        if row:  # the repository's x11 repetition is cyclic padding while longest <= 11 * len
            assume(longest <= 11 * lengths[t])
            np.testing.assert_array_equal(table.reverse_index[t], row)
        else:
            np.testing.assert_array_equal(table.reverse_index[t], 0)
    assert table.index.dtype == np.int64 and table.reverse_index.dtype == np.int64


def test_ties_and_duplicate_points_are_deterministic():
    # Landmarks 1 and 3 are equally far from 0; 2 duplicates 0.
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [-1.0, 0.0], [5.0, 5.0]])
    table = lc.pipnet_neighbors(pts, num_neighbors=3)
    assert table.index[0].tolist() == [2, 1, 3]  # the duplicate first, then the tie by index
    assert table.index[2].tolist() == [0, 1, 3]  # never itself, even at distance 0
    again = lc.pipnet_neighbors(pts.copy(), num_neighbors=3)
    np.testing.assert_array_equal(again.index, table.index)


@given(k=st.integers(3, 30), data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_permuting_landmarks_permutes_the_table(k, data, seed):
    # Continuous random points: no distance ties (ties are broken by index, which a permutation
    # changes, so the claim is stated for tie-free shapes).
    rng = np.random.default_rng(seed)
    pts = rng.random((k, 2))
    n = data.draw(st.integers(1, k - 1))
    perm = rng.permutation(k)
    inverse = np.argsort(perm)
    a = lc.pipnet_neighbors(pts, num_neighbors=n)
    b = lc.pipnet_neighbors(pts[perm], num_neighbors=n)
    np.testing.assert_array_equal(b.index, inverse[a.index[perm]])
    np.testing.assert_array_equal(b.reverse_count, a.reverse_count[perm])
    # ... and every output of encode and decode.
    coords = rng.uniform(-0.5, 7.49, (2, k, 2))
    ta = lc.encode_pipnet(coords, grid_size=(8, 8), neighbors=a)
    tb = lc.encode_pipnet(coords[:, perm], grid_size=(8, 8), neighbors=b)
    for x, y in zip(ta, tb):
        np.testing.assert_array_equal(y, x[:, perm])
    outputs = (
        rng.random(ta.scores.shape),
        rng.normal(size=ta.offsets.shape),
        rng.normal(size=ta.neighbor_offsets.shape),
    )
    counts = a.reverse_count[a.reverse_count > 0]
    even = bool(np.all(a.reverse_index.shape[1] % counts == 0))
    # "original" repeats each landmark's predictors in landmark order up to R: unless every count
    # divides R, which predictors count once more depends on that order (see decode_pipnet).
    for merge in ["mean", "none"] + (["original"] if even else []):
        ca, sa = lc.decode_pipnet(*outputs, neighbors=a, merge=merge)
        cb, sb = lc.decode_pipnet(*(o[:, perm] for o in outputs), neighbors=b, merge=merge)
        np.testing.assert_allclose(cb, ca[:, perm], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(sb, sa[:, perm])


def test_table_keeps_the_mean_shapes_library_and_device(backend):
    pts = np.random.default_rng(0).random((7, 2))
    table = lc.pipnet_neighbors(convert(pts, backend), num_neighbors=3)
    reference = lc.pipnet_neighbors(pts, num_neighbors=3)
    for got, want in zip(table, reference):
        assert type(got) is type(convert(want, backend))
        np.testing.assert_array_equal(numpy_of(got), want)
    assert str(getattr(table.index, "device", "cpu")) == str(getattr(convert(pts, backend), "device", "cpu"))


# -- lossless round trip --------------------------------------------------------------------------


@st.composite
def pipnet_cases(draw, dtype=np.float64, max_side=64):
    pts, n = draw(mean_shapes(max_k=12))
    size = draw(heatmap_sizes(min_side=1, max_side=max_side))
    coords = draw(landmarks(size, num_landmarks=len(pts), batch_shape=st.sampled_from([(), (2,), (2, 1)]), dtype=dtype))
    return size, lc.pipnet_neighbors(pts, num_neighbors=n), coords


@pytest.mark.parametrize("merge", MERGES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_exact_targets_decode_losslessly(backend, merge, dtype, data):
    size, table, coords = data.draw(pipnet_cases(dtype=dtype))

    def encode(c):
        return lc.encode_pipnet(c, grid_size=size, neighbors=table)

    def decode(t):
        return lc.decode_pipnet(t.scores, t.offsets, t.neighbor_offsets, neighbors=table, merge=merge)

    assert_lossless(encode, decode, convert(coords, backend), atol=TOL[dtype])


def test_cell_borders_and_the_map_edge():
    """x = j - 0.5 belongs to cell j (offset -0.5); the last float below W - 0.5 to the last cell."""
    top = float(np.nextafter(np.float32(7.5), np.float32(0)))
    coords = np.array([[[-0.5, -0.5], [2.5, 0.5], [top, top], [3.0, 4.0]]], dtype=np.float32)
    table = lc.pipnet_neighbors(np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]), num_neighbors=2)
    t = lc.encode_pipnet(coords, grid_size=(8, 8), neighbors=table)
    cells = [np.unravel_index(int(np.argmax(t.scores[0, k])), (8, 8)) for k in range(4)]
    assert cells == [(0, 0), (1, 3), (7, 7), (4, 3)]
    np.testing.assert_array_equal(t.offsets[0, 0, :, 0, 0], [-0.5, -0.5])
    np.testing.assert_array_equal(t.offsets[0, 1, :, 1, 3], [-0.5, -0.5])
    assert np.all(t.offsets[0, 2, :, 7, 7] < 0.5) and np.all(t.offsets[0, 2, :, 7, 7] > 0.49)
    for merge in MERGES:
        got, _ = lc.decode_pipnet(t.scores, t.offsets, t.neighbor_offsets, neighbors=table, merge=merge)
        np.testing.assert_allclose(got, coords, atol=1e-5, rtol=0)


# -- masks: invisible, outside, NaN --------------------------------------------------------------


@given(data=st.data())
def test_missing_landmarks_get_zero_masks_and_never_corrupt_others(backend, data):
    size, table, coords = data.draw(pipnet_cases(max_side=16))
    coords = coords.reshape(-1, *coords.shape[-2:])[:1]
    k = coords.shape[-2]
    j = data.draw(st.integers(0, k - 1))
    how = data.draw(st.sampled_from(["invisible", "nan", "outside"]))
    broken, visible = coords.copy(), np.ones(coords.shape[:-1])
    if how == "invisible":
        visible[..., j] = 0
    elif how == "nan":
        broken[..., j, 0] = np.nan
    else:
        broken[..., j, :] = [size[0] + 3.0, -7.0]
    full = lc.encode_pipnet(convert(coords, backend), grid_size=size, neighbors=table)
    part = lc.encode_pipnet(
        convert(broken, backend), grid_size=size, neighbors=table, weights=convert(visible, backend)
    )
    full, part = [numpy_of(a) for a in full], [numpy_of(a) for a in part]
    scores, offsets, nb, mask, nb_mask, weights = part
    assert weights[..., j] == 0 and np.all(weights[..., np.arange(k) != j] == 1)
    for a in (scores, offsets, nb, mask, nb_mask):
        assert np.all(a[:, j] == 0)
        assert np.isfinite(a).all()
    points_at_j = numpy_of(table.index) == j  # (K, N): neighbour terms that name j
    assert np.all(nb[:, points_at_j] == 0) and np.all(nb_mask[:, points_at_j] == 0)
    others = np.arange(k) != j
    for field in (0, 1, 3):  # scores, offsets, mask
        np.testing.assert_array_equal(part[field][:, others], full[field][:, others])
    keep = ~points_at_j & others[:, None]
    np.testing.assert_array_equal(nb[:, keep], full[2][:, keep])
    np.testing.assert_array_equal(nb_mask[:, keep], full[4][:, keep])


def test_visible_weights_carry_into_the_masks():
    table = lc.pipnet_neighbors(np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 1.0]]), num_neighbors=2)
    coords = np.array([[0.2, 0.1], [1.3, 0.0], [2.0, 1.4]])
    t = lc.encode_pipnet(coords, grid_size=(4, 4), neighbors=table, weights=np.array([0.5, 1.0, 2.0]))
    np.testing.assert_array_equal(t.weights, [0.5, 1.0, 2.0])
    np.testing.assert_array_equal(t.offset_weights.sum(axis=(-2, -1)), [0.5, 1.0, 2.0])
    np.testing.assert_array_equal(t.neighbor_weights, [[0.5, 0.5], [1.0, 1.0], [2.0, 2.0]])
    np.testing.assert_array_equal(t.scores.sum(axis=(-2, -1)), [1.0, 1.0, 1.0])


# -- merging ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("merge", MERGES)
@given(shape=mean_shapes(max_k=10), size=heatmap_sizes(min_side=1, max_side=6), seed=st.integers(0, 2**32 - 1))
def test_decode_equals_the_per_landmark_loop(merge, shape, size, seed):
    pts, n = shape
    table = lc.pipnet_neighbors(pts, num_neighbors=n)
    _padded, lengths, longest = _oracle_reverse(table.index)
    assume(all(longest <= 11 * n_t for n_t in lengths if n_t))  # where the repository's padding is defined
    rng = np.random.default_rng(seed)
    w, h = size
    k = len(pts)
    scores = rng.random((2, k, h, w))
    offsets = rng.uniform(-1, 1, (2, k, 2, h, w))
    nb = rng.uniform(-5, 5, (2, k, n, 2, h, w))
    got, best = lc.decode_pipnet(scores, offsets, nb, neighbors=table, merge=merge)
    np.testing.assert_allclose(got, _oracle_decode(scores, offsets, nb, table.index, merge), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(best, scores.reshape(2, k, -1).max(-1))


def test_the_original_merge_depends_on_landmark_order_when_counts_do_not_divide_R():
    rng = np.random.default_rng(0)
    pts, perm = rng.random((5, 2)), rng.permutation(5)
    a, b = lc.pipnet_neighbors(pts, num_neighbors=3), lc.pipnet_neighbors(pts[perm], num_neighbors=3)
    assert np.any(a.reverse_index.shape[1] % a.reverse_count != 0)
    outputs = (rng.random((1, 5, 8, 8)), rng.normal(size=(1, 5, 2, 8, 8)), rng.normal(size=(1, 5, 3, 2, 8, 8)))
    ca, _ = lc.decode_pipnet(*outputs, neighbors=a, merge="original")
    cb, _ = lc.decode_pipnet(*(o[:, perm] for o in outputs), neighbors=b, merge="original")
    assert np.abs(cb - ca[:, perm]).max() > 0.1


def test_the_two_merges_weigh_the_own_prediction_differently():
    """Landmark 0 is predicted by one other, landmark 1 by two (R = 2): the own weight is 1/2 vs 1/3."""
    table = lc.pipnet_neighbors(np.array([[0.0, 0.0], [1.0, 0.0], [2.5, 0.0]]), num_neighbors=1)
    assert table.reverse_count.tolist() == [1, 2, 0]
    scores = np.zeros((3, 1, 1))
    offsets = np.zeros((3, 2, 1, 1))
    nb = np.zeros((3, 1, 2, 1, 1))
    offsets[0, 0] = 0.3  # own x of landmark 0
    nb[1, 0, 0] = -0.3  # landmark 1 predicts landmark 0 at x = -0.3
    mean, _ = lc.decode_pipnet(scores, offsets, nb, neighbors=table, merge="mean")
    original, _ = lc.decode_pipnet(scores, offsets, nb, neighbors=table, merge="original")
    assert mean[0, 0] == pytest.approx(0.0)  # (0.3 - 0.3) / 2
    assert original[0, 0] == pytest.approx((0.3 - 0.3 - 0.3) / 3)  # the one predictor repeated to R = 2
    assert mean[2, 0] == original[2, 0] == 0.0  # predicted by nobody: its own prediction


@pytest.mark.parametrize("merge", ["mean", "original"])
def test_a_nan_prediction_reaches_only_the_landmarks_it_predicts(merge):
    rng = np.random.default_rng(3)
    pts = rng.random((9, 2))
    table = lc.pipnet_neighbors(pts, num_neighbors=3)
    coords = rng.uniform(-0.5, 7.4, (9, 2))
    t = lc.encode_pipnet(coords, grid_size=(8, 8), neighbors=table)
    nb = t.neighbor_offsets.copy()
    nb[4] = np.nan  # every prediction landmark 4 makes
    got, _ = lc.decode_pipnet(t.scores, t.offsets, nb, neighbors=table, merge=merge)
    hit = np.isin(np.arange(9), table.index[4])
    assert np.isnan(got[hit]).all(1).all()
    np.testing.assert_allclose(got[~hit], coords[~hit], atol=1e-9)


# -- backends --------------------------------------------------------------------------------------

RNG = np.random.default_rng(7)
PTS = RNG.random((6, 2))
COORDS = np.concatenate([RNG.uniform(-0.5, [7.49, 5.49], (2, 5, 2)), np.array([[[np.nan, 1.0]], [[9.0, 1.0]]])], axis=1)
VISIBLE = np.array([[1, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]], dtype=np.float64)
OUTPUTS = (RNG.random((2, 6, 6, 8)), RNG.uniform(-1, 1, (2, 6, 2, 6, 8)), RNG.uniform(-3, 3, (2, 6, 3, 2, 6, 8)))


@pytest.mark.parametrize("table_from", ["numpy", "backend"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backends_agree_keep_dtype_device_and_inputs(backend, dtype, table_from):
    table = lc.pipnet_neighbors(PTS if table_from == "numpy" else convert(PTS, backend), num_neighbors=3)
    args = [COORDS.astype(dtype), VISIBLE.astype(dtype), *(o.astype(dtype) for o in OUTPUTS)]
    inputs = [convert(a, backend) for a in args]
    before = [numpy_of(i).copy() for i in inputs]
    ref_table = lc.pipnet_neighbors(PTS, num_neighbors=3)

    def run(c, v, s, o, nb, tab):
        targets = lc.encode_pipnet(c, grid_size=(8, 6), neighbors=tab, weights=v)
        decoded = [x for m in MERGES for x in lc.decode_pipnet(s, o, nb, neighbors=tab, merge=m)]
        return [*targets, *decoded, lc.pipnet_loss(s, o, nb, targets)]

    want = [numpy_of(x) for x in run(*args, ref_table)]
    got = run(*inputs, table)
    device = str(getattr(inputs[0], "device", "cpu"))
    for g, w in zip(got, want):
        assert numpy_of(g).dtype == dtype and str(getattr(g, "device", "cpu")) == device
        np.testing.assert_allclose(
            numpy_of(g), w, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6 if dtype == np.float32 else 1e-12
        )
    for i, b in zip(inputs, before):
        np.testing.assert_array_equal(numpy_of(i), b)


def test_torch_meta_device_propagates():
    torch = pytest.importorskip("torch")
    table = lc.pipnet_neighbors(PTS, num_neighbors=3)
    meta = [torch.empty(o.shape, device="meta") for o in OUTPUTS]
    targets = lc.encode_pipnet(torch.empty((2, 6, 2), device="meta"), grid_size=(8, 6), neighbors=table)
    coords, scores = lc.decode_pipnet(*meta, neighbors=table)
    loss = lc.pipnet_loss(*meta, targets)
    for out in (*targets, coords, scores, loss):
        assert out.device.type == "meta"
    assert coords.shape == (2, 6, 2) and targets.neighbor_offsets.shape == (2, 6, 3, 2, 6, 8)


# -- the loss --------------------------------------------------------------------------------------


def _oracle_loss(s, o, nb, t, score_weight=10.0, offset_weight=1.0):
    """The repository's: MSE over every map, L1 means of x and y at the target cell, added."""
    b, k, _h, _w = s.shape
    cell = t.scores.reshape(b, k, -1).argmax(-1)
    sel = lambda a, c: np.take_along_axis(a.reshape(*a.shape[:-2], -1), c, axis=-1)[..., 0]  # noqa: E731
    own_p, own_t = sel(o, cell[:, :, None, None]), sel(t.offsets, cell[:, :, None, None])
    nb_p, nb_t = sel(nb, cell[:, :, None, None, None]), sel(t.neighbor_offsets, cell[:, :, None, None, None])
    loss = score_weight * np.mean((s - t.scores) ** 2)
    for axis in (0, 1):
        loss += offset_weight * np.mean(np.abs(own_p[..., axis] - own_t[..., axis]))
        loss += offset_weight * np.mean(np.abs(nb_p[..., axis] - nb_t[..., axis]))
    return loss


@given(shape=mean_shapes(max_k=8), seed=st.integers(0, 2**32 - 1), weights=st.tuples(st.floats(0, 20), st.floats(0, 5)))
def test_loss_equals_the_repository_loss_when_all_are_visible(shape, seed, weights):
    pts, n = shape
    table = lc.pipnet_neighbors(pts, num_neighbors=n)
    rng = np.random.default_rng(seed)
    k = len(pts)
    t = lc.encode_pipnet(rng.uniform(-0.5, [4.49, 3.49], (3, k, 2)), grid_size=(5, 4), neighbors=table)
    assert np.all(t.weights == 1)
    s, o, nb = rng.random(t.scores.shape), rng.normal(size=t.offsets.shape), rng.normal(size=t.neighbor_offsets.shape)
    got = lc.pipnet_loss(s, o, nb, t, score_weight=weights[0], offset_weight=weights[1])
    assert float(got) == pytest.approx(_oracle_loss(s, o, nb, t, *weights), rel=1e-12, abs=1e-12)


def test_loss_ignores_masked_predictions_even_when_not_finite():
    torch = pytest.importorskip("torch")
    table = lc.pipnet_neighbors(PTS, num_neighbors=3)
    t = lc.encode_pipnet(torch.asarray(COORDS), grid_size=(8, 6), neighbors=table, weights=torch.asarray(VISIBLE))
    preds = [torch.asarray(o).requires_grad_() for o in OUTPUTS]
    clean = lc.pipnet_loss(*preds, t)
    clean.backward()
    grads = [p.grad.clone() for p in preds]
    dirty = [p.detach().clone() for p in preds]
    missing = t.weights == 0  # (B, K): landmarks (0, 1) invisible, (0, 5) NaN, (1, 5) outside
    assert int(missing.sum()) == 3
    for d in dirty:
        d[missing] = float("nan")
    # Off-cell offsets of every landmark are masked too.
    dirty[1][t.offset_weights[:, :, None].expand_as(dirty[1]) == 0] = float("inf")
    dirty = [d.requires_grad_() for d in dirty]
    loss = lc.pipnet_loss(*dirty, t)
    loss.backward()
    assert torch.equal(loss, clean)
    for d, g in zip(dirty, grads):
        assert torch.equal(d.grad, g)
        assert bool(d.grad[missing].eq(0).all())


def test_loss_terms_are_zero_when_nothing_is_visible():
    table = lc.pipnet_neighbors(PTS, num_neighbors=3)
    t = lc.encode_pipnet(COORDS, grid_size=(8, 6), neighbors=table, weights=np.zeros((2, 6)))
    assert float(lc.pipnet_loss(*OUTPUTS, t)) == 0.0


def test_loss_gradcheck_float64():
    torch = pytest.importorskip("torch")
    table = lc.pipnet_neighbors(PTS[:4], num_neighbors=2)
    rng = np.random.default_rng(1)
    t = lc.encode_pipnet(
        torch.asarray(rng.uniform(-0.5, 3.4, (2, 4, 2))),
        grid_size=(4, 3),
        neighbors=table,
        weights=torch.asarray([[1.0, 0.0, 1.0, 2.0], [1.0, 1.0, 1.0, 1.0]]),
    )
    # Keep predictions away from |d| = 0, where L1 has a kink.
    preds = [(x + torch.asarray(rng.uniform(0.1, 0.9, x.shape))).requires_grad_() for x in t[:3]]
    assert torch.autograd.gradcheck(lambda s, o, nb: lc.pipnet_loss(s, o, nb, t), preds)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_loss_in_half_precision_is_finite_and_close(dtype):
    torch = pytest.importorskip("torch")
    half = getattr(torch, dtype)
    table = lc.pipnet_neighbors(PTS, num_neighbors=3)
    rng = np.random.default_rng(2)
    c = rng.uniform(-0.5, 5.4, (32, 6, 2))
    t64 = lc.encode_pipnet(torch.asarray(c), grid_size=(8, 6), neighbors=table)
    preds64 = [torch.asarray(rng.normal(size=x.shape)) for x in t64[:3]]
    th = lc.encode_pipnet(torch.asarray(c).to(half), grid_size=(8, 6), neighbors=table)
    got = lc.pipnet_loss(*[p.to(half) for p in preds64], th)
    assert got.dtype == half and bool(torch.isfinite(got))
    # Inputs rounded to half precision (rel 2^-8 for bfloat16), then one rounding of the result.
    want = lc.pipnet_loss(*[p.to(half).double() for p in preds64], lc.PIPNetTargets(*[x.to(half).double() for x in th]))
    assert float(got) == pytest.approx(float(want), rel=2 * torch.finfo(half).eps)


# -- real mean shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["wflw98", "300w68", "cofw29", "aflw19"])
@pytest.mark.parametrize("merge", MERGES)
def test_real_mean_shapes_build_and_round_trip(name, merge):
    from landmark_codecs.bench import mean_shape

    pts = mean_shape(name)
    expected_k = {"wflw98": 98, "300w68": 68, "cofw29": 29, "aflw19": 19}[name]
    assert pts.shape == (expected_k, 2)
    table = lc.pipnet_neighbors(pts, num_neighbors=10)
    np.testing.assert_array_equal(table.index, _oracle_neighbors(pts, 10))
    # Faces: the mean shape scaled, rotated and shifted in a 256 crop, on the 8x8 stride-32 grid.
    rng = np.random.default_rng(0)
    angle = rng.uniform(-0.5, 0.5, 16)
    rot = np.stack([np.stack([np.cos(angle), -np.sin(angle)], -1), np.stack([np.sin(angle), np.cos(angle)], -1)], -2)
    faces = (
        128 + (pts - 0.5) @ rot.transpose(0, 2, 1) * rng.uniform(150, 230, (16, 1, 1)) + rng.normal(0, 4, (16, 1, 2))
    )
    grid = lc.image_to_heatmap(np.clip(faces, 0, 255.9).astype(np.float32), image_size=(256, 256), heatmap_size=(8, 8))
    t = lc.encode_pipnet(grid, grid_size=(8, 8), neighbors=table)
    got, _ = lc.decode_pipnet(t.scores, t.offsets, t.neighbor_offsets, neighbors=table, merge=merge)
    np.testing.assert_allclose(got, grid, atol=1e-5, rtol=0)


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mean_shape, kwargs, error, message",
    [
        (np.zeros((5, 3)), {}, ValueError, r"mean_shape must have shape \(K, 2\).*\(5, 3\)"),
        (np.zeros(10), {}, ValueError, r"mean_shape must have shape \(K, 2\).*\(10,\)"),
        (np.zeros((1, 2)), {"num_neighbors": 1}, ValueError, "at least 2 landmarks"),
        (
            np.random.default_rng(0).random((5, 2)),
            {"num_neighbors": 5},
            ValueError,
            "num_neighbors must be less than K = 5",
        ),
        (
            np.random.default_rng(0).random((5, 2)),
            {"num_neighbors": 0},
            ValueError,
            "num_neighbors must be a positive int",
        ),
        (
            np.random.default_rng(0).random((5, 2)),
            {"num_neighbors": 2.0},
            TypeError,
            "num_neighbors must be a positive int",
        ),
        (
            np.array([[0.0, 0.0], [np.nan, 1.0], [1.0, 1.0]]),
            {"num_neighbors": 1},
            ValueError,
            r"finite.*landmarks \[1\]",
        ),
        (np.array([["a", "b"], ["c", "d"]]), {"num_neighbors": 1}, TypeError, "real numbers"),
    ],
)
def test_pipnet_neighbors_rejects(mean_shape, kwargs, error, message):
    with pytest.raises(error, match=message):
        lc.pipnet_neighbors(mean_shape, **kwargs)


def test_encode_rejects_mismatched_tables_and_sizes():
    table = lc.pipnet_neighbors(PTS, num_neighbors=3)
    with pytest.raises(ValueError, match=r"neighbors must have shape \(K, N\) with K = 5"):
        lc.encode_pipnet(COORDS[:, :5], grid_size=(8, 6), neighbors=table)
    with pytest.raises(ValueError, match=r"values must be landmark indices in \[0, 6\)"):
        lc.encode_pipnet(COORDS, grid_size=(8, 6), neighbors=np.full((6, 2), 6))
    with pytest.raises(TypeError, match="integer landmark indices"):
        lc.encode_pipnet(COORDS, grid_size=(8, 6), neighbors=np.zeros((6, 2)))
    with pytest.raises(TypeError, match="neighbors must be the table"):
        lc.encode_pipnet(COORDS, grid_size=(8, 6), neighbors=3)
    with pytest.raises(TypeError, match="grid_size must be a"):
        lc.encode_pipnet(COORDS, grid_size=8, neighbors=table)
    with pytest.raises(ValueError, match=r"weights must have shape \(2, 6\)"):
        lc.encode_pipnet(COORDS, grid_size=(8, 6), neighbors=table, weights=np.ones(6))
    # A plain list index (the repository's meanface_indices) is accepted.
    listed = lc.encode_pipnet(COORDS, grid_size=(8, 6), neighbors=table.index.tolist())
    np.testing.assert_array_equal(
        listed.neighbor_offsets, lc.encode_pipnet(COORDS, grid_size=(8, 6), neighbors=table).neighbor_offsets
    )


def test_decode_rejects_maps_that_do_not_match():
    table = lc.pipnet_neighbors(PTS, num_neighbors=3)
    s, o, nb = OUTPUTS
    with pytest.raises(ValueError, match=r"offsets must have shape \(2, 6, 2, 6, 8\)"):
        lc.decode_pipnet(s, o[..., :7], nb, neighbors=table)
    with pytest.raises(ValueError, match=r"neighbor_offsets must have shape \(2, 6, 2, 2, 6, 8\).*N = 2"):
        lc.decode_pipnet(s, o, nb, neighbors=lc.pipnet_neighbors(PTS, num_neighbors=2))
    with pytest.raises(ValueError, match="K = 6"):
        lc.decode_pipnet(s, o, nb, neighbors=lc.pipnet_neighbors(PTS[:5], num_neighbors=3))
    with pytest.raises(TypeError, match="PIPNetNeighbors table"):
        lc.decode_pipnet(s, o, nb, neighbors=table.index)
    with pytest.raises(ValueError, match="merge must be one of"):
        lc.decode_pipnet(s, o, nb, neighbors=table, merge="median")
    with pytest.raises(TypeError, match="offsets must have a real floating dtype"):
        lc.decode_pipnet(s, o.astype(np.int64), nb, neighbors=table)
    with pytest.raises(ValueError, match=r"scores must have shape \(\.\.\., K, H, W\)"):
        lc.decode_pipnet(s[0, 0], o, nb, neighbors=table)


def test_a_table_on_another_library_or_device_is_refused():
    torch = pytest.importorskip("torch")
    table = lc.pipnet_neighbors(torch.asarray(PTS), num_neighbors=3)
    with pytest.raises(ValueError, match="build it from a mean shape on the arrays' device"):
        lc.decode_pipnet(*OUTPUTS, neighbors=table)
    with pytest.raises(ValueError, match="build it from a mean shape on the arrays' device"):
        lc.encode_pipnet(torch.asarray(COORDS, device="meta"), grid_size=(8, 6), neighbors=table)


def test_loss_rejects_bad_input():
    table = lc.pipnet_neighbors(PTS, num_neighbors=3)
    t = lc.encode_pipnet(COORDS, grid_size=(8, 6), neighbors=table)
    s, o, nb = OUTPUTS
    with pytest.raises(ValueError, match=r"neighbor_offsets must have shape \(2, 6, 3, 2, 6, 8\)"):
        lc.pipnet_loss(s, o, nb[..., :4], t)
    with pytest.raises(TypeError, match="targets must be the PIPNetTargets"):
        lc.pipnet_loss(s, o, nb, t[:3])
    with pytest.raises(ValueError, match=r"score_weight must be >= 0"):
        lc.pipnet_loss(s, o, nb, t, score_weight=-1.0)
    with pytest.raises(ValueError, match="offset_weight must be finite"):
        lc.pipnet_loss(s, o, nb, t, offset_weight=math.inf)


def test_module_equals_function_and_validates_at_construction():
    torch = pytest.importorskip("torch")
    from landmark_codecs.torch import PIPNetLoss

    table = lc.pipnet_neighbors(PTS, num_neighbors=3)
    t = lc.encode_pipnet(torch.asarray(COORDS), grid_size=(8, 6), neighbors=table)
    preds = [torch.asarray(o) for o in OUTPUTS]
    module = PIPNetLoss(score_weight=3.0, offset_weight=0.5)
    assert torch.equal(module(*preds, t), lc.pipnet_loss(*preds, t, score_weight=3.0, offset_weight=0.5))
    assert "score_weight=3.0" in repr(module)
    with pytest.raises(ValueError, match="offset_weight must be >= 0"):
        PIPNetLoss(offset_weight=-0.1)


@pytest.mark.slow
def test_torch_compile_fullgraph_from_a_fresh_interpreter():
    """encode, decode (both merges) and the loss compile without a graph break, table on the device."""
    pytest.importorskip("torch")
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import torch, landmark_codecs as lc
        table = lc.pipnet_neighbors(torch.rand(20, 2, dtype=torch.float64), num_neighbors=5)
        coords = torch.rand(4, 20, 2) * 7.9 - 0.5
        def f(c):
            t = lc.encode_pipnet(c, grid_size=(8, 8), neighbors=table)
            preds = [x + 0.01 for x in t[:3]]
            mean, _ = lc.decode_pipnet(*preds, neighbors=table)
            original, _ = lc.decode_pipnet(*preds, neighbors=table, merge="original")
            return mean, original, lc.pipnet_loss(*preds, t)
        compiled = torch.compile(f, fullgraph=True, backend="aot_eager")(coords)
        eager = f(coords)
        assert all(torch.allclose(a, b) for a, b in zip(compiled, eager))
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def _repository_targets(u, index, grid):
    """The repository's targets for one face, a landmark and a neighbour at a time, from
    normalized coordinates u = x_image / W_image: corner-based cells and offsets in [0, 1)."""
    w, h = grid
    k, n = index.shape
    own, nb = np.zeros((k, 2, h, w)), np.zeros((k, n, 2, h, w))
    for i in range(k):
        cx, cy = min(max(int(np.floor(u[i, 0] * w)), 0), w - 1), min(max(int(np.floor(u[i, 1] * h)), 0), h - 1)
        own[i, :, cy, cx] = u[i, 0] * w - cx, u[i, 1] * h - cy
        for m in range(n):
            nb[i, m, :, cy, cx] = u[index[i, m], 0] * w - cx, u[index[i, m], 1] * h - cy
    return own, nb


def test_the_repository_convention_is_ours_shifted_by_half_a_cell():
    """docs/pipnet.md: legacy conversion minus 0.5 gives our grid point; its offsets are ours + 0.5."""
    rng = np.random.default_rng(5)
    table = lc.pipnet_neighbors(rng.random((12, 2)), num_neighbors=4)
    image_xy = rng.uniform(0, 255.9, (12, 2))
    own, nb = _repository_targets(image_xy / 256, table.index, (8, 8))
    x = lc.image_to_heatmap(image_xy, image_size=(256, 256), heatmap_size=(8, 8), convention="legacy") - 0.5
    t = lc.encode_pipnet(x, grid_size=(8, 8), neighbors=table)
    np.testing.assert_allclose(np.where(t.offset_weights[:, None] > 0, t.offsets + 0.5, 0.0), own, atol=1e-12)
    np.testing.assert_allclose(
        np.where(t.offset_weights[:, None, None] > 0, t.neighbor_offsets + 0.5, 0.0), nb, atol=1e-12
    )
    # A model trained on the repository's targets: subtract 0.5 from its offsets, then decode.
    coords, _ = lc.decode_pipnet(t.scores, own - 0.5, nb - 0.5, neighbors=table)
    back = lc.heatmap_to_image(coords + 0.5, image_size=(256, 256), heatmap_size=(8, 8), convention="legacy")
    np.testing.assert_allclose(back, image_xy, atol=1e-9)
