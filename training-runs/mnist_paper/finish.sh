#!/usr/bin/env bash
# Deploy a finished (or interrupted) qsnn-train MNIST run at T = 100 and verify it on all 10,000 test images.
#   bash training-runs/mnist_paper/finish.sh [RUN_DIR] [OUT_DIR] [CKPT]
# RUN_DIR: the run (default /work/runs/mnist_paper); CKPT: the checkpoint to deploy (default RUN_DIR/last.pt).
# Steps: (1) re-save at T = 100 through `qsnn-train --resume ... --eval-steps 100` (trains nothing; PyTorch
# accuracy at T = 100); (2) tools/refit_frac_bits.py: largest F <= 6 per layer whose state provably cannot
# clip (PyTorch accuracy at T = 100 again); FAST=1 skips (1)'s evaluation; (3) qsnn-verify --strict at T = 100 on all 10,000 test images.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
RUN=${1:-/work/runs/mnist_paper}
OUT=${2:-/work/runs/mnist_paper_T100}
CKPT=${3:-$RUN/last.pt}
DATA=${DATA:-$REPO/../shared/data/mnist}
export PYTHONPATH=$REPO OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} NUMBA_NUM_THREADS=${NUMBA_NUM_THREADS:-2}
EPOCHS=$(python -c "import torch,sys; print(torch.load(sys.argv[1], weights_only=True)['train_state']['epoch'])" "$CKPT")
echo "== $(date -u +%H:%M:%S) deploying $CKPT (epoch $EPOCHS) at T=100 into $OUT"
mkdir -p "$OUT"
if [ "${FAST:-0}" = 1 ]; then  # no PyTorch evaluation before the re-fit (saves one pass over the test set)
    python "$REPO/training-runs/resave.py" "$CKPT" "$OUT" --steps 100 --name mnist_int4_qsnn
else
    time python -m qsnn_deploy.cli.train --resume "$CKPT" --epochs "$EPOCHS" --eval-steps 100 --out "$OUT" \
        --data-dir "$DATA" --name mnist_int4_qsnn -q
    python -c "import json,sys; m=json.load(open(sys.argv[1])); print('PyTorch @T=100 before refit:', m['final']['test_accuracy'])" "$OUT/metrics.json"
    cp "$OUT/metrics.json" "$OUT/mnist_int4_qsnn.metrics.json"
    cp "$OUT/training.png" "$OUT/mnist_int4_qsnn.training.png"
fi
echo "== $(date -u +%H:%M:%S) refit F"
time python "$REPO/tools/refit_frac_bits.py" "$OUT/mnist_int4_qsnn.pt" --data "$DATA"
echo "== $(date -u +%H:%M:%S) qsnn-verify, 10,000 test images, T=100"
time python -m qsnn_deploy.cli.verify "$OUT/mnist_int4_qsnn.pt" --data "$DATA" -n 10000 --steps 100 --strict \
    --json "$OUT/verify.json"
echo "== $(date -u +%H:%M:%S) done"
