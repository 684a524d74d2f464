"""How much of the dynamic N-gram NTMs' cost comes from their memory: every NTM checkpoint of the dynamic N-gram
runs found on this machine, scored on its experiment's own test sequences (its eval lengths, samples, seed and
batch size) as trained and with memory writes disabled (``ablate_writes``: the memory stays at its initial
value, so every read returns the same vector and the controller works from its own state alone).

    python results/ntm_paper/dynamic_ngrams_ablation/ablate.py    # ablation.csv and the table in README.md
    python results/ntm_paper/dynamic_ngrams_ablation/ablate.py --agents ntm-sgc-lm   # only these agents' rows

Checkpoints are git-ignored except a few committed ones; a cell without one here is skipped (and said so).
With ``--agents`` only those agents' rows are scored again, the other rows of ablation.csv are kept as they are
(their checkpoints need not be on this machine).
"""

import argparse
import dataclasses
import json
from pathlib import Path

import pandas as pd
import torch

from agents import load_checkpoint
from benchmarks.evaluate import evaluate
from benchmarks.tables import markdown_table
from memtasks import make_task

HERE = Path(__file__).resolve().parent
FOLDERS = ("dynamic_ngrams", "dynamic_ngrams_192k", "dynamic_ngrams_192k_decay")


def main() -> None:
    parser = argparse.ArgumentParser(description="NTM costs with memory writes disabled")
    parser.add_argument("--agents", nargs="+", help="score only these agents, keep ablation.csv's other rows")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    kept = None
    if args.agents:
        kept = pd.read_csv(HERE / "ablation.csv")
        kept = kept[~kept["agent"].isin(args.agents)]
    for folder in FOLDERS:
        root = HERE.parent / folder
        manifest = json.loads((root / "experiment.json").read_text())
        for cell in manifest["cells"]:
            if not cell["agent"].startswith("ntm") or cell.get("status") not in ("ok", "converged"):
                continue
            if args.agents and cell["agent"] not in args.agents:
                continue
            path = root / "cells" / cell["cell"] / "model.pt"
            if not path.exists():
                print(f"{folder}: {cell['cell']}: no model.pt here, skipped", flush=True)
                continue
            setup = cell["eval"]
            agent, task_id, task_kwargs = load_checkpoint(path, device="cpu")
            task = make_task(task_id, **task_kwargs)
            trained = agent.core.config
            row = {"experiment": folder, "agent": cell["agent"], "lr": cell["lr"], "seed": cell["seed"]}
            ablated = dataclasses.replace(trained, ablate_writes=True)
            for label, config in (("as trained", trained), ("writes disabled", ablated)):
                agent.core.config = config  # read at every step
                frame = evaluate(agent, task, setup["lengths"], setup["samples"], setup["seed"], setup["batch_size"])
                row[label] = float(frame[frame["metric"] == "cost_bits"]["value"].mean())
            agent.core.config = trained
            rows.append(row)
            print(row, flush=True)
    data = pd.DataFrame(rows)
    data["ablation costs"] = data["writes disabled"] - data["as trained"]
    if kept is not None:  # grouped by folder as a full run orders them, the kept rows first within each
        data = pd.concat([kept, data], ignore_index=True)
        data = data.sort_values("experiment", key=lambda c: c.map(FOLDERS.index), kind="stable")
    data.to_csv(HERE / "ablation.csv", index=False)
    table = markdown_table(
        ["experiment", "agent", "lr", "seed", "cost as trained", "cost, writes disabled", "difference"],
        [[r.experiment, f"`{r.agent}`", f"{r.lr:g}", str(int(r.seed)), f"{r['as trained']:.1f}",
          f"{r['writes disabled']:.1f}", f"{r['ablation costs']:+.1f}"] for _, r in data.iterrows()],
    )
    readme = HERE / "README.md"
    text = readme.read_text() if readme.exists() else ""
    start, end = "<!-- table -->", "<!-- /table -->"
    if start in text:
        text = text[: text.index(start) + len(start)] + "\n" + table + "\n" + text[text.index(end):]
        readme.write_text(text)
    print(table)


if __name__ == "__main__":
    main()
