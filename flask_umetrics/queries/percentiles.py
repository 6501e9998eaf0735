"""Exact percentiles of a numeric property per (group, bucket), the same number on every store.

Definition: of the ``n`` numbers of a cell sorted ascending (``x_0 .. x_{n-1}``), percentile
``p`` is at position ``k = (n - 1) * p / 100``: ``x_lo * (1 - f) + x_hi * f`` with
``lo = floor(k)``, ``hi = ceil(k)``, ``f = k - lo``. That is linear interpolation between the
closest ranks (Hyndman & Fan type 7: PostgreSQL's ``percentile_cont``, ClickHouse's
``quantileExactInclusive``, numpy's default). ``k`` is kept as the integer ``(n - 1) * p`` over
100, and the same float operations run in the same order on SQLite, PostgreSQL and ClickHouse
(``engines/clickhouse/trends.py``), so the results are equal to the last bit. Events without the
property (or with a non-number) are left out; a cell without numbers is 0, as for ``avg``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, case, func, literal, select
from sqlalchemy.sql import ColumnElement, Select, Subquery

#: The percentile maths and their ``p``.
PERCENTILES: dict[str, int] = {"median": 50, "p75": 75, "p90": 90, "p95": 95, "p99": 99}


def percentile_cells(grp: ColumnElement[Any], rows: Subquery, p: int) -> Select[Any]:
    """``(grp, bucket, value)`` per cell of ``rows`` (``bucket``, ``number``) grouped by ``grp``:
    each number ranked in its cell by window functions, then the two closest ranks weighted."""
    cell = (grp, rows.c.bucket)
    ranked = (
        select(
            grp.label("grp"),
            rows.c.bucket,
            rows.c.number,
            (func.row_number().over(partition_by=cell, order_by=rows.c.number) - 1).label("rank"),
            func.count().over(partition_by=cell).label("n"),
        )
        .where(rows.c.number.is_not(None))
        .subquery("ranked")
    )
    k = (ranked.c.n - 1) * p
    low = k // 100
    high = (k + 99) // 100
    f = (k % 100).cast(Float) / literal(100.0, Float)
    zero = literal(0.0, Float)
    value = func.sum(
        case((ranked.c.rank == low, ranked.c.number * (1 - f)), else_=zero)
    ) + func.sum(case((ranked.c.rank == high, ranked.c.number * f), else_=zero))
    return select(ranked.c.grp, ranked.c.bucket, value.label("value")).group_by(
        ranked.c.grp, ranked.c.bucket
    )


def clickhouse_percentile(numbers: str, p: int) -> str:
    """The same in ClickHouse SQL, as an aggregate over the column ``numbers`` (NULL when the
    cell has no numbers)."""
    xs = f"arraySort(groupArray({numbers}))"
    k = f"((length({xs}) - 1) * {p})"
    f = f"(toFloat64({k} % 100) / 100.0)"
    return (
        f"if(empty({xs}), NULL, {xs}[intDiv({k}, 100) + 1] * (1 - {f}) + "
        f"{xs}[intDiv({k} + 99, 100) + 1] * {f})"
    )
