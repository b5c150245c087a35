"""The combined objective: the six presets, the cached teacher path, a frozen teacher."""
import pytest
import torch

from lakt.core import jacobian, losses, models
from lakt.core.errors import LaktError
from lakt.core.methods import METHODS, PAPER_METHODS, get_method
from lakt.core.objective import Objective, TeacherCache


@pytest.fixture
def pair():
    torch.manual_seed(0)
    teacher = models.vgg9(width=0.125, in_channels=1).double()
    student = models.vgg4(width=0.125, in_channels=1).double()
    x = torch.randn(8, 1, 32, 32, dtype=torch.float64)
    y = torch.randint(0, 10, (8,))
    return teacher, student, x, y


def test_the_six_paper_presets():
    weights = {m: (METHODS[m].ce, METHODS[m].act, METHODS[m].jac) for m in PAPER_METHODS}
    assert weights == {"ce": (1, 0, 0), "act+ce": (1, 1, 0), "jac+ce": (1, 0, 1), "act+jac+ce": (1, 1, 1),
                       "act": (0, 1, 0), "act+jac": (0, 1, 1)}
    with pytest.raises(LaktError, match="unknown method"):
        get_method("distill")


@pytest.mark.parametrize("form", ["plain", "normalized"])
def test_objective_equals_the_sum_of_the_paper_terms(pair, form):
    teacher, student, x, y = pair
    student.eval()  # per-sample gradients are exact in eval mode
    total, terms = Objective(get_method("act+jac+ce"), teacher, jacobian_form=form)(student, x, y)
    teacher.eval()
    t_logits, t_grad = jacobian.logits_and_gradient(teacher, x, y)
    s_logits, s_grad = jacobian.logits_and_gradient(student, x, y)
    match = losses.match_jacobians_normalized if form == "normalized" else losses.match_jacobians
    want = losses.cross_entropy(s_logits, y) + losses.match_activations(s_logits, t_logits) + match(s_grad, t_grad)
    assert total.item() == pytest.approx(want.item(), rel=1e-12)
    assert set(terms) == {"ce", "act", "jac", "logits"}


def test_cached_teacher_targets_give_identical_losses(pair):
    teacher, student, x, y = pair
    for output in ("label", "top"):
        method = get_method("act+jac+ce")
        cache = TeacherCache.build(Objective(method, teacher).teacher, x, y, output, batch_size=3)
        positions = torch.tensor([5, 0, 2])
        plain = Objective(method, teacher, output=output)(student, x[positions], y[positions])
        cached = Objective(method, teacher, output=output, cache=cache)(student, x[positions], y[positions], positions)
        assert cached[0].item() == pytest.approx(plain[0].item(), rel=1e-12)


def test_teacher_never_receives_gradients(pair):
    teacher, student, x, y = pair
    for name in ("act+jac+ce", "act+fulljac", "noisy-act"):
        total, _ = Objective(get_method(name), teacher)(student, x, y)
        total.backward()
        assert all(p.grad is None for p in teacher.parameters())
        assert any(p.grad is not None for p in student.parameters())
        assert not teacher.training


def test_random_projection_estimates_the_full_jacobian_sum(pair):
    teacher, student, x, y = pair
    student.eval()
    objective = Objective(get_method("act+fulljac"), teacher)  # puts the teacher in eval mode
    full = (jacobian.full_jacobian(teacher, x) - jacobian.full_jacobian(student, x)).flatten(2).pow(2).sum((1, 2)).mean()
    torch.manual_seed(0)
    draws = torch.stack([objective(student, x, y)[1]["jac"] for _ in range(200)])
    se = draws.std() / 200 ** 0.5
    assert abs(draws.mean() - full) < 4 * se


def test_noisy_distillation_and_penalty_need_their_parameters():
    assert get_method("noisy-act", noise_sigma=0.3).noise_sigma == 0.3
    assert get_method("ce+jacnorm", penalty=0.5).jacnorm == 0.5
    with pytest.raises(LaktError):
        get_method("noisy-act", noise_sigma=-1)
    with pytest.raises(LaktError, match="needs a teacher"):
        Objective(get_method("act"))


def test_bfloat16_autocast_matches_float32_within_tolerance():
    """The GPU speed option, checked on the CPU's bfloat16 autocast: same losses to ~2%."""
    torch.manual_seed(0)
    teacher = models.vgg9(width=0.125, in_channels=1)
    student = models.vgg4(width=0.125, in_channels=1).eval()
    x, y = torch.randn(16, 1, 32, 32), torch.randint(0, 10, (16,))
    for name in ("ce", "act+jac+ce", "act+fulljac"):
        torch.manual_seed(1)
        full = Objective(get_method(name), teacher, jacobian_form="normalized")(student, x, y)[1]
        torch.manual_seed(1)
        half = Objective(get_method(name), teacher, jacobian_form="normalized", precision="bf16")(student, x, y)[1]
        for term in ("ce", "act", "jac"):
            if term in full:
                assert half[term].dtype == torch.float32
                assert half[term].item() == pytest.approx(full[term].item(), rel=0.03, abs=1e-3), (name, term)
    with pytest.raises(LaktError, match="unknown precision"):
        Objective(get_method("ce"), precision="fp8")


@pytest.mark.parametrize("where", ["device", "host", "disk"])
def test_teacher_cache_places_give_the_same_targets(pair, where, tmp_path):
    teacher, _, x, y = pair
    teacher.eval()
    cache = TeacherCache.build(teacher, x, y, "label", batch_size=3, where=where, path=tmp_path / "g.npy")
    positions = torch.tensor([7, 1, 4])
    logits, grads, index = cache[positions]
    want_logits, want_grads = jacobian.logits_and_gradient(teacher, x[positions], y[positions])
    torch.testing.assert_close(grads, want_grads, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(logits, want_logits.detach(), rtol=1e-10, atol=1e-12)
    assert torch.equal(index, y[positions])


def test_noisy_activation_matching_queries_the_teacher_only_at_the_noisy_inputs(pair):
    """noisy-act is Match Activations at x + sigma*xi (Prop 1, left side); the clean
    teacher targets would be unused, so the teacher runs once per step, not twice."""
    teacher, student, x, y = pair
    student.eval()
    objective = Objective(get_method("noisy-act", noise_sigma=0.3), teacher)
    calls = []
    teacher.register_forward_hook(lambda *_: calls.append(1))
    torch.manual_seed(1)
    _, terms = objective(student, x, y)
    torch.manual_seed(1)
    noisy = x + 0.3 * torch.randn_like(x)
    want = losses.match_activations(student(noisy), teacher(noisy).detach())
    assert terms["noisy_act"].item() == pytest.approx(want.item(), rel=1e-12)
    assert len(calls) == 2  # one inside the objective, one for `want`


def test_the_jacobian_weight_scales_only_the_jacobian_term(pair):
    teacher, student, x, y = pair
    student.eval()
    _, one = Objective(get_method("act+jac"), teacher)(student, x, y)
    total, ten = Objective(get_method("act+jac", jac_weight=10), teacher)(student, x, y)
    assert ten["jac"].item() == pytest.approx(10 * one["jac"].item(), rel=1e-12)
    assert ten["act"].item() == pytest.approx(one["act"].item(), rel=1e-12)
    assert total.item() == pytest.approx((ten["act"] + ten["jac"]).item(), rel=1e-12)
    assert get_method("act+fulljac", jac_weight=100).jac == 100


def test_train_mode_objective_takes_the_loss_on_the_ordinary_forward_and_the_gradient_per_sample():
    """Per-sample Jacobians in train mode: CE and Act see BatchNorm's usual batch statistics
    gradients; the Jacobian term uses the gradient with the statistics held fixed, here
    computed independently by a second forward through BatchNorm as an affine map."""
    torch.manual_seed(3)
    teacher = models.vgg4(width=0.25).double().eval()
    student = models.vgg4(width=0.25).double().train()
    x, y = torch.randn(16, 3, 32, 32, dtype=torch.float64), torch.randint(0, 10, (16,))
    total, terms = Objective(get_method("act+jac+ce"), teacher, jacobian_form="normalized")(student, x, y)
    got = torch.autograd.grad(total, list(student.parameters()))

    xt = x.clone().requires_grad_(True)
    t_logits = teacher(xt)
    t_grad = torch.autograd.grad(t_logits.gather(1, y.view(-1, 1)).sum(), xt)[0]
    logits = student(x)  # ordinary train-mode forward
    s_grad = _held_fixed_gradient(student, x, y)
    want_total = (losses.cross_entropy(logits, y) + losses.match_activations(logits, t_logits.detach())
                  + losses.match_jacobians_normalized(s_grad, t_grad))
    want = torch.autograd.grad(want_total, list(student.parameters()))
    torch.testing.assert_close(total, want_total)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-12)


def _held_fixed_gradient(model, x, y):
    """Input gradient of the label logits, each train-mode BatchNorm run as y = a*x + b with this
    batch's statistics detached (a second forward; graph kept for the double backward)."""
    def affine(bn):
        def forward(h):
            var, mean = torch.var_mean(h.detach(), dim=(0, 2, 3), unbiased=False)
            a = bn.weight / torch.sqrt(var + bn.eps)
            return h * a.view(1, -1, 1, 1) + (bn.bias - mean * a).view(1, -1, 1, 1)
        return forward
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in norms:
        bn.forward = affine(bn)
    try:
        xs = x.detach().requires_grad_(True)
        return torch.autograd.grad(model(xs).gather(1, y.view(-1, 1)).sum(), xs, create_graph=True)[0]
    finally:
        for bn in norms:
            del bn.forward


def test_kd_objective_is_alpha_t2_kl_plus_one_minus_alpha_ce(pair):
    teacher, student, x, y = pair
    student.eval()
    method = get_method("kd", kd_temperature=8, kd_alpha=0.5)
    assert (method.ce, method.kd_alpha, method.kd_temperature) == (0.5, 0.5, 8.0)
    total, terms = Objective(method, teacher)(student, x, y)
    s_logits, t_logits = student(x), teacher.eval()(x)
    want = 0.5 * losses.cross_entropy(s_logits, y) + 0.5 * 64 * torch.nn.functional.kl_div(
        torch.log_softmax(s_logits / 8, 1), torch.softmax(t_logits / 8, 1), reduction="batchmean")
    assert total.item() == pytest.approx(want.item(), rel=1e-10)
    assert set(terms) == {"ce", "kd", "logits"}


def _pre_pool_maps(net, x, stages=3):
    """The activations entering the first max-pools, by running the layers one by one (no hooks)."""
    maps, h = [], x
    for layer in net.features:
        if isinstance(layer, torch.nn.MaxPool2d):
            maps.append(h)
        h = layer(h)
    return maps[:stages]


def test_attention_transfer_objective_pairs_the_first_three_stages(pair):
    teacher, student, x, y = pair
    student.eval()
    total, terms = Objective(get_method("at+ce", at_weight=100), teacher)(student, x, y)
    want = losses.cross_entropy(student(x), y)
    teacher.eval()
    for s_a, t_a in zip(_pre_pool_maps(student, x), _pre_pool_maps(teacher, x), strict=True):
        assert s_a.shape[2:] == t_a.shape[2:]  # 32x32, 16x16, 8x8: same spatial size
        qs = s_a.pow(2).sum(1).flatten(1)
        qt = t_a.pow(2).sum(1).flatten(1)
        qs, qt = qs / qs.norm(dim=1, keepdim=True), qt / qt.norm(dim=1, keepdim=True)
        want = want + 100 * (qs - qt).pow(2).mean()  # beta * sum, as the authors' cifar.py
    assert total.item() == pytest.approx(want.item(), rel=1e-10)
    assert set(terms) == {"ce", "at", "logits"}


def test_cached_teacher_attention_maps_give_identical_losses(pair):
    from lakt.core.attention import AttentionCache
    teacher, student, x, y = pair
    student.eval()
    method = get_method("at+ce")
    positions = torch.tensor([3, 0, 5])
    cache = AttentionCache.build(teacher, x, batch_size=4)
    cached, _ = Objective(method, teacher, attention_cache=cache)(student, x[positions], y[positions], positions)
    direct, _ = Objective(method, teacher)(student, x[positions], y[positions])
    assert cached.item() == pytest.approx(direct.item(), rel=1e-12)
    assert all(p.grad is None for p in teacher.parameters())


def test_kd_and_attention_knobs_are_checked():
    assert get_method("at+ce", at_weight=10).at == 10 and get_method("ce", at_weight=10) == get_method("ce")
    with pytest.raises(LaktError, match="KD alpha must be in"):
        get_method("kd", kd_alpha=1.5)
    with pytest.raises(LaktError, match="KD temperature must be > 0"):
        get_method("kd", kd_temperature=0)
    with pytest.raises(LaktError, match="attention-transfer weight must be > 0"):
        get_method("at+ce", at_weight=0)
