"""Gymnasium view of a task: one episode is one sequence, one step is one frame.

The episode started by ``env.reset(seed=s, options=o)`` is exactly sample 0 of
``task.sample(1, np.random.default_rng(s), **o)``; ``reset()`` without a seed
draws the next sequence from the same stream. The observation is the input
frame at the current step; the action is the agent's output for that step,
and on scored steps the reward is minus the number of wrong bits (bit tasks) or
-1 for a wrong class (class tasks), so an episode's return is minus the errors
that :meth:`Task.score` counts for that sequence.

``render_mode="ansi"`` gives the tape so far as text; ``render_mode="rgb_array"``
an (H, W, 3) uint8 picture of the episode (:mod:`memtasks.render`): the input
and target tapes and the actions so far (bit tasks), or the story with the
target and given answers (bAbI). Its size is fixed at ``reset`` from the
episode's number of steps, so all frames of an episode have one shape.
:mod:`memtasks.vector_env` runs many episodes at once with the same contract.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from memtasks.core import Batch, Task

__all__ = ["MemTaskEnv", "RENDER_MODES", "check_render_mode", "task_spaces"]

RENDER_MODES = ("ansi", "rgb_array")


def task_spaces(task: Task) -> tuple[spaces.Space, spaces.Space]:
    """The observation and action space of one episode of ``task`` (shared with the vector env)."""
    spec = task.spec
    if spec.input_kind == "bits":
        low, high = task.observation_bounds()
        observation_space: spaces.Space = spaces.Box(low, high, shape=(spec.input_size,), dtype=np.float32)
    else:
        observation_space = spaces.MultiDiscrete(np.full(spec.input_size, spec.vocab_size), dtype=np.int64)
    if spec.output_kind == "bits":
        action_space: spaces.Space = spaces.MultiBinary(spec.output_size)
    else:
        action_space = spaces.Discrete(spec.output_size)
    return observation_space, action_space


def check_render_mode(render_mode: Any, allowed: tuple[str, ...] = RENDER_MODES) -> None:
    """Raise a one-line ValueError naming ``render_mode`` and the allowed values."""
    if render_mode is not None and render_mode not in allowed:
        choices = ", ".join(repr(m) for m in allowed)
        raise ValueError(f"render_mode must be None or one of {choices}, got {render_mode!r}")


class MemTaskEnv(gymnasium.Env):
    """A memtasks task as a Gymnasium environment (see the module docstring).

    Args:
        task_id: Registered task id; the other keyword arguments go to the task.
        render_mode: ``None``, ``"ansi"`` (the tape so far as text) or ``"rgb_array"``
            (a picture of the episode, see :mod:`memtasks.render`).
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 4}

    def __init__(self, task_id: str, render_mode: str | None = None, **task_kwargs: Any) -> None:
        from memtasks.registry import make_task  # late import: registry imports this module's path

        check_render_mode(render_mode)
        self.render_mode = render_mode
        self.task_id = task_id
        self.task: Task = make_task(task_id, **task_kwargs)
        self.observation_space, self.action_space = task_spaces(self.task)
        self._batch: Batch | None = None
        self._t = 0
        self._actions: list[np.ndarray] = []
        self._return = 0.0
        self._renderer: Any = None  # memtasks.render.EpisodeRenderer of this episode, built on first use

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            # the contract: the same generator task.sample would get from this seed
            self._np_random = np.random.default_rng(seed)
        options = dict(options or {})
        length = options.pop("length", None)
        self._batch = self.task.sample(1, self.np_random, length=length, **options)
        self._t = 0
        self._actions = []
        self._return = 0.0
        self._renderer = None
        return self._obs(), {"t": 0, "length": int(self._batch.lengths[0])}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._batch is None:
            raise RuntimeError("call reset() before step()")
        if self._t >= self._batch.num_steps:
            raise RuntimeError("the episode has ended; call reset()")
        t = self._t
        target = self._batch.targets[0, t]
        scored = bool(self._batch.mask[0, t] > 0)
        if self.task.spec.output_kind == "bits":
            act = np.asarray(action).reshape(-1)
            if act.shape != target.shape:
                raise ValueError(f"action must have shape {target.shape}, got {np.asarray(action).shape}")
            wrong = float(np.sum((act > 0.5) != (target > 0.5)))
        else:
            act = np.asarray(action).reshape(())
            wrong = float(int(act) != int(target))
        reward = -wrong if scored else 0.0
        self._actions.append(act)
        self._return += reward
        self._t += 1
        terminated = self._t >= self._batch.num_steps
        info = {"target": target.copy(), "scored": scored, "t": t, "length": int(self._batch.lengths[0])}
        return self._obs(), reward, terminated, False, info

    def _obs(self) -> np.ndarray:
        assert self._batch is not None
        frames = self._batch.inputs[0]
        if self._t < len(frames):
            return frames[self._t].copy()
        return np.zeros_like(frames[0])  # after the last step: a blank frame

    def render(self) -> str | np.ndarray | None:
        """The text (``"ansi"``) or (H, W, 3) uint8 picture (``"rgb_array"``); None before ``reset``."""
        if self._batch is None or self.render_mode is None:
            return None
        if self.render_mode == "rgb_array":
            if self._renderer is None:
                from memtasks.render import EpisodeRenderer  # Pillow is imported only for pictures

                title = self.task_id if "/" in self.task_id else f"memtasks/{self.task_id}"
                self._renderer = EpisodeRenderer(self.task, self._batch, title)
            return self._renderer.draw(self._t, self._actions, self._return)
        return self._render_ansi()

    def _render_ansi(self) -> str:
        assert self._batch is not None
        t_end = max(self._t, 1)
        inputs = self._batch.inputs[0, :t_end]
        if self.task.spec.input_kind == "tokens":
            vocab = self.task.spec.vocab or ()
            classes = self.task.spec.classes if self.task.spec.output_kind == "classes" else None
            rows = []
            for t, frame in enumerate(inputs):
                row = f"{t:4d} | " + " ".join(vocab[i] for i in frame if i)
                if classes and self._batch.mask[0, t] > 0:
                    # a question frame: show what is asked for, and the answer given if it differs
                    target = classes[int(self._batch.targets[0, t])]
                    row += f"   -> {target}"
                    if t < len(self._actions) and 0 <= int(self._actions[t]) < len(classes):
                        said = classes[int(self._actions[t])]
                        row += "" if said == target else f" (answered {said})"
                rows.append(row)
            return "\n".join(rows) + "\n"
        lines = ["in  " + "".join(_cell(v) for v in row) for row in inputs.T]
        if self.task.spec.output_kind == "bits" and self._actions:
            acts = np.stack(self._actions)  # (t, output_size)
            scored = self._batch.mask[0, : len(acts)] > 0
            targets = self._batch.targets[0, : len(acts)]
            for c in range(acts.shape[1]):
                lines.append(
                    "out "
                    + "".join(
                        (("#" if a > 0.5 else ".") if (a > 0.5) == (y > 0.5) else "X") if s else " "
                        for a, y, s in zip(acts[:, c], targets[:, c], scored)
                    )
                )
        return "\n".join(lines) + "\n"


def _cell(value: float) -> str:
    if value == 0:
        return "."
    if value == 1:
        return "#"
    return "+" if value > 0 else "-"
