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
(dst / "epochs.json").write_text(json.dumps({"config": ck["config"], "epochs_done": ts["epoch"],
                                             "epochs": ts["history"]["epochs"]}, indent=1) + "\n")
for e in ts["history"]["epochs"]:
    print(f"epoch {e['epoch']:2d}: loss {e['train_loss']:.4f}  test@T={ck['config']['eval_steps']} "
          f"{100 * e['test_accuracy']:.2f}%  lr {e['lr']:.2e}  {e['seconds'] / 60:.1f} min")
