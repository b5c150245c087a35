"""Runs and the results cache: keys, skipping, corrupt files, claims."""
import json
import os

import pytest

from lakt import runs
from lakt.core.methods import PAPER_METHODS
from lakt.core.errors import LaktError
from lakt.runs import config as config_lib
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
    assert all(c.jacobian_form == "normalized" and c.epochs == 500 for c in students)
    assert all(c.jacobian_form == "plain" for c in paper.transfer("cifar100") if c.kind == "student")
    assert {c.penalty for c in paper.robustness()} == {0.0, 0.01, 0.1, 0.5, 1.0}
    assert paper.robustness()[0].dataset == "cifar100"
    with pytest.raises(LaktError, match="unknown preset"):
        runs.preset("huge")


def test_smoke_sweep_finishes_every_run(smoke_results):
    table = runs.collect(runs.preset("smoke"), smoke_results)
    assert len(table) == len(runs.preset("smoke"))
    assert table["test_acc"].between(0, 100).all()
    teacher = runs.load_result(runs.preset("smoke")[0], smoke_results)
    assert teacher["test_acc"] > 50  # two epochs on digits already learn
    robust = [c for c in runs.preset("smoke") if c.kind == "robust"][0]
    noise = runs.load_result(robust, smoke_results)["noise"]
    assert [r["sigma"] for r in noise] == [0.0, 0.1, 0.2, 0.3, 0.4]


def test_finished_runs_are_skipped(smoke_results):
    config = runs.preset("smoke")[1]
    before = runs.load_result(config, smoke_results)
    again = runs.run(config, smoke_results, progress=False)
    assert again == before  # read back, not recomputed (seconds would differ)


def test_a_corrupt_metrics_file_is_reported_and_redone(smoke_results, capsys):
    config = runs.preset("smoke")[2]
    path = config.folder(smoke_results) / "metrics.json"
    path.write_text('{"key": "trunc')
    assert runs.load_result(config, smoke_results) is None
    assert "corrupt" in capsys.readouterr().err
    redone = runs.run(config, smoke_results, progress=False)
    assert redone["key"] == config.key and json.loads(path.read_text())["key"] == config.key


def test_robust_runs_are_finished_without_their_weights_but_teachers_are_not(smoke_results, tmp_path):
    """results/ commits the noise curves of the penalised nets, not their 2 MB weights."""
    import shutil

    teacher, robust = runs.preset("smoke")[0], [c for c in runs.preset("smoke") if c.kind == "robust"][0]
    for config in (teacher, robust):
        shutil.copytree(config.folder(smoke_results), config.folder(tmp_path))
        (config.folder(tmp_path) / "model.pt").unlink()
    assert runs.load_result(robust, tmp_path) == runs.load_result(robust, smoke_results)
    assert runs.load_result(teacher, tmp_path) is None  # students need the teacher's weights


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


def test_cifar10_cpu_preset_is_the_issue_protocol():
    configs = runs.preset("cifar10-cpu")
    students = [c for c in configs if c.kind == "student"]
    assert {c.dataset for c in configs} == {"folder"} and {c.width for c in configs} == {0.25}
    assert {c.n_per_class for c in students} == {5, 10, 50, 100, 500} and {c.seed for c in students} == {0, 1, 2}
    assert set(PAPER_METHODS) | {"noisy-act", "act+fulljac"} == {c.method for c in students}
    assert all(c.jacobian_form == "normalized" and c.noise_sigma == 0.3 for c in students)
    robust = [c for c in configs if c.kind == "robust"]
    assert {c.penalty for c in robust} == {0.0, 0.01, 0.1, 0.5, 1.0} and {c.seed for c in robust} == {0, 1}


def test_gamma_follow_up_reuses_the_cifar10_cpu_runs():
    """Its Act and gamma = 1 students are cifar10-cpu's own (same keys: the committed
    results), so only the raised-gamma Act+Jac students are new."""
    base = {c.key for c in runs.preset("cifar10-cpu")}
    configs = runs.preset("cifar10-cpu-gamma")
    new = [c for c in configs if c.key not in base]
    assert len(configs) - len(new) == 1 + 2 * 4 * 3  # the teacher, Act and Act+Jac (gamma 1) at 4 sizes x 3 seeds
    assert {(c.method, c.jac_weight) for c in new} == {("act+jac", g) for g in (10.0, 100.0, 1000.0)}
    assert len(new) == 3 * 4 * 3 and not [c for c in configs if c.kind == "robust"]
    assert new[0].name == "student/folder/vgg4x0.25/act+jac/n5/gamma10/s0"


def test_the_jacobian_weight_counts_in_the_key_only_when_not_one():
    teacher = runs.RunConfig("teacher", width=0.25)
    plain = runs.RunConfig("student", method="act+jac", n_per_class=5, teacher=teacher)
    assert plain.key == runs.RunConfig("student", method="act+jac", n_per_class=5, teacher=teacher, jac_weight=1.0).key
    assert "jac_weight" not in runs.config._key_dict(plain.to_dict())  # older caches stay valid
    assert plain.key != runs.RunConfig("student", method="act+jac", n_per_class=5, teacher=teacher, jac_weight=10).key
    with pytest.raises(LaktError, match="has no Jacobian term to weight"):
        runs.RunConfig("student", method="act", n_per_class=5, teacher=teacher, jac_weight=10)
    with pytest.raises(LaktError, match="Jacobian weight must be > 0"):
        runs.RunConfig("student", method="act+jac", n_per_class=5, teacher=teacher, jac_weight=0)


def test_runs_on_the_student_gradient_get_new_keys_with_the_per_sample_fix():
    """Issue 12: no run trained on the batch-coupled gradient is ever served as a per-sample one;
    runs that never take the student's input gradient keep their keys."""
    teacher = runs.RunConfig("teacher", width=0.25)
    for method in ("jac+ce", "act+jac", "act+fulljac"):
        fixed = runs.RunConfig("student", method=method, n_per_class=5, teacher=teacher)
        coupled = runs.RunConfig("student", method=method, n_per_class=5, teacher=teacher, batch_statistics="coupled")
        assert fixed.key != coupled.key and "batch_statistics" not in runs.config._key_dict(coupled.to_dict())
    for method in ("ce", "act", "act+ce", "noisy-act"):
        assert (runs.RunConfig("student", method=method, n_per_class=5, teacher=teacher).key
                == runs.RunConfig("student", method=method, n_per_class=5, teacher=teacher,
                                  batch_statistics="coupled").key)
    robust = dict(kind="robust", method="ce+jacnorm")
    assert runs.RunConfig(**robust, penalty=0.0).key == runs.RunConfig(**robust, penalty=0.0, batch_statistics="coupled").key
    assert runs.RunConfig(**robust, penalty=0.1).key != runs.RunConfig(**robust, penalty=0.1, batch_statistics="coupled").key
    old = runs.RunConfig("student", method="jac+ce", n_per_class=5, teacher=teacher, batch_statistics="coupled").to_dict()
    del old["batch_statistics"]  # a config.json written before the field existed
    assert runs.RunConfig.from_dict(old).batch_statistics == "coupled"


def test_cifar10_cpu_v2_preset_is_issue_13s_protocol():
    configs = runs.preset("cifar10-cpu-v2")
    teacher, students = configs[0], [c for c in configs if c.kind == "student"]
    robust = [c for c in configs if c.kind == "robust"]
    assert teacher.kind == "teacher" and teacher.augment and teacher.batch_size == 128
    assert {c.validation for c in configs} == {5000} and {c.teacher for c in students} == {teacher}
    assert not any(c.augment for c in students) and all(c.augment for c in robust)
    assert {c.n_per_class for c in students} == {5, 10, 50, 100, 500} and {c.seed for c in students} == {0, 1, 2}
    assert {c.epochs * 0 + c.batch_size for c in students} == {64}
    grid = {(c.method, tuple(v for v in c.knobs.values() if v is not None)) for c in students}
    assert grid == ({(m, ()) for m in ("ce", "act+ce", "act")} | {("jac+ce", (1.0,))}
                    | {(m, (g,)) for m in ("act+jac", "act+jac+ce") for g in (1.0, 10.0, 100.0, 1000.0)}
                    | {("noisy-act", (s,)) for s in (0.03, 0.1, 0.3)}
                    | {("kd", (t, a)) for t in (1.0, 4.0, 8.0) for a in (0.5, 0.9)}
                    | {("at+ce", (b,)) for b in (100.0, 1000.0, 10000.0)})
    assert len(students) == 24 * 5 * 3 and len(robust) == 10 and len(configs) == 371
    assert {c.penalty for c in robust} == {0.0, 0.01, 0.1, 0.5, 1.0} and {c.seed for c in robust} == {0, 1}
    seeds = [c.seed for c in configs[1:]]
    assert seeds == sorted(seeds)  # seed 0 of everything (students, then penalised nets) before seed 1
    assert [c.kind for c in configs[1:122]] == ["student"] * 120 + ["robust"]
    assert len({c.key for c in configs}) == len(configs)


def test_fdjac_preset_pairs_with_v2s_runs():
    """cifar10-cpu-v2-fdjac: Act + finite-difference Jacobians on v2's teacher, subsets and seeds, gamma on a grid."""
    v2 = runs.preset("cifar10-cpu-v2")
    configs = runs.preset("cifar10-cpu-v2-fdjac")
    students = [c for c in configs if c.kind == "student"]
    assert configs[0] == v2[0] and len(configs) == 1 + len(students) == 49  # the same teacher, no robustness runs
    assert {c.method for c in students} == {"act+fdjac"} and {c.seed for c in students} == {0, 1, 2}
    assert {c.jac_weight for c in students} == {0.1, 1.0, 10.0, 100.0} and {c.n_per_class for c in students} == {5, 10, 50, 100}
    act = {(c.n_per_class, c.seed): c for c in v2 if c.kind == "student" and c.method == "act"}
    for c in students:  # everything but the method and gamma is Act's: the pairs differ in the objective only
        twin = act[(c.n_per_class, c.seed)]
        assert (c.epochs, c.batch_size, c.validation, c.data, c.width) == (
            twin.epochs, twin.batch_size, twin.validation, twin.data, twin.width)


def test_teacher_recipe_presets_are_v2s_teacher_with_one_change_and_nothing_else():
    import dataclasses

    v2 = runs.preset("cifar10-cpu-v2")[0]
    sgd = dataclasses.replace(v2, optimizer="sgd", lr=0.05, final_lr=0.0, weight_decay=5e-4)
    assert runs.preset("cifar10-cpu-v2-teacher-adam120") == [dataclasses.replace(v2, epochs=120)]
    assert runs.preset("cifar10-cpu-v2-teacher-sgd") == [sgd]
    assert runs.preset("cifar10-cpu-v2-teacher-sgd150") == [dataclasses.replace(sgd, epochs=150)]


def test_v3_is_v2_with_the_sgd150_teacher_and_shares_v2s_penalised_nets():
    import dataclasses

    v2, v3 = runs.preset("cifar10-cpu-v2"), runs.preset("cifar10-cpu-v3")
    assert v3[0] == runs.preset("cifar10-cpu-v2-teacher-sgd150")[0]
    assert len(v3) == len(v2)
    assert [c.key for c in v3 if c.kind == "robust"] == [c.key for c in v2 if c.kind == "robust"]
    for old, new in zip(v2[1:], v3[1:]):  # every student: the same run but for its teacher
        if new.kind == "student":
            assert new.teacher == v3[0] and new.key != old.key
            assert dataclasses.replace(new, teacher=old.teacher) == old
    fd2, fd3 = runs.preset("cifar10-cpu-v2-fdjac"), runs.preset("cifar10-cpu-v3-fdjac")
    assert fd3[0] == v3[0] and [dataclasses.replace(c, teacher=fd2[0]) for c in fd3[1:]] == fd2[1:]


def test_new_fields_count_in_the_key_only_when_set():
    teacher = runs.RunConfig("teacher", width=0.25)
    assert {"augment", "validation", "kd_temperature", "kd_alpha", "at_weight"}.isdisjoint(
        config_lib._key_dict(teacher.to_dict()))
    assert teacher.key != runs.RunConfig("teacher", width=0.25, augment=True).key
    assert {"optimizer", "weight_decay"}.isdisjoint(config_lib._key_dict(teacher.to_dict()))
    assert teacher.key != runs.RunConfig("teacher", width=0.25, optimizer="sgd").key
    assert teacher.key != runs.RunConfig("teacher", width=0.25, weight_decay=5e-4).key
    with pytest.raises(LaktError, match="unknown optimizer 'sgdd'; choose one of adam, sgd"):
        runs.RunConfig("teacher", optimizer="sgdd")
    with pytest.raises(LaktError, match="weight decay must be >= 0"):
        runs.RunConfig("teacher", weight_decay=-1.0)
    assert teacher.key != runs.RunConfig("teacher", width=0.25, validation=100).key
    with pytest.raises(LaktError, match="students stay un-augmented"):
        runs.RunConfig("student", method="ce", n_per_class=5, teacher=teacher, augment=True)
    with pytest.raises(LaktError, match="same validation images as its teacher"):
        runs.RunConfig("student", method="ce", n_per_class=5, teacher=teacher, validation=100)


def test_a_validation_split_is_held_out_of_every_run_and_scored(tmp_path):
    import dataclasses
    tiny = dataclasses.replace(runs.get_preset("cifar10-cpu-v2"), datasets=("digits",), width=0.0625,
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


def test_paper_gpu_command_runs_on_the_cpu_at_a_tiny_size(tmp_path):
    """benchmarks/paper_gpu.sh: teacher first, then 2 runs at once (local executor) sharing one results folder."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
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
