"""The one Markdown table writer of the reports (``memtasks leaderboard`` and the bAbI table).

Hand-rolled (a dozen lines) rather than ``pandas.DataFrame.to_markdown``, which needs the extra
``tabulate`` package and pads cells with spaces, so a one-number change would rewrite every line of a
committed table in its diff.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["cell_text", "markdown_table"]


def cell_text(text: object, limit: int = 160) -> str:
    """Free text made safe inside a Markdown table cell: one line, ``|`` escaped, at most ``limit`` characters."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub Markdown table: ``header``, the rule, then one line per row (cells used as they are).

    Raises:
        ValueError: a row whose number of cells differs from the header's.
    """
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"rows[{i}] has {len(row)} cells, the header {len(header)}")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
