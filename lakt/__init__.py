"""lakt: Local Affine Approximators for Improving Knowledge Transfer, in PyTorch.

Modules, one idea each: ``models`` (VGG-9 / VGG-4), ``jacobian`` (input gradients),
``affine`` (f(x) = grad f(x)^T x and
the Taylor remainder, Section 3), ``losses`` (the paper's loss terms), ``methods`` (their combinations and presets),
``propositions`` (Monte-Carlo checks of Props 1-2, Eqs 2-3), ``data`` (datasets,
subsets, on-device loader), ``train`` (the loop), ``robustness`` (Table 3 protocol),
``paper`` (the paper's tables), ``experiments`` (runs, presets, results cache),
``report`` (the tables and figures of chapters 3-5),
``storage`` (atomic files and run claims) and ``cli``.
"""
__version__ = "0.1.0"
