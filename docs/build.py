"""Write the generated parts of docs/ and check that they are current.

    python docs/build.py            # draw docs/conventions.png, write the API pages docs/api/*.md
    python docs/build.py --check    # exit 1 when the committed figure or an API page is stale

The conventions figure is drawn from ``heatmap_to_image`` itself, so it cannot drift from the
code: the PNG records the SHA-256 of the numbers it draws, and ``--check`` compares that with
the numbers the code gives today (never pixels, which differ between matplotlib versions).

The API reference is one page per public module (``API_PAGES``), each the module's docstring and
an entry per public name in source order, under the name a user imports: the flat one
(``landmark_codecs.encode_gaussian``) where the package exports it, else the module's
(``landmark_codecs.metrics.nme``). Each object is documented once, on the page of the module
that defines it (the NamedTuples of the private ``_common`` on the index page); the pages are
read from the source by griffe (no import: the pages of ``torch`` and ``mmpose`` are written
without either installed), so a new public name appears on its page at the next run, and
``--check`` fails until it does. The
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

# The API reference: (module, page under docs/api/, title). The nav of mkdocs.yml lists the pages
# (strict mode fails on a page it omits).
API_PAGES = (
    ("landmark_codecs", "index.md", "The flat API and its result types"),
    ("landmark_codecs.codecs", "codecs.md", "Codec objects"),
    ("landmark_codecs.coords", "coords.md", "Coordinate conventions"),
    ("landmark_codecs.gaussian", "gaussian.md", "Gaussian targets"),
    ("landmark_codecs.argmax", "argmax.md", "Argmax and the quarter shift"),
    ("landmark_codecs.rounding", "rounding.md", "Randomized rounding (H3R)"),
    ("landmark_codecs.soft_argmax", "soft_argmax.md", "Soft-argmax"),
    ("landmark_codecs.dark", "dark.md", "DARK"),
    ("landmark_codecs.udp", "udp.md", "UDP"),
    ("landmark_codecs.simcc", "simcc.md", "SimCC"),
    ("landmark_codecs.regression", "regression.md", "Regression"),
    ("landmark_codecs.pipnet", "pipnet.md", "PIPNet"),
    ("landmark_codecs.locref", "locref.md", "DeepLabCut's location refinement"),
    ("landmark_codecs.losses", "losses.md", "Losses"),
    ("landmark_codecs.boundaries", "boundaries.md", "Boundaries and CoordConv"),
    ("landmark_codecs.moments", "moments.md", "Heatmap moments"),
    ("landmark_codecs.metrics", "metrics.md", "Metrics"),
    ("landmark_codecs.layouts", "layouts.md", "Face shapes and pose layouts"),
    ("landmark_codecs.torch", "torch.md", "PyTorch adapter"),
    ("landmark_codecs.mmpose", "mmpose.md", "mmpose plugin"),
    ("landmark_codecs.testing", "testing.md", "Property testing"),
    ("landmark_codecs.bench", "bench.md", "Benchmark"),
)
_API_HEADER = "<!-- Written by python docs/build.py from the module's source: edit the docstrings, not this. -->"


def api_entries() -> dict[str, list[str]]:
    """Per API page, the identifiers it documents, in source order: each public object once, on
    the page of the module that defines it, under its flat name where the package exports it."""
    import griffe

    pkg = griffe.load("landmark_codecs", search_paths=[str(ROOT / "src")], resolve_aliases=True)
    modules = [module for module, _, _ in API_PAGES]
    top = {name: pkg[name].final_target.path for name in pkg.exports if not name.startswith("__")}
    flat = {path: f"landmark_codecs.{name}" for name, path in top.items()}
    entries: dict[str, dict[str, tuple[str, int, str]]] = {module: {} for module in modules}
    for module in modules:
        node = pkg if module == "landmark_codecs" else pkg[module.removeprefix("landmark_codecs.")]
        for name in node.exports:
            if name.startswith("__"):
                continue
            target = node[name].final_target if node[name].is_alias else node[name]
            owner = max(
                (m for m in modules if target.module.path == m or target.module.path.startswith(m + ".")), key=len
            )
            if module == "landmark_codecs" and owner != module and owner in entries:
                continue  # a flat re-export: documented on its module's page
            if owner == "landmark_codecs" and target.module.path != "landmark_codecs" and module != owner:
                continue
            identifier = flat.get(target.path, f"{module}.{name}")
            entries[owner].setdefault(target.path, (str(target.filepath), target.lineno or 0, identifier))
    return {module: [identifier for _, _, identifier in sorted(found.values())] for module, found in entries.items()}


def api_pages() -> dict[str, str]:
    """The Markdown of each API page, by path under docs/."""
    entries = api_entries()
    pages = {}
    for module, page, title in API_PAGES:
        # the module's anchor (autorefs' Markdown anchor), so a docstring's :mod: reference lands here
        lines = [_API_HEADER, "", f"# {title}: `{module}`", "", f"[](){{ #{module} }}", "", f"::: {module}"]
        lines += [
            "    options:",
            "      members: false",
            "      show_root_heading: false",
            "      show_root_toc_entry: false",
        ]
        if page == "index.md":
            lines += ["", "Rendered from the docstrings: arrays are positional, options keyword-only; shapes, units,"]
            lines += ["axis order and the coordinate convention are in each entry. One page per module:", ""]
            lines += [f"- [{t}]({p}): `{m}`" for m, p, t in API_PAGES if p != page]
            lines += ["", "## Result types"]
        for identifier in entries[module]:
            lines += ["", f"::: {identifier}"]
        pages[f"api/{page}"] = "\n".join(lines) + "\n"
    return pages


def check() -> list[str]:
    from landmark_codecs.bench import _plots

    problems = []
    for name, (_, data) in FIGURES.items():  # a figure is checked by the data it draws, not by its pixels
        if not (DOCS / name).exists() or _plots.figure_source(DOCS / name) != _plots.data_digest(data()):
            problems.append(f"docs/{name} is stale: run python docs/build.py")
    for name, text in api_pages().items():
        if not (DOCS / name).exists() or (DOCS / name).read_text() != text:
            problems.append(f"docs/{name} is stale: run python docs/build.py")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="check only; exit 1 on any problem")
    args = parser.parse_args(argv)
    if not args.check:
        for name, (draw, _) in FIGURES.items():
            draw(DOCS / name)
        for name, text in api_pages().items():
            (DOCS / name).parent.mkdir(exist_ok=True)
            (DOCS / name).write_text(text)
    problems = check()
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
