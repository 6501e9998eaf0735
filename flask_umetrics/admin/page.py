"""What a dashboard page shows: charts, each with its numbers as a table and a CSV download.

A page view builds :class:`Chart` and :class:`Table` objects from the same report functions the
REST API runs, then calls :func:`render_page`. With ``?format=csv&table=<key>`` the same view
answers that table as CSV instead of HTML, so every number on screen can be downloaded.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Response, render_template, request

from ..queries.persons import csv_safe
from .errors import AdminError
from .formatting import column_label


@dataclass
class Table:
    """Rows of numbers with named columns; ``key`` names it in CSV links and test ids."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def csv_text(self) -> str:
        # RFC 4180 line ends: with "\r\n" as the terminator the writer also quotes cells that
        # hold a lone "\r", which a spreadsheet would otherwise take as the end of the row.
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([_csv_cell(name) for name in self.columns])
        for row in self.rows:
            writer.writerow([_csv_cell(value) for value in row])
        return out.getvalue()


@dataclass
class Chart:
    """A chart drawn by ``admin.js`` with Chart.js from :meth:`spec`, plus its table.

    ``kind`` is ``line``, ``bar``, ``hbar`` (horizontal bars), ``sparkline`` or ``interval``
    (horizontal floating bars from ``[low, high]`` pairs, for confidence intervals).
    """

    key: str
    title: str
    kind: str
    labels: list[str]
    datasets: list[dict[str, Any]]
    table: Table
    stacked: bool = False
    percent: bool = False
    #: Per label (or per dataset, then per label), a dashboard URL a click on its bar or point
    #: opens (the persons behind it).
    links: list[Any] | None = None
    #: Annotations inside the chart's range (``chart_notes.py``): ``{id, at, time, text}``.
    annotations: list[dict[str, Any]] = field(default_factory=list)

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "kind": self.kind,
            "labels": self.labels,
            "datasets": self.datasets,
            "stacked": self.stacked,
            "percent": self.percent,
        }
        if self.links is not None:
            spec["links"] = self.links
        if self.annotations:
            spec["annotations"] = self.annotations
        return spec


def series_chart(
    key: str,
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    kind: str = "line",
    label_column: str = "time",
    percent: bool = False,
) -> Chart:
    """A chart of one or more named series over ``labels``, with the matching table."""
    names = list(series)
    table = Table(
        key,
        title,
        [label_column, *names],
        [[label, *(series[name][i] for name in names)] for i, label in enumerate(labels)],
    )
    datasets = [
        {"label": column_label(name), "data": list(values)} for name, values in series.items()
    ]
    return Chart(key, title, kind, list(labels), datasets, table, percent=percent)


def _csv_cell(value: Any) -> Any:
    """One CSV cell (header or body): whole floats as integers, objects as JSON, formula-like
    text quoted. Headers are the machine column names (the REST API's field names), not the
    labels the page shows, so scripts reading a download keep working when a label changes.

    Numbers are written as numbers even when negative; only text is quoted, so ``-3`` stays a
    number and ``-3 OR 1`` or ``=HYPERLINK(...)`` cannot run in the reader's spreadsheet.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (dict, list)):  # properties: the REST API's JSON, keys sorted
        value = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
    # Header cells too: a breakdown's column names are ingested values.
    return csv_safe(value) if isinstance(value, str) else value


def csv_response(table: Table) -> Response:
    filename = f"umetrics-{table.key}.csv"
    return Response(
        table.csv_text(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def render_page(
    template: str,
    *,
    title: str,
    charts: Iterable[Chart] = (),
    tables: Iterable[Table] = (),
    **context: Any,
) -> Response | str:
    """The page as HTML, or one of its tables as CSV when ``format=csv&table=<key>`` asks."""
    charts = list(charts)
    tables = list(tables)
    if request.args.get("format") == "csv":
        wanted = request.args.get("table", "")
        for table in [chart.table for chart in charts] + tables:
            if table.key == wanted:
                return csv_response(table)
        raise AdminError(404, f"table: this page has no table {wanted!r}")
    return render_template(
        f"umetrics_admin/{template}", title=title, charts=charts, tables=tables, **context
    )
