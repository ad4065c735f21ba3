"""Operations of the contract and their parameters, as read from openapi.yaml (frozen records)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from jsonschema import Draft202012Validator

Location = Literal["path", "query", "header"]
_PLACEHOLDER = re.compile(r"\{([^}/]+)\}")
_INTEGER = re.compile(r"-?[0-9]{1,19}")
#: Calendar formats recognised from a parameter's examples (``yyyyMMdd``, ``yyyyMMddHHmmss``).
DATE_FORMATS = ("%Y%m%d", "%Y%m%d%H%M%S")


@dataclass(frozen=True)
class Parameter:
    """One parameter of an operation, as the contract declares it."""

    name: str
    location: Location
    required: bool
    schema: Mapping[str, Any]
    description: str = ""
    examples: tuple[Any, ...] = ()
    _validator: Draft202012Validator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Compiled once, with the contract: the mock checks parameters on its request path.
        object.__setattr__(self, "_validator", Draft202012Validator(dict(self.schema)))

    def sample_values(self) -> list[Any]:
        """Values the contract gives as examples: the parameter's ``examples``, its schema's
        ``examples`` and ``default`` (in that order, without repeats)."""
        values = [*self.examples, *self.schema.get("examples", [])]
        if "default" in self.schema:
            values.append(self.schema["default"])
        out: list[Any] = []
        for value in values:
            if value not in out:
                out.append(value)
        return out

    @property
    def date_format(self) -> str | None:
        """The strftime format every schema example follows (``%Y%m%d``...), or None."""
        examples = [str(e) for e in self.schema.get("examples", [])]
        for fmt in DATE_FORMATS:
            try:
                if examples and all(datetime.strptime(e, fmt).strftime(fmt) == e for e in examples):
                    return fmt
            except ValueError:
                continue
        return None

    @property
    def default(self) -> Any:
        """The schema's ``default`` (None when it has none)."""
        return self.schema.get("default")

    def coerce(self, raw: str) -> Any:
        """Turn the raw string into the declared JSON type (``ValueError`` if it cannot)."""
        if self.schema.get("type") == "integer":
            if not _INTEGER.fullmatch(raw):
                raise ValueError(f"{self.name}={raw!r} is not an integer")
            return int(raw)
        return raw

    def problems(self, raw: str) -> list[str]:
        """Every reason the raw value breaks the parameter's schema (empty when it fits)."""
        try:
            value = self.coerce(raw)
        except ValueError as exc:
            return [str(exc)]
        return [f"{self.name}: {e.message}" for e in self._validator.iter_errors(value)]


def template_names(template: str) -> list[str]:
    """The parameter names of a path template, in order (``{id}`` -> ``id``)."""
    return _PLACEHOLDER.findall(template)


def _template_regex(template: str) -> re.Pattern[str]:
    out = ""
    for i, piece in enumerate(_PLACEHOLDER.split(template)):
        out += "([^/]+)" if i % 2 else re.escape(piece)
    return re.compile(out)


@dataclass(frozen=True)
class Operation:
    """One operation of the contract: method, path template, parameters, statuses."""

    operation_id: str
    method: str
    path: str
    summary: str
    parameters: tuple[Parameter, ...]
    statuses: tuple[int, ...]
    path_source: str
    empty_result: bool
    tags: tuple[str, ...] = ()
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", _template_regex(self.path))
        object.__setattr__(self, "_names", tuple(template_names(self.path)))

    @property
    def path_parameters(self) -> tuple[Parameter, ...]:
        """The parameters taken from the path, in template order."""
        by_name = {p.name: p for p in self.parameters if p.location == "path"}
        return tuple(by_name[n] for n in self._names if n in by_name)

    @property
    def query_parameters(self) -> tuple[Parameter, ...]:
        """The parameters taken from the query string."""
        return tuple(p for p in self.parameters if p.location == "query")

    def query_parameter(self, name: str) -> Parameter | None:
        """The query parameter of that name, or None."""
        return next((p for p in self.query_parameters if p.name == name), None)

    def match(self, path: str) -> dict[str, str] | None:
        """The raw path parameters if ``path`` fits the template, else None."""
        m = self._regex.fullmatch(path)
        return None if m is None else dict(zip(self._names, m.groups(), strict=True))

    def expand(self, **params: object) -> str:
        """The concrete path for the given path parameters."""
        out = self.path
        for name in self._names:
            if name not in params:
                raise KeyError(f"{self.operation_id} needs path parameter {name!r}")
            out = out.replace("{" + name + "}", str(params[name]))
        return out

    def parameter_problems(self, path_params: Mapping[str, str]) -> list[str]:
        """Every reason the raw path parameters break the contract."""
        problems: list[str] = []
        for p in self.path_parameters:
            problems.extend(p.problems(path_params.get(p.name, "")))
        return problems

    def coerce_path(self, path_params: Mapping[str, str]) -> dict[str, Any]:
        """The path parameters converted to their declared types."""
        return {p.name: p.coerce(path_params[p.name]) for p in self.path_parameters}


__all__ = [
    "Operation",
    "Parameter",
]
