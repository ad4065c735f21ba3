"""One HTTP response against the contract: status, content type, provider headers and body."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from pivotkit.codings import accepts_gzip, applied
from pivotkit.contract import Contract, load_contract
from pivotkit.errors import ResponseMismatch
from pivotkit.operations import Operation
from pivotkit.pointers import to_pointer


@dataclass(frozen=True)
class Problem:
    """One way a response breaks the contract: where (a JSON pointer into the body, or
    ``/headers/<name>`` or ``/status``), what, and the offending value."""

    operation_id: str
    pointer: str
    message: str
    value: Any = None

    def __str__(self) -> str:
        value = (
            json.dumps(self.value, ensure_ascii=False)
            if not isinstance(self.value, str)
            else repr(self.value)
        )
        if len(value) > 200:
            value = value[:197] + "..."
        return f"{self.operation_id} at {self.pointer or '/'}: {self.message} (value: {value})"


def request_line(request: httpx.Request, hidden: frozenset[str] | None = None) -> str:
    """``GET /path?query`` of a request, without the query parameters in ``hidden`` (default:
    the contract's key parameter, when the key was sent in the query)."""
    if hidden is None:
        key_query = load_contract().conventions.key_query
        hidden = frozenset({key_query} if key_query else ())
    params: list[tuple[str, str | int | float | bool | None]] = [
        (k, v) for k, v in request.url.params.multi_items() if k not in hidden
    ]
    query = str(httpx.QueryParams(params))
    return f"{request.method} {request.url.path}" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class _Seen:
    """What a check reads of one response, whichever library made it."""

    request: httpx.Request
    status_code: int
    headers: httpx.Headers
    content: bytes
    text: str
    wire_bytes: int | None

    def json(self) -> Any:
        return json.loads(self.content)


def _seen(response: Any) -> _Seen:
    """An httpx.Response or a requests.Response, as a check reads it."""
    if isinstance(response, _Seen):
        return response
    if isinstance(response, httpx.Response):
        return _Seen(
            response.request,
            response.status_code,
            response.headers,
            response.content,
            response.text,
            response.num_bytes_downloaded,
        )
    sent = getattr(response, "request", None)
    if (
        sent is not None
        and isinstance(getattr(sent, "url", None), str)
        and hasattr(response, "status_code")
    ):  # requests: the body is decoded; the wire's byte count is what urllib3 read
        request = httpx.Request(
            str(sent.method), sent.url, headers=list(dict(sent.headers).items())
        )
        tell = getattr(getattr(response, "raw", None), "tell", None)
        try:
            wire = int(tell()) if callable(tell) else None
        except (OSError, ValueError, TypeError):
            wire = None
        return _Seen(
            request,
            int(response.status_code),
            httpx.Headers(list(response.headers.items())),
            bytes(response.content or b""),
            str(response.text),
            wire,
        )
    raise TypeError(
        f"pivot_contract checks an httpx.Response or a requests.Response, not "
        f"{type(response).__name__}"
    )


def _json_body(response: _Seen) -> tuple[Any, str | None]:
    try:
        return response.json(), None
    except (ValueError, UnicodeDecodeError) as exc:
        return response.text[:200], f"body is not JSON ({exc.__class__.__name__})"


def _media(value: str) -> tuple[str, dict[str, str]]:
    main, _, rest = value.partition(";")
    params = {}
    for param in rest.split(";"):
        name, eq, val = param.strip().partition("=")
        if eq:
            params[name.strip().lower()] = val.strip().strip('"').lower()
    return main.strip().lower(), params


class Conformance:
    """Checks responses against the contract (tolerant mode), naming operation, pointer and
    value of every problem. ``pivot_contract`` in the pytest plugin is one of these."""

    def __init__(self, contract: Contract | None = None) -> None:
        self.contract = contract if contract is not None else load_contract()
        conv = self.contract.conventions
        self._hidden = frozenset({conv.key_query} if conv.key_query else ())
        self._backend_type = _media(conv.backend_content_type)
        self._not_found = next(
            (
                self.contract.schema_ref(op.operation_id, 404)
                for op in self.contract.operations.values()
                if 404 in op.statuses
            ),
            None,
        )

    def operation_for(self, request: httpx.Request) -> Operation | None:
        """The operation the request's method and path select, or None (a 404 path)."""
        found = self.contract.find_operation(request.method, request.url.path)
        return None if found is None else found[0]

    def declared_headers(self, operation_id: str, status: int = 200) -> dict[str, Any]:
        """Header name -> schema that the contract declares for one response."""
        return self.contract.response_headers(operation_id, status)

    def body_problems(self, operation_id: str, status: int, body: Any) -> list[Problem]:
        """The body's violations of the contract, as problems."""
        return [
            Problem(operation_id, v.pointer, v.message, v.value)
            for v in self.contract.validate(operation_id, status, body)
        ]

    def encoding_problems(self, operation_id: str, response: Any) -> list[Problem]:
        """gzip when the request accepts it, identity otherwise; content-length is what came
        (``response``: httpx's or requests').

        The request's ``Accept-Encoding`` is read as the mock reads it (:mod:`pivotkit.codings`:
        q-values, ``*``, ``identity``, case and spaces); the coding names are compared without
        case (``GZIP`` and ``x-gzip`` are gzip).
        """
        response = _seen(response)
        out: list[Problem] = []
        accepted = accepts_gzip(response.request.headers.get("accept-encoding"))
        value = response.headers.get("content-encoding")
        codings = applied(value)
        pointer = "/headers/content-encoding"
        if accepted and codings != ("gzip",):
            out.append(
                Problem(operation_id, pointer, "gzip was accepted but the body is not gzip", value)
            )
        elif not accepted and codings:
            out.append(
                Problem(
                    operation_id, pointer, "gzip was not accepted but the body is encoded", value
                )
            )
        length = response.headers.get("content-length")
        wire = response.wire_bytes
        if length is not None and length.isdigit() and wire is not None and int(length) != wire:
            out.append(
                Problem(
                    operation_id,
                    "/headers/content-length",
                    f"says {length} bytes but {wire} came on the wire",
                    length,
                )
            )
        return out

    def header_problems(self, operation_id: str, response: Any) -> list[Problem]:
        """The provider's headers a 200 must carry, each against its schema, and the
        encoding (:meth:`encoding_problems`)."""
        response = _seen(response)
        problems = self.encoding_problems(operation_id, response)
        for name, schema in self.declared_headers(operation_id, response.status_code).items():
            if name.lower() == "content-encoding":
                continue  # depends on the request: encoding_problems checks it
            pointer = f"/headers/{name.lower()}"
            value = response.headers.get(name)
            if value is None:
                problems.append(
                    Problem(
                        operation_id,
                        pointer,
                        "header missing",
                        schema.get("const", schema.get("pattern")),
                    )
                )
                continue
            for error in Draft202012Validator(schema).iter_errors(value):
                problems.append(Problem(operation_id, pointer, error.message, value))
        return problems

    def _status_problems(
        self,
        name: str,
        op: Operation | None,
        response: _Seen,
        expect: int | Iterable[int] | None,
    ) -> list[Problem]:
        status = response.status_code
        wanted = {expect} if isinstance(expect, int) else set(expect or ())
        if wanted and status not in wanted:
            expected = " or ".join(map(str, sorted(wanted)))
            return [
                Problem(
                    name,
                    "/status",
                    f"expected {expected}, got {status} (body: {response.text[:200]!r})",
                    status,
                )
            ]
        declared = op.statuses if op is not None else (404,)
        if status not in declared:
            return [
                Problem(
                    name,
                    "/status",
                    f"status {status} is not declared (declared: {', '.join(map(str, declared))})",
                    status,
                )
            ]
        return []

    def _type_problems(self, name: str, op: Operation | None, response: _Seen) -> list[Problem]:
        ctype = response.headers.get("content-type", "")
        media, params = _media(ctype)
        status = response.status_code
        declared = (
            self.contract.media_types(op.operation_id, status)
            if op is not None
            else frozenset({self._backend_type[0]})
        )
        if media not in declared:
            return [
                Problem(
                    name, "/headers/content-type", f"not {' or '.join(sorted(declared))}", ctype
                )
            ]
        charset = self._backend_type[1].get("charset")
        if status < 300 and charset and params.get("charset") != charset:
            return [Problem(name, "/headers/content-type", f"charset is not {charset}", ctype)]
        return []

    def problems(
        self,
        response: Any,
        operation_id: str | None = None,
        *,
        expect: int | Iterable[int] | None = None,
        headers: bool = True,
    ) -> list[Problem]:
        """Every problem of one response (an ``httpx.Response`` or a ``requests.Response``):
        status (declared, or in ``expect``), content type, body against the contract and, on
        a 200, the provider's headers."""
        response = _seen(response)
        op = (
            self.contract.operation(operation_id)
            if operation_id
            else self.operation_for(response.request)
        )
        name = op.operation_id if op is not None else "(no operation)"
        out = self._status_problems(name, op, response, expect)
        if out:
            return out
        out += self._type_problems(name, op, response)
        body, error = _json_body(response)
        if error is not None:
            return [*out, Problem(name, "", error, body)]
        if op is None:
            return out + self._not_found_problems(name, body)
        out += self.body_problems(op.operation_id, response.status_code, body)
        if headers and response.status_code == 200:
            out += self.header_problems(op.operation_id, response)
        return out

    def _not_found_problems(self, name: str, body: Any) -> list[Problem]:
        if self._not_found is None:
            return []
        validator = self.contract.schema_validator(self._not_found)
        return [
            Problem(name, to_pointer(e.absolute_path), e.message, e.instance)
            for e in validator.iter_errors(body)
        ]

    def check(
        self,
        response: Any,
        operation_id: str | None = None,
        *,
        expect: int | Iterable[int] | None = None,
        headers: bool = True,
    ) -> Any:
        """Raise ResponseMismatch (an AssertionError) listing every problem; return the JSON
        body when there is none. ``response``: an ``httpx.Response`` or a
        ``requests.Response``."""
        response = _seen(response)
        found = self.problems(response, operation_id, expect=expect, headers=headers)
        if found:
            line = request_line(response.request, self._hidden)
            raise ResponseMismatch(line, response.status_code, list(found))
        return response.json()

    def is_empty_result(self, body: Any) -> bool:
        """Whether ``body`` is the documented empty result (the contract's one definition)."""
        return self.contract.is_empty_result(body)


__all__ = [
    "Conformance",
    "Problem",
]
