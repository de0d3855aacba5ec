"""Each hostile input an independent fuzzing run found a silent wrong result, a near-hang or an
unclear error for: a clear error naming the argument, or a documented result (tested here)."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from helpers import convert

import landmark_codecs as lc
from landmark_codecs.testing import to_numpy

torch = pytest.importorskip("torch")


# --- decode_dark on maps one pixel wide or tall -------------------------------------------


@pytest.mark.parametrize("sigma", [1.0, 3.0])
@pytest.mark.parametrize("shape", [(2000, 1, 7, 1), (2000, 1, 1, 9), (5, 1, 1, 1)])
def test_dark_on_one_pixel_wide_maps_is_deterministic_and_scale_free(shape, sigma):
    # Before: at sigma 3, NumPy and torch (and map vs 3 * map) differed on ~20 % of such maps by up to 1.5 px.
    maps = np.random.default_rng(0).random(shape)
    got = lc.decode_dark(maps, sigma=sigma)[0]
    np.testing.assert_allclose(to_numpy(lc.decode_dark(torch.tensor(maps), sigma=sigma)[0]), got, rtol=0, atol=1e-9)
    np.testing.assert_allclose(lc.decode_dark(3 * maps, sigma=sigma)[0], got, rtol=0, atol=1e-9)
    w, h = shape[-1], shape[-2]
    if w == 1:
        assert np.all(got[..., 0] == 0)
    if h == 1:
        assert np.all(got[..., 1] == 0)


def test_dark_on_a_one_pixel_wide_gaussian_recovers_the_other_axis():
    maps, _ = lc.encode_gaussian(np.array([[0.0, 3.3]]), heatmap_size=(1, 8), sigma=1.0)
    np.testing.assert_allclose(lc.decode_dark(maps, sigma=1.0)[0], [[0.0, 3.3]], atol=1e-9)


# --- the quarter shift next to -inf ---------------------------------------------------------


def test_quarter_shift_of_a_log_one_hot_map_is_the_argmax():
    one_hot = np.zeros((2, 5, 6))
    one_hot[0, 2, 3] = one_hot[1, 0, 5] = 1.0
    with np.errstate(divide="ignore"):
        logs = np.log(one_hot)
    coords, scores = lc.decode_argmax(logs, refine="quarter")
    np.testing.assert_array_equal(coords, [[3.0, 2.0], [5.0, 0.0]])
    np.testing.assert_array_equal(scores, [0.0, 0.0])
    # One -inf neighbour still shifts toward the finite one.
    logs[0, 2, 4] = -1.0
    assert lc.decode_argmax(logs, refine="quarter")[0][0].tolist() == [3.25, 2.0]


# --- PIPNet: a NaN score map moves no other landmark ---------------------------------------


def test_pipnet_nan_score_map_moves_no_other_landmark():
    rng = np.random.default_rng(3)
    mean_shape = rng.random((6, 2))
    table = lc.pipnet_neighbors(mean_shape, num_neighbors=3)
    coords = rng.uniform(0.5, 6.5, size=(6, 2))
    t = lc.encode_pipnet(coords, grid_size=(8, 8), neighbors=table)
    scores, neighbor_offsets = t.scores.copy(), t.neighbor_offsets.copy()
    scores[2, 0, 0] = np.nan
    neighbor_offsets[2] += 100.0  # whatever landmark 2 predicts, from whatever cell
    for merge in ("mean", "original", "none"):
        got, best = lc.decode_pipnet(scores, t.offsets, neighbor_offsets, neighbors=table, merge=merge)
        others = np.arange(6) != 2
        np.testing.assert_allclose(got[others], coords[others], atol=1e-9)
        assert np.isnan(got[2]).all() and np.isnan(best[2])
        assert np.all(best[others] == 1.0)


def test_pipnet_device_table_out_of_range_gives_nan_not_another_landmark():
    table = lc.pipnet_neighbors(np.random.default_rng(0).random((6, 2)), num_neighbors=3)
    for wrong in (-1, 6):
        index = torch.as_tensor(np.where(table.index == 0, wrong, table.index))
        t = lc.encode_pipnet(torch.rand(6, 2, dtype=torch.float64) * 4, grid_size=(4, 4), neighbors=index)
        bad = torch.as_tensor(table.index == 0)
        assert bool(torch.isnan(t.neighbor_offsets).any(dim=(-1, -2, -3))[bad].all())
        assert not bool(torch.isnan(t.neighbor_offsets).any(dim=(-1, -2, -3))[~bad].any())
        full = lc.PIPNetNeighbors(index, torch.as_tensor(table.reverse_index), torch.as_tensor(table.reverse_count))
        coords, _ = lc.decode_pipnet(
            torch.rand(6, 4, 4), torch.rand(6, 2, 4, 4), torch.rand(6, 3, 2, 4, 4), neighbors=full
        )
        assert bool(torch.isnan(coords).any())
    with pytest.raises(ValueError, match=r"neighbors values must be landmark indices in \[0, 6\)"):
        lc.encode_pipnet(np.zeros((6, 2)), grid_size=(4, 4), neighbors=np.where(table.index == 0, -1, table.index))


# --- losses: masked elements contribute nothing --------------------------------------------


@pytest.mark.parametrize("name", ["wing_loss", "soft_wing_loss", "adaptive_wing_loss"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_masked_non_finite_prediction_or_weight_leaves_the_loss_finite(name, bad):
    fn = getattr(lc, name)
    rng = np.random.default_rng(0)
    pred, target = rng.random((2, 3, 4, 4)), rng.random((2, 3, 4, 4))
    mask = np.ones((2, 3))
    mask[1, 2] = 0
    clean = fn(pred, target, weights=mask)
    hostile = pred.copy()
    hostile[1, 2] = bad
    extra = {}
    if name == "adaptive_wing_loss":
        extra["loss_map"] = np.ones_like(pred)
        extra["loss_map"][1, 2] = bad
    if extra:
        clean = fn(pred, target, weights=mask, loss_map=np.ones_like(pred))
    for reduction in ("mean", "sum"):
        got = fn(hostile, target, weights=mask, reduction=reduction, **extra)
        want = fn(
            pred, target, weights=mask, reduction=reduction, **({"loss_map": np.ones_like(pred)} if extra else {})
        )
        assert np.isfinite(got) and got == pytest.approx(want, rel=1e-12)
    assert clean == pytest.approx(fn(hostile, target, weights=mask, **extra), rel=1e-12)
    p = torch.tensor(hostile, requires_grad=True)
    kw = {k: torch.tensor(v) for k, v in extra.items()}
    fn(p, torch.tensor(target), weights=torch.tensor(mask), **kw).backward()
    assert bool(torch.isfinite(p.grad).all()) and bool((p.grad[1, 2] == 0).all())


def test_float16_sum_beyond_its_range_is_inf_as_documented():
    pred = np.full((1000, 100), 10.0, dtype=np.float16)
    target = np.zeros_like(pred)
    with np.errstate(over="ignore"):  # NumPy warns on the documented cast to inf
        assert np.isinf(lc.wing_loss(pred, target, reduction="sum"))
    total = lc.wing_loss(pred.astype(np.float32), target.astype(np.float32), reduction="sum")
    assert total > np.finfo(np.float16).max and np.isfinite(total)
    assert lc.wing_loss(pred, target).dtype == np.float16 and np.isfinite(lc.wing_loss(pred, target))


# --- maps that carry no information, or overflow -------------------------------------------

DECODERS = {
    "soft_argmax": lambda m, **kw: lc.decode_soft_argmax(m, **kw, logits=True),
    "soft_argmax_probabilities": lambda m, **kw: lc.decode_soft_argmax(m, logits=False, **kw),
    "rr_topk_logits": lambda m, **kw: lc.decode_randomized_rounding(m, logits=True, **kw),
    "rr_window_logits": lambda m, **kw: lc.decode_randomized_rounding(m, activation="window", logits=True, **kw),
    "rr_topk": lambda m, **kw: lc.decode_randomized_rounding(m, **kw, logits=False),
    "rr_window": lambda m, **kw: lc.decode_randomized_rounding(m, activation="window", **kw, logits=False),
}


def _batch_with(special: np.ndarray) -> np.ndarray:
    maps = np.random.default_rng(1).random((3, 5, 6))
    maps[1] = special
    return maps


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_non_finite_maps_get_the_documented_result_and_leave_others_alone(name, backend):
    decode = DECODERS[name]
    wrap = lambda a: convert(a, backend)  # noqa: E731
    alone = to_numpy(decode(wrap(np.random.default_rng(1).random((3, 5, 6))))[0])
    plus_inf = np.zeros((5, 6))
    plus_inf[3, 2] = plus_inf[4, 5] = math.inf
    coords, scores = (to_numpy(a) for a in decode(wrap(_batch_with(plus_inf))))
    assert coords[1].tolist() == [2.0, 3.0] and scores[1] == math.inf  # the first +inf pixel
    np.testing.assert_array_equal(coords[[0, 2]], alone[[0, 2]])
    coords, scores = (to_numpy(a) for a in decode(wrap(_batch_with(np.full((5, 6), -math.inf)))))
    if "logits" in name or name == "soft_argmax":
        assert np.isnan(coords[1]).all() and scores[1] == 0  # no information
    else:
        assert coords[1].tolist() == [0.0, 0.0]  # no positive value: the maximum's position
    np.testing.assert_array_equal(coords[[0, 2]], alone[[0, 2]])
    big = np.random.default_rng(2).random((5, 6))
    coords, _ = (to_numpy(a) for a in decode(wrap(_batch_with(big * np.finfo(np.float64).max))))
    assert np.isfinite(coords).all()
    if "logits" not in name and name != "soft_argmax":  # probabilities: scale-free
        np.testing.assert_allclose(coords[1], to_numpy(decode(wrap(_batch_with(big)))[0])[1], atol=1e-9)


# --- what cannot be represented, and cost bounded by the map -------------------------------

SIGMA_CALLS = {
    "encode_gaussian": lambda s: lc.encode_gaussian(np.zeros((1, 2)), heatmap_size=(4, 4), sigma=s),
    "encode_udp": lambda s: lc.encode_udp(np.zeros((1, 2)), image_size=(16, 16), heatmap_size=(4, 4), sigma=s),
    "encode_simcc": lambda s: lc.encode_simcc(np.zeros((1, 2)), image_size=(4, 4), sigma=s),
    "encode_randomized_rounding": lambda s: lc.encode_randomized_rounding(
        np.zeros((1, 2)), heatmap_size=(4, 4), expected=True, sigma=s
    ),
    "encode_soft_argmax": lambda s: lc.encode_soft_argmax(np.zeros((1, 2)), heatmap_size=(4, 4), sigma=s),
    "decode_dark": lambda s: lc.decode_dark(np.ones((1, 4, 4)), sigma=s),
    "decode_udp": lambda s: lc.decode_udp(np.ones((1, 4, 4)), image_size=(16, 16), sigma=s),
    "decode_simcc": lambda s: lc.decode_simcc(
        np.ones((1, 8)), np.ones((1, 8)), image_size=(4, 4), refine="dark", sigma=s
    ),
}


@pytest.mark.parametrize("name", sorted(SIGMA_CALLS))
@pytest.mark.parametrize("sigma", [1e-160, 1e-200, 0.05, 1e200, 2e4])
def test_unrepresentable_sigma_is_refused_by_name(name, sigma):
    with pytest.raises(ValueError, match=r"^sigma must be between 0.06 and 10000"):
        SIGMA_CALLS[name](sigma)


def test_smallest_allowed_sigma_keeps_every_in_map_landmark_visible_on_its_map():
    coords = np.array([[0.5, 0.5], [2.5, 1.5], [3.49, 3.49]], dtype=np.float32)
    maps, weights = lc.encode_gaussian(coords, heatmap_size=(4, 4), sigma=0.06)
    assert np.all(weights == 1) and np.all(maps.max(axis=(-1, -2)) > 0)


@pytest.mark.parametrize("size", [(10**30, 1), (2**21, 2**20)])
def test_sizes_beyond_any_allocation_are_refused_by_name(size):
    with pytest.raises(ValueError, match="heatmap_size must describe at most 2\\*\\*40 pixels"):
        lc.encode_gaussian(np.zeros((1, 2)), heatmap_size=size, sigma=1.0)


def _peak_bytes(call):
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_cost_is_bounded_by_the_map_not_the_options():
    maps = np.random.default_rng(0).random((6, 1, 6, 8))
    small = lc.decode_randomized_rounding(maps, activation="window", window_size=15, logits=False)
    (huge, peak) = _peak_bytes(
        lambda: lc.decode_randomized_rounding(maps, activation="window", window_size=10001, logits=False)
    )
    np.testing.assert_array_equal(huge[0], small[0])
    assert peak < 2**20  # was 4.8 GB: a 10001^2 window per landmark
    small = lc.decode_dark(maps, sigma=1000.0, kernel_size=15)
    (huge, peak) = _peak_bytes(lambda: lc.decode_dark(maps, sigma=1000.0))
    np.testing.assert_array_equal(huge[0], small[0])
    assert peak < 2**20  # was 2.3 GB
    labels = np.random.default_rng(1).random((3, 16))
    small = lc.decode_simcc(labels, labels, image_size=(8, 8), refine="dark", sigma=1000.0, kernel_size=31)
    big = lc.decode_simcc(labels, labels, image_size=(8, 8), refine="dark", sigma=1000.0, kernel_size=100001)
    np.testing.assert_array_equal(big[0], small[0])


# --- unclear errors made clear --------------------------------------------------------------

NONE_CALLS = {
    "coords": lambda: lc.encode_gaussian(None, heatmap_size=(4, 4), sigma=1.0),
    "heatmaps": lambda: lc.decode_argmax(None),
    "target": lambda: lc.wing_loss(np.ones(3), None),
    "pred": lambda: lc.adaptive_wing_loss(None, np.ones(3)),
    "scores": lambda: lc.decode_pipnet(None, None, None, neighbors=lc.pipnet_neighbors(np.eye(3, 2), num_neighbors=1)),
    "x_labels": lambda: lc.decode_simcc(None, np.ones((1, 4)), image_size=(2, 2), sigma=1.0),
}


@pytest.mark.parametrize("name", sorted(NONE_CALLS))
def test_none_for_an_array_names_the_argument(name):
    with pytest.raises(TypeError, match=rf"^{name} must be an array .*got None"):
        NONE_CALLS[name]()


@pytest.mark.parametrize("dtype", [complex, object, "U1"])
def test_weights_of_a_non_numeric_dtype_are_refused(dtype):
    visible = np.ones(2).astype(dtype)
    with pytest.raises(TypeError, match="weights must be a boolean, integer or real floating array"):
        lc.encode_gaussian(np.zeros((2, 2)), heatmap_size=(4, 4), sigma=1.0, weights=visible)


@pytest.mark.parametrize("dtype", [complex, bool, object])
def test_noise_must_be_real_floating(dtype):
    with pytest.raises(TypeError, match="noise must have a real floating dtype"):
        lc.encode_randomized_rounding(np.zeros((2, 2)), heatmap_size=(4, 4), noise=np.zeros((2, 2)).astype(dtype))


def test_truthy_strings_are_not_booleans():
    with pytest.raises(TypeError, match="expected must be True or False, got 'False'"):
        lc.encode_randomized_rounding(np.zeros((1, 2)), heatmap_size=(4, 4), expected="False")
    with pytest.raises(TypeError, match="normalize must be True or False, got 'no'"):
        lc.encode_simcc(np.zeros((1, 2)), image_size=(4, 4), sigma=1.0, normalize="no")
    with pytest.raises(TypeError, match="refine must be one of 'none', 'quarter', got None"):
        lc.decode_argmax(np.zeros((1, 2, 2)), refine=None)


def test_unordered_sizes_and_fractional_flip_indices_are_refused():
    with pytest.raises(TypeError, match="heatmap_size must be an ordered"):
        lc.encode_gaussian(np.zeros((1, 2)), heatmap_size={4, 5}, sigma=1.0)
    for bad in ([2.7, 0.2, 1.9], [True, False, 2], "abc"):
        with pytest.raises(TypeError, match="flip_index must be a sequence of int landmark indices"):
            lc.flip_horizontal(np.zeros((3, 2)), width=4, flip_index=bad)
    np.testing.assert_array_equal(
        lc.flip_horizontal(np.eye(3, 2), width=4, flip_index=np.array([2, 1, 0])), [[3.0, 0.0], [3.0, 1.0], [2.0, 0.0]]
    )


def test_torch_adapter_errors_name_the_argument():
    from landmark_codecs import torch as lct

    table = lc.pipnet_neighbors(np.random.default_rng(0).random((6, 2)), num_neighbors=3)
    with pytest.raises(TypeError, match="image_size must be a \\(width, height\\) pair"):
        lct.UDPDecoder(image_size=256, sigma=2.0)
    with pytest.raises(TypeError, match="codec 'h3r' has no option"):
        lc.get_codec("h3r", image_size=(64, 64), heatmap_size=(16, 16), noise=torch.zeros(1, 6, 2))
    for form in (table, lc.PIPNetNeighbors(*(torch.as_tensor(t) for t in table))):
        enc = lct.TargetEncoder(lc.get_codec("pipnet", image_size=(64, 64), heatmap_size=(8, 8), neighbors=form))
        want = lc.encode_pipnet(
            lc.image_to_heatmap(np.full((6, 2), 20.0), image_size=(64, 64), heatmap_size=(8, 8)),
            grid_size=(8, 8),
            neighbors=table,
        )
        np.testing.assert_allclose(
            to_numpy(enc(np.full((6, 2), 20.0)).targets.neighbor_offsets), want.neighbor_offsets, atol=1e-6
        )
    with pytest.raises(ValueError, match=r"neighbors values must be landmark indices in \[0, 6\)"):
        lc.get_codec(
            "pipnet",
            image_size=(64, 64),
            heatmap_size=(8, 8),
            neighbors=lc.PIPNetNeighbors(*(torch.as_tensor(t) - 1 for t in table)),
        )
    with pytest.raises(
        ValueError, match=r"neighbors values must be landmark indices in \[0, 6\)"
    ):  # one check, both adapters
        lct.PIPNetDecoder(lc.PIPNetNeighbors(*(torch.as_tensor(t) - 1 for t in table)))
    with pytest.raises(TypeError, match="neighbors must be the PIPNetNeighbors"):
        lc.get_codec("pipnet", image_size=(64, 64), heatmap_size=(8, 8), neighbors="abc")


def test_bfloat16_and_meta_tensors_are_read_or_refused_clearly():
    from landmark_codecs import torch as lct

    shape = torch.rand(6, 2)
    table = lc.pipnet_neighbors(shape.to(torch.bfloat16), num_neighbors=3)
    assert torch.equal(table.index, lc.pipnet_neighbors(shape.to(torch.bfloat16).float(), num_neighbors=3).index)
    np.testing.assert_array_equal(to_numpy(torch.tensor([1.5, -2.0], dtype=torch.bfloat16)), [1.5, -2.0])
    with pytest.raises(ValueError, match="mean_shape is a tensor on the meta device, which holds no values"):
        lc.pipnet_neighbors(torch.rand(6, 2, device="meta"), num_neighbors=3)
    with pytest.raises(ValueError, match="x is a tensor on the meta device, which holds no values"):
        to_numpy(torch.ones(3, device="meta"))
    with pytest.raises(ValueError, match=r"neighbors.index is a tensor on the meta device, which holds no values"):
        lct.PIPNetDecoder(lc.PIPNetNeighbors(*(t.to("meta") for t in table)))
    with pytest.raises(TypeError, match=r"neighbors.index must hold integer indices, got dtype torch.bfloat16"):
        lct.PIPNetDecoder(lc.PIPNetNeighbors(*(t.to(torch.bfloat16) for t in table)))
    decoder = lct.PIPNetDecoder(table)  # a table built from a bfloat16 mean shape
    assert decoder.index.dtype == torch.int64 and torch.equal(decoder.index.cpu(), table.index.cpu())


# --- thresholds held only by a doctest before ----------------------------------------------


def test_weighted_loss_map_default_threshold_is_strictly_0_2():
    t = np.zeros((1, 1, 5))
    t[0, 0, 2] = 0.2
    assert lc.weighted_loss_map(t).tolist() == [[[1.0] * 5]]
    t[0, 0, 2] = np.nextafter(0.2, 1.0)
    assert lc.weighted_loss_map(t).tolist() == [[[1.0, 11.0, 11.0, 11.0, 1.0]]]


def test_landmark_at_the_open_end_of_the_range_gets_weight_0_and_an_empty_map():
    w, h = 6, 4
    coords = np.array([[w - 0.5, 1.0], [1.0, h - 0.5], [np.nextafter(w - 0.5, 0.0), 1.0], [-0.5, -0.5]])
    maps, weights = lc.encode_gaussian(coords, heatmap_size=(w, h), sigma=1.0)
    assert weights.tolist() == [0.0, 0.0, 1.0, 1.0]
    assert np.all(maps[:2] == 0) and np.all(maps[2:].max(axis=(-1, -2)) > 0)


# === The second round (issue 26): silent wrong results found by an independent hostile run ===


def _peaked(seed: int = 0, shape=(2, 3, 9, 11)) -> np.ndarray:
    """Random maps with each map's maximum exactly 1."""
    maps = np.random.default_rng(seed).random(shape)
    return maps / maps.max(axis=(-2, -1), keepdims=True)


SCALE_FREE_DECODERS = {
    "rr_topk": lambda m: lc.decode_randomized_rounding(m, logits=False),
    "rr_window": lambda m: lc.decode_randomized_rounding(m, activation="window", window_size=5, logits=False),
    "soft_argmax_probabilities": lambda m: lc.decode_soft_argmax(m, logits=False),
    "soft_argmax_probabilities_beta": lambda m: lc.decode_soft_argmax(m, beta=2.5, logits=False),
    "dark": lambda m: lc.decode_dark(m, sigma=1.5),
    "argmax_quarter": lambda m: lc.decode_argmax(m, refine="quarter"),
    "moments": lambda m: lc.heatmap_moments(m).mean,
}


@pytest.mark.parametrize("name", sorted(SCALE_FREE_DECODERS))
@pytest.mark.parametrize(
    "dtype, peak",
    [
        (np.float64, 3e-310),
        (np.float64, 5e-323),
        (np.float32, 8e-40),
        (np.float64, 1e307),
        (np.float64, 1.7e308),
        (np.float32, 3e38),
    ],
)
def test_scale_free_decoders_decode_a_subnormal_or_huge_map_as_the_map(name, dtype, peak):
    # Before: a subnormal maximum made 1 / max overflow (top-k, window and probability soft-argmax
    # decoded NaN); sums of a map near the float maximum overflowed (moments: (0, 0)).
    maps = _peaked().astype(dtype)
    scaled = maps * dtype(peak)
    decode = SCALE_FREE_DECODERS[name]
    got, want = decode(scaled), decode(maps)
    got = got[0] if isinstance(got, tuple) else got
    want = want[0] if isinstance(want, tuple) else want
    assert np.isfinite(got).all(), f"{name}: {got}"
    # The scaled map holds fewer bits where it is subnormal: each value is off by at most half the
    # smallest subnormal relative to its maximum; the positions move by that times the map's extent.
    spacing = (
        float(np.finfo(dtype).smallest_subnormal) / peak
        if peak < float(np.finfo(dtype).smallest_normal)
        else float(np.finfo(dtype).eps)
    )
    tolerance = max(64 * np.finfo(dtype).eps, 4 * spacing * maps.shape[-1] * maps.shape[-2]) * maps.shape[-1]
    np.testing.assert_allclose(got, want, rtol=0, atol=tolerance)


def test_a_sigmoid_of_very_negative_logits_decodes_in_float32():
    # The finding's case: sigmoid(-90) = 8e-40 is subnormal in float32.
    logits = np.full((1, 1, 8, 8), -120.0, dtype=np.float32)
    logits[0, 0, 3, 4], logits[0, 0, 3, 5] = -90.0, -91.0
    probabilities = (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)
    assert 0 < probabilities.max() < np.finfo(np.float32).smallest_normal
    for decode in (SCALE_FREE_DECODERS["rr_topk"], SCALE_FREE_DECODERS["soft_argmax_probabilities"]):
        x, y = decode(probabilities)[0][0, 0].tolist()
        assert y == 3.0 and 4.0 < x < 4.5


HEATMAP_CODECS = ("argmax", "quarter", "dark", "udp", "h3r", "soft_argmax")


@pytest.mark.parametrize("name", HEATMAP_CODECS)
def test_a_codec_refuses_maps_of_another_size(name):
    # Before: a codec for 16x12 maps decoded 32x24 maps of (20, 30) as (40.5, 60.5), and W/H-swapped ones as (30, 20).
    logits = {"logits": False} if "logits" in lc.codec_options(name) else {}
    codec = lc.get_codec(name, image_size=(64, 48), heatmap_size=(16, 12), **logits)
    for shape in ((1, 2, 24, 32), (1, 2, 16, 12), (1, 2, 12, 15)):
        with pytest.raises(
            ValueError,
            match=rf"heatmaps must have shape \(\.\.\., K, H, W\) = \(\.\.\., K, 12, 16\) for codec '{name}' .* got shape \({shape[0]}, {shape[1]}, {shape[2]}, {shape[3]}\)",
        ):
            codec.decode(np.zeros(shape))
    assert codec.decode(np.zeros((2, 12, 16))).coords.shape == (2, 2)


def test_pipnet_and_simcc_codecs_refuse_outputs_of_another_size():
    pipnet = lc.get_codec("pipnet", image_size=(64, 48), heatmap_size=(8, 6), mean_shape="aflw19", num_neighbors=4)
    scores, offsets, neighbor_offsets = pipnet.encode(lc.mean_shape("aflw19")[None] * 40 + 4).outputs
    with pytest.raises(ValueError, match=r"scores must have shape \(\.\.\., K, Hg, Wg\) = \(\.\.\., 19, 6, 8\)"):
        pipnet.decode(scores[..., :6, :6], offsets, neighbor_offsets)
    with pytest.raises(
        ValueError, match=r"neighbor_offsets must have shape \(\.\.\., K, N, 2, Hg, Wg\) = \(\.\.\., 19, 4, 2, 6, 8\)"
    ):
        pipnet.decode(scores, offsets, neighbor_offsets[:, :, :3])
    simcc = lc.get_codec("simcc", image_size=(64, 48))
    x_labels, y_labels = simcc.encode(np.full((1, 3, 2), 20.0)).outputs
    with pytest.raises(
        ValueError, match=r"x_labels must have shape \(\.\.\., K, W \* split_ratio\) = \(\.\.\., K, 128\)"
    ):
        simcc.decode(y_labels, x_labels)


@pytest.mark.parametrize(
    "name, options",
    [
        ("dark", {"convention": "legacy"}),
        ("dark", {"convention": "udp"}),
        ("dark", {}),
        ("udp", {}),
        ("simcc", {"convention": "legacy"}),
        ("simcc", {"convention": "udp"}),
        ("h3r", {"expected": True, "convention": "udp", "logits": False}),
        ("pipnet", {"convention": "legacy", "mean_shape": "aflw19"}),
    ],
)
def test_a_keypoint_outside_the_image_gets_weight_zero_under_every_convention(name, options):
    # Before: under "legacy" and "udp" (always for the udp codec) it kept weight 1 where its
    # heatmap position fell inside the map.
    codec = lc.get_codec(
        name, image_size=(64, 48), heatmap_size=None if name == "simcc" else (16, 12), on_outside="ignore", **options
    )
    k = 19 if name == "pipnet" else 4
    keypoints = np.full((1, k, 2), 20.0)
    keypoints[0, :4] = [[-0.6, 10.0], [63.6, 10.0], [10.0, -0.51], [10.0, 47.5]]
    encoded = codec.encode(keypoints)
    assert to_numpy(encoded.weights)[0, :4].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert to_numpy(encoded.weights)[0, 4:].tolist() == [1.0] * (k - 4)
    for output in encoded.outputs:
        if output.ndim >= 3 and output.shape[1] == k and not (name == "pipnet" and output.ndim == 6):
            assert not to_numpy(output)[0, :4].any()  # an empty target


def test_the_pipnet_codec_decodes_its_own_outputs_exactly_with_a_keypoint_missing():
    # Before: the missing keypoint's all-zero score map put it in cell (0, 0), from where its
    # predictions of its neighbours moved them by 2.5-15 px.
    codec = lc.get_codec("pipnet", image_size=(256, 256), heatmap_size=(8, 8), mean_shape="wflw98")
    keypoints = lc.mean_shape("wflw98")[None] * 200 + 27.5
    damaged = keypoints.copy()
    damaged[0, 60] = np.nan
    decoded = codec.decode(*codec.encode(damaged).outputs).coords
    assert np.isnan(decoded[0, 60]).all()
    others = np.arange(98) != 60
    np.testing.assert_allclose(decoded[0, others], keypoints[0, others], rtol=0, atol=1e-9)


def test_pipnet_constant_score_map_has_no_cell_but_a_one_cell_grid_has_one():
    table = lc.pipnet_neighbors(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), num_neighbors=2)
    for grid in ((3, 2), (1, 1)):
        coords = (
            np.array([[0.2, 0.1], [0.4, 0.3], [0.0, 0.0]])
            if grid == (1, 1)
            else np.array([[0.2, 0.1], [1.4, 1.3], [2.0, 0.0]])
        )
        t = lc.encode_pipnet(coords, grid_size=grid, neighbors=table)
        scores = t.scores.copy()
        scores[1] = -7.0  # constant
        got = lc.decode_pipnet(scores, t.offsets, t.neighbor_offsets, neighbors=table).coords
        if grid == (1, 1):
            assert np.isfinite(got).all()
        else:
            assert np.isnan(got[1]).all()
            np.testing.assert_allclose(got[[0, 2]], coords[[0, 2]], atol=1e-12)


def test_metrics_give_nan_where_they_cannot_normalize_or_count():
    from landmark_codecs import metrics

    # ced at a NaN threshold: NaN (was 1.0)
    assert np.isnan(metrics.ced(np.array([0.01, 0.2]), np.array([np.nan]))).all()
    target = np.random.default_rng(0).random((2, 68, 2)) * 100
    pred = target + 1.0
    nan_eye = target.copy()
    nan_eye[0, 36] = np.nan
    # pck was 0.0 where nme is NaN (a NaN eye corner) or inf (coinciding eye corners)
    for t, eyes in ((nan_eye, None), (target, (36, 36))):
        kw = {} if eyes is None else {"eyes": eyes}
        assert np.isnan(metrics.nme(pred, t, **kw)[0]) and np.isnan(
            metrics.pck(pred, t, threshold=0.1, normalizer="inter_ocular", **kw)[0]
        )
    # a negative or infinite distance normalizes nothing (was a negative NME)
    got = metrics.nme(pred, target, normalizer=np.array([-3.0, np.inf]))
    assert np.isnan(got).all()
    # auc stays in [0, 1]: a negative error counts as a failure, a threshold beyond the dtype is its maximum
    assert float(metrics.auc(np.array([-0.5, 0.05]))) == 0.25
    assert float(metrics.failure_rate(np.array([-0.5, 0.05]))) == 0.5
    assert float(metrics.auc(np.array([0.05], dtype=np.float32), threshold=1e308)) == 1.0
    assert metrics.ced(np.array([-0.5, 0.05]), np.array([1.0])).tolist() == [0.5]


@pytest.mark.parametrize("scale", [1e300, 1e307, 1.7e308 / 200])
def test_moments_and_star_of_maps_near_the_float_maximum_are_the_maps(scale):
    maps = _peaked(3, (2, 3, 12, 16))
    coords = np.random.default_rng(1).uniform(2, 10, (2, 3, 2))
    for got, want in ((lc.heatmap_moments(maps * scale), lc.heatmap_moments(maps)),):
        np.testing.assert_allclose(got.mean, want.mean, rtol=1e-13)
        np.testing.assert_allclose(got.covariance, want.covariance, rtol=1e-12, atol=1e-12)
    for distance in ("smooth_l1", "l1", "l2", "wing"):
        want = lc.star_loss(maps, coords, distance=distance)
        np.testing.assert_allclose(lc.star_loss(maps * scale, coords, distance=distance), want, rtol=1e-12)


@pytest.mark.parametrize("v", [1e308, 1.7e308, -1.7e308])
def test_eigh_2x2_near_the_float_maximum(v):
    for m in (np.array([[v, 0.0], [0.0, v]]), np.array([[v, v / 3], [v / 3, -v]]), np.array([[v, 0.0], [0.0, v / 2]])):
        values, vectors = lc.eigh_2x2(m)
        np.testing.assert_allclose(values, np.linalg.eigvalsh(m), rtol=4 * np.finfo(float).eps)
        np.testing.assert_allclose(m @ vectors, vectors * values, rtol=0, atol=8 * np.finfo(float).eps * abs(v))
    tiny = np.array([[5e-324, 0.0], [0.0, 5e-324]])
    assert lc.eigh_2x2(tiny).eigenvalues.tolist() == [5e-324, 5e-324]  # halving first would round them to 0


def test_complex_and_bool_inputs_to_adapters_are_refused_not_cast():
    from landmark_codecs.testing import assert_lossless, assert_unbiased

    shape = lc.mean_shape("aflw19").astype(complex)
    with pytest.raises(TypeError, match="mean_shape must hold real numbers"):
        lc.get_codec("pipnet", image_size=(64, 64), heatmap_size=(8, 8), mean_shape=shape)
    coords = np.full((3, 2), 2.0)
    identity = lambda c: c  # noqa: E731
    with pytest.raises(TypeError, match="coords must hold real numbers"):
        assert_lossless(identity, identity, coords.astype(complex), atol=0.0)
    with pytest.raises(AssertionError, match="decode's coordinates must hold real numbers"):
        assert_lossless(identity, lambda c: c + 1e-3j, coords, atol=0.0)  # a broken codec fails
    with pytest.raises(TypeError, match="coords must hold real numbers"):
        assert_unbiased(lambda c, rng: c, coords.astype(complex), n_samples=3)
    with pytest.raises(AssertionError, match="sample's coordinates must hold real numbers"):
        assert_unbiased(lambda c, rng: c + 0j, coords, n_samples=3)
    with pytest.raises(TypeError, match="atol must be a non-negative finite number"):
        assert_lossless(identity, identity, coords, atol=True)
    with pytest.raises(ValueError, match="seed must be None or a non-negative int"):
        assert_unbiased(lambda c, rng: c, coords, n_samples=3, seed=-1)
    with pytest.raises(TypeError, match="x must be an array"):
        to_numpy(object())
    with pytest.raises(TypeError, match="x must be an array or a nested sequence of numbers of one shape"):
        to_numpy([[1.0, 2.0], [3.0]])


def test_heatmap_sizes_draws_no_empty_map():
    from landmark_codecs.testing import heatmap_sizes

    for bad in (dict(min_side=0), dict(min_side=-3), dict(max_side=0), dict(min_side=5, max_side=4)):
        with pytest.raises(ValueError, match=r"min_side|max_side"):
            heatmap_sizes(**bad)
    with pytest.raises(TypeError, match="min_side"):
        heatmap_sizes(min_side=1.5)


def test_torch_adapters_refuse_bool_complex_and_non_arrays_naming_them():
    from landmark_codecs import torch as lct

    encoder = lct.TargetEncoder(lc.get_codec("dark", image_size=(64, 64), heatmap_size=(16, 16)))
    with pytest.raises(TypeError, match=r"keypoints must hold real numbers .* got dtype bool"):
        encoder(np.ones((2, 3, 2), dtype=bool))  # was: 0/1 coordinates
    with pytest.raises(TypeError, match=r"keypoints must hold real numbers .* got dtype torch.bool"):
        encoder(torch.ones(2, 3, 2, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"keypoints must hold real numbers .* complex"):
        encoder(np.ones((2, 3, 2), dtype=complex))
    with pytest.raises(TypeError, match="keypoints must be an array"):
        encoder(object())  # was: AttributeError '__dlpack__'
    with pytest.raises(TypeError, match="keypoints must be an array or a nested sequence"):
        encoder([[1.0, 2.0], [3.0]])  # was: NumPy's ragged-array error
    with pytest.raises(ValueError, match="keypoints must be tensors of one shape"):
        encoder([torch.ones(3, 2), torch.ones(4, 2)])
    with pytest.raises(TypeError, match="weights must hold booleans or real numbers"):
        encoder(np.ones((2, 3, 2)), np.array([["a"] * 3] * 2))
    assert encoder(np.ones((2, 3, 2)), np.ones((2, 3), dtype=bool)).weights.dtype == torch.float32


def test_mixed_devices_are_named():
    meta = torch.zeros(2, 3, 2, device="meta")
    with pytest.raises(ValueError, match=r"all arrays must be on one device, got coords on cpu, weights on meta"):
        lc.encode_gaussian(
            torch.zeros(2, 3, 2), heatmap_size=(8, 8), sigma=1.0, weights=torch.ones(2, 3, device="meta")
        )
    with pytest.raises(ValueError, match=r"pred on meta, target on cpu"):
        lc.wing_loss(meta, torch.zeros(2, 3, 2))
    from landmark_codecs import torch as lct

    conv = lct.CoordConv2d(3, 4, 1, with_boundary=True)
    with pytest.raises(ValueError, match="boundary must be on input's device, got boundary on meta, input on cpu"):
        conv(torch.zeros(1, 3, 8, 8), torch.zeros(1, 8, 8, device="meta"))


def test_coordconv_names_what_its_input_lacks():
    from landmark_codecs import torch as lct

    conv = lct.CoordConv2d(3, 4, 1)
    with pytest.raises(
        ValueError, match=r"input must have shape \(N, C, H, W\) with C = in_channels = 3, got shape \(1, 4, 8, 8\)"
    ):
        conv(torch.zeros(1, 4, 8, 8))  # was: "expected 5 channels, got 6"
    with pytest.raises(ValueError, match="input must be at least 2x2 pixels"):
        conv(torch.zeros(1, 3, 1, 8))  # was: a message about a heatmap_size never passed
    with pytest.raises(TypeError, match=r"input must be a torch.Tensor"):
        conv(np.zeros((1, 3, 8, 8)))  # was: AttributeError


def test_pipnet_table_and_loss_targets_are_checked_by_name():
    table = lc.pipnet_neighbors(np.random.default_rng(0).random((6, 2)), num_neighbors=3)
    t = lc.encode_pipnet(np.random.default_rng(1).uniform(0, 5, (6, 2)), grid_size=(6, 6), neighbors=table)
    bad = lc.PIPNetNeighbors(table.index, table.reverse_index + 100, table.reverse_count)
    with pytest.raises(ValueError, match=r"neighbors.reverse_index values must lie in \[0, K \* N = 18\)"):
        lc.decode_pipnet(t.scores, t.offsets, t.neighbor_offsets, neighbors=bad)  # was: IndexError
    bad = lc.PIPNetNeighbors(table.index, table.reverse_index, table.reverse_count[:4])
    with pytest.raises(ValueError, match=r"neighbors.reverse_index must have shape \(K, R\)"):
        lc.decode_pipnet(t.scores, t.offsets, t.neighbor_offsets, neighbors=bad)
    wrong = t._replace(neighbor_weights=t.neighbor_weights[:, :2])
    with pytest.raises(ValueError, match=r"targets.neighbor_weights must have shape \(6, 3\)"):
        lc.pipnet_loss(t.scores, t.offsets, t.neighbor_offsets, wrong)  # was: a broadcast error


def test_seeds_are_checked_where_they_are_given():
    pytest.importorskip("mmpose", reason="the mmpose plugin needs mmpose")
    from landmark_codecs.mmpose import LandmarkCodec

    for seed, error in ((-1, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match="seed must be None or a non-negative int"):
            LandmarkCodec("h3r", input_size=(64, 64), heatmap_size=(16, 16), seed=seed, logits=False)


def test_the_mmpose_plugin_refuses_complex_and_bool_keypoints():
    pytest.importorskip("mmpose", reason="the mmpose plugin needs mmpose")
    from landmark_codecs.mmpose import LandmarkCodec

    codec = LandmarkCodec("dark", input_size=(64, 64), heatmap_size=(16, 16))
    for dtype in (complex, bool, object):
        with pytest.raises(TypeError, match="keypoints must hold real numbers"):
            codec.encode(np.ones((1, 3, 2), dtype=dtype))
    with pytest.raises(TypeError, match="keypoints_visible must hold booleans or real numbers"):
        codec.encode(np.ones((1, 3, 2)), np.ones((1, 3), dtype=complex))
    assert codec.encode(np.full((1, 3, 2), 20.0), np.array([[True, False, True]]))["keypoint_weights"].tolist() == [
        [1.0, 0.0, 1.0]
    ]
