"""A consumer's changelog of two contracts (``pivotkit diff OLD NEW``): what a new contract
changes for the code written against the old one, per operation and pointer.

The new contract plays the producer, the old one the consumer: each body position goes
through the same walk as live drift (:func:`~pivotkit.difference.diff_shape`) and the same
direction rules (:func:`~pivotkit.drift.classifier.finding_kind`), positions ``contract``
for response bodies and headers, ``request`` for parameters (the direction reversed: there
the consumer produces the value).
"""

from __future__ import annotations

import json
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pivotkit.contract import Contract
from pivotkit.difference import diff_shape
from pivotkit.documents import default_schemas_dir
from pivotkit.drift.classifier import finding_kind, rule, severity_of
from pivotkit.drift.findings import HEADER_POINTER, SEVERITIES
from pivotkit.errors import ConfigError, PivotError
from pivotkit.operations import Operation, Parameter
from pivotkit.schema_view import View, contract_view, view_of

FORMAT = "pivotkit-contract-diff/1"
GIT_PREFIX = "git:"
EMPTY_RESULT = "(empty result)"
PARAMETER_POINTER = "parameters/"


@dataclass(frozen=True)
class Change:
    """One change of the contract, by what it means for a consumer."""

    operation: str
    status: int | None
    pointer: str
    kind: str
    before: str
    after: str
    position: str = "contract"

    @property
    def severity(self) -> str:
        """The kind's severity at its position (:func:`~pivotkit.drift.classifier.severity_of`)."""
        return severity_of(self.kind, self.position)

    @property
    def sort_key(self) -> tuple[int, str, int, str, str]:
        return (
            SEVERITIES.index(self.severity),
            self.operation,
            self.status or 0,
            self.pointer,
            self.kind,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "operation": self.operation,
            "status": self.status,
            "pointer": self.pointer,
            "kind": self.kind,
            "severity": self.severity,
            "before": self.before,
            "after": self.after,
        }


def _changes_of(
    new: View, old: View, operation: str, status: int | None, position: str, prefix: str = ""
) -> Iterator[Change]:
    for d in diff_shape(new, old):
        kind = finding_kind(d.kind, prefix + d.pointer if prefix else d.pointer, position)
        if kind is not None:
            yield Change(operation, status, prefix + d.pointer, kind, d.contract, d.observed)


def _parameter_view(contract: Contract, parameter: Parameter) -> View:
    resolver = contract.registry.resolver(base_uri=contract.openapi_uri)
    return view_of(dict(parameter.schema), resolver)


def _parameters(old: Contract, new: Contract, a: Operation, b: Operation) -> Iterator[Change]:
    before = {(p.location, p.name): p for p in a.parameters}
    after = {(p.location, p.name): p for p in b.parameters}
    op = a.operation_id
    for key in sorted(before.keys() | after.keys()):
        pointer = f"{PARAMETER_POINTER}{key[0]}/{key[1]}"
        p, q = before.get(key), after.get(key)
        if q is None:
            kind = rule("only-in-contract", "parameter")
            yield Change(op, None, pointer, kind, "declared", "not declared")
        elif p is None:
            kind = rule("only-observed", "required-parameter" if q.required else "parameter")
            label = "required" if q.required else "optional"
            yield Change(op, None, pointer, kind, "not declared", f"declared ({label})")
        else:
            if q.required and not p.required:
                kind = rule("became-required", "parameter")
                yield Change(op, None, pointer, kind, "optional", "required")
            # the direction reversed: what consumers sent (old) against what is accepted (new)
            yield from _changes_of(
                _parameter_view(old, p), _parameter_view(new, q), op, None, "request", pointer
            )


def _headers(old: Contract, new: Contract, op: str, status: int) -> Iterator[Change]:
    before = {k.lower(): v for k, v in old.response_headers(op, status).items()}
    after = {k.lower(): v for k, v in new.response_headers(op, status).items()}
    for name in sorted(before.keys() | after.keys()):
        pointer = HEADER_POINTER + name
        if name not in after:
            kind = rule("only-in-contract", "header")
            yield Change(op, status, pointer, kind, "declared", "not declared")
        elif name not in before:
            yield Change(
                op, status, pointer, rule("only-observed", "header"), "not declared", "declared"
            )
        else:
            resolver_old = old.registry.resolver(base_uri=old.openapi_uri)
            resolver_new = new.registry.resolver(base_uri=new.openapi_uri)
            yield from _changes_of(
                view_of(after[name], resolver_new),
                view_of(before[name], resolver_old),
                op,
                status,
                "contract",
                pointer,
            )
    types_before, types_after = old.media_types(op, status), new.media_types(op, status)
    gone = sorted(types_before - types_after)
    if gone:
        yield Change(
            op,
            status,
            HEADER_POINTER + "content-type",
            rule("only-in-contract", "media-type"),
            " or ".join(sorted(types_before)),
            " or ".join(sorted(types_after)) or "no content",
            "media-type",
        )


def _body(old: Contract, new: Contract, op: str, status: int) -> Iterator[Change]:
    try:
        before, after = contract_view(old, op, status), contract_view(new, op, status)
    except PivotError:
        return
    yield from _changes_of(after, before, op, status, "contract")


def _operation(old: Contract, new: Contract, a: Operation, b: Operation) -> Iterator[Change]:
    op = a.operation_id
    if (a.method, a.path) != (b.method, b.path):
        kind = rule("path-differs", "operation")
        yield Change(op, None, "", kind, f"{a.method} {a.path}", f"{b.method} {b.path}")
    yield from _parameters(old, new, a, b)
    for status in sorted(set(a.statuses) | set(b.statuses)):
        position = "success-status" if 200 <= status < 300 else "status"
        if status not in b.statuses:
            kind = rule("only-in-contract", position)
            yield Change(op, status, "", kind, f"{status} declared", "not declared")
        elif status not in a.statuses:
            kind = rule("only-observed", position)
            yield Change(op, status, "", kind, "not declared", f"{status} declared")
        else:
            yield from _headers(old, new, op, status)
            yield from _body(old, new, op, status)


def compare_contracts(old: Contract, new: Contract) -> list[Change]:
    """Every change from ``old`` to ``new`` that a consumer of ``old`` should hear of, sorted
    by severity, operation, status and pointer."""
    out: list[Change] = []
    for op_id in sorted(old.operations.keys() | new.operations.keys()):
        a, b = old.operations.get(op_id), new.operations.get(op_id)
        if b is None:
            assert a is not None
            kind = rule("only-in-contract", "operation")
            out.append(Change(op_id, None, "", kind, f"{a.method} {a.path}", "not declared"))
        elif a is None:
            kind = rule("only-observed", "operation")
            out.append(Change(op_id, None, "", kind, "not declared", f"{b.method} {b.path}"))
        else:
            out.extend(_operation(old, new, a, b))
    empty_old = old.registry.resolver().lookup(old.empty_result_uri)
    empty_new = new.registry.resolver().lookup(new.empty_result_uri)
    out.extend(
        _changes_of(
            view_of(empty_new.contents, empty_new.resolver),
            view_of(empty_old.contents, empty_old.resolver),
            EMPTY_RESULT,
            200,
            "contract",
        )
    )
    return sorted(set(out), key=lambda c: c.sort_key)


# -- the two sides ---------------------------------------------------------------------------


def _git(args: list[str], cwd: Path, spec: str) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except OSError as exc:
        raise ConfigError(spec, f"git is needed for {GIT_PREFIX}REV: {exc.strerror}") from None
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        raise ConfigError(spec, reason[-1] if reason else f"git {args[0]} failed")
    return done.stdout


def load_side(spec: str, other: str | None, workdir: Path) -> Contract:
    """The contract a ``pivotkit diff`` argument names: a schemas directory, or
    ``git:REV`` (the other argument's directory, else the default schemas directory, as it
    was at revision REV; extracted under ``workdir``)."""
    if not spec.startswith(GIT_PREFIX):
        return Contract.load(Path(spec))
    rev = spec[len(GIT_PREFIX) :]
    if not rev:
        raise ConfigError(spec, "name a revision: git:HEAD, git:v1.2.0, git:main~3")
    base = (
        Path(other)
        if other is not None and not other.startswith(GIT_PREFIX)
        else default_schemas_dir()
    )
    base = base.resolve()
    if not base.is_dir():
        raise ConfigError(spec, f"{base} is not a directory inside a git repository")
    top = Path(_git(["rev-parse", "--show-toplevel"], base, spec).decode().strip())
    relative = base.relative_to(top.resolve()).as_posix() or "."
    archive = _git(["archive", "--format=tar", rev, "--", relative], top, spec)
    target = workdir / rev.replace("/", "_").replace("~", "_").replace("^", "_")
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as handle:
        handle.write(archive)
        handle.seek(0)
        with tarfile.open(fileobj=handle) as tar:
            tar.extractall(target, filter="data")
    return Contract.load(target / relative)


# -- renderings --------------------------------------------------------------------------------


def to_json(changes: list[Change], old: str, new: str) -> str:
    """The JSON changelog, format ``pivotkit-contract-diff/1``."""
    data = {
        "format": FORMAT,
        "old": old,
        "new": new,
        "summary": {s: sum(1 for c in changes if c.severity == s) for s in SEVERITIES},
        "changes": [c.to_dict() for c in changes],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(changes: list[Change], old: str, new: str) -> str:
    """The Markdown changelog: counts, then one table per operation."""
    counts = {s: sum(1 for c in changes if c.severity == s) for s in SEVERITIES}
    operations = sorted({c.operation for c in changes})
    lines = [
        f"## Contract changes: {old} -> {new}",
        "",
        f"{counts['breaking']} breaking, {counts['warning']} warning, {counts['info']} info "
        f"in {len(operations)} operations." + (" No change for consumers." if not changes else ""),
        "",
    ]
    for op in operations:
        lines += [
            f"### {op}",
            "",
            "| severity | status | where | change | before | after |",
            "|---|---|---|---|---|---|",
        ]
        for c in (c for c in changes if c.operation == op):
            lines.append(
                f"| {c.severity} | {c.status or ''} | `{c.pointer or '/'}` | {c.kind} | "
                f"{_md(c.before)} | {_md(c.after)} |"
            )
        lines.append("")
    return "\n".join(lines)
