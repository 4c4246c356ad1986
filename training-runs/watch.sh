#!/bin/bash
# Snapshot and commit a long qsnn-train run after every epoch, for as long as its process lives:
#   setsid nohup training-runs/watch.sh RUN_DIR SNAPSHOT_DIR [KEPT_EPOCHS] > /work/runs/watch.out 2>&1 &
#   e.g. training-runs/watch.sh /work/runs/mnist_t100_s1 training-runs/mnist_t100_s1 10,30,50,70
# When RUN_DIR/last.pt changes: training-runs/snapshot.py (last.pt + epochs.json), a copy of each kept
# epoch_<N>.pt (so candidate.sh runs on the snapshot folder anywhere), training-runs/progress.png redrawn
# (plot_runs.py), and `git commit -- SNAPSHOT_DIR training-runs/progress.png` (only those: other staged work
# stays staged). Run from the repository root. A machine that goes away with its session loses at most the
# epoch in progress.
set -uo pipefail
run=${1:?run directory}; dst=${2:?snapshot folder}; kept=${3:-10,30,50,70}
last=$(stat -c %Y "$run/last.pt" 2>/dev/null)
while pgrep -f "qsnn_deploy.cli.train.*--out $run" >/dev/null; do
  sleep 60
  now=$(stat -c %Y "$run/last.pt" 2>/dev/null)
  [ "$now" != "$last" ] || continue
  sleep 20; last=$(stat -c %Y "$run/last.pt")  # qsnn-train writes last.pt atomically; let it finish the epoch's files
  summary=$(nice python training-runs/snapshot.py "$run" "$dst" 2>&1 | tail -1)
  for e in ${kept//,/ }; do
    [ -f "$run/epoch_$e.pt" ] && [ ! -f "$dst/epoch_$e.pt" ] && cp "$run/epoch_$e.pt" "$dst/epoch_$e.pt"
  done
  nice python training-runs/plot_runs.py >/dev/null 2>&1 || echo "plot_runs.py failed; progress.png not redrawn"
  for _ in 1 2 3 4 5; do  # another git command may hold the index lock for a moment
    git add "$dst" training-runs/progress.png &&
      git commit -q -m "$(basename "$dst") snapshot ($summary)" -- "$dst" training-runs/progress.png && break
    sleep 7
  done
  echo "$(date -u '+%F %T') $summary"
done
