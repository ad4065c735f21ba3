"""Fixtures of the examples: the importer under test (tests/test_timelines.py swaps in the
planted bug to show the example tests catch it)."""

from __future__ import annotations

import pytest
from importer import Importer


@pytest.fixture
def importer_class() -> type[Importer]:
    """The importer the example tests drive."""
    return Importer
