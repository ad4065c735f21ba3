"""The pivotkit mock of the Pivot API: ``create_app(config)`` builds the Flask app."""

from __future__ import annotations

from mockserver.app import ADMIN_PREFIX, PivotMock, create_app

__all__ = ["ADMIN_PREFIX", "PivotMock", "create_app"]
