"""Refresh docs/training.md's per-epoch tables of the issue-28 runs from training-runs/*/epochs.json.

    python training-runs/snapshot.py /work/runs/fmnist_q4 training-runs/fmnist_q4     # and mnist_t100(_s1)
    python training-runs/fill_docs.py

Tables: fmnist_q4 (test), mnist_t100 from epoch 31 (test and validation), mnist_t100_s1 beside mnist_t100
(test, at the same epochs).

The prose beside the tables (which epochs, what they show) is written by hand.
"""
import json
from pathlib import Path
root = Path(__file__).resolve().parents[1]
doc = root / "docs/training.md"
s = doc.read_text()
fm = json.loads((root / "training-runs/fmnist_q4/epochs.json").read_text())["epochs"]
mn = json.loads((root / "training-runs/mnist_t100/epochs.json").read_text())["epochs"]
pct = lambda x: f"{100 * x:.2f}"
# Per-epoch tables in rows of at most 15 epochs; the candidates fixed in advance (ends of the descents) in bold
CANDIDATES = (10, 30, 50, 70)
cell = lambda e: f"**{pct(e['test_accuracy'])}**" if e["epoch"] in CANDIDATES else pct(e["test_accuracy"])
def tables(eps, rows):
    """Markdown tables of at most 15 epochs each; rows: (label, epoch record -> cell text)."""
    out = []
    for i in range(0, len(eps), 15):
        chunk = eps[i:i + 15]
        out.append("  | epoch | " + " | ".join(str(e["epoch"]) for e in chunk) + " |")
        out.append("  |---|" + "---|" * len(chunk))
        out += ["  | " + label + " | " + " | ".join(text(e) for e in chunk) + " |" for label, text in rows]
        out.append("")
    return "\n".join(out[:-1])
MNIST_HEADING = "### The paper's 99.31% on MNIST"
mnist_at = s.index(MNIST_HEADING)
# FashionMNIST (its section comes before MNIST's): every table chunk up to the paragraph after them
start = s.index("  | epoch | 1 | 2 | 3 | 4 | 5 |")
end = s.index("  With no validation split", start)
assert end < mnist_at, "the FashionMNIST tables are expected before the MNIST section"
s = s[:start] + tables(fm, [("test", cell)]) + "\n\n" + s[end:]
# MNIST: one table for epochs 31.., right after its epochs 16-30 table (searched from the MNIST heading on)
mnist_at = s.index(MNIST_HEADING)
rows = [e for e in mn if e["epoch"] > 30]
if rows:
    t = ("  | epoch | " + " | ".join(str(e["epoch"]) for e in rows) + " |\n  |---|" + "---|" * len(rows) + "\n"
         "  | test | " + " | ".join(pct(e["test_accuracy"]) for e in rows) + " |\n"
         "  | validation | " + " | ".join(pct(e["val_accuracy"]) for e in rows) + " |\n")
    a = s.index("  | epoch | 16 | 17 |", mnist_at)
    b = s.index("\n\n", a) + 2
    if s[b:].startswith("  | epoch | 31"):
        c = s.index("\n\n", b) + 2
        s = s[:b] + t + "\n" + s[c:]
    else:
        s = s[:b] + t + "\n" + s[b:]
# MNIST second trial (seed 1): its test accuracy per epoch beside seed 0's (mnist_t100) at the same epoch, in rows
# of 15 epochs after the "A second trial is under way" bullet's prose; the declared candidates in bold
s1_path = root / "training-runs/mnist_t100_s1/epochs.json"
if s1_path.exists():
    s1 = json.loads(s1_path.read_text())["epochs"]
    seed0 = {e["epoch"]: e["test_accuracy"] for e in mn}
    rows_s1 = tables(s1, [("seed 1, 60,000 images", cell),
                          ("seed 0, 55,000 images", lambda e: pct(seed0[e["epoch"]]) if e["epoch"] in seed0 else "")])
    a = s.index("- **A second trial is under way**")
    a = s.index("\n\n", a) + 2  # the tables follow the bullet's first paragraph
    b = s.index("  Best test epoch so far", a)
    s = s[:a] + rows_s1 + "\n\n" + s[b:]
doc.write_text(s)
print("fmnist", [(e["epoch"], pct(e["test_accuracy"])) for e in fm[10:]])
print("mnist", [(e["epoch"], pct(e["test_accuracy"]), pct(e["val_accuracy"])) for e in rows])
