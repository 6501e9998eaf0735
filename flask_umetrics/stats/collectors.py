"""Stat collectors: named callables that produce one reading per scope when a snapshot runs."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..errors import ValidationError
from ..validation import validate_metric_key

#: ``collect(scope_id)`` returns the value to record, or None to record nothing this time.
CollectFunction = Callable[[str], "float | int | None"]

_FORMAT_PATTERN = re.compile(r"^(integer|number|percent|duration|currency(:[A-Z]{3})?)$")
#: Other spellings of a format, stored as the canonical one: hazo_umetrics names ``integer``
#: ``count``, so its collector definitions register unchanged.
FORMAT_ALIASES = {"count": "integer"}


@dataclass(frozen=True)
class StatCollector:
    """A registered collector. ``format`` tells displays how to show the value."""

    key: str
    collect: CollectFunction
    label: str
    format: str


class CollectorRegistry:
    """Collectors by key. An app's registry falls back to the extension-wide one (``parent``)."""

    def __init__(self, parent: CollectorRegistry | None = None) -> None:
        self._collectors: dict[str, StatCollector] = {}
        self._parent = parent

    def register(
        self,
        key: str,
        collect: CollectFunction,
        *,
        label: str | None = None,
        format: str = "number",
    ) -> StatCollector:
        validate_metric_key(key, "key")
        if not callable(collect):
            raise ValidationError("collect", "must be callable")
        format = FORMAT_ALIASES.get(format, format)
        if not _FORMAT_PATTERN.match(format):
            raise ValidationError(
                "format",
                "must be integer (or count), number, percent, duration, currency or currency:XYZ",
            )
        if key in self._collectors:
            raise ValidationError("key", f"a collector named {key!r} is already registered")
        collector = StatCollector(key, collect, label or key.replace("_", " ").capitalize(), format)
        self._collectors[key] = collector
        return collector

    def get(self, key: str) -> StatCollector | None:
        found = self._collectors.get(key)
        if found is None and self._parent is not None:
            return self._parent.get(key)
        return found

    def __iter__(self) -> Iterator[StatCollector]:
        """Every collector, extension-wide ones first, each key once (the app's own wins)."""
        seen: dict[str, StatCollector] = {}
        if self._parent is not None:
            seen.update((collector.key, collector) for collector in self._parent)
        seen.update(self._collectors)
        return iter(seen.values())

    def __len__(self) -> int:
        return sum(1 for _ in self)
