"""Per-step trace of one priority-sort run around a window of steps: what each Adam step did to the weights.

Re-runs a finished cell's training (its result.json ``config``, with ``steps`` cut to the end of the window and
no selection: selection never changes training) and logs, for every optimizer step inside the window, the loss,
the gradient norm after clipping, the norm of the whole update and, per parameter tensor, the relative update
``||delta|| / ||theta||``. Everything else is :func:`benchmarks.train.train` as it ran (compiled step, one
thread), so the run follows the cell's trajectory; the script checks that against the cell's train.csv.

    python results/ntm_paper/priority_sort_384k_select/collapse/trace.py CELL_DIR FIRST LAST OUT.csv
"""

import csv
import json
import sys
from pathlib import Path

import pandas as pd
import torch

import benchmarks.train as trainer


def main(cell: Path, first: int, last: int, out: Path) -> None:
    config = json.loads((cell / "result.json").read_text())["config"]
    config.update(steps=last, select_every=None)
    rows: list[dict] = []
    make = trainer.make_optimizer

    def traced(*args, **kwargs):
        optimizer = make(*args, **kwargs)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        names = {id(p): f"p{i}:{tuple(p.shape)}" for i, p in enumerate(params)}
        step_fn, count = optimizer.step, [0]

        def step(*a, **k):
            count[0] += 1
            if not first <= count[0] <= last:
                return step_fn(*a, **k)
            before = [p.detach().clone() for p in params]
            grads = [p.grad for p in params if p.grad is not None]
            grad_norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))
            result = step_fn(*a, **k)
            deltas = [p.detach() - b for p, b in zip(params, before)]
            update = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(d) for d in deltas])))
            rel = [(float(torch.linalg.vector_norm(d) / (torch.linalg.vector_norm(b) + 1e-12)), names[id(p)])
                   for d, b, p in zip(deltas, before, params)]
            top = max(rel)
            rows.append({"step": count[0], "grad_norm_clipped": grad_norm, "update_norm": update,
                         "max_relative_update": top[0], "max_relative_update_param": top[1]})
            return result

        optimizer.step = step
        return optimizer

    trainer.make_optimizer = traced
    losses: dict[int, torch.Tensor] = {}  # step -> loss (one call per training step; nothing else calls it)
    sequence_loss, calls = trainer.sequence_loss, [0]

    def logged_loss(*a, **k):
        loss = sequence_loss(*a, **k)
        calls[0] += 1
        if first <= calls[0] <= last:
            losses[calls[0]] = loss.detach()
        return loss

    trainer.sequence_loss = logged_loss
    result = trainer.train(trainer.TrainConfig(**config), out.parent / "run", progress=False)
    by_step = {step: float(loss) for step, loss in losses.items()}
    for row in rows:
        row["loss"] = by_step.get(row["step"])
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    mine = pd.read_csv(out.parent / "run" / "train.csv").drop(columns="wall_s")
    cell_log = pd.read_csv(cell / "train.csv").drop(columns="wall_s")
    same = mine.equals(cell_log[cell_log["step"] <= last].reset_index(drop=True))
    print(f"{result.status}: {len(rows)} steps traced; train.csv equal to the cell's up to step {last}: {same}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
