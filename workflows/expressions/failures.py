"""
The internal evaluation failure of the expression languages.

Helpers deep inside evaluation raise :class:`EvalError` with a Go-like message and no
expression text; the public entry points (``evaluate``, ``evaluate_when``, ...) catch it and
raise :class:`workflows.errors.ExpressionError`, which names the expression.
"""

from __future__ import annotations


class EvalError(Exception):
    """A parse or evaluation failure; the message is shown to users inside an ExpressionError."""
