"""lakt: Local Affine Approximators for Improving Knowledge Transfer, in PyTorch.

Three layers, one subpackage each:

* :mod:`lakt.core` -- what a user imports for their own training: ``models`` (VGG-9 /
  VGG-4), ``jacobian`` (per-sample input gradients), ``losses`` (the paper's terms),
  ``methods`` (their weighted combinations), ``objective`` (one step's loss), ``data``,
  ``train`` (the loop) and ``robustness`` (the Table 3 protocol);
* :mod:`lakt.runs` -- configs and presets, the results cache, claims, the CLI;
* :mod:`lakt.analysis` -- what the book's chapters compute and show.

The names most users need are importable from ``lakt`` itself.
"""
from . import analysis, core, runs
from .core.errors import LaktError
from .core.jacobian import full_jacobian, logits_and_gradient, output_gradient
from .core.methods import METHODS, PAPER_METHODS, Method, get_method
from .core.models import build, vgg4, vgg9
from .core.objective import Objective, TeacherCache
from .core.robustness import noise_robustness
from .core.train import evaluate, fit

__version__ = "0.1.0"
__all__ = ["analysis", "core", "runs", "LaktError", "full_jacobian", "logits_and_gradient", "output_gradient",
           "METHODS", "PAPER_METHODS", "Method", "get_method", "build", "vgg4", "vgg9", "Objective",
           "TeacherCache", "noise_robustness", "evaluate", "fit"]
