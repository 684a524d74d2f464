"""The native vector env: the replay contract per sub-env, next-step autoreset, spaces, arguments."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

import memtasks
from memtasks.core import Batch, Task
from memtasks.vector_env import MemTaskVectorEnv

NTM_IDS = ["Copy-v0", "RepeatCopy-v0", "AssociativeRecall-v0", "DynamicNGrams-v0", "PrioritySort-v0"]
BABI_IDS = ["bAbI-qa1-v0", "bAbI-qa3-v0"]  # qa3: long stories, episodes of very different lengths


def _make_vec(task_id: str, num_envs: int, **kwargs: Any) -> VectorEnv:
    """The native vector env of ``task_id``; skips when a data-backed task has no data here."""
    try:
        return gymnasium.make_vec(
            f"memtasks/{task_id}", num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs
        )
    except memtasks.DataNotFoundError as exc:
        pytest.skip(f"{task_id} needs data: {exc}")


class _Replay:
    """What one sub-env must show: successive ``task.sample(1, rng)`` episodes, stepped as the single env."""

    def __init__(self, task: Task, rng: np.random.Generator) -> None:
        self.task, self.rng = task, rng
        self.episodes = 0
        self._next()

    def _next(self) -> None:
        self.batch: Batch = self.task.sample(1, self.rng)
        self.t, self.done = 0, False
        self.episodes += 1

    def first_frame(self) -> np.ndarray:
        return self.batch.inputs[0, 0]

    def action(self, rng: np.random.Generator) -> Any:
        """Right on about half the steps, random otherwise."""
        t = min(self.t, self.batch.num_steps - 1)
        target = self.batch.targets[0, t]
        right = rng.random() < 0.5
        if self.task.spec.output_kind == "bits":
            random = rng.integers(0, 2, size=target.shape)
            return (target > 0.5).astype(np.int8) if right else random.astype(np.int8)
        return int(target) if right else int(rng.integers(0, self.task.spec.output_size))

    def step(self, action: Any) -> tuple[np.ndarray, float, bool]:
        """Expected (observation, reward, terminated) for ``action``, with next-step autoreset."""
        if self.done:
            self._next()
            return self.first_frame(), 0.0, False
        t, b = self.t, self.batch
        target = b.targets[0, t]
        if self.task.spec.output_kind == "bits":
            wrong = float(np.sum((np.asarray(action) > 0.5) != (target > 0.5)))
        else:
            wrong = float(int(action) != int(target))
        reward = -wrong if b.mask[0, t] > 0 else 0.0
        self.t += 1
        self.done = self.t >= b.num_steps
        obs = np.zeros_like(b.inputs[0, 0]) if self.done else b.inputs[0, self.t]
        return obs, reward, self.done


def _check_replay(envs: VectorEnv, replays: list[_Replay], steps: int, rng: np.random.Generator) -> None:
    for _ in range(steps):
        actions = [r.action(rng) for r in replays]
        obs, reward, terminated, truncated, info = envs.step(np.stack([np.asarray(a) for a in actions]))
        for i, (r, a) in enumerate(zip(replays, actions)):
            was_done = r.done
            want_obs, want_reward, want_term = r.step(a)
            np.testing.assert_array_equal(obs[i], want_obs, err_msg=f"sub-env {i}, episode {r.episodes}")
            assert reward[i] == want_reward and terminated[i] == want_term, (i, r.episodes, r.t)
            assert info["_target"][i] == (not was_done)
            assert info["length"][i] == r.batch.lengths[0]
        assert not truncated.any()


@pytest.mark.parametrize("task_id", NTM_IDS + BABI_IDS)
def test_sub_envs_replay_task_samples(task_id: str) -> None:
    envs = _make_vec(task_id, 3)
    task = envs.unwrapped.task
    obs, info = envs.reset(seed=7)
    replays = [_Replay(task, np.random.default_rng(7 + i)) for i in range(3)]  # sub-env i gets seed 7 + i
    for i, r in enumerate(replays):
        np.testing.assert_array_equal(obs[i], r.first_frame())
        assert info["length"][i] == r.batch.lengths[0] and info["t"][i] == 0
    rng = np.random.default_rng(0)
    while min(r.episodes for r in replays) < 3:  # across autoresets: each stream goes on
        _check_replay(envs, replays, 10, rng)
    assert obs.dtype == envs.single_observation_space.dtype


def test_seed_list_and_unseeded_reset() -> None:
    envs = _make_vec("Copy-v0", 3)
    task = envs.unwrapped.task
    rngs = [np.random.default_rng(s) for s in (4, 5, 6)]
    first = [task.sample(1, r) for r in rngs]
    obs, _ = envs.reset(seed=4)  # 4, 5, 6
    np.testing.assert_array_equal(obs, np.stack([b.inputs[0, 0] for b in first]))
    second = [task.sample(1, r) for r in rngs]
    obs, _ = envs.reset()  # every sub-env draws its next sample
    np.testing.assert_array_equal(obs, np.stack([b.inputs[0, 0] for b in second]))
    # a list: sub-env 1 keeps its stream (None), the others restart from new seeds
    third_1 = task.sample(1, rngs[1])
    obs, info = envs.reset(seed=[11, None, 2])
    expected = [task.sample(1, np.random.default_rng(11)), third_1, task.sample(1, np.random.default_rng(2))]
    np.testing.assert_array_equal(obs, np.stack([b.inputs[0, 0] for b in expected]))
    np.testing.assert_array_equal(info["length"], [b.lengths[0] for b in expected])


def test_same_results_as_sync_vector_env() -> None:
    native = _make_vec("Copy-v0", 4, max_length=6)
    sync = gymnasium.make_vec("memtasks/Copy-v0", num_envs=4, vectorization_mode="sync", max_length=6)
    try:
        for envs in (native, sync):
            assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
        a, info_a = native.reset(seed=3)
        b, info_b = sync.reset(seed=3)
        np.testing.assert_array_equal(a, b)
        assert info_a.keys() == info_b.keys()
        native.action_space.seed(1)
        for _ in range(60):
            action = native.action_space.sample()
            out_a, out_b = native.step(action), sync.step(action)
            for x, y in zip(out_a[:4], out_b[:4]):
                np.testing.assert_array_equal(x, y)
                assert x.dtype == y.dtype
            for key, value in out_b[4].items():  # every info key SyncVectorEnv builds, equal
                np.testing.assert_array_equal(out_a[4][key], value, err_msg=key)
    finally:
        native.close()
        sync.close()


def test_next_step_autoreset() -> None:
    envs = _make_vec("Copy-v0", 3, min_length=2, max_length=2)  # T = 5 for every episode
    task = envs.unwrapped.task
    envs.reset(seed=0)
    ones = np.ones((3, 8), np.int8)
    for _ in range(4):
        _, _, terminated, _, _ = envs.step(ones)
        assert not terminated.any()
    obs, reward, terminated, _, info = envs.step(ones)
    assert terminated.all()
    np.testing.assert_array_equal(obs, np.zeros((3, 9), np.float32))  # the blank frame after the end
    assert info["t"].tolist() == [4, 4, 4] and info["_target"].all()
    # the next step starts the next episodes: action ignored, reward 0, first frames
    obs, reward, terminated, _, info = envs.step(ones)
    expected = []
    for i in range(3):
        rng = np.random.default_rng(i)
        task.sample(1, rng)
        expected.append(task.sample(1, rng).inputs[0, 0])
    np.testing.assert_array_equal(obs, np.stack(expected))
    assert reward.tolist() == [0.0, 0.0, 0.0] and not terminated.any()
    assert not info["_target"].any() and info["t"].tolist() == [0, 0, 0]
    _, _, terminated, _, info = envs.step(ones)
    assert info["t"].tolist() == [0, 0, 0] and info["_target"].all() and not terminated.any()


def test_reset_mask_and_options() -> None:
    envs = _make_vec("RepeatCopy-v0", 2)
    task = envs.unwrapped.task
    obs, info = envs.reset(seed=0, options={"length": 3, "repeats": 2})
    np.testing.assert_array_equal(obs[1], task.sample(1, np.random.default_rng(1), length=3, repeats=2).inputs[0, 0])
    assert info["length"].tolist() == [3, 3]
    envs.step(np.zeros((2, 9), np.int8))
    obs, info = envs.reset(options={"reset_mask": np.array([False, True]), "length": 1})
    assert info["_length"].tolist() == [False, True] and info["length"][1] == 1
    replay_0 = task.sample(1, np.random.default_rng(0), length=3, repeats=2)
    np.testing.assert_array_equal(obs[0], replay_0.inputs[0, 1])  # sub-env 0 goes on at step 1
    with pytest.raises(ValueError, match="unknown option"):
        envs.reset(seed=0, options={"bogus": 1})


def test_spaces_equal_the_single_env() -> None:
    for task_id in NTM_IDS + BABI_IDS[:1]:
        envs = _make_vec(task_id, 5)
        single = gymnasium.make(f"memtasks/{task_id}")
        assert isinstance(envs, VectorEnv) and isinstance(envs, MemTaskVectorEnv) and envs.num_envs == 5
        assert envs.single_observation_space == single.observation_space
        assert envs.single_action_space == single.action_space
        assert envs.observation_space == batch_space(single.observation_space, 5)
        assert envs.action_space == batch_space(single.action_space, 5)
        obs, _ = envs.reset(seed=0)
        assert envs.observation_space.contains(obs)
        assert envs.action_space.contains(envs.action_space.sample())


def test_make_vec_defaults_to_native_and_passes_kwargs() -> None:
    envs = gymnasium.make_vec("memtasks/Copy-v0", num_envs=2)  # the registered vector entry point
    assert isinstance(envs, MemTaskVectorEnv)
    envs = _make_vec("Copy-v0", 2, bits=3, max_length=4)
    assert envs.single_action_space.n == 3 and envs.unwrapped.task.max_length == 4


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="num_envs"):
        _make_vec("Copy-v0", 0)
    with pytest.raises(TypeError, match="num_envs"):
        MemTaskVectorEnv("Copy-v0", num_envs=2.0)
    with pytest.raises(ValueError, match="render_mode"):
        _make_vec("Copy-v0", 2, render_mode="rgb_array")
    envs = _make_vec("Copy-v0", 3)
    with pytest.raises(RuntimeError, match="reset"):
        envs.step(np.zeros((3, 8), np.int8))
    with pytest.raises(ValueError, match="seed"):
        envs.reset(seed=[1, 2])
    with pytest.raises(ValueError, match="seed"):
        envs.reset(seed=-1)
    with pytest.raises(ValueError, match="reset_mask"):
        envs.reset(seed=0, options={"reset_mask": [True, False, True]})
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="actions"):
        envs.step(np.zeros((3, 7), np.int8))
    with pytest.raises(ValueError, match="actions"):
        envs.step(np.zeros(8, np.int8))


def test_vector_speed_benchmark_smoke(tmp_path) -> None:
    """The benchmark runs end to end on a tiny set-up and writes its report (numbers are not checked)."""
    from benchmarks.vector_speed import main

    out = tmp_path / "vector_env.md"
    assert main(["--num-envs", "4", "--steps", "5", "--rounds", "1", "--out", str(out)]) == 0
    text = out.read_text()
    assert "SyncVectorEnv" in text and "Ratio native / sync" in text
