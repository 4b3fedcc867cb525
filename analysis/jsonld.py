"""Schema.org types declared in JSON-LD blocks.

``jsonld_types``: sorted set of the ``@type`` values of the top-level objects of each valid
block, including the objects of a top-level ``@graph``, each member of a list-valued ``@type``
counted. A block that is not strict JSON (comments, trailing commas, NaN, ...) is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not strict JSON: {name}")


def parse_strict_json(text: str) -> Any:
    """json.loads that refuses NaN/Infinity; raises ValueError for anything not strict JSON."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def _types_of(obj: Any) -> list[str]:
    if not isinstance(obj, dict):
        return []
    value = obj.get("@type")
    values = value if isinstance(value, list) else [value]
    # JSON escapes can spell lone surrogates; keep every name encodable as UTF-8.
    return [
        v.encode("utf-8", "replace").decode("utf-8")
        for v in values
        if isinstance(v, str) and v.strip()
    ]


def _top_level_objects(document: Any) -> list[Any]:
    roots = document if isinstance(document, list) else [document]
    objects: list[Any] = []
    for root in roots:
        objects.append(root)
        if isinstance(root, dict):
            graph = root.get("@graph")
            objects.extend(graph if isinstance(graph, list) else [graph])
    return objects


def jsonld_types(blocks: Iterable[str]) -> list[str]:
    """Sorted distinct @type values over the text of each <script type=application/ld+json>."""
    found: set[str] = set()
    for text in blocks:
        try:
            document = parse_strict_json(text)
        except ValueError:
            continue
        for obj in _top_level_objects(document):
            found.update(_types_of(obj))
    return sorted(found)
