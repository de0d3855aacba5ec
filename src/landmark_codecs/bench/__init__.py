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

import dataclasses
import json
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .. import metrics, pipnet_neighbors
from .._xp import namespace, to_host
from ..codecs import Codec, H3RCodec, codec_options, get_codec
from ._landmarks import (
    DEFAULT_EYE_CORNERS,
    MEAN_SHAPES,
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

__all__ = [
    "DECODERS",
    "DEFAULT_CODECS",
    "DEFAULT_EYE_CORNERS",
    "DEFAULT_SIZES",
    "MEAN_SHAPES",
    "MODELS",
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
    "format_table",
    "load_keypoints",
    "load_predictions",
    "mean_shape",
    "output_kinds",
    "parse_codec",
    "perturbed",
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
)


def _sigma(size: int, image_size: int, sigma_image: float) -> float:
    return max(0.5, sigma_image * size / image_size)


def bench_codec(spec: str, *, image_size: int, size: int, sigma: float, neighbors: Any = None) -> Codec:
    """The codec ``spec`` for a ``size x size`` map (bins per axis for SimCC, grid cells for
    PIPNet) of an ``image_size`` crop, with the bench's defaults under the spec's own options:
    ``sigma`` heatmap px (bins) for the Gaussian codecs, ``logits=True`` for the softmax ones,
    PIPNet's neighbour table, and no outside-the-image check (the bench clamps)."""
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
    if codec.name == "udp_combined":  # offsets in units of the radius, one draw per map as PIPNet's
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
    total, done = len(codecs) * len(sizes), 0
    for spec in codecs:
        for size in sizes:
            rng = np.random.default_rng(
                [seed, size, sorted(DEFAULT_CODECS).index(spec) if spec in DEFAULT_CODECS else len(DEFAULT_CODECS)]
            )
            codec = bench_codec(
                spec, image_size=image_size, size=size, sigma=_sigma(size, image_size, sigma_image), neighbors=table
            )
            if model == "realistic" and isinstance(codec, H3RCodec) and codec.samples:
                codec = dataclasses.replace(codec, expected=True)  # what a network trained on samples learns
            kinds = output_kinds(codec)
            decoded = np.empty_like(truth)
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
                decoded[start : start + step] = to_host(codec.decode(*target).coords)
            err = np.linalg.norm(decoded - truth, axis=-1)
            kept = err[inside]
            nme = fr = area = None
            if iod is not None:
                faces = inside.any(axis=1) & (iod > 0)
                if faces.any():
                    per_face = metrics.nme(decoded[faces], truth[faces], weights=inside[faces], normalizer=iod[faces])
                    nme = float(100 * per_face.mean())
                    fr, area = float(metrics.failure_rate(per_face)), float(metrics.auc(per_face))
            rows.append(
                Row(
                    model,
                    spec,
                    size,
                    float(kept.mean() * size / image_size),
                    float(kept.mean()),
                    float(kept.max()),
                    nme,
                    fr,
                    area,
                )
            )
            done += 1
            if progress is not None:
                progress(done, total, f"{model} {spec} {size}x{size}")
    return rows


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
    return f"Decode error, {how}; {landmarks}, {image_size}x{image_size} crop"


def format_table(
    rows: Sequence[Row], *, landmarks: str, image_size: int = 256, noise: float = 0.05, displacement: float = 0.25
) -> str:
    """One table per prediction model in ``rows``, each headed by :func:`table_title`; with FR@0.1
    and AUC@0.1 columns when the landmarks are faces (rows with an NME)."""
    faces = any(r.nme_percent is not None for r in rows)
    width = max([13, *(len(r.codec) for r in rows)])
    blocks = []
    for model in dict.fromkeys(r.model for r in rows):
        lines = [
            table_title(model, landmarks=landmarks, image_size=image_size, noise=noise, displacement=displacement),
            f"{'codec':<{width}} {'heatmap':>8} {'mean err (hm px)':>17} {'mean err (img px)':>18} {'max err (img px)':>17} {'NME %':>8}"
            + (f" {'FR@0.1':>7} {'AUC@0.1':>8}" if faces else ""),
        ]
        for r in rows:
            if r.model == model:
                nme = "-" if r.nme_percent is None else f"{r.nme_percent:.4f}"
                line = (
                    f"{r.codec:<{width}} {f'{r.size}x{r.size}':>8} {r.mean_error_heatmap_px:>17.6f} {r.mean_error_image_px:>18.6f} "
                    f"{r.max_error_image_px:>17.6f} {nme:>8}"
                )
                if faces:
                    line += " " + ("-".rjust(7) if r.failure_rate is None else f"{r.failure_rate:>7.4f}")
                    line += " " + ("-".rjust(8) if r.auc is None else f"{r.auc:>8.4f}")
                lines.append(line)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def write_results(
    rows: Sequence[Row], out: pathlib.Path, *, config: dict[str, Any], titles: dict[str, str]
) -> list[pathlib.Path]:
    """``results.json`` (the configuration and every row) and, with matplotlib installed,
    ``error-<model>.png`` per prediction model (:func:`landmark_codecs.bench._plots.error_plot`,
    titled by ``titles[model]``) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    data = out / "results.json"
    data.write_text(json.dumps({"config": config, "rows": [asdict(r) for r in rows]}, indent=2) + "\n")
    written = [data]
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
