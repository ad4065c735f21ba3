"""The contract: schemas/ loaded into a referencing.Registry, operations and validators."""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from pivotkit.errors import ContractFileError, UnknownOperation, UnresolvableRef

SCHEMA_BASE = "https://schemas.pivotkit.dev/pivot/v1/"
OPENAPI_NAME = "openapi.yaml"
OPENAPI_URI = SCHEMA_BASE + OPENAPI_NAME

Mode = Literal["tolerant", "strict"]
MODES: tuple[Mode, ...] = ("tolerant", "strict")

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


def default_schemas_dir() -> Path:
    """Where the contract lives: ``$PIVOT_SCHEMAS``, the checkout's ``schemas/``, or the wheel's."""
    env = os.environ.get("PIVOT_SCHEMAS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "schemas", here / "_bundled" / "schemas"):
        if (candidate / OPENAPI_NAME).is_file():
            return candidate
    return here.parent / "schemas"


def escape_pointer_segment(segment: object) -> str:
    """Escape one JSON pointer segment (RFC 6901)."""
    return str(segment).replace("~", "~0").replace("/", "~1")


def to_pointer(parts: Iterator[object] | list[object] | tuple[object, ...]) -> str:
    """Join path parts into a JSON pointer; the root is the empty string."""
    return "".join("/" + escape_pointer_segment(p) for p in parts)


@dataclass(frozen=True)
class Violation:
    """One way a body breaks the contract.

    ``pointer`` locates the offending value in the instance (JSON pointer, "" for the root),
    ``schema_path`` the keyword that failed, ``value`` the offending value itself.
    """

    operation_id: str
    status: int
    pointer: str
    schema_path: str
    message: str
    value: Any
    kind: Literal["schema", "undeclared"] = "schema"

    def __str__(self) -> str:
        where = self.pointer or "/"
        return f"{self.operation_id} {self.status} at {where}: {self.message} [{self.schema_path}]"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form of the violation."""
        return {
            "operation": self.operation_id,
            "status": self.status,
            "pointer": self.pointer,
            "schemaPath": self.schema_path,
            "message": self.message,
            "value": self.value,
            "kind": self.kind,
        }


@dataclass(frozen=True)
class Parameter:
    """One parameter of an operation, as the contract declares it."""

    name: str
    location: Literal["path", "query", "header"]
    required: bool
    schema: Mapping[str, Any]
    description: str = ""
    _validator: Draft202012Validator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Compiled once, with the contract: the mock checks parameters on its request path.
        object.__setattr__(self, "_validator", Draft202012Validator(dict(self.schema)))

    def coerce(self, raw: str) -> Any:
        """Turn the raw string into the declared JSON type (``ValueError`` if it cannot)."""
        kind = self.schema.get("type")
        if kind == "integer":
            if not re.fullmatch(r"-?[0-9]{1,19}", raw):
                raise ValueError(f"{self.name}={raw!r} is not an integer")
            return int(raw)
        return raw

    def problems(self, raw: str) -> list[str]:
        """Every reason the raw value breaks the parameter's schema (empty when it fits)."""
        try:
            value = self.coerce(raw)
        except ValueError as exc:
            return [str(exc)]
        return [f"{self.name}: {e.message}" for e in self._validator.iter_errors(value)]


@dataclass(frozen=True)
class Operation:
    """One operation of the contract: method, path template, parameters, statuses."""

    operation_id: str
    method: str
    path: str
    summary: str
    parameters: tuple[Parameter, ...]
    statuses: tuple[int, ...]
    path_source: str
    empty_result: bool
    tags: tuple[str, ...] = ()
    _regex: re.Pattern[str] = field(repr=False, compare=False, default=re.compile(""))

    @property
    def path_parameters(self) -> tuple[Parameter, ...]:
        """The parameters taken from the path, in template order."""
        return tuple(p for p in self.parameters if p.location == "path")

    @property
    def query_parameters(self) -> tuple[Parameter, ...]:
        """The parameters taken from the query string."""
        return tuple(p for p in self.parameters if p.location == "query")

    def match(self, path: str) -> dict[str, str] | None:
        """The raw path parameters if ``path`` fits the template, else None."""
        m = self._regex.fullmatch(path)
        return None if m is None else m.groupdict()

    def expand(self, **params: object) -> str:
        """The concrete path for the given path parameters."""
        out = self.path
        for p in self.path_parameters:
            if p.name not in params:
                raise KeyError(f"{self.operation_id} needs path parameter {p.name!r}")
            out = out.replace("{" + p.name + "}", str(params[p.name]))
        return out

    def parameter_problems(self, path_params: Mapping[str, str]) -> list[str]:
        """Every reason the raw path parameters break the contract."""
        problems: list[str] = []
        for p in self.path_parameters:
            problems.extend(p.problems(path_params.get(p.name, "")))
        return problems

    def coerce_path(self, path_params: Mapping[str, str]) -> dict[str, Any]:
        """The path parameters converted to their declared types."""
        return {p.name: p.coerce(path_params[p.name]) for p in self.path_parameters}


def _template_regex(template: str) -> re.Pattern[str]:
    out = ""
    for piece in re.split(r"(\{[^}/]+\})", template):
        if piece.startswith("{") and piece.endswith("}"):
            out += f"(?P<{piece[1:-1]}>[^/]+)"
        else:
            out += re.escape(piece)
    return re.compile(out)


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ContractFileError(path, f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractFileError(path, f"invalid JSON: {exc.msg}", exc.lineno, exc.colno) from None


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 7x faster


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ContractFileError(path, f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        return yaml.load(text, Loader=_YAML_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        col = mark.column + 1 if mark is not None else None
        raise ContractFileError(path, f"invalid YAML: {exc.problem}", line, col) from None
    except yaml.YAMLError as exc:
        raise ContractFileError(path, f"invalid YAML: {exc}") from None


def _subschemas(schema: Any) -> Iterator[dict[str, Any]]:
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
    for sub in _subschemas(schema):
        _make_strict(sub)


def _strict_copy(uri: str, contents: Any) -> Any:
    doc = copy.deepcopy(contents)
    if uri == OPENAPI_URI:
        for schema in doc.get("components", {}).get("schemas", {}).values():
            _make_strict(schema)
    elif isinstance(doc, dict):
        _make_strict(doc)
    return doc


def _walk_refs(node: Any, pointer: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield pointer, ref
        for key, value in node.items():
            yield from _walk_refs(value, f"{pointer}/{escape_pointer_segment(key)}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk_refs(value, f"{pointer}/{i}")


class Contract:
    """The loaded contract: operations from openapi.yaml, validators from the schemas.

    Build it with :meth:`load`; it is immutable afterwards and safe to share between threads.
    """

    def __init__(
        self,
        directory: Path,
        openapi: dict[str, Any],
        documents: dict[str, tuple[Path, Any]],
        engine: str | None = None,
    ) -> None:
        self.directory = directory
        self.openapi = openapi
        self._documents = documents
        self.registry: Registry[Any] = self._build_registry(strict=False)
        self._strict_registry: Registry[Any] = self._build_registry(strict=True)
        self._check_refs()
        self.operations: dict[str, Operation] = self._read_operations()
        self._schema_refs: dict[tuple[str, int], str] = self._response_schema_refs()
        self._validators: dict[tuple[str, int, Mode], Draft202012Validator] = {}
        for (op, status), ref in self._schema_refs.items():
            for mode in MODES:
                registry = self.registry if mode == "tolerant" else self._strict_registry
                self._validators[op, status, mode] = Draft202012Validator(
                    {"$ref": ref}, registry=registry
                )
        self._fast: dict[tuple[str, int, Mode], Any] = self._compile_fast(engine)

    # -- loading -------------------------------------------------------------------------

    @classmethod
    def load(cls, directory: Path | str | None = None, *, engine: str | None = None) -> Contract:
        """Read ``openapi.yaml`` and every ``*.json`` schema of ``directory``.

        ``engine`` (or ``$PIVOT_VALIDATOR_ENGINE``): ``auto`` (jsonschema-rs for the fast path
        when installed), ``rust`` or ``python``. Raises ContractFileError (file, line) on
        unreadable files and UnresolvableRef on a ``$ref`` that points at no schema.
        """
        root = Path(directory) if directory is not None else default_schemas_dir()
        openapi_path = root / OPENAPI_NAME
        if not openapi_path.is_file():
            raise ContractFileError(
                openapi_path, "no openapi.yaml here; pass the schemas directory"
            )
        openapi = _read_yaml(openapi_path)
        if not isinstance(openapi, dict) or "paths" not in openapi:
            raise ContractFileError(openapi_path, "not an OpenAPI document (no 'paths')")
        documents: dict[str, tuple[Path, Any]] = {OPENAPI_URI: (openapi_path, openapi)}
        for path in sorted(root.glob("*.json")):
            schema = _read_json(path)
            if not isinstance(schema, dict) or not isinstance(schema.get("$id"), str):
                raise ContractFileError(path, "a schema file must be an object with an $id")
            documents[schema["$id"]] = (path, schema)
        return cls(root, openapi, documents, engine)

    def _compile_fast(self, engine: str | None) -> dict[tuple[str, int, Mode], Any]:
        """Compile every validator with jsonschema-rs, when it is installed and not disabled.

        It answers the common question (is this body valid?) about two orders of magnitude
        faster; the detailed violations always come from the reference implementation.
        """
        choice = engine or os.environ.get("PIVOT_VALIDATOR_ENGINE", "auto")
        if choice not in ("auto", "rust", "python"):
            raise ValueError(f"validator engine must be auto, rust or python, not {choice!r}")
        if choice == "python":
            return {}
        try:
            import jsonschema_rs
        except ImportError:
            if choice == "rust":
                raise
            return {}
        out: dict[tuple[str, int, Mode], Any] = {}
        for mode in MODES:
            registry = jsonschema_rs.Registry(
                [
                    (uri, _strict_copy(uri, contents) if mode == "strict" else contents)
                    for uri, (_, contents) in self._documents.items()
                ]
            )
            for key, ref in self._schema_refs.items():
                out[(*key, mode)] = jsonschema_rs.validator_for({"$ref": ref}, registry=registry)
        return out

    @property
    def engine(self) -> str:
        """``rust`` when jsonschema-rs answers the fast path, else ``python``."""
        return "rust" if self._fast else "python"

    def _build_registry(self, *, strict: bool) -> Registry[Any]:
        resources: list[tuple[str, Resource[Any]]] = []
        for uri, (_, contents) in self._documents.items():
            body = _strict_copy(uri, contents) if strict else contents
            resources.append((uri, DRAFT202012.create_resource(body)))
        return Registry().with_resources(resources).crawl()

    def _check_refs(self) -> None:
        for uri, (path, contents) in self._documents.items():
            resolver = self.registry.resolver(base_uri=uri)
            for pointer, ref in _walk_refs(contents):
                try:
                    resolver.lookup(ref)
                except Unresolvable:
                    raise UnresolvableRef(ref, path, pointer) from None

    def _read_operations(self) -> dict[str, Operation]:
        ops: dict[str, Operation] = {}
        for template, item in self.openapi["paths"].items():
            for method, spec in item.items():
                if method not in {"get", "put", "post", "delete", "patch", "head", "options"}:
                    continue
                params = tuple(
                    Parameter(
                        name=p["name"],
                        location=p["in"],
                        required=bool(p.get("required")),
                        schema=p.get("schema", {}),
                        description=p.get("description", ""),
                    )
                    for p in (self._deref(raw) for raw in spec.get("parameters", []))
                )
                op_id = spec["operationId"]
                ops[op_id] = Operation(
                    operation_id=op_id,
                    method=method.upper(),
                    path=template,
                    summary=spec.get("summary", ""),
                    parameters=params,
                    statuses=tuple(sorted(int(s) for s in spec.get("responses", {}))),
                    path_source=spec.get("x-pivot-path-source", "assumed"),
                    empty_result=bool(spec.get("x-pivot-empty-result", False)),
                    tags=tuple(spec.get("tags", [])),
                    _regex=_template_regex(template),
                )
        return ops

    def _deref(self, node: dict[str, Any]) -> dict[str, Any]:
        """Follow OpenAPI reference objects (parameters, responses) inside openapi.yaml."""
        while "$ref" in node:
            node = self.registry.resolver(base_uri=OPENAPI_URI).lookup(node["$ref"]).contents
        return node

    def _response_schema_refs(self) -> dict[tuple[str, int], str]:
        refs: dict[tuple[str, int], str] = {}
        for template, item in self.openapi["paths"].items():
            for method, spec in item.items():
                if not isinstance(spec, dict) or "operationId" not in spec:
                    continue
                for status, response in spec.get("responses", {}).items():
                    pointer = to_pointer(["paths", template, method, "responses", str(status)])
                    if "$ref" in response:
                        pointer = response["$ref"].lstrip("#")
                    fragment = quote(f"{pointer}/content/application~1json/schema", safe="/~")
                    refs[spec["operationId"], int(status)] = f"{OPENAPI_URI}#{fragment}"
        return refs

    # -- queries ---------------------------------------------------------------------------

    def operation(self, operation_id: str) -> Operation:
        """The operation with this id (UnknownOperation lists the known ones)."""
        try:
            return self.operations[operation_id]
        except KeyError:
            raise UnknownOperation(operation_id, sorted(self.operations)) from None

    def find_operation(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation whose method and path template fit, with the raw path parameters."""
        for op in self.operations.values():
            if op.method != method.upper():
                continue
            params = op.match(path)
            if params is not None:
                return op, params
        return None

    def path_matches(self, path: str) -> list[Operation]:
        """Every operation whose path template fits, whatever its method."""
        return [op for op in self.operations.values() if op.match(path) is not None]

    def schema_ref(self, operation_id: str, status: int) -> str:
        """The absolute URI of the response schema of an operation and status."""
        op = self.operation(operation_id)
        try:
            return self._schema_refs[op.operation_id, status]
        except KeyError:
            raise UnknownOperation(operation_id, [str(s) for s in op.statuses], status) from None

    def resolve(self, uri: str) -> Any:
        """The schema (tolerant form) at an absolute URI."""
        return self.registry.resolver().lookup(uri).contents

    def validator(
        self, operation_id: str, status: int, mode: Mode = "tolerant"
    ) -> Draft202012Validator:
        """The precompiled validator for one operation, status and mode."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.schema_ref(operation_id, status)
        return self._validators[operation_id, status, mode]

    def is_valid(
        self, operation_id: str, status: int, body: Any, *, mode: Mode = "tolerant"
    ) -> bool:
        """Whether the body fits the contract (fast path, no error details)."""
        validator = self.validator(operation_id, status, mode)
        fast = self._fast.get((operation_id, status, mode))
        if fast is not None:
            return bool(fast.is_valid(body))
        return bool(validator.is_valid(body))

    def validate(
        self, operation_id: str, status: int, body: Any, *, mode: Mode = "tolerant"
    ) -> list[Violation]:
        """Every violation of the contract by ``body`` (empty list when it fits).

        ``mode="tolerant"`` is the contract; ``mode="strict"`` also reports each undeclared
        field, once, at its own pointer.
        """
        if self.is_valid(operation_id, status, body, mode=mode):
            return []
        validator = self.validator(operation_id, status, mode)
        out: list[Violation] = []
        for error in validator.iter_errors(body):
            out.extend(self._violations(operation_id, status, error, validator))
        if not out:  # the engines disagree (e.g. a regex dialect): report the fast engine's view
            fast = self._fast[operation_id, status, mode]
            for err in fast.iter_errors(body):
                out.append(
                    Violation(
                        operation_id,
                        status,
                        to_pointer(list(err.instance_path)),
                        "#/" + "/".join(map(str, err.schema_path)),
                        err.message,
                        _hashable(err.instance),
                    )
                )
        return sorted(set(out), key=lambda v: (v.pointer, v.schema_path, v.message))

    def _violations(
        self,
        operation_id: str,
        status: int,
        error: ValidationError,
        validator: Draft202012Validator,
    ) -> Iterator[Violation]:
        # if/else and anyOf hide the interesting error one level down: descend to it.
        if error.validator in ("anyOf", "oneOf") and error.context:
            deepest = best_match(error.context)
            if deepest is not None and len(deepest.absolute_path) > len(error.absolute_path):
                yield from self._violations(operation_id, status, deepest, validator)
                return
        schema_path = "#/" + "/".join(escape_pointer_segment(p) for p in error.absolute_schema_path)
        pointer = to_pointer(list(error.absolute_path))
        if error.validator == "unevaluatedProperties" and isinstance(error.instance, dict):
            declared = _declared_keys(error.schema, self._strict_registry)
            for key in error.instance:
                if key not in declared:
                    yield Violation(
                        operation_id,
                        status,
                        f"{pointer}/{escape_pointer_segment(key)}",
                        schema_path,
                        f"undeclared field {key!r}",
                        _hashable(error.instance[key]),
                        "undeclared",
                    )
            return
        yield Violation(
            operation_id, status, pointer, schema_path, error.message, _hashable(error.instance)
        )


def _hashable(value: Any) -> Any:
    """Violations are hashable: containers are kept as their compact JSON text."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)[:500]
    return value


def _declared_keys(
    schema: Any, registry: Registry[Any], seen: frozenset[int] = frozenset()
) -> set[str]:
    """Property names a schema object declares, through $ref, allOf and if/then/else.

    Every schema file shares one base URI, so a relative ``$ref`` resolves against it.
    """
    if not isinstance(schema, dict) or id(schema) in seen:
        return set()
    seen = seen | {id(schema)}
    keys = set(schema.get("properties", {}))
    ref = schema.get("$ref")
    if isinstance(ref, str):
        resolved = registry.resolver(base_uri=OPENAPI_URI).lookup(ref).contents
        keys |= _declared_keys(resolved, registry, seen)
    for combinator in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(combinator, []):
            keys |= _declared_keys(sub, registry, seen)
    for branch in ("then", "else"):
        keys |= _declared_keys(schema.get(branch), registry, seen)
    return keys


@cache
def _default_contract(directory: str) -> Contract:
    return Contract.load(directory)


def load_contract(directory: Path | str | None = None) -> Contract:
    """The contract in ``directory`` (default: :func:`default_schemas_dir`), loaded once."""
    root = Path(directory) if directory is not None else default_schemas_dir()
    return _default_contract(str(root.resolve()))


def validate(
    operation_id: str,
    status: int,
    body: Any,
    *,
    mode: Mode = "tolerant",
    directory: Path | str | None = None,
) -> list[Violation]:
    """Every violation of the default contract by ``body``; see :meth:`Contract.validate`."""
    return load_contract(directory).validate(operation_id, status, body, mode=mode)


__all__ = [
    "MODES",
    "OPENAPI_URI",
    "SCHEMA_BASE",
    "Contract",
    "Mode",
    "Operation",
    "Parameter",
    "Violation",
    "default_schemas_dir",
    "load_contract",
    "to_pointer",
    "validate",
]
