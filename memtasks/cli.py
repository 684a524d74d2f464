"""The ``memtasks`` command.

``memtasks list``, ``memtasks sample`` and ``memtasks data`` belong to the task library and live here.
Every other sub-command is a plugin: an entry point in the group ``memtasks.commands`` whose name is the
sub-command and whose object is a ``cli(argv) -> int`` function (exit status; the first line of its
docstring is the help line). This project's harness declares ``train``, ``eval``, ``run``, ``plot``,
``leaderboard`` and ``viz`` that way in ``pyproject.toml``, so the task library never names the harness
above it; a third-party package adds a command the same way::

    [project.entry-points."memtasks.commands"]
    mycommand = "my_package.cli:cli"
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from typing import Callable

import numpy as np

__all__ = ["COMMAND_GROUP", "main"]

COMMAND_GROUP = "memtasks.commands"
"""Entry-point group of the plugin sub-commands."""

_BUILTIN = {
    "list": "list the registered tasks",
    "sample": "print one episode of a task",
    "data": "download datasets (bAbI)",
}


def _plugins() -> dict[str, metadata.EntryPoint]:
    """The installed plugin sub-commands by name; a name that a built-in command has is skipped."""
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=COMMAND_GROUP):
        if ep.name not in _BUILTIN:
            found.setdefault(ep.name, ep)
    return found


def _summary(ep: metadata.EntryPoint) -> str:
    """The first docstring line of a plugin command (it is imported to read it)."""
    try:
        doc = (ep.load().__doc__ or "").strip()
    except Exception as exc:  # a broken plugin must not break `memtasks --help`
        return f"(cannot be loaded: {type(exc).__name__})"
    line = doc.splitlines()[0].rstrip(".") if doc else ""
    return line[:1].lower() + line[1:]


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
    memtasks.task_info(task_id)  # an unknown id: our ValueError with suggestions, not Gymnasium's traceback
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


def _data(argv: list[str]) -> int:
    from memtasks.babi.download import cli

    return int(cli(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    plugins = _plugins()
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: memtasks <command> [args]\n\ncommands:")
        helps = dict(_BUILTIN, **{name: _summary(ep) for name, ep in plugins.items()})
        for name, text in helps.items():
            print(f"  {name:<12} {text}")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in _BUILTIN and name not in plugins:
        known = ", ".join([*_BUILTIN, *plugins])
        hint = "" if plugins else " (no plugin commands are installed: pip install -e . in the checkout)"
        print(f"memtasks: unknown command {name!r}; choose from {known}{hint}", file=sys.stderr)
        return 2
    from memtasks.core import DataNotFoundError

    builtin: dict[str, Callable[[list[str]], int]] = {"list": _list, "sample": _sample, "data": _data}
    try:
        command = builtin[name] if name in builtin else plugins[name].load()
        return int(command(rest) or 0)
    except (DataNotFoundError, ValueError, TypeError, FileNotFoundError) as exc:
        # bad input or missing data: the message says what to change; a traceback would bury it
        print(f"memtasks {name}: error: {exc}", file=sys.stderr)
        return 2


def run() -> None:
    """The console script: :func:`main`, quiet when its reader goes away (``memtasks list | head``)."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        code = 0
    sys.exit(code)


if __name__ == "__main__":
    run()
