"""Props 1 and 2 checked by Monte-Carlo on small piecewise-linear nets (float64)."""
import math

import matplotlib
import pytest
import torch
from torch import nn

from lakt.analysis import propositions
from lakt.core.errors import LaktError

matplotlib.use("Agg")


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


# ---------------------------------------------------------------- chapter 2's tables and figures

def small_pair(activation, seed=0):
    return propositions.theory_pair(activation, seed, in_features=8, num_classes=4, hidden=16)


def points(n=4, seed=2):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 8, generator=g, dtype=torch.float64), torch.tensor([0, 1, 2, 3])[:n]


def test_chapter_inputs_follow_the_preset():
    smoke, cpu = propositions.chapter_inputs("smoke"), propositions.chapter_inputs("cpu", samples=7)
    assert len(smoke.x) == 4 < len(cpu.x) == 8 and smoke.samples == 400 and cpu.samples == 7
    assert list(smoke.pairs) == ["ReLU MLP", "tanh MLP"] and len(smoke.sigmas) == 9
    with pytest.raises(LaktError):
        propositions.chapter_inputs("huge")


def test_sweeps_add_uniform_columns():
    x, labels = points()
    frame = propositions.statement_sweeps({"p": small_pair("relu", seed=1)}, x, labels, [1e-4, 1e-3], samples=200)["p"]
    assert list(frame["statement"].unique()) == list(propositions.STATEMENTS) and len(frame) == 8
    prop1 = frame[frame["statement"] == "Prop 1"]
    for column in ("sigma", "lhs", "rhs", "noiseless", "residual", "residual_se", "measured_coef", "paper_coef"):
        assert column in frame
    assert prop1["paper_coef"].to_numpy() == pytest.approx(prop1["jacobian"].to_numpy())
    assert (prop1["residual_method"] == "control variate").all()
    # piecewise linear, noise inside one linear region: the measured coefficient is the paper's
    assert prop1["residual"].abs().max() < 1e-14
    assert prop1["measured_coef"].to_numpy() == pytest.approx(prop1["paper_coef"].to_numpy(), rel=1e-6)
    eq = frame[frame["statement"].isin(["Eq 2", "Eq 3"])]
    assert (eq["residual"] == eq["lhs"] - eq["rhs"]).all() and (eq["residual_method"] == "plain").all()
    with pytest.raises(LaktError):
        propositions.statement_sweeps({"p": small_pair("relu")}, x, labels, [0.0])


def test_residual_order_is_two_for_smooth_nets_and_four_when_outputs_match():
    x, labels = points(1)
    sigmas = [0.003, 0.01, 0.03, 0.1]
    pairs = {"ReLU MLP": small_pair("relu"), "tanh MLP": small_pair("tanh", seed=1)}
    sweeps = propositions.statement_sweeps(pairs, x, labels, sigmas, samples=1000)
    frames = propositions.order_sweeps(pairs, sweeps, x, sigmas, samples=1000)
    orders = propositions.residual_orders(frames)
    assert abs(orders["Prop 1, tanh, d ≠ 0"] - 2) < 0.3
    assert abs(orders["Prop 1, tanh, d = 0"] - 4) < 0.3
    assert math.isnan(propositions.residual_orders({"one": frames["Prop 1, tanh, d ≠ 0"].iloc[:1]})["one"])
    teacher, student = pairs["tanh MLP"]
    with torch.no_grad():
        assert (teacher(x) - propositions._match_output(student, teacher, x)(x)).abs().max() < 1e-12
    with pytest.raises(LaktError):
        propositions._match_output(student, teacher, points(2)[0])


def test_second_order_coefficient_is_half_the_hessian_trace():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 5, generator=g, dtype=torch.float64)
    a = a @ a.T
    x = torch.randn(3, 5, generator=g, dtype=torch.float64)
    quadratic = lambda v: 0.5 * ((v @ a) * v).sum(1) + v.sum(1)
    assert propositions._second_order_coefficient(quadratic, x, chunk=2) == pytest.approx([0.5 * a.trace().item()] * 3)


def test_coefficients_match_taylor2_and_expose_the_paper_eq3_term():
    x, labels = points()
    coef = propositions.coefficient_table({"tanh": small_pair("tanh", seed=1)}, x, labels, sigma=1e-2,
                                          samples=4000).loc["tanh"]
    assert (coef["z_taylor2"].abs() < 4).all()
    # Eq 3 as printed (factor 1, no Hessian term) is far from the measured sigma^2 coefficient
    assert abs(coef.loc["Eq 3", "z_paper"]) > 10


def test_coefficients_of_props_match_the_paper_for_relu_nets():
    x, labels = points()
    coef = propositions.coefficient_table({"relu": small_pair("relu", seed=1)}, x, labels, sigma=1e-3,
                                          samples=400).loc["relu"]
    for statement in ("Prop 1", "Prop 2"):
        row = coef.loc[statement]
        assert row["paper"] == pytest.approx(row["taylor2"], rel=1e-9)
        assert row["measured"] == pytest.approx(row["paper"], rel=1e-8)
    # while Eq 3's sigma^2 term misses even here, where the logits are exactly linear
    assert abs(coef.loc["Eq 3", "z_paper"]) > 10 and abs(coef.loc["Eq 3", "z_taylor2"]) < 4


def test_confident_wrong_students():
    _, student = small_pair("relu")
    x, labels = points(1)
    frame = propositions.confident_wrong(student, x, int(labels[0]), [0, 10, 60], sigma=1e-3, samples=200)
    assert (frame["p_label"].diff().dropna() < 0).all()
    assert frame["paper64"].to_numpy() == pytest.approx(frame["log_space"].to_numpy(), rel=1e-9)
    last = frame.iloc[-1]
    assert not (math.isfinite(last["paper32"]) and last["paper32"] > 0)  # float32 underflow: 0 or NaN
    assert math.isfinite(frame.iloc[0]["paper32"]) and frame.iloc[0]["paper32"] > 0
    assert last["paper64"] / last["taylor2"] > 1e6
    assert (frame["roundoff"] > 0).all()
    assert propositions.confident_wrong_figure(frame) is not None


def test_chapter2_figures_and_tables():
    x, labels = points()
    pairs = {"tanh": small_pair("tanh")}
    sweeps = propositions.statement_sweeps(pairs, x, labels, [0.01, 0.1], samples=50)
    taylor2 = propositions.exact_coefficients(pairs, x, labels)
    assert set(taylor2["tanh"]) == set(propositions.STATEMENTS)
    assert len(propositions.coefficient_figure(sweeps["tanh"], taylor2["tanh"], "t").axes) == 4
    assert propositions.residuals_figure({"a": sweeps["tanh"][sweeps["tanh"]["statement"] == "Prop 1"]}) is not None
    inputs = propositions.Inputs(x, labels, pairs, [0.01, 0.1], 50, {"widget_samples": 50}, "")
    assert len(propositions.at_sigma_figure(inputs, taylor2, "tanh", 0.1).axes) == 4
    text = repr(propositions.ratio_table(sweeps, [0.01, 0.1]))
    prop1 = sweeps["tanh"][sweeps["tanh"]["statement"] == "Prop 1"].iloc[0]
    assert text.startswith("The paper's σ² term") and f"{prop1['paper_coef'] / prop1['measured_coef']:.6f}" in text
    import matplotlib.pyplot as plt
    plt.close("all")
