"""Where the repeat-copy NTM's errors sit beyond the training repeats: in the replayed vectors or the end marker?

The paper says its NTM generalises to more repeats but misplaces the end marker. For each kept checkpoint of the
experiment's best NTM (``ntm-sgc`` at its chosen lr) this scores the experiment's own grid sequences (128 per
cell, the generator of ``benchmarks.evaluate.grid_rng``, as ``grid.png``) and splits each sequence's bit errors into

- replay: wrong bits among the 8 data bits of the ``L * R`` replayed vectors (also per repeat: the first
  ``max_repeats`` passes against the later ones),
- marker: wrong bits of the end-marker channel over all ``L * R + 1`` scored output steps,

and says where the marker fires (its largest logit over the scored steps): at step ``L * R`` (right), earlier,
or nowhere above 0. Writes ``where_errors.csv`` beside this file.

    python results/ntm_paper/repeat_copy/where_errors.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from agents import load_checkpoint
from benchmarks.evaluate import grid_rng
from memtasks import make_task

HERE = Path(__file__).resolve().parent
CHECKPOINTS = sorted(HERE.glob("cells/RepeatCopy-v0__ntm-sgc__lr0.01__seed*/model.pt"))
LENGTHS = (5, 10)
REPEATS = (10, 15, 20)
SAMPLES, SEED = 128, 2014


def main() -> None:
    torch.set_num_threads(1)
    rows = []
    for path in CHECKPOINTS:
        agent, task_id, task_kwargs = load_checkpoint(path, device="cpu")
        agent.eval()
        task = make_task(task_id, **task_kwargs)
        bits, trained = task.bits, task.max_repeats
        for L in LENGTHS:
            for R in REPEATS:
                batch = task.sample(SAMPLES, grid_rng(SEED, L, R), length=L, repeats=R)
                with torch.no_grad():
                    logits = agent(torch.as_tensor(batch.inputs)).numpy()  # (B, T, bits + 1)
                wrong = ((logits > 0) != (batch.targets > 0.5)) & (batch.mask[..., None] > 0)  # (B, T, bits + 1)
                start = L + 2  # first output step
                replay = wrong[:, start : start + L * R, :bits].sum(axis=2)  # (B, L*R): wrong data bits per step
                marker_logit = logits[:, start : start + L * R + 1, bits]  # (B, L*R + 1)
                fires = marker_logit.argmax(axis=1)
                rows.append({
                    "checkpoint": path.parent.name, "length": L, "repeats": R,
                    "bit_errors": wrong.sum() / SAMPLES,
                    "replay_errors": replay.sum() / SAMPLES,
                    "replay_errors_first_passes": replay[:, : L * trained].sum() / SAMPLES,
                    "replay_errors_later_passes": replay[:, L * trained :].sum() / SAMPLES,
                    "marker_errors": wrong[..., bits].sum() / SAMPLES,
                    "marker_right": float(np.mean((fires == L * R) & (marker_logit.max(axis=1) > 0))),
                    "marker_early": float(np.mean(fires < L * R)),
                    "marker_none": float(np.mean(marker_logit.max(axis=1) <= 0)),
                })  # fmt: skip
    table = pd.DataFrame(rows)
    table.to_csv(HERE / "where_errors.csv", index=False, float_format="%.4g")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3g}"))


if __name__ == "__main__":
    main()
