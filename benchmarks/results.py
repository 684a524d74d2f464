"""The files an experiment writes, and the one tidy table every plot and leaderboard reads.

Layout of ``results/<experiment>/`` (written by ``memtasks run``)::

    runs.csv            every measurement, one row each (schema below)
    experiment.json     the resolved grid: per-task training ranges, per-cell configs and outcomes
    leaderboard.md      per-task ranking (benchmarks.leaderboard)
    generalisation.png  error against test length (benchmarks.plots)
    learning.png        training cost against sequences seen (benchmarks.plots)
    cells/<task>__<agent>__seed<k>/
        train.csv       the training log (benchmarks.train)
        model.pt        the trained agent (agents.load_checkpoint)
        result.json     the training result (benchmarks.train.TrainResult + config)
        eval.csv        the evaluation sweep (benchmarks.evaluate)
        cell.json       the cell's record, written last and atomically: a cell is finished
                        exactly when its cell.json exists

``<task>`` is the task id without its ``memtasks/`` namespace (``Copy-v0``).

runs.csv
--------
One row per measurement; the same columns for training and evaluation:

==============  =========  ===================================================================
column          type       meaning
==============  =========  ===================================================================
experiment      str        experiment name (``name`` in the file, default its stem)
task            str        task id, ``memtasks/<Name>-vN``
agent           str        agent label (the ``[agents.<label>]`` table)
seed            int        training seed
lr              float      the cell's learning rate (a grid's axis with ``lrs``; empty in files written
                           before the column existed)
phase           str        ``train`` (a row of train.csv), ``valid`` (a validation of the epoch mode or
                           of ``select_every``: valid.csv) or ``eval`` (a row of eval.csv)
split           str/empty  the data scored: ``valid`` / ``test`` / ``train`` (``eval`` rows: ``test`` for a
                           sweep, ``valid`` for a suite's training-range rows at length -1, each split
                           of a dataset task); ``valid`` on ``valid`` rows; empty on ``train`` rows
step            int        optimisation steps done; for ``eval`` rows, the final step of training
epoch           int/empty  epoch mode (datasets): the 1-based epoch of a ``train`` or ``valid`` row, the
                           kept (validation-selected) epoch on ``eval`` rows; empty otherwise
sequences_seen  int        training sequences seen (``step * batch_size``); ``eval``: the final count
wall_s          float      seconds since training started; ``eval``: the training time
length          int/empty  ``eval``: the test length (-1: lengths drawn from the training range, or a
                           dataset's whole split); empty for ``train`` and ``valid`` rows
metric          str        the measurement's name (list below)
value           float      its value; empty if not a number (a diverged loss is written as empty)
==============  =========  ===================================================================

Metrics. ``train`` rows, each the mean over the training batches since the
previous log row: ``loss`` (the training loss, mean BCE per scored bit in nats,
or cross-entropy), ``grad_norm`` (before clipping), the task's score metrics and
``curriculum_max_length``. ``eval`` rows, over ``samples`` fixed test sequences:
the task's score metrics. Score metrics: for bit outputs ``cost_bits`` (binary
cross-entropy per sequence, in bits), ``bit_errors`` (wrong bits per sequence)
and ``seq_accuracy`` (fraction of sequences without a wrong bit); for class
outputs ``error_rate``, ``accuracy``, ``cost_nats`` (mean cross-entropy per
answer) and ``seq_accuracy``.

Rows come from finished cells only (those with a ``cell.json`` recorded by the
current experiment file), in grid order (task, agent, seed as listed in the
file; then train before eval; then the source files' row order), so assembling
twice gives the same file. A cell that diverged or failed keeps its training
rows (up to where it stopped) and has no ``eval`` rows. On the CPU, the same
experiment file gives the same values in every column but ``wall_s``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memtasks.atomic import atomic_open, write_text_atomic

__all__ = [
    "CELL_FILE",
    "EVALUATED_STATUSES",
    "FINISHED_STATUSES",
    "MANIFEST_FILE",
    "RUNS_COLUMNS",
    "RUNS_FILE",
    "assemble_runs",
    "cell_rows",
    "json_safe",
    "read_cell_record",
    "read_manifest",
    "read_runs",
    "write_csv_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

RUNS_FILE = "runs.csv"
"""The tidy table, in the experiment's results folder."""
MANIFEST_FILE = "experiment.json"
"""The resolved grid with per-cell outcomes, next to ``runs.csv``."""
CELL_FILE = "cell.json"
"""A cell's record; its presence marks the cell finished."""

RUNS_COLUMNS: tuple[str, ...] = (
    "experiment",
    "task",
    "agent",
    "seed",
    "lr",
    "phase",
    "split",
    "step",
    "epoch",
    "sequences_seen",
    "wall_s",
    "length",
    "metric",
    "value",
)
"""The columns of ``runs.csv``, in order."""

FINISHED_STATUSES: tuple[str, ...] = ("ok", "converged", "diverged", "failed")
"""Statuses of a finished cell (a re-run skips it)."""
EVALUATED_STATUSES: tuple[str, ...] = ("ok", "converged")
"""Statuses of a cell whose agent was evaluated (it has ``eval`` rows)."""

_INDEX_COLUMNS = ("step", "sequences_seen", "wall_s", "epoch")
_DTYPES = {
    "experiment": "string",
    "task": "string",
    "agent": "string",
    "seed": "int64",
    "lr": "float64",
    "phase": "string",
    "split": "string",
    "step": "int64",
    "epoch": "Int64",  # nullable: empty outside the epoch mode
    "sequences_seen": "int64",
    "wall_s": "float64",
    "length": "Int64",  # nullable: empty on train rows
    "metric": "string",
    "value": "float64",
}


# -- atomic writes: a reader (or a re-run after kill -9) sees the old file or the new one, never half ---


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """:func:`write_text_atomic` of ``data`` as indented JSON; NaN and infinities become ``null`` (JSON has none)."""
    return write_text_atomic(path, json.dumps(json_safe(data), indent=2, allow_nan=False, default=_jsonable) + "\n")


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by ``None``, recursively through dicts, lists, tuples."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_csv_atomic(path: str | Path, frame: pd.DataFrame) -> Path:
    """:func:`write_text_atomic` of ``frame`` as CSV without the index (floats written round-trip exact)."""
    return write_text_atomic(path, frame.to_csv(index=False, lineterminator="\n"))


def _jsonable(value: Any) -> Any:
    """JSON fallback for tuples inside dataclasses and numpy scalars."""
    if isinstance(value, (tuple, set)):
        return list(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# -- reading cells ----------------------------------------------------------------------------------


def read_cell_record(cell_dir: str | Path) -> dict[str, Any] | None:
    """A cell's ``cell.json``, or ``None`` if the cell is unfinished (no file, or not a finished record)."""
    path = Path(cell_dir) / CELL_FILE
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or record.get("status") not in FINISHED_STATUSES:
        return None
    return record


def cell_rows(record: Mapping[str, Any], cell_dir: str | Path) -> pd.DataFrame:
    """The ``runs.csv`` rows of one finished cell, from its ``train.csv`` and ``eval.csv``.

    Args:
        record: The cell's ``cell.json`` (names experiment, task, agent, seed and the final
            step, sequences and training time).
        cell_dir: The cell's folder.

    Returns:
        A frame with :data:`RUNS_COLUMNS` (possibly empty, e.g. a cell that failed before its first step).
    """
    cell_dir = Path(cell_dir)
    parts = []
    train_csv = cell_dir / "train.csv"
    for phase, name in (("train", "train.csv"), ("valid", "valid.csv")):
        if not (cell_dir / name).is_file():
            continue
        log = pd.read_csv(cell_dir / name)
        if "epoch" not in log:
            log["epoch"] = pd.NA
        metrics = [c for c in log.columns if c not in _INDEX_COLUMNS]
        if len(log) and metrics:
            long = log.melt(id_vars=list(_INDEX_COLUMNS), value_vars=metrics, var_name="metric", value_name="value")
            # melt stacks metric by metric; order by step so a row block reads as one log line
            long["_order"] = long.groupby("metric", sort=False).cumcount()
            long["_metric"] = long["metric"].map({m: i for i, m in enumerate(metrics)})
            long = long.sort_values(["_order", "_metric"], kind="stable").drop(columns=["_order", "_metric"])
            long["phase"] = phase
            long["split"] = pd.NA if phase == "train" else "valid"
            long["length"] = pd.NA
            parts.append(long)
    eval_csv = cell_dir / "eval.csv"
    if record.get("status") in EVALUATED_STATUSES and eval_csv.is_file():
        sweep = pd.read_csv(eval_csv)
        if "split" not in sweep:  # eval.csv before the column: rows at length -1 were a suite's validation
            sweep["split"] = np.where(sweep["length"] == -1, "valid", "test")
        sweep = sweep[["split", "length", "metric", "value"]].copy()
        sweep["epoch"] = record.get("best_epoch")
        sweep["phase"] = "eval"
        sweep["step"] = int(record["steps"])
        sweep["sequences_seen"] = int(record["sequences_seen"])
        sweep["wall_s"] = float(record["train_wall_s"])
        parts.append(sweep)
    if not parts:
        return _typed(pd.DataFrame(columns=list(RUNS_COLUMNS)))
    rows = pd.concat(parts, ignore_index=True)
    for key in ("experiment", "task", "agent", "seed"):
        rows[key] = record[key]
    rows["lr"] = record.get("lr", record.get("train", {}).get("lr"))
    return _typed(rows[list(RUNS_COLUMNS)])


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Cast to the schema's dtypes (so an empty or all-NaN column still has the right type)."""
    out = frame.copy()
    for column, dtype in _DTYPES.items():
        if column == "value":
            out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
        else:
            out[column] = out[column].astype(dtype)
    return out.reset_index(drop=True)


def assemble_runs(cells: Iterable[Any], out_dir: str | Path) -> pd.DataFrame:
    """Rebuild ``runs.csv`` from the finished cells of a grid and write it atomically.

    Only cells whose ``cell.json`` exists, has a finished status and carries the
    fingerprint of the cell as the experiment file defines it now are read;
    anything else (unfinished, or left by an earlier version of the file) is
    skipped. Running this twice gives byte-identical files.

    Args:
        cells: The experiment's :class:`~benchmarks.experiment.Cell` objects, in grid order.
        out_dir: The experiment's results folder (holds ``cells/``).

    Returns:
        The table written to ``out_dir/runs.csv``.
    """
    out_dir = Path(out_dir)
    frames = []
    for cell in cells:
        cell_dir = out_dir / "cells" / cell.name
        record = read_cell_record(cell_dir)
        if not cell.is_current(record):
            continue
        # the grid names the cell (a renamed experiment reuses its cells under the new name)
        identity = {"experiment": cell.experiment, "task": cell.task, "agent": cell.agent, "seed": cell.seed}
        frames.append(cell_rows({**record, **identity}, cell_dir))
    runs = pd.concat(frames, ignore_index=True) if frames else _typed(pd.DataFrame(columns=list(RUNS_COLUMNS)))
    write_csv_atomic(out_dir / RUNS_FILE, runs)
    return runs


def read_runs(path: str | Path) -> pd.DataFrame:
    """Read ``runs.csv`` (or the folder holding it) with the schema's dtypes.

    A folder without ``runs.csv`` but with ``runs.csv.gz`` (how large committed results are kept) is read from
    the compressed file.

    Raises:
        FileNotFoundError: no runs.csv there.
        ValueError: the file lacks columns of :data:`RUNS_COLUMNS` (the message lists them).
    """
    path = Path(path)
    if path.is_dir():
        path = path / RUNS_FILE if (path / RUNS_FILE).is_file() or not (path / f"{RUNS_FILE}.gz").is_file() \
            else path / f"{RUNS_FILE}.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; run the experiment first (memtasks run FILE)")
    frame = pd.read_csv(path, keep_default_na=True)
    if "lr" not in frame.columns:  # written before the column existed
        frame.insert(frame.columns.get_loc("seed") + 1 if "seed" in frame.columns else 0, "lr", float("nan"))
    if "epoch" not in frame.columns:  # written before the epoch mode
        frame["epoch"] = pd.NA
    if "split" not in frame.columns:  # before the column: eval rows at -1 were a suite's validation
        evals = frame.get("phase") == "eval"
        frame["split"] = pd.NA
        frame.loc[evals, "split"] = "test"
        frame.loc[evals & (frame.get("length") == -1), "split"] = "valid"
    missing = [c for c in RUNS_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; runs.csv has columns {', '.join(RUNS_COLUMNS)}")
    return _typed(frame[list(RUNS_COLUMNS)])


def read_manifest(results_dir: str | Path) -> dict[str, Any] | None:
    """``experiment.json`` (else ``experiment.json.gz``) of a results folder, or ``None`` when absent or
    unreadable (callers fall back)."""
    import gzip

    folder = Path(results_dir)
    try:
        if (folder / MANIFEST_FILE).is_file() or not (folder / f"{MANIFEST_FILE}.gz").is_file():
            data = json.loads((folder / MANIFEST_FILE).read_text())
        else:
            data = json.loads(gzip.decompress((folder / f"{MANIFEST_FILE}.gz").read_bytes()))
    except (FileNotFoundError, json.JSONDecodeError, OSError):
        return None
    return data if isinstance(data, dict) else None


def pack(results_dir: str | Path) -> list[Path]:
    """Compress a results folder's ``runs.csv`` and ``experiment.json`` to ``.gz`` (deterministic bytes: no
    file name or time in the header) and delete the originals: how large results are committed. The readers
    (:func:`read_runs`, :func:`read_manifest`) take either form; ``cells/`` is left alone.

    Returns:
        The ``.gz`` files written.
    """
    import gzip

    written = []
    for name in (RUNS_FILE, MANIFEST_FILE):
        source = Path(results_dir) / name
        if not source.is_file():
            continue
        target = source.with_name(name + ".gz")
        with atomic_open(target, "wb") as f:
            f.write(gzip.compress(source.read_bytes(), compresslevel=9, mtime=0))
        source.unlink()
        written.append(target)
    return written


if __name__ == "__main__":  # python -m benchmarks.results pack FOLDER [FOLDER ...]
    import sys

    if len(sys.argv) < 3 or sys.argv[1] != "pack":
        print("usage: python -m benchmarks.results pack FOLDER [FOLDER ...]", file=sys.stderr)
        sys.exit(2)
    for folder in sys.argv[2:]:
        for path in pack(folder):
            print(f"wrote {path}")
