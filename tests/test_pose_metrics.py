"""Human pose metrics: OKS by its formula, AP equal to pycocotools' COCOeval, PCKh as MPII reports it."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from helpers import convert, numpy_of

from landmark_codecs import metrics


def _people(seed: int, n: int = 60):
    rng = np.random.default_rng(seed)
    target = rng.uniform(50, 450, (n, 17, 2))
    areas = rng.uniform(500, 40000, n)
    scale = np.sqrt(areas)[:, None, None] * rng.choice([0.0, 0.02, 0.05, 0.1, 0.3], (n, 1, 1))
    pred = target + rng.normal(0, 1, target.shape) * scale
    weights = (rng.random((n, 17)) > 0.2).astype(float)
    weights[:3] = 0  # instances with no labelled keypoint: ignored
    scores = rng.choice([0.2, 0.5, 0.5, 0.9], n) + rng.choice([0.0, 1e-3], n)  # ties too
    return pred, target, areas, weights, scores


def test_oks_is_its_formula(backend):
    pred, target, areas, weights, _ = _people(0)
    var = (2 * np.array(metrics.COCO_SIGMAS)) ** 2
    e = ((pred - target) ** 2).sum(-1) / var / (areas[:, None] + np.spacing(1)) / 2
    with np.errstate(invalid="ignore"):
        want = (np.exp(-e) * (weights > 0)).sum(-1) / (weights > 0).sum(-1)
    got = numpy_of(
        metrics.oks(
            convert(pred, backend),
            convert(target, backend),
            areas=convert(areas, backend),
            weights=convert(weights, backend),
        )
    )
    np.testing.assert_allclose(got[3:], want[3:], rtol=1e-12)
    assert np.isnan(got[:3]).all()  # no labelled keypoint
    assert (
        numpy_of(metrics.oks(convert(target, backend), convert(target, backend), areas=convert(areas, backend))).min()
        == 1.0
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coco_ap_equals_pycocotools(seed):
    """One instance per image (top-down evaluation with ground-truth boxes); the predictions of
    unlabelled instances lie in their box, which COCOeval then matches to them (ignored)."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except Exception as err:
        pytest.skip(f"pycocotools is not usable here ({type(err).__name__}: {err}); pip install the peers extra")
    pred, target, areas, weights, scores = _people(seed)
    n = len(pred)
    gts, dts = [], []
    for i in range(n):
        v = np.where(weights[i] > 0, 2, 0)
        box = [float(target[i, :, 0].min()), float(target[i, :, 1].min()), 200.0, 200.0]
        gts.append(
            dict(
                id=i + 1,
                image_id=i + 1,
                category_id=1,
                iscrowd=0,
                area=float(areas[i]),
                bbox=box,
                num_keypoints=int((v > 0).sum()),
                keypoints=np.concatenate([target[i], v[:, None]], axis=1).reshape(-1).tolist(),
            )
        )
        dts.append(
            dict(
                image_id=i + 1,
                category_id=1,
                score=float(scores[i]),
                keypoints=np.concatenate([pred[i], np.ones((17, 1))], axis=1).reshape(-1).tolist(),
            )
        )
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = dict(
            images=[dict(id=i + 1) for i in range(n)], annotations=gts, categories=[dict(id=1, name="person")]
        )
        coco.createIndex()
        evaluation = COCOeval(coco, coco.loadRes(dts), "keypoints")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    ours = metrics.coco_ap(pred, target, areas=areas, scores=scores, weights=weights)
    np.testing.assert_allclose([ours.ap, ours.ap50, ours.ap75], evaluation.stats[:3], rtol=0, atol=1e-12)
    assert 0.05 < ours.ap < 0.95  # the data is neither all hits nor all misses


def test_coco_ap_edge_cases_and_errors():
    pred, target, areas, _, scores = _people(3, n=10)
    assert np.isnan(metrics.coco_ap(pred, target, areas=areas, scores=scores, weights=np.zeros((10, 17))).ap)
    assert metrics.coco_ap(target, target, areas=areas, scores=scores).ap == pytest.approx(1.0, abs=1e-12)
    damaged = pred.copy()
    damaged[4, 0] = np.nan  # a NaN prediction of a labelled keypoint: a miss, never a match
    hurt = metrics.coco_ap(damaged, target, areas=areas, scores=scores, weights=np.ones((10, 17)))
    clean = metrics.coco_ap(pred, target, areas=areas, scores=scores, weights=np.ones((10, 17)))
    assert hurt.ap <= clean.ap
    with pytest.raises(ValueError, match=r"scores must have shape \(10,\)"):
        metrics.coco_ap(pred, target, areas=areas, scores=scores[:5])
    with pytest.raises(ValueError, match=r"areas must have shape \(10,\)"):
        metrics.oks(pred, target, areas=areas[:5])
    with pytest.raises(ValueError, match="sigmas must have one value per keypoint, K = 17, got 3"):
        metrics.oks(pred, target, areas=areas, sigmas=(0.1, 0.1, 0.1))
    with pytest.raises(ValueError, match="sigmas must be positive"):
        metrics.oks(pred, target, areas=areas, sigmas=(0.0,) * 17)
    with pytest.raises(TypeError, match="sigmas must be a sequence"):
        metrics.oks(pred, target, areas=areas, sigmas="coco")


# ---------------------------------------------------------------- PCKh (MPII)


def _pckh_by_loops(pred, target, boxes, weights, threshold, excluded):
    """MPII's evaluation written out, instance by instance and joint by joint: head size 0.6 x
    the head box diagonal, a joint correct when its error over the head size is <= threshold."""
    n, k = pred.shape[:2]
    hits, counts = np.zeros(k), np.zeros(k)
    for i in range(n):
        head = 0.6 * np.hypot(*(boxes[i, 1] - boxes[i, 0]))
        for j in range(k):
            if weights[i, j] == 0 or not np.isfinite(target[i, j]).all():
                continue
            counts[j] += 1
            error = np.hypot(*(pred[i, j] - target[i, j]))
            if 0 < head < np.inf and error / head <= threshold:
                hits[j] += 1
    with np.errstate(invalid="ignore"):
        per_joint = hits / counts
    keep = [j for j in range(k) if j not in excluded]
    return hits[keep].sum() / counts[keep].sum(), per_joint


@pytest.mark.parametrize("threshold", [0.5, 0.1])
def test_pckh_is_mpiis_evaluation(backend, threshold):
    """Per joint and the reported mean (pelvis and thorax left out), equal to the loops; NaN
    predictions and a degenerate head box count as misses, unlabelled joints not at all."""
    rng = np.random.default_rng(1)
    n = 50
    target = rng.uniform(20, 300, (n, 16, 2))
    corner = rng.uniform(20, 200, (n, 2))
    boxes = np.stack([corner, corner + rng.uniform(10, 60, (n, 2))], axis=1)
    head = 0.6 * np.hypot(*(boxes[:, 1] - boxes[:, 0]).T)
    pred = target + rng.normal(0, 1, target.shape) * head[:, None, None] * rng.choice([0.1, 0.3, 0.6], (n, 16, 1))
    weights = (rng.random((n, 16)) > 0.15).astype(float)
    pred[3, 5] = np.nan
    target[4, 2] = np.nan  # unlabelled
    boxes[5, 1] = boxes[5, 0]  # a zero head box: its joints are misses
    weights[:, 11] = 0  # a joint labelled nowhere
    a = {k: convert(v, backend) for k, v in dict(pred=pred, target=target, boxes=boxes, weights=weights).items()}
    got = metrics.pckh(a["pred"], a["target"], head_boxes=a["boxes"], threshold=threshold, weights=a["weights"])
    mean, per_joint = _pckh_by_loops(pred, target, boxes, weights, threshold, metrics.MPII_UNREPORTED)
    np.testing.assert_allclose(numpy_of(got.per_joint), per_joint, rtol=1e-15, atol=0)
    np.testing.assert_allclose(float(numpy_of(got.mean)), mean, rtol=1e-15, atol=0)
    assert np.isnan(numpy_of(got.per_joint)[11]) and 0 < mean < 1
    everything = metrics.pckh(pred, target, head_boxes=boxes, threshold=threshold, weights=weights, excluded=())
    np.testing.assert_allclose(
        float(everything.mean), _pckh_by_loops(pred, target, boxes, weights, threshold, ())[0], rtol=1e-15
    )


def test_pckh_with_nothing_labelled_is_nan_and_one_instance_needs_no_batch_axis():
    target = np.zeros((16, 2))
    boxes = np.array([[0.0, 0.0], [3.0, 4.0]])
    one = metrics.pckh(target + 1.0, target, head_boxes=boxes)  # error sqrt(2) <= 0.5 * 3
    assert float(one.mean) == 1.0 and one.per_joint.shape == (16,)
    none = metrics.pckh(target, target, head_boxes=boxes, weights=np.zeros(16))
    assert np.isnan(float(none.mean)) and np.isnan(none.per_joint).all()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(head_boxes=np.zeros((3, 2))), ValueError, r"head_boxes must have shape \(2, 2, 2\)"),
        (dict(head_boxes=np.zeros((2, 2, 2)), threshold=0.0), ValueError, "threshold must be positive"),
        (
            dict(head_boxes=np.zeros((2, 2, 2)), excluded=(16,)),
            ValueError,
            r"excluded must hold joint indices in \[0, 16\)",
        ),
        (dict(head_boxes=np.zeros((2, 2, 2)), excluded=6), TypeError, "excluded must be a sequence"),
        (dict(head_boxes=np.zeros((2, 2, 2), dtype=int)), TypeError, "head_boxes must have a real floating"),
    ],
)
def test_pckh_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        metrics.pckh(np.zeros((2, 16, 2)), np.zeros((2, 16, 2)), **kwargs)


@pytest.mark.parametrize("scale", [1e200, 1e-200])
def test_pckh_is_scale_free_down_to_subnormal_and_up_to_huge_coordinates(scale):
    """Errors and head sizes are lengths (hypot, no square), so scaling the whole scene by
    1e200 or 1e-200 gives the same hits as at unit scale (squares would overflow or underflow)."""
    rng = np.random.default_rng(2)
    target = rng.uniform(0, 100, (20, 16, 2))
    pred = target + rng.normal(0, 4, target.shape)
    boxes = np.stack([target[:, 9], target[:, 9] + rng.uniform(5, 20, (20, 2))], axis=1)
    plain = metrics.pckh(pred, target, head_boxes=boxes)
    scaled = metrics.pckh(pred * scale, target * scale, head_boxes=boxes * scale)
    np.testing.assert_array_equal(scaled.per_joint, plain.per_joint)
    assert float(scaled.mean) == float(plain.mean) and 0 < float(plain.mean) < 1


def test_a_negative_area_has_no_scale_oks_nan_for_it_and_coco_ap_refuses_it(backend):
    """Before: area -100 gave OKS 5.2e14 and an AP of 1.0 for predictions 33 px off."""
    t = np.zeros((2, 17, 2))
    p = np.full((2, 17, 2), 3.0)
    got = numpy_of(
        metrics.oks(convert(p, backend), convert(t, backend), areas=convert(np.array([-100.0, 100.0]), backend))
    )
    assert np.isnan(got[0]) and 0 < got[1] < 1
    assert got[1] == pytest.approx(float(metrics.oks(p[1:], t[1:], areas=np.array([100.0]))[0]), rel=1e-12)
    for bad in (-100.0, np.nan, np.inf):
        with pytest.raises(ValueError, match=rf"areas must be finite and >= 0, got {bad!r} at instance 1"):
            metrics.coco_ap(p + 30, t, areas=np.array([100.0, bad]), scores=np.ones(2))
