"""Build the generated parts of docs/ and check the whole of it, strictly.

    python docs/build.py            # write docs/api.md and docs/conventions.png from the code
    python docs/build.py --check    # fail (exit 1, one line per problem) when either is stale,
                                    # a docstring cross-reference does not resolve, or a link
                                    # in README.md or docs/*.md points at nothing

The API reference is every public name of ``landmark_codecs``, ``landmark_codecs.torch``,
``landmark_codecs.testing`` and ``landmark_codecs.bench``, with its signature and its docstring
verbatim, in the order of each ``__all__``. The conventions figure is drawn from
``heatmap_to_image`` itself, so it cannot drift from the code. ``tests/test_docs.py`` runs the
check, so CI fails on a stale page, a broken reference or a broken link.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pathlib
import pkgutil
import re
import sys

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
MODULES = ("landmark_codecs", "landmark_codecs.codecs", "landmark_codecs.metrics", "landmark_codecs.torch", "landmark_codecs.testing", "landmark_codecs.bench")
_REF = re.compile(r":(?:func|class|mod|meth|attr|data):`~?([^`]+)`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _public(module_name: str) -> list[tuple[str, object]]:
    module = importlib.import_module(module_name)
    return [(name, getattr(module, name)) for name in module.__all__ if not name.startswith("__")]


def _anchor(qualified: str) -> str:
    return qualified.lower().replace(".", "")


def api_markdown() -> str:
    """docs/api.md: every public name, its signature and docstring, grouped by module."""
    out = [
        "# API reference",
        "",
        "Generated from the docstrings by `python docs/build.py` (a test fails when this page is",
        "stale). Arrays are positional, options keyword-only; shapes, units and conventions are in",
        "each entry. See [conventions](conventions.md) for the coordinate system.",
        "",
    ]
    for module_name in MODULES:
        out.append(f"- [`{module_name}`](#{_anchor(module_name)})")
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        out += ["", f"## {module_name}", "", (inspect.getdoc(module) or "").split("\n\n")[0].replace("\n", " "), ""]
        for name, obj in _public(module_name):
            out += [f"### {module_name}.{name}", ""]
            try:
                signature = f"{name}{inspect.signature(obj)}"  # type: ignore[arg-type]
            except (TypeError, ValueError):
                signature = name
            kind = "class " if inspect.isclass(obj) else ("" if callable(obj) else f"{name}: {type(obj).__name__} = ")
            out += ["```python", (kind + signature) if callable(obj) else f"{kind}...", "```", ""]
            doc = inspect.getdoc(obj) if (callable(obj) or inspect.isclass(obj)) else None
            if doc:
                out += ["```text", doc, "```", ""]
    return "\n".join(out).rstrip() + "\n"


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
            return [float(v) for v in heatmap_to_image(a, image_size=(image, image), heatmap_size=(heat, heat), convention=name)[:, 0, 0]]

        out[name] = {"edges": place([j - 0.5 for j in range(heat + 1)]), "centres": place([float(j) for j in range(heat)])}
    return {"image": image, "heatmap": heat, "conventions": out}


_FORMULAS = {"pixel_center": "x_h = (x_i + 0.5) W_h / W_i - 0.5", "legacy": "x_h = x_i W_h / W_i", "udp": "x_h = x_i (W_h - 1) / (W_i - 1)"}


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
            ax.add_patch(Rectangle((edges[j], yy), edges[j + 1] - edges[j], 0.45, facecolor=colour, alpha=0.25, edgecolor=colour))
            ax.plot(centre, yy + 0.225, "o", color=colour, markersize=5)
            ax.text(centre, yy - 0.15, f"hm {j} at x_i = {centre:g}", ha="center", fontsize=7, color=colour)
        ax.text(-3.9, yy + 0.6, f'"{name}": {_FORMULAS[name]}; the map covers x_i in [{edges[0]:g}, {edges[-1]:g}]', fontsize=8, color=colour)
        for edge in (-0.5, data["image"] - 0.5):
            ax.plot([edge, edge], [yy - 0.05, yy + 0.5], ":", color="black", linewidth=0.8)
    ax.set_xlim(-4.0, data["image"] + 3.0)
    ax.set_ylim(-0.4, 3.7)
    ax.axis("off")
    ax.set_title("One row of an 8-px image and its 2-px heatmap (stride 4), placed by heatmap_to_image", fontsize=9)
    return _plots.save(fig, path, source=data)


def broken_references() -> list[str]:
    """Every :func:/:class:/:mod: reference in the package's docstrings that resolves to nothing."""
    import landmark_codecs

    problems = []
    names = [m.name for m in pkgutil.walk_packages(landmark_codecs.__path__, "landmark_codecs.")] + ["landmark_codecs"]
    for module_name in names:
        module = importlib.import_module(module_name)
        docs = [(module_name, inspect.getdoc(module) or "")]
        for attr, obj in vars(module).items():
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and getattr(obj, "__module__", None) == module_name:
                docs.append((f"{module_name}.{attr}", inspect.getdoc(obj) or ""))
                if inspect.isclass(obj):
                    # __doc__, not getdoc: a method's inherited docstring (nn.Module.forward's) is not ours
                    docs += [(f"{module_name}.{attr}.{m}", f.__doc__ or "") for m, f in vars(obj).items() if inspect.isfunction(f)]
        for where, doc in docs:
            for ref in _REF.findall(doc):
                if not _resolves(ref, module):
                    problems.append(f"{where}: reference {ref!r} resolves to nothing")
    return problems


def _resolves(ref: str, module: object) -> bool:
    import landmark_codecs

    if ref.startswith("."):
        ref = module.__name__.rsplit(".", 1)[0] + ref if not hasattr(module, "__path__") else module.__name__ + ref  # type: ignore[attr-defined]
    head, *rest = ref.split(".")
    for start in (getattr(module, head, None), getattr(landmark_codecs, head, None)):
        if start is not None and _walk(start, rest):
            return True
    parts = ref.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        return _walk(obj, parts[cut:])
    return False


def _walk(obj: object, rest: list[str]) -> bool:
    for part in rest:
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True


def broken_links(pages: list[pathlib.Path] | None = None) -> list[str]:
    """Relative links in ``pages`` (README.md and docs/*.md) whose file or #anchor heading does not exist."""
    problems = []
    for page in pages if pages is not None else [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in _LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: outside this check
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                problems.append(f"{page.name}: link {target!r}: no such file")
            elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
                problems.append(f"{page.name}: link {target!r}: no heading with that anchor")
    return problems


def _anchors(page: pathlib.Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    heads = re.findall(r"^#+ (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


GENERATED = {"api.md": api_markdown}
FIGURES = {"conventions.png": (conventions_png, conventions_data)}


def check() -> list[str]:
    from landmark_codecs.bench import _plots

    problems = [f"docs/{name} is stale: run python docs/build.py" for name, make in GENERATED.items() if (DOCS / name).read_text() != make()]
    for name, (_, data) in FIGURES.items():  # a figure is checked by the data it draws, not by its pixels
        if not (DOCS / name).exists() or _plots.figure_source(DOCS / name) != _plots.data_digest(data()):
            problems.append(f"docs/{name} is stale: run python docs/build.py")
    return problems + broken_references() + broken_links()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="check only; exit 1 on any problem")
    args = parser.parse_args(argv)
    if not args.check:
        for name, make in GENERATED.items():
            (DOCS / name).write_text(make())
        for name, (draw, _) in FIGURES.items():
            draw(DOCS / name)
    problems = check()
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
