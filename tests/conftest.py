"""Shared test set-up.

bAbI tests read ``MEMTASKS_BABI_DIR`` (``.ci/run`` sets it). For a developer's
checkout next to ``../shared/babi`` it is filled in here; tests that need the
data skip with a reason when it is absent.
"""

import os
from pathlib import Path

_SHARED_BABI = Path(__file__).resolve().parents[1].parent / "shared" / "babi" / "tasks_1-20_v1-2"
if "MEMTASKS_BABI_DIR" not in os.environ and _SHARED_BABI.is_dir():
    os.environ["MEMTASKS_BABI_DIR"] = str(_SHARED_BABI)
