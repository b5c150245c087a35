"""The core a user imports: models, per-sample input gradients, the paper's losses and
methods, the training objective, data, the training loop and noise robustness.

Everything here is plain PyTorch; it knows nothing of presets, caches or the book.
"""
from . import data, errors, files, jacobian, losses, methods, models, objective, robustness, teacher, train

__all__ = ["data", "errors", "files", "jacobian", "losses", "methods", "models", "objective", "robustness", "teacher",
           "train"]
