"""landmark_codecs.metrics: NME, failure rate, AUC, CED and PCK against their literal
definitions, the PIPNet and STAR repositories' formulas, and their properties (scale
invariance, monotonicity), on every backend."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from helpers import convert, numpy_of
from hypothesis import given
from hypothesis import strategies as st

from landmark_codecs import metrics

EPS64 = np.finfo(np.float64).eps


def faces(seed: int, n: int = 20, k: int = 68, noise: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.uniform(20, 230, size=(n, k, 2))
    return target + rng.normal(0, noise, size=target.shape), target


def literal_nme(pred, target, norm_of, weights=None) -> list[float]:
    """One face at a time, one landmark at a time."""
    out = []
    for f in range(len(target)):
        d = norm_of(target[f])
        errors = [
            math.dist(pred[f, k], target[f, k]) for k in range(target.shape[1]) if weights is None or weights[f, k]
        ]
        out.append(sum(errors) / len(errors) / d)
    return out


NORMS = {
    "inter_ocular": lambda t: math.dist(t[36], t[45]),
    "inter_pupil": lambda t: math.dist(t[36:42].mean(axis=0), t[42:48].mean(axis=0)),
    "bbox": lambda t: math.sqrt(np.ptp(t[:, 0]) * np.ptp(t[:, 1])),
    "diagonal": lambda t: math.hypot(np.ptp(t[:, 0]), np.ptp(t[:, 1])),
}


@pytest.mark.parametrize("normalizer", sorted(NORMS))
def test_nme_is_the_literal_definition(backend, normalizer):
    pred, target = faces(0)
    got = numpy_of(metrics.nme(convert(pred, backend), convert(target, backend), normalizer=normalizer))
    np.testing.assert_allclose(got, literal_nme(pred, target, NORMS[normalizer]), rtol=64 * EPS64, atol=0)


def test_nme_with_visibility_leaves_the_invisible_out_and_an_empty_face_is_nan():
    pred, target = faces(1, n=3)
    visible = np.ones((3, 68), dtype=bool)
    visible[0, :30] = False
    visible[2] = False
    pred[0, 5] = np.nan  # an invisible landmark's NaN prediction changes nothing
    got = metrics.nme(pred, target, weights=visible)
    want = literal_nme(pred[:2], target[:2], NORMS["inter_ocular"], visible[:2])
    np.testing.assert_allclose(got[:2], want, rtol=64 * EPS64, atol=0)
    assert np.isnan(got[2])
    clean = metrics.nme(pred, target)
    pred[1, 50] = np.inf  # a visible landmark's non-finite prediction: its face only
    poisoned = metrics.nme(pred, target)
    assert np.isinf(poisoned[1])
    np.testing.assert_array_equal(poisoned[[0, 2]], clean[[0, 2]])


def test_nme_equals_the_pipnet_and_star_repositories_formulas():
    """PIPNet: mean(norm(pred - gt, axis=1)) / norm(gt[i] - gt[j]) with its indices per dataset;
    STAR: the same per face, or with pupils as the mean of index lists."""
    for k, (i, j) in {68: (36, 45), 98: (60, 72), 29: (8, 9)}.items():
        pred, target = faces(2, n=5, k=k)
        pipnet = [np.mean(np.linalg.norm(p - t, axis=1)) / np.linalg.norm(t[i] - t[j]) for p, t in zip(pred, target)]
        np.testing.assert_allclose(metrics.nme(pred, target), pipnet, rtol=64 * EPS64, atol=0)
    pred, target = faces(3, n=5, k=98)
    star = [
        np.mean(np.linalg.norm(p - t, axis=1)) / np.linalg.norm(t[[97]].mean(0) - t[[96]].mean(0))
        for p, t in zip(pred, target)
    ]
    np.testing.assert_allclose(metrics.nme(pred, target, normalizer="inter_pupil"), star, rtol=64 * EPS64, atol=0)


@given(
    scale=st.floats(0.01, 100.0),
    shift=st.tuples(st.floats(-500, 500), st.floats(-500, 500)),
    normalizer=st.sampled_from(sorted(NORMS)),
)
def test_nme_is_invariant_to_scaling_and_translating_both_faces(scale, shift, normalizer):
    pred, target = faces(4, n=4)
    base = metrics.nme(pred, target, normalizer=normalizer)
    moved = metrics.nme(scale * pred + np.array(shift), scale * target + np.array(shift), normalizer=normalizer)
    # each coordinate moves by a rounding of its own size (up to ~750 after the shift)
    np.testing.assert_allclose(moved, base, rtol=1e-10, atol=0)


def test_nme_takes_per_face_distances_and_eye_overrides():
    pred, target = faces(5, n=4)
    d = np.array([10.0, 20.0, 30.0, 40.0])
    np.testing.assert_allclose(
        metrics.nme(pred, target, normalizer=d), literal_nme(pred, target, lambda t: 1.0) / d, rtol=64 * EPS64
    )
    np.testing.assert_allclose(
        metrics.nme(pred, target, eyes=(39, 42)),
        literal_nme(pred, target, lambda t: math.dist(t[39], t[42])),
        rtol=64 * EPS64,
    )
    got = metrics.nme(pred, target, normalizer="inter_pupil", eyes=(37, (43, 44)))
    np.testing.assert_allclose(
        got, literal_nme(pred, target, lambda t: math.dist(t[37], t[43:45].mean(axis=0))), rtol=64 * EPS64
    )


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda p, t: metrics.nme(p[:, :19], t[:, :19]), ValueError, r"needs eye indices.*AFLW.*normalizer='bbox'"),
        (lambda p, t: metrics.nme(p, t, normalizer="iod"), ValueError, "normalizer must be one of"),
        (lambda p, t: metrics.nme(p, t, normalizer=[3.0]), TypeError, "normalizer must be one of .* or an array"),
        (lambda p, t: metrics.nme(p, t, normalizer=np.ones(3)), ValueError, "normalizer must broadcast"),
        (lambda p, t: metrics.nme(p, t, eyes=(36, 99)), ValueError, r"eyes must be two landmark indices in \[0, 68\)"),
        (lambda p, t: metrics.nme(p, t, normalizer="inter_pupil", eyes=((), (1,))), ValueError, "eyes must be"),
        (lambda p, t: metrics.nme(p[:, :3], t), ValueError, "pred must have shape"),
        (lambda p, t: metrics.nme(p, t, weights=np.ones(68)), ValueError, "weights must have shape"),
        (lambda p, t: metrics.failure_rate(t[..., 0], threshold=0.0), ValueError, "threshold must be positive"),
        (lambda p, t: metrics.auc(t.astype(int)[..., 0]), TypeError, "nme must have a real floating dtype"),
    ],
)
def test_metrics_bad_input(call, error, message):
    pred, target = faces(6, n=2)
    with pytest.raises(error, match=message):
        call(pred, target)


# --------------------------------------------------------------------------- FR, AUC, CED


def literal_auc(nme: np.ndarray, threshold: float) -> float:
    """The integral of the step function F(e) = #{nme <= e} / N over [0, threshold], piece by piece."""
    edges = np.concatenate([[0.0], np.sort(nme[(nme >= 0) & (nme <= threshold)]), [threshold]])
    area = sum((hi - lo) * np.count_nonzero(nme <= lo) / len(nme) for lo, hi in itertools.pairwise(edges))
    return area / threshold


@given(n=st.integers(1, 300), seed=st.integers(0, 2**16), threshold=st.sampled_from([0.05, 0.08, 0.1]))
def test_auc_failure_rate_and_ced_are_their_definitions(backend, n, seed, threshold):
    e = np.random.default_rng(seed).gamma(2.0, 0.03, size=n)
    x = convert(e, backend)
    assert float(numpy_of(metrics.auc(x, threshold=threshold))) == pytest.approx(
        literal_auc(e, threshold), rel=0, abs=64 * n * EPS64
    )
    assert float(numpy_of(metrics.failure_rate(x, threshold=threshold))) == pytest.approx(
        np.count_nonzero(e > threshold) / n, abs=4 * EPS64
    )
    t = np.linspace(0, 0.3, 31)
    np.testing.assert_allclose(
        numpy_of(metrics.ced(x, convert(t, backend))), [np.count_nonzero(e <= v) / n for v in t], rtol=0, atol=4 * EPS64
    )


def test_star_repository_fr_and_sampled_auc_measured_against_the_exact_ones():
    """STAR: xs = np.arange(0, thres + step, step), fr = 1 - F(xs[-1]), auc = simps(F(xs)) / thres.

    - np.arange overshoots for thres = 0.05, STAR's 300W default: its last sample is 0.0501, so
      its FR@0.05 is our failure rate at 0.0501 (a face with NME in (0.05, 0.0501] is not a
      failure there), and its AUC integrates up to 0.0501 while dividing by 0.05.
    - Apart from that, the sampled Simpson integral differs from the exact one by at most
      (4/3) step / thres (a Simpson weight of 4/3 on a sample next to each jump of F, the jumps
      summing to at most 1). Measured: the error is real, not rounding."""
    scipy_integrate = pytest.importorskip("scipy.integrate")
    step = 1e-4
    worst = 0.0
    for seed in range(20):
        e = np.random.default_rng(seed).gamma(2.0, 0.02, size=500)
        for thres in (0.05, 0.08, 0.1):
            xs = np.arange(0, thres + step, step)
            ys = np.array([np.count_nonzero(e <= x) for x in xs]) / len(e)
            end = float(xs[-1])
            assert metrics.failure_rate(e, threshold=end) == pytest.approx(1.0 - ys[-1], abs=4 * EPS64)
            sampled = scipy_integrate.simpson(ys, x=xs) / thres
            exact_same_range = float(metrics.auc(e, threshold=end)) * end / thres
            diff = abs(sampled - exact_same_range)
            assert diff <= (4 / 3) * step / thres + 1e-12
            worst = max(worst, diff)
    assert worst > 1e-5
    assert np.arange(0, 0.05 + step, step)[-1] > 0.05  # the overshoot, on this NumPy as on others


@pytest.mark.parametrize("threshold", [0.05, 0.08, 0.1])
def test_simpson_auc_reproduces_the_face_alignment_codes(backend, threshold):
    """``auc(integration="simpson")`` is PIPNet's and STAR's evaluation run today: the CED at
    ``np.arange(0, t + step, step)``, ``scipy.integrate.simpson`` (``simps`` is gone from SciPy
    1.14), over ``t``. Equal to 1e-12 (only the summation order differs), for grids of an odd
    (0.05, 0.08: 501 and 801 samples) and an even (0.1: 1002) number of samples; and the exact
    AUC differs from it, by at most (4/3) step / t beyond the overshoot."""
    scipy_integrate = pytest.importorskip("scipy.integrate")
    step = 1e-4
    for seed in range(5):
        e = np.random.default_rng(seed).gamma(2.0, 0.02, size=400)
        e[:3] = [np.nan, -0.01, 0.0]  # failures, and a perfect face
        xs = np.arange(0, threshold + step, step)
        # their CED, with the library's rule for a negative NME (a broken computation: a failure)
        ys = np.array([np.count_nonzero((e >= 0) & (e <= x)) for x in xs]) / len(e)
        theirs = scipy_integrate.simpson(ys, x=xs) / threshold
        ours = float(numpy_of(metrics.auc(convert(e, backend), threshold=threshold, integration="simpson")))
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-12)
        end = float(xs[-1])
        exact_same_range = float(metrics.auc(e, threshold=end)) * end / threshold
        assert abs(ours - exact_same_range) <= (4 / 3) * step / threshold + 1e-12


def test_simpson_auc_bounds_its_sample_count():
    with pytest.raises(ValueError, match="step must leave at most 10000000 samples"):
        metrics.auc(np.array([0.01]), integration="simpson", step=1e-12)
    # a subnormal step: the count is inf, named as such (was OverflowError from math.ceil)
    with pytest.raises(ValueError, match=r"step must leave at most 10000000 samples.*inf samples"):
        metrics.auc(np.array([0.01]), integration="simpson", step=5e-324)
    with pytest.raises(ValueError, match="integration must be one of"):
        metrics.auc(np.array([0.01]), integration="trapezoid")


@pytest.mark.parametrize("step", [0.5, 0.03, 0.0500001 / 2])
def test_simpson_auc_refuses_a_step_that_leaves_no_simpson_panel(step):
    """A step above threshold / 2 leaves fewer than three samples on [0, threshold]: the 'AUC' was
    the grid's overshoot (2.5 for step 0.5 at 0.05, 1.2 for 0.03)."""
    with pytest.raises(ValueError, match=r"step must be at most threshold / 2 = 0\.025"):
        metrics.auc(np.array([0.05]), threshold=0.05, integration="simpson", step=step)
    assert 0 <= float(metrics.auc(np.array([0.05]), threshold=0.05, integration="simpson", step=0.025)) <= 1


@given(
    errors=st.lists(st.floats(-0.01, 0.2) | st.just(math.nan), min_size=1, max_size=30),
    threshold=st.sampled_from([0.05, 0.08, 0.1, 0.3]),
    panels=st.integers(2, 400),
)
def test_simpson_auc_lies_between_0_and_the_grids_last_sample_over_threshold(errors, threshold, panels):
    """The Returns line: in [0, x_last / threshold], x_last the grid's last sample; every face at
    NME 0 scores exactly that (Simpson integrates a constant exactly), 1.002 at 0.05."""
    step = threshold / panels
    e = np.array(errors)
    last = float(np.arange(0.0, threshold + step, step)[-1])
    got = float(metrics.auc(e, threshold=threshold, integration="simpson", step=step))
    assert -1e-12 <= got <= last / threshold + 1e-12
    perfect = float(metrics.auc(np.zeros(3), threshold=threshold, integration="simpson", step=step))
    assert perfect == pytest.approx(last / threshold, rel=1e-12)


def test_simpson_auc_at_the_default_step_scores_a_perfect_050_as_the_codes_do():
    assert float(metrics.auc(np.zeros(4), threshold=0.05, integration="simpson")) == pytest.approx(1.002, rel=1e-12)


def test_simpson_auc_on_a_subnormal_grid_is_the_exact_one():
    """Steps in units of threshold: a subnormal threshold's grid gives 1 for perfect faces, to
    rounding (was NaN: a product of two subnormal steps is 0, then 0 / 0)."""
    threshold = 4 * 5e-324
    step = threshold / 2
    got = float(metrics.auc(np.zeros(2), threshold=threshold, integration="simpson", step=step))
    last = float(np.arange(0.0, threshold + step, step)[-1])
    assert got == pytest.approx(last / threshold, rel=4 * EPS64)


def test_nan_nme_is_a_failure_and_adds_no_area():
    e = np.array([0.01, np.nan, 0.2, 0.05])
    assert metrics.failure_rate(e).item() == 0.5
    assert metrics.auc(e).item() == pytest.approx((0.09 + 0.05) / 4 / 0.1, abs=1e-15)
    assert metrics.ced(e, np.array([0.1, np.inf])).tolist() == [0.5, 1.0]  # NaN counts as +inf
    for empty in (metrics.auc(np.zeros(0)), metrics.failure_rate(np.zeros(0))):
        assert np.isnan(empty)


@given(seed=st.integers(0, 2**16))
def test_monotone_in_the_threshold_and_in_the_errors(seed):
    e = np.random.default_rng(seed).gamma(2.0, 0.03, size=50)
    ts = [0.02, 0.05, 0.08, 0.1, 0.2]
    fr = [float(metrics.failure_rate(e, threshold=t)) for t in ts]
    area = [float(metrics.auc(e, threshold=t)) for t in ts]
    assert fr == sorted(fr, reverse=True) and area == sorted(area)
    worse = e * 1.5
    assert metrics.auc(worse) <= metrics.auc(e) and metrics.failure_rate(worse) >= metrics.failure_rate(e)
    curve = metrics.ced(e, np.linspace(0, 1, 101))
    assert (np.diff(curve) >= 0).all() and curve[-1] == 1.0


# --------------------------------------------------------------------------- PCK


def test_pck_is_the_literal_definition(backend):
    pred, target = faces(7, n=6, k=17, noise=8.0)
    visible = np.random.default_rng(7).random((6, 17)) > 0.2
    got = numpy_of(
        metrics.pck(convert(pred, backend), convert(target, backend), threshold=0.05, weights=convert(visible, backend))
    )
    want = []
    for f in range(6):
        box = math.sqrt(np.ptp(target[f][visible[f], 0]) * np.ptp(target[f][visible[f], 1]))
        hits = [math.dist(pred[f, k], target[f, k]) <= 0.05 * box for k in range(17) if visible[f, k]]
        want.append(sum(hits) / len(hits))
    np.testing.assert_allclose(got, want, rtol=0, atol=4 * EPS64)


def test_metrics_run_on_torch_with_the_device_and_dtype_kept():
    torch = pytest.importorskip("torch")
    pred, target = faces(8, n=3)
    p, t = torch.asarray(pred, dtype=torch.float32), torch.asarray(target, dtype=torch.float32)
    e = metrics.nme(p, t)
    assert e.dtype == torch.float32 and e.shape == (3,)
    assert metrics.auc(e).dtype == torch.float32 and metrics.ced(e, torch.linspace(0, 0.2, 5)).shape == (5,)


def test_a_box_without_a_visible_point_has_no_size():
    target = np.random.default_rng(9).uniform(0, 100, size=(2, 5, 2))
    visible = np.array([[True] * 5, [False] * 5])
    for normalizer in ("bbox", "diagonal"):
        d = metrics.normalizing_distance(target, normalizer=normalizer, weights=visible)
        assert np.isfinite(d[0]) and np.isnan(d[1])
        empty = metrics.normalizing_distance(np.zeros((3, 0, 2)), normalizer=normalizer)  # K = 0
        assert empty.shape == (3,) and np.isnan(empty).all()
