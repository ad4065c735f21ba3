"""The structure of openapi.yaml that pivotkit reads, checked at load: one clear line per fault."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from pivotkit.errors import ContractFileError
from pivotkit.pointers import to_pointer

STRUCTURE_SCHEMA_PATH = Path(__file__).with_name("contract-structure.schema.json")


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads(STRUCTURE_SCHEMA_PATH.read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


def message_of(error: ValidationError) -> str:
    """The failing keyword's ``x-message`` (or its schema's), else jsonschema's own text."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    hint = schema.get("x-message")
    detail = error.message
    if len(detail) > 160:
        detail = detail[:157] + "..."
    return f"{hint} ({detail})" if hint else detail


def check_structure(openapi: Any, path: Path) -> None:
    """Raise ContractFileError (file and JSON pointer) when ``openapi`` is not the shape
    pivotkit reads (see ``contract-structure.schema.json``)."""
    if not isinstance(openapi, dict):
        raise ContractFileError(
            path, "not an OpenAPI document (a mapping with openapi, paths, components)", pointer=""
        )
    error = best_match(_validator().iter_errors(openapi))
    if error is None:
        return
    raise ContractFileError(path, message_of(error), pointer=to_pointer(error.absolute_path))
