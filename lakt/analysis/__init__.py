"""The book layer: what the chapters compute and show.

``affine`` (f(x) = grad f(x)^T x, Section 3), ``propositions`` (Monte-Carlo checks of
Props 1-2 and Eqs 2-3), ``paper`` (the paper's Tables 1-3), ``report`` (tables and
computed readings from the run cache), ``figures`` (their plots) and ``cost`` (the
price of each method, chapter 6). Nothing here trains a run.
"""
