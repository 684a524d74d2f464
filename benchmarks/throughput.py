"""Training throughput of every registered agent, in sequences per second.

One training step is forward + :func:`agents.sequence_loss` + backward + Adam
step on a batch of 32 Copy-v0 sequences (8 bits) of fixed length 10 (21 time
steps), with each agent's default config. Batches are drawn before timing, so
only the model is measured. After ``warmup`` untimed steps, ``windows`` windows
of ``steps`` steps are timed; the reported figure is the median over windows of
``batch_size * steps / seconds``. Each agent is measured with
``torch.set_num_threads(n)`` for every ``n`` in ``--threads`` (default 1 and 2).

Run it on a quiet machine::

    python -m benchmarks.throughput                      # writes results/throughput.md
    python -m benchmarks.throughput --agents lstm --steps 2 --windows 1 --out /tmp/t.md   # smoke
"""

from __future__ import annotations

import argparse
import datetime
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import agents
from agents import make_agent, sequence_loss
from agents.optim import make_optimizer
from memtasks import make_task
from memtasks.core import check_int

__all__ = ["cli", "cpu_name", "measure", "markdown_table"]

TASK_ID = "memtasks/Copy-v0"


def measure(
    agent_name: str,
    threads: int,
    batch_size: int = 32,
    length: int = 10,
    steps: int = 20,
    windows: int = 5,
    warmup: int = 5,
    seed: int = 0,
    device: str = "cpu",
) -> float:
    """Median training sequences per second of ``agent_name`` (see the module docstring).

    Raises:
        ValueError: an unregistered agent or a count below 1.
    """
    check_int("threads", threads, 1)
    check_int("steps", steps, 1)
    check_int("windows", windows, 1)
    check_int("warmup", warmup, 0)
    task = make_task(TASK_ID, max_length=max(length, 1))
    rng = np.random.default_rng(seed)
    pool = [task.sample(batch_size, rng, length=length) for _ in range(8)]
    dev = torch.device(device)
    tensors = [
        tuple(torch.as_tensor(a, device=dev) for a in (b.inputs, b.targets, b.mask)) for b in pool
    ]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(seed)
        agent = make_agent(agent_name, task.spec, device=dev)
        optimizer = make_optimizer("adam", agent.parameters(), 1e-3)

        def run(n: int, offset: int) -> None:
            for i in range(n):
                inputs, targets, mask = tensors[(offset + i) % len(tensors)]
                loss = sequence_loss(agent(inputs), targets, mask, task.spec)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)

        run(warmup, 0)
        rates = []
        for w in range(windows):
            t0 = time.perf_counter()
            run(steps, w * steps)
            rates.append(batch_size * steps / (time.perf_counter() - t0))
        return statistics.median(rates)
    finally:
        torch.set_num_threads(before)


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` (Linux), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def markdown_table(
    results: dict[str, dict[int, float | str]], params: dict[str, int], threads: list[int]
) -> str:
    """A markdown table: one row per agent, one column per thread count."""
    columns = [f"seq/s ({n} thread{'s' if n > 1 else ''})" for n in threads]
    head = "| agent | parameters | " + " | ".join(columns) + " |"
    rule = "|---|---:|" + "---:|" * len(threads)
    lines = [head, rule]
    for name, by_threads in results.items():
        cells = [f"{v:,.0f}" if isinstance(v, float) else str(v) for v in (by_threads[n] for n in threads)]
        lines.append(f"| {name} | {params.get(name, 0):,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cli(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.throughput``: measure, print the table, write the markdown file."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.throughput",
        description="Training sequences per second of each registered agent on Copy-v0 (batch 32, length 10).",
    )
    parser.add_argument("--agents", default=None, help="comma-separated agent names (default: all registered)")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts (default: 1,2)")
    parser.add_argument("--batch-size", type=int, default=32, help="sequences per step (default: 32)")
    parser.add_argument("--length", type=int, default=10, help="Copy sequence length (default: 10)")
    parser.add_argument("--steps", type=int, default=20, help="steps per timed window (default: 20)")
    parser.add_argument("--windows", type=int, default=5, help="timed windows; the median is reported (default: 5)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default: 5)")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--out", default="results/throughput.md", help="markdown file to write")
    args = parser.parse_args(argv)

    registered = agents.list_agents()
    wanted = registered if args.agents is None else [a.strip() for a in args.agents.split(",") if a.strip()]
    threads = [int(n) for n in args.threads.split(",") if n.strip()]
    results: dict[str, dict[int, float | str]] = {}
    params: dict[str, int] = {}
    skipped = [name for name in wanted if name not in registered]
    for name in wanted:
        if name not in registered:
            print(f"skipping {name!r}: not a registered agent ({', '.join(registered)})", file=sys.stderr)
            continue
        task = make_task(TASK_ID, max_length=max(args.length, 1))
        params[name] = make_agent(name, task.spec, device="cpu").num_parameters()
        results[name] = {}
        for n in threads:
            try:
                results[name][n] = measure(
                    name, n, args.batch_size, args.length, args.steps, args.windows, args.warmup, device=args.device
                )
            except Exception as exc:  # one broken agent must not hide the others
                results[name][n] = f"error: {type(exc).__name__}"
                print(f"{name} with {n} threads failed: {exc}", file=sys.stderr)
            print(f"{name:>10}  threads={n}  {results[name][n]}", file=sys.stderr)

    table = markdown_table(results, params, threads)
    command = "python -m benchmarks.throughput " + " ".join(shlex.quote(a) for a in argv)
    text = "\n".join(
        [
            "# Training throughput",
            "",
            f"Copy-v0 (8 bits), batch {args.batch_size}, length {args.length}; forward + loss + backward + Adam step; "
            f"median of {args.windows} windows of {args.steps} steps after {args.warmup} warm-up steps; "
            "default agent configs.",
            "",
            table,
            "",
            f"- command: `{command.strip()}`",
            f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
            f"- torch {torch.__version__}, Python {platform.python_version()}, device {args.device}",
            f"- CPU: {cpu_name()}",
            *([f"- skipped (not registered): {', '.join(skipped)}"] if skipped else []),
            "",
        ]
    )
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
