"""The README's code examples run and do what the README says."""

import re
from pathlib import Path

import gymnasium
from gymnasium.utils.env_checker import check_env
import numpy as np
import pytest

import memtasks
from memtasks import registry

README = Path(__file__).resolve().parents[1] / "README.md"


def _block_after(heading: str) -> str:
    text = README.read_text()
    start = text.index(heading)
    match = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert match, f"no python block after {heading!r}"
    return match.group(1)


@pytest.fixture
def readme_reverse():
    """Run the 'Adding a task' example under a test-only id; unregister it afterwards."""
    task_id = "ReadmeReverse-v0"
    code = _block_after("### Adding a task").replace('"Reverse-v0"', f'"{task_id}"')
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    yield task_id
    registry._REGISTRY.pop(task_id, None)
    gymnasium.registry.pop(f"memtasks/{task_id}", None)


def test_adding_a_task_example(readme_reverse):
    task = memtasks.make_task(readme_reverse, max_length=6)
    batch = task.sample(16, np.random.default_rng(0))
    for b in range(16):
        n = int(batch.lengths[b])
        bits = batch.inputs[b, :n, 0]
        scored = batch.mask[b] > 0
        assert scored.sum() == n
        np.testing.assert_array_equal(batch.targets[b, scored, 0], bits[::-1])
        assert batch.inputs[b, n, 1] == 1.0 and batch.inputs[b, n + 1 :].sum() == 0
    env = gymnasium.make(f"memtasks/{readme_reverse}")
    obs, info = env.reset(seed=3)
    expected = task.sample(1, np.random.default_rng(3))
    np.testing.assert_array_equal(obs, expected.inputs[0, 0])
    check_env(env.unwrapped)
