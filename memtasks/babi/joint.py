"""bAbI's tasks as one dataset: the MemN2N paper's joint training (one model for all 20 tasks)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from memtasks.babi.data import PAD, SIZES, SPLITS, UNK, BabiData, Vocabulary, _lines, load_babi
from memtasks.babi.task import BabiTask
from memtasks.core import Batch, TaskSpec, check_int

__all__ = ["BabiJointTask"]


class BabiJointTask(BabiTask):
    """bAbI tasks 1-20 (or ``tasks``) as one dataset with one vocabulary and one set of answer classes.

    ## Description
    The joint setting of Sukhbaatar et al. (2015, Table 1, "joint" columns): one model is trained on the
    training stories of every task at once and tested on each task's test set. Each split is the tasks'
    splits concatenated in task order (a task's own train/valid split is kept: the last 10% of its train
    file's stories are its validation stories); everything else is :class:`BabiTask`'s encoding.

    Worked example: ``BabiJointTask(tasks=(1, 4))`` holds the 1k training stories of qa1 then of qa4 (900
    + 900 for ``split="train"``); its vocabulary is the union of both tasks' train + valid words, its classes
    the union of their answers; ``evaluate`` adds a ``task`` column (1 or 4) to the per-question results,
    so each task's error rate is read off one evaluation.

    ## Observation Space / Action Space / Rewards / Episode End
    As :class:`BabiTask`, with the joint vocabulary and classes.

    ## Arguments
    - ``size`` (``"1k"`` or ``"10k"``), ``split``, ``data_dir``, ``memory_size``, ``keep_punctuation``,
      ``per_question``: as :class:`BabiTask`.
    - ``tasks`` (sequence of ints in 1..20, default all 20): the tasks to join (en-10k lacks qa3's train
      file: pass the other 19 for ``size="10k"``).

    ## Attributes
    As :class:`BabiTask`, plus ``tasks`` and ``sequence_tasks`` (the task of every sequence of the split).

    ## Version History
    - v0: initial version.
    """

    def __init__(
        self,
        size: str = "1k",
        split: str = "train",
        data_dir: str | os.PathLike[str] | None = None,
        tasks: Sequence[int] | None = None,
        memory_size: int = 50,
        keep_punctuation: bool = False,
        per_question: bool = False,
    ) -> None:
        chosen = tuple(range(1, 21)) if tasks is None else tuple(tasks)
        if not chosen or len(set(chosen)) != len(chosen):
            raise ValueError(f"tasks must be distinct bAbI task numbers in 1..20, got {tasks!r}")
        self.tasks = tuple(check_int("tasks", t, 1, 20) for t in chosen)
        if size not in SIZES:
            raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        for name, value in (("keep_punctuation", keep_punctuation), ("per_question", per_question)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool, got {value!r}")
        self.task = 0  # no single task
        self.size, self.split, self.variant = size, split, None
        self.memory_size = check_int("memory_size", memory_size, 1)
        self.keep_punctuation, self.per_question = keep_punctuation, per_question
        self.title = f"bAbI tasks {', '.join(map(str, self.tasks))}, joint"

        parts = [load_babi(t, size, None, data_dir, keep_punctuation) for t in self.tasks]
        splits = {s: [story for part in parts for story in part.splits[s]] for s in SPLITS}
        story_tasks = np.concatenate([np.full(len(part.splits[split]), part.task) for part in parts])
        known = [story for part in parts for s in ("train", "valid") for story in part.splits[s]]
        vocab = Vocabulary.build((w for story in known for tokens in _lines(story) for w in tokens), (PAD, UNK))
        classes = Vocabulary.build((q.answer for story in known for q in story.questions), reserved=(UNK,))
        files = {f"qa{part.task}_{kind}": path for part in parts for kind, path in part.files.items()}
        self.data = BabiData(0, parts[0].folder, files, splits, vocab, classes, max(p.max_words for p in parts))
        self.vocab, self.classes = vocab, classes
        self.spec = TaskSpec("tokens", self.data.max_words, "classes", len(classes), vocab=vocab.items,
                             classes=classes.items)  # fmt: skip
        self.stories = splits[split]
        self._encode(self.stories)
        self.sequence_tasks = story_tasks[self._story_ids]
        super(BabiTask, self).__init__(int(self._lengths.min()), int(self._lengths.max()))

    def evaluate(self, predict: Callable[[Batch], Any], batch_size: int = 64) -> tuple[dict[str, float], Any]:
        """:meth:`BabiTask.evaluate` over the joint split; the results gain a ``task`` column."""
        metrics, results = super().evaluate(predict, batch_size)
        results["task"] = self.sequence_tasks[results["sequence_id"].to_numpy()]
        return metrics, results
