"""Each loss pinned to a value computed by hand on a tiny input (torchdistill-style)."""
import math

import pytest
import torch

from lakt.core import losses


def t(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_cross_entropy():
    assert losses.cross_entropy(t([0.0, 0.0]), torch.tensor([0])).item() == pytest.approx(math.log(2))


def test_match_activations_sums_over_outputs_and_averages_over_batch():
    # per sample: (1-0)^2 + (2-0)^2 = 5 and (0-1)^2 + (0-1)^2 = 2; mean 3.5
    assert losses.match_activations(t([1, 2], [0, 0]), t([0, 0], [1, 1])).item() == pytest.approx(3.5)


def test_match_jacobians_plain():
    gs = t([1, 0], [0, 2]).view(2, 1, 1, 2)
    gt = t([0, 0], [1, 0]).view(2, 1, 1, 2)
    # per sample: 1 and 1 + 4 = 5; mean 3
    assert losses.match_jacobians(gs, gt).item() == pytest.approx(3.0)


def test_match_jacobians_normalized():
    gs = t([3, 4], [1, 0])
    gt = t([0, 5], [-1, 0])
    # (0.6, 0.8) - (0, 1) -> 0.36 + 0.04 = 0.4 ; (1, 0) - (-1, 0) -> 4 ; mean 2.2
    assert losses.match_jacobians_normalized(gs, gt).item() == pytest.approx(2.2)
    # scale invariance: only directions count
    assert losses.match_jacobians_normalized(10 * gs, 0.1 * gt).item() == pytest.approx(2.2)


def test_jacobian_norm_penalty():
    assert losses.jacobian_norm_penalty(t([3, 4], [1, 1])).item() == pytest.approx(13.5)


def test_teacher_side_is_detached():
    s = torch.zeros(1, 2, requires_grad=True)
    tt = torch.ones(1, 2, requires_grad=True)
    losses.match_activations(s, tt).backward()
    assert tt.grad is None and s.grad is not None


def test_hinton_kd_is_t_squared_kl_of_softened_outputs():
    s, te = t([1.0, 2.0, 0.5], [0.0, -1.0, 3.0]), t([2.0, 0.0, 1.0], [1.0, 1.0, 1.0])
    for temp in (1.0, 4.0):
        # by hand: sum_i p_i (log p_i - log q_i), p = softmax(te / T), q = softmax(s / T)
        want = 0.0
        for si, ti in zip(s.tolist(), te.tolist()):
            zt = sum(math.exp(v / temp) for v in ti)
            zs = sum(math.exp(v / temp) for v in si)
            want += sum(math.exp(b / temp) / zt * ((b / temp - math.log(zt)) - (a / temp - math.log(zs)))
                        for a, b in zip(si, ti))
        assert losses.hinton_kd(s, te, temp).item() == pytest.approx(temp ** 2 * want / 2, rel=1e-12)
    assert losses.hinton_kd(te, te, 4.0).item() == pytest.approx(0.0, abs=1e-12)


def test_attention_transfer_distance():
    from lakt.core.attention import attention_map
    # one sample, 2 channels, 1x2 map: Q = (1 + 4, 0 + 0) = (5, 0) -> (1, 0); teacher Q = (1, 1) -> (1, 1)/sqrt 2
    a_s = t([[1.0, 0.0], [2.0, 0.0]]).view(1, 2, 1, 2)
    a_t = t([[1.0, 1.0]]).view(1, 1, 1, 2)
    qs, qt = attention_map(a_s), attention_map(a_t)
    assert qs.tolist() == [[1.0, 0.0]] and qt[0].tolist() == pytest.approx([2 ** -0.5] * 2)
    # squared distance averaged over the 2 positions: ((1 - r)^2 + r^2) / 2, r = 1/sqrt 2
    r = 2 ** -0.5
    one = ((1 - r) ** 2 + r ** 2) / 2
    assert losses.attention_transfer([qs], [qt]).item() == pytest.approx(one, rel=1e-6)
    assert losses.attention_transfer([qs, qs], [qt, qs]).item() == pytest.approx(one, rel=1e-6)  # pairs sum
    assert attention_map(10 * a_s).tolist() == qs.tolist()  # scale invariant
