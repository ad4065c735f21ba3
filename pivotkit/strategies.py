"""Hypothesis strategies generated from the contract: parameter values, invalid values, requests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from pivotkit.contract import Contract, load_contract
from pivotkit.fixtures import FixtureSet
from pivotkit.operations import Operation, Parameter

# Characters a generated path segment may hold. "/", "?", "#" and "%" would change the URL's
# shape rather than the parameter's value, so they never appear in a generated segment.
SEGMENT_ALPHABET = st.characters(
    codec="utf-8", exclude_characters="/?#%\\", exclude_categories=["Cs", "Cc"]
)
#: Language codes tried besides the lang parameter's own examples and default: other real
#: codes, one that exists nowhere, and the default's upper-case and regional variants.
OTHER_LANGS = ("de", "es", "it", "nl", "xx")
_UNICODE_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@dataclass(frozen=True)
class RequestSpec:
    """One generated request: its operation, concrete path and query, and whether it is valid.

    ``valid`` is true when every path parameter fits its schema (query extras do not count:
    the backend ignores unknown query parameters).
    """

    operation_id: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    valid: bool = True
    path_params: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.query.items())
        return f"{self.operation_id} GET {self.path}" + (f"?{query}" if query else "")


def _ascii_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema with ``\\d`` read as ``[0-9]``: the API means ASCII digits."""
    out = dict(schema)
    out.pop("examples", None)
    pattern = out.get("pattern")
    if isinstance(pattern, str):
        out["pattern"] = pattern.replace(r"\d", "[0-9]")
    return out


def _segment_ok(text: str) -> bool:
    return bool(text) and text not in {".", ".."} and text.strip() == text


def _raw(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def date_format(param: Parameter) -> str | None:
    """The strftime format every example of ``param`` follows (``yyyyMMdd``...), or None."""
    return param.date_format


def _calendar_values(fmt: str) -> st.SearchStrategy[str]:
    moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2035, 12, 31))
    return moments.map(lambda moment: moment.strftime(fmt))


def periods(
    fmt: str = "%Y%m%d", *, max_days: int = 14, reversed_ok: bool = True
) -> st.SearchStrategy[tuple[str, str]]:
    """(start, end) pairs of real days, ``end`` up to ``max_days`` later (or, when
    ``reversed_ok``, sometimes earlier)."""
    span = st.integers(min_value=-3 if reversed_ok else 0, max_value=max_days)
    days = st.dates(min_value=date(2000, 1, 1), max_value=date(2035, 12, 31))
    return st.tuples(days, span).map(
        lambda pair: (pair[0].strftime(fmt), (pair[0] + timedelta(days=pair[1])).strftime(fmt))
    )


def lang_values(param: Parameter) -> tuple[str, ...]:
    """The language codes tried for a lang parameter: its default and examples first."""
    default = str(param.default or "")
    known = [default, *(str(e) for e in param.schema.get("examples", []))]
    variants = [default.upper(), f"{default}-{default.upper()}"] if default else []
    return tuple(dict.fromkeys(v for v in (*known, *OTHER_LANGS, *variants) if v))


def _is_lang(param: Parameter, contract: Contract | None) -> bool:
    conv = (contract or load_contract()).conventions
    return param.name == conv.lang_parameter and param.location == "query"


def parameter_values(param: Parameter, contract: Contract | None = None) -> st.SearchStrategy[str]:
    """Raw (string) values that fit the parameter's schema, examples first; real calendar
    values when the examples follow a date format."""
    schema = _ascii_schema(param.schema)
    if _is_lang(param, contract) and schema.get("type") == "string" and "pattern" not in schema:
        generated: st.SearchStrategy[Any] = st.sampled_from(lang_values(param)) | st.text(
            alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8
        )
    else:
        generated = from_schema(schema, allow_x00=False)
    examples = [_raw(e) for e in param.schema.get("examples", [])]
    values = generated.map(_raw)
    fmt = date_format(param)
    if fmt is not None:
        values = _calendar_values(fmt) | values
    if param.location == "path":
        values = values.filter(_segment_ok)
    return st.sampled_from(examples) | values if examples else values


@cache
def _near_misses(kind: str, pattern: str) -> st.SearchStrategy[str]:
    near: list[st.SearchStrategy[str]] = []
    junk = st.text(alphabet=SEGMENT_ALPHABET, min_size=1, max_size=24).filter(_segment_ok)
    if kind == "integer":
        near.append(
            st.sampled_from(
                [
                    "0",
                    "-1",
                    "1.5",
                    "1e3",
                    "0x1A",
                    "2147483648",
                    "99999999999999999999",
                    "+7",
                    "seven",
                    "٧٤٨٨",
                ]
            )
        )
        near.append(st.integers(max_value=0).map(str))
        near.append(st.integers(min_value=2**31).map(str))
    if pattern:
        ascii_pattern = pattern.replace(r"\d", "[0-9]")
        valid = st.from_regex(ascii_pattern, fullmatch=True)
        near.append(valid.map(lambda s: s[:-1]).filter(_segment_ok))
        near.append(valid.map(lambda s: s + "0"))
        near.append(valid.map(lambda s: s.translate(_UNICODE_DIGITS)))
        near.append(valid.map(lambda s: s[:4] + "-" + s[4:]))
    return st.one_of(*near, junk)


def invalid_values(param: Parameter) -> st.SearchStrategy[str]:
    """Raw values that break the parameter's schema: near misses first, then junk."""
    kind = str(param.schema.get("type", ""))
    pattern = str(param.schema.get("pattern", ""))
    candidates = _near_misses(kind, pattern)
    return candidates.filter(lambda raw: bool(param.problems(raw)))


def extra_query(
    max_size: int = 3, contract: Contract | None = None
) -> st.SearchStrategy[dict[str, str]]:
    """Query parameters the contract does not declare (never ``lang`` or the key)."""
    conv = (contract or load_contract()).conventions
    reserved = frozenset(n for n in (conv.lang_parameter, conv.key_query) if n)
    names = st.text(
        alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz_-0123456789"), min_size=1, max_size=12
    ).filter(lambda n: n not in reserved)
    values = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=16)
    return st.dictionaries(names, values, max_size=max_size)


def known_path_params(op: Operation, fixtures: FixtureSet) -> list[dict[str, str]]:
    """The raw path parameters of every recorded 200 of ``op`` (to hit real data).

    Other statuses are left out: a 400 fixture's parameters are invalid, and 401/403/429
    fixtures record gateway conditions a replaying mock would reproduce.
    """
    out = []
    for exchange in fixtures.for_operation(op.operation_id):
        if exchange.response.status != 200:
            continue
        params = op.match(exchange.request.path)
        if params is not None and params not in out:
            out.append(params)
    return out


def path_params(
    op: Operation, *, fixtures: FixtureSet | None = None, invalid: bool = False
) -> st.SearchStrategy[dict[str, str]]:
    """Path parameters of ``op``: recorded ones and schema-valid ones, or (``invalid``) at
    least one parameter broken."""
    params = op.path_parameters
    if not params:
        return st.just({})
    valid = st.fixed_dictionaries({p.name: parameter_values(p) for p in params})
    by_name = {p.name: p for p in params}
    if "start" in by_name and "end" in by_name:
        fmt = date_format(by_name["start"])
        if fmt is not None and fmt == date_format(by_name["end"]):
            period = periods(fmt)
            valid = valid | st.tuples(valid, period).map(
                lambda pair: {**pair[0], "start": pair[1][0], "end": pair[1][1]}
            )
    if not invalid:
        known = known_path_params(op, fixtures) if fixtures is not None else []
        return st.sampled_from(known) | valid if known else valid

    @st.composite
    def broken(draw: st.DrawFn) -> dict[str, str]:
        values = draw(valid)
        chosen = draw(st.sets(st.sampled_from([p.name for p in params]), min_size=1))
        for p in params:
            if p.name in chosen:
                values[p.name] = draw(invalid_values(p))
        return values

    return broken()


def requests(
    op: Operation | str,
    *,
    fixtures: FixtureSet | None = None,
    invalid: bool | None = False,
    contract: Contract | None = None,
    extras: bool = True,
) -> st.SearchStrategy[RequestSpec]:
    """Requests of one operation: path parameters, optional ``lang``, undeclared extras.

    ``invalid=None`` mixes valid and invalid path parameters.
    """
    contract = contract or load_contract()
    if isinstance(op, str):
        op = contract.operation(op)
    operation = op
    lang_name = contract.conventions.lang_parameter
    if invalid is None:
        pairs = st.tuples(path_params(operation, fixtures=fixtures), st.just(True)) | st.tuples(
            path_params(operation, invalid=True), st.just(False)
        )
    else:
        pairs = st.tuples(
            path_params(operation, fixtures=fixtures, invalid=invalid), st.just(not invalid)
        )
    lang_param = operation.query_parameter(lang_name)
    langs: st.SearchStrategy[str | None] = st.none()
    if lang_param is not None:
        langs = st.none() | parameter_values(lang_param, contract)

    @st.composite
    def build(draw: st.DrawFn) -> RequestSpec:
        values, valid = draw(pairs)
        if not operation.path_parameters:
            valid = True
        query: dict[str, str] = draw(extra_query(contract=contract)) if extras else {}
        lang = draw(langs)
        if lang is not None:
            query[lang_name] = lang
        return RequestSpec(
            operation.operation_id,
            operation.expand(**values),
            query,
            valid,
            dict(values),
        )

    return build()


def operations(contract: Contract | None = None) -> st.SearchStrategy[Operation]:
    """Any operation of the contract."""
    ops = (contract or load_contract()).operations
    return st.sampled_from([ops[name] for name in sorted(ops)])


__all__ = [
    "RequestSpec",
    "invalid_values",
    "operations",
    "parameter_values",
    "path_params",
    "periods",
    "requests",
]
