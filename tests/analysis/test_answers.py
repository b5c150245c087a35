"""The four questions answered from runs: hand-made run tables and noise curves whose answers are known."""
import math

import pandas as pd
import pytest

from lakt.analysis import answers
from lakt.core.errors import LaktError


def _row(method, n, seed, test, val=50.0, **knobs):
    base = {k: math.nan for k in answers.KNOBS}
    return {"method": method, "n_per_class": n, "seed": seed, "val_acc": val, "test_acc": test, **base, **knobs}


def _table(seeds=(0, 1, 2)):
    """CE at 40 + seed; Act 3 points above it at every seed (a clean win); Act+Jac at γ=1
    equal to Act +- 1 by seed (a tie: mean 0, spread 1); at γ=100 chosen on validation and
    2 points above Act with spread 0.5 at 5 and 10 per class, and 0.2 below with spread 1 at
    50; KD (T=4 chosen on validation, test worse than T=1) 1 point below Act everywhere."""
    rows = []
    wobble = {0: -1.0, 1: 0.0, 2: 1.0}
    for seed in seeds:
        for n in (5, 10, 50, 500):
            ce = 40 + seed
            rows += [_row("ce", n, seed, ce), _row("act", n, seed, ce + 3)]
            rows.append(_row("act+jac", n, seed, ce + 3 + wobble[seed], val=50, jac_weight=1.0))
            gain = -0.2 + wobble[seed] if n == 50 else 2 + wobble[seed] / 2
            rows.append(_row("act+jac", n, seed, ce + 3 + gain, val=60, jac_weight=100.0))
            rows.append(_row("kd", n, seed, ce + 2, val=55, kd_temperature=4.0, kd_alpha=0.9))
            rows.append(_row("kd", n, seed, ce + 9, val=54, kd_temperature=1.0, kd_alpha=0.9))
    return pd.DataFrame(rows)


def test_comparisons_use_the_validation_choice_and_the_specified_setting():
    pairs = answers.comparisons(_table())
    assert ("b", ("act+jac", "γ=1"), ("act", "")) in pairs  # as the paper specifies it
    assert ("b", ("act+jac", "γ=100"), ("act", "")) in pairs  # chosen on validation
    assert ("d", ("act", ""), ("kd", "T=4 α=0.9")) in pairs  # KD at its validation choice, not T=1's test best
    assert ("a", ("act+jac", "γ=100"), ("ce", "")) in pairs and ("a", ("act", ""), ("ce", "")) in pairs


def test_paired_differences_and_their_calls():
    d = answers.paired(_table(), ("act+jac", "γ=100"), ("act", ""))
    assert list(d.index) == [5, 10, 50]  # 500 per class is above the question's range
    assert d.loc[5, "mean"] == pytest.approx(2.0) and d.loc[5, "std"] == pytest.approx(0.5)
    assert list(d["outcome"]) == ["win", "win", "tie"]
    tie = answers.paired(_table(), ("act+jac", "γ=1"), ("act", ""))
    assert list(tie["outcome"]) == ["tie"] * 3 and tie["std"].tolist() == pytest.approx([1.0] * 3)


def test_answer_table_and_summary():
    table = answers.answer_table(_table())
    row = table.loc[("(b)", "Act+Jac (γ=100, chosen) − Act")]
    assert (row["wins"], row["losses"], row["ties"], row["verdict"]) == (2, 0, 1, "holds")
    assert row[5] == "+2.00 ± 0.50" and row["seeds"] == "3"
    assert answers.shown(table).loc[("(b)", "Act+Jac (γ=100, chosen) − Act"), "won–lost–tied"] == "2–0–1"
    assert table.loc[("(b)", "Act+Jac (γ=1) − Act"), "verdict"] == "does not hold"
    kd = table.loc[("(d)", "Act − KD (T=4 α=0.9, chosen)")]
    assert (kd["wins"], kd["verdict"]) == (3, "holds") and kd["mean"] == pytest.approx(1.0)
    summary = answers.summary(table)
    assert summary.loc["(b)", "answer"] == "partly"  # holds at the chosen γ, not as specified
    assert summary.loc["(a)", "answer"] == "holds" and summary.loc["(d)", "answer"] == "holds"


def test_one_seed_is_never_called():
    table = answers.answer_table(_table(seeds=(0,)))
    assert (table["uncalled"] == 3).all() and set(table["verdict"]) == {"not testable here"}
    assert table.loc[("(a)", "Act − CE"), 5] == "+3.00" and table.loc[("(a)", "Act − CE"), "seeds"] == "1"
    assert set(answers.summary(table)["answer"]) == {"not testable here"}


def test_no_verdict_until_every_size_has_a_spread():
    table = _table()
    late = (table["n_per_class"] == 50) & (table["seed"] > 0)  # sizes 5 and 10 have 3 seeds, 50 has one
    answered = answers.answer_table(table[~late])
    row = answered.loc[("(b)", "Act+Jac (γ=100, chosen) − Act")]
    assert (row["wins"], row["uncalled"], row["verdict"], row["seeds"]) == (2, 1, "not testable here", "1–3")


def test_a_table_without_the_rows_is_refused():
    with pytest.raises(LaktError, match="needs CE, Act"):
        answers.answer_table(pd.DataFrame([_row("act", 5, 0, 50.0)]))


def _curves(seeds=(0, 1)):
    """Noise curves of robust runs. The unpenalised net loses 40σ points from σ = 0; penalty 1
    starts a point lower and loses 20σ − w (w = ∓0.25 by seed): 20σ fewer points, spread
    0.3536; penalty 0.01 loses 40σ ± 0.5 by seed: no fewer points, a tie at every σ."""
    rows = []
    w = {0: -0.25, 1: 0.25}
    for seed in seeds:
        for sigma in (0.0, 0.1, 0.2):
            lost = {0.0: 40 * sigma, 0.01: 40 * sigma + (2 * w[seed] if sigma else 0.0),
                    1.0: 20 * sigma - (w[seed] if sigma else 0.0)}
            for penalty, points in lost.items():
                clean = 60.0 + seed - (1.0 if penalty == 1.0 else 0.0)
                rows.append({"penalty": penalty, "seed": seed, "sigma": sigma, "acc": clean - points})
    return pd.DataFrame(rows)


def test_flattening_is_points_lost_paired_by_seed():
    d = answers.flattening(_curves(), 1.0)
    assert list(d.index) == [0.1, 0.2]  # σ = 0 is the reference, not a cell
    assert d["mean"].tolist() == pytest.approx([2.0, 4.0]) and d["std"].tolist() == pytest.approx([0.3536] * 2, abs=1e-4)
    assert list(d["outcome"]) == ["win", "win"]  # the lower clean accuracy does not count against it
    tie = answers.flattening(_curves(), 0.01)
    assert tie["mean"].tolist() == pytest.approx([0.0, 0.0]) and list(tie["outcome"]) == ["tie", "tie"]


def test_noise_gain_is_accuracy_under_noise_paired_by_seed():
    d = answers.noise_gain(_curves(), 1.0)  # one point lower clean, 20σ fewer lost: +1 at σ=0.1, +3 at 0.2
    assert list(d.index) == [0.1, 0.2] and d["mean"].tolist() == pytest.approx([1.0, 3.0])
    assert list(d["outcome"]) == ["win", "win"]


def test_question_c_rows_and_answer():
    table = answers.noise_table(_curves())
    assert list(table.loc["(c, flatter)"].index) == ["λ=0.01 − λ=0", "λ=1 − λ=0"]
    row = table.loc[("(c, flatter)", "λ=1 − λ=0")]
    assert (row["σ=0.1"], row["wins"], row["verdict"]) == ("+2.00 ± 0.35", 2, "holds")
    assert table.loc[("(c, flatter)", "λ=0.01 − λ=0"), "verdict"] == "does not hold"
    assert table.loc[("(c)", "λ=1 − λ=0"), "verdict"] == "holds"
    summary = answers.summary(table)
    assert summary.loc["(c, flatter)", "answer"] == "partly"  # holds only when every penalty flattens
    assert summary.loc["(c)", "answer"] == "partly"
    shown = answers.shown(table)
    assert shown.loc[("(c, flatter)", "λ=1 − λ=0"), "won–lost–tied"] == "2–0–0"
    one = answers.noise_table(_curves(seeds=(0,)))
    assert set(one["verdict"]) == {"not testable here"} and (one["uncalled"] == 2).all()


def test_a_collapsed_net_is_flatter_but_not_more_accurate():
    curves = _curves()
    dead = curves["penalty"] == 1.0
    curves.loc[dead, "acc"] = 10.0 + curves.loc[dead, "seed"] * 0.01  # a constant guess: flat, at chance
    table = answers.noise_table(curves)
    assert table.loc[("(c, flatter)", "λ=1 − λ=0"), "verdict"] == "holds"
    assert table.loc[("(c)", "λ=1 − λ=0"), "verdict"] == "does not hold"
