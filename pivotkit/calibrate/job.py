"""One calibration: from the guessed contract and an upstream to ``DIR`` (calibrated schemas,
recorded fixtures, the report and the patch). The input ``schemas/`` and ``fixtures/`` are only
read; every file is written atomically; what was learnt is written even when the run stops
early (budget, quota, Ctrl-C)."""

from __future__ import annotations

import base64
import difflib
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pivotkit.calibrate.crawl import Crawl, Probe
from pivotkit.calibrate.definition import apply_matches, map_operations, read_export
from pivotkit.calibrate.draft import Draft
from pivotkit.calibrate.evidence import Collector
from pivotkit.calibrate.examples import (
    mark_confirmed,
    revise_parameters,
    sync_parameter_examples,
    sync_response_examples,
    sync_schema_examples,
)
from pivotkit.calibrate.har import HarReader
from pivotkit.calibrate.report import Calibration, operation_report
from pivotkit.calibrate.revision import Reviser
from pivotkit.calibrate.wire import revise_headers, revise_messages
from pivotkit.check import check_directory
from pivotkit.contract import Contract
from pivotkit.documents import default_schemas_dir, refuse_inside
from pivotkit.errors import ConfigError
from pivotkit.fixtures import Exchange, place_exchange
from pivotkit.locations import atomic_write_text, default_fixtures_dir

ACCOUNTS_FILE = "accounts.toml"


@dataclass
class Options:
    """What ``pivotkit calibrate`` was asked to do."""

    upstream: str
    out: Path
    key: str
    schemas: Path | None = None
    fixtures: Path | None = None
    apim_export: Path | None = None
    har: Sequence[Path] = ()
    budget: int | None = 300
    rate: float | None = None
    account: str = "default"
    per_operation: int = 12
    seed: int = 0
    max_wait: float = 60.0
    timeout: float = 30.0
    transport: Any = None
    say: Callable[[str], None] = field(default=lambda line: None)


def key_forms(key: str) -> set[str]:
    """Every spelling of a key a file could hold: raw, URL-encoded, base64 (both alphabets,
    padded or not)."""
    raw = key.encode("utf-8")
    forms = {key, quote(key, safe=""), key.upper(), key.lower()}
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode("ascii")
        forms |= {text, text.rstrip("=")}
    return {f for f in forms if f}


def find_key(root: Path, key: str) -> list[Path]:
    """The files under ``root`` that hold any form of ``key``."""
    forms = key_forms(key)
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", "replace")
            if any(form in text for form in forms):
                found.append(path)
    return found


def _patch_prefix(schemas: Path) -> str:
    """The schemas directory as ``git apply`` run at the repository's top sees it."""
    try:
        top = subprocess.run(
            ["git", "-C", str(schemas), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        top = ""
    base = Path(top) if top else Path.cwd()
    try:
        return schemas.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return schemas.name


class Job:
    """A calibration run (see the module's docstring)."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.schemas_in = (options.schemas or default_schemas_dir()).resolve()
        self.fixtures_in = (options.fixtures or default_fixtures_dir()).resolve()
        self.out = options.out.resolve()
        for guarded in (self.schemas_in, self.fixtures_in):
            refuse_inside(self.out, guarded, "--out")
            refuse_inside(guarded, self.out, "--out")
        self.schemas_out = self.out / "schemas"
        self.fixtures_out = self.out / "fixtures"
        self.draft = Draft(self.schemas_in)
        self.say = options.say

    def _export(self) -> tuple[list[Any], list[Any]]:
        if self.options.apim_export is None:
            return [], []
        exported = read_export(self.options.apim_export)
        matches, left = map_operations(Contract.load(self.schemas_in), exported)
        apply_matches(self.draft, matches)
        self.say(f"the export maps {len(matches)} of {len(exported)} operations:")
        for m in matches:
            moved = f" (was {m.old_path})" if m.path_changed else ""
            self.say(f"  {m.operation_id:<22} <- {m.exported.label()}{moved}")
        for e in left:
            self.say(f"  (not in the contract)  {e.label()}")
        return matches, left

    def _paths_from_sessions(
        self, contract: Contract, result: Any, paths: list[str]
    ) -> dict[str, str]:
        """Wrong paths a browser session suggests: moved in the draft; {operation: old path}."""
        from pivotkit.calibrate.definition import move_path
        from pivotkit.calibrate.har import propose_paths

        wrong = [op for op, log in result.operations.items() if log.path == "wrong"]
        proposals = propose_paths(contract, wrong, paths) if wrong and paths else {}
        moved = {}
        for op_id, template in proposals.items():
            old = contract.operation(op_id).path
            move_path(self.draft.openapi["paths"], old, template)
            moved[op_id] = old
            self.say(f"  {op_id:<22} <- {template} (a browser session; was {old})")
        if moved:
            self.draft.write(self.schemas_out)
        return moved

    def _har(
        self, contract: Contract, quiet: bool = False
    ) -> tuple[list[Exchange], list[str], list[str]]:
        reader = HarReader(contract, secrets=[self.options.key], account=self.options.account)
        exchanges: list[Exchange] = []
        lines: list[str] = []
        paths: list[str] = []
        for path in self.options.har:
            imported = reader.read(path)
            for exchange in imported.exchanges:
                placed = place_exchange(exchange, self.fixtures_out, overwrite=True)
                exchanges.append(placed.exchange or exchange)
            lines.append(imported.summary())
            paths += imported.unmatched_paths
            if not quiet:
                self.say(imported.summary())
        return exchanges, lines, paths

    def _probe_line(self, probe: Probe) -> None:
        status = probe.outcome.http_status or probe.outcome.status
        params = " ".join(f"{k}={v}" for k, v in probe.params.items())
        self.say(f"  {probe.purpose:<12} {probe.operation_id or '-'} {params} -> {status}")

    def _crawl(
        self,
        contract: Contract,
        operations: list[str] | None = None,
        budget: int | None = None,
        seeds: dict[str, list[dict[str, str]]] | None = None,
    ) -> Any:
        from pivotkit.recorder import Recorder

        o = self.options
        budget = o.budget if budget is None else budget
        with Recorder(
            o.upstream,
            o.key,
            self.fixtures_out,
            account=o.account,
            contract=contract,
            overwrite=True,
            budget=budget,
            rate=o.rate,
            max_wait=o.max_wait,
            timeout=o.timeout,
            transport=o.transport,
        ) as recorder:
            crawl = Crawl(
                recorder,
                contract,
                operations=operations,
                seeds=seeds,
                per_operation=o.per_operation,
                seed=o.seed,
                on_probe=self._probe_line,
            )
            result = crawl.run()
            return result, recorder.calls

    def _copy_accounts(self) -> None:
        source = self.fixtures_in / ACCOUNTS_FILE
        target = self.fixtures_out / ACCOUNTS_FILE
        if not source.is_file() or target.exists():
            return
        text = source.read_text("utf-8")
        if any(form in text for form in key_forms(self.options.key)):
            self.say(f"{ACCOUNTS_FILE} holds the key: not copied (write one for the mock)")
            return
        atomic_write_text(target, text)

    def run(self) -> Calibration:
        started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        clock = time.monotonic()
        matches, left = self._export()
        self.draft.write(self.schemas_out)  # the paths the crawl sends to
        contract = Contract.load(self.schemas_out)
        self.fixtures_out.mkdir(parents=True, exist_ok=True)
        self._copy_accounts()
        har, har_lines, har_paths = self._har(contract)
        result, calls = self._crawl(contract)
        moved = self._paths_from_sessions(contract, result, har_paths)
        if moved:  # the sessions showed where some wrong paths are: crawl those again
            contract = Contract.load(self.schemas_out)
            har, har_lines, har_paths = self._har(contract, quiet=True)
            seeds: dict[str, list[dict[str, str]]] = {}
            for exchange in har:
                found = contract.find_operation("GET", exchange.request.path)
                if found is not None and exchange.operation_id in moved:
                    seeds.setdefault(exchange.operation_id, []).append(found[1])
            remaining = None if self.options.budget is None else max(self.options.budget - calls, 0)
            again, more = self._crawl(contract, list(moved), remaining, seeds)
            result.operations.update(again.operations)
            result.probes += again.probes
            result.stopped = again.stopped or result.stopped
            result.quota = result.quota or again.quota
            calls += more
        seen = [p.outcome.exchange for p in result.probes if p.outcome.exchange is not None]
        changes, notes = self._revise(contract, seen + har, result)
        self.draft.write(self.schemas_out)
        by_id = {m.operation_id: m for m in matches}
        calibrated = Contract.load(self.schemas_out)
        operations = [
            operation_report(
                result.operations[op_id], calibrated.operation(op_id).path, by_id.get(op_id)
            )
            for op_id in calibrated.operations
        ]
        for op in operations:
            if op.operation_id in moved:
                op.previous_path = moved[op.operation_id]
                op.notes.append("path taken from the browser session (HAR): review it")
        for op in operations:  # a HAR answer reaches an operation the crawl could not
            if not op.reached and any(
                e.operation_id == op.operation_id and e.response.status == 200 for e in har
            ):
                op.source = "confirmed"
                op.notes.append("reached through the browser session (HAR) only")
        calibration = Calibration(
            upstream=self.options.upstream,
            started=started,
            seconds=time.monotonic() - clock,
            calls=calls,
            budget=self.options.budget,
            crawl=result,
            operations=operations,
            changes=changes,
            notes=notes,
            matches=matches,
            unmatched_export=left,
            har=har_lines,
            har_paths=har_paths,
            residual=self._residual(calibrated),
            export_used=self.options.apim_export is not None,
        )
        self._write(calibration)
        return calibration

    def _revise(
        self, contract: Contract, exchanges: list[Exchange], result: Any
    ) -> tuple[list[Any], list[Any]]:
        collector = Collector(self.draft)
        for exchange in exchanges:
            if exchange.response.status != 200 or contract.is_empty_result(exchange.response.body):
                continue
            site = self.draft.schema_site(exchange.operation_id, 200)
            if site is not None:
                collector.add(exchange.operation_id, site, exchange.response.body)
        reviser = Reviser(self.draft, collector, secrets=(self.options.key,))
        changes = reviser.run()
        notes = list(reviser.notes)
        for more, more_notes in (
            revise_messages(self.draft, result),
            revise_headers(self.draft, exchanges),
        ):
            changes += more
            notes += more_notes
        changes += revise_parameters(self.draft, contract, exchanges)
        written = [e for e in exchanges if e.file is not None]  # examples come from fixtures
        sync_schema_examples(self.draft, collector)
        sync_response_examples(self.draft, contract, written)
        sync_parameter_examples(self.draft, contract, written)
        confirmed = [o for o, log in result.operations.items() if log.reached]
        confirmed += [e.operation_id for e in exchanges if e.response.status == 200]
        mark_confirmed(self.draft, confirmed)
        return changes, notes

    def _residual(self, contract: Contract) -> list[str]:
        lines = []
        for result in check_directory(contract, self.fixtures_out):
            if not result.ok:
                lines += [line.removeprefix("FAIL  ") for line in result.lines()]
        return lines

    def _reference(self, prefix: str) -> str:
        """DIR/docs/reference.md from the calibrated contract, and its diff against the
        repository's (so that `pivotkit docs --check` passes after `git apply`)."""
        from pivotkit.docs import render_reference

        text = render_reference(Contract.load(self.schemas_out))
        atomic_write_text(self.out / "docs" / "reference.md", text)
        current = self.schemas_in.parent / "docs" / "reference.md"
        if not current.is_file():
            return ""
        old = current.read_text("utf-8")
        name = "/".join([*prefix.split("/")[:-1], "docs", "reference.md"])
        return "".join(
            difflib.unified_diff(
                old.splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"a/{name}",
                f"b/{name}",
            )
        )

    def _write(self, calibration: Calibration) -> None:
        prefix = _patch_prefix(self.schemas_in)
        patch = self.draft.patch(prefix) + self._reference(prefix)
        atomic_write_text(self.out / "contract.patch", patch)
        atomic_write_text(self.out / "CALIBRATION.md", calibration.markdown())
        atomic_write_text(self.out / "calibration.json", calibration.json())
        leaked = find_key(self.out, self.options.key)
        if leaked:  # the redactor guards each write; this is the last line of defence
            for path in leaked:
                path.unlink()
            raise ConfigError(
                "redaction",
                f"a form of the key reached {len(leaked)} file(s) under --out; they were deleted",
            )


def calibrate(options: Options) -> Calibration:
    """Run one calibration (see :class:`Job`); ConfigError for bad options."""
    if not options.key:
        raise ConfigError("key", "no key: set $PIVOT_API_KEY to your subscription key")
    return Job(options).run()
