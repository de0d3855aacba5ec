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

import html
import json
import math
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .. import (
    decode_argmax,
    decode_dark,
    decode_pipnet,
    decode_randomized_rounding,
    decode_simcc,
    decode_soft_argmax,
    encode_gaussian,
    encode_pipnet,
    encode_randomized_rounding,
    encode_simcc,
    encode_soft_argmax,
    heatmap_to_image,
    image_to_heatmap,
    metrics,
    pipnet_neighbors,
)
from .._xp import namespace, to_host
from ._predictions import DECODERS, Decoded, PredictionRow, ced_plot, decode_predictions, format_predictions, load_predictions
from ._landmarks import DEFAULT_EYE_CORNERS, MEAN_SHAPES, Landmarks, check_eye_corners, load_keypoints, mean_shape, synthetic_landmarks

__all__ = [
    "CODECS",
    "DECODERS",
    "Decoded",
    "PredictionRow",
    "ced_plot",
    "decode_predictions",
    "format_predictions",
    "load_predictions",
    "DEFAULT_SIZES",
    "DEFAULT_EYE_CORNERS",
    "MODELS",
    "MEAN_SHAPES",
    "Landmarks",
    "Row",
    "check_eye_corners",
    "format_table",
    "load_keypoints",
    "mean_shape",
    "run",
    "svg_plot",
    "synthetic_landmarks",
    "table_title",
    "write_results",
]

DEFAULT_SIZES: tuple[int, ...] = (4, 8, 16, 32, 64, 128)


@dataclass(frozen=True)
class _Context:
    size: int  # heatmap size (or bins per axis, or grid cells)
    sigma: float  # Gaussian sigma in heatmap px
    image_size: int
    uniform: Any  # (n, K, 2) uniform [0, 1) draws, in the backend: H3R's sampled rounding
    table: Any  # PIPNet's neighbour table, in the backend (None for the other codecs)


@dataclass(frozen=True)
class Codec:
    """An encode -> decode pair in one coordinate space.

    ``encode(coords, ctx, expected)`` returns the target as a tuple of arrays; ``noise`` says per
    array how the realistic model perturbs it: ``"map"`` (x the peak over the last two axes),
    ``"labels"`` (x the peak over the last axis), ``"logits"`` (a probability map a network
    predicts through a softmax: its log, see :func:`run`) or ``"cells"`` (regressed offsets, in
    cells: one draw per map, see :func:`run`). ``decode(target, ctx)`` returns coordinates in ``space``:
    ``"pixel_center"``/``"udp"`` heatmap px (that conversion both ways) or ``"image"`` px.
    """

    description: str
    encode: Callable[[Any, _Context, bool], tuple[Any, ...]]
    decode: Callable[[tuple[Any, ...], _Context], Any]
    noise: tuple[str, ...]
    space: str = "pixel_center"


def _sigma(size: int, image_size: int, sigma_image: float) -> float:
    return max(0.5, sigma_image * size / image_size)


def _gaussian(c: Any, ctx: _Context, expected: bool) -> tuple[Any, ...]:
    return (encode_gaussian(c, heatmap_size=(ctx.size, ctx.size), sigma=ctx.sigma)[0],)


def _h3r(c: Any, ctx: _Context, expected: bool) -> tuple[Any, ...]:
    return (encode_randomized_rounding(c, heatmap_size=(ctx.size, ctx.size), expected=True)[0],)


def _h3r_sampled(c: Any, ctx: _Context, expected: bool) -> tuple[Any, ...]:
    if expected:  # what a network trained on samples learns
        return _h3r(c, ctx, expected)
    return (encode_randomized_rounding(c, heatmap_size=(ctx.size, ctx.size), noise=ctx.uniform)[0],)


def _simcc(c: Any, ctx: _Context, expected: bool) -> tuple[Any, ...]:
    image = (ctx.image_size, ctx.image_size)
    return tuple(encode_simcc(c, image_size=image, sigma=ctx.sigma, split_ratio=ctx.size / ctx.image_size)[:2])


def _pipnet(c: Any, ctx: _Context, expected: bool) -> tuple[Any, ...]:
    t = encode_pipnet(c, grid_size=(ctx.size, ctx.size), neighbor_index=ctx.table)
    return (t.scores, t.offsets, t.neighbor_offsets)


CODECS: dict[str, Codec] = {
    "argmax": Codec(
        "vanilla: Gaussian at the rounded pixel, argmax",
        lambda c, ctx, e: (encode_gaussian(c, heatmap_size=(ctx.size, ctx.size), sigma=ctx.sigma, rounding="nearest")[0],),
        lambda t, ctx: decode_argmax(t[0])[0],
        ("map",),
    ),
    "quarter": Codec("sub-pixel Gaussian, argmax + quarter shift", _gaussian, lambda t, ctx: decode_argmax(t[0], refine="quarter")[0], ("map",)),
    "dark": Codec(
        "sub-pixel Gaussian, DARK (border-normalized Newton steps)", _gaussian, lambda t, ctx: decode_dark(t[0], sigma=ctx.sigma)[0], ("map",)
    ),
    "udp": Codec(
        "UDP: corner-aligned conversion, sub-pixel Gaussian, DARK",
        _gaussian,
        lambda t, ctx: decode_dark(t[0], sigma=ctx.sigma)[0],
        ("map",),
        space="udp",
    ),
    "simcc": Codec(
        "SimCC: 1-D Gaussian labels of `size` bins per axis (split ratio size / crop), 1-D DARK",
        _simcc,
        lambda t, ctx: decode_simcc(
            *t, image_size=(ctx.image_size,) * 2, split_ratio=ctx.size / ctx.image_size, refine="dark", sigma=ctx.sigma
        )[0],
        ("labels", "labels"),
        space="image",
    ),
    "h3r-expected": Codec(
        "randomized rounding, expected target, top-9 decode of its logits",
        _h3r,
        lambda t, ctx: decode_randomized_rounding(t[0], input="logits")[0],
        ("logits",),
    ),
    "h3r-window": Codec(
        "randomized rounding, expected target, 3x3 window decode of its logits",
        _h3r,
        lambda t, ctx: decode_randomized_rounding(t[0], activation="window", input="logits")[0],
        ("logits",),
    ),
    "h3r-sampled": Codec(
        "randomized rounding, one sampled one-hot target (realistic: the expected one), top-9 decode of its logits",
        _h3r_sampled,
        lambda t, ctx: decode_randomized_rounding(t[0], input="logits")[0],
        ("logits",),
    ),
    "soft-argmax": Codec(
        "exact soft-argmax target, soft-argmax decode of its log",
        lambda c, ctx, e: (encode_soft_argmax(c, heatmap_size=(ctx.size, ctx.size), sigma=ctx.sigma)[0],),
        lambda t, ctx: decode_soft_argmax(t[0])[0],
        ("logits",),
    ),
    "pipnet": Codec(
        "PIPNet: one-hot score, offsets and 10 neighbours' offsets on a size x size grid, mean merge",
        _pipnet,
        lambda t, ctx: decode_pipnet(*t, neighbor_index=ctx.table)[0],
        ("map", "cells", "cells"),
    ),
}

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
    codecs: Sequence[str] = tuple(CODECS),
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

    Each landmark, in crop pixels, is mapped to the codec's space, encoded, perturbed by the
    prediction ``model``, decoded and mapped back; the error is the Euclidean distance to the
    truth in image pixels. Landmarks outside the crop (or NaN) are encoded clamped to it and left
    out of every statistic.

    - ``"noise-free"``: the exact target is decoded (the codec's quantization error alone).
    - ``"realistic"``: the codec's *expected* target (for ``h3r-sampled``, the expectation a
      network trained on samples learns) for the landmark displaced by ``N(0, displacement^2)``
      heatmap px per axis (bins for SimCC, cells for PIPNet) and clamped to the map's valid
      range (a target cannot lie outside it), perturbed in the space its network is trained in:

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
    unknown = [c for c in codecs if c not in CODECS]
    if unknown:
        raise ValueError(f"unknown codec(s) {unknown}; choose from {', '.join(CODECS)}")
    if model not in MODELS:
        raise ValueError(f"unknown prediction model {model!r}; choose from {', '.join(MODELS)}")
    for size in sizes:
        if not 2 <= size <= image_size:
            raise ValueError(f"heatmap size {size} must be between 2 and the crop size {image_size}")
    if not (noise >= 0 and displacement >= 0):
        raise ValueError(f"noise and displacement must be >= 0, got {noise} and {displacement}")
    n, k = landmarks.coords.shape[:2]
    if "pipnet" in codecs and k < 2:
        raise ValueError("pipnet needs at least 2 landmarks per shape (it predicts each from its neighbours)")
    to_backend = _backend(backend, device)
    truth = landmarks.coords
    inside = np.all((truth >= -0.5) & (truth < image_size - 0.5), axis=-1)
    if not inside.any():
        raise ValueError(f"no landmark lies inside the {image_size}x{image_size} crop")
    encoded = np.where(inside[..., None], truth, np.clip(np.nan_to_num(truth, nan=image_size / 2), -0.5, image_size - 0.5 - 1e-6))
    iod = None
    if landmarks.eye_corners is not None:
        check_eye_corners(landmarks.eye_corners, k)
        i, j = landmarks.eye_corners
        iod = np.linalg.norm(truth[:, i] - truth[:, j], axis=-1)
    table = None
    if "pipnet" in codecs:
        count = inside.sum(axis=0)[:, None]  # a landmark never inside the crop sits at the centre
        mean_shape = np.where(count > 0, np.where(inside[..., None], truth, 0).sum(axis=0) / np.maximum(count, 1), image_size / 2)
        table = pipnet_neighbors(to_backend(mean_shape), num_neighbors=min(10, k - 1))
    rows = []
    total, done = len(codecs) * len(sizes), 0
    for name in codecs:
        codec = CODECS[name]
        for size in sizes:
            rng = np.random.default_rng([seed, size, sorted(CODECS).index(name)])
            sigma = _sigma(size, image_size, sigma_image)
            decoded = np.empty_like(truth)
            maps = 1 + 2 + 2 * table.index.shape[-1] if name == "pipnet" else 1  # score, offsets, neighbour offsets
            step = max(1, _CHUNK_VALUES // (k * size * size * maps))
            for start in range(0, n, step):
                c_img = encoded[start : start + step]
                ctx = _Context(size, sigma, image_size, to_backend(rng.random(c_img.shape)), table)
                if codec.space == "image":
                    c, extent, unit = c_img, image_size, image_size / size
                else:
                    c = image_to_heatmap(c_img, image_size=(image_size,) * 2, heatmap_size=(size, size), convention=codec.space)
                    extent, unit = size, 1.0
                if model == "realistic":  # a prediction stays on the map
                    c = np.clip(c + rng.normal(0.0, displacement * unit, size=c.shape), -0.5, extent - 0.5 - 1e-9 * extent)
                target = codec.encode(to_backend(c), ctx, model == "realistic")
                level = noise if model == "realistic" else 0.0
                target = tuple(_perturbed(t, kind, level, rng, to_backend) for t, kind in zip(target, codec.noise))
                out = to_host(codec.decode(target, ctx))
                if codec.space != "image":
                    out = heatmap_to_image(out, image_size=(image_size,) * 2, heatmap_size=(size, size), convention=codec.space)
                decoded[start : start + step] = out
            err = np.linalg.norm(decoded - truth, axis=-1)
            kept = err[inside]
            nme = fr = area = None
            if iod is not None:
                faces = inside.any(axis=1) & (iod > 0)
                if faces.any():
                    per_face = metrics.nme(decoded[faces], truth[faces], visible=inside[faces], normalize=iod[faces])
                    nme = float(100 * per_face.mean())
                    fr, area = float(metrics.failure_rate(per_face)), float(metrics.auc(per_face))
            rows.append(Row(model, name, size, float(kept.mean() * size / image_size), float(kept.mean()), float(kept.max()), nme, fr, area))
            done += 1
            if progress is not None:
                progress(done, total, f"{model} {name} {size}x{size}")
    return rows


# Values per chunk (landmarks x pixels): about 32 MB of float64 per target array.
_CHUNK_VALUES = 1 << 22


def _perturbed(target: Any, kind: str, noise: float, rng: np.random.Generator, to_backend: Callable[[np.ndarray], Any]) -> Any:
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
        return target + to_backend(rng.normal(0.0, noise, size=shape[:-2] + (1, 1)))
    peak = xp.max(target, axis=(-2, -1) if kind == "map" else -1, keepdims=True)
    return target + to_backend(rng.normal(0.0, noise, size=shape)) * peak


# The realistic model of softmax-decoded codecs, per unit of --noise (0.05 by default: 0.5 % of
# the mass off the target, 0.5 logit units of noise). Measured on the training example's H3R
# networks (500 steps; docs/benchmark.md): 0.4-0.8 % of the softmax mass lies over 2.5 px from
# the landmark, and the background logits sit 9-13 units below the peak with a spread of 0.5-0.8.
BACKGROUND_MASS_PER_NOISE, LOGIT_NOISE_PER_NOISE = 0.1, 10.0


def _backend(backend: str, device: str | None) -> Callable[[np.ndarray], Any]:
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


def table_title(model: str, *, landmarks: str, image_size: int = 256, noise: float = 0.05, displacement: float = 0.25) -> str:
    """The first line of ``model``'s table: what was measured, on which landmarks."""
    how = MODELS[model]
    if model == "realistic":
        how += f" (displacement {displacement:g} hm px, noise {noise:g}: x peak on heatmaps, {BACKGROUND_MASS_PER_NOISE * noise:g} background mass and {LOGIT_NOISE_PER_NOISE * noise:g} on logits)"
    return f"Decode error, {how}; {landmarks}, {image_size}x{image_size} crop"


def format_table(rows: Sequence[Row], *, landmarks: str, image_size: int = 256, noise: float = 0.05, displacement: float = 0.25) -> str:
    """One table per prediction model in ``rows``, each headed by :func:`table_title`; with FR@0.1
    and AUC@0.1 columns when the landmarks are faces (rows with an NME)."""
    faces = any(r.nme_percent is not None for r in rows)
    blocks = []
    for model in dict.fromkeys(r.model for r in rows):
        lines = [
            table_title(model, landmarks=landmarks, image_size=image_size, noise=noise, displacement=displacement),
            f"{'codec':<13} {'heatmap':>8} {'mean err (hm px)':>17} {'mean err (img px)':>18} {'max err (img px)':>17} {'NME %':>8}"
            + (f" {'FR@0.1':>7} {'AUC@0.1':>8}" if faces else ""),
        ]
        for r in rows:
            if r.model == model:
                nme = "-" if r.nme_percent is None else f"{r.nme_percent:.4f}"
                line = (
                    f"{r.codec:<13} {f'{r.size}x{r.size}':>8} {r.mean_error_heatmap_px:>17.6f} {r.mean_error_image_px:>18.6f} "
                    f"{r.max_error_image_px:>17.6f} {nme:>8}"
                )
                if faces:
                    line += " " + ("-".rjust(7) if r.failure_rate is None else f"{r.failure_rate:>7.4f}")
                    line += " " + ("-".rjust(8) if r.auc is None else f"{r.auc:>8.4f}")
                lines.append(line)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def svg_plot(rows: Sequence[Row], *, title: str) -> str:
    """Mean error (image px) against heatmap size, both axes log-scaled, one line per codec.

    Rows with zero error (the exact codecs, noise-free) are drawn at the plot's floor, 1e-6 px.
    """
    w, h, pad, floor = 720, 440, 70, 1e-6
    sizes = sorted({r.size for r in rows})
    values = [max(r.mean_error_image_px, floor) for r in rows]
    lo, hi = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    hi = max(hi, lo + 1)
    span = max(math.log2(sizes[-1]) - math.log2(sizes[0]), 1e-9)

    def x(size: int) -> float:
        return pad + (w - 2 * pad - 110) * (math.log2(size) - math.log2(sizes[0])) / span

    def y(v: float) -> float:
        return h - pad - (h - 2 * pad) * (math.log10(max(v, floor)) - lo) / (hi - lo)

    colours = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666", "#1f78b4", "#b2df8a"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">']
    out.append(f'<text x="{pad}" y="25" font-size="13">{html.escape(title)}</text>')
    out.append(f'<polyline points="{pad},{pad} {pad},{h - pad} {w - pad - 110},{h - pad}" fill="none" stroke="black"/>')
    for size in sizes:
        out.append(f'<text x="{x(size):.1f}" y="{h - pad + 18}" text-anchor="middle">{size}</text>')
    for e in range(lo, hi + 1):
        out.append(f'<text x="{pad - 6}" y="{y(10.0**e) + 4:.1f}" text-anchor="end">1e{e}</text>')
    out.append(f'<text x="{(w - 110) / 2}" y="{h - 25}" text-anchor="middle">heatmap size (px per side, log scale)</text>')
    out.append(f'<text x="18" y="{h / 2}" transform="rotate(-90 18 {h / 2})" text-anchor="middle">mean error (image px, log scale)</text>')
    for i, codec in enumerate(dict.fromkeys(r.codec for r in rows)):
        mine = sorted((r for r in rows if r.codec == codec), key=lambda r: r.size)
        colour = colours[i % len(colours)]
        points = " ".join(f"{x(r.size):.1f},{y(r.mean_error_image_px):.1f}" for r in mine)
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{w - pad - 100}" y="{pad + 16 * i}" fill="{colour}">{codec}</text>')
    out.append("</svg>")
    return "\n".join(out)


def write_results(rows: Sequence[Row], out: pathlib.Path, *, config: dict[str, Any], titles: dict[str, str]) -> list[pathlib.Path]:
    """``results.json`` (the configuration and every row) and ``error-<model>.svg`` per prediction
    model (:func:`svg_plot`, titled by ``titles[model]``) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    data = out / "results.json"
    data.write_text(json.dumps({"config": config, "rows": [asdict(r) for r in rows]}, indent=2) + "\n")
    written = [data]
    for model in dict.fromkeys(r.model for r in rows):
        plot = out / f"error-{model}.svg"
        plot.write_text(svg_plot([r for r in rows if r.model == model], title=titles[model]) + "\n")
        written.append(plot)
    return written
