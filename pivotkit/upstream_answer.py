"""What one upstream answer becomes while recording: its body decoded as it streams in
(bounded), parsed as JSON (a failure keeps the status and the start of a page), and the
outcome of each request and the report of a run."""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from pivotkit.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNAVAILABLE
from pivotkit.fixtures import Exchange
from pivotkit.plan import PlanItem

TEXT_KEPT = 2000  # characters of a non-JSON answer kept in its failure, to compare

Status = Literal["recorded", "unchanged", "skipped", "failed"]
STATUSES: tuple[Status, ...] = ("recorded", "unchanged", "skipped", "failed")


@dataclass(frozen=True)
class Outcome:
    """What recording one plan item did."""

    item: PlanItem
    status: Status
    message: str = ""
    path: Path | None = None
    exchange: Exchange | None = None
    unreachable: bool = False
    timed_out: bool = False
    http_status: int | None = None
    body: Any = None

    def line(self) -> str:
        """One report line: status, then the file or the request, then why."""
        what = str(self.path) if self.path is not None else self.item.label()
        tail = f": {self.message}" if self.message else ""
        return f"{self.status:<9} {what}{tail}"


@dataclass
class Report:
    """Every outcome of a run, and why it stopped early if it did."""

    outcomes: list[Outcome] = field(default_factory=list)
    calls: int = 0
    stopped: str = ""
    quota_exhausted: bool = False
    interrupted: bool = False

    def count(self, status: Status) -> int:
        """How many outcomes have this status."""
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def all_unreachable(self) -> bool:
        """Whether every request that was sent failed to reach the upstream at all."""
        sent = [o for o in self.outcomes if o.status != "skipped" and not o.item.error]
        return bool(sent) and all(o.unreachable for o in sent)

    @property
    def exit_code(self) -> int:
        """0 no failure; 1 some request failed; 3 quota exhausted or upstream unreachable;
        130 interrupted (Ctrl-C)."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.quota_exhausted or self.all_unreachable:
            return EXIT_UNAVAILABLE
        return EXIT_FAILED if self.count("failed") else EXIT_OK

    def summary(self) -> str:
        """The final line: the four counts, then the upstream calls made."""
        counts = ", ".join(f"{s} {self.count(s)}" for s in STATUSES)
        return f"{counts} ({len(self.outcomes)} requests, {self.calls} upstream calls)"


class UpstreamFailure(Exception):
    """A request that produced nothing worth writing (internal to the recorder)."""

    def __init__(
        self,
        message: str,
        *,
        unreachable: bool = False,
        status: Status = "failed",
        timed_out: bool = False,
        http_status: int | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.unreachable = unreachable
        self.timed_out = timed_out
        self.status: Status = status
        self.http_status = http_status
        self.body = body


class StreamedBody:
    """A response body decoded as it streams in, and refused past ``cap`` decoded bytes (so
    a small gzip that expands to gigabytes never does, in memory or on disk)."""

    def __init__(self, encoding: str, cap: int) -> None:
        self.encoding = encoding.strip().lower() or "identity"
        if self.encoding not in ("identity", "gzip", "deflate"):
            raise UpstreamFailure(f"unsupported content-encoding {self.encoding!r}")
        self.cap = cap
        self.raw = 0
        self.size = 0
        self._parts: list[bytes] = []
        self._z = self._decompressor()

    def _decompressor(self) -> Any:
        if self.encoding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return zlib.decompressobj() if self.encoding == "deflate" else None

    def feed(self, chunk: bytes) -> None:
        self.raw += len(chunk)
        if self._z is None:
            self._keep(chunk)
            return
        data = chunk
        try:
            while data:
                self._keep(self._z.decompress(data, self.cap - self.size + 1))
                data = self._z.unconsumed_tail
                if self._z.eof:
                    data = self._z.unused_data
                    if data and self.encoding != "gzip":
                        raise zlib.error("data after the end of the stream")
                    if data:  # another gzip member
                        self._z = self._decompressor()
        except zlib.error as exc:
            raise self._corrupt(exc) from None

    def _keep(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.cap:
            raise UpstreamFailure(
                f"the body is over {self.cap:,} bytes once decoded ({self.raw:,} received); "
                "not recorded, nothing written (raise --max-size)"
            )
        if data:
            self._parts.append(data)

    def _corrupt(self, exc: Exception) -> UpstreamFailure:
        return UpstreamFailure(
            f"truncated or corrupt {self.encoding} body ({self.raw} bytes): {exc}"
        )

    def finish(self) -> bytes:
        if self._z is not None and not self._z.eof:
            raise self._corrupt(EOFError("the compressed stream ends early"))
        return b"".join(self._parts)


def parse_answer(response: httpx.Response, data: bytes) -> Any:
    ctype = response.headers.get("content-type", "")
    status = response.status_code
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UpstreamFailure(
            f"body is not UTF-8 ({exc.reason} at byte {exc.start})", http_status=status
        ) from None
    # The failure keeps the start of the text: a caller compares non-JSON answers with it.
    kept = text[:TEXT_KEPT]
    if "html" in ctype or text.lstrip()[:1] == "<":
        title = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
        hint = f" {title.group(1).strip()[:60]!r}" if title else ""
        raise UpstreamFailure(
            f"HTML page instead of JSON (HTTP {status}, {ctype or 'no content-type'}){hint}",
            http_status=status,
            body=kept,
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UpstreamFailure(
            f"invalid JSON (HTTP {status}): {exc.msg} at line {exc.lineno} column {exc.colno}",
            http_status=status,
            body=kept,
        ) from None
