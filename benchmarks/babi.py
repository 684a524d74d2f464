"""The bAbI table next to the MemN2N paper's (Sukhbaatar et al. 2015, Table 1), from runner results.

Training runs through the generic runner (epoch mode of :mod:`benchmarks.train`); this module only
reports, and migrates the records of the retired bAbI harness::

    memtasks run benchmarks/experiments/babi_1k.toml --out results/babi_1k        # train (resumable)
    python -m benchmarks.babi report results/babi_1k [more folders] --size 1k --out results/babi
    python -m benchmarks.babi migrate results/babi/runs/1k --size 1k --out results/babi/legacy_1k

``report`` reads each folder's ``runs.csv`` and ``experiment.json`` (:mod:`benchmarks.results`): per
cell the ``eval`` rows of the valid, test and train splits (``length = -1``, ``error_rate``) at the
validation-selected epoch, and the test split's per-length rows (story sentences before the question).
When two folders hold the same (size, task, agent, seed), the later folder's cell is used and the report
says how many were replaced. It writes ``table_<size>.md`` (:func:`benchmarks.tables.markdown_table`,
the leaderboard's writer) and ``error_by_length_<size>.png``.

``migrate`` turns the run records of the retired harness (``qa<N>__<agent>__seed<k>.json``, record version 1)
into a results folder of the runner's schema: ``runs.csv`` (per-epoch ``train`` loss and ``valid`` error
rows, ``eval`` rows of the three splits and the per-length test rows) and ``experiment.json`` (one cell per
record, carrying the record's every other field under ``legacy``), so nothing of a record is dropped
(the per-epoch history and the per-length test errors are the ``runs.csv`` rows). The
step and sequence counts of the per-epoch rows are computed from the data (the records kept per-epoch
results only); the per-epoch ``wall_s`` is unknown (empty).

Protocol (``benchmarks/experiments/babi_1k.toml``) and how it differs from the paper:


- MemN2N: 3 hops, d = 20, adjacent tying, temporal encoding, position
  encoding, linear start for a *fixed* 20 epochs (the paper re-inserts the
  softmax when the validation loss stops decreasing; the authors' code also
  uses a fixed 20), random noise 0.1, SGD with lr 0.005 during linear start,
  then 0.01 halved every 25 epochs (counted from epoch 0), 100 epochs in all,
  batch 32, the global gradient norm clipped at 40 (the authors' code clips
  each weight matrix on its own: ``clip_per_parameter``, not measured), every
  weight N(0, 0.1) (the answer head too: it is re-initialised here). The
  authors' code runs its 20 linear-start epochs *before* 100 epochs with the
  schedule restarted (120 in all; not measured here). On 10k the model gets a
  ReLU between hops, as in the paper's 10k column "PE LS RN*"
  (``relu_between_hops``).
- Sentence embeddings as in the paper: the token encoder makes 4 independent
  position-encoded bags of width 20 (``frame_blocks=4``, ``frame_size=80``,
  position weights counted within each bag) and MemN2N uses them directly as
  its K + 1 = 4 embedding matrices (``embedding="blocks"``: B = A^1, C^1 = A^2,
  C^2 = A^3, C^3), each a V x 20 word matrix weighting its own word vectors by
  ``l_kj`` (J = the sentence's own word count, as in the paper's formula; the
  authors' code uses the longest line of the data set for every sentence:
  ``position_encoding="fixed"`` measured no better, masked memory, seeds 0, 1:
  qa4 22.4/21.3, qa16 49.7/50.8, qa6 16.5/16.6, qa15 34.8/9.0).
- One sequence per question (``BabiTask(per_question=True)``): its story's
  last <= 50 sentences, then the question, so the memory holds story
  sentences only and the temporal encoding counts sentences, as in the paper.
  A batch holds 32 questions; the loss is the *sum* of the batch's
  cross-entropies (``loss_reduction="sum"``, the usual reading of the paper's
  SGD); one epoch is one pass over the shuffled training questions.
- A fixed memory, as in the authors' code: ``memory_size`` = the longest
  story of the task's splits (<= 50 sentences), and the slots a shorter story
  leaves free take part in the softmax as empty sentences (score 0, adding
  nothing to the output; ``empty_memories=True``) instead of being masked out.
  Measured against masking (seeds 0, 1): qa6 19.3/18.3 -> 8.8/8.5, qa15
  32.0/33.8 -> 0.1/0.0, qa18 31.9/39.9 -> 23.2/11.9, qa4 and qa16 (stories
  of one fixed length, so no empty slot) unchanged; seed 0 only: qa9 20.2 ->
  9.9, qa10 21.2 -> 14.7, qa2 16.4 -> 17.5. Random noise shifts the
  temporal indices of the real memories only (one draw per sequence), with
  probability 0.1 before every sentence (the authors' code draws fewer: none
  for stories of <= 10 sentences; no noise at all measured no better: qa4
  18.7/19.4, qa16 51.4/52.3, qa6 7.9/9.2, qa18 24.6/12.5, qa15 0.7/13.3).
- The paper's answer matrix W is tied to C^K (it scores answer *words*); here
  it is the Agent's separate linear head over the answer classes (with bias).
  Tying it to the last embedding block did not change qa4 or qa16 in a check,
  nor did dropping the bias (``head_bias=False``; qa4 20.7/21.2, qa16
  52.4/53.5 with empty memories, seeds 0, 1).
- Weight tying, measured (``results/babi_ablations/layerwise/``, seeds 3 and 4,
  training / test error %): adjacent tying (the paper's, kept) leaves qa4
  under-fitted, train 7.3 / 9.4, test 18.9 / 21.3. Our reading (not a
  measurement): with B = A^1 the question and the first hop's memories share
  one embedding, so a direction word always matches the same word in a memory
  with a positive weight, while "What is the bathroom east of?" is answered by
  "The bedroom is west of the bathroom". Layer-wise tying (B, and one A and one
  C for all hops, u^{k+1} = H u^k + o^k) fits qa4 (train 0.0 / 0.0, test
  2.6 / 3.1; paper 2.8) but loses elsewhere: test qa2 70.3 / 76.0 (adjacent
  13.7 / 58.4), qa18 32.8 / 28.7 (14.5 / 16.3), qa16 52.4 / 54.1 (51.1 / 51.2).
- Selection and reporting: the paper reports, per task, the best of 10 runs by
  *training* error; here every seed (the table's headers say how many) is
  scored at its lowest-validation-error epoch, reported as mean ± std and as
  the seed with the lowest validation error (ties: the lowest seed), which
  with 10 seeds is the validation counterpart of the paper's best of 10.
- LSTM (1 layer of 128) and NTM (LSTM controller 100, 128 x 20 memory, one read
  and one write head) use frame_size 50, Adam lr 1e-3 (no schedule), the mean
  cross-entropy per question, gradient norm clipped at 40, and the same
  epochs and validation selection; their sequences are story windows with all
  their questions (earlier questions stay among the frames, unscored), and a
  batch holds ``round(32 / mean questions per training sequence)`` of them,
  about 32 questions (``batch_unit = "scored"``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.babi_paper import FAIL_THRESHOLD, PAPER_SOURCE, paper_column
from benchmarks.results import RUNS_COLUMNS, read_manifest, read_runs, write_csv_atomic, write_json_atomic
from benchmarks.tables import markdown_table
from memtasks.atomic import write_text_atomic

__all__ = ["AGENTS", "LENGTH_BINS", "LEGACY_RECORD_VERSION", "cell_results", "main", "migrate", "report", "summary_table"]

AGENTS = ("memn2n", "lstm", "ntm", "dnc", "transformer")
"""Agents in report order (others follow in the order met)."""

LEGACY_RECORD_VERSION = 1
"""The record layout of the retired bAbI harness that :func:`migrate` reads."""

LENGTH_BINS: tuple[tuple[int, int], ...] = ((0, 4), (5, 9), (10, 14), (15, 19), (20, 29), (30, 39), (40, 50))
"""Buckets (inclusive) of story sentences before a question, for the error-by-length plot."""

_TASK_ID = re.compile(r"(?:memtasks/)?bAbI-qa(\d+)-v\d+$")
_JOINT_ID = re.compile(r"(?:memtasks/)?bAbI-joint-v\d+$")


# -- reading runner results ---------------------------------------------------------------------------


def cell_results(folders: Sequence[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Per finished bAbI cell of the folders: its scores; and the per-length test rows.

    Returns:
        ``(cells, lengths, replaced)``: ``cells`` has one row per (size, task, agent, seed):
        ``valid_error, test_error, train_error`` (%), ``best_epoch``, ``epochs_run``, ``wall_s``,
        ``num_parameters``, ``folder``; ``lengths`` has ``size, task, agent, seed, length, questions,
        errors``; ``replaced`` counts cells of an earlier folder replaced by a later one's.
    """
    rows, per_length = [], []
    for folder in folders:
        manifest = read_manifest(folder) or {}
        runs = read_runs(folder)
        evals = runs[(runs["phase"] == "eval")]
        for cell in manifest.get("cells", []):
            task_id = str(cell.get("task", ""))
            single, joint = _TASK_ID.match(task_id), _JOINT_ID.match(task_id)
            if not (single or joint) or cell.get("status") not in ("ok", "converged"):
                continue
            mine = evals[(evals["task"] == cell["task"]) & (evals["agent"] == cell["agent"])
                         & (evals["seed"] == cell["seed"])]  # fmt: skip
            whole = mine[mine["length"] == -1]
            epoch = mine["epoch"].dropna()
            if joint:  # one row per member task, from one model's error_rate_qa<N> rows
                numbers = sorted({int(m[len("error_rate_qa"):]) for m in whole["metric"] if m.startswith("error_rate_qa")})
                rows += filter(None, (_score_row(cell, n, whole, f"error_rate_qa{n}", epoch, folder) for n in numbers))
                continue
            row = _score_row(cell, int(single.group(1)), whole, "error_rate", epoch, folder)
            if row is None:
                continue
            rows.append(row)
            key = {k: row[k] for k in ("size", "task", "agent", "seed")}
            by = mine[(mine["split"] == "test") & (mine["length"] >= 0)]
            table = by.pivot_table(index="length", columns="metric", values="value", aggfunc="first")
            for length, r in table.iterrows():
                questions = int(r["questions"])
                per_length.append({**key, "length": int(length), "questions": questions,
                                   "errors": int(round(r["error_rate"] * questions))})  # fmt: skip
    cells = pd.DataFrame(rows)
    lengths = pd.DataFrame(per_length, columns=["size", "task", "agent", "seed", "length", "questions", "errors"])
    replaced = 0
    if not cells.empty:
        keys = ["size", "task", "agent", "seed"]
        before = len(cells)
        cells = cells.drop_duplicates(keys, keep="last").reset_index(drop=True)
        replaced = before - len(cells)
        if replaced:  # per-length rows of the later folder (folders are read in order)
            lengths = lengths.drop_duplicates(keys + ["length"], keep="last").reset_index(drop=True)
    return cells, lengths, replaced


def _score_row(
    cell: dict[str, Any], task: int, whole: pd.DataFrame, metric: str, epoch: pd.Series, folder: str | Path
) -> dict[str, Any] | None:
    """One (size, task, agent, seed) row of :func:`cell_results` from a cell's whole-split ``metric`` rows
    (``error_rate``, or a joint cell's ``error_rate_qa<N>``); ``None`` without a valid and a test value."""
    values = whole[whole["metric"] == metric].set_index("split")["value"]
    if not {"valid", "test"} <= set(values.index):
        return None
    return {
        "size": (cell.get("task_kwargs") or {}).get("size", "1k"), "task": task, "agent": cell["agent"],
        "seed": int(cell["seed"]), "valid_error": 100 * float(values["valid"]),
        "test_error": 100 * float(values["test"]),
        "train_error": 100 * float(values["train"]) if "train" in values.index else math.nan,
        "best_epoch": int(epoch.iloc[0]) if len(epoch) else None,
        "epochs_run": cell.get("epochs_run", (cell.get("legacy") or {}).get("epochs_run")),
        "wall_s": cell.get("wall_s"), "num_parameters": cell.get("num_parameters"), "folder": str(folder),
    }  # fmt: skip


def summary_table(cells: pd.DataFrame, size: str) -> pd.DataFrame:
    """Per task and agent: mean and std of the test error over seeds, and the validation-selected seed.

    The selected run of a (task, agent) is the seed with the lowest validation error (ties: the lowest
    seed); its test error is reported. Errors are in %.

    Returns:
        One row per (task, agent): ``task, agent, seeds, mean, std`` (std with ddof=1, NaN for one seed),
        ``selected``, ``selected_seed``, ``epochs_run`` (min over seeds); and the paper's selection,
        ``by_train`` / ``by_train_seed`` / ``by_train_of``: the test error of the seed with the lowest
        *training* error (ties: lower validation error, then the lower seed) among the ``by_train_of`` seeds
        whose cells kept a training error (NaN when none did).
    """
    columns = ["task", "agent", "seeds", "mean", "std", "selected", "selected_seed", "epochs_run",
               "by_train", "by_train_seed", "by_train_of"]  # fmt: skip
    frame = cells[cells["size"] == size] if not cells.empty else cells
    if frame.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for (task, agent), group in frame.groupby(["task", "agent"], sort=True):
        best = group.sort_values(["valid_error", "seed"], kind="stable").iloc[0]
        test = group["test_error"]
        epochs = pd.to_numeric(group["epochs_run"], errors="coerce")
        known = group.dropna(subset=["train_error"])
        by_train = known.sort_values(["train_error", "valid_error", "seed"], kind="stable").iloc[0] if len(known) else None
        rows.append({
            "task": int(task), "agent": agent, "seeds": len(group), "mean": float(test.mean()),
            "std": float(test.std(ddof=1)) if len(group) > 1 else math.nan,
            "selected": float(best["test_error"]), "selected_seed": int(best["seed"]),
            "epochs_run": int(epochs.min()) if epochs.notna().any() else None,
            "by_train": float(by_train["test_error"]) if by_train is not None else math.nan,
            "by_train_seed": int(by_train["seed"]) if by_train is not None else None, "by_train_of": len(known),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


# -- the report ---------------------------------------------------------------------------------------


def _fmt(value: float | None, std: float | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if std is None or math.isnan(std):
        return f"{value:.1f}"
    return f"{value:.1f} ± {std:.1f}"


def _seed_count(summary: pd.DataFrame, agent: str) -> str:
    """``" (3 seeds)"``, or ``" (1-3 seeds)"`` when tasks differ, for ``agent``'s column header."""
    seeds = summary.loc[summary["agent"] == agent, "seeds"] if not summary.empty else pd.Series(dtype=int)
    if seeds.empty:
        return ""
    low, high = int(seeds.min()), int(seeds.max())
    return f" ({low} seed{'s' if high > 1 else ''})" if low == high else f" ({low}-{high} seeds)"


def _table(summary: pd.DataFrame, size: str, tasks: list[int], agents: list[str]) -> str:
    """The per-task rows and the mean / failed rows of ``table_<size>.md``: per agent, the paper's column
    when the paper has one (per-task errors, or only its stated summary), then ours (mean ± std over seeds,
    the val-selected seed, the best seed by training error)."""
    papers = {agent: paper_column(agent, size) for agent in agents}
    header = ["task"]
    for agent in agents:
        if papers[agent] is not None:
            header.append(f"paper {'MemN2N' if agent.startswith('memn2n') else agent.upper()} {papers[agent].name}"
                          if papers[agent].errors else f"paper {papers[agent].name}")  # fmt: skip
        header += [f"ours {agent}{_seed_count(summary, agent)} mean ± std", f"ours {agent} val-selected",
                   f"ours {agent} best-of-N by train error"]
    columns: dict[str, dict[int, float]] = {}  # label -> task -> error, for the bottom rows
    by = {agent: summary[summary["agent"] == agent].set_index("task") for agent in agents}
    for agent in agents:
        if papers[agent] is not None and papers[agent].errors is not None:
            columns[f"{agent}:paper"] = {t: papers[agent].errors[t] for t in tasks}
        for column in ("mean", "selected", "by_train"):
            columns[f"{agent}:{column}"] = {t: float(by[agent].loc[t, column]) for t in tasks
                                            if t in by[agent].index and not math.isnan(by[agent].loc[t, column])}
    body = []
    for t in tasks:
        cells = [str(t)]
        for agent in agents:
            if papers[agent] is not None:  # per-task errors, or "–" where only the summary is transcribed
                cells.append(_fmt(papers[agent].errors.get(t)) if papers[agent].errors else "–")
            if t not in by[agent].index:
                cells += ["–", "–", "–"]
                continue
            row = by[agent].loc[t]
            cells += [_fmt(row["mean"], row["std"]), f"{row['selected']:.1f} (seed {int(row['selected_seed'])})"]
            if math.isnan(row["by_train"]):
                cells.append("–")
            else:
                of = "" if int(row["by_train_of"]) == int(row["seeds"]) else f" of {int(row['by_train_of'])}"
                cells.append(f"{row['by_train']:.1f} (seed {int(row['by_train_seed'])}{of})")
        body.append(cells)

    def mean_of(col: dict[int, float]) -> str:
        if not col:
            return "–"
        text = f"**{np.mean(list(col.values())):.1f}**"
        return text if len(col) == len(tasks) else f"{text} ({len(col)} tasks)"

    def failed_of(col: dict[int, float]) -> str:
        if not col:
            return "–"
        text = f"**{sum(v > FAIL_THRESHOLD for v in col.values())}**"
        return text if len(col) == len(tasks) else f"{text} / {len(col)}"

    for label, fn, stated in (("mean error (%)", mean_of, "mean"), (f"failed tasks (> {FAIL_THRESHOLD:g}%)", failed_of, "failed")):
        cells = [label]
        for agent in agents:
            if papers[agent] is not None:
                if papers[agent].errors is None:
                    cells.append(f"{getattr(papers[agent], stated)} (all 20, stated)")
                else:
                    cells.append(fn(columns[f"{agent}:paper"]))
            cells += [fn(columns[f"{agent}:{column}"]) for column in ("mean", "selected", "by_train")]
        body.append(cells)
    return markdown_table(header, body)


def _plot_error_by_length(lengths: pd.DataFrame, agents: list[str], path: Path) -> Path:
    """Test error against story sentences before the question, bucketed, per agent averaged over tasks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from benchmarks.plots import _save

    fig, ax = plt.subplots(figsize=(7, 4.2))
    frame = lengths.copy()
    frame["lo"] = [next((lo for lo, hi in LENGTH_BINS if lo <= n <= hi), None) for n in frame["length"]]
    frame = frame.dropna(subset=["lo"])
    if frame.empty:
        ax.text(0.5, 0.5, "no finished runs", ha="center", va="center")
        ax.axis("off")
        return _save(fig, path)
    frame["lo"] = frame["lo"].astype(int)
    frame["bin"] = [f"{lo}–{dict(LENGTH_BINS)[lo]}" for lo in frame["lo"]]
    # pool seeds within (agent, task, bin), then average the per-task error rates over tasks
    per_task = frame.groupby(["agent", "task", "lo", "bin"], as_index=False)[["questions", "errors"]].sum()
    per_task["error"] = 100 * per_task["errors"] / per_task["questions"]
    curve = per_task.groupby(["agent", "lo", "bin"], as_index=False).agg(error=("error", "mean"), tasks=("task", "nunique"))
    order = [a for a in agents if a in set(curve["agent"])]
    labels = {a: f"{a} ({frame[frame.agent == a].task.nunique()} tasks)" for a in order}
    curve["label"] = curve["agent"].map(labels)
    bins = [f"{lo}–{hi}" for lo, hi in LENGTH_BINS if lo in set(curve["lo"])]
    sns.lineplot(data=curve.sort_values("lo"), x="bin", y="error", hue="label", hue_order=[labels[a] for a in order],
                 marker="o", ax=ax, sort=False)  # fmt: skip
    ax.set_xticks(range(len(bins)), bins)
    for _, point in curve.iterrows():  # the task mix differs between buckets: say how many tasks each holds
        ax.annotate(f"{point['tasks']}", (bins.index(point["bin"]), point["error"]), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize=7, color="0.35")  # fmt: skip
    ax.set_xlabel("story sentences before the question (bucketed)")
    ax.set_ylabel("test error (%), mean over tasks")
    ax.set_ylim(bottom=0)
    ax.set_title("bAbI test error by story length (small numbers: tasks in the bucket)", fontsize=10)
    ax.legend(title="agent", frameon=False)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def report(folders: Sequence[str | Path], out: str | Path, size: str = "1k", command: str | None = None) -> list[Path]:
    """Write ``table_<size>.md`` and ``error_by_length_<size>.png`` under ``out`` from runner results.

    Args:
        folders: Results folders (``memtasks run`` or :func:`migrate` output), later ones win on overlap.
        out: Where the report goes.
        size: Which training-set size to report.
        command: The command to state in the table (None: this module's ``report`` command line).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cells, lengths, replaced = cell_results(folders)
    cells = cells[cells["size"] == size] if not cells.empty else cells
    lengths = lengths[lengths["size"] == size]
    found = list(cells["agent"].unique()) if not cells.empty else []
    agents = [a for a in AGENTS if a in found] + [a for a in found if a not in AGENTS] or ["memn2n"]
    tasks = sorted(int(t) for t in cells["task"].unique()) if not cells.empty else list(range(1, 21))
    summary = summary_table(cells, size)
    paper, lstm_paper = paper_column("memn2n", size), paper_column("lstm", size)
    seeds = sorted(int(s) for s in cells["seed"].unique()) if not cells.empty else []
    command = command or "python -m benchmarks.babi report " + " ".join(shlex.quote(str(f)) for f in folders) + \
        f" --size {size} --out {shlex.quote(str(out))}"
    sources = ", ".join(f"`{f}`" for f in folders)
    lines = [
        f"# bAbI {size}: test error (%), one model per task",
        "",
        f"Made by `{command}` on {_dt.date.today().isoformat()} from {len(cells)} finished cells of {sources}, "
        f"seeds {seeds}" + (f" ({replaced} cells of an earlier folder replaced by a later one's)" if replaced else "") + ".",
        "",
        _table(summary, size, tasks, agents),
        "",
        "\"mean ± std\": over seeds of the test error of each seed's validation-selected epoch. "
        "\"val-selected\": the test error of the seed with the lowest validation error. "
        "\"best-of-N by train error\": the paper's selection (the best of 10 runs by training error), here "
        "the test error of the seed whose kept weights have the lowest training error (\"of k\": only k seeds' "
        "cells kept a training error). "
        f"Failed = test error > {FAIL_THRESHOLD:g}%.",
    ]
    joint = paper_column("memn2n_joint", size)
    if joint is not None and "memn2n_joint" in agents:
        lines.append(f"Paper ({PAPER_SOURCE}), column {joint.name}: mean {joint.mean} / {joint.failed} failed.")
    if paper is not None and "memn2n" in agents:
        lines.append(f"Paper ({PAPER_SOURCE}), column {paper.name}: mean {paper.mean} / {paper.failed} failed"
                     + (f" (on these {len(tasks)} tasks: mean {np.mean([paper.errors[t] for t in tasks]):.1f})"
                        if paper.errors and len(tasks) < 20 else "") + ".")  # fmt: skip
    if lstm_paper is not None and "lstm" in agents:
        lines.append(f"Paper LSTM baseline ({size}): mean {lstm_paper.mean} / {lstm_paper.failed} failed "
                     "(per-task errors not transcribed).")  # fmt: skip
    ours_only = [a for a in agents if a not in ("memn2n", "lstm", "memn2n_joint")]
    if ours_only:
        lines.append(f"Not in the paper's table (our runs only): {', '.join(ours_only)}.")
    if {"ntm", "dnc"} & set(agents):
        lines.append("Does a memory agent use its memory here? The control with memory writes disabled (NTM and DNC, "
                     "qa1, qa6, qa15, one seed; `results/babi_memory_ablation/README.md`) errs about as much as the "
                     "intact agent, so this table does not show either using its memory on bAbI 1k.")  # fmt: skip
    if paper is not None and paper.errors is not None and "memn2n" in agents:
        lines += ["", *_gaps(summary, paper.errors)]
    if not summary.empty:
        epochs = summary.groupby("agent")["epochs_run"].agg(lambda s: sorted({int(v) for v in s.dropna()}))
        lines += ["", "Epochs run per agent (fewer only where a budget cut a run short): "
                  + "; ".join(f"{a}: {', '.join(map(str, epochs[a])) or 'not in its folder manifest'}" for a in agents
                              if a in epochs) + "."]  # fmt: skip
    for agent, changes in _legacy_protocol_changes(folders).items():
        lines.append(f"Migrated {agent} records whose agent config differs from `benchmarks/experiments/babi_1k.toml`: "
                     f"{'; '.join(changes)}.")  # fmt: skip
    doc = (__doc__ or "").split("Protocol (``benchmarks/experiments/babi_1k.toml``) and how it differs from the paper:")
    if len(doc) == 2:
        lines += ["", "## Protocol and differences from the paper", "", doc[1].strip(), ""]
    written = [write_text_atomic(out / f"table_{size}.md", "\n".join(lines) + "\n")]
    written.append(_plot_error_by_length(lengths, agents, out / f"error_by_length_{size}.png"))
    return written


def _legacy_protocol_changes(folders: Sequence[str | Path]) -> dict[str, list[str]]:
    """Per agent, ``key = value (n runs)`` where a migrated record's agent config differs from the agent's
    table in babi_1k.toml (ablations of the retired harness), so a table never mislabels its protocol."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    path = Path(__file__).resolve().parent / "experiments" / "babi_1k.toml"
    agents_table = tomllib.loads(path.read_text()).get("agents", {})
    found: dict[str, dict[str, int]] = {}
    for folder in folders:
        for cell in (read_manifest(folder) or {}).get("cells", []):
            config = ((cell.get("legacy") or {}).get("protocol") or {}).get("agent_config")
            today = agents_table.get(cell.get("agent"))
            if config is None or today is None:
                continue
            for key in sorted(set(config) & set(today)):
                if config[key] != today[key]:
                    text = f"{key} = {json.dumps(config[key])}"
                    found.setdefault(cell["agent"], {}).setdefault(text, 0)
                    found[cell["agent"]][text] += 1
    return {a: [f"{text} ({n} runs)" for text, n in changes.items()] for a, changes in found.items()}


def _gaps(summary: pd.DataFrame, paper: dict[int, float]) -> list[str]:
    """The MemN2N gap to the paper named per task, for each selection (points of test error, ours - paper)."""
    mine = summary[summary["agent"] == "memn2n"].set_index("task")
    lines = []
    for column, label in (("selected", "val-selected"), ("by_train", "best-of-N by train error"), ("mean", "mean of seeds")):
        gap = {int(t): float(mine.loc[t, column]) - paper[int(t)] for t in mine.index if not math.isnan(mine.loc[t, column])}
        if not gap:
            continue
        worse = ", ".join(f"qa{t} {g:+.1f}" for t, g in sorted(gap.items(), key=lambda kv: -kv[1]) if g > 5)
        close = ", ".join(f"qa{t}" for t, g in sorted(gap.items()) if g <= 2)
        lines.append(f"Gap to the paper, MemN2N {label} (points, ours - paper): more than 5 worse on "
                     f"{worse or 'no task'}; within 2 or better on {close or 'no task'} ({len(gap)} tasks).")  # fmt: skip
    return lines


def protocols(labelled: Sequence[tuple[str, str | Path]], out: str | Path, size: str = "1k") -> Path:
    """One line per protocol (a results folder each): MemN2N's mean error and failed tasks per selection.

    Args:
        labelled: ``(label, folder)`` pairs, in the order to show.
        out: The Markdown file to write.
    """
    paper = paper_column("memn2n", size)
    rows = []
    for label, folder in labelled:
        cells, _, _ = cell_results([folder])
        summary = summary_table(cells, size)
        mine = summary[summary["agent"] == "memn2n"]
        if mine.empty:
            rows.append([label, f"`{folder}`", "0", "–", "–", "–"])
            continue

        def both(column: str) -> str:
            values = mine[column].dropna()
            if values.empty:
                return "–"
            text = f"{values.mean():.1f} / {int((values > FAIL_THRESHOLD).sum())}"
            return text if len(values) == 20 else f"{text} ({len(values)} tasks)"

        seeds = f"{int(mine['seeds'].min())}" + ("" if mine["seeds"].nunique() == 1 else f"-{int(mine['seeds'].max())}")
        rows.append([label, f"`{folder}`", seeds, both("mean"), both("selected"), both("by_train")])
    header = ["protocol", "results", "seeds per task", "mean of seeds", "val-selected", "best-of-N by train error"]
    text = [
        f"# bAbI {size}: MemN2N protocols compared (test error %, mean over tasks / tasks failed > {FAIL_THRESHOLD:g}%)",
        "",
        "Made by `python -m benchmarks.babi protocols " + " ".join(f"{l}={f}" for l, f in labelled)
        + f" --size {size} --out {out}` on {_dt.date.today().isoformat()}."
        + (f" Paper ({PAPER_SOURCE}), {paper.name}: {paper.mean} / {paper.failed}." if paper else ""),
        "",
        markdown_table(header, rows),
        "",
    ]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(out, "\n".join(text))


# -- migration of the retired harness's records ---------------------------------------------------------


def migrate(records_dir: str | Path, out: str | Path, size: str = "1k", data_dir: str | None = None) -> Path:
    """Turn the retired harness's run records into a results folder of the runner's schema (module docstring).

    Returns:
        ``out``. Raises ``ValueError`` naming a record of another layout version (none is skipped silently).
    """
    from memtasks.babi import BabiTask

    records_dir, out = Path(records_dir), Path(out)
    paths = sorted(records_dir.glob("qa*__*__seed*.json"))
    if not paths:
        raise ValueError(f"records_dir: no qa<N>__<agent>__seed<k>.json records in {records_dir}")
    experiment = f"babi_legacy_{size}"
    rows, cells, sizes = [], [], {}
    for path in paths:
        record = json.loads(path.read_text())
        if record.get("version") != LEGACY_RECORD_VERSION:
            raise ValueError(f"{path}: record version {record.get('version')!r}, migrate reads {LEGACY_RECORD_VERSION}")
        if record["size"] != size:
            raise ValueError(f"{path}: a {record['size']} record in a --size {size} migration")
        task, per_question = record["task"], bool(record["protocol"].get("per_question"))
        if (task, per_question) not in sizes:
            sizes[(task, per_question)] = BabiTask(task, size, "train", data_dir=data_dir, per_question=per_question).num_sequences
        n = sizes[(task, per_question)]
        per_batch = int(record["sequences_per_batch"])
        task_id = f"memtasks/bAbI-qa{task}-v0"
        base = {"experiment": experiment, "task": task_id, "agent": record["agent"], "seed": record["seed"],
                "lr": record["protocol"]["lr"]}  # fmt: skip

        def at(epoch: int) -> dict[str, Any]:
            return {"step": epoch * math.ceil(n / per_batch), "epoch": epoch, "sequences_seen": epoch * n, "wall_s": math.nan}

        for h in record["history"]:
            if h.get("train_loss") is not None:
                rows.append({**base, **at(h["epoch"]), "phase": "train", "split": None, "length": None,
                             "metric": "loss", "value": h["train_loss"]})  # fmt: skip
            rows.append({**base, **at(h["epoch"]), "phase": "valid", "split": "valid", "length": None,
                         "metric": "error_rate", "value": h["valid_error"]})  # fmt: skip
        final = {**at(record["best_epoch"]), "step": at(record["epochs_run"])["step"],
                 "sequences_seen": at(record["epochs_run"])["sequences_seen"], "wall_s": record["wall_s"]}  # fmt: skip
        for split in ("valid", "test", "train"):
            if record.get(f"{split}_error") is not None:
                rows.append({**base, **final, "phase": "eval", "split": split, "length": -1, "metric": "error_rate",
                             "value": record[f"{split}_error"]})  # fmt: skip
        for entry in record["test_by_context"]:
            q, e = entry["questions"], entry["errors"]
            rows.append({**base, **final, "phase": "eval", "split": "test", "length": entry["context"],
                         "metric": "error_rate", "value": e / q})  # fmt: skip
            rows.append({**base, **final, "phase": "eval", "split": "test", "length": entry["context"],
                         "metric": "questions", "value": float(q)})  # fmt: skip
        kept = {"task", "agent", "seed", "size", "history", "test_by_context"}  # those two are runs.csv rows now
        cells.append({
            "cell": path.stem, "experiment": experiment, "task": task_id, "agent": record["agent"],
            "agent_name": record["agent"], "seed": record["seed"],
            "task_kwargs": {"size": size, "per_question": per_question}, "status": "ok",
            "message": f"migrated from {path.name} (retired bAbI harness, record version 1)",
            "num_parameters": record["num_parameters"], "epochs_run": record["epochs_run"],
            "best_epoch": record["best_epoch"], "wall_s": record["wall_s"], "lr": record["protocol"]["lr"],
            "legacy": {k: v for k, v in record.items() if k not in kept},
        })  # fmt: skip
    runs = pd.DataFrame(rows)
    for column in RUNS_COLUMNS:
        if column not in runs:
            runs[column] = None
    out.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(out / "runs.csv", runs[list(RUNS_COLUMNS)])
    read_runs(out)  # the schema holds
    write_json_atomic(out / "experiment.json", {
        "name": experiment, "description": f"bAbI {size} records of the retired harness ({records_dir}), migrated",
        "migrated_from": str(records_dir), "cells": cells,
    })  # fmt: skip
    return out


# -- command line -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.babi", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="the bAbI table and the error-by-length plot from results folders")
    rep.add_argument("folders", nargs="+", help="results folders (memtasks run / migrate output); later ones win")
    rep.add_argument("--size", choices=("1k", "10k"), default="1k")
    rep.add_argument("--out", required=True, help="folder for table_<size>.md and error_by_length_<size>.png")
    pro = sub.add_parser("protocols", help="MemN2N's mean error and failed tasks, one line per results folder")
    pro.add_argument("labelled", nargs="+", metavar="LABEL=FOLDER", help="a protocol's label and results folder")
    pro.add_argument("--size", choices=("1k", "10k"), default="1k")
    pro.add_argument("--out", required=True, help="the Markdown file to write")
    mig = sub.add_parser("migrate", help="records of the retired bAbI harness -> a results folder")
    mig.add_argument("records", help="folder of qa<N>__<agent>__seed<k>.json records")
    mig.add_argument("--size", choices=("1k", "10k"), default="1k")
    mig.add_argument("--out", required=True, help="the results folder to write")
    mig.add_argument("--data-dir", default=None, help="tasks_1-20_v1-2 folder (default: $MEMTASKS_BABI_DIR)")
    args = parser.parse_args(argv)
    try:
        if args.command == "report":
            missing = [f for f in args.folders if not any((Path(f) / n).is_file() for n in ("runs.csv", "runs.csv.gz"))]
            if missing:
                parser.error(f"folders: no runs.csv in {', '.join(missing)}")
            for path in report(args.folders, args.out, args.size):
                print(f"wrote {path}")
        elif args.command == "protocols":
            pairs = [item.partition("=")[::2] for item in args.labelled]
            bad = [item for item, (label, folder) in zip(args.labelled, pairs) if not label or not folder]
            if bad:
                parser.error(f"labelled: expected LABEL=FOLDER, got {', '.join(bad)}")
            print(f"wrote {protocols(pairs, args.out, args.size)}")
        else:
            print(f"wrote {migrate(args.records, args.out, args.size, args.data_dir)}")
    except (ValueError, FileNotFoundError) as exc:
        print(f"python -m benchmarks.babi: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
