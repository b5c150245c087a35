"""Choosing hyper-parameters on the validation split: hand-made runs with a known answer."""
import math

import pandas as pd
import pytest

from lakt.analysis import answers
from lakt.core.errors import LaktError


def _row(method, n, seed, val, test, **knobs):
    base = {k: math.nan for k in answers.KNOBS}
    return {"method": method, "n_per_class": n, "seed": seed, "val_acc": val, "test_acc": test, **base, **knobs}


def _table():
    rows = []
    for seed in (0, 1):
        for n in (5, 100, 500):
            rows.append(_row("ce", n, seed, 50 + seed, 40 + n / 100 + seed))
            # gamma 10 wins at <= 100 on validation (by 2 points), gamma 1 wins at 500 (must not matter);
            # on the *test* set gamma 1 is better everywhere, so a test-set choice would differ
            rows.append(_row("act+jac", n, seed, 60 + (5 if n == 500 else 0), 70 + seed, jac_weight=1.0))
            rows.append(_row("act+jac", n, seed, 62, 65 + seed, jac_weight=10.0))
            for t in (1.0, 4.0):
                rows.append(_row("kd", n, seed, 55 + t, 50 + t + seed, kd_temperature=t, kd_alpha=0.5))
    rows.append(_row("teacher-like", None, 0, 90, 90))  # not a student: ignored
    return pd.DataFrame(rows)


def test_validation_curves_pool_the_low_data_sizes():
    curves = answers.validation_curves(_table())
    assert curves.loc[("act+jac", "γ=1"), "pooled"] == 60 and curves.loc[("act+jac", "γ=10"), "pooled"] == 62
    assert curves.loc[("act+jac", "γ=1"), 500] == 65 and curves.loc[("act+jac", "γ=1"), "runs"] == 4
    assert curves.loc[("ce", ""), "pooled"] == 50.5
    assert list(curves.loc["kd"].index) == ["T=1 α=0.5", "T=4 α=0.5"]


def test_only_cells_finished_at_every_value_are_compared():
    table = _table()
    # gamma 1 has one extra, very good run that gamma 10 lacks: it must not decide the choice
    table = pd.concat([table, pd.DataFrame([_row("act+jac", 5, 2, 99, 99, jac_weight=1.0)])])
    assert answers.choose(table).loc["act+jac", "setting"] == "γ=10"
    assert answers.validation_curves(table).loc[("act+jac", "γ=1"), "runs"] == 4


def test_a_choice_on_the_grids_edge_is_named_knob_by_knob():
    table = _table()
    table = pd.concat([table, pd.DataFrame([_row("act+jac", n, s, 61, 60, jac_weight=100.0)
                                            for n in (5, 100, 500) for s in (0, 1)])])
    chosen = answers.choose(table)
    # γ 10 is inside {1, 10, 100}; KD's T = 4 is the largest of {1, 4}, and its one α no grid at all
    assert chosen.loc["act+jac", "edge"] == "" and chosen.loc["ce", "edge"] == ""
    assert chosen.loc["kd", "edge"] == "T: the largest of 2"
    assert answers.edge_note(chosen) == ("Chosen on an edge of the grid, so the best value may lie beyond it: "
                                         "KD at T=4 α=0.5 (T: the largest of 2).")
    assert answers.grid_edge(["σ=0.03", "σ=0.1", "σ=0.3"], "σ=0.03") == "σ: the smallest of 3"
    assert answers.edge_note(chosen.drop(index="kd"), " at 500 epochs") == "No chosen value at 500 epochs sits on an edge of its grid."


def test_runs_partly_without_validation_are_refused():
    table = _table()
    table.loc[0, "val_acc"] = math.nan
    with pytest.raises(LaktError, match="no val_acc"):
        answers.choose(table)
    table["val_acc"] = math.nan   # no validation split at all: only a single setting per method can be taken
    with pytest.raises(LaktError, match="nothing can choose between"):
        answers.choose(table)


def test_transfer_table_has_the_paper_rows_as_specified_then_the_choices():
    table = answers.transfer_table(_table())
    assert list(table.index) == ["ce", "act+jac", "act+jac (γ=10)", "kd (T=4 α=0.5)"]
    assert table.loc["act+jac", ("mean", 5)] == 70.5  # gamma 1: the paper's constants
    assert table.loc["act+jac (γ=10)", ("mean", 5)] == 65.5 and table.loc["act+jac (γ=10)", ("seeds", 500)] == 2
    assert table.loc["ce", ("text", 5)] == "40.55 ± 0.71"
