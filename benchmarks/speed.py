"""Speed of the encoders and decoders as ratios to one-pass floors, measured in one run.

    python benchmarks/speed.py [--backend numpy|torch] [--device cpu|cuda] [--repeat 15]

Batch B=32, K=98, 64x64 float32 (the issue's reference shape). Each function is timed with the
floor beside it, interleaved, and the ratio of their medians is reported:

- decoders against the one pass over the maps they cannot avoid (the issue's floors): a bare
  argmax over the same (B, K, H*W) array for argmax, DARK and UDP; a bare ``max`` for H3R's top-k
  (its tournament's first round is one); a bare ``exp`` for soft-argmax. The maps: a sub-pixel
  Gaussian plus 1% uniform noise, and for H3R's top-k also the log of its target plus 1e-4 (a
  flat background, the ties on which argpartition degenerated) and standard normal noise;
- encoders against writing the output once (a bare fill of an array of the output's shape).

This machine is shared and noisy: ratios, not seconds, are the result. Nothing here is asserted.
"""

from __future__ import annotations

import argparse

import numpy as np

import landmark_codecs as lc
from landmark_codecs.bench._timing import cpu_line, device_sync, median_times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["numpy", "torch"], default="numpy")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    b, k, h, w = args.batch, 98, 64, 64
    rng = np.random.default_rng(0)
    coords_np = rng.uniform(0, 63, size=(b, k, 2)).astype(np.float32)
    maps_np, _ = lc.encode_gaussian(coords_np, heatmap_size=(w, h), sigma=2.0)
    maps_np = (maps_np + 0.01 * rng.random(maps_np.shape, dtype=np.float32)).astype(np.float32)
    # H3R's published decoder on a trained-looking map: the log of its target plus a small floor
    # (a flat background: ties everywhere but the <= 4 target pixels), and on pure noise.
    h3r_np, _ = lc.encode_randomized_rounding(coords_np, heatmap_size=(w, h), expected=True)
    flat_logits_np = np.log(h3r_np + np.float32(1e-4)).astype(np.float32)
    noise_maps_np = rng.standard_normal(maps_np.shape, dtype=np.float32)
    sync = lambda: None  # noqa: E731
    torch = None
    if args.backend == "torch":
        import torch

        coords = torch.asarray(coords_np, device=args.device)
        maps = torch.asarray(maps_np, device=args.device)
        flat_logits = torch.asarray(flat_logits_np, device=args.device)
        noise_maps = torch.asarray(noise_maps_np, device=args.device)
        noise = torch.rand(coords.shape, device=args.device)
        fill_floor = lambda: torch.empty((b, k, h, w), device=args.device).fill_(1.0)  # noqa: E731
        sync = device_sync(args.device)
    else:
        coords, maps, flat_logits, noise_maps = coords_np, maps_np, flat_logits_np, noise_maps_np
        noise = rng.random(coords.shape, dtype=np.float32)
        fill_floor = lambda: np.empty((b, k, h, w), dtype=np.float32).fill(1.0)  # noqa: E731
    # Each decoder with the maps it reads and its floor, one pass over those maps.
    floors = {
        "argmax": lambda m: m.reshape(b, k, h * w).argmax(-1),
        "max": lambda m: m.reshape(b, k, h * w).max(-1),
        "exp": lambda m: (np if args.backend == "numpy" else torch).exp(m),
    }
    decoders = {
        "decode_argmax": (maps, "argmax", lambda: lc.decode_argmax(maps)),
        "decode_argmax(quarter)": (maps, "argmax", lambda: lc.decode_argmax(maps, refine="quarter")),
        "decode_dark": (maps, "argmax", lambda: lc.decode_dark(maps, sigma=2.0)),
        "decode_udp": (maps, "argmax", lambda: lc.decode_udp(maps, image_size=(4 * w, 4 * h), sigma=2.0)),
        "decode_randomized_rounding(topk)": (maps, "max", lambda: lc.decode_randomized_rounding(maps, logits=False)),
        "decode_randomized_rounding(topk, flat logits)": (
            flat_logits,
            "max",
            lambda: lc.decode_randomized_rounding(flat_logits, logits=True),
        ),
        "decode_randomized_rounding(topk, noise)": (
            noise_maps,
            "max",
            lambda: lc.decode_randomized_rounding(noise_maps, logits=True),
        ),
        "decode_randomized_rounding(window)": (
            maps,
            "max",
            lambda: lc.decode_randomized_rounding(maps, activation="window", logits=False),
        ),
        "decode_soft_argmax": (maps, "exp", lambda: lc.decode_soft_argmax(maps, logits=True)),
    }
    encoders = {
        "encode_gaussian": lambda: lc.encode_gaussian(coords, heatmap_size=(w, h), sigma=2.0),
        "encode_randomized_rounding(sample)": lambda: lc.encode_randomized_rounding(
            coords, heatmap_size=(w, h), noise=noise
        ),
        "encode_randomized_rounding(expected)": lambda: lc.encode_randomized_rounding(
            coords, heatmap_size=(w, h), expected=True
        ),
        "encode_soft_argmax": lambda: lc.encode_soft_argmax(coords, heatmap_size=(w, h), sigma=2.0),
    }
    print(cpu_line())
    print(f"backend={args.backend} device={args.device} B={b} K={k} {h}x{w} float32, median of {args.repeat}")
    encoders = {name: (None, "fill", fn) for name, fn in encoders.items()}
    for title, table, floor_name in (
        ("decoders", decoders, "one pass over the same maps"),
        ("encoders", encoders, "a bare fill of the output"),
    ):
        print(f"\n{title} (ratio to {floor_name})")
        for name, (inputs, kind, fn) in table.items():
            floor = fill_floor if inputs is None else (lambda m=inputs, f=floors[kind]: f(m))
            med = median_times({"floor": floor, name: fn}, repeat=args.repeat, sync=sync)  # interleaved
            fm, tm = med["floor"], med[name]
            print(f"  {name:<46} {tm * 1e3:6.2f} ms   {kind:>6} {fm * 1e3:6.2f} ms   ratio {tm / fm:5.2f}x")


if __name__ == "__main__":
    main()
