"""Which answer feeds which request: the contract's OpenAPI links, read as discovery rules.

A link of a 200 says: from this answer, call that operation with these parameters. Its
``parameters`` are runtime expressions (``$response.body#/data/0/id``, ``$request.path.id``) that
every tool reads; ``x-pivot-parameters`` says the same for *every* item: a ``*`` segment of the
pointer stands for each item of an array (``$response.body#/data/*/id``). Expressions whose
pointers share the part up to their first ``*`` take their values from the same item (a day and
its channels); other expressions combine with every value.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import product
from typing import Any

from pivotkit.contract import Contract
from pivotkit.pointers import ITEMS, split_pointer

BODY = "$response.body#"
REQUEST_PATH = "$request.path."


@dataclass(frozen=True)
class Rule:
    """One link: from ``source``'s 200 answers, candidates for ``target``'s parameters."""

    name: str
    source: str
    target: str
    parameters: Mapping[str, str]

    def label(self) -> str:
        """``Name (source -> target)``."""
        return f"{self.name} ({self.source} -> {self.target})"

    def candidates(
        self, params: Mapping[str, str], body: Any, limit: int = 10_000
    ) -> list[dict[str, str]]:
        """Every parameter set this answer gives the target (values as strings)."""
        fixed: dict[str, str] = {}
        grouped: dict[tuple[str, ...], dict[str, list[str]]] = {}
        for name, expression in self.parameters.items():
            if expression.startswith(REQUEST_PATH):
                value = params.get(expression[len(REQUEST_PATH) :])
                if value is None:
                    return []
                fixed[name] = str(value)
            elif expression.startswith(BODY):
                parts = split_pointer(expression[len(BODY) :])
                anchor = tuple(parts[: parts.index(ITEMS) + 1]) if ITEMS in parts else ()
                grouped.setdefault(anchor, {})[name] = parts
            else:
                fixed[name] = expression  # a constant
        choices: list[list[dict[str, str]]] = [[fixed]]
        for anchor, members in grouped.items():
            found = list(_group(body, anchor, members))
            if not found:
                return []
            choices.append(found)
        out: list[dict[str, str]] = []
        for combination in product(*choices):
            merged: dict[str, str] = {}
            for part in combination:
                merged.update(part)
            if merged not in out:
                out.append(merged)
            if len(out) >= limit:
                break
        return out


def _values(node: Any, parts: list[str]) -> Iterator[Any]:
    """Every value a pointer (``*`` for every item) reaches in ``node``."""
    if not parts:
        if node is not None and not isinstance(node, dict | list):
            yield node
        return
    head, rest = parts[0], parts[1:]
    if head == ITEMS:
        if isinstance(node, list):
            for item in node:
                yield from _values(item, rest)
        return
    if isinstance(node, dict):
        if head in node:
            yield from _values(node[head], rest)
    elif isinstance(node, list) and head.isdigit() and int(head) < len(node):
        yield from _values(node[int(head)], rest)


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _group(
    body: Any, anchor: tuple[str, ...], members: Mapping[str, list[str]]
) -> Iterator[dict[str, str]]:
    """Parameter sets from the expressions that share one anchor (the same array item)."""
    if not anchor:
        lists = {name: [_text(v) for v in _values(body, parts)] for name, parts in members.items()}
        yield from _combine(lists)
        return
    for item in _values_nodes(body, list(anchor[:-1])):
        if not isinstance(item, list):
            continue
        for element in item:
            lists = {
                name: [_text(v) for v in _values(element, parts[len(anchor) :])]
                for name, parts in members.items()
            }
            yield from _combine(lists)


def _values_nodes(node: Any, parts: list[str]) -> Iterator[Any]:
    """The nodes (containers included) a pointer without ``*`` reaches."""
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return
    yield node


def _combine(lists: Mapping[str, list[str]]) -> Iterator[dict[str, str]]:
    if any(not values for values in lists.values()):
        return
    names = list(lists)
    for values in product(*(lists[n] for n in names)):
        yield dict(zip(names, values, strict=True))


def rules(contract: Contract) -> list[Rule]:
    """The discovery rules of a contract: one per link of a 200 answer."""
    out = []
    for op in contract.operations.values():
        if 200 not in op.statuses:
            continue
        links = contract.response_spec(op.operation_id, 200).get("links") or {}
        for name, link in links.items():
            link = contract.deref(link)
            target = link.get("operationId")
            if not isinstance(target, str) or target not in contract.operations:
                continue
            parameters = link.get("x-pivot-parameters") or link.get("parameters") or {}
            out.append(Rule(name, op.operation_id, target, dict(parameters)))
    return out
