"""Test accuracy of the committed penalised nets (Table 3) under three BatchNorm statistics.

The training log of a strongly penalised net reports far more than its test accuracy (chapter
5). This measures, per net whose weights are in the results cache, the test accuracy with

- ``running``: eval mode, the running statistics the net was trained with (Table 3's figure);
- ``batch``: train mode, each batch of 64 normalised by its own statistics (as the log measures);
- ``recalibrated``: eval mode after one pass re-estimating the running statistics on the
  un-augmented training images (``lakt.core.robustness.recalibrated``); weights untouched.

    python benchmarks/batchnorm_statistics.py --data-root ~/data/cifar10-jpeg

writes benchmarks/results/batchnorm_statistics.csv (one row per net, with where it ran), which
chapter 5 reads. Needs the CIFAR-10 (JPEG) images; minutes on two CPU cores.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch

from lakt import runs
from lakt.core.data import load
from lakt.core.robustness import batch_statistics_accuracy, recalibrated
from lakt.core.train import evaluate
from lakt.runs import cache

ROOT = Path(__file__).resolve().parents[1]
PRESET = "cifar10-cpu-table3"   # chapter 5's penalised nets: v3's and v4's, both forms of the penalty
COLUMNS = ("preset", "results", "form", "penalty", "seed", "key", "running", "batch", "recalibrated")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True, help="the CIFAR-10 (JPEG) folder (train/, test/)")
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "batchnorm_statistics.csv")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    rows, data = [], None
    for config in runs.get_preset(PRESET).robustness("folder"):
        config = cache.resolve(config, args.data_root)
        for folder in (args.results, args.results / "replicate"):
            weights = config.folder(folder)
            if runs.load_result(config, folder) is None or not any(
                    (weights / name).exists() for name in ("model.pt", cache.FP16_WEIGHTS)):
                continue
            data = data or load(config.dataset, args.data_root)
            train, _ = cache.training_split(config, data)
            model = cache.load_model(config, folder, data.num_classes, data.in_channels, device="cpu").float()
            row = {"preset": PRESET, "results": folder.name, "form": config.method, "penalty": config.penalty,
                   "seed": config.seed, "key": config.key, "running": evaluate(model, data.test),
                   "batch": batch_statistics_accuracy(model, data.test),
                   "recalibrated": evaluate(recalibrated(model, train), data.test)}
            print(", ".join(f"{k} {v:g}" if k == "penalty" else f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in row.items()))
            rows.append(row)
    where = cache.provenance(torch.device("cpu"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*COLUMNS, *where])
        writer.writeheader()
        writer.writerows({**r, **where} for r in rows)
    print(f"{len(rows)} nets -> {args.out}")


if __name__ == "__main__":
    main()
