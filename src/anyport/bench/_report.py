"""Markdown tables and number formatting shared by the benchmark scripts and ``anyport bench``."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["markdown_table", "num", "ratio", "status_text"]


def num(value: float | None, fmt: str) -> str:
    """``value`` formatted with ``fmt``, or an em dash when there is none."""
    return "—" if value is None else format(value, fmt)


def ratio(a: float | None, b: float | None) -> str:
    """``a / b`` as ``"1.23x"``, or an em dash when either is missing or ``b`` is zero."""
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def status_text(status: str, detail: str, ok: Sequence[str] = ("ok",), limit: int = 120) -> str:
    """The status column: the status, plus the start of the detail when something went wrong."""
    return status if status in ok or not detail else f"{status}: {detail[:limit]}"


def markdown_table(head: Sequence[str], align: str, rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table; ``align`` has one letter per column, ``l`` or ``r``.

    Cells are made safe for a table row: ``|`` becomes ``/`` and line breaks become spaces.
    """
    if len(align) != len(head):
        raise ValueError("one alignment letter per column")
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(marks) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in row) + " |")
    return "\n".join(lines)
