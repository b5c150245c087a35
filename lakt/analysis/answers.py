"""The four questions of the stronger reproduction, answered from its runs (issue 13, point 5).

Each question is a set of comparisons "A − B" between two (method, setting) rows:

* (a) does any distillation beat CE at ≤ 100 examples per class -- every distillation
  method at its validation-chosen setting (:func:`lakt.analysis.selection.choose`; the
  paper's methods without a knob as they are) minus CE;
* (b) does Act+Jac beat Act there -- as the paper specifies it (γ = 1, every constant 1)
  and at the validation-chosen γ, with and without CE (Act+Jac+CE − Act+CE);
* (d) does squared-error distillation beat Hinton KD, as the paper says it "worked much
  better" -- Act and Act+CE against KD at its validation-chosen T and α.

* (c) is a net trained with a Jacobian-norm penalty more accurate under input noise
  (Table 3: "higher regularization strengths is better for robustness, even when the
  initial accuracy at the zero-noise case is lower") -- each penalty λ > 0 against λ = 0,
  per noise level σ > 0, the accuracy itself (:func:`noise_gain`); beside it, as
  "(c, flatter)", whether the curve is flatter: the points the unpenalised net loses from
  σ = 0 to σ minus the points the penalised one loses (:func:`flattening`). A net that
  collapses to a constant output is perfectly flat and useless, so flatness alone does not
  answer (c).

A comparison is **paired by seed**: for one seed both runs trained on the same nested
subset (for (c): the same training images) from the same initialisation, so per (cell,
seed) the difference removes what the two share, and its mean ± std over seeds is the
measurement; a cell is a size for (a), (b), (d) and a noise level for (c). A cell counts
as a win (or loss) only when |mean| exceeds that std -- inside the spread it is a tie,
never a win -- and a cell with fewer than two seeds has no spread, so it is not called. The word per comparison is :func:`lakt.analysis.readings.verdict`'s (*holds*: wins
at half the sizes or more and loses none), given only once every size is called -- a
half-finished sweep answers nothing rather than answering from its first sizes.

Input: for (a), (b), (d) a table like :func:`lakt.runs.cache.collect`'s (one row per
finished student, with ``val_acc``), e.g. the ``cifar10-cpu-v2`` runs; for (c) the noise
curves of the finished robust runs (:func:`noise_curves`).
"""
from __future__ import annotations

import pandas as pd

from ..core.errors import require
from .readings import verdict
from .palette import SHORT_NAMES
from .selection import choose, with_settings

QUESTIONS = {
    "a": "Does any distillation beat CE at ≤ 100 examples per class?",
    "b": "Does Act+Jac beat Act at ≤ 100 examples per class (as specified, and at the validation-chosen γ)?",
    "c": "Is a net trained with a Jacobian-norm penalty more accurate under input noise (Table 3)?",
    "c, flatter": "Does the penalty flatten the accuracy-vs-noise curve (fewer points lost as σ grows)?",
    "d": "Does squared-error distillation beat Hinton KD, as the paper says?",
}


def _label(method: str, setting: str, chosen: bool) -> str:
    name = SHORT_NAMES.get(method, method)
    if not setting:
        return name
    return f"{name} ({setting}{', chosen' if chosen else ''})"


def comparisons(table: pd.DataFrame, max_size: int = 100) -> list[tuple[str, tuple, tuple]]:
    """The (question, (method A, setting A), (method B, setting B)) pairs the table has runs for."""
    students = with_settings(table)
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
    students = with_settings(table)
    students = students[students["n_per_class"] <= max_size]

    def acc(method, setting):
        rows = students[(students["method"] == method) & (students["setting"] == setting)]
        return rows.set_index(["n_per_class", "seed"])["test_acc"]

    return _per_cell((acc(*a) - acc(*b)).dropna(), "n_per_class")


def _per_cell(diff: pd.Series, cell: str) -> pd.DataFrame:
    """A difference indexed (cell, seed) -> per cell: mean, std and number of seeds, and the outcome."""
    rows = []
    for key, d in diff.groupby(level=cell):
        mean, std, seeds = d.mean(), d.std(ddof=1), len(d)
        if seeds < 2:
            outcome = "no spread"
        else:
            outcome = "tie" if abs(mean) <= std else ("win" if mean > 0 else "loss")
        rows.append({cell: key, "mean": mean, "std": std, "seeds": seeds, "outcome": outcome})
    return pd.DataFrame(rows, columns=[cell, "mean", "std", "seeds", "outcome"]).set_index(cell)


def comparison_row(table: pd.DataFrame, a: tuple, b: tuple, max_size: int = 100) -> dict:
    """One comparison A − B as a row: mean ± std per size, seeds, the tally and the word.

    Keys: one per size (text "mean ± std", just the mean with one seed), ``seeds`` (the
    number of seeds, or "k–m" when sizes differ), ``wins``, ``losses``, ``ties``,
    ``uncalled`` (sizes with one seed), ``mean`` (over sizes) and ``verdict`` (*not
    testable here* while any size is uncalled).
    """
    return _tally(paired(table, a, b, max_size), int)


def _tally(d: pd.DataFrame, key=int) -> dict:
    """:func:`_per_cell`'s frame as one row: text per cell (keyed ``key(cell)``), seeds, counts, word."""
    row = {}
    for cell, r in d.iterrows():
        row[key(cell)] = f"{r['mean']:+.2f}" + (f" ± {r['std']:.2f}" if r["seeds"] > 1 else "")
    seeds = sorted(set(d["seeds"].astype(int)))
    counts = d["outcome"].value_counts()
    wins, losses, ties = (int(counts.get(k, 0)) for k in ("win", "loss", "tie"))
    row.update(seeds=f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}", wins=wins, losses=losses,
               ties=ties, uncalled=int(counts.get("no spread", 0)), mean=d["mean"].mean(),
               verdict=verdict(wins, losses, ties) if "no spread" not in counts else "not testable here")
    return row


def noise_curves(configs, results) -> pd.DataFrame:
    """Accuracy under input noise of each finished robust run: columns penalty, seed, sigma, acc.

    ``acc`` is the run's mean over its noise draws at that σ (one value at σ = 0, where
    nothing is drawn). Reads ``results`` only.
    """
    from ..runs import finished

    rows = [{"penalty": c.penalty, "seed": c.seed, "sigma": r["sigma"], "acc": r["mean"]}
            for c, m in finished([c for c in configs if c.kind == "robust"], results) for r in m["noise"]]
    require(rows, "no finished robust runs among these configs; run them with `lakt sweep --preset PRESET`")
    return pd.DataFrame(rows)


def flattening(curves: pd.DataFrame, penalty: float, baseline: float = 0.0) -> pd.DataFrame:
    """(c) for one penalty, per σ > 0, paired by seed: points lost from σ = 0 at ``baseline`` minus at ``penalty``.

    Positive: the penalised net loses fewer points as the noise grows -- a flatter curve,
    which is what Proposition 2 predicts and Table 3 reports. Columns of :func:`paired`,
    index ``sigma``.
    """
    gain = _gain(curves, penalty, baseline)  # per (σ, seed); fewer lost = the gain at σ minus the gain at σ = 0
    clean = min(curves["sigma"])
    fewer = gain.drop(index=clean, level="sigma").sub(gain.xs(clean, level="sigma"), level="seed")
    return _per_cell(fewer.dropna(), "sigma")


def noise_gain(curves: pd.DataFrame, penalty: float, baseline: float = 0.0) -> pd.DataFrame:
    """(c) for one penalty, per σ > 0, paired by seed: accuracy at ``penalty`` minus at ``baseline`` (points).

    Positive: the penalised net is more accurate under that much noise -- Table 3's
    "better for robustness". Columns of :func:`paired`, index ``sigma``.
    """
    gain = _gain(curves, penalty, baseline)
    return _per_cell(gain.drop(index=min(curves["sigma"]), level="sigma").dropna(), "sigma")


def _gain(curves: pd.DataFrame, penalty: float, baseline: float) -> pd.Series:
    """Accuracy at ``penalty`` minus at ``baseline``, indexed (σ, seed), σ = 0 included."""
    acc = curves.set_index(["penalty", "sigma", "seed"])["acc"]
    return acc.xs(penalty, level="penalty") - acc.xs(baseline, level="penalty")


def noise_table(curves: pd.DataFrame, baseline: float = 0.0) -> pd.DataFrame:
    """Question (c) as rows like :func:`answer_table`'s, columns "σ=…": per penalty λ ≠ ``baseline``,
    "(c)" its accuracy under noise (:func:`noise_gain`) and "(c, flatter)" its flattening
    (:func:`flattening`)."""
    rows = []
    for question, measure in (("(c)", noise_gain), ("(c, flatter)", flattening)):
        for lam in sorted(set(curves["penalty"]) - {baseline}):
            row = _tally(measure(curves, lam, baseline), key=lambda s: f"σ={s:g}")
            rows.append({"question": question, "comparison": f"λ={lam:g} − λ={baseline:g}", **row})
    require(rows, f"the noise curves need a penalty besides {baseline:g} to compare with it")
    frame = pd.DataFrame(rows).set_index(["question", "comparison"])
    cells = [c for c in frame.columns if str(c).startswith("σ=")]
    return frame[cells + ["seeds", "wins", "losses", "ties", "uncalled", "mean", "verdict"]]


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
    sizes = [c for c in answers.columns if isinstance(c, int) or str(c).startswith("σ=")]
    tally = [f"{w}–{l}–{t}" for w, l, t in zip(answers["wins"], answers["losses"], answers["ties"])]
    return answers[sizes + ["seeds"]].assign(**{"won–lost–tied": tally, "verdict": answers["verdict"]})


def summary(answers: pd.DataFrame) -> pd.DataFrame:
    """Per question: how many comparisons hold, partly hold or do not, and one word.

    (a) and (d) ask whether *any* listed method wins, so the word is *holds* when one
    comparison holds; (b) asks it of Act+Jac in every form and (c) of every penalty
    strength (as Table 3's reading does), so they hold only when all do, and are *partly*
    when some do.
    """
    out = []
    for question, rows in answers.groupby(level="question", sort=False):
        words = rows["verdict"]
        called = words[words != "not testable here"]
        counts = {w: int((called == w).sum()) for w in ("holds", "partly", "does not hold")}
        if called.empty:
            word = "not testable here"
        elif question in ("(b)", "(c)", "(c, flatter)"):
            word = ("holds" if counts["holds"] == len(called) else
                    "does not hold" if counts["does not hold"] == len(called) else "partly")
        else:
            word = ("holds" if counts["holds"] else "partly" if counts["partly"] else "does not hold")
        out.append({"question": question, "asks": QUESTIONS[question.strip("()")],
                    "comparisons": len(rows), **counts, "not called": len(rows) - len(called), "answer": word})
    return pd.DataFrame(out).set_index("question")
