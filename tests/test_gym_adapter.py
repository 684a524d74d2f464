"""agents.run_episode: an agent acting in a memtasks env scores what Task.score counts.

For every registered bits task (Copy-v0, and any other the registry holds) and
every registered agent, the return of an episode played step by step equals
minus the errors ``task.score`` finds in the agent's batched output on the same
sequence (sample 0 of ``task.sample(1, np.random.default_rng(seed))``).
"""

from __future__ import annotations

import dataclasses
import functools

import gymnasium
import numpy as np
import pytest
import torch

import agents
import memtasks
from agents.base import agent_info
from memtasks.env import MemTaskEnv

torch.set_num_threads(1)

SMALL = {
    "frame_size": 8,
    "hidden_size": 8,
    "num_layers": 1,
    "controller_size": 8,
    "memory_rows": 8,
    "memory_width": 4,
    "embedding_size": 8,
    "memory_size": 4,
    "hops": 2,
    "d_model": 8,
    "num_heads": 2,
    "ff_size": 16,
    "dropout": 0.0,  # the test compares an episode with a forward pass in training mode
}
"""Small sizes for any agent; each agent takes the keys its config has."""

SEEDS = (0, 1, 2, 3)


def small_agent(name: str, spec: memtasks.TaskSpec) -> agents.Agent:
    fields = {f.name for f in dataclasses.fields(agent_info(name).config_cls)}
    torch.manual_seed(0)
    return agents.make_agent(name, spec, device="cpu", **{k: v for k, v in SMALL.items() if k in fields})


@functools.cache
def bits_task_ids() -> tuple[str, ...]:
    """Registered bits -> bits tasks that build from their defaults (Copy-v0 at least).

    Token tasks (bAbI) are left out: they need data files and have class outputs, which
    ``test_token_class_episode_return_is_minus_wrong_classes`` covers with a toy task.
    """
    ids = []
    for task_id in memtasks.list_tasks():
        if task_id.startswith("bAbI"):  # token tasks; building all 20 would read their data
            continue
        try:
            task = memtasks.make_task(task_id)
        except Exception:  # noqa: BLE001 - e.g. a data-backed task without its data
            continue
        if task.spec.output_kind == "bits" and task.spec.input_kind == "bits":
            ids.append(task_id)
    return tuple(ids)


def test_copy_is_among_the_tested_tasks() -> None:
    assert "Copy-v0" in bits_task_ids()


@pytest.mark.parametrize("name", agents.list_agents())
@pytest.mark.parametrize("task_id", bits_task_ids())
def test_episode_return_is_minus_scored_bit_errors(task_id: str, name: str) -> None:
    short = {"min_length": 2, "max_length": 6} if task_id == "Copy-v0" else {}  # others: defaults
    env = gymnasium.make(f"memtasks/{task_id}", **short)
    task = env.unwrapped.task
    agent = small_agent(name, task.spec).train()  # run_episode must switch to eval itself
    for seed in SEEDS:
        total, info = agents.run_episode(agent, env, seed=seed)
        batch = task.sample(1, np.random.default_rng(seed))
        with torch.no_grad():
            logits = agent.eval()(torch.as_tensor(batch.inputs))  # (1, T, bits)
        agent.train()
        expected = task.score(logits, batch)["bit_errors"]
        assert total == -expected, f"seed {seed}"
        assert info["steps"] == batch.num_steps
        assert info["actions"].shape == (batch.num_steps, task.spec.output_size)
        np.testing.assert_allclose(info["logits"], logits[0].numpy(), atol=1e-5)
    assert agent.training, "run_episode must restore the agent's mode"


def test_untrained_agent_makes_errors_so_the_check_is_not_vacuous() -> None:
    env = gymnasium.make("memtasks/Copy-v0", min_length=4, max_length=6)
    agent = small_agent("lstm", env.unwrapped.task.spec)
    returns = [agents.run_episode(agent, env, seed=s)[0] for s in SEEDS]
    assert min(returns) < 0


def test_episode_with_length_option() -> None:
    env = gymnasium.make("memtasks/Copy-v0")
    agent = small_agent("lstm", env.unwrapped.task.spec)
    _, info = agents.run_episode(agent, env, seed=5, options={"length": 3})
    assert info["steps"] == 2 * 3 + 1


class _TokenClasses(memtasks.Task):
    """A toy tokens -> classes task: name the first word of the frame before (scored from t=1)."""

    def __init__(self) -> None:
        super().__init__(3, 8)
        self.spec = memtasks.TaskSpec("tokens", 3, "classes", 4, vocab=("<pad>", "a", "b", "c", "d"))

    def _sample(self, lengths: np.ndarray, rng: np.random.Generator) -> memtasks.Batch:
        B, T = len(lengths), int(lengths.max())
        words = rng.integers(1, 5, size=(B, T, 3))
        words *= np.arange(3)[None, None, :] < rng.integers(1, 4, size=(B, T, 1))  # left-aligned
        targets = np.zeros((B, T), np.int64)
        targets[:, 1:] = words[:, :-1, 0] - 1
        mask = (np.arange(T)[None, :] >= 1) & (np.arange(T)[None, :] < lengths[:, None])
        return memtasks.Batch(words.astype(np.int64), targets, mask.astype(np.float32), lengths)


@pytest.mark.parametrize("name", agents.list_agents())
def test_token_class_episode_return_is_minus_wrong_classes(name: str, monkeypatch) -> None:
    task = _TokenClasses()
    # MemTaskEnv builds its task through the registry; hand it this unregistered toy task
    monkeypatch.setattr(memtasks.registry, "make_task", lambda task_id, **kw: task)
    env = MemTaskEnv("TokenClasses-v0")
    agent = small_agent(name, task.spec)
    for seed in SEEDS:
        total, info = agents.run_episode(agent, env, seed=seed)
        batch = task.sample(1, np.random.default_rng(seed))
        with torch.no_grad():
            logits = agent(torch.as_tensor(batch.inputs))  # (1, T, classes)
        wrong = task.score(logits, batch)["error_rate"] * batch.mask.sum()
        assert total == pytest.approx(-wrong)
        assert info["actions"].shape == (batch.num_steps,)


def test_rejects_an_agent_built_for_another_spec() -> None:
    env = gymnasium.make("memtasks/Copy-v0", bits=4)
    agent = small_agent("lstm", memtasks.make_task("Copy-v0", bits=3).spec)
    with pytest.raises(ValueError, match="agent was built for"):
        agents.run_episode(agent, env, seed=0)
