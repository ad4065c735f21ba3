"""Tests of pivotkit.docs: the reference is derived from the contract and kept current."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pivotkit.cli import main
from pivotkit.contract import Contract, load_contract
from pivotkit.docs import render_reference

from .conftest import ROOT


def test_committed_reference_matches_the_contract() -> None:
    """docs/reference.md is exactly what `pivotkit docs` generates from schemas/."""
    committed = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    assert committed == render_reference(load_contract()), "run `pivotkit docs`"


def test_reference_lists_every_operation_and_schema() -> None:
    """Each operation and each schema file has its own section."""
    contract = load_contract()
    text = render_reference(contract)
    for op in contract.operations.values():
        assert f"### `{op.operation_id}`: {op.method} `{op.path}`" in text
    for path in contract.directory.glob("*.json"):
        assert f"### {path.name}\n" in text


def test_a_path_changed_in_the_contract_changes_the_docs(
    schemas_copy: Path, tmp_path: Path
) -> None:
    """Docs derive from the contract: edit a path in openapi.yaml and the reference follows."""
    openapi = schemas_copy / "openapi.yaml"
    openapi.write_text(openapi.read_text().replace("/v1/api/v1/days", "/v1/api/v1/calendar"))
    text = render_reference(Contract.load(schemas_copy))
    assert "GET `/v1/api/v1/calendar`" in text and "/v1/api/v1/days" not in text
    out = tmp_path / "ref.md"
    runner = CliRunner()
    missing = runner.invoke(main, ["docs", "--check", "--out", str(out)])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    assert runner.invoke(main, ["docs", "--out", str(out)]).exit_code == 0  # the bundled one
    changed = ["--schemas", str(schemas_copy), "--out", str(out)]
    stale = runner.invoke(main, ["docs", "--check", *changed])
    assert stale.exit_code == 1 and "out of date" in stale.output
    assert "/v1/api/v1/calendar" not in out.read_text(encoding="utf-8")  # --check writes nothing
    assert runner.invoke(main, ["docs", *changed]).exit_code == 0
    assert "GET `/v1/api/v1/calendar`" in out.read_text(encoding="utf-8")
    fresh = runner.invoke(main, ["docs", "--check", *changed])
    assert fresh.exit_code == 0, fresh.output


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize(
    "document",
    ["README.md", "ARCHITECTURE.md", "CONTRIBUTING.md", "docs/reference.md", "examples/README.md"],
)
def test_every_link_of_the_docs_resolves(document: str) -> None:
    """Each relative link of a shipped document names a file that exists and, for a
    `#fragment`, a heading of that file (the reference once linked to a missing API.md)."""
    path = ROOT / document
    text = path.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links or document != "docs/reference.md"
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue  # http(s), mailto
        target, _, fragment = link.partition("#")
        file = (path.parent / target).resolve() if target else path
        assert file.exists(), f"{document}: {link} names a missing file"
        if fragment:
            headings = re.findall(r"^#+ (.+)$", file.read_text(encoding="utf-8"), flags=re.M)
            assert fragment in {_anchor(h) for h in headings}, f"{document}: no heading #{fragment}"


def test_docs_check_on_a_missing_file_says_it_is_missing(tmp_path: Path) -> None:
    """`pivotkit docs --check` on a file that does not exist: one line saying so and how to
    make it (not "out of date"), exit 1, and the file is still not there."""
    missing = tmp_path / "docs" / "reference.md"
    result = subprocess.run(
        [sys.executable, "-c", "from pivotkit.cli import main; main()", "docs", "--check",
         "--out", str(missing)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: {missing} does not exist; run `pivotkit docs --out {missing}`"
    ]
    assert "out of date" not in result.stderr and not missing.exists()
