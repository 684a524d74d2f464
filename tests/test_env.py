"""The Gymnasium view of every registered task: env checker, the replay contract, wrappers."""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import memtasks
from memtasks.core import Batch, Task

ALL_IDS = memtasks.list_tasks()  # registry-wide, so tasks added later are covered without edits here


def _make_env(task_id: str, **kwargs: Any) -> gymnasium.Env:
    """``gymnasium.make`` for ``task_id``; skips when a data-backed task has no data here."""
    try:
        return gymnasium.make(f"memtasks/{task_id}", **kwargs)
    except memtasks.DataNotFoundError as exc:
        pytest.skip(f"{task_id} needs data: {exc}")


def _answer(task: Task, target: np.ndarray) -> Any:
    """The action that is right for ``target``."""
    if task.spec.output_kind == "bits":
        return (target > 0.5).astype(np.int8)
    return int(target)


def _play(env: gymnasium.Env, actions: list[Any]) -> tuple[list[np.ndarray], float, list[dict[str, Any]]]:
    observations, total, infos = [], 0.0, []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        total += reward
        infos.append(info)
        assert not truncated
    assert terminated
    return observations, total, infos


@pytest.mark.parametrize("task_id", ALL_IDS)
def test_gymnasium_env_checker(task_id: str) -> None:
    env = _make_env(task_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # check_env warns about e.g. render_fps; failures raise
        check_env(env.unwrapped)


@pytest.mark.parametrize("task_id", ALL_IDS)
@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("fixed_length", [False, True])
def test_episode_replays_task_sample(task_id: str, seed: int, fixed_length: bool) -> None:
    env = _make_env(task_id)
    task: Task = env.unwrapped.task
    options = {"length": task.min_length} if fixed_length else {}
    batch: Batch = task.sample(1, np.random.default_rng(seed), length=options.get("length"))
    T = batch.num_steps

    obs, info = env.reset(seed=seed, options=options)
    np.testing.assert_array_equal(obs, batch.inputs[0, 0])
    assert info["length"] == batch.lengths[0]
    actions = [_answer(task, batch.targets[0, t]) for t in range(T)]
    observations, total, infos = _play(env, actions)
    for t in range(T - 1):
        np.testing.assert_array_equal(observations[t], batch.inputs[0, t + 1])
    for t, info in enumerate(infos):
        np.testing.assert_array_equal(info["target"], batch.targets[0, t])
        assert info["scored"] == bool(batch.mask[0, t])
        assert info["t"] == t
    assert total == 0.0  # every answer right: nothing lost
    with pytest.raises(RuntimeError, match="reset"):
        env.step(actions[0])


@pytest.mark.parametrize("task_id", ALL_IDS)
def test_return_is_minus_the_scored_errors(task_id: str) -> None:
    env = _make_env(task_id)
    task: Task = env.unwrapped.task
    rng = np.random.default_rng(11)
    for seed in (1, 2):
        batch = task.sample(1, np.random.default_rng(seed))
        env.reset(seed=seed)
        if task.spec.output_kind == "bits":
            acts = rng.integers(0, 2, size=batch.targets.shape[1:], dtype=np.int8)
            logits = np.where(acts > 0, 10.0, -10.0)[None]
            _, total, _ = _play(env, list(acts))
            assert total == -task.score(logits, batch)["bit_errors"]
        else:
            acts = rng.integers(0, task.spec.output_size, size=batch.targets.shape[1])
            logits = np.eye(task.spec.output_size)[acts][None] * 10.0
            _, total, _ = _play(env, [int(a) for a in acts])
            scored = int(batch.mask.sum())
            assert total == pytest.approx(-task.score(logits, batch)["error_rate"] * scored)


def test_unseeded_reset_continues_the_stream() -> None:
    env = _make_env("Copy-v0")
    task = env.unwrapped.task
    rng = np.random.default_rng(5)
    first, second = task.sample(1, rng), task.sample(1, rng)
    obs, _ = env.reset(seed=5)
    np.testing.assert_array_equal(obs, first.inputs[0, 0])
    obs, info = env.reset()
    np.testing.assert_array_equal(obs, second.inputs[0, 0])
    assert info["length"] == second.lengths[0]


def test_reset_options_reach_the_sampler() -> None:
    env = _make_env("RepeatCopy-v0")
    obs, info = env.reset(seed=0, options={"length": 5, "repeats": 12})
    assert info["length"] == 5
    batch = env.unwrapped.task.sample(1, np.random.default_rng(0), length=5, repeats=12)
    np.testing.assert_array_equal(obs, batch.inputs[0, 0])
    assert batch.extras["repeats"][0] == 12 and batch.num_steps == 5 + 2 + 5 * 12 + 1
    assert env.observation_space.contains(batch.inputs[0, 6])  # the count of an unseen R is in bounds
    with pytest.raises(ValueError, match="repeats"):
        env.reset(seed=0, options={"repeats": 99})
    with pytest.raises(ValueError, match="unknown option"):
        _make_env("Copy-v0").reset(seed=0, options={"repeats": 2})


def test_make_passes_kwargs_to_the_task() -> None:
    env = _make_env("Copy-v0", max_length=50)
    assert env.unwrapped.task.max_length == 50
    env = _make_env("PrioritySort-v0", bits=4, priority_low=-3.0)
    assert env.observation_space.shape == (6,) and env.observation_space.low[0] == -3.0
    assert env.action_space.n == 4
    with pytest.raises(ValueError, match="max_length"):
        _make_env("Copy-v0", min_length=5, max_length=2)


def test_action_shape_is_checked() -> None:
    env = _make_env("Copy-v0")
    with pytest.raises(RuntimeError, match="reset"):
        env.unwrapped.step(np.zeros(8, np.int8))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must have shape"):
        env.step(np.zeros(3, np.int8))


def test_render_ansi() -> None:
    env = _make_env("Copy-v0", render_mode="ansi")
    env.reset(seed=0, options={"length": 3})
    for _ in range(7):
        env.step(np.ones(8, np.int8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the passive checker asks for render_fps
        text = env.render()
    assert isinstance(text, str)
    lines = text.splitlines()
    assert len(lines) == 9 + 8  # 9 input channels, 8 output channels
    assert all(len(line) == 4 + 7 for line in lines)  # "in  " / "out " then one cell per step
    plain = _make_env("Copy-v0")
    plain.reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert plain.render() is None  # no render_mode: nothing to draw
    with warnings.catch_warnings(), pytest.raises(ValueError, match="render_mode"):
        warnings.simplefilter("ignore")  # gymnasium.make warns first, then the env refuses
        _make_env("Copy-v0", render_mode="bogus")


def test_make_vec_sync() -> None:
    envs = gymnasium.make_vec("memtasks/Copy-v0", num_envs=2, vectorization_mode="sync")
    try:
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, 9)
        for _ in range(5):
            obs, reward, terminated, truncated, _ = envs.step(envs.action_space.sample())
            assert obs.shape == (2, 9) and reward.shape == (2,)
            assert (reward <= 0).all() and not truncated.any()
    finally:
        envs.close()
