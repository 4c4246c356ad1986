"""Copy a qsnn-train run's last.pt into this folder with its per-epoch history (for a later --resume).

    python training-runs/snapshot.py /work/runs/mnist_paper training-runs/mnist_paper
"""
import json
import shutil
import sys
from pathlib import Path

import torch

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
dst.mkdir(parents=True, exist_ok=True)
tmp = dst / "last.pt.tmp"
shutil.copyfile(src / "last.pt", tmp)
ck = torch.load(tmp, weights_only=True)  # a complete file (qsnn-train writes last.pt atomically)
tmp.replace(dst / "last.pt")
ts = ck["train_state"]
stopping = ts.get("early_stopping")  # qsnn-train stores it since the fifth session (older files: absent)
summary = {"config": ck["config"], "epochs_done": ts["epoch"], "epochs": ts["history"]["epochs"]}
if stopping:
    summary["early_stopping"] = {k: stopping[k] for k in ("best_epoch", "best_score", "bad_epochs")}
(dst / "epochs.json").write_text(json.dumps(summary, indent=1) + "\n")
for e in ts["history"]["epochs"]:
    val = f"  val {100 * e['val_accuracy']:.2f}%" if "val_accuracy" in e else ""
    print(f"epoch {e['epoch']:2d}: loss {e['train_loss']:.4f}  test@T={ck['config']['eval_steps']} "
          f"{100 * e['test_accuracy']:.2f}%{val}  lr {e['lr']:.2e}  {e['seconds'] / 60:.1f} min")
if stopping:
    print(f"early stopping: best epoch {stopping['best_epoch']} (validation {100 * stopping['best_score']:.2f}%), "
          f"{stopping['bad_epochs']} epoch(s) since")
