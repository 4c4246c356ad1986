#!/bin/bash
# A shipping candidate from a kept epoch of a long run, checked the way issue 28 ships:
#   training-runs/candidate.sh RUN_DIR EPOCH DATA_DIR [OUT]
#   e.g. training-runs/candidate.sh /work/runs/fmnist_q4 30 ../shared/data/fashion-mnist
# 1. the model of that epoch, trained no further (qsnn-train --resume epoch_N.pt --epochs N): N.pt, metrics, curves;
# 2. qsnn-verify on the whole test set at T = 100 with torch, onnx and nir, --strict (a clipped state fails it);
# 3. whether the state bound proves that no layer can clip.
# Exits non-zero when any step fails. Run from the repository root.
set -euo pipefail
run=${1:?run directory}; epoch=${2:?epoch}; data=${3:?data directory}; out=${4:-/tmp/candidate_$(basename "$run")_e$epoch}
[ -f "$run/epoch_$epoch.pt" ] || { echo "no $run/epoch_$epoch.pt (the run keeps epochs with --keep-epochs)" >&2; exit 2; }
python -m qsnn_deploy.cli.train --resume "$run/epoch_$epoch.pt" --epochs "$epoch" --out "$out" --data-dir "$data" 2>&1 \
  | grep -a -v "batch\|it/s\]\|s/it\]" | tail -3
model=$(ls "$out"/*.pt | grep -v "/last.pt$" | head -1)
echo "model: $model"
python -m qsnn_deploy.cli.verify "$model" --data "$data" -n 10000 --steps 100 --backends torch,onnx,nir --strict \
  --json "$out/verify.json" | tail -9
python - "$model" <<'PY'
import sys
from qsnn_deploy import freeze
from qsnn_deploy.checkpoint import model_from_checkpoint
from qsnn_deploy.statebound import net_state_bounds
model, ckpt = model_from_checkpoint(sys.argv[1])
free = all(b.saturation_free for b in net_state_bounds(freeze(model)))
print(f"recorded test accuracy {100 * ckpt['metrics']['test_accuracy']:.2f}%; no layer can clip: {free}")
sys.exit(0 if free else 1)
PY
