#!/usr/bin/env bash
# The paper's Table 1 protocol at full width on one GPU, one command.
#
#   bash benchmarks/paper_gpu.sh            # from the repository root, on a machine with a GPU
#
# 1. unpacks CIFAR-10 (JPEG) from the git-ignored data/cifar10-jpeg.tar.gz of the checkout
#    (copy it there first: cp /path/to/cifar10-jpeg.tar.gz data/);
# 2. trains the full-width VGG-9 teacher with crop + flip (preset paper-gpu: epochs in
#    lakt/runs/presets.py, PAPER_GPU_TEACHER_EPOCHS), then
# 3. the 24 full-width VGG-4 students (5/10/50/100 per class, 500 epochs, the six methods,
#    seed 0), PROCS runs at once on the one GPU (the local executor), bf16 autocast, NHWC.
#
# Results land in RESULTS (default results-gpu/): metrics.json + config.json per run.
# Environment overrides (the CPU test uses them): PRESET, PROCS, RESULTS, ARCHIVE, DATA,
# PYTHON, DEVICE, SPEED (default "--precision bf16 --channels-last"), EXTRA.
set -euo pipefail
PRESET=${PRESET:-paper-gpu}
PROCS=${PROCS:-6}
RESULTS=${RESULTS:-results-gpu}
ARCHIVE=${ARCHIVE-data/cifar10-jpeg.tar.gz}
DATA=${DATA:-${TMPDIR:-/tmp}/lakt-data}
PYTHON=${PYTHON:-python}
SPEED=${SPEED---precision bf16 --channels-last}
DEVICE=${DEVICE:-}
EXTRA=${EXTRA:-}

data_args=()
if [ -n "$ARCHIVE" ]; then
  if [ ! -f "$ARCHIVE" ]; then
    echo "lakt: error: $ARCHIVE not found; copy cifar10-jpeg.tar.gz into data/ or set ARCHIVE=" >&2
    exit 2
  fi
  mkdir -p "$DATA"
  [ -d "$DATA/cifar10-jpeg/train" ] || tar xzf "$ARCHIVE" -C "$DATA"
  data_args=(--data-root "$DATA/cifar10-jpeg")
fi
device_args=()
[ -n "$DEVICE" ] && device_args=(--device "$DEVICE")

export MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=134217728
start=$(date +%s)
# shellcheck disable=SC2086  # SPEED and EXTRA are word lists
"$PYTHON" -m lakt.runs.cli sweep --preset "$PRESET" --results "$RESULTS" --executor local --workers "$PROCS" --quiet \
  "${data_args[@]}" "${device_args[@]}" $SPEED $EXTRA
echo "paper_gpu: preset $PRESET, $PROCS processes, $(( $(date +%s) - start )) s wall"
