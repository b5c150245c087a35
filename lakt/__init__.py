"""lakt: Local Affine Approximators for Improving Knowledge Transfer, in PyTorch.

Three layers, one subpackage each:

* :mod:`lakt.core` -- what a user imports for their own training: ``models`` (VGG-9 /
  VGG-4), ``jacobian`` (per-sample input gradients), ``losses`` (the paper's terms),
  ``methods`` (their weighted combinations), ``objective`` (one step's loss), ``data``,
  ``train`` (the loop) and ``robustness`` (the Table 3 protocol);
* :mod:`lakt.runs` -- configs and presets, the results cache, claims, the CLI;
* :mod:`lakt.analysis` -- what the book's chapters compute and show.

``import lakt`` loads the core only (PyTorch, no pandas); ``lakt.runs`` and
``lakt.analysis`` load on first use.
"""
import importlib

from . import core
from .core.errors import LaktError
from .core.jacobian import full_jacobian, logits_and_gradient, output_gradient
from .core.methods import METHODS, PAPER_METHODS, Method, get_method
from .core.models import build, vgg4, vgg9
from .core.objective import Objective
from .core.robustness import noise_robustness
from .core.teacher import TeacherCache
from .core.train import TrainSpec, evaluate, fit

__version__ = "0.1.0"
__all__ = ["core", "LaktError", "full_jacobian", "logits_and_gradient", "output_gradient",
           "METHODS", "PAPER_METHODS", "Method", "get_method", "build", "vgg4", "vgg9", "Objective",
           "TeacherCache", "noise_robustness", "TrainSpec", "evaluate", "fit"]


def __getattr__(name: str):
    """``lakt.runs`` and ``lakt.analysis`` on first use (they bring pandas and the book's plotting)."""
    if name in ("runs", "analysis"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'lakt' has no attribute {name!r}")
