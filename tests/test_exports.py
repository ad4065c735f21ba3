"""The package's public surface is explicit."""

from __future__ import annotations

import pivotkit


def test_all_matches_public_names() -> None:
    """__all__ lists exactly the public names the package re-exports."""
    public = {name for name in vars(pivotkit) if not name.startswith("_")} - {
        "annotations",
        "contract",
        "errors",
        "fixtures",
        "check",
        "cli",
    }
    public = {n for n in public if not isinstance(getattr(pivotkit, n), type(pivotkit))}
    assert set(pivotkit.__all__) - {"__version__"} == public
