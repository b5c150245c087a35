"""Questions (a), (b) and (d) of the stronger reproduction, answered from its run table (issue 13, point 5).

Each question is a set of comparisons "A − B" between two (method, setting) rows:

* (a) does any distillation beat CE at ≤ 100 examples per class -- every distillation
  method at its validation-chosen setting (:func:`lakt.analysis.selection.choose`; the
  paper's methods without a knob as they are) minus CE;
* (b) does Act+Jac beat Act there -- as the paper specifies it (γ = 1, every constant 1)
  and at the validation-chosen γ, with and without CE (Act+Jac+CE − Act+CE);
* (d) does squared-error distillation beat Hinton KD, as the paper says it "worked much
  better" -- Act and Act+CE against KD at its validation-chosen T and α.

(c), the noise curves of Table 3, is read in chapter 5 (:func:`lakt.analysis.readings.robustness_verdict`).

A comparison is **paired by seed**: for one seed both runs trained on the same nested
subset from the same initialisation, so per (size, seed) the difference removes what the
two share, and its mean ± std over seeds is the measurement. A size counts as a win (or
loss) only when |mean| exceeds that std -- inside the spread it is a tie, never a win --
and a comparison with fewer than two seeds at a size has no spread, so that size is not
called. The word per comparison is :func:`lakt.analysis.readings.verdict`'s (*holds*: wins
at half the sizes or more and loses none), given only once every size is called -- a
half-finished sweep answers nothing rather than answering from its first sizes.

Input: a table like :func:`lakt.runs.cache.collect`'s (one row per finished student,
with ``val_acc``), e.g. the ``cifar10-cpu-v2`` runs.
"""
from __future__ import annotations

import pandas as pd

from ..core.errors import require
from .readings import verdict
from .figures import SHORT_NAMES
from .selection import _with_settings, choose

QUESTIONS = {
    "a": "Does any distillation beat CE at ≤ 100 examples per class?",
    "b": "Does Act+Jac beat Act at ≤ 100 examples per class (as specified, and at the validation-chosen γ)?",
    "d": "Does squared-error distillation beat Hinton KD, as the paper says?",
}


def _label(method: str, setting: str, chosen: bool) -> str:
    name = SHORT_NAMES.get(method, method)
    if not setting:
        return name
    return f"{name} ({setting}{', chosen' if chosen else ''})"


def comparisons(table: pd.DataFrame, max_size: int = 100) -> list[tuple[str, tuple, tuple]]:
    """The (question, (method A, setting A), (method B, setting B)) pairs the table has runs for."""
    students = _with_settings(table)
    have = set(students["method"])
    picks = choose(table, max_size)["setting"].to_dict()

    def pick(method):
        return (method, picks.get(method, ""))

    out = []
    for method in [m for m in dict.fromkeys(students["method"]) if m != "ce"]:
        if "ce" in have:
            out.append(("a", pick(method), ("ce", "")))
    for jac, base in (("act+jac", "act"), ("act+jac+ce", "act+ce")):
        if jac in have and base in have:
            specified = (jac, "γ=1")
            out.append(("b", specified, (base, "")))
            if pick(jac) != specified:
                out.append(("b", pick(jac), (base, "")))
    if "kd" in have:
        for squared in ("act", "act+ce"):
            if squared in have:
                out.append(("d", (squared, ""), pick("kd")))
    return out


def paired(table: pd.DataFrame, a: tuple, b: tuple, max_size: int = 100) -> pd.DataFrame:
    """A − B per size ≤ ``max_size``, paired by seed: columns mean, std, seeds, outcome (index n_per_class)."""
    students = _with_settings(table)
    students = students[students["n_per_class"] <= max_size]

    def acc(method, setting):
        rows = students[(students["method"] == method) & (students["setting"] == setting)]
        return rows.set_index(["n_per_class", "seed"])["test_acc"]

    diff = (acc(*a) - acc(*b)).dropna()
    rows = []
    for n, d in diff.groupby(level="n_per_class"):
        mean, std, seeds = d.mean(), d.std(ddof=1), len(d)
        if seeds < 2:
            outcome = "no spread"
        else:
            outcome = "tie" if abs(mean) <= std else ("win" if mean > 0 else "loss")
        rows.append({"n_per_class": int(n), "mean": mean, "std": std, "seeds": seeds, "outcome": outcome})
    return pd.DataFrame(rows, columns=["n_per_class", "mean", "std", "seeds", "outcome"]).set_index("n_per_class")


def comparison_row(table: pd.DataFrame, a: tuple, b: tuple, max_size: int = 100) -> dict:
    """One comparison A − B as a row: mean ± std per size, seeds, the tally and the word.

    Keys: one per size (text "mean ± std", just the mean with one seed), ``seeds`` (the
    number of seeds, or "k–m" when sizes differ), ``wins``, ``losses``, ``ties``,
    ``uncalled`` (sizes with one seed), ``mean`` (over sizes) and ``verdict`` (*not
    testable here* while any size is uncalled).
    """
    d = paired(table, a, b, max_size)
    row = {}
    for n, r in d.iterrows():
        row[int(n)] = f"{r['mean']:+.2f}" + (f" ± {r['std']:.2f}" if r["seeds"] > 1 else "")
    seeds = sorted(set(d["seeds"].astype(int)))
    counts = d["outcome"].value_counts()
    wins, losses, ties = (int(counts.get(k, 0)) for k in ("win", "loss", "tie"))
    row.update(seeds=f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}", wins=wins, losses=losses,
               ties=ties, uncalled=int(counts.get("no spread", 0)), mean=d["mean"].mean(),
               verdict=verdict(wins, losses, ties) if "no spread" not in counts else "not testable here")
    return row


def answer_table(table: pd.DataFrame, max_size: int = 100) -> pd.DataFrame:
    """One row per comparison of :func:`comparisons`: index (question, "A − B"), columns of :func:`comparison_row`."""
    picks = choose(table, max_size)
    tuned = {m: s for m, s, n in zip(picks.index, picks["setting"], picks["values"]) if n > 1}
    rows = []
    for question, a, b in comparisons(table, max_size):
        label = f"{_label(*a, chosen=tuned.get(a[0]) == a[1])} − {_label(*b, chosen=tuned.get(b[0]) == b[1])}"
        rows.append({"question": f"({question})", "comparison": label, **comparison_row(table, a, b, max_size)})
    require(rows, "no comparison has runs on both sides: the table needs CE, Act, Act+Jac or KD students")
    frame = pd.DataFrame(rows).set_index(["question", "comparison"])
    sizes = sorted(c for c in frame.columns if isinstance(c, int))
    return frame[sizes + ["seeds", "wins", "losses", "ties", "uncalled", "mean", "verdict"]]


def shown(answers: pd.DataFrame) -> pd.DataFrame:
    """The table for a page: the size columns, seeds, "wins–losses–ties" and the word."""
    sizes = [c for c in answers.columns if isinstance(c, int)]
    tally = [f"{w}–{l}–{t}" for w, l, t in zip(answers["wins"], answers["losses"], answers["ties"])]
    return answers[sizes + ["seeds"]].assign(**{"won–lost–tied": tally, "verdict": answers["verdict"]})


def summary(answers: pd.DataFrame) -> pd.DataFrame:
    """Per question: how many comparisons hold, partly hold or do not, and one word.

    (a) and (d) ask whether *any* listed method wins, so the word is *holds* when one
    comparison holds; (b) asks it of Act+Jac in every form, so it holds only when all do,
    and is *partly* when some do.
    """
    out = []
    for question, rows in answers.groupby(level="question", sort=False):
        words = rows["verdict"]
        called = words[words != "not testable here"]
        counts = {w: int((called == w).sum()) for w in ("holds", "partly", "does not hold")}
        if called.empty:
            word = "not testable here"
        elif question == "(b)":
            word = ("holds" if counts["holds"] == len(called) else
                    "does not hold" if counts["does not hold"] == len(called) else "partly")
        else:
            word = ("holds" if counts["holds"] else "partly" if counts["partly"] else "does not hold")
        out.append({"question": question, "asks": QUESTIONS[question.strip("()")],
                    "comparisons": len(rows), **counts, "not called": len(rows) - len(called), "answer": word})
    return pd.DataFrame(out).set_index("question")
