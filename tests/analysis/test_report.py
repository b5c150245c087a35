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
from lakt.analysis import answers, figures, paper, report  # noqa: E402
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
    assert list(paper.method_labels(table).index) == ["Match {Activations + Jacobians}",
                                                      "Match {Activations + Jacobians} (γ = 10)"]


# ---------------------------------------------------------------- robustness table

def test_pooled_stats_equal_numpy_on_all_values():
    rng = np.random.default_rng(0)
    groups = [rng.normal(50, 3, size=n) for n in (5, 5, 1, 8)]
    mean, std, count = report.pooled_stats([g.mean() for g in groups],
                                           [g.std(ddof=1) if len(g) > 1 else 0.0 for g in groups],
                                           [len(g) for g in groups])
    values = np.concatenate(groups)
    assert count == len(values)
    assert mean == pytest.approx(values.mean())
    assert std == pytest.approx(values.std(ddof=1))
    assert report.pooled_stats([61.0], [0.0], [1]) == (61.0, 0.0, 1)


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
            assert table["draws"].loc[p, s] == row["trials"]
            if row["trials"] > 1:
                assert table["std"].loc[p, s] == pytest.approx(row["std"])
            else:   # one value (one seed, σ = 0): no spread, so no "± 0.00" either
                assert math.isnan(table["std"].loc[p, s]) and " ± " not in table["text"].loc[p, s]
    assert (table["draws"][0.0] == 1).all() and (table["draws"][0.4] == runs.PRESETS["smoke"].noise_trials).all()


def test_robustness_table_pools_noise_draws_and_seeds(tmp_path):
    configs = report.robustness_runs("smoke", "digits", [0, 1])
    draws = {0: [90.0, 92.0, 94.0], 1: [80.0, 84.0, 82.0]}  # sigma 0.2, per seed
    for c in configs:
        d = draws[c.seed]
        noise = [{"sigma": 0.0, "mean": 99.0 - c.seed, "std": 0.0, "trials": 1},
                 {"sigma": 0.2, "mean": statistics.mean(d), "std": statistics.stdev(d), "trials": 3}]
        fake_result(c, tmp_path, test_acc=99.0 - c.seed, noise=noise)
    table = report.robustness_table(configs, tmp_path)
    everything = draws[0] + draws[1]
    for p in runs.PRESETS["smoke"].penalties:
        assert table["mean"].loc[p, 0.2] == pytest.approx(statistics.mean(everything))
        assert table["std"].loc[p, 0.2] == pytest.approx(statistics.stdev(everything))
        assert table["draws"].loc[p, 0.2] == 6 and table["seeds"].loc[p, 0.2] == 2
        assert table["std"].loc[p, 0.0] == pytest.approx(statistics.stdev([99.0, 98.0]))  # seeds only
        assert table["text"].loc[p, 0.2] == f"{statistics.mean(everything):.2f} ± {statistics.stdev(everything):.2f}"


def test_paper_robustness_table_has_table3_shape():
    t = report.paper_robustness_table(paper.table3())
    assert t["mean"].shape == (5, 5)
    assert t["mean"].loc[1.0, 0.4] == 35.43
    assert t["std"][0.0].isna().all() and t["text"].loc[0.0, 0.0] == "64.78"
    assert t["text"].loc[0.5, 0.3] == "44.99 ± 0.28"


# ---------------------------------------------------------------- beside the paper

@pytest.mark.slow
def test_beside_paper_same_data_is_ours_paper_and_difference(smoke):
    results, transfer, _, _ = smoke
    table = report.transfer_table(transfer, results)
    side = report.beside_paper(table, paper.table1(), same_data=True)
    assert list(side.columns.get_level_values("quantity").unique()) == ["ours", "paper", "ours − paper"]
    assert list(side.index) == list(PAPER_METHODS)
    for m in PAPER_METHODS:
        assert side[("ours", 5)][m] == pytest.approx(table["mean"].loc[m, 5])
        assert side[("paper", 5)][m] == paper.table1().loc[m, 5]
        assert side[("ours − paper", 5)][m] == pytest.approx(table["mean"].loc[m, 5] - paper.table1().loc[m, 5])


def test_beside_paper_other_data_compares_gains_over_ce():
    ours = pd.DataFrame({5: [10.0, 15.0, 9.0], 50: [20.0, 30.0, 21.0], 7: [1.0, 2.0, 3.0]},
                        index=pd.Index(["ce", "act", "act+jac"], name="method")).rename_axis("n_per_class", axis=1)
    side = report.beside_paper(ours, paper.table1(), same_data=False)
    assert list(side.columns.get_level_values(0).unique()) == ["ours: gain over CE", "paper: gain over CE",
                                                               "ours − paper"]
    assert sorted(set(side.columns.get_level_values(1))) == [5, 50]  # 7 per class is not in Table 1
    assert (side["ours: gain over CE"].loc["ce"] == 0).all()
    assert side[("ours: gain over CE", 50)]["act"] == 10.0
    assert side[("paper: gain over CE", 5)]["act+jac"] == pytest.approx(41.43 - 28.92)
    assert side[("ours − paper", 5)]["act"] == pytest.approx(5.0 - (36.73 - 28.92))


def test_beside_paper_column_baseline_is_change_from_clean():
    t3 = report.paper_robustness_table(paper.table3())
    side = report.beside_paper(t3, t3, same_data=False, baseline=("column", 0.0))
    assert list(side.columns.get_level_values(0).unique())[0] == "ours: change from σ=0"
    assert (side["ours: change from σ=0"][0.0] == 0).all()
    assert side[("paper: change from σ=0", 0.4)][1.0] == pytest.approx(35.43 - 63.59)
    assert (side["ours − paper"] == 0).all().all()


def test_beside_paper_refuses_tables_with_nothing_in_common():
    ours = pd.DataFrame({3: [1.0]}, index=["ce"])
    with pytest.raises(LaktError):
        report.beside_paper(ours, paper.table1())
    with pytest.raises(LaktError):
        report.beside_paper(pd.DataFrame({5: [1.0]}, index=["act"]), paper.table1(), same_data=False)


def test_teacher_beside_paper():
    t = report.teacher_beside_paper({"test_acc": 97.5}, "folder", "cifar10")
    assert t.loc["ours", "test accuracy (%)"] == 97.5 and t.loc["paper", "test accuracy (%)"] == 90.94
    assert t.loc["ours", "dataset"] == "CIFAR-10 (JPEG)"


# ---------------------------------------------------------------- figures

@pytest.mark.slow
def test_plot_transfer_draws_one_line_per_method_on_log_x(smoke):
    results, transfer, _, _ = smoke
    table = report.transfer_table(transfer, results)
    fig = figures.plot_transfer(table, paper=paper.table1(), teacher_acc=99.0, paper_teacher_acc=90.94)
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
    fig = figures.plot_robustness(table, paper=paper.table3())
    ours, theirs = fig.axes
    assert len(ours.containers) == len(table) and len(theirs.containers) == 5
    legend = fig.legends[0]   # one legend beneath both panels, over no curve
    want = dict.fromkeys(f"penalty {p:g}" for p in [*table.index, *paper.TABLE3_PENALTIES])
    assert [t.get_text() for t in legend.get_texts()] == list(want)
    plt.close(fig)


# ---------------------------------------------------------------- reading and provenance

def test_robustness_findings_are_clean_largest_sigma_and_drop():
    f = answers.robustness_findings(report.paper_robustness_table(paper.table3()))
    assert list(f.columns) == ["clean", "at σ=0.4", "drop"]
    assert f.loc[0.0].tolist() == pytest.approx([64.78, 17.69, 64.78 - 17.69])
    assert f.loc[1.0, "drop"] == pytest.approx(63.59 - 35.43)


def test_transfer_findings_on_the_papers_table1():
    f = answers.transfer_findings(paper.table1())
    assert f["distillation beats CE (cells ≤ low)"] == "20 of 20"
    assert f["Act+Jac beats Act (sizes ≤ low)"] == "4 of 4"
    assert f["Act+Jac − Act (points, ≤ low)"] == pytest.approx(np.mean([4.70, 4.42, 2.79, 1.85]))
    assert f["Act+Jac beats Act (sizes > low)"] == "0 of 3"


def test_transfer_reading_follows_the_numbers():
    cols = pd.Index([5, 10], name="n_per_class")
    worse = pd.DataFrame([[30.0, 40.0], [20.0, 30.0], [19.0, 29.0]], index=["ce", "act", "act+jac"], columns=cols)
    text = answers.transfer_reading(worse, paper.table1())
    assert "Ours: **no**" in text and "ours higher at 0 of 2 sizes, lower at 2, tied at 0" in text
    better = worse.copy()
    better.loc["act"] += 20
    better.loc["act+jac"] += 25
    text = answers.transfer_reading(better, paper.table1())
    assert "Ours: **yes**" in text and "ours higher at 2 of 2 sizes" in text and "+4.00 points" in text
    assert "**(a) Does distillation beat CE" in text and "**(b) Act+Jac vs Act" in text


def _with_seeds(means: pd.DataFrame, std: float) -> pd.DataFrame:
    """A transfer_table-shaped frame (stat, n_per_class) with the same std in every cell."""
    return pd.concat({"mean": means, "std": means * 0 + std}, axis=1, names=["stat", "n_per_class"])


def test_a_difference_inside_the_seeds_spread_is_a_tie_not_a_win():
    cols = pd.Index([5, 10], name="n_per_class")
    means = pd.DataFrame([[30.0, 40.0], [35.0, 45.0], [35.01, 45.01]], index=["ce", "act", "act+jac"], columns=cols)
    text = answers.transfer_reading(_with_seeds(means, 1.0), paper.table1())
    assert "ours higher at 0 of 2 sizes, lower at 0, tied at 2 (mean +0.01 points)" in text
    assert "counts as a tie" in text
    f = answers.transfer_findings(_with_seeds(means, 1.0))
    assert f["distillation beats CE (cells ≤ low)"] == "4 of 4"          # +5 points against a spread of 1.41
    assert answers.verdict(*answers._wins_losses_ties(f, "Act+Jac beats Act (sizes ≤ low)")) == "does not hold"
    # the same +0.01 with a tiny spread is a win
    f = answers.transfer_findings(_with_seeds(means, 0.001))
    assert f["Act+Jac beats Act (sizes ≤ low)"] == "2 of 2"


def test_verdict_words():
    assert answers.verdict(3, 0, 1) == "holds"
    assert answers.verdict(1, 0, 3) == "partly"
    assert answers.verdict(2, 1, 0) == "partly"
    assert answers.verdict(0, 0, 4) == "does not hold"
    assert answers.verdict(0, 0, 0) == "not testable here"


def test_robustness_reading_on_paper_and_on_a_counterexample():
    text = answers.robustness_reading(paper.table3(), paper.table3())
    assert text.count("flatten the curve? yes") == 2 and "**(c) Ours" in text
    assert "penalty 0 loses 47.09 points and penalty 1 loses 28.16" in text
    t = report.paper_robustness_table(paper.table3())
    flipped = t.copy()
    flipped.index = flipped.index[::-1]  # larger penalty now drops *more*
    assert "Ours: does a larger penalty flatten the curve? no" in answers.robustness_reading(flipped.sort_index(), t)


def test_a_flatter_curve_inside_the_spread_is_a_tie():
    t = report.paper_robustness_table(paper.table3())
    noisy = t.copy()
    noisy["std"] = 30.0   # drops differ by 19 points, but each draw's spread is 30
    word, numbers = answers.robustness_verdict(noisy)
    assert word == "does not hold" and numbers["tie"]
    assert "inside the spread, a tie" in answers.robustness_reading(noisy, t)
    assert answers.robustness_verdict(t)[0] == "holds"


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
