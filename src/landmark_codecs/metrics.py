"""Evaluation as face alignment and pose papers report it: NME, failure rate, the area under the
cumulative error distribution (computed exactly), the CED curve and PCK, on every backend.

Repositories compute these by hand, often with ``scipy.integrate.simps`` on a sampled CED (removed
from SciPy in 1.14). The CED of ``N`` faces is a step function, so its integral has a closed form:
``auc`` uses it (no sampling, no SciPy).

Convention:
    ``pred`` and ``target`` are ``(..., K, 2)`` ``(x, y)`` in any one unit (image pixels usually);
    NME is a fraction (multiply by 100 for the percent papers print). The default eye indices
    follow the layouts' usual order (300W 68, WFLW 98, COFW 29).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from . import _validation as check
from . import _xp
from ._xp import Array

Normalizer = Literal["inter_ocular", "inter_pupil", "bbox", "diagonal"]

__all__ = [
    "COCO_SIGMAS",
    "EYE_CONTOURS",
    "EYE_CORNERS",
    "MPII_UNREPORTED",
    "CocoAP",
    "PCKh",
    "auc",
    "ced",
    "coco_ap",
    "failure_rate",
    "nme",
    "normalizing_distance",
    "oks",
    "pck",
    "pckh",
]

#: COCO's per-keypoint OKS constants, in COCO's 17-keypoint order (nose, left/right eye, ear,
#: shoulder, elbow, wrist, hip, knee, ankle), as pycocotools' ``COCOeval`` sets them.
COCO_SIGMAS: tuple[float, ...] = tuple(
    v / 10.0
    for v in (0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89)
)

#: MPII's pelvis and thorax (joints 6 and 7 of its 16), which its reported mean PCKh leaves out.
MPII_UNREPORTED: tuple[int, ...] = (6, 7)
#: MPII's head size: this share of the head box's diagonal (the evaluation's ``SC_BIAS``).
_MPII_HEAD_SHARE = 0.6

# Outer eye corners (the inter-ocular normalization of 300W, WFLW and COFW papers).
EYE_CORNERS: dict[int, tuple[int, int]] = {68: (36, 45), 98: (60, 72), 29: (8, 9)}
# Each eye's points whose mean is the eye centre (inter-pupil): 300W's two eye contours, WFLW's
# and COFW's pupil landmarks.
EYE_CONTOURS: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {
    68: (tuple(range(36, 42)), tuple(range(42, 48))),
    98: ((96,), (97,)),
    29: ((16,), (17,)),
}
_NORMALIZERS = ("inter_ocular", "inter_pupil", "bbox", "diagonal")


def normalizing_distance(
    target: Array,
    /,
    *,
    normalizer: Normalizer = "inter_ocular",
    weights: Array | None = None,
    eyes: Sequence[Any] | None = None,
) -> Array:
    """The per-face distance an NME divides by, from the ground truth ``(..., K, 2)``.

    - ``"inter_ocular"``: between the outer eye corners ``eyes = (i, j)``; by default 300W 68
      (36, 45), WFLW 98 (60, 72), COFW 29 (8, 9).
    - ``"inter_pupil"``: between the eye centres, each the mean of its points
      ``eyes = (left_indices, right_indices)``; by default 300W's eye contours (36-41, 42-47),
      WFLW's pupils (96, 97), COFW's pupils (16, 17).
    - ``"bbox"``: ``sqrt(width * height)`` of the ground truth's bounding box (over its points with a
      weight > 0 and finite coordinates), the AFLW convention.
    - ``"diagonal"``: ``sqrt(width^2 + height^2)`` of that box.

    A box without such a point (or ``K = 0``) has no size: NaN, for that face only.

    AFLW's 19 points and other layouts have no default eyes: use ``"bbox"`` (what AFLW results
    are normalized by) or pass ``eyes``.

    Returns:
        ``(...)`` distances in ``target``'s unit, dtype and device.
    """
    check.choice(normalizer, "normalizer", _NORMALIZERS)
    xp = _xp.namespace(target=target, weights=weights)
    check.coords(xp, target, "target")
    _check_weights(xp, target, weights)
    indices = _eye_indices(normalizer, eyes, target.shape[-2])
    return _xp.in_float32(xp, _distance, target, normalizer=normalizer, weights=weights, indices=indices)


def _eye_indices(normalizer: str, eyes: Any, k: int) -> Any:
    """The eye indices ``normalizer`` reads, checked against K (None for the box normalizers)."""
    if normalizer in ("bbox", "diagonal"):
        return None
    if normalizer == "inter_ocular":
        found: Any = _eye_pair(eyes, k) if eyes is not None else EYE_CORNERS.get(k)
    else:
        found = _eye_groups(eyes, k) if eyes is not None else EYE_CONTOURS.get(k)
    if found is None:
        raise ValueError(_no_eyes(k, normalizer))
    return found


def _distance(xp: Any, target: Array, *, normalizer: str, weights: Array | None, indices: Any) -> Array:
    """Kernel of :func:`normalizing_distance` (target, weights and eye indices checked)."""
    k = target.shape[-2]
    if normalizer in ("bbox", "diagonal"):
        keep = _kept(xp, target, weights)
        if k == 0:  # no landmark, no box
            return xp.full(tuple(target.shape[:-2]), math.nan, dtype=target.dtype, device=_xp.device(target))
        inf = xp.asarray(math.inf, dtype=target.dtype, device=_xp.device(target))
        low = xp.min(xp.where(keep[..., None], target, inf), axis=-2)
        high = xp.max(xp.where(keep[..., None], target, -inf), axis=-2)
        seen = xp.any(keep, axis=-1)
        zero = xp.zeros_like(low[..., 0])
        # a box of no point (inf - -inf) is given size 0 before the roots, NaN after
        w = xp.where(seen, high[..., 0] - low[..., 0], zero)
        h = xp.where(seen, high[..., 1] - low[..., 1], zero)
        # sqrt(w) sqrt(h) and hypot: no square under- or overflows for boxes of any finite size
        size = xp.sqrt(w) * xp.sqrt(h) if normalizer == "bbox" else xp.hypot(w, h)
        nan = xp.asarray(math.nan, dtype=target.dtype, device=_xp.device(target))
        return xp.where(seen, size, nan)
    if normalizer == "inter_ocular":
        pair = indices
        left, right = target[..., pair[0], :], target[..., pair[1], :]
    else:
        groups = indices
        left = xp.mean(xp.stack([target[..., i, :] for i in groups[0]], axis=-2), axis=-2)
        right = xp.mean(xp.stack([target[..., i, :] for i in groups[1]], axis=-2), axis=-2)
    d = left - right
    return xp.hypot(d[..., 0], d[..., 1])


def _no_eyes(k: int, normalizer: str) -> str:
    known = "68 (300W), 98 (WFLW) and 29 (COFW)"
    extra = (
        " AFLW's 19-point results are normalized by the face box: normalizer='bbox' (or pass the boxes' sizes as an array)."
        if k == 19
        else ""
    )
    return f"normalizer={normalizer!r} needs eye indices: the defaults cover {known} landmarks, got K={k}; pass eyes=.{extra}"


def _eye_pair(eyes: Any, k: int) -> tuple[int, int]:
    try:
        i, j = check.indices(eyes, k)
    except (TypeError, ValueError) as err:
        raise type(err)(
            f"eyes must be two landmark indices in [0, {k}) for normalizer='inter_ocular', got {eyes!r}"
        ) from None
    return i, j


def _eye_groups(eyes: Any, k: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    try:
        left, right = eyes
        groups = tuple(check.indices(g if isinstance(g, Sequence) else (g,), k) for g in (left, right))
        if not all(groups):
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(
            f"eyes must be (left, right), each an index or a non-empty sequence of indices in [0, {k}), for normalizer='inter_pupil', got {eyes!r}"
        ) from None
    return groups  # type: ignore[return-value]


def _check_weights(xp: Any, target: Array, weights: Array | None) -> None:
    if weights is not None:
        check.numeric(xp, weights, "weights")
        check.same_shape(weights, target.shape[:-1], "weights", "target.shape[:-1], one value per landmark")


def _kept(xp: Any, target: Array, weights: Array | None) -> Array:
    """The landmarks a metric counts (weights checked): finite ground truth of weight > 0."""
    keep = xp.all(xp.isfinite(target), axis=-1)
    if weights is not None:
        keep = keep & _xp.marked(xp, weights)
    return keep


def _check_points(pred: Array, target: Array, weights: Array | None, normalizer: Any, eyes: Any) -> tuple[Any, Any]:
    """nme's and pck's checks: ``(xp, indices)``, the eye indices a named normalizer reads."""
    # an array of distances shares the namespace (a name is not asked: is_array's check would be
    # traced by torch.compile, with a warning)
    given = None if isinstance(normalizer, str) or not _xp.is_array(normalizer) else normalizer
    xp = _xp.namespace(pred=pred, target=target, weights=weights, normalizer=given)
    check.coords(xp, pred, "pred")
    check.coords(xp, target, "target")
    check.same_shape(pred, tuple(target.shape), "pred", "target's shape")
    _check_weights(xp, target, weights)
    if isinstance(normalizer, str):
        check.choice(normalizer, "normalizer", _NORMALIZERS)
        return xp, _eye_indices(normalizer, eyes, target.shape[-2])
    if given is None:
        raise TypeError(
            f"normalizer must be one of {', '.join(map(repr, _NORMALIZERS))} or an array of per-face distances, got {normalizer!r}"
        )
    check.floating(xp, given, "normalizer")
    check.broadcasts_to(given, tuple(target.shape[:-2]), "normalizer", "one distance per face, target.shape[:-2]")
    return xp, None


def _point_errors(
    xp: Any, pred: Array, target: Array, weights: Array | None, normalizer: Any, indices: Any
) -> tuple[Array, Array, Array]:
    """``(errors (..., K), keep (..., K), distance (...))`` for nme and pck (inputs checked)."""
    if isinstance(normalizer, str):
        distance = _distance(xp, target, normalizer=normalizer, weights=weights, indices=indices)
    else:
        distance = normalizer
    keep = _kept(xp, target, weights)
    d = pred - target
    errors = xp.hypot(d[..., 0], d[..., 1])  # no square under- or overflows
    if distance.dtype != errors.dtype:
        distance = xp.astype(distance, errors.dtype)
    # A distance that is not positive and finite (coinciding or NaN eye corners, a negative or
    # infinite one given) normalizes nothing: that face's NME and PCK are NaN.
    usable = (distance > 0) & (distance < math.inf)
    distance = xp.where(usable, distance, xp.asarray(math.nan, dtype=errors.dtype, device=_xp.device(errors)))
    return errors, keep, distance


@_xp.non_finite_settled
def nme(
    pred: Array,
    target: Array,
    /,
    *,
    normalizer: Normalizer | Array = "inter_ocular",
    weights: Array | None = None,
    eyes: Sequence[Any] | None = None,
) -> Array:
    """Normalized mean error per face: the mean point-to-point distance over the kept landmarks,
    divided by the face's normalizing distance, as a fraction.

    ``nme = mean_{k kept} |pred_k - target_k| / d`` with ``d`` from :func:`normalizing_distance`
    (``normalizer`` names it) or given as an array of per-face distances. Landmarks of weight <= 0 or NaN and
    those whose ground truth is not finite are left out of the mean (COFW's occluded points are
    usually kept: pass no ``weights`` then). A face with no landmark left gives NaN; a NaN
    prediction of a counted landmark makes its face NaN (and :func:`failure_rate` counts it);
    so does a normalizing distance that is not positive and finite (eye corners that coincide or
    are NaN, a negative or infinite distance given): it normalizes nothing.

    Args:
        pred, target: ``(..., K, 2)`` ``(x, y)`` in one unit.
        normalizer: ``"inter_ocular"``, ``"inter_pupil"``, ``"bbox"``, ``"diagonal"`` or a
            ``(...)`` array of distances in the coordinates' unit.
        weights: optional ``(..., K)`` landmark weights, as the encoders return them (bool or
            numeric): a landmark of weight <= 0 or NaN is left out; the others count equally.
        eyes: override the default eye indices (see :func:`normalizing_distance`).

    Returns:
        ``(...)`` NME per face, in the promoted dtype and on the device of the inputs.

    >>> import numpy as np
    >>> target = np.zeros((1, 68, 2)); target[0, 45, 0] = 100.0     # eye corners 100 px apart
    >>> pred = target + np.array([3.0, 4.0])                       # every point 5 px off
    >>> nme(pred, target).tolist()
    [0.05]
    """
    xp, indices = _check_points(pred, target, weights, normalizer, eyes)
    return _xp.in_float32(xp, _nme, pred, target, weights=weights, normalizer=normalizer, indices=indices)


def _nme(xp: Any, pred: Array, target: Array, *, weights: Array | None, normalizer: Any, indices: Any) -> Array:
    errors, keep, distance = _point_errors(xp, pred, target, weights, normalizer, indices)
    zero = xp.zeros((), dtype=errors.dtype, device=_xp.device(errors))
    total = xp.sum(xp.where(keep, errors, zero), axis=-1)
    count = xp.sum(xp.astype(keep, errors.dtype), axis=-1)
    return total / count / distance


def failure_rate(nme: Array, /, *, threshold: float = 0.1) -> Array:
    """The fraction of faces whose NME exceeds ``threshold`` (FR@0.1 by default; 300W papers
    also report 0.08 and 0.05). A NaN NME (an unusable prediction) counts as a failure, and so
    does a negative one (an error is a distance: a negative one comes from a broken computation).

    Args:
        nme: ``(N,)`` (or any shape: all entries are faces) NME fractions, e.g. :func:`nme`'s.
        threshold: > 0.

    Returns:
        A 0-d array in ``nme``'s dtype and device; NaN for an empty input.

    >>> import numpy as np
    >>> failure_rate(np.array([0.02, 0.05, 0.12, 0.3])).item()
    0.5
    """
    xp, threshold = _errors_and_threshold(nme, threshold)
    return _xp.in_float32(xp, _failure_rate, nme, threshold=threshold)


def _failure_rate(xp: Any, nme: Array, *, threshold: float) -> Array:
    return (
        xp.mean(xp.astype(~_at_most(nme, threshold), nme.dtype))  # no Python float: NumPy 1 would promote
        if _size(nme)
        else xp.asarray(math.nan, dtype=nme.dtype, device=_xp.device(nme))
    )


def auc(
    nme: Array,
    /,
    *,
    threshold: float = 0.1,
    integration: Literal["exact", "simpson"] = "exact",
    step: float = 1e-4,
) -> Array:
    """The area under the cumulative error distribution on ``[0, threshold]``, divided by
    ``threshold`` (AUC@0.1 by default), computed exactly (or as face-alignment codes sample it).

    The CED is ``F(e) = #{faces with NME <= e} / N``, a step function, so::

        AUC = (1 / threshold) * integral_0^threshold F(e) de = mean(max(1 - nme / threshold, 0))

    with no sampling of ``e``. ``integration="simpson"`` computes what PIPNet's and STAR's
    evaluation codes report, to reproduce their figures: ``F`` sampled at
    ``numpy.arange(0, threshold + step, step)`` (a grid whose last sample can pass
    ``threshold``: 0.0501 for 0.05), integrated by Simpson's rule as ``scipy.integrate.simpson``
    does (SciPy >= 1.11, Cartwright's correction for an even number of samples; SciPy removed
    the ``simps`` those codes call in 1.14), divided by ``threshold``. It differs from the exact
    area by up to ``(4/3) step / threshold`` plus the overshoot (docs/metrics.md measures it). A
    NaN or negative NME contributes 0, as a failure does.

    Args:
        nme: NME fractions of the faces, any shape.
        threshold: > 0.
        integration: ``"exact"`` or ``"simpson"`` (the sampled rule above).
        step: the sampling step of ``"simpson"``: at most ``threshold / 2`` (Simpson's rule needs
            three samples on ``[0, threshold]``), leaving at most 10^7 samples.

    Returns:
        A 0-d array in ``nme``'s dtype and device; NaN for an empty input. ``"exact"``: in
        [0, 1]. ``"simpson"``: in ``[0, x_last / threshold]`` with ``x_last < threshold + step``
        the grid's last sample: what the codes print, so every face at NME 0 scores
        ``x_last / threshold`` (1.002 for threshold 0.05 at the default step), not 1.

    >>> import numpy as np
    >>> round(auc(np.array([0.0, 0.05, 0.2])).item(), 12)   # (0.1 + 0.05 + 0) / 3 / 0.1
    0.5
    """
    check.choice(integration, "integration", ("exact", "simpson"))
    step = check.positive(step, "step")
    xp, threshold = _errors_and_threshold(nme, threshold)
    if integration == "simpson":
        _check_simpson_step(threshold, step)
    return _xp.in_float32(xp, _auc, nme, threshold=threshold, integration=integration, step=step)


def _auc(xp: Any, nme: Array, *, threshold: float, integration: str, step: float) -> Array:
    if not _size(nme):
        return xp.asarray(math.nan, dtype=nme.dtype, device=_xp.device(nme))
    if integration == "simpson":
        return _simpson_auc(xp, nme, threshold, step)
    zero = xp.zeros((), dtype=nme.dtype, device=_xp.device(nme))
    area = xp.where(_at_most(nme, threshold), 1.0 - nme / threshold, zero)  # NaN and negative: 0
    return xp.mean(area)


_MAX_SAMPLES = 10**7


def _check_simpson_step(threshold: float, step: float) -> None:
    if not step <= threshold / 2:
        raise ValueError(
            f"step must be at most threshold / 2 = {threshold / 2!r} (Simpson's rule needs three "
            f"samples of the CED on [0, threshold]), got step={step!r}"
        )
    ratio = (threshold + step) / step  # a float first: a subnormal step's ratio is inf, not a count
    if not ratio <= _MAX_SAMPLES:
        raise ValueError(
            f"step must leave at most {_MAX_SAMPLES} samples of the CED on [0, threshold + step), "
            f"got step={step!r} for threshold={threshold!r} ({ratio:.3g} samples)"
        )


def _simpson_auc(xp: Any, nme: Array, threshold: float, step: float) -> Array:
    """:func:`auc`'s ``"simpson"`` integration: the CED sampled on NumPy's ``arange`` grid, then
    the composite Simpson rule for (slightly) irregular samples, per pair of intervals
    ``(h0 + h1) / 6 ((2 - h1 / h0) y0 + (h0 + h1)^2 / (h0 h1) y1 + (2 - h0 / h1) y2)``; with an
    even number of samples the last interval is added by Cartwright's three-point correction
    (``scipy.integrate.simpson``'s rule since SciPy 1.11).

    The steps are taken in units of ``threshold`` (so the result needs no division by it), which
    keeps them normal numbers where the grid itself is subnormal, or below ``nme``'s dtype."""
    grid = np.arange(0.0, threshold + step, step)  # NumPy's grid, as the codes build it
    n = grid.shape[0]  # >= 3: step <= threshold / 2
    dev = _xp.device(nme)
    ys = _ced(xp, nme, xp.asarray(grid, dtype=nme.dtype, device=dev))
    units = xp.asarray(grid / threshold, dtype=nme.dtype, device=dev)
    h = units[1:] - units[:-1]
    odd = n if n % 2 else n - 1  # the samples Simpson's pairs cover
    h0, h1 = h[0 : odd - 1 : 2], h[1 : odd - 1 : 2]
    y0, y1, y2 = ys[0 : odd - 2 : 2], ys[1 : odd - 1 : 2], ys[2:odd:2]
    total = h0 + h1
    area = xp.sum(total / 6.0 * ((2.0 - h1 / h0) * y0 + total * total / (h0 * h1) * y1 + (2.0 - h0 / h1) * y2))
    if n % 2 == 0:
        a, b = h[-2], h[-1]
        alpha = (2 * b * b + 3 * a * b) / (6 * (a + b))
        beta = (b * b + 3 * a * b) / (6 * a)
        eta = b * b * b / (6 * a * (a + b))
        area = area + alpha * ys[-1] + beta * ys[-2] - eta * ys[-3]
    return area


def ced(nme: Array, thresholds: Array, /) -> Array:
    """The cumulative error distribution: for each threshold, the fraction of faces with
    NME <= it. A NaN or negative NME counts as +inf (above every finite threshold), as in
    :func:`failure_rate`; a NaN threshold gets a NaN fraction.

    Args:
        nme: NME fractions of the faces, any shape.
        thresholds: error levels, any shape, on ``nme``'s library and device.

    Returns:
        ``thresholds``' shape, fractions in [0, 1], in ``nme``'s dtype; NaN for no faces.

    >>> import numpy as np
    >>> ced(np.array([0.02, 0.05, 0.12, 0.3]), np.array([0.0, 0.05, 0.1, 1.0])).tolist()
    [0.0, 0.5, 0.5, 1.0]
    """
    xp = _xp.namespace(nme=nme, thresholds=thresholds)
    check.floating(xp, nme, "nme")
    check.floating(xp, thresholds, "thresholds")
    nme, thresholds = check.promoted(xp, nme, thresholds)
    return _xp.in_float32(xp, _ced, nme, thresholds)


def _ced(xp: Any, nme: Array, thresholds: Array) -> Array:
    """Kernel of :func:`ced` (both arrays checked, of one dtype)."""
    flat = xp.reshape(nme, (-1,))
    n = flat.shape[0]
    if n == 0:
        return xp.full(tuple(thresholds.shape), math.nan, dtype=nme.dtype, device=_xp.device(nme))
    inf = xp.asarray(math.inf, dtype=flat.dtype, device=_xp.device(flat))
    ordered = xp.sort(xp.where(flat >= 0, flat, inf))  # NaN and negative errors: above every level
    t = xp.reshape(thresholds, (-1,))
    t = t if t.dtype == flat.dtype else xp.astype(t, flat.dtype)
    count = xp.searchsorted(ordered, t, side="right")  # how many are <= t
    share = xp.astype(count, flat.dtype) / n
    # A NaN level has no share (searchsorted puts it after everything)
    share = xp.where(xp.isnan(t), xp.asarray(math.nan, dtype=flat.dtype, device=_xp.device(flat)), share)
    return xp.reshape(share, tuple(thresholds.shape))


@_xp.non_finite_settled
def pck(
    pred: Array,
    target: Array,
    /,
    *,
    threshold: float,
    normalizer: Normalizer | Array = "bbox",
    weights: Array | None = None,
    eyes: Sequence[Any] | None = None,
) -> Array:
    """Percentage of correct keypoints per face, as a fraction: the share of kept landmarks
    whose error is at most ``threshold`` times the face's normalizing distance.

    ``pck = #{k kept: |pred_k - target_k| <= threshold * d} / #{k kept}``, with ``d`` as in
    :func:`nme` (by default the ground truth box's ``sqrt(width * height)``; pose benchmarks also
    use the head segment or the torso, which you pass as an array). mmpose's ``PCKAccuracy``
    normalizes each axis by the box's width and height separately; this one divides the
    Euclidean error by one distance, as the PCK of face alignment and of the pose papers does.

    Args:
        pred, target: ``(..., K, 2)``.
        threshold: > 0, e.g. 0.2 for PCK@0.2.
        normalizer, weights, eyes: as :func:`nme`.

    Returns:
        ``(...)`` fractions in [0, 1]; NaN for a face with no kept landmark or whose normalizing
        distance is not positive and finite (as :func:`nme`).

    >>> import numpy as np
    >>> target = np.array([[[0.0, 0.0], [10.0, 10.0], [0.0, 10.0]]])       # box 10 x 10
    >>> pred = target + np.array([[[1.0, 0.0], [0.0, 3.0], [0.0, 0.0]]])
    >>> pck(pred, target, threshold=0.2).tolist()                            # within 2 px: 2 of 3
    [0.6666666666666666]
    """
    threshold = check.positive(threshold, "threshold")
    xp, indices = _check_points(pred, target, weights, normalizer, eyes)
    options = {"weights": weights, "normalizer": normalizer, "indices": indices, "threshold": threshold}
    return _xp.in_float32(xp, _pck, pred, target, **options)


def _pck(
    xp: Any, pred: Array, target: Array, *, weights: Array | None, normalizer: Any, indices: Any, threshold: float
) -> Array:
    errors, keep, distance = _point_errors(xp, pred, target, weights, normalizer, indices)
    hit = keep & (errors <= threshold * distance[..., None])
    share = xp.sum(xp.astype(hit, errors.dtype), axis=-1) / xp.sum(xp.astype(keep, errors.dtype), axis=-1)
    return xp.where(xp.isnan(distance), distance, share)


def _errors_and_threshold(nme: Array, threshold: float) -> tuple[Any, float]:
    """``(xp, threshold)`` for the CED statistics: ``nme`` checked, ``threshold`` positive and at
    most ``nme``'s dtype's maximum (a larger one means the same there, and does not overflow)."""
    threshold = check.positive(threshold, "threshold")
    xp = _xp.namespace(nme=nme)
    check.floating(xp, nme, "nme")
    return xp, min(threshold, float(xp.finfo(_xp.work_dtype(xp, nme.dtype)).max))  # the dtype it is computed in


def _at_most(nme: Array, threshold: float) -> Array:
    """The faces whose error counts as at most ``threshold``: NaN and negative errors never do
    (an error is a distance: a negative one is a broken computation, counted as a failure)."""
    return (nme >= 0) & (nme <= threshold)


def _check_pose_pair(xp: Any, pred: Array, target: Array) -> None:
    """The pose metrics' ``pred`` and ``target``: real floating, one shape ``(..., K, 2)``."""
    check.floating(xp, pred, "pred")
    check.floating(xp, target, "target")
    if pred.shape != target.shape or pred.ndim < 2 or pred.shape[-1] != 2:
        raise ValueError(
            f"pred and target must have one shape (..., K, 2), got {tuple(pred.shape)} and {tuple(target.shape)}"
        )


def _size(x: Array) -> int:
    return math.prod(x.shape)


@_xp.non_finite_settled
def oks(
    pred: Array,
    target: Array,
    /,
    *,
    areas: Array,
    sigmas: Sequence[float] = COCO_SIGMAS,
    weights: Array | None = None,
) -> Array:
    """Object keypoint similarity per instance, as COCO's keypoint evaluation computes it.

    ``oks = mean over labelled k of exp(-d_k^2 / (2 (area + eps) (2 sigma_k)^2))`` with ``d_k``
    the Euclidean error, ``area`` the instance's area (COCO's segment area, image px^2) and
    ``eps = 2**-52`` (pycocotools' ``np.spacing(1)``).

    Args:
        pred, target: ``(..., K, 2)`` ``(x, y)`` in image pixels.
        areas: ``(...)`` real floating instance areas, image px^2, >= 0.
        sigmas: ``K`` per-keypoint constants (:data:`COCO_SIGMAS` for COCO's 17).
        weights: optional ``(..., K)``: a weight > 0 marks a labelled keypoint (COCO's ``v > 0``);
            a NaN target keypoint is unlabelled too.

    Returns:
        ``(...)`` OKS in [0, 1]; NaN for an instance with no labelled keypoint (COCO ignores
        it), where a labelled keypoint's prediction is NaN, and where the area is negative or
        NaN (no scale to score it by; the other instances are unaffected).

    >>> import numpy as np
    >>> t = np.zeros((1, 17, 2)); p = t.copy(); p[0, 0, 0] = 1.0
    >>> round(float(oks(p, t, areas=np.array([100.0]))[0]), 6)  # (16 + exp(-1 / (2 * 100 * 0.052**2))) / 17
    0.950434
    """
    xp = _xp.namespace(pred=pred, target=target, areas=areas, weights=weights)
    pred, target, areas, s = _check_oks(xp, pred, target, areas, sigmas, weights)
    return _xp.in_float32(xp, _oks, pred, target, areas, s, weights=weights)


def _check_oks(
    xp: Any, pred: Array, target: Array, areas: Array, sigmas: Sequence[float], weights: Array | None
) -> tuple[Array, Array, Array, list[float]]:
    """:func:`oks`' checks: its arrays promoted to one dtype, and the sigmas as floats."""
    _check_pose_pair(xp, pred, target)
    check.floating(xp, areas, "areas")
    _check_weights(xp, target, weights)
    pred, target, areas = check.promoted(xp, pred, target, areas)
    k = pred.shape[-2]
    if isinstance(sigmas, (str, bytes)) or not isinstance(sigmas, Sequence):
        raise TypeError(f"sigmas must be a sequence of K = {k} positive numbers, got {sigmas!r}")
    if len(sigmas) != k:
        raise ValueError(f"sigmas must have one value per keypoint, K = {k}, got {len(sigmas)}")
    s = [check.positive(v, "sigmas") for v in sigmas]
    if tuple(areas.shape) != tuple(pred.shape[:-2]):
        raise ValueError(f"areas must have shape {tuple(pred.shape[:-2])} (one per instance), got {tuple(areas.shape)}")
    return pred, target, areas, s


def _oks(xp: Any, pred: Array, target: Array, areas: Array, s: list[float], weights: Array | None) -> Array:
    """Kernel of :func:`oks` (arrays checked and of one dtype)."""
    dtype, dev = pred.dtype, _xp.device(pred)
    a = xp.where(areas >= 0, areas, xp.asarray(math.nan, dtype=dtype, device=dev))  # a negative area has no scale
    var = (2.0 * xp.asarray(s, dtype=dtype, device=dev)) ** 2
    d = pred - target
    e = (d[..., 0] ** 2 + d[..., 1] ** 2) / var / (a[..., None] + 2.0**-52) / 2  # pycocotools: np.spacing(1)
    keep = _kept(xp, target, weights)
    terms = xp.where(keep, xp.exp(-e), xp.zeros((), dtype=dtype, device=dev))
    return xp.sum(terms, axis=-1) / xp.sum(xp.astype(keep, dtype), axis=-1)


class PCKh(NamedTuple):
    """What :func:`pckh` returns (fractions, not percent)."""

    mean: Array
    """``()`` the share of labelled joints within the threshold, over every joint but the excluded ones."""
    per_joint: Array
    """``(K,)`` the share per joint over the instances (NaN for a joint labelled nowhere)."""


@_xp.non_finite_settled
def pckh(
    pred: Array,
    target: Array,
    /,
    *,
    head_boxes: Array,
    threshold: float = 0.5,
    weights: Array | None = None,
    excluded: Sequence[int] = MPII_UNREPORTED,
) -> PCKh:
    """PCKh as MPII reports it: a joint is correct when its error is at most ``threshold`` times
    the instance's head size, 0.6 times its head box's diagonal.

    ``hit[n, k] = |pred - target| / (0.6 |box_n[1] - box_n[0]|) <= threshold`` for labelled joints;
    ``per_joint[k] = sum_n hit / sum_n labelled``; ``mean`` pools every labelled joint except
    ``excluded`` (MPII's pelvis and thorax, :data:`MPII_UNREPORTED`, which its tables leave out):
    the per-joint shares weighted by their counts, as MPII's evaluation and mmpose's
    ``MpiiPCKAccuracy`` average them. A NaN prediction, and every joint of an instance whose head
    size is not positive and finite, counts as a miss (MPII's comparison is false there); a NaN
    target or a weight of 0 marks a joint unlabelled.

    Args:
        pred, target: ``(..., K, 2)`` ``(x, y)`` in image pixels (MPII's 16 joints in its order:
            right ankle, knee, hip, left hip, knee, ankle, pelvis, thorax, upper neck, head top,
            right wrist, elbow, shoulder, left shoulder, elbow, wrist).
        head_boxes: ``(..., 2, 2)`` each instance's head box corners ``((x1, y1), (x2, y2))``,
            image pixels.
        threshold: > 0; 0.5 for PCKh@0.5, MPII's headline figure.
        weights: optional ``(..., K)``: a weight > 0 marks a labelled joint (MPII's visibility).
        excluded: joint indices left out of ``mean`` (``()`` for none).

    Returns:
        :class:`PCKh` ``(mean, per_joint)``, fractions in ``pred``'s dtype and device; NaN where
        nothing is labelled.

    Reference:
        M. Andriluka, L. Pishchulin, P. Gehler and B. Schiele, "2D Human Pose Estimation: New
        Benchmark and State of the Art Analysis", CVPR 2014.

    >>> import numpy as np
    >>> target = np.zeros((1, 16, 2)); pred = target.copy(); pred[0, 0, 0] = 4.0
    >>> boxes = np.array([[[0.0, 0.0], [6.0, 8.0]]])   # diagonal 10: head size 6, hit within 3 px
    >>> r = pckh(pred, target, head_boxes=boxes)
    >>> r.per_joint[:2].tolist(), round(float(r.mean), 6)   # 13 of the 14 reported joints
    ([0.0, 1.0], 0.928571)
    """
    threshold = check.positive(threshold, "threshold")
    xp = _xp.namespace(pred=pred, target=target, head_boxes=head_boxes, weights=weights)
    _check_pose_pair(xp, pred, target)
    _check_weights(xp, target, weights)
    check.floating(xp, head_boxes, "head_boxes")
    pred, target, head_boxes = check.promoted(xp, pred, target, head_boxes)
    lead, k = tuple(pred.shape[:-2]), pred.shape[-2]
    if tuple(head_boxes.shape) != (*lead, 2, 2):
        raise ValueError(
            f"head_boxes must have shape {(*lead, 2, 2)} (one ((x1, y1), (x2, y2)) per instance), got {tuple(head_boxes.shape)}"
        )
    if isinstance(excluded, (str, bytes)) or not isinstance(excluded, Sequence):
        raise TypeError(f"excluded must be a sequence of joint indices, got {excluded!r}")
    try:
        check.indices(excluded, k)
    except (TypeError, ValueError):
        raise ValueError(f"excluded must hold joint indices in [0, {k}), got {excluded!r}") from None
    options = {"weights": weights, "threshold": threshold, "excluded": tuple(excluded)}
    return _xp.in_float32(xp, _pckh, pred, target, head_boxes, **options)


def _pckh(
    xp: Any,
    pred: Array,
    target: Array,
    head_boxes: Array,
    *,
    weights: Array | None,
    threshold: float,
    excluded: tuple[int, ...],
) -> PCKh:
    """Kernel of :func:`pckh` (arrays checked and of one dtype)."""
    lead, k = tuple(pred.shape[:-2]), pred.shape[-2]
    dtype, dev = pred.dtype, _xp.device(pred)
    boxes = head_boxes if head_boxes.dtype == dtype else xp.astype(head_boxes, dtype)
    side = boxes[..., 1, :] - boxes[..., 0, :]
    head = _MPII_HEAD_SHARE * xp.hypot(side[..., 0], side[..., 1])  # (...); hypot: no square overflows
    good_head = (head > 0) & (head < math.inf)
    d = pred - target
    scaled = xp.hypot(d[..., 0], d[..., 1]) / xp.where(good_head, head, xp.ones_like(head))[..., None]
    labelled = _kept(xp, target, weights)
    hit = labelled & good_head[..., None] & (scaled <= threshold)  # NaN compares false: a miss
    axes = tuple(range(len(lead)))
    hits = xp.sum(xp.astype(hit, dtype), axis=axes) if axes else xp.astype(hit, dtype)
    counts = xp.sum(xp.astype(labelled, dtype), axis=axes) if axes else xp.astype(labelled, dtype)
    nan = xp.asarray(math.nan, dtype=dtype, device=dev)
    per_joint = xp.where(counts > 0, hits / xp.where(counts > 0, counts, xp.ones_like(counts)), nan)
    reported = xp.asarray([j not in set(excluded) for j in range(k)], device=dev)
    zero = xp.zeros((), dtype=dtype, device=dev)
    total = xp.sum(xp.where(reported, counts, zero))
    # 0-d arrays only (no Python float), which NumPy 1's value-based casting would make float64
    mean = xp.where(
        total > 0, xp.sum(xp.where(reported, hits, zero)) / xp.where(total > 0, total, xp.ones_like(total)), nan
    )
    return PCKh(mean, per_joint)


class CocoAP(NamedTuple):
    """What :func:`coco_ap` returns: COCO's keypoint AP and its values at OKS 0.50 and 0.75."""

    ap: float
    ap50: float
    ap75: float


def coco_ap(
    pred: Array,
    target: Array,
    /,
    *,
    areas: Array,
    scores: Array,
    weights: Array | None = None,
    sigmas: Sequence[float] = COCO_SIGMAS,
) -> CocoAP:
    """COCO keypoint AP, AP50 and AP75 of top-down predictions: one prediction per ground truth.

    As pycocotools' ``COCOeval`` (``iouType="keypoints"``, area "all"), with each instance its own
    image: predictions ranked by ``scores`` (ties in instance order), a prediction a true positive
    at threshold ``t`` where its :func:`oks` is at least ``t``; per threshold (0.50, 0.55, ...,
    0.95) the precision made monotone and read at the 101 recall levels 0, 0.01, ..., 1 (0 beyond
    the largest recall), averaged; AP is the mean over the thresholds. Instances with no labelled
    keypoint are left out (COCO ignores them as ground truths; their predictions, which COCOeval
    compares with the box, are matched to them whenever they lie in the box's neighbourhood, as
    top-down predictions in their crop do). A NaN OKS never matches. Computed on the host.

    Args:
        pred, target: ``(..., K, 2)`` image pixels; ``...`` is the instances.
        areas: ``(...)`` instance areas, px^2, finite and >= 0 (checked: a ValueError names
            the first instance that is not).
        scores: ``(...)`` the predictions' confidences.
        weights, sigmas: as :func:`oks`.

    Returns:
        :class:`CocoAP` ``(ap, ap50, ap75)`` as Python floats in [0, 1]; NaN where no instance
        has a labelled keypoint (COCOeval prints -1).

    Reference:
        T.-Y. Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014; the keypoint
        evaluation of cocodataset.org.

    >>> import numpy as np
    >>> t = np.zeros((2, 17, 2)); p = t.copy(); p[1] += 30.0
    >>> round(coco_ap(p, t, areas=np.full(2, 400.0), scores=np.array([0.9, 0.8])).ap50, 6)  # 51 of 101 levels
    0.50495
    """
    host_areas = np.asarray(_xp.to_host(areas, "areas"), dtype=np.float64).reshape(-1)
    wrong = np.flatnonzero(~(np.isfinite(host_areas) & (host_areas >= 0)))
    if wrong.size:  # an AP is over every instance: one it cannot scale, it cannot score
        raise ValueError(
            f"areas must be finite and >= 0, got {float(host_areas[wrong[0]])!r} at instance {int(wrong[0])} "
            f"(of {host_areas.size}; {wrong.size} such)"
        )
    xp = _xp.namespace(pred=pred, target=target, areas=areas, weights=weights, scores=scores)
    pred, target, areas, s = _check_oks(xp, pred, target, areas, sigmas, weights)
    check.floating(xp, scores, "scores")
    if tuple(scores.shape) != tuple(pred.shape[:-2]):
        raise ValueError(
            f"scores must have shape {tuple(pred.shape[:-2])} (one per instance), got {tuple(scores.shape)}"
        )
    with np.errstate(invalid="ignore", divide="ignore"):  # an instance with no labelled keypoint: NaN, by design
        similarity = _xp.in_float32(xp, _oks, pred, target, areas, s, weights=weights)
    o = np.asarray(_xp.to_host(similarity), dtype=np.float64).reshape(-1)
    sc = np.asarray(_xp.to_host(scores, "scores"), dtype=np.float64).reshape(-1)
    kept = _kept(xp, target, weights)
    labelled = np.asarray(_xp.to_host(xp.any(kept, axis=-1))).reshape(-1)
    o, sc = o[labelled], sc[labelled]
    n = o.shape[0]
    if n == 0:
        return CocoAP(math.nan, math.nan, math.nan)
    order = np.argsort(-sc, kind="mergesort")  # pycocotools' ranking: stable, in instance order on ties
    o = o[order]
    thresholds = np.linspace(0.5, 0.95, round((0.95 - 0.5) / 0.05) + 1, endpoint=True)
    recall_levels = np.linspace(0.0, 1.00, round((1.00 - 0.0) / 0.01) + 1, endpoint=True)
    per_threshold = []
    for t in thresholds:
        hit = o >= min(t, 1 - 1e-10)  # NaN: False, a miss
        tp = np.cumsum(hit).astype(float)
        fp = np.cumsum(~hit).astype(float)
        recall = tp / n
        precision = tp / (fp + tp + np.spacing(1))
        precision = np.maximum.accumulate(precision[::-1])[::-1]  # monotone, from the right
        at = np.searchsorted(recall, recall_levels, side="left")
        q = np.where(at < n, precision[np.minimum(at, n - 1)], 0.0)
        per_threshold.append(float(q.mean()))
    return CocoAP(float(np.mean(per_threshold)), per_threshold[0], per_threshold[5])
