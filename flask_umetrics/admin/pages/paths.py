"""The Paths page (being built)."""

from __future__ import annotations

from flask import Blueprint, Response

from ..page import render_page
from . import Page


def view() -> Response | str:
    return render_page("placeholder.html", title="Paths")


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/paths", "paths", view)


PAGE = Page("umetrics_admin.paths", "Paths", register)
