"""The paper's reported numbers, transcribed as data (Tables 1, 2, 3 and the teachers).

Rows are indexed by lakt's method names (see :data:`lakt.core.methods.PAPER_METHODS`);
columns are examples per class (Tables 1-2) or the noise sigma (Table 3). Values are
test accuracies in percent, exactly as printed in the paper.
"""
from __future__ import annotations

import pandas as pd

from ..core.methods import PAPER_METHODS
from .palette import method_label

TEACHER_ACCURACY = {"cifar10": 90.94, "cifar100": 64.78}
"""VGG-9 teachers' test accuracy (Section 5.1)."""

_TABLE1 = [  # CIFAR-10; 5000 per class is the full training set
    [28.92, 33.8, 53.6, 61.05, 76.01, 77.63, 84.56],
    [35.8, 40.79, 59.98, 67.22, 80.55, 81.77, 87.65],
    [34.47, 39.43, 58.18, 65.05, 76.82, 78.21, 84.76],
    [39.78, 43.4, 62.17, 69.15, 80.28, 82.23, 87.29],
    [36.73, 41.61, 60.71, 68.32, 82.19, 84.00, 88.64],
    [41.43, 46.03, 63.5, 70.17, 80.98, 82.75, 85.56],
]
_TABLE2 = [  # CIFAR-100; 500 per class is the full training set
    [5.69, 13.9, 20.03, 37.6, 44.92, 54.28],
    [12.13, 26.97, 33.92, 46.47, 50.92, 56.65],
    [6.78, 23.94, 32.03, 45.71, 51.47, 53.44],
    [13.78, 33.39, 39.55, 49.49, 52.43, 54.57],
    [10.73, 28.56, 33.6, 45.73, 50.15, 56.59],
    [13.09, 33.31, 38.16, 47.79, 50.06, 51.33],
]
_TABLE3_MEAN = [  # CIFAR-100, VGG-9; rows: regularisation strength
    [64.78, 61.9, 47.53, 29.63, 17.69],
    [64.67, 61.85, 49.47, 32.24, 19.63],
    [65.62, 63.36, 53.57, 37.38, 23.99],
    [64.26, 62.85, 56.57, 44.99, 31.97],
    [63.59, 62.66, 57.53, 47.48, 35.43],
]
_TABLE3_STD = [
    [0.0, 0.07, 0.23, 0.16, 0.17],
    [0.0, 0.15, 0.07, 0.28, 0.17],
    [0.0, 0.18, 0.23, 0.18, 0.19],
    [0.0, 0.05, 0.21, 0.28, 0.15],
    [0.0, 0.13, 0.17, 0.14, 0.11],
]
TABLE3_PENALTIES = (0.0, 0.01, 0.1, 0.5, 1.0)
TABLE3_SIGMAS = (0.0, 0.1, 0.2, 0.3, 0.4)


def _frame(values, columns) -> pd.DataFrame:
    df = pd.DataFrame(values, index=pd.Index(PAPER_METHODS, name="method"),
                      columns=pd.Index(columns, name="n_per_class"))
    return df


def table1() -> pd.DataFrame:
    """Table 1: CIFAR-10 knowledge transfer, VGG-9 teacher -> VGG-4 student."""
    return _frame(_TABLE1, [5, 10, 50, 100, 500, 1000, 5000])


def table2() -> pd.DataFrame:
    """Table 2: CIFAR-100 knowledge transfer, VGG-9 teacher -> VGG-4 student."""
    return _frame(_TABLE2, [1, 5, 10, 50, 100, 500])


def table3() -> pd.DataFrame:
    """Table 3 in long form: penalty, sigma, mean, std (CIFAR-100, VGG-9)."""
    rows = [{"penalty": p, "sigma": s, "mean": _TABLE3_MEAN[i][j], "std": _TABLE3_STD[i][j]}
            for i, p in enumerate(TABLE3_PENALTIES) for j, s in enumerate(TABLE3_SIGMAS)]
    return pd.DataFrame(rows)


def method_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """The same table with the paper's row names instead of lakt's method names."""
    return frame.rename(index=method_label)
