"""Report routes under ``/api/query/...``; importing each module registers its routes."""

from . import basic  # noqa: F401
