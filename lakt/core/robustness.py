"""Accuracy under Gaussian input noise (Section 5.2, Table 3's protocol).

Noise of standard deviation sigma is added to the *normalised* images, as in the
paper; each sigma is repeated over several independent noise draws and reported
as mean +- std of the accuracy (in percent).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .checks import check_model_input, labels_fit_outputs
from .data import as_split
from .errors import require
from .train import evaluate

PAPER_SIGMAS = (0.0, 0.1, 0.2, 0.3, 0.4)


def check_sigmas(sigmas) -> tuple[float, ...]:
    """Sigmas as floats; one clear error for negative or non-numeric values."""
    out = []
    for s in sigmas:
        try:
            value = float(s)
        except (TypeError, ValueError):
            value = float("nan")
        require(value == value and value >= 0 and value != float("inf"),
                f"noise sigma must be a non-negative number, got {s!r}; e.g. sigmas 0 0.1 0.2")
        out.append(value)
    return tuple(out)


def noise_robustness(model: nn.Module, split, sigmas=PAPER_SIGMAS, trials: int = 10,
                     seed: int = 0) -> list[dict]:
    """Accuracy (%) under noise: one record {sigma, mean, std, trials} per sigma
    (``pandas.DataFrame(records)`` makes it a table).

    sigma = 0 needs no draws and is evaluated once (std 0), as the paper reports it.
    ``split``: a lakt ``Split``, an ``(x, y)`` pair of tensors or a torch ``Dataset``;
    an empty one, a non-finite image, or a label the model has no output for is an
    error, not an accuracy (a label >= k is never predicted, so it would only lower it).
    """
    split = as_split(split, "split")
    check_model_input(model, split.x, what="images", same_device=False)  # batches are moved to the model's device
    sigmas = check_sigmas(sigmas)
    require(isinstance(trials, int) and not isinstance(trials, bool) and trials >= 1,
            f"trials must be a positive integer, got {trials!r}")
    generator = torch.Generator().manual_seed(int(seed))
    rows = []
    for sigma in sigmas:
        with labels_fit_outputs(model, split.y):
            accs = torch.tensor([evaluate(model, split, sigma=sigma, generator=generator)
                                 for _ in range(1 if sigma == 0 else trials)])
        rows.append({"sigma": sigma, "mean": accs.mean().item(),
                     "std": accs.std().item() if len(accs) > 1 else 0.0, "trials": len(accs)})
    return rows


def _shuffled_batches(split, batch_size: int, seed: int, device):
    """(images, labels) on ``device`` in batches of ``batch_size`` drawn in a seeded random order, as
    training draws them (a folder's images come sorted by class, and batches of one class would
    give BatchNorm one class's statistics); a last batch of one image joins the one before
    (train-mode BatchNorm has no statistics of a single image)."""
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    starts = list(range(0, len(split), batch_size))
    if len(starts) > 1 and len(split) - starts[-1] == 1:
        starts.pop()
    for a, b in zip(starts, starts[1:] + [len(split)]):
        yield split.x[order[a:b]].to(device), split.y[order[a:b]].to(device)


def recalibrated(model: nn.Module, split, batch_size: int = 64, seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose BatchNorm running statistics are estimated again on ``split``:
    one pass in train mode without gradients (:func:`_shuffled_batches`), a plain average over the
    batches instead of the momentum's moving one; the weights are untouched.

    Why: eval mode normalises with running statistics averaged over the *training batches* --
    augmented, and taken while the weights moved. A net whose activations shrank to the scale of
    BatchNorm's eps (a strong Jacobian penalty does that) can be far more accurate on its own
    batches than in eval mode; re-estimating the statistics tells that apart from a net that
    learned little (chapter 5 measures both on Table 3's nets).
    """
    split = as_split(split, "split")
    require(len(split) >= 2 and batch_size >= 2, "recalibrating BatchNorm needs batches of at least 2 images")
    twin = copy.deepcopy(model).train()
    norms = [m for m in twin.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None            # cumulative average over this pass
    with torch.no_grad():
        for x, _ in _shuffled_batches(split, batch_size, seed, next(twin.parameters()).device):
            twin(x)
    for bn, momentum in zip(norms, momenta):
        bn.momentum = momentum
    return twin.eval()


def batch_statistics_accuracy(model: nn.Module, split, batch_size: int = 64, seed: int = 0) -> float:
    """Accuracy (%) with every BatchNorm normalising by each batch's own statistics (train mode,
    as the training log measures it; batches of :func:`_shuffled_batches`), on a copy so the
    model's running statistics stay as they are."""
    split = as_split(split, "split")
    twin = copy.deepcopy(model).train()
    correct = 0
    with torch.no_grad():
        for x, y in _shuffled_batches(split, batch_size, seed, next(twin.parameters()).device):
            correct += (twin(x).argmax(dim=1) == y).sum().item()
    return 100.0 * correct / max(1, len(split))
