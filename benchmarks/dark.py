"""DARK, UDP and SimCC decoding: speed as ratios to a bare argmax, and error, in one run.

    python benchmarks/dark.py [--backend numpy|torch] [--device cpu|cuda] [--repeat 11] [--number 5]

Speed: B=32, K=98, 64x64 float32 maps (sub-pixel Gaussian targets, sigma 2, plus uniform noise
of 5% of the peak so the refinement has work to do), timed side by side in interleaved rounds
(each round times ``--number`` back-to-back calls), medians reported as ratios to a bare argmax
over the same array (the one-pass floor). If mmpose is installed, its
``MSRAHeatmap(unbiased=True).decode`` (DARK) is timed on the same maps, one image per call, as
mmpose runs it.

Error: the mean and largest decode error (heatmap px) on noise-free targets at sigma 1, 2 and 3
on 8x8 and 64x64 maps, for argmax, the quarter shift, DARK as published (one Taylor step with
central differences on a zero-padded blur, written here as the reference) and ``decode_dark``;
and for peaks narrower or wider than the decoding sigma (``--widths``). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import landmark_codecs as lc
from landmark_codecs.bench._timing import device_sync, median_times


def published_dark(maps: np.ndarray, sigma: float) -> np.ndarray:
    """DARK as published, vectorized: zero-padded whole-map blur, one central-difference step."""
    r = math.ceil(2.5 * sigma)
    t = np.arange(-r, r + 1)
    k = np.exp(-(t**2) / (2 * sigma**2))
    k /= k.sum()
    n, h, w = maps.shape
    padded = np.zeros((n, h + 2 * r + 2, w + 2 * r + 2))
    padded[:, r + 1 : r + 1 + h, r + 1 : r + 1 + w] = maps
    blur = sum(k[i] * padded[:, :, i : i + w + 2] for i in range(2 * r + 1))  # columns -1..w
    blur = sum(k[i] * blur[:, i : i + h + 2, :] for i in range(2 * r + 1))  # rows -1..h
    b = np.log(np.maximum(blur, 1e-10))
    idx = maps.reshape(n, -1).argmax(-1)
    y, x = idx // w + 1, idx % w + 1  # in the padded-by-one frame
    rows = np.arange(n)
    f = lambda dy, dx: b[rows, y + dy, x + dx]  # noqa: E731
    gx, gy = (f(0, 1) - f(0, -1)) / 2, (f(1, 0) - f(-1, 0)) / 2
    hxx, hyy = f(0, 1) - 2 * f(0, 0) + f(0, -1), f(1, 0) - 2 * f(0, 0) + f(-1, 0)
    hxy = (f(1, 1) - f(-1, 1) - f(1, -1) + f(-1, -1)) / 4
    det = hxx * hyy - hxy * hxy
    ok = np.abs(det) > 1e-12
    det = np.where(ok, det, 1.0)
    dx, dy = np.where(ok, (hxy * gy - hyy * gx) / det, 0), np.where(ok, (hxy * gx - hxx * gy) / det, 0)
    return np.stack([x - 1 + dx, y - 1 + dy], -1)


def errors(widths: list[float]) -> None:
    rng = np.random.default_rng(0)
    print("error on noise-free sub-pixel Gaussian targets (heatmap px, Euclidean; mean / max over 4000 landmarks)")
    print(
        f"{'map':>6} {'sigma':>5} {'target':>6} | {'argmax':>13} {'quarter':>13} {'DARK published':>15} {'decode_dark':>15}"
    )
    for n in (8, 64):
        for sigma in (1.0, 2.0, 3.0):
            for ratio in [1.0, *widths]:
                c = rng.uniform(-0.5, n - 0.5, (4000, 2))
                maps, _ = lc.encode_gaussian(c, heatmap_size=(n, n), sigma=sigma * ratio)
                row = []
                for out in (
                    lc.decode_argmax(maps)[0],
                    lc.decode_argmax(maps, refine="quarter")[0],
                    published_dark(maps, sigma),
                    lc.decode_dark(maps, sigma=sigma)[0],
                ):
                    e = np.linalg.norm(out - c, axis=-1)
                    row.append(f"{e.mean():.4f}/{e.max():.3f}")
                print(f"{n:>6} {sigma:>5} {sigma * ratio:>6.2f} | {row[0]:>13} {row[1]:>13} {row[2]:>15} {row[3]:>15}")


def speed(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(1)
    c = rng.uniform(-0.5, 63.5, (32, 98, 2))
    maps, _ = lc.encode_gaussian(c, heatmap_size=(64, 64), sigma=2.0)
    maps = (maps + 0.05 * rng.random(maps.shape)).astype(np.float32)
    x = maps
    if args.backend == "torch":
        import torch

        x = torch.asarray(maps, device=args.device)
    sync = device_sync(args.device if args.backend == "torch" else "cpu")
    floor = lambda: x.reshape(32, 98, -1).argmax(-1)  # noqa: E731
    cases = {
        "argmax (floor)": floor,
        "decode_argmax": lambda: lc.decode_argmax(x),
        "decode_dark (4 steps)": lambda: lc.decode_dark(x, sigma=2.0),
        "decode_dark (1 step)": lambda: lc.decode_dark(x, sigma=2.0, iterations=1),
        "decode_udp": lambda: lc.decode_udp(x, image_size=(256, 256), sigma=2.0),
    }
    try:
        from mmpose.codecs import MSRAHeatmap

        codec = MSRAHeatmap(input_size=(256, 256), heatmap_size=(64, 64), sigma=2.0, unbiased=True, blur_kernel_size=11)
        host = maps
        cases["mmpose MSRAHeatmap(unbiased=True), per image"] = lambda: [codec.decode(host[i]) for i in range(32)]
    except Exception as err:  # any import failure means "not installed here"
        print(f"(mmpose not available: {type(err).__name__}; its row is skipped)")
    times = median_times(cases, repeat=args.repeat, sync=sync, number=args.number)
    base = times["argmax (floor)"]
    print(
        f"\nspeed: B=32, K=98, 64x64 float32, {args.backend} on {args.device}; medians of {args.repeat} rounds of {args.number} calls"
    )
    for name, t in times.items():
        print(f"{name:>46}: {t * 1e3:8.2f} ms  {t / base:6.2f}x the argmax")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("numpy", "torch"), default="numpy")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--number", type=int, default=5)
    parser.add_argument(
        "--widths",
        type=float,
        nargs="*",
        default=[0.5, 0.7, 1.5],
        help="target sigma / decoding sigma ratios besides 1",
    )
    parser.add_argument("--skip-errors", action="store_true")
    args = parser.parse_args()
    if not args.skip_errors:
        errors(args.widths)
    speed(args)


if __name__ == "__main__":
    main()
