"""How the book names and colours things: one place for every chapter.

* :data:`METHOD_LABELS` / :func:`method_label`: the paper's names of the methods (long form,
  legends and table rows), :data:`SHORT_NAMES` the short form (CE, Act+Jac).
* :data:`METHOD_COLORS` / :func:`method_color`: one colour per method across the whole book
  (Okabe-Ito, safe for colour-blind readers), :func:`penalty_colors` for Jacobian-penalty
  strengths, :data:`VERDICT_COLORS` for the verdict words.
* :func:`book_style`: matplotlib settings for every figure -- 2x resolution (sharp on a
  high-density screen), text no smaller than 9 px at the book's column width.
"""
from __future__ import annotations

import hashlib

import pandas as pd

METHOD_LABELS = {
    "ce": "Regular Cross-Entropy (CE) training",
    "act+ce": "Match Activations + CE",
    "jac+ce": "Match Jacobians + CE",
    "act+jac+ce": "Match {Activations + Jacobians} + CE",
    "act": "Match Activations only",
    "act+jac": "Match {Activations + Jacobians}",
    "noisy-act": "Match Activations at noisy inputs (Prop 1, left side)",
    "noisy-act+ce": "Match Activations at noisy inputs + CE",
    "act+fulljac": "Match {Activations + projected full Jacobian}",
    "act+fulljac+ce": "Match {Activations + projected full Jacobian} + CE",
    "ce+jacnorm": "CE + Jacobian-norm penalty on the label logit (Prop 2, one row)",
    "ce+logjacnorm": "CE + Jacobian-norm penalty on the label's log-softmax (Eq 3)",
    "kd": "Hinton knowledge distillation (KL at temperature T + CE)",
    "at+ce": "Attention transfer (Zagoruyko & Komodakis) + CE",
    "act+fdjac": "Match {Activations + full Jacobian (finite differences)}",
    "act+fdjac+ce": "Match {Activations + full Jacobian (finite differences)} + CE",
}
"""The paper's name of each method (lakt's method names as keys)."""

SHORT_NAMES = {"ce": "CE", "act": "Act", "act+ce": "Act+CE", "jac+ce": "Jac+CE", "act+jac": "Act+Jac",
               "act+jac+ce": "Act+Jac+CE", "noisy-act": "Noisy Act", "noisy-act+ce": "Noisy Act+CE",
               "kd": "KD", "at+ce": "AT+CE", "act+fdjac": "Act+FDJac", "act+fdjac+ce": "Act+FDJac+CE",
               "act+fulljac": "Act+FullJac", "act+fulljac+ce": "Act+FullJac+CE", "ce+jacnorm": "CE+JacNorm",
               "ce+logjacnorm": "CE+LogJacNorm"}
"""The short names the book's tables and answers use."""

METHOD_COLORS = {
    "ce": "#000000",          # black: the baseline everything is compared with
    "act": "#E69F00",         # orange
    "act+ce": "#56B4E9",      # sky blue
    "jac+ce": "#009E73",      # green
    "act+jac": "#D55E00",     # vermilion: the paper's proposal
    "act+jac+ce": "#0072B2",  # blue
    "kd": "#CC79A7",          # purple
    "at+ce": "#999999",       # grey
    "act+fdjac": "#8B4513",   # brown
    "act+fdjac+ce": "#A0522D",
    "noisy-act": "#F0E442",   # yellow
    "noisy-act+ce": "#BDB000",
    "act+fulljac": "#6A3D9A",
    "act+fulljac+ce": "#9E7BC4",
    "ce+jacnorm": "#117733",
    "ce+logjacnorm": "#44AA99",
}
"""One colour per method, the same in every figure of the book (Okabe-Ito first)."""

VERDICT_COLORS = {"holds": "#d9f2d9", "not shown": "#fff3c4", "reversed": "#f8d7d3",
                  "not testable here": "#e8e8e8", "not run": "#e8e8e8"}
"""Background of a verdict word in a table."""

BOOK_WIDTH = 7.0
"""Inches: at 100 dpi a figure this wide fits the book's text column (about 750 px at a
1,280 px window) without being scaled down, so its fonts render at their nominal size."""

BOOK_RC = {"figure.dpi": 100, "savefig.dpi": 100, "font.size": 11, "axes.titlesize": 11,
           "axes.labelsize": 11, "xtick.labelsize": 10, "ytick.labelsize": 10, "legend.fontsize": 10,
           "legend.title_fontsize": 10, "figure.titlesize": 12, "figure.figsize": (BOOK_WIDTH, 4.2)}
"""Every figure of the book: no text below 10 pt at 100 dpi (9 px and more once scaled to the column)."""


def split_row(row) -> tuple[str, str]:
    """(method, weight text or "") of a table row such as "act+jac γ=100"."""
    method, _, gamma = str(row).partition(" γ=")
    return method, gamma


def method_label(row) -> str:
    """The paper's name of a method, or of a row "method γ=w" with its weight."""
    method, gamma = split_row(row)
    return METHOD_LABELS.get(method, method) + (f" (γ = {gamma})" if gamma else "")


def method_color(row) -> str:
    """The book's colour of a method (a row's weight does not change it)."""
    method, _ = split_row(row)
    return METHOD_COLORS.get(method, "#555555")


def penalty_colors(penalties) -> dict:
    """Jacobian-penalty strength -> colour, from light (none) to dark (strongest), in every chapter."""
    import matplotlib as mpl

    values = sorted(set(float(p) for p in penalties))
    cmap = mpl.colormaps["viridis_r"]
    n = max(len(values) - 1, 1)
    return {p: mpl.colors.to_hex(cmap(0.15 + 0.85 * i / n)) for i, p in enumerate(values)}


def book_style() -> None:
    """Apply :data:`BOOK_RC` and 2x (retina) inline figures; call once per chapter."""
    import matplotlib as mpl

    mpl.rcParams.update(BOOK_RC)
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("retina")
    except ImportError:  # outside IPython: nothing to set
        pass

# ---------------------------------------------------------------- tables: one look for every table of the book
# How the book shows a table or a provenance line: one look everywhere, readable at 1,280 px.
# 
# Every table of the chapters goes through :func:`styled` (fixed decimals, padded cells,
# headers written 0, 0.1, 0.2 rather than 0.000000, "mean ± std" on one line), and every
# :func:`lakt.analysis.report.provenance` line through :func:`provenance_note` (a short
# summary that wraps, the full line folded beneath it), so no output is wider than the
# book's text column.

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


def live(draw, show_controls: bool = True, **controls) -> None:
    """Show ``draw(**values)``'s figure under the ``controls`` (ipywidgets), redrawn when one moves.

    ``draw`` takes one keyword per control and returns a matplotlib Figure, Axes or list of
    Axes. The first drawing is an ordinary output of the cell -- what the static book shows
    under the stored controls -- and a moved control replaces it in place (``update_display_data``), so a live
    kernel (JupyterLab) explores while the book stays a page. ``show_controls=False``: the controls
    were shown by :func:`controls` in the cell before, so this cell's only output is the figure (a
    figure caption then captions the figure alone).

    Why not ``ipywidgets.interact``: it draws into an Output widget, and for those a headless
    executor (nbclient, under papermill and the book build) sends a comm message on the shell
    channel while it is waiting on that channel for the cell's reply; under load the reply is
    then missed and the execution never ends (CI hung on chapter 1's slider; a one-slider
    notebook hung in 2 of 5 papermill runs on 2 loaded cores, the same one without the widget
    in none of 25).
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    def render():
        drawn = draw(**{name: control.value for name, control in controls.items()})
        if isinstance(drawn, (list, tuple)) or hasattr(drawn, "flat"):  # several Axes: their figure
            drawn = list(getattr(drawn, "flat", drawn))[0]
        figure = getattr(drawn, "figure", drawn) if drawn is not None else plt.gcf()
        plt.close(figure)  # shown once, by display, not again by the inline backend
        return figure

    if show_controls:
        display(widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap")))
    shown = display(render(), display_id=True)
    for control in controls.values():
        control.observe(lambda change: shown.update(render()), names="value")


def controls(**widgets_by_name) -> dict:
    """Show ipywidgets controls in a row and return them by name, for :func:`live` in the next cell
    (``live(draw, show_controls=False, **controls)``)."""
    import ipywidgets as widgets
    from IPython.display import display

    display(widgets.HBox(list(widgets_by_name.values()), layout=widgets.Layout(flex_flow="row wrap")))
    return widgets_by_name

