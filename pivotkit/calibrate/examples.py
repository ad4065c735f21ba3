"""The calibrated contract's examples come from its fixtures, like the bundled one's: response
examples are recorded bodies, schema examples recorded values, parameter examples the ids and
days that answered."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pivotkit.calibrate.draft import Draft, Site
from pivotkit.calibrate.evidence import Collector, Evidence
from pivotkit.calibrate.revision import Change, strings_pattern
from pivotkit.contract import Contract
from pivotkit.fixtures import Exchange
from pivotkit.pointers import escape_pointer_segment

#: Response examples kept per operation and status (the empty result comes on top).
RESPONSE_EXAMPLES = 4
#: Parameter examples kept per parameter.
PARAMETER_EXAMPLES = 12


def _example(exchange: Exchange) -> dict[str, Any]:
    meta = exchange.meta
    where = meta.get("upstream") or "the upstream"
    how = "imported from a browser session" if exchange.source == "har" else "recorded"
    return {
        "summary": f"{exchange.request.method} {exchange.request.path}",
        "description": f"{how.capitalize()} from {where} on {meta.get('recorded', '?')} "
        f"by pivotkit calibrate.",
        "value": exchange.response.body,
    }


def sync_response_examples(draft: Draft, contract: Contract, exchanges: Iterable[Exchange]) -> None:
    """Every response with recorded answers shows them (shared responses: any operation's)."""
    by_site: dict[Site, list[Exchange]] = {}
    for exchange in sorted(exchanges, key=lambda e: (e.operation_id, e.name)):
        site = draft.media_site(exchange.operation_id, exchange.response.status)
        if site is not None:
            by_site.setdefault(site, []).append(exchange)
    for site, found in by_site.items():
        media = draft.node(site)
        if not isinstance(media, dict):
            continue
        empty = [e for e in found if contract.is_empty_result(e.response.body)]
        full = [e for e in found if e not in empty]
        chosen = full[:RESPONSE_EXAMPLES] + empty[:1]
        names = [e.name for e in chosen]
        media["examples"] = {
            e.name if names.count(e.name) == 1 else f"{e.operation_id}-{e.name}": _example(e)
            for e in chosen
        }


def sync_schema_examples(draft: Draft, collector: Collector) -> None:
    """Each schema's ``examples`` become values seen there (kept where nothing was seen)."""
    for site, evidence in collector.sites.items():
        node = draft.node(site)
        if isinstance(node, dict) and isinstance(node.get("examples"), list) and evidence.examples:
            node["examples"] = list(evidence.examples)


def _answered(
    contract: Contract, exchanges: Iterable[Exchange]
) -> dict[tuple[str, str], list[str]]:
    """(operation, path parameter) -> the values of the requests that answered 200."""
    values: dict[tuple[str, str], list[str]] = {}
    for exchange in exchanges:
        if exchange.response.status != 200:
            continue
        found = contract.find_operation(exchange.request.method, exchange.request.path)
        if found is None:
            continue
        op, params = found
        for name, value in params.items():
            kept = values.setdefault((op.operation_id, name), [])
            if value not in kept:
                kept.append(value)
    return values


def revise_parameters(draft: Draft, contract: Contract, exchanges: list[Exchange]) -> list[Change]:
    """A path parameter whose schema refuses values the upstream answered is widened."""
    values = _answered(contract, exchanges)
    changes = []
    for template, method, spec in draft.operations():
        op_id = str(spec["operationId"])
        for index, param in enumerate(spec.get("parameters") or []):
            if not isinstance(param, dict) or param.get("in") != "path":
                continue
            parameter = next(
                (
                    p
                    for p in contract.operation(op_id).path_parameters
                    if p.name == param.get("name")
                ),
                None,
            )
            seen = values.get((op_id, str(param.get("name"))), [])
            refused = [v for v in seen if parameter is not None and parameter.problems(v)]
            if not refused:
                continue
            schema = param.setdefault("schema", {})
            evidence = Evidence()
            for value in seen:
                evidence.see(value, "string", ("", ""), 0, op_id)
            new: dict[str, Any] = {"type": "string"}
            pattern = strings_pattern(evidence)
            if pattern:
                new["pattern"] = pattern
            if isinstance(schema.get("examples"), list):
                new["examples"] = seen[:3]
            param["schema"] = new
            pointer = f"/paths/{escape_pointer_segment(template)}/{method}/parameters/{index}"
            changes.append(
                Change(
                    "openapi.yaml",
                    f"{pointer}/schema",
                    "parameter",
                    f"{op_id} {param['name']}: the upstream answered values the "
                    f"schema refused ({refused[0]!r}): now {new}",
                    len(seen),
                    refused[0],
                    [op_id],
                )
            )
    return changes


def sync_parameter_examples(
    draft: Draft, contract: Contract, exchanges: Iterable[Exchange]
) -> None:
    """Path parameters' examples: the values of the requests that answered 200."""
    values = _answered(contract, exchanges)
    for template, method, spec in draft.operations():
        op_id = str(spec["operationId"])
        for param in spec.get("parameters") or []:
            if not isinstance(param, dict) or param.get("in") != "path":
                continue
            seen = values.get((op_id, str(param.get("name"))), [])
            if not seen:
                continue
            schema = param.get("schema") or {}
            typed = [_typed(v, schema) for v in sorted(seen, key=_order)[:PARAMETER_EXAMPLES]]
            param["examples"] = {f"{op_id}-{v}": {"value": v} for v in typed}
            if isinstance(schema.get("examples"), list):
                schema["examples"] = [str(v) for v in typed[:3]]
        _ = template, method


def _order(value: str) -> tuple[int, int | str]:
    return (0, int(value)) if value.isdigit() else (1, value)


def _typed(value: str, schema: dict[str, Any]) -> Any:
    if schema.get("type") == "integer" and value.lstrip("-").isdigit():
        return int(value)
    return value


def mark_confirmed(draft: Draft, confirmed: Iterable[str]) -> None:
    """``x-pivot-path-source: confirmed`` on the operations whose path answered (a path taken
    from the provider's export keeps ``provider-export``)."""
    wanted = set(confirmed)
    for _, _, spec in draft.operations():
        if (
            spec.get("operationId") in wanted
            and spec.get("x-pivot-path-source") != "provider-export"
        ):
            spec["x-pivot-path-source"] = "confirmed"
