"""Runs and the results cache: keys, skipping, corrupt files, claims."""
import json
import os

import pytest

from lakt import runs
from lakt.core.methods import PAPER_METHODS
from lakt.core.errors import LaktError
from lakt.runs.claims import Claim


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    runs.sweep(runs.preset("smoke"), results, progress=False)
    return results


def test_keys_are_stable_and_distinguish_configs():
    a = runs.RunConfig("teacher", width=0.25)
    assert a.key == runs.RunConfig("teacher", width=0.25).key
    assert a.key != runs.RunConfig("teacher", width=0.5).key
    assert runs.RunConfig.from_dict(json.loads(json.dumps(a.to_dict()))) == a


def test_presets_hold_the_paper_protocol():
    paper = runs.get_preset("paper")
    c10 = paper.transfer("cifar10")
    students = [c for c in c10 if c.kind == "student"]
    assert len(students) == 6 * 7 and {c.n_per_class for c in students} == {5, 10, 50, 100, 500, 1000, 5000}
    assert all(c.epochs == 500 for c in students)
    assert {c.jacobian_form for c in students if "jac" in c.method} == {"normalized"}  # the CIFAR-10 form
    assert all(c.jacobian_form == "plain" for c in paper.transfer("cifar100") if c.kind == "student")
    assert {c.penalty for c in paper.robustness()} == {0.0, 0.01, 0.1, 0.5, 1.0}
    assert paper.robustness()[0].dataset == "cifar100"
    with pytest.raises(LaktError, match="unknown preset"):
        runs.preset("huge")


@pytest.mark.slow
def test_smoke_sweep_finishes_every_run(smoke_results):
    table = runs.collect(runs.preset("smoke"), smoke_results)
    assert len(table) == len(runs.preset("smoke"))
    assert table["test_acc"].between(0, 100).all()
    teacher = runs.load_result(runs.preset("smoke")[0], smoke_results)
    assert teacher["test_acc"] > 50  # two epochs on digits already learn
    robust = [c for c in runs.preset("smoke") if c.kind == "robust"][0]
    noise = runs.load_result(robust, smoke_results)["noise"]
    assert [r["sigma"] for r in noise] == [0.0, 0.1, 0.2, 0.3, 0.4]


@pytest.mark.slow
def test_finished_runs_are_skipped(smoke_results):
    config = runs.preset("smoke")[1]
    before = runs.load_result(config, smoke_results)
    again = runs.run(config, smoke_results, progress=False)
    assert again == before  # read back, not recomputed (seconds would differ)


@pytest.mark.slow
def test_a_corrupt_metrics_file_is_reported_and_redone(smoke_results, capsys):
    config = runs.preset("smoke")[2]
    path = config.folder(smoke_results) / "metrics.json"
    path.write_text('{"key": "trunc')
    assert runs.load_result(config, smoke_results) is None
    assert "corrupt" in capsys.readouterr().err
    redone = runs.run(config, smoke_results, progress=False)
    assert redone["key"] == config.key and json.loads(path.read_text())["key"] == config.key


@pytest.mark.slow
def test_robust_runs_are_finished_without_their_weights_but_teachers_are_not(smoke_results, tmp_path):
    """results/ commits the noise curves of the penalised nets, not their 2 MB weights."""
    import shutil

    teacher, robust = runs.preset("smoke")[0], [c for c in runs.preset("smoke") if c.kind == "robust"][0]
    for config in (teacher, robust):
        shutil.copytree(config.folder(smoke_results), config.folder(tmp_path))
        (config.folder(tmp_path) / "model.pt").unlink()
    assert runs.load_result(robust, tmp_path) == runs.load_result(robust, smoke_results)
    assert runs.load_result(teacher, tmp_path) is None  # students need the teacher's weights
    # the committed float16 weights stand in for model.pt: the same net, to float16's rounding
    import torch
    from lakt.core import data

    ds = data.load(robust.dataset)
    full = runs.load_model(robust, smoke_results, ds.num_classes, ds.in_channels, "cpu")
    half = runs.load_model(robust, tmp_path, ds.num_classes, ds.in_channels, "cpu")
    for a, b in zip(full.state_dict().values(), half.state_dict().values()):
        assert torch.equal(a.half().to(a.dtype), b) if a.is_floating_point() else torch.equal(a, b)
    metrics = runs.load_result(robust, smoke_results)
    assert 0 <= metrics["train_eval_acc"] <= 100   # eval mode, the un-augmented training images


def test_claims_exclude_and_recover_from_dead_holders(tmp_path):
    first, second = Claim(tmp_path), Claim(tmp_path)
    assert first.acquire() and not second.acquire()
    first.release()
    assert second.acquire()
    second.release()
    # a claim left by a process that no longer exists is stale
    (tmp_path / ".claim").write_text(json.dumps({"pid": 2 ** 22 + 12345, "host": os.uname().nodename, "since": 0}))
    assert Claim(tmp_path).acquire()


def test_bad_configs_are_user_errors():
    for kwargs in ({"kind": "pupil"}, {"kind": "teacher", "width": 0}, {"kind": "teacher", "dataset": "mnist"},
                   {"kind": "teacher", "method": "magic"}, {"kind": "robust", "sigmas": (-0.1,)},
                   {"kind": "student"}):
        with pytest.raises(LaktError):
            runs.RunConfig(**kwargs)


def test_a_held_claim_keeps_beating_while_its_holder_works(tmp_path):
    """Waits for the heartbeat itself (the claim's mtime moving), not for a fixed time."""
    import time
    claim = Claim(tmp_path, stale_after=2.0)  # a beat every 0.2 s
    assert claim.acquire()
    path = tmp_path / ".claim"
    first = path.stat().st_mtime_ns
    deadline = time.monotonic() + 60  # only a hung thread misses this, however slow the machine
    while path.stat().st_mtime_ns == first and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.stat().st_mtime_ns > first  # touched by the heartbeat thread
    assert not Claim(tmp_path, stale_after=2.0).acquire()  # so it is never taken as stale
    claim.release()
    assert not path.exists()


def test_the_key_hashes_every_field_a_run_reads_and_none_it_does_not():
    """Fields a method never reads are set to their defaults, so two presets asking for the
    same computation share one run; every field it does read changes the key."""
    import dataclasses

    teacher = runs.RunConfig("teacher", width=0.25)
    ce = runs.RunConfig("student", method="ce", n_per_class=5, teacher=teacher)
    for unread in (dict(noise_sigma=0.3), dict(kd_temperature=8.0), dict(at_weight=50.0), dict(fd_step=0.1),
                   dict(jacobian_form="normalized"), dict(output="top"), dict(penalty=0.5), dict(noise_trials=3)):
        assert dataclasses.replace(ce, **unread).key == ce.key, unread
    for read in (dict(seed=1), dict(epochs=11), dict(lr=1e-2), dict(validation=0, n_per_class=6), dict(width=0.5)):
        assert dataclasses.replace(ce, **read).key != ce.key, read
    jac = runs.RunConfig("student", method="act+jac", n_per_class=5, teacher=teacher)
    assert dataclasses.replace(jac, jacobian_form="normalized").key != jac.key
    assert dataclasses.replace(jac, jac_weight=10.0).key != jac.key
    assert runs.RunConfig("student", method="noisy-act", n_per_class=5, teacher=teacher, noise_sigma=0.3).key != \
        runs.RunConfig("student", method="noisy-act", n_per_class=5, teacher=teacher, noise_sigma=0.1).key
    fd = runs.RunConfig("student", method="act+fdjac", n_per_class=5, teacher=teacher, jacobian_form="normalized")
    assert fd.jacobian_form == "plain"  # the finite-difference estimator has the plain form only
    assert dataclasses.replace(teacher, augment=True).key != teacher.key
    assert dataclasses.replace(teacher, optimizer="sgd").key != teacher.key
    with pytest.raises(LaktError, match="has no Jacobian term to weight"):
        runs.RunConfig("student", method="act", n_per_class=5, teacher=teacher, jac_weight=10)
    with pytest.raises(LaktError, match="Jacobian weight must be > 0"):
        runs.RunConfig("student", method="act+jac", n_per_class=5, teacher=teacher, jac_weight=0)
    with pytest.raises(LaktError, match="unknown optimizer 'sgdd'; choose one of adam, sgd"):
        runs.RunConfig("teacher", optimizer="sgdd")
    with pytest.raises(LaktError, match="weight decay must be >= 0"):
        runs.RunConfig("teacher", weight_decay=-1.0)
    with pytest.raises(LaktError, match="students stay un-augmented"):
        runs.RunConfig("student", method="ce", n_per_class=5, teacher=teacher, augment=True)
    with pytest.raises(LaktError, match="same validation images as its teacher"):
        runs.RunConfig("student", method="ce", n_per_class=5, teacher=teacher, validation=100)


def test_cifar10_cpu_v3_preset():
    configs = runs.preset("cifar10-cpu-v3")
    teacher, students = configs[0], [c for c in configs if c.kind == "student"]
    robust = [c for c in configs if c.kind == "robust"]
    assert teacher.kind == "teacher" and teacher.augment and teacher.batch_size == 128
    assert (teacher.optimizer, teacher.lr, teacher.final_lr, teacher.weight_decay, teacher.epochs) == (
        "sgd", 0.05, 0.0, 5e-4, 150)
    assert {c.validation for c in configs} == {5000} and {c.teacher for c in students} == {teacher}
    assert not any(c.augment for c in students) and all(c.augment for c in robust)
    assert {c.n_per_class for c in students} == {5, 10, 50, 100, 500} and {c.seed for c in students} == {0, 1, 2}
    assert {c.batch_size for c in students} == {64}
    steps = {c.n_per_class: c.epochs * -(-c.n_per_class * 10 // 64) for c in students}
    assert all(600 <= s < 700 for s in steps.values())  # the 600-step budget at every size
    grid = {(c.method, tuple(v for v in c.knobs.values() if v is not None)) for c in students}
    assert grid == ({(m, ()) for m in ("ce", "act+ce", "act")} | {("jac+ce", (1.0,))}
                    | {(m, (g,)) for m in ("act+jac", "act+jac+ce") for g in (1.0, 10.0, 100.0, 1000.0)}
                    | {("noisy-act", (s,)) for s in (0.03, 0.1, 0.3)}
                    | {("kd", (t, a)) for t in (1.0, 4.0, 8.0) for a in (0.5, 0.9)}
                    | {("at+ce", (b,)) for b in (50.0, 500.0, 5000.0)})
    assert len(students) == 24 * 5 * 3 and len(robust) == 10 and len(configs) == 371
    assert {c.penalty for c in robust} == {0.0, 0.01, 0.1, 0.5, 1.0} and {c.seed for c in robust} == {0, 1}
    seeds = [c.seed for c in configs[1:]]
    assert seeds == sorted(seeds)  # seed 0 of everything (students, then penalised nets) before seed 1
    assert [c.kind for c in configs[1:122]] == ["student"] * 120 + ["robust"]
    assert len({c.key for c in configs}) == len(configs)


def test_fdjac_and_teacher_recipe_presets_pair_with_v3():
    import dataclasses

    v3 = runs.preset("cifar10-cpu-v3")
    configs = runs.preset("cifar10-cpu-v3-fdjac")
    students = configs[1:]
    assert configs[0] == v3[0] and len(configs) == 49
    assert {c.method for c in students} == {"act+fdjac"} and {c.jacobian_form for c in students} == {"plain"}
    assert {c.jac_weight for c in students} == {0.1, 1.0, 10.0, 100.0} and {c.n_per_class for c in students} == {5, 10, 50, 100}
    act = {(c.n_per_class, c.seed): c for c in v3 if c.kind == "student" and c.method == "act"}
    for c in students:  # everything but the objective is Act's
        assert dataclasses.replace(c, method="act", jac_weight=1.0, fd_fraction=0.25) == act[(c.n_per_class, c.seed)]
    adam50 = runs.preset("cifar10-cpu-teacher-adam50")[0]
    assert (adam50.optimizer, adam50.epochs) == ("adam", 50)
    assert runs.preset("cifar10-cpu-teacher-adam120") == [dataclasses.replace(adam50, epochs=120)]
    sgd50 = dataclasses.replace(v3[0], epochs=50)
    assert runs.preset("cifar10-cpu-teacher-sgd50") == [sgd50]
    assert dataclasses.replace(v3[0], optimizer="adam", lr=1e-3, final_lr=1e-4, weight_decay=0.0, epochs=50) == adam50


def test_v4_adds_the_paper_budget_to_v3_and_retrains_nothing_of_it():
    v3 = {c.key for c in runs.preset("cifar10-cpu-v3")}
    v4 = runs.preset("cifar10-cpu-v4")
    assert len({c.key for c in v4}) == len(v4) and v4[0] == runs.preset("cifar10-cpu-v3")[0]
    main = [c for c in runs.preset("cifar10-cpu-v4-main") if c.kind == "student"]
    assert v4[1:len(main) + 1] == main  # the main table runs first
    for c in main:  # 500 epochs at every size: 500, 1,000, 4,000, 8,000 steps of 64
        assert c.epochs == 500 and -(-c.n_per_class * 10 // 64) * 500 == {5: 500, 10: 1000, 50: 4000, 100: 8000}[c.n_per_class]
    assert {c.n_per_class for c in main} == {5, 10, 50, 100} and {c.seed for c in main} == {0, 1, 2}
    rows = {(c.method, tuple(v for v in c.knobs.values() if v is not None)) for c in main}
    assert rows == ({(m, ()) for m in ("ce", "act+ce", "act")} | {("jac+ce", (1.0,))}
                    | {(m, (g,)) for m in ("act+jac", "act+jac+ce") for g in (1.0, 100.0, 1000.0)}
                    | {("noisy-act", (0.03,)), ("kd", (4.0, 0.5)), ("at+ce", (250.0,)), ("at+ce", (500.0,))})
    robust = [c for c in v4 if c.kind == "robust"]
    assert {(c.method, c.penalty) for c in robust} == ({("ce+jacnorm", p) for p in (1e-5, 1e-4, 1e-3)}
                                                        | {("ce+logjacnorm", p) for p in (0.001, 0.01, 0.1, 0.5, 1.0)})
    assert all(c.seed in (0, 1) and c.augment and c.epochs == 15 for c in robust)
    shared = [c for c in v4 if c.key in v3]
    assert shared == [v4[0]]  # v3's teacher; nothing of v3 runs twice
    at = runs.preset("cifar10-cpu-v3")  # v3's AT runs, keyed in the authors' units, are v4's beta = 500 at 600 steps
    assert {c.at_weight for c in at if c.method == "at+ce"} == {50.0, 500.0, 5000.0}


def test_the_grids_with_their_edges_add_v4s_runs_to_v3s():
    for name, parts in (("cifar10-cpu-v3-edges", ("cifar10-cpu-v3", "cifar10-cpu-v4-edges")),
                        ("cifar10-cpu-fdjac", ("cifar10-cpu-v3-fdjac", "cifar10-cpu-v4-fdjac-edge")),
                        ("cifar10-cpu-v4-gamma", ("cifar10-cpu-v4-main", "cifar10-cpu-v4-neighbours"))):
        want = list(dict.fromkeys(c for p in parts for c in runs.preset(p)))
        assert runs.preset(name) == want and runs.get_preset(name).transfer("folder") == [
            c for c in want if c.kind != "robust"]
    sigmas = {c.noise_sigma for c in runs.preset("cifar10-cpu-v3-edges") if c.method == "noisy-act"}
    betas = {c.at_weight for c in runs.preset("cifar10-cpu-v3-edges") if c.method == "at+ce"}
    assert sigmas == {0.01, 0.03, 0.1, 0.3} and betas == {50.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0}
    assert {c.jac_weight for c in runs.preset("cifar10-cpu-fdjac") if c.kind == "student"} == {0.01, 0.1, 1.0, 10.0, 100.0}


def test_table3_preset_is_v3s_and_v4s_penalised_nets_and_nothing_new():
    table3 = runs.get_preset("cifar10-cpu-table3")
    parts = [c for p in ("cifar10-cpu-v3", "cifar10-cpu-v4") for c in runs.preset(p) if c.kind == "robust"]
    assert table3.robustness("folder") == parts   # v3's ten first, then v4's, in their order
    teacher = runs.preset("cifar10-cpu-v3")[0]
    assert {c.key for c in runs.preset("cifar10-cpu-table3")} == {c.key for c in parts} | {teacher.key}
    assert [c.seed for c in table3.with_seeds(1).robustness("folder")] == [1] * (len(parts) // 2)


@pytest.mark.slow
def test_a_validation_split_is_held_out_of_every_run_and_scored(tmp_path):
    import dataclasses
    tiny = dataclasses.replace(runs.get_preset("cifar10-cpu-v3"), datasets=("digits",), width=0.0625,
                               teacher_epochs=1, student_epochs=1, robust_epochs=1, student_steps=1, sizes=(3,),
                               methods=("kd", "at+ce"), seeds=(0,), robust_seeds=(0,), penalties=(0.1,),
                               noise_trials=1, validation=100, kd_temperatures=(4.0,), kd_alphas=(0.9,),
                               at_weights=(1000.0,))
    configs = tiny.runs()
    done = runs.sweep(configs, tmp_path, progress=False)
    full = len(runs.cache._dataset("digits", None, False).train)
    assert [m["train_size"] for m in done] == [full - 100, 30, 30, full - 100]
    assert all(m["val_size"] == 100 and 0 <= m["val_acc"] <= 100 for m in done)
    assert all("val_acc" in m["history"][-1] for m in done)
    table = runs.collect(configs, tmp_path)
    assert table["val_acc"].notna().all() and table.loc[table.method == "at+ce", "at_weight"].tolist() == [1000.0]


@pytest.mark.slow
def test_paper_gpu_command_runs_on_the_cpu_at_a_tiny_size(tmp_path):
    """benchmarks/paper_gpu.sh: teacher first, then 2 runs at once (local executor) sharing one results folder."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PRESET": "gpu-smoke", "PROCS": "2", "RESULTS": str(tmp_path), "ARCHIVE": "",
           "SPEED": "", "DEVICE": "cpu", "PYTHON": sys.executable, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(["bash", str(root / "benchmarks" / "paper_gpu.sh")], cwd=root, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    configs = runs.preset("gpu-smoke")
    assert len(runs.finished(configs, tmp_path)) == len(configs) == 3
    log = (tmp_path / "runs.log").read_text().splitlines()
    starts = [line.split() for line in log if " start " in line]
    assert starts[0][-1].startswith("teacher/")
    assert len({s[2] for s in starts[1:]}) == 2  # the two students ran in two processes
    assert "paper_gpu: preset gpu-smoke, 2 processes" in out.stdout


def test_provenance_names_the_code_the_date_and_the_machine():
    import re

    import torch
    from lakt.runs.cache import provenance

    p = provenance(torch.device("cpu"))
    assert set(p) == {"commit", "dirty", "utc", "host", "cpu", "device", "lakt", "torch"}
    assert p["commit"] is None or re.fullmatch(r"[0-9a-f]{40}", p["commit"])
    assert p["dirty"] in (True, False, None) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", p["utc"])
    assert p["torch"] == torch.__version__ and p["device"].startswith("cpu")


def test_provenance_names_the_code_imported_not_the_checkout_at_the_end(monkeypatch):
    import subprocess

    import torch
    from lakt.runs import cache

    def no_git(*args, **kwargs):   # a run ending hours later must not ask git again
        raise AssertionError("provenance read the checkout when the run ended")

    monkeypatch.setattr(subprocess, "run", no_git)
    p = cache.provenance(torch.device("cpu"))
    assert (p["commit"], p["dirty"]) == (cache._CODE["commit"], cache._CODE["dirty"])
