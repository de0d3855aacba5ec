"""The benchmark: decode error against heatmap resolution, per codec, on seeded landmarks.

``landmark-codecs bench`` (or ``python -m landmark_codecs bench``) runs :func:`run` for each
prediction model and prints a table per model. Landmarks (synthetic and uniform in an
``image_size x image_size`` crop by default, or read by :func:`load_keypoints`) are mapped to
each heatmap size with the codec's convention (``"pixel_center"``; UDP its corner-aligned one),
encoded, perturbed by the prediction model, decoded and mapped back; the error is the Euclidean
distance to the truth, in heatmap and image pixels, and as NME when the set has eye corners.
``--speed`` runs :func:`landmark_codecs.bench._speed.run_speed` instead, and
``--predictions FILE.npz`` :func:`decode_predictions` (every decoder on a network's saved
outputs, scored with :mod:`landmark_codecs.metrics`).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

import numpy as np

from .. import metrics, pipnet_neighbors
from .._xp import namespace, to_host
from ..codecs import Codec, H3RCodec, codec_options, get_codec
from ._landmarks import (
    DEFAULT_EYE_CORNERS,
    MEAN_SHAPES,
    POSE_LAYOUTS,
    Landmarks,
    check_eye_corners,
    load_keypoints,
    mean_shape,
    synthetic_landmarks,
)
from ._predictions import (
    DECODERS,
    Decoded,
    PredictionRow,
    ced_plot,
    decode_predictions,
    format_predictions,
    load_predictions,
)
from ._specs import parse_codec
from ._verdict import EXACT, tied
from ._verdict import figure as _figure
from ._verdict import wrap as _wrap

__all__ = [
    "DECODERS",
    "DEFAULT_CODECS",
    "DEFAULT_EYE_CORNERS",
    "DEFAULT_SIZES",
    "MEAN_SHAPES",
    "MODELS",
    "POSE_LAYOUTS",
    "Decoded",
    "Landmarks",
    "PredictionRow",
    "Row",
    "array_backend",
    "bench_codec",
    "ced_plot",
    "check_eye_corners",
    "decode_predictions",
    "format_predictions",
    "format_report",
    "format_table",
    "format_verdict",
    "head_boxes",
    "headline",
    "load_keypoints",
    "load_predictions",
    "mean_shape",
    "output_kinds",
    "parse_codec",
    "perturbed",
    "pose_areas",
    "run",
    "synthetic_landmarks",
    "table_title",
    "write_results",
]

DEFAULT_SIZES: tuple[int, ...] = (4, 8, 16, 32, 64, 128)


# The rows of the default run: codec names of :func:`landmark_codecs.get_codec`, with options after
# colons (``name:key=value:...``). The softmax codecs decode logits, as their networks output.
# The quarter shift is shown on a sub-pixel target: on its own rounded one (MSRA's) the two
# neighbours tie: noise-free it equals argmax, and under noise the shift only adds error.
# Each codec's noise stream (with the seed and the size): the published defaults keep the numbers
# they had (their places in the sorted first ten), a codec named by --codecs gets 10, and a default
# added later the next number, so that adding one changes no other row of the published tables.
_FIRST_DEFAULTS = (
    "argmax",
    "dark",
    "h3r",
    "h3r:expected=True",
    "h3r:expected=True:activation=window",
    "pipnet",
    "quarter:rounding=none",
    "simcc",
    "soft_argmax",
    "udp",
)
_OTHER_STREAM = len(_FIRST_DEFAULTS)
_STREAMS = {spec: i for i, spec in enumerate(_FIRST_DEFAULTS)} | {"local_soft_argmax": 11, "locref": 12}

DEFAULT_CODECS: tuple[str, ...] = (
    "argmax",
    "quarter:rounding=none",
    "dark",
    "udp",
    "simcc",
    "h3r:expected=True",
    "h3r:expected=True:activation=window",
    "h3r",
    "soft_argmax",
    "pipnet",
    "local_soft_argmax",
    "locref",
)


def _sigma(size: int, image_size: int, sigma_image: float) -> float:
    return max(0.5, sigma_image * size / image_size)


def bench_codec(spec: str, *, image_size: int, size: int, sigma: float, neighbors: Any = None) -> Codec:
    """The codec ``spec`` for a ``size x size`` map (bins per axis for SimCC, grid cells for
    PIPNet) of an ``image_size`` crop, with the bench's defaults under the spec's own options:
    ``sigma`` heatmap px (bins) for the Gaussian codecs (for ``locref`` its radius, 1.5 sigma,
    in the library's pixel convention), ``logits=True`` for the softmax ones, PIPNet's neighbour
    table, and no outside-the-image check (the bench clamps)."""
    name, options = parse_codec(spec)
    if name == "regression":
        raise ValueError(
            f"codec {spec!r} regresses coordinates: it has no heatmap resolution for the bench to sweep "
            "(its round trip is exact to float rounding at any size)"
        )
    fields = codec_options(name)
    defaults: dict[str, Any] = {"on_outside": "ignore"}
    if "sigma" in fields and name != "h3r":  # H3R's target is one-hot unless asked
        defaults["sigma"] = sigma
    if name == "megvii":  # the odd kernel (>= 5) whose OpenCV sigma, 0.3 (k / 2 - 1.5) + 0.8, is nearest
        defaults["kernel_size"] = 2 * max(2, round((sigma - 0.8) / 0.3 + 1)) + 1
    if name == "udp_combined":  # mmpose's disk (radius_factor 0.0546875 of the side) and blur, within the map
        defaults["radius"] = max(1.0, 0.0546875 * size)
        defaults["kernel_size"] = min(23, 2 * size - 1)
    if name == "locref":  # the bench's crops are in the library's convention; DeepLabCut's sigma rule
        defaults["convention"] = "pixel_center"
        defaults["radius"] = 1.5 * sigma  # its std is 2 radius / 3: the other Gaussian codecs' sigma
    if "logits" in fields:
        defaults["logits"] = True
    if name == "simcc":
        defaults["split_ratio"] = size / image_size
    if name == "pipnet":
        defaults["neighbors"] = neighbors
    try:
        return get_codec(
            name,
            image_size=(image_size,) * 2,
            heatmap_size=None if name == "simcc" else (size, size),
            **{**defaults, **options},
        )
    except TypeError as err:
        raise ValueError(f"codec {spec!r}: {err}") from None


def output_kinds(codec: Codec) -> tuple[str, ...]:
    """How the realistic model perturbs each output: ``"map"`` (x the peak over the last two
    axes), ``"labels"`` (x the peak over the last axis), ``"logits"`` (a probability map a network
    predicts through a softmax: its log, see :func:`run`) or ``"cells"`` (regressed offsets, in
    cells: one draw per map)."""
    if codec.name == "simcc":
        return ("labels", "labels")
    if codec.name == "pipnet":
        return ("map", "cells", "cells")
    if codec.name in (
        "udp_combined",
        "locref",
    ):  # offsets in units of the radius (of locref_std), one draw per map as PIPNet's
        return ("map", "cells")
    return ("logits",) if getattr(codec, "logits", False) else ("map",)


MODELS: dict[str, str] = {
    "noise-free": "noise-free: the exact target decoded, quantization error alone",
    "realistic": "realistic: expected target at a displaced landmark, perturbed in its network's output space",
}


@dataclass(frozen=True)
class Row:
    model: str
    codec: str
    size: int
    mean_error_heatmap_px: float
    mean_error_image_px: float
    max_error_image_px: float
    nme_percent: float | None  # mean error / outer-eye-corner distance, per face, then averaged
    failure_rate: float | None = None  # FR@0.1: the fraction of faces with NME above 10 %
    auc: float | None = None  # AUC@0.1 of the faces' NMEs, exact (landmark_codecs.metrics.auc)
    ap: float | None = None  # COCO keypoint AP, percent (coco17 layouts)
    ap50: float | None = None
    ap75: float | None = None
    pckh: float | None = None  # PCKh@0.5, percent, MPII's mean without pelvis and thorax (mpii16)
    pckh_01: float | None = None  # PCKh@0.1, percent (mpii16)
    verdict: str | None = None  # "best" or "tied" (with the best at this size and model), see run


def run(
    landmarks: Landmarks | None = None,
    *,
    codecs: Sequence[str] = DEFAULT_CODECS,
    sizes: Sequence[int] = DEFAULT_SIZES,
    model: str = "noise-free",
    noise: float = 0.05,
    displacement: float = 0.25,
    sigma_image: float = 8.0,
    seed: int = 0,
    backend: str = "numpy",
    device: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[Row]:
    """Mean and max decode error, and NME, per codec and heatmap size (float64).

    Each codec (a :func:`landmark_codecs.get_codec` name with options, see :func:`parse_codec`
    and :func:`bench_codec`) encodes the landmarks, in crop pixels; its outputs are perturbed by
    the prediction ``model`` and decoded back to crop pixels; the error is the Euclidean
    distance to the truth in image pixels. Landmarks outside the crop (or NaN) are encoded
    clamped to it and left out of every statistic.

    - ``"noise-free"``: the exact target is decoded (the codec's quantization error alone).
    - ``"realistic"``: the codec's *expected* target (for a sampled ``h3r``, the expectation a
      network trained on samples learns) for the landmark displaced by ``N(0, displacement^2)``
      heatmap px per axis (bins for SimCC, cells for PIPNet) and clamped to the map's valid
      range (a target cannot lie outside it), perturbed in the space its network is trained in
      (:func:`output_kinds`):

      - heatmaps trained by regression (the Gaussian codecs, SimCC's labels): i.i.d. Gaussian
        noise of ``noise`` x the target's peak on every pixel (or bin);
      - maps decoded through a softmax (H3R, soft-argmax): the logits
        ``log((1 - m) p + m / (H W)) + N(0, s^2)`` of the normalized target ``p``, with
        ``m = 0.1 noise`` of the mass spread over the map and ``s = 10 noise`` logit units
        (0.5 % and 0.5 at the default 0.05, as measured on trained H3R networks);
      - PIPNet's regressed offsets: ``noise`` cells, one draw per map broadcast over its cells:
        decoding reads each offset map at one cell, so this is distributed exactly as per-cell
        noise at a fraction of the cost.

    ``sigma_image`` is the Gaussian sigma in image pixels (8 = 2 heatmap px at 64x64 from 256),
    scaled to each size and floored at 0.5 heatmap px. Everything is drawn from NumPy generators
    seeded by ``seed`` (and the size), so ``backend="torch"`` decodes the same targets.
    ``progress(done, total, label)`` is called after each (codec, size).

    Scores: faces with ``eye_corners`` get NME (per face, over the outer-eye-corner distance),
    FR@0.1 and AUC@0.1; a ``"coco17"`` layout gets COCO keypoint AP (:func:`metrics.coco_ap`,
    each instance's area its keypoints' bounding box, :func:`pose_areas`, its score the mean of
    the decoder's confidences); ``"mpii16"`` gets PCKh@0.5 (:func:`metrics.pckh`, head boxes from
    the neck and head top, :func:`head_boxes`); anything else the mean error alone.

    Verdict: per size, the codec with the best :func:`headline` figure (ties broken by the
    lower mean error) is ``"best"``; another is ``"tied"`` when its figure equals the best's, or
    when the 95 % confidence interval (normal approximation, ``1.96 sd / sqrt(n)``) of the mean
    paired difference between the two over the same units (per-face NME, per-instance OKS,
    per-instance PCKh, or per-landmark error) contains 0.
    """
    landmarks = synthetic_landmarks(seed=seed) if landmarks is None else landmarks
    image_size = landmarks.image_size
    names = [parse_codec(c)[0] for c in codecs]
    if model not in MODELS:
        raise ValueError(f"unknown prediction model {model!r}; choose from {', '.join(MODELS)}")
    for size in sizes:
        if not 2 <= size <= image_size:
            raise ValueError(f"heatmap size {size} must be between 2 and the crop size {image_size}")
    if not (noise >= 0 and displacement >= 0):
        raise ValueError(f"noise and displacement must be >= 0, got {noise} and {displacement}")
    n, k = landmarks.coords.shape[:2]
    if "pipnet" in names and k < 2:
        raise ValueError("pipnet needs at least 2 landmarks per shape (it predicts each from its neighbours)")
    for spec in codecs:  # every option checked before any work (PIPNet's table is built below)
        if not spec.startswith("pipnet"):
            bench_codec(spec, image_size=image_size, size=min(sizes, default=2), sigma=1.0)
    to_backend = array_backend(backend, device)
    truth = landmarks.coords
    inside = np.all((truth >= -0.5) & (truth < image_size - 0.5), axis=-1)
    if not inside.any():
        raise ValueError(f"no landmark lies inside the {image_size}x{image_size} crop")
    encoded = np.where(
        inside[..., None], truth, np.clip(np.nan_to_num(truth, nan=image_size / 2), -0.5, image_size - 0.5 - 1e-6)
    )
    iod = None
    if landmarks.eye_corners is not None:
        check_eye_corners(landmarks.eye_corners, k)
        i, j = landmarks.eye_corners
        iod = np.linalg.norm(truth[:, i] - truth[:, j], axis=-1)
    table = None
    if "pipnet" in names:
        count = inside.sum(axis=0)[:, None]  # a landmark never inside the crop sits at the centre
        mean_shape = np.where(
            count > 0, np.where(inside[..., None], truth, 0).sum(axis=0) / np.maximum(count, 1), image_size / 2
        )
        table = pipnet_neighbors(mean_shape, num_neighbors=min(10, k - 1))
    rows = []
    units: dict[tuple[str, int], np.ndarray] = {}  # the paired samples behind each row's verdict
    total, done = len(codecs) * len(sizes), 0
    for spec in codecs:
        for size in sizes:
            rng = np.random.default_rng([seed, size, _STREAMS.get(spec, _OTHER_STREAM)])
            codec = bench_codec(
                spec, image_size=image_size, size=size, sigma=_sigma(size, image_size, sigma_image), neighbors=table
            )
            if model == "realistic" and isinstance(codec, H3RCodec) and codec.samples:
                codec = dataclasses.replace(codec, expected=True)  # what a network trained on samples learns
            kinds = output_kinds(codec)
            decoded, confidence = np.empty_like(truth), np.empty(truth.shape[:-1])
            # maps per landmark: PIPNet's score, offsets, neighbour offsets; UDP's disk and two offsets
            maps = 1 + 2 + 2 * table.index.shape[-1] if table is not None and codec.name == "pipnet" else 1
            maps = 3 if codec.name == "udp_combined" else maps
            step = max(1, _CHUNK_VALUES // (k * size * size * maps))
            for start in range(0, n, step):
                c_img = encoded[start : start + step]
                if model == "realistic":  # a prediction stays on the map and in the image
                    c = codec.to_heatmap(c_img)
                    c = np.clip(c + rng.normal(0.0, displacement, size=c.shape), -0.5, size - 0.5 - 1e-9 * size)
                    # UDP's map reaches past the image's edges, where a codec's target is empty
                    c_img = np.clip(codec.to_image(c), -0.5, image_size - 0.5 - 1e-9 * image_size)
                target = codec.encode(to_backend(c_img), rng=rng).outputs
                level = noise if model == "realistic" else 0.0
                target = tuple(perturbed(t, kind, level, rng, to_backend) for t, kind in zip(target, kinds))
                out = codec.decode(*target)
                decoded[start : start + step] = to_host(out.coords)
                confidence[start : start + step] = to_host(out.scores)
            err = np.linalg.norm(decoded - truth, axis=-1)
            kept = err[inside]
            scored: dict[str, float | None] = {}
            if iod is not None:
                faces = inside.any(axis=1) & (iod > 0)
                if faces.any():
                    per_face = metrics.nme(decoded[faces], truth[faces], weights=inside[faces], normalizer=iod[faces])
                    units[spec, size] = per_face
                    scored.update(
                        nme_percent=float(100 * per_face.mean()),
                        failure_rate=float(metrics.failure_rate(per_face)),
                        auc=float(metrics.auc(per_face)),
                    )
            elif landmarks.layout is not None:
                scored.update(_pose_scores(landmarks.layout, decoded, truth, inside, confidence, units, (spec, size)))
            else:
                units[spec, size] = kept
            rows.append(
                Row(
                    model,
                    spec,
                    size,
                    float(kept.mean() * size / image_size),
                    float(kept.mean()),
                    float(kept.max()),
                    scored.pop("nme_percent", None),
                    **cast(dict[str, Any], scored),
                )
            )
            done += 1
            if progress is not None:
                progress(done, total, f"{model} {spec} {size}x{size}")
    return _with_verdicts(rows, units)


def headline(rows: Sequence[Row]) -> tuple[str, str, bool]:
    """The figure a verdict ranks ``rows`` by: (``Row`` field, its label, whether higher is
    better): COCO AP for coco17 keypoints, PCKh for mpii16, NME for faces, mean error otherwise."""
    if any(r.ap is not None for r in rows):
        return "ap", "COCO AP %", True
    if any(r.pckh is not None for r in rows):
        return "pckh", "PCKh@0.5 %", True
    if any(r.nme_percent is not None for r in rows):
        return "nme_percent", "NME %", False
    return "mean_error_image_px", "mean error (image px)", False


def _with_verdicts(rows: list[Row], units: dict[tuple[str, int], np.ndarray]) -> list[Row]:
    """``rows`` with ``verdict`` set: per size, ``"best"`` for the codec with the best headline
    figure, ``"tied"`` for those statistically indistinguishable from it (see :func:`run`)."""
    field, _, higher = headline(rows)
    sign = 1.0 if higher else -1.0
    marked = {}
    for size in dict.fromkeys(r.size for r in rows):
        mine = [r for r in rows if r.size == size and _finite(getattr(r, field))]
        if not mine:
            continue

        def rank(r: Row, mine: list[Row] = mine) -> tuple[int, int, int]:
            # Figures within float rounding (EXACT) are equal, so that which exact codec is
            # "best" does not depend on a CPU's last bits: then the lower mean error (a saturated
            # PCKh of 100), then the order the codecs were given in.
            return (
                round(sign * getattr(r, field) / EXACT),
                round(-r.mean_error_image_px / EXACT),
                -mine.index(r),
            )

        best = max(mine, key=rank)
        marked[best.codec, size] = "best"
        for r in mine:
            if r is not best and (
                abs(getattr(r, field) - getattr(best, field)) <= EXACT
                or tied(units.get((r.codec, size)), units.get((best.codec, size)))
            ):
                marked[r.codec, size] = "tied"
    return [dataclasses.replace(r, verdict=marked.get((r.codec, r.size))) for r in rows]


def _finite(value: float | None) -> bool:
    return value is not None and bool(np.isfinite(value))


def _pose_scores(
    layout: str,
    decoded: np.ndarray,
    truth: np.ndarray,
    inside: np.ndarray,
    confidence: np.ndarray,
    units: dict[tuple[str, int], np.ndarray],
    key: tuple[str, int],
) -> dict[str, float | None]:
    """COCO AP (coco17) or MPII's PCKh@0.5 (mpii16) of ``decoded``, in percent, and the paired
    units of the verdict (per-instance OKS, per-instance PCKh); see :func:`run` for the areas,
    scores and head boxes."""
    w = inside.astype(np.float64)
    truth = np.where(inside[..., None], truth, 0.0)  # outside the crop: unlabelled, as COCO's v = 0
    if layout == "coco17":
        areas = pose_areas(truth, inside)
        finite = np.isfinite(confidence) & inside
        scores = np.where(finite, confidence, 0.0).sum(-1) / np.maximum(finite.sum(-1), 1)
        ap = metrics.coco_ap(decoded, truth, areas=areas, scores=scores, weights=w)
        units[key] = metrics.oks(decoded, truth, areas=areas, weights=w)
        return {"ap": 100 * ap.ap, "ap50": 100 * ap.ap50, "ap75": 100 * ap.ap75}
    boxes = head_boxes(truth)
    result = metrics.pckh(decoded, truth, head_boxes=boxes, weights=w)
    # per instance, the same test as metrics.pckh (which pools over instances): the share of its
    # labelled reported joints within half its head size
    side = boxes[:, 1] - boxes[:, 0]
    head = metrics._MPII_HEAD_SHARE * np.hypot(side[:, 0], side[:, 1])
    err = np.hypot(*np.moveaxis(decoded - truth, -1, 0))
    reported = np.isin(np.arange(truth.shape[1]), POSE_LAYOUTS["mpii16"].reported)
    labelled = inside & reported
    hit = labelled & (err <= 0.5 * head[:, None])
    count = labelled.sum(axis=1)
    units[key] = np.where(count > 0, hit.sum(axis=1) / np.maximum(count, 1), np.nan)
    strict = metrics.pckh(decoded, truth, head_boxes=boxes, weights=w, threshold=0.1)
    return {"pckh": float(100 * result.mean), "pckh_01": float(100 * strict.mean)}


def pose_areas(truth: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The OKS area of each instance of ``truth`` ``(N, K, 2)``: its labelled keypoints' bounding
    box, width x height in crop px^2 (COCO uses the segmentation's area, which a synthetic pose
    does not have)."""
    lo = np.where(inside[..., None], truth, np.inf).min(axis=1)
    hi = np.where(inside[..., None], truth, -np.inf).max(axis=1)
    labelled = np.any(inside, axis=1)
    side = np.where(labelled[:, None], hi - lo, 0.0)
    return side[:, 0] * side[:, 1]


def head_boxes(truth: np.ndarray) -> np.ndarray:
    """MPII head boxes ``(N, 2, 2)`` for poses ``(N, 16, 2)`` without annotated ones: the square
    centred between the upper neck (8) and the head top (9) whose side is their distance (its
    head size, 0.6 x the diagonal, is 0.85 x the neck-to-top distance)."""
    neck, top = truth[:, 8], truth[:, 9]
    half = np.linalg.norm(top - neck, axis=-1)[:, None] / 2
    centre = (neck + top) / 2
    return np.stack([centre - half, centre + half], axis=1)


# Values per chunk (landmarks x pixels): about 32 MB of float64 per target array.
_CHUNK_VALUES = 1 << 22


def perturbed(
    target: Any, kind: str, noise: float, rng: np.random.Generator, to_backend: Callable[[np.ndarray], Any]
) -> Any:
    """The realistic model's perturbation of one output of ``kind`` (:func:`output_kinds`) at
    level ``noise`` (see :func:`run`), drawn from ``rng`` on the host and moved by ``to_backend``."""
    xp = namespace(target=target)
    shape = tuple(target.shape)
    if kind == "logits":
        if noise == 0:  # the exact target's log: -inf where it is 0, which the decoders weigh 0
            with np.errstate(divide="ignore"):
                return xp.log(target)
        # A softmax-trained network's logits: the target with a small share of the probability
        # mass spread over the whole map (a softmax is never 0), plus noise in logit units.
        mass = BACKGROUND_MASS_PER_NOISE * noise
        p = target / xp.sum(target, axis=(-2, -1), keepdims=True)
        p = (1.0 - mass) * p + mass / (shape[-1] * shape[-2])
        return xp.log(p) + to_backend(rng.normal(0.0, LOGIT_NOISE_PER_NOISE * noise, size=shape))
    if noise == 0:
        return target
    if kind == "cells":
        return target + to_backend(rng.normal(0.0, noise, size=(*shape[:-2], 1, 1)))
    peak = xp.max(target, axis=(-2, -1) if kind == "map" else -1, keepdims=True)
    return target + to_backend(rng.normal(0.0, noise, size=shape)) * peak


# The realistic model of softmax-decoded codecs, per unit of --noise (0.05 by default: 0.5 % of
# the mass off the target, 0.5 logit units of noise). Measured on the training example's H3R
# networks (500 steps; docs/benchmark.md): 0.4-0.8 % of the softmax mass lies over 2.5 px from
# the landmark, and the background logits sit 9-13 units below the peak with a spread of 0.5-0.8.
BACKGROUND_MASS_PER_NOISE, LOGIT_NOISE_PER_NOISE = 0.1, 10.0


def array_backend(backend: str, device: str | None) -> Callable[[np.ndarray], Any]:
    """NumPy -> the backend's arrays on ``device`` (results come back with ``_xp.to_host``)."""
    if backend == "numpy":
        if device not in (None, "cpu"):
            raise ValueError(f"--device {device} needs --backend torch")
        return lambda a: a
    if backend != "torch":
        raise ValueError(f"unknown backend {backend!r}; choose from numpy, torch")
    try:
        import torch
    except ImportError:
        raise ValueError("--backend torch needs PyTorch (pip install torch)") from None
    try:
        dev = torch.device(device or "cpu")
        if dev.type == "meta":
            raise ValueError("--device meta holds no values to measure: choose cpu or cuda")
        torch.empty(1, device=dev)
    except (RuntimeError, AssertionError) as err:
        raise ValueError(f"--device {device!r} is not usable: {str(err).splitlines()[0]}") from None
    return lambda a: torch.asarray(a, device=dev)


def table_title(
    model: str, *, landmarks: str, image_size: int = 256, noise: float = 0.05, displacement: float = 0.25
) -> str:
    """The first line of ``model``'s table: what was measured, on which landmarks."""
    how = MODELS[model]
    if model == "realistic":
        how += f" (displacement {displacement:g} hm px, noise {noise:g}: x peak on heatmaps, {BACKGROUND_MASS_PER_NOISE * noise:g} background mass and {LOGIT_NOISE_PER_NOISE * noise:g} on logits)"
    return _wrap(f"Decode error, {how}; {landmarks}, {image_size}x{image_size} crop")


# The long table's figure columns: (Row field, header, applies to rows with that field set).
_LONG_COLUMNS = (
    ("mean_error_heatmap_px", "err hm"),
    ("mean_error_image_px", "err img"),
    ("max_error_image_px", "max img"),
    ("nme_percent", "NME %"),
    ("failure_rate", "FR@0.1"),
    ("auc", "AUC@0.1"),
    ("ap", "AP"),
    ("ap50", "AP50"),
    ("ap75", "AP75"),
    ("pckh", "PCKh"),
    ("pckh_01", "PCKh@.1"),
)


def format_table(
    rows: Sequence[Row], *, landmarks: str, image_size: int = 256, noise: float = 0.05, displacement: float = 0.25
) -> str:
    """The long table (``--verbose``; every statistic, also ``--out``'s CSV): one per prediction
    model in ``rows``, each headed by :func:`table_title`. Columns: mean error in heatmap and
    image pixels, max error in image pixels, then the scores the landmarks have (NME %, FR@0.1
    and AUC@0.1 for faces; AP, AP50, AP75 for coco17; PCKh@0.5 for mpii16), four significant
    digits, and the verdict of :func:`run`; a ``-`` is footnoted."""
    width = min(_LABEL, max([5, *(len(r.codec) for r in rows)]))
    columns = [(f, h) for f, h in _LONG_COLUMNS if any(getattr(r, f) is not None for r in rows)]
    blocks = []
    for model in dict.fromkeys(r.model for r in rows):
        lines = [
            table_title(model, landmarks=landmarks, image_size=image_size, noise=noise, displacement=displacement),
            f"{'codec':<{width}} {'size':>7}" + "".join(f" {h:>8}" for _, h in columns) + "  verdict",
        ]
        missing = False
        for r in rows:
            if r.model != model:
                continue
            cells = []
            for f, _ in columns:
                value = getattr(r, f)
                missing |= not _finite(value)
                cells.append(f" {_figure(cast(float, value)) if _finite(value) else '-':>8}")
            label = _label(r.codec, width, lines)
            lines.append(f"{label} {f'{r.size}x{r.size}':>7}{''.join(cells)}  {r.verdict or ''}".rstrip())
        notes = "err hm, err img: mean error in heatmap and image px; max img: the largest, image px"
        if missing:
            notes += "; -: nothing to score there (no landmark inside the crop, or no normalizer)"
        lines.append(_wrap(notes))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


# What the verdict's tie test pairs, per headline figure.
_UNITS = {
    "ap": "per-instance OKS",
    "pckh": "per-instance PCKh",
    "nme_percent": "per-face NME",
    "mean_error_image_px": "per-landmark error",
}


def format_verdict(
    rows: Sequence[Row], *, landmarks: str, image_size: int = 256, noise: float = 0.05, displacement: float = 0.25
) -> str:
    """One compact table per prediction model in ``rows``: codec rows x heatmap-size columns of
    the :func:`headline` figure, ``*`` on the best codec per size and ``=`` on those tied with it
    (``verdict``, see :func:`run`), then per size the best codec and those tied with it, then the
    notes (the tie test; a ``-``'s reason), once per model; every line within 100 columns."""
    field, label, higher = headline(rows)
    blocks = []
    for model in dict.fromkeys(r.model for r in rows):
        mine = [r for r in rows if r.model == model]
        sizes = list(dict.fromkeys(r.size for r in mine))
        codecs = list(dict.fromkeys(r.codec for r in mine))
        width = min(_LABEL, max([5, *(len(c) for c in codecs)]))
        cell = {(r.codec, r.size): r for r in mine}
        lines = [
            table_title(model, landmarks=landmarks, image_size=image_size, noise=noise, displacement=displacement),
            f"{label} ({'higher' if higher else 'lower'} is better; * best at its size, = tied with it):",
            f"{'codec':<{width}}" + "".join(f" {f'{s}x{s}':>10}" for s in sizes),
        ]
        missing = False
        for c in codecs:
            line = _label(c, width, lines)
            for s in sizes:
                r = cell.get((c, s))
                value = None if r is None else getattr(r, field)
                if r is None or not _finite(value):
                    missing = True
                    line += f" {'-':>9} "
                    continue
                mark = {"best": "*", "tied": "="}.get(r.verdict or "", " ")
                line += f" {_figure(cast(float, value)):>9}{mark}"
            lines.append(line.rstrip())
        lines.append("verdict:")
        for s in sizes:
            best = [r.codec for r in mine if r.size == s and r.verdict == "best"]
            tied = [r.codec for r in mine if r.size == s and r.verdict == "tied"]
            values = {getattr(r, field) for r in mine if r.size == s and _finite(getattr(r, field))}
            if best and len(values) == 1 and len(tied) > 0:  # saturated (e.g. PCKh 100): ranked by error
                text = f"all {len(tied) + 1} tied at {_figure(values.pop())}; best (lowest mean error): {best[0]}"
            elif best:
                text = f"best: {best[0]}" + (f" (tied: {', '.join(tied)})" if tied else "")
            else:
                text = "nothing to score"
            lines.append(_wrap(f"  {f'{s}x{s}':<8} {text}", " " * 11))
        notes = [
            f"=: the 95 % confidence interval of the mean paired difference from the best in {_UNITS[field]} "
            "contains 0 (every codec decodes the same seeded samples, so the comparison is paired)"
        ]
        if missing:
            notes.append("-: nothing to score at that size (no landmark inside the crop, or no normalizer)")
        if field == "mean_error_image_px":
            notes.append(
                "NME, FR and AUC need faces: pass --keypoints 300w68 (or wflw98, cofw29, a file) and, for "
                "a layout without default eye corners, --landmarks I,J; coco17 and mpii16 give AP and PCKh"
            )
        lines += [_wrap(n, "   ") for n in notes]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def format_report(
    rows: Sequence[Row],
    *,
    verbose: bool = False,
    landmarks: str,
    image_size: int = 256,
    noise: float = 0.05,
    displacement: float = 0.25,
) -> str:
    """What ``landmark-codecs bench`` prints: per prediction model, its :func:`format_verdict`,
    after its :func:`format_table` with ``verbose`` (``--verbose``)."""
    shown: dict[str, Any] = dict(landmarks=landmarks, image_size=image_size, noise=noise, displacement=displacement)
    blocks = []
    for model in dict.fromkeys(r.model for r in rows):
        mine = [r for r in rows if r.model == model]
        blocks += [format_table(mine, **shown)] if verbose else []
        blocks.append(format_verdict(mine, **shown))
    return "\n\n".join(blocks)


# A codec spec longer than this gets a line of its own above its figures (the widest default,
# "h3r:expected=True:activation=window", would push six sizes past 100 columns).
_LABEL = 24


def _label(codec: str, width: int, lines: list[str]) -> str:
    """``codec`` padded to ``width``; a longer one goes on its own line and a blank is returned."""
    if len(codec) <= width:
        return f"{codec:<{width}}"
    lines.append(codec)
    return " " * width


def write_results(
    rows: Sequence[Row], out: pathlib.Path, *, config: dict[str, Any], titles: dict[str, str]
) -> list[pathlib.Path]:
    """``results.json`` (the configuration and every row), ``results.csv`` (every row: the long
    table, empty cells where a figure does not apply) and, with matplotlib installed,
    ``error-<model>.png`` per prediction model (:func:`landmark_codecs.bench._plots.error_plot`,
    titled by ``titles[model]``) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    data = out / "results.json"
    data.write_text(json.dumps({"config": config, "rows": [asdict(r) for r in rows]}, indent=2) + "\n")
    table = out / "results.csv"
    with table.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[field.name for field in dataclasses.fields(Row)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    written = [data, table]
    try:
        from . import _plots

        _plots.pyplot()
    except ImportError:
        return written
    for model in dict.fromkeys(r.model for r in rows):
        mine = [r for r in rows if r.model == model]
        fig = _plots.error_plot(mine, title=titles[model])
        written.append(_plots.save(fig, out / f"error-{model}.png", source=[asdict(r) for r in mine]))
    return written
