"""Re-save a qsnn-train checkpoint for deployment at another T, without evaluating it (the F re-fit that
follows measures the accuracy): <out>/<name>.pt with arch num_steps = T and config eval_steps = T,
<name>.metrics.json (config, per-epoch history at the training T, final: epochs_run) and <name>.training.png.

    python training-runs/resave.py /work/runs/mnist_paper/last.pt /work/runs/mnist_paper_T100 --steps 100
"""
import argparse
import copy
import json
from pathlib import Path

from qsnn_deploy.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from qsnn_deploy.train.history import unpack_steps
from qsnn_deploy.train.plots import plot_training

p = argparse.ArgumentParser()
p.add_argument("checkpoint")
p.add_argument("out")
p.add_argument("--steps", type=int, default=100)
p.add_argument("--name", default="mnist_int4_qsnn")
a = p.parse_args()
ck = load_checkpoint(a.checkpoint)
model, _ = model_from_checkpoint(ck)
arch, config = copy.deepcopy(ck["arch"]), dict(ck["config"])
arch["num_steps"] = a.steps
config.update(eval_steps=a.steps, name=a.name)
ts = ck["train_state"]
hist = ts["history"]
final = {"epochs_run": ts["epoch"], "eval_steps": a.steps, "test_accuracy_at_train_T": hist["epochs"][-1]["test_accuracy"],
         "samples_per_s": sum(e["samples_per_s"] for e in hist["epochs"]) / len(hist["epochs"])}
out = Path(a.out)
out.mkdir(parents=True, exist_ok=True)
save_checkpoint(out / f"{a.name}.pt", model, arch, config=config, metrics=final, train_state=ts)
(out / f"{a.name}.metrics.json").write_text(json.dumps({"config": config, "epochs": hist["epochs"], "final": final}, indent=2) + "\n")
loss_label = {"ce_count": "spike-count cross entropy"}.get(config.get("loss"), "spike-count MSE loss")
plot_training(unpack_steps(hist["steps"]), hist["epochs"], out / f"{a.name}.training.png", loss_label=loss_label,
              title=f"{config['dataset']} {config['precision']} {config['schedule']}")
print(f"wrote {out / (a.name + '.pt')} (epoch {ts['epoch']}, T={a.steps})")
