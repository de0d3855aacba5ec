"""Draw the generated figure of docs/ and check that it is current.

    python docs/build.py            # draw docs/conventions.png from the code
    python docs/build.py --check    # exit 1 when the committed figure is stale

The conventions figure is drawn from ``heatmap_to_image`` itself, so it cannot drift from the
code: the PNG records the SHA-256 of the numbers it draws, and ``--check`` compares that with
the numbers the code gives today (never pixels, which differ between matplotlib versions). The
rest of the documentation is a site built by mkdocs with mkdocstrings (``mkdocs.yml``):
``mkdocs build --strict`` renders the API reference from the docstrings and fails on a broken
link, anchor or docstring cross-reference; ``tests/test_docs.py`` runs both.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent


def conventions_data() -> dict:
    """Each convention's heatmap pixel edges and centres in image x, for an 8-px image row and a
    2-px heatmap (stride 4), from heatmap_to_image: what the figure draws."""
    import numpy as np

    from landmark_codecs import heatmap_to_image

    image, heat = 8, 2
    out = {}
    for name in ("pixel_center", "legacy", "udp"):

        def place(points: list[float], name: str = name) -> list[float]:
            a = np.array([[[v, 0.0]] for v in points], dtype=np.float64)
            return [
                float(v)
                for v in heatmap_to_image(a, image_size=(image, image), heatmap_size=(heat, heat), convention=name)[
                    :, 0, 0
                ]
            ]

        out[name] = {
            "edges": place([j - 0.5 for j in range(heat + 1)]),
            "centres": place([float(j) for j in range(heat)]),
        }
    return {"image": image, "heatmap": heat, "conventions": out}


_FORMULAS = {
    "pixel_center": "x_h = (x_i + 0.5) W_h / W_i - 0.5",
    "legacy": "x_h = x_i W_h / W_i",
    "udp": "x_h = x_i (W_h - 1) / (W_i - 1)",
}


def conventions_png(path: pathlib.Path) -> pathlib.Path:
    """The conventions figure (matplotlib, PNG): the image row and each convention's heatmap."""
    from matplotlib.patches import Rectangle

    from landmark_codecs.bench import _plots

    data = conventions_data()
    plt = _plots.pyplot()
    fig, ax = plt.subplots(figsize=(9.0, 4.2), dpi=110, layout="constrained")
    colours = {"pixel_center": "#1b9e77", "legacy": "#d95f02", "udp": "#7570b3"}
    y = 3.0
    for i in range(data["image"]):
        ax.add_patch(Rectangle((i - 0.5, y), 1.0, 0.5, facecolor="#f2f2f2", edgecolor="black"))
        ax.plot(i, y + 0.25, "o", color="black", markersize=3)
        ax.text(i, y - 0.2, str(i), ha="center", va="center", fontsize=8)
    ax.text(-3.9, y + 0.25, "image", va="center", fontsize=9)
    for row, (name, placed) in enumerate(data["conventions"].items()):
        yy, colour = 2.0 - row * 1.0, colours[name]
        edges, centres = placed["edges"], placed["centres"]
        for j, centre in enumerate(centres):
            ax.add_patch(
                Rectangle((edges[j], yy), edges[j + 1] - edges[j], 0.45, facecolor=colour, alpha=0.25, edgecolor=colour)
            )
            ax.plot(centre, yy + 0.225, "o", color=colour, markersize=5)
            ax.text(centre, yy - 0.15, f"hm {j} at x_i = {centre:g}", ha="center", fontsize=7, color=colour)
        ax.text(
            -3.9,
            yy + 0.6,
            f'"{name}": {_FORMULAS[name]}; the map covers x_i in [{edges[0]:g}, {edges[-1]:g}]',
            fontsize=8,
            color=colour,
        )
        for edge in (-0.5, data["image"] - 0.5):
            ax.plot([edge, edge], [yy - 0.05, yy + 0.5], ":", color="black", linewidth=0.8)
    ax.set_xlim(-4.0, data["image"] + 3.0)
    ax.set_ylim(-0.4, 3.7)
    ax.axis("off")
    ax.set_title("One row of an 8-px image and its 2-px heatmap (stride 4), placed by heatmap_to_image", fontsize=9)
    return _plots.save(fig, path, source=data)


FIGURES = {"conventions.png": (conventions_png, conventions_data)}


def check() -> list[str]:
    from landmark_codecs.bench import _plots

    problems = []
    for name, (_, data) in FIGURES.items():  # a figure is checked by the data it draws, not by its pixels
        if not (DOCS / name).exists() or _plots.figure_source(DOCS / name) != _plots.data_digest(data()):
            problems.append(f"docs/{name} is stale: run python docs/build.py")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="check only; exit 1 on any problem")
    args = parser.parse_args(argv)
    if not args.check:
        for name, (draw, _) in FIGURES.items():
            draw(DOCS / name)
    problems = check()
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
