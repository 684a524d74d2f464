"""Pictures of what a trained agent does inside one sequence: ``memtasks viz CHECKPOINT``.

- **Bit tasks** (the NTM paper's five): the tape (inputs, targets, the agent's outputs, wrong bits marked),
  then every quantity the core records per step (:meth:`agents.base.Core.trace_step`): for the NTM, each
  head's write and read weighting over locations and time, and the memory left at the end (the paper's
  figures 6, 8, 11 and 15). Locations are cropped to the rows any head visited.
- **Token tasks** (bAbI): one question, the story sentences the memory holds when it is asked, and MemN2N's
  attention over them per hop, with the predicted and the true answer (the MemN2N paper's Table 1).

The sequence is ``task.sample(1, numpy.random.default_rng(seed), length=...)``, so a figure is reproducible
from the checkpoint, the seed and the length; the checkpoint's task is rebuilt with its recorded settings
(``--split test`` switches a bAbI task to its test stories).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from agents import Agent, load_checkpoint
from benchmarks.provenance import resolved_task_kwargs
from memtasks import make_task
from memtasks.core import Batch, Task

__all__ = ["attention_figure", "tape_figure", "trace", "visualise"]


@torch.no_grad()
def trace(agent: Agent, batch: Batch, stop: int | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Step ``agent`` through sample 0 of ``batch`` (up to step ``stop``, exclusive; default all).

    Returns:
        ``logits`` (T, output_size) and ``inside``: name -> array (T, ...) of what the core recorded per step.
    """
    was_training = agent.training
    agent.eval()
    try:
        inputs = torch.as_tensor(batch.inputs[:1])
        steps = inputs.shape[1] if stop is None else stop
        state = agent.initial_state(1)
        logits, inside = [], {}
        for t in range(steps):
            y, state, rec = agent.trace_step(inputs[:, t], state)
            logits.append(y[0].float().cpu().numpy())
            for name, value in rec.items():
                inside.setdefault(name, []).append(value[0].float().cpu().numpy())
    finally:
        agent.train(was_training)
    return np.stack(logits), {name: np.stack(values) for name, values in inside.items()}


def _visited(weightings: list[np.ndarray], threshold: float = 0.05, margin: int = 2) -> slice:
    """The location rows any weighting put more than ``threshold`` on, with a margin."""
    hot = np.zeros(weightings[0].shape[-1], dtype=bool)
    for w in weightings:
        hot |= (w > threshold).reshape(-1, w.shape[-1]).any(axis=0)
    rows = np.flatnonzero(hot)
    if rows.size == 0:
        return slice(0, hot.size)
    return slice(max(0, rows[0] - margin), min(hot.size, rows[-1] + margin + 1))


def tape_figure(task: Task, batch: Batch, logits: np.ndarray, inside: dict[str, np.ndarray], title: str):
    """The tape and the core's per-step weightings and final memory for a bit task (a matplotlib Figure)."""
    import matplotlib.pyplot as plt

    inputs = batch.inputs[0]  # (T, input_size)
    targets = batch.targets[0]  # (T, output_size)
    scored = batch.mask[0] > 0  # (T,)
    outputs = 1 / (1 + np.exp(-logits))  # (T, output_size)
    wrong = ((outputs > 0.5) != (targets > 0.5)) & scored[:, None]

    weightings = {k: v for k, v in inside.items() if v.ndim == 3 and k != "memory"}  # (T, heads, N)
    memory = inside.get("memory")  # (T, M, N), location-last
    rows = _visited(list(weightings.values())) if weightings else None
    panels = [("inputs", inputs.T), ("targets", np.where(scored[:, None], targets, np.nan).T),
              ("outputs", np.where(scored[:, None], outputs, np.nan).T)]
    n_tape = len(panels)
    for name, w in weightings.items():
        for h in range(w.shape[1]):
            label = name if w.shape[1] == 1 else f"{name}, head {h + 1}"
            panels.append((label, w[:, h, rows].T))
    n_heads = sum(w.shape[1] for w in weightings.values())
    # 0.12 in per location, but many heads share about 36 in (an 8-head NTM would otherwise draw 120 in)
    per_head = 0.12 if n_heads <= 2 else min(0.12, 36.0 / n_heads / max(1, (rows.stop - rows.start)))
    heights = [max(2.0, p[1].shape[0] * (0.12 if i < n_tape else per_head)) for i, p in enumerate(panels)]
    n_mem = 1 if memory is not None else 0
    fig_w = min(16.0, 3.0 + 0.22 * inputs.shape[0])
    fig, axes = plt.subplots(
        len(panels) + n_mem, 1, figsize=(fig_w, sum(heights) + 3.0 * n_mem + 1),
        gridspec_kw={"height_ratios": heights + [3.0] * n_mem}, squeeze=False,
    )
    axes = axes[:, 0]
    for ax, (label, image) in zip(axes, panels):
        is_weighting = label not in ("inputs", "targets", "outputs")
        extent = None
        if is_weighting and rows is not None:  # y axis: the real location numbers
            extent = (-0.5, image.shape[1] - 0.5, rows.stop - 0.5, rows.start - 0.5)
        ax.imshow(image, aspect="auto", cmap="viridis" if is_weighting else "Greys", vmin=0, vmax=1,
                  interpolation="nearest", extent=extent)
        ax.set_ylabel("location" if is_weighting else "bit")
        ax.set_title(label, fontsize=9, loc="left")
        if label == "outputs" and wrong.any():
            t, c = np.nonzero(wrong)
            ax.scatter(t, c, marker="x", color="red", s=16, linewidths=1, label="wrong bit")
            ax.legend(loc="upper left", fontsize=7, frameon=False)
        ax.set_xlabel("time step" if ax is axes[len(panels) - 1] else "")
    if memory is not None:
        ax = axes[-1]
        final = memory[-1][:, rows] if rows is not None else memory[-1]  # (M, rows)
        limit = float(np.abs(final).max()) or 1.0
        start = rows.start if rows is not None else 0
        im = ax.imshow(final, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest",
                       extent=(start - 0.5, start + final.shape[1] - 0.5, final.shape[0] - 0.5, -0.5))
        ax.set_title("memory after the last step (width x location)", fontsize=9, loc="left")
        ax.set_xlabel("location")
        ax.set_ylabel("width")
        fig.colorbar(im, ax=ax, fraction=0.02, pad=0.01)
    fig.suptitle(title, fontsize=10)
    from benchmarks.plots import tight_under_title  # matplotlib is imported only where a figure is drawn

    tight_under_title(fig)  # in a tall figure a plain tight_layout puts the title on the first panel
    return fig


def _words(task: Task, frame: np.ndarray) -> str:
    vocab = task.spec.vocab or ()
    return " ".join(vocab[i] for i in frame if i)


def attention_figure(task: Task, batch: Batch, step: int, logits: np.ndarray, attention: dict[str, np.ndarray],
                     title: str):
    """Attention per hop over the memory's sentences for the question at ``step`` (a matplotlib Figure)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    hops = list(attention)
    weights = np.stack([attention[h][step] for h in hops], axis=1)  # (M, hops): slot j = frame step-1-j
    held = min(step, weights.shape[0])
    frames = [step - 1 - j for j in range(held)][::-1]  # oldest first, as the story reads
    table = weights[:held][::-1]  # (held, hops)
    scored = batch.mask[0] > 0
    labels = [("Q: " if scored[t] else "") + _words(task, batch.inputs[0, t]) for t in frames]
    classes = task.spec.classes or ()
    truth = classes[int(batch.targets[0, step])]
    said = classes[int(np.argmax(logits[step]))]

    fig, ax = plt.subplots(figsize=(2.2 + 1.1 * len(hops) + 0.09 * max(map(len, labels), default=10),
                                    1.6 + 0.32 * held))
    sns.heatmap(table, ax=ax, cmap="Blues", vmin=0, vmax=max(1e-6, float(table.max())), annot=True, fmt=".2f",
                cbar=False, xticklabels=hops, yticklabels=labels, linewidths=0.5, linecolor="white")
    ax.tick_params(axis="y", labelrotation=0, labelsize=8)
    ax.xaxis.tick_top()
    verdict = "correct" if said == truth else "wrong"
    ax.set_xlabel(f"Q: {_words(task, batch.inputs[0, step])}    answer: {truth}    predicted: {said} ({verdict})")
    ax.set_title(title, fontsize=10, pad=24)
    fig.tight_layout()
    return fig


def visualise(
    checkpoint: str | Path,
    out: str | Path,
    *,
    length: int | None = None,
    seed: int = 0,
    question: int = -1,
    split: str | None = None,
    device: str = "cpu",
) -> Path:
    """Draw the figure of ``checkpoint`` for one sampled sequence into ``out`` (a .png/.pdf/.svg path)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agent, task_id, task_kwargs = load_checkpoint(checkpoint, device=device)
    if split is not None:
        if "split" not in resolved_task_kwargs(task_id, task_kwargs):
            raise ValueError(f"--split applies to tasks with splits (bAbI); {task_id} has none")
        task_kwargs = dict(task_kwargs, split=split)
    task = make_task(task_id, **task_kwargs)
    batch = task.sample(1, np.random.default_rng(seed), length=length)
    name = f"{agent.name} on {task_id}"
    if task.spec.output_kind == "bits":
        logits, inside = trace(agent, batch)
        fig = tape_figure(task, batch, logits, inside, f"{name}, length {int(batch.lengths[0])}, seed {seed}")
    else:
        asked = np.flatnonzero(batch.mask[0] > 0)
        if not -len(asked) <= question < len(asked):
            raise ValueError(f"--question must be in [{-len(asked)}, {len(asked) - 1}] for this story "
                             f"({len(asked)} question(s)), got {question}")
        step = int(asked[question])
        logits, inside = trace(agent, batch, stop=step + 1)
        attention = {k: v for k, v in inside.items() if v.ndim == 2}
        if not attention:
            raise ValueError(f"agent {agent.name!r} records no attention over sentences; for bAbI, memtasks viz "
                             "draws agents whose trace_step returns per-hop attention (memn2n)")
        fig = attention_figure(task, batch, step, logits, attention, f"{name}, story seed {seed}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def cli(argv: list[str]) -> int:
    """Draw what a checkpoint does inside one sequence (weightings, memory, attention).

    ``memtasks viz CHECKPOINT [--length L] [--seed S] [--question K] [--split test] [--out fig.png]``.
    """
    parser = argparse.ArgumentParser(
        prog="memtasks viz",
        description="Draw a checkpoint's tape and weightings (bit tasks) or attention per hop (bAbI) "
        "for one sequence task.sample(1, default_rng(seed), length).",
    )
    parser.add_argument("checkpoint", help="a model.pt written by memtasks train/run")
    parser.add_argument("--length", type=int, default=None, help="sequence length (bit tasks; default: drawn)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sequence (default 0)")
    parser.add_argument("--question", type=int, default=-1,
                        help="bAbI: which question of the story, 0-based; negative counts from the end (default -1)")
    parser.add_argument("--split", default=None, help="bAbI: the split to draw the story from (e.g. test)")
    parser.add_argument("--device", default="cpu", help="device to run the model on (default cpu)")
    parser.add_argument("--out", default=None, help="figure path (default: viz.png beside the checkpoint)")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path(args.checkpoint).with_name("viz.png")
    path = visualise(args.checkpoint, out, length=args.length, seed=args.seed, question=args.question,
                     split=args.split, device=args.device)
    print(f"wrote {path}")
    return 0
