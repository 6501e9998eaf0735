"""Small derived tables built in SQL (no temporary tables, the same on both databases)."""

from __future__ import annotations

from sqlalchemy import Integer, literal, select, union_all
from sqlalchemy.sql import Subquery


def index_table(count: int, name: str = "idx") -> Subquery:
    """A one-column table (``idx``) of the integers ``0 .. count-1`` (empty when count < 1)."""
    if count < 1:
        return select(literal(-1, Integer).label("idx")).where(literal(1) == 0).subquery(name)
    if count == 1:
        return select(literal(0, Integer).label("idx")).subquery(name)
    rows = [select(literal(i, Integer).label("idx")) for i in range(count)]
    return union_all(*rows).subquery(name)
