"""benchmarks/gpu_figures.py at tiny sizes on the CPU, and the concurrent-run projection it feeds."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from lakt import runs
from lakt.analysis import cost
from lakt.core.errors import LaktError

pytestmark = pytest.mark.slow  # runs the GPU session script at tiny sizes

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_figures.py"


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")


def test_tiny_run_writes_every_csv_and_prints_the_table_last(tmp_path):
    out = tmp_path / "figures"
    done = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--device", "cpu", "--out", str(out)],
                          capture_output=True, text=True, env=_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    steps = pd.read_csv(out / "step_cost.csv")
    assert set(steps["precision"]) == {"fp32", "bf16"}
    assert (steps["ms_per_step"] > 0).all()
    assert steps.loc[steps["method"] == "ce", "ratio_to_ce"].eq(1).all()
    agreement = pd.read_csv(out / "bf16_agreement.csv")
    assert {"ce", "act", "jac", "jacnorm"} <= set(agreement["term"])
    assert agreement["rel_diff"].ge(0).all() and agreement["within"].eq(agreement["rel_diff"] <= 0.05).all()
    conc = pd.read_csv(out / "concurrency.csv")
    assert sorted(conc["k"]) == [1, 2] and (conc["images_per_s"] > 0).all()
    assert (conc["min_steps_per_run"] >= 1).all()
    teacher = pd.read_csv(out / "teacher_throughput.csv")
    assert set(teacher["augmented"]) == {True, False} and (teacher["images_per_s"] > 0).all()
    projection = pd.read_csv(out / "projection.csv")
    assert projection["hours"].notna().all() and (projection["hours"] > 0).all()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["tiny"] and meta["skipped"] == []
    last = done.stdout.strip().splitlines()
    assert last[-1].startswith("paper protocol, one seed of Tables 1-3")
    assert any(line.startswith("GPU figures on cpu") for line in last)


def test_full_size_on_a_cpu_is_one_line_error_and_writes_nothing(tmp_path):
    out = tmp_path / "figures"
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--out", str(out)],
                          capture_output=True, text=True, env=_env(), timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("lakt: error:") and "--tiny" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()


def _module():
    spec = importlib.util.spec_from_file_location("gpu_figures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_augment_is_a_shifted_possibly_flipped_crop_of_each_image():
    augment = _module().augment
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    out = augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4), mode="reflect")
    for b in range(2):
        crops = [padded[b, :, dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)]
        assert any(torch.equal(out[b], c) or torch.equal(out[b], c.flip(2)) for c in crops)


def _tables():
    step = pd.DataFrame([
        {"model": m, "method": meth, "teacher": "none" if meth in ("ce", "ce+jacnorm") else "cached",
         "width": 1.0, "batch": 128, "precision": "bf16", "device": "gpu", "images_per_s": rate}
        for m, meth, rate in [("vgg9", "ce", 1000.0), ("vgg9", "ce+jacnorm", 500.0)]
        + [("vgg4", meth, 4000.0) for meth in cost.PAPER_METHODS]])
    conc = pd.DataFrame([{"model": "vgg4", "width": 1.0, "k": k, "images_per_s": r}
                         for k, r in ((1, 4000.0), (4, 12000.0), (16, 10000.0))])
    teacher = pd.DataFrame([{"model": "vgg9", "width": 1.0, "augmented": True, "images_per_s": 800.0}])
    return step, conc, teacher


def test_projection_divides_work_by_the_measured_rate_and_concurrency_gain():
    step, conc, teacher = _tables()
    workload = cost.paper_workload()
    proj = _module().project_concurrent_hours(workload, step, conc, teacher, precision="bf16")
    images = proj[proj["bound"] == "images"].set_index(["phase", "method"])
    t1 = images.loc[("Table 1 students", "act+jac+ce")]
    # 7 Table-1 columns x 500 epochs x (5+10+50+100+500+1000+5000)*10 images, at 4000/s x 3 (k = 4 is best)
    assert t1["image_steps"] == 500 * 66650 and t1["k"] == 4 and t1["speedup"] == pytest.approx(3.0)
    assert t1["hours"] == pytest.approx(500 * 66650 / (4000 * 3) / 3600)
    teacher_row = images.loc[("teacher CIFAR-10", "ce")]
    assert teacher_row["hours"] == pytest.approx(500 * 50_000 / 800 / 3600) and teacher_row["k"] == 1
    robust = images.loc[("Table 3 robustness", "ce+jacnorm")]
    assert robust["hours"].tolist() == pytest.approx([500 * 50_000 / 500 / 3600] * 4)
    steps = proj[proj["bound"] == "steps"]
    assert (steps["hours"].to_numpy() >= images["hours"].to_numpy() - 1e-12).all()
    # a 5-per-class CIFAR-10 subset is one 50-image step per epoch: priced as a full 128-image step
    assert steps["hours"].sum() > images["hours"].sum()


def test_projection_without_concurrency_assumes_no_gain_and_refuses_a_missing_setting():
    step, _, _ = _tables()
    proj = _module().project_concurrent_hours(cost.paper_workload(), step, None, None, precision="bf16")
    assert (proj["speedup"] == 1).all() and (proj["k"] == 1).all()
    with pytest.raises(LaktError, match="gpu_figures"):
        _module().project_concurrent_hours(cost.paper_workload(), step, precision="fp32")


def test_load_gpu_figures_reads_what_the_command_wrote_or_names_the_command(tmp_path):
    with pytest.raises(LaktError, match="gpu_figures.py --out"):
        cost.load_gpu_figures(tmp_path)
    step, conc, teacher = _tables()
    proj = _module().project_concurrent_hours(cost.paper_workload(), step, conc, teacher)
    proj.to_csv(tmp_path / "projection.csv", index=False)
    (tmp_path / "meta.json").write_text(json.dumps({"device": "gpu", "skipped": []}))
    figures = cost.load_gpu_figures(tmp_path)
    assert figures["meta"]["device"] == "gpu" and figures["concurrency"].empty
    hours = cost.protocol_hours(figures["projection"])
    assert list(hours.columns) == ["images", "steps"] and (hours["steps"] >= hours["images"] - 1e-9).all()
    assert hours["images"].sum() == pytest.approx(proj[proj["bound"] == "images"]["hours"].sum())


def test_gpu_session_packs_the_figures_and_both_sweeps_at_a_tiny_size(tmp_path):
    """benchmarks/gpu_session.sh, the one prepared GPU call, end to end on the CPU at tiny sizes:
    figures, two sweeps at once into one results folder, everything packed into OUT/session.tar.gz."""
    import tarfile

    (tmp_path / "data" / "cifar10-jpeg" / "train").mkdir(parents=True)  # as if the archive were unpacked
    env = dict(_env(), OUT=str(tmp_path / "out"), DATA=str(tmp_path / "data"), RESULTS=str(tmp_path / "results"),
               FIG_S="5", FIG_ARGS="--tiny", FIG_TIMEOUT_S="850", SWEEP_S="500", V2_PRESET="gpu-smoke", V2_PROCS="1",
               PAPER_PRESET="smoke", PAPER_PROCS="1", PAPER_SPEED="", NO_PREFLIGHT="1", PYTHON=sys.executable)
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_session.sh")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with tarfile.open(tmp_path / "out" / "session.tar.gz") as session:
        figures_log = session.extractfile("./figures.log").read().decode()
        assert "figures exit 0" in done.stdout and "sweeps stopped" in done.stdout, done.stdout + figures_log[-3000:]
        names = set(session.getnames())
        assert {f"./figures/{f}.csv" for f in ("step_cost", "bf16_agreement", "concurrency", "teacher_throughput",
                                               "projection")} <= names
        assert {"./v2.log", "./paper.log", "./figures.log", "./results.tar.gz"} <= names
        session.extract("./results.tar.gz", tmp_path / "unpacked", filter="data")
    with tarfile.open(tmp_path / "unpacked" / "results.tar.gz") as results:
        metrics = [n for n in results.getnames() if n.endswith("metrics.json")]
    expected = {c.key for name in ("gpu-smoke", "smoke") for c in runs.preset(name)}
    assert {Path(n).parent.name for n in metrics} == expected  # every run of both sweeps finished and came back
