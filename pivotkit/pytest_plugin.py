"""pytest plugin of pivotkit (registered under the pytest11 entry point)."""
