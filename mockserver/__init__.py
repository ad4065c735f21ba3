"""The pivotkit mock of the Pivot API: ``create_app(config)`` builds the Flask app."""

from __future__ import annotations

from mockserver.app import PivotMock, create_app

__all__ = [
    "PivotMock",
    "create_app",
]
