"""HAR import: the API calls of a browser session (the portal's Try-it, saved from the
developer tools as a HAR 1.2 file) as exchanges, redacted exactly like recording.

Only GETs whose path is one of the contract's operations become exchanges; every other entry
(the portal's pages, scripts, images) is counted and left out. The key sits in the entries'
request headers (or the key query parameter): every value found there is a secret the
redactor scrubs from the whole exchange, with the ones given by the caller.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import difflib
import gzip
import json
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from pivotkit.contract import Contract
from pivotkit.errors import ConfigError, PivotError
from pivotkit.fixtures import Exchange, Request, Response, place_exchange
from pivotkit.plan import PlanItem
from pivotkit.recorder import UNSTORED_HEADERS
from pivotkit.redact import Redactor

OPTION = "--har"


@dataclass
class HarImport:
    """The exchanges a HAR file gave, and why the other entries were left out."""

    source: Path
    exchanges: list[Exchange] = field(default_factory=list)
    left_out: Counter[str] = field(default_factory=Counter)
    unmatched_paths: list[str] = field(default_factory=list)

    def summary(self) -> str:
        reasons = ", ".join(f"{n} {why}" for why, n in self.left_out.most_common())
        tail = f"; left out {reasons}" if reasons else ""
        return f"{self.source.name}: {len(self.exchanges)} API exchanges{tail}"


def read_har(path: Path) -> list[Mapping[str, Any]]:
    """The entries of a HAR file; ConfigError (one line) when it is not one."""
    try:
        data = json.loads(path.read_text("utf-8-sig"))
    except OSError as exc:
        raise ConfigError(OPTION, f"cannot read {path} ({exc.strerror})") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(OPTION, f"{path} is not a HAR file (not JSON: {exc})") from None
    log = data.get("log") if isinstance(data, Mapping) else None
    entries = log.get("entries") if isinstance(log, Mapping) else None
    if not isinstance(entries, list):
        raise ConfigError(OPTION, f"{path} is not a HAR file (no log.entries)")
    return [e for e in entries if isinstance(e, Mapping)]


def _pairs(items: Any) -> list[tuple[str, str]]:
    if not isinstance(items, list):
        return []
    return [
        (str(i.get("name", "")), str(i.get("value", ""))) for i in items if isinstance(i, Mapping)
    ]


def har_secrets(entries: Iterable[Mapping[str, Any]], contract: Contract) -> set[str]:
    """Every key value the entries' requests carry (header or query parameter)."""
    conv = contract.conventions
    out = set()
    for entry in entries:
        request = entry.get("request") or {}
        for name, value in _pairs(request.get("headers")):
            if name.lower() == conv.key_header.lower() and value:
                out.add(value)
        query = dict(parse_qsl(urlsplit(str(request.get("url", ""))).query))
        if conv.key_query and query.get(conv.key_query):
            out.add(query[conv.key_query])
    return out


def _body(content: Mapping[str, Any]) -> Any:
    """The JSON body of a HAR response's ``content`` (base64 and gzip undone)."""
    text = content.get("text")
    if not isinstance(text, str):
        raise ValueError("no body saved")
    raw = text.encode("utf-8")
    if content.get("encoding") == "base64":
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("body is not valid base64") from None
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    elif raw[:1] == b"\x78":
        with contextlib.suppress(zlib.error):
            raw = zlib.decompress(raw)
    return json.loads(raw.decode("utf-8-sig"))


def _segments(path: str) -> list[str]:
    return [s for s in path.strip("/").split("/") if s]


def _fit(template: str, path: str) -> tuple[float, str] | None:
    """How well a concrete path fits a template but for one literal segment (its similarity),
    and the template with that segment taken from the path; None when it does not."""
    ours, theirs = _segments(template), _segments(path)
    if len(ours) != len(theirs):
        return None
    differing = [
        i
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True))
        if not a.startswith("{") and a != b
    ]
    if len(differing) != 1:
        return None
    (index,) = differing
    similarity = difflib.SequenceMatcher(None, ours[index], theirs[index]).ratio()
    fixed = [theirs[index] if i == index else s for i, s in enumerate(ours)]
    return similarity, "/" + "/".join(fixed)


def propose_paths(contract: Contract, wrong: list[str], paths: list[str]) -> dict[str, str]:
    """For operations whose path is wrong, the template a browser session's unmatched API path
    suggests (same shape, one literal segment otherwise): best similarity first, each path
    and each operation taken once."""
    pairs = []
    for op_id in wrong:
        template = contract.operation(op_id).path
        for path in sorted(set(paths)):
            fit = _fit(template, path)
            if fit is not None:
                pairs.append((fit[0], op_id, path, fit[1]))
    out: dict[str, str] = {}
    used: set[str] = set()
    for _, op_id, path, template in sorted(pairs, key=lambda p: (-p[0], p[1], p[2])):
        if op_id not in out and path not in used:
            out[op_id] = template
            used.add(path)
    return out


class HarReader:
    """Turns HAR entries into exchanges of a contract (see the module's docstring)."""

    def __init__(
        self, contract: Contract, *, secrets: Iterable[str] = (), account: str = "default"
    ) -> None:
        self.contract = contract
        self.extra_secrets = tuple(s for s in secrets if s)
        self.account = account

    def read(self, path: Path) -> HarImport:
        entries = read_har(path)
        found = har_secrets(entries, self.contract) | set(self.extra_secrets)
        redactor = Redactor.build(found, conventions=self.contract.conventions)
        result = HarImport(path)
        for entry in entries:
            try:
                exchange = self._exchange(entry, path.name)
            except _LeftOut as why:
                result.left_out[str(why)] += 1
                if why.path:
                    result.unmatched_paths.append(redactor.text(why.path))
                continue
            result.exchanges.append(redactor.exchange(exchange))
        return result

    def _exchange(self, entry: Mapping[str, Any], source: str) -> Exchange:
        request = entry.get("request") or {}
        response = entry.get("response") or {}
        if str(request.get("method", "")).upper() != "GET":
            raise _LeftOut("not a GET")
        url = urlsplit(str(request.get("url", "")))
        path = unquote(url.path)
        found = self.contract.find_operation("GET", path)
        if found is None:
            raise _LeftOut("not a path of the contract", path if "/api/" in path else "")
        operation, params = found
        status = response.get("status")
        if not isinstance(status, int) or status <= 0:
            raise _LeftOut("no response (blocked or cancelled)")
        try:
            body = _body(response.get("content") or {})
        except (ValueError, OSError, EOFError):
            raise _LeftOut("no JSON body saved") from None
        conv = self.contract.conventions
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        lang = query.get(conv.lang_parameter) or None
        sent = {
            n: v
            for n, v in _pairs(request.get("headers"))
            if n.lower() in {h.lower() for h in (*conv.request_headers, conv.key_header)}
        }
        headers: dict[str, str] = {}
        for name, value in _pairs(response.get("headers")):
            low = name.lower()
            if low not in UNSTORED_HEADERS and not low.startswith(":"):
                headers[low] = f"{headers[low]}, {value}" if low in headers else value
        item = PlanItem(operation.operation_id, MappingProxyType(params), lang)
        return Exchange(
            operation_id=operation.operation_id,
            name=item.fixture_name(operation)
            if status == 200
            else f"{status}-" + item.fixture_name(operation),
            request=Request("GET", path, MappingProxyType(query), MappingProxyType(sent)),
            response=Response(status, body, MappingProxyType(headers)),
            meta=MappingProxyType(
                {
                    "operationId": operation.operation_id,
                    "source": "har",
                    "recorded": str(entry.get("startedDateTime") or ""),
                    "account": self.account,
                    "upstream": f"{url.scheme}://{url.netloc}",
                    "notes": f"Imported from the browser session {source} by pivotkit.",
                }
            ),
        )


class _LeftOut(Exception):
    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(reason)
        self.path = path


def write_har_exchanges(
    imported: HarImport, out: Path, *, overwrite: bool = False
) -> list[tuple[str, Path]]:
    """Write the exchanges as fixtures (atomically, never losing one): (status, path) each."""
    written = []
    for exchange in imported.exchanges:
        try:
            placed = place_exchange(exchange, out, overwrite=overwrite)
        except (PivotError, OSError) as exc:
            raise ConfigError("--out", f"cannot write under {out}: {exc}") from None
        written.append((placed.status, placed.path))
        imported.exchanges[imported.exchanges.index(exchange)] = replace(exchange, file=placed.path)
    return written
