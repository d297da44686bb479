"""Column names made valid for Delta tables."""

from __future__ import annotations

import re
from collections.abc import Iterable


class ColumnNameCollision(ValueError):
    pass


def delta_column_name(name: str) -> str:
    """Spaces and characters Delta rejects (`` ,;{}()\\n\\t=``, and any other punctuation) become
    underscores; a leading digit gets an underscore in front. Letters and digits of every script are
    kept (``prénom``, ``Straße``): Delta accepts them, and mapping them to ``_`` made distinct names
    collide."""
    cleaned = re.sub(r"[^\w]+", "_", name.strip()).strip("_") or "_"
    return f"_{cleaned}" if cleaned[0].isdigit() else cleaned


def delta_column_names(names: Iterable[str], *, table: str) -> dict[str, str]:
    """Source name -> Delta name; two source columns that would land on one Delta name is an error."""
    mapping: dict[str, str] = {}
    taken: dict[str, str] = {}
    for name in names:
        target = delta_column_name(name)
        other = taken.get(target.lower())  # Delta column names are case-insensitive
        if other is not None:
            raise ColumnNameCollision(
                f"{table}: source columns {other!r} and {name!r} both become {target!r} in Delta; "
                "rename one at the source, or exclude one with a view"
            )
        taken[target.lower()] = name
        mapping[name] = target
    return mapping
