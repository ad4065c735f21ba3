"""The contract being calibrated: a copy of every file of ``schemas/``, edited in memory, written
to another directory in the files' own canonical form, and diffed against the input.

A *site* is one schema object: ``(file name, JSON pointer)``. ``$ref`` values are resolved the
way the contract's loader does: relative to the referring file, by file name.
"""

from __future__ import annotations

import copy
import difflib
import json
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from pivotkit.documents import OPENAPI_NAME, read_json, read_yaml
from pivotkit.errors import ContractFileError
from pivotkit.locations import atomic_write_text
from pivotkit.pointers import escape_pointer_segment, split_pointer

Site = tuple[str, str]
YAML_WIDTH = 110


def _header(text: str) -> str:
    """The comment lines a YAML file starts with (kept on every rewrite)."""
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        lines.append(line)
    return "".join(lines)


def dump_yaml(data: Any, header: str = "") -> str:
    """The canonical YAML of a contract file: key order kept, unicode as is."""
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=YAML_WIDTH)


def dump_json(data: Any) -> str:
    """The canonical JSON of a schema file: two-space indent, unicode as is, final newline."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _at(node: Any, pointer: str) -> Any:
    for part in split_pointer(pointer):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


class Draft:
    """Every file of a schemas directory, as data, with the text it was read from."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.original: dict[str, str] = {}
        self.data: dict[str, Any] = {}
        self._headers: dict[str, str] = {}
        if not (root / OPENAPI_NAME).is_file():
            raise ContractFileError(root / OPENAPI_NAME, "no such file: is --schemas right?")
        for path in sorted(root.iterdir()):
            if path.name == OPENAPI_NAME:
                self.data[path.name] = read_yaml(path)
                self._headers[path.name] = _header(path.read_text("utf-8"))
            elif path.suffix == ".json":
                self.data[path.name] = read_json(path)
            else:
                continue
            self.original[path.name] = path.read_text("utf-8")
        self._pristine = copy.deepcopy(self.data)

    @property
    def openapi(self) -> dict[str, Any]:
        doc: dict[str, Any] = self.data[OPENAPI_NAME]
        return doc

    # -- sites --------------------------------------------------------------------------

    def node(self, site: Site) -> Any:
        """The value at a site (None when the pointer reaches nothing)."""
        return _at(self.data.get(site[0]), site[1])

    def set(self, site: Site, value: Any) -> None:
        """Replace the value at a site (its parent must exist)."""
        parts = split_pointer(site[1])
        parent = self.node((site[0], "".join("/" + escape_pointer_segment(p) for p in parts[:-1])))
        last = parts[-1]
        if isinstance(parent, list):
            parent[int(last)] = value
        elif isinstance(parent, dict):
            parent[last] = value
        else:
            raise KeyError(f"{site[0]}#{site[1]}: no parent")

    def ref(self, site: Site, ref: str) -> Site:
        """The site a ``$ref`` written at ``site`` points to."""
        name, _, fragment = ref.partition("#")
        if not name:
            return site[0], fragment
        folder = posixpath.dirname(site[0])
        return posixpath.normpath(posixpath.join(folder, name)), fragment

    def pristine(self, site: Site) -> Any:
        """The value at a site as it was read (before any edit)."""
        return _at(self._pristine.get(site[0]), site[1])

    # -- writing ------------------------------------------------------------------------

    def text(self, name: str) -> str:
        """The file's text now: the original text when nothing in it changed."""
        if self.data[name] == self._pristine[name]:
            return self.original[name]
        if name == OPENAPI_NAME:
            return dump_yaml(self.data[name], self._headers.get(name, ""))
        return dump_json(self.data[name])

    def changed(self) -> list[str]:
        """The files whose content differs from what was read."""
        return [n for n in self.data if self.data[n] != self._pristine[n]]

    def write(self, out: Path) -> list[Path]:
        """Write every file (changed or not) into ``out``, atomically each."""
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in self.data:
            target = out / name
            atomic_write_text(target, self.text(name))
            written.append(target)
        return written

    def patch(self, prefix: str = "schemas") -> str:
        """A unified diff of every changed file, ``a/<prefix>/<file>`` to ``b/...``, for
        ``git apply``."""
        chunks: list[str] = []
        for name in sorted(self.changed()):
            before = self.original[name].splitlines(keepends=True)
            after = self.text(name).splitlines(keepends=True)
            chunks.extend(
                difflib.unified_diff(before, after, f"a/{prefix}/{name}", f"b/{prefix}/{name}")
            )
        return "".join(chunks)

    # -- walking ------------------------------------------------------------------------

    def operations(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(path template, method, operation object) of every operation."""
        for template, item in (self.openapi.get("paths") or {}).items():
            if not isinstance(item, dict):
                continue
            for method, spec in item.items():
                if isinstance(spec, dict) and "operationId" in spec:
                    yield template, method, spec

    def operation_site(self, operation_id: str) -> Site | None:
        """The site of an operation object."""
        for template, method, spec in self.operations():
            if spec.get("operationId") == operation_id:
                return OPENAPI_NAME, f"/paths/{escape_pointer_segment(template)}/{method}"
        return None

    def deref_site(self, site: Site) -> Site:
        """Follow ``$ref`` objects (a response, a parameter) to the site they name."""
        seen = set()
        node = self.node(site)
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and site not in seen:
            seen.add(site)
            site = self.ref(site, node["$ref"])
            node = self.node(site)
        return site

    def response_site(self, operation_id: str, status: int) -> Site | None:
        """The (dereferenced) response object of an operation's status."""
        op = self.operation_site(operation_id)
        if op is None:
            return None
        site = (op[0], f"{op[1]}/responses/{status}")
        if self.node(site) is None:
            return None
        return self.deref_site(site)

    def media_site(self, operation_id: str, status: int) -> Site | None:
        """The site of the response's (first) media type object."""
        response = self.response_site(operation_id, status)
        content = self.node(response) if response is not None else None
        if response is None or not isinstance(content, dict):
            return None
        media = content.get("content")
        if not isinstance(media, dict) or not media:
            return None
        first = next(iter(media))
        return response[0], f"{response[1]}/content/{escape_pointer_segment(first)}"

    def schema_site(self, operation_id: str, status: int) -> Site | None:
        """The site of the response schema of an operation's status."""
        media = self.media_site(operation_id, status)
        if media is None:
            return None
        return media[0], f"{media[1]}/schema"
