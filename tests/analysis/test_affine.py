"""Chapter 1's measurements (lakt.analysis.affine).

Each test builds small float64 nets so that "exact" identities can be checked to ~1e-10
and broken ones are far above that.
"""
import math
from types import SimpleNamespace

import matplotlib
import pandas as pd
import pytest
import torch
from torch import nn

from lakt.analysis import affine
from lakt.core import models
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
    assert affine._overall_bias(net, x, LABELS).abs().max() < 1e-10
    # a single output index broadcasts to every input
    assert affine.relative_residual(net, x, 3).shape == (6,)


def test_biases_break_the_identity_in_proportion_to_their_size():
    net = vgg(bias=True, batch_norm=False)
    x = images()
    assert affine.relative_residual(net, x, LABELS).median() > 1e-3
    assert affine.relative_residual(affine._scale_biases(net, 0.0), x, LABELS).max() < 1e-10
    median = affine.bias_scale_residuals(net, x, LABELS, factors=(1e-4, 1e-3, 1.0))
    assert 8 < median[1e-3] / median[1e-4] < 12  # linear in the bias scale
    assert median[1.0] == pytest.approx(affine.relative_residual(net, x, LABELS).median().item())
    # the biases are scaled on copies: the original keeps its biases
    assert affine.relative_residual(net, x, LABELS).median() > 1e-3


def test_fresh_batchnorm_keeps_the_identity_calibrated_batchnorm_breaks_it():
    x = images()
    fresh = vgg(bias=False, batch_norm=True)
    assert affine.relative_residual(fresh, x, LABELS).max() < 1e-10
    data = images(32, seed=2) + 1.0  # non-zero mean, so the running means become non-zero
    weights = [p.clone() for p in fresh.parameters()]
    calibrated = affine._calibrate_batchnorm(fresh, data, batch_size=32)
    assert not calibrated.training
    assert all(torch.equal(a, b) for a, b in zip(weights, calibrated.parameters()))
    first_conv, first_bn = calibrated.features[0], calibrated.features[1]
    with torch.no_grad():
        expected = first_conv(data).mean(dim=(0, 2, 3))
    assert torch.allclose(first_bn.running_mean, expected, atol=1e-12)
    assert affine.relative_residual(calibrated, x, LABELS).median() > 1e-3


def test_calibrate_batchnorm_needs_batchnorm():
    with pytest.raises(LaktError):
        affine._calibrate_batchnorm(vgg(batch_norm=False), images())


def test_hardtanh_is_exact_until_units_saturate():
    net = vgg(bias=False, batch_norm=False, activation="hardtanh")
    x = images()
    assert affine._saturation_fraction(net, 1e-3 * x) == 0.0
    assert affine.relative_residual(net, 1e-3 * x, LABELS).max() < 1e-10
    assert affine._saturation_fraction(net, 30 * x) > 0.1
    assert affine.relative_residual(net, 30 * x, LABELS).median() > 1e-3
    with pytest.raises(LaktError):
        affine._saturation_fraction(vgg(), x)


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


def test_residuals_have_one_row_per_model_and_input():
    x = images(4)
    nets = {"a": vgg(bias=False, batch_norm=False), "b": vgg()}
    table = affine._residuals(nets, x, LABELS[:4])
    assert len(table) == 8 and list(table["model"]) == ["a"] * 4 + ["b"] * 4
    assert table["relative"].iloc[4:].tolist() == affine.relative_residual(nets["b"], x, LABELS[:4]).tolist()
    value = nets["b"](x).gather(1, LABELS[:4].view(-1, 1)).squeeze(1)
    bias = affine._overall_bias(nets["b"], x, LABELS[:4])
    assert torch.allclose(torch.tensor(table["relative"].iloc[4:].to_numpy()), (bias / value).abs().detach())


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


def test_chapter_inputs_follow_the_preset():
    smoke, cpu = affine.chapter_inputs("smoke", "digits"), affine.chapter_inputs("cpu", "digits")
    assert len(smoke.x) == 64 < len(cpu.x) == 256 and smoke.x.dtype == torch.float64
    assert smoke.shape == {"num_classes": 10, "in_channels": 1, "width": 0.125}
    with pytest.raises(LaktError):
        affine.chapter_inputs("huge", "digits")


def test_chapter1_tables_and_figures():
    x = images(3)
    inputs = SimpleNamespace(shape={"num_classes": 10, "in_channels": 1, "width": 0.125}, where=torch.device("cpu"),
                             ds=SimpleNamespace(train=SimpleNamespace(x=images(16, seed=3).float() + 1)))
    nets = affine.untrained_nets(inputs, seed=0)
    torch.manual_seed(0)
    assert all(torch.equal(p, q) for p, q in zip(nets["VGG-4"].parameters(), models.vgg4(
        10, in_channels=1, width=0.125, bias=False, batch_norm=False).double().parameters()))
    table = affine.bias_free_table(nets, x, LABELS[:3])
    assert list(table.index) == ["VGG-4", "VGG-9"] and (table["max"] < 1e-10).all()
    saturation = affine.saturation_sweep(nets, x, LABELS[:3], scales=(1e-3, 30.0))
    assert saturation["saturated"].iloc[0] == 0 and saturation["saturated"].iloc[1] > 0.1
    assert affine.residuals_figure(nets, nets["VGG-4 + biases"], x, LABELS[:3]) is not None
    errors = {"relu": affine.taylor_error(vgg(), x, LABELS[:3], [1e-6, 1e-3, 1.0])}
    assert affine.taylor_figure(errors) is not None
    fig = affine.gradients_figure(vgg(), x, LABELS[:3], [str(i) for i in range(10)])
    assert len(fig.axes) == 9 + 2          # 3 × 3 panels and one colour bar per gradient row
    bars = fig.axes[9:]
    assert all(b.get_ylim()[0] == pytest.approx(-b.get_ylim()[1]) for b in bars)   # symmetric scales
    import matplotlib.pyplot as plt
    plt.close("all")
