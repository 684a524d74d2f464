"""The ``memtasks`` command. Each sub-command's module owns its own argument parser.

``memtasks list`` and ``memtasks sample`` live here; the others are dispatched to
``cli(argv) -> int`` functions in the modules named in ``_SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import numpy as np

__all__ = ["main"]

# name -> (module with a `cli(argv) -> int`, one-line help)
_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "train": ("benchmarks.train", "train one agent on one task"),
    "eval": ("benchmarks.evaluate", "evaluate a checkpoint over test lengths"),
    "run": ("benchmarks.runner", "run an experiment file (tasks x agents x seeds)"),
    "plot": ("benchmarks.plots", "redraw an experiment's curves from its runs.csv"),
    "leaderboard": ("benchmarks.leaderboard", "merge experiments' leaderboards"),
    "data": ("memtasks.babi.download", "download datasets (bAbI)"),
}


def _list(argv: list[str]) -> int:
    import memtasks

    parser = argparse.ArgumentParser(prog="memtasks list", description="List the registered task ids.")
    parser.parse_args(argv)
    ids = memtasks.list_tasks()
    width = max(len(i) for i in ids)
    for task_id in ids:
        print(f"memtasks/{task_id:<{width}}  {memtasks.task_info(task_id).description}")
    return 0


def _sample(argv: list[str]) -> int:
    import gymnasium

    import memtasks  # noqa: F401  (registers the environments)

    parser = argparse.ArgumentParser(prog="memtasks sample", description="Print one episode of a task.")
    parser.add_argument("task", help="task id, e.g. memtasks/Copy-v0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--length", type=int, default=None)
    args = parser.parse_args(argv)
    task_id = args.task if args.task.startswith("memtasks/") else f"memtasks/{args.task}"
    # the passive checker only warns here (no render_fps for a text tape); keep the output clean
    env = gymnasium.make(task_id, render_mode="ansi", disable_env_checker=True)
    obs, _ = env.reset(seed=args.seed, options={"length": args.length})
    # The env contract: this episode is sample 0 of task.sample(1, default_rng(seed), ...),
    # so the targets to answer with come from the public sampler, not the env's internals.
    task = env.unwrapped.task
    batch = task.sample(1, np.random.default_rng(args.seed), length=args.length)
    bits = task.spec.output_kind == "bits"
    done, t = False, 0
    while not done:  # answer with the target, so the tape shows what is asked
        if not np.array_equal(obs, batch.inputs[0, t]):
            raise RuntimeError(f"the episode of {task_id} does not replay task.sample at step {t}")
        target = batch.targets[0, t]
        obs, _, done, _, _ = env.step((target > 0.5).astype(np.int8) if bits else int(target))
        t += 1
    print(env.render())
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"list": "list the registered tasks", "sample": "print one episode of a task"}
    commands.update({k: v[1] for k, v in _SUBCOMMANDS.items()})
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: memtasks <command> [args]\n\ncommands:")
        for name, text in commands.items():
            print(f"  {name:<12} {text}")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in commands:
        print(f"memtasks: unknown command {name!r}; choose from {', '.join(commands)}", file=sys.stderr)
        return 2
    from memtasks.core import DataNotFoundError

    try:
        if name == "list":
            return _list(rest)
        if name == "sample":
            return _sample(rest)
        module = importlib.import_module(_SUBCOMMANDS[name][0])
        return int(module.cli(rest) or 0)
    except (DataNotFoundError, ValueError, TypeError) as exc:
        # bad input or missing data: the message says what to change; a traceback would bury it
        print(f"memtasks {name}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
