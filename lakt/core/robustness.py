"""Accuracy under Gaussian input noise (Section 5.2, Table 3's protocol).

Noise of standard deviation sigma is added to the *normalised* images, as in the
paper; each sigma is repeated over several independent noise draws and reported
as mean +- std of the accuracy (in percent).
"""
from __future__ import annotations

import torch
from torch import nn

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
