"""The runnable code blocks of the documentation, and a runner that executes them in order.

A fenced block runs when the line before its fence is a marker comment:

- ``<!-- run -->`` before a ```` ```sh ```` block: run it with ``bash -eu -o pipefail``
  (variables it exports reach later blocks); before a ```` ```python ```` block: run it as a script.
- ``<!-- run: file NAME -->``: write the block to ``NAME`` (e.g. the quick start's ``app.py``).
- ``<!-- run: app-context -->``: run the Python block inside an app context of the app that
  ``flask`` finds in the folder (``app.py`` with ``create_app``), like ``flask shell`` would.
- ``<!-- run: install -->``: the ``pip install`` line; only the fresh-virtualenv test runs it.

Every block of one Markdown file runs in one empty folder, in document order, so a document reads
as a session a reader would type. A marker not followed by a fence is an error, so a marker cannot
silently stop applying.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_MARKER = re.compile(r"^<!--\s*run(?::\s*(?P<how>[^>]*?))?\s*-->\s*$")
_FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^`]*)$")
LANGUAGES = {"sh": "sh", "bash": "sh", "shell": "sh", "python": "python", "py": "python"}
#: Seconds one block may take (the fresh-virtualenv install is not a block of this runner).
BLOCK_TIMEOUT = 180

APP_CONTEXT_DRIVER = """\
import sys
from flask.cli import ScriptInfo

app = ScriptInfo().load_app()
with app.app_context():
    source = open(sys.argv[1], encoding="utf-8").read()
    exec(compile(source, sys.argv[2], "exec"), {"__name__": "__docs__"})
"""


@dataclass(frozen=True)
class Block:
    """One marked fenced block: where it is, how it runs, and its text."""

    path: Path
    line: int
    language: str
    how: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


class MarkerError(ValueError):
    """A run marker that does not sit right before a fenced block of a known language."""


def runnable_blocks(path: Path, text: str | None = None) -> list[Block]:
    """The marked blocks of a Markdown file, in order."""
    lines = (path.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        marker = _MARKER.match(lines[index].strip())
        if marker is None:
            index += 1
            continue
        how = (marker.group("how") or "").strip()
        fence = _FENCE.match(lines[index + 1]) if index + 1 < len(lines) else None
        if fence is None:
            raise MarkerError(f"{path}:{index + 1}: a run marker must be right before a fence")
        info = fence.group("info").strip().split()
        language = LANGUAGES.get(info[0] if info else "")
        if language is None:
            raise MarkerError(f"{path}:{index + 2}: cannot run a block of {info or 'no language'}")
        if how not in ("", "app-context", "install") and not how.startswith("file "):
            raise MarkerError(f"{path}:{index + 1}: unknown run marker {how!r}")
        if how in ("app-context",) and language != "python":
            raise MarkerError(f"{path}:{index + 1}: {how!r} needs a python block")
        end = index + 2
        while end < len(lines) and lines[end].strip() != fence.group("fence"):
            end += 1
        if end == len(lines):
            raise MarkerError(f"{path}:{index + 2}: the fenced block is not closed")
        code = "\n".join(lines[index + 2 : end]) + "\n"
        blocks.append(Block(path, index + 3, language, how, code))
        index = end + 1
    return blocks


def documents() -> list[Path]:
    """README.md and docs/*.md."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def clean_environment(python_bin: Path, *, pythonpath: str | None) -> dict[str, str]:
    """The environment of a reader's shell: no UMETRICS_*/SECRET_KEY/FLASK_* of the test run,
    ``python`` / ``flask`` / ``pip`` from ``python_bin`` first on PATH."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("UMETRICS_", "FLASK_", "PYTHON"))
        and name not in ("SECRET_KEY", "DATABASE_URL", "VIRTUAL_ENV")
    }
    env["PATH"] = f"{python_bin}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


class Session:
    """Runs blocks in one folder; exported shell variables carry over to later blocks."""

    def __init__(self, folder: Path, env: Mapping[str, str], python: Path) -> None:
        self.folder = folder
        self.env = dict(env)
        self.python = python

    def run(self, block: Block) -> subprocess.CompletedProcess[str]:
        """Run one block; raise AssertionError with its output when it fails."""
        if block.how.startswith("file "):
            name = block.how.removeprefix("file ").strip()
            (self.folder / name).write_text(block.code, encoding="utf-8")
            return subprocess.CompletedProcess([], 0, "", "")
        if block.how == "install":
            raise ValueError("install blocks run only in the fresh-virtualenv test")
        with tempfile.TemporaryDirectory() as scratch:
            source = Path(scratch, "block")
            if block.language == "sh":
                env_out = Path(scratch, "env")
                source.write_text(
                    f"set -eu -o pipefail\n{block.code}\nenv -0 > {env_out}\n", encoding="utf-8"
                )
                command = ["bash", str(source)]
            elif block.how == "app-context":
                source.write_text(block.code, encoding="utf-8")
                command = [str(self.python), "-c", APP_CONTEXT_DRIVER, str(source), block.where]
            else:
                source.write_text(block.code, encoding="utf-8")
                command = [str(self.python), str(source)]
            result = subprocess.run(
                command,
                cwd=self.folder,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=BLOCK_TIMEOUT,
                check=False,
            )
            if result.returncode != 0:
                raise AssertionError(
                    f"{block.where}: the {block.language} block exited {result.returncode}\n"
                    f"--- block\n{block.code}--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
                )
            if block.language == "sh":
                pairs = env_out.read_text(encoding="utf-8").split("\0")
                self.env = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
            return result


def this_python_bin() -> Path:
    return Path(sys.executable).parent
