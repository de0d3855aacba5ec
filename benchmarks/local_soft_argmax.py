"""The plain local soft-argmax's bias on the library's sub-pixel Gaussian target, by sigma and window.

    python benchmarks/local_soft_argmax.py

For each sigma and window size: the largest |decoded x - x| in heatmap pixels over landmarks
whose window lies inside the map (interior) and over landmarks within the window's reach of the
left border (border), on a deterministic grid of 2001 positions (float64, 64x64 maps). With
``sigma=...`` the decoder inverts this bias (exact to float rounding; tests/test_local_soft_argmax.py).
The table is docs/quantization.md's; the tests recompute its sigma 1.5 row.
"""

from __future__ import annotations

import numpy as np

import landmark_codecs as lc

SIGMAS = (1.0, 1.5, 2.0, 3.0)
WINDOWS = (3, 5, 7, 9, 11)
SIZE = 64


def measure(sigma: float) -> dict[int, tuple[float, float]]:
    """Per window size, (interior, border) worst |error| in heatmap pixels."""
    out = {}
    for window in WINDOWS:
        r = window // 2
        inner = np.linspace(r + 0.5, SIZE - 1 - r - 0.5, 2001)
        edge = np.linspace(-0.5, r + 0.5, 2001)
        worst = []
        for x in (inner, edge):
            coords = np.stack([x, np.full_like(x, SIZE / 2 - 0.3)], axis=-1)
            maps = lc.encode_gaussian(coords, heatmap_size=(SIZE, SIZE), sigma=sigma).heatmaps
            got = lc.decode_local_soft_argmax(maps, logits=False, window_size=window).coords
            worst.append(float(np.abs(got[:, 0] - x).max()))
        out[window] = (worst[0], worst[1])
    return out


def format_row(sigma: float, row: dict[int, tuple[float, float]]) -> str:
    return f"| {sigma:g} | " + " | ".join(f"{a:.3f} / {b:.2f}" for a, b in row.values()) + " |"


def main() -> None:
    print("| sigma | " + " | ".join(f"window {w}" for w in WINDOWS) + " |")
    print("| --- | " + " | ".join("---:" for _ in WINDOWS) + " |")
    for sigma in SIGMAS:
        print(format_row(sigma, measure(sigma)))


if __name__ == "__main__":
    main()
