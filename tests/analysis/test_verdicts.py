"""lakt.analysis.verdicts: the verdict table's measures and words, computed from run tables."""
import math

import pandas as pd
import pytest

from lakt.analysis import paper, verdicts


def test_proposition_word():
    assert verdicts.proposition(True, 4.0) == "holds"
    assert verdicts.proposition(True, 2.0) == "partly"           # smooth nets: O(σ²)
    assert verdicts.proposition(False, 2.0) == "does not hold"


def _students(diffs: dict, seeds=(0, 1, 2)) -> pd.DataFrame:
    """CE at 50% everywhere; Act+CE at 50 + diffs[(size, seed)]."""
    rows = []
    for (n, s), d in diffs.items():
        rows.append({"method": "ce", "n_per_class": n, "seed": s, "test_acc": 50.0, "val_acc": 50.0})
        rows.append({"method": "act+ce", "n_per_class": n, "seed": s, "test_acc": 50.0 + d, "val_acc": 50.0})
    return pd.DataFrame(rows)


def test_transfer_measure_is_paired_by_seed_and_averaged_per_seed():
    # size 5: +1, +2, +3 (mean 2, std 1: a win); size 10: +1, -1, +0 (a tie); size 500 is past ≤ 100
    diffs = {(5, 0): 1.0, (5, 1): 2.0, (5, 2): 3.0, (10, 0): 1.0, (10, 1): -1.0, (10, 2): 0.0, (500, 0): 90.0}
    m = verdicts.transfer_measure(_students(diffs), ("act+ce", ""), ("ce", ""))
    # per seed, mean over sizes 5 and 10: 1.0, 0.5, 1.5 -> mean 1.0, std 0.5
    assert m["mean"] == pytest.approx(1.0) and m["std"] == pytest.approx(0.5)
    assert (m["seeds"], m["wins"], m["losses"], m["ties"]) == (3, 1, 0, 1)
    assert m["word"] == "holds"


def test_one_seed_is_not_testable():
    m = verdicts.transfer_measure(_students({(5, 0): 4.0, (10, 0): 4.0}, seeds=(0,)), ("act+ce", ""), ("ce", ""))
    assert m["seeds"] == 1 and math.isnan(m["std"]) and m["word"] == "not testable here"
    assert verdicts._points(m) == "+4.00 pts (1 seed)"


def test_missing_method_is_not_run():
    m = verdicts.transfer_measure(_students({(5, 0): 1.0}), ("act+jac", "γ=1"), ("act", ""))
    assert m["word"] == "not testable here" and verdicts._points(m) == "not run"


def test_noise_measure_strongest_penalty_against_none():
    rows = [{"penalty": p, "seed": s, "sigma": sig, "acc": 80.0 - 100 * sig + (10 * sig * p) + s}
            for p in (0.0, 0.5, 1.0) for s in (0, 1) for sig in (0.0, 0.1, 0.2)]
    m = verdicts.noise_measure(pd.DataFrame(rows))
    # penalty 1 gains 10σ: +1 at σ = 0.1, +2 at σ = 0.2 (σ = 0 left out); equal for both seeds
    assert m["penalty"] == 1.0 and m["mean"] == pytest.approx(1.5) and m["std"] == pytest.approx(0.0)


def test_paper_measures_from_its_tables():
    t1 = paper.table1()
    # Act+CE − CE at 5, 10, 50, 100: 6.88, 6.99, 6.38, 6.17
    assert verdicts.paper_transfer(t1, "act+ce", "ce") == pytest.approx((6.88 + 6.99 + 6.38 + 6.17) / 4)
    strongest, gain = verdicts.paper_noise(paper.table3())
    assert strongest == 1.0
    assert gain == pytest.approx(((62.66 - 61.9) + (57.53 - 47.53) + (47.48 - 29.63) + (35.43 - 17.69)) / 4)


def test_show_stacks_on_narrow_screens_and_colours_the_word():
    table = pd.DataFrame([{"question": "(a)", "claim": "c", "paper": "p", "ours": "+1.00 ± 0.50 pts (3 seeds)",
                           "paper scale": "not run", "scale": "s", "verdict": "holds", "where": "x.html#y"}]
                         ).set_index("question")
    shown = verdicts.show(table)
    assert 'data-label="ours, CPU scale"' in shown.html and 'href="x.html#y"' in shown.html
    assert "#d9f2d9" in shown.html and "not testable here" in shown.html  # the word and the rules beneath
    assert "holds" in repr(shown) and "x.html" not in repr(shown)
    assert list(verdicts.counts(table)) == [1, 0, 0, 0]
