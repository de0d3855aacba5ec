"""SimCC: one 1-D classification per axis at a split ratio (Li et al., ECCV 2022)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from . import _common, _xp
from . import _validation as check
from ._xp import Array
from .coords import CONVENTIONS, Convention, Transform, affine, to_heatmap, to_image
from .dark import blur_radius, nan_landmarks, refine_1d

__all__ = ["SimCCTargets", "decode_simcc", "encode_simcc", "simcc_bins", "simcc_visibility"]


class SimCCTargets(NamedTuple):
    """What :func:`encode_simcc` returns."""

    x_labels: Array
    """``(..., K, W * split_ratio)`` labels over the x bins."""
    y_labels: Array
    """``(..., K, H * split_ratio)`` labels over the y bins."""
    weights: Array
    """``(..., K)`` landmark weights (0: weight 0 given, NaN or outside the image)."""


def simcc_bins(image_size: Sequence[int], split_ratio: float) -> tuple[int, int]:
    """``(W * split_ratio, H * split_ratio)``: the number of x and y bins, which must be whole.

    >>> simcc_bins((192, 256), 2.0)
    (384, 512)
    """
    return _bins(check.size(image_size, "image_size"), split_ratio)


def _bins(size: tuple[int, int], split_ratio: float) -> tuple[int, int]:
    """:func:`simcc_bins` for an image size already checked."""
    image_size, (w, h) = size, size
    k = check.positive(split_ratio, "split_ratio")
    bins = []
    for n in (w, h):
        b = round(n * k)
        if b < 1 or abs(b - n * k) > 1e-9 * n * k:
            raise ValueError(
                f"split_ratio * image size must be a whole number of bins per axis, got split_ratio={split_ratio!r} "
                f"and image_size={tuple(image_size)} ({n} * {split_ratio!r} = {n * k!r})"
            )
        bins.append(b)
    if bins[0] * bins[1] > check.MAX_PIXELS:  # the bins' grid is what the coordinate conversion takes
        raise ValueError(
            f"split_ratio={split_ratio!r} makes {bins[0]} x {bins[1]} bins for image_size={tuple(image_size)}: more than 2**40"
        )
    return bins[0], bins[1]


def encode_simcc(
    coords: Array,
    /,
    *,
    image_size: Sequence[int],
    sigma: float | tuple[float, float],
    split_ratio: float = 2.0,
    convention: Convention = "pixel_center",
    normalize: bool = False,
    smoothing: Literal["gaussian", "standard"] = "gaussian",
    label_smooth_weight: float = 0.0,
    weights: Array | None = None,
) -> SimCCTargets:
    """SimCC labels: a sub-bin Gaussian over the x bins and one over the y bins per landmark.

    Each image axis of ``n`` pixels is cut into ``n * split_ratio`` bins. The landmark is moved
    into bin coordinates with :func:`image_to_heatmap` (the bins play the heatmap, with the
    given ``convention``), and each axis gets ``exp(-(b - c)^2 / (2 sigma^2))`` over the bins
    ``b = 0, 1, ...``, centred on the exact, unrounded bin coordinate ``c``.

    ``smoothing="standard"`` is the paper's other label: one-hot at the nearest bin
    (``round(c)``, ties to even as NumPy's ``around``), with ``label_smooth_weight`` ``e``
    spread evenly, ``1 - e`` at that bin and ``e / (n - 1)`` at every other (a distribution).
    Its argmax is the nearest bin: within half a bin of the landmark, never closer.

    Args:
        coords: ``(..., K, 2)`` landmark ``(x, y)`` in image pixels, real floating.
        image_size: ``(W, H)`` of the network input.
        sigma: the Gaussian's standard deviation in bins, 0.06 to 1e4 (mmpose's default is 6 at ratio 2),
            or an ``(x, y)`` pair, one per axis.
        split_ratio: bins per image pixel, > 0 (the paper's k; 2 by default); ``W * split_ratio``
            and ``H * split_ratio`` must be whole numbers.
        convention: how image pixels map onto bins (see :mod:`landmark_codecs.coords`):
            ``"pixel_center"`` (default), ``"legacy"`` (``b = x * split_ratio``, mmpose's SimCC) or
            ``"udp"``. Decode with the same one.
        normalize: divide each label by its sum (a distribution over the bins). mmpose divides by
            ``sigma * sqrt(2 pi)`` instead, which is the sum only away from the ends.
        smoothing: ``"gaussian"`` (the default) or ``"standard"`` (one-hot, label smoothing).
        label_smooth_weight: ``e`` in ``[0, 1]``, for ``smoothing="standard"`` only.
        weights: optional ``(..., K)`` per-landmark weights or visibility (bool or numeric);
            0 leaves the landmark out.

    Returns:
        :class:`SimCCTargets` ``(x_labels, y_labels, weights)`` in the dtype and on the device of
        ``coords``. A landmark of weight 0, NaN or outside the bins' valid range
        ``[-0.5, W_b - 0.5) x [-0.5, H_b - 0.5)`` gets weight 0 and all-zero labels.

    Convention:
        ``(x, y)`` in image pixels, integers at pixel centres; sizes are ``(W, H)``.

    Reference:
        Y. Li, S. Yang, P. Liu, S. Zhang, Y. Wang, Z. Wang, W. Yang and S.-T. Xia, "SimCC: a Simple
        Coordinate Classification Perspective for Human Pose Estimation", ECCV 2022.

    >>> import numpy as np
    >>> x_labels, y_labels, weights = encode_simcc(np.array([[1.25, 0.5]]), image_size=(4, 2), sigma=1.0)
    >>> x_labels.shape, y_labels.shape, np.round(x_labels, 3).tolist()  # x = 1.25 px is bin (1.25 + 0.5) * 2 - 0.5 = 3
    ((1, 8), (1, 4), [[0.011, 0.135, 0.607, 1.0, 0.607, 0.135, 0.011, 0.0]])
    """
    options = simcc_encode_options(
        image_size, sigma, split_ratio, convention, normalize, smoothing, label_smooth_weight
    )
    xp = _xp.namespace(coords=coords, weights=weights)
    _common.check_landmarks(xp, coords, weights)
    return _xp.in_float32(xp, simcc_targets, coords, weights=weights, **options)


def simcc_encode_options(
    image_size: Sequence[int],
    sigma: float | tuple[float, float],
    split_ratio: float,
    convention: str,
    normalize: bool,
    smoothing: str,
    label_smooth_weight: float,
) -> dict[str, Any]:
    """:func:`encode_simcc`'s options checked, as :func:`simcc_targets` takes them."""
    check.choice(convention, "convention", CONVENTIONS)
    sigmas = check.axis_sigmas(sigma)
    normalize = check.boolean(normalize, "normalize")
    check.choice(smoothing, "smoothing", ("gaussian", "standard"))
    smooth = check.finite(label_smooth_weight, "label_smooth_weight")
    if not 0.0 <= smooth <= 1.0:
        raise ValueError(f"label_smooth_weight must be in [0, 1], got {label_smooth_weight!r}")
    if smooth > 0 and smoothing != "standard":
        raise ValueError(f'label_smooth_weight is only used with smoothing="standard", got {label_smooth_weight!r}')
    size = check.size(image_size, "image_size")
    bins = _bins(size, split_ratio)
    transform = affine(size, bins, convention)
    return {"transform": transform, "bins": bins, "sigmas": sigmas, "smoothing": smoothing, "smooth": smooth} | {
        "normalize": normalize
    }


def simcc_targets(
    xp: Any,
    coords: Array,
    *,
    weights: Array | None,
    transform: Transform,
    bins: tuple[int, int],
    sigmas: tuple[float, float],
    smoothing: str,
    smooth: float,
    normalize: bool,
) -> SimCCTargets:
    """Kernel of :func:`encode_simcc` (inputs checked; ``transform`` from image pixels to bins)."""
    in_bins = to_heatmap(xp, coords, transform)
    safe, weights, keep = _common.landmark_weights(xp, in_bins, weights, bins)
    zero = xp.zeros((), dtype=coords.dtype, device=_xp.device(coords))
    labels = []
    for axis in (0, 1):
        if smoothing == "standard":
            profile = _standard_label(xp, safe[..., axis], bins[axis], smooth)
        else:
            profile = _common.gaussian_profile(xp, safe[..., axis], bins[axis], sigmas[axis])
        profile = xp.where(keep[..., None], profile, zero)
        if normalize:
            total = xp.sum(profile, axis=-1, keepdims=True)
            profile = profile / xp.where(total > 0, total, xp.ones_like(total))
        labels.append(profile)
    return SimCCTargets(labels[0], labels[1], weights)


def _standard_label(xp: Any, centre: Array, n: int, smooth: float) -> Array:
    """One-hot at ``round(centre)`` (clipped into the bins), ``smooth`` spread over the rest."""
    hot = xp.clip(xp.round(centre), 0, n - 1)
    grid = _common.grid(xp, n, centre)
    one = xp.asarray(1.0 - smooth, dtype=centre.dtype, device=_xp.device(centre))
    rest = xp.asarray(smooth / (n - 1) if n > 1 else 0.0, dtype=centre.dtype, device=_xp.device(centre))
    return xp.where(grid == hot[..., None], one, rest)


def decode_simcc(
    x_labels: Array,
    y_labels: Array,
    /,
    *,
    image_size: Sequence[int],
    split_ratio: float = 2.0,
    convention: Convention = "pixel_center",
    refine: Literal["none", "dark"] = "dark",
    sigma: float | tuple[float, float] | None = None,
    iterations: int = 4,
    kernel_size: int | None = None,
) -> _common.DecodedLandmarks:
    """SimCC decoding: the argmax bin per axis, optionally refined in 1-D as DARK does, in image pixels.

    - ``refine="dark"`` (the default, as the codec's): from the first maximal bin, :func:`decode_dark`'s refinement in 1-D: Newton steps on the
      log of the labels correlated with a Gaussian of ``sigma`` bins, normalized by that
      Gaussian's energy over the bins that exist (exact at both ends of the axis). On labels from
      :func:`encode_simcc` with the same ``sigma >= 1``, convention and ratio it returns the
      landmark to 1e-9 bins in float64 and 2e-4 bins in float32 (a bin is ``1 / split_ratio``
      image px). Negative label values (logits)
      count as 0: apply a softmax or pass scores.
    - ``refine="none"``: the first maximal bin on each axis (error up to half a bin,
      ``0.5 / split_ratio`` image pixels per axis, on exact labels; mmpose's default).

    Args:
        x_labels: ``(..., K, W * split_ratio)`` real floating scores over the x bins.
        y_labels: ``(..., K, H * split_ratio)`` scores over the y bins, same leading shape.
        image_size: ``(W, H)`` of the network input.
        split_ratio: bins per image pixel, as encoded.
        convention: as encoded (see :func:`encode_simcc`).
        refine: ``"dark"`` or ``"none"``.
        sigma: the labels' sigma in bins, 0.06 to 1e4, or an ``(x, y)`` pair; required by
            ``refine="dark"``.
        iterations: Newton steps for ``refine="dark"``, 1 to 100.
        kernel_size: odd blur kernel side in bins for ``refine="dark"``, default ``2 * ceil(2.5 sigma) + 1``
            (per axis).

    Returns:
        ``(coords, scores)``: ``(..., K, 2)`` ``(x, y)`` in image pixels and ``(..., K)`` scores, the
        smaller of the two axes' maxima (as mmpose), in the labels' dtype and on their device. A
        landmark with a NaN in either label gets NaN coordinates and score 0.

    Convention:
        ``(x, y)`` in image pixels, integers at pixel centres; sizes are ``(W, H)``.

    >>> import numpy as np
    >>> targets = encode_simcc(np.array([[1.3, 0.5]]), image_size=(4, 2), sigma=1.0)
    >>> coords, scores = decode_simcc(targets.x_labels, targets.y_labels, image_size=(4, 2), sigma=1.0)
    >>> np.round(coords, 9).tolist()
    [[1.3, 0.5]]
    """
    options = simcc_decode_options(image_size, split_ratio, convention, refine, sigma, iterations, kernel_size)
    xp = _xp.namespace(x_labels=x_labels, y_labels=y_labels)
    x_labels, y_labels = check_labels(xp, x_labels, y_labels, options["bins"], image_size, split_ratio)
    return _xp.in_float32(xp, simcc_coords, x_labels, y_labels, **options)


def simcc_decode_options(
    image_size: Sequence[int],
    split_ratio: float,
    convention: str,
    refine: str,
    sigma: float | tuple[float, float] | None,
    iterations: int,
    kernel_size: int | None,
) -> dict[str, Any]:
    """:func:`decode_simcc`'s options checked, as :func:`simcc_coords` takes them (and ``bins``)."""
    check.choice(convention, "convention", CONVENTIONS)
    check.choice(refine, "refine", ("none", "dark"))
    size = check.size(image_size, "image_size")
    bins = _bins(size, split_ratio)
    refinement = None
    if refine == "dark":
        if sigma is None:
            raise ValueError(
                'refine="dark" (the default) needs sigma, the labels\' standard deviation in bins; '
                'refine="none" decodes the plain argmax bin'
            )
        dark_sigmas = check.axis_sigmas(sigma)
        check.iterations(iterations)
        # A patch wider than the labels covers them from any argmax: the same result, bounded cost.
        radii = [min(blur_radius(s, kernel_size), n - 1) for s, n in zip(dark_sigmas, bins)]
        refinement = (dark_sigmas, iterations, radii)
    return {"transform": affine(size, bins, convention), "refinement": refinement, "bins": bins}


def check_labels(
    xp: Any, x_labels: Array, y_labels: Array, bins: tuple[int, int], image_size: Sequence[int], split_ratio: float
) -> tuple[Array, Array]:
    """The boundary's checks of SimCC's x and y labels; returns them promoted to one dtype."""
    for name, labels, n in (("x_labels", x_labels, bins[0]), ("y_labels", y_labels, bins[1])):
        check.floating(xp, labels, name)
        if labels.ndim < 2 or labels.shape[-1] != n:
            raise ValueError(
                f"{name} must have shape (..., K, {n}) ({'W' if name[0] == 'x' else 'H'} * split_ratio bins for "
                f"image_size={tuple(image_size)}, split_ratio={split_ratio!r}), got shape {tuple(labels.shape)}"
            )
    if x_labels.shape[:-1] != y_labels.shape[:-1]:
        raise ValueError(
            f"x_labels and y_labels must share their leading shape (..., K), got {tuple(x_labels.shape)} and {tuple(y_labels.shape)}"
        )
    return check.promoted(xp, x_labels, y_labels)


def simcc_coords(
    xp: Any,
    x_labels: Array,
    y_labels: Array,
    *,
    transform: Transform,
    refinement: tuple[tuple[float, float], int, list[int]] | None,
    bins: tuple[int, int] | None = None,
) -> _common.DecodedLandmarks:
    """Kernel of :func:`decode_simcc` (labels checked and of one dtype; ``refinement`` DARK's
    ``(sigmas, iterations, radii)`` or None for the argmax bin)."""
    if refinement is None and _FAST_NUMPY and type(x_labels) is np.ndarray and type(y_labels) is np.ndarray:
        return _argmax_decode_numpy(xp, x_labels, y_labels, transform)
    position, best = [], []
    for axis, labels in enumerate((x_labels, y_labels)):
        index = xp.argmax(labels, axis=-1, keepdims=True)
        best.append(_xp.take_along_last(xp, labels, index)[..., 0])
        if refinement is not None:
            sigmas, iterations, radii = refinement
            p = refine_1d(xp, labels, index, sigmas[axis], iterations, radii[axis])
            position.append(p if p.dtype == labels.dtype else xp.astype(p, labels.dtype))
        else:
            position.append(xp.astype(index[..., 0], labels.dtype))
    in_bins = xp.stack(position, axis=-1)
    coords = to_image(xp, in_bins, transform)
    # NaN in either axis: a NaN minimum (the NaN max is NumPy's and torch's argmax's pick).
    scores = xp.where(
        xp.isnan(best[0]) | xp.isnan(best[1]),
        xp.asarray(math.nan, dtype=best[0].dtype, device=_xp.device(best[0])),
        xp.minimum(best[0], best[1]),
    )
    return _common.DecodedLandmarks(*nan_landmarks(xp, coords, scores))


# One instance's refine="none" decode is a few microseconds of arithmetic under ~40 us of
# generic array-API calls; plain NumPy arrays take this direct path, the same operations in the
# same order (tests/test_udp_simcc.py checks the bits against the general path).
_FAST_NUMPY = True


def _argmax_decode_numpy(
    xp: Any, x_labels: np.ndarray, y_labels: np.ndarray, transform: Transform
) -> _common.DecodedLandmarks:
    """:func:`simcc_coords` without refinement, for NumPy arrays: the same result in a third of
    the calls (one instance per call is what mmpose's heads decode; tested equal)."""
    dtype = x_labels.dtype
    ix, iy = x_labels.argmax(axis=-1), y_labels.argmax(axis=-1)
    rows = np.arange(ix.size)
    vx = x_labels.reshape(ix.size, -1)[rows, ix.reshape(-1)].reshape(ix.shape)
    vy = y_labels.reshape(iy.size, -1)[rows, iy.reshape(-1)].reshape(iy.shape)
    in_bins = np.empty((*ix.shape, 2), dtype=dtype)
    in_bins[..., 0], in_bins[..., 1] = ix, iy
    coords = to_image(xp, in_bins, transform)  # xp: NumPy's namespace (array-api-compat's before 2.1)
    scores = np.minimum(vx, vy)  # NaN in either axis propagates: that landmark has none
    bad = np.isnan(scores)
    if bad.any():
        coords[bad] = math.nan
        scores[bad] = 0
    return _common.DecodedLandmarks(coords, scores)


@_xp.non_finite_settled
def simcc_visibility(
    x_labels: Array, y_labels: Array, /, *, sigma: float | tuple[float, float], beta: float = 150.0
) -> Array:
    """RTMPose's visibility from SimCC labels: per axis the peak probability of
    ``softmax(labels * beta * sigma)``, the smaller of the two (mmpose's ``decode_visibility``).

    The peak probability is ``1 / sum_j exp((labels_j - max) * beta * sigma)``, taken relative to
    the maximum so labels of any finite size neither overflow nor divide by zero: in ``(0, 1]``,
    ``1 / (number of bins)`` for flat labels and ``1 / m`` for ``m`` tied maxima. A landmark whose
    labels on either axis hold a NaN or an infinite maximum gets NaN; others are unaffected.

    Args:
        x_labels: ``(..., K, W * split_ratio)`` real floating scores over the x bins.
        y_labels: ``(..., K, H * split_ratio)`` over the y bins, same leading shape and dtype.
        sigma: the labels' sigma in bins, or an ``(x, y)`` pair (mmpose scales each axis by its own).
        beta: the softmax's inverse temperature per unit of sigma, > 0 (mmpose's ``decode_beta``).

    Returns:
        ``(..., K)`` visibilities in the labels' dtype and device.

    Reference:
        T. Jiang et al., "RTMPose: Real-Time Multi-Person Pose Estimation based on MMPose", 2023.

    >>> import numpy as np
    >>> t = encode_simcc(np.array([[10.25, 3.0]]), image_size=(16, 8), sigma=2.0)
    >>> [round(v, 4) for v in simcc_visibility(t.x_labels, t.y_labels, sigma=2.0, beta=1.0).tolist()]
    [0.1332]
    >>> simcc_visibility(t.x_labels, t.y_labels, sigma=2.0).tolist()  # y = 3.0 lies between two bins: a tie
    [0.5]
    """
    sigmas = check.axis_sigmas(sigma)
    beta = check.positive(beta, "beta")
    xp = _xp.namespace(x_labels=x_labels, y_labels=y_labels)
    for name, labels in (("x_labels", x_labels), ("y_labels", y_labels)):
        check.floating(xp, labels, name)
        if labels.ndim < 2 or labels.shape[-1] < 1:
            raise ValueError(f"{name} must have shape (..., K, bins) with bins >= 1, got shape {tuple(labels.shape)}")
    if x_labels.shape[:-1] != y_labels.shape[:-1]:
        raise ValueError(
            f"x_labels and y_labels must share their leading shape (..., K), got {tuple(x_labels.shape)} and {tuple(y_labels.shape)}"
        )
    x_labels, y_labels = check.promoted(xp, x_labels, y_labels)
    return _xp.in_float32(xp, _visibility, x_labels, y_labels, sigmas=sigmas, beta=beta)


def _visibility(xp: Any, x_labels: Array, y_labels: Array, *, sigmas: tuple[float, float], beta: float) -> Array:
    peaks = []
    for labels, s in zip((x_labels, y_labels), sigmas):
        top = xp.max(labels, axis=-1, keepdims=True)
        finite = xp.isfinite(top)
        shift = xp.where(finite, top, xp.zeros_like(top))
        # (labels - max) <= 0, so exp never overflows; a difference of -inf weighs 0
        total = xp.sum(xp.exp((labels - shift) * (beta * s)), axis=-1)
        nan = xp.asarray(math.nan, dtype=labels.dtype, device=_xp.device(labels))
        peaks.append(xp.where(finite[..., 0], 1 / total, nan))
    return xp.minimum(peaks[0], peaks[1])
