"""Plain-text tables for the plan: text columns left-aligned, numbers right-aligned."""

from __future__ import annotations


def text_table(header: list[str], rows: list[list[str]], text_columns: int = 1) -> list[str]:
    """Text columns first, left-aligned; numbers after them, right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        aligned = [
            cell.ljust(width) if index < text_columns else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(aligned).rstrip()

    return [line(header), *(line(row) for row in rows)]
