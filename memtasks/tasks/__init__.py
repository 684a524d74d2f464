"""Built-in tasks, one per file. Registering a new one is one line below."""

import functools

from memtasks.babi.data import TASK_NAMES as _BABI_NAMES
from memtasks.babi.joint import BabiJointTask
from memtasks.babi.task import BabiTask
from memtasks.registry import register_task
from memtasks.tasks.associative_recall import AssociativeRecall
from memtasks.tasks.copy import Copy
from memtasks.tasks.dynamic_ngrams import DynamicNGrams
from memtasks.tasks.priority_sort import PrioritySort
from memtasks.tasks.repeat_copy import RepeatCopy

__all__ = ["AssociativeRecall", "Copy", "DynamicNGrams", "PrioritySort", "RepeatCopy"]

register_task("Copy-v0", Copy)
register_task("RepeatCopy-v0", RepeatCopy)
register_task("AssociativeRecall-v0", AssociativeRecall)
register_task("DynamicNGrams-v0", DynamicNGrams, score_metric="cost_bits")  # the paper reports cost on these two
register_task("PrioritySort-v0", PrioritySort, score_metric="cost_bits")

# bAbI v1.2, tasks 1..20: building one reads the data (DataNotFoundError if absent), importing does not
for _n in range(1, 21):
    register_task(f"bAbI-qa{_n}-v0", functools.partial(BabiTask, _n), description=f"bAbI task {_n}: {_BABI_NAMES[_n]}")
register_task("bAbI-joint-v0", BabiJointTask, description="bAbI tasks 1-20 as one dataset (joint training)")
