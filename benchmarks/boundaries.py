"""Adaptive Wing's boundary target: ours (exact distance to the polylines, sub-pixel landmarks)
against the AdaptiveWingLoss repository's pipeline, in accuracy and speed, on real face shapes.

    python benchmarks/boundaries.py [--faces 200] [--layout 300w68] [--repeat 5]

The repository's pipeline (``AddBoundary`` in its data loader), re-written here from its steps:
floor the 256-crop landmarks to the 64x64 grid (``floor(x / 4)``), fit an interpolating spline
per chain (``scipy.interpolate.splprep``, degree ``min(3, n - 1)``, ``s=0``), draw 100 points of
it (``u = 0, 0.01, ..., 0.99``) as pixel markers on a 64x64 matplotlib figure, read the pixels
back, run OpenCV's precise distance transform, apply ``exp(-d^2 / 2)`` below ``d = 3``, and
show the result through ``imshow(cmap="gray")`` once more (which rescales it to its own min and
max and quantizes to 8 bits). It needs matplotlib, scipy and opencv-python-headless; without
them only our timings are printed.

Faces: the packaged mean shape of ``--layout`` (or the file given), each copy rotated, scaled and
shifted as ``landmark-codecs bench`` draws them, in a 256 crop; 64x64 maps (x_h = x_i / 4, the
convention the repository's boundary uses). Reported:

- accuracy: each pipeline's map against the exact map of the *unfloored* landmarks, as the mean
  and maximum absolute difference over pixels where either is non-zero, and the shift of the
  map's centroid (:func:`landmark_codecs.heatmap_moments`), which isolates the flooring;
- speed: ms per face, ours per batch (NumPy float32 and float64, torch float32 CPU) and the
  repository's per face, as a ratio in one run.

This machine is shared and noisy: ratios, not seconds, are the result. Nothing here is asserted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import landmark_codecs as lc
from landmark_codecs.bench import load_keypoints
from landmark_codecs.bench._timing import median_times

LAYOUTS = {"300w68": 68, "wflw98": 98, "cofw29": 29, "aflw19": 19}


def repository_boundary(landmarks_256: np.ndarray, chains, *, floor: bool = True) -> np.ndarray:
    """The repository's boundary map of one face, 64x64, values in [0, 1] (see the module doc)."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import interpolate

    pts64 = np.floor(landmarks_256 / 4.0) if floor else landmarks_256 / 4.0
    curves = []
    for chain in chains:
        points = pts64[list(chain)]
        keep = [0] + [i for i in range(1, len(points)) if (points[i] != points[i - 1]).any()]
        points = points[keep]
        if len(points) == 1:
            points = np.concatenate([points, points + 0.001])
        k = min(4, len(points))
        tck, _ = interpolate.splprep([points[:, 0], points[:, 1]], k=k - 1, s=0)
        curves.append(interpolate.splev(np.arange(0, 1, 0.01), tck, der=0))

    def render(draw) -> np.ndarray:
        fig = plt.figure(figsize=[64 / 96.0, 64 / 96.0], dpi=96)
        ax = fig.add_axes([0, 0, 1, 1])
        ax.axis("off")
        draw(ax)
        fig.canvas.draw()
        img = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
        plt.close(fig)
        return img

    def draw_curves(ax):
        ax.imshow(np.zeros((64, 64)), interpolation="nearest", cmap="gray")
        for x, y in curves:
            ax.plot(x, y, ",", linewidth=1, color="w")

    drawn = render(draw_curves)
    dist = cv2.distanceTransform(255 - drawn[:, :, 1], cv2.DIST_L2, cv2.DIST_MASK_PRECISE).astype(np.float32)
    temp = np.where(dist < 3, np.exp(-(dist * dist) / 2), 0)
    shown = render(lambda ax: ax.imshow(temp, cmap="gray"))
    return shown[:, :, 0] / 255.0


def _stats(maps: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    support = (maps > 0) | (exact > 0)
    diff = np.abs(maps - exact)[support]
    shift = lc.heatmap_moments(maps[:, None]).mean - lc.heatmap_moments(exact[:, None]).mean
    return {
        "mean |diff|": float(diff.mean()),
        "max |diff|": float(diff.max()),
        "centroid shift x": float(shift[:, 0, 0].mean()),
        "centroid shift y": float(shift[:, 0, 1].mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=int, default=200)
    ap.add_argument("--layout", choices=sorted(LAYOUTS), default="300w68")
    ap.add_argument(
        "--keypoints", type=Path, default=None, help="a mean-shape .txt (default: the packaged one of --layout)"
    )
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    loaded = load_keypoints(args.keypoints or args.layout, image_size=256, samples=args.faces, seed=0)
    faces = loaded.coords  # (N, K, 2) crop pixels
    chains = lc.face_boundaries(faces.shape[1])
    coords64 = faces / 4.0
    exact = lc.encode_boundaries(coords64, heatmap_size=(64, 64), boundaries=chains).heatmaps[:, 0]
    print(f"{loaded.description}; 64x64 boundary maps, sigma 1, cut at 3 sigma\n")

    try:
        repo = np.stack([repository_boundary(f, chains) for f in faces])
        repo_unfloored = np.stack([repository_boundary(f, chains, floor=False) for f in faces])
    except ImportError as err:
        repo = None
        print(f"repository pipeline skipped: {err}\n")

    print("| map | mean abs diff | max abs diff | centroid shift x (px) | centroid shift y (px) |")
    print("| --- | --- | --- | --- | --- |")
    float32 = lc.encode_boundaries(coords64.astype(np.float32), heatmap_size=(64, 64), boundaries=chains).heatmaps[:, 0]
    rows = {"ours, float32": _stats(float32.astype(np.float64), exact)}
    if repo is not None:
        rows["repository"] = _stats(repo, exact)
        rows["repository without the floor"] = _stats(repo_unfloored, exact)
    for name, r in rows.items():
        print(
            f"| {name} | {r['mean |diff|']:.2e} | {r['max |diff|']:.2e} | {r['centroid shift x']:+.3f} | {r['centroid shift y']:+.3f} |"
        )

    cases = {
        "ours, NumPy float64 (batch)": lambda: lc.encode_boundaries(coords64, heatmap_size=(64, 64), boundaries=chains),
        "ours, NumPy float32 (batch)": (
            lambda c32: lambda: lc.encode_boundaries(c32, heatmap_size=(64, 64), boundaries=chains)
        )(coords64.astype(np.float32)),
    }
    try:
        import torch

        t32 = torch.asarray(coords64, dtype=torch.float32)
        cases["ours, torch float32 CPU (batch)"] = lambda: lc.encode_boundaries(
            t32, heatmap_size=(64, 64), boundaries=chains
        )
    except ImportError:
        pass
    few = faces[: min(len(faces), 20)]
    if repo is not None:
        cases["repository (per face)"] = lambda: [repository_boundary(f, chains) for f in few]
    calls = {name: (len(few) if name == "repository (per face)" else len(faces)) for name in cases}
    times = {name: t / calls[name] for name, t in median_times(cases, repeat=args.repeat).items()}
    ours = times["ours, NumPy float32 (batch)"]
    print("\n| pipeline | ms per face | x ours (NumPy float32) |")
    print("| --- | --- | --- |")
    for name, m in times.items():
        print(f"| {name} | {1e3 * m:.3f} | {m / ours:.1f} |")


if __name__ == "__main__":
    main()
