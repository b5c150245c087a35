"""lakt.analysis.report: the tables, comparisons, figures and provenance of chapters 3-5.

Real `smoke` runs (trained once per module into a temporary results folder) check the
plumbing; hand-written metrics files check the arithmetic against numbers computed here
independently, straight from the files.
"""
import json
import statistics

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import math  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from lakt import runs  # noqa: E402
from lakt.analysis import figures, report  # noqa: E402
from lakt.core.errors import LaktError  # noqa: E402
from lakt.core.methods import PAPER_METHODS  # noqa: E402
from lakt.core.files import atomic_save, atomic_write_json  # noqa: E402

SEEDS = (0, 1)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke preset's transfer runs with two seeds and its robustness runs, trained once."""
    results = tmp_path_factory.mktemp("runs")
    transfer = report.transfer_runs("smoke", "digits", SEEDS)
    robust = report.robustness_runs("smoke", "digits")
    metrics = runs.sweep(transfer + robust, results, progress=False)
    return results, transfer, robust, metrics


def metrics_files(results, kind):
    """Every finished run of ``kind``, read straight from disk (not through lakt)."""
    return [json.loads(p.read_text()) for p in sorted((results / kind).glob("*/metrics.json"))]


def fake_result(config, results, **metrics):
    """A finished run with chosen metrics, written where lakt looks for it (with a stand-in model.pt)."""
    atomic_save({"model": {}}, config.folder(results) / "model.pt")  # robust and teacher runs keep weights
    atomic_write_json({"key": config.key, "name": config.name, "config": config.to_dict(), "seconds": 1.0,
                       "device": "cpu (test)", "torch": "0.0-test", **metrics}, config.folder(results) / "metrics.json")


# ---------------------------------------------------------------- which runs

def test_with_seeds_replaces_seeds_but_keeps_the_teacher():
    smoke = runs.get_preset("smoke")
    p = smoke.with_seeds([3, 4])
    assert p.seeds == (3, 4) and p.robust_seeds == (3, 4)
    configs = report.transfer_runs("smoke", "digits", [3, 4])
    assert {c.seed for c in configs[1:]} == {3, 4}
    assert configs[0].key == runs.PRESETS["smoke"].teacher("digits").key  # cached teacher reused
    assert smoke.with_seeds(None) is runs.PRESETS["smoke"]
    assert smoke.with_seeds("0,2").seeds == (0, 2) == smoke.with_seeds("[0, 2]").seeds
    assert smoke.with_seeds(5).seeds == (5,)
    with pytest.raises(LaktError):
        smoke.with_seeds("one")
    with pytest.raises(LaktError):
        smoke.with_seeds([])


def test_transfer_and_robustness_runs_follow_the_preset():
    configs = report.transfer_runs("cpu", "digits")
    p = runs.PRESETS["cpu"]
    assert configs[0].kind == "teacher"
    assert len(configs) - 1 == len(p.methods) * len(runs.SIZES["digits"]) * len(p.seeds)
    robust = report.robustness_runs("cpu", "digits", seeds=[7])
    assert sorted({c.penalty for c in robust}) == sorted(p.penalties) and {c.seed for c in robust} == {7}


# ---------------------------------------------------------------- transfer table

@pytest.mark.slow
def test_transfer_table_shape_and_order(smoke):
    results, transfer, _, _ = smoke
    table = report.transfer_table(transfer, results)
    assert list(table.index) == list(PAPER_METHODS)
    assert list(table["mean"].columns) == [5]
    assert set(table.columns.get_level_values("stat")) == {"mean", "std", "text", "seeds"}
    assert (table["seeds"] == len(SEEDS)).all().all()
    assert table["mean"].stack().between(0, 100).all()


@pytest.mark.slow
def test_transfer_table_mean_and_std_equal_the_metrics_files(smoke):
    results, transfer, _, _ = smoke
    table = report.transfer_table(transfer, results)
    by_cell = {}
    for m in metrics_files(results, "student"):
        by_cell.setdefault((m["config"]["method"], m["config"]["n_per_class"]), []).append(m["test_acc"])
    assert len(by_cell) == table["mean"].size
    for (method, n), accs in by_cell.items():
        assert len(accs) == len(SEEDS)
        mean, std = statistics.mean(accs), statistics.stdev(accs)
        assert table["mean"].loc[method, n] == pytest.approx(mean)
        assert table["std"].loc[method, n] == pytest.approx(std)
        assert table["text"].loc[method, n] == f"{mean:.2f} ± {std:.2f}"


@pytest.mark.slow
def test_transfer_table_with_one_seed_has_no_std(smoke):
    results, _, _, _ = smoke
    one = report.transfer_runs("smoke", "digits", [0])
    table = report.transfer_table(one, results)
    assert table["std"].isna().all().all()
    assert not table["text"].stack().str.contains("±").any()


def test_transfer_table_uses_only_finished_runs(tmp_path):
    configs = report.transfer_runs("smoke", "digits", [0, 1])
    with pytest.raises(LaktError, match="no finished student runs"):
        report.transfer_table(configs, tmp_path)
    ce = [c for c in configs if c.kind == "student" and c.method == "ce"]
    fake_result(ce[0], tmp_path, test_acc=40.0)
    table = report.transfer_table(configs, tmp_path)
    assert list(table.index) == ["ce"]
    assert table["mean"].loc["ce", 5] == 40.0 and table["seeds"].loc["ce", 5] == 1


def test_loss_terms_read_the_histories(tmp_path):
    teacher = runs.RunConfig("teacher", "digits", "vgg9", 0.125, "ce", None, 0, 1)
    configs = [runs.RunConfig("student", "digits", "vgg4", 0.125, m, 5, s, 2, teacher=teacher)
               for m in ("ce", "act+jac") for s in (0, 1)]
    for c in configs:
        terms = [{"ce": 2.0 + c.seed}, {"ce": 1.0 + c.seed}] if c.method == "ce" else \
                [{"act": 900.0 + c.seed, "jac": 2.0}, {"act": 1.0, "jac": 1.5 + c.seed}]
        fake_result(c, tmp_path, test_acc=10.0, history=terms)
    jac_end = report.loss_terms(configs, tmp_path, "jac")
    assert list(jac_end.index) == ["act+jac"] and jac_end.loc["act+jac", 5] == pytest.approx(2.0)  # (1.5 + 2.5) / 2
    assert report.loss_terms(configs, tmp_path, "act", epoch=0).loc["act+jac", 5] == pytest.approx(900.5)
    assert report.loss_terms(configs, tmp_path, "ce").loc["ce", 5] == pytest.approx(1.5)
    with pytest.raises(LaktError, match="no finished run trains with the 'penalty' term"):
        report.loss_terms(configs, tmp_path, "penalty")


def test_raised_jacobian_weights_are_rows_of_their_own(tmp_path):
    teacher = runs.RunConfig("teacher", "digits", "vgg9", 0.125, "ce", None, 0, 1)
    configs = [runs.RunConfig("student", "digits", "vgg4", 0.125, "act+jac", 5, s, 2, teacher=teacher, jac_weight=g)
               for g in (1.0, 10.0) for s in (0, 1)]
    for c in configs:  # the history stores the weighted term: gamma x (normalised term)
        fake_result(c, tmp_path, test_acc=40.0 + c.jac_weight + c.seed, history=[{"act": 5.0, "jac": c.jac_weight * 1.5}])
    table = report.transfer_table(configs, tmp_path)
    assert list(table.index) == ["act+jac", "act+jac γ=10"]
    assert table["mean"].loc["act+jac γ=10", 5] == pytest.approx(50.5)
    assert list(report.loss_terms(configs, tmp_path, "jac")[5]) == pytest.approx([1.5, 1.5])
    assert list(report.method_labels(table).index) == ["Match {Activations + Jacobians}",
                                                      "Match {Activations + Jacobians} (γ = 10)"]


# ---------------------------------------------------------------- robustness table

@pytest.mark.slow
def test_robustness_table_equals_the_metrics_files(smoke):
    results, _, robust, _ = smoke
    table = report.robustness_table(robust, results)
    files = metrics_files(results, "robust")
    penalties = runs.PRESETS["smoke"].penalties
    assert len(files) == len(penalties) and table["mean"].shape == (len(penalties), 5)
    for m in files:
        for row in m["noise"]:
            p, s = m["config"]["penalty"], row["sigma"]
            assert table["mean"].loc[p, s] == pytest.approx(row["mean"])
            # one seed: no spread over seeds, so no "± 0.00" either
            assert math.isnan(table["std"].loc[p, s]) and " ± " not in table["text"].loc[p, s]
    assert (table["seeds"] == 1).all().all()


def test_robustness_table_spreads_over_seeds_and_draws_apart(tmp_path):
    configs = report.robustness_runs("smoke", "digits", [0, 1])
    draws = {0: [90.0, 92.0, 94.0], 1: [80.0, 84.0, 82.0]}  # sigma 0.2, per seed
    for c in configs:
        d = draws[c.seed]
        noise = [{"sigma": 0.0, "mean": 99.0 - c.seed, "std": 0.0, "trials": 1},
                 {"sigma": 0.2, "mean": statistics.mean(d), "std": statistics.stdev(d), "trials": 3}]
        fake_result(c, tmp_path, test_acc=99.0 - c.seed, noise=noise)
    table = report.robustness_table(configs, tmp_path)
    spread = report.noise_spread(report.noise_curves(configs, tmp_path))
    for p in runs.PRESETS["smoke"].penalties:
        assert table["mean"].loc[p, 0.2] == pytest.approx(statistics.mean([92.0, 82.0]))
        assert table["std"].loc[p, 0.2] == pytest.approx(statistics.stdev([92.0, 82.0]))   # seeds only
        assert table["seeds"].loc[p, 0.2] == 2 and table["text"].loc[p, 0.2] == "87.00 ± 7.07"
        assert table["std"].loc[p, 0.0] == pytest.approx(statistics.stdev([99.0, 98.0]))
        # the draws' own spread, apart: root mean square of each run's std over its draws
        form = configs[0].method
        assert spread.loc[(form, p, 0.2), "draw std"] == pytest.approx(2.0)
        assert math.isnan(spread.loc[(form, p, 0.0), "draw std"])


def test_robustness_tables_one_per_penalty_form_sharing_the_unpenalised_nets(tmp_path):
    import dataclasses
    logit = report.robustness_runs("smoke", "digits", [0, 1])
    eq3 = [dataclasses.replace(c, method="ce+logjacnorm") for c in logit if c.penalty > 0]
    for c in logit + eq3:   # accuracy at σ = 0.2: 90 unpenalised, 80 + λ logit, 70 + λ Eq 3; seed adds 1
        acc = {"ce+jacnorm": 80.0, "ce+logjacnorm": 70.0}[c.method] + c.penalty if c.penalty else 90.0
        fake_result(c, tmp_path, test_acc=99.0, noise=[{"sigma": 0.2, "mean": acc + c.seed, "std": 1.0, "trials": 3}])
    tables = report.robustness_tables(logit + eq3, tmp_path)
    assert list(tables) == list(report.PENALTY_FORMS)   # the logit first, then Eq 3
    penalties = runs.PRESETS["smoke"].penalties
    for (form, table), base in zip(tables.items(), (80.0, 70.0)):
        assert list(table.index) == sorted(penalties)
        for p in penalties:
            want = 90.0 if p == 0 else base + p
            assert table["mean"].loc[p, 0.2] == pytest.approx(want + 0.5), form   # seeds 0, 1
    fig = figures.plot_robustness({f"ours, {report.PENALTY_NAMES[f]}": t for f, t in tables.items()}, paper=report.table3())
    assert [ax.get_title() for ax in fig.axes] == ["ours, logit penalty", "ours, Eq 3 penalty", "paper"]
    plt.close(fig)
    assert list(report.robustness_tables(logit, tmp_path)) == ["ce+jacnorm"]


def test_paper_robustness_table_has_table3_shape():
    t = report.paper_robustness_table(report.table3())
    assert t["mean"].shape == (5, 5)
    assert t["mean"].loc[1.0, 0.4] == 35.43
    assert t["std"][0.0].isna().all() and t["text"].loc[0.0, 0.0] == "64.78"
    assert t["text"].loc[0.5, 0.3] == "44.99 ± 0.28"


# ---------------------------------------------------------------- beside the paper

@pytest.mark.slow
def test_beside_paper_same_data_is_ours_paper_and_difference(smoke):
    results, transfer, _, _ = smoke
    table = report.transfer_table(transfer, results)
    side = report.beside_paper(table, report.table1(), same_data=True)
    assert list(side.columns.get_level_values("quantity").unique()) == ["ours", "paper", "ours − paper"]
    assert list(side.index) == list(PAPER_METHODS)
    for m in PAPER_METHODS:
        assert side[("ours", 5)][m] == pytest.approx(table["mean"].loc[m, 5])
        assert side[("paper", 5)][m] == report.table1().loc[m, 5]
        assert side[("ours − paper", 5)][m] == pytest.approx(table["mean"].loc[m, 5] - report.table1().loc[m, 5])


def test_beside_paper_other_data_compares_gains_over_ce():
    ours = pd.DataFrame({5: [10.0, 15.0, 9.0], 50: [20.0, 30.0, 21.0], 7: [1.0, 2.0, 3.0]},
                        index=pd.Index(["ce", "act", "act+jac"], name="method")).rename_axis("n_per_class", axis=1)
    side = report.beside_paper(ours, report.table1(), same_data=False)
    assert list(side.columns.get_level_values(0).unique()) == ["ours: gain over CE", "paper: gain over CE",
                                                               "ours − paper"]
    assert sorted(set(side.columns.get_level_values(1))) == [5, 50]  # 7 per class is not in Table 1
    assert (side["ours: gain over CE"].loc["ce"] == 0).all()
    assert side[("ours: gain over CE", 50)]["act"] == 10.0
    assert side[("paper: gain over CE", 5)]["act+jac"] == pytest.approx(41.43 - 28.92)
    assert side[("ours − paper", 5)]["act"] == pytest.approx(5.0 - (36.73 - 28.92))


def test_beside_paper_column_baseline_is_change_from_clean():
    t3 = report.paper_robustness_table(report.table3())
    side = report.beside_paper(t3, t3, same_data=False, baseline=("column", 0.0))
    assert list(side.columns.get_level_values(0).unique())[0] == "ours: change from σ=0"
    assert (side["ours: change from σ=0"][0.0] == 0).all()
    assert side[("paper: change from σ=0", 0.4)][1.0] == pytest.approx(35.43 - 63.59)
    assert (side["ours − paper"] == 0).all().all()


def test_beside_paper_refuses_tables_with_nothing_in_common():
    ours = pd.DataFrame({3: [1.0]}, index=["ce"])
    with pytest.raises(LaktError):
        report.beside_paper(ours, report.table1())
    with pytest.raises(LaktError):
        report.beside_paper(pd.DataFrame({5: [1.0]}, index=["act"]), report.table1(), same_data=False)


def test_teacher_beside_paper():
    t = report.teacher_beside_paper({"test_acc": 97.5}, "folder", "cifar10")
    assert t.loc["ours", "test accuracy (%)"] == 97.5 and t.loc["paper", "test accuracy (%)"] == 90.94
    assert t.loc["ours", "dataset"] == "CIFAR-10 (JPEG)"


# ---------------------------------------------------------------- figures

@pytest.mark.slow
def test_plot_transfer_draws_one_line_per_method_on_log_x(smoke):
    results, transfer, _, _ = smoke
    table = report.transfer_table(transfer, results)
    fig = figures.plot_transfer(table, paper=report.table1(), teacher_acc=99.0, paper_teacher_acc=90.94)
    ours, theirs = fig.axes
    assert ours.get_xscale() == "log" and theirs.get_xscale() == "log"
    assert len(ours.containers) == len(PAPER_METHODS) == len(theirs.containers)
    y = [container.lines[0].get_ydata()[0] for container in ours.containers]
    assert sorted(y) == pytest.approx(sorted(table["mean"][5]))
    assert {t.get_text() for t in fig.legends[0].get_texts()} >= {"teacher (VGG-9)", "Match Activations only"}
    plt.close(fig)


@pytest.mark.slow
def test_plot_robustness_one_line_per_penalty(smoke):
    results, _, robust, _ = smoke
    table = report.robustness_table(robust, results)
    fig = figures.plot_robustness(table, paper=report.table3())
    ours, theirs = fig.axes
    assert len(ours.containers) == len(table) and len(theirs.containers) == 5
    legend = fig.legends[0]   # one legend beneath both panels, over no curve
    want = dict.fromkeys(f"penalty {p:g}" for p in [*table.index, *report.TABLE3_PENALTIES])
    assert [t.get_text() for t in legend.get_texts()] == list(want)
    plt.close(fig)


# ---------------------------------------------------------------- reading and provenance

@pytest.mark.slow
def test_provenance_states_preset_data_seeds_hardware_and_torch(smoke):
    results, transfer, robust, metrics = smoke
    mine = [m for m in metrics if m["key"] in {c.key for c in transfer}]
    line = report.provenance(transfer, mine, "smoke")
    assert line.startswith("preset smoke · data digits")
    assert "seeds 0, 1" in line and "teacher 2" in line and "students 3" in line
    assert mine[0]["device"] in line and f"torch {mine[0]['torch']}" in line
    assert f"{len(transfer)}/{len(transfer)} runs finished" in line
    assert "\n" not in line
    spent = sum(m["seconds"] for m in mine)
    assert f"({spent:.0f} s of training, summed over runs)" in line or f"({spent / 60:.1f} min of training" in line
    assert report.provenance(robust, [], None).startswith("preset smoke ")  # inferred
    assert "0/2 runs finished" in report.provenance(robust, [], None)
    custom = [runs.RunConfig("teacher", epochs=1)]
    assert report.provenance(custom, []).startswith("preset custom ")


def test_data_available(tmp_path):
    assert report.data_available("digits", None)
    missing = report.data_available("cifar100", None)
    assert not missing and "data_root" in missing.reason and "CIFAR-100" in missing.reason
    assert not report.data_available("cifar10", tmp_path / "nowhere")
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)]:
        (base / name).write_bytes(b"x")
    assert not report.data_available("cifar10", tmp_path)  # no test_batch yet
    (base / "test_batch").write_bytes(b"x")
    assert report.data_available("cifar10", tmp_path)
    (tmp_path / "cifar-100-python").mkdir()
    for name in ("train", "test"):
        (tmp_path / "cifar-100-python" / name).write_bytes(b"x")
    assert report.data_available("cifar100", str(tmp_path))
    folder = tmp_path / "jpeg"
    for split in ("train", "test"):
        (folder / split / "cat").mkdir(parents=True)
    assert report.data_available("folder", folder).ok
    with pytest.raises(LaktError):
        report.data_available("mnist", tmp_path)


def test_dataset_labels_and_comparability():
    assert report.dataset_label("folder") == "CIFAR-10 (JPEG)" == report.dataset_label("folder", short=True)
    assert report.dataset_label("digits", short=True) == "digits" != report.dataset_label("digits")
    assert report.same_data("folder", "cifar10") and report.same_data("cifar100", "cifar100")
    assert not report.same_data("digits", "cifar10") and not report.same_data("cifar10", "cifar100")


def test_reproduce_commands_name_the_dataset_and_the_chapter():
    text = report.reproduce_commands("04_transfer_cifar100", "cifar100")
    assert "lakt sweep --preset paper --dataset cifar100 --data-root DIR --results runs" in text
    assert "papermill notebooks/04_transfer_cifar100.ipynb" in text and "--cwd notebooks" in text
    assert len(text.splitlines()) == 2


def test_recipe_names_optimiser_schedule_decay_and_length_from_the_config():
    assert report.recipe(runs.RunConfig("teacher", epochs=50)) == "Adam 0.001 → 0.0001, 50 epochs"
    sgd = runs.RunConfig("teacher", epochs=50, optimizer="sgd", lr=0.05, final_lr=0.0, weight_decay=5e-4)
    assert report.recipe(sgd) == "SGD 0.05 → 0 cosine, weight decay 0.0005, 50 epochs"


def test_budget_table_counts_the_steps_each_run_took(tmp_path):
    for c in report.transfer_runs("smoke", "digits"):
        if c.kind == "student" and c.method in ("ce", "act"):
            fake_result(c, tmp_path, test_acc={"ce": 40.0, "act": 45.0}[c.method])
    t = report.budget_table(["smoke"], tmp_path, size=5, rows=(("ce", ""), ("act", "")))
    # smoke trains 3 epochs in batches of 32; 5 per class of 10 classes is 50 images: 2 batches an epoch
    assert t[["method", "steps", "seeds", "mean"]].values.tolist() == [["act", 6, 1, 45.0], ["ce", 6, 1, 40.0]]
    with pytest.raises(LaktError, match="no finished student at 10 per class"):
        report.budget_table(["smoke"], tmp_path, size=10)


def test_training_figures_read_the_eval_mode_figure_from_the_run_or_its_replicate(tmp_path):
    configs = report.robustness_runs("smoke", "digits", [0, 1])
    for c in configs:   # seed 1 recorded the eval-mode figure itself; seed 0 only in its replicate
        own = {"train_eval_acc": 40.0 + c.penalty} if c.seed == 1 else {}
        fake_result(c, tmp_path / "results", test_acc=30.0 + c.seed, val_acc=31.0, history=[{"train_acc": 60.0}], **own)
        if c.seed == 0:
            fake_result(c, tmp_path / "again", test_acc=29.0, train_eval_acc=33.0, history=[{"train_acc": 1.0}])
    table = report.training_figures(configs, tmp_path / "results", replicate=tmp_path / "again")
    assert len(table) == len(configs)
    for c in configs:
        row = table.loc[(c.method, c.penalty, c.seed)]
        assert row["training batches (train mode)"] == 60.0 and row["validation"] == 31.0
        assert row["test"] == 30.0 + c.seed
        assert row["training images (eval mode)"] == (33.0 if c.seed == 0 else 40.0 + c.penalty)
        assert row["replicate test"] == 29.0 if c.seed == 0 else math.isnan(row["replicate test"])
    penalty = runs.PRESETS["smoke"].penalties[-1]
    text = report.training_gap(table, penalty)
    # seed 0: 60 in train mode, 33 in eval mode, 31 on validation: the switch (27 points), not over-fitting (+2)
    assert "60.0% and 60.0% on their training batches" in text and "30.0% and 31.0% on the test images" in text
    assert "Seed 0's net scores 33.0%" in text and "the train/eval switch, not over-fitting: 27.0 points" in text
    assert "+2.0 from the validation images" in text and "29.0%, against 30.0% committed" in text
    assert f"over-fitting: {40.0 + penalty - 31.0:.1f} points above" in report.training_gap(table, penalty, over_fit=1.0)
    assert report.training_gap(report.training_figures(configs, tmp_path / "again"), penalty).count("Seed") == 1
    assert report.training_gaps(table, penalty) == text   # the logit penalty's nets only


def test_plot_transfer_draws_an_off_budget_size_open():
    from lakt.analysis import answers
    rows = [{"method": m, "n_per_class": n, "seed": s, "val_acc": 50.0, "test_acc": 40.0 + n / 100 + s}
            for m in ("ce", "act") for n in (5, 100, 500) for s in (0, 1)]
    table = answers.transfer_table(pd.DataFrame(rows))
    fig = figures.plot_transfer(table, off_budget={500: "another protocol"})
    ax = fig.axes[0]
    open_points = [line for line in ax.lines if line.get_markerfacecolor() == "white"]
    assert len(open_points) == len(table) and all(list(line.get_xdata()) == [500.0] for line in open_points)
    assert all(list(c.lines[0].get_xdata()) == [5.0, 100.0] for c in ax.containers[::2])   # solid: on budget only
    dotted = [line for line in ax.lines if line.get_linestyle() == ":"]
    assert [list(line.get_xdata()) for line in dotted] == [[100.0, 500.0]] * len(table)
    assert list(dotted[0].get_ydata()) == pytest.approx([41.5, 45.5])   # ce's means at 100 and 500
    assert "another protocol" in ax.get_xlabel()
    plt.close(fig)


def test_batchnorm_statistics_read_the_benchmarks_csv_and_say_what_recalibration_recovers(tmp_path):
    path = tmp_path / "bn.csv"
    pd.DataFrame([{"preset": "p", "results": "replicate", "form": "ce+jacnorm", "penalty": 0.1, "seed": 0, "key": "k",
                   "running": 33.43, "batch": 60.01, "recalibrated": 60.77, "utc": "2026-12-07T19:30:00Z",
                   "device": "cpu (x86_64, 2 threads)", "commit": "abcdef123"}]).to_csv(path, index=False)
    table = report.batchnorm_statistics(path)
    assert list(table.columns) == list(report.BATCHNORM_STATISTICS.values())
    assert table.loc[("ce+jacnorm", 0.1, 0, "replicate")].tolist() == [33.43, 60.01, 60.77]
    text = report.batchnorm_reading(table)
    assert "33.4% with the running statistics, 60.8% once they are re-estimated (+27.3 points" in text
    assert "60.0%" in text and "commit abcdef1" in text
    assert "(logit penalty λ = 0.1, seed 0), Table 3's figure measures the running statistics" in text
    assert "No net gains more than 30 points" in report.batchnorm_reading(table, stale_points=30)
    pd.DataFrame([{"x": 1}]).to_csv(path, index=False)
    with pytest.raises(LaktError, match="batchnorm_statistics.py"):
        report.batchnorm_statistics(path)
