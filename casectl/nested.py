"""Nested JSON objects: dotted paths and deep merges (case data, block data, results)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def set_path(target: dict[str, Any], path: Sequence[str], value: Any) -> None:
    """set_path(d, ('a', 'b'), 1) makes d['a']['b'] == 1, creating (or replacing non-object) parents."""
    for part in path[:-1]:
        inner = target.get(part)
        if not isinstance(inner, dict):
            inner = target[part] = {}
        target = inner
    target[path[-1]] = value


def deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A new dict: `base` with `changes` merged in, objects merged key by key."""
    merged = dict(base)
    for k, v in changes.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = deep_merge(merged[k], v)
        else:
            merged[k] = v
    return merged
