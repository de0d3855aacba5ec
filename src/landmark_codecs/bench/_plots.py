"""Plots of the benchmark and the examples, with matplotlib (the ``plot`` extra).

Every figure is written by :func:`save`: PNG by default (SVG or PDF by the path's extension),
and a PNG carries a ``Source`` text chunk, the SHA-256 of the data it draws, so a test can tell
that a committed figure shows the committed numbers without comparing pixels (which differ
between matplotlib versions and machines).
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import textwrap
from collections.abc import Sequence
from typing import Any

__all__ = ["STYLES", "data_digest", "error_plot", "figure_source", "pyplot", "save", "style"]

# Line styles and markers that keep coinciding curves visible (several codecs often agree).
STYLES = (
    ("-", "o"),
    ("--", "s"),
    (":", "^"),
    ("-.", "v"),
    ("-", "D"),
    ("--", "x"),
    (":", "P"),
    ("-.", "*"),
    ("-", "<"),
    ("--", ">"),
    (":", "h"),
    ("-.", "d"),
)
# matplotlib's ten default colours, then two more: past ten lines its cycle would repeat the first
COLORS = (*(f"C{i}" for i in range(10)), "black", "goldenrod")


def style(i: int) -> dict[str, Any]:
    """The ``i``-th line's ``linestyle``, ``marker`` and ``color`` (distinct for twelve lines)."""
    line, marker = STYLES[i % len(STYLES)]
    return {"linestyle": line, "marker": marker, "color": COLORS[i % len(COLORS)]}


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend; a clear ImportError without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError('plots need matplotlib: pip install "landmark-codecs[plot]"') from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def data_digest(data: Any) -> str:
    """SHA-256 of ``data`` as canonical JSON (floats written with repr: exact)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def save(fig: Any, path: str | pathlib.Path, *, source: Any) -> pathlib.Path:
    """Write ``fig`` to ``path`` (PNG unless the extension says SVG or PDF) and close it; a PNG
    records :func:`data_digest` of ``source`` in its ``Source`` text chunk."""
    path = pathlib.Path(path)
    metadata = {"Source": data_digest(source), "Software": None} if path.suffix.lower() in ("", ".png") else None
    fig.savefig(path, metadata=metadata, format=None if path.suffix else "png")
    pyplot().close(fig)
    return path


def figure_source(path: str | pathlib.Path) -> str | None:
    """The ``Source`` digest a PNG written by :func:`save` carries (None if it has none)."""
    from PIL import Image  # matplotlib's own dependency

    with Image.open(path) as image:
        return image.info.get("Source")


def error_plot(rows: Sequence[Any], *, title: str, floor: float = 1e-6) -> Any:
    """Mean decode error (image px) against heatmap size, log-log, one line per codec, each with
    its own line style and marker (coinciding lines stay visible); zero errors sit on ``floor``.
    ``rows`` are :class:`landmark_codecs.bench.Row`; returns the Figure."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.6, 4.8), dpi=120, layout="constrained")
    for i, codec in enumerate(dict.fromkeys(r.codec for r in rows)):
        mine = sorted((r for r in rows if r.codec == codec), key=lambda r: r.size)
        ax.plot(
            [r.size for r in mine],
            [max(r.mean_error_image_px, floor) for r in mine],
            label=codec,
            markersize=5,
            **style(i),
        )
    # Lines that coincide on the floor hide each other's markers: name them there.
    exact = [
        c
        for c in dict.fromkeys(r.codec for r in rows)
        if all(r.mean_error_image_px <= floor for r in rows if r.codec == c)
    ]
    if exact:
        ax.annotate(
            "exact at every size: " + ", ".join(exact),
            (min(r.size for r in rows), floor),
            xytext=(0, 8),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    sizes = sorted({r.size for r in rows})
    ax.set_xticks(sizes, [f"{s}x{s}" for s in sizes])
    ax.set_xlabel("heatmap size")
    ax.set_ylabel(f"mean error (image px; {floor:g} = exact)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    fig.suptitle(textwrap.fill(title, 120), fontsize=8)
    return fig
