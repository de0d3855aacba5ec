"""The benchmark: decode error against heatmap resolution, per codec, on synthetic landmarks.

``landmark-codecs bench`` (or ``python -m landmark_codecs bench``) runs :func:`run` and prints a
table. Landmarks are drawn uniformly (seeded) in the continuous valid range of an
``image_size x image_size`` crop, mapped to each heatmap size with the ``"pixel_center"``
convention, encoded, decoded and mapped back; the error is the Euclidean distance to the truth.

Prediction model: ``noise=0`` decodes the exact target (the codec's quantization error alone);
``noise > 0`` adds seeded i.i.d. Gaussian noise of that standard deviation, relative to the
target's peak, to every pixel before decoding (a crude stand-in for a network's output).
"""

from __future__ import annotations

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
    decode_randomized_rounding,
    decode_simcc,
    decode_soft_argmax,
    encode_gaussian,
    encode_randomized_rounding,
    encode_simcc,
    encode_soft_argmax,
    heatmap_to_image,
    image_to_heatmap,
)

__all__ = ["CODECS", "DEFAULT_SIZES", "Row", "run", "format_table", "write_results", "svg_plot"]

DEFAULT_SIZES: tuple[int, ...] = (4, 8, 16, 32, 64, 128)


@dataclass(frozen=True)
class Codec:
    """An encode -> decode pair; ``decode`` receives the (possibly noisy) target."""

    description: str
    encode: Callable[..., Any]
    decode: Callable[[Any, float], Any]  # (target, sigma in heatmap px) -> coords
    noisy_input: str  # "probabilities" or "logits": how noise is added (to p or to log p)
    convention: str = "pixel_center"  # image <-> heatmap conversion, both ways; "image": the
    # codec works in image pixels itself: encode(c_img, size, sigma, rng, image_size) -> labels,
    # decode(labels, sigma, size, image_size) -> image coords


def _sigma(size: int, image_size: int, sigma_image: float) -> float:
    return max(0.5, sigma_image * size / image_size)


CODECS: dict[str, Codec] = {
    "argmax": Codec(
        "vanilla: Gaussian at the rounded pixel, argmax",
        lambda c, size, s, rng: encode_gaussian(c, heatmap_size=(size, size), sigma=s, rounding="nearest")[0],
        lambda m, s: decode_argmax(m)[0],
        "probabilities",
    ),
    "quarter": Codec(
        "sub-pixel Gaussian, argmax + quarter shift",
        lambda c, size, s, rng: encode_gaussian(c, heatmap_size=(size, size), sigma=s)[0],
        lambda m, s: decode_argmax(m, refine="quarter")[0],
        "probabilities",
    ),
    "dark": Codec(
        "sub-pixel Gaussian, DARK (border-normalized Newton steps)",
        lambda c, size, s, rng: encode_gaussian(c, heatmap_size=(size, size), sigma=s)[0],
        lambda m, s: decode_dark(m, sigma=s)[0],
        "probabilities",
    ),
    "udp": Codec(
        "UDP: corner-aligned conversion, sub-pixel Gaussian, DARK",
        lambda c, size, s, rng: encode_gaussian(c, heatmap_size=(size, size), sigma=s)[0],
        lambda m, s: decode_dark(m, sigma=s)[0],
        "probabilities",
        convention="udp",
    ),
    "simcc": Codec(
        "SimCC: 1-D Gaussian labels of `size` bins per axis (split ratio size / crop), 1-D DARK",
        lambda c, size, s, rng, image: encode_simcc(c, image_size=(image, image), sigma=s, split_ratio=size / image)[:2],
        lambda t, s, size, image: decode_simcc(*t, image_size=(image, image), split_ratio=size / image, refine="dark", sigma=s)[0],
        "probabilities",
        convention="image",
    ),
    "h3r-expected": Codec(
        "randomized rounding, expected target, top-9 decode",
        lambda c, size, s, rng: encode_randomized_rounding(c, heatmap_size=(size, size), expected=True)[0],
        lambda m, s: decode_randomized_rounding(m)[0],
        "probabilities",
    ),
    "h3r-window": Codec(
        "randomized rounding, expected target, 3x3 window decode",
        lambda c, size, s, rng: encode_randomized_rounding(c, heatmap_size=(size, size), expected=True)[0],
        lambda m, s: decode_randomized_rounding(m, activation="window")[0],
        "probabilities",
    ),
    "h3r-sampled": Codec(
        "randomized rounding, one sampled one-hot target, top-9 decode",
        lambda c, size, s, rng: encode_randomized_rounding(c, heatmap_size=(size, size), rng=rng)[0],
        lambda m, s: decode_randomized_rounding(m)[0],
        "probabilities",
    ),
    "soft-argmax": Codec(
        "exact soft-argmax target, soft-argmax decode of its log",
        lambda c, size, s, rng: encode_soft_argmax(c, heatmap_size=(size, size), sigma=s)[0],
        lambda m, s: decode_soft_argmax(m)[0],
        "logits",
    ),
}


@dataclass(frozen=True)
class Row:
    codec: str
    size: int
    mean_error_heatmap_px: float
    mean_error_image_px: float
    max_error_image_px: float


def run(
    *,
    codecs: Sequence[str] = tuple(CODECS),
    sizes: Sequence[int] = DEFAULT_SIZES,
    n_landmarks: int = 4096,
    image_size: int = 256,
    sigma_image: float = 8.0,
    noise: float = 0.0,
    seed: int = 0,
    chunk: int = 512,
) -> list[Row]:
    """Mean and max decode error per codec and heatmap size (NumPy, float64).

    ``sigma_image`` is the Gaussian sigma in image pixels (8 = 2 heatmap px at 64x64 from 256),
    scaled to each heatmap size and floored at 0.5 heatmap px.
    """
    unknown = [c for c in codecs if c not in CODECS]
    if unknown:
        raise ValueError(f"unknown codec(s) {unknown}; choose from {sorted(CODECS)}")
    for size in sizes:
        if not 1 <= size <= image_size:
            raise ValueError(f"heatmap size {size} must be between 1 and the crop size {image_size}")
    rng = np.random.default_rng(seed)
    truth = rng.uniform(-0.5, image_size - 0.5, size=(n_landmarks, 1, 2))
    rows = []
    for name in codecs:
        codec = CODECS[name]
        for size in sizes:
            codec_rng = np.random.default_rng([seed, size])
            sigma = _sigma(size, image_size, sigma_image)
            errors = []
            for start in range(0, n_landmarks, chunk):
                c_img = truth[start : start + chunk]
                if codec.convention == "image":
                    labels = codec.encode(c_img, size, sigma, codec_rng, image_size)
                    if noise > 0:
                        labels = tuple(t + codec_rng.normal(0.0, noise, size=t.shape) * t.max(axis=-1, keepdims=True) for t in labels)
                    decoded = codec.decode(labels, sigma, size, image_size)
                    errors.append(np.linalg.norm(decoded - c_img, axis=-1).ravel())
                    continue
                c_hm = image_to_heatmap(c_img, image_size=(image_size,) * 2, heatmap_size=(size, size), convention=codec.convention)
                target = codec.encode(c_hm, size, sigma, codec_rng)
                if noise > 0:
                    perturb = codec_rng.normal(0.0, noise, size=target.shape) * target.max(axis=(-2, -1), keepdims=True)
                    if codec.noisy_input == "logits":
                        target = np.log(np.maximum(target + perturb, 1e-12))
                    else:
                        target = target + perturb
                elif codec.noisy_input == "logits":
                    with np.errstate(divide="ignore"):
                        target = np.log(target)
                decoded = heatmap_to_image(
                    codec.decode(target, sigma), image_size=(image_size,) * 2, heatmap_size=(size, size), convention=codec.convention
                )
                errors.append(np.linalg.norm(decoded - c_img, axis=-1).ravel())
            err = np.concatenate(errors)
            rows.append(Row(name, size, float(err.mean() * size / image_size), float(err.mean()), float(err.max())))
    return rows


def format_table(rows: Sequence[Row], *, image_size: int = 256, noise: float = 0.0) -> str:
    model = "noise-free: quantization error alone" if noise == 0 else f"noisy: Gaussian noise {noise:g} x peak on every pixel"
    lines = [
        f"Decode error on uniform synthetic landmarks in a {image_size}x{image_size} crop ({model})",
        f"{'codec':<14} {'heatmap':>8} {'mean err (hm px)':>17} {'mean err (img px)':>18} {'max err (img px)':>17}",
    ]
    for r in rows:
        lines.append(
            f"{r.codec:<14} {f'{r.size}x{r.size}':>8} {r.mean_error_heatmap_px:>17.6f} {r.mean_error_image_px:>18.6f} {r.max_error_image_px:>17.6f}"
        )
    return "\n".join(lines)


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
    out.append(f'<text x="{pad}" y="25" font-size="13">{title}</text>')
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


def write_results(rows: Sequence[Row], out: pathlib.Path, *, config: dict[str, Any], title: str) -> list[pathlib.Path]:
    """``results.json`` (the configuration and every row) and ``error.svg`` (:func:`svg_plot`) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    data = out / "results.json"
    data.write_text(json.dumps({"config": config, "rows": [asdict(r) for r in rows]}, indent=2))
    plot = out / "error.svg"
    plot.write_text(svg_plot(rows, title=title))
    return [data, plot]
