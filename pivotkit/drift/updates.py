"""Drifted answers written as new fixtures, for a person to review (``--update-fixtures``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from types import MappingProxyType

from pivotkit.contract import Contract
from pivotkit.documents import refuse_inside
from pivotkit.drift.replay import Answer
from pivotkit.fixtures import Exchange, Request, Response, place_exchange, safe_name
from pivotkit.redact import Redactor

_UNSTORED = frozenset({"content-length", "transfer-encoding", "connection"})


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def write_drift_fixtures(
    answers: Iterable[tuple[Answer, set[str]]],
    root: Path,
    *,
    contract: Contract,
    account: str = "live",
    upstream: str = "",
    secrets: Iterable[str] = (),
) -> list[Path]:
    """Write each drifted answer as a new fixture under ``root`` for review.

    Atomic, ``meta.source`` live, redacted, never overwriting (a taken name gets ``-2``,
    ``-3``...), never inside the contract's directory.
    """
    refuse_inside(root, contract.directory, "--update-fixtures")
    redactor = Redactor.build(secrets=[s for s in secrets if s])
    key_header = contract.conventions.key_header.lower()
    stamp = _stamp()
    day = stamp[:10].replace("-", "")
    written: list[Path] = []
    for answer, kinds in answers:
        if not kinds:
            continue
        base = (
            answer.baseline.name
            if answer.baseline is not None
            else safe_name(answer.request.path.strip("/").replace("/", "-"))
        )
        request = answer.request
        exchange = Exchange(
            answer.operation_id,
            f"{base}-drift-{day}",
            Request(
                request.method,
                request.path,
                MappingProxyType(dict(request.query)),
                MappingProxyType(
                    {k: v for k, v in request.headers.items() if k.lower() != key_header}
                ),
            ),
            Response(
                answer.status,
                answer.body,
                MappingProxyType({k: v for k, v in answer.headers.items() if k not in _UNSTORED}),
            ),
            MappingProxyType(
                {
                    "operationId": answer.operation_id,
                    "source": "live",
                    "recorded": stamp,
                    "account": account,
                    "upstream": upstream,
                    "notes": "re-recorded by pivotkit drift for review: "
                    + ", ".join(sorted(kinds)),
                }
            ),
        )
        written.append(place_exchange(redactor.exchange(exchange), root).path)
    return written
