"""Results at a glance: each claim of the paper, the paper's number, ours, and a computed verdict.

The book's verdict page calls these functions on what the chapters measure, so no verdict is
typed by hand. Four words only:

* **holds** -- measured as the paper states it (an experiment: the claimed winner wins at
  least half the cells beyond the seeds' spread and loses none; see
  :func:`lakt.analysis.readings.verdict`);
* **partly** -- true in some of the cases the claim covers, not all;
* **does not hold** -- the measurement contradicts it, or shows no effect beyond the spread
  (a tie is no evidence for "A beats B");
* **not testable here** -- the data or runs it needs are not available (CIFAR-100), or a
  comparison has one seed and so no spread to call it against.

Question letters are the book's everywhere: (a) distillation beats CE at ≤ 100 examples per
class, (b) Act+Jac beats Act there, (c) a larger Jacobian penalty makes a net more accurate
under input noise (Table 3's "better for robustness"; whether it flattens the accuracy-vs-noise
curve is reported beside it), (d) squared-error distillation beats Hinton KD.
"""
from __future__ import annotations

import pandas as pd

from .readings import _tally, robustness_verdict, transfer_findings, verdict

WORDS = ("holds", "partly", "does not hold", "not testable here")

"""Presets whose committed Jacobian runs were trained with the batch-coupled student gradient,
before the per-sample fix (issue 12); their Jacobian rows are marked wherever they are shown."""

BATCH_COUPLED_NOTE = "trained with the batch-coupled gradient, before the per-sample fix"


def batch_coupled(preset: str, configs=()) -> bool:
    """Were this preset's Jacobian-matching students trained before the per-sample fix?

    The run configs decide when given (``RunConfig.batch_statistics == "coupled"`` on a run
    that takes the student's input gradient); without them, the preset's own setting does.
    """
    from ..runs import get_preset
    from ..runs.config import uses_student_gradient

    configs = [c for c in configs if uses_student_gradient(c.to_dict())]
    if configs:
        return any(c.batch_statistics == "coupled" for c in configs)
    return get_preset(preset).batch_statistics == "coupled"


def identity(max_relative_residual: float, tol: float = 1e-9) -> str:
    """Section 3: f(x) = ∇f(x)ᵀx for bias-free ReLU nets -- holds when the worst residual is rounding."""
    return "holds" if max_relative_residual < tol else "does not hold"


def exact_taylor(jittered_max: float, raw_kink_fraction: float, tol: float = 1e-12) -> str:
    """Section 3: Eq 1's remainder is exactly 0 for small steps (piecewise-linear nets).

    ``jittered_max``: the largest relative remainder at the smallest steps on inputs off the
    kinks; ``raw_kink_fraction``: the share of raw images on a kink (tied max-pool windows),
    where no ε > 0 works. Holds on all inputs, partly when some sit on a kink.
    """
    if jittered_max >= tol:
        return "does not hold"
    return "partly" if raw_kink_fraction > 0 else "holds"


def proposition(relu_exact: bool, smooth_order: float) -> str:
    """Props 1-2: LHS − RHS = O(σ⁴). ReLU nets: exactly 0 inside a linear region; smooth nets: the fitted order.

    Holds when both hold; partly when only the piecewise-linear case does (the smooth
    residual is O(σ²)); does not hold otherwise.
    """
    smooth_ok = smooth_order >= 3.5
    if relu_exact and smooth_ok:
        return "holds"
    return "partly" if relu_exact or smooth_ok else "does not hold"


def coefficient(z_paper: pd.Series, limit: float = 3.0) -> str:
    """Eqs 2-3: the paper's σ² term against the Monte-Carlo measurement, in standard errors.

    Holds when every |z| is below ``limit``, does not hold when none is, partly otherwise.
    """
    close = z_paper.abs() < limit
    return "holds" if close.all() else "does not hold" if not close.any() else "partly"


def _transfer_cell(table: pd.DataFrame | None, key: str, points: str) -> tuple[str, str]:
    if table is None:
        return "not testable here", "no runs"
    f = transfer_findings(table)
    if key not in f:
        return "not testable here", "rows or sizes missing"
    wins, losses, ties = _tally(f, key)
    return verdict(wins, losses, ties), f"{f[key]} won, {losses} lost, {ties} tied; mean {f[points]:+.2f} pts"


TRANSFER_QUESTIONS = {
    "(a)": ("distillation beats CE at ≤100 examples per class",
            "distillation beats CE (cells ≤ low)", "mean gain over CE (points, ≤ low)"),
    "(b)": ("Act+Jac beats Act at ≤100 examples per class",
            "Act+Jac beats Act (sizes ≤ low)", "Act+Jac − Act (points, ≤ low)"),
}


def combine(words) -> str:
    """One verdict from several datasets': the same word if they agree, else *partly* (or untested)."""
    tested = [w for w in words if w != "not testable here"]
    if not tested:
        return "not testable here"
    if len(set(tested)) == 1:
        return tested[0]
    return "partly" if any(w in ("holds", "partly") for w in tested) else "does not hold"


def transfer_rows(paper_table: pd.DataFrame, tables: dict, table_name: str) -> list[dict]:
    """Rows (a) and (b) for Table 1 or 2: the paper's own tally, ours per dataset, a combined verdict.

    ``tables``: dataset label -> our table (:func:`lakt.analysis.report.transfer_table`, or
    ``None`` when there are no runs). The paper's cells are read at its sizes ≤ 100.
    """
    rows = []
    for letter, (claim, key, points) in TRANSFER_QUESTIONS.items():
        paper_word, paper_text = _transfer_cell(paper_table, key, points)
        row = {"question": f"{letter} {table_name}", "claim": claim, "paper": paper_text}
        words = []
        for label, table in tables.items():
            word, text = _transfer_cell(table, key, points)
            row[label] = f"{word}: {text}" if word != "not testable here" else f"not testable here ({text})"
            words.append(word)
        row["verdict"] = combine(words)
        rows.append(row)
    return rows


def robustness_row(paper_table, tables: dict) -> dict:
    """Row (c), Table 3: the drop from σ = 0 to the largest σ, smallest vs largest penalty."""
    def cell(t):
        if t is None:
            return "not testable here", "not testable here (no runs)"
        word, n = robustness_verdict(t)
        if word == "not testable here":
            return word, "not testable here (one penalty)"
        f = n["findings"]
        tie = ", a tie" if n["tie"] else ""
        return word, (f"{word}: penalty {f.index[0]:g} loses {f['drop'].iloc[0]:.1f}, penalty {f.index[-1]:g} "
                      f"loses {f['drop'].iloc[-1]:.1f} pts (± {n['spread']:.1f}{tie})")

    _, paper_text = cell(paper_table)
    row = {"question": "(c) Table 3", "claim": "a larger Jacobian-norm penalty makes a net more robust to input noise",
           "paper": paper_text.split(": ", 1)[1]}
    words = []
    for label, t in tables.items():
        word, text = cell(t)
        row[label] = text
        words.append(word)
    row["verdict"] = combine(words)
    return row


def at_a_glance(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """The verdict page's table: one row per claim, the given columns in order, words checked."""
    frame = pd.DataFrame(rows).reindex(columns=columns).fillna("–")
    bad = set(frame["verdict"]) - set(WORDS)
    if bad:
        raise ValueError(f"verdicts must be one of {WORDS}, got {sorted(bad)}")
    return frame.set_index("question")


def mark_batch_coupled(frame: pd.DataFrame, preset: str, configs=()) -> pd.DataFrame:
    """``frame`` with a † after every Jacobian-matching row label when the preset predates the per-sample fix.

    A row is a Jacobian row when its label names one ("Jac" in lakt's or the paper's names).
    The caption should carry :data:`BATCH_COUPLED_NOTE` (:func:`batch_coupled_note`).
    """
    if not batch_coupled(preset, configs):
        return frame
    return frame.rename(index=lambda label: f"{label} †" if "Jac" in str(label) else label)


def batch_coupled_note(preset: str, configs=()) -> str:
    """The caption line that explains the †, or "" when the runs are per-sample."""
    return f" † {BATCH_COUPLED_NOTE}." if batch_coupled(preset, configs) else ""


def answer_cell(summary: pd.DataFrame, question: str) -> tuple[str, str]:
    """(word, text) of one question from :func:`lakt.analysis.answers.summary` (paired by seed, spread-aware)."""
    if question not in summary.index:
        return "not testable here", "not testable here (no runs)"
    s = summary.loc[question]
    word = s["answer"]
    text = (f"{s['holds']} of {s['comparisons']} comparisons hold, {s['partly']} partly, "
            f"{s['does not hold']} do not" + (f", {s['not called']} not called (one seed)" if s["not called"] else ""))
    return word, f"{word}: {text}" if word != "not testable here" else f"not testable here ({text})"
