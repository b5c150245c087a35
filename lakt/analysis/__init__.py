"""The book layer: what the chapters compute and show. Nothing here trains a run.

``affine`` (chapter 1: f(x) = grad f(x)^T x, Section 3), ``propositions`` (chapter 2: Monte-Carlo
checks of Props 1-2 and Eqs 2-3), ``report`` (chapters 3-5 and the appendix: tables from the run
cache, the paper's Tables 1-3, provenance), ``answers`` (the paper's claims as paired comparisons
with their statistics, knobs chosen on validation, the verdict page), ``figures`` (chapters 3-5's
plots), ``cost`` (chapter 6), ``palette`` (names, colours, figure and table style), ``parameters``
(the chapters' papermill parameters and results folders).
"""
