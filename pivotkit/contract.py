"""The contract: schemas/ loaded into a registry; operations, validators and conventions."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, urldefrag, urljoin

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.exceptions import Unresolvable

from pivotkit.conventions import Conventions, read_conventions
from pivotkit.documents import (
    OPENAPI_NAME,
    Document,
    build_registry,
    check_refs,
    default_schemas_dir,
    read_documents,
)
from pivotkit.errors import ConfigError, ContractFileError, UnknownOperation
from pivotkit.operations import Operation, Parameter, template_names
from pivotkit.pointers import escape_pointer_segment, to_pointer
from pivotkit.structure import check_structure

Mode = Literal["tolerant", "strict"]
MODES: tuple[Mode, ...] = ("tolerant", "strict")
EMPTY_RESULT_FILE = "empty-result.json"
ENGINES = ("auto", "rust", "python")
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


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


def _child(uri: str, *segments: object) -> str:
    """The URI of a node below ``uri`` (its fragment is a JSON pointer)."""
    base, fragment = urldefrag(uri)
    pointer = unquote(fragment) + "".join("/" + escape_pointer_segment(s) for s in segments)
    return f"{base}#{quote(pointer, safe='/~')}"


def _engine(choice: str | None) -> str:
    value = choice or os.environ.get("PIVOT_VALIDATOR_ENGINE") or "auto"
    if value not in ENGINES:
        raise ConfigError("PIVOT_VALIDATOR_ENGINE", f"{value!r}: must be auto, rust or python")
    return value


class Contract:
    """The loaded contract: operations from openapi.yaml, validators from the schemas, and the
    API's :class:`~pivotkit.conventions.Conventions`.

    Build it with :meth:`load`; it is immutable afterwards and safe to share between threads.
    """

    def __init__(
        self, directory: Path, openapi: Document, schemas: list[Document], engine: str | None = None
    ) -> None:
        check_structure(openapi.contents, openapi.path)
        self.directory = directory
        self.openapi: dict[str, Any] = openapi.contents
        self.openapi_path = openapi.path
        self.openapi_uri = openapi.uri
        self.base_uri = openapi.uri[: -len(OPENAPI_NAME)]
        self.documents = (openapi, *schemas)
        self.registry: Registry[Any] = build_registry(list(self.documents), strict=False)
        self._strict_registry: Registry[Any] = build_registry(list(self.documents), strict=True)
        check_refs(list(self.documents), self.registry)
        self.operations: dict[str, Operation] = self._read_operations()
        self.conventions: Conventions = read_conventions(self.openapi, self._lookup, openapi.path)
        self.empty_result_uri = self.base_uri + EMPTY_RESULT_FILE
        try:
            self._lookup(EMPTY_RESULT_FILE)
        except LookupError:
            raise self._fail("", f"the contract needs {EMPTY_RESULT_FILE} beside it") from None
        self._schema_refs = self._response_schema_refs()
        self._branches = {key: self._branches_of(uri) for key, uri in self._schema_refs.items()}
        uris = {self.empty_result_uri, *self._schema_refs.values()}
        for branches in self._branches.values():
            uris.update(branches.values())
        self._validators = {
            (uri, mode): Draft202012Validator(
                {"$ref": uri},
                registry=self.registry if mode == "tolerant" else self._strict_registry,
            )
            for uri in uris
            for mode in MODES
        }
        self._fast = self._compile_fast(_engine(engine), uris)

    @classmethod
    def load(cls, directory: Path | str | None = None, *, engine: str | None = None) -> Contract:
        """Read ``openapi.yaml`` and every ``*.json`` schema of ``directory``.

        ``engine`` (or ``$PIVOT_VALIDATOR_ENGINE``): ``auto`` (jsonschema-rs for the fast path
        when installed), ``rust`` or ``python``. Raises ContractFileError (file, line or JSON
        pointer) on a malformed contract, UnresolvableRef on a ``$ref`` to nothing.
        """
        root = Path(directory) if directory is not None else default_schemas_dir()
        openapi, schemas = read_documents(root)
        return cls(root, openapi, schemas, engine)

    # -- loading -----------------------------------------------------------------------------

    def _lookup(self, ref: str) -> Any:
        try:
            return self.registry.resolver(base_uri=self.openapi_uri).lookup(ref).contents
        except Unresolvable:
            raise LookupError(ref) from None

    def _compile_fast(self, engine: str, uris: set[str]) -> dict[tuple[str, Mode], Any]:
        """Compile every validator with jsonschema-rs, when it is installed and not disabled.

        It answers the common question (is this body valid?) about two orders of magnitude
        faster; the detailed violations always come from the reference implementation.
        """
        if engine == "python":
            return {}
        try:
            import jsonschema_rs
        except ImportError:
            if engine == "rust":
                raise ConfigError(
                    "PIVOT_VALIDATOR_ENGINE", "rust needs jsonschema-rs: pip install jsonschema-rs"
                ) from None
            return {}
        out: dict[tuple[str, Mode], Any] = {}
        for mode in MODES:
            registry = jsonschema_rs.Registry(
                [(d.uri, d.strict() if mode == "strict" else d.contents) for d in self.documents]
            )
            for uri in uris:
                out[uri, mode] = jsonschema_rs.validator_for({"$ref": uri}, registry=registry)
        return out

    @property
    def engine(self) -> str:
        """``rust`` when jsonschema-rs answers the fast path, else ``python``."""
        return "rust" if self._fast else "python"

    def _fail(self, pointer: str, message: str) -> ContractFileError:
        return ContractFileError(self.openapi_path, message, pointer=pointer)

    def deref(self, node: Any) -> Any:
        """Follow OpenAPI reference objects (parameters, responses, headers) of openapi.yaml."""
        hops = 0
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str) and hops < 32:
            node = self._lookup(node["$ref"])
            hops += 1
        return node

    def _parameters(self, raw: list[Any], pointer: str) -> tuple[Parameter, ...]:
        params = []
        for i, item in enumerate(raw):
            p = self.deref(item)
            where = f"{pointer}/{i}"
            if not isinstance(p, Mapping) or "name" not in p or "in" not in p:
                raise self._fail(where, "a parameter has a name and an `in` (path, query, header)")
            if p["in"] not in ("path", "query", "header"):
                raise self._fail(where, f"`in: {p['in']}` is not read: use path, query or header")
            examples = p.get("examples")
            values = (
                [
                    e.get("value")
                    for e in examples.values()
                    if isinstance(e, Mapping) and "value" in e
                ]
                if isinstance(examples, Mapping)
                else []
            )
            if "example" in p:
                values.insert(0, p["example"])
            params.append(
                Parameter(
                    name=str(p["name"]),
                    location=p["in"],
                    required=bool(p.get("required")),
                    schema=p.get("schema", {}),
                    description=str(p.get("description", "")),
                    examples=tuple(values),
                )
            )
        return tuple(params)

    def _operation(self, template: str, method: str, spec: dict[str, Any]) -> Operation:
        pointer = f"/paths/{escape_pointer_segment(template)}/{method}"
        params = self._parameters(spec.get("parameters", []), pointer + "/parameters")
        declared = {p.name for p in params if p.location == "path"}
        named = set(template_names(template))
        if declared != named:
            missing = sorted(named - declared) or sorted(declared - named)
            raise self._fail(
                pointer + "/parameters",
                f"the path template {template} and the path parameters differ on "
                f"{', '.join(missing)}: declare one `in: path` parameter per {{name}}",
            )
        return Operation(
            operation_id=spec["operationId"],
            method=method.upper(),
            path=template,
            summary=str(spec.get("summary", "")),
            parameters=params,
            statuses=tuple(sorted(int(s) for s in spec["responses"])),
            path_source=spec.get("x-pivot-path-source", "assumed"),
            empty_result=bool(spec.get("x-pivot-empty-result", False)),
            tags=tuple(spec.get("tags", [])),
        )

    def _read_operations(self) -> dict[str, Operation]:
        ops: dict[str, Operation] = {}
        for template, item in self.openapi["paths"].items():
            for method in _METHODS:
                spec = item.get(method)
                if spec is None:
                    continue
                op = self._operation(template, method, spec)
                if op.operation_id in ops:
                    raise self._fail(
                        f"/paths/{escape_pointer_segment(template)}/{method}/operationId",
                        f"operationId {op.operation_id} is also "
                        f"{ops[op.operation_id].method} {ops[op.operation_id].path}",
                    )
                ops[op.operation_id] = op
        if not ops:
            raise self._fail("/paths", "the contract declares no operation")
        return ops

    def _response_schema_refs(self) -> dict[tuple[str, int], str]:
        refs: dict[tuple[str, int], str] = {}
        for op in self.operations.values():
            spec = self.openapi["paths"][op.path][op.method.lower()]
            for status, response in spec["responses"].items():
                uri = _child(self.openapi_uri + "#", "paths", op.path, op.method.lower())
                uri = _child(uri, "responses", str(status))
                while isinstance(response, Mapping) and isinstance(response.get("$ref"), str):
                    uri = urljoin(uri, response["$ref"])
                    response = self._lookup(uri)
                media = (response.get("content") or {}).get("application/json") or {}
                if "schema" not in media:
                    raise self._fail(
                        f"/paths/{escape_pointer_segment(op.path)}/{op.method.lower()}"
                        f"/responses/{status}",
                        "give the response content: {application/json: {schema: ...}}",
                    )
                refs[op.operation_id, int(status)] = _child(
                    uri, "content", "application/json", "schema"
                )
        return refs

    def _branches_of(self, uri: str) -> dict[str, str]:
        """The two alternatives of a 200 (``empty`` and ``envelope``), when it has them."""
        schema = self._lookup(uri)
        hops = 0
        while set(schema) == {"$ref"} and hops < 32:
            uri = urljoin(uri, schema["$ref"])
            schema = self._lookup(uri)
            hops += 1
        if isinstance(schema.get("if"), Mapping) and isinstance(schema.get("else"), Mapping):
            return {"empty": _child(uri, "if"), "envelope": _child(uri, "else")}
        for key in ("anyOf", "oneOf"):
            items = schema.get(key)
            if not isinstance(items, list):
                continue
            empty = [
                i
                for i, s in enumerate(items)
                if isinstance(s, Mapping)
                and urljoin(uri, str(s.get("$ref", ""))) == self.empty_result_uri
            ]
            others = [i for i in range(len(items)) if i not in empty]
            if len(empty) == 1 and len(others) == 1:
                return {
                    "empty": _child(uri, key, empty[0]),
                    "envelope": _child(uri, key, others[0]),
                }
        return {}

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

    def envelope_ref(self, operation_id: str, status: int = 200) -> str | None:
        """The URI of the envelope alternative of a response (None when it has none)."""
        self.schema_ref(operation_id, status)
        return self._branches[operation_id, status].get("envelope")

    def payload_schema(self, operation_id: str) -> tuple[str, Any] | None:
        """(URI, schema) of the payload (``data``) of an operation's 200, when declared."""
        envelope = (
            self.envelope_ref(operation_id, 200)
            if 200 in self.operation(operation_id).statuses
            else None
        )
        if envelope is None:
            return None
        name = self.conventions.envelope.payload_field
        stack = [envelope]
        seen: set[str] = set()
        while stack:
            uri = stack.pop()
            if uri in seen:
                continue
            seen.add(uri)
            schema = self._lookup(uri)
            if name in (schema.get("properties") or {}):
                return _child(uri, "properties", name), schema["properties"][name]
            if isinstance(schema.get("$ref"), str):
                stack.append(urljoin(uri, schema["$ref"]))
            for i, _ in enumerate(schema.get("allOf") or []):
                stack.append(_child(uri, "allOf", i))
        return None

    def response_spec(self, operation_id: str, status: int) -> Mapping[str, Any]:
        """The response object (dereferenced) of an operation and status."""
        op = self.operation(operation_id)
        responses = self.openapi["paths"][op.path][op.method.lower()]["responses"]
        if str(status) not in responses:
            raise UnknownOperation(operation_id, [str(s) for s in op.statuses], status)
        spec: Mapping[str, Any] = self.deref(responses[str(status)])
        return spec

    def response_headers(self, operation_id: str, status: int) -> dict[str, Any]:
        """Header name -> schema that the contract declares for one response."""
        spec = self.response_spec(operation_id, status)
        return {
            name: self.deref(header).get("schema", {})
            for name, header in (spec.get("headers") or {}).items()
        }

    def media_types(self, operation_id: str, status: int) -> frozenset[str]:
        """The media types a response declares (lower case)."""
        spec = self.response_spec(operation_id, status)
        return frozenset(k.lower() for k in spec.get("content") or {})

    def resolve(self, uri: str) -> Any:
        """The schema (tolerant form) at a URI (absolute, or relative to openapi.yaml)."""
        return self._lookup(uri)

    def validator(
        self, operation_id: str, status: int, mode: Mode = "tolerant"
    ) -> Draft202012Validator:
        """The precompiled validator of a whole response schema for one mode."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        return self._validators[self.schema_ref(operation_id, status), mode]

    def schema_validator(self, uri: str, mode: Mode = "tolerant") -> Draft202012Validator:
        """The validator of any response schema (or alternative) by its URI."""
        return self._validators[uri, mode]

    def _check(self, uri: str, mode: Mode, body: Any) -> bool:
        fast = self._fast.get((uri, mode))
        if fast is not None:
            return bool(fast.is_valid(body))
        return bool(self._validators[uri, mode].is_valid(body))

    def is_empty_result(self, body: Any) -> bool:
        """Whether ``body`` is the documented empty result (``empty-result.json``): the one
        definition every part of pivotkit uses."""
        return self._check(self.empty_result_uri, "tolerant", body)

    def judged_by(self, operation_id: str, status: int, body: Any) -> str:
        """The URI of the schema a body is judged by: for a response with an empty and an
        envelope alternative, the one :meth:`is_empty_result` picks, whatever the mode."""
        uri = self.schema_ref(operation_id, status)
        branches = self._branches[operation_id, status]
        if not branches:
            return uri
        return branches["empty" if self.is_empty_result(body) else "envelope"]

    def is_valid(
        self, operation_id: str, status: int, body: Any, *, mode: Mode = "tolerant"
    ) -> bool:
        """Whether the body fits the contract (fast path, no error details)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        return self._check(self.judged_by(operation_id, status, body), mode, body)

    def validate(
        self, operation_id: str, status: int, body: Any, *, mode: Mode = "tolerant"
    ) -> list[Violation]:
        """Every violation of the contract by ``body`` (empty list when it fits).

        ``mode="tolerant"`` is the contract; ``mode="strict"`` also reports each undeclared
        field, once, at its own pointer. Both judge the body by the same alternative.
        """
        if self.is_valid(operation_id, status, body, mode=mode):
            return []
        uri = self.judged_by(operation_id, status, body)
        validator = self._validators[uri, mode]
        out: list[Violation] = []
        for error in validator.iter_errors(body):
            out.extend(self._violations(operation_id, status, error))
        if not out:  # the engines disagree (e.g. a regex dialect): report the fast engine's view
            for err in self._fast[uri, mode].iter_errors(body):
                out.append(
                    Violation(
                        operation_id,
                        status,
                        to_pointer(err.instance_path),
                        "#/" + "/".join(map(str, err.schema_path)),
                        err.message,
                        _hashable(err.instance),
                    )
                )
        return sorted(set(out), key=lambda v: (v.pointer, v.schema_path, v.message))

    def _violations(
        self, operation_id: str, status: int, error: ValidationError
    ) -> Iterator[Violation]:
        # anyOf hides the interesting error one level down. An alternative that fails only
        # by strictness (undeclared fields) is the one the body fits: strict mode reports its
        # undeclared fields and never switches to another alternative.
        if error.validator in ("anyOf", "oneOf") and error.context:
            fitting = _fitting_alternative(error)
            if fitting is not None:
                for sub in fitting:
                    yield from self._violations(operation_id, status, sub)
                return
            deepest = best_match(error.context)
            if deepest is not None and len(deepest.absolute_path) > len(error.absolute_path):
                yield from self._violations(operation_id, status, deepest)
                return
        schema_path = "#/" + "/".join(escape_pointer_segment(p) for p in error.absolute_schema_path)
        pointer = to_pointer(error.absolute_path)
        if error.validator == "unevaluatedProperties" and isinstance(error.instance, dict):
            declared = _declared_keys(error.schema, self._strict_registry, self.openapi_uri)
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


def _only_strictness(error: ValidationError) -> bool:
    """Whether an error comes from strict mode alone (an undeclared field), possibly through
    a nested alternative that fails only that way."""
    if error.validator == "unevaluatedProperties":
        return True
    if error.validator in ("anyOf", "oneOf") and error.context:
        return _fitting_alternative(error) is not None
    return False


def _fitting_alternative(error: ValidationError) -> list[ValidationError] | None:
    """The errors of the first alternative of an anyOf/oneOf that fails only by strictness."""
    by_alternative: dict[Any, list[ValidationError]] = {}
    for sub in error.context or ():
        index = sub.relative_schema_path[0] if sub.relative_schema_path else None
        by_alternative.setdefault(index, []).append(sub)
    for index in sorted(by_alternative, key=lambda i: i if isinstance(i, int) else -1):
        errors = by_alternative[index]
        if all(_only_strictness(e) for e in errors):
            return errors
    return None


def _hashable(value: Any) -> Any:
    """Violations are hashable: containers are kept as their compact JSON text."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)[:500]
    return value


def _declared_keys(
    schema: Any, registry: Registry[Any], base: str, seen: frozenset[int] = frozenset()
) -> set[str]:
    """Property names a schema object declares, through $ref, allOf, anyOf and if/then/else.

    Every schema file shares one base URI, so a relative ``$ref`` resolves against it.
    """
    if not isinstance(schema, dict) or id(schema) in seen:
        return set()
    seen = seen | {id(schema)}
    keys = set(schema.get("properties", {}))
    ref = schema.get("$ref")
    if isinstance(ref, str):
        resolved = registry.resolver(base_uri=base).lookup(ref).contents
        keys |= _declared_keys(resolved, registry, base, seen)
    for combinator in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(combinator, []):
            keys |= _declared_keys(sub, registry, base, seen)
    for branch in ("then", "else"):
        keys |= _declared_keys(schema.get(branch), registry, base, seen)
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
    "Contract",
    "Violation",
    "load_contract",
    "validate",
]
