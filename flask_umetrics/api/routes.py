"""The router every REST module registers its routes on."""

from __future__ import annotations

from .router import ApiRouter

router = ApiRouter("umetrics_api", __name__)
