"""What a command hands back, and plain-text tables for people (`--json` is for scripts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from exchangectl.errors import EXIT_OK


@dataclass(frozen=True)
class Result:
    data: Any  # printed as JSON with --json
    text: str  # printed otherwise
    exit_status: int = EXIT_OK


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns aligned on the widest cell; '(none)' for no rows."""
    if not rows:
        return "(none)"
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def fields(pairs: Sequence[tuple[str, object]]) -> str:
    """`name: value` lines, names aligned."""
    width = max(len(name) for name, _ in pairs)
    return "\n".join(f"{name + ':':<{width + 1}} {value}" for name, value in pairs)


def enum_name(name: str, prefix: str) -> str:
    """SIDE_BUY -> BUY."""
    return name.removeprefix(prefix)
