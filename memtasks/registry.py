"""The one place tasks are registered, for :func:`make_task` and for Gymnasium.

Every task id is versioned (``Name-vN``). Registering ``"Copy-v0"`` makes it
available as ``memtasks.make_task("Copy-v0")``, as
``gymnasium.make("memtasks/Copy-v0")`` and, batched natively, as
``gymnasium.make_vec("memtasks/Copy-v0", num_envs=..., vectorization_mode="vector_entry_point")``
(:mod:`memtasks.vector_env`). Third-party packages add tasks through
the entry-point group ``memtasks.tasks``: the entry point's name is the task id
and its object a :class:`~memtasks.core.Task` subclass or factory, e.g. in the
plugin's ``pyproject.toml``::

    [project.entry-points."memtasks.tasks"]
    "Reverse-v0" = "my_package.reverse:Reverse"
"""

from __future__ import annotations

import difflib
import re
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable

import gymnasium

from memtasks.core import Task

__all__ = ["NAMESPACE", "TaskInfo", "make_task", "list_tasks", "register_task", "task_info"]

NAMESPACE = "memtasks"
ENTRY_POINT_GROUP = "memtasks.tasks"
_ID_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*-v\d+$")


@dataclass(frozen=True)
class TaskInfo:
    """A registry entry: the id, the factory that builds the task, a one-line description, the score."""

    task_id: str
    factory: Callable[..., Task]
    description: str
    score_metric: str | None = None
    """The metric of :meth:`Task.score` that a benchmark ranks this task by (and tunes on), e.g.
    ``"cost_bits"`` where the paper reports cost; ``None``: ``bit_errors`` for bit outputs, ``error_rate``
    for classes."""


_REGISTRY: dict[str, TaskInfo] = {}


def _strip_namespace(task_id: str) -> str:
    if not isinstance(task_id, str):
        raise TypeError(f"task_id must be a string like 'Copy-v0', got {task_id!r}")
    prefix = NAMESPACE + "/"
    return task_id[len(prefix) :] if task_id.startswith(prefix) else task_id


def register_task(
    task_id: str, factory: Callable[..., Task], description: str | None = None, score_metric: str | None = None
) -> None:
    """Register a task under ``task_id`` (``Name-vN``) and as Gymnasium env ``memtasks/<task_id>``.

    Args:
        task_id: Versioned id, e.g. ``"Copy-v0"``; ``"memtasks/Copy-v0"`` is accepted too.
        factory: A :class:`Task` subclass or a callable returning a Task from keyword arguments.
        description: One line for ``memtasks list``; defaults to the first docstring line.
        score_metric: The key of the task's ``score()`` that ranks it (:attr:`TaskInfo.score_metric`);
            ``None`` for the output kind's default.

    Raises:
        ValueError: the id is malformed or already registered, or ``score_metric`` is not a metric name.
    """
    task_id = _strip_namespace(task_id)
    if not _ID_PATTERN.match(task_id):
        raise ValueError(f"task_id must look like 'Name-v0' (letters, digits, _.-, then -vN), got {task_id!r}")
    if task_id in _REGISTRY:
        raise ValueError(f"task {task_id!r} is already registered; choose a new name or version")
    if not callable(factory):
        raise TypeError(f"factory for {task_id!r} must be callable, got {factory!r}")
    if description is None:
        doc = (getattr(factory, "__doc__", None) or "").strip()
        description = doc.splitlines()[0] if doc else ""
    if score_metric is not None and not (isinstance(score_metric, str) and score_metric.isidentifier()):
        raise ValueError(f"score_metric of {task_id!r} must be None or the name of a metric its score() returns "
                         f"(e.g. 'bit_errors', 'cost_bits', 'error_rate'), got {score_metric!r}")
    _REGISTRY[task_id] = TaskInfo(task_id, factory, description, score_metric)
    env_id = f"{NAMESPACE}/{task_id}"
    if env_id not in gymnasium.registry:
        gymnasium.register(
            id=env_id,
            entry_point="memtasks.env:MemTaskEnv",
            vector_entry_point="memtasks.vector_env:MemTaskVectorEnv",
            kwargs={"task_id": task_id},
        )


def task_info(task_id: str) -> TaskInfo:
    """Return the registry entry of ``task_id``; unknown ids list the known ones."""
    key = _strip_namespace(task_id)
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown task id {task_id!r}.{hint} Known ids: {', '.join(list_tasks())}")
    return _REGISTRY[key]


def make_task(task_id: str, **kwargs: Any) -> Task:
    """Build the task registered as ``task_id`` with its keyword arguments."""
    return task_info(task_id).factory(**kwargs)


def list_tasks() -> list[str]:
    """Every registered task id, in registration order."""
    return list(_REGISTRY)


def load_plugins() -> None:
    """Register the tasks that installed packages declare under ``memtasks.tasks``.

    A plugin that fails to load is reported with a warning rather than breaking
    ``import memtasks``; an id registered already is left alone.
    """
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if _strip_namespace(ep.name) in _REGISTRY:
            continue
        try:
            register_task(ep.name, ep.load())
        except Exception as exc:  # a broken plugin must not break the suite
            warnings.warn(f"memtasks: could not load task plugin {ep.name!r} ({ep.value}): {exc}", stacklevel=2)
