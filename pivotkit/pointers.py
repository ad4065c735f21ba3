"""JSON pointers (RFC 6901): escape, join and split, with ``*`` standing for every array item."""

from __future__ import annotations

from collections.abc import Iterable

ITEMS = "*"
"""The pointer segment that stands for "every item of the array"."""


def escape_pointer_segment(segment: object) -> str:
    """Escape one JSON pointer segment (RFC 6901)."""
    return str(segment).replace("~", "~0").replace("/", "~1")


def to_pointer(parts: Iterable[object]) -> str:
    """Join path parts into a JSON pointer; the root is the empty string."""
    return "".join("/" + escape_pointer_segment(p) for p in parts)


def split_pointer(pointer: str) -> list[str]:
    """The unescaped segments of a JSON pointer (``[]`` for the root)."""
    if not pointer:
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]


def parse_field(spec: str) -> tuple[str, ...]:
    """A field named by a JSON pointer (``/credits/character``) or a dotted path
    (``credits.character``), as its segments. ValueError when it names nothing."""
    text = spec.strip()
    parts = split_pointer(text) if text.startswith("/") else text.split(".")
    if not parts or "" in parts:
        raise ValueError(f"{spec!r} names no field; use /credits/character or credits.character")
    return tuple(parts)
