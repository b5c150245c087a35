"""How the book names and colours things: one place for every chapter.

* :data:`METHOD_LABELS` / :func:`method_label`: the paper's names of the methods (long form,
  legends and table rows), :data:`SHORT_NAMES` / :func:`short_label` the short form (CE, Act+Jac).
* :data:`METHOD_COLORS` / :func:`method_color`: one colour per method across the whole book
  (Okabe-Ito, safe for colour-blind readers), :func:`penalty_colors` for Jacobian-penalty
  strengths, :data:`VERDICT_COLORS` for the verdict words.
* :func:`book_style`: matplotlib settings for every figure -- 2x resolution (sharp on a
  high-density screen), text no smaller than 9 px at the book's column width.
"""
from __future__ import annotations

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
    "ce+jacnorm": "CE + Jacobian-norm penalty (Prop 2)",
    "kd": "Hinton knowledge distillation (KL at temperature T + CE)",
    "at+ce": "Attention transfer (Zagoruyko & Komodakis) + CE",
    "act+fdjac": "Match {Activations + full Jacobian (finite differences)}",
    "act+fdjac+ce": "Match {Activations + full Jacobian (finite differences)} + CE",
}
"""The paper's name of each method (lakt's method names as keys)."""

SHORT_NAMES = {"ce": "CE", "act": "Act", "act+ce": "Act+CE", "jac+ce": "Jac+CE", "act+jac": "Act+Jac",
               "act+jac+ce": "Act+Jac+CE", "noisy-act": "Noisy Act", "noisy-act+ce": "Noisy Act+CE",
               "kd": "KD", "at+ce": "AT+CE", "act+fdjac": "Act+FDJac", "act+fdjac+ce": "Act+FDJac+CE",
               "act+fulljac": "Act+FullJac", "act+fulljac+ce": "Act+FullJac+CE", "ce+jacnorm": "CE+JacNorm"}
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
}
"""One colour per method, the same in every figure of the book (Okabe-Ito first)."""

VERDICT_COLORS = {"holds": "#d9f2d9", "partly": "#fff3c4", "does not hold": "#f8d7d3",
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


def short_label(row) -> str:
    """The short name of a method, or of a row "method γ=w" with its weight ("Act+Jac γ=100")."""
    method, gamma = split_row(row)
    return SHORT_NAMES.get(method, method) + (f" γ={gamma}" if gamma else "")


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
