"""JSON pointers (RFC 6901): escape, join and split, with ``*`` standing for every array item."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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


def parent_pointer(pointer: str) -> str:
    """The pointer one level up (``""`` for the root and its children)."""
    return pointer[: pointer.rfind("/")] if pointer else ""


def last_segment(pointer: str) -> str:
    """The unescaped last segment of a pointer (``""`` for the root)."""
    parts = split_pointer(pointer)
    return parts[-1] if parts else ""


def values_at(document: Any, pointer: str) -> list[Any]:
    """Every value of ``document`` at ``pointer``, a ``*`` segment standing for every item of
    an array (``/data/credits/*/name``: each credit's name; an index picks one item);
    ``[]`` when nothing is there."""
    nodes = [document]
    for part in split_pointer(pointer):
        found: list[Any] = []
        for node in nodes:
            if isinstance(node, list):
                if part == ITEMS:
                    found.extend(node)
                elif part.isdigit() and int(part) < len(node):
                    found.append(node[int(part)])
            elif isinstance(node, dict) and part in node:
                found.append(node[part])
        nodes = found
        if not nodes:
            break
    return nodes
