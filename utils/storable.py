"""Make any value storable: the one place where text PostgreSQL (or SQLite) cannot hold is
cleaned before it reaches the database.

PostgreSQL refuses NUL in ``text`` and ``\\u0000`` in ``jsonb``; neither backend can encode a
lone surrogate; ``jsonb`` refuses ``NaN`` and ``Infinity``. Crawled pages carry all of these.
``dumps_storable`` is the engines' JSON serializer and ``clean_parameters`` runs on every
statement's parameters (see ``utils.database_access``), so no caller can forget them.
"""

from __future__ import annotations

import json
import math
from typing import Any

REPLACEMENT = "\ufffd"


def clean_text(text: str) -> str:
    """``text`` without NUL characters, with each lone surrogate replaced by U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Paired surrogates become the character they encode; lone ones become U+FFFD.
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def clean_value(value: Any) -> Any:
    """A JSON-like value with every string (keys too) cleaned and non-finite floats as None."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(key) if isinstance(key, str) else key: clean_value(item)
                for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [clean_value(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _needs_cleaning(serialized: str) -> bool:
    if "\\u0000" in serialized:
        return True
    if serialized.isascii():
        return False
    try:
        serialized.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def dumps_storable(value: Any) -> str:
    """JSON text both backends accept (the engines' ``json_serializer``)."""
    try:
        serialized = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:  # NaN or Infinity somewhere
        return json.dumps(clean_value(value), ensure_ascii=False, allow_nan=False)
    if _needs_cleaning(serialized):
        return json.dumps(clean_value(value), ensure_ascii=False, allow_nan=False)
    return serialized


def clean_parameters(parameters: Any) -> Any:
    """Statement parameters (a dict, a sequence, or a list of either) with strings cleaned.

    Returns the same object when nothing needed cleaning, so the common case costs a scan.
    """
    if isinstance(parameters, dict):
        if not any(isinstance(v, str) and _dirty(v) for v in parameters.values()):
            return parameters
        return {key: clean_text(v) if isinstance(v, str) else v
                for key, v in parameters.items()}
    if isinstance(parameters, list | tuple):
        if not parameters:
            return parameters
        if isinstance(parameters[0], dict | list | tuple):  # executemany
            cleaned = [clean_parameters(row) for row in parameters]
            if all(new is old for new, old in zip(cleaned, parameters, strict=True)):
                return parameters
            return type(parameters)(cleaned) if isinstance(parameters, tuple) else cleaned
        if not any(isinstance(v, str) and _dirty(v) for v in parameters):
            return parameters
        cleaned = [clean_text(v) if isinstance(v, str) else v for v in parameters]
        return tuple(cleaned) if isinstance(parameters, tuple) else cleaned
    return parameters


def _dirty(text: str) -> bool:
    return clean_text(text) is not text
