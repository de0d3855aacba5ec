"""Mean face shapes shipped with the package: PIPNet's published mean faces.

Convention: ``(K, 2)`` float64 ``(x, y)`` normalized to the face crop: ``[0, 1]`` spans the
crop's edges, so ``shape * image_size - 0.5`` is in image pixels with integers at pixel centres.
"""

from __future__ import annotations

import importlib.resources
import pathlib

import numpy as np

__all__ = ["MEAN_SHAPES", "mean_shape", "read_mean_shape"]

# The file names under data/ (meanface_<name>.txt): 300W 68 points, WFLW 98, COFW 29, AFLW 19.
MEAN_SHAPES: tuple[str, ...] = ("300w68", "wflw98", "cofw29", "aflw19")


def mean_shape(name: str, /) -> np.ndarray:
    """A packaged mean face: ``(K, 2)`` float64 ``(x, y)`` normalized to the face crop (``[0, 1]``
    spans the crop's edges).

    ``name`` is one of ``"300w68"``, ``"wflw98"``, ``"cofw29"``, ``"aflw19"``: the mean shapes
    PIPNet (Jin et al., IJCV 2021) publishes for 300W, WFLW, COFW and AFLW, e.g. for
    :func:`landmark_codecs.pipnet_neighbors`, ``get_codec("pipnet", mean_shape="wflw98", ...)``
    or ``landmark-codecs bench --keypoints wflw98``.

    >>> mean_shape("aflw19").shape
    (19, 2)
    """
    return read_mean_shape(packaged_path(name))


def packaged_path(name: str) -> pathlib.Path:
    """The file of the packaged mean shape ``name``."""
    if name not in MEAN_SHAPES:
        raise ValueError(f"mean shape name must be one of {', '.join(MEAN_SHAPES)}, got {name!r}")
    return pathlib.Path(str(importlib.resources.files("landmark_codecs") / "data" / f"meanface_{name}.txt"))


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
