"""JSON text with exact money: Decimal values are written as the numbers they hold."""

from __future__ import annotations

from typing import Any

import simplejson


def dumps_exact(obj: Any) -> str:
    """Return `obj` as JSON text, Decimal values written digit for digit (never via float)."""
    return simplejson.dumps(obj, use_decimal=True, ensure_ascii=False)
