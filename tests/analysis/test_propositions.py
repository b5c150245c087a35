"""Props 1 and 2 checked by Monte-Carlo on small piecewise-linear nets (float64)."""
import math

import pytest
import torch
from torch import nn

from lakt.analysis import propositions


def relu_net(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4)).double()


def test_proposition1_holds_for_piecewise_linear_nets():
    teacher, student = relu_net(1), relu_net(2)
    x = torch.randn(6, 8, dtype=torch.float64)
    sigma = 1e-4  # small enough that no draw crosses a ReLU kink
    r = propositions.proposition1(teacher, student, x, sigma, samples=8000)
    # noise term resolved: sigma^2 * jacobian is many standard errors above zero
    assert sigma ** 2 * r["jacobian"] > 20 * r["lhs_se"]
    # LHS = distillation + sigma^2 * sum ||grad T - grad S||^2 within Monte-Carlo error
    assert abs(r["lhs"] - r["rhs"]) < 4 * r["lhs_se"] + 1e-12
    # and without the Jacobian term it would fail
    assert abs(r["lhs"] - r["distillation"]) > 10 * r["lhs_se"]
    # inside one linear region the residual vanishes (float precision)
    assert abs(r["residual"]) < 1e-12


def test_proposition1_residual_grows_once_noise_crosses_kinks():
    teacher, student = relu_net(1), relu_net(2)
    x = torch.randn(6, 8, dtype=torch.float64)
    r = propositions.proposition1(teacher, student, x, 1.0, samples=2000)
    assert abs(r["residual"]) > 4 * r["residual_se"]


def test_proposition2_holds_for_piecewise_linear_nets():
    model = relu_net(3)
    x = torch.randn(6, 8, dtype=torch.float64)
    y = nn.functional.one_hot(torch.tensor([0, 1, 2, 3, 0, 1]), 4).double()
    sigma = 1e-4  # small enough that no draw crosses a ReLU kink
    r = propositions.proposition2(model, x, y, sigma, samples=8000)
    assert sigma ** 2 * r["jacobian"] > 20 * r["lhs_se"]
    assert abs(r["lhs"] - r["rhs"]) < 4 * r["lhs_se"] + 1e-12
    assert abs(r["lhs"] - r["loss"]) > 10 * r["lhs_se"]


def test_smooth_nets_have_a_second_order_residual():
    """The curvature term the paper's proof drops: residual ~ sigma^2 when T(x) != S(x)."""
    torch.manual_seed(4)
    mk = lambda: nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4)).double()
    teacher, student = mk(), mk()
    x = torch.randn(6, 8, dtype=torch.float64)
    small = propositions.proposition1(teacher, student, x, 0.01, samples=2000)
    large = propositions.proposition1(teacher, student, x, 0.04, samples=2000)
    ratio = large["residual"] / small["residual"]
    assert 10 < ratio < 22  # 4x sigma -> ~16x residual (order 2), not 256x (order 4)


def t(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_eq2_right_side():
    tp, sp = t([0.5, 0.5]), t([0.25, 0.75])
    tj, sj = t([1.0], [2.0]).view(1, 2, 1), t([2.0], [1.0]).view(1, 2, 1)
    ce = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    correction = 0.01 * (2 / 0.25 + 2 / 0.75)
    got = propositions.eq2_right_side(tp, sp, tj, sj, sigma=0.1)
    assert got.item() == pytest.approx(ce - correction)  # 0.730321...
    assert got.item() == pytest.approx(0.7303213, abs=1e-6)


def test_eq3_right_side():
    y, sp = t([0.0, 1.0]), t([0.25, 0.75])
    sj = t([2.0], [1.0]).view(1, 2, 1)
    got = propositions.eq3_right_side(y, sp, sj, sigma=0.1)
    assert got.item() == pytest.approx(-math.log(0.75) + 0.01 * 1 / 0.75 ** 2)
    assert got.item() == pytest.approx(0.3054597, abs=1e-6)
