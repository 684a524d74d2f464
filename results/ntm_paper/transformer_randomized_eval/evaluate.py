"""The randomized-position Transformer's NTM-paper cells, scored with both of its evaluation modes.

In training, ``positional = "randomized"`` gives a sequence of ``T`` steps a sorted random subset of
``range(max_positions)`` (1,024) as positions; in evaluation the experiments use the default
``randomized_eval = "ordered"`` (positions ``0..T-1``), which a model trained on spread-out positions has never
seen. ``"sample"`` draws a sorted random subset at test time too (seeded), as Ruoss et al.'s code evaluates.
This re-scores every finished cell's checkpoint found on this machine (they are not committed) both ways on the experiment's own test sequences (its eval
lengths, samples, seed and batch size), and writes ``scores.csv`` and ``README.md``'s table.

    python results/ntm_paper/transformer_randomized_eval/evaluate.py
"""

import json
import statistics
from pathlib import Path

import pandas as pd
import torch

from agents import load_checkpoint
from benchmarks.evaluate import evaluate
from benchmarks.tables import markdown_table
from memtasks import make_task

HERE = Path(__file__).resolve().parent
TASKS = {"copy": "bit_errors", "associative_recall": "bit_errors", "dynamic_ngrams": "cost_bits",
         "priority_sort": "cost_bits"}  # the metric each task's verdict reads


def main() -> None:
    torch.set_num_threads(1)
    rows = []
    for folder, metric in TASKS.items():
        root = HERE.parent / folder
        manifest = json.loads((root / "experiment.json").read_text())
        for cell in manifest["cells"]:
            path = root / "cells" / cell["cell"] / "model.pt"
            if cell["agent"] != "transformer-randomized" or cell.get("status") not in ("ok", "converged"):
                continue
            if not path.exists():  # checkpoints are not committed: only cells trained on this machine have one
                print(f"{folder}: {cell['cell']}: no model.pt here, skipped", flush=True)
                continue
            setup = cell["eval"]
            agent, task_id, task_kwargs = load_checkpoint(path, device="cpu")
            task = make_task(task_id, **task_kwargs)
            stored = pd.read_csv(path.parent / "eval.csv")
            stored = stored[(stored["metric"] == metric) & (stored["split"] == "test")]
            for mode in ("ordered", "sample"):  # the mode is read at every forward call: one agent serves both
                agent.core.randomized_eval = mode
                frame = evaluate(agent, task, setup["lengths"], setup["samples"], setup["seed"],
                                 batch_size=setup["batch_size"])
                for _, r in frame[frame["metric"] == metric].iterrows():
                    reported = stored[stored["length"] == r["length"]]["value"]
                    rows.append({"task": folder, "lr": cell["lr"], "seed": cell["seed"], "mode": mode,
                                 "length": int(r["length"]), "metric": metric, "value": float(r["value"]),
                                 "reported": float(reported.iloc[0]) if len(reported) else float("nan")})
        print(folder, "done", flush=True)
    data = pd.DataFrame(rows)
    data.to_csv(HERE / "scores.csv", index=False)
    ordered = data[data["mode"] == "ordered"]
    largest = (ordered["value"] - ordered["reported"]).abs().max()
    print("largest |ordered - eval.csv| over all cells and lengths:", largest)
    table = []
    for (folder, lr, length), part in data.groupby(["task", "lr", "length"], sort=False):
        by = {m: part[part["mode"] == m].sort_values("seed")["value"].tolist() for m in ("ordered", "sample")}
        table.append([folder, f"{lr:g}", str(length), TASKS[folder], *(
            f"{statistics.median(v):.3g} ({min(v):.3g}-{max(v):.3g})" for v in by.values())])
    print(markdown_table(["task", "lr", "length", "metric", "ordered (as reported)", "sample"], table))


if __name__ == "__main__":
    main()
