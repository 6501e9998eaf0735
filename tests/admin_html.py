"""Reading dashboard HTML in Flask test-client tests: CSRF tokens and table cells."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    """The CSRF token of the first form on the page."""
    found = _CSRF.search(html)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


class _Tables(HTMLParser):
    """Rows of one ``data-testid=table-<key>`` table: a cell's ``data-value`` if it has one,
    else its text."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.inside = False
        self.in_body = False
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None
        self.value: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and found.get("data-testid") == f"table-{self.key}":
            self.inside = True
        elif self.inside and tag == "tbody":
            self.in_body = True
        elif self.in_body and tag == "tr":
            self.rows.append([])
        elif self.in_body and tag == "td":
            self.cell = []
            self.value = found.get("data-value")

    def handle_endtag(self, tag: str) -> None:
        if self.in_body and tag == "td" and self.cell is not None:
            text = "".join(self.cell).strip()
            self.rows[-1].append(self.value if self.value is not None else text)
            self.cell = None
        elif tag == "table" and self.inside:
            self.inside = self.in_body = False

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def table_cells(html: str, key: str) -> list[list[str]]:
    """The body cells of table ``key`` (``data-value`` when set: the unrounded number)."""
    parser = _Tables(key)
    parser.feed(html)
    return parser.rows


def as_number(text: str) -> Any:
    """A ``data-value`` back as a number (None when empty)."""
    return None if text in ("", "None") else float(text)
