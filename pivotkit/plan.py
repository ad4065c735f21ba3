"""Plans: the requests a run sends (record, drift, calibrate), from a file, flags or fixtures."""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import product
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from pivotkit.accounts import Rights
from pivotkit.contract import Contract
from pivotkit.errors import ConfigError, FixtureError
from pivotkit.fixtures import Exchange, FixtureSet, Request, iter_fixture_files, read_exchange
from pivotkit.fixtures import safe_name as _safe_name
from pivotkit.operations import Operation

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class PlanItem:
    """One request to send: an operation, its path parameters, an optional ``lang``, other
    query parameters, a fixture name, and the fixture it comes from (its baseline).

    ``error`` marks an item that could not be planned (reported as failed, never sent),
    ``skip`` one that is not to be sent (reported as skipped, with the reason).
    """

    operation_id: str
    params: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    lang: str | None = None
    name: str | None = None
    query: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    baseline: Exchange | None = field(default=None, compare=False)
    error: str = ""
    skip: str = ""

    @property
    def sendable(self) -> bool:
        """Neither an error nor skipped."""
        return not self.error and not self.skip

    def label(self) -> str:
        """``getContent id=7488 lang=en``: the item in a report line."""
        parts = [self.operation_id, *(f"{k}={v}" for k, v in self.params.items())]
        parts += [f"{k}={v}" for k, v in sorted(self.query.items())]
        if self.lang:
            parts.append(f"lang={self.lang}")
        return " ".join(parts)

    def fixture_name(self, operation: Operation) -> str:
        """The file name: ``name``, else the path parameters and the lang asked for, joined
        by ``-`` (``7488``, ``7488-en``, ``en``), ``all`` when there is neither."""
        if self.name:
            return _safe_name(self.name)
        values = [
            str(self.params[p.name]) for p in operation.path_parameters if p.name in self.params
        ]
        return _safe_name("-".join([*values, *([self.lang] if self.lang else [])]) or "all")

    def request(self, contract: Contract) -> Request:
        """The request this item sends (method, concrete path, query with ``lang``)."""
        op = contract.operation(self.operation_id)
        query = dict(self.query)
        if self.lang:
            query[contract.conventions.lang_parameter] = self.lang
        return Request(op.method, op.expand(**self.params), MappingProxyType(query))


def _item_from_mapping(raw: Any, where: str) -> PlanItem:
    if not isinstance(raw, dict) or not isinstance(raw.get("operationId"), str):
        raise ConfigError(
            where,
            "each request is a mapping with an operationId, e.g. "
            "{operationId: getContent, params: {id: 7488}, lang: en}",
        )
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(where, "params must be a mapping of parameter names to values")
    unknown = set(raw) - {"operationId", "params", "lang", "name"}
    if unknown:
        raise ConfigError(
            where, f"unknown keys {sorted(unknown)}; allowed: operationId, params, lang, name"
        )
    lang, name = raw.get("lang"), raw.get("name")
    return PlanItem(
        raw["operationId"],
        MappingProxyType({str(k): str(v) for k, v in params.items()}),
        None if lang is None else str(lang),
        None if name is None else str(name),
    )


def load_plan(path: Path) -> list[PlanItem]:
    """Read a plan file (YAML or JSON): a list of ``{operationId, params, lang?, name?}``,
    or a mapping with that list under ``requests``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the plan: {exc.strerror}") from None
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError(str(path), f"not YAML or JSON: {exc}") from None
    if isinstance(data, dict) and "requests" in data:
        data = data["requests"]
    if not isinstance(data, list):
        raise ConfigError(str(path), "a plan is a list of requests (or {requests: [...]})")
    return [_item_from_mapping(raw, f"{path} request {i + 1}") for i, raw in enumerate(data)]


def plan_from_options(
    operations: Sequence[str], params: Sequence[str], langs: Sequence[str], contract: Contract
) -> list[PlanItem]:
    """Items for ``--op``/``--param``/``--lang``: every combination of the given values.

    ``--param id=1 --param id=2`` records both ids for each ``--op`` that takes an ``id``.
    """
    values: dict[str, list[str]] = {}
    for raw in params:
        name, eq, value = raw.partition("=")
        if not eq or not name:
            raise ConfigError("--param", f"{raw!r} is not NAME=VALUE (e.g. --param id=7488)")
        values.setdefault(name.strip(), []).append(value.strip())
    used: set[str] = set()
    items: list[PlanItem] = []
    for op_id in operations:
        names = [p.name for p in contract.operation(op_id).path_parameters]
        missing = [n for n in names if n not in values]
        if missing:
            raise ConfigError(
                "--param", f"{op_id} needs {', '.join(missing)} (e.g. --param {missing[0]}=...)"
            )
        used.update(names)
        lang_choices: list[str | None] = [*langs] or [None]
        for combo, lang in product(product(*(values[n] for n in names)), lang_choices):
            items.append(
                PlanItem(op_id, MappingProxyType(dict(zip(names, combo, strict=True))), lang)
            )
    unused = set(values) - used
    if unused:
        raise ConfigError("--param", f"no --op takes {', '.join(sorted(unused))}")
    return items


def _exchanges(source: FixtureSet | Path) -> Iterable[tuple[Path | None, Exchange | str]]:
    if isinstance(source, FixtureSet):
        for ex in source:
            yield ex.file, ex
        return
    for path in iter_fixture_files(source):
        try:
            yield path, read_exchange(path)
        except FixtureError as exc:
            yield path, f"unreadable fixture: {exc}"


def _item_of(
    ex: Exchange, where: str, contract: Contract, replayed: Collection[int], rights: Rights | None
) -> PlanItem:
    found = contract.find_operation(ex.request.method, ex.request.path)
    if found is None:
        return PlanItem(
            ex.operation_id,
            name=ex.name,
            error=(
                f"{where}: {ex.request.method} {ex.request.path} fits no operation of the "
                "contract; fix the path in the fixture or in schemas/openapi.yaml"
            ),
        )
    op, params = found
    lang_name = contract.conventions.lang_parameter
    item = PlanItem(
        op.operation_id,
        MappingProxyType(params),
        ex.request.query.get(lang_name) or None,
        ex.name,
        MappingProxyType({k: v for k, v in ex.request.query.items() if k != lang_name}),
        baseline=ex,
    )
    status = ex.response.status
    if status not in replayed:
        return replace(
            item,
            skip=f"{where}: a {status} answer is not re-recorded or replayed "
            "(the upstream gives it only in that condition)",
        )
    if rights is not None and not rights.may_call(op.operation_id):
        return replace(item, skip=f"{where}: {op.operation_id} is outside the account's rights")
    return item


def plan_from_fixtures(
    source: FixtureSet | Path,
    contract: Contract,
    *,
    replayed: Collection[int] = frozenset({200}),
    rights: Rights | None = None,
) -> list[PlanItem]:
    """One item per fixture (a directory, read file by file, or a loaded set), named like the
    fixture, with it as the baseline. Fixtures whose status is not in ``replayed``, outside
    ``rights``, or asking the same request as an earlier one are skipped (with the reason);
    unreadable ones, and ones that fit no operation, are errors."""
    items: list[PlanItem] = []
    seen: dict[tuple[str, str, tuple[tuple[str, str], ...]], str] = {}
    for path, ex in _exchanges(source):
        where = str(path) if path is not None else "fixture"
        if isinstance(ex, str):
            items.append(
                PlanItem(
                    path.parent.name if path else "?", name=path.stem if path else None, error=ex
                )
            )
            continue
        item = _item_of(ex, where, contract, replayed, rights)
        if item.sendable:
            key = (ex.request.method, ex.request.path, tuple(sorted(ex.request.query.items())))
            if key in seen:
                item = replace(item, skip=f"{where}: the same request as {seen[key]}")
            else:
                seen[key] = where
        items.append(item)
    return items


def sample(items: Sequence[PlanItem], size: int | None, seed: int | None) -> list[PlanItem]:
    """A seeded sample of ``size`` items, in plan order (all of them when ``size`` is None)."""
    if size is None or size >= len(items):
        return list(items)
    if size < 1:
        raise ConfigError("--sample", "must be 1 or more")
    chosen = sorted(random.Random(seed).sample(range(len(items)), size))
    return [items[i] for i in chosen]


__all__ = [
    "PlanItem",
    "load_plan",
    "plan_from_fixtures",
    "plan_from_options",
]
