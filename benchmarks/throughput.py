"""Training throughput of every registered agent, eager and fast, in sequences per second.

One training step is forward + :func:`agents.sequence_loss` + backward + Adam
step on a batch of Copy-v0 sequences (8 bits, lengths drawn from 1-20), with
each agent's default config, on ``--threads`` torch threads (default 1).
Batches are drawn before timing, so only the model is measured. For each
agent and batch size three set-ups are timed:

- ``eager, mixed``: eager PyTorch on batches whose sequences each draw a length
  (padded to the longest; what training did before the fast path);
- ``eager, same``: eager on batches of one drawn length each (no padding; the
  training loop's default ``batch_lengths="same"``);
- ``fast, same``: the agent's fast path (:mod:`agents.fast`) on the same batches.

The three are timed in interleaved windows (one window of each in turn,
``--windows`` times), so a slow phase of the machine hits all of them alike;
the figure is the median over windows of ``batch_size * steps / seconds``.
The fast path's first step, which compiles, is reported apart (``compile s``,
from an empty or a warm inductor cache, whichever the machine has).

``reference NTM`` is a plain batched NTM in about 40 lines (:class:`ReferenceNTM`,
same sizes as ``agents.ntm``'s defaults), kept as the baseline of what the
obvious code does, eager and compiled the same way.

Run it on a quiet machine::

    python -m benchmarks.throughput                      # writes results/throughput.md
    python -m benchmarks.throughput --agents lstm --batch-sizes 4 --steps 2 --windows 1 --out /tmp/t.md   # smoke
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
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import agents
from agents import enable_fast_path, fast_path_status, make_agent, sequence_loss
from agents.optim import make_optimizer
from benchmarks.provenance import cpu_name
from memtasks import make_task
from memtasks.core import TaskSpec, check_int

__all__ = ["REFERENCE", "ReferenceNTM", "cli", "measure", "markdown_table"]

TASK_ID = "memtasks/Copy-v0"
REFERENCE = "reference NTM"
SETUPS = ("eager, mixed", "eager, same", "fast, same")


class ReferenceNTM(nn.Module):
    """The obvious batched NTM: LSTM controller, one read and one write head, ``(B, N, M)`` memory.

    Graves et al. 2014, eq. 2-9, written as a reader would first write it; the baseline column of
    this benchmark. Not registered as an agent, not used for results.
    """

    def __init__(self, spec: TaskSpec, controller: int = 100, rows: int = 128, width: int = 20) -> None:
        super().__init__()
        self.N, self.M = rows, width
        self.cell = nn.LSTMCell(spec.input_size + width, controller)
        self.heads = nn.Linear(controller, 2 * (width + 6) + 2 * width)  # 2 x [k, beta, g, gamma, s(3)], e, a
        self.out = nn.Linear(controller + width, spec.output_size)

    def initial_state(self, B: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        h = torch.zeros(B, self.cell.hidden_size, device=device)
        w = torch.zeros(B, 2, self.N, device=device)
        w[..., 0] = 1.0
        return h, h.clone(), torch.full((B, self.N, self.M), 1e-6, device=device), w, torch.zeros(B, self.M, device=device)

    def step(self, x: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        h, c, mem, w_prev, read = state
        h, c = self.cell(torch.cat([x, read], -1), (h, c))
        p = self.heads(h).clamp(-20, 20)
        M = self.M
        addr, erase, add = p[:, : 2 * (M + 6)].view(-1, 2, M + 6), torch.sigmoid(p[:, -2 * M : -M]), p[:, -M:]
        key, beta = addr[..., :M], F.softplus(addr[..., M])
        g, gamma = torch.sigmoid(addr[..., M + 1]), 1 + F.softplus(addr[..., M + 2])
        shift = torch.softmax(addr[..., M + 3 :], -1)
        sim = F.cosine_similarity(key[:, :, None, :], mem[:, None, :, :], dim=-1, eps=1e-6)  # (B, 2, N)
        w = torch.softmax(beta[..., None] * sim, -1)
        w = g[..., None] * w + (1 - g[..., None]) * w_prev
        w = sum(shift[..., i, None] * torch.roll(w, i - 1, -1) for i in range(3))
        w = w ** gamma[..., None]
        w = w / (w.sum(-1, keepdim=True) + 1e-6)
        read = torch.einsum("bn,bnm->bm", w[:, 0], mem)
        mem = mem * (1 - w[:, 1, :, None] * erase[:, None, :]) + w[:, 1, :, None] * add[:, None, :]
        return torch.cat([h, read], -1), (h, c, mem, w, read)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = self.initial_state(x.shape[0], x.device)
        frames = x.transpose(0, 1).contiguous()  # (T, B, D): the same strides at every T (else compiling recompiles)
        ys = []
        for t in range(x.shape[1]):
            y, state = self.step(frames[t], state)
            ys.append(y)
        return self.out(torch.stack(ys, 1))


def _build(name: str, spec: TaskSpec, device: torch.device, fast: bool) -> tuple[nn.Module, str]:
    model = ReferenceNTM(spec).to(device) if name == REFERENCE else make_agent(name, spec, device=device)
    status = enable_fast_path(model) if fast else fast_path_status(model)
    return model, status


def measure(
    name: str,
    batch_size: int = 32,
    threads: int = 1,
    steps: int = 10,
    windows: int = 5,
    warmup: int = 3,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """Sequences per second of ``name`` (an agent or :data:`REFERENCE`) in each of :data:`SETUPS`.

    Returns:
        ``{setup: seq/s}`` for the three set-ups, plus ``"compile_s"`` (the fast path's first step),
        ``"fast_path"`` (what the fast set-up ran) and ``"parameters"``.

    Raises:
        ValueError: an unknown name or a count below 1.
    """
    for key, value, low in (("batch_size", batch_size, 1), ("threads", threads, 1), ("steps", steps, 1),
                            ("windows", windows, 1), ("warmup", warmup, 0)):  # fmt: skip
        check_int(key, value, low)
    if name != REFERENCE and name not in agents.list_agents():
        raise ValueError(f"unknown agent {name!r}; known: {', '.join(agents.list_agents())}, {REFERENCE}")
    task = make_task(TASK_ID, max_length=20)
    dev = torch.device(device)
    rng = np.random.default_rng(seed)
    pools = {"mixed": [], "same": []}
    for _ in range(16):
        pools["mixed"].append(task.sample(batch_size, rng))
        pools["same"].append(task.sample(batch_size, rng, length=int(rng.integers(1, 21))))
    tensors = {
        kind: [tuple(torch.as_tensor(a, device=dev) for a in (b.inputs, b.targets, b.mask)) for b in pool]
        for kind, pool in pools.items()
    }
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        runners: dict[str, Callable[[int, int], None]] = {}
        result: dict[str, Any] = {}
        for setup in SETUPS:
            torch.manual_seed(seed)
            model, status = _build(name, task.spec, dev, fast=setup.startswith("fast"))
            result.setdefault("parameters", sum(p.numel() for p in model.parameters()))
            optimizer = make_optimizer("adam", model.parameters(), 1e-3)
            batches = tensors[setup.split(", ")[1]]
            runners[setup] = _runner(model, optimizer, batches, task.spec, dev)
            t0 = time.perf_counter()
            runners[setup](1, 0)
            if setup.startswith("fast"):
                result["compile_s"] = time.perf_counter() - t0
                result["fast_path"] = fast_path_status(model)
            runners[setup](warmup, 1)
        rates: dict[str, list[float]] = {setup: [] for setup in SETUPS}
        for w in range(windows):  # interleaved: every set-up sees the same phases of the machine
            for setup in SETUPS:
                t0 = time.perf_counter()
                runners[setup](steps, w * steps)
                rates[setup].append(batch_size * steps / (time.perf_counter() - t0))
        result.update({setup: statistics.median(r) for setup, r in rates.items()})
        return result
    finally:
        torch.set_num_threads(before)


def _runner(model: nn.Module, optimizer: torch.optim.Optimizer, batches: list, spec: TaskSpec, dev: torch.device):
    def run(n: int, offset: int) -> None:
        for i in range(n):
            inputs, targets, mask = batches[(offset + i) % len(batches)]
            loss = sequence_loss(model(inputs), targets, mask, spec, check_scored=False)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    return run


def _cache_entries() -> tuple[Path, int]:
    """Where inductor caches compiled graphs, and how many files it holds now."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    folder = Path(cache_dir())
    return folder, sum(1 for _ in folder.rglob("*")) if folder.exists() else 0


def _cache_note(folder: Path, entries_at_start: int) -> str:
    if not entries_at_start:
        return f"{folder} (empty at the start: compile s is a cold compile)"
    return f"{folder} ({entries_at_start} entries at the start: compile s is a warm or partly warm compile)"


def markdown_table(results: dict[tuple[str, int], dict[str, Any]]) -> str:
    """One row per (agent, batch size): the three set-ups, fast / eager-mixed, compile time and what ran."""
    lines = [
        "| agent | parameters | batch | " + " | ".join(f"{s} (seq/s)" for s in SETUPS)
        + " | fast / eager, mixed | compile s | fast path |",
        "|---|---:|---:|" + "---:|" * len(SETUPS) + "---:|---:|---|",
    ]
    for (name, batch), r in results.items():
        if "error" in r:
            lines.append(f"| {name} | | {batch} | error: {r['error']} |" + " |" * (len(SETUPS) + 2))
            continue
        cells = [f"{r[s]:,.0f}" for s in SETUPS]
        ratio = r["fast, same"] / r["eager, mixed"]
        lines.append(
            f"| {name} | {r['parameters']:,} | {batch} | " + " | ".join(cells)
            + f" | {ratio:.2f}x | {r['compile_s']:.1f} | {r['fast_path']} |"
        )
    return "\n".join(lines)


def cli(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.throughput``: measure, print the table, write the markdown file."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.throughput",
        description="Training sequences per second of each agent on Copy-v0 (lengths 1-20), eager and fast.",
    )
    parser.add_argument("--agents", default=None,
                        help=f"comma-separated names (default: every registered agent and '{REFERENCE}')")
    parser.add_argument("--batch-sizes", default="16,32", help="comma-separated batch sizes (default: 16,32)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--steps", type=int, default=10, help="steps per timed window (default: 10)")
    parser.add_argument("--windows", type=int, default=5, help="timed windows per set-up; the median is reported")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps after the first (default: 3)")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--out", default="results/throughput.md", help="markdown file to write")
    args = parser.parse_args(argv)
    cache_folder, cache_at_start = _cache_entries()

    wanted = agents.list_agents() + [REFERENCE] if args.agents is None else [
        a.strip() for a in args.agents.split(",") if a.strip()
    ]
    try:
        batch_sizes = [check_int("--batch-sizes", int(b), 1) for b in args.batch_sizes.split(",") if b.strip()]
    except ValueError as exc:
        parser.error(str(exc))
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for name in wanted:
        for batch in batch_sizes:
            try:
                results[name, batch] = measure(
                    name, batch, args.threads, args.steps, args.windows, args.warmup, device=args.device
                )
            except ValueError as exc:
                parser.error(str(exc))
            except Exception as exc:  # one broken agent must not hide the others
                results[name, batch] = {"error": type(exc).__name__}
                print(f"{name} at batch {batch} failed: {exc}", file=sys.stderr)
            print(f"{name:>14}  batch={batch}  {results[name, batch]}", file=sys.stderr)

    table = markdown_table(results)
    command = "python -m benchmarks.throughput " + " ".join(shlex.quote(a) for a in argv)
    text = "\n".join(
        [
            "# Training throughput, eager and fast",
            "",
            f"Copy-v0 (8 bits, lengths 1-20); forward + loss + backward + Adam step; {args.threads} torch "
            f"thread(s); median of {args.windows} interleaved windows of {args.steps} steps per set-up; "
            "default agent configs. `eager, mixed`: each sequence draws its length, batch padded to the "
            "longest; `same`: one drawn length per batch (the training default); `fast`: the agent's fast "
            "path (agents/fast.py). `compile s`: the fast set-up's first step. See benchmarks/throughput.py.",
            "",
            table,
            "",
            f"- command: `{command.strip()}`",
            f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
            f"- torch {torch.__version__}, Python {platform.python_version()}, device {args.device}",
            f"- CPU: {cpu_name()}",
            f"- inductor cache: {_cache_note(cache_folder, cache_at_start)}",
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
