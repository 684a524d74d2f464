"""Short learning tests of the NTM on the NTM paper's other four tasks, each against its trivial baseline.

The trivial baseline predicts p = 0.5 for every target bit (logits 0), costing one bit per target bit: the
cost a model that learned nothing reaches. Small settings, 300-400 Adam steps at lr 1e-2, batch 32, eager
(20-60 s each on a busy 2-core CPU, hence ``slow``); measured costs and the baselines' derivation:
``results/learning/README.md``. The memory's negative control is the Copy test in ``tests/test_ntm.py``
(these settings fit in the controller: an NTM without writes learns them as well).
"""

from __future__ import annotations

import numpy as np
import pytest

import agents
import memtasks
from benchmarks.evaluate import evaluate
from benchmarks.train import TrainConfig, train

CASES = {  # task: (task kwargs, steps, largest cost allowed as a fraction of the trivial baseline's)
    "memtasks/RepeatCopy-v0": ({"bits": 4, "min_length": 1, "max_length": 3, "min_repeats": 1, "max_repeats": 3}, 400, 0.75),
    "memtasks/AssociativeRecall-v0": ({"bits": 4, "item_length": 1, "min_length": 2, "max_length": 4}, 400, 0.75),
    "memtasks/DynamicNGrams-v0": ({"order": 3, "min_length": 30, "max_length": 30}, 300, 0.75),
    "memtasks/PrioritySort-v0": ({"bits": 4, "min_length": 6, "max_length": 6, "num_outputs": 4}, 400, 0.9),
}


def trivial_cost(task: memtasks.Task) -> float:
    """Bits per sequence of predicting p = 0.5 everywhere, on 1024 sequences of the task."""
    batch = task.sample(1024, np.random.default_rng(7))
    zeros = np.zeros(batch.targets.shape[:2] + (task.spec.output_size,), np.float32)
    return task.score(zeros, batch)["cost_bits"]


@pytest.mark.slow
@pytest.mark.parametrize("task_id", list(CASES), ids=lambda t: t.split("/")[1])
def test_ntm_beats_the_trivial_baseline(task_id: str, tmp_path) -> None:
    kwargs, steps, fraction = CASES[task_id]
    config = TrainConfig(
        task=task_id, agent="ntm", seed=0, task_kwargs=kwargs,
        agent_kwargs={"controller_size": 32, "memory_rows": 12, "memory_width": 10},
        batch_size=32, lr=1e-2, steps=steps, log_every=50, threads=1, compile=False,
    )  # fmt: skip
    result = train(config, tmp_path, progress=False)
    assert result.status == "ok", result.message
    trained, _, _ = agents.load_checkpoint(tmp_path / "model.pt", device="cpu")
    task = memtasks.make_task(task_id, **kwargs)
    cost = float(evaluate(trained, task, None, samples=256, seed=1).set_index("metric").loc["cost_bits", "value"])
    baseline = trivial_cost(task)
    assert cost < fraction * baseline, f"{task_id}: {cost:.2f} bits per sequence, trivial baseline {baseline:.2f}"
