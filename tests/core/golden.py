"""Golden values of every loss term and every method's total, by an independent implementation.

    python tests/core/golden.py      # rewrites tests/core/golden_objective.json

Nothing here calls lakt's losses, Jacobians or Objective: per-sample Jacobians come from
``torch.func.vmap(torch.func.jacrev(...))`` over ``functional_call``, every term is written
out from its formula (supplementary, Props 1-2, Eq 3, Hinton et al., Zagoruyko &
Komodakis), and a train-mode student's Jacobian with BatchNorm's batch statistics held
fixed is the eval-mode Jacobian of a copy whose running statistics *are* this batch's
(biased) statistics. Only the VGG definitions are lakt's. ``tests/core/test_golden.py``
pins :class:`lakt.Objective` to the stored numbers, as torchdistill pins its losses.

The random methods (noisy inputs, projections, finite differences) draw from the global
generator seeded with :data:`SEED` right before the step, in the order the objective
documents: finite differences draw the moved inputs before the forward, projections and
noisy inputs after it.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import functional_call, jacrev, vmap

from lakt.core import models

SEED = 1234
B, K = 6, 10
FILE = Path(__file__).with_name("golden_objective.json")
# (method, weights, Jacobian form, student mode); kd: T = 4, alpha = 0.9; at: beta = 1000;
# noisy: sigma = 0.1; fd: h = 0.01, a quarter of the batch; projections: one direction.
CASES = [(m, form, mode) for m in ("ce", "act+ce", "jac+ce", "act+jac+ce", "act", "act+jac")
         for form in ("plain", "normalized") for mode in ("train", "eval")]
CASES += [(m, "normalized", "train") for m in ("noisy-act", "noisy-act+ce", "act+fulljac", "act+fulljac+ce",
                                               "ce+jacnorm", "ce+logjacnorm", "kd", "at+ce")]
CASES += [("act+fulljac", "plain", "train"), ("act+fdjac", "plain", "train"), ("act+fdjac+ce", "plain", "train")]


def nets():
    """The fixed tiny student (VGG-4 x1/16) and teacher (VGG-9 x1/16), float64, and one batch."""
    torch.manual_seed(0)
    student = models.vgg4(K, width=0.0625).double()
    teacher = models.vgg9(K, width=0.0625).double().eval()
    for net in (student, teacher):
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(B, 3, 32, 32, dtype=torch.float64)
    y = torch.tensor([0, 3, 3, 7, 9, 1])
    return student, teacher, x, y


def _statistics_as_running(net, x):
    """A copy of ``net`` in eval mode whose BatchNorms normalise with ``x``'s batch statistics."""
    frozen, stats = copy.deepcopy(net), []
    hooks = [m.register_forward_hook(lambda m, i, o: stats.append(torch.var_mean(i[0], dim=(0, 2, 3),
                                                                                 unbiased=False)))
             for m in frozen.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        frozen.train()(x)
    for h in hooks:
        h.remove()
    for m, (var, mean) in zip([m for m in frozen.modules() if isinstance(m, torch.nn.BatchNorm2d)], stats):
        m.running_mean.copy_(mean)
        m.running_var.copy_(var)
    return frozen.eval()


def _jacobian(net, x, log_softmax=False):
    """Per-sample Jacobians [B, k, C, H, W] of the logits (or their log-softmax), eval mode."""
    params = {**dict(net.named_parameters()), **dict(net.named_buffers())}

    def one(xi):
        out = functional_call(net, params, (xi[None],))[0]
        return F.log_softmax(out, dim=0) if log_softmax else out
    return vmap(jacrev(one))(x).detach()


def _stage_maps(net, x):
    """Unit-norm attention maps (sum over channels of A^2) entering the first three max-pools."""
    maps, h = [], x
    for layer in net.features:
        if isinstance(layer, torch.nn.MaxPool2d) and len(maps) < 3:
            q = h.pow(2).sum(1).flatten(1)
            maps.append(q / q.norm(dim=1, keepdim=True))
        h = layer(h)
    return maps


def _match(s, t, form):
    s, t = s.flatten(1), t.flatten(1)
    if form == "normalized":
        s, t = s / s.norm(dim=1, keepdim=True), t / t.norm(dim=1, keepdim=True)
    return (s - t).pow(2).sum(1).mean()


def case(method, form, mode):
    """(terms, total) of one step of ``method``, computed from the formulas."""
    student, teacher, x, y = nets()
    student.train(mode == "train")
    torch.manual_seed(SEED)
    terms = {}
    rows = torch.arange(B)
    with torch.no_grad():
        t_logits = teacher(x)
    fd = "fdjac" in method
    if fd:
        n = max(1, round(0.25 * B))
        moved = x[:n] + 0.01 * torch.randn_like(x[:n])
        xs = torch.cat([x, moved])
    else:
        xs = x
    net = _statistics_as_running(student, xs) if mode == "train" else student
    with torch.no_grad():
        out = net(xs)
    s_logits = out[:B]
    if method in ("act+fulljac", "act+fulljac+ce"):
        v = torch.randn_like(s_logits)
        js, jt = _jacobian(net, x), _jacobian(teacher, x)
        u_s, u_t = torch.einsum("bk,bk...->b...", v, js), torch.einsum("bk,bk...->b...", v, jt)
        terms["jac"] = _match(u_s, u_t, form)
    elif fd:
        with torch.no_grad():
            t_moved = teacher(moved)
        d_s = (out[B:] - out[:n]) / 0.01
        d_t = (t_moved - t_logits[:n]) / 0.01
        terms["jac"] = (d_s - d_t).pow(2).sum(1).mean()
    elif "jac" in method and "norm" not in method:
        js, jt = _jacobian(net, x)[rows, y], _jacobian(teacher, x)[rows, y]
        terms["jac"] = _match(js, jt, form)
    if method == "ce+jacnorm":
        terms["jacnorm"] = _jacobian(net, x)[rows, y].flatten(1).pow(2).sum(1).mean()
    if method == "ce+logjacnorm":
        terms["jacnorm"] = _jacobian(net, x, log_softmax=True)[rows, y].flatten(1).pow(2).sum(1).mean()
    if method.startswith("noisy-act"):
        noisy = x + 0.1 * torch.randn_like(x)
        with torch.no_grad():
            noisy_net = _statistics_as_running(student, noisy) if mode == "train" else student
            terms["noisy_act"] = (noisy_net(noisy) - teacher(noisy)).pow(2).sum(1).mean()
    elif "act" in method.split("+"):
        terms["act"] = (s_logits - t_logits).pow(2).sum(1).mean()
    ce = -F.log_softmax(s_logits, 1)[rows, y].mean()
    if method == "kd":
        p_t = F.softmax(t_logits / 4, 1)
        kl = (p_t * (torch.log(p_t) - F.log_softmax(s_logits / 4, 1))).sum(1).mean()
        terms["ce"], terms["kd"] = 0.1 * ce, 0.9 * 16 * kl
    elif method.endswith("+ce") or method in ("ce", "ce+jacnorm", "ce+logjacnorm"):
        terms["ce"] = ce
    if method == "at+ce":
        with torch.no_grad():
            pairs = zip(_stage_maps(net, x), _stage_maps(teacher, x))
            terms["at"] = 1000 * sum((s - t).pow(2).mean() for s, t in pairs)
    terms = {k: float(v) for k, v in terms.items()}
    return terms, sum(terms.values())


def key(method, form, mode) -> str:
    return f"{method}/{form}/{mode}"


if __name__ == "__main__":
    table = {}
    for c in CASES:
        terms, total = case(*c)
        table[key(*c)] = {"terms": terms, "total": total}
    FILE.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"{len(table)} cases written to {FILE}")
