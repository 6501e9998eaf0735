"""Regenerate config/umetrics.ini.sample and the README's configuration table from CONFIG_KEYS.

Run after adding or changing a setting: ``.venv/bin/python tools/config_docs.py``. The test
suite checks both files cover every key.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

from flask_umetrics.config import CONFIG_KEYS

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = {
    "env": "General settings: database, URLs, scopes, ingestion limits, scheduler mode.",
    "stats": "The stat store and its scheduled collector snapshots.",
    "retention": "Data retention: how long rows are kept, and when pruning runs.",
    "ab_cookie": "The consent / A-B assignment cookie. Its encryption keys come only from the\n"
    "; environment: UMETRICS_COOKIE_KEY_CURRENT=v1 and\n"
    "; UMETRICS_COOKIE_KEY_v1=<base64 of 32 bytes>.",
    "ga4": "Google Analytics 4 connector. Credentials and the OAuth client secret come only\n"
    "; from the environment, never from this file.",
    "clickhouse": "The event store: events in the SQL database or in ClickHouse\n"
    "; (docs/clickhouse.md).",
}
BEGIN, END = "<!-- config-table:begin -->", "<!-- config-table:end -->"


def ini_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(value)
    return str(value)


def sample() -> str:
    lines = [
        "; flask-umetrics configuration sample.",
        "; Point UMETRICS_CONFIG_FILE at a copy of this file. Every key is shown commented out",
        "; with its default.",
        "; Precedence: app.config > environment (UMETRICS_<KEY>) > this file > default.",
        "; Secrets never go here: they are read from the environment only.",
        "",
    ]
    for section, doc in SECTIONS.items():
        lines += [f"; {doc}", f"[{section}]"]
        for key in CONFIG_KEYS:
            if key.section == section:
                lines += [f"; {line}" for line in textwrap.wrap(f"{key.name}: {key.doc}", 96)]
                lines += [f"; {key.option} = {ini_value(key.default)}".rstrip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def table() -> str:
    def shown(value: Any) -> str:
        if value is None:
            return "—"
        if isinstance(value, bool):
            return "`true`" if value else "`false`"
        return "`[]`" if isinstance(value, list) else f"`{value}`"

    rows = ["| key | INI | default | meaning |", "|---|---|---|---|"]
    for key in CONFIG_KEYS:
        doc = key.doc.replace("|", "\\|")
        rows.append(
            f"| `{key.name}` | `[{key.section}] {key.option}` | {shown(key.default)} | {doc} |"
        )
    return "\n".join(rows)


def main() -> None:
    (ROOT / "config" / "umetrics.ini.sample").write_text(sample())
    readme = ROOT / "README.md"
    text = readme.read_text()
    block = f"{BEGIN}\n{table()}\n{END}"
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = re.sub(r"\| key \| INI \| default \| meaning \|\n(\|.*\n)+", block + "\n", text)
    readme.write_text(text)


if __name__ == "__main__":
    main()
