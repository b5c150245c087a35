"""The committed run cache ``results/`` (the sweeps on CIFAR-10 (JPEG)).

Chapters 3, 5 and 7 read it without the data; these checks make sure what they read is
what the presets define: every committed run is a config of one of ``COMMITTED_PRESETS``,
stored under its own key, read back as finished by lakt, and small enough to commit
(histories thinned to at most ``HISTORY_ROWS`` epochs, the first and last kept).
"""
import json
from pathlib import Path

from lakt import runs

RESULTS = Path(__file__).resolve().parents[2] / "results"
# the presets the book presents as current; superseded runs live as frozen JSON in results/frozen/
COMMITTED_PRESETS = ("cifar10-cpu-v3", "cifar10-cpu-v3-fdjac", "cifar10-cpu-teacher-adam50",
                     "cifar10-cpu-teacher-adam120", "cifar10-cpu-teacher-sgd50", "cifar10-cpu-v4", "paper-gpu")


def committed_metrics():
    return sorted(RESULTS.glob("*/*/metrics.json"))


def test_every_committed_run_is_a_cifar10_cpu_run_that_lakt_reads_as_finished():
    configs = {c.key: c for name in COMMITTED_PRESETS for c in runs.preset(name)}
    configs |= {c.key: c for c in (runs.with_speed(c, "bf16", True) for c in runs.preset("paper-gpu"))}  # as run
    paths = committed_metrics()
    assert paths, "results/ holds no finished runs"
    for path in paths:
        metrics = json.loads(path.read_text())
        config = configs.get(metrics["key"])
        assert config is not None, f"{path}: not a run of the presets {COMMITTED_PRESETS}"
        assert path.parent == config.folder(RESULTS) and runs.RunConfig.from_dict(metrics["config"]) == config
        assert runs.RunConfig.from_dict(json.loads((path.parent / "config.json").read_text())) == config
        if config.kind == "teacher" and not (path.parent / "model.pt").exists():
            # paper-gpu's full-width teacher: 37 MB of weights, over the 10 MB the repository takes;
            # its students record its accuracy, and a resumed sweep retrains it
            assert config.width == 1 and config.model == "vgg9" and config.precision == "bf16"
            continue
        assert runs.load_result(config, RESULTS) == metrics
    teacher = configs[runs.get_preset("cifar10-cpu-v3").teacher("folder").key]
    assert runs.load_result(teacher, RESULTS) is not None, "the students' teacher must be committed"
    for name in ("cifar10-cpu-v3", "cifar10-cpu-v3-fdjac"):  # the chapters' current sweeps are complete
        assert all(runs.load_result(c, RESULTS) is not None for c in runs.preset(name)), name


def test_committed_files_are_small():
    model = runs.get_preset("cifar10-cpu-v3").teacher("folder").folder(RESULTS) / "model.pt"
    assert model.stat().st_size <= 10 * 2 ** 20  # the issue: the teacher's weights only if <= 10 MB
    assert not list(RESULTS.glob("robust/*/model.pt")) or not _tracked("results/robust")  # weights stay local
    assert sum(p.stat().st_size for p in committed_metrics()) <= 20 * 2 ** 20


def _tracked(prefix: str) -> bool:
    import subprocess

    out = subprocess.run(["git", "ls-files", prefix], cwd=RESULTS.parent, capture_output=True, text=True)
    return any(line.endswith("model.pt") for line in out.stdout.splitlines())


def test_thin_history_keeps_first_and_last_evenly_spaced():
    from lakt.runs.cache import HISTORY_ROWS, thin_history

    history = [{"epoch": e} for e in range(1, 601)]
    thin = thin_history(history)
    assert len(thin) == HISTORY_ROWS and thin[0]["epoch"] == 1 and thin[-1]["epoch"] == 600
    gaps = {b["epoch"] - a["epoch"] for a, b in zip(thin, thin[1:])}
    assert gaps <= {10, 11}  # evenly spaced
    assert thin_history(history[:7]) == history[:7]


def test_committed_histories_are_thin():
    from lakt.runs.cache import HISTORY_ROWS

    for path in committed_metrics():
        metrics = json.loads(path.read_text())
        history = metrics["history"]
        assert len(history) <= HISTORY_ROWS, path
        assert history[-1]["epoch"] == metrics["config"]["epochs"], path


def test_teacher_recipes_table():
    from lakt.analysis import report

    names = [f"cifar10-cpu-teacher-{r}" for r in runs.presets.TEACHER_RECIPES] + ["cifar10-cpu-v3"]
    table = report.teacher_recipes(names, RESULTS)
    assert list(table["preset"]) == names  # every recipe's teacher is committed, one row each
    for row in table.itertuples():
        metrics = runs.load_result(runs.preset(row.preset)[0], RESULTS)
        assert (row.validation, row.test) == (metrics["val_acc"], metrics["test_acc"])
    assert table.loc[table["validation"].idxmax(), "preset"] == "cifar10-cpu-v3"  # chosen on validation


def test_frozen_runs_are_read_only_history():
    """Superseded runs stay as their metrics in results/frozen/, each saying why; no preset names them."""
    frozen = sorted((RESULTS / "frozen").glob("*/*.json"))
    assert frozen
    current = {c.key for name in runs.PRESETS for c in runs.preset(name) if c.data is not None}
    for path in frozen:
        metrics = json.loads(path.read_text())
        assert metrics["frozen_because"] and path.stem == metrics["key"] and metrics["key"] not in current
