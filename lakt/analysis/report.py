"""What the experiment chapters (3, 4, 5) show, computed from the run cache.

The chapters only narrate: every table, figure and reading of the results comes
from here, so the three notebooks share one implementation and the unit tests
cover it. Inputs are the :class:`lakt.runs.RunConfig` lists of a preset
and the results folder (``runs/``); nothing here trains.

* :func:`transfer_table` / :func:`plot_transfer` / :func:`transfer_reading` --
  Tables 1 and 2 (students distilled from a teacher on per-class subsets);
* :func:`robustness_table` / :func:`plot_robustness` / :func:`robustness_reading` --
  Table 3 (accuracy under Gaussian input noise);
* (paired comparisons live in :mod:`lakt.analysis.answers`) --
  methods against a reference row, paired by seed (the beyond-the-paper methods against
  single-output Jacobian matching; Act+Jac at several Jacobian weights γ against Act);
* :func:`beside_paper` -- our table next to the paper's, with the difference (or,
  when our dataset is not the paper's, each row's gain over a baseline);
* :func:`provenance` -- the one line that says where the numbers come from;
* :func:`data_available` -- whether a dataset can be loaded from ``data_root``.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .. import runs
from ..core.errors import require
from ..core.methods import row_name, split_row_name
from .palette import SHORT_NAMES
from .palette import Shown, provenance_note, provenance_summary, styled  # noqa: F401  (the chapters call report.styled)

DATASET_LABELS = {
    "digits": "digits (scikit-learn 8×8 digits, upsampled to 32×32)",
    "cifar10": "CIFAR-10",
    "folder": "CIFAR-10 (JPEG)",
    "cifar100": "CIFAR-100",
}
PAPER_DATASET = {"cifar10": "cifar10", "folder": "cifar10", "cifar100": "cifar100"}
"""Which of the paper's datasets each of ours *is* (digits is none of them)."""

NUM_CLASSES = {"digits": 10, "cifar10": 10, "folder": 10, "cifar100": 100}

_STATS = ("mean", "std", "text")


def dataset_label(dataset: str, short: bool = False) -> str:
    """How a dataset is named wherever its results are shown (``folder`` is the CIFAR-10 JPEG copy).

    ``short``: without the description (for figure titles).
    """
    label = DATASET_LABELS.get(dataset, dataset)
    return label.split(" (scikit")[0] if short else label


def same_data(dataset: str, paper_dataset: str) -> bool:
    """True when our numbers are on the paper's dataset, so accuracies compare directly."""
    return PAPER_DATASET.get(dataset) == paper_dataset


# ---------------------------------------------------------------- which runs

def transfer_runs(preset: str, dataset: str, seeds=None) -> list[runs.RunConfig]:
    """Teacher first, then every student of Table 1/2 for ``dataset`` under ``preset``."""
    return runs.get_preset(preset).with_seeds(seeds).transfer(dataset)


def robustness_runs(preset: str, dataset: str, seeds=None) -> list[runs.RunConfig]:
    """The Jacobian-penalty VGG-9 runs of Table 3 (one per penalty and seed)."""
    return runs.get_preset(preset).with_seeds(seeds).robustness(dataset)


@dataclasses.dataclass(frozen=True)
class Availability:
    """Whether a dataset can be loaded, and why (or why not). True/False in an ``if``."""

    ok: bool
    reason: str

    def __bool__(self) -> bool:
        return self.ok


def data_available(dataset: str, data_root=None) -> Availability:
    """Can ``dataset`` be loaded from ``data_root`` without a download?

    Checks the files torchvision (or the ImageFolder loader) would read, without
    decoding anything, so a chapter can say plainly what is missing instead of
    failing halfway -- or worse, showing numbers it does not have.
    """
    label = dataset_label(dataset)
    if dataset == "digits":
        return Availability(True, f"{label}: ships with scikit-learn, always available")
    require(dataset in PAPER_DATASET, f"unknown dataset {dataset!r}; choose one of {', '.join(DATASET_LABELS)}")
    if data_root is None or str(data_root) == "":
        return Availability(False, f"{label} is not available: no data_root was given (pass -p data_root DIR)")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        return Availability(False, f"{label} is not available: data_root {str(root)!r} is not a folder")
    if dataset == "folder":
        need = [root / "train", root / "test"]
        missing = [p for p in need if not p.is_dir() or not any(q.is_dir() for q in p.iterdir())]
    elif dataset == "cifar10":
        base = root / "cifar-10-batches-py"
        missing = [p for p in [base / f"data_batch_{i}" for i in range(1, 6)] + [base / "test_batch"]
                   if not p.is_file()]
    else:
        base = root / "cifar-100-python"
        missing = [p for p in (base / "train", base / "test") if not p.is_file()]
    if missing:
        return Availability(False, f"{label} is not available: {str(missing[0])!r} is missing under data_root")
    return Availability(True, f"{label}: found under {str(root)!r}")


def reproduce_commands(chapter: str, dataset: str, preset: str = "paper") -> str:
    """The two commands that produce a chapter's numbers on real data: train (resumable), then render."""
    return (f"lakt sweep --preset {preset} --dataset {dataset} --data-root DIR --results runs\n"
            f"papermill notebooks/{chapter}.ipynb book/{chapter}.ipynb -p preset {preset} "
            f"-p dataset {dataset} -p data_root DIR --cwd notebooks")


# ---------------------------------------------------------------- tables

def run_label(config: runs.RunConfig) -> str:
    """A student's row name: its method, with the Jacobian weight when not the paper's 1."""
    return row_name(config.method, config.jac_weight)


def _short(label: str) -> str:
    method, gamma = split_row_name(label)
    return SHORT_NAMES.get(method, method) + (f" γ={gamma}" if gamma else "")


def _finished(configs, results, kind):
    return runs.finished([c for c in configs if c.kind == kind], results)


def _finished_students(configs, results) -> list:
    """(config, metrics) of the finished students, or one clear error saying how to get some."""
    done = _finished(configs, results, "student")
    require(done, "no finished student runs among these configs; run them with lakt.runs.sweep(configs, results)")
    return done


def _student_runs(configs, results) -> pd.DataFrame:
    """One row per finished student: method, n_per_class, seed, test_acc."""
    done = _finished_students(configs, results)
    return pd.DataFrame([{"method": run_label(c), "n_per_class": c.n_per_class, "seed": c.seed,
                          "test_acc": m["test_acc"]} for c, m in done])


def _wide(long: pd.DataFrame, index: str, columns: str, decimals: int = 2) -> pd.DataFrame:
    """Long rows (index, columns, mean, std) -> columns (stat, columns) with a 'mean ± std' text stat."""
    text = long["mean"].map(lambda v: f"{v:.{decimals}f}")
    has_std = long["std"].notna()
    text[has_std] = text[has_std] + long.loc[has_std, "std"].map(lambda v: f" ± {v:.{decimals}f}")
    long = long.assign(text=text)
    stats = [s for s in long.columns if s not in (index, columns)]
    wide = long.pivot(index=index, columns=columns, values=stats)
    wide.columns = wide.columns.set_names(["stat", columns])
    order = list(_STATS) + [s for s in stats if s not in _STATS]
    return wide[[s for s in order if s in stats]]


def transfer_table(configs, results) -> pd.DataFrame:
    """Student accuracy (%) as method × examples per class, over the finished seeds.

    Columns are (stat, n_per_class) with stats ``mean``, ``std`` (sample std over
    training seeds; NaN with one seed), ``text`` ("mean ± std", as the paper prints
    its tables) and ``seeds`` (how many seeds finished). Rows keep the configs'
    method order (the paper's for the presets). ``table["mean"]`` lines up with
    :func:`lakt.paper.table1` / ``table2``.
    """
    runs = _student_runs(configs, results)
    long = (runs.groupby(["method", "n_per_class"])["test_acc"]
            .agg(mean="mean", std="std", seeds="count").reset_index())
    wide = _wide(long, "method", "n_per_class")
    order = list(dict.fromkeys(run_label(c) for c in configs if c.kind == "student"))
    return wide.reindex([m for m in order if m in wide.index]).rename_axis("method")


def loss_terms(configs, results, term: str, epoch: int = -1) -> pd.DataFrame:
    """One loss term's value (batch mean over an epoch) as method × examples per class, mean over seeds.

    ``term``: ``"ce"``, ``"act"`` or ``"jac"``, as the training history records them;
    ``epoch``: which history row (-1: the last, 0: the first). Only methods that train
    with ``term`` are rows (one per Jacobian weight γ, :func:`run_label`); the history
    stores the weighted term, the table the term itself (``"jac"`` divided by γ). With
    all constants 1 the terms are simply added, so their sizes say which one the
    optimiser is actually following -- e.g. whether the
    normalised Jacobian term (0: same direction as the teacher's gradient, 2:
    unrelated directions, 4: opposite) moves at all next to a squared logit error.
    """
    done = _finished_students(configs, results)
    rows = [{"method": run_label(c), "n_per_class": c.n_per_class,
             "value": m["history"][epoch][term] / (c.jac_weight if term == "jac" else 1)}
            for c, m in done if term in m["history"][epoch]]
    require(rows, f"no finished run trains with the {term!r} term")
    table = pd.DataFrame(rows).pivot_table(index="method", columns="n_per_class", values="value", aggfunc="mean")
    order = list(dict.fromkeys(run_label(c) for c in configs if c.kind == "student"))
    return table.reindex([m for m in order if m in table.index])


def pooled_stats(means, stds, counts) -> tuple[float, float, int]:
    """Mean and sample std of all values of several groups, from each group's mean, std and size.

    ``stds`` are sample stds (ddof=1, as torch and :mod:`lakt.robustness` report
    them). The result is what ``np.std(all_values, ddof=1)`` would give; with a
    single value in all the std is 0 (e.g. the clean accuracy of one net: nothing
    random was drawn).
    """
    m = np.asarray(means, dtype=float)
    s = np.nan_to_num(np.asarray(stds, dtype=float))
    n = np.asarray(counts, dtype=float)
    total = n.sum()
    grand = float((n * m).sum() / total)
    if total <= 1:
        return grand, 0.0, int(total)
    ss = ((n - 1) * s ** 2).sum() + (n * (m - grand) ** 2).sum()
    return grand, float(math.sqrt(ss / (total - 1))), int(total)


def robustness_table(configs, results) -> pd.DataFrame:
    """Accuracy (%) under input noise as penalty × σ: mean ± std over noise draws *and* training seeds.

    Each robust run stores, per σ, the mean and std over its noise draws; the seeds'
    draws are pooled (:func:`pooled_stats`), so the std covers both sources of
    variation. Columns are (stat, sigma) with stats ``mean``, ``std``, ``text``,
    ``draws`` (values pooled) and ``seeds``.
    """
    done = _finished(configs, results, "robust")
    require(done, "no finished robust runs among these configs; run them with lakt.runs.sweep(configs, results)")
    rows = [{"penalty": c.penalty, "seed": c.seed, **r} for c, m in done for r in m["noise"]]
    runs = pd.DataFrame(rows)
    long = []
    for (penalty, sigma), g in runs.groupby(["penalty", "sigma"]):
        mean, std, draws = pooled_stats(g["mean"], g["std"], g["trials"])
        long.append({"penalty": penalty, "sigma": sigma, "mean": mean, "std": std if draws > 1 else float("nan"),
                     "draws": draws, "seeds": g["seed"].nunique()})
    return _wide(pd.DataFrame(long), "penalty", "sigma")


def paper_robustness_table(long: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 3 (long form, :func:`lakt.paper.table3`) in :func:`robustness_table`'s shape."""
    long = long.copy()
    long["std"] = long["std"].where(long["sigma"] > 0)  # σ = 0 is printed without a std
    return _wide(long[["penalty", "sigma", "mean", "std"]], "penalty", "sigma")


def _means(table: pd.DataFrame) -> pd.DataFrame:
    if isinstance(table.columns, pd.MultiIndex) and "mean" in table.columns.get_level_values(0):
        return table["mean"].astype(float)
    return table.astype(float)


def _baseline_name(table: pd.DataFrame, baseline) -> str:
    axis, value = baseline
    if axis == "row":
        return f"gain over {SHORT_NAMES.get(value, value)}"
    name = {"sigma": "σ"}.get(table.columns.name, table.columns.name or "column")
    return f"change from {name}={value:g}"


def beside_paper(ours: pd.DataFrame, paper: pd.DataFrame, *, same_data: bool = True,
                 baseline=("row", "ce")) -> pd.DataFrame:
    """Our means next to the paper's, on the rows and columns both have.

    ``same_data``: our dataset is the paper's, so accuracies compare directly:
    columns ``ours``, ``paper``, ``ours − paper``. Otherwise (digits against
    CIFAR) raw accuracies mean nothing side by side, so each table is first taken
    relative to its own ``baseline`` -- ``("row", "ce")``: each method's gain over
    CE training; ``("column", 0.0)``: the change from the σ = 0 accuracy -- and the
    quantities are labelled so. Returns columns (quantity, <the tables' column name>).
    """
    ours, paper = _means(ours), _means(paper)
    rows = [r for r in ours.index if r in paper.index]
    cols = [c for c in ours.columns if c in set(paper.columns)]
    require(rows and cols, "our table and the paper's share no rows or columns; nothing to compare")
    a, b = ours.loc[rows, cols], paper.loc[rows, cols]
    if same_data:
        names = ("ours", "paper", "ours − paper")
    else:
        axis, value = baseline
        require(axis in ("row", "column"), f"baseline must be ('row', label) or ('column', label), got {baseline!r}")
        if axis == "row":
            require(value in ours.index and value in paper.index, f"baseline row {value!r} is not in both tables")
            a, b = a - ours.loc[value, cols], b - paper.loc[value, cols]
        else:
            require(value in ours.columns and value in paper.columns, f"baseline column {value!r} is not in both tables")
            a, b = a.sub(ours.loc[rows, value], axis=0), b.sub(paper.loc[rows, value], axis=0)
        what = _baseline_name(ours, baseline)
        names = (f"ours: {what}", f"paper: {what}", "ours − paper")
    out = pd.concat({names[0]: a, names[1]: b, names[2]: a - b}, axis=1)
    out.columns = out.columns.set_names(["quantity", ours.columns.name])
    return out


def teacher_beside_paper(teacher_metrics: dict, dataset: str, paper_dataset: str) -> pd.DataFrame:
    """The VGG-9 teacher's test accuracy next to the paper's (90.94% CIFAR-10, 64.78% CIFAR-100)."""
    from .paper import TEACHER_ACCURACY

    return pd.DataFrame({"dataset": [dataset_label(dataset), dataset_label(paper_dataset)],
                         "test accuracy (%)": [teacher_metrics["test_acc"], TEACHER_ACCURACY[paper_dataset]]},
                        index=pd.Index(["ours", "paper"], name="VGG-9 teacher"))


def recipe(config) -> str:
    """A training run's optimiser, schedule and length in a few words, from its config."""
    if config.optimizer == "sgd":
        how = f"SGD {config.lr:g} → {config.final_lr:g} cosine"
    else:
        how = f"{config.optimizer.capitalize()} {config.lr:g} → {config.final_lr:g}"
    decay = f", weight decay {config.weight_decay:g}" if config.weight_decay else ""
    return f"{how}{decay}, {config.epochs} epochs"


def teacher_recipes(presets, results) -> pd.DataFrame:
    """The finished teachers of ``presets`` side by side: recipe (index), then the last epoch's
    training accuracy (on augmented batches), validation and test accuracy, minutes of training on the
    device each ran on, and the preset it came from: which recipe gives the stronger teacher,
    chosen on validation."""
    rows = {}
    for name in presets:
        teacher = runs.preset(name)[0]
        metrics = runs.load_result(teacher, results)
        if metrics is not None:
            rows[recipe(teacher)] = {"train": metrics["history"][-1]["train_acc"], "validation": metrics["val_acc"],
                                     "test": metrics["test_acc"], "minutes": metrics["seconds"] / 60,
                                     "device": metrics["device"], "preset": name}
    require(rows, f"no finished teacher among the presets {list(presets)}; run them with `lakt sweep --preset NAME`")
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("teacher recipe")


def frozen_runs(results) -> pd.DataFrame:
    """The superseded runs kept as frozen JSON under ``results/frozen/<kind>/<key>.json``, one row each:
    kind, method, n_per_class, seed, jac_weight, test_acc, teacher_epochs, device, why it was frozen.

    No current preset describes them; the appendix reads them to show what each change moved."""
    import json

    rows = []
    for path in sorted(Path(results, "frozen").glob("*/*.json")):
        run = json.loads(path.read_text())
        c = run["config"]
        teacher = c.get("teacher") or {}
        rows.append({"kind": c["kind"], "method": c["method"], "n_per_class": c.get("n_per_class"), "seed": c["seed"],
                     "jac_weight": c.get("jac_weight", 1.0), "epochs": c["epochs"], "augment": c.get("augment", False),
                     "teacher_epochs": teacher.get("epochs"), "test_acc": run["test_acc"], "device": run["device"],
                     "frozen_because": run.get("frozen_because", "")})
    require(rows, f"no frozen runs in {Path(results, 'frozen').resolve()}; set the parameter real_results "
                  "to the folder holding the committed results")
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- reading the results

def provenance(configs, metrics, preset: str | None = None) -> str:
    """One line: preset, dataset, seeds, epochs, width, hardware, torch version, runs finished.

    Shown under every result, because the same chapter means very different
    things under ``smoke`` (a plumbing check) and ``paper``. ``metrics`` are the
    finished runs' metrics dicts (what :func:`lakt.runs.sweep` returns); the
    hardware and torch version are the ones the runs were *trained* on. ``preset``:
    inferred from the configs when not given.
    """
    configs = list(configs)
    metrics = [m for m in metrics if m is not None]
    require(configs, "provenance needs at least one run config")
    name = preset or _infer_preset(configs) or "custom"
    datasets = ", ".join(dict.fromkeys(dataset_label(c.dataset) for c in configs))
    trained = [c for c in configs if c.kind != "teacher"] or configs
    seeds = ", ".join(str(s) for s in sorted({c.seed for c in trained}))
    epochs = []
    for kind, word in (("teacher", "teacher"), ("student", "students"), ("robust", "robust nets")):
        e = sorted({c.epochs for c in configs if c.kind == kind})
        if e:
            epochs.append(f"{word} {e[0]}" + (f"–{e[-1]}" if len(e) > 1 else ""))
    widths = ", ".join(f"{w:g}" for w in sorted({c.width for c in configs}))
    devices = "; ".join(sorted({m.get("device", "?") for m in metrics})) or "not trained yet"
    torches = ", ".join(sorted({m.get("torch", "?") for m in metrics})) or "?"
    spent = _duration(sum(m.get("seconds", 0.0) for m in metrics))
    return (f"preset {name} · data {datasets} · seeds {seeds} · epochs: {', '.join(epochs)} · width {widths} · "
            f"trained on {devices} · torch {torches} · {len(metrics)}/{len(configs)} runs finished "
            f"({spent} of training, summed over runs)")


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _signature(c: runs.RunConfig) -> str:
    d = c.to_dict()
    for k in ("seed", "dataset"):
        d.pop(k)
    if d.get("teacher"):
        d["teacher"] = {k: v for k, v in d["teacher"].items() if k not in ("seed", "dataset")}
    return repr(sorted(d.items()))


def _infer_preset(configs) -> str | None:
    datasets = {c.dataset for c in configs}
    for name, p in runs.PRESETS.items():
        known = {_signature(c) for d in datasets for c in p.runs(d)}
        if all(_signature(c) in known for c in configs):
            return name
    return None
