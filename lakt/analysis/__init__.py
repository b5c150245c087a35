"""The book layer: what the chapters compute and show. Nothing here trains a run.

``affine`` (chapter 1: f(x) = grad f(x)^T x, Section 3), ``propositions`` (chapter 2: Monte-Carlo
checks of Props 1-2 and Eqs 2-3), ``report`` (chapters 3-5: tables and provenance from the run
cache), ``answers`` (chapters 3 and 5: the paper's questions paired by seed, knobs chosen on
validation, the readings), ``figures`` (chapters 3-5's plots), ``paper`` (the paper's Tables
1-3), ``cost`` (chapter 6), ``verdicts`` (the verdict table), ``palette`` (names, colours,
figure and table style), ``parameters`` (the chapters' papermill parameters and results folders).
"""
