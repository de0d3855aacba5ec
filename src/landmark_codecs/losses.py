"""Wing, Adaptive Wing (with its weighted loss map) and Soft Wing losses, on every array backend;
STAR's and DSNT's per-landmark losses on heatmaps beside them.

All three are elementwise functions of the error ``d = pred - target``, reduced as asked. Each
piecewise formula is written as ``f(min(|d|, b)) + g(max(|d| - b, 0))`` around its breakpoint
``b``, so no branch is ever evaluated outside its own domain: no overflow in the unused branch,
no NaN leaking into a gradient through ``where`` (the classic trap of ``torch.where`` losses), and
no boolean indexing (which breaks under masks and costs a copy).

Shared arguments:

- ``pred``, ``target``: real floating arrays; ``target`` broadcasts to ``pred``'s shape. Any
  layout: ``(..., K, H, W)`` heatmaps, ``(..., K, 2)`` coordinates, anything else.
- ``weights``: optional non-negative weights (bool, int or float); a negative or NaN weight
  counts as 0 (the element is masked out and left out of the mean's denominator, as in
  :func:`star_loss` and the encoders' NaN weights). With ``pred``'s number of
  dimensions it broadcasts as usual; with fewer it is aligned with ``pred``'s *leading* axes
  (size-1 axes are appended), so a ``(..., K)`` visibility applies to every pixel of a
  ``(..., K, H, W)`` map or to both coordinates of a ``(..., K, 2)`` landmark. Elements where the
  weight is 0 contribute nothing, even if their target is NaN (a missing landmark).
- ``reduction``: ``"none"`` gives ``loss * weights`` elementwise in ``pred``'s shape; ``"sum"`` its
  sum; ``"mean"`` that sum divided by the weights' sum over ``pred``'s shape (the plain mean
  without weights). All-zero weights, or an empty input, give 0, not NaN.

Gradients: on torch, when only ``pred`` requires a gradient (the training case), the slope is
formed in the same pass as the value and backward is one multiply; that result is differentiable
once (with ``create_graph=True`` its gradient carries no graph, so differentiating it again
raises torch's "does not require grad" error rather than returning a wrong second derivative). When ``target`` requires a gradient too, and on other backends,
autograd (if any) differentiates the formula itself.

The result has the promoted dtype of ``pred`` and ``target``. float16 and bfloat16 inputs are
computed and reduced in float32 and the result cast back, so a large batch neither overflows nor
loses its small terms; the relative error is then that of one rounding to the input dtype.
That final cast applies to ``reduction="sum"`` too: a sum beyond the input dtype's range (65504
for float16) comes back as ``inf``, as any float16 value that large would; sum in float32 (cast
``pred``) or use ``"mean"`` where a float16 batch's total can exceed it.

Elements of weight 0 contribute nothing whatever their values: a NaN or infinite
``pred``, ``target`` or ``loss_map`` there leaves the loss and the gradient finite.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from . import _common, _xp, moments
from . import _validation as check
from ._xp import Array

Reduction = Literal["mean", "sum", "none"]

__all__ = ["adaptive_wing_loss", "dsnt_regularization", "soft_wing_loss", "star_loss", "weighted_loss_map", "wing_loss"]
StarDistance = Literal["smooth_l1", "l1", "l2", "wing"]
Divergence = Literal["js", "kl", "variance"]

_REDUCTIONS = ("mean", "sum", "none")


def wing_loss(
    pred: Array,
    target: Array,
    /,
    *,
    omega: float = 10.0,
    epsilon: float = 2.0,
    weights: Array | None = None,
    reduction: Reduction = "mean",
) -> Array:
    """Wing loss (Feng et al., "Wing Loss for Robust Facial Landmark Localisation with CNNs", CVPR 2018).

    ``wing(d) = omega * ln(1 + |d| / epsilon)`` for ``|d| < omega``, else ``|d| - C`` with
    ``C = omega - omega * ln(1 + omega / epsilon)``, so the value is continuous at ``|d| = omega``.
    The slope is not: it is ``omega / (omega + epsilon)`` on the left and 1 on the right, as in
    the paper. At ``d = 0`` the loss has a kink (slopes ``+-omega / epsilon``); the gradient
    returned there is 0.

    Args:
        pred, target: errors ``d = pred - target`` are in the arrays' own units (pixels for
            coordinates in pixels; the paper's ``omega=10, epsilon=2`` are for pixel errors).
        omega: the breakpoint and scale of the log region, > 0.
        epsilon: the curvature of the log region, > 0.
        weights, reduction: see :mod:`landmark_codecs.losses`.

    >>> import numpy as np
    >>> round(float(wing_loss(np.array([1.0, -10.0]), np.zeros(2), reduction="sum")), 4)
    21.9722
    """
    omega = check.positive(omega, "omega")
    epsilon = check.positive(epsilon, "epsilon")
    xp, e, y, finish = _prepare(pred, target, weights, None, reduction)
    return finish(_elementwise(xp, e, y, _wing, _wing_fused, omega=omega, epsilon=epsilon))


def adaptive_wing_loss(
    pred: Array,
    target: Array,
    /,
    *,
    omega: float = 14.0,
    theta: float = 0.5,
    epsilon: float = 1.0,
    alpha: float = 2.1,
    loss_map: Array | None = None,
    weights: Array | None = None,
    reduction: Reduction = "mean",
) -> Array:
    """Adaptive Wing loss (Wang, Bo, Fuxin, "Adaptive Wing Loss for Robust Face Alignment via
    Heatmap Regression", ICCV 2019), for heatmaps with values in [0, 1].

    With ``y = target`` and ``p = alpha - y`` (a per-pixel exponent)::

        AWing(d) = omega * ln(1 + (|d| / epsilon)^p)     if |d| < theta
                 = A |d| - C                             otherwise
        A = omega * (1 / (1 + (theta/epsilon)^p)) * p * (theta/epsilon)^(p - 1) / epsilon
        C = theta * A - omega * ln(1 + (theta/epsilon)^p)

    so that value and slope are continuous at ``|d| = theta`` for every ``y``. Note the
    ``epsilon`` (not ``omega``) inside the small-error branch. The loss is smooth at ``d = 0``
    (slope 0 there) whenever ``p > 1``, hence ``alpha >= 2``.

    Targets outside [0, 1] (defined behaviour): the exponent uses ``y`` clipped to [0, 1], so it
    stays in ``[alpha - 1, alpha]`` and the gradients stay finite; the error ``d`` uses the
    target as given.

    Args:
        pred, target: ``(..., K, H, W)`` heatmaps (any shape works), ``target`` in [0, 1].
        omega: the scale, > 0 and > ``theta``.
        theta: the breakpoint between the log and the linear region, in heatmap value units, > 0.
        epsilon: > 0.
        alpha: >= 2 (the paper uses 2.1; below 2 a foreground pixel's loss has an infinite slope at
            zero error).
        loss_map: optional elementwise multiplier aligned like ``weights`` (usually the
            :func:`weighted_loss_map` of the target). Unlike ``weights`` it does not enter the
            denominator of the mean, as in the paper: ``mean(loss * (W*M + 1))``.
        weights, reduction: see :mod:`landmark_codecs.losses`.

    >>> import numpy as np
    >>> round(float(adaptive_wing_loss(np.ones(12), np.zeros(12))), 5)
    8.49595
    """
    omega = check.positive(omega, "omega")
    theta = check.positive(theta, "theta")
    epsilon = check.positive(epsilon, "epsilon")
    alpha = check.at_least(alpha, 2.0, "alpha", "alpha - target must be >= 1 for every target in [0, 1]")
    if theta >= omega:
        raise ValueError(
            f"theta must be smaller than omega (theta is the small-error breakpoint), got theta={theta!r}, omega={omega!r}"
        )
    xp, e, y, finish = _prepare(pred, target, weights, loss_map, reduction)
    params = {"omega": omega, "theta": theta, "epsilon": epsilon, "alpha": alpha}
    return finish(_elementwise(xp, e, y, _adaptive_wing, _adaptive_wing_fused, **params))


def soft_wing_loss(
    pred: Array,
    target: Array,
    /,
    *,
    omega1: float = 2.0,
    omega2: float = 20.0,
    epsilon: float = 0.5,
    weights: Array | None = None,
    reduction: Reduction = "mean",
) -> Array:
    """Soft Wing loss (Lin et al., "Structure-Coherent Deep Feature Learning for Robust Face
    Alignment", TIP 2021), for coordinate regression.

    ``softwing(d) = |d|`` for ``|d| < omega1``, else ``omega2 * ln(1 + |d| / epsilon) + B`` with
    ``B = omega1 - omega2 * ln(1 + omega1 / epsilon)``, so the value is continuous at ``omega1``.

    Slope at ``omega1``: 1 on the left, ``omega2 / (omega1 + epsilon)`` on the right. It is
    continuous only when ``omega2 = omega1 + epsilon``; with the usual defaults (2, 20, 0.5) the
    slope jumps from 1 to 8, which amplifies medium errors by design. Both facts are tested.

    Args:
        pred, target: errors in the arrays' own units (pixels for the defaults).
        omega1: the breakpoint, > 0.
        omega2: the scale of the log region, > 0.
        epsilon: the curvature of the log region, > 0.
        weights, reduction: see :mod:`landmark_codecs.losses`.

    >>> import numpy as np
    >>> soft_wing_loss(np.array([0.5, 2.0]), np.zeros(2), reduction="none").tolist()
    [0.5, 2.0]
    """
    omega1 = check.positive(omega1, "omega1")
    omega2 = check.positive(omega2, "omega2")
    epsilon = check.positive(epsilon, "epsilon")
    xp, e, y, finish = _prepare(pred, target, weights, None, reduction)
    return finish(_elementwise(xp, e, y, _soft_wing, _soft_wing_fused, omega1=omega1, omega2=omega2, epsilon=epsilon))


# STAR's fixed constants, as its repository sets them: the floor on a map's sum before it is
# normalized, the regularizer of the unbiased covariance's denominator, and its distances'
# scales (smooth L1's 0.01; Wing's omega 0.01 and epsilon 2, on the whitened error's norm).
_STAR_SUM_FLOOR, _STAR_COV_EPSILON = 1e-6, 1e-5
_STAR_SMOOTH_L1_SCALE, _STAR_WING_OMEGA, _STAR_WING_EPSILON = 0.01, 0.01, 2.0
_STAR_DISTANCES = ("smooth_l1", "l1", "l2", "wing")


@_xp.non_finite_settled
def star_loss(
    heatmaps: Array,
    coords: Array,
    /,
    *,
    omega: float = 1.0,
    distance: StarDistance = "smooth_l1",
    epsilon: float = 1e-5,
    weights: Array | None = None,
    reduction: Reduction = "mean",
) -> Array:
    """STAR loss (Zhou et al., "STAR Loss: Reducing Semantic Ambiguity in Facial Landmark
    Detection", CVPR 2023): the error along each heatmap's principal axes, whitened by its spread,
    plus a penalty on the spread.

    Per landmark, on STAR's grid ``u = 2 x / (W - 1) - 1``, ``v = 2 y / (H - 1) - 1`` (corner
    aligned, [-1, 1]; ``coords`` in heatmap pixels are mapped onto it here):

    1. ``p = heatmap / max(sum(heatmap), 1e-6)``; ``mu = sum p (u, v)``.
    2. ``Sigma = sum p (g - mu)(g - mu)^T / (V1 - V2 / V1)`` with ``V1 = sum p + 1e-5`` and
       ``V2 = sum p^2 + 1e-5`` (the unbiased covariance of reliability weights).
    3. ``Sigma = U diag(lambda) U^T``; the error ``e = gt - mu`` becomes
       ``z_i = (U^T e)_i / sqrt(lambda_i + epsilon)``.
    4. ``loss = dist(z) + omega * (|lambda_1| + |lambda_2|)``, with ``dist``:

       - ``"smooth_l1"``: on ``|z|``, ``|z|^2 / (2 s)`` below ``s = 0.01``, ``|z| - s / 2`` above
         (``|z|`` floored at 1e-3 there, as the repository does);
       - ``"l2"``: ``(z_1^2 + z_2^2) / 2``; ``"l1"``: ``(|z_1| + |z_2|) / 2`` (the mean over the
         two axes, as ``F.mse_loss``/``F.l1_loss`` give);
       - ``"wing"``: Wing (omega 0.01, epsilon 2) on ``|z|``.

    ``|z|^2 = e^T (Sigma + epsilon I)^-1 e`` needs no eigenvectors, so the three norm-based
    distances are computed from the 2x2 inverse: smooth everywhere, also where the two
    eigenvalues coincide. ``"l1"`` needs the axes themselves (:func:`eigh_2x2`); where the
    eigenvalues coincide any axes are eigenvectors and the l1 distance is not continuous there
    (a property of the formula): its gradient is finite, taken with the x and y axes.

    It equals the repository's ``STARLoss(w=omega, dist=...)`` to float rounding (tested on
    the same maps): that code moves each covariance to the CPU for ``symeig``; this one stays on
    the device and compiles. Unlike there, ``epsilon`` here is only the eigenvalue regularizer
    of step 3; step 2's ``1e-5`` is fixed, as the repository's call leaves it.

    Args:
        heatmaps: ``(..., K, H, W)`` real floating, non-negative (a sigmoid or ReLU output, or a
            target), ``H, W >= 2``.
        coords: ``(..., K, 2)`` ground truth ``(x, y)`` in heatmap pixels.
        omega: the weight of the eigenvalue penalty, >= 0 (the repository's ``w``).
        distance: ``"smooth_l1"``, ``"l1"``, ``"l2"`` or ``"wing"``.
        epsilon: added to each eigenvalue before the square root, > 0.
        weights: optional ``(..., K)`` non-negative weights (a negative or NaN one counts as
            0); a landmark with weight 0 contributes nothing, whatever its map or coordinates
            hold (NaN included).
        reduction: ``"none"`` gives the per-landmark loss ``(..., K)`` (times ``weights``);
            ``"sum"`` its sum; ``"mean"`` that sum over the weights' sum (over ``...*K`` without
            weights). All-zero weights give 0.

    Returns:
        The loss in the promoted dtype of ``heatmaps`` and ``coords``, on their device.

    Convention:
        ``coords`` in heatmap pixels, integers at pixel centres, ``(x, y)`` order. The [-1, 1]
        grid is STAR's internal unit: the eigenvalue penalty and the whitened error are in it
        (a 64x64 map's pixel is 2/63 of it), as in the paper.

    >>> import numpy as np
    >>> maps = np.zeros((1, 5, 5)); maps[0, 1:4, 1:4] = 1.0  # variance (1/6) / (8/9) per axis
    >>> round(float(star_loss(maps, np.array([[2.0, 2.0]]))), 6)  # no error: 0.1875 + 0.1875
    0.375
    """
    check.choice(reduction, "reduction", _REDUCTIONS)
    check.choice(distance, "distance", _STAR_DISTANCES)
    omega = check.at_least(omega, 0.0, "omega", "the eigenvalue penalty's weight")
    epsilon = check.positive(epsilon, "epsilon")
    xp = _xp.namespace(heatmaps=heatmaps, coords=coords, weights=weights)
    check.heatmaps(xp, heatmaps)
    check.coords(xp, coords)
    check.same_shape(coords, (*heatmaps.shape[:-2], 2), "coords", "heatmaps.shape[:-2] + (2,), one (x, y) per map")
    h, w = heatmaps.shape[-2:]
    if h < 2 or w < 2:
        raise ValueError(
            f"heatmaps must be at least 2x2 (STAR's grid 2 x / (W - 1) - 1 needs two pixel centres per axis), got shape {tuple(heatmaps.shape)}"
        )
    if weights is not None:
        check.numeric(xp, weights, "weights")
        check.broadcasts_to(weights, tuple(coords.shape[:-1]), "weights", "coords.shape[:-1], one weight per landmark")
    options = {"omega": omega, "distance": distance, "epsilon": epsilon, "reduction": reduction}
    return _xp.in_float32(xp, _star, heatmaps, coords, weights=weights, **options)


def _star(
    xp: Any,
    heatmaps: Array,
    coords: Array,
    *,
    weights: Array | None,
    omega: float,
    distance: str,
    epsilon: float,
    reduction: str,
) -> Array:
    """Kernel of :func:`star_loss` (inputs checked)."""
    h, w = heatmaps.shape[-2:]
    maps, gt, keep, m = _landmark_maps(xp, heatmaps, coords, weights)
    out_dtype = maps.dtype
    # Divided by its maximum above 1 (STAR does not depend on the scale there: the sum exceeds the
    # floor), so that neither the sums nor the squares of a map near the float maximum overflow.
    maps = _common.at_most_one(xp, maps)
    sx, sy = 2.0 / (w - 1), 2.0 / (h - 1)
    gx = _common.grid(xp, w, maps) * sx - 1.0
    gy = _common.grid(xp, h, maps) * sy - 1.0
    total, mean, cov = moments.weighted_moments(xp, maps, gx, gy, normalize=True, floor=_STAR_SUM_FLOOR)
    scale = xp.maximum(total, xp.asarray(_STAR_SUM_FLOOR, dtype=out_dtype, device=_xp.device(total)))
    v1 = total / scale + _STAR_COV_EPSILON
    v2 = xp.sum(maps * maps, axis=(-2, -1)) / (scale * scale) + _STAR_COV_EPSILON
    cov = cov / (v1 - v2 / v1)[..., None, None]
    target = xp.stack([gt[..., 0] * sx - 1.0, gt[..., 1] * sy - 1.0], axis=-1)
    err = target - mean
    a, b, c = cov[..., 0, 0] + epsilon, cov[..., 1, 0], cov[..., 1, 1] + epsilon
    ex, ey = err[..., 0], err[..., 1]
    if distance == "l1":
        lam, vectors = moments.eigh_symmetric(xp, cov)
        along = xp.sum(vectors * err[..., :, None], axis=-2)  # (U^T e)_i
        dist = xp.sum(xp.abs(along) / xp.sqrt(lam + epsilon), axis=-1) / 2
    else:
        # |z|^2 = e^T (Sigma + epsilon I)^-1 e, the sum of the squared whitened components, with
        # e in units of its larger component: no square of a huge (or tiny) error over- or underflows
        # on the way (the result itself may be inf for an error near the float maximum).
        unit = xp.maximum(xp.abs(ex), xp.abs(ey))
        unit = xp.where(unit > 0, unit, xp.ones_like(unit))
        ux, uy = ex / unit, ey / unit
        q = (c * ux * ux - 2 * b * ux * uy + a * uy * uy) / (a * c - b * b) * unit * unit
        if distance == "l2":
            dist = q / 2
        else:
            norm = xp.sqrt(xp.clip(q, 1e-6, None))
            if distance == "smooth_l1":
                s = _STAR_SMOOTH_L1_SCALE
                dist = xp.where(q < s * s, q * (0.5 / s), norm - 0.5 * s)
            else:
                wo, we = _STAR_WING_OMEGA, _STAR_WING_EPSILON
                dist = _wing_of_abs(xp, norm, wo, we)
    loss = dist + omega * moments.absolute_eigenvalue_sum(xp, cov)
    return _reduce_landmarks(xp, loss, keep, m, reduction)


def _landmark_maps(
    xp: Any, heatmaps: Array, coords: Array, weights: Array | None
) -> tuple[Array, Array, Array | None, Array | None]:
    """A per-landmark heatmap loss's inputs (STAR, DSNT): maps and coordinates in their promoted
    dtype, and with weights the kept landmarks (``_xp.marked``) and the weights (0 elsewhere); a
    masked landmark's maps and coordinates are 0, so its NaN reaches neither sums nor gradients."""
    out_dtype = xp.result_type(heatmaps.dtype, coords.dtype)
    maps = heatmaps if heatmaps.dtype == out_dtype else xp.astype(heatmaps, out_dtype)
    gt = coords if coords.dtype == out_dtype else xp.astype(coords, out_dtype)
    if weights is None:
        return maps, gt, None, None
    zero = xp.zeros((), dtype=out_dtype, device=_xp.device(maps))
    m = weights if weights.dtype == out_dtype else xp.astype(weights, out_dtype)
    keep = _xp.marked(xp, m)  # the one weights rule: > 0
    m = xp.where(keep, m, zero)  # negative, NaN: 0
    return xp.where(keep[..., None, None], maps, zero), xp.where(keep[..., None], gt, zero), keep, m


def _reduce_landmarks(xp: Any, loss: Array, keep: Array | None, m: Array | None, reduction: str) -> Array:
    """A per-landmark loss ``(..., K)`` weighted and reduced: ``"mean"`` over the weights' sum
    (over ``...*K`` without weights), all-zero weights giving 0."""
    if keep is not None:
        loss = xp.where(keep, loss, xp.zeros((), dtype=loss.dtype, device=_xp.device(loss))) * m
    if reduction == "none":
        return loss
    if reduction == "sum":
        return xp.sum(loss)
    if m is None:
        return xp.sum(loss) / max(math.prod(loss.shape), 1)
    return _common.weighted_mean(xp, xp.sum(loss), xp.sum(xp.broadcast_to(m, loss.shape)))


# Added inside DSNT's logarithms and to the target's normalizer, as dsntnn does: on a large map a
# float32 Gaussian underflows to 0 where a softmax is still positive, and log(0) is -inf.
_DSNT_EPS = 1e-24


@_xp.non_finite_settled
def dsnt_regularization(
    heatmaps: Array,
    coords: Array,
    /,
    *,
    sigma: float,
    divergence: Divergence = "js",
    weights: Array | None = None,
    reduction: Reduction = "mean",
) -> Array:
    """DSNT's heatmap regularizers (Nibali et al., "Numerical Coordinate Regression with
    Convolutional Neural Networks", 2018): each normalized heatmap against a Gaussian of ``sigma``
    heatmap pixels at the landmark, as dsntnn's ``js_reg_losses``, ``kl_reg_losses`` and
    ``variance_reg_losses`` compute them.

    With ``p`` the map (a probability map: a softmax's output, summing to 1) and
    ``q_ij = g_ij / (sum g + 1e-24)``, ``g_ij = exp(-((j - x)^2 + (i - y)^2) / (2 sigma^2))``
    (the sampled Gaussian at ``(x, y)``, normalized):

    - ``"kl"``: ``KL(p || q) = sum p (log(p + 1e-24) - log(q + 1e-24))``;
    - ``"js"``: ``(KL(p || m) + KL(q || m)) / 2`` with ``m = (p + q) / 2``: symmetric, at most
      ``log 2``, finite however far apart the two are (the paper's choice);
    - ``"variance"``: ``(var_x - sigma^2)^2 + (var_y - sigma^2)^2``, the map's variance per axis
      in heatmap pixels (``var_x = sum p (j - mean_x)^2``, ``mean_x = sum p j``): the map's spread
      only, not where it is (dsntnn's version of the paper's, in pixel units).

    The ``1e-24`` is dsntnn's: without it a float32 Gaussian, which underflows to 0 some 14
    sigma from its centre while a softmax is still positive there, would make KL infinite.

    Args:
        heatmaps: ``(..., K, H, W)`` real floating probability maps (each summing to 1).
        coords: ``(..., K, 2)`` target ``(x, y)`` in heatmap pixels (the divergences; the
            variance regularizer reads only their shape).
        sigma: the target Gaussian's standard deviation in heatmap pixels.
        divergence: ``"js"``, ``"kl"`` or ``"variance"``.
        weights: optional ``(..., K)`` non-negative weights (a negative or NaN one counts as
            0); a landmark with weight 0 contributes nothing, whatever its map or coordinates
            hold (NaN included).
        reduction: ``"none"`` gives the per-landmark value ``(..., K)`` (times ``weights``);
            ``"sum"`` its sum; ``"mean"`` that sum over the weights' sum (over ``...*K`` without
            weights), as dsntnn's ``average_loss``. All-zero weights give 0.

    Returns:
        The loss in the promoted dtype of ``heatmaps`` and ``coords``, on their device.

    Convention:
        ``coords`` in heatmap pixels, integers at pixel centres, ``(x, y)`` order. dsntnn's
        normalized coordinates are the same points: ``x_n = (2 x + 1) / W - 1``.

    >>> import numpy as np
    >>> maps = np.zeros((1, 5, 5)); maps[0, 2, 1] = maps[0, 2, 3] = 0.5   # var_x = 1, var_y = 0
    >>> float(dsnt_regularization(maps, np.array([[2.0, 2.0]]), sigma=1.0, divergence="variance"))
    1.0
    """
    check.choice(reduction, "reduction", _REDUCTIONS)
    check.choice(divergence, "divergence", ("js", "kl", "variance"))
    sigma = check.sigma(sigma)
    xp = _xp.namespace(heatmaps=heatmaps, coords=coords, weights=weights)
    check.heatmaps(xp, heatmaps)
    check.coords(xp, coords)
    check.same_shape(coords, (*heatmaps.shape[:-2], 2), "coords", "heatmaps.shape[:-2] + (2,), one (x, y) per map")
    if weights is not None:
        check.numeric(xp, weights, "weights")
        check.broadcasts_to(weights, tuple(coords.shape[:-1]), "weights", "coords.shape[:-1], one weight per landmark")
    options = {"sigma": sigma, "divergence": divergence, "reduction": reduction}
    return _xp.in_float32(xp, _dsnt, heatmaps, coords, weights=weights, **options)


def _dsnt(
    xp: Any, heatmaps: Array, coords: Array, *, weights: Array | None, sigma: float, divergence: str, reduction: str
) -> Array:
    """Kernel of :func:`dsnt_regularization` (inputs checked)."""
    h, w = heatmaps.shape[-2:]
    p, gt, keep, m = _landmark_maps(xp, heatmaps, coords, weights)
    if divergence == "variance":
        col, row = xp.sum(p, axis=-2), xp.sum(p, axis=-1)  # (..., K, W), (..., K, H): the marginals
        gx, gy = _common.grid(xp, w, p), _common.grid(xp, h, p)
        mx, my = xp.sum(col * gx, axis=-1), xp.sum(row * gy, axis=-1)
        dx, dy = gx - mx[..., None], gy - my[..., None]
        vx, vy = xp.sum(col * dx * dx, axis=-1), xp.sum(row * dy * dy, axis=-1)
        s2 = sigma * sigma
        loss = (vx - s2) ** 2 + (vy - s2) ** 2
    else:
        # the sampled Gaussian, separable, without flushing (dsntnn's exp): exp(-d^2 / 2 sigma^2)
        dx = _common.grid(xp, w, p) - gt[..., 0:1]
        dy = _common.grid(xp, h, p) - gt[..., 1:2]
        k = -0.5 / (sigma * sigma)
        px, py = xp.exp(dx * dx * k), xp.exp(dy * dy * k)
        total = xp.sum(px, axis=-1) * xp.sum(py, axis=-1) + _DSNT_EPS
        q = py[..., :, None] * px[..., None, :] / total[..., None, None]
        if divergence == "kl":
            loss = _kl_divergence(xp, p, q)
        else:
            mid = 0.5 * (p + q)
            loss = 0.5 * _kl_divergence(xp, p, mid) + 0.5 * _kl_divergence(xp, q, mid)
    return _reduce_landmarks(xp, loss, keep, m, reduction)


def _kl_divergence(xp: Any, p: Array, q: Array) -> Array:
    """``sum p (log(p + eps) - log(q + eps))`` over each ``(H, W)`` map (dsntnn's ``_kl``)."""
    return xp.sum(p * (xp.log(p + _DSNT_EPS) - xp.log(q + _DSNT_EPS)), axis=(-2, -1))


# --- the formulas: each as a plain value (autograd differentiates it) and as value + slope ---


def _elementwise(xp: Any, e: Array, y: Array, value: Any, value_and_slope: Any, **params: float) -> Array:
    """The elementwise loss of the error ``e`` at target ``y``.

    On torch, when only ``pred`` needs a gradient, the slope is formed in the same pass as the
    value (:func:`_xp.with_fused_gradient`, ~3x faster than autograd through the formula);
    otherwise autograd, if any, differentiates the plain formula. Both are tested to agree.
    """
    if _xp.fused_gradient_applies(xp, e, y):
        return _xp.with_fused_gradient(lambda e_, y_: value_and_slope(xp, e_, y_, **params), e, y)
    return value(xp, e, y, **params)


def _wing(xp: Any, e: Array, y: Array, *, omega: float, epsilon: float) -> Array:
    return _wing_of_abs(xp, xp.abs(e), omega, epsilon)


def _wing_of_abs(xp: Any, d: Array, omega: float, epsilon: float) -> Array:
    return omega * xp.log1p(xp.where(d < omega, d, omega) / epsilon) + xp.where(d < omega, 0.0, d - omega)


def _wing_fused(xp: Any, e: Array, y: Array, *, omega: float, epsilon: float) -> tuple[Array, Array]:
    d = xp.abs(e)
    slope = xp.where(d < omega, omega / (epsilon + d), 1.0)
    slope *= xp.sign(e)  # 0 at e = 0, as autograd's |e|' is
    return _wing_of_abs(xp, d, omega, epsilon), slope


def _adaptive_wing(xp: Any, e: Array, y: Array, *, omega: float, theta: float, epsilon: float, alpha: float) -> Array:
    d = xp.abs(e)
    power = alpha - xp.clip(y, 0.0, 1.0)
    # (|d|/epsilon)^p below theta; (theta/epsilon)^p, which A and C are built from, above it.
    s = xp.pow(xp.where(d < theta, d, theta) / epsilon, power)
    slope_above = (omega / theta) * power * s / (1.0 + s)  # A, written with s = (theta/epsilon)^p
    return omega * xp.log1p(s) + xp.where(d < theta, 0.0, d - theta) * slope_above


def _adaptive_wing_fused(
    xp: Any, e: Array, y: Array, *, omega: float, theta: float, epsilon: float, alpha: float
) -> tuple[Array, Array]:
    # The same formula with in-place updates of fresh temporaries. The slope is
    # omega * p * s / ((1 + s) * min(|d|, theta)): the derivative of the log branch below theta,
    # and A (the same expression at |d| = theta) above it.
    d = xp.abs(e)
    power = xp.clip(y, 0.0, 1.0)
    power *= -1.0
    power += alpha
    capped = xp.clip(d, None, theta)
    s = capped / epsilon
    s **= power
    value = xp.log1p(s)
    value *= omega
    s /= s + 1.0
    s *= power
    s *= omega  # now omega * p * s / (1 + s)
    d -= theta
    excess = xp.clip(d, 0.0, None)  # |d| - theta above the breakpoint, 0 below
    excess *= s
    excess *= 1.0 / theta
    value += excess
    s /= xp.where(capped > 0, capped, 1.0)  # s is 0 where |d| is: slope 0, not 0/0
    s *= xp.sign(e)
    return value, s


def _soft_wing(xp: Any, e: Array, y: Array, *, omega1: float, omega2: float, epsilon: float) -> Array:
    return _soft_wing_of_abs(xp, xp.abs(e), omega1, omega2, epsilon)


def _soft_wing_of_abs(xp: Any, d: Array, omega1: float, omega2: float, epsilon: float) -> Array:
    # omega2 * ln((epsilon + |d|) / (epsilon + omega1)) = omega2 * ln(1 + |d|/epsilon) + B - omega1
    above = omega2 * xp.log1p(xp.where(d < omega1, 0.0, d - omega1) / (epsilon + omega1))
    return xp.where(d < omega1, d, omega1) + above


def _soft_wing_fused(
    xp: Any, e: Array, y: Array, *, omega1: float, omega2: float, epsilon: float
) -> tuple[Array, Array]:
    d = xp.abs(e)
    slope = xp.where(d < omega1, 1.0, omega2 / (epsilon + d))
    slope *= xp.sign(e)
    return _soft_wing_of_abs(xp, d, omega1, omega2, epsilon), slope


def weighted_loss_map(
    target: Array, /, *, threshold: float = 0.2, foreground_weight: float = 10.0, kernel_size: int = 3
) -> Array:
    """The Weighted Loss Map of Adaptive Wing (Wang et al., ICCV 2019): ``foreground_weight * M + 1``.

    ``M = 1`` where the grey dilation of the target (the max over a ``kernel_size x kernel_size``
    window, clipped at the map's border) exceeds ``threshold``, else 0. It is computed as the
    binary dilation of ``target > threshold``, which is the same set; a NaN pixel counts as not
    above the threshold. Foreground pixels and the
    background pixels next to them get ``foreground_weight + 1``, the rest 1. Multiply it into
    :func:`adaptive_wing_loss` with ``loss_map=``.

    Args:
        target: ``(..., H, W)`` real floating heatmaps, typically ``(..., K, H, W)``.
        threshold: strict threshold on the dilated target (the paper's 0.2).
        foreground_weight: the paper's ``W``, >= 0.
        kernel_size: odd window size, >= 1 (the paper's 3).

    Returns:
        ``(..., H, W)`` in the target's dtype and device; piecewise constant, so no gradient flows
        through it.

    >>> import numpy as np
    >>> t = np.zeros((1, 4)); t[0, 1] = 1.0
    >>> weighted_loss_map(t).tolist()
    [[11.0, 11.0, 11.0, 1.0]]
    """
    xp = _xp.namespace(target=target)
    if target.ndim < 2:
        raise ValueError(f"target must have shape (..., H, W), got shape {tuple(target.shape)}")
    check.floating(xp, target, "target")
    threshold = check.finite(threshold, "threshold")
    foreground_weight = check.at_least(foreground_weight, 0.0, "foreground_weight", "a non-negative weight")
    kernel_size = check.odd_size(kernel_size, "kernel_size", "the window has a centre pixel")
    # max(window) > threshold  <=>  any(window > threshold): dilate a boolean map, 4x less memory
    # than a float max filter and the same answer on every backend.
    near_foreground = _xp.dilate_2d(xp, target > threshold, kernel_size)
    loss_map = xp.astype(near_foreground, target.dtype)
    loss_map *= foreground_weight
    loss_map += 1.0
    return loss_map


def _prepare(pred: Array, target: Array, weights: Array | None, loss_map: Array | None, reduction: str):
    """Validate; return ``(xp, pred - target, target, finish)`` in the working dtype.

    ``finish(loss)`` applies ``loss_map`` and ``weights``, reduces and casts back to the result dtype.
    """
    check.choice(reduction, "reduction", _REDUCTIONS)
    xp = _xp.namespace(pred=pred, target=target, weights=weights, loss_map=loss_map)
    check.floating(xp, pred, "pred")
    check.floating(xp, target, "target")
    shape = tuple(pred.shape)
    check.broadcasts_to(target, shape, "target", "pred's shape")
    out_dtype = xp.result_type(pred.dtype, target.dtype)
    work = _xp.work_dtype(xp, out_dtype)  # 16-bit losses computed and reduced in float32, then cast back
    m = None if weights is None else _aligned(xp, weights, shape, "weights", work)
    w = None if loss_map is None else _aligned(xp, loss_map, shape, "loss_map", work)
    p = pred if pred.dtype == work else xp.astype(pred, work)
    t = target if target.dtype == work else xp.astype(target, work)
    e = p - t
    if m is not None:
        # Masked-out elements contribute nothing, whatever their values: a NaN target (a missing
        # landmark), a NaN or inf prediction or weight there stays out of the loss and its gradient.
        keep = _xp.marked(xp, m)  # the one weights rule: > 0
        m = xp.where(keep, m, 0.0)  # a negative or NaN weight counts as 0, in the mean's denominator too
        t = xp.where(keep, t, 0.0)
        e = xp.where(keep, e, 0.0)
        if w is not None:
            w = xp.where(keep, w, 0.0)
    n = math.prod(shape)

    def finish(loss: Array) -> Array:
        if w is not None:
            loss = loss * w
        if m is not None:
            loss = loss * m
        if reduction == "none":
            out = loss
        elif reduction == "sum":
            out = xp.sum(loss)
        elif m is None:
            out = xp.sum(loss) / max(n, 1)
        else:
            # Each weight stands for n / size elements of the broadcast weights.
            size = math.prod(m.shape)
            total = xp.sum(m) * (n / size if size else 0.0)
            out = _common.weighted_mean(xp, xp.sum(loss), total)
        return out if out.dtype == out_dtype else xp.astype(out, out_dtype)

    return xp, e, t, finish


def _aligned(xp: Any, x: Array, shape: tuple[int, ...], name: str, dtype: Any) -> Array:
    """``x`` aligned with the leading axes of ``shape`` (size-1 axes appended), in ``dtype``."""
    check.numeric(xp, x, name)
    check.leading_axes(x, shape, name)
    if x.ndim < len(shape):
        x = xp.reshape(x, tuple(x.shape) + (1,) * (len(shape) - x.ndim))
    return x if x.dtype == dtype else xp.astype(x, dtype)
