"""Built-in tasks, one per file. Registering a new one is one line below."""

from memtasks.registry import register_task
from memtasks.tasks.copy import Copy

__all__ = ["Copy"]

register_task("Copy-v0", Copy)
