"""The API's conventions, read once from the contract: the facts every part of pivotkit shares.

Nothing here is written as a literal: each value is read from ``schemas/`` when the contract
loads, and this table says where. Change the file, and the mock, the client, the suite,
record, drift, docs and the portal follow.

- key header and key query: ``components.securitySchemes``, the ``apiKey`` schemes
  ``in: header`` and ``in: query``;
- live URL: ``servers``, the entry with ``x-pivot-role: live`` (else the first);
- lang parameter and its default: ``components.parameters``, the one with
  ``x-pivot-role: lang``, and its ``schema.default``;
- envelope fields and version: ``envelope.json``, the properties with ``x-pivot-role``
  version (its ``const``), status and payload;
- gateway errors: ``gateway-error.json``, the properties with ``x-pivot-role`` status and
  message, and ``$defs``: ``const`` messages, ``x-pivot-template`` for the 429 and quota 403;
- ASP.NET bodies: the required ``const`` s of ``invalid-request.json`` (400), and
  ``x-pivot-wire.serverErrorBody`` (500: no operation declares it);
- provider headers: the headers the 200 responses declare with a ``const`` (or an
  ``x-pivot-template``, ``request-context``);
- Retry-After: the header the 429 responses declare;
- content types: ``x-pivot-wire.backendContentType``, and the gateway errors' media type;
- compression: ``x-pivot-wire.compression`` (the Content-Encoding when the request allows it);
- request headers: ``x-pivot-wire.requestHeaders`` (what the provider's sample sends);
- the update workflow: the operation marked ``x-pivot-role: updates`` (its one path parameter
  is the date-time asked), and the properties of ``update-item.json`` marked ``x-pivot-role``
  channel and day (what names one channel/day).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pivotkit.errors import ContractFileError
from pivotkit.pointers import escape_pointer_segment

Lookup = Callable[[str], Any]
"""Resolves a reference (relative to openapi.yaml) to its contents; ``LookupError`` if none."""

ENVELOPE_FILE = "envelope.json"
GATEWAY_ERROR_FILE = "gateway-error.json"
INVALID_REQUEST_FILE = "invalid-request.json"
UPDATE_ITEM_FILE = "update-item.json"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def timespan(seconds: int) -> str:
    """A .NET TimeSpan: ``hh:mm:ss``, or ``d.hh:mm:ss`` past a day."""
    days, rest = divmod(max(0, int(seconds)), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}.{clock}" if days else clock


@dataclass(frozen=True)
class Envelope:
    """The backend's envelope: the names of its three fields and the version it carries."""

    version_field: str
    status_field: str
    payload_field: str
    version: str

    def wrap(self, status: int, payload: Any) -> dict[str, Any]:
        """An envelope around ``payload``."""
        return {
            self.version_field: self.version,
            self.status_field: status,
            self.payload_field: payload,
        }


@dataclass(frozen=True)
class GatewayMessages:
    """The gateway's own errors: the two fields of their body and its messages (401, 404,
    429 and quota 403)."""

    status_field: str
    message_field: str
    missing_key: str
    invalid_key: str
    not_found: str
    rate_limited_template: str
    quota_template: str

    def body(self, status: int, message: str) -> dict[str, Any]:
        """A gateway error body."""
        return {self.status_field: status, self.message_field: message}

    def message_of(self, body: Any) -> str | None:
        """The message of a gateway error body, if ``body`` is one."""
        value = body.get(self.message_field) if isinstance(body, Mapping) else None
        return value if isinstance(value, str) else None

    def rate_limited(self, seconds: int) -> str:
        """The 429 message for a wait of ``seconds``."""
        return self.rate_limited_template.format(seconds=seconds)

    def quota_exhausted(self, seconds: int) -> str:
        """The quota 403 message when the quota renews in ``seconds``."""
        return self.quota_template.format(timespan=timespan(seconds))

    @property
    def quota_prefix(self) -> str:
        """The quota message's fixed beginning: how a client recognises a quota 403."""
        return self.quota_template.split("{", 1)[0].rstrip(". ")

    @property
    def rate_limited_wait(self) -> re.Pattern[str]:
        """A regular expression whose group 1 is the wait a 429 message announces."""
        head, _, tail = self.rate_limited_template.partition("{seconds}")
        return re.compile(re.escape(head) + r"([0-9]{1,12})" + re.escape(tail))


@dataclass(frozen=True)
class Updates:
    """The incremental workflow: the operation listing what changed since a date-time, its
    date-time parameter, and the fields of an item that name one channel/day."""

    operation_id: str
    since_parameter: str
    key_fields: tuple[str, ...]


@dataclass(frozen=True)
class Conventions:
    """Every fact of the API that is not an operation or a schema (see the module table)."""

    key_header: str
    key_query: str | None
    live_url: str
    lang_parameter: str
    default_lang: str
    envelope: Envelope
    messages: GatewayMessages
    invalid_request_body: Mapping[str, Any]
    server_error_body: Mapping[str, Any]
    provider_headers: tuple[tuple[str, str], ...]
    request_context_header: str | None
    request_context_template: str
    backend_content_type: str
    compression: str
    gateway_content_type: str
    retry_after_header: str
    request_headers: Mapping[str, str]
    updates: Updates | None = None

    def request_context(self, guid: str) -> str:
        """The ``request-context`` value for an application id."""
        return self.request_context_template.format(uuid=guid)

    def lang_of(self, query: Mapping[str, str]) -> str:
        """The ``lang`` a query asks for; absent or empty means the default."""
        return query.get(self.lang_parameter) or self.default_lang


class _Reader:
    """Reads the conventions out of openapi.yaml and its schema files."""

    def __init__(self, openapi: Mapping[str, Any], lookup: Lookup, path: Path) -> None:
        self.openapi = openapi
        self.lookup = lookup
        self.path = path

    def fail(self, pointer: str, message: str) -> ContractFileError:
        return ContractFileError(self.path, message, pointer=pointer)

    def deref(self, node: Any) -> Any:
        seen = 0
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str) and seen < 32:
            node = self.resolve(node["$ref"], "")
            seen += 1
        return node

    def resolve(self, ref: str, pointer: str) -> Any:
        try:
            return self.lookup(ref)
        except LookupError:
            raise self.fail(pointer, f"the contract needs {ref} (it is missing)") from None

    # -- facts --------------------------------------------------------------------------

    def key_names(self) -> tuple[str, str | None]:
        schemes = self.openapi.get("components", {}).get("securitySchemes", {})
        names: dict[str, str] = {}
        for scheme in schemes.values() if isinstance(schemes, Mapping) else ():
            scheme = self.deref(scheme)
            if isinstance(scheme, Mapping) and scheme.get("type") == "apiKey":
                names.setdefault(str(scheme.get("in")), str(scheme.get("name", "")))
        if not names.get("header"):
            raise self.fail(
                "/components/securitySchemes",
                "declare the subscription key as "
                "an apiKey security scheme with `in: header` and its `name`",
            )
        return names["header"], names.get("query") or None

    def live_url(self) -> str:
        servers = [s for s in self.openapi.get("servers", []) if isinstance(s, Mapping)]
        chosen = next(
            (s for s in servers if s.get("x-pivot-role") == "live"), servers[0] if servers else None
        )
        url = str(chosen.get("url", "")) if chosen else ""
        if not url.startswith(("http://", "https://")) or "{" in url:
            raise self.fail(
                "/servers",
                "give the live API's base URL as a server with "
                "`x-pivot-role: live` (an http(s) URL without variables)",
            )
        return url.rstrip("/")

    def lang(self) -> tuple[str, str]:
        params = self.openapi.get("components", {}).get("parameters", {})
        for key, param in params.items() if isinstance(params, Mapping) else ():
            if isinstance(param, Mapping) and param.get("x-pivot-role") == "lang":
                pointer = f"/components/parameters/{escape_pointer_segment(key)}"
                default = (param.get("schema") or {}).get("default")
                if not isinstance(default, str) or not default:
                    raise self.fail(
                        pointer + "/schema",
                        "give the lang parameter's schema a "
                        "`default`: the language answered when lang is absent",
                    )
                return str(param["name"]), default
        raise self.fail(
            "/components/parameters",
            "mark the lang query parameter with "
            "`x-pivot-role: lang` (and give its schema a default)",
        )

    def envelope(self) -> Envelope:
        roles = self.roles(ENVELOPE_FILE, ("version", "status", "payload"))
        version = self.resolve(ENVELOPE_FILE, "")["properties"][roles["version"]].get("const")
        if not isinstance(version, str):
            raise self.fail("", f"{ENVELOPE_FILE}: the version property needs a const")
        return Envelope(roles["version"], roles["status"], roles["payload"], version)

    def roles(self, file: str, wanted: tuple[str, ...]) -> dict[str, str]:
        schema = self.resolve(file, "")
        roles = {
            sub.get("x-pivot-role"): name
            for name, sub in (schema.get("properties") or {}).items()
            if isinstance(sub, Mapping)
        }
        missing = [r for r in wanted if r not in roles]
        if missing:
            raise self.fail(
                "",
                f"{file}: mark its properties with x-pivot-role "
                f"{', '.join(wanted)} (missing: {', '.join(missing)})",
            )
        return {r: str(roles[r]) for r in wanted}

    def messages(self) -> GatewayMessages:
        defs = self.resolve(GATEWAY_ERROR_FILE, "").get("$defs", {})
        fields = self.roles(GATEWAY_ERROR_FILE, ("status", "message"))

        def text(name: str, key: str) -> str:
            value = (defs.get(name) or {}).get(key)
            if not isinstance(value, str) or not value:
                raise self.fail("", f"{GATEWAY_ERROR_FILE}: $defs/{name} needs a {key}")
            return value

        messages = GatewayMessages(
            fields["status"],
            fields["message"],
            text("missingKey", "const"),
            text("invalidKey", "const"),
            text("notFound", "const"),
            text("rateLimited", "x-pivot-template"),
            text("quotaExhausted", "x-pivot-template"),
        )
        for name, rendered in (
            ("rateLimited", messages.rate_limited(60)),
            ("quotaExhausted", messages.quota_exhausted(100_000)),
        ):
            pattern = defs[name].get("pattern")
            if isinstance(pattern, str) and not re.search(pattern, rendered):
                raise self.fail(
                    "",
                    f"{GATEWAY_ERROR_FILE}: $defs/{name}: the x-pivot-template "
                    f"gives {rendered!r}, which its pattern refuses",
                )
        return messages

    def constant_body(self, file: str) -> dict[str, Any]:
        schema = self.resolve(file, "")
        body = {
            name: sub["const"]
            for name, sub in (schema.get("properties") or {}).items()
            if name in schema.get("required", []) and isinstance(sub, Mapping) and "const" in sub
        }
        if not body:
            raise self.fail("", f"{file}: give the required properties a const (the body)")
        return body

    def responses(self, status: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """(pointer, response) of every operation's response ``status``, dereferenced."""
        for template, item in self.openapi.get("paths", {}).items():
            for method in _METHODS:
                spec = item.get(method) if isinstance(item, Mapping) else None
                response = (spec or {}).get("responses", {}).get(status)
                if response is not None:
                    pointer = (
                        f"/paths/{escape_pointer_segment(template)}/{method}/responses/{status}"
                    )
                    yield pointer, self.deref(response)

    def headers(self, status: str) -> dict[str, Mapping[str, Any]]:
        out: dict[str, Mapping[str, Any]] = {}
        for _, response in self.responses(status):
            for name, header in (response.get("headers") or {}).items():
                out.setdefault(name, self.deref(header).get("schema") or {})
        return out

    def wire(self) -> Mapping[str, Any]:
        wire = self.openapi.get("x-pivot-wire") or {}
        if not isinstance(wire.get("backendContentType"), str):
            raise self.fail(
                "/x-pivot-wire",
                "give x-pivot-wire.backendContentType (the "
                "backend's content-type, e.g. application/json; charset=utf-8)",
            )
        return wire

    def updates(self) -> Updates | None:
        found: list[tuple[str, Mapping[str, Any]]] = []
        for template, item in self.openapi.get("paths", {}).items():
            for method in _METHODS:
                spec = item.get(method) if isinstance(item, Mapping) else None
                if isinstance(spec, Mapping) and spec.get("x-pivot-role") == "updates":
                    found.append((f"/paths/{escape_pointer_segment(template)}/{method}", spec))
        if not found:
            return None
        pointer, spec = found[0]
        if len(found) > 1:
            raise self.fail(found[1][0], "only one operation may have x-pivot-role: updates")
        names = [
            str(param.get("name"))
            for param in map(self.deref, spec.get("parameters") or [])
            if isinstance(param, Mapping) and param.get("in") == "path"
        ]
        if len(names) != 1:
            raise self.fail(
                pointer + "/parameters",
                "the updates operation (x-pivot-role: updates) takes one path "
                "parameter: the date-time asked",
            )
        keys = self.roles(UPDATE_ITEM_FILE, ("channel", "day"))
        return Updates(str(spec.get("operationId")), names[0], (keys["channel"], keys["day"]))

    def gateway_content_type(self) -> str:
        for _, response in self.responses("404"):
            for media in response.get("content") or {}:
                return str(media)
        raise self.fail(
            "/paths", "declare the gateway's 404 (with its content type) on the operations"
        )


def read_conventions(openapi: Mapping[str, Any], lookup: Lookup, path: Path) -> Conventions:
    """The conventions of a contract; ContractFileError (file, pointer) names what is missing."""
    reader = _Reader(openapi, lookup, path)
    key_header, key_query = reader.key_names()
    lang_parameter, default_lang = reader.lang()
    wire = reader.wire()
    provider: list[tuple[str, str]] = []
    context_header, context_template = None, ""
    for name, schema in reader.headers("200").items():
        if "const" in schema:
            provider.append((name.lower(), str(schema["const"])))
        elif isinstance(schema.get("x-pivot-template"), str):
            context_header, context_template = name.lower(), schema["x-pivot-template"]
    provider.append(("content-type", str(wire["backendContentType"])))
    retry = next(iter(reader.headers("429")), None)
    if retry is None:
        raise reader.fail("/paths", "declare the Retry-After header of the gateway's 429")
    return Conventions(
        key_header=key_header,
        key_query=key_query,
        live_url=reader.live_url(),
        lang_parameter=lang_parameter,
        default_lang=default_lang,
        envelope=reader.envelope(),
        messages=reader.messages(),
        invalid_request_body=MappingProxyType(reader.constant_body(INVALID_REQUEST_FILE)),
        server_error_body=MappingProxyType(dict(wire.get("serverErrorBody") or {})),
        provider_headers=tuple(sorted(provider)),
        request_context_header=context_header,
        request_context_template=context_template,
        backend_content_type=str(wire["backendContentType"]),
        compression=str(wire.get("compression") or "gzip"),
        gateway_content_type=reader.gateway_content_type(),
        retry_after_header=retry,
        request_headers=MappingProxyType(dict(wire.get("requestHeaders") or {})),
        updates=reader.updates(),
    )


__all__ = [
    "Conventions",
]
