"""Formulas over lettered trend series (``A/B*100``), parsed safely: Python's parser builds the
tree, and only numbers, the letters of the series, ``+ - * /``, unary minus and parentheses are
accepted; the tree is then evaluated by this module, never by ``eval``. ``x / 0`` is 0, as a
chart would show nothing there (JSON has no infinity)."""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping

from ..errors import ValidationError

MAX_LENGTH = 200
_OPERATORS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b if b else 0.0,
}

Formula = Callable[[Mapping[str, float]], float]


def parse_formula(text: str, letters: str) -> Formula:
    """A function of the series' values per bucket; a ``ValidationError`` naming ``formula``
    for anything else than arithmetic over ``letters``."""
    if not text.strip() or len(text) > MAX_LENGTH:
        raise ValidationError("formula", f"must be 1-{MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ValidationError("formula", f"is not arithmetic: {exc.msg}") from None
    return _compile(tree, letters)


def _compile(node: ast.expr, letters: str) -> Formula:
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        apply = _OPERATORS[type(node.op)]
        left, right = _compile(node.left, letters), _compile(node.right, letters)
        return lambda values: apply(left(values), right(values))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _compile(node.operand, letters)
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        return lambda values: sign * inner(values)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        if isinstance(node.value, bool):
            raise ValidationError("formula", "only numbers, series letters, + - * / and ( )")
        number = float(node.value)
        return lambda values: number
    if isinstance(node, ast.Name) and len(node.id) == 1 and node.id in letters:
        name = node.id
        return lambda values: values[name]
    if isinstance(node, ast.Name):
        raise ValidationError("formula", f"unknown series {node.id!r}; use {', '.join(letters)}")
    raise ValidationError("formula", "only numbers, series letters, + - * / and ( ) are allowed")
