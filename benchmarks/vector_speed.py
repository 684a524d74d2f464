"""Speed of the native vector env against ``SyncVectorEnv`` of single envs: sub-env steps per second.

Both run the same task with ``--num-envs`` sub-envs (default Copy-v0, 256), the
same number of steps and the same actions, drawn in advance (random bits). The
native env is ``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")``;
the baseline ``gymnasium.vector.SyncVectorEnv`` of ``N`` ``gymnasium.make(id)`` (what
``make_vec(..., vectorization_mode="sync")`` builds). The two measurements alternate
(the order swapped every round) for ``--rounds`` rounds; each round resets with
the round's seed and times ``--steps`` steps, autoresets included. The report gives
the median of the rounds and the ratio of the medians; the issue's bar is a
ratio >= 10 at 256 envs. It also times the native env's calls of
``task.sample(1, rng_i)`` (one per episode started, the price of the per-sub-env
replay contract) and reports their share of its time. The run takes well under
a minute.

    python -m benchmarks.vector_speed --out results/vector_env.md
"""

from __future__ import annotations

import os

# numpy stepping is single-threaded; this keeps any BLAS pool out of the timing too
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import functools  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gymnasium  # noqa: E402
import numpy as np  # noqa: E402

import memtasks  # noqa: E402
from benchmarks.sampler_speed import machine_description  # noqa: E402
from memtasks.core import check_int  # noqa: E402

__all__ = ["main", "time_steps"]

REQUIRED_RATIO = 10.0


def time_steps(envs: gymnasium.vector.VectorEnv, actions: np.ndarray, seed: int | None) -> float:
    """The seconds ``len(actions)`` steps of ``envs`` take (after ``reset(seed=seed)`` unless seed is None)."""
    if seed is not None:
        envs.reset(seed=seed)
    start = time.perf_counter()
    for action in actions:
        envs.step(action)
    return time.perf_counter() - start


def _time_sampling(task: Any) -> dict[str, float]:
    """Wrap ``task.sample`` (on this instance) to add up its calls and seconds in the returned dict."""
    totals: dict[str, float] = {"seconds": 0.0, "calls": 0}
    sample = task.sample

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return sample(*args, **kwargs)
        finally:
            totals["seconds"] += time.perf_counter() - start
            totals["calls"] += 1

    task.sample = timed
    return totals


def _load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    """Measure both vector envs, print the markdown report and write it to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="Copy-v0", help="registered task id (default Copy-v0)")
    parser.add_argument("--num-envs", type=int, default=256, help="sub-envs (default 256)")
    parser.add_argument("--steps", type=int, default=100, help="timed vector steps per round (default 100)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; medians are reported (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the actions and of round 0's reset")
    parser.add_argument("--note", default="", help="a line for the report, e.g. about other load on the machine")
    parser.add_argument("--out", default="results/vector_env.md", help="markdown file to write ('' for none)")
    args = parser.parse_args(argv)
    for name in ("num_envs", "steps", "rounds"):
        try:
            check_int(f"--{name.replace('_', '-')}", getattr(args, name), 1)
        except (TypeError, ValueError) as exc:
            parser.error(str(exc))
    env_id = args.task if args.task.startswith("memtasks/") else f"memtasks/{args.task}"
    if env_id.split("/", 1)[1] not in memtasks.list_tasks():
        parser.error(f"--task: unknown task id {args.task!r}")

    n = args.num_envs
    native = gymnasium.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point")
    sync = gymnasium.vector.SyncVectorEnv([functools.partial(gymnasium.make, env_id)] * n)
    if native.action_space != sync.action_space:  # both must take the same action arrays
        raise RuntimeError(f"action spaces differ: {native.action_space} vs {sync.action_space}")
    native.action_space.seed(args.seed)
    actions = np.stack([native.action_space.sample() for _ in range(args.steps)])
    envs = {"native": native, "sync": sync}
    sampling = _time_sampling(native.unwrapped.task)  # seconds and calls of the native env's task.sample
    for env in envs.values():  # warm-up: first-call allocations, buffer growth, the passive checker
        time_steps(env, actions[: min(20, args.steps)], seed=args.seed)

    seconds: dict[str, list[float]] = {"native": [], "sync": []}
    sampling.update(seconds=0.0, calls=0)
    started = time.perf_counter()
    sampling.update(timed=0.0, timed_calls=0)
    for r in range(args.rounds):
        order = ("native", "sync") if r % 2 == 0 else ("sync", "native")
        for name in order:
            envs[name].reset(seed=args.seed + r)
            before = (sampling["seconds"], sampling["calls"])
            seconds[name].append(time_steps(envs[name], actions, seed=None))
            if name == "native":
                sampling["timed"] += sampling["seconds"] - before[0]
                sampling["timed_calls"] += sampling["calls"] - before[1]
    wall = time.perf_counter() - started
    native.close()
    sync.close()

    sub_steps = n * args.steps
    rate = {name: [sub_steps / s for s in runs] for name, runs in seconds.items()}
    median = {name: statistics.median(runs) for name, runs in rate.items()}
    ratio = median["native"] / median["sync"]
    # resets happen outside the timed loops too; the share counts only calls made while timing native
    share = sampling["timed"] / sum(seconds["native"])
    command = "python -m benchmarks.vector_speed " + shlex.join(sys.argv[1:] if argv is None else argv)
    lines = [
        "# Native vector env vs SyncVectorEnv",
        "",
        f"- command: `{command.strip()}` (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: {machine_description()}; load average at the end {_load()}",
        f"- python {platform.python_version()}, numpy {np.__version__}, gymnasium {gymnasium.__version__}, one process",
        f"- task {env_id}, {n} sub-envs, {args.steps} steps per round (random actions drawn in advance), "
        f"{args.rounds} alternating rounds, {wall:.1f} s timed in all; autoresets count as steps",
    ]
    if args.note:
        lines.append(f"- note: {args.note}")
    lines += [
        "",
        "| vector env | sub-env steps/s (median) | min..max over rounds | vector steps/s (median) |",
        "|---|---:|---:|---:|",
    ]
    labels = {
        "native": "native (`make_vec`, `vector_entry_point`)",
        "sync": f"`SyncVectorEnv` of {n} `gymnasium.make`",
    }
    for name in ("native", "sync"):
        lines.append(
            f"| {labels[name]} | {median[name]:,.0f} | {min(rate[name]):,.0f}..{max(rate[name]):,.0f} "
            f"| {median[name] / n:,.1f} |"
        )
    verdict = "met" if ratio >= REQUIRED_RATIO else "NOT met"
    no_sampling = sum(seconds["sync"]) / max(sum(seconds["native"]) - sampling["timed"], 1e-12)
    lines += [
        "",
        f"Ratio native / sync (medians): {ratio:.1f}x; bar >= {REQUIRED_RATIO:g}x at 256 envs: {verdict}.",
        "",
        f"Of the native env's timed seconds, {share:.0%} went to `task.sample(1, rng_i)` "
        f"({sampling['timed_calls']:,} episodes started, {1e6 * sampling['timed'] / max(sampling['timed_calls'], 1):.0f} us each); "
        f"without that cost the ratio of the totals would be {no_sampling:.1f}x.",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
