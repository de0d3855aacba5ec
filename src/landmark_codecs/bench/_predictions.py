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
from ._verdict import figure as _figure
from ._verdict import tied
from ._verdict import wrap as _wrap

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


def load_predictions(
    path: str | pathlib.Path, *, sigma: float | None = None, logits: bool | None = None
) -> Predictions:
    """Read and check a predictions file, the ``.npz`` of ``--predictions`` (``heatmaps``
    ``(N, K, H, W)``, ``landmarks`` ``(N, K, 2)`` in image pixels, ``image_size`` ``(W, H)``, and
    optionally ``weights``, ``logits``, ``sigma``, ``convention``); ``sigma`` and ``logits``
    (``--sigma``, ``--logits``) override the file's.

    Landmarks in the wrong unit are refused with the fix: more than half of the labelled ones
    outside the image, or all of them within ``[0, 1]`` (normalized coordinates).

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
    if not weights.any():  # every decoder would score as a failure: nothing to compare them on
        raise ValueError(
            f"{where}: no labelled landmark (every ground-truth landmark is NaN or has weight 0): "
            "nothing to score the decoders against"
        )
    if logits is None:
        logits = _flag(arrays["logits"], "logits", where) if "logits" in arrays else False
    elif not isinstance(logits, bool):
        raise TypeError(f"logits must be True or False, got {logits!r}")
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
    _check_landmark_unit(truth[weights], (int(size[0]), int(size[1])), where)
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


def _check_landmark_unit(points: np.ndarray, size: tuple[int, int], where: str) -> None:
    """Refuse ground truth that is not in image pixels of ``size``: mostly outside the image, or
    all within [0, 1] (normalized); ``points`` are the labelled ``(M, 2)`` landmarks."""
    if points.size == 0:
        return
    w, h = size
    outside = (points[:, 0] < -0.5) | (points[:, 0] >= w - 0.5) | (points[:, 1] < -0.5) | (points[:, 1] >= h - 0.5)
    span = (
        f"x in [{points[:, 0].min():.4g}, {points[:, 0].max():.4g}], y in [{points[:, 1].min():.4g}, "
        f"{points[:, 1].max():.4g}]"
    )
    if outside.mean() > 0.5:
        raise ValueError(
            f"{where}: {int(outside.sum())} of {len(points)} labelled landmarks lie outside the {w}x{h} image ({span}): "
            "landmarks must be in pixels of the network's input (image_size), cropped as the input was, "
            "not in pixels of the original photo"
        )
    if min(w, h) >= 8 and points.min() >= 0 and points.max() <= 1:
        raise ValueError(
            f"{where}: every labelled landmark lies in [0, 1] ({span}): they look normalized by the image size; "
            f"save them in image pixels (multiplied by image_size = ({w}, {h}))"
        )


def _looks_like_logits(maps: np.ndarray) -> bool:
    """Most maps reach further below 0 than half their largest magnitude, as logits (and log
    probabilities) do; a regression heatmap's background noise stays near 0."""
    low = maps.min(axis=(-2, -1))
    reach = np.abs(maps).max(axis=(-2, -1))
    return bool(np.mean(low < -0.5 * reach) > 0.5)


def _background_share(maps: np.ndarray, radius: int) -> float:
    """The mean share of each map's positive mass farther than ``radius`` heatmap px (Chebyshev)
    from its maximum: what pulls a softmax expectation of probabilities toward the centre."""
    positive = np.maximum(np.nan_to_num(maps, nan=0.0, posinf=0.0), 0.0)
    flat = positive.reshape(-1, positive.shape[-2] * positive.shape[-1])
    total = flat.sum(axis=-1)
    h, w = maps.shape[-2:]
    top = flat.argmax(axis=-1)
    rows, cols = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
    near = (np.abs(rows - (top // w)[:, None, None]) <= radius) & (np.abs(cols - (top % w)[:, None, None]) <= radius)
    inside = (positive.reshape(-1, h, w) * near).sum(axis=(-2, -1))
    ok = total > 0
    return float(np.mean(1 - inside[ok] / total[ok])) if ok.any() else 0.0


class Decoded(NamedTuple):
    """What :func:`decode_predictions` returns."""

    rows: list[PredictionRow]
    predictions: Predictions
    per_face_nme: dict[str, np.ndarray]
    """Each applicable decoder's ``(N,)`` NME fractions (empty without eye indices)."""
    notes: tuple[str, ...] = ()
    """What the table's readers should know: why a column is empty, what the maps look like."""


def decode_predictions(
    path: str | pathlib.Path,
    *,
    sigma: float | None = None,
    eyes: tuple[int, int] | None = None,
    threshold: float = 0.1,
    logits: bool | None = None,
) -> Decoded:
    """Decode the file's maps with every decoder and score them against its landmarks.

    Decoders: the codecs of :data:`DECODERS`, built with :func:`landmark_codecs.get_codec` for the
    file's image and map sizes and convention: ``argmax``, ``quarter`` (the +-0.25 shift),
    ``dark`` (needs ``sigma``, from the file or the argument; on logits it decodes
    ``exp(logits - max)``, the softmax up to a factor), ``soft_argmax``, ``h3r`` (top-9) and
    ``h3r:activation=window`` (3x3), the last three on logits or probabilities as the file says. NME, FR and AUC at ``threshold`` (fractions, reported in
    percent for NME) are given when eye indices exist: ``eyes`` or the layout's default outer
    eye corners (68, 98 and 29 points); without them ``notes`` says how to give them.

    Mistakes are caught, not scored: landmarks in heatmap pixels (they match the maps' peaks
    read in heatmap pixels far better than in image pixels) are refused like the other unit
    errors of :func:`load_predictions`; maps that look like logits read as probabilities (or
    the reverse), and probability maps whose background pulls a softmax expectation to the
    centre, get a note on the rows they affect, naming ``--logits``.
    """
    pred = load_predictions(path, sigma=sigma, logits=logits)
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

    where = f"predictions file {str(path)!r}"
    labelled = pred.weights
    if labelled.any() and (pred.image_size[0] / w >= 2 or pred.image_size[1] / h >= 2):
        # The peaks read in heatmap pixels against the same read in image pixels.
        peaks = decoder("argmax")
        in_image = np.asarray(peaks.decode(maps).coords, dtype=np.float64)
        in_map = np.asarray(peaks.to_heatmap(in_image), dtype=np.float64)
        as_image = np.nanmean(np.linalg.norm(in_image - pred.landmarks, axis=-1)[labelled])
        as_map = np.nanmean(np.linalg.norm(in_map - pred.landmarks, axis=-1)[labelled])
        if as_map < 0.25 * as_image:
            raise ValueError(
                f"{where}: the landmarks look like heatmap pixels: they lie {as_map:.3g} px from the maps' peaks read "
                f"in heatmap pixels and {as_image:.3g} px from the same read in image pixels; save them in pixels "
                f"of the {pred.image_size[0]}x{pred.image_size[1]} input (x {pred.image_size[0] / w:g} here)"
            )
    notes: list[str] = []
    softmax_rows: dict[str, str] = {}
    if pred.logits and maps.min() >= 0 and maps.max() <= 1:
        text = (
            "every map value lies in [0, 1], as probabilities or a sigmoid's outputs do; read as logits (logits=True) "
            "their softmax is nearly flat: drop --logits (save logits=False) unless these are logits"
        )
        softmax_rows = dict.fromkeys(("soft_argmax", "h3r", "h3r:activation=window"), text)
    elif not pred.logits and _looks_like_logits(maps):
        text = (
            "most maps reach far below 0, as logits do, and are read as probabilities (negative values count as 0): "
            "pass --logits (save logits=True) if the network was trained through a softmax"
        )
        softmax_rows = dict.fromkeys(("soft_argmax", "h3r", "h3r:activation=window"), text)
    elif not pred.logits:
        radius = max(4, math.ceil(4 * pred.sigma)) if pred.sigma is not None else 8
        share = _background_share(maps, radius)
        if share > 0.1:
            softmax_rows["soft_argmax"] = (
                f"{100 * share:.0f} % of each map's mass lies over {radius} px from its peak, which pulls the "
                "expectation toward the map's centre: soft-argmax suits the logits of a softmax-trained network "
                "(--logits), not sigmoid or regression heatmaps"
            )
    if pair is None:
        notes.append(
            f"NME, FR and AUC need the two outer eye corners: K = {k} has no default (68, 98 and 29 points have): "
            "pass --landmarks I,J"
        )
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
        note = softmax_rows.get(name, "")
        if not finite.all():
            note = "; ".join(
                n
                for n in (
                    note,
                    f"{int((~finite).sum())} of {err.size} predictions are not finite (NaN or inf in their maps): "
                    "left out of the mean error and the NME, counted as failures in FR and AUC",
                )
                if n
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
    return Decoded(rows, pred, per_faces, tuple(notes))


def format_predictions(
    rows: list[PredictionRow],
    *,
    description: str,
    threshold: float = 0.1,
    notes: tuple[str, ...] = (),
    per_face_nme: dict[str, np.ndarray] | None = None,
) -> str:
    """The rows as a text table (NME in percent, FR and AUC as fractions, four significant
    digits), ``*`` on the best decoder and ``=`` on those tied with it, the verdict, then every
    note once: a row's note by its number, ``notes`` (:attr:`Decoded.notes`) after; every ``-``
    says why. Within 100 columns.

    Best: the lowest mean NME (the lowest mean error without eye indices). Tied: the 95 %
    confidence interval of the mean paired difference from the best over the faces' NMEs
    (``per_face_nme``) contains 0; without NMEs there is no tie test."""
    t = f"{threshold:g}"
    width = max([8, *(len(r.decoder) for r in rows)])
    by_nme = any(_usable(r.nme_percent) for r in rows)
    key = "nme_percent" if by_nme else "mean_error_image_px"
    ranked = [r for r in rows if _usable(getattr(r, key))]
    best = min(ranked, key=lambda r: getattr(r, key)) if ranked else None
    per_face = per_face_nme or {}
    ties = {
        r.decoder
        for r in ranked
        if best is not None and r is not best and by_nme and tied(per_face.get(r.decoder), per_face.get(best.decoder))
    }
    row_notes = list(dict.fromkeys(r.note for r in rows if r.note))
    lines = [
        _wrap(f"Decoders on saved network outputs: {description}"),
        f"{'decoder':<{width}} {'err img':>9} {'NME %':>9}  {'FR@' + t:>9} {'AUC@' + t:>9}",
    ]

    def cell(v: float | None, width: int) -> str:
        return f"{'-' if v is None or math.isnan(v) else _figure(v):>{width}}"

    for r in rows:
        mark = "*" if r is best else "=" if r.decoder in ties else " "
        err_mark, nme_mark = (" ", mark) if by_nme else (mark, " ")  # on the figure ranked by
        line = f"{r.decoder:<{width}} {cell(r.mean_error_image_px, 9)}{err_mark}{cell(r.nme_percent, 9)}{nme_mark}"
        line += f" {cell(r.failure_rate, 9)} {cell(r.auc, 9)}"
        lines.append(line + (f"  [{row_notes.index(r.note) + 1}]" if r.note else ""))
    if best is not None:
        figure = "mean NME" if by_nme else "mean error"
        verdict = f"verdict: best {best.decoder} (lowest {figure})"
        verdict += f"; tied: {', '.join(sorted(ties))}" if ties else ""
        lines.append(_wrap(verdict, "  "))
    footnotes = ["err img: mean error over the labelled landmarks, image px"]
    if by_nme and per_face_nme is None:
        footnotes.append("no tie test: the faces' NMEs were not given (the command gives them)")
    elif by_nme:
        footnotes.append(
            "=: the 95 % confidence interval of the mean paired difference from the best in per-face "
            "NME contains 0 (every decoder decodes the same maps, so the comparison is paired)"
        )
    else:
        footnotes.append("no tie test without NME: pass --landmarks I,J (the eye corners) for one")
    footnotes += [f"[{i + 1}] {n}" for i, n in enumerate(row_notes)]
    lines += [_wrap(f"- {n}", "  ") for n in (*footnotes, *notes)]
    return "\n".join(lines)


def _usable(v: float | None) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


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
