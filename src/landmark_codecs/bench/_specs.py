"""Codec specs of the bench's command line: a codec name and its options in one string."""

from __future__ import annotations

import ast
from typing import Any

from ..codecs import codec_names

__all__ = ["parse_codec"]


def parse_codec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"name:key=value:..."`` -> ``(name, options)``; a value is a Python literal or a bare word.

    >>> parse_codec("h3r:expected=True:activation=window")
    ('h3r', {'expected': True, 'activation': 'window'})
    """
    name, *items = spec.split(":")
    if name not in codec_names():
        raise ValueError(
            f"unknown codec {name!r} in {spec!r}; choose from {', '.join(codec_names())} (options after colons: name:key=value)"
        )
    options: dict[str, Any] = {}
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key.isidentifier():
            raise ValueError(f"codec {spec!r}: expected options as key=value after the name, got {item!r}")
        try:
            options[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            options[key] = text
    return name, options
