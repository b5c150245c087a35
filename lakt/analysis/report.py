"""The tables the experiment chapters (3, 4, 5, the appendix) show, read from the run cache, and the
paper's own numbers beside them. Nothing here trains and nothing here tests: the comparisons
and their statistics are :mod:`lakt.analysis.answers`', the figures :mod:`lakt.analysis.figures`'.

* which runs: :func:`transfer_runs`, :func:`robustness_runs`, :func:`data_available`;
* Tables 1-2: :func:`transfer_table`, :func:`loss_terms`, :func:`teacher_recipes`, :func:`frozen_runs`;
* Table 3: :func:`noise_curves` (one row per run and σ), :func:`robustness_table`, :func:`noise_spread`;
* beside the paper: :func:`table1`, :func:`table2`, :func:`table3`, :func:`beside_paper`;
* where the numbers come from: :func:`provenance`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from .. import runs
from ..core.errors import require
from ..core.methods import PAPER_METHODS
from .palette import SHORT_NAMES, method_label
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
    return config.method if config.jac_weight == 1 else f"{config.method} γ={config.jac_weight:g}"


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
    wide["text"] = wide["text"].fillna("–")   # a cell with no finished run
    order = list(_STATS) + [s for s in stats if s not in _STATS]
    return wide[[s for s in order if s in stats]]


def transfer_table(configs, results) -> pd.DataFrame:
    """Student accuracy (%) as method × examples per class, over the finished seeds.

    Columns are (stat, n_per_class) with stats ``mean``, ``std`` (sample std over
    training seeds; NaN with one seed), ``text`` ("mean ± std", as the paper prints
    its tables) and ``seeds`` (how many seeds finished). Rows keep the configs'
    method order (the paper's for the presets). ``table["mean"]`` lines up with
    :func:`table1` / :func:`table2`.
    """
    runs = _student_runs(configs, results)
    long = (runs.groupby(["method", "n_per_class"])["test_acc"]
            .agg(mean="mean", std="std", seeds="count").reset_index())
    wide = _wide(long, "method", "n_per_class")
    order = list(dict.fromkeys(run_label(c) for c in configs if c.kind == "student"))
    return wide.reindex([m for m in order if m in wide.index]).rename_axis("method")


BUDGET_ROWS = (("ce", ""), ("act", ""), ("act+jac", "γ=1"), ("act+jac", "γ=100"), ("kd", "T=4 α=0.5"))
"""The (method, setting) rows trained at every budget (:func:`budget_table`)."""


def budget_table(presets, results, size: int = 100, rows=BUDGET_ROWS) -> pd.DataFrame:
    """Test accuracy against training steps at ``size`` per class: one row per (method, setting, steps)
    of ``rows`` over the presets' finished students -- mean, std over seeds, seeds. Steps are the
    optimiser steps each run took (epochs × batches per epoch), so presets of different budgets line
    up on one axis."""
    from ..analysis.answers import setting_label
    from ..core.train import steps_per_epoch

    found = []
    for name in presets:
        for c, m in _finished(runs.preset(name), results, "student"):
            if c.n_per_class == size and (c.method, setting_label(c.knobs)) in rows:
                found.append({"method": c.method, "setting": setting_label(c.knobs), "seed": c.seed,
                              "steps": c.epochs * steps_per_epoch(size * NUM_CLASSES[c.dataset], c.batch_size),
                              "test_acc": m["test_acc"]})
    require(found, f"no finished student at {size} per class among the presets {list(presets)}")
    g = pd.DataFrame(found).drop_duplicates(["method", "setting", "seed", "steps"]).groupby(["method", "setting", "steps"])
    return g["test_acc"].agg(mean="mean", std="std", seeds="count").reset_index()


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


def noise_curves(configs, results) -> pd.DataFrame:
    """Accuracy under input noise of each finished robust run: columns form (its method), penalty, seed,
    sigma, acc (the mean over its noise draws) and draw_std (their std; NaN at σ = 0, nothing drawn)."""
    rows = [{"form": c.method, "penalty": c.penalty, "seed": c.seed, "sigma": r["sigma"], "acc": r["mean"],
             "draw_std": r["std"] if r["trials"] > 1 else np.nan}
            for c, m in _finished(configs, results, "robust") for r in m["noise"]]
    require(rows, "no finished robust runs among these configs; run them with `lakt sweep --preset PRESET`")
    return pd.DataFrame(rows)


def paper_curves(long: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 3 (:func:`table3`) as :func:`noise_curves` of one net (seed 0, the logit penalty)."""
    return long.rename(columns={"mean": "acc", "std": "draw_std"}).assign(form="ce+jacnorm", seed=0)


def noise_spread(curves: pd.DataFrame) -> pd.DataFrame:
    """Per (form, penalty, σ): the mean accuracy, its std over training seeds, and the noise draws' std
    within a run (root mean square over the seeds) -- the two sources of spread, shown apart."""
    g = curves.assign(draw_var=curves["draw_std"] ** 2).groupby(["form", "penalty", "sigma"])
    return pd.DataFrame({"mean": g["acc"].mean(), "seed std": g["acc"].std(ddof=1), "seeds": g["acc"].count(),
                         "draw std": np.sqrt(g["draw_var"].mean())})


def robustness_table(configs, results, form: str | None = None) -> pd.DataFrame:
    """Accuracy (%) under input noise as penalty × σ, mean ± std over training seeds.

    Columns (stat, sigma), stats mean, std, text, seeds; the noise draws' own spread is
    :func:`noise_spread`'s. ``form``: the penalised nets' method when the configs hold both
    (``ce+jacnorm``, the logit penalty; ``ce+logjacnorm``, Eq 3's); the unpenalised nets are
    every form's row 0."""
    curves = noise_curves(configs, results)
    if form is not None:
        curves = curves[(curves["form"] == form) | (curves["penalty"] == 0)]
    require(curves[curves["penalty"] > 0]["form"].nunique() <= 1,
            "these runs hold two penalty forms; pick one with form='ce+jacnorm' or form='ce+logjacnorm'")
    long = noise_spread(curves.assign(form="")).reset_index().rename(columns={"seed std": "std"})
    return _wide(long[["penalty", "sigma", "mean", "std", "seeds"]], "penalty", "sigma")


PENALTY_FORMS = {"ce+jacnorm": "logit penalty λ‖∇ₓ S_y‖²", "ce+logjacnorm": "Eq 3's penalty λ‖∇ₓ log softmax(S)_y‖²"}
PENALTY_NAMES = {"ce+jacnorm": "logit penalty", "ce+logjacnorm": "Eq 3 penalty"}
"""The two readings of Table 3's penalty, by the penalised nets' method: the label logit's input
gradient (Prop 2's sum approximated by its label row, §3) or the label's log-softmax (Eq 3, the
cross-entropy form the paper trains Table 3 with). ``PENALTY_NAMES``: each in two words."""


def robustness_tables(configs, results) -> dict[str, pd.DataFrame]:
    """:func:`robustness_table` once per penalty form the configs hold (keyed by form, in
    :data:`PENALTY_FORMS`' order), each with the unpenalised nets as its row 0."""
    forms = {c.method for c in configs if c.kind == "robust" and c.penalty > 0}
    return {form: robustness_table(configs, results, form=form) for form in PENALTY_FORMS if form in forms}


TRAINING_FIGURES = ("training batches (train mode)", "training images (eval mode)", "validation", "test")


def training_figures(configs, results, replicate=None) -> pd.DataFrame:
    """Per penalised net (form, penalty, seed): accuracy (%) as training reports it -- its last
    epoch's batches, in train mode (BatchNorm's batch statistics, augmented inputs) -- against the
    un-augmented training images in eval mode (running statistics), the held-out validation images
    and the test images. A gap between the first two is the train/eval switch; between the last
    three, over-fitting. Runs that did not record the eval-mode figure read it from ``replicate``
    (the same keys trained again into another results folder), which also gives its own test
    accuracy (``replicate test``: how closely a re-run reproduces the committed one)."""
    rows = []
    for c in configs:
        m = runs.load_result(c, results) if c.kind == "robust" else None
        if m is None:
            continue
        again = runs.load_result(c, replicate) if replicate is not None else None
        rows.append({"form": c.method, "penalty": c.penalty, "seed": c.seed,
                     TRAINING_FIGURES[0]: m["history"][-1].get("train_acc", np.nan),
                     TRAINING_FIGURES[1]: m.get("train_eval_acc", (again or {}).get("train_eval_acc", np.nan)),
                     TRAINING_FIGURES[2]: m.get("val_acc", np.nan), TRAINING_FIGURES[3]: m["test_acc"],
                     "replicate test": (again or {}).get("test_acc", np.nan)})
    require(rows, "no finished penalised nets among these configs")
    return pd.DataFrame(rows).set_index(["form", "penalty", "seed"]).sort_index()


def training_gap(figures: pd.DataFrame, penalty: float = 0.1, over_fit: float = 3.0, form: str = "ce+jacnorm") -> str:
    """What :func:`training_figures` says of the nets of penalty ``form`` at ``penalty``: where their
    training figure and their test accuracy part. Over-fitting is named when the eval-mode training
    accuracy sits more than ``over_fit`` points above the validation accuracy; otherwise the train/eval
    switch."""
    rows = figures.xs((form, penalty), level=("form", "penalty"))
    listed = lambda col: " and ".join(f"{v:.1f}%" for v in rows[col])
    seeds = ("seeds " if len(rows) > 1 else "seed ") + " and ".join(str(s) for s in rows.index)
    text = (f"With the {PENALTY_NAMES[form]} at λ = {penalty:g} ({seeds}) the nets end training at {listed(TRAINING_FIGURES[0])} on their "
            f"training batches but score {listed('test')} on the test images, and {listed('validation')} on the "
            "validation images -- held-out training images, so the test images are not simply harder.")
    known = rows[rows[TRAINING_FIGURES[1]].notna()]
    if known.empty:
        return text + " Their accuracy on the training images in eval mode was not recorded."
    for seed, r in known.iterrows():
        switch = r[TRAINING_FIGURES[0]] - r[TRAINING_FIGURES[1]]
        fit = r[TRAINING_FIGURES[1]] - r["validation"]
        cause = (f"over-fitting: {fit:.1f} points above the validation images" if fit > over_fit else
                 f"the train/eval switch, not over-fitting: {switch:.1f} points below its training batches and "
                 f"{fit:+.1f} from the validation images")
        again = (f" (the re-run's own test accuracy: {r['replicate test']:.1f}%, against "
                 f"{r['test']:.1f}% committed)") if pd.notna(r["replicate test"]) else ""
        text += (f" Seed {seed}'s net scores {r[TRAINING_FIGURES[1]]:.1f}% on the un-augmented training images in "
                 f"eval mode{again}: {cause}.")
    return text


def training_gaps(figures: pd.DataFrame, penalty: float = 0.1) -> str:
    """:func:`training_gap` for every penalty form with nets at ``penalty``, one paragraph each."""
    held = set(figures.index.droplevel("seed"))
    return "\n\n".join(training_gap(figures, penalty, form=f) for f in PENALTY_FORMS if (f, penalty) in held)


BATCHNORM_STATISTICS = {"running": "running (as trained; Table 3)", "batch": "each batch's own (train mode)",
                        "recalibrated": "re-estimated on the training images"}


def batchnorm_statistics(path) -> pd.DataFrame:
    """``benchmarks/batchnorm_statistics.py``'s CSV: test accuracy (%) per penalised net under each
    BatchNorm statistics, indexed (form, penalty, seed, results folder), with where it was measured."""
    frame = pd.read_csv(path)
    require(set(BATCHNORM_STATISTICS) <= set(frame.columns),
            f"{path} is not benchmarks/batchnorm_statistics.py's output; run that script to write it")
    shown = frame.set_index(["form", "penalty", "seed", "results"])[list(BATCHNORM_STATISTICS)]
    shown.attrs["measured"] = "; ".join(sorted({f"{r.utc} on {r.device}, commit {str(r.commit)[:7]}"
                                                for r in frame.itertuples()}))
    return shown.rename(columns=BATCHNORM_STATISTICS)


def batchnorm_reading(table: pd.DataFrame, stale_points: float = 5.0) -> str:
    """What re-estimating the statistics recovers, per net of :func:`batchnorm_statistics`, and
    which nets' Table 3 figure it changes by more than ``stale_points``."""
    running, batch, again = BATCHNORM_STATISTICS.values()
    name = lambda form, penalty, seed: f"{PENALTY_NAMES.get(form, form)} λ = {penalty:g}, seed {seed}"
    parts = [f"{name(form, penalty, seed)} (`{folder}/`): {r[running]:.1f}% with the running statistics, "
             f"{r[again]:.1f}% once they are re-estimated ({r[again] - r[running]:+.1f} points; its own batches' "
             f"statistics give {r[batch]:.1f}%)" for (form, penalty, seed, folder), r in table.iterrows()]
    if not parts:
        return "No net's weights measured."
    stale = [name(*key[:3]) for key, r in table.iterrows() if r[again] - r[running] > stale_points]
    verdict = (f" Where re-estimating gains more than {stale_points:g} points ({'; '.join(stale)}), Table 3's figure "
               "measures the running statistics as much as the net: its weights are worth the re-estimated "
               "accuracy." if stale else f" No net gains more than {stale_points:g} points from it.")
    return "; ".join(parts) + "." + verdict + f" Measured {table.attrs.get('measured', '')}."


def paper_robustness_table(long: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 3 (long form, :func:`table3`) in :func:`robustness_table`'s shape."""
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
    return pd.DataFrame({"dataset": [dataset_label(dataset), dataset_label(paper_dataset)],
                         "test accuracy (%)": [teacher_metrics["test_acc"], TEACHER_ACCURACY[paper_dataset]]},
                        index=pd.Index(["ours", "paper"], name="VGG-9 teacher"))


def committed(configs, results, preset: str):
    """A preset's committed runs, read: (finished students as :func:`lakt.runs.collect` rows, the
    teacher's metrics, the :func:`provenance` line, a Markdown note of how many finished per seed)."""
    done = runs.finished(configs, results)
    line = provenance(configs, [m for _, m in done], preset)
    table = runs.collect(configs, results)
    students = table[table["kind"] == "student"]
    wanted = [c for c in configs if c.kind == "student"]
    per_seed = ", ".join(f"seed {s}: {int((students['seed'] == s).sum())} of {sum(c.seed == s for c in wanted)}"
                         for s in sorted({c.seed for c in wanted}))
    note = (f"Students finished: **{len(students)} of {len(wanted)}** ({per_seed}); trained on "
            f"{'; '.join(sorted(set(students['device'])))}. Every table below says how many seeds each cell rests on.")
    return students, runs.load_result(configs[0], results), line, note


def paper_scale(configs, results, paper: pd.DataFrame):
    """The paper-scale students (one GPU, one seed) beside the paper's table: (:func:`beside_paper`'s
    table, the :func:`provenance` line, a Markdown note on the teacher and how many finished). The
    teacher's weights are not committed, so it never counts as finished: its students record its accuracy."""
    done = runs.finished(configs, results)
    teacher_acc = {m["teacher_acc"] for c, m in done if c.kind == "student"}
    require(len(teacher_acc) == 1, "the paper-scale students should share one teacher")
    epochs = next(c.teacher.epochs for c in configs if c.kind == "student")
    note = (f"Teacher: **{teacher_acc.pop():.2f}%** after {epochs} epochs (the paper's: "
            f"{TEACHER_ACCURACY['cifar10']:.2f}% after 500); students finished: "
            f"{sum(c.kind == 'student' for c, _ in done)} of {sum(c.kind == 'student' for c in configs)}.")
    side = beside_paper(transfer_table(configs, results), paper, same_data=True)
    return side, provenance(configs, [m for _, m in done], None), note


def epoch_seconds(configs, results) -> str:
    """How long an epoch of the robust runs took, with and without the penalty (median over epochs), as Markdown."""
    done = _finished(configs, results, "robust")
    seconds = pd.DataFrame([{"penalised": c.penalty > 0, "s": r["seconds"]} for c, m in done for r in m["history"]])
    median = seconds.groupby("penalised")["s"].median()
    devices = "; ".join(sorted({m["device"] for _, m in done}))
    return (f"Measured: a median **{median.get(True, float('nan')):.0f} s an epoch with the penalty** and "
            f"{median.get(False, float('nan')):.0f} s without ({devices}; two runs side by side, one core each).")


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


def recipes_reading(recipes: pd.DataFrame, current: str, goal: float = 85.0) -> str:
    """What :func:`teacher_recipes`' table says, as Markdown: the best recipe on validation, against the
    first row (the earlier attempt's teacher), the goal, the training fit, and which one ``current`` uses."""
    best, fits = recipes["validation"].idxmax(), recipes["train"].idxmax()
    used = next(r for r, p in recipes["preset"].items() if runs.preset(p)[0] == runs.preset(current)[0])
    reached = recipes.index[recipes["test"] >= goal].tolist()
    return (f"Best on validation: **{best}** ({recipes.loc[best, 'validation']:.2f}%, {recipes.loc[best, 'test']:.2f}% "
            f"test, {recipes.loc[best, 'test'] - recipes.iloc[0]['test']:+.2f} points from the first row, the second "
            f"attempt's teacher). {'No recipe reaches' if not reached else ', '.join(reached) + ' reach'} the {goal:.0f}% "
            f"aimed at. {fits} fits its training batches best ({recipes.loc[fits, 'train']:.1f}%)"
            f"{' and is also' if fits == best else ' but is not'} the best held out. Training time: "
            + "; ".join(f"{r}: {m:.0f} min on {d}" for r, m, d in zip(recipes.index, recipes["minutes"], recipes["device"]))
            + f". The current students are distilled from {used}.")


def first_attempt(frozen: pd.DataFrame, answers: pd.DataFrame, teacher: dict) -> pd.DataFrame:
    """The first attempt (``frozen``, :func:`frozen_runs`) beside the current runs (their
    :func:`lakt.analysis.answers.answer_table` and teacher): teacher, Jacobian, where γ was chosen,
    and (b) as specified and at the chosen γ, in points (the mean over 5–100 per class)."""
    old = frozen[(frozen["kind"] == "student") & (frozen["n_per_class"] <= 100)]
    old_teacher = frozen[frozen["kind"] == "teacher"].iloc[0]
    mean = lambda m, g=1.0: old[(old["method"] == m) & (old["jac_weight"] == g)].groupby("n_per_class")["test_acc"].mean()
    by_gamma = {g: (mean("act+jac", g) - mean("act")).dropna().mean() for g in sorted(set(old["jac_weight"]))}
    best = max((g for g in by_gamma if g != 1.0), key=by_gamma.get)   # chosen on the test set, as it was
    b = answers.loc["(b)", "mean"]
    spec = b[[r for r in b.index if r.startswith("Act+Jac (γ=1) − Act")]]
    tuned = b[[r for r in b.index if "chosen" in r and r.startswith("Act+Jac (") and r.endswith("− Act")]]
    augmented = lambda cfg: "crop + flip" if cfg.get("augment") else "no augmentation"
    return pd.DataFrame({
        "first attempt": [f"{old_teacher['test_acc']:.2f}% ({old_teacher['epochs']} epochs, {augmented(old_teacher)})",
                          "batch-coupled", "test set", f"{by_gamma[1.0]:+.2f}", f"{by_gamma[best]:+.2f} (γ={best:g})"],
        "current": [f"{teacher['test_acc']:.2f}% ({teacher['config']['epochs']} epochs, {augmented(teacher['config'])})",
                    "per-sample", "validation split", f"{spec.iloc[0]:+.2f}" if len(spec) else "–",
                    f"{tuned.iloc[0]:+.2f} ({tuned.index[0].split(' − ')[0]})" if len(tuned) else "–"]},
        index=["teacher (test accuracy)", "student Jacobian", "γ chosen on", "(b) Act+Jac − Act as specified, mean over 5–100",
               "(b) at the chosen γ, mean over 5–100"])


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


# ---------------------------------------------------------------- the paper's numbers
# Tables 1, 2, 3 and the teachers, transcribed as data: rows indexed by lakt's method names,
# columns examples per class (Tables 1-2) or σ (Table 3), test accuracy in percent as printed.

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
