"""memtasks: algorithmic memory tasks and bAbI as Gymnasium environments and batched samplers.

Importing the package registers every built-in task (and those of installed
plugins) as ``memtasks/<Name>-vN`` Gymnasium environments.
"""

from memtasks.core import Batch, DataNotFoundError, Task, TaskSpec, score_bits, score_classes
from memtasks.registry import TaskInfo, list_tasks, load_plugins, make_task, register_task, task_info
from memtasks import tasks as _builtin_tasks  # noqa: F401  (registers the built-in tasks)

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "DataNotFoundError",
    "Task",
    "TaskInfo",
    "TaskSpec",
    "list_tasks",
    "make_task",
    "register_task",
    "score_bits",
    "score_classes",
    "task_info",
]

load_plugins()
