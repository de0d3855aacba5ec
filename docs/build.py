"""Build the generated parts of docs/ and check the whole of it, strictly.

    python docs/build.py            # write docs/api.md and docs/conventions.svg from the code
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


def conventions_svg() -> str:
    """An 8-px image row and a 2-px heatmap (stride 4) placed by each convention's heatmap_to_image."""
    import numpy as np

    from landmark_codecs import heatmap_to_image

    image, heat, scale, left, top = 8, 2, 60.0, 60.0, 40.0
    rows = [
        ("pixel_center", "x_h = (x_i + 0.5) W_h / W_i - 0.5", "#1b9e77"),
        ("legacy", "x_h = x_i W_h / W_i", "#d95f02"),
        ("udp", "x_h = x_i (W_h - 1) / (W_i - 1)", "#7570b3"),
    ]

    def x(v: float) -> float:
        return left + scale * (v + 4.0)  # image x = -4 at the left margin: UDP's map overhangs to -3.5

    w, row_h = int(x(image + 3.0) + 20), 78
    h = int(top + 60 + row_h * len(rows) + 20)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">']
    svg.append(f'<text x="{left}" y="20" font-size="13">One row of an 8-px image and its 2-px heatmap (stride 4), placed by heatmap_to_image</text>')
    y0 = top + 10
    for i in range(image):
        svg.append(f'<rect x="{x(i - 0.5):.1f}" y="{y0}" width="{scale:.1f}" height="30" fill="#f2f2f2" stroke="black"/>')
        svg.append(f'<circle cx="{x(i):.1f}" cy="{y0 + 15}" r="3"/>')
        svg.append(f'<text x="{x(i):.1f}" y="{y0 + 45}" text-anchor="middle">{i}</text>')
    for edge in (-0.5, image - 0.5):
        svg.append(f'<text x="{x(edge):.1f}" y="{y0 - 5}" text-anchor="middle">{edge:g}</text>')
    svg.append(f'<text x="{left - 50}" y="{y0 + 20}">image</text>')
    for r, (name, formula, colour) in enumerate(rows):
        y = y0 + 60 + r * row_h
        edges = heatmap_to_image(np.array([[[j - 0.5, 0.0]] for j in range(heat + 1)], dtype=np.float64), image_size=(image, image), heatmap_size=(heat, heat), convention=name)[:, 0, 0]
        centres = heatmap_to_image(np.array([[[j, 0.0]] for j in range(heat)], dtype=np.float64), image_size=(image, image), heatmap_size=(heat, heat), convention=name)[:, 0, 0]
        for j in range(heat):
            svg.append(f'<rect x="{x(edges[j]):.1f}" y="{y}" width="{x(edges[j + 1]) - x(edges[j]):.1f}" height="26" fill="{colour}" fill-opacity="0.25" stroke="{colour}"/>')
            svg.append(f'<circle cx="{x(centres[j]):.1f}" cy="{y + 13}" r="4" fill="{colour}"/>')
            svg.append(f'<text x="{x(centres[j]):.1f}" y="{y + 42}" text-anchor="middle" fill="{colour}">hm {j} at x_i = {centres[j]:g}</text>')
        svg.append(f'<text x="{left - 50}" y="{y - 6}" fill="{colour}">"{name}": {formula}; the map covers x_i in [{edges[0]:g}, {edges[-1]:g}]</text>')
        for edge in (-0.5, image - 0.5):
            svg.append(f'<line x1="{x(edge):.1f}" y1="{y - 2}" x2="{x(edge):.1f}" y2="{y + 28}" stroke="black" stroke-dasharray="3,3"/>')
    svg.append("</svg>")
    return "\n".join(svg) + "\n"


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


GENERATED = {"api.md": api_markdown, "conventions.svg": conventions_svg}


def check() -> list[str]:
    problems = [f"docs/{name} is stale: run python docs/build.py" for name, make in GENERATED.items() if (DOCS / name).read_text() != make()]
    return problems + broken_references() + broken_links()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="check only; exit 1 on any problem")
    args = parser.parse_args(argv)
    if not args.check:
        for name, make in GENERATED.items():
            (DOCS / name).write_text(make())
    problems = check()
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
