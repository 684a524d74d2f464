"""Training cost of the 192k dynamic N-gram probes with and without the learning-rate halving, one panel per agent
and lr.

Reads each cell's train.csv (``cost_bits``: bits per 200-bit sequence of the training batches, logged every
100 steps) from ``../dynamic_ngrams_192k`` (constant lr) and this folder (lr halved every 48k sequences), and
draws it against sequences seen (the learned-memory NTM, ``ntm-sgc-lm``, ran with the halving only), with the Bayes-optimal cost of training-range sequences and 2 bits above it.

    python results/ntm_paper/dynamic_ngrams_192k_decay/compare.py

It also prints, per run, the mean logged training cost around steps 2,000 and 3,000 and over the last 1,000.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FuncFormatter

from benchmarks.plots import save_figure, tight_under_title

HERE = Path(__file__).resolve().parent
RUNS = {"lr constant": HERE.parent / "dynamic_ngrams_192k", "lr halved every 48k": HERE}
CELLS = {
    "ntm-sgc, lr 1e-2": "DynamicNGrams-v0__ntm-sgc__lr0.01__seed{seed}",
    "ntm-sgc, lr 3e-3": "DynamicNGrams-v0__ntm-sgc__lr0.003__seed{seed}",  # halved schedule only
    "lstm, lr 3e-3": "DynamicNGrams-v0__lstm__lr0.003__seed{seed}",
    # the clamped NTM with a learned memory started from noise (memory_init_std 0.1), halved schedule only
    "ntm-sgc-lm, lr 1e-2": "DynamicNGrams-v0__ntm-sgc-lm__lr0.01__seed{seed}",
    "ntm-sgc-lm, lr 3e-3": "DynamicNGrams-v0__ntm-sgc-lm__lr0.003__seed{seed}",
}
PALETTE = dict(zip(RUNS, sns.color_palette(n_colors=len(RUNS))))
OPTIMAL = 132.7  # the learning curves' Bayes-optimal line (benchmarks.plots: 1,024 training-range sequences)


def main() -> None:
    frames = []
    for schedule, folder in RUNS.items():
        for agent, pattern in CELLS.items():
            for seed in (0, 1, 2):  # a cell that was not run has no file
                path = folder / "cells" / pattern.format(seed=seed) / "train.csv"
                if path.exists():
                    frame = pd.read_csv(path)[["sequences_seen", "cost_bits"]]
                    frames.append(frame.assign(schedule=schedule, agent=agent, seed=seed))
    data = pd.concat(frames, ignore_index=True)
    # how fast each run gets where: mean logged training cost over the log rows within 500 steps of step 2,000
    # and of 3,000 (32k and 48k sequences), and over the last 1,000 steps (from 176k sequences on)
    steps = data["sequences_seen"] // 16
    summary = data.assign(
        around_2000=data["cost_bits"].where((steps - 2000).abs() <= 500),
        around_3000=data["cost_bits"].where((steps - 3000).abs() <= 500),
        last_1000=data["cost_bits"].where(steps > 11000),
    ).groupby(["schedule", "agent", "seed"])[["around_2000", "around_3000", "last_1000"]].mean()
    print(summary.round(1).to_string())
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.4), sharey=True)
    axes = axes.ravel()
    for ax in axes[len(CELLS):]:
        ax.set_visible(False)
    for ax, agent in zip(axes, CELLS):
        part = data[data["agent"] == agent]
        sns.lineplot(part, x="sequences_seen", y="cost_bits", hue="schedule", style="seed", ax=ax, linewidth=1.1,
                     estimator=None, units=None, palette=PALETTE)  # one colour per schedule in every panel
        ax.axhline(OPTIMAL, color="black", linewidth=1, linestyle="--", label="Bayes-optimal (132.7)")
        ax.axhline(OPTIMAL + 2, color="grey", linewidth=1, linestyle=":", label="Bayes-optimal + 2")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x / 1000:.0f}k"))
        ax.set_ylim(128, 175)
        ax.set_title(agent)
        ax.set_xlabel("sequences seen")
        ax.set_ylabel("training cost, bits per sequence")
        ax.legend(fontsize=7)
    fig.suptitle("Dynamic 6-grams at 192k sequences: constant lr vs lr halved every 48k (training batches, "
                 "every 100 steps; axis cut at 175)", fontsize=10)
    tight_under_title(fig)
    print(save_figure(fig, HERE / "compare.png"))


if __name__ == "__main__":
    main()
