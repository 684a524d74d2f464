"""``render_mode="rgb_array"`` for every registered env: frames, checkers, RecordVideo, vector use."""

from __future__ import annotations

import sys
import types
import warnings
from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import memtasks
from memtasks.env import MemTaskEnv

ALL_IDS = memtasks.list_tasks()


def _make_env(task_id: str, **kwargs: Any) -> gymnasium.Env:
    """``gymnasium.make`` for ``task_id``; skips when a data-backed task has no data here."""
    try:
        return gymnasium.make(f"memtasks/{task_id}", **kwargs)
    except memtasks.DataNotFoundError as exc:
        pytest.skip(f"{task_id} needs data: {exc}")


def _right(env: gymnasium.Env, t: int) -> Any:
    """The right action for step ``t`` of the current episode."""
    batch = env.unwrapped._batch
    if env.unwrapped.task.spec.output_kind == "bits":
        return (batch.targets[0, t] > 0.5).astype(np.int8)
    return int(batch.targets[0, t])


def _wrong(env: gymnasium.Env, t: int) -> Any:
    """An action wrong in every bit (bits) or the wrong class (classes) for step ``t``."""
    right = _right(env, t)
    if env.unwrapped.task.spec.output_kind == "bits":
        return 1 - right
    return (right + 1) % env.unwrapped.task.spec.output_size


def _red_pixels(frame: np.ndarray) -> int:
    r, g, b = (frame[..., k].astype(int) for k in range(3))
    return int(np.sum((r > 180) & (g < 90) & (b < 90)))


def _green_pixels(frame: np.ndarray) -> int:
    r, g, b = (frame[..., k].astype(int) for k in range(3))
    return int(np.sum((g > 110) & (r < 90) & (b < 120)))


@pytest.mark.parametrize("task_id", ALL_IDS)
def test_rgb_array_frames_keep_one_shape(task_id: str) -> None:
    env = _make_env(task_id, render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    assert isinstance(first, np.ndarray) and first.dtype == np.uint8
    assert first.ndim == 3 and first.shape[2] == 3 and first.shape[0] >= 16 and first.shape[1] >= 16
    T = env.unwrapped._batch.num_steps
    env.action_space.seed(0)
    frames = [first]
    terminated = False
    for _ in range(T):
        *_, terminated, _, _ = env.step(env.action_space.sample())
        frames.append(env.render())
    assert terminated
    assert all(f.shape == first.shape and f.dtype == np.uint8 for f in frames)  # one size per episode
    assert not np.array_equal(frames[0], frames[-1])  # the picture follows the episode
    assert not np.array_equal(frames[-2], frames[-1])


@pytest.mark.parametrize("task_id", ALL_IDS)
def test_checkers_accept_rgb_array(task_id: str) -> None:
    env = _make_env(task_id, render_mode="rgb_array")  # with the passive checker
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)  # also remakes the env with every declared render mode
        env.reset(seed=1)
        env.step(env.action_space.sample())
        env.render()  # the passive checker's render check runs on this first call
    assert [str(w.message) for w in caught] == []


def test_wrong_bits_are_red_in_proportion() -> None:
    # Copy with L = 3: steps 4..6 are scored, 8 bits each
    reds = {}
    for n_wrong_steps in (0, 1, 3):
        env = _make_env("Copy-v0", render_mode="rgb_array")
        env.reset(seed=2, options={"length": 3})
        for t in range(7):
            wrong = 4 <= t < 4 + n_wrong_steps
            env.step(_wrong(env, t) if wrong else _right(env, t))
        reds[n_wrong_steps] = _red_pixels(env.render())
    assert reds[0] == 0
    assert reds[1] > 0 and reds[3] == 3 * reds[1]  # one red cell per wrong bit, 8 per wrong step


def test_unscored_steps_are_never_red() -> None:
    env = _make_env("Copy-v0", render_mode="rgb_array")
    env.reset(seed=2, options={"length": 3})
    for t in range(4):  # steps 0..3 are unscored: wrong answers there cost nothing
        env.step(_wrong(env, t))
    assert _red_pixels(env.render()) == 0


def test_babi_answers_are_coloured() -> None:
    env = _make_env("bAbI-qa1-v0", render_mode="rgb_array")
    env.reset(seed=0)
    batch = env.unwrapped._batch
    questions = np.flatnonzero(batch.mask[0] > 0)
    assert len(questions) >= 2
    frames = {}
    for label, wrong_at in (("right", None), ("one wrong", questions[0])):
        env.reset(seed=0)
        for t in range(batch.num_steps):
            env.step(_wrong(env, t) if t == wrong_at else _right(env, t))
        frames[label] = env.render()
    assert _red_pixels(frames["right"]) == 0 and _green_pixels(frames["right"]) > 0
    assert _red_pixels(frames["one wrong"]) > 0
    assert frames["right"].shape == frames["one wrong"].shape


def test_render_before_reset_and_unknown_mode() -> None:
    env = MemTaskEnv("Copy-v0", render_mode="rgb_array")
    assert env.render() is None  # nothing to draw yet
    with pytest.raises(ValueError, match="render_mode") as info:
        MemTaskEnv("Copy-v0", render_mode="bogus")
    message = str(info.value)
    assert "\n" not in message and "'ansi'" in message and "'rgb_array'" in message
    assert MemTaskEnv.metadata["render_modes"] == ["ansi", "rgb_array"]
    with warnings.catch_warnings(), pytest.raises(ValueError, match="render_mode"):
        warnings.simplefilter("ignore")  # gymnasium.make warns about the unknown mode first
        _make_env("Copy-v0", render_mode="bogus")


def test_render_list_mode_through_gymnasium() -> None:
    # gymnasium.make maps "rgb_array_list" onto rgb_array with its RenderCollection wrapper
    env = _make_env("Copy-v0", render_mode="rgb_array_list")
    env.reset(seed=0, options={"length": 2})
    for t in range(3):
        env.step(_right(env, t))
    frames = env.render()
    assert len(frames) == 4 and len({f.shape for f in frames}) == 1


class _FakeClip:
    """Stands in for moviepy's ImageSequenceClip: keeps the frames of each 'video'."""

    videos: list[tuple[str, list[np.ndarray]]] = []

    def __init__(self, frames: list[np.ndarray], fps: float) -> None:
        assert fps > 0
        self.frames = list(frames)

    def write_videofile(self, path: str, logger: Any = None) -> None:
        _FakeClip.videos.append((path, self.frames))


def _fake_moviepy(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["moviepy", "moviepy.video", "moviepy.video.io", "moviepy.video.io.ImageSequenceClip"]
    for name in names:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    sys.modules["moviepy.video.io.ImageSequenceClip"].ImageSequenceClip = _FakeClip  # type: ignore[attr-defined]
    _FakeClip.videos = []


@pytest.mark.parametrize("task_id", ["Copy-v0", "bAbI-qa1-v0"])
def test_record_video(task_id: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        import moviepy  # noqa: F401

        real = True
    except ImportError:  # not installed here: a stand-in checks what moviepy would get
        real = False
        _fake_moviepy(monkeypatch)
    env = gymnasium.wrappers.RecordVideo(
        _make_env(task_id, render_mode="rgb_array"), str(tmp_path / "videos"), episode_trigger=lambda episode: True
    )
    lengths = []
    for seed in (0, 1):
        env.reset(seed=seed)
        T = env.unwrapped._batch.num_steps
        lengths.append(T)
        for _ in range(T):
            env.step(env.action_space.sample())
        assert len(env.recorded_frames) == T + 1  # the reset frame and one per step
        assert len({f.shape for f in env.recorded_frames}) == 1
    env.close()
    if real:
        videos = sorted(tmp_path.glob("*.mp4"))
        assert len(videos) == 2 and all(v.stat().st_size > 0 for v in videos)
    else:
        assert [len(frames) for _, frames in _FakeClip.videos] == [T + 1 for T in lengths]
        for _, frames in _FakeClip.videos:
            assert len({f.shape for f in frames}) == 1 and all(f.dtype == np.uint8 for f in frames)


@pytest.mark.parametrize("task_id", ["Copy-v0", "bAbI-qa1-v0"])
def test_sync_vector_env_of_rendering_envs(task_id: str) -> None:
    # how third-party RL helpers build vector envs: one gymnasium.make per copy
    _make_env(task_id).close()  # skip early when the data is missing
    envs = gymnasium.vector.SyncVectorEnv([lambda: gymnasium.make(f"memtasks/{task_id}", render_mode="rgb_array")] * 4)
    try:
        obs, _ = envs.reset(seed=0)
        assert obs.shape[0] == 4
        envs.action_space.seed(0)
        done = np.zeros(4, bool)
        for _ in range(60):  # long enough for episodes to end and autoreset
            obs, reward, terminated, truncated, _ = envs.step(envs.action_space.sample())
            assert reward.shape == (4,) and (reward <= 0).all() and not truncated.any()
            done |= terminated
        assert done.any()
        frames = envs.render()
        assert len(frames) == 4
        assert all(isinstance(f, np.ndarray) and f.dtype == np.uint8 and f.ndim == 3 for f in frames)
    finally:
        envs.close()
