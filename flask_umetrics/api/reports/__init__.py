"""Report routes under ``/api/query/...``; importing each module registers its routes."""

from . import adhoc, attribution, basic, funnels, sessions  # noqa: F401
