"""The contract as one self-contained OpenAPI document (no reference to another file).

openapi-python-client, Postman and datamodel-code-generator need a single file. Each schema file
``x-y.json`` becomes ``components/schemas/XY`` (without ``$schema``/``$id``: an inlined ``$id``
would change the base URI of every reference inside it), each of its ``$defs`` its own component
(``common.json#/$defs/id`` -> ``CommonId``: generators name only ``#/components/schemas/<Name>``),
a self-reference (``#``) becomes a reference to its component, and file schemas nothing
references are left out (linters flag unused components).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import yaml

from pivotkit.contract import Contract
from pivotkit.errors import ContractFileError

_PREFIX = "#/components/schemas/"


def _pascal(name: str) -> str:
    return "".join(
        part[:1].upper() + part[1:] for part in name.removesuffix(".json").split("-") if part
    )


class _Bundler:
    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.files = {d.path.name: d.contents for d in contract.documents if not d.is_openapi}
        self.taken = set(contract.openapi.get("components", {}).get("schemas", {}))
        self.names: dict[str, str] = {}

    def name(self, file: str, key: str = "") -> str:
        """The component name of a file (or of one of its ``$defs``), never a taken one."""
        wanted = _pascal(file) + _pascal(key)
        found = self.names.get(f"{file}#{key}")
        if found is None:
            found = wanted if wanted not in self.taken else wanted + "Schema"
            self.names[f"{file}#{key}"] = found
            self.taken.add(found)
        return found

    def target(self, file: str, pointer: str) -> str:
        if pointer.startswith("/$defs/"):
            head, _, rest = pointer[len("/$defs/") :].partition("/")
            return _PREFIX + self.name(file, head) + (f"/{rest}" if rest else "")
        return _PREFIX + self.name(file) + pointer

    def rewrite(self, node: Any, file: str | None) -> Any:
        """Every ``$ref`` of ``node`` (found in ``file``; None: openapi.yaml) made internal."""
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    out[key] = self.ref(value, file)
                else:
                    out[key] = self.rewrite(value, file)
            return out
        if isinstance(node, list):
            return [self.rewrite(v, file) for v in node]
        return node

    def ref(self, value: str, file: str | None) -> str:
        target, _, fragment = value.partition("#")
        if not target:
            return value if file is None else self.target(file, fragment)
        name = target.rsplit("/", 1)[-1]
        if name not in self.files:
            raise ContractFileError(
                self.contract.openapi_path, f"cannot bundle: $ref {value!r} names no schema file"
            )
        return self.target(name, fragment)

    def components(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for file, doc in self.files.items():
            body = copy.deepcopy(doc)
            for key in ("$id", "$schema"):
                body.pop(key, None)
            for key, sub in body.pop("$defs", {}).items():
                out[self.name(file, key)] = self.rewrite(sub, file)
            if set(body) - {"title", "description", "examples"}:
                out[self.name(file)] = self.rewrite(body, file)
        return out


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_PREFIX):
            yield ref[len(_PREFIX) :].split("/", 1)[0]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _prune(document: dict[str, Any], candidates: set[str]) -> None:
    """Leave out the candidate components nothing reaches."""
    schemas = document["components"]["schemas"]
    roots = {k: v for k, v in document.items() if k != "components"}
    rest = {k: v for k, v in document["components"].items() if k != "schemas"}
    reached = set(_refs(roots)) | set(_refs(rest)) | (set(schemas) - candidates)
    todo = list(reached)
    while todo:
        for name in _refs(schemas.get(todo.pop())):
            if name not in reached:
                reached.add(name)
                todo.append(name)
    for name in candidates - reached:
        del schemas[name]


def bundle(contract: Contract, *, servers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The contract as one self-contained OpenAPI document (``servers`` replaced if given)."""
    bundler = _Bundler(contract)
    document: dict[str, Any] = bundler.rewrite(copy.deepcopy(contract.openapi), None)
    document.setdefault("components", {}).setdefault("schemas", {})
    added = bundler.components()
    document["components"]["schemas"].update(added)
    _prune(document, set(added))
    if servers is not None:
        document["servers"] = servers
    return document


def dumps(document: dict[str, Any], fmt: str = "yaml") -> str:
    """A document as YAML or JSON text."""
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


__all__ = ["bundle", "dumps"]
