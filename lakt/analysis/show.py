"""How the book shows a table or a provenance line: one look everywhere, readable at 1,280 px.

Every table of the chapters goes through :func:`styled` (fixed decimals, padded cells,
headers written 0, 0.1, 0.2 rather than 0.000000, "mean ± std" on one line), and every
:func:`lakt.analysis.report.provenance` line through :func:`provenance_note` (a short
summary that wraps, the full line folded beneath it), so no output is wider than the
book's text column.
"""
from __future__ import annotations

import hashlib

import pandas as pd

_TABLE_CSS = [
    {"selector": "", "props": "border-collapse: collapse; font-size: 0.82em; margin: 0.4em 0 0.2em 0;"},
    {"selector": "th, td", "props": "padding: 0.25em 0.5em; white-space: nowrap; border-bottom: 1px solid #ddd;"},
    {"selector": "td", "props": "text-align: right; font-variant-numeric: tabular-nums;"},
    {"selector": "th.col_heading", "props": "text-align: right; white-space: normal;"},
    {"selector": "th.row_heading, th.index_name", "props": "text-align: left; white-space: normal; min-width: 7em;"},
    {"selector": "caption", "props": "caption-side: top; text-align: left; white-space: normal; "
                                     "font-weight: 600; padding-bottom: 0.3em;"},
]
"""One look for every table of the book: padded cells, numbers right-aligned in tabular figures,
"mean ± std" kept on one line; headers and row labels wrap, the caption wraps above the table."""

_WRAP_CSS = [{"selector": "td, th.row_heading", "props": "white-space: normal; text-align: left; vertical-align: top;"}]
"""For tables of sentences (the verdict page): cells wrap, text reads left to right."""


def _header(value) -> str:
    """Column/row labels as a reader writes them: 0, 0.1, 0.5 -- not 0.000000, 0.100000."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def provenance_summary(line: str) -> str:
    """The short form of a :func:`provenance` line: preset, data, seeds and how many runs finished."""
    parts = line.split(" · ")
    keep = [p for p in parts if p.startswith(("preset ", "data ", "seeds "))]
    finished = [p.split(" (")[0] for p in parts if "runs finished" in p]
    return " · ".join(keep + finished) or line


class Shown:
    """What :func:`styled` and :func:`provenance_note` return: HTML for the book, plain text for a terminal.

    Its plain-text form is the tables' text (deterministic, unlike a Styler's repr), so a
    notebook's stored output does not change between runs.
    """

    def __init__(self, html: str, text: str):
        self.html, self.text = html, text

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


def _details(line: str) -> str:
    import html

    return (f'<details class="lakt-provenance" style="font-size: 0.8em; color: #555; max-width: 100%;">'
            f'<summary style="white-space: normal;">{html.escape(provenance_summary(line))}</summary>'
            f'<div style="white-space: normal; overflow-wrap: anywhere;">{html.escape(line)}</div></details>')


def provenance_note(line: str) -> Shown:
    """A :func:`provenance` line as a short caption that wraps, the full line folded beneath it."""
    return Shown(_details(line), line)


def _styler(table: pd.DataFrame, caption: str, decimals: int, formats=None, wrap=False, colors=None):
    uuid = "t" + hashlib.sha256((caption + table.to_string()).encode()).hexdigest()[:8]
    styler = (table.style.set_caption(caption).format(formats, precision=decimals, na_rep="–")
            .format_index(_header, axis=0).format_index(_header, axis=1)
            .set_table_styles(_TABLE_CSS + (_WRAP_CSS if wrap else [])).set_uuid(uuid))  # stable ids: diffable
    if colors:
        styler = styler.map(lambda v: f"background-color: {colors[v]}" if v in colors else "")
    return styler


def styled(table: pd.DataFrame, caption: str, decimals: int = 2, provenance: str | None = None,
           formats: dict | None = None, wrap: bool = False, colors: dict | None = None) -> Shown:
    """How every table of the book is shown: fixed decimals, padded cells, readable headers.

    A comparison from :func:`beside_paper` (columns (quantity, ...)) is split into one
    table per quantity -- *ours*, *paper*, *ours − paper* -- shown one under the other,
    so each fits the page instead of one table three times as wide. ``provenance``
    (a :func:`provenance` line) goes beneath as a short summary with the full line
    folded under it. ``formats``: per-column format strings where one precision does not fit;
    ``wrap``: let text cells wrap (tables of sentences); ``colors``: cell text -> background colour.
    """
    import html

    parts, text = [], caption
    if isinstance(table.columns, pd.MultiIndex) and table.columns.names[0] == "quantity":
        parts.append(f'<p class="lakt-caption" style="font-weight: 600; margin: 0.6em 0 0 0;">{caption}</p>')
        for q in dict.fromkeys(table.columns.get_level_values(0)):
            parts.append(_styler(table[q], html.escape(q), decimals, formats, wrap, colors).to_html())
            text += f"\n{q}\n{table[q].to_string()}"
    else:
        parts.append(_styler(table, caption, decimals, formats, wrap, colors).to_html())
        text += "\n" + table.to_string()
    if provenance:
        parts.append(_details(provenance))
        text += "\n" + provenance
    return Shown('<div class="lakt-table">' + "".join(parts) + "</div>", text)
