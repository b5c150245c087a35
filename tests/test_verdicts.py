"""lakt.analysis.verdicts: the words of the "Results at a glance" page, computed from measurements."""
import pandas as pd
import pytest

from lakt import runs
from lakt.analysis import paper, report, verdicts


def test_theory_verdicts_follow_the_numbers():
    assert verdicts.identity(3e-16) == "holds" and verdicts.identity(0.2) == "does not hold"
    assert verdicts.exact_taylor(1e-15, 0.0) == "holds"
    assert verdicts.exact_taylor(1e-15, 0.75) == "partly"        # some raw images sit on a kink
    assert verdicts.exact_taylor(1e-6, 0.0) == "does not hold"
    assert verdicts.proposition(True, 4.0) == "holds"
    assert verdicts.proposition(True, 2.0) == "partly"           # smooth nets: O(σ²)
    assert verdicts.proposition(False, 2.0) == "does not hold"
    assert verdicts.coefficient(pd.Series([0.5, -1.0])) == "holds"
    assert verdicts.coefficient(pd.Series([40.0, -12.0])) == "does not hold"
    assert verdicts.coefficient(pd.Series([40.0, 1.0])) == "partly"


def test_combine_datasets():
    assert verdicts.combine(["holds", "holds"]) == "holds"
    assert verdicts.combine(["holds", "does not hold"]) == "partly"
    assert verdicts.combine(["does not hold", "not testable here"]) == "does not hold"
    assert verdicts.combine(["not testable here"]) == "not testable here"


def _table(means: pd.DataFrame, std: float) -> pd.DataFrame:
    return pd.concat({"mean": means, "std": means * 0 + std}, axis=1, names=["stat", "n_per_class"])


def test_transfer_rows_read_the_papers_table_and_ours_with_ties():
    cols = pd.Index([5, 10], name="n_per_class")
    means = pd.DataFrame([[30.0, 40.0], [35.0, 45.0], [35.2, 44.9]], index=["ce", "act", "act+jac"], columns=cols)
    rows = verdicts.transfer_rows(paper.table1(), {"digits": _table(means, 1.0), "CIFAR-10 (JPEG)": None}, "Table 1")
    a, b = rows
    assert a["question"] == "(a) Table 1" and a["paper"].startswith("20 of 20 won")
    assert a["digits"].startswith("holds: 4 of 4 won") and a["verdict"] == "holds"
    assert b["paper"].startswith("4 of 4 won")
    assert b["digits"].startswith("does not hold: 0 of 2 won, 0 lost, 2 tied")   # +0.2 / -0.1 inside ±1.4
    assert b["CIFAR-10 (JPEG)"].startswith("not testable here") and b["verdict"] == "does not hold"


def test_robustness_row_on_the_papers_table3():
    row = verdicts.robustness_row(paper.table3(), {"digits": report.paper_robustness_table(paper.table3())})
    assert row["verdict"] == "holds" and "penalty 0 loses 47.1" in row["paper"]


def test_at_a_glance_refuses_an_unknown_word():
    rows = [{"question": "(x)", "claim": "c", "verdict": "maybe"}]
    with pytest.raises(ValueError, match="verdicts must be one of"):
        verdicts.at_a_glance(rows, ["question", "claim", "verdict"])


def test_batch_coupled_by_preset_or_config_field():
    assert verdicts.batch_coupled("cifar10-cpu") and verdicts.batch_coupled("cifar10-cpu-gamma")
    assert not verdicts.batch_coupled("cpu")
    c = runs.RunConfig("teacher", "digits", "vgg9", 0.125, "ce", None, 0, 1)
    assert verdicts.batch_coupled("cifar10-cpu", [c])   # no run on the student gradient: the preset decides
    student = runs.RunConfig("student", "digits", "vgg4", 0.125, "act+jac", 5, 0, 1, teacher=c)
    assert not verdicts.batch_coupled("cifar10-cpu", [student])  # the run's own field decides
    import dataclasses
    assert verdicts.batch_coupled("cpu", [dataclasses.replace(student, batch_statistics="coupled")])
