"""One HTTP response against the contract: status, content type, provider headers and body."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from pivotkit.contract import OPENAPI_URI, Contract, Operation, load_contract
from pivotkit.errors import PivotError

JSON_TYPE = "application/json"
_HIDDEN_QUERY = frozenset({"subscription-key"})


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


def request_line(request: httpx.Request) -> str:
    """``GET /path?query`` of a request, without the key if it was sent in the query."""
    params: list[tuple[str, str | int | float | bool | None]] = [
        (k, v) for k, v in request.url.params.multi_items() if k not in _HIDDEN_QUERY
    ]
    query = str(httpx.QueryParams(params))
    return f"{request.method} {request.url.path}" + (f"?{query}" if query else "")


class ResponseMismatch(PivotError, AssertionError):
    """A response broke the contract; the message lists operation, pointer and value of each
    problem, one per line."""

    def __init__(self, line: str, status: int, problems: list[Problem]) -> None:
        self.line = line
        self.status = status
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{line} -> {status} breaks the contract:\n{listed}")


def _json_body(response: httpx.Response) -> tuple[Any, str | None]:
    try:
        return response.json(), None
    except (ValueError, UnicodeDecodeError) as exc:
        return response.text[:200], f"body is not JSON ({exc.__class__.__name__})"


class Conformance:
    """Checks responses against the contract (tolerant mode), naming operation, pointer and
    value of every problem. ``pivot_contract`` in the pytest plugin is one of these."""

    def __init__(self, contract: Contract | None = None) -> None:
        self.contract = contract if contract is not None else load_contract()
        self._schemas: dict[str, Draft202012Validator] = {}

    def _validator(self, name: str) -> Draft202012Validator:
        if name not in self._schemas:
            self._schemas[name] = Draft202012Validator(
                {"$ref": f"{OPENAPI_URI}#/components/schemas/{name}"},
                registry=self.contract.registry,
            )
        return self._schemas[name]

    def operation_for(self, request: httpx.Request) -> Operation | None:
        """The operation the request's method and path select, or None (a 404 path)."""
        found = self.contract.find_operation(request.method, request.url.path)
        return None if found is None else found[0]

    def declared_headers(self, operation_id: str, status: int = 200) -> dict[str, Any]:
        """Header name -> schema that the contract declares for one response."""
        op = self.contract.operation(operation_id)
        spec = self.contract.openapi["paths"][op.path][op.method.lower()]["responses"]
        response = spec.get(str(status), {})
        resolver = self.contract.registry.resolver(base_uri=OPENAPI_URI)
        while "$ref" in response:
            response = resolver.lookup(response["$ref"]).contents
        out: dict[str, Any] = {}
        for name, header in response.get("headers", {}).items():
            while "$ref" in header:
                header = resolver.lookup(header["$ref"]).contents
            out[name] = header.get("schema", {})
        return out

    def body_problems(self, operation_id: str, status: int, body: Any) -> list[Problem]:
        """The body's violations of the contract, as problems."""
        return [
            Problem(operation_id, v.pointer, v.message, v.value)
            for v in self.contract.validate(operation_id, status, body)
        ]

    def header_problems(self, operation_id: str, response: httpx.Response) -> list[Problem]:
        """The provider's headers a 200 must carry, each against its schema."""
        problems: list[Problem] = []
        accepted = response.request.headers.get("accept-encoding", "")
        gzip_ok = "gzip" in accepted.lower()
        for name, schema in self.declared_headers(operation_id, response.status_code).items():
            pointer = f"/headers/{name.lower()}"
            value = response.headers.get(name)
            if name.lower() == "content-encoding":
                if gzip_ok and value != "gzip":
                    problems.append(
                        Problem(
                            operation_id,
                            pointer,
                            "gzip was accepted but the body is not gzip",
                            value,
                        )
                    )
                elif not gzip_ok and value not in (None, "identity"):
                    problems.append(
                        Problem(
                            operation_id,
                            pointer,
                            "gzip was not accepted but the body is encoded",
                            value,
                        )
                    )
                continue
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
        length = response.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) != response.num_bytes_downloaded:
            problems.append(
                Problem(
                    operation_id,
                    "/headers/content-length",
                    f"says {length} bytes but {response.num_bytes_downloaded} came on the wire",
                    length,
                )
            )
        return problems

    def problems(
        self,
        response: httpx.Response,
        operation_id: str | None = None,
        *,
        expect: int | Iterable[int] | None = None,
        headers: bool = True,
    ) -> list[Problem]:
        """Every problem of one response: status (declared, or in ``expect``), content type,
        body against the contract and, on a 200, the provider's headers."""
        op = (
            self.contract.operation(operation_id)
            if operation_id
            else self.operation_for(response.request)
        )
        name = op.operation_id if op is not None else "(no operation)"
        status = response.status_code
        out: list[Problem] = []
        wanted = {expect} if isinstance(expect, int) else set(expect or ())
        if wanted and status not in wanted:
            body = response.text[:200]
            out.append(
                Problem(
                    name,
                    "/status",
                    f"expected {' or '.join(map(str, sorted(wanted)))}"
                    f", got {status} (body: {body!r})",
                    status,
                )
            )
            return out
        declared = op.statuses if op is not None else (404,)
        if status not in declared:
            out.append(
                Problem(
                    name,
                    "/status",
                    f"status {status} is not declared (declared: {', '.join(map(str, declared))})",
                    status,
                )
            )
            return out
        ctype = response.headers.get("content-type", "")
        if not ctype.lower().startswith(JSON_TYPE):
            out.append(Problem(name, "/headers/content-type", "not application/json", ctype))
        elif status < 300 and "charset=utf-8" not in ctype.lower().replace(" ", ""):
            out.append(Problem(name, "/headers/content-type", "charset is not utf-8", ctype))
        body, error = _json_body(response)
        if error is not None:
            out.append(Problem(name, "", error, body))
            return out
        if op is None:
            errors = self._validator("GatewayNotFound").iter_errors(body)
            out += [
                Problem(name, "".join(f"/{p}" for p in e.absolute_path), e.message, e.instance)
                for e in errors
            ]
            return out
        out += self.body_problems(op.operation_id, status, body)
        if headers and status == 200:
            out += self.header_problems(op.operation_id, response)
        return out

    def check(
        self,
        response: httpx.Response,
        operation_id: str | None = None,
        *,
        expect: int | Iterable[int] | None = None,
        headers: bool = True,
    ) -> Any:
        """Raise ResponseMismatch (an AssertionError) listing every problem; return the JSON
        body when there is none."""
        found = self.problems(response, operation_id, expect=expect, headers=headers)
        if found:
            raise ResponseMismatch(request_line(response.request), response.status_code, found)
        return response.json()

    def is_empty_result(self, body: Any) -> bool:
        """Whether ``body`` is the documented empty result (``{}`` or an envelope of nothing)."""
        empty = f"{OPENAPI_URI.rsplit('/', 1)[0]}/empty-result.json"
        validator = self._schemas.get("__empty__")
        if validator is None:
            validator = Draft202012Validator({"$ref": empty}, registry=self.contract.registry)
            self._schemas["__empty__"] = validator
        return bool(validator.is_valid(body))


__all__ = ["Conformance", "Problem", "ResponseMismatch", "request_line"]
