"""Chapter 1's measurements (lakt.analysis.affine) and chapter 2's helpers (lakt.analysis.propositions).

Each test builds small float64 nets so that "exact" identities can be checked to ~1e-10
and broken ones are far above that.
"""
import math

import matplotlib
import pandas as pd
import pytest
import torch
from torch import nn

from lakt.analysis import affine
from lakt.core import models
from lakt.analysis import propositions as P
from lakt.analysis import propositions
from lakt.core.errors import LaktError

matplotlib.use("Agg")


def vgg(**options):
    return models.vgg4(10, in_channels=1, width=0.125, **options).double().eval()


def images(n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 32, 32, generator=g, dtype=torch.float64)


LABELS = torch.tensor([0, 1, 2, 3, 4, 5])


# ---------------------------------------------------------------- f(x) = grad f(x)^T x

def test_bias_free_relu_vgg_output_is_gradient_times_input():
    net = vgg(bias=False, batch_norm=False)
    x = images()
    assert affine.relative_residual(net, x, LABELS).max() < 1e-10
    assert affine.overall_bias(net, x, LABELS).abs().max() < 1e-10
    # a single output index broadcasts to every input
    assert affine.relative_residual(net, x, 3).shape == (6,)


def test_biases_break_the_identity_in_proportion_to_their_size():
    net = vgg(bias=True, batch_norm=False)
    x = images()
    assert affine.relative_residual(net, x, LABELS).median() > 1e-3
    assert affine.relative_residual(affine.scale_biases(net, 0.0), x, LABELS).max() < 1e-10
    small = affine.relative_residual(affine.scale_biases(net, 1e-4), x, LABELS).median()
    larger = affine.relative_residual(affine.scale_biases(net, 1e-3), x, LABELS).median()
    assert 8 < larger / small < 12  # linear in the bias scale
    # scale_biases copies: the original keeps its biases
    assert affine.relative_residual(net, x, LABELS).median() > 1e-3


def test_fresh_batchnorm_keeps_the_identity_calibrated_batchnorm_breaks_it():
    x = images()
    fresh = vgg(bias=False, batch_norm=True)
    assert affine.relative_residual(fresh, x, LABELS).max() < 1e-10
    data = images(32, seed=2) + 1.0  # non-zero mean, so the running means become non-zero
    weights = [p.clone() for p in fresh.parameters()]
    calibrated = affine.calibrate_batchnorm(fresh, data, batch_size=32)
    assert not calibrated.training
    assert all(torch.equal(a, b) for a, b in zip(weights, calibrated.parameters()))
    first_conv, first_bn = calibrated.features[0], calibrated.features[1]
    with torch.no_grad():
        expected = first_conv(data).mean(dim=(0, 2, 3))
    assert torch.allclose(first_bn.running_mean, expected, atol=1e-12)
    assert affine.relative_residual(calibrated, x, LABELS).median() > 1e-3


def test_calibrate_batchnorm_needs_batchnorm():
    with pytest.raises(LaktError):
        affine.calibrate_batchnorm(vgg(batch_norm=False), images())


def test_hardtanh_is_exact_until_units_saturate():
    net = vgg(bias=False, batch_norm=False, activation="hardtanh")
    x = images()
    assert affine.saturation_fraction(net, 1e-3 * x) == 0.0
    assert affine.relative_residual(net, 1e-3 * x, LABELS).max() < 1e-10
    assert affine.saturation_fraction(net, 30 * x) > 0.1
    assert affine.relative_residual(net, 30 * x, LABELS).median() > 1e-3
    with pytest.raises(LaktError):
        affine.saturation_fraction(vgg(), x)


def test_bias_attribution_adds_up_to_the_overall_bias():
    net = vgg(bias=True, batch_norm=True)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    x = images(3)
    frame = affine.bias_attribution(net, x, LABELS[:3])
    assert set(frame["source"]) == {"conv bias", "BN beta", "BN mean", "linear bias"}
    per_input = frame.groupby("input").agg(total=("contribution", "sum"), bias=("overall_bias", "first"))
    assert (per_input["bias"].abs() > 1e-3).all()
    assert (per_input["total"] - per_input["bias"]).abs().max() < 1e-10
    # without the running means their share is exactly zero, and the rest still adds up
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.zero_()
    frame = affine.bias_attribution(net, x, LABELS[:3])
    assert frame.loc[frame["source"] == "BN mean", "contribution"].abs().max() == 0
    per_input = frame.groupby("input").agg(total=("contribution", "sum"), bias=("overall_bias", "first"))
    assert (per_input["total"] - per_input["bias"]).abs().max() < 1e-10


def test_residual_table_has_one_row_per_model_and_input():
    x = images(4)
    table = affine.residual_table({"a": vgg(bias=False, batch_norm=False), "b": vgg()}, x, LABELS[:4])
    assert len(table) == 8 and set(table["model"]) == {"a", "b"}
    assert torch.allclose(torch.tensor(table["bias"].to_numpy()),
                          torch.tensor((table["f"] - table["grad_dot_x"]).to_numpy()))


# ---------------------------------------------------------------- the remainder of Eq 1

def test_taylor_error_is_zero_inside_a_linear_region_and_second_order_for_smooth_nets():
    x = images(4)
    steps = torch.logspace(-9, 0, 10, dtype=torch.float64)
    relu = affine.taylor_error(vgg(bias=True, batch_norm=False), x, LABELS[:4], steps)
    assert set(relu.columns) == {"input", "step", "error", "relative"} and len(relu) == 40
    assert relu.loc[relu["step"] <= 1e-8, "relative"].max() < 1e-12
    assert relu.loc[relu["step"] == 1.0, "relative"].max() > 1e-6
    radius = affine.exact_radius(relu, tol=1e-12)
    assert len(radius) == 4 and (radius >= 1e-8).all() and (radius < 1.0).all()

    smooth = affine.mlp(1024, activation="tanh", seed=3)
    mid = affine.taylor_error(smooth, x, LABELS[:4], [1e-4, 1e-3, 1e-2, 1e-1]).groupby("step")["relative"].median()
    assert abs(affine.loglog_slope(mid.index, mid.values) - 2) < 0.1


def test_flat_images_sit_on_max_pool_ties_and_jitter_breaks_them():
    net = vgg(bias=True, batch_norm=False)
    x = torch.zeros(4, 1, 32, 32, dtype=torch.float64)
    x[:, :, 8:24, 12:20] = 1.0  # a bar on a flat background, like a digit
    labels = LABELS[:4]
    assert affine.maxpool_ties(net, x)[0] > 0.1
    jittered = affine.break_ties(x, 1e-3, seed=0)
    assert max(affine.maxpool_ties(net, jittered)) == 0
    assert (jittered - x).abs().max() < 1e-2
    steps = [1e-9, 1e-8]
    on_kink = affine.taylor_error(net, x, labels, steps)
    inside = affine.taylor_error(net, jittered, labels, steps)
    assert on_kink["relative"].max() > 1e-12          # first-order error from the tie
    assert inside["relative"].max() < 1e-12


def test_exact_radius_reads_the_grid():
    frame = pd.DataFrame({"input": [0, 0, 0, 1, 1, 1], "step": [1e-3, 1e-2, 1e-1] * 2,
                          "relative": [1e-16, 1e-15, 1e-3, 1e-5, 1e-4, 1e-3]})
    radius = affine.exact_radius(frame, tol=1e-10)
    assert radius[0] == 1e-2 and math.isnan(radius[1])


def test_loglog_slope_and_seeds():
    xs = [1e-3, 1e-2, 1e-1]
    assert affine.loglog_slope(xs, [3 * v ** 2 for v in xs]) == pytest.approx(2.0)
    assert affine.loglog_slope(xs, [-v for v in xs]) == pytest.approx(1.0)  # |y|
    with pytest.raises(LaktError):
        affine.loglog_slope([1.0], [1.0])
    assert affine.derived_seed(0, "a") == affine.derived_seed(0, "a") != affine.derived_seed(0, "b")
    assert affine.derived_seed(0, "a") != 0


def test_mlp_is_seeded_and_leaves_the_global_generator_alone():
    state = torch.random.get_rng_state()
    a, b = affine.mlp(8, 3, seed=5), affine.mlp(8, 3, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a[1].weight, affine.mlp(8, 3, seed=6)[1].weight)
    assert a[1].weight.dtype == torch.float64
    with pytest.raises(LaktError):
        affine.mlp(8, activation="sigmoid")


def test_settings():
    assert affine.settings("smoke")["inputs"] < affine.settings("cpu")["inputs"]
    assert propositions.chapter2_settings("smoke")["samples"] < propositions.chapter2_settings("cpu")["samples"]
    with pytest.raises(LaktError):
        affine.settings("huge")
    with pytest.raises(LaktError):
        propositions.chapter2_settings("huge")


def test_chapter1_plots_return_figures():
    x = images(3)
    table = affine.residual_table({"relu": vgg(bias=False, batch_norm=False)}, x, LABELS[:3])
    assert affine.plot_residuals(table) is not None
    errors = {"relu": affine.taylor_error(vgg(), x, LABELS[:3], [1e-6, 1e-3, 1.0])}
    assert affine.plot_taylor(errors) is not None
    fig = affine.plot_gradients(x, x, ["a", "b", "c"])
    assert len(fig.axes) == 9 + 2          # 3 × 3 panels and one colour bar per gradient row
    bars = fig.axes[9:]
    assert all(b.get_ylim()[0] == pytest.approx(-b.get_ylim()[1]) for b in bars)   # symmetric scales
    import matplotlib.pyplot as plt
    plt.close("all")


# ---------------------------------------------------------------- chapter 2 helpers

def small_pair(activation, seed=0):
    return propositions.theory_pair(activation, seed, in_features=8, num_classes=4, hidden=16)


def points(n=4, seed=2):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 8, generator=g, dtype=torch.float64), torch.tensor([0, 1, 2, 3])[:n]


def test_sweep_adds_uniform_columns():
    teacher, student = small_pair("relu", seed=1)
    x, _ = points()
    frame = propositions.sweep(P.proposition1, [1e-4, 1e-3], teacher, student, x, samples=200)
    for column in ("sigma", "lhs", "rhs", "noiseless", "residual", "residual_se", "measured_coef", "paper_coef"):
        assert column in frame
    assert frame["paper_coef"].to_numpy() == pytest.approx(frame["jacobian"].to_numpy())
    assert (frame["residual_method"] == "control variate").all()
    # piecewise linear, noise inside one linear region: the measured coefficient is the paper's
    assert frame["residual"].abs().max() < 1e-14
    assert frame["measured_coef"].to_numpy() == pytest.approx(frame["paper_coef"].to_numpy(), rel=1e-6)
    with pytest.raises(LaktError):
        propositions.sweep(P.proposition1, [0.0], teacher, student, x)


def test_sweep_all_covers_the_four_statements():
    teacher, student = small_pair("tanh")
    x, labels = points()
    frame = propositions.sweep_all(teacher, student, x, labels, [0.01, 0.1], samples=100)
    assert list(frame["statement"].unique()) == list(propositions.STATEMENTS) and len(frame) == 8
    eq = frame[frame["statement"].isin(["Eq 2", "Eq 3"])]
    assert (eq["residual"] == eq["lhs"] - eq["rhs"]).all() and (eq["residual_method"] == "plain").all()


def test_residual_order_is_two_for_smooth_nets_and_four_when_outputs_match():
    teacher, student = small_pair("tanh", seed=1)
    x, _ = points(1)
    sigmas = [0.003, 0.01, 0.03, 0.1]
    apart = propositions.sweep(P.proposition1, sigmas, teacher, student, x, samples=1000)
    matched = propositions.match_output(student, teacher, x)
    with torch.no_grad():
        assert (teacher(x) - matched(x)).abs().max() < 1e-12
    together = propositions.sweep(P.proposition1, sigmas, teacher, matched, x, samples=1000)
    assert abs(propositions.fit_order(apart) - 2) < 0.3
    assert abs(propositions.fit_order(together) - 4) < 0.3
    assert math.isnan(propositions.fit_order(apart.iloc[:1]))
    with pytest.raises(LaktError):
        propositions.match_output(student, teacher, points(2)[0])


def test_second_order_coefficient_is_half_the_hessian_trace():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 5, generator=g, dtype=torch.float64)
    a = a @ a.T
    x = torch.randn(3, 5, generator=g, dtype=torch.float64)
    quadratic = lambda v: 0.5 * ((v @ a) * v).sum(1) + v.sum(1)
    assert propositions.second_order_coefficient(quadratic, x, chunk=2) == pytest.approx([0.5 * a.trace().item()] * 3)


def test_coefficients_match_taylor2_and_expose_the_paper_eq3_term():
    teacher, student = small_pair("tanh", seed=1)
    x, labels = points()
    coef = propositions.coefficients(teacher, student, x, labels, sigma=1e-2, samples=4000).set_index("statement")
    assert (coef["z_taylor2"].abs() < 4).all()
    # Eq 3 as printed (factor 1, no Hessian term) is far from the measured sigma^2 coefficient
    assert abs(coef.loc["Eq 3", "z_paper"]) > 10


def test_coefficients_of_props_match_the_paper_for_relu_nets():
    teacher, student = small_pair("relu", seed=1)
    x, labels = points()
    coef = propositions.coefficients(teacher, student, x, labels, sigma=1e-3, samples=400).set_index("statement")
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


def test_chapter2_plots():
    teacher, student = small_pair("tanh")
    x, labels = points()
    frame = propositions.sweep_all(teacher, student, x, labels, [0.01, 0.1], samples=50)
    assert propositions.plot_coefficients(frame[frame["statement"] == "Prop 1"], taylor2=0.1, title="t") is not None
    assert propositions.plot_residuals({"a": frame[frame["statement"] == "Prop 1"]}) is not None
    one = propositions.at_sigma(teacher, student, x, labels, 0.1, samples=50)
    assert len(propositions.plot_at_sigma(one, taylor2={s: 0.0 for s in propositions.STATEMENTS}, title="t")) == 4
    import matplotlib.pyplot as plt
    plt.close("all")
