"""The committed run cache ``results/`` (the cifar10-cpu sweeps on CIFAR-10 (JPEG)).

Chapters 3 and 5 read it without the data; these checks make sure what they read is
what the presets define: every committed run is one of ``cifar10-cpu``'s or
``cifar10-cpu-gamma``'s configs,
stored under its own key, read back as finished by lakt, and small enough to commit.
"""
import json
from pathlib import Path

from lakt import runs

RESULTS = Path(__file__).resolve().parents[1] / "results"


def committed_metrics():
    return sorted(RESULTS.glob("*/*/metrics.json"))


def test_every_committed_run_is_a_cifar10_cpu_run_that_lakt_reads_as_finished():
    configs = {c.key: c for name in ("cifar10-cpu", "cifar10-cpu-gamma") for c in runs.preset(name)}
    paths = committed_metrics()
    assert paths, "results/ holds no finished runs"
    for path in paths:
        metrics = json.loads(path.read_text())
        config = configs.get(metrics["key"])
        assert config is not None, f"{path}: not a run of the cifar10-cpu(-gamma) presets"
        assert path.parent == config.folder(RESULTS) and runs.RunConfig.from_dict(metrics["config"]) == config
        assert runs.RunConfig.from_dict(json.loads((path.parent / "config.json").read_text())) == config
        assert runs.load_result(config, RESULTS) == metrics
    teacher = configs[runs.get_preset("cifar10-cpu").teacher("folder").key]
    assert runs.load_result(teacher, RESULTS) is not None, "the students' teacher must be committed"


def test_committed_files_are_small():
    model = runs.get_preset("cifar10-cpu").teacher("folder").folder(RESULTS) / "model.pt"
    assert model.stat().st_size <= 10 * 2 ** 20  # the issue: the teacher's weights only if <= 10 MB
    assert not list(RESULTS.glob("robust/*/model.pt")) or not _tracked("results/robust")  # weights stay local
    assert sum(p.stat().st_size for p in committed_metrics()) <= 20 * 2 ** 20


def _tracked(prefix: str) -> bool:
    import subprocess

    out = subprocess.run(["git", "ls-files", prefix], cwd=RESULTS.parent, capture_output=True, text=True)
    return any(line.endswith("model.pt") for line in out.stdout.splitlines())
