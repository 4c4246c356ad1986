"""Write the shipped metrics JSON and training curves of a model trained in stages (a run, then fine-tuning
runs started with ``--init-from``): ``<name>.metrics.json`` holds the last stage's config, epochs and final
metrics and, under ``stages``, every stage's config, per-epoch history and final metrics; ``<name>.training.png``
shows all stages one after the other (iterations and epochs numbered on from the stage before).

    python training-runs/combine_stages.py OUT_DIR NAME STAGE1.pt STAGE2.pt [...]   # the last is the shipped model

Each stage's per-epoch test accuracy is at that stage's evaluation T (its config's ``eval_steps``): pass a
stage's own training checkpoint (``last.pt`` of its run), not a copy re-saved at another T.
"""
import argparse
import json
from pathlib import Path

from qsnn_deploy.checkpoint import load_checkpoint
from qsnn_deploy.train.history import unpack_steps
from qsnn_deploy.train.plots import plot_training

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("name")
p.add_argument("stages", nargs="+")
a = p.parse_args()
steps, epochs, stages = [], [], []
for path in a.stages:
    ck = load_checkpoint(path)
    hist = ck["train_state"]["history"]
    it0, ep0 = (steps[-1]["iteration"] + 1 if steps else 0), (epochs[-1]["epoch"] if epochs else 0)
    steps += [{**s, "iteration": s["iteration"] + it0} for s in unpack_steps(hist["steps"])]
    epochs += [{**e, "epoch": e["epoch"] + ep0} for e in hist["epochs"]]
    stages.append({"checkpoint": Path(path).name, "config": ck["config"], "epochs": hist["epochs"],
                   "final": ck.get("metrics") or {}})
last = stages[-1]
evals = ", ".join(f"stage {i + 1}: epochs {sum(len(s['epochs']) for s in stages[:i]) + 1}-"
                  f"{sum(len(s['epochs']) for s in stages[:i + 1])} trained at T={s['config']['num_steps']}, "
                  f"tested at T={s['config']['eval_steps']}"
                  for i, s in enumerate(stages))
doc = {"config": last["config"], "epochs": last["epochs"], "final": last["final"],
       "note": f"trained in {len(stages)} stages (each later one with --init-from the one before); "
               f"training.png shows all of them; test accuracy per epoch: {evals}",
       "stages": stages}
out = Path(a.out)
out.mkdir(parents=True, exist_ok=True)
tmp = out / f"{a.name}.metrics.json.tmp"
tmp.write_text(json.dumps(doc, indent=2) + "\n")
tmp.replace(out / f"{a.name}.metrics.json")
loss_label = {"ce_count": "spike-count cross entropy"}.get(last["config"].get("loss"), "spike-count MSE loss")
plot_training(steps, epochs, out / f"{a.name}.training.png", loss_label=loss_label,
              title=f"{last['config']['dataset']} {last['config']['precision']}, {len(stages)} stages ({evals})")
print(f"wrote {out / (a.name + '.metrics.json')} and {out / (a.name + '.training.png')}")
