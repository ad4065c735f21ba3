"""The provider's API definition: an API Management export (OpenAPI 2 or 3), mapped to the
contract's operations, whose paths and parameters it then gives the draft.

An export names the real path templates, operation names, summaries and parameters, usually
without response schemas. Each exported GET is scored against each contract operation: the
shape of the path (segments, where the parameters are, literal segments in common) and the words
of the names and summaries (``get-person-bio`` and "Biography of a person" against
``getPersonBiography``); pairs are taken best first, each side once. The mapping is printed and
reported for review; a pair under :data:`MIN_SCORE` is not taken.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from pivotkit.calibrate.draft import Draft
from pivotkit.contract import Contract
from pivotkit.errors import ConfigError
from pivotkit.operations import Operation

OPTION = "--apim-export"
MIN_SCORE = 4.0
_PLACEHOLDER = re.compile(r"\{([^}/]+)\}")
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_STOP = frozenset(
    {
        "get",
        "the",
        "a",
        "an",
        "of",
        "api",
        "v1",
        "v2",
        "list",
        "one",
        "all",
        "by",
        "and",
        "for",
        "its",
        "with",
        "every",
        "what",
        "id",
        "to",
        "in",
        "on",
        "s",
    }
)
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@dataclass(frozen=True)
class Exported:
    """One operation of the export."""

    method: str
    path: str  # full path template: the server's (or basePath's) path, then the path's
    operation_id: str
    summary: str
    parameters: tuple[Mapping[str, Any], ...] = ()

    @property
    def placeholders(self) -> list[str]:
        return _PLACEHOLDER.findall(self.path)

    def label(self) -> str:
        name = self.operation_id or self.summary or self.path
        return f"{name} ({self.method.upper()} {self.path})"


@dataclass
class Match:
    """A contract operation and the exported one it was mapped to."""

    operation_id: str
    exported: Exported
    score: float
    old_path: str
    renamed: dict[str, str] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)

    @property
    def path_changed(self) -> bool:
        return self.old_path != self.exported.path

    def to_dict(self) -> dict[str, Any]:
        return {
            "operationId": self.operation_id,
            "exported": self.exported.operation_id,
            "summary": self.exported.summary,
            "path": self.exported.path,
            "previousPath": self.old_path,
            "score": round(self.score, 2),
            "renamedParameters": self.renamed,
            "addedParameters": self.added,
        }


def _load(path: Path) -> Any:
    try:
        text = path.read_text("utf-8-sig")
    except OSError as exc:
        raise ConfigError(OPTION, f"cannot read {path} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(OPTION, f"{path} is not UTF-8 text") from None
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            OPTION, f"{path} is neither JSON nor YAML ({type(exc).__name__})"
        ) from None


def _prefix(doc: Mapping[str, Any]) -> str:
    if "swagger" in doc:
        return str(doc.get("basePath") or "").rstrip("/")
    servers = doc.get("servers") or []
    url = servers[0].get("url", "") if servers and isinstance(servers[0], Mapping) else ""
    return urlsplit(str(url)).path.rstrip("/")


def _deref(doc: Mapping[str, Any], node: Any) -> Any:
    for _ in range(10):
        if not (isinstance(node, Mapping) and isinstance(node.get("$ref"), str)):
            return node
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return node
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, Mapping) else None
        node = target
    return node


def read_export(path: Path) -> list[Exported]:
    """The operations of an OpenAPI 2 or 3 export; ConfigError (one line) for anything else."""
    doc = _load(path)
    if not isinstance(doc, Mapping) or not ("swagger" in doc or "openapi" in doc):
        raise ConfigError(OPTION, f"{path}: not an OpenAPI export (no `openapi` or `swagger` key)")
    paths = doc.get("paths")
    if not isinstance(paths, Mapping) or not paths:
        raise ConfigError(OPTION, f"{path}: the export declares no paths")
    prefix = _prefix(doc)
    out = []
    for template, item in paths.items():
        if not isinstance(item, Mapping):
            continue
        shared = [_deref(doc, p) for p in item.get("parameters") or []]
        for method in _METHODS:
            spec = item.get(method)
            if not isinstance(spec, Mapping):
                continue
            params = shared + [_deref(doc, p) for p in spec.get("parameters") or []]
            out.append(
                Exported(
                    method,
                    prefix + "/" + str(template).lstrip("/"),
                    str(spec.get("operationId") or ""),
                    str(spec.get("summary") or ""),
                    tuple(p for p in params if isinstance(p, Mapping)),
                )
            )
    return out


# -- scoring ---------------------------------------------------------------------------------


def words(*texts: str) -> set[str]:
    """The meaningful words of names and sentences, lower-case, plural ``s`` dropped."""
    out = set()
    for text in texts:
        for word in _WORD.findall(text):
            low = word.lower()
            if low.endswith("ies") and len(low) > 4:
                low = low[:-3] + "y"
            elif low.endswith("s") and len(low) > 3 and not low.endswith("ss"):
                low = low[:-1]
            if low not in _STOP:
                out.add(low)
    return out


def _segments(path: str) -> list[str]:
    return [s for s in path.strip("/").split("/") if s]


def _shape_score(ours: str, theirs: str) -> float:
    a, b = _segments(ours), _segments(theirs)
    a_params = [i for i, s in enumerate(reversed(a)) if s.startswith("{")]
    b_params = [i for i, s in enumerate(reversed(b)) if s.startswith("{")]
    score = 0.0
    if len(a_params) != len(b_params):
        score -= 6
    else:
        score += 2 + (2 if a_params == b_params else 0)
    if len(a) == len(b):
        score += 1
    literals_a = {s.lower() for s in a if not s.startswith("{")}
    literals_b = {s.lower() for s in b if not s.startswith("{")}
    score += 0.5 * len(literals_a & literals_b)
    if ours == theirs:
        score += 4
    return score


def score(op: Operation, exported: Exported, tags: Iterable[str] = ()) -> float:
    """How well an exported operation matches a contract operation (higher is better)."""
    if exported.method != op.method.lower():
        return -100.0
    ours = words(op.operation_id, op.summary, *tags, *_segments(_PLACEHOLDER.sub("", op.path)))
    theirs = words(
        exported.operation_id, exported.summary, *_segments(_PLACEHOLDER.sub("", exported.path))
    )
    overlap = len(ours & theirs) / max(1, len(ours | theirs))
    return _shape_score(op.path, exported.path) + 8 * overlap


def map_operations(
    contract: Contract, exported: list[Exported]
) -> tuple[list[Match], list[Exported]]:
    """Matches (best pairs first, each side once) and the exported operations left over."""
    pairs = []
    for op in contract.operations.values():
        tags = _tags(contract, op.operation_id)
        for index, ex in enumerate(exported):
            pairs.append((score(op, ex, tags), op.operation_id, index))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    taken_ops: set[str] = set()
    taken_ex: set[int] = set()
    matches = []
    for value, op_id, index in pairs:
        if value < MIN_SCORE or op_id in taken_ops or index in taken_ex:
            continue
        taken_ops.add(op_id)
        taken_ex.add(index)
        matches.append(Match(op_id, exported[index], value, contract.operation(op_id).path))
    left = [ex for i, ex in enumerate(exported) if i not in taken_ex and ex.method == "get"]
    return sorted(matches, key=lambda m: m.operation_id), left


def _tags(contract: Contract, operation_id: str) -> list[str]:
    for item in (contract.openapi.get("paths") or {}).values():
        for spec in item.values() if isinstance(item, Mapping) else ():
            if isinstance(spec, Mapping) and spec.get("operationId") == operation_id:
                return [str(t) for t in spec.get("tags") or []]
    return []


# -- applying ---------------------------------------------------------------------------------


def apply_matches(draft: Draft, matches: list[Match]) -> None:
    """Give the draft the exported paths (parameters renamed, links followed) and the query
    parameters the contract lacks; mark each taken path ``provider-export``."""
    paths = draft.openapi["paths"]
    renames: dict[str, dict[str, str]] = {}
    for match in matches:
        template = next(
            (
                t
                for t, item in paths.items()
                if any(
                    isinstance(s, dict) and s.get("operationId") == match.operation_id
                    for s in item.values()
                )
            ),
            None,
        )
        if template is None:
            continue
        spec = paths[template][match.exported.method]
        old_names = _PLACEHOLDER.findall(template)
        new_names = match.exported.placeholders
        if len(old_names) == len(new_names):
            match.renamed = {o: n for o, n in zip(old_names, new_names, strict=True) if o != n}
        _rename_parameters(draft, spec, match.renamed)
        match.added = _add_query_parameters(spec, match.exported)
        if match.path_changed:  # a path the export only repeats stays to be confirmed
            spec["x-pivot-path-source"] = "provider-export"
            move_path(paths, template, match.exported.path)
        renames[match.operation_id] = match.renamed
    _follow_links(draft, renames)


def move_path(paths: dict[str, Any], old: str, new: str) -> None:
    """Rename a path template of ``paths`` in place, keeping the order."""
    if new in paths and new != old:
        paths[new].update(paths.pop(old))
        return
    items = list(paths.items())
    paths.clear()
    for template, item in items:
        paths[new if template == old else template] = item


def _rename_parameters(draft: Draft, spec: dict[str, Any], renamed: Mapping[str, str]) -> None:
    if not renamed:
        return
    params = spec.get("parameters") or []
    for i, param in enumerate(params):
        resolved = param
        if isinstance(param, dict) and "$ref" in param:
            resolved = draft.node(draft.ref(("openapi.yaml", ""), param["$ref"]))
        if (
            isinstance(resolved, dict)
            and resolved.get("in") == "path"
            and resolved.get("name") in renamed
        ):
            params[i] = {**resolved, "name": renamed[resolved["name"]]}


def _add_query_parameters(spec: dict[str, Any], exported: Exported) -> list[str]:
    declared = set()
    for param in spec.get("parameters") or []:
        if isinstance(param, dict):
            declared.add(param.get("name") or param.get("$ref", "").rsplit("/", 1)[-1])
    added = []
    for param in exported.parameters:
        name = param.get("name")
        if param.get("in") != "query" or not isinstance(name, str) or name in declared:
            continue
        schema = (
            param.get("schema")
            or {k: param[k] for k in ("type", "format", "enum") if k in param}
            or {"type": "string"}
        )
        new = {
            "name": name,
            "in": "query",
            "required": bool(param.get("required")),
            "description": str(param.get("description") or "From the provider's export."),
            "schema": dict(schema),
        }
        spec.setdefault("parameters", []).append(new)
        added.append(name)
    return added


def _follow_links(draft: Draft, renames: Mapping[str, Mapping[str, str]]) -> None:
    """Links keep naming the right parameters: their targets' and their ``$request.path.``."""
    for _, _, spec in draft.operations():
        source = renames.get(str(spec.get("operationId")), {})
        for response in (spec.get("responses") or {}).values():
            links = response.get("links") if isinstance(response, dict) else None
            for link in (links or {}).values():
                if not isinstance(link, dict):
                    continue
                target = renames.get(str(link.get("operationId")), {})
                for key in ("parameters", "x-pivot-parameters"):
                    params = link.get(key)
                    if isinstance(params, dict):
                        link[key] = {
                            target.get(k, k): _renamed_expression(v, source)
                            for k, v in params.items()
                        }


def _renamed_expression(expression: Any, renamed: Mapping[str, str]) -> Any:
    prefix = "$request.path."
    if isinstance(expression, str) and expression.startswith(prefix):
        name = expression[len(prefix) :]
        return prefix + renamed.get(name, name)
    return expression
