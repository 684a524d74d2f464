"""bAbI v1.2 (Weston et al. 2015): file parser, data location and splits, the task, the downloader.

The data (CC BY 3.0, Facebook) is not shipped: ``memtasks data babi --dest DIR``
downloads it, and ``MEMTASKS_BABI_DIR`` (or ``data_dir=``) says where it is.
Nothing here reads files at import time.
"""

from memtasks.babi.data import TASK_NAMES, BabiData, Vocabulary, find_data_dir, load_babi, task_files
from memtasks.babi.parser import BabiFormatError, Question, Story, parse_babi, parse_lines, tokenize
from memtasks.babi.task import BabiTask, build_windows, error_by_length, question_results

__all__ = [
    "TASK_NAMES",
    "BabiData",
    "BabiFormatError",
    "BabiTask",
    "Question",
    "Story",
    "Vocabulary",
    "build_windows",
    "error_by_length",
    "find_data_dir",
    "load_babi",
    "parse_babi",
    "parse_lines",
    "question_results",
    "task_files",
    "tokenize",
]
