"""JSON-schema building blocks shared by the hand-written custom-resource schemas
(crd_schemas.py, trainer_schemas.py)."""

from __future__ import annotations

from typing import Any

OBJECT: dict[str, Any] = {"type": "object"}
STRING_MAP: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}
INT32: dict[str, Any] = {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}


def _closed(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema
