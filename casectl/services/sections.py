"""A part of `show`: what each module contributes to a case's page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Section:
    """A part of `show`: its JSON value and the lines people read."""

    title: str
    json: Any
    lines: list[str] = field(default_factory=list)
