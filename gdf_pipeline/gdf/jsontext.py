"""JSON text with exact money: Decimal values are written as the numbers they hold."""

from __future__ import annotations

from typing import Any

import simplejson


def dumps_exact(obj: Any) -> str:
    """Return `obj` as JSON text, Decimal values written digit for digit (never via float)."""
    return simplejson.dumps(obj, use_decimal=True, ensure_ascii=False)


def dumps_escaped(obj: Any) -> str:
    """Return `obj` as JSON text like `dumps_exact`, in ASCII and with NaN allowed.

    For values parsed from text that was not strict JSON: a lone surrogate, which no UTF-8
    text can hold, is written as its escape, and NaN or Infinity as the sender wrote them.
    """
    return simplejson.dumps(obj, use_decimal=True, allow_nan=True)
