"""One training loop for teachers and students (supplementary, "Optimization").

Adam at 1e-3, annealed once to 1e-4 at 80% of the epochs (the paper: 500 epochs,
drop at 400). The loss of a step comes from an :class:`lakt.core.objective.Objective`, so
the same loop trains a teacher with cross-entropy, a student with any of the
paper's methods, or a network with the Jacobian-norm penalty.

Long runs write a per-epoch checkpoint (model, optimiser, schedule, random states
and history) and resume from it after a kill with the same results they would
have had uninterrupted: bit-identical on the CPU (tests/runs/test_reliability.py). On
CUDA, cuDNN picks non-deterministic convolution algorithms by default, so a resumed
run then matches only up to float rounding; torch.use_deterministic_algorithms(True)
(with CUBLAS_WORKSPACE_CONFIG=:4096:8) restores bit-identity at some speed cost.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from . import checks
from .augment import augment_generator, random_crop_flip
from .data import DeviceLoader, Split, as_split
from .errors import LaktError, require
from .files import atomic_save, load_tensors, warn


class NonFiniteLoss(LaktError):
    """A loss became NaN or infinite; the message carries the step and the terms."""


def default_device() -> torch.device:
    """CUDA when present, otherwise the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_device(device) -> torch.device | None:
    """``device`` as a ``torch.device``, refused in one line unless this machine has it
    (:func:`lakt.core.checks.check_device`)."""
    return checks.check_device(device, how="device=")


@torch.no_grad()
def evaluate(model: nn.Module, split, batch_size: int = 1000, sigma: float = 0.0,
             generator: torch.Generator | None = None) -> float:
    """Test accuracy in percent (eval mode: BatchNorm uses running statistics).

    ``sigma > 0``: one draw of N(0, sigma^2 I) from ``generator`` (on the CPU, so draws
    do not depend on the device) is added to every image first.
    """
    split = as_split(split)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    with checks.labels_fit_outputs(model, split.y):  # a label >= k is never predicted: an error, not a lower score
        for start in range(0, len(split), batch_size):
            x = split.x[start:start + batch_size].to(device)
            y = split.y[start:start + batch_size].to(device)
            if sigma > 0:
                x = x + sigma * torch.randn(x.shape, generator=generator, device="cpu").to(device)
            correct += (model(x).argmax(dim=1) == y).sum().item()
    model.train(was_training)
    return 100.0 * correct / max(1, len(split))


def save_checkpoint(model: nn.Module, path: Path, **extra) -> None:
    """Model weights (plus any tensors/plain data in ``extra``), written atomically."""
    atomic_save({"model": model.state_dict(), **extra}, Path(path))


def load_checkpoint(model: nn.Module, path: Path) -> dict:
    """Load weights with ``weights_only=True``; a mismatched architecture is one clear error."""
    state = load_tensors(Path(path))
    require(state is not None and "model" in state,
            f"cannot read a lakt checkpoint at {str(path)!r}; check the path or re-run the training")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else str(err)
        raise LaktError(f"checkpoint {str(path)!r} is for a different architecture ({first}); "
                        "build the model with the same name, width and classes it was trained with") from err
    return state


def train_step(model: nn.Module, objective, optimizer, positions, x, y):
    """One optimiser step; refuses (before updating) when the loss is not finite."""
    total, terms = objective(model, x, y, positions)
    if not torch.isfinite(total):
        raise NonFiniteLoss(", ".join(f"{k}={v.item():.4g}" for k, v in terms.items() if k != "logits"))
    optimizer.zero_grad(set_to_none=True)
    # Speed trick: the Jacobian terms made the batch a leaf that requires grad; naming
    # the parameters as the only inputs skips the gradient w.r.t. the images.
    total.backward(inputs=[p for group in optimizer.param_groups for p in group["params"] if p.requires_grad])
    optimizer.step()
    return total, terms


OPTIMIZERS = ("adam", "sgd")


def _optimizer_and_schedule(model, spec: "TrainSpec"):
    """The optimiser and its per-epoch learning-rate schedule.

    ``adam`` is the paper's (supplementary: Adam at lr, one drop to final_lr, here at
    ``drop_at`` of the epochs). ``sgd`` -- Nesterov momentum 0.9, L2 weight decay, cosine
    from lr to final_lr -- is the usual CIFAR recipe, an alternative for teachers: Adam
    without weight decay overfits the ¼-width augmented teacher when trained longer
    (chapter 3 compares the recipes).
    """
    lr, final_lr, epochs, weight_decay = spec.lr, spec.final_lr, spec.epochs, spec.weight_decay
    require(weight_decay >= 0, f"weight decay must be >= 0, got {weight_decay!r}")
    if spec.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
        return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=final_lr)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    milestone = max(1, int(round(spec.drop_at * epochs)))
    return optimizer, torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[milestone], gamma=final_lr / lr)


@dataclass(frozen=True)
class TrainSpec:
    """How a network is trained: run length, optimiser, schedule, seed, device and speed options.

    The defaults are the paper's (supplementary, "Optimization"): Adam at ``lr``, one drop
    to ``final_lr`` at ``drop_at`` of the epochs. ``optimizer="sgd"``: Nesterov momentum
    0.9, cosine from ``lr`` to ``final_lr``, L2 ``weight_decay``. ``augment``: each batch
    randomly cropped (4-pixel zero padding) and flipped on the device (the objective then
    gets no dataset positions, so it never reads teacher targets cached for un-augmented
    images). ``eval_every``: epochs between accuracy evaluations (0: the last epoch only).
    ``checkpoint_overhead``: the largest share of training time spent writing the
    checkpoint (None: after every epoch) -- a low-data run has one-batch epochs, often
    shorter than an fsynced write of model and Adam state, so saving after each would
    dominate; a kill then loses at most about save-time / overhead of work, and the
    resumed run is the same run either way (the random states travel with it).
    ``channels_last``: NHWC layout (a GPU speed option; equal up to float rounding).
    ``name``: how progress bars and errors call the run.
    """

    epochs: int
    batch_size: int
    lr: float = 1e-3
    final_lr: float = 1e-4
    drop_at: float = 0.8
    optimizer: str = "adam"
    weight_decay: float = 0.0
    seed: int = 0
    device: str | torch.device | None = None  # None: CUDA when present, else the CPU
    augment: bool = False
    channels_last: bool = False
    eval_every: int = 0
    checkpoint_overhead: float | None = 0.1
    name: str = "train"

    def __post_init__(self):
        require(isinstance(self.epochs, int) and not isinstance(self.epochs, bool) and self.epochs >= 1,
                f"epochs must be a positive integer, got {self.epochs!r}")
        require(isinstance(self.batch_size, int) and not isinstance(self.batch_size, bool) and self.batch_size >= 1,
                f"batch_size must be a positive integer, got {self.batch_size!r}")
        require(self.optimizer in OPTIMIZERS, f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")


def fit(model: nn.Module, train, objective, spec: TrainSpec, *, evaluate_on: dict | None = None,
        checkpoint: Path | None = None, on_epoch=None, progress: bool = True) -> list[dict]:
    """Train ``model`` in place as ``spec`` says; return the history, one dict per epoch.

    Each history row holds the epoch, learning rate, mean of every loss term, train
    accuracy on the batches seen and seconds; every ``spec.eval_every`` epochs and at the
    end, ``<name>_acc`` for each split of ``evaluate_on`` (e.g. ``{"test": ..., "val": ...}``).
    ``checkpoint``: a file to resume from and to save to after an epoch. ``on_epoch``:
    called with each row. ``train`` and the splits: a lakt :class:`Split`, an ``(x, y)``
    pair of tensors, or a torch ``Dataset`` of (image, label) pairs (read once into tensors).

    Speed notes (airbench-style, each visible here): the data never leaves the device
    (:class:`DeviceLoader`); per-step loss terms are summed on the device and read once
    per epoch; the one per-step host sync left is the finite-loss guard.
    """
    require(isinstance(spec, TrainSpec), f"fit takes a TrainSpec, got {type(spec).__name__}; "
                                         "e.g. fit(model, data, objective, TrainSpec(epochs=10, batch_size=64))")
    train = as_split(train, "train")
    evaluate_on = {name: as_split(split, name) for name, split in (evaluate_on or {}).items()}
    device = check_device(spec.device) if spec.device is not None else default_device()
    model.to(device, memory_format=torch.channels_last if spec.channels_last else torch.contiguous_format)
    loader = DeviceLoader(train, spec.batch_size, shuffle=True, seed=spec.seed, device=device,
                          channels_last=spec.channels_last)
    augmenter = augment_generator(spec.seed, device) if spec.augment else None
    optimizer, schedule = _optimizer_and_schedule(model, spec)
    epochs = spec.epochs
    history: list[dict] = []
    start_epoch = 0
    if checkpoint is not None and Path(checkpoint).exists():
        state = load_tensors(Path(checkpoint))
        if state is not None and state.get("epochs") == epochs:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            torch.set_rng_state(state["cpu_rng"])
            if device.type == "cuda" and "cuda_rng" in state:
                torch.cuda.set_rng_state(state["cuda_rng"], device)
            loader.generator.set_state(state["loader_rng"])
            if augmenter is not None and "augment_rng" in state:
                augmenter.set_state(state["augment_rng"])
            history, start_epoch = list(state["history"]), int(state["epoch"])
        elif state is not None:
            warn(f"checkpoint {checkpoint} is for a different run length; starting over")
    model.train()
    step = start_epoch * len(loader)
    save_seconds, last_save = 0.0, time.perf_counter()
    bar = tqdm(range(start_epoch, epochs), desc=spec.name, disable=not progress,
               initial=start_epoch, total=epochs, leave=False)
    for epoch in bar:
        began = time.perf_counter()
        sums: dict[str, torch.Tensor] = {}
        correct, seen = torch.zeros((), device=device), 0
        for positions, x, y in loader:
            if augmenter is not None:
                x, positions = random_crop_flip(x, augmenter), None
            try:
                total, terms = train_step(model, objective, optimizer, positions, x, y)
            except NonFiniteLoss as err:
                raise NonFiniteLoss(f"non-finite loss at step {step} (epoch {epoch}) of {spec.name}: {err}; "
                                    "lower the learning rate or the term weights") from None
            step += 1
            n = len(y)
            for k, v in (("loss", total.detach()), *terms.items()):
                if k != "logits":
                    sums[k] = sums.get(k, 0.0) + v.double() * n
            correct += (terms["logits"].argmax(1) == y).sum()
            seen += n
        schedule.step()
        row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"],
               **{k: v.item() / max(1, seen) for k, v in sums.items()},
               "train_acc": 100.0 * correct.item() / max(1, seen), "seconds": time.perf_counter() - began}
        last = epoch + 1 == epochs
        if evaluate_on and (last or (spec.eval_every and (epoch + 1) % spec.eval_every == 0)):
            row.update({f"{name}_acc": evaluate(model, split) for name, split in evaluate_on.items()})
            model.train()
        history.append(row)
        bar.set_postfix(loss=f"{row['loss']:.3g}", acc=f"{row['train_acc']:.1f}")
        due = (spec.checkpoint_overhead is None
               or time.perf_counter() - last_save >= save_seconds / spec.checkpoint_overhead)
        if checkpoint is not None and not last and due:
            saving = time.perf_counter()
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "schedule": schedule.state_dict(), "cpu_rng": torch.get_rng_state(),
                     "loader_rng": loader.generator.get_state(), "history": history,
                     "epoch": epoch + 1, "epochs": epochs}
            if augmenter is not None:
                state["augment_rng"] = augmenter.get_state()
            if device.type == "cuda":
                state["cuda_rng"] = torch.cuda.get_rng_state(device)
            atomic_save(state, Path(checkpoint))
            last_save = time.perf_counter()
            save_seconds = last_save - saving
        if on_epoch is not None:
            on_epoch(row)
    bar.close()
    model.eval()
    return history


def steps_per_epoch(n_examples: int, batch_size: int) -> int:
    """Optimiser steps in one epoch of :class:`DeviceLoader` (a lone last image is dropped)."""
    full, rest = divmod(n_examples, batch_size)
    return full + (1 if rest > 1 else 0)


def epochs_for_steps(n_examples: int, batch_size: int, steps: int, at_least: int = 1) -> int:
    """Epochs needed for about ``steps`` optimiser steps (low-data runs need many epochs)."""
    return max(at_least, math.ceil(steps / max(1, steps_per_epoch(n_examples, batch_size))))
