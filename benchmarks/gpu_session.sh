#!/usr/bin/env bash
# Everything lakt measures on a lent GPU, in one call of at most ~9.5 minutes:
#
#   bash benchmarks/gpu_session.sh        # from the repository root; the archive in .gpu/ (git-ignored)
#
# 1. the GPU figures of chapter 6: benchmarks/gpu_figures.py, FIG_S seconds;
# 2. two sweeps at once on the one GPU, through the results cache in RESULTS:
#    V2_PRESET (cifar10-cpu-v3: the CPU-scale reproduction, fp32; complete in results/, so a
#    no-op there) with V2_PROCS processes and
#    PAPER_PRESET (paper-gpu: full width, bf16 + channels-last) with PAPER_PROCS processes,
#    each teacher first; stopped after SWEEP_S seconds (the cache keeps what finished;
#    a run cut short resumes from its progress.pt on the next call or on a CPU);
# 3. OUT/session.tar.gz (one file: the device returns at most 8): figures/*.csv, the logs, and
#    results.tar.gz -- every finished run's metrics.json and config.json, runs.log, and the
#    teachers' model.pt files up to 10 MB. Packed on any exit, so a failed call still reports.
# Environment overrides (the CPU test makes it tiny): OUT ARCHIVE DATA RESULTS FIG_S FIG_ARGS FIG_TIMEOUT_S
# SWEEP_S V2_PRESET V2_PROCS PAPER_PRESET PAPER_PROCS PAPER_SPEED PYTHON.
set -uo pipefail
OUT=${OUT:-gpu-out}
ARCHIVE=${ARCHIVE:-.gpu/cifar10-jpeg.tar.gz}
DATA=${DATA:-/tmp/lakt-data}
RESULTS=${RESULTS:-results}
FIG_S=${FIG_S:-75}
FIG_ARGS=${FIG_ARGS:-}
FIG_TIMEOUT_S=${FIG_TIMEOUT_S:-$((FIG_S + 90))}  # a hung figure must not eat the sweeps' minutes
SWEEP_S=${SWEEP_S:-420}
V2_PRESET=${V2_PRESET:-cifar10-cpu-v3}
V2_PROCS=${V2_PROCS:-10}
PAPER_PRESET=${PAPER_PRESET:-paper-gpu}
PAPER_PROCS=${PAPER_PROCS:-5}
PAPER_SPEED=${PAPER_SPEED---precision bf16 --channels-last}
PYTHON=${PYTHON:-python}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=134217728
WORK=$(mktemp -d)
mkdir -p "$OUT" "$DATA"
pack() { tar czf "$OUT/session.tar.gz" -C "$WORK" . 2>/dev/null; }
trap pack EXIT
began=$SECONDS
say() { echo "[gpu_session $((SECONDS - began)) s] $*"; }

[ -d "$DATA/cifar10-jpeg/train" ] || tar xzf "$ARCHIVE" -C "$DATA" || { echo "lakt: error: cannot unpack $ARCHIVE; copy cifar10-jpeg.tar.gz there" >&2; exit 2; }
say "data unpacked"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || say "no nvidia-smi"
"$PYTHON" -c "import torch, lakt; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

# 0. preflight: every code path at tiny size on this machine's torch, before spending minutes
if [ -z "${NO_PREFLIGHT:-}" ]; then
  timeout 150 "$PYTHON" benchmarks/gpu_figures.py --tiny --out "$WORK/preflight" > "$WORK/preflight.log" 2>&1 \
    && "$PYTHON" -m lakt.runs.cli sweep --preset gpu-smoke --results "$WORK/preflight-runs" --quiet >> "$WORK/preflight.log" 2>&1 \
    || { say "preflight failed"; tail -40 "$WORK/preflight.log"; exit 3; }
  rm -rf "$WORK/preflight-runs"
  say "preflight passed"
fi

# 1. figures, on the otherwise idle GPU
timeout "$FIG_TIMEOUT_S" "$PYTHON" benchmarks/gpu_figures.py --out "$WORK/figures" --budget-s "$FIG_S" $FIG_ARGS \
  > "$WORK/figures.log" 2>&1
say "figures exit $?"; tail -25 "$WORK/figures.log"

# 2. the sweeps, each in its own process group so the deadline stops every child
sweep() {  # preset procs log extra...
  local preset=$1 procs=$2 log=$3; shift 3
  OMP_NUM_THREADS=1 setsid "$PYTHON" -m lakt.runs.cli sweep --preset "$preset" --data-root "$DATA/cifar10-jpeg" --results "$RESULTS" \
    --executor local --workers "$procs" --quiet "$@" > "$WORK/$log" 2>&1 &
  echo $!
}
v2=$(sweep "$V2_PRESET" "$V2_PROCS" v2.log)
# shellcheck disable=SC2086  # PAPER_SPEED is a word list
paper=$(sweep "$PAPER_PRESET" "$PAPER_PROCS" paper.log $PAPER_SPEED)
deadline=$((SECONDS + SWEEP_S))
while [ $SECONDS -lt $deadline ] && { kill -0 "$v2" 2>/dev/null || kill -0 "$paper" 2>/dev/null; }; do
  sleep 5
done
for pid in $v2 $paper; do kill -TERM -- "-$pid" 2>/dev/null; done
sleep 5
for pid in $v2 $paper; do kill -KILL -- "-$pid" 2>/dev/null; done
say "sweeps stopped; finished runs: $(find "$RESULTS" -name metrics.json -newer "$WORK/figures.log" | wc -l) new"
tail -n 5 "$WORK/v2.log" "$WORK/paper.log"

# 3. what comes back
find "$RESULTS" \( -name metrics.json -o -name config.json -o -name runs.log \) -print > "$WORK/files.txt"
find "$RESULTS" -name model.pt -size -10M -path "*/teacher/*" -print >> "$WORK/files.txt"
tar czf "$WORK/results.tar.gz" -T "$WORK/files.txt"
say "done: $(wc -l < "$WORK/files.txt") files in results.tar.gz ($(du -h "$WORK/results.tar.gz" | cut -f1))"
