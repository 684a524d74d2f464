"""Speed of the batch samplers: input frames per second of ``task.sample`` for each bit task.

One frame is one time step of one sequence, so a batch counts ``B x T`` frames
(``T`` the padded length). Each registered task with bit inputs is built with its
defaults (data-backed token tasks such as bAbI are skipped) and sampled in a
single process: a warm-up call, then ``--repeats`` timed runs of at least
``--min-seconds`` each; the table shows the median run. The requirement checked
is >= 1e6 frames/s for Copy-v0 at batch 256.

    python benchmarks/sampler_speed.py --batch 256 --out results/sampler_speed.md
"""

from __future__ import annotations

import os

# Numpy's generators are single-threaded already; this keeps any BLAS pool out of it too.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import memtasks  # noqa: E402
from memtasks.core import Task, check_float, check_int  # noqa: E402

__all__ = ["SpeedResult", "measure", "main"]

REQUIRED_TASK, REQUIRED_FPS = "Copy-v0", 1e6


@dataclass(frozen=True)
class SpeedResult:
    """Median throughput of one task's sampler.

    Attributes:
        task_id: Registered id.
        batch_size: Sequences per ``sample`` call.
        mean_steps: Mean padded length T of the timed batches.
        batches_per_s: Median over runs of ``sample`` calls per second.
        frames_per_s: Median over runs of ``B x T`` frames per second.
        runs: Frames per second of every run, for the spread.
    """

    task_id: str
    batch_size: int
    mean_steps: float
    batches_per_s: float
    frames_per_s: float
    runs: tuple[float, ...]


def measure(
    task_id: str, task: Task, batch_size: int, repeats: int, min_seconds: float, seed: int = 0
) -> SpeedResult:
    """Time ``task.sample(batch_size, rng)``: ``repeats`` runs of at least ``min_seconds`` each.

    Args:
        task_id: Id for the report.
        task: The task to sample.
        batch_size: Sequences per call, >= 1.
        repeats: Timed runs, >= 1; the result is their median.
        min_seconds: Least duration of a run, > 0 (several calls each, so timer overhead is negligible).
        seed: Seed of the generator shared by all calls.
    """
    check_int("batch_size", batch_size, 1)
    check_int("repeats", repeats, 1)
    check_float("min_seconds", min_seconds, 1e-6)
    rng = np.random.default_rng(seed)
    task.sample(batch_size, rng)  # warm-up: first-call allocations and imports
    fps, bps, steps = [], [], []
    for _ in range(repeats):
        frames = calls = 0
        start = time.perf_counter()
        while True:
            batch = task.sample(batch_size, rng)
            frames += batch.batch_size * batch.num_steps
            steps.append(batch.num_steps)
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        fps.append(frames / elapsed)
        bps.append(calls / elapsed)
    return SpeedResult(
        task_id, batch_size, float(np.mean(steps)), statistics.median(bps), statistics.median(fps), tuple(fps)
    )


def _bit_tasks() -> tuple[list[tuple[str, Task]], list[str]]:
    """Every registered task with bit inputs, and the ids skipped (token or data-backed tasks)."""
    tasks, skipped = [], []
    for task_id in memtasks.list_tasks():
        try:
            task = memtasks.make_task(task_id)
        except memtasks.DataNotFoundError:
            skipped.append(task_id)
            continue
        if task.spec.input_kind == "bits":
            tasks.append((task_id, task))
        else:
            skipped.append(task_id)
    return tasks, skipped


def machine_description() -> str:
    """CPU model, logical cores and platform, for the header of a benchmark report."""
    cpu = platform.processor()
    if not cpu or cpu in ("x86_64", "aarch64"):  # Linux often gives only the architecture
        try:
            with open("/proc/cpuinfo") as f:
                cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
        except OSError:
            pass
    return f"{cpu or 'unknown CPU'}, {os.cpu_count()} logical cores (os.cpu_count()), {platform.platform()}"


def _report(results: list[SpeedResult], skipped: list[str], command: str) -> str:
    lines = [
        "# Sampler speed",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: {machine_description()}",
        f"- python {platform.python_version()}, numpy {np.__version__}, one process "
        "(numpy sampling is single-threaded)",
        "- frames = B x T (padded steps) per `task.sample` call; median over runs, "
        "each at least the minimum duration",
        "",
        "| task | batch | mean T | batches/s | frames/s (median) | frames/s (min..max) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.task_id} | {r.batch_size} | {r.mean_steps:.1f} | {r.batches_per_s:,.0f} | "
            f"{r.frames_per_s:,.0f} | {min(r.runs):,.0f}..{max(r.runs):,.0f} |"
        )
    required = next((r for r in results if r.task_id == REQUIRED_TASK), None)
    lines.append("")
    if required is not None:
        verdict = "met" if required.frames_per_s >= REQUIRED_FPS else "NOT met"
        lines.append(
            f"Requirement >= {REQUIRED_FPS:.0e} frames/s for {REQUIRED_TASK} at batch {required.batch_size}: "
            f"{verdict} ({required.frames_per_s:,.0f})."
        )
    if skipped:
        lines.append(f"Skipped (token inputs or data-backed): {', '.join(skipped)}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Measure every bit task, print the markdown table and write it to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256, help="sequences per sample call (default 256)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per task; the median is shown")
    parser.add_argument("--min-seconds", type=float, default=0.2, help="least duration of one run")
    parser.add_argument("--tasks", default=None, help="comma-separated ids (default: every bit task)")
    parser.add_argument(
        "--out", default="results/sampler_speed.md", help="markdown file to write ('' for none)"
    )
    args = parser.parse_args(argv)

    tasks, skipped = _bit_tasks()
    if args.tasks:
        wanted = [t.strip() for t in args.tasks.split(",") if t.strip()]
        unknown = sorted(set(wanted) - {task_id for task_id, _ in tasks})
        if unknown:
            parser.error(f"--tasks: not a registered bit task: {', '.join(unknown)}")
        tasks = [(task_id, task) for task_id, task in tasks if task_id in wanted]
    results = [measure(task_id, task, args.batch, args.repeats, args.min_seconds) for task_id, task in tasks]
    command = "python benchmarks/sampler_speed.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = _report(results, skipped, command.strip())
    print(text, end="")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
