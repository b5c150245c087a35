"""GPU figures for the appendix: step cost in fp32 and bf16, concurrent students, teacher throughput.

    python benchmarks/gpu_figures.py --out gpu_figures              # on a GPU: --budget-s 180 + ~20 s start-up
    python benchmarks/gpu_figures.py --out gpu_figures --budget-s 90
    python benchmarks/gpu_figures.py --out /tmp/tiny --tiny         # any machine, CPU included: seconds, tiny sizes

One command, four measurements, each written as a CSV under ``--out`` as soon as it is done
(so a call cut short still leaves what finished), and a short table printed last:

1. ``step_cost.csv`` -- ``benchmarks/step_cost.py``'s step benchmark (same ``setup``: one
   training step exactly as ``lakt.core.train.fit`` takes it, interleaved rounds, median)
   in fp32 and in bf16 (``Objective(precision="bf16")``: autocast for the networks' passes,
   losses in float32), every (model, width, batch) setting, with peak memory on CUDA
   (maximum allocated above what was allocated before the setting was built). Settings are
   taken most-needed first (width 1, batch 128: the paper protocol's) and skipped, and
   listed as skipped, once their share of the budget is spent.
2. ``bf16_agreement.csv`` -- each method's loss terms on one fixed batch, same weights,
   in bf16 against fp32: relative difference per term and whether it is within
   :data:`BF16_TOLERANCE`.
3. ``concurrency.csv`` -- k student runs (k = 1, 4, 16 processes, VGG-4 at widths 1/4 and 1,
   Act+Jac+CE with cached teacher targets, batch 128) sharing the one device: each process
   builds its run, warms up, signals ready; all start on one go signal and step for the same
   window; images/s are summed over processes. This is what running many low-data students
   side by side buys (the paper's Tables 1-2 are 78 small runs).
4. ``teacher_throughput.csv`` -- VGG-9 at widths 1 and 1/4 trained with CE, batch 128,
   images/s with and without on-device augmentation (random 32x32 crop of the 4-pixel
   reflect-padded image and a horizontal flip, per image).

``projection.csv`` then turns the measured throughput into the paper protocol's hours
(:func:`project_concurrent_hours`: one seed of Tables 1-3, concurrency
included). ``meta.json`` records device, versions, budget, elapsed time and what was skipped.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the checkout's lakt, when run as a script

BF16_TOLERANCE = 0.05
"""Largest relative difference |bf16 - fp32| / |fp32| of a loss term on one batch counted as agreement.

bfloat16 keeps 8 significant bits (relative rounding 2^-9 = 0.2% per operation); through a
network's few dozen roundings a logit moves by about a percent, and the Jacobian term -- a
squared difference of two nearly equal unit vectors, formed from a bf16 double backward --
amplifies that. 5% is the agreement asked of a speed option that must not change what is
learned; every row reports the measured difference, so a tighter reading is possible."""

STUDENT_METHODS = ["ce", "act+ce", "jac+ce", "act+jac+ce", "act", "act+jac", "ce+jacnorm", "act+fdjac+ce"]
FP32_ONLY = {"act+fdjac+ce"}  # finite differences below bf16's rounding: refused in bf16
CONCURRENT_METHOD = "act+jac+ce"


def _step_cost_module():
    spec = importlib.util.spec_from_file_location("lakt_step_cost", HERE / "step_cost.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sizes(tiny: bool) -> dict:
    """What is measured: the GPU sizes, or tiny ones that run in seconds on a CPU (for the test)."""
    if tiny:
        return {"settings": [("vgg4", 0.0625, 8), ("vgg9", 0.0625, 8)], "methods": STUDENT_METHODS,
                "steps": 2, "warmup": 1, "concurrency": [1, 2], "concurrent_widths": [0.0625], "window_s": 0.5,
                "concurrent_batch": 8, "teacher_widths": [0.0625], "teacher_batch": 8, "teacher_steps": 2,
                "projection": (0.0625, 8)}
    settings = [(m, w, b) for w, b in ((1.0, 128), (0.25, 128), (1.0, 64), (0.25, 64)) for m in ("vgg4", "vgg9")]
    return {"settings": settings, "methods": STUDENT_METHODS, "steps": 20, "warmup": 5,
            "concurrency": [1, 4, 16], "concurrent_widths": [0.25, 1.0], "concurrent_batch": 128,
            "teacher_widths": [1.0, 0.25], "teacher_batch": 128, "teacher_steps": 30, "window_s": None,
            "projection": (1.0, 128)}


def _specs(model, width, batch, methods, precision, device, steps, warmup):
    out = []
    for method in methods:
        if precision != "fp32" and method in FP32_ONLY:
            continue
        mode = "none" if method in ("ce", "ce+jacnorm") else "cached"
        out.append({"model": model, "width": width, "batch": batch, "method": method, "teacher": mode,
                    "precision": precision, "device": device, "steps": steps, "warmup": warmup})
    return out


def _peak_memory_mb(sc, spec) -> float:
    import torch

    if spec["device"] != "cuda":
        return float("nan")  # the CPU figure needs a process of its own: benchmarks/step_cost.py
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step = sc.setup(spec)
    step(), step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del step
    torch.cuda.empty_cache()
    return peak / 2 ** 20


def loss_agreement(sc, spec_fp32: dict) -> list[dict]:
    """Each loss term of one fixed batch in fp32 and bf16 (same weights, same batch, train mode)."""
    import torch

    values = {}
    for precision in ("fp32", "bf16"):
        _, (student, objective, x, y, positions) = sc.setup(dict(spec_fp32, precision=precision), with_objective=True)
        _, terms = objective(student, x, y, positions)
        values[precision] = {k: float(v.float().sum()) for k, v in terms.items() if k != "logits"}
        del student, objective
    rows = []
    for term, ref in values["fp32"].items():
        low = values["bf16"][term]
        rel = abs(low - ref) / max(abs(ref), 1e-12)
        rows.append({**{k: spec_fp32[k] for k in ("method", "model", "width", "batch")}, "term": term,
                     "fp32": ref, "bf16": low, "rel_diff": rel, "tolerance": BF16_TOLERANCE,
                     "within": rel <= BF16_TOLERANCE})
    if spec_fp32["device"] == "cuda":
        torch.cuda.empty_cache()
    return rows


def step_benchmark(sc, plan: dict, device: str, budget_s: float, out: Path, log) -> tuple[list, list, list]:
    """Phase 1 and 2: step cost in fp32 and bf16 per setting, and the bf16 loss agreement."""
    import pandas as pd

    rows, agreement, skipped = [], [], []
    began, slowest = time.perf_counter(), 0.0
    for model, width, batch in plan["settings"]:
        spent = time.perf_counter() - began
        if spent + slowest > budget_s:
            skipped.append(f"step cost {model} x{width:g} b{batch} (budget)")
            continue
        t0 = time.perf_counter()
        for precision in ("fp32", "bf16"):
            specs = _specs(model, width, batch, plan["methods"], precision, device, plan["steps"], plan["warmup"])
            timed = sc.time_group(specs)
            for spec, row in zip(specs, timed):
                row["precision"] = precision
                row["peak_mem_mb"] = _peak_memory_mb(sc, spec)
                rows.append(row)
        for spec in _specs(model, width, batch, plan["methods"], "fp32", device, 0, 0):
            if spec["method"] not in FP32_ONLY:
                agreement.extend(loss_agreement(sc, spec))
        slowest = max(slowest, time.perf_counter() - t0)
        table = pd.concat([sc.summarise([r for r in rows if r["precision"] == p]).assign(precision=p)
                           for p in ("fp32", "bf16") if any(r["precision"] == p for r in rows)])
        table.to_csv(out / "step_cost.csv", index=False, float_format="%.4g")
        pd.DataFrame(agreement).to_csv(out / "bf16_agreement.csv", index=False, float_format="%.4g")
        log(f"step cost {model} x{width:g} b{batch}: {time.perf_counter() - t0:.1f} s")
    return rows, agreement, skipped


# ---------------------------------------------------------------------------------------------
# Concurrent runs: one process per run, started together on a go signal.

def _concurrent_worker(job: dict) -> dict:
    """Build one student run, warm up, say ready, wait for go, step for the window; report images/s."""
    sc = _step_cost_module()
    import torch

    device = torch.device(job["spec"]["device"])
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    step = sc.setup(job["spec"])
    for _ in range(job["warmup"]):
        step()
    sync()
    folder = Path(job["folder"])
    (folder / f"ready-{job['rank']}").write_text("ready")
    go = folder / "go"
    while not go.exists():  # the parent writes it once every process is ready
        time.sleep(0.005)
    start = float(go.read_text())
    while time.time() < start:
        time.sleep(0.001)
    t0 = time.perf_counter()
    steps = 0
    while True:
        step()
        sync()
        steps += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= job["window_s"]:
            break
    return {"steps": steps, "seconds": elapsed, "images_per_s": steps * job["spec"]["batch"] / elapsed}


def concurrent_throughput(spec: dict, k: int, window_s: float, warmup: int, timeout_s: float) -> dict:
    """Summed images/s of k processes running the same student step at once on the one device."""
    env = dict(os.environ, **_step_cost_module().STEADY_MALLOC)
    env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // k))  # k processes share the host's cores
    with tempfile.TemporaryDirectory(prefix="lakt-concurrent-") as folder:
        procs = []
        for rank in range(k):
            job = {"spec": spec, "rank": rank, "folder": folder, "window_s": window_s, "warmup": warmup}
            procs.append(subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(job)], env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        deadline = time.time() + timeout_s
        while sum((Path(folder) / f"ready-{r}").exists() for r in range(k)) < k:
            failed = [p for p in procs if p.poll() not in (None, 0)]
            if failed or time.time() > deadline:
                for p in procs:
                    p.kill()
                why = failed[0].communicate()[1].strip().splitlines()[-1:] if failed else ["not ready in time"]
                raise RuntimeError(f"concurrent worker failed: {why}")
            time.sleep(0.01)
        # written whole, then renamed: a worker polling for "go" must never read it half-written
        (Path(folder) / "go.tmp").write_text(str(time.time() + 0.2))
        os.replace(Path(folder) / "go.tmp", Path(folder) / "go")
        results = []
        for p in procs:
            stdout, stderr = p.communicate(timeout=window_s + timeout_s)
            if p.returncode != 0:
                raise RuntimeError(f"concurrent worker failed: {stderr.strip().splitlines()[-1:]}")
            results.append(json.loads(stdout.strip().splitlines()[-1]))
    total = sum(r["images_per_s"] for r in results)
    return {"model": spec["model"], "width": spec["width"], "batch": spec["batch"], "method": spec["method"],
            "teacher": spec["teacher"], "precision": spec["precision"], "k": k, "images_per_s": total,
            "per_run_images_per_s": total / k, "window_s": window_s,
            "min_steps_per_run": min(r["steps"] for r in results)}


def concurrency(plan: dict, device: str, precision: str, budget_s: float, out: Path, log) -> tuple[list, list]:
    import pandas as pd

    configs = [(w, k) for w in plan["concurrent_widths"] for k in plan["concurrency"]]
    # about a third of each measurement's share is the window; the rest starts the k processes
    window = plan["window_s"] or min(10.0, max(1.0, budget_s / len(configs) / 3))
    rows, skipped = [], []
    began, last = time.perf_counter(), 0.0
    for width, k in configs:
        left = budget_s - (time.perf_counter() - began)
        if plan["window_s"] is None and left < max(last, window * 1.5):
            skipped.append(f"concurrency vgg4 x{width:g} k={k} (budget)")
            continue
        spec = _specs("vgg4", width, plan["concurrent_batch"], [CONCURRENT_METHOD], precision, device, 0, 0)[0]
        t0 = time.perf_counter()
        row = concurrent_throughput(spec, k, window, warmup=3, timeout_s=max(60.0, left))
        base = next((r for r in rows if r["width"] == width and r["k"] == 1), None)
        row["speedup_over_k1"] = row["images_per_s"] / base["images_per_s"] if base else float("nan")
        rows.append(row)
        last = time.perf_counter() - t0
        pd.DataFrame(rows).to_csv(out / "concurrency.csv", index=False, float_format="%.4g")
        log(f"concurrency vgg4 x{width:g} k={k}: {row['images_per_s']:.0f} images/s "
            f"({time.perf_counter() - t0:.1f} s)")
    return rows, skipped


# ---------------------------------------------------------------------------------------------
# Teacher throughput, with and without augmentation.

def augment(x, generator):
    """Random 32x32 crop of the 4-pixel reflect-padded batch and a random horizontal flip, per image, on device."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4), mode="reflect")
    dy = torch.randint(0, 9, (n,), device=x.device, generator=generator)
    dx = torch.randint(0, 9, (n,), device=x.device, generator=generator)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    crops = padded[torch.arange(n, device=x.device)[:, None, None, None],
                   torch.arange(c, device=x.device)[None, :, None, None], rows, cols]
    flip = torch.rand(n, device=x.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], crops.flip(3), crops)


def teacher_throughput(width: float, batch: int, steps: int, augmented: bool, device: str, precision: str) -> dict:
    """Images/s of VGG-9 trained with CE (the teacher's step), augmentation included in the time."""
    import torch

    from lakt.core import models
    from lakt.core.methods import get_method
    from lakt.core.objective import Objective
    from lakt.core.train import train_step

    torch.manual_seed(0)
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    model = models.vgg9(10, width=width).to(dev).train()
    objective = Objective(get_method("ce"), precision=precision)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    pool = 4 * batch
    x_all = torch.randn(pool, 3, 32, 32, device=dev)
    y_all = torch.randint(0, 10, (pool,), device=dev)
    generator = torch.Generator(device=dev).manual_seed(0)

    def step():
        positions = torch.randint(0, pool, (batch,), device=dev, generator=generator)
        x = x_all[positions]
        train_step(model, objective, optimizer, positions, augment(x, generator) if augmented else x, y_all[positions])

    for _ in range(3):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = time.perf_counter() - t0
    return {"model": "vgg9", "width": width, "batch": batch, "precision": precision, "augmented": augmented,
            "images_per_s": steps * batch / seconds, "steps": steps}


def teachers(plan: dict, device: str, precision: str, budget_s: float, out: Path, log) -> tuple[list, list]:
    import pandas as pd

    rows, skipped, began, slowest = [], [], time.perf_counter(), 0.0
    for width in plan["teacher_widths"]:
        for augmented in (True, False):
            if time.perf_counter() - began + slowest > budget_s:
                skipped.append(f"teacher vgg9 x{width:g} augmented={augmented} (budget)")
                continue
            t0 = time.perf_counter()
            rows.append(teacher_throughput(width, plan["teacher_batch"], plan["teacher_steps"], augmented,
                                           device, precision))
            slowest = max(slowest, time.perf_counter() - t0)
            pd.DataFrame(rows).to_csv(out / "teacher_throughput.csv", index=False, float_format="%.4g")
            log(f"teacher vgg9 x{width:g} augmented={augmented}: {rows[-1]['images_per_s']:.0f} images/s")
    return rows, skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("gpu_figures"), help="folder for the CSVs")
    parser.add_argument("--budget-s", type=float, default=180.0,
                        help="seconds the measurements may take in all (start-up excluded); shares: "
                             "45%% step cost, 40%% concurrency, 15%% teacher")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes that run in seconds on a CPU (a test)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when present)")
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"],
                        help="precision of the concurrency and teacher measurements (the step cost does both)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_concurrent_worker(json.loads(args.worker))))
        return
    import pandas as pd
    import torch

    from lakt.analysis import cost

    began = time.perf_counter()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    if not args.tiny and device != "cuda":
        print("lakt: error: the full GPU figures need a CUDA device; on a CPU run --tiny "
              "(or benchmarks/step_cost.py for the CPU table)", file=sys.stderr)
        sys.exit(2)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    plan = sizes(args.tiny)
    sc = _step_cost_module()

    def log(msg):
        print(f"[{time.perf_counter() - began:6.1f} s] {msg}", flush=True)

    steps, agreement, skipped = step_benchmark(sc, plan, device, 0.45 * args.budget_s, out, log)
    conc, more = concurrency(plan, device, args.precision, 0.40 * args.budget_s, out, log)
    skipped += more
    teach, more = teachers(plan, device, args.precision, 0.15 * args.budget_s, out, log)
    skipped += more

    step_table = pd.read_csv(out / "step_cost.csv")
    conc_table = pd.DataFrame(conc)
    teach_table = pd.DataFrame(teach)
    width, batch = plan["projection"]
    projection = project_concurrent_hours(cost.paper_workload(batch), step_table, conc_table, teach_table,
                                          precision=args.precision, width=width, batch=batch)
    projection.to_csv(out / "projection.csv", index=False, float_format="%.4g")
    name = torch.cuda.get_device_name() if device == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    meta = {"device": name, "torch": torch.__version__, "cuda": torch.version.cuda, "tiny": args.tiny,
            "budget_s": args.budget_s, "elapsed_s": time.perf_counter() - began, "precision": args.precision,
            "bf16_tolerance": BF16_TOLERANCE, "skipped": skipped, "command": " ".join(sys.argv)}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))

    print("\n" + summary(step_table, pd.DataFrame(agreement), conc_table, teach_table, projection, meta))


def _concurrency_speedup(concurrency, model: str, width: float, runs: int) -> tuple[int, float]:
    """(k, summed images/s at k over images/s at k = 1) for the best measured k <= ``runs``; (1, 1.0) unmeasured."""
    if concurrency is None or len(concurrency) == 0:
        return 1, 1.0
    rows = concurrency[(concurrency["model"] == model) & (concurrency["width"] == width)]
    single, rows = rows[rows["k"] == 1], rows[rows["k"] <= max(1, runs)]
    if len(single) == 0 or len(rows) == 0:
        return 1, 1.0
    best = rows.loc[rows["images_per_s"].idxmax()]
    return int(best["k"]), float(best["images_per_s"] / single["images_per_s"].iloc[0])


def project_concurrent_hours(workload, step_cost, concurrency=None, teacher_throughput=None, *, precision: str = "bf16",
                             width: float = 1.0, batch: int = 128, teacher: str = "cached") -> "pd.DataFrame":
    """Device hours of the paper protocol from this script's measurements.

    Per workload row: the single-run rate of its (model, method) in ``step_cost`` (no
    ``precision`` column: fp32) times the speed-up of k concurrent runs measured for the model
    (k at most the phase's runs; assumed to carry over from the measured method to the others);
    teachers at ``teacher_throughput`` (VGG-9 with augmentation) when given. Two rows each
    (``bound``): ``images`` prices every image (a lower bound), ``steps`` every step as a full
    ``batch`` (an upper bound for the small subsets).
    """
    import pandas as pd

    from lakt.core.errors import require

    cost = step_cost[(step_cost["width"] == width) & (step_cost["batch"] == batch)]
    if "precision" in cost:
        cost = cost[cost["precision"] == precision]
    require(len(cost) > 0, f"the step-cost file has no rows at width {width}, batch {batch}, precision {precision}; "
                           "run python benchmarks/gpu_figures.py without --tiny")
    rate = cost[cost["teacher"].isin([teacher, "none"])].set_index(["model", "method"])["images_per_s"]
    teacher_rate = None
    if teacher_throughput is not None and len(teacher_throughput):
        hit = teacher_throughput[(teacher_throughput["width"] == width) & teacher_throughput["augmented"].astype(bool)]
        teacher_rate = float(hit["images_per_s"].iloc[0]) if len(hit) else None
    phase_runs, rows = workload.groupby("phase")["runs"].sum(), []
    for r in workload.itertuples(index=False):
        single = rate.get((r.model, r.method), float("nan"))
        if r.phase.startswith("teacher") and teacher_rate is not None:
            single = teacher_rate
        k, speedup = _concurrency_speedup(concurrency, r.model, width, int(phase_runs[r.phase]))
        for bound, work in (("images", r.image_steps), ("steps", r.steps * batch)):
            rows.append({**r._asdict(), "images_per_s": single, "k": k, "speedup": speedup, "bound": bound,
                         "hours": work / (single * speedup) / 3600, "device": cost["device"].iloc[0],
                         "precision": precision, "width": width, "batch": batch})
    return pd.DataFrame(rows)


def summary(step_table, agreement, conc_table, teach_table, projection, meta) -> str:
    """The short table printed last: ratios to CE, bf16 agreement, concurrency, teacher, projection."""
    import pandas as pd

    lines = [f"GPU figures on {meta['device']} ({meta['elapsed_s']:.0f} s, budget {meta['budget_s']:.0f} s)"]
    keep = step_table[step_table["method"].isin(["ce", "act+jac+ce", "jac+ce", "act+fdjac+ce"])]
    pivot = keep.pivot_table(index=["model", "width", "batch", "precision"], columns="method",
                             values="ratio_to_ce" if "ratio_to_ce" in keep else "ms_per_step")
    ce_ms = keep[keep["method"] == "ce"].set_index(["model", "width", "batch", "precision"])["ms_per_step"]
    pivot.insert(0, "ce ms", ce_ms)
    with pd.option_context("display.width", 160, "display.float_format", lambda v: f"{v:.3g}"):
        lines += ["step cost (ratio to CE):", pivot.to_string()]
        if len(agreement):
            worst = agreement.loc[agreement["rel_diff"].idxmax()]
            lines.append(f"bf16 vs fp32 loss terms: {int(agreement['within'].sum())}/{len(agreement)} within "
                         f"{BF16_TOLERANCE:.0%}; worst {worst['rel_diff']:.2%} ({worst['method']} {worst['term']}, "
                         f"{worst['model']} x{worst['width']:g} b{worst['batch']})")
        if len(conc_table):
            lines += ["concurrent students (summed images/s):",
                      conc_table.pivot_table(index=["model", "width"], columns="k", values="images_per_s").to_string()]
        if len(teach_table):
            lines += ["teacher (images/s):",
                      teach_table.pivot_table(index=["model", "width"], columns="augmented",
                                              values="images_per_s").to_string()]
    total = projection.groupby("bound")["hours"].sum(min_count=1)
    width, batch = projection["width"].iloc[0], projection["batch"].iloc[0]
    lines.append(f"paper protocol, one seed of Tables 1-3, measured at width {width:g}, batch {batch}"
                 f"{' (tiny sizes: not the protocol)' if meta['tiny'] else ''}: "
                 + ", ".join(f"{h:.3g} h ({b}-bound)" for b, h in total.items())
                 + ("" if projection["hours"].notna().all() else " -- some rows unpriced")
                 + ("" if meta["tiny"] else f"; goal <= 1 GPU-hour: {'met' if total.max() <= 1 else 'not met'}"))
    if meta["skipped"]:
        lines.append("skipped: " + "; ".join(meta["skipped"]))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
