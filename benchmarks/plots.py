"""Plots of an experiment, drawn with seaborn from its ``runs.csv`` (and, if present, ``experiment.json``).

``memtasks plot results/<experiment>`` (re)draws, next to runs.csv:

- ``generalisation.png``: one row per task. Left, the score against the test
  length (the leaderboard's score, :func:`benchmarks.leaderboard.task_score`): bit
  errors per sequence for bit-output tasks, the cost per sequence for tasks
  registered to be ranked by it (dynamic N-grams, priority sort), error % for
  class-output tasks (bAbI); right, sequence accuracy (the fraction of test sequences without
  a single mistake). One line per agent: the mean over seeds, with a band of
  ±1 standard deviation over seeds. The training range is shaded and the longest
  training length marked with a dashed line (from experiment.json; left out if
  it is missing). The score axis is symmetric-log when the values span more
  than two orders of magnitude, so a perfect 0 stays on the plot.
- ``learning.png``: one panel per task: the training cost per sequence
  (``cost_bits``, the binary cross-entropy summed over a sequence, in bits; for
  class tasks ``cost_nats``, cross-entropy per answer in nats) against training
  sequences seen, one line per seed (runs stop at different points, so a mean
  would jump where one stops); log scale when it spans more than two orders of
  magnitude, and a log x axis when some runs stop over 5x earlier than others.
  Each seed's log is smoothed with a running mean to about
  :data:`SMOOTH_POINTS` points (window chosen per run; the title gives the
  largest), and a seed's last row is left out when it averages less than
  half a log interval (a run cut by its time budget); runs.csv keeps every row.

- ``grid.png`` (only for experiments with an ``[eval] grid``, e.g. repeat copy's repeats): a heatmap per
  task and agent of the bit errors per sequence over test length x the option's value, mean over seeds at the
  lr chosen on validation, the training range outlined.

Agent colours are the same in both figures; legends give each agent's parameter count.
"""

from __future__ import annotations

import argparse
import sys
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from benchmarks.leaderboard import best_lrs, task_score  # noqa: E402
from benchmarks.results import read_manifest, read_runs  # noqa: E402
from memtasks.atomic import atomic_open  # noqa: E402

__all__ = [
    "BAND", "SMOOTH_POINTS", "cli", "plot_experiment", "plot_generalisation", "plot_learning", "save_figure",
    "tight_under_title",
]

BAND = "sd"
"""seaborn ``errorbar`` of every band: ±1 standard deviation over seeds (stated in each figure)."""

_BAND_WORDS = "line = mean over seeds, band = ±1 sd over seeds"


def _task_name(task: str) -> str:
    return task.split("/", 1)[-1]


def _agents_in_order(runs: pd.DataFrame, manifest: dict[str, Any] | None) -> list[str]:
    listed = list((manifest or {}).get("agents", {}))
    return [a for a in listed if a in set(runs["agent"])] + [a for a in runs["agent"].unique() if a not in listed]


def _palette(agents: list[str]) -> dict[str, Any]:
    colours = sns.color_palette("colorblind", n_colors=max(len(agents), 3))
    return dict(zip(agents, colours))


def _legend_labels(manifest: dict[str, Any] | None, task: str, runs: pd.DataFrame) -> dict[str, str]:
    """``agent -> "agent (12.3k params, 3 seeds)"`` from experiment.json (fallback: seeds from runs.csv)."""
    labels = {}
    for agent in runs["agent"].unique():
        cells = [c for c in (manifest or {}).get("cells", []) if c.get("task") == task and c.get("agent") == agent]
        params = next((c["num_parameters"] for c in cells if c.get("num_parameters")), None)
        seeds = runs[runs["agent"] == agent]["seed"].nunique()
        bits = [f"{_short_count(params)} params"] if params else []
        bits.append(f"{seeds} seed{'s' if seeds != 1 else ''}")
        labels[agent] = f"{agent} ({', '.join(bits)})"
    return labels


def _short_count(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.3g}M"
    if value >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.0f}"


def _scale_errors(ax: plt.Axes, values: pd.Series) -> None:
    """Symmetric-log y for scores spanning orders of magnitude (0 stays visible), else linear from 0."""
    positive = values[values > 0]
    if not positive.empty and math.log10(positive.max() / positive.min()) > 2.0:
        linthresh = 10 ** math.floor(math.log10(positive.min()))
        ax.set_yscale("symlog", linthresh=linthresh, linscale=0.5)
        ax.set_ylim(bottom=0)
    else:
        ax.set_ylim(bottom=0)


def _mark_training(ax: plt.Axes, info: dict[str, Any] | None) -> None:
    if not info or info.get("max_length") is None:
        return
    lo, hi = info.get("min_length", 1), info["max_length"]
    ax.axvspan(lo, hi, color="0.5", alpha=0.08, lw=0, label=f"training range ({lo}–{hi})")
    ax.axvline(hi, color="0.25", ls="--", lw=1.2, label=f"longest training length ({hi})")


def _thousands(x: float, _pos: int) -> str:
    if abs(x) >= 1e6:
        return f"{x / 1e6:g}M"
    if abs(x) >= 1e3:
        return f"{x / 1e3:g}k"
    return f"{x:g}"


def tight_under_title(fig: plt.Figure) -> None:
    """``tight_layout`` below the suptitle: a fixed band of 0.3 inch is kept for it, so in a tall figure (one row
    per task) the title does not sit on the first row's panel titles."""
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Save ``fig`` as PNG atomically (temporary file, then rename) so a reader never sees half a PNG; close it."""
    try:
        with atomic_open(path, "wb") as f:
            fig.savefig(f, dpi=120, bbox_inches="tight", format="png")
    finally:
        plt.close(fig)
    return path


_save = save_figure  # the name benchmarks/babi.py imports


def _empty(path: Path, title: str, text: str) -> Path:
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, text, ha="center", va="center")
    return save_figure(fig, path)


def plot_generalisation(runs: pd.DataFrame, manifest: dict[str, Any] | None, path: str | Path) -> Path:
    """Draw ``generalisation.png`` (see the module docstring) from the eval rows of ``runs``.

    Args:
        runs: runs.csv as read by :func:`benchmarks.results.read_runs`.
        manifest: experiment.json, or ``None`` (then no training-range marks).
        path: Output PNG.

    Returns:
        ``path``.
    """
    path = Path(path)
    evals = _at_best_lrs(runs[(runs["phase"] == "eval") & (runs["split"].fillna("test") == "test")], runs, manifest)
    name = (manifest or {}).get("name") or (runs["experiment"].iloc[0] if len(runs) else "")
    if evals.empty:
        return _empty(path, f"{name}: generalisation", "no evaluated cell yet (see leaderboard.md for statuses)")
    evals["length"] = evals["length"].astype(int)
    tasks = list(dict.fromkeys(evals["task"]))
    agents = _agents_in_order(evals, manifest)
    palette = _palette(agents)
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(len(tasks), 2, figsize=(13, 4.3 * len(tasks)), squeeze=False)
    for row, task in enumerate(tasks):
        data = evals[evals["task"] == task]
        info = (manifest or {}).get("tasks", {}).get(task)
        ranked = task_score(runs, manifest, task)  # the leaderboard's score: bit errors, error rate or cost
        score = data[data["metric"] == ranked.metric].copy()
        score["value"] = score["value"] * ranked.scale
        labels = _legend_labels(manifest, task, data)
        ylabel = {"bit_errors": "bit errors per sequence", "error_rate": "error rate (%)"}.get(ranked.metric,
                                                                                                 ranked.label)
        panels = [
            (score, ylabel, ranked.metric.replace("_", " ").replace("cost bits", "cost")),
            (data[data["metric"] == "seq_accuracy"], "sequence accuracy (fraction fully correct)", "sequence accuracy"),
        ]
        for col, (frame, ylabel, what) in enumerate(panels):
            ax = axes[row][col]
            present = [a for a in agents if a in set(frame["agent"])]
            if frame.empty:
                ax.set_axis_off()
                continue
            if frame["length"].nunique() == 1:  # one test length (dynamic N-grams): the seeds per agent, not a line
                _draw_one_length(ax, frame, present, palette, ylabel, what, task,
                                 _optimal_cost(task, manifest) if col == 0 and ranked.metric == "cost_bits" else None)
                continue
            sns.lineplot(
                data=frame, x="length", y="value", hue="agent", hue_order=present, palette=palette,
                estimator="mean", errorbar=BAND, marker="o", markersize=5, ax=ax,
            )
            _mark_training(ax, info)
            if col == 0:
                _scale_errors(ax, frame["value"])
            else:
                ax.set_ylim(-0.03, 1.03)
            ax.set_xlabel(f"test {(info or {}).get('length_name', 'length')} (the task's length parameter)")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{_task_name(task)}: {what} vs test length")
            handles, texts = ax.get_legend_handles_labels()
            if col == 1:  # one legend per task, outside the panels so it never hides a line
                ax.legend(
                    handles, [labels.get(t, t) for t in texts], title="agent", fontsize=9, title_fontsize=9,
                    loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                )
            elif ax.get_legend() is not None:
                ax.get_legend().remove()
    swept = evals.groupby("task")["length"].nunique().max() > 1
    fig.suptitle(f"{name}: generalisation to test lengths ({_BAND_WORDS})" if swept
                 else f"{name}: score at the test length, per agent and seed", fontsize=13)
    tight_under_title(fig)
    return save_figure(fig, path)


def _draw_one_length(ax: plt.Axes, frame: pd.DataFrame, agents: list[str], palette: dict[str, Any], ylabel: str,
                     what: str, task: str, optimal: tuple[float, str] | None) -> None:
    """A task tested at one length only: one dot per seed and a bar at the median, per agent (a line against
    length would be a single point), and the Bayes-optimal cost as a dashed line where the task has one."""
    for i, agent in enumerate(agents):  # seeds spread evenly across the agent's slot (no random jitter: same file)
        values = frame[frame["agent"] == agent].sort_values("seed")["value"].to_numpy()
        ax.scatter(i + np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else [i] * len(values), values,
                   color=palette[agent], s=36, zorder=3)  # fmt: skip
        ax.hlines(float(np.median(values)), i - 0.3, i + 0.3, color="black", lw=1.5)
    ax.set_xticks(range(len(agents)), agents)
    ax.set_xlim(-0.6, len(agents) - 0.4)
    if optimal is not None:
        ax.axhline(optimal[0], color="black", ls="--", lw=1.0)
        ax.annotate(optimal[1], (ax.get_xlim()[0], optimal[0]), xytext=(4, 4), textcoords="offset points", fontsize=9)
    if what == "sequence accuracy":
        ax.set_ylim(-0.03, 1.03)
    ax.tick_params(axis="x", labelrotation=30)
    ax.set_xlabel("agent (dots: seeds; bar: median)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{_task_name(task)}: {what} at test length {int(frame['length'].iloc[0])}")


def _learning_metric(data: pd.DataFrame) -> tuple[str, str, float]:
    metrics = set(data["metric"])
    if "cost_bits" in metrics:
        return "cost_bits", "cost per sequence (bits)", 1.0
    if "cost_nats" in metrics:
        return "cost_nats", "cost per answer (nats)", 1.0
    if "error_rate" in metrics:
        return "error_rate", "training error rate (%)", 100.0
    return "loss", "training loss", 1.0


SMOOTH_POINTS = 40
"""Learning curves with more log rows per seed than this are smoothed to about this many points."""


def _drop_partial_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Leave out each seed's last row when it averages under half a log interval of batches.

    A run stopped by its time budget logs a last row over however few steps were
    left since the previous one; its noise would end every curve in a spike.
    """
    keep = []
    for _, rows in frame.groupby(["agent", "seed"], sort=False):
        steps = np.sort(rows["step"].unique())
        if len(steps) >= 3:
            gaps = np.diff(steps)
            if gaps[-1] < 0.5 * np.median(gaps[:-1]):
                rows = rows[rows["step"] != steps[-1]]
        keep.append(rows)
    return pd.concat(keep) if keep else frame


def _smooth(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Running mean per (agent, seed), each over its own ~1/SMOOTH_POINTS of its log rows.

    Each train row already averages ``log_every`` batches; short logs are left as
    they are. The window is chosen per run, so a run that converged after a few
    rows (the NTM) keeps its sudden drop while a long run is still smoothed.
    Returns the frame and the largest window used (1 = unsmoothed), which the title states.
    """
    frame = frame.sort_values(["agent", "seed", "step"]).copy()
    largest = 1

    def smooth(values: pd.Series) -> pd.Series:
        nonlocal largest
        window = max(1, round(len(values) / SMOOTH_POINTS))
        largest = max(largest, window)
        return values.rolling(window, min_periods=1).mean()

    if len(frame):
        frame["value"] = frame.groupby(["agent", "seed"])["value"].transform(smooth)
    return frame, largest


def plot_learning(runs: pd.DataFrame, manifest: dict[str, Any] | None, path: str | Path) -> Path:
    """Draw ``learning.png`` (see the module docstring) from the train rows of ``runs``.

    Args:
        runs: runs.csv as read by :func:`benchmarks.results.read_runs`.
        manifest: experiment.json, or ``None``.
        path: Output PNG.

    Returns:
        ``path``.
    """
    path = Path(path)
    train = _at_best_lrs(runs[runs["phase"] == "train"], runs, manifest)
    name = (manifest or {}).get("name") or (runs["experiment"].iloc[0] if len(runs) else "")
    if train.empty:
        return _empty(path, f"{name}: learning curves", "no training log yet")
    tasks = list(dict.fromkeys(train["task"]))
    agents = _agents_in_order(train, manifest)
    palette = _palette(agents)
    sns.set_theme(style="whitegrid", context="notebook")
    cols = 1 if len(tasks) == 1 else 2
    nrows = math.ceil(len(tasks) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(8.5 * cols, 4.8 * nrows), squeeze=False)
    for i, task in enumerate(tasks):
        ax = axes[i // cols][i % cols]
        data = train[train["task"] == task]
        metric, ylabel, scale = _learning_metric(data)
        frame = data[data["metric"] == metric].copy()
        frame["value"] = frame["value"] * scale
        frame, window = _smooth(_drop_partial_rows(frame))
        smoothing = f" (running mean over up to {window} log rows)" if window > 1 else ""
        present = [a for a in agents if a in set(frame["agent"])]
        for agent in present:
            _draw_seeds(ax, frame[frame["agent"] == agent], palette[agent], agent)
        optimal = _optimal_cost(task, manifest) if metric == "cost_bits" else None
        if optimal is not None:
            ax.axhline(optimal[0], color="black", ls="--", lw=1.0, label=optimal[1])
        positive = frame["value"][frame["value"] > 0]
        if not positive.empty and math.log10(positive.max() / positive.min()) > 2.0:
            ax.set_yscale("log")
        elif len(frame) and frame["value"].max() > 3 * frame["value"].quantile(0.98) > 0:
            _cut_spike(ax, frame["value"])
        ends = frame.groupby(["agent", "seed"])["sequences_seen"].max()
        if len(ends) and ends.min() > 0 and ends.max() / ends.min() > 5:
            ax.set_xscale("log")  # runs that stop early (converged) would be squeezed against the y axis
        ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
        ax.set_xlabel("training sequences seen")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{_task_name(task)}: learning curve{smoothing}")
        labels = _legend_labels(manifest, task, data)
        handles, texts = ax.get_legend_handles_labels()
        ax.legend(
            handles, [labels.get(t, t) for t in texts], title="agent", fontsize=9, title_fontsize=9,
            loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
        )
    for j in range(len(tasks), nrows * cols):
        axes[j // cols][j % cols].set_axis_off()
    fig.suptitle(f"{name}: training cost (line = median over seeds, band = their range, where every seed ran "
                 "the same budget; else one line per seed)", fontsize=12)
    tight_under_title(fig)
    return save_figure(fig, path)


def _cut_spike(ax: plt.Axes, values: pd.Series) -> None:
    """A linear axis whose top would be set by a short spike (a run that blew up and recovered): cut the axis
    above the bulk of the curve, so the rest stays readable, and say where the cut peak went (runs.csv has it)."""
    top, low = float(values.quantile(0.98)) * 1.15, float(values.min())
    ax.set_ylim(low - 0.05 * (top - low), top)
    ax.annotate(f"axis cut at {top:.3g}: peak {float(values.max()):.3g}", (0.99, 0.98), xycoords="axes fraction",
                ha="right", va="top", fontsize=9, color="0.3")


def _at_best_lrs(rows: pd.DataFrame, runs: pd.DataFrame, manifest: dict[str, Any] | None) -> pd.DataFrame:
    """``rows`` of each (task, agent) trained on a learning-rate grid at its lr chosen on validation
    (:func:`benchmarks.leaderboard.best_lrs`, the leaderboard's choice); other rows as they are."""
    keep = pd.Series(True, index=rows.index)
    for task in rows["task"].unique():
        metric = task_score(runs, manifest, task).metric
        for agent, (lr, _) in best_lrs(runs, manifest, task, metric).items():
            mine = (rows["task"] == task) & (rows["agent"] == agent)
            keep &= ~mine | np.isclose(rows["lr"].astype(float), lr)
    return rows[keep].copy()


def _draw_seeds(ax: plt.Axes, frame: pd.DataFrame, color: Any, label: str) -> None:
    """One agent's learning curves: the median over seeds and their range as a band when every seed logged the
    same points (a fixed budget); else one line per seed (runs that stopped early would make a median jump)."""
    table = frame.pivot_table(index="sequences_seen", columns="seed", values="value", aggfunc="mean")
    if table.shape[1] > 1 and not table.isna().any().any():
        ax.plot(table.index, table.median(axis=1), color=color, lw=1.6, label=label)
        ax.fill_between(table.index, table.min(axis=1), table.max(axis=1), color=color, alpha=0.18, lw=0)
        return
    for i, seed in enumerate(table.columns):
        line = table[seed].dropna()
        ax.plot(line.index, line.values, color=color, lw=1.2, alpha=0.85, label=label if i == 0 else None)


def _optimal_cost(task: str, manifest: dict[str, Any] | None) -> tuple[float, str] | None:
    """The Bayes-optimal cost per sequence of a task that has one (``task.optimal_score``: dynamic N-grams),
    on 1024 sequences of the cells' training range, and its legend text; ``None`` for other tasks."""
    from memtasks import make_task

    cells = [c for c in (manifest or {}).get("cells", []) if c.get("task") == task]
    try:
        built = make_task(task, **(cells[0].get("task_kwargs") or {})) if cells else make_task(task)
    except Exception:  # a task that cannot be built here (data missing): no line
        return None
    if not hasattr(built, "optimal_score"):
        return None
    batch = built.sample(1024, np.random.default_rng(0))
    return float(built.optimal_score(batch)["cost_bits"]), "Bayes-optimal (1024 sequences)"


def plot_grid(runs: pd.DataFrame, manifest: dict[str, Any] | None, path: str | Path) -> Path | None:
    """Draw ``grid.png``: for each task evaluated on a second axis (``[eval] grid``, e.g. repeat copy's repeats),
    one heatmap per agent of the bit errors per sequence (mean over seeds, at the lr chosen on validation) over
    test length x option value, the training range outlined. ``None`` (nothing drawn) without such rows."""
    evals = runs[(runs["phase"] == "eval") & runs["metric"].str.startswith("bit_errors@")]
    if evals.empty:
        return None
    path = Path(path)
    evals = _at_best_lrs(evals, runs, manifest)
    parts = evals["metric"].str.extract(r"^bit_errors@(?P<option>\w+)=(?P<value>\d+)$")
    evals = evals.assign(option=parts["option"], value_of_option=parts["value"].astype(int), length=evals["length"].astype(int))
    panels = list(evals.groupby(["task", "option", "agent"], sort=False))
    sns.set_theme(style="white", context="notebook")
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 4.2 * rows), squeeze=False)
    tasks = (manifest or {}).get("tasks", {})
    for ax, ((task, option, agent), frame) in zip(axes.flat, panels):  # fmt: skip
        table = frame.groupby(["value_of_option", "length"])["value"].mean().unstack("length").sort_index(ascending=False)
        sns.heatmap(table, ax=ax, annot=True, fmt=".2g", cmap="rocket_r", cbar=False, annot_kws={"size": 7})
        info = tasks.get(task, {})
        low, high = _option_range(task, option, manifest)
        if high is not None:  # outline the training range of the option (and of the length, when known)
            inside_values = [i for i, v in enumerate(table.index) if (low or 1) <= v <= high]
            inside_lengths = [j for j, n in enumerate(table.columns) if n <= info.get("max_length", n)]
            if inside_values and inside_lengths:
                ax.add_patch(plt.Rectangle((inside_lengths[0], inside_values[0]), len(inside_lengths),
                                           len(inside_values), fill=False, lw=2, ec="tab:blue"))  # fmt: skip
        ax.set_title(f"{_task_name(task)}: {agent}", fontsize=10)
        ax.set_xlabel("test length")
        ax.set_ylabel(option)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle("bit errors per sequence over length and " + ", ".join(sorted(set(evals["option"])))
                 + " (mean over seeds; training range outlined)", fontsize=11)  # fmt: skip
    tight_under_title(fig)
    return save_figure(fig, path)


def _option_range(task: str, option: str, manifest: dict[str, Any] | None) -> tuple[int | None, int | None]:
    """The training range of a sample option (the task's ``min_<option>``, ``max_<option>``), or Nones."""
    from memtasks import make_task

    cells = [c for c in (manifest or {}).get("cells", []) if c.get("task") == task]
    try:
        built = make_task(task, **(cells[0].get("task_kwargs") or {})) if cells else make_task(task)
    except Exception:  # a task that cannot be built here: no outline
        return None, None
    return getattr(built, f"min_{option}", None), getattr(built, f"max_{option}", None)


def plot_experiment(results_dir: str | Path) -> list[Path]:
    """Draw both figures of a results folder from its runs.csv (and experiment.json when present).

    Returns:
        The paths written.
    """
    results_dir = Path(results_dir)
    runs = read_runs(results_dir)
    manifest = read_manifest(results_dir)
    drawn = [
        plot_generalisation(runs, manifest, results_dir / "generalisation.png"),
        plot_learning(runs, manifest, results_dir / "learning.png"),
        plot_grid(runs, manifest, results_dir / "grid.png"),
    ]
    return [p for p in drawn if p is not None]


def cli(argv: list[str]) -> int:
    """Redraw an experiment's curves from its runs.csv.

    ``memtasks plot results/<experiment>``: redraw generalisation.png and learning.png from runs.csv.
    """
    parser = argparse.ArgumentParser(
        prog="memtasks plot",
        description="Redraw generalisation.png and learning.png of an experiment from its runs.csv.",
    )
    parser.add_argument("results", help="the experiment's results folder (holds runs.csv), e.g. results/quick")
    args = parser.parse_args(argv)
    try:
        paths = plot_experiment(args.results)
    except (FileNotFoundError, ValueError) as exc:
        print(f"memtasks plot: {exc}", file=sys.stderr)
        return 1
    for p in paths:
        print(f"wrote {p}")
    return 0
