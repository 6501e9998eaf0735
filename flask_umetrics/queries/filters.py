"""Property filters on events or persons: ``{"key", "op", "value"}``, compiled to SQL."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import and_, func, not_, or_
from sqlalchemy.sql import ColumnElement

from .sql import prop_number, prop_text

Operator = Literal[
    "eq",
    "neq",
    "contains",
    "not_contains",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "not_in",
    "is_set",
    "is_not_set",
]
_NUMERIC = {"gt", "gte", "lt", "lte"}


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class PropertyFilter(BaseModel):
    """One condition on a top-level property. Text comparisons use the JSON value's text
    (``true``, ``5``, ``pro``); ``gt``/``gte``/``lt``/``lte`` need a JSON number."""

    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=200)
    op: Operator = "eq"
    value: str | int | float | bool | list[str | int | float | bool] | None = None

    @model_validator(mode="after")
    def _value_fits_operator(self) -> PropertyFilter:
        if self.op in {"is_set", "is_not_set"}:
            return self
        if self.op in {"in", "not_in"}:
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"'{self.op}' needs a non-empty list as value")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"'{self.op}' needs a single value")
        if self.op in _NUMERIC and (
            isinstance(self.value, bool) or not isinstance(self.value, (int, float))
        ):
            raise ValueError(f"'{self.op}' needs a number")
        return self

    def condition(self, properties: Any) -> ColumnElement[bool]:
        text = prop_text(properties, self.key)
        if self.op == "is_set":
            return text.is_not(None)
        if self.op == "is_not_set":
            return text.is_(None)
        if self.op in _NUMERIC:
            number = prop_number(properties, self.key)
            bound = float(self.value)  # type: ignore[arg-type]
            return {
                "gt": number > bound,
                "gte": number >= bound,
                "lt": number < bound,
                "lte": number <= bound,
            }[self.op]
        if self.op in {"in", "not_in"}:
            values = [_as_text(v) for v in self.value]  # type: ignore[union-attr]
            inside = text.in_(values)
            return inside if self.op == "in" else or_(text.is_(None), not_(inside))
        value = _as_text(self.value)
        if self.op == "eq":
            return text == value
        if self.op == "neq":
            return or_(text.is_(None), text != value)
        pattern = "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        # Case-insensitive on both databases (SQLite's LIKE already is; PostgreSQL's is not).
        contains = func.lower(text).like(func.lower(pattern), escape="\\")
        return contains if self.op == "contains" else or_(text.is_(None), not_(contains))


def all_of(filters: list[PropertyFilter], properties: Any) -> list[ColumnElement[bool]]:
    return [f.condition(properties) for f in filters]


__all__ = ["PropertyFilter", "all_of", "and_"]
