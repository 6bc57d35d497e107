"""Every problem keyturn writes is typed for the deployment (``keyturn.answer.problem_type``).

A face that renders an answer without the deployment's ``public_url`` would send the URN
where every other face sends the address of the code's page: the consumer could open one
refusal's type and not the next. So every call, anywhere in the package, of the functions
that write a problem body passes ``public_url`` along (``ApiProblem`` carries a code, and
the service's one handler types it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from keyturn.answer import problem_type

SOURCE = Path(__file__).resolve().parents[2] / "src" / "keyturn"
WRITERS = {"render", "render_error", "problem", "catalogued", "raw_answer", "invalid"}


def _calls() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
                node.func.id in WRITERS
            ):
                found.append((str(path.relative_to(SOURCE)), node.lineno, ast.unparse(node)))
    return found


def test_some_writers_are_found() -> None:
    assert len(_calls()) >= 15


@pytest.mark.parametrize(("module", "line", "call"), _calls())
def test_every_problem_written_is_given_the_public_url(module: str, line: int, call: str) -> None:
    assert "public_url" in call, f"{module}:{line}: {call}"


def test_the_type_is_the_page_or_the_urn() -> None:
    assert problem_type("key_expired") == "urn:keyturn:outcome:key_expired"
    assert problem_type("key_expired", "https://a.example/base/") == (
        "https://a.example/base/outcomes/key_expired")
    assert problem_type("http_418", "https://a.example") == "urn:keyturn:outcome:http_418"
