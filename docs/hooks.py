"""mkdocs hooks: heading anchors as GitHub makes them, so a page's links work on both."""

from __future__ import annotations

import re
from typing import Any


def github_slug(value: str, separator: str = "-") -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, each space a dash (runs of
    dashes kept, as GitHub keeps them)."""
    return re.sub(r"[^\w\- ]", "", value.strip().lower()).replace(" ", separator)


def on_config(config: Any) -> Any:
    config["mdx_configs"].setdefault("toc", {})["slugify"] = github_slug
    return config
