"""Tests of pivotkit itself, one file per module."""
