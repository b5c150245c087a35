"""Objective pinned to golden values: every term and every method's total, computed once by
the independent torch.func implementation in ``golden.py`` (stored in golden_objective.json)."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from lakt import Objective, get_method

_spec = importlib.util.spec_from_file_location("golden", Path(__file__).with_name("golden.py"))
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)
TABLE = json.loads(golden.FILE.read_text())


@pytest.mark.parametrize("case", golden.CASES, ids=[golden.key(*c) for c in golden.CASES])
def test_objective_matches_the_golden_values(case):
    method, form, mode = case
    student, teacher, x, y = golden.nets()
    student.train(mode == "train")
    objective = Objective(get_method(method), teacher, jacobian_form=form)
    torch.manual_seed(golden.SEED)
    total, terms = objective(student, x, y)
    want = TABLE[golden.key(*case)]
    assert {k: v.item() for k, v in terms.items() if k != "logits"} == pytest.approx(want["terms"], rel=1e-9)
    assert total.item() == pytest.approx(want["total"], rel=1e-9)


def test_every_method_has_a_golden_case():
    from lakt import METHODS
    assert set(METHODS) == {c[0] for c in golden.CASES}
