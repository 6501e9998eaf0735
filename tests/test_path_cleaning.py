"""Cleaning rules give the same text on every engine: each engine's replace-all (PostgreSQL's
``regexp_replace``, ClickHouse's ``replaceRegexpAll``, SQLite's RE2 function) against Python RE2
on generated patterns of the accepted subset and generated texts (newlines, non-ASCII, edges)."""

from __future__ import annotations

import pytest
import re2
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import literal, select

from flask_umetrics.engines.clickhouse.runner import is_clickhouse
from flask_umetrics.errors import ValidationError
from flask_umetrics.queries.connection import report_connection
from flask_umetrics.queries.path_cleaning import replace_all, translate

pytestmark = pytest.mark.event_stores

ATOMS = [
    "a",
    "b",
    "/",
    "1",
    "é",
    ".",
    "\\d",
    "\\w",
    "\\s",
    "\\D",
    "\\W",
    "\\S",
    "\\.",
    "\\/",
    "[ab]",
    "[^a]",
    "[^/]",
    "[a-z0-9]",
    "[\\d/]",
    "[\\s-]",
    "[^\\w]",
]
QUANTIFIERS = ["", "", "*", "+", "?", "{2}", "{1,}", "{0,2}"]

pieces = st.tuples(st.sampled_from(ATOMS), st.sampled_from(QUANTIFIERS)).map("".join)
patterns = st.tuples(
    st.sampled_from(["", "^"]),
    st.lists(pieces, min_size=1, max_size=4).map("".join),
    st.sampled_from(["", "$"]),
).map("".join)
texts = st.text(alphabet="ab/1é. \n-_Z9", max_size=12)


def engine_replace(text: str, pattern: str, replacement: str) -> str:
    if is_clickhouse():
        from flask_umetrics.engines.clickhouse.expressions import Params
        from flask_umetrics.engines.clickhouse.runner import rows

        params = Params()
        sql = (
            f"SELECT replaceRegexpAll({params.bind(text, 'String')}, "
            f"{params.bind(pattern, 'String')}, {params.bind(replacement, 'String')})"
        )
        return str(rows(sql, params)[0][0])
    with report_connection() as connection:
        return str(
            connection.execute(select(replace_all(literal(text), pattern, replacement))).scalar()
        )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pattern=patterns, text=texts)
def test_every_engine_replaces_like_re2(app: Flask, pattern: str, text: str) -> None:
    try:
        translated = translate(pattern, "cleaning")
    except ValidationError:
        return  # matches the empty text: refused everywhere
    expected = re2.sub(translated, "<>", text)
    with app.app_context():
        assert engine_replace(text, translated, "<>") == expected, (pattern, translated, text)
