"""Save and load a trained agent with everything needed to rebuild it and its task.

A checkpoint is one ``torch.save`` file holding only plain data (dicts, lists,
tuples, strings, numbers, booleans, ``None``) and tensors, so that it loads
with ``torch.load(path, weights_only=True)`` and never runs pickled code::

    {
        "format_version": 1,
        "agent": "ntm",                       # registered agent name
        "config": {...},                      # dataclasses.asdict(agent.config)
        "spec": {...},                        # dataclasses.asdict(agent.spec)
        "state_dict": {...},                  # CPU tensors
        "task_id": "memtasks/Copy-v0",
        "task_kwargs": {"bits": 8, ...},
        "extra": {...} or None,               # anything plain the caller adds
    }

It is written atomically (a temporary file in the same folder, then
``os.replace``), so a reader never sees half a checkpoint.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from agents.base import Agent, make_agent, resolve_device
from memtasks.atomic import atomic_open
from memtasks.core import TaskSpec

__all__ = ["FORMAT_VERSION", "load_checkpoint", "save_checkpoint"]

FORMAT_VERSION = 1
"""Version of the checkpoint layout; :func:`load_checkpoint` refuses others."""

_PLAIN = (str, int, float, bool, type(None))


def _check_plain(value: Any, where: str) -> None:
    """Raise TypeError unless ``value`` is plain data that ``weights_only`` loading accepts."""
    if isinstance(value, _PLAIN) or isinstance(value, torch.Tensor):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, _PLAIN):
                raise TypeError(f"{where} has a key {key!r} of type {type(key).__name__}; use str/int keys")
            _check_plain(item, f"{where}[{key!r}]")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    raise TypeError(
        f"{where} is a {type(value).__name__}; a checkpoint holds only dicts, lists, tuples, "
        "str, int, float, bool, None and tensors (so that it loads with weights_only=True)"
    )


def save_checkpoint(
    path: str | Path,
    agent: Agent,
    task_id: str,
    task_kwargs: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``agent`` and its task to ``path`` atomically (see the module docstring).

    Args:
        path: Destination file (its folder is created if missing).
        agent: An agent built by :func:`agents.make_agent`.
        task_id: The registered task id the agent was trained on.
        task_kwargs: The keyword arguments that rebuild the task with ``make_task``.
        extra: Optional plain data to store alongside (training step, metrics, ...).

    Returns:
        The path written.

    Raises:
        TypeError: ``task_kwargs`` or ``extra`` holds something other than plain data.
    """
    path = Path(path)
    payload = {
        "format_version": FORMAT_VERSION,
        "agent": agent.name,
        "config": dataclasses.asdict(agent.config),
        "spec": dataclasses.asdict(agent.spec),
        "state_dict": {k: v.detach().cpu() for k, v in agent.state_dict().items()},
        "task_id": str(task_id),
        "task_kwargs": dict(task_kwargs),
        "extra": extra,
    }
    for key in ("config", "spec", "task_kwargs", "extra"):
        _check_plain(payload[key], key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        torch.save(payload, f)
    return path


def load_checkpoint(path: str | Path, device: str | torch.device = "auto") -> tuple[Agent, str, dict[str, Any]]:
    """Rebuild the agent saved by :func:`save_checkpoint`.

    Loading uses ``torch.load(..., weights_only=True)`` and leaves torch's global
    random state untouched (the throw-away initialisation runs in a forked RNG).

    Args:
        path: A checkpoint file.
        device: Where to put the agent; ``"auto"`` picks CUDA when present.

    Returns:
        ``(agent, task_id, task_kwargs)``, the agent in eval mode.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a checkpoint of a known format version: unreadable, another program's
            file or state dict, a newer format, or weights that do not fit the agent it names (one line,
            naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    name = repr(str(path))
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # garbage, a truncated file, or a pickle that weights_only refuses
        raise ValueError(f"{name} is not a memtasks checkpoint: torch.load cannot read it ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise ValueError(f"{name} is not a memtasks checkpoint (no format_version)")
    if payload["format_version"] != FORMAT_VERSION:
        raise ValueError(
            f"{name} has checkpoint format_version {payload['format_version']!r}; "
            f"this version of memtasks reads format_version {FORMAT_VERSION}"
        )
    missing = [key for key in ("agent", "config", "spec", "state_dict", "task_id", "task_kwargs") if key not in payload]
    if missing:
        raise ValueError(f"{name} is not a complete memtasks checkpoint: missing {', '.join(missing)}")
    try:
        spec_fields = dict(payload["spec"])
        for key in ("vocab", "classes"):  # asdict keeps tuples, but be lenient with lists
            if spec_fields.get(key) is not None:
                spec_fields[key] = tuple(spec_fields[key])
        spec = TaskSpec(**spec_fields)
        with torch.random.fork_rng(devices=[]):
            agent = make_agent(payload["agent"], spec, device="cpu", **payload["config"])
        agent.load_state_dict(payload["state_dict"])
    except (ValueError, TypeError, RuntimeError, KeyError) as exc:  # unknown agent, config or weights that do not fit
        first_line = (str(exc).strip().splitlines() or [""])[0][:300]
        raise ValueError(f"{name} does not rebuild into a memtasks agent: {type(exc).__name__}: {first_line}") from None
    agent = agent.to(resolve_device(device))
    agent.eval()
    return agent, payload["task_id"], dict(payload["task_kwargs"])
