"""The loss stays a function of the caller's input.

A user who trains adversarially, or adds an input-gradient penalty of their own, calls
``loss.backward()`` on an input that requires grad and reads ``x.grad``. Every method
must fill it -- the Jacobian terms included, whose double backward already builds that
graph -- or refuse in one LaktError line saying which term cannot and why; never leave
it ``None`` without a word. The teacher's targets are constants of the step (as for
Match Activations), so the gradient flows through the student alone.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import lakt
from lakt import LaktError
from lakt.core import losses, models
from lakt.core.objective import Objective

K = 3


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_pair(dtype=torch.float32):
    torch.manual_seed(0)
    student = models.vgg4(K, width=1 / 16, in_channels=1).to(dtype)
    teacher = models.vgg9(K, width=1 / 16, in_channels=1).to(dtype)
    return student, teacher


@pytest.mark.parametrize("train", [True, False], ids=["train-mode", "eval-mode"])
@pytest.mark.parametrize("method", list(lakt.METHODS))
def test_every_method_fills_the_input_gradient_or_says_why_not(method, train):
    student, teacher = tiny_pair()
    student.train(train)
    spec = lakt.get_method(method)
    objective = Objective(spec, teacher if spec.needs_teacher else None)
    x = torch.randn(4, 1, 32, 32).requires_grad_(True)
    y = torch.tensor([0, 1, 2, 0])
    try:
        total, _ = objective(student, x, y)
        total.backward()
    except LaktError as err:
        assert "\n" not in str(err) and "input" in str(err)  # one line, naming the input gradient
        return
    assert x.grad is not None, f"{method}: loss.backward() left x.grad None"
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


class TwoLayer(nn.Module):
    """A smooth (tanh) conv net: its input Jacobian has a non-zero derivative, so the
    Jacobian term's gradient with respect to x is a real test of the double backward."""

    def __init__(self, seed: int):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 4 * 4, K)
        for p in self.parameters():
            p.data = torch.randn(p.shape, generator=generator) * 0.5

    def forward(self, x):
        return self.fc(torch.tanh(self.conv(x)).flatten(1))


def test_the_jacobian_terms_input_gradient_matches_torch_func():
    """jac+ce, plain form, float64: d loss / d x from loss.backward() against torch.func,
    with the per-sample input gradients of the reference taken by torch.func.grad too."""
    torch.manual_seed(0)
    student, teacher = TwoLayer(1).double().eval(), TwoLayer(2).double().eval()
    x = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    y = torch.tensor([0, 2, 1])
    spec = lakt.get_method("jac+ce")
    objective = Objective(spec, teacher, jacobian_form="plain")
    xg = x.clone().requires_grad_(True)
    total, _ = objective(student, xg, y)
    total.backward()
    assert xg.grad is not None

    def selected(model, params, xb, pick):  # pick: one-hot row of the label (indexing is not vmap-friendly)
        return (torch.func.functional_call(model, params, (xb.unsqueeze(0),))[0] * pick).sum()

    s_params = dict(student.named_parameters())
    t_params = {k: v.detach() for k, v in teacher.named_parameters()}
    per_sample = torch.func.vmap(torch.func.grad(selected, argnums=2), in_dims=(None, None, 0, 0))
    picks = nn.functional.one_hot(y, K).double()
    t_grad = per_sample(teacher, t_params, x, picks).detach()  # a constant of the step

    def loss(xx):
        logits = torch.func.functional_call(student, s_params, (xx,))
        s_grad = per_sample(student, s_params, xx, picks)
        return spec.ce * losses.cross_entropy(logits, y) + spec.jac * losses.match_jacobians(s_grad, t_grad)

    expected = torch.func.grad(loss)(x)
    assert torch.allclose(total.detach(), loss(x).detach(), rtol=1e-10, atol=1e-12)
    assert torch.allclose(xg.grad, expected, rtol=1e-8, atol=1e-10)
