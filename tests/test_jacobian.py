"""Input gradients against torch.func.jacrev + vmap, and what train-mode BatchNorm does."""
import torch
from torch.func import jacrev, vmap

from lakt.core import jacobian


def reference_jacobian(model, x):
    """[B, k, *x.shape[1:]] by jacrev over one sample at a time (eval-mode model)."""
    return vmap(jacrev(lambda xi: model(xi.unsqueeze(0)).squeeze(0)))(x)


def test_label_rows_match_jacrev(tiny_vgg):
    x = torch.randn(5, 3, 32, 32, dtype=torch.float64)
    labels = torch.tensor([0, 3, 9, 3, 1])
    full = reference_jacobian(tiny_vgg, x)
    got = jacobian.output_gradient(tiny_vgg, x, labels)
    assert got.shape == x.shape
    torch.testing.assert_close(got, full[torch.arange(5), labels], rtol=1e-10, atol=1e-12)


def test_top_logit_rows_match_jacrev(tiny_vgg):
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        logits = tiny_vgg(x)
    index = jacobian.select_outputs("top", torch.zeros(4, dtype=torch.long), logits)
    assert torch.equal(index, logits.argmax(1))
    full = reference_jacobian(tiny_vgg, x)
    torch.testing.assert_close(jacobian.output_gradient(tiny_vgg, x, index), full[torch.arange(4), index],
                               rtol=1e-10, atol=1e-12)


def test_all_outputs_match_jacrev(tiny_vgg):
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    torch.testing.assert_close(jacobian.full_jacobian(tiny_vgg, x), reference_jacobian(tiny_vgg, x),
                               rtol=1e-10, atol=1e-12)


def test_projection_is_a_combination_of_rows(tiny_vgg):
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    v = torch.randn(3, 10, dtype=torch.float64)
    xr = x.clone().requires_grad_(True)
    got = jacobian.input_vjp(tiny_vgg(xr), xr, v)
    want = torch.einsum("bk,bkchw->bchw", v, reference_jacobian(tiny_vgg, x))
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_create_graph_gives_differentiable_gradients(tiny_vgg):
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    g = jacobian.output_gradient(tiny_vgg, x, torch.tensor([1, 2]), create_graph=True)
    g.pow(2).sum().backward()
    assert tiny_vgg.classifier.weight.grad is not None and tiny_vgg.classifier.weight.grad.abs().sum() > 0


def test_train_mode_batchnorm_couples_samples(tiny_vgg):
    """Documented behaviour: in train mode the summed backward is not the per-sample row.

    The exact diagonal block d f_{i_b}(x_b) / d x_b of the batch function is computed
    here with one backward per sample; the single backward that lakt uses differs from
    it by the cross-sample terms through the batch statistics, and the two coincide
    again in eval mode.
    """
    tiny_vgg.train()
    x = torch.randn(6, 3, 32, 32, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    out = tiny_vgg(x)
    exact = torch.stack([torch.autograd.grad(out[b, labels[b]], x, retain_graph=True)[0][b] for b in range(6)])
    summed = jacobian.output_gradient(tiny_vgg, x, labels)
    relative = ((summed - exact).norm() / exact.norm()).item()
    assert relative > 1e-3  # measurably different: the coupling is real
    tiny_vgg.eval()
    out = tiny_vgg(x)
    exact = torch.stack([torch.autograd.grad(out[b, labels[b]], x, retain_graph=True)[0][b] for b in range(6)])
    torch.testing.assert_close(jacobian.output_gradient(tiny_vgg, x, labels), exact, rtol=1e-10, atol=1e-12)
