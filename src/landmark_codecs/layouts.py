"""Shapes shipped with the package: PIPNet's published mean faces, and the human pose layouts
COCO 17 and MPII 16 (keypoint names, flip pairs, a canonical standing skeleton).

Convention: ``(K, 2)`` float64 ``(x, y)`` normalized to the crop: ``[0, 1]`` spans the crop's
edges, so ``shape * image_size - 0.5`` is in image pixels with integers at pixel centres. In the
pose skeletons the person faces the camera: their left side is on the image's right.
"""

from __future__ import annotations

import importlib.resources
import pathlib
from typing import NamedTuple

import numpy as np

__all__ = ["MEAN_SHAPES", "POSE_LAYOUTS", "PoseLayout", "mean_shape", "pose_layout", "read_mean_shape"]

# The file names under data/ (meanface_<name>.txt): 300W 68 points, WFLW 98, COFW 29, AFLW 19.
MEAN_SHAPES: tuple[str, ...] = ("300w68", "wflw98", "cofw29", "aflw19")


class PoseLayout(NamedTuple):
    """A human pose layout: what its ``K`` keypoints are and how they connect.

    ``keypoints``: the names in the layout's order; ``flip_pairs``: ``(left, right)`` index pairs a
    horizontal flip swaps; ``parents``: each keypoint's parent in the skeleton's tree (``-1`` for
    the root), the bones a skeleton is drawn and articulated along; ``reported``: the indices the
    layout's headline metric averages (MPII's PCKh leaves out pelvis and thorax).
    """

    name: str
    keypoints: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    parents: tuple[int, ...]
    reported: tuple[int, ...]

    @property
    def flip_index(self) -> tuple[int, ...]:
        """The permutation :func:`landmark_codecs.flip_horizontal` takes as ``flip_index``."""
        index = list(range(len(self.keypoints)))
        for i, j in self.flip_pairs:
            index[i], index[j] = j, i
        return tuple(index)


_COCO17 = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
_MPII16 = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis", "thorax",
    "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
    "left_wrist",
)  # fmt: skip

#: The packaged pose layouts by name: COCO's 17 keypoints (its ``person`` category's order) and
#: MPII's 16 joints (its annotation's order). Their canonical skeletons are ``mean_shape(name)``.
POSE_LAYOUTS: dict[str, PoseLayout] = {
    "coco17": PoseLayout(
        "coco17",
        _COCO17,
        ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
        (-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
        tuple(range(17)),
    ),
    "mpii16": PoseLayout(
        "mpii16",
        _MPII16,
        ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
        (1, 2, 6, 6, 3, 4, -1, 6, 7, 8, 11, 12, 7, 7, 13, 14),
        (0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15),
    ),
}


def pose_layout(name: str, /) -> PoseLayout:
    """The packaged pose layout ``name`` (``"coco17"`` or ``"mpii16"``), see :data:`POSE_LAYOUTS`.

    >>> coco = pose_layout("coco17")
    >>> coco.keypoints[coco.flip_index[5]]  # a flip makes the left shoulder the right one
    'right_shoulder'
    """
    if name not in POSE_LAYOUTS:
        raise ValueError(f"pose layout name must be one of {', '.join(POSE_LAYOUTS)}, got {name!r}")
    return POSE_LAYOUTS[name]


def mean_shape(name: str, /) -> np.ndarray:
    """A packaged shape: ``(K, 2)`` float64 ``(x, y)`` normalized to the crop (``[0, 1]`` spans the
    crop's edges).

    ``name`` is one of ``"300w68"``, ``"wflw98"``, ``"cofw29"``, ``"aflw19"``: the mean shapes
    PIPNet (Jin et al., IJCV 2021) publishes for 300W, WFLW, COFW and AFLW, e.g. for
    :func:`landmark_codecs.pipnet_neighbors`, ``get_codec("pipnet", mean_shape="wflw98", ...)``
    or ``landmark-codecs bench --keypoints wflw98``; or ``"coco17"``, ``"mpii16"``: a canonical
    standing person facing the camera, arms down (written for this package, not a data set's
    mean), which ``bench --keypoints coco17`` articulates.

    >>> mean_shape("aflw19").shape
    (19, 2)
    """
    return read_mean_shape(packaged_path(name))


def packaged_path(name: str) -> pathlib.Path:
    """The file of the packaged mean shape ``name``."""
    if name not in (*MEAN_SHAPES, *POSE_LAYOUTS):
        raise ValueError(f"mean shape name must be one of {', '.join((*MEAN_SHAPES, *POSE_LAYOUTS))}, got {name!r}")
    stem = "pose" if name in POSE_LAYOUTS else "meanface"
    return pathlib.Path(str(importlib.resources.files("landmark_codecs") / "data" / f"{stem}_{name}.txt"))


def read_mean_shape(path: str | pathlib.Path, /) -> np.ndarray:
    """A mean shape file (one line of ``x y x y ...``) as ``(K, 2)`` float64."""
    path = pathlib.Path(path)
    try:
        values = np.array(path.read_text().split(), dtype=np.float64)
    except ValueError:
        raise ValueError(f"keypoints file {str(path)!r}: expected a mean shape of numbers, x y x y ...") from None
    if values.size < 2 or values.size % 2:
        raise ValueError(
            f"keypoints file {str(path)!r}: expected an even number (2K) of values, x y pairs, got {values.size}"
        )
    return values.reshape(-1, 2)
