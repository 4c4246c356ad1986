#!/bin/bash
# Keep a copy of every epoch of a qsnn-train run: training-runs/keep_epochs.sh RUN_DIR DEST
# Each new RUN_DIR/last.pt (written atomically by qsnn-train) is copied to DEST/epoch_<N>.pt, N being the
# epoch count stored in that checkpoint. Runs until stopped; start it beside the run.
run=$1; dest=$2; prev=""
mkdir -p "$dest"
while true; do
  m=$(stat -c %Y "$run/last.pt" 2>/dev/null)
  if [ -n "$m" ] && [ "$m" != "$prev" ]; then
    cp "$run/last.pt" "$dest/last.tmp"
    n=$(python -c "import sys, torch; print(torch.load(sys.argv[1], weights_only=True)['train_state']['epoch'])" "$dest/last.tmp") \
      && mv "$dest/last.tmp" "$dest/epoch_${n}.pt" && prev=$m
  fi
  sleep 30
done
