"""Fixtures: frozen records of exchanges; load, index, match and write them atomically."""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

from jsonschema import Draft202012Validator

from pivotkit.errors import FixtureError, FixtureExists, FixtureNotFound, PivotError
from pivotkit.locations import atomic_write_text, default_fixtures_dir
from pivotkit.pointers import to_pointer

if TYPE_CHECKING:
    from pivotkit.contract import Contract

FIXTURE_SCHEMA_PATH = Path(__file__).with_name("fixture-file.schema.json")


@cache
def fixture_file_validator() -> Draft202012Validator:
    """The validator of the fixture file format itself."""
    schema = json.loads(FIXTURE_SCHEMA_PATH.read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


def _freeze(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class Request:
    """The request half of an exchange (no key: it is redacted at record time)."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def lang(self) -> str | None:
        """The ``lang`` the request asked for (None when absent: the API's default)."""
        return self.query.get("lang") or None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.query:
            out["query"] = dict(self.query)
        if self.headers:
            out["headers"] = dict(self.headers)
        return out


@dataclass(frozen=True)
class Response:
    """The response half of an exchange: status, provider headers, decoded JSON body."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.headers:
            out["headers"] = dict(self.headers)
        out["body"] = self.body
        return out


@dataclass(frozen=True)
class Exchange:
    """One fixture: a request, its response, and where it came from (``meta``)."""

    operation_id: str
    name: str
    request: Request
    response: Response
    meta: Mapping[str, Any]
    file: Path | None = None

    @property
    def source(self) -> str:
        """``doc``, ``synthetic``, ``live`` or ``har``."""
        return str(self.meta.get("source", ""))

    def to_dict(self) -> dict[str, Any]:
        """The fixture file's content."""
        return {
            "request": self.request.to_dict(),
            "response": self.response.to_dict(),
            "meta": dict(self.meta),
        }

    def dumps(self) -> str:
        """The fixture file's exact text (stable: sorted meta, 2-space indent, final newline)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        name: str = "",
        operation_id: str | None = None,
        file: Path | None = None,
    ) -> Exchange:
        """Build an exchange from a fixture file's content (validated against its format)."""
        errors = sorted(fixture_file_validator().iter_errors(data), key=lambda e: list(e.path))
        if errors:
            err = errors[0]
            raise FixtureError(
                file or name or "<fixture>", err.message, to_pointer(list(err.absolute_path))
            )
        req, resp, meta = data["request"], data["response"], data["meta"]
        exchange = cls(
            operation_id=operation_id or meta["operationId"],
            name=name,
            request=Request(
                req["method"], req["path"], _freeze(req.get("query")), _freeze(req.get("headers"))
            ),
            response=Response(resp["status"], resp["body"], _freeze(resp.get("headers"))),
            meta=MappingProxyType(dict(meta)),
            file=file,
        )
        return _check_exchange(exchange, file or name or "<fixture>")


def _fast_loads(raw: bytes) -> Any:
    """orjson parses fixtures 3-4 times faster; the stdlib gives the same objects."""
    try:
        from orjson import loads
    except ImportError:  # pragma: no cover - depends on the environment
        return json.loads(raw)
    return loads(raw)


@cache
def _fast_format_check() -> Callable[[Any], bool] | None:
    """A compiled check of the fixture file format (jsonschema-rs), if installed."""
    try:
        import jsonschema_rs
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    schema = json.loads(FIXTURE_SCHEMA_PATH.read_text(encoding="utf-8"))
    return cast(Callable[[Any], bool], jsonschema_rs.validator_for(schema).is_valid)


def _exchange(data: Mapping[str, Any], path: Path) -> Exchange:
    req, resp, meta = data["request"], data["response"], data["meta"]
    return Exchange(
        operation_id=path.parent.name,
        name=path.stem,
        request=Request(
            req["method"], req["path"], _freeze(req.get("query")), _freeze(req.get("headers"))
        ),
        response=Response(resp["status"], resp["body"], _freeze(resp.get("headers"))),
        meta=MappingProxyType(dict(meta)),
        file=path,
    )


#: The largest fixture file read (bytes) and the deepest nesting of its JSON: a fixture past
#: either is refused with its name, instead of exhausting memory or the interpreter's stack.
MAX_FIXTURE_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")
_HEADER_VALUE_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_NOT_ASCII = re.compile(r"[^\x00-\x7f]")


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON ``value`` nests arrays and objects more than ``limit`` levels deep
    (iterative: a deep value cannot exhaust the stack while it is measured)."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def header_problem(name: str, value: str) -> str | None:
    """Why a header cannot be served as it is written (None when it can): a name that is not
    an HTTP token, a value holding CR, LF or another control character (which a server would
    send as a second header), or a character outside ASCII (which one server sends as UTF-8
    and another cannot send at all)."""
    if not _HEADER_NAME.fullmatch(name):
        return f"header name {name[:40]!r} is not an HTTP token"
    if _HEADER_VALUE_BAD.search(value):
        return (
            f"header {name!r} holds a CR, LF or other control character (it would be sent "
            "as a second header); remove it"
        )
    if _NOT_ASCII.search(value):
        return f"header {name!r} holds a character outside ASCII; percent-encode it or remove it"
    return None


def _check_exchange(exchange: Exchange, path: Path | str) -> Exchange:
    """The exchange, once its headers are known to be servable (FixtureError otherwise)."""
    for part, headers in (
        ("request", exchange.request.headers),
        ("response", exchange.response.headers),
    ):
        for name, value in headers.items():
            problem = header_problem(name, value)
            if problem is not None:
                raise FixtureError(path, problem, f"/{part}/headers" + to_pointer([name]))
    return exchange


def _bounded_loads(raw: bytes, path: Path) -> Any:
    """The JSON of a fixture file, parsed within the depth bound (FixtureError otherwise)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FixtureError(path, f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FixtureError(
            path, f"invalid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno
        ) from None
    except RecursionError:
        data = None
    if data is None or too_deep(data):
        raise FixtureError(path, f"the JSON nests more than {MAX_DEPTH} levels deep")
    return data


def read_json_file(path: Path, error: Callable[..., PivotError]) -> Any:
    """A JSON file's content; ``error(path, message, line=...)`` names the file and the line
    when it cannot be read, is not UTF-8 or not JSON."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(path, f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise error(path, f"cannot read it ({exc.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            path, f"invalid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno
        ) from None


def read_exchange(path: Path, raw: bytes | None = None) -> Exchange:
    """Read one fixture file (or its bytes, ``raw``); FixtureError names the file, and the
    line or pointer.

    A file over :data:`MAX_FIXTURE_BYTES` or nested over :data:`MAX_DEPTH` levels is refused;
    so is a header that cannot be served as written (:func:`header_problem`). A file that the
    fast format check (jsonschema-rs) passes is built at once; anything doubtful goes through
    the checked reader, which says what is wrong and where.
    """
    if raw is None:
        raw = _read_bounded(path)
    elif len(raw) > MAX_FIXTURE_BYTES:
        raise FixtureError(path, _too_big(len(raw)))
    check = _fast_format_check()
    if check is not None:
        try:
            data = _fast_loads(raw)
        except ValueError:  # orjson's JSONDecodeError, including its own depth limit
            data = None
        if (
            data is not None
            and check(data)
            and data["meta"].get("operationId") == path.parent.name
            and (raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH or not too_deep(data))
        ):
            return _check_exchange(_exchange(data, path), path)
    data = _bounded_loads(raw, path)
    exchange = Exchange.from_dict(data, name=path.stem, operation_id=path.parent.name, file=path)
    if exchange.meta.get("operationId") != path.parent.name:
        raise FixtureError(
            path,
            f"meta.operationId {exchange.meta.get('operationId')!r} differs "
            f"from the directory {path.parent.name!r}",
            "/meta/operationId",
        )
    return exchange


def _too_big(size: int) -> str:
    return (
        f"the file is over {MAX_FIXTURE_BYTES:,} bytes ({size:,} read), the most a fixture "
        "may hold (record a smaller answer)"
    )


def _read_bounded(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FIXTURE_BYTES:
            raise FixtureError(path, _too_big(size))
        with path.open("rb") as handle:
            raw = handle.read(MAX_FIXTURE_BYTES + 1)
    except OSError as exc:
        raise FixtureError(path, f"cannot read it ({exc.strerror})") from None
    if len(raw) > MAX_FIXTURE_BYTES:
        raise FixtureError(path, _too_big(len(raw)))
    return raw


def iter_fixture_files(root: Path) -> Iterator[Path]:
    """Every ``<operationId>/<name>.json`` under root, sorted."""
    yield from sorted((p for p in root.glob("*/*.json") if p.is_file()), key=os.fspath)


class FixtureSet:
    """An indexed, immutable set of exchanges.

    ``match`` is a dictionary lookup on (method, path, lang); an absent ``lang`` is the
    contract's default and an unknown one falls back to it, as the provider does. Only
    answers below 400 are indexed for matching: an error exchange (a recorded 401, a 429) is
    evidence of the error's shape, not the answer a mock should give to every caller of that
    path; it stays in ``exchanges`` and ``for_operation``.
    """

    def __init__(
        self,
        exchanges: Iterable[Exchange],
        root: Path | None = None,
        *,
        default_lang: str | None = None,
        lang_parameter: str | None = None,
    ) -> None:
        if default_lang is None or lang_parameter is None:
            from pivotkit.contract import load_contract

            conventions = load_contract().conventions
            default_lang = default_lang or conventions.default_lang
            lang_parameter = lang_parameter or conventions.lang_parameter
        self.root = root
        self.default_lang = default_lang
        self.lang_parameter = lang_parameter
        self.exchanges: tuple[Exchange, ...] = tuple(exchanges)
        self._index: dict[tuple[str, str, str], Exchange] = {}
        for ex in self.exchanges:
            if ex.response.status < 400:
                self._index.setdefault(self.key(ex), ex)

    @classmethod
    def load(
        cls,
        root: Path | str | None = None,
        *,
        strict: bool = True,
        contract: Contract | None = None,
    ) -> FixtureSet:
        """Load every fixture under root. With ``strict=False`` unreadable files are skipped.
        ``contract`` (default: the default contract) gives the default ``lang``."""
        base = Path(root) if root is not None else default_fixtures_dir()
        exchanges = []
        for path in iter_fixture_files(base):
            try:
                exchanges.append(read_exchange(path))
            except FixtureError:
                if strict:
                    raise
        return cls(exchanges, base, **lang_settings(contract))

    def lang_of(self, exchange: Exchange) -> str:
        """The ``lang`` an exchange answers (the default when its request asked none)."""
        return exchange.request.query.get(self.lang_parameter) or self.default_lang

    def key(self, exchange: Exchange) -> tuple[str, str, str]:
        """The index key of an exchange: method, path and lang."""
        return (exchange.request.method, exchange.request.path, self.lang_of(exchange))

    def request_key(self, exchange: Exchange) -> tuple[str, str, str, tuple[tuple[str, str], ...]]:
        """What a request must be for ``exchange`` to answer it: method, path, lang (the
        default when absent), and every other query parameter."""
        query = tuple(
            sorted((k, v) for k, v in exchange.request.query.items() if k != self.lang_parameter)
        )
        return (exchange.request.method, exchange.request.path, self.lang_of(exchange), query)

    def duplicates(self) -> list[tuple[Exchange, Exchange]]:
        """Every (duplicate, kept) pair: two answers below 400 to the same request
        (:meth:`request_key`); the first in order is the one matched."""
        first: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], Exchange] = {}
        found = []
        for exchange in self.exchanges:
            if exchange.response.status >= 400:
                continue
            kept = first.setdefault(self.request_key(exchange), exchange)
            if kept is not exchange:
                found.append((exchange, kept))
        return found

    def __len__(self) -> int:
        return len(self.exchanges)

    def __iter__(self) -> Iterator[Exchange]:
        return iter(self.exchanges)

    def for_operation(self, operation_id: str) -> list[Exchange]:
        """Every exchange of one operation, in file order."""
        return [ex for ex in self.exchanges if ex.operation_id == operation_id]

    def match(self, method: str, path: str, lang: str | None = None) -> Exchange | None:
        """The exchange for this request, or None. ``lang`` falls back to the default."""
        lang = lang or self.default_lang
        found = self._index.get((method.upper(), path, lang))
        if found is None and lang != self.default_lang:
            found = self._index.get((method.upper(), path, self.default_lang))
        return found

    def get(self, method: str, path: str, lang: str | None = None) -> Exchange:
        """Like :meth:`match`, but FixtureNotFound lists the closest recorded paths."""
        found = self.match(method, path, lang)
        if found is None:
            raise FixtureNotFound(method, path, self.closest(path))
        return found

    def closest(self, path: str, n: int = 3) -> list[str]:
        """The recorded paths most like ``path``."""
        paths = sorted({ex.request.path for ex in self.exchanges})
        return difflib.get_close_matches(path, paths, n=n, cutoff=0.5)


def lang_settings(contract: Contract | None) -> dict[str, str]:
    """The ``default_lang`` and ``lang_parameter`` of a contract, as FixtureSet takes them."""
    if contract is None:
        return {}
    return {
        "default_lang": contract.conventions.default_lang,
        "lang_parameter": contract.conventions.lang_parameter,
    }


def _summary(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """One line naming what differs between two fixture dictionaries (meta ignored)."""
    diffs: list[str] = []

    def walk(a: Any, b: Any, pointer: str) -> None:
        if len(diffs) > 5:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                sub = f"{pointer}/{k}"
                if k not in a:
                    diffs.append(f"+{sub}")
                elif k not in b:
                    diffs.append(f"-{sub}")
                else:
                    walk(a[k], b[k], sub)
        elif a != b:
            diffs.append(f"~{pointer or '/'}")

    walk(
        {k: v for k, v in old.items() if k != "meta"},
        {k: v for k, v in new.items() if k != "meta"},
        "",
    )
    if not diffs:
        return "only meta differs"
    more = "" if len(diffs) <= 5 else ", ..."
    return ", ".join(diffs[:5]) + more


def safe_name(name: str) -> str:
    """A fixture name reduced to ``[A-Za-z0-9._-]`` (no path separators, no leading dot)."""
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in name).lstrip(".")
    if not cleaned:
        raise ValueError(f"fixture name {name!r} has no usable character")
    return cleaned[:120]


def write_exchange(exchange: Exchange, root: Path | str, *, overwrite: bool = False) -> Path:
    """Write ``exchange`` as ``root/<operationId>/<name>.json``, atomically.

    An identical file is left alone; a different one raises FixtureExists (with a one-line
    summary of what differs) unless ``overwrite`` is true.
    """
    target = Path(root) / safe_name(exchange.operation_id) / f"{safe_name(exchange.name)}.json"
    text = exchange.dumps()
    if target.exists():
        try:
            old = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = {}
        if target.read_text(encoding="utf-8", errors="replace") == text:
            return target
        if not overwrite:
            raise FixtureExists(target, _summary(old, exchange.to_dict()))
    atomic_write_text(target, text)
    return target


@dataclass(frozen=True)
class Placement:
    """Where :func:`place_exchange` put an exchange, and what it did: ``written`` (a new
    file), ``unchanged`` (an equal file was there), ``overwritten``, or ``beside`` (the file
    of that name differs: the exchange went to ``<name>-N.json``; ``summary`` says how)."""

    path: Path
    status: str
    summary: str = ""
    exchange: Exchange | None = None


def _comparable(data: Mapping[str, Any]) -> dict[str, Any]:
    """A fixture dictionary without what changes on every recording (``meta.recorded``)."""
    out: dict[str, Any] = json.loads(json.dumps(data))
    if isinstance(out.get("meta"), dict):
        out["meta"].pop("recorded", None)
    return out


def place_exchange(
    exchange: Exchange, root: Path | str, *, overwrite: bool = False, limit: int = 1000
) -> Placement:
    """Write ``exchange`` under ``root`` without losing any other fixture.

    An equal fixture (``meta.recorded`` aside) of the same name is left alone; a different
    one is replaced only with ``overwrite``, otherwise the exchange is written beside it as
    ``<name>-2.json``, ``-3``... (or found equal there). FixtureExists past ``limit`` names.
    """
    base = Path(root)
    new = _comparable(exchange.to_dict())
    first_summary = ""
    for n in range(1, limit):
        candidate = replace(exchange, name=exchange.name if n == 1 else f"{exchange.name}-{n}")
        target = base / safe_name(candidate.operation_id) / f"{safe_name(candidate.name)}.json"
        existed = target.exists()
        try:
            written = write_exchange(candidate, base, overwrite=False)
        except FixtureExists as exc:
            try:
                old = json.loads(target.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = None
            if isinstance(old, dict) and _comparable(old) == new:
                return Placement(target, "unchanged", "", replace(candidate, file=target))
            if overwrite:
                written = write_exchange(candidate, base, overwrite=True)
                return Placement(
                    written, "overwritten", exc.summary, replace(candidate, file=written)
                )
            first_summary = first_summary or exc.summary
            continue
        status = "unchanged" if existed else "written" if n == 1 else "beside"
        return Placement(written, status, first_summary, replace(candidate, file=written))
    raise FixtureExists(
        base / exchange.operation_id / f"{exchange.name}-{limit - 1}.json",
        f"{exchange.name}-2 to -{limit - 1} exist; clean up the folder",
    )


__all__ = [
    "Exchange",
    "FixtureSet",
    "Request",
    "Response",
    "read_exchange",
    "write_exchange",
]
