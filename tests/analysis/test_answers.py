"""The paper's claims answered from runs: hand-made run tables and noise curves whose answers are known,
statistics checked against scipy's paired t-test and Holm's correction worked by hand."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lakt.analysis import answers, report
from lakt.core.errors import LaktError


def _row(method, n, seed, test, val=50.0, **knobs):
    base = {k: math.nan for k in answers.KNOBS}
    return {"method": method, "n_per_class": n, "seed": seed, "val_acc": val, "test_acc": test, **base, **knobs}


WOBBLE = {0: -1.0, 1: 0.0, 2: 1.0}


def _table(seeds=(0, 1, 2)):
    """CE at 40 + seed; Act exactly 3 points above it (every pair positive); Act+Jac at γ=1 equal to Act
    ± 1 by seed (mean 0); at γ=100 (chosen on validation) 2 + w/2 above Act at 5 and 10 per class and
    -0.2 + w at 50; KD (T=4 chosen on validation; T=1 is better on test) 1 point below Act."""
    rows = []
    for seed in seeds:
        w = WOBBLE[seed]
        for n in (5, 10, 50, 500):
            ce = 40 + seed
            rows += [_row("ce", n, seed, ce), _row("act", n, seed, ce + 3)]
            rows.append(_row("act+jac", n, seed, ce + 3 + w, val=50, jac_weight=1.0))
            gain = -0.2 + w if n == 50 else 2 + w / 2
            rows.append(_row("act+jac", n, seed, ce + 3 + gain, val=60, jac_weight=100.0))
            rows.append(_row("kd", n, seed, ce + 2, val=55, kd_temperature=4.0, kd_alpha=0.9))
            rows.append(_row("kd", n, seed, ce + 9, val=54, kd_temperature=1.0, kd_alpha=0.9))
    return pd.DataFrame(rows)


def test_paired_test_is_scipys_paired_t():
    rng = np.random.default_rng(0)
    a, b = rng.normal(50, 2, 12), rng.normal(49, 2, 12)
    m = answers.paired_test(pd.Series(a - b))
    assert m["p"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    low, high = stats.t.interval(0.95, 11, loc=(a - b).mean(), scale=stats.sem(a - b))
    assert (m["low"], m["high"]) == (pytest.approx(low), pytest.approx(high))
    assert m["pairs"] == 12 and m["positive"] == int((a > b).sum())
    two = answers.paired_test(pd.Series([1.0, 2.0]))           # too few pairs for a test
    assert two["mean"] == 1.5 and math.isnan(two["p"]) and math.isnan(two["low"])
    assert answers.paired_test(pd.Series([3.0, 3.0, 3.0]))["p"] == 0.0   # no spread at all, all positive


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 of m = 3: 3 × 0.01 = 0.03; max(0.03, 2 × 0.03) = 0.06; max(0.06, 1 × 0.04) = 0.06
    assert answers.holm([0.04, 0.01, 0.03, math.nan]) == pytest.approx([0.06, 0.03, 0.06, math.nan], nan_ok=True)
    assert answers.holm([0.5, 0.9]).tolist() == [1.0, 1.0]   # 2 × 0.5 capped at 1; then never below the step before


def test_words():
    assert answers.word(1.0, 0.01) == "holds" and answers.word(-1.0, 0.01) == "reversed"
    assert answers.word(1.0, 0.2) == "not shown" and answers.word(1.0, math.nan) == "not testable here"


def test_comparisons_use_the_validation_choice_and_the_specified_setting():
    pairs = answers.comparisons(_table())
    assert ("b", ("act+jac", "γ=1"), ("act", "")) in pairs  # as the paper specifies it
    assert ("b", ("act+jac", "γ=100"), ("act", "")) in pairs  # chosen on validation
    assert ("d", ("act", ""), ("kd", "T=4 α=0.9")) in pairs  # KD at its validation choice, not T=1's test best
    assert ("a", ("act+jac", "γ=100"), ("ce", "")) in pairs and ("a", ("act", ""), ("ce", "")) in pairs


def test_paired_differences_stop_at_100_per_class():
    d = answers.paired(_table(), ("act+jac", "γ=100"), ("act", ""))
    assert sorted(set(d.index.get_level_values("n_per_class"))) == [5, 10, 50]
    assert d.loc[(5, 0)] == pytest.approx(1.5) and len(d) == 9


def test_answer_table_statistics_and_words():
    table = answers.answer_table(_table())
    chosen = table.loc[("(b)", "Act+Jac (γ=100, chosen) − Act")]
    diffs = [2 + w / 2 for w in WOBBLE.values()] * 2 + [-0.2 + w for w in WOBBLE.values()]
    assert chosen["mean"] == pytest.approx(np.mean(diffs)) and chosen["p"] == pytest.approx(stats.ttest_1samp(diffs, 0).pvalue)
    assert chosen[5] == "+2.00 ± 0.50" and chosen["positive"] == "7 of 9"
    assert table["p_holm"].tolist() == pytest.approx(answers.holm(table["p"]).tolist())
    assert table.loc[("(b)", "Act+Jac (γ=1) − Act"), "verdict"] == "not shown"       # mean 0
    assert table.loc[("(a)", "Act − CE"), "verdict"] == "holds"                      # +3 in every pair
    assert table.loc[("(d)", "Act − KD (T=4 α=0.9, chosen)"), "verdict"] == "holds"
    assert table.loc[("(a)", "Act − CE"), "mean [95% CI]"] == "+3.00 [+3.00, +3.00]"
    summary = answers.summary(table)
    assert summary.loc["(a)", "answer"] == "holds" and summary.loc["(d)", "answer"] == "holds"
    assert summary.loc["(b)", "answer"] == ("holds" if (table.loc["(b)", "verdict"] == "holds").all() else "not shown")


def test_reversed_when_the_claimed_winner_is_behind():
    t = _table()
    t.loc[t["method"] == "kd", "test_acc"] += 5          # KD now 4 points above Act in every pair
    table = answers.answer_table(t)
    assert table.loc[("(d)", "Act − KD (T=4 α=0.9, chosen)"), "verdict"] == "reversed"
    assert answers.summary(table).loc["(d)", "answer"] == "reversed"


def test_one_seed_one_size_is_not_testable():
    t = _table(seeds=(0,))
    table = answers.answer_table(t[t["n_per_class"].isin([5, 10])])   # two pairs per comparison
    assert set(table["verdict"]) == {"not testable here"} and table.loc[("(a)", "Act − CE"), 5] == "+3.00"
    assert set(answers.summary(table)["answer"]) == {"not testable here"}


def test_a_table_without_the_rows_is_refused():
    with pytest.raises(LaktError, match="needs CE, Act"):
        answers.answer_table(pd.DataFrame([_row("act", 5, 0, 50.0)]))


def test_paper_answers_from_its_table1():
    p = answers.paper_answers(report.table1())
    assert p.loc[("(b)", "Act+Jac − Act"), "mean"] == pytest.approx(np.mean([4.70, 4.42, 2.79, 1.85]))
    assert p.loc[("(a)", "Act+CE − CE"), "positive"] == "4 of 4"


def _curves(seeds=(0, 1, 2)):
    """Unpenalised nets lose 40σ points from σ = 0 (60 + seed clean). Penalty 1 costs 1 clean point and
    loses 20σ − w (w = -0.25, 0, 0.25 by seed); penalty 10 costs 5 clean points (past the 2 allowed)."""
    rows = []
    for seed in seeds:
        w = {0: -0.25, 1: 0.0, 2: 0.25}[seed]
        for sigma in (0.0, 0.1, 0.3, 0.4):
            for penalty, cost, lost in ((0.0, 0, 40 * sigma), (1.0, 1, 20 * sigma - (w if sigma else 0)),
                                        (10.0, 5, 10 * sigma)):
                rows.append({"form": "ce+jacnorm", "penalty": penalty, "seed": seed, "sigma": sigma,
                             "acc": 60.0 + seed - cost - lost, "draw_std": 0.5 if sigma else math.nan})
    return pd.DataFrame(rows)


def test_noise_answers_read_the_cheap_penalty_at_high_noise():
    table = answers.noise_answers(_curves())
    one = table.loc[("ce+jacnorm", 1.0)]
    gains = [20 * s - 1 + w for s in (0.3, 0.4) for w in (-0.25, 0.0, 0.25)]   # 40σ − (20σ − w) − 1
    assert one["clean cost"] == pytest.approx(1.0) and one["mean"] == pytest.approx(np.mean(gains))
    assert one["p"] == pytest.approx(stats.ttest_1samp(gains, 0).pvalue) and one["verdict"] == "holds"
    assert one["answers"] and not table.loc[("ce+jacnorm", 10.0), "answers"]   # 5 clean points: too costly


def test_a_collapsed_net_is_not_more_accurate():
    curves = _curves()
    dead = curves["penalty"] == 1.0
    curves.loc[dead, "acc"] = 10.0 + curves.loc[dead, "seed"] * 0.01  # a constant guess: flat, at chance
    table = answers.noise_answers(curves)
    assert not table["answers"].any() and table.loc[("ce+jacnorm", 1.0), "verdict"] == "reversed"


def test_noise_reading_says_each_forms_verdict_or_why_none():
    curves = _curves()
    eq3 = curves[curves["penalty"] == 10.0].assign(form="ce+logjacnorm")   # 5 clean points: none cheap enough
    noise = answers.noise_answers(pd.concat([curves, eq3]))
    tables = {form: pd.concat({"mean": pd.DataFrame({0.0: [60.0, 59.0]}, index=[0.0, 1.0])}, axis=1)
              for form in report.PENALTY_FORMS}
    logit_line, eq3_line = answers.noise_reading(noise, tables).split("\n\n")
    row = noise.loc[("ce+jacnorm", 1.0)]
    assert logit_line.startswith(f"**(c), {report.PENALTY_FORMS['ce+jacnorm']}:** at λ = 1, clean cost 1.00 points: "
                                 f"**{row['verdict']}** ({row['mean [95% CI]']} points, 6 of 6 pairs ahead")
    assert "**not testable here**: no strength run costs ≤ 2 clean points" in eq3_line
    assert eq3_line.endswith("λ = 0: 60.0%, λ = 1: 59.0%.")


def test_paper_table3_answers_at_its_strongest_penalty():
    table = answers.noise_answers(report.paper_curves(report.table3()))
    row = table[table["answers"]].iloc[0]
    assert row.name == ("ce+jacnorm", 1.0) and row["clean cost"] == pytest.approx(64.78 - 63.59)
    assert row["mean"] == pytest.approx(((47.48 - 29.63) + (35.43 - 17.69)) / 2) and row["verdict"] == "not testable here"


def test_noise_spread_keeps_seeds_and_draws_apart():
    s = report.noise_spread(_curves()).loc[("ce+jacnorm", 0.0, 0.3)]
    assert s["seed std"] == pytest.approx(1.0) and s["draw std"] == pytest.approx(0.5) and s["seeds"] == 3


def test_proposition_word():
    assert answers.proposition(True, 4.0) == "holds"
    assert answers.proposition(True, 2.0) == "not shown" and answers.proposition(False, 4.0) == "not shown"


def test_show_stacks_on_narrow_screens_and_colours_the_word():
    table = pd.DataFrame([{"question": "(a)", "claim": "c", "paper": "p", "ours": "+1.00 [+0.5, +1.5] pts",
                           "paper scale": "not run", "scale": "s", "p (Holm)": "0.010", "verdict": "holds",
                           "where": "x.html#y"}]).set_index("question")
    shown = answers.show(table)
    assert 'data-label="ours, CPU scale"' in shown.html and 'href="x.html#y"' in shown.html
    assert "#d9f2d9" in shown.html and "not testable here" in shown.html  # the word and the rules beneath
    assert "holds" in repr(shown) and "x.html" not in repr(shown)
    assert list(answers.counts(table)) == [1, 0, 0, 0]


def test_conventions_answer_b_at_each_readings_gamma():
    t = _table()
    extra = [_row("act+jac", r["n_per_class"], r["seed"], r["test_acc"] + 1.0 + WOBBLE[r["seed"]] / 4, jac_weight=10.0)
             for _, r in t[t["method"] == "act"].iterrows()]   # γ = 10 (Act as a mean over k): +1 ± 0.25
    table = answers.conventions(pd.concat([t, pd.DataFrame(extra)]))
    mean_k = table.loc[("Act+Jac", "Act: mean over k", "γ=10", "Act+Jac − Act")]
    assert mean_k["mean"] == pytest.approx(1.0) and mean_k["pairs"] == 9 and mean_k["verdict"] == "holds"
    assert table.loc[("Act+Jac", "both summed (lakt)", "γ=1", "Act+Jac − Act"), "verdict"] == "not shown"
    assert table.loc[("Act+Jac", "both means", "γ=0.003", "Act+Jac − Act"), "verdict"] == "not testable here"  # not run
    penalties = table.loc["penalty"]
    assert len(penalties) == 4 and set(penalties["verdict"]) == {"not testable here"}    # no noise curves given


def test_conventions_read_the_cheap_penalty_in_each_readings_range():
    curves = _curves().assign(penalty=lambda c: c["penalty"].replace({1.0: 3e-4, 10.0: 0.5}))
    table = answers.conventions(_table(), curves).loc["penalty"]
    mean_d = table.loc["logit, mean over D"]
    assert mean_d.index[0][1].startswith("λ = 0.0003 − none") and mean_d["verdict"].iloc[0] == "holds"
    summed = table.loc["logit, sum over D"]                  # λ = 0.5 costs 5 clean points
    assert summed.index[0][1] == "every λ run costs > 2 clean points"
    assert table.loc["Eq 3, sum over D"].index[0][1] == "not run"
    weak_only = answers.conventions(_table(), curves[curves["penalty"] != 0.5]).loc["penalty"]
    assert weak_only.loc["logit, sum over D"].index[0][1] == "no λ run within 3× of this range"


def test_add_size_takes_the_other_protocols_column_for_the_same_settings_only():
    ours = _table()
    ours = ours[ours["n_per_class"] <= 100]
    other = _table().assign(test_acc=lambda t: t["test_acc"] + 100)   # told apart by value
    other = pd.concat([other, pd.DataFrame([_row("noisy-act", 500, 0, 1.0, noise_sigma=0.1)])])
    both = answers.add_size(ours, other, 500)
    added = both[both["n_per_class"] == 500]
    # every (method, setting) of ours at 500 from the other table, nothing it lacks (noisy-act), nothing at other sizes
    assert len(added) == len(_table().query("n_per_class == 500")) and (added["test_acc"] > 100).all()
    assert "noisy-act" not in set(added["method"]) and len(both) == len(ours) + len(added)
    # the verdicts never read it: comparisons pool ≤ 100 per class
    pd.testing.assert_frame_equal(answers.answer_table(both), answers.answer_table(ours))


def test_budget_change_pairs_comparisons_and_names_changed_verdicts():
    before = answers.answer_table(_table())
    after_rows = _table().assign(test_acc=lambda t: t["test_acc"] + np.where(t["method"] == "kd", 3.0, 0.0))
    after = answers.answer_table(after_rows)
    change = answers.budget_change(before, after, ("short", "long"))
    assert list(change.columns.get_level_values(0).unique()) == ["short", "long"]
    row = change.loc[("(d)", "Act − KD (chosen)")]
    assert row[("short", "chosen")] == row[("long", "chosen")] == "T=4 α=0.9"
    assert row[("short", "verdict")] == before.loc[("(d)", "Act − KD (T=4 α=0.9, chosen)"), "verdict"]
    assert row[("long", "verdict")] == after.loc[("(d)", "Act − KD (T=4 α=0.9, chosen)"), "verdict"]
    # KD 3 points better: Act − KD goes from +1 to −2 in every pair (zero spread: p = 0)
    assert (row[("short", "verdict")], row[("long", "verdict")]) == ("holds", "reversed")
    assert answers.changed(change).count("→") == int((change[("short", "verdict")] != change[("long", "verdict")]).sum())
    assert "*holds* → *reversed*" in answers.changed(change)
    assert answers.changed(answers.budget_change(before, before)).startswith("No verdict changes")
    # a knob chosen differently under the two protocols stays one row, each side naming its choice
    t1 = _table().assign(val_acc=lambda t: np.where((t["method"] == "kd") & (t["kd_temperature"] == 1.0), 99.0, t["val_acc"]))
    moved = answers.budget_change(before, answers.answer_table(t1), ("short", "long")).loc[("(d)", "Act − KD (chosen)")]
    assert (moved[("short", "chosen")], moved[("long", "chosen")]) == ("T=4 α=0.9", "T=1 α=0.9")


def test_readings_sentence_names_each_readings_word_and_why_it_cannot_be_asked():
    t = _table()
    extra = [_row("act+jac", r["n_per_class"], r["seed"], r["test_acc"] + 1.0 + WOBBLE[r["seed"]] / 4, jac_weight=10.0)
             for _, r in t[t["method"] == "act"].iterrows()]
    curves = _curves().assign(penalty=lambda c: c["penalty"].replace({1.0: 3e-4, 10.0: 0.5}))
    b, c = answers.readings_sentence(answers.conventions(pd.concat([t, pd.DataFrame(extra)]), curves)).split("\n")
    # no Act+CE runs here: each reading's second comparison cannot be asked, so its two words are named apart
    assert "Act: mean over k (γ=10) -- holds for Act+Jac − Act, not testable here for Act+Jac+CE − Act+CE" in b
    assert "both summed (lakt) (γ=1) -- not shown for Act+Jac − Act" in b
    assert "*not testable here* under Jac: mean over D (γ=0.0003) (not run); both means (γ=0.003) (not run)" in b
    assert "*holds* under logit, mean over D" in c
    assert "logit, sum over D (every λ run costs > 2 clean points)" in c and "Eq 3, sum over D (not run)" in c


def test_budget_reading_calls_a_move_inside_the_seeds_spread_a_tie():
    budget = pd.DataFrame([
        {"method": "ce", "setting": "", "steps": 600, "mean": 50.5, "std": 1.0, "seeds": 3},
        {"method": "ce", "setting": "", "steps": 8000, "mean": 51.5, "std": 1.0, "seeds": 3},     # 1.0 < 1 + 1: a tie
        {"method": "act+jac", "setting": "γ=100", "steps": 600, "mean": 50.0, "std": 0.5, "seeds": 3},
        {"method": "act+jac", "setting": "γ=100", "steps": 2400, "mean": 56.0, "std": np.nan, "seeds": 1},
        {"method": "act+jac", "setting": "γ=100", "steps": 8000, "mean": 53.0, "std": 0.5, "seeds": 3}])
    text = answers.budget_reading(budget)
    assert text.startswith("From 600 to 8,000 steps: beyond the seeds' spread, Act+Jac (γ=100) +3.00; inside it (a tie), CE +1.00")
    assert "Act+Jac (γ=100) at 2,400 (56.00%, 1 seed)" in text and "CE at" not in text
    assert text.endswith("Highest at 600 steps: CE, 50.50%; at 8,000: Act+Jac (γ=100), 53.00%.")


def test_kept_note_names_choices_the_tables_were_not_trained_at():
    t = _table()                                            # KD chosen at T=4 on validation
    chosen = answers.choose(t)
    assert answers.kept_note(chosen, t, " here") == "Every choice here is a setting the tables above were trained at."
    only_t1 = t[~((t["method"] == "kd") & (t["kd_temperature"] == 4.0))]   # tables trained KD at T=1 only
    note = answers.kept_note(chosen, only_t1)
    assert note.startswith("The grid now chooses, on validation, KD at T=4 α=0.9 (the tables: T=1 α=0.9);")
    assert "Act+Jac" not in note                            # γ=100 is among the tables' settings


def test_best_by_size_names_each_sizes_best_setting_beside_the_pooled_choice():
    t = _table()
    t.loc[(t["method"] == "act+jac") & (t["jac_weight"] == 1.0) & (t["n_per_class"] == 50), "val_acc"] = 70.0
    text = answers.best_by_size(t)
    # γ=100 wins on validation at 5 and 10 (60 against 50), γ=1 at 50 (70 against 60); pooled: (50+50+70)/3 < 60
    assert "Act+Jac: γ=100 at 5, 10; γ=1 at 50 (pooled: γ=100)" in text
    assert "KD: T=4 α=0.9 at 5, 10, 50 (pooled: T=4 α=0.9)" in text and "CE:" not in text   # one setting: nothing to choose
