"""Admin endpoints that a consumer's tests drive: the journal, sequences, timelines, reset.

Registered on the admin blueprint (``/__pivot/``, the admin token required):

- ``GET /requests`` (``operation``, ``account``, ``status``, ``since``, ``limit``), ``DELETE``;
- ``GET /sequences``, ``POST /sequences`` (one sequence in the scenarios file's format),
  ``DELETE /sequences/<name>``;
- ``GET /timelines``, ``GET /timelines/<name>``, ``POST /timelines/<name>/next``,
  ``POST /timelines/<name>/step/<n>``, ``POST /timelines/<name>/reset``;
- ``POST /reset``: the per-test reset (keys, limits, usage, journal, sequences, timelines).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from mockserver.journal import Filter
from pivotkit.errors import ScenarioError
from pivotkit.scenarios import parse_sequence

Protect = Callable[[Callable[..., Any]], Callable[..., Any]]


def _mock() -> Any:
    return current_app.extensions["pivot"]


def _error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": message, **extra}), status


def _refused(status: int, exc: ScenarioError) -> tuple[Response, int]:
    return _error(status, str(exc), origin=exc.origin, pointer=exc.pointer, reason=exc.reason)


def requests_list() -> Any:
    """The journal's records, oldest first, filtered; and how full it is."""
    journal = _mock().journal
    if journal is None:
        return _error(409, "the journal is off (PIVOT_JOURNAL=false, --no-journal)")
    try:
        wanted = Filter.parse(request.args.to_dict())
    except ValueError as exc:
        return _error(400, str(exc))
    entries, stats = journal.entries()
    return jsonify({"requests": wanted.apply(entries), "journal": asdict(stats)})


def requests_clear() -> Any:
    """Forget every record, in every worker."""
    journal = _mock().journal
    if journal is None:
        return _error(409, "the journal is off (PIVOT_JOURNAL=false, --no-journal)")
    return jsonify({"cleared": journal.clear()})


def sequences_list() -> Response:
    """Every sequence played, declared ones first, with how many requests each answered."""
    return jsonify({"sequences": _mock().scenarios.sequences.describe()})


def sequence_add() -> Any:
    """Add a sequence (or replace the one of that name), from its first answer."""
    mock = _mock()
    data = request.get_json(silent=True)
    try:
        sequence = parse_sequence(data, "sequence")
        row = mock.scenarios.add_sequence(sequence, mock.backend)
    except ScenarioError as exc:
        return _refused(400, exc)
    return jsonify(row), 201


def sequence_remove(name: str) -> Any:
    """Remove a sequence (the scenarios file's come back with the next reset)."""
    if not _mock().scenarios.remove_sequence(name):
        return _error(404, f"no sequence {name!r}")
    return jsonify({"removed": name})


def timelines_list() -> Response:
    """Every timeline and its current step."""
    timelines = _mock().scenarios.timelines
    return jsonify({"timelines": [timelines.state_of(name) for name in timelines.specs]})


def _timeline(action: Callable[[], dict[str, Any]]) -> Any:
    try:
        return jsonify(action())
    except ScenarioError as exc:
        return _refused(404 if "no such timeline" in exc.reason else 409, exc)


def timeline_show(name: str) -> Any:
    """Where one timeline is."""
    return _timeline(lambda: _mock().scenarios.timelines.state_of(name))


def timeline_next(name: str) -> Any:
    """The next step (step 1 when not started); 409 at the last step."""
    return _timeline(lambda: _mock().scenarios.go(name))


def timeline_step(name: str, number: int) -> Any:
    """Go to step ``number`` (0: not started)."""
    return _timeline(lambda: _mock().scenarios.go(name, number))


def timeline_reset(name: str) -> Any:
    """Back to not started."""
    return _timeline(lambda: _mock().scenarios.go(name, 0))


def reset() -> Response:
    """What the pytest plugin does between tests: keys back to the accounts file, limits and
    usage forgotten, the journal emptied, sequences from their start, no timeline started."""
    _mock().reset()
    return jsonify({"reset": True})


def register(blueprint: Blueprint, protect: Protect) -> None:
    """Add the endpoints to the admin blueprint, each behind ``protect`` (the admin token)."""
    rules: list[tuple[str, Callable[..., Any], str]] = [
        ("/requests", requests_list, "GET"),
        ("/requests", requests_clear, "DELETE"),
        ("/sequences", sequences_list, "GET"),
        ("/sequences", sequence_add, "POST"),
        ("/sequences/<name>", sequence_remove, "DELETE"),
        ("/timelines", timelines_list, "GET"),
        ("/timelines/<name>", timeline_show, "GET"),
        ("/timelines/<name>/next", timeline_next, "POST"),
        ("/timelines/<name>/step/<int:number>", timeline_step, "POST"),
        ("/timelines/<name>/reset", timeline_reset, "POST"),
        ("/reset", reset, "POST"),
    ]
    for rule, view, method in rules:
        endpoint = f"{view.__name__}"
        blueprint.add_url_rule(rule, endpoint, protect(view), methods=[method])
