"""docs/doctor.md shows the catalogue and the doctor as they are."""

from __future__ import annotations

from pathlib import Path

from tests.doctor.doc_examples import reports, table

PAGE = (Path(__file__).parents[2] / "docs" / "doctor.md").read_text("utf-8")


def test_the_provider_table_is_the_catalogue() -> None:
    assert table() in PAGE, "regenerate it: python -m tests.doctor.doc_examples"


def test_the_three_markdown_reports_are_what_the_doctor_prints() -> None:
    shown = list(reports())
    assert {provider for provider, _, _ in shown} == {"openai", "anthropic", "github"}
    for _, command, report in shown:
        assert f"$ {command}" in PAGE
        assert report in PAGE, "regenerate them: python -m tests.doctor.doc_examples"
    codes = "\n".join(report for _, _, report in shown)
    for code in ("insufficient_permissions", "rejected_as_sent", "resource_hidden"):
        assert f"`{code}`" in codes
    assert "`server_rejected_key`" not in codes  # in none of these is the key the problem
