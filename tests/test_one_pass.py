"""One forward for loss and per-sample input gradient equals the two-pass computation it replaces."""
import copy

import pytest
import torch

from lakt.core import jacobian, losses, models, one_pass
from lakt.core.methods import get_method
from lakt.core.objective import Objective


def _model():
    torch.manual_seed(0)
    model = models.vgg4(width=0.25).double().train()
    for m in model.modules():  # non-trivial affine parameters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model


def _loss(s_logits, s_grad, t_logits, t_grad, y, form):
    match = losses.match_jacobians_normalized if form == "normalized" else losses.match_jacobians
    return losses.cross_entropy(s_logits, y) + losses.match_activations(s_logits, t_logits) + match(s_grad, t_grad)


@pytest.mark.parametrize("form", ["plain", "normalized"])
def test_one_pass_equals_ordinary_forward_plus_fixed_statistics_pass(form):
    a, b = _model(), _model()
    x = torch.randn(16, 3, 32, 32, dtype=torch.float64)
    y = torch.randint(0, 10, (16,))
    t_logits, t_grad = torch.randn(16, 10, dtype=torch.float64), torch.randn_like(x)

    ref_logits = a(x)  # the two-pass reference: ordinary forward, then the statistics held fixed
    _, ref_grad = jacobian.logits_and_gradient(a, x, y, create_graph=True, batch_statistics="fixed")
    _loss(ref_logits, ref_grad, t_logits, t_grad, y, form).backward()

    logits, grad = one_pass.logits_and_gradient(b, x, y)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-10, atol=1e-12)
    _loss(logits, grad, t_logits, t_grad, y, form).backward()
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-8, atol=1e-12, msg=name)
    for (name, s), t in zip(a.named_buffers(), b.buffers()):
        torch.testing.assert_close(t, s, rtol=1e-12, atol=1e-12, msg=name)  # running statistics updated once


def test_loss_gradient_is_batchnorms_own():
    """Outside the input-gradient pass the backward is BatchNorm's, through the batch statistics."""
    a, b = _model(), _model()
    x = torch.randn(8, 3, 32, 32, dtype=torch.float64, requires_grad=True)
    xb = x.detach().clone().requires_grad_(True)
    a(x).pow(2).sum().backward()
    with one_pass.one_pass(b):
        b(xb).pow(2).sum().backward()
    torch.testing.assert_close(xb.grad, x.grad, rtol=1e-9, atol=1e-12)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-9, atol=1e-12, msg=name)


def test_objective_uses_one_forward_and_restores_the_modules():
    model = _model()
    teacher = models.vgg9(width=0.25).double()
    calls = []
    hook = model.features[0].register_forward_hook(lambda *_: calls.append(1))
    objective = Objective(get_method("act+jac+ce"), teacher, jacobian_form="normalized")
    x, y = torch.randn(8, 3, 32, 32, dtype=torch.float64), torch.randint(0, 10, (8,))
    total, _ = objective(model, x, y)
    total.backward()
    hook.remove()
    assert len(calls) == 1
    assert not any("forward" in vars(m) for m in model.modules())  # class forwards back
    assert one_pass._FIXED == [False]
