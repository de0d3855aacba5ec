"""A griffe extension for the docs site: doctests become ``pycon`` code blocks, reST's ``::``
before a literal block a colon, and the docstrings' Sphinx roles (``:func:`name```, also
``:class:``, ``:mod:``, ``:meth:``, ``:attr:``, ``:data:``) mkdocstrings cross-references.

A role is resolved the way Python would (the name in the docstring's module, then the package's
flat API, then an absolute import path) and links to where the site documents that object: its
flat name (``landmark_codecs.encode_gaussian``) when the package exports it, else its place in a
documented module (``landmark_codecs.metrics.nme``). An object the site does not document (a
private helper) is shown as code without a link; a role that resolves to nothing is a warning,
which ``mkdocs build --strict`` turns into a failure.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pathlib
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|obj):`(~?)([^`]+)`")
_log = logging.getLogger("mkdocs.plugins.griffe_roles")


def _build() -> Any:
    """docs/build.py, which knows the API pages (``API_PAGES``) and what each documents."""
    spec = importlib.util.spec_from_file_location(
        "landmark_codecs_docs_build", pathlib.Path(__file__).with_name("build.py")
    )
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


# The modules the API reference documents (a page each), the flat API first.
DOCUMENTED = tuple(module for module, _, _ in _build().API_PAGES)


def _import(identifier: str) -> Any:
    """The object at a dotted path, or None where its module cannot be imported (torch missing)."""
    parts = identifier.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for part in parts[cut:]:
                obj = getattr(obj, part, None)
        except ImportError:  # a lazy submodule (landmark_codecs.torch) whose extra is missing
            return None
        return obj
    return None


def _documented() -> dict[int, str]:
    """Where the site documents each object: id -> the identifier of its entry (flat where the
    package exports it, as docs/build.py writes the pages); a class's public members under it."""
    paths: dict[int, str] = {}
    for module_name in DOCUMENTED:
        try:
            paths.setdefault(id(importlib.import_module(module_name)), module_name)
        except ImportError:  # an optional extra (torch) is missing: _static resolves its names
            continue
    for identifiers in _build().api_entries().values():
        for identifier in identifiers:
            obj = _import(identifier)
            if obj is None:
                continue
            paths.setdefault(id(obj), identifier)
            if isinstance(obj, type):
                for member, value in vars(obj).items():
                    if not member.startswith("_"):
                        paths.setdefault(id(value), f"{identifier}.{member}")
    return paths


def _resolve(ref: str, module_name: str) -> Any:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        # A module whose optional extra is missing (landmark_codecs.mmpose without mmpose): its
        # names resolve through the package and absolute paths, as they do where it imports.
        module = importlib.import_module("landmark_codecs")
    if ref.startswith("."):
        ref = module_name.rsplit(".", 1)[0] + ref
    head, *rest = ref.split(".")
    import landmark_codecs

    for start in (getattr(module, head, None), getattr(landmark_codecs, head, None)):
        obj = start
        for part in rest:
            obj = getattr(obj, part, None) if obj is not None else None
        if obj is not None:
            return obj
    return _import(ref)


def _literal_colons(text: str) -> str:
    """reST's ``text::`` before an indented literal block reads ``text:`` (the block is already
    code in Markdown), as Sphinx renders it."""
    return re.sub(r"(?<=\S)::$", ":", text, flags=re.M)


def _fence_doctests(text: str) -> str:
    """Each doctest (a ``>>>`` line, its ``...`` continuations and its output, up to a blank
    line) in a ``pycon`` code fence, so the site shows code, not Markdown."""
    out, block = [], None
    for line in text.split("\n"):
        stripped = line.lstrip()
        if block is None and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            block = indent
            out.append(f"{indent}```pycon")
        elif block is not None and not stripped:
            out.append(f"{block}```")
            block = None
        out.append(line)
    if block is not None:
        out.append(f"{block}```")
    return "\n".join(out)


def _static(ref: str, module_name: str, pkg: griffe.Module) -> str | None:
    """The documented path of ``ref`` found in griffe's source tree, for modules whose optional
    extra is not installed (landmark_codecs.torch without torch): None if it is not there."""
    for full in (f"{module_name}.{ref}", f"{module_name.rsplit('.', 1)[0]}.{ref}", f"{pkg.path}.{ref}", ref):
        if not full.startswith(pkg.path + "."):
            continue
        try:
            obj = pkg[full[len(pkg.path) + 1 :]]
        except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            continue
        owner = obj.module.path if not obj.is_module else obj.path
        return obj.path if owner in DOCUMENTED and not obj.name.startswith("_") else ""
    return None


class SphinxRoles(griffe.Extension):
    """Rewrite the roles of every docstring once the package is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        paths = _documented()

        def visit(obj: griffe.Object) -> None:
            if obj.docstring is not None:
                module_name = obj.module.path
                text = _ROLE.sub(lambda m: self._link(m, module_name, obj.path, paths, pkg), obj.docstring.value)
                obj.docstring.value = _fence_doctests(_literal_colons(text))
            for member in obj.members.values():
                if not member.is_alias:
                    visit(member)

        visit(pkg)

    @staticmethod
    def _link(
        match: re.Match[str], module_name: str, where: str, paths: dict[int, str], pkg: griffe.Module | None = None
    ) -> str:
        short, ref = match.group(1) == "~", match.group(2)
        title = ref.rsplit(".", 1)[-1] if short else ref
        try:
            target = _resolve(ref, module_name)
        except Exception:  # an import error is an unresolved reference too
            target = None
        if target is None:
            path = _static(ref, module_name, pkg) if pkg is not None else None
            if path is not None:
                return f"[`{title}`][{path}]" if path else f"`{title}`"
            _log.warning(f"{where}: reference {ref!r} resolves to nothing")
            return f"`{title}`"
        path = paths.get(id(target))
        return f"[`{title}`][{path}]" if path else f"`{title}`"
