"""Landmark sets for the benchmark: synthetic uniform points, or real shapes read from a file.

Convention: every set is returned in **crop pixels** of an ``image_size x image_size`` crop,
``(x, y)`` order, integers at pixel centres (the library's ``"pixel_center"`` convention), so the
crop's valid range is ``[-0.5, image_size - 0.5)`` per axis.
"""

from __future__ import annotations

import csv
import math
import pathlib
from dataclasses import dataclass

import numpy as np

from ..layouts import MEAN_SHAPES, POSE_LAYOUTS, PoseLayout, mean_shape
from ..layouts import packaged_path as _packaged
from ..layouts import read_mean_shape as _read_mean_shape
from ..metrics import EYE_CORNERS

__all__ = [
    "DEFAULT_EYE_CORNERS",
    "MEAN_SHAPES",
    "POSE_LAYOUTS",
    "Landmarks",
    "load_keypoints",
    "mean_shape",
    "synthetic_landmarks",
]

# Outer eye corners (0-based) of the common face layouts, for NME's inter-ocular distance: the
# metrics module's table (300W 68, WFLW 98, COFW 29).
DEFAULT_EYE_CORNERS: dict[int, tuple[int, int]] = EYE_CORNERS

# 300W/WFLW CSVs give a face box of 200 * scale px; the crop adds 25% margin around it.
_BOX_PX, _MARGIN = 200.0, 1.25


@dataclass(frozen=True)
class Landmarks:
    """``coords``: ``(N, K, 2)`` float64 ``(x, y)`` in crop pixels (NaN: missing); ``eye_corners``:
    the two landmark indices whose distance normalizes NME, or ``None`` (no NME); ``layout``: the
    pose layout the keypoints follow (``"coco17"``: scored by COCO AP, ``"mpii16"``: by PCKh), or
    ``None``."""

    coords: np.ndarray
    image_size: int
    eye_corners: tuple[int, int] | None
    description: str
    layout: str | None = None


def synthetic_landmarks(*, samples: int = 256, per_shape: int = 16, image_size: int = 256, seed: int = 0) -> Landmarks:
    """``samples`` sets of ``per_shape`` points, uniform (seeded) in the crop's continuous valid range."""
    if samples < 1 or per_shape < 1:
        raise ValueError(f"samples and per_shape must be >= 1, got {samples} and {per_shape}")
    coords = np.random.default_rng(seed).uniform(-0.5, image_size - 0.5, size=(samples, per_shape, 2))
    return Landmarks(coords, image_size, None, f"{samples * per_shape} landmarks uniform (seed {seed}) in the crop")


def load_keypoints(
    path: str | pathlib.Path,
    *,
    image_size: int = 256,
    samples: int = 256,
    seed: int = 0,
    eye_corners: tuple[int, int] | None = None,
) -> Landmarks:
    """Read landmarks from ``.npy``, 300W/WFLW ``.csv`` or a mean-shape ``.txt`` file, or take a
    packaged shape by name (faces ``"300w68"``, ``"wflw98"``, ``"cofw29"``, ``"aflw19"``; human
    poses ``"coco17"``, ``"mpii16"``; a file of that name in the working directory wins).

    - ``.npy``: an ``(N, K, 2)`` array of ``(x, y)`` already in crop pixels.
    - ``.csv``: rows ``image_name, scale, center_w, center_h, x0, y0, x1, y1, ...`` in original
      image pixels (a non-numeric first row is a header). Each face is cropped to a square of
      side ``scale * 200 * 1.25`` around its centre and resized to ``image_size``:
      ``x_crop = (x - center_w) * image_size / side + (image_size - 1) / 2``, so the box's centre
      is the crop's centre (HRNet's transform maps it to ``image_size / 2``, half a pixel off).
    - ``.txt``: one mean shape, ``2K`` numbers ``x y x y ...`` normalized to the face crop
      (``[0, 1]`` spans the crop's edges, like ``../shared/data/meanface_*.txt``). A single shape
      is a small, fixed sample of sub-pixel positions, so ``samples`` copies are drawn, each
      rotated by up to 10 degrees, scaled by 0.9-1.1 about the crop centre and shifted by up to
      ``image_size / 16`` px per axis (uniform, seeded).
    - ``"coco17"``, ``"mpii16"``: the packaged standing skeleton, articulated before that jitter:
      each elbow, wrist, knee and ankle turns its bone by up to 25 degrees about its parent joint
      (uniform, seeded; a turn carries down the limb), so limbs take varied poses.

    A set of 17 keypoints is scored as COCO's (AP), of 16 as MPII's (PCKh): ``layout`` says so.
    ``eye_corners`` defaults to the outer eye corners for 68 (36, 45), 98 (60, 72) and 29 (8, 9) points;
    other layouts report no NME unless it is given. Errors are ``ValueError`` (or
    ``FileNotFoundError``) with the file and what was expected.
    """
    path = pathlib.Path(path)
    pose = POSE_LAYOUTS.get(str(path)) if not path.is_file() else None
    if not path.is_file() and str(path) in (*MEAN_SHAPES, *POSE_LAYOUTS):
        path = _packaged(str(path))
    if not path.is_file():
        raise FileNotFoundError(
            f"keypoints file {str(path)!r} does not exist (nor is it a packaged shape: {', '.join((*MEAN_SHAPES, *POSE_LAYOUTS))})"
        )
    suffix = path.suffix.lower()
    if suffix == ".npy":
        coords, what = _read_npy(path), "array"
    elif suffix == ".csv":
        coords, what = _read_csv(path, image_size), "faces cropped from the CSV's centre and scale"
    elif suffix == ".txt" and pose is not None:
        coords, what = (
            _jittered(_articulated(mean_shape(pose.name), pose, samples, seed), image_size, samples, seed),
            f"articulated, jittered copies (seed {seed}) of the standing skeleton",
        )
    elif suffix == ".txt":
        coords, what = (
            _jittered(_read_mean_shape(path), image_size, samples, seed),
            f"jittered copies (seed {seed}) of the mean shape",
        )
    else:
        raise ValueError(
            f"keypoints file {str(path)!r}: expected a .npy, .csv or .txt file, got {suffix or 'no extension'!r}"
        )
    n, k = coords.shape[:2]
    if eye_corners is None:
        eye_corners = DEFAULT_EYE_CORNERS.get(k)
    else:
        check_eye_corners(eye_corners, k)
    layout = {17: "coco17", 16: "mpii16"}.get(k)
    scored = f"; scored as {layout}" if layout else ""
    return Landmarks(coords, image_size, eye_corners, f"{n} x {k} landmarks from {path.name} ({what}{scored})", layout)


def check_eye_corners(eye_corners: tuple[int, int], k: int) -> None:
    i, j = eye_corners
    if not (0 <= i < k and 0 <= j < k) or i == j:
        raise ValueError(f"--landmarks expects two different eye-corner indices in [0, {k}), got {i},{j}")


def _read_npy(path: pathlib.Path) -> np.ndarray:
    try:
        coords = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(
            f"keypoints file {str(path)!r} is not a readable .npy array: {err or type(err).__name__}"
        ) from None
    real = np.issubdtype(coords.dtype, np.floating) or np.issubdtype(coords.dtype, np.integer)
    if coords.ndim != 3 or coords.shape[-1] != 2 or 0 in coords.shape or not real:
        raise ValueError(
            f"keypoints file {str(path)!r}: expected a real (N, K, 2) array, got {coords.dtype} {coords.shape}"
        )
    return coords.astype(np.float64)


def _read_csv(path: pathlib.Path, image_size: int) -> np.ndarray:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"keypoints file {str(path)!r} is not UTF-8 text: {err.reason} at byte {err.start}") from None
    rows: list[list[float]] = []
    for line, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row:
            continue
        if line == 1 and not _is_number(row[1] if len(row) > 1 else ""):
            continue  # header
        if len(row) < 6 or len(row) % 2:
            raise ValueError(
                f"keypoints file {str(path)!r} line {line}: expected image_name, scale, center_w, center_h, "
                f"then x y pairs (an even number of columns, at least 6), got {len(row)} columns"
            )
        if rows and len(row) != len(rows[0]) + 1:
            raise ValueError(
                f"keypoints file {str(path)!r} line {line}: {len(row)} columns, the first data row has {len(rows[0]) + 1}"
            )
        try:
            rows.append([float(v) for v in row[1:]])
        except ValueError:
            raise ValueError(f"keypoints file {str(path)!r} line {line}: expected numbers after image_name") from None
    if not rows:
        raise ValueError(f"keypoints file {str(path)!r} has no data rows")
    data = np.asarray(rows)
    scale, centre = data[:, 0], data[:, 1:3]
    if not np.all((scale > 0) & np.isfinite(scale)) or not np.all(np.isfinite(centre)):
        raise ValueError(f"keypoints file {str(path)!r}: every scale must be positive and finite, every centre finite")
    side = scale * _BOX_PX * _MARGIN
    points = data[:, 3:].reshape(len(data), -1, 2)
    return (points - centre[:, None, :]) * (image_size / side)[:, None, None] + (image_size - 1) / 2


# Joints whose bone (from the parent) turns in the articulated skeleton, and by how much at most.
_LIMB_JOINTS, _LIMB_TURN = ("elbow", "wrist", "knee", "ankle"), math.radians(25)


def _articulated(shape01: np.ndarray, layout: PoseLayout, samples: int, seed: int) -> np.ndarray:
    """``samples`` copies of ``shape01`` ``(K, 2)`` with every limb bone turned about its parent
    joint by a uniform angle in ``[-25, 25]`` degrees, accumulated down the limb: ``(samples, K, 2)``."""
    rng = np.random.default_rng([seed, 1])
    turns = rng.uniform(-_LIMB_TURN, _LIMB_TURN, size=(samples, len(layout.parents)))
    turns[:, [not any(j in name for j in _LIMB_JOINTS) for name in layout.keypoints]] = 0.0
    out = np.repeat(shape01[None].astype(np.float64), samples, axis=0)
    angle = np.zeros((samples, len(layout.parents)))
    order = sorted(range(len(layout.parents)), key=lambda j: _depth(layout.parents, j))
    for j in order:  # parents before children: a joint moves with its parent's turned bone
        parent = layout.parents[j]
        if parent < 0:
            continue
        angle[:, j] = angle[:, parent] + turns[:, j]
        bone = shape01[j] - shape01[parent]
        cos, sin = np.cos(angle[:, j]), np.sin(angle[:, j])
        out[:, j] = out[:, parent] + np.stack([cos * bone[0] - sin * bone[1], sin * bone[0] + cos * bone[1]], axis=-1)
    return out


def _depth(parents: tuple[int, ...], j: int) -> int:
    depth = 0
    while parents[j] >= 0:
        j, depth = parents[j], depth + 1
    return depth


def _jittered(shape01: np.ndarray, image_size: int, samples: int, seed: int) -> np.ndarray:
    """``samples`` similarity-jittered copies of ``shape01`` (``(K, 2)``, or ``(samples, K, 2)``
    already varied), in crop pixels."""
    rng = np.random.default_rng(seed)
    centre = (image_size - 1) / 2
    base = shape01 * image_size - 0.5 - centre  # [0, 1] spans the crop's edges: [-0.5, size - 0.5]
    angle = rng.uniform(-math.radians(10), math.radians(10), size=samples)
    scale = rng.uniform(0.9, 1.1, size=samples)
    shift = rng.uniform(-image_size / 16, image_size / 16, size=(samples, 1, 2))
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    x = cos[:, None] * base[..., 0] - sin[:, None] * base[..., 1]
    y = sin[:, None] * base[..., 0] + cos[:, None] * base[..., 1]
    return np.stack([x, y], axis=-1) + shift + centre


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
