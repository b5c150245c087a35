"""The loss API in a user's own training loop.

One student forward per step, the student's logits returned with their graph, named
errors for inputs that do not fit, and the helpers (`output_gradient`, `vgg9`/`vgg4`,
`fit`, `noise_robustness`) taking what a PyTorch user already has.
"""
import pytest
import torch
from torch import nn

from lakt import LaktError, Objective, TrainSpec, fit, get_method, noise_robustness, output_gradient, vgg4, vgg9
from lakt.core.data import Split

METHODS = ["ce", "act+ce", "jac+ce", "act+jac+ce", "act", "act+jac", "act+fulljac", "ce+jacnorm"]


@pytest.fixture
def nets():
    torch.manual_seed(0)
    return vgg9(10, width=0.125), vgg4(10, width=0.125)


def batch(n=8, k=10):
    return torch.randn(n, 3, 32, 32), torch.randint(0, k, (n,))


@pytest.mark.parametrize("name", METHODS)
def test_one_student_forward_and_logits_with_their_graph(name, nets):
    teacher, student = nets
    calls = []
    student.register_forward_hook(lambda *a: calls.append(1))
    x, y = batch()
    objective = Objective(get_method(name), teacher if get_method(name).needs_teacher else None)
    loss, terms = objective(student, x, y)
    assert len(calls) == 1
    logits = terms["logits"]
    assert logits.shape == (8, 10) and logits.requires_grad and logits.grad_fn is not None
    extra = (loss + logits.pow(2).mean())  # a user's own term, no second forward
    extra.backward()
    assert all(p.grad is not None for p in student.parameters())
    assert len(calls) == 1


def test_the_default_jacobian_form_is_plain(nets):
    teacher, student = nets
    assert Objective(get_method("jac+ce"), teacher).jacobian_form == "plain"


class TupleNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = vgg9(10, width=0.125)

    def forward(self, x):
        return self.net(x), x.mean()


BAD = [
    ("12 teacher outputs, jac+ce", "jac+ce", lambda t, s, x, y: (vgg9(12, width=0.125), s, x, y),
     "student has 10 outputs but the teacher 12"),
    ("12 teacher outputs, act", "act", lambda t, s, x, y: (vgg9(12, width=0.125), s, x, y),
     "student has 10 outputs but the teacher 12"),
    ("float64 teacher", "act+ce", lambda t, s, x, y: (t.double(), s, x, y), "teacher's parameters are torch.float64"),
    ("float64 student", "ce", lambda t, s, x, y: (t, s.double(), x, y), "student's parameters are torch.float64"),
    ("uint8 inputs", "act+ce", lambda t, s, x, y: (t, s, (x.abs() * 50).to(torch.uint8), y), "inputs are torch.uint8"),
    ("tuple teacher", "act+ce", lambda t, s, x, y: (TupleNet(), s, x, y), "teacher returned a tuple"),
    ("tuple student", "ce", lambda t, s, x, y: (t, TupleNet(), x, y), "student returned a tuple"),
    ("float labels", "ce", lambda t, s, x, y: (t, s, x, y.float()), "labels are torch.float32"),
    ("one-hot labels", "ce", lambda t, s, x, y: (t, s, x, nn.functional.one_hot(y, 10)), "labels have shape"),
    ("meta-device inputs", "ce", lambda t, s, x, y: (t, s, x.to("meta"), y.to("meta")), "student is on cpu"),
]


@pytest.mark.parametrize("name,method,make,expect", BAD, ids=[b[0] for b in BAD])
def test_inputs_that_do_not_fit_are_named_errors(name, method, make, expect, nets):
    teacher, student, x, y = make(*nets, *batch())
    objective = Objective(get_method(method), teacher if get_method(method).needs_teacher else None)
    with pytest.raises(LaktError, match=expect.replace("(", r"\(").replace(".", r"\.")):
        objective(student, x, y)


def test_integer_labels_of_any_width_work(nets):
    teacher, student = nets
    x, y = batch()
    objective = Objective(get_method("act+jac+ce"), teacher)
    torch.manual_seed(1)
    a, _ = objective(student, x, y)
    torch.manual_seed(1)
    b, _ = objective(student, x, y.int())
    assert torch.equal(a, b)


def test_output_gradient_takes_an_int_index(nets):
    _, student = nets
    x, _ = batch()
    assert torch.equal(output_gradient(student.eval(), x, 3), output_gradient(student, x, torch.full((8,), 3)))


def test_vgg_options_are_keywords_and_small_inputs_a_clear_error():
    with pytest.raises(TypeError, match="widht"):
        vgg9(10, widht=0.5)
    assert vgg4(10, width=0.25, in_channels=1)(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    with pytest.raises(LaktError, match="at least 32x32"):
        vgg9(10, width=0.125)(torch.randn(2, 3, 16, 16))
    assert vgg4(10, width=0.125)(torch.randn(2, 3, 8, 8)).shape == (2, 10)  # three poolings: 8 pixels suffice
    with pytest.raises(LaktError, match="at least 8x8"):
        vgg4(10, width=0.125)(torch.randn(2, 3, 4, 4))


def test_fit_and_noise_robustness_take_tensors_or_a_torch_dataset(nets):
    _, student = nets
    x, y = batch(16)
    objective = Objective(get_method("ce"))
    torch.manual_seed(0)
    spec = TrainSpec(epochs=1, batch_size=8, device="cpu")
    from_split = fit(vgg4(10, width=0.125), Split(x, y), objective, spec, progress=False)
    for data in ((x, y), torch.utils.data.TensorDataset(x, y)):
        torch.manual_seed(0)
        history = fit(vgg4(10, width=0.125), data, objective, spec, progress=False)
        assert history[0]["loss"] == from_split[0]["loss"]
    curves = [noise_robustness(student, d, sigmas=(0.0, 0.1), trials=2)
              for d in (Split(x, y), (x, y), torch.utils.data.TensorDataset(x, y))]
    assert curves[0] == curves[1] == curves[2]
    with pytest.raises(LaktError, match="Split, an \\(x, y\\) pair"):
        fit(student, [1, 2, 3], objective, spec, progress=False)
    with pytest.raises(LaktError, match="labels must be"):
        noise_robustness(student, (x, y.float()))
