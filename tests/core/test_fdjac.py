"""Prop 1 as an estimator: finite-difference Jacobian matching (act+fdjac) against the exact full-Jacobian term."""
import pytest
import torch

from lakt.core import losses, models
from lakt.core.errors import LaktError
from lakt.core.jacobian import full_jacobian
from lakt.core.methods import get_method
from lakt.core.objective import Objective
from lakt.runs.config import RunConfig


def _piecewise_linear_pair():
    """Student and teacher: float64 ReLU/max-pool VGGs in eval mode (BatchNorm affine) -- piecewise linear."""
    nets = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        net = models.vgg4(10, width=0.125, in_channels=1).double()
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        nets.append(net.eval())
    return nets


@pytest.mark.slow
def test_expectation_approaches_the_exact_plain_full_jacobian_term_as_h_shrinks():
    student, teacher = _piecewise_linear_pair()
    torch.manual_seed(0)
    images = torch.randn(2, 1, 32, 32, dtype=torch.float64)
    draws = 1000
    x = images.repeat_interleave(draws, dim=0)  # every image, `draws` directions each
    y = torch.zeros(len(x), dtype=torch.long)
    # The exact term: losses.match_jacobians of all k rows, i.e. mean_b sum_i ||grad S_i(x_b) - grad T_i(x_b)||^2
    js, jt = full_jacobian(student, images), full_jacobian(teacher, images)
    exact = losses.match_jacobians(js, jt).item()
    a = (js - jt).flatten(2)                                     # [2, k, D]
    # Monte-Carlo error of the mean of ||A v||^2 over v ~ N(0, I): Var = 2 ||A A^T||_F^2 per draw
    var = 2 * (a @ a.transpose(1, 2)).pow(2).sum(dim=(1, 2))     # per image
    se = (var.sum() * draws).sqrt().item() / len(x)

    def estimate(h):
        objective = Objective(get_method("act+fdjac", fd_step=h, fd_fraction=1.0), teacher)
        torch.manual_seed(7)  # the same directions at every h (common random numbers)
        _, terms = objective(student, x, y)
        return terms["jac"].item()

    torch.manual_seed(7)
    v = torch.randn_like(x)  # what the objective drew
    projected = (torch.einsum("bkd,bd->bk", a.repeat_interleave(draws, dim=0), v.flatten(1))).pow(2).sum(1).mean().item()
    assert abs(projected - exact) < 4 * se, (projected, exact, se)  # the unbiasedness being relied on
    coarse, fine = estimate(0.5), estimate(1e-5)
    assert abs(fine - projected) <= 1e-3 * projected                # h -> 0: (J_S - J_T) v but for rare region crossings
    assert abs(fine - projected) <= abs(coarse - projected)         # larger h crosses linear regions: biased
    assert abs(fine - exact) < 4 * se, (fine, exact, se)


def test_gamma_scales_the_term_and_no_input_gradient_is_taken():
    student, teacher = _piecewise_linear_pair()
    x = torch.randn(8, 1, 32, 32, dtype=torch.float64)
    y = torch.arange(8) % 10
    values = []
    for gamma in (1.0, 10.0):
        torch.manual_seed(3)
        total, terms = Objective(get_method("act+fdjac+ce", jac_weight=gamma), teacher)(student.train(), x, y)
        values.append(terms["jac"].item())
        assert set(terms) == {"ce", "act", "jac", "logits"}
        total.backward()
        assert all(p.grad is not None for p in student.parameters())
        student.zero_grad()
    assert values[1] == pytest.approx(10 * values[0])
    assert not x.requires_grad


def test_perturbed_fraction_and_options_are_checked():
    m = get_method("act+fdjac", fd_step=0.05, fd_fraction=0.5)
    assert (m.fd_step, m.fd_fraction, m.estimator) == (0.05, 0.5, "finite-difference")
    assert m.teacher_targets_cacheable
    assert get_method("act+jac", fd_step=0.05).fd_step == 0  # only the fdjac methods take h
    for bad in ({"fd_step": 0.0}, {"fd_fraction": 0.0}, {"fd_fraction": 1.5}):
        with pytest.raises(LaktError):
            get_method("act+fdjac", **bad)
    student, teacher = _piecewise_linear_pair()
    with pytest.raises(LaktError, match="float32"):
        Objective(get_method("act+fdjac"), teacher, precision="bf16")
    teacher_cfg = RunConfig("teacher")
    with pytest.raises(LaktError, match="fp32"):
        RunConfig("student", model="vgg4", method="act+fdjac", n_per_class=5, teacher=teacher_cfg, precision="bf16")
    default = RunConfig("student", model="vgg4", method="act+fdjac", n_per_class=5, teacher=teacher_cfg)
    other = RunConfig("student", model="vgg4", method="act+fdjac", n_per_class=5, teacher=teacher_cfg, fd_step=0.001)
    assert default.key != other.key and "h0.001" in other.name
    # fields added later leave the keys of existing runs unchanged
    assert RunConfig("student", model="vgg4", method="act", n_per_class=5, teacher=teacher_cfg).key == \
        RunConfig("student", model="vgg4", method="act", n_per_class=5, teacher=teacher_cfg, fd_step=0.01).key
