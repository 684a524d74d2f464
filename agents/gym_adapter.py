"""Let an :class:`~agents.base.Agent` act in a memtasks Gymnasium environment.

The environment (:mod:`memtasks.env`) shows one input frame per step and takes
the agent's output for that step as the action; its reward on scored steps is
minus the wrong bits (bit outputs) or -1 for a wrong class. The agent is run
with :meth:`Agent.step`, so the same weights that :meth:`Agent.forward` uses on
a batch act here frame by frame, and an episode's return equals minus the
errors that :meth:`memtasks.Task.score` counts on the same sequence. Actions
use the scorer's decision rule: a bit is on when its logit is > 0 (probability
> 0.5), a class is the argmax of the logits.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import torch

from agents.base import Agent

__all__ = ["run_episode"]


def run_episode(
    agent: Agent,
    env: gymnasium.Env,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[float, dict[str, Any]]:
    """Play one episode of ``env`` with ``agent`` (eval mode, no gradients).

    Args:
        agent: An agent built for the env's task spec.
        env: A memtasks env, e.g. ``gymnasium.make("memtasks/Copy-v0")`` (wrappers allowed).
        seed: Passed to ``env.reset``; the episode is then sample 0 of
            ``task.sample(1, np.random.default_rng(seed), **options)``.
        options: Passed to ``env.reset`` (e.g. ``{"length": 5}``).

    Returns:
        ``(total_reward, info)`` where ``info`` holds ``"steps"`` (int),
        ``"logits"`` (float array (T, output_size)), ``"actions"`` (array (T, output_size)
        of 0/1 for bit outputs, (T,) class ids for class outputs) and ``"rewards"`` (T,).

    Raises:
        ValueError: the agent was built for another TaskSpec than the env's task.
    """
    task = getattr(env.unwrapped, "task", None)
    if task is None:
        raise ValueError(f"env must be a memtasks env (with a .task), got {type(env.unwrapped).__name__}")
    if task.spec != agent.spec:
        raise ValueError(f"agent was built for {agent.spec}, but the env's task has {task.spec}")
    spec = agent.spec
    device = agent.device
    float_dtype = next(agent.parameters()).dtype
    was_training = agent.training
    agent.eval()
    logits_seq: list[np.ndarray] = []
    actions: list[Any] = []
    rewards: list[float] = []
    try:
        with torch.no_grad():
            obs, _ = env.reset(seed=seed, options=options)
            state = agent.initial_state(1, device)
            done = False
            while not done:
                if spec.input_kind == "bits":
                    x = torch.as_tensor(np.asarray(obs), dtype=float_dtype, device=device)[None]  # (1, input_size)
                else:
                    x = torch.as_tensor(np.asarray(obs), dtype=torch.long, device=device)[None]  # (1, W)
                logits, state = agent.step(x, state)  # (1, output_size)
                out = logits[0].detach().cpu().numpy()
                if spec.output_kind == "bits":
                    action: Any = (out > 0).astype(np.int8)  # the scorer's threshold: p > 0.5
                else:
                    action = int(np.argmax(out))
                obs, reward, terminated, truncated, _ = env.step(action)
                logits_seq.append(out)
                actions.append(action)
                rewards.append(float(reward))
                done = bool(terminated or truncated)
    finally:
        agent.train(was_training)
    info = {
        "steps": len(rewards),
        "logits": np.stack(logits_seq) if logits_seq else np.zeros((0, spec.output_size)),
        "actions": np.asarray(actions),
        "rewards": np.asarray(rewards),
    }
    return float(sum(rewards)), info
