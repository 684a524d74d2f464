"""A native batched Gymnasium vector env: ``num_envs`` episodes of one task, stepped with numpy.

Built by ``gymnasium.make_vec("memtasks/Copy-v0", num_envs=256,
vectorization_mode="vector_entry_point")`` (or with no ``vectorization_mode``:
the registry declares this class as every task's ``vector_entry_point``).
Keyword arguments other than ``num_envs`` go to the task, as with ``gymnasium.make``.

Contract (the one of :mod:`memtasks.env`, per sub-env): after ``reset(seed=s)``
sub-env ``i`` is seeded with ``s + i`` (a list of seeds gives each its own; a
``None`` entry, or ``seed=None``, keeps that sub-env's generator, or draws a fresh
one on first use), and its episodes are exactly the successive samples of
``task.sample(1, np.random.default_rng(s + i))``: the episode started by the reset,
then each autoreset draws the next sample from the same generator, as the single
env's ``reset()`` without a seed does. So ``SyncVectorEnv`` of single envs reset
with the same seeds sees the same observations, rewards, terminations and infos.
Rewards are the single env's: minus the wrong bits on scored steps (bit tasks), -1
for a wrong class on a scored step (class tasks), 0 elsewhere.

Autoreset: Gymnasium's default **next-step** mode
(``metadata["autoreset_mode"] = AutoresetMode.NEXT_STEP``). The step on which a
sub-env's episode ends returns ``terminated=True`` and the blank frame that
follows the last step; on the next ``step`` that sub-env ignores its action,
starts its next episode and returns its first frame with reward 0 and
``terminated=False``. Episodes never truncate. Autoresets use no reset options
(like ``SyncVectorEnv``, which calls ``reset()`` on the sub-env); ``reset(options=...)``
passes ``length`` and the task's sample options to every sub-env it resets, and
accepts Gymnasium's ``options["reset_mask"]`` (bool array ``(num_envs,)``) to reset
only some sub-envs.

Infos hold the keys ``SyncVectorEnv`` builds from the single envs' infos, each an
array over sub-envs with a boolean ``_key`` array saying which sub-envs set it:
``t`` (the step just answered, 0 after a reset), ``length`` (the episode's length
parameter), and from a step (not from a reset or an autoreset) ``target`` (the
step's target) and ``scored`` (whether it counted).

The step is vectorised over sub-envs; only the sub-envs that start an episode
call ``task.sample(1, rng_i)``, one by one. No rendering: ``render_mode`` must be
None (render a single env with ``gymnasium.make(id, render_mode="rgb_array")``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from memtasks.core import Batch, Task, check_int
from memtasks.env import task_spaces

__all__ = ["MemTaskVectorEnv"]


class MemTaskVectorEnv(VectorEnv):
    """``num_envs`` independent episodes of a task as one Gymnasium vector env (see the module docstring).

    Args:
        task_id: Registered task id; the other keyword arguments go to the task.
        num_envs: Number of sub-envs, >= 1.
        render_mode: Must be None (this vector env does not render).
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, task_id: str, num_envs: int = 1, render_mode: str | None = None, **task_kwargs: Any) -> None:
        from memtasks.registry import make_task  # late import, as in memtasks.env

        self.num_envs = check_int("num_envs", num_envs, 1)
        if render_mode is not None:
            raise ValueError(
                f"render_mode must be None for the vector env (render one env with "
                f"gymnasium.make(id, render_mode='rgb_array')), got {render_mode!r}"
            )
        self.render_mode = None
        self.task_id = task_id
        self.task: Task = make_task(task_id, **task_kwargs)
        spec = self.task.spec
        self._bits_out = spec.output_kind == "bits"
        self.single_observation_space, self.single_action_space = task_spaces(self.task)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._action_shape = (self.num_envs, spec.output_size) if self._bits_out else (self.num_envs,)

        n = self.num_envs
        self._idx = np.arange(n)
        self._rngs: list[np.random.Generator | None] = [None] * n
        self._T = np.zeros(n, np.int64)  # steps of each sub-env's episode
        self._t = np.zeros(n, np.int64)  # steps taken in it
        self._lengths = np.zeros(n, np.int64)  # its length parameter
        self._autoreset = np.zeros(n, bool)  # its episode ended on the last step
        self._cap = 0  # steps the buffers hold; they have one more column, all zero (the frame after the end)
        self._inputs = np.zeros((n, 1, spec.input_size), np.int64 if spec.input_kind == "tokens" else np.float32)
        if self._bits_out:
            self._targets = np.zeros((n, 1, spec.output_size), np.float32)
        else:
            self._targets = np.zeros((n, 1), np.int64)
        self._mask = np.zeros((n, 1), bool)
        self._started = False

    # -- reset --------------------------------------------------------------------------------
    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start new episodes (all sub-envs, or those in ``options["reset_mask"]``).

        Args:
            seed: ``None`` (each sub-env continues its generator), an int ``s``
                (sub-env ``i`` gets ``s + i``) or a list of ``num_envs`` ints or Nones.
            options: ``length`` and the task's sample options, for every sub-env
                reset; ``reset_mask``, a bool array ``(num_envs,)``.

        Returns:
            The first observations ``(num_envs, ...)`` and infos ``t``/``length`` with masks.
        """
        seeds = self._seed_list(seed)
        options = dict(options or {})
        which = np.ones(self.num_envs, bool)
        if "reset_mask" in options:
            which = self._check_reset_mask(options.pop("reset_mask"))
        if not self._started and not which.all():
            raise RuntimeError("the first reset() must reset every sub-env (no reset_mask)")
        length = options.pop("length", None)
        # draw every new episode first, so that a bad option leaves the env as it was
        drawn = []
        for i in np.flatnonzero(which):
            rng = self._rngs[i] if seeds[i] is None else np.random.default_rng(seeds[i])
            if rng is None:
                rng = np.random.default_rng()
            drawn.append((i, rng, self.task.sample(1, rng, length=length, **options)))
        for i, rng, batch in drawn:
            self._rngs[i] = rng
            self._load(i, batch)
        self._autoreset[which] = False
        self._started = True
        infos = {
            "t": np.zeros(self.num_envs, np.int64),
            "_t": which.copy(),
            "length": np.where(which, self._lengths, 0),
            "_length": which.copy(),
        }
        return self._inputs[self._idx, self._t], infos

    def _seed_list(self, seed: Any) -> list[int | None]:
        n = self.num_envs
        if seed is None:
            return [None] * n
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
            first = check_int("seed", seed, 0)
            return [first + i for i in range(n)]
        if isinstance(seed, (list, tuple, np.ndarray)):
            seeds = list(seed)
            if len(seeds) != n:
                raise ValueError(f"seed must be an int, None or a list of num_envs={n} seeds, got a list of {len(seeds)}")
            return [None if s is None else check_int(f"seed[{i}]", s, 0) for i, s in enumerate(seeds)]
        raise TypeError(f"seed must be an int, None or a list of num_envs={n} ints or Nones, got {seed!r}")

    def _check_reset_mask(self, mask: Any) -> np.ndarray:
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != (self.num_envs,):
            raise ValueError(
                f"options['reset_mask'] must be a bool numpy array of shape ({self.num_envs},), got {mask!r}"
            )
        if not mask.any():
            raise ValueError("options['reset_mask'] must select at least one sub-env")
        return mask.copy()

    def _load(self, i: int, batch: Batch) -> None:
        """Make ``batch`` (one sample) sub-env ``i``'s episode, at its first step."""
        T = batch.num_steps
        if T > self._cap:
            self._grow(T)
        self._inputs[i, :T] = batch.inputs[0]
        self._inputs[i, T:] = 0
        self._targets[i, :T] = batch.targets[0]
        self._mask[i, :T] = batch.mask[0] > 0
        self._mask[i, T:] = False
        self._T[i] = T
        self._t[i] = 0
        self._lengths[i] = batch.lengths[0]

    def _grow(self, steps: int) -> None:
        cap = max(steps, 2 * self._cap)  # amortised growth; the buffers keep one zero column past cap
        old = self._cap + 1

        def grown(a: np.ndarray) -> np.ndarray:
            b = np.zeros((a.shape[0], cap + 1) + a.shape[2:], a.dtype)
            b[:, :old] = a
            return b

        self._inputs, self._targets, self._mask = grown(self._inputs), grown(self._targets), grown(self._mask)
        self._cap = cap

    # -- step ----------------------------------------------------------------------------------
    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Answer the current step of every sub-env (next-step autoreset, see the module docstring).

        Args:
            actions: ``(num_envs, output_size)`` bits (bit tasks, > 0.5 counts as 1) or
                ``(num_envs,)`` class ids (class tasks).

        Returns:
            ``(observations, rewards (float64), terminations, truncations (all False), infos)``.
        """
        if not self._started:
            raise RuntimeError("call reset() before step()")
        act = np.asarray(actions)
        if act.shape != self._action_shape:
            raise ValueError(f"actions must have shape {self._action_shape} (num_envs, ...), got {act.shape}")
        idx, t = self._idx, self._t
        restart = self._autoreset  # these sub-envs start their next episode and ignore the action
        stepped = ~restart
        target = self._targets[idx, t]
        if self._bits_out:
            wrong = np.count_nonzero((act > 0.5) != (target > 0.5), axis=1)
            target *= stepped[:, None]
        else:
            wrong = act.astype(np.int64) != target
            target *= stepped
        scored = self._mask[idx, t] & stepped
        rewards = np.where(scored, -wrong.astype(np.float64), 0.0)  # as the single env: -0.0 for none wrong
        step_t = t * stepped
        self._t = t + stepped
        terminated = (self._t >= self._T) & stepped
        for i in np.flatnonzero(restart):
            rng = self._rngs[i]
            assert rng is not None
            self._load(int(i), self.task.sample(1, rng))
        self._autoreset = terminated
        everyone = np.ones(self.num_envs, bool)
        infos = {
            "target": target,
            "_target": stepped,
            "scored": scored,
            "_scored": stepped.copy(),
            "t": step_t,
            "_t": everyone,
            "length": self._lengths.copy(),
            "_length": everyone.copy(),
        }
        observations = self._inputs[idx, self._t]
        return observations, rewards, terminated, np.zeros(self.num_envs, bool), infos

    def render(self) -> None:
        """This vector env does not render (``render_mode`` is always None)."""
        return None

    def __repr__(self) -> str:
        return f"MemTaskVectorEnv({self.task_id!r}, num_envs={self.num_envs})"
