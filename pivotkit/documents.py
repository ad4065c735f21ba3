"""The contract's files: read (errors with file and line), given URIs, made strict, registered."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import yaml
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from pivotkit.errors import ContractFileError, ProposalInContract, UnresolvableRef
from pivotkit.pointers import escape_pointer_segment

OPENAPI_NAME = "openapi.yaml"

# Keywords whose value is one subschema, a list of them, or a map of them (2020-12 applicators).
_ONE = (
    "additionalProperties",
    "unevaluatedProperties",
    "items",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
    "unevaluatedItems",
    "contentSchema",
)
_MANY = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAP = ("properties", "patternProperties", "$defs", "dependentSchemas")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 7x faster


def default_schemas_dir() -> Path:
    """Where the contract lives: ``$PIVOT_SCHEMAS``, the checkout's ``schemas/``, or the wheel's."""
    env = os.environ.get("PIVOT_SCHEMAS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    # The checkout's schemas/ only in a checkout: beside an installed package is
    # site-packages, where another distribution's schemas/ would shadow the bundled ones.
    checkout = (here.parent / "pyproject.toml").is_file()
    candidates = ([here.parent / "schemas"] if checkout else []) + [here / "_bundled" / "schemas"]
    for candidate in candidates:
        if (candidate / OPENAPI_NAME).is_file():
            return candidate
    return candidates[0]


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ContractFileError(path, f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ContractFileError(path, f"cannot read it ({exc.strerror})") from None


def read_json(path: Path) -> Any:
    """A JSON file; ContractFileError with the line and column of a syntax error."""
    try:
        return json.loads(_text(path))
    except json.JSONDecodeError as exc:
        raise ContractFileError(path, f"invalid JSON: {exc.msg}", exc.lineno, exc.colno) from None


def read_yaml(path: Path) -> Any:
    """A YAML file; ContractFileError with the line and column of a syntax error."""
    text = _text(path)
    try:
        return yaml.load(text, Loader=_YAML_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        col = mark.column + 1 if mark is not None else None
        raise ContractFileError(path, f"invalid YAML: {exc.problem}", line, col) from None
    except (yaml.YAMLError, ValueError) as exc:
        raise ContractFileError(path, f"invalid YAML: {exc}") from None


def subschemas(schema: Any) -> Iterator[dict[str, Any]]:
    """Direct subschemas of one schema object (2020-12 applicator keywords)."""
    if not isinstance(schema, dict):
        return
    for key in _ONE:
        sub = schema.get(key)
        if isinstance(sub, dict):
            yield sub
    for key in _MANY:
        subs = schema.get(key)
        if isinstance(subs, list):
            yield from (s for s in subs if isinstance(s, dict))
    for key in _MAP:
        subs = schema.get(key)
        if isinstance(subs, dict):
            yield from (s for s in subs.values() if isinstance(s, dict))


def _make_strict(schema: dict[str, Any]) -> None:
    """Close, in place, every object schema that declares ``properties``.

    ``unevaluatedProperties: false`` sees the properties declared through ``$ref``, ``allOf``
    and ``if``/``else`` in the same schema object, so composition keeps working.
    """
    if (
        "properties" in schema
        and "unevaluatedProperties" not in schema
        and "additionalProperties" not in schema
    ):
        schema["unevaluatedProperties"] = False
    for sub in subschemas(schema):
        _make_strict(sub)


def walk_refs(node: Any, pointer: str = "") -> Iterator[tuple[str, str]]:
    """(pointer, ``$ref``) of every reference in a document."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield pointer, ref
        for key, value in node.items():
            yield from walk_refs(value, f"{pointer}/{escape_pointer_segment(key)}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk_refs(value, f"{pointer}/{i}")


@dataclass(frozen=True)
class Document:
    """One file of the contract: where it is, the URI it is known by, its contents."""

    path: Path
    uri: str
    contents: Any
    is_openapi: bool = False

    def strict(self) -> Any:
        """A deep copy in which every object schema is closed (strict mode)."""
        doc = copy.deepcopy(self.contents)
        if self.is_openapi:
            for schema in doc.get("components", {}).get("schemas", {}).values():
                if isinstance(schema, dict):
                    _make_strict(schema)
        elif isinstance(doc, dict):
            _make_strict(doc)
        return doc


def _base_uri(root: Path, schemas: list[tuple[Path, Any]]) -> str:
    """The URI the files live under: the common folder of their absolute ``$id`` s when every
    file has one, else the directory's ``file:`` URI: each file is then known by its name, and
    relative ``$ref`` s resolve offline (the bundled contract has no ``$id``: the JavaScript
    tools, Prism and Redocly among them, misread any)."""
    folders: set[str | None] = set()
    for _, schema in schemas:
        sid = schema.get("$id")
        absolute = isinstance(sid, str) and urlsplit(sid).scheme
        folders.add(sid.rsplit("/", 1)[0] + "/" if absolute and isinstance(sid, str) else None)
    if len(folders) == 1 and None not in folders:
        return str(folders.pop())
    return root.resolve().as_uri() + "/"


def read_documents(root: Path) -> tuple[Document, list[Document]]:
    """openapi.yaml and every ``*.json`` schema of ``root``, each with its URI."""
    openapi_path = root / OPENAPI_NAME
    if not openapi_path.is_file():
        raise ContractFileError(openapi_path, "no openapi.yaml here; pass the schemas directory")
    openapi = read_yaml(openapi_path)
    schemas = [(path, read_json(path)) for path in sorted(root.glob("*.json"))]
    for path, schema in schemas:
        if not isinstance(schema, dict):
            raise ContractFileError(path, "a schema file must be a JSON object")
        sid = schema.get("$id")
        if sid is not None and (not isinstance(sid, str) or not sid.endswith(path.name)):
            raise ContractFileError(
                path,
                f"$id {sid!r} must end with the file name {path.name!r} (or leave $id out: "
                "the file is then known by its name, as every OpenAPI tool reads it)",
            )
    base = _base_uri(root, schemas)
    documents = []
    seen: dict[str, Path] = {}
    for path, schema in schemas:
        uri = urljoin(base, schema.get("$id") or path.name)
        if uri in seen:
            raise ContractFileError(path, f"$id {uri} is also the $id of {seen[uri].name}")
        seen[uri] = path
        documents.append(Document(path, uri, schema))
    return Document(openapi_path, base + OPENAPI_NAME, openapi, is_openapi=True), documents


def build_registry(documents: list[Document], *, strict: bool) -> Registry[Any]:
    """A registry of every document (their strict copies when ``strict``)."""
    resources: list[tuple[str, Resource[Any]]] = [
        (d.uri, DRAFT202012.create_resource(d.strict() if strict else d.contents))
        for d in documents
    ]
    return Registry().with_resources(resources).crawl()


def check_refs(documents: list[Document], registry: Registry[Any]) -> None:
    """Raise UnresolvableRef (file, pointer) for the first ``$ref`` that points at nothing."""
    for doc in documents:
        resolver = registry.resolver(base_uri=doc.uri)
        for pointer, ref in walk_refs(doc.contents):
            try:
                resolver.lookup(ref)
            except Unresolvable:
                raise UnresolvableRef(ref, doc.path, pointer) from None


def refuse_inside(path: Path, directory: Path, option: str = "--out") -> None:
    """Raise ProposalInContract when ``path`` is inside the contract's ``directory``: the
    contract changes only by review, never by a tool writing into it."""
    target, guard = Path(path).resolve(), Path(directory).resolve()
    if target == guard or guard in target.parents:
        raise ProposalInContract(target, guard, option)
