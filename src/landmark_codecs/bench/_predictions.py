"""``landmark-codecs bench --predictions FILE.npz``: every applicable decoder on a network's own
saved outputs, scored with the metrics face alignment papers report.

The file (``numpy.savez``) holds:

- ``heatmaps``: ``(N, K, H, W)`` float, the network's outputs for N test faces;
- ``landmarks``: ``(N, K, 2)`` float, the ground truth ``(x, y)`` in image pixels;
- ``image_size``: ``(2,)`` ints, the image's ``(W, H)``;
- optionally ``weights`` ``(N, K)`` (landmarks of weight 0 are left out), ``logits`` (a bool: the maps are logits of a softmax, as
  H3R and soft-argmax networks are trained), ``sigma`` (the Gaussian target's sigma in heatmap
  pixels, which DARK needs) and ``convention`` (``"pixel_center"``, ``"legacy"`` or ``"udp"``:
  how heatmap pixels map to image pixels; default ``"pixel_center"``).

``examples/train_synthetic.py --save-predictions DIR`` writes such files.
"""

from __future__ import annotations

import math
import pathlib
import zipfile
import zlib
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

from .. import _validation as check
from .. import metrics
from ..codecs import get_codec
from ._specs import parse_codec

__all__ = [
    "DECODERS",
    "Decoded",
    "PredictionRow",
    "Predictions",
    "ced_plot",
    "decode_predictions",
    "format_predictions",
    "load_predictions",
]

# Codec names of landmark_codecs.get_codec (options after colons), whose decoders are applied.
DECODERS = ("argmax", "quarter", "dark", "soft_argmax", "h3r", "h3r:activation=window")
"""The decoders ``--predictions`` applies: codec names of :func:`landmark_codecs.get_codec`."""
_CONVENTIONS = ("pixel_center", "legacy", "udp")


@dataclass(frozen=True)
class PredictionRow:
    decoder: str
    mean_error_image_px: float | None  # over the landmarks of non-zero weight; None: the decoder did not apply
    nme_percent: float | None  # per face, then averaged; None without eye indices
    failure_rate: float | None  # FR@0.1 (NME above 10 %)
    auc: float | None  # AUC@0.1, exact
    note: str = ""


@dataclass(frozen=True)
class Predictions:
    heatmaps: np.ndarray
    landmarks: np.ndarray
    image_size: tuple[int, int]
    weights: np.ndarray
    logits: bool
    sigma: float | None
    convention: str
    description: str


def load_predictions(path: str | pathlib.Path, *, sigma: float | None = None) -> Predictions:
    """Read and check a predictions file (see the module docstring); ``sigma`` overrides the file's.

    Every member is checked before it is read: it must be a ``.npy`` array (not a raw zip
    member, not pickled objects) whose header's shape fits the bytes it holds, so a damaged or
    hostile file gives a ValueError naming the file and the member, never a traceback or an
    allocation the file cannot fill.
    """
    path = pathlib.Path(path)
    where = f"predictions file {str(path)!r}"
    if sigma is not None:
        sigma = check.positive(sigma, "sigma")
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{where} does not exist") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{where} is not a readable .npz archive: {err or type(err).__name__}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{where} holds one array (a .npy file), not an .npz archive of named arrays: save it with numpy.savez(path, heatmaps=..., landmarks=..., image_size=...)"
        )
    with data:
        missing = [k for k in ("heatmaps", "landmarks", "image_size") if k not in data.files]
        if missing:
            raise ValueError(f"{where} lacks {', '.join(missing)} (it holds {', '.join(data.files) or 'nothing'})")
        arrays = {k: _member(data, k, where) for k in data.files if k in _KEYS}
    maps, truth, size = arrays["heatmaps"], arrays["landmarks"], arrays["image_size"]
    if maps.ndim != 4 or maps.dtype.kind != "f" or 0 in maps.shape:
        raise ValueError(f"{where}: heatmaps must be a float (N, K, H, W) array, got {maps.dtype} {maps.shape}")
    n, k, h, w = maps.shape
    if truth.shape != (n, k, 2) or truth.dtype.kind not in "iuf":
        raise ValueError(
            f"{where}: landmarks must be a real (N, K, 2) = {(n, k, 2)} array in image pixels, got {truth.dtype} {truth.shape}"
        )
    if size.shape != (2,) or size.dtype.kind not in "iu" or (size < 2).any():
        raise ValueError(f"{where}: image_size must be two ints (W, H) >= 2, got {size.dtype} {size.tolist()}")
    truth = truth.astype(np.float64)
    # Ground truth that is not finite is not labelled: left out, as the metrics leave it out.
    weights = np.all(np.isfinite(truth), axis=-1)
    if "weights" in arrays:
        given = arrays["weights"]
        if given.shape != (n, k) or given.dtype.kind not in "biuf":
            raise ValueError(
                f"{where}: weights must be a boolean or numeric (N, K) = {(n, k)} array, got {given.dtype} {given.shape}"
            )
        if given.dtype.kind == "f" and not np.isfinite(given).all():
            raise ValueError(f"{where}: weights must be finite (0 leaves a landmark out), got NaN or inf")
        weights &= given != 0
    logits = _flag(arrays["logits"], "logits", where) if "logits" in arrays else False
    if sigma is None and "sigma" in arrays:
        given = arrays["sigma"]
        if given.shape != () or given.dtype.kind not in "iuf":
            raise ValueError(
                f"{where}: sigma must be one number (the target's sigma in heatmap pixels), got {given.dtype} {given.shape}"
            )
        try:
            sigma = check.positive(float(given), "sigma")
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
    convention = "pixel_center"
    if "convention" in arrays:
        given = arrays["convention"]
        if given.shape != () or given.dtype.kind != "U" or str(given) not in _CONVENTIONS:
            raise ValueError(f"{where}: convention must be one of {', '.join(_CONVENTIONS)}, got {given.tolist()!r}")
        convention = str(given)
    kind = "logits" if logits else "heatmaps"
    description = f"{n} faces x {k} landmarks, {w}x{h} {kind} from {path.name}, {int(size[0])}x{int(size[1])} images"
    return Predictions(maps, truth, (int(size[0]), int(size[1])), weights, logits, sigma, convention, description)


_KEYS = ("heatmaps", "landmarks", "image_size", "weights", "logits", "sigma", "convention")


def _member(data: Any, key: str, where: str) -> np.ndarray:
    """Member ``key`` of an open npz archive, its header checked against its size before it is read."""
    archive = data.zip
    name = f"{key}.npy"
    if name not in archive.namelist():
        raise ValueError(
            f"{where}: member {key!r} is not a .npy array (a raw zip member); write the file with numpy.savez"
        )
    info = archive.getinfo(name)
    try:
        with archive.open(name) as f:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(f)
            offset = f.tell()
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(f"{where}: member {key!r} is not a readable .npy array: {err or type(err).__name__}") from None
    if dtype.hasobject:
        raise ValueError(
            f"{where}: member {key!r} holds Python objects ({dtype}), which are not read (no pickles): store numbers or a string"
        )
    need = math.prod(shape) * dtype.itemsize
    if need > info.file_size - offset:
        raise ValueError(
            f"{where}: member {key!r} claims shape {shape} of {dtype} ({need} bytes) but holds {info.file_size - offset}: the file is damaged"
        )
    try:
        return np.asarray(data[key])
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(f"{where}: member {key!r} is not a readable .npy array: {err or type(err).__name__}") from None


def _flag(value: np.ndarray, key: str, where: str) -> bool:
    """A stored boolean: ``True``/``False`` or the integers 0 and 1 (a string "False" is truthy, a
    NaN is neither)."""
    if value.shape == () and (value.dtype.kind == "b" or (value.dtype.kind in "iu" and int(value) in (0, 1))):
        return bool(value)
    raise ValueError(
        f"{where}: {key} must be a boolean (True or False, or 0 or 1), got {value.dtype} {value.tolist()!r}"
    )


class Decoded(NamedTuple):
    """What :func:`decode_predictions` returns."""

    rows: list[PredictionRow]
    predictions: Predictions
    per_face_nme: dict[str, np.ndarray]
    """Each applicable decoder's ``(N,)`` NME fractions (empty without eye indices)."""


def decode_predictions(
    path: str | pathlib.Path, *, sigma: float | None = None, eyes: tuple[int, int] | None = None, threshold: float = 0.1
) -> Decoded:
    """Decode the file's maps with every decoder and score them against its landmarks.

    Decoders: the codecs of :data:`DECODERS`, built with :func:`landmark_codecs.get_codec` for the
    file's image and map sizes and convention: ``argmax``, ``quarter`` (the +-0.25 shift),
    ``dark`` (needs ``sigma``, from the file or the argument; on logits it decodes
    ``exp(logits - max)``, the softmax up to a factor), ``soft_argmax``, ``h3r`` (top-9) and
    ``h3r:activation=window`` (3x3), the last three on logits or probabilities as the file says. NME, FR and AUC at ``threshold`` (fractions, reported in
    percent for NME) are given when eye indices exist: ``eyes`` or the layout's default outer
    eye corners (68, 98 and 29 points).
    """
    pred = load_predictions(path, sigma=sigma)
    maps = pred.heatmaps
    h, w = maps.shape[-2:]
    k = maps.shape[1]
    pair = eyes if eyes is not None else metrics.EYE_CORNERS.get(k)
    if pair is not None and not (0 <= pair[0] < k and 0 <= pair[1] < k and pair[0] != pair[1]):
        raise ValueError(f"eye indices must be two different landmarks in [0, {k}), got {pair}")
    sizes = {
        "image_size": pred.image_size,
        "heatmap_size": (w, h),
        "convention": pred.convention,
        "on_outside": "ignore",
    }

    def decoder(spec: str, **options: Any) -> Any:
        name, given = parse_codec(spec)
        return get_codec(name, **sizes, **given, **options)

    softmax = {"logits": pred.logits}
    runs: dict[str, Any] = {
        "argmax": lambda: decoder("argmax").decode(maps),
        "quarter": lambda: decoder("quarter").decode(maps),
        "soft_argmax": lambda: decoder("soft_argmax", **softmax).decode(maps),
        "h3r": lambda: decoder("h3r", top_k=min(9, h * w), **softmax).decode(maps),
        "h3r:activation=window": lambda: decoder("h3r:activation=window", window_size=3, **softmax).decode(maps),
    }
    if pred.sigma is not None:
        dark_maps = np.exp(maps - maps.max(axis=(-2, -1), keepdims=True)) if pred.logits else maps
        runs["dark"] = lambda: decoder("dark", sigma=pred.sigma).decode(dark_maps)
    rows, per_faces = [], {}
    for name in DECODERS:
        if name not in runs:
            rows.append(
                PredictionRow(name, None, None, None, None, "needs the target's sigma (--sigma or the file's sigma)")
            )
            continue
        xy = np.asarray(runs[name]().coords, dtype=np.float64)  # image pixels
        err = np.linalg.norm(xy - pred.landmarks, axis=-1)[pred.weights]
        finite = np.isfinite(err)
        note = ""
        if not finite.all():
            note = (
                f"{int((~finite).sum())} of {err.size} predictions are not finite (NaN or inf in their maps): "
                "left out of the mean error and the NME, counted as failures in FR and AUC"
            )
        mean_error = float(err[finite].mean()) if finite.any() else math.nan
        nme = fr = area = None
        if pair is not None:
            per_face = metrics.nme(xy, pred.landmarks, weights=pred.weights, eyes=pair)
            per_faces[name] = per_face
            nme = float(100 * np.nanmean(per_face)) if np.isfinite(per_face).any() else math.nan
            fr = float(metrics.failure_rate(per_face, threshold=threshold))
            area = float(metrics.auc(per_face, threshold=threshold))
        rows.append(PredictionRow(name, mean_error, nme, fr, area, note))
    return Decoded(rows, pred, per_faces)


def format_predictions(rows: list[PredictionRow], *, description: str, threshold: float = 0.1) -> str:
    """The rows as a text table (NME in percent, FR and AUC as fractions)."""
    t = f"{threshold:g}"
    width = max([12, *(len(r.decoder) for r in rows)])
    head = f"{'decoder':<{width}} {'mean err (img px)':>18} {'NME %':>8} {'FR@' + t:>8} {'AUC@' + t:>8}"
    lines = [f"Decoders on saved network outputs: {description}", head]

    def cell(v: float | None, fmt: str, width: int) -> str:
        return f"{'-':>{width}}" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:>{width}{fmt}}"

    for r in rows:
        line = f"{r.decoder:<{width}} {cell(r.mean_error_image_px, '.4f', 18)} {cell(r.nme_percent, '.4f', 8)} {cell(r.failure_rate, '.4f', 8)} {cell(r.auc, '.4f', 8)}"
        lines.append(line + (f"  ({r.note})" if r.note else ""))
    return "\n".join(lines)


def ced_plot(
    per_face_nme: dict[str, np.ndarray], path: str | pathlib.Path, *, title: str, threshold: float = 0.1
) -> Any:
    """The cumulative error distribution of each decoder, from 0 to ``threshold`` NME, written to
    ``path`` (PNG by default; SVG or PDF by its extension). Needs matplotlib (``pip install
    "landmark-codecs[plot]"``); returns the matplotlib Figure (closed)."""
    from . import _plots

    plt = _plots.pyplot()
    levels = np.linspace(0.0, threshold, 201)
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    source = {}
    for i, (name, nme) in enumerate(per_face_nme.items()):
        area = float(metrics.auc(nme, threshold=threshold))
        curve = metrics.ced(nme, levels)
        source[name] = [float(v) for v in curve]
        ax.plot(100 * levels, curve, markevery=(i * 5, 40), label=f"{name} (AUC {area:.3f})", **_plots.style(i))
    ax.set_xlabel("NME (%)")
    ax.set_ylabel("fraction of faces")
    ax.set_xlim(0, 100 * threshold)
    ax.set_ylim(0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=9, wrap=True)
    fig.tight_layout()
    _plots.save(fig, path, source=source)
    return fig


def rows_json(rows: list[PredictionRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
