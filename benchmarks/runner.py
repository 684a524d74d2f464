"""Run an experiment file: train and evaluate every cell, in parallel, resumably; then tabulate and plot.

``memtasks run benchmarks/experiments/quick.toml [--out results/quick] [--workers N]``
(or :func:`run_experiment`) does, for the experiment's grid (schema:
:mod:`benchmarks.experiment`; output files: :mod:`benchmarks.results`):

1. load and check the file (nothing runs if any key is wrong);
2. write ``experiment.json``; skip the cells that are finished already (their
   ``cell.json`` exists with the fingerprint of the cell as the file defines it now);
3. run the other cells in ``--workers`` processes (``spawn``), each process
   with ``torch.set_num_threads(cpus // workers)`` so cells do not fight over
   cores. A cell deletes whatever an interrupted attempt left in its folder,
   trains (:func:`benchmarks.train.train`), evaluates the trained agent over the
   sweep with the experiment's evaluation seed (:func:`benchmarks.evaluate.evaluate`)
   and writes ``eval.csv``, then, as its very last act, ``cell.json`` (atomically);
4. assemble ``runs.csv`` from the finished cells, rewrite ``experiment.json``
   with the outcomes, write ``leaderboard.md`` and the plots.

A cell that diverges or raises is recorded (status ``diverged`` / ``failed``
with the reason) and the others go on. After ``kill -9`` at any moment the same
command finishes the job: finished cells are kept, unfinished ones redone, and
every table is rebuilt from the cells' files, so no row is duplicated or torn.
``--retry-failed`` redoes the failed cells too. A lock file keeps two runs from
writing one results folder at once.

Backends. ``--backend local`` (the default) is the process pool above.
``--backend ray [--address HOST:PORT]`` runs each pending cell as a Ray task
(``pip install -e ".[ray]"``) that asks for ``threads`` CPUs and, when the cell's
device is ``cuda`` (or ``auto`` on a cluster that has GPUs), one GPU of its own;
Ray then shows the task only that GPU, so a cell's device may not name another
index (``cuda:1``) on this backend. Without ``--address`` a private local Ray is
started with ``workers x threads`` CPUs (as the pool above would use) and shut
down at the end; with one, the run joins that cluster, and the default number of
cells at once and threads per cell come from the cluster's CPUs the same way
(threads at most one node's CPUs). A Ray already initialised in the calling
process is used as it is and left running.

Design: the records come back to the driver. A Ray task runs the very same
:func:`run_cell` (so the backends cannot drift: same threads pinning, same
seeds, same files) into a temporary folder on its worker, and returns the
record with the folder's files as bytes; the driver deletes what an earlier
attempt left in ``cells/<cell>/`` and writes the files there, each atomically and
``cell.json`` last. So a cluster needs no shared storage (the results folder
lives on the driver only), a worker never writes into it (a task still running
after its driver was killed writes only into its own temporary folder), and a
killed driver leaves exactly what the local backend leaves: finished cells (with
their ``cell.json``) and unfinished ones, which the same command redoes. Every
node needs the same code and environment: a record whose fingerprint differs
from the driver's (other code or defaults on its node) is not stored, and the
run ends with a RuntimeError naming the cell. Ray's workers' own output stays in
Ray's session logs (``log_to_driver=False``); a cell's outcome and any traceback
are in its ``cell.json`` as usual.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import dataclasses
import fnmatch
import functools
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from benchmarks.experiment import Cell, Experiment, ExperimentError, load_experiment, short_task_id
from benchmarks.provenance import describe_changes, environment
from benchmarks.results import (
    CELL_FILE,
    EVALUATED_STATUSES,
    MANIFEST_FILE,
    assemble_runs,
    read_cell_record,
    write_csv_atomic,
    write_json_atomic,
)
from memtasks.atomic import atomic_open

__all__ = [
    "BACKENDS",
    "BackendError",
    "RunSummary",
    "check_backend",
    "cli",
    "default_workers",
    "plan_lines",
    "run_cell",
    "run_experiment",
    "write_manifest",
]

BACKENDS: tuple[str, ...] = ("local", "ray")
"""Where cells run: ``local`` (a process pool on this machine, the default) or ``ray`` (Ray tasks)."""

_RAY_INSTALL = 'pip install -e ".[ray]"'

_LOCK_FILE = ".lock"
_WORKERS_LOCK_FILE = ".workers.lock"


@dataclass
class RunSummary:
    """What :func:`run_experiment` did."""

    experiment: str
    """Experiment name."""
    out_dir: Path
    """The results folder."""
    cells: int
    """Cells in the grid."""
    skipped: int
    """Cells found finished and kept."""
    ran: int
    """Cells run by this call."""
    statuses: dict[str, int] = field(default_factory=dict)
    """Count of each status over the whole grid (``unfinished`` for cells without a current record, ``left out``
    for those that ``only`` kept from running)."""
    failures: list[str] = field(default_factory=list)
    """``"<cell>: <status>: <message>"`` for every diverged or failed cell."""
    stale: list[str] = field(default_factory=list)
    """For every cell whose record no longer matches its fingerprint (so it was run again): what changed
    (:func:`benchmarks.provenance.describe_changes`)."""
    outputs: list[Path] = field(default_factory=list)
    """Files written at the end (runs.csv, experiment.json, leaderboard.md, plots)."""
    wall_s: float = 0.0
    """Seconds the call took."""

    @property
    def ok(self) -> bool:
        """Every cell this call was asked to run is finished and none failed with an exception (diverging is a
        result, not an error); cells left out by ``only`` do not count."""
        return self.statuses.get("failed", 0) == 0 and self.statuses.get("unfinished", 0) == 0


def available_cpus() -> int:
    """CPUs this process may use (the affinity mask where the OS has one, else ``os.cpu_count()``)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_workers(pending: int) -> int:
    """``min(pending cells, CPUs)``, at least 1."""
    return max(1, min(pending, available_cpus()))


class BackendError(ValueError):
    """A backend that cannot be used as asked (unknown, not installed, or options that do not fit it)."""


def check_backend(backend: str, address: str | None = None) -> None:
    """Refuse, with a one-line :class:`BackendError`, a backend this run cannot use.

    Args:
        backend: One of :data:`BACKENDS`.
        address: A Ray cluster's address (``HOST:PORT``, or ``auto``); only with ``ray``.
    """
    if backend not in BACKENDS:
        raise BackendError(
            f"--backend {backend!r} is not known: use 'local' (the default, a process pool on this machine) "
            f"or 'ray' (Ray tasks, locally or on a cluster; {_RAY_INSTALL})"
        )
    if address is not None and backend != "ray":
        raise BackendError(
            f"--address {address!r} is only for --backend ray (allowed backends: {', '.join(BACKENDS)}): "
            f"add --backend ray ({_RAY_INSTALL}), or drop --address to run on the local process pool"
        )
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError as exc:
            raise BackendError(
                f"--backend ray needs the ray package, which cannot be imported ({type(exc).__name__}): "
                f"{_RAY_INSTALL}, or use --backend local (the default)"
            ) from None


# -- one cell -------------------------------------------------------------------------------------------


def _now() -> str:
    """UTC time stamp for cell records."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_cell(cell: Cell, cell_dir: str | Path, threads: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Train and evaluate one cell in ``cell_dir``; write ``cell.json`` last; return that record.

    Whatever is in ``cell_dir`` is deleted first (the remains of an interrupted
    attempt). Exceptions are recorded, never raised: a cell that diverges gets
    status ``diverged``, one whose training or evaluation raises gets ``failed``
    with ``"<ExceptionType>: <text>"`` as its message and the traceback.

    Args:
        cell: The resolved cell.
        cell_dir: Its folder, ``results/<experiment>/cells/<cell.name>``.
        threads: Torch threads for training and evaluation (``None``: leave as is).
        progress: Show the training progress bar.

    Returns:
        The cell record (the content of ``cell.json``).
    """
    import torch

    from benchmarks.evaluate import evaluate
    from benchmarks.train import train

    cell_dir = Path(cell_dir)
    if cell_dir.exists():
        shutil.rmtree(cell_dir)
    cell_dir.mkdir(parents=True)
    record: dict[str, Any] = {
        **cell.to_json(), "started_at": _now(), "threads": threads, "provenance": environment(cell.train.device),
    }
    start = time.perf_counter()
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        result = train(cell.train_config(threads=threads), cell_dir, progress=progress)
        record.update(
            status=result.status,
            message=result.message,
            epochs_run=result.epochs_run,
            best_epoch=result.best_epoch,
            best_step=result.best_step,
            warm_up_epochs=result.warm_up_epochs,
            steps=result.steps,
            sequences_seen=result.sequences_seen,
            train_wall_s=result.wall_s,
            converged_sequences=result.converged_sequences,
            converged_wall_s=result.converged_wall_s,
            num_parameters=result.num_parameters,
            final=result.final,
        )
        if result.status in EVALUATED_STATUSES:
            eval_start = time.perf_counter()
            record.update(_evaluate_cell(cell, cell_dir, evaluate))
            record["eval_wall_s"] = time.perf_counter() - eval_start
    except Exception as exc:  # recorded as the cell's outcome; the experiment goes on
        record.update(status="failed", message=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    finally:
        torch.set_num_threads(previous_threads)
    record.setdefault("steps", 0)
    record.setdefault("sequences_seen", 0)
    record.setdefault("train_wall_s", 0.0)
    record.update(wall_s=time.perf_counter() - start, finished_at=_now())
    write_json_atomic(cell_dir / CELL_FILE, record)  # the very last write: the cell is finished
    return record


def _evaluate_cell(cell: Cell, cell_dir: Path, evaluate: Any) -> dict[str, Any]:
    """Reload the saved agent, run the sweep, write ``eval.csv``; a failure here fails the cell."""
    import memtasks
    from agents import load_checkpoint

    try:
        agent, _, _ = load_checkpoint(cell_dir / "model.pt", device=cell.train.device)
        if cell.train.epochs is not None:  # a dataset: every sequence of its valid, test and train splits
            from benchmarks.evaluate import evaluate_dataset

            def make_split(split: str) -> Any:
                return memtasks.make_task(cell.task, **{**cell.task_kwargs, "split": split})

            sweep = evaluate_dataset(agent, make_split, cell.eval.batch_size)
        else:
            import pandas as pd

            task = memtasks.make_task(cell.task, **cell.task_kwargs)
            parts = []
            if cell.test_set is not None or cell.lr_grid:
                # validation on sequences sampled from the training range (length -1): suites and lr grids
                # select on these rows, never on the test lengths
                validation = evaluate(agent, task, None, cell.eval.samples, cell.eval.seed, cell.eval.batch_size)
                parts.append(validation.assign(split="valid"))
            if cell.test_set is None:
                parts.append(evaluate(agent, task, list(cell.eval.lengths), cell.eval.samples, cell.eval.seed,
                                      cell.eval.batch_size))  # fmt: skip
                for option, values in cell.eval.grid.items():  # a second axis (e.g. repeat copy's repeats)
                    from benchmarks.evaluate import evaluate_grid

                    parts.append(evaluate_grid(agent, task, list(cell.eval.lengths), option, values,
                                               cell.eval.samples, cell.eval.seed, cell.eval.batch_size))  # fmt: skip
            else:  # a suite: test on the frozen set
                from benchmarks.evaluate import evaluate_frozen
                from benchmarks.testsets import load_test_set

                frozen = load_test_set(cell.test_set.path, cell.test_set.sha256)
                parts.append(evaluate_frozen(agent, task, frozen, list(cell.eval.lengths), cell.eval.batch_size))
            sweep = pd.concat(parts, ignore_index=True)
    except Exception as exc:
        return {
            "status": "failed",
            "message": f"evaluation failed: {type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    if "split" not in sweep:
        sweep.insert(0, "split", "test")
    sweep["split"] = sweep["split"].fillna("test")
    write_csv_atomic(cell_dir / "eval.csv", sweep)
    return {}


# -- worker processes ---------------------------------------------------------------------------------


def _warm_up() -> None:
    """Pay torch's one-off lazy imports now, not inside the first cell's timed training budget.

    Building the first optimizer imports ``torch._dynamo`` (seconds on a busy
    CPU); ``train`` counts wall time from its start, so without this the first
    cell of each process would lose part of a ``minutes`` budget.
    """
    import torch

    weight = torch.zeros(1, requires_grad=True)
    torch.optim.Adam([weight]).step()


def _init_worker(threads: int, parent_pid: int, workers_lock: str | None) -> None:
    """Pin torch threads, hold the workers' shared lock, and exit if the runner dies (kill -9)."""
    import torch

    if workers_lock is not None:
        _hold_shared_lock(workers_lock)

    def watch_parent() -> None:
        # An orphaned worker would go on writing into a folder that a re-run is about to redo.
        while True:
            if os.getppid() != parent_pid:
                os._exit(70)
            time.sleep(0.2)

    threading.Thread(target=watch_parent, name="watch-parent", daemon=True).start()
    torch.set_num_threads(threads)
    _warm_up()


def _run_cell_in_worker(cell: Cell, cell_dir: str, threads: int) -> dict[str, Any]:
    """:func:`run_cell` without the training bar (several workers' bars would garble the terminal)."""
    return run_cell(cell, cell_dir, threads=threads, progress=False)


# -- locks ---------------------------------------------------------------------------------------------

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locking
    fcntl = None  # type: ignore[assignment]

_HELD_LOCKS: list[Any] = []  # open lock files of this worker process, kept for its lifetime


def _hold_shared_lock(path: str) -> None:
    """Hold ``path`` locked shared until this process ends (the OS releases it then, even on kill -9)."""
    if fcntl is None:
        return
    handle = open(path, "a+")
    fcntl.flock(handle, fcntl.LOCK_SH)
    _HELD_LOCKS.append(handle)


@contextlib.contextmanager
def _exclusive_run(out_dir: Path) -> Iterator[None]:
    """Hold the results folder for this run; wait for the workers of a killed run to have exited.

    The lock is an ``flock`` on ``out_dir/.lock``: the OS drops it when its
    holder dies, even by ``kill -9``, so a stale lock never blocks a re-run.
    Workers hold ``.workers.lock`` shared; taking it exclusively once proves no
    orphaned worker of an earlier run is still writing.
    """
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(out_dir / _LOCK_FILE, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"{out_dir} is being written by another `memtasks run`; wait for it to finish or stop it"
            ) from None
        with open(out_dir / _WORKERS_LOCK_FILE, "a+") as workers:
            deadline = time.monotonic() + 30.0
            while True:
                try:
                    fcntl.flock(workers, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"worker processes of an earlier run still hold {out_dir / _WORKERS_LOCK_FILE}; "
                            "stop them and run again"
                        ) from None
                    time.sleep(0.1)
            fcntl.flock(workers, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- the Ray backend -----------------------------------------------------------------------------------

_RAY_WARMED_UP = False  # per Ray worker process: _warm_up() done


def _run_cell_on_ray(cell: Cell, threads: int) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The body of a Ray task: :func:`run_cell` into a temporary folder; return the record and the folder's files.

    Files are keyed by their path relative to the cell folder (``/``-separated).
    Nothing is written outside the temporary folder, which is gone on return.
    """
    global _RAY_WARMED_UP
    if not _RAY_WARMED_UP:  # Ray reuses a worker process for CPU tasks: warm up once per process
        _warm_up()
        _RAY_WARMED_UP = True
    with tempfile.TemporaryDirectory(prefix="memtasks-cell-") as tmp:
        cell_dir = Path(tmp) / cell.name
        record = run_cell(cell, cell_dir, threads=threads, progress=False)
        files = {
            path.relative_to(cell_dir).as_posix(): path.read_bytes()
            for path in sorted(cell_dir.rglob("*"))
            if path.is_file()
        }
    return record, files


def _store_cell_files(cell_dir: Path, files: dict[str, bytes]) -> None:
    """Write the files a Ray task returned into ``cell_dir``: leftovers deleted, each file atomic, cell.json last."""
    if CELL_FILE not in files:
        raise RuntimeError(f"the Ray task of {cell_dir.name} returned no {CELL_FILE}")
    for name in files:
        parts = Path(name).parts
        if not parts or Path(name).is_absolute() or ".." in parts:
            raise RuntimeError(f"the Ray task of {cell_dir.name} returned a file outside its folder: {name!r}")
    if cell_dir.exists():
        shutil.rmtree(cell_dir)
    cell_dir.mkdir(parents=True)
    for name in sorted(files, key=lambda n: (n == CELL_FILE, n)):  # cell.json last: then the cell is finished
        target = cell_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(target, "wb") as handle:
            handle.write(files[name])


@dataclass
class _RayPlan:
    """How the pending cells are laid out on the Ray cluster."""

    cells_at_once: int
    threads: int
    gpus: dict[str, int]
    """GPUs per pending cell name (0 or 1)."""
    where: str
    """The cluster in words, for the start line."""


def _cell_gpus(cell: Cell, cluster_gpus: float) -> int:
    """1 when the cell trains on CUDA (``cuda``, ``cuda:0``, or ``auto`` on a cluster with GPUs), else 0.

    On a cluster without GPUs a ``cuda`` cell asks for none (a request no node can meet would wait
    forever) and fails in the cell as it would with the local backend on a machine without one.
    """
    device = cell.train.device
    if cluster_gpus <= 0:
        return 0
    if device.startswith("cuda"):
        index = device.partition(":")[2]
        if index not in ("", "0"):
            raise BackendError(
                f"--backend ray: cell {cell.name} asks for device {device!r}, but Ray gives each cell one GPU of "
                "its own and shows it only that one: use device = \"cuda\" (or \"auto\"), or --backend local"
            )
        return 1
    return 1 if device == "auto" else 0


@contextlib.contextmanager
def _ray_cluster(address: str | None, pending: list[Cell], workers: int | None) -> Iterator[_RayPlan]:
    """Connect to (or start) Ray, yield the plan, and shut Ray down afterwards if this call started it."""
    import ray

    started = False
    if not ray.is_initialized():
        options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        try:
            if address is None:
                n_workers = min(workers or default_workers(len(pending)), max(1, len(pending)))
                threads = max(1, available_cpus() // n_workers)
                # "local": a private Ray, even where RAY_ADDRESS is set or `ray start` runs on this machine
                ray.init(address="local", num_cpus=n_workers * threads, include_dashboard=False, **options)
            else:
                ray.init(address=address, **options)
        except (Exception, SystemExit) as exc:  # Ray exits the process when it cannot reach a cluster
            what = f"join the Ray cluster at {address!r}" if address else "start a local Ray"
            hint = " (is `ray start --head` running there? HOST:PORT, port 6379 by default)" if address else ""
            first_line = (str(exc).strip().splitlines() or [""])[0][:200]
            raise RuntimeError(f"could not {what}{hint}: {type(exc).__name__}: {first_line}") from exc
        started = True
    try:
        resources = ray.cluster_resources()
        cpus = max(1, int(resources.get("CPU", 0)))
        cluster_gpus = float(resources.get("GPU", 0))
        alive = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive", True)]
        gpus = {cell.name: _cell_gpus(cell, cluster_gpus) for cell in pending}
        # a cell's CPUs must fit on one node (on one with a GPU, for GPU cells), or it would wait forever
        fits = [int(r.get("CPU", 0)) for r in alive if r.get("GPU", 0) > 0 or not any(gpus.values())]
        largest_node = max([c for c in fits if c > 0], default=cpus)
        n_workers = min(workers or max(1, min(len(pending), cpus)), max(1, len(pending)))
        threads = max(1, min(largest_node, cpus // n_workers))
        where = (
            f"Ray {'cluster at ' + address if address else 'on this machine'} "
            f"({cpus} CPU(s), {cluster_gpus:g} GPU(s))"
        )
        yield _RayPlan(n_workers, threads, gpus, where)
    finally:
        if started:
            ray.shutdown()


def _run_pending_ray(
    pending: list[Cell],
    out: Path,
    plan: _RayPlan,
    on_tick: Callable[[list[str]], Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield each cell's record as its Ray task returns, after writing its files into ``out/cells/<cell>/``.

    A task that does not return (its worker died, or its node was lost, after Ray's own
    retries) leaves its cell unfinished; the others go on, then a RuntimeError names it.
    """
    if not pending:
        return
    import ray

    remotes: dict[int, Any] = {}
    refs: dict[Any, Cell] = {}
    for cell in pending:
        gpus = plan.gpus.get(cell.name, 0)
        if gpus not in remotes:
            options: dict[str, Any] = {"num_cpus": plan.threads, "num_gpus": gpus}
            if gpus:
                options["max_calls"] = 1  # a fresh process per GPU cell: no CUDA state carried to the next one
            remotes[gpus] = ray.remote(**options)(_run_cell_on_ray)
        refs[remotes[gpus].remote(cell, plan.threads)] = cell
    waiting = list(refs)
    lost: list[str] = []
    try:
        while waiting:
            # wake up every second so the bar's clock and its list of running cells stay current
            done, waiting = ray.wait(waiting, num_returns=1, timeout=1.0)
            for ref in done:
                cell = refs.pop(ref)  # dropping the reference lets Ray free the returned files
                try:
                    record, files = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    first_line = (str(exc).strip().splitlines() or [""])[0]
                    lost.append(f"{cell.name} ({type(exc).__name__}: {first_line[:200]})")
                    continue
                if record.get("fingerprint") != cell.fingerprint():
                    # its worker resolved the cell differently: other code or defaults on that node
                    lost.append(
                        f"{cell.name} (its worker recorded fingerprint {record.get('fingerprint')} where this "
                        f"machine has {cell.fingerprint()}: install the same code on every node)"
                    )
                    continue
                _store_cell_files(out / "cells" / cell.name, files)
                yield record
            if on_tick is not None:
                # Ray does not say which queued task runs now: the first ones in submission order do
                on_tick([refs[r].name for r in waiting][: plan.cells_at_once])
    except BaseException:
        for ref in waiting:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        raise
    if lost:
        raise RuntimeError(
            f"the Ray task of {len(lost)} cell(s) did not return: {'; '.join(lost)}; finished cells are kept: "
            "run the same command again to redo the rest"
        )


# -- the experiment -----------------------------------------------------------------------------------


def write_manifest(experiment: Experiment, out_dir: str | Path) -> Path:
    """Write ``experiment.json``: the grid as resolved, per-task training ranges, and each cell's outcome.

    The plots and leaderboards read it next to ``runs.csv`` (training ranges,
    parameter counts, statuses, convergence); it is rewritten atomically.
    """
    out_dir = Path(out_dir)
    tasks: dict[str, Any] = {}
    for cell in experiment.cells:
        info = tasks.setdefault(
            cell.task,
            {"short_id": short_task_id(cell.task), "min_length": cell.train_range[0], "max_length": 0},
        )
        info["min_length"] = min(info["min_length"], cell.train_range[0])
        info["max_length"] = max(info["max_length"], cell.train_range[1])
    for task_id, info in tasks.items():
        info["output_kind"], info["length_name"] = _task_kind(task_id, experiment)
        info["score_metric"] = _registered_score(task_id)
    cells = []
    for cell in experiment.cells:
        entry = cell.to_json()
        record = read_cell_record(out_dir / "cells" / cell.name)
        if cell.is_current(record):
            for key in (
                "status", "message", "steps", "sequences_seen", "train_wall_s", "eval_wall_s", "wall_s",
                "converged_sequences", "converged_wall_s", "num_parameters", "started_at", "finished_at",
                "epochs_run", "best_epoch", "best_step",
            ):
                if key in record:
                    entry[key] = record[key]
        else:
            entry["status"] = "unfinished"
            entry["message"] = ""
        cells.append(entry)
    manifest = {
        "format_version": 1,
        "name": experiment.name,
        "description": experiment.description,
        "source": experiment.path,
        "seeds": list(experiment.seeds),
        "eval": {**dataclasses.asdict(experiment.eval), "lengths": list(experiment.eval.lengths)},
        "tasks": tasks,
        "agents": {a.label: {"agent": a.agent, "kwargs": a.kwargs} for a in experiment.agents},
        "cells": cells,
    }
    return write_json_atomic(out_dir / MANIFEST_FILE, manifest)


def _task_kind(task_id: str, experiment: Experiment) -> tuple[str, str]:
    """``(output_kind, length_name)`` of a task, for the plots' axis labels and scores."""
    import memtasks

    kwargs = next(c.task_kwargs for c in experiment.cells if c.task == task_id)
    task = memtasks.make_task(task_id, **kwargs)
    return task.spec.output_kind, task.length_name


def _registered_score(task_id: str) -> str | None:
    """The metric the task is registered to be ranked by (:attr:`memtasks.TaskInfo.score_metric`)."""
    import memtasks

    return memtasks.task_info(task_id).score_metric


def _pending_cells(experiment: Experiment, out_dir: Path, retry_failed: bool) -> tuple[list[Cell], list[str]]:
    """The cells to run: no finished record, or one made by another version of the file, of a default or of
    the task's or agent's code (or failed, if retried); and for each stale record, what changed."""
    pending, stale = [], []
    for cell in experiment.cells:
        record = read_cell_record(out_dir / "cells" / cell.name)
        current = cell.is_current(record)
        if not current or (retry_failed and record["status"] == "failed"):
            pending.append(cell)
        if record is not None and not current:
            changes = describe_changes(record.get("identity"), cell.identity())
            more = f" (and {len(changes) - 4} more)" if len(changes) > 4 else ""
            stale.append(f"{cell.name}: re-run, its record was made with other settings or code: "
                         f"{'; '.join(changes[:4])}{more}")
    return pending, stale


def _results_folder(experiment: Experiment, out_dir: str | Path | None) -> Path:
    """``out_dir``, or ``results/<experiment name>`` under the current folder."""
    return Path(out_dir) if out_dir is not None else Path("results") / experiment.name


def _selected(cells: list[Cell], only: list[str] | None) -> list[Cell]:
    """The cells whose names match one of the shell patterns ``only``; every cell without patterns."""
    return [c for c in cells if not only or any(fnmatch.fnmatchcase(c.name, p) for p in only)]


def plan_lines(
    experiment: str | Path | Experiment,
    out_dir: str | Path | None = None,
    retry_failed: bool = False,
    only: list[str] | None = None,
) -> list[str]:
    """What :func:`run_experiment` would do, in words, without running or writing anything: a summary line
    (cells finished and current, stale, never run, and how many would run), then one line per stale cell
    naming what changed (``memtasks run --dry-run``)."""
    if not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment)
    out = _results_folder(experiment, out_dir)
    pending, stale = _pending_cells(experiment, out, retry_failed)
    to_run = _selected(pending, only)
    never = sum(1 for c in pending if read_cell_record(out / "cells" / c.name) is None)
    current = len(experiment.cells) - len(pending)
    return [
        f"{experiment.name} in {out}: {len(experiment.cells)} cells: {current} finished and current, "
        f"{len(stale)} stale, {never} never run; {len(to_run)} would run"
        + (" (--only)" if only else ""),
        *(f"  {line}" for line in stale),
    ]


def _describe_outcome(record: dict[str, Any]) -> str:
    """One line on how a cell ended, for the progress output."""
    status = record["status"]
    if status in ("failed", "diverged"):
        return f"{status}: {record.get('message', '')}"
    seqs = record.get("converged_sequences") or record.get("sequences_seen", 0)
    return f"{status} ({record.get('steps', 0)} steps, {seqs:,} sequences, {record.get('wall_s', 0.0):.0f} s)"


def run_experiment(
    experiment: str | Path | Experiment,
    out_dir: str | Path | None = None,
    workers: int | None = None,
    progress: bool = True,
    retry_failed: bool = False,
    plots: bool = True,
    backend: str = "local",
    address: str | None = None,
    only: list[str] | None = None,
) -> RunSummary:
    """Run every unfinished cell of an experiment, then write runs.csv, experiment.json, leaderboard and plots.

    Args:
        experiment: An experiment file, or an :class:`Experiment` already loaded.
        out_dir: The results folder; default ``results/<experiment name>`` under the current folder.
        workers: Cells run at once; default ``min(unfinished cells, CPUs)`` (for ``ray``: the cluster's
            CPUs). Locally, with 1, cells run in this process (and show the training bar); with more,
            in ``spawn`` processes (one bar over cells).
        progress: Show progress bars and a line per finished cell.
        retry_failed: Redo cells recorded as ``failed`` too.
        plots: Draw the plots (the slowest part of the final step).
        backend: ``"local"`` (a process pool) or ``"ray"`` (Ray tasks; see the module's docstring).
        address: With ``"ray"``: the cluster to join (``HOST:PORT`` or ``"auto"``); default a private
            local Ray started for this run.
        only: Run only the unfinished cells whose names match one of these shell patterns
            (``"qa1__*"``, ``"*__memn2n__*"``); the tables still cover every finished cell.

    Returns:
        A :class:`RunSummary`.

    Raises:
        ExperimentError: the file is invalid.
        BackendError: the backend is unknown, not installed, or ``address`` comes without ``"ray"``
            (or a cell's device does not fit Ray's one GPU per cell).
        RuntimeError: another run is writing the same folder, or a worker died.
    """
    start = time.perf_counter()
    check_backend(backend, address)
    if not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment)
    out = _results_folder(experiment, out_dir)
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    (out / "cells").mkdir(parents=True, exist_ok=True)

    with _exclusive_run(out):
        write_manifest(experiment, out)
        unfinished, stale = _pending_cells(experiment, out, retry_failed)
        pending = _selected(unfinished, only)
        left_out = {cell.name for cell in unfinished} - {cell.name for cell in pending}
        summary = RunSummary(experiment.name, out, len(experiment.cells), len(experiment.cells) - len(unfinished), 0)
        summary.stale = stale
        say: Callable[[str], Any] = tqdm.write if progress else (lambda _text: None)
        for line in stale:
            say(line)
        with contextlib.ExitStack() as stack:
            if backend == "ray" and pending:
                plan = stack.enter_context(_ray_cluster(address, pending, workers))
                gpu_cells = sum(1 for n in plan.gpus.values() if n)
                layout = (
                    f"{plan.where}: up to {plan.cells_at_once} cell(s) at once x {plan.threads} thread(s)"
                    + (f", {gpu_cells} cell(s) with a GPU each" if gpu_cells else "")
                )
                run_pending = functools.partial(_run_pending_ray, pending, out, plan)
            else:
                n_workers = min(workers or default_workers(len(pending)), max(1, len(pending)))
                threads = max(1, available_cpus() // n_workers)
                layout = f"{n_workers} worker(s) x {threads} thread(s)"
                run_pending = functools.partial(_run_pending, pending, out, n_workers, threads, progress)

            if pending:
                say(
                    f"{experiment.name}: {len(pending)} cell(s) to run, {summary.skipped} finished already"
                    + (f", {len(left_out)} left out (--only)" if left_out else "")
                    + f"; {layout}; results in {out}"
                )
            bar = tqdm(
                total=len(experiment.cells),
                initial=summary.skipped,
                unit="cell",
                desc=experiment.name,
                disable=not progress,
                dynamic_ncols=True,
            )
            try:
                def show_running(names: list[str]) -> None:
                    bar.set_postfix_str(f"running: {', '.join(names)}" if names else "")

                for record in run_pending(show_running if progress else None):
                    summary.ran += 1
                    bar.update(1)
                    say(f"  {record['cell']}: {_describe_outcome(record)}")
            finally:
                bar.close()

        summary.outputs.extend(_finish(experiment, out, plots, say))
        for cell in experiment.cells:
            record = read_cell_record(out / "cells" / cell.name)
            status = record["status"] if cell.is_current(record) else "unfinished"
            if status == "unfinished" and cell.name in left_out:
                status = "left out"
            summary.statuses[status] = summary.statuses.get(status, 0) + 1
            if status in ("failed", "diverged"):
                summary.failures.append(f"{cell.name}: {status}: {record.get('message', '')}")
    summary.wall_s = time.perf_counter() - start
    return summary


def _run_pending(
    pending: list[Cell],
    out: Path,
    n_workers: int,
    threads: int,
    progress: bool,
    on_tick: Callable[[list[str]], Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield each cell's record as it finishes (in this process for one worker, else in a spawn pool).

    ``on_tick`` gets the names of the cells running in workers, about once a second.
    """
    if not pending:
        return
    if n_workers == 1:
        _warm_up()
        for cell in pending:
            yield run_cell(cell, out / "cells" / cell.name, threads=threads, progress=progress)
        return
    context = multiprocessing.get_context("spawn")  # no fork: torch's threads and state stay out of the children
    workers_lock = str(out / _WORKERS_LOCK_FILE) if fcntl is not None else None
    executor = cf.ProcessPoolExecutor(
        max_workers=n_workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(threads, os.getpid(), workers_lock),
    )
    futures = {executor.submit(_run_cell_in_worker, c, str(out / "cells" / c.name), threads): c for c in pending}
    try:
        waiting = set(futures)
        while waiting:
            # wake up every second so the bar's clock and its list of running cells stay current
            done, waiting = cf.wait(waiting, timeout=1.0, return_when=cf.FIRST_COMPLETED)
            for future in done:
                try:
                    yield future.result()
                except cf.process.BrokenProcessPool as exc:
                    # A worker died (killed, out of memory): its cell has no record and stays unfinished.
                    raise RuntimeError(
                        f"a worker process died while running {futures[future].name} (killed or out of "
                        "memory?); finished cells are kept: run the same command again to redo the rest"
                    ) from exc
            if on_tick is not None:
                # the pool marks one queued cell "running" ahead of time; cells start in submission order
                running = [c.name for f, c in futures.items() if f in waiting and f.running()]
                on_tick(running[:n_workers])
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        for process in list(getattr(executor, "_processes", {}).values()):  # no public API for this
            process.terminate()
        raise
    executor.shutdown(wait=True)


def _finish(experiment: Experiment, out: Path, plots: bool, say: Callable[[str], Any]) -> list[Path]:
    """Assemble runs.csv, rewrite experiment.json, write the leaderboard and plots; report, don't raise."""
    from benchmarks.results import RUNS_FILE

    assemble_runs(experiment.cells, out)
    written = [out / RUNS_FILE, write_manifest(experiment, out)]
    try:
        from benchmarks.leaderboard import write_leaderboard

        written.append(write_leaderboard(out))
    except Exception as exc:  # the tables are safe on disk; `memtasks leaderboard` can redo this
        say(f"warning: could not write the leaderboard: {type(exc).__name__}: {exc}")
    if plots:
        try:
            from benchmarks.plots import plot_experiment

            written.extend(plot_experiment(out))
        except Exception as exc:  # `memtasks plot` can redo this
            say(f"warning: could not draw the plots: {type(exc).__name__}: {exc}")
    return written


# -- command line -------------------------------------------------------------------------------------


def cli(argv: list[str]) -> int:
    """Run an experiment file (tasks x agents x seeds).

    ``memtasks run FILE``: exit 0 when every cell finished without an exception, else 1; 2 for a bad file.
    """
    parser = argparse.ArgumentParser(
        prog="memtasks run",
        description=(
            "Run an experiment file (tasks x agents x seeds): train and evaluate every cell, then write "
            "runs.csv, experiment.json, leaderboard.md and the plots. Re-running resumes: finished cells are kept."
        ),
    )
    parser.add_argument("experiment", help="experiment file, e.g. benchmarks/experiments/quick.toml")
    parser.add_argument("--out", default=None, help="results folder (default: results/<experiment name>)")
    parser.add_argument(
        "--workers", type=int, default=None,
        help="cells at once (default: min(cells, CPUs); with --backend ray, the cluster's CPUs)",
    )
    parser.add_argument(
        "--backend", default="local",
        help=f"where cells run: 'local' (default: a process pool here) or 'ray' (Ray tasks; {_RAY_INSTALL})",
    )
    parser.add_argument(
        "--address", default=None,
        help="with --backend ray: the Ray cluster to join, HOST:PORT (default: a private local Ray for this run)",
    )
    parser.add_argument("--retry-failed", action="store_true", help="redo cells recorded as failed")
    parser.add_argument(
        "--only", action="append", default=[], metavar="PATTERN",
        help="run only the unfinished cells whose names match this shell pattern, e.g. 'bAbI-qa1-v0__*' or "
        "'*__memn2n__*' (repeatable); the tables still cover every finished cell",
    )
    parser.add_argument(
        "--dry-run", action="store_true",
        help="only say which cells are finished, stale (and what changed) or never run, and how many would "
        "run; nothing is trained or written",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip drawing the plots")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars or per-cell lines")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="change one key of the file before it is checked, VALUE in TOML syntax, e.g. --set train.steps=300 "
        "--set 'seeds=[0, 1]' (repeatable; the cells' records and fingerprints carry the result)",
    )
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    try:
        experiment = load_experiment(args.experiment, overrides=args.set) if args.set else args.experiment
        if args.dry_run:
            print("\n".join(plan_lines(experiment, args.out, retry_failed=args.retry_failed, only=args.only)))
            return 0
        summary = run_experiment(
            experiment,
            args.out,
            workers=args.workers,
            progress=not args.no_progress,
            retry_failed=args.retry_failed,
            plots=not args.no_plots,
            backend=args.backend,
            address=args.address,
            only=args.only,
        )
    except (ExperimentError, BackendError) as exc:
        print(f"memtasks run: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"memtasks run: {exc}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary.statuses.items()))
    print(f"{summary.experiment}: {summary.cells} cells ({counts}); ran {summary.ran} in {summary.wall_s:.0f} s")
    for line in summary.failures:
        print(f"  {line}")
    if args.no_progress:  # with the bar on they were written as the run started
        for line in summary.stale:
            print(f"  {line}")
    for path in summary.outputs:
        print(f"  wrote {path}")
    return 0 if summary.ok else 1
