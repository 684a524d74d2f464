"""Leaderboards: per task, how well each agent does at the training lengths and beyond.

``results/<experiment>/leaderboard.md`` (written by ``memtasks run``) has one
table per task with a row per agent:

- **parameters** of the agent;
- the **score**, as mean ± standard deviation over seeds (and the maximum, the
  worst seed), at the *training lengths* (the test lengths up to the longest
  training length, averaged per seed) and at each longer test length. The
  score is bit errors per sequence for tasks with bit outputs and the error
  rate in % for tasks with class outputs (bAbI); lower is better;
- **to converge**: sequences seen and wall time until ``until_bit_errors`` was
  met (mean over the seeds that converged), or "not converged";
- **status**: how many seeds finished ok, converged, diverged or failed, with
  the reason of every diverged or failed seed. An agent whose seeds all failed
  is still listed (last, without scores) rather than dropped.

Rows are ranked first by the number of seeds that diverged or failed (fewest
first, as learning rates are chosen: a mean over the seeds that survived does
not outrank a full set), then by the mean over seeds of the score at the
training lengths (ascending), ties broken by the score at the longest test
length; the file says so above each table.

``memtasks leaderboard results/`` writes ``results/LEADERBOARD.md``: every
experiment's tables (one section each) and a combined per-task ranking of
every (experiment, agent) pair. ``memtasks leaderboard results/<experiment>``
rewrites that experiment's ``leaderboard.md``.

Everything is computed from ``runs.csv`` and ``experiment.json`` (training
ranges, parameter counts, statuses, convergence); without ``experiment.json``
the table still ranks the agents, over all test lengths.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.results import RUNS_FILE, read_manifest, read_runs, write_text_atomic
from benchmarks.tables import cell_text, markdown_table

__all__ = [
    "LEADERBOARD_FILE",
    "MERGED_FILE",
    "Score",
    "cli",
    "experiment_leaderboard",
    "merge_leaderboards",
    "protocol_hash",
    "task_hash",
    "suite_leaderboard",
    "suite_scores",
    "score_for",
    "task_score",
    "task_table",
    "write_leaderboard",
]

LEADERBOARD_FILE = "leaderboard.md"
"""One experiment's leaderboard, next to its runs.csv."""
MERGED_FILE = "LEADERBOARD.md"
"""Every experiment's leaderboard, in the results root."""

MAX_LENGTH_COLUMNS = 6
"""At most this many longer-length columns per table (evenly spaced, always the longest); runs.csv has all."""


@dataclass(frozen=True)
class Score:
    """The score a task is ranked by."""

    metric: str
    """Metric of the eval rows in runs.csv (``bit_errors``, ``error_rate`` or ``cost_bits``)."""
    label: str
    """Words for table headers."""
    scale: float
    """Multiplier from the metric to the shown number (100 for a rate shown in %)."""


BIT_SCORE = Score("bit_errors", "bit errors per sequence", 1.0)
"""The score of tasks with bit outputs."""
CLASS_SCORE = Score("error_rate", "error %", 100.0)
"""The score of tasks with class outputs."""
COST_SCORE = Score("cost_bits", "cost in bits per sequence", 1.0)
"""The score of bit tasks registered to be ranked by their cost (dynamic N-grams, priority sort)."""
_SCORES = {s.metric: s for s in (BIT_SCORE, CLASS_SCORE, COST_SCORE)}


def score_for(metrics: Sequence[str]) -> Score:
    """The score of a task whose eval rows have these metrics (bit errors if present, else error rate)."""
    return BIT_SCORE if "bit_errors" in set(metrics) or "error_rate" not in set(metrics) else CLASS_SCORE


def task_score(runs: pd.DataFrame, manifest: dict[str, Any] | None, task: str) -> Score:
    """The score ``task`` is ranked and tuned by: the metric it is registered with
    (:attr:`memtasks.TaskInfo.score_metric`, as experiment.json recorded it, else as registered now) when its
    eval rows have it; otherwise :func:`score_for` its eval rows' metrics."""
    metrics = set(runs[(runs["task"] == task) & (runs["phase"] == "eval")]["metric"].unique())
    info = (manifest or {}).get("tasks", {}).get(task, {})
    wanted = info.get("score_metric")
    if "score_metric" not in info:  # a record written before tasks declared their score: the registry
        import memtasks

        try:
            wanted = memtasks.task_info(task).score_metric
        except ValueError:  # a plugin's task that is not installed here
            wanted = None
    if wanted in metrics:
        return _SCORES.get(wanted) or Score(wanted, wanted.replace("_", " "), 1.0)
    if not metrics:
        return CLASS_SCORE if info.get("output_kind") == "classes" else BIT_SCORE
    return score_for(list(metrics))


# -- per-cell scores --------------------------------------------------------------------------------------


@dataclass
class _AgentRow:
    """One agent's aggregated line of a task table."""

    agent: str
    parameters: int | None
    train: list[float]  # per evaluated seed: mean score at the training lengths
    longer: dict[int, list[float]]  # test length -> per evaluated seed score
    converged: list[tuple[int, float]]  # (sequences, wall_s) of the seeds that converged
    seeds: int
    statuses: list[tuple[int, str, str]]  # (seed, status, message) of every cell
    lr_note: str = ""  # with a learning-rate grid: the lr the row shows and how it was chosen

    @property
    def lost(self) -> int:
        """Seeds that diverged or failed: they have no score."""
        return sum(1 for _, status, _ in self.statuses if status in LOST_STATUSES)

    @property
    def rank_key(self) -> tuple[bool, int, float, float, str]:
        """Agents with a score first; of those, fewer lost seeds first (as an lr or a variant is chosen, so a
        mean over the seeds that survived does not outrank a full set); then the mean score at the training
        lengths, the score at the longest test length, the name."""
        train = float(np.mean(self.train)) if self.train else math.inf
        longest = self.longer[max(self.longer)] if self.longer else []
        tail = float(np.mean(longest)) if longest else math.inf
        return (not self.train, self.lost, train, tail, self.agent)


LOST_STATUSES = ("diverged", "failed")
"""Cell statuses with no score: a ranking, an lr choice or a variant choice counts them, never leaves them out."""


def _cells_of(manifest: dict[str, Any] | None, task: str) -> list[dict[str, Any]]:
    return [c for c in (manifest or {}).get("cells", []) if c.get("task") == task]


def _agent_rows(
    runs: pd.DataFrame, manifest: dict[str, Any] | None, task: str, score: Score
) -> tuple[list[_AgentRow], list[int], int | None]:
    """Aggregate one task's eval rows per agent; returns the rows, the longer lengths, the training max."""
    every = runs[(runs["task"] == task) & (runs["phase"] == "eval") & (runs["metric"] == score.metric)]
    evals = every[every["split"].fillna("test") == "test"]  # test rows only (not a dataset's train/valid split)
    cells = _cells_of(manifest, task)
    task_info = (manifest or {}).get("tasks", {}).get(task, {})
    train_max = task_info.get("max_length")
    lengths = sorted(int(x) for x in evals["length"].dropna().unique())
    longer = [L for L in lengths if train_max is not None and L > train_max]

    agents = list(dict.fromkeys([c["agent"] for c in cells] + list(evals["agent"].unique())))
    chosen = best_lrs(runs, manifest, task, score.metric)
    rows = []
    for agent in agents:
        mine = evals[evals["agent"] == agent]
        agent_cells = [c for c in cells if c["agent"] == agent]
        lr_note = ""
        if agent in chosen:  # a learning-rate grid: the lr with the best mean validation score, only
            best, lr_note = chosen[agent]
            mine = mine[np.isclose(mine["lr"].astype(float), best)]
            agent_cells = [c for c in agent_cells if np.isclose(float(c["lr"]), best)]
        seeds = sorted({int(c["seed"]) for c in agent_cells} | {int(s) for s in mine["seed"].unique()})
        row = _AgentRow(agent, None, [], {L: [] for L in longer}, [], len(seeds), [], lr_note)
        params = [c.get("num_parameters") for c in agent_cells if c.get("num_parameters") is not None]
        row.parameters = int(params[0]) if params else None
        for seed in seeds:
            values = mine[mine["seed"] == seed]
            cell = next((c for c in agent_cells if int(c["seed"]) == seed), {})
            status = cell.get("status", "ok" if len(values) else "unfinished")  # no experiment.json: ok if measured
            row.statuses.append((seed, status, cell.get("message", "")))
            if cell.get("converged_sequences") is not None:
                row.converged.append((int(cell["converged_sequences"]), float(cell.get("converged_wall_s") or 0.0)))
            if values.empty:
                continue
            cell_max = (cell.get("train_range") or [None, train_max])[1]
            inside = values if cell_max is None else values[values["length"] <= cell_max]
            if not inside.empty:
                row.train.append(float(inside["value"].mean()) * score.scale)
            for L in longer:
                at = values[values["length"] == L]
                if not at.empty:
                    row.longer[L].append(float(at["value"].mean()) * score.scale)
        rows.append(row)
    rows.sort(key=lambda r: r.rank_key)
    return rows, longer, train_max


TIED = "tied with"
"""The words in a chosen lr's note (:func:`best_lrs`) that mark a choice made by an exact validation tie."""


def validation_rows(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The rows that choose an lr or a variant: evaluations of ``metric`` on the validation split (length -1,
    sequences drawn from the training range), never a test length."""
    return runs[(runs["phase"] == "eval") & (runs["metric"] == metric) & (runs["split"] == "valid")
                & (runs["length"] == -1)]  # fmt: skip


def lost_seeds(cells: list[dict[str, Any]], agent: str, lr: float | None = None) -> Counter:
    """``{status: count}`` of ``agent``'s cells (at ``lr``; at any lr if ``None``) that diverged or failed:
    the seeds with no score, which an lr or variant choice must not quietly leave out."""
    return Counter(c.get("status") for c in cells
                   if c.get("agent") == agent and c.get("status") in LOST_STATUSES
                   and (lr is None or (c.get("lr") is not None and float(c["lr"]) == float(lr))))  # fmt: skip


def best_lrs(runs: pd.DataFrame, manifest: dict[str, Any] | None, task: str, metric: str) -> dict[str, tuple[float, str]]:
    """Per agent of ``task`` trained on a learning-rate grid: the lr to show and a note on how it was chosen
    (:func:`_best_lr`: the best mean validation ``metric``). Agents with one lr are not in the dict."""
    mine = runs[runs["task"] == task]
    validation = validation_rows(mine, metric)
    every = mine[(mine["phase"] == "eval") & (mine["metric"] == metric)]
    tests = every[every["split"].fillna("test") == "test"]
    train_max = (manifest or {}).get("tasks", {}).get(task, {}).get("max_length")
    cells = _cells_of(manifest, task)
    chosen = {}
    for agent in dict.fromkeys(c["agent"] for c in cells):
        lrs = sorted({float(c["lr"]) for c in cells if c["agent"] == agent and c.get("lr") is not None})
        if len(lrs) > 1:
            lost = {lr: sum(lost_seeds(cells, agent, lr).values()) for lr in lrs}
            chosen[agent] = _best_lr(validation[validation["agent"] == agent], tests[tests["agent"] == agent], lrs,
                                     train_max, lost)  # fmt: skip
    return chosen


def _best_lr(validation: pd.DataFrame, tests: pd.DataFrame, lrs: list[float], train_max: int | None,
             lost: Mapping[float, int] | None = None) -> tuple[float, str]:
    """The lr of an agent's grid with the lowest mean validation score (rows at length -1, split valid), and a
    note saying so; without validation rows (runs made before they existed), the lowest mean score at the
    training lengths, and the note says that instead. ``lost`` counts the seeds per lr that diverged or failed
    (they have no score): only the scored lrs with the fewest lost seeds compete, so an lr is not chosen on the
    mean of the seeds that happened to survive it."""

    def by_lr(frame: pd.DataFrame) -> pd.Series:
        return frame.assign(lr=frame["lr"].astype(float)).groupby("lr")["value"].mean()

    scores = by_lr(validation)
    how = "best mean validation score"
    if scores.empty:
        inside = tests if train_max is None else tests[tests["length"] <= train_max]
        scores, how = by_lr(inside), "best mean score at the training lengths (no validation rows)"
    if scores.empty:
        return lrs[0], f"lr {lrs[0]:g} (nothing evaluated)"
    lost = lost or {}
    fewest = min(lost.get(float(lr), 0) for lr in scores.index)
    if any(lost.get(float(lr), 0) > fewest for lr in scores.index):
        scores = scores[[lost.get(float(lr), 0) == fewest for lr in scores.index]]
        how += f" of the lrs with the fewest diverged or failed seeds ({fewest})"
    best = float(scores.idxmin())  # on an exact tie, the smallest of the tied lrs (the index is sorted)
    tied = [float(lr) for lr in scores.index if scores[lr] == scores[best] and float(lr) != best]
    if tied:
        how += f", {TIED} {', '.join(f'{x:g}' for x in tied)} (the smallest tied lr is taken)"
    return best, f"lr {best:g} of {', '.join(f'{x:g}' for x in lrs)}: {how}"


# -- formatting ---------------------------------------------------------------------------------------------


def _num(value: float, digits: int = 3) -> str:
    """``digits`` significant digits, thousands separated, no exponent for everyday magnitudes."""
    if value == 0:
        return "0"
    if abs(value) >= 10**digits:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _stat(values: list[float]) -> str:
    """``mean ± sd (max m)`` over seeds; one seed shows just the value; none a dash."""
    if not values:
        return "—"
    if len(values) == 1:
        return _num(values[0])
    sd = float(np.std(values, ddof=1))  # sample sd over seeds
    return f"{_num(float(np.mean(values)))} ± {_num(sd, 2)} (max {_num(max(values))})"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _converge(row: _AgentRow) -> tuple[str, str]:
    if not row.converged:
        return "not converged", "not converged"
    seqs = [s for s, _ in row.converged]
    walls = [w for _, w in row.converged]
    suffix = "" if len(row.converged) == row.seeds else f" ({len(row.converged)}/{row.seeds} seeds)"
    return f"{_num(float(np.mean(seqs)))}{suffix}", f"{_duration(float(np.mean(walls)))}{suffix}"


def _status(row: _AgentRow) -> str:
    counts: dict[str, int] = {}
    for _, status, _ in row.statuses:
        counts[status] = counts.get(status, 0) + 1
    text = ", ".join(f"{status} {n}/{row.seeds}" for status, n in counts.items())
    reasons = [f"seed {seed} {status}: {msg}" for seed, status, msg in row.statuses if status in ("failed", "diverged")]
    return cell_text(text + ("; " + "; ".join(reasons) if reasons else ""), 400)


def _pick_lengths(longer: list[int]) -> list[int]:
    if len(longer) <= MAX_LENGTH_COLUMNS:
        return longer
    idx = np.unique(np.linspace(0, len(longer) - 1, MAX_LENGTH_COLUMNS).round().astype(int))
    return [longer[i] for i in idx]


def task_table(runs: pd.DataFrame, manifest: dict[str, Any] | None, task: str, heading_level: int = 2) -> str:
    """The Markdown section of one task: ranking statement, table, notes.

    Args:
        runs: The experiment's runs.csv (:func:`benchmarks.results.read_runs`).
        manifest: Its experiment.json, or ``None``.
        task: Task id.
        heading_level: Markdown level of the task's heading.
    """
    score = task_score(runs, manifest, task)
    rows, longer, train_max = _agent_rows(runs, manifest, task, score)
    shown = _pick_lengths(longer)
    seeds = max((r.seeds for r in rows), default=0)
    if train_max is not None:
        train_col = f"training lengths (≤ {train_max})"
        rank_words = (
            f"the mean over seeds of the {score.label} at the training lengths "
            f"(test lengths ≤ {train_max}, averaged per seed)"
        )
    else:
        train_col = "all test lengths"
        rank_words = (
            f"the mean over seeds of the {score.label} over all test lengths "
            "(the training range is unknown: no experiment.json)"
        )
    header = [
        "rank", "agent", "parameters", train_col, *(f"length {L}" for L in shown),
        "sequences to converge", "time to converge", "status",
    ]
    body = []
    for i, row in enumerate(rows, start=1):
        seqs, wall = _converge(row)
        body.append(
            [
                str(i) if row.train else "—",
                f"`{row.agent}`" + (f" ({row.lr_note})" if row.lr_note else ""),
                f"{row.parameters:,}" if row.parameters is not None else "?",
                _stat(row.train),
                *(_stat(row.longer.get(L, [])) for L in shown),
                seqs,
                wall,
                _status(row),
            ]
        )
    name = (manifest or {}).get("tasks", {}).get(task, {}).get("short_id") or task.split("/", 1)[-1]
    lines = [
        f"{'#' * heading_level} {name} (`{task}`)",
        "",
        f"Score: {score.label} (lower is better), mean ± sd over seeds (max = the worst seed), "
        f"{seeds} seed(s) per agent. Ranked first by the number of seeds that diverged or failed (fewest "
        f"first: a mean over the seeds that survived does not outrank a full set), then by {rank_words}, "
        "ascending; ties broken by the longest test length; agents without an evaluated seed come last.",
        "",
        markdown_table(header, body),
    ]
    if shown != longer:
        note = f"Longer-length columns: {len(shown)} of the {len(longer)} longer test lengths; runs.csv has all."
        lines += ["", note]
    return "\n".join(lines)


def experiment_leaderboard(results_dir: str | Path, heading_level: int = 1) -> str:
    """The Markdown leaderboard of one experiment's results folder.

    Args:
        results_dir: Folder with runs.csv (and ideally experiment.json).
        heading_level: Markdown level of the title; each task's heading is one level below.
    """
    results_dir = Path(results_dir)
    runs = read_runs(results_dir)
    manifest = read_manifest(results_dir)
    name = (manifest or {}).get("name") or (runs["experiment"].iloc[0] if len(runs) else results_dir.name)
    tasks = list(dict.fromkeys(list((manifest or {}).get("tasks", {})) + list(runs["task"].unique())))
    parts = [f"{'#' * heading_level} Leaderboard: {name}", ""]
    if manifest and manifest.get("description"):
        parts += [manifest["description"], ""]
    if manifest:
        ev = manifest.get("eval", {})
        parts += [
            f"Evaluation: {ev.get('samples', '?')} test sequences per length, evaluation seed {ev.get('seed', '?')} "
            f"(the same test sequences for every agent); training seeds {manifest.get('seeds')}. "
            f"Source: `{manifest.get('source', '?')}`.",
            "",
        ]
    for task in tasks:
        parts += [task_table(runs, manifest, task, heading_level + 1), ""]
    return "\n".join(parts).rstrip() + "\n"


def write_leaderboard(results_dir: str | Path) -> Path:
    """Write ``results_dir/leaderboard.md`` atomically and return its path."""
    results_dir = Path(results_dir)
    return write_text_atomic(results_dir / LEADERBOARD_FILE, experiment_leaderboard(results_dir))


# -- suites: in-distribution and OOD scores, best of N and mean ± sd ------------------------------------------


_PER_TASK_EVAL = ("lengths", "test_set")


def _short_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def protocol_hash(cell: dict[str, Any], lrs: Sequence[float], seeds: Sequence[int]) -> str:
    """Hash of the protocol two cells must share to be ranked together: the suite's name and version, the
    training settings but the learning rate, the evaluation settings, and the grid (learning rates and seeds:
    the N of best-of-N). What is per task (its configuration and test set) is :func:`task_hash`."""
    identity = cell.get("identity") or {}
    train = {k: v for k, v in (identity.get("train") or cell.get("train") or {}).items() if k != "lr"}
    evaluation = {k: v for k, v in (identity.get("eval") or cell.get("eval") or {}).items() if k not in _PER_TASK_EVAL}
    suite = cell.get("suite") or {}
    return _short_hash({
        "suite": [suite.get("suite"), suite.get("version")],
        "train": train,
        "eval": evaluation,
        "lrs": sorted(float(x) for x in lrs),
        "seeds": sorted(int(x) for x in seeds),
    })


def task_hash(cell: dict[str, Any]) -> str:
    """Hash of a cell's task protocol: the task id, its resolved configuration, its test lengths and test set
    (file checksum and length groups)."""
    identity = cell.get("identity") or {}
    evaluation = identity.get("eval") or cell.get("eval") or {}
    return _short_hash({
        "task": cell.get("task"),
        "task_config": identity.get("task_config", cell.get("task_kwargs")),
        "eval": {k: evaluation.get(k) for k in _PER_TASK_EVAL},
        "suite": cell.get("suite"),
    })


def suite_scores(root: str | Path) -> pd.DataFrame:
    """One row per finished, evaluated suite cell under ``root`` (every experiment folder with a runs.csv):
    ``suite, version, protocol, task_protocol, experiment, task, agent, lr, seed, budget, validation,
    in_distribution, out_of_distribution``. ``validation`` is the cell's score on sequences sampled from its training range
    (bit errors per sequence, lower is better); the other two are mean per-bit accuracies over the suite's
    length groups of the frozen test set."""
    records = []
    for folder in _experiment_dirs(Path(root)):
        manifest = read_manifest(folder)
        cells = [c for c in (manifest or {}).get("cells", []) if c.get("suite")]
        if not cells:
            continue
        runs = read_runs(folder)
        evals = runs[runs["phase"] == "eval"]
        grid: dict[str, tuple[set[float], set[int]]] = {}
        for c in cells:
            lrs, seeds = grid.setdefault(c["task"], (set(), set()))
            lrs.add(float(c["lr"]))
            seeds.add(int(c["seed"]))
        for c in cells:
            if c.get("status") not in ("ok", "converged"):
                continue
            mine = evals[(evals["task"] == c["task"]) & (evals["agent"] == c["agent"]) & (evals["seed"] == c["seed"])
                         & np.isclose(evals["lr"].astype(float), float(c["lr"]))]
            value = mine.set_index(["metric", "length"])["value"]

            def mean_accuracy(lengths: list[int]) -> float:
                got = [value.get(("bit_accuracy", n)) for n in lengths]
                return float(np.mean(got)) if got and all(v is not None for v in got) else float("nan")

            suite = c["suite"]
            lrs, seeds = grid[c["task"]]
            records.append({
                "suite": suite["suite"], "version": suite["version"],
                "protocol": protocol_hash(c, sorted(lrs), sorted(seeds)), "task_protocol": task_hash(c),
                "experiment": (manifest or {}).get("name", folder.name), "task": c["task"], "agent": c["agent"],
                "lr": float(c["lr"]), "seed": int(c["seed"]),
                "budget": f"{c['train'].get('steps')} steps x {c['train'].get('batch_size')} sequences",
                "validation": float(value.get(("bit_errors", -1), float("nan"))),
                "in_distribution": mean_accuracy(suite["in_distribution"]),
                "out_of_distribution": mean_accuracy(suite["out_of_distribution"]),
            })
    return pd.DataFrame(records)


def _pct(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{100 * x:.1f}"


def suite_leaderboard(scores: pd.DataFrame) -> str:
    """Markdown: per (suite, version, protocol) and task, a row per agent with the best of N and mean ± sd."""
    lines = []
    for (suite, version, protocol), group in scores.groupby(["suite", "version", "protocol"], sort=True):
        experiments = ", ".join(f"`{e}`" for e in sorted(group["experiment"].unique()))
        budgets = ", ".join(sorted(group["budget"].unique()))
        lines += [f"## {suite} v{version}, protocol `{protocol}` ({experiments}; budget per cell: {budgets})", ""]
        for (task, task_protocol), rows in group.groupby(["task", "task_protocol"], sort=False):
            body = []
            for agent, cells in rows.groupby("agent", sort=False):
                cells = cells.dropna(subset=["validation"])
                if cells.empty:
                    continue
                best = cells.loc[cells["validation"].idxmin()]  # selected on validation, never on test
                by_lr = cells.groupby("lr")["validation"].mean()
                best_lr = float(by_lr.idxmin())
                at_lr = cells[np.isclose(cells["lr"], best_lr)]

                def spread(column: str) -> str:
                    values = at_lr[column].to_numpy() * 100
                    sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
                    return f"{np.mean(values):.1f} ± {sd:.1f}" if math.isfinite(sd) else f"{np.mean(values):.1f}"

                body.append((-float(best["out_of_distribution"]), [
                    f"`{agent}`", str(len(cells)),
                    _pct(best["in_distribution"]), _pct(best["out_of_distribution"]),
                    f"lr {best['lr']:g}, seed {int(best['seed'])} (validation {best['validation']:.3g})",
                    f"{best_lr:g}", spread("in_distribution"), spread("out_of_distribution") + f" (n={len(at_lr)})",
                ]))
            body.sort(key=lambda entry: entry[0] if math.isfinite(entry[0]) else 0.0)
            header = ["rank", "agent", "N", "best of N: ID %", "best of N: OOD %", "best-of-N cell",
                      "best lr (mean validation)", "mean ± sd at best lr: ID %", "mean ± sd at best lr: OOD %"]
            lines += [
                f"### {task.split('/', 1)[-1]} (`{task}`, task protocol `{task_protocol}`)", "",
                markdown_table(header, [[str(i), *cells] for i, (_, cells) in enumerate(body, start=1)]), "",
            ]
    return "\n".join(lines)


# -- merging experiments --------------------------------------------------------------------------------------


def _experiment_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob(f"*/{RUNS_FILE}"))


def merge_leaderboards(root: str | Path) -> Path:
    """Write ``root/LEADERBOARD.md``: each experiment's tables, then a combined ranking per task.

    Args:
        root: Folder whose sub-folders are experiment results (each with runs.csv).

    Returns:
        The path written.

    Raises:
        FileNotFoundError: no experiment results under ``root``.
    """
    root = Path(root)
    dirs = _experiment_dirs(root)
    if not dirs:
        raise FileNotFoundError(f"{root}: no experiment results (no */{RUNS_FILE}); run `memtasks run FILE` first")
    combined: dict[str, list[tuple[tuple[bool, int, float, float, str], list[str]]]] = {}
    sections = []
    for folder in dirs:
        sections.append(experiment_leaderboard(folder, heading_level=2))
        runs, manifest = read_runs(folder), read_manifest(folder)
        name = (manifest or {}).get("name") or folder.name
        for task in runs["task"].unique():
            score = task_score(runs, manifest, task)
            rows, _, train_max = _agent_rows(runs, manifest, task, score)
            for row in rows:
                combined.setdefault(task, []).append(
                    (
                        row.rank_key,
                        [
                            f"`{name}`",
                            f"`{row.agent}`",
                            f"{row.parameters:,}" if row.parameters is not None else "?",
                            f"≤ {train_max}" if train_max is not None else "?",
                            f"{_stat(row.train)} ({score.label})",
                            _converge(row)[0],
                            _status(row),
                        ],
                    )
                )
    scores = suite_scores(root)
    suite_lines: list[str] = []
    if not scores.empty:
        suite_lines = [
            "## Suites (the canonical ranking)",
            "",
            "Scores are per-bit accuracy in % on the suite's frozen test sets (`benchmarks/testsets.py`), the mean "
            "over its in-distribution (ID) and out-of-distribution (OOD) test lengths; higher is better. "
            "**Best of N**: the one cell (of N = learning rates x seeds) with the lowest bit errors on sequences "
            "sampled from its training range (validation), and its test scores: selected on validation, never on "
            "test. **Mean ± sd**: over the seeds at the learning rate with the best mean validation. Only cells "
            "with the same suite version and protocol hash (task settings, budget, evaluation, grid) share a "
            "table; agents are ranked by best-of-N OOD accuracy.",
            "",
            suite_leaderboard(scores),
        ]
    lines = [
        "# Leaderboard",
        "",
        *suite_lines,
        f"Merged from {len(dirs)} experiment(s) under `{root}` by `memtasks leaderboard`. "
        "The combined ranking below lists every (experiment, agent) per task; the experiments may differ in "
        "training ranges, budgets and test sets, so compare rows of different experiments with care.",
        "",
        "## Combined ranking per task",
        "",
    ]
    for task, entries in combined.items():
        entries.sort(key=lambda e: e[0])
        header = [
            "rank", "experiment", "agent", "parameters", "trained on lengths",
            "score at the training lengths", "sequences to converge", "status",
        ]
        body = [[str(i) if not key[0] else "—", *cells] for i, (key, cells) in enumerate(entries, start=1)]
        lines += [
            f"### {task.split('/', 1)[-1]} (`{task}`)",
            "",
            "Ranked first by the number of seeds that diverged or failed (fewest first), then by the mean over "
            "seeds of the score at each experiment's training lengths, ascending.",
            "",
            markdown_table(header, body),
            "",
        ]
    lines += sections
    return write_text_atomic(root / MERGED_FILE, "\n".join(lines).rstrip() + "\n")


# -- command line ---------------------------------------------------------------------------------------------


def cli(argv: list[str]) -> int:
    """Merge experiments' leaderboards.

    ``memtasks leaderboard DIR``: DIR with runs.csv -> its leaderboard.md; else merge DIR/* -> DIR/LEADERBOARD.md.
    """
    parser = argparse.ArgumentParser(
        prog="memtasks leaderboard",
        description=(
            "Write leaderboards from runs.csv. Given an experiment's results folder, rewrite its leaderboard.md; "
            "given a folder of experiments (e.g. results/), merge them into LEADERBOARD.md."
        ),
    )
    parser.add_argument(
        "results", nargs="?", default="results", help="results/ or results/<experiment> (default: results)"
    )
    args = parser.parse_args(argv)
    folder = Path(args.results)
    try:
        if (folder / RUNS_FILE).is_file():
            path = write_leaderboard(folder)
        else:
            for sub in _experiment_dirs(folder):
                write_leaderboard(sub)
            path = merge_leaderboards(folder)
    except (FileNotFoundError, ValueError) as exc:
        print(f"memtasks leaderboard: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0
