"""Docs that run: every marked block of README.md and docs/*.md runs, in order, in an empty
folder against a throwaway SQLite app (see tests/docs_blocks.py for the markers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .docs_blocks import (
    ROOT,
    MarkerError,
    Session,
    clean_environment,
    documents,
    runnable_blocks,
    this_python_bin,
)

RUNNABLE = [path for path in documents() if runnable_blocks(path)]


@pytest.mark.parametrize("document", RUNNABLE, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_marked_block_runs(document: Path, tmp_path: Path) -> None:
    env = clean_environment(this_python_bin(), pythonpath=str(ROOT))
    session = Session(tmp_path, env, this_python_bin() / "python")
    ran = 0
    for block in runnable_blocks(document):
        if block.how == "install":
            continue  # tests/test_quickstart_fresh_venv.py runs it in a fresh virtualenv
        result = session.run(block)
        ran += 1
        if block.language == "sh" and "umetrics doctor" in block.code:
            # A set-up the docs show leaves no configuration problem (notes are fine).
            assert "PROBLEM" not in result.stdout, result.stdout
            assert "\n0 problem(s)" in result.stdout, result.stdout
    assert ran > 0


def test_the_quick_start_is_marked_to_run() -> None:
    """The README's quick start is an install line, an app file, a set-up and a Python block."""
    blocks = runnable_blocks(ROOT / "README.md")
    hows = [block.how for block in blocks]
    assert hows[:4] == ["install", "file app.py", "", "app-context"]
    assert "pip install" in blocks[0].code and "flask-umetrics[" in blocks[0].code
    setup = blocks[2].code
    assert "flask --app app umetrics db upgrade" in setup
    assert "--scope" not in setup  # a new app's keys belong to the default scope
    app = blocks[1].code
    for part in (
        "SECRET_KEY",
        "@umetrics.authorizer",
        "@umetrics.subject_loader",
        "@umetrics.consent_loader",
        "stat_collector",
        "track(",
        "identify(",
        "current_anonymous_id()",
        "is_enabled(",
        "umetrics_admin.overview",
    ):
        assert part in app, part
    assert "flask_login" not in app


def test_a_marker_must_sit_right_before_a_fence(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    with pytest.raises(MarkerError, match="right before a fence"):
        runnable_blocks(path, "<!-- run -->\n\n```sh\necho hi\n```\n")
    with pytest.raises(MarkerError, match="cannot run a block"):
        runnable_blocks(path, "<!-- run -->\n```html\n<p>\n```\n")
    with pytest.raises(MarkerError, match="unknown run marker"):
        runnable_blocks(path, "<!-- run: maybe -->\n```sh\ntrue\n```\n")
    blocks = runnable_blocks(path, "text\n<!-- run: file a.py -->\n```python\nx = 1\n```\n")
    assert [(b.how, b.language, b.code, b.line) for b in blocks] == [
        ("file a.py", "python", "x = 1\n", 4)
    ]


def test_a_failing_block_fails_with_its_output(tmp_path: Path) -> None:
    path = ROOT / "README.md"
    blocks = runnable_blocks(path, "<!-- run -->\n```sh\necho before\nfalse\necho after\n```\n")
    session = Session(tmp_path, clean_environment(this_python_bin(), pythonpath=None), Path("x"))
    with pytest.raises(AssertionError, match=r"(?s)README.md:3: the sh block exited 1.*before"):
        session.run(blocks[0])
