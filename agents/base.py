"""The agent contract: every model is ``encoder -> recurrent core -> head``.

The encoder and the head are built from the task's :class:`~memtasks.TaskSpec`
(here, in one place), so a core never sees task-specific code::

    agent = agents.make_agent("ntm", task.spec, device="auto", controller_size=100)
    logits = agent(inputs)                          # (B, T, output_size) from (B, T, input_size)
    state = agent.initial_state(batch_size, device)
    logits_t, state = agent.step(x_t, state)        # (B, output_size) from one frame (B, input_size)

A :class:`Core` maps feature frames ``(B, D_in)`` to features ``(B, output_size)``
with ``initial_state(batch, device)`` and ``step(x, state) -> (y, state)`` (as
haiku's ``RNNCore``); ``forward`` over a whole sequence may be a faster parallel
path but must agree with stepping (tested for every registered agent).

Adding an agent is one file defining a config dataclass and a core, plus one
``register_agent`` line in ``agents/__init__.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from agents.encoders import make_encoder, make_head
from memtasks.core import TaskSpec

__all__ = [
    "Agent",
    "AgentConfig",
    "AgentInfo",
    "Core",
    "State",
    "agent_info",
    "list_agents",
    "load_plugins",
    "make_agent",
    "register_agent",
    "resolve_device",
]

State = Any  # a tensor, or a tuple/dict of tensors


@dataclass
class AgentConfig:
    """Fields every agent config shares; each agent's config subclasses this."""

    frame_size: int = 50
    """Width of the token-frame embedding (position-encoded bag of words); unused for bit inputs."""
    frame_blocks: int = 1
    """Token inputs: independent position-encoded bags making up the ``frame_size`` features
    (``frame_size / frame_blocks`` each; e.g. MemN2N's per-hop embeddings); unused for bit inputs."""
    position_encoding: str = "sentence"
    """Token inputs: the sentence length J of the position weights: ``"sentence"`` (each sentence's own
    word count, the paper's formula), ``"fixed"`` (the frame width for every sentence) or ``"reference"``
    (the authors' code's centred form); see :mod:`agents.encoders`. Unused for bit inputs."""


class Core(nn.Module):
    """A recurrent core over feature frames. Subclasses implement ``initial_state`` and ``step``."""

    output_size: int
    fast_path: str = "step"
    """What the training fast path compiles (:mod:`agents.fast`): ``"step"`` (the per-step function the
    time loop calls) or ``"none"`` (``forward`` is already a fused whole-sequence kernel)."""
    batch_lengths: str = "mixed"
    """How the trainer batches lengths for this core when its ``batch_lengths`` is ``"auto"``: ``"mixed"``
    (each sequence draws its length; the safe default) or ``"same"`` (one length per batch, no padding), for
    cores measured to learn as well per sequence from batches of one length (see ``results/speed/``)."""

    def initial_state(self, batch_size: int, device: torch.device | str) -> State:
        raise NotImplementedError

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError

    def trace_step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State, dict[str, torch.Tensor]]:
        """:meth:`step`, plus what the core did inside it, for pictures (``memtasks viz``).

        The dict maps a name to a tensor whose first dimension is the batch, e.g. the NTM's read and write
        weightings ``(B, heads, N)`` and memory, or MemN2N's attention per hop ``(B, memories)``. The
        default records nothing.
        """
        y, state = self.step(x, state)
        return y, state, {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, D_in) -> (B, T, output_size)``; by default steps through time."""
        state = self.initial_state(x.shape[0], x.device)
        ys = []
        for t in range(x.shape[1]):
            y, state = self.step(x[:, t], state)
            ys.append(y)
        return torch.stack(ys, dim=1)

    def set_progress(self, epoch: int) -> None:
        """Training schedule hook, called by trainers at each epoch (e.g. MemN2N's linear start)."""

    def warming_up(self) -> bool:
        """Whether the schedule set by :meth:`set_progress` is in a warm-up phase (MemN2N's linear start),
        which trainers may give its own learning rate (``TrainConfig.linear_start_lr``). Default: never."""
        return False

    def end_warm_up(self) -> None:
        """End the warm-up phase now, whatever the epoch (trainers call it when the validation loss stops
        improving: ``TrainConfig.warm_up_end = "plateau"``, the MemN2N paper's rule). Default: nothing."""

    @property
    def needs_epochs(self) -> bool:
        """Whether the core has a schedule that only :meth:`set_progress` advances, so a trainer must count
        epochs (``TrainConfig.epochs`` or ``epoch_size``) or refuse to train it. Default: no schedule."""
        return False


@dataclass(frozen=True)
class AgentInfo:
    """A registry entry: builds a core from (input feature size, config)."""

    name: str
    config_cls: type[AgentConfig]
    builder: Callable[[int, Any], Core]
    description: str


_AGENTS: dict[str, AgentInfo] = {}


def register_agent(
    name: str,
    config_cls: type[AgentConfig],
    builder: Callable[[int, Any], Core],
    description: str = "",
) -> None:
    """Register a core ``builder(input_features, config) -> Core`` under ``name``; duplicates are refused."""
    if name in _AGENTS:
        raise ValueError(f"agent {name!r} is already registered")
    if not (isinstance(config_cls, type) and issubclass(config_cls, AgentConfig)):
        raise TypeError(f"config_cls for {name!r} must subclass AgentConfig")
    _AGENTS[name] = AgentInfo(name, config_cls, builder, description)


ENTRY_POINT_GROUP = "memtasks.agents"
"""Entry-point group of agent plugins: the name is the agent's, the object a :class:`Core` subclass whose
``config_class`` attribute is its :class:`AgentConfig` subclass (``Core(input_size, config)`` builds it)."""


def load_plugins() -> None:
    """Register the agents that installed packages declare under ``memtasks.agents``, e.g. in a plugin's
    ``pyproject.toml``::

        [project.entry-points."memtasks.agents"]
        gru = "my_package.gru:GRUCore"     # class GRUCore(Core) with config_class = GRUConfig

    A plugin that fails to load is reported with a warning rather than breaking ``import agents``; a name
    registered already is left alone (built-in agents win).
    """
    import warnings
    from importlib import metadata

    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _AGENTS:
            continue
        try:
            core = ep.load()
            config_cls = getattr(core, "config_class", None)
            if not (isinstance(core, type) and issubclass(core, Core)) or config_cls is None:
                raise TypeError("the entry point must name a Core subclass with a config_class attribute")
            doc = (core.__doc__ or "").strip()
            register_agent(ep.name, config_cls, core, doc.splitlines()[0] if doc else "")
        except Exception as exc:  # a broken plugin must not break the suite
            warnings.warn(f"memtasks: could not load agent plugin {ep.name!r} ({ep.value}): {exc}", stacklevel=2)


def list_agents() -> list[str]:
    """Names of the registered agents, in registration order."""
    return list(_AGENTS)


def agent_info(name: str) -> AgentInfo:
    if name not in _AGENTS:
        raise ValueError(f"unknown agent {name!r}; known agents: {', '.join(_AGENTS)}")
    return _AGENTS[name]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Agent(nn.Module):
    """``encoder -> core -> head`` for one TaskSpec. Build it with :func:`make_agent`."""

    def __init__(self, name: str, spec: TaskSpec, config: AgentConfig, core_builder: Callable) -> None:
        super().__init__()
        self.name, self.spec, self.config = name, spec, config
        self.encoder, features = make_encoder(spec, config.frame_size, config.frame_blocks, config.position_encoding)
        self.core: Core = core_builder(features, config)
        self.head = make_head(spec, self.core.output_size)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, T, output_size)`` for a whole batch of sequences ``inputs`` (B, T, ...).

        Inputs follow the model: they are moved to its device, and float frames are cast to its dtype
        (so a bf16 model takes the tasks' float32 batches); token ids stay integers.
        """
        return self.head(self.core(self.encoder(self._follow_model(inputs))))

    def _follow_model(self, x: torch.Tensor) -> torch.Tensor:
        p = next(self.parameters())
        if x.is_floating_point():
            return x.to(device=p.device, dtype=p.dtype)
        return x.to(device=p.device)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        return self.core.initial_state(batch_size, device if device is not None else self.device)

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Logits ``(B, output_size)`` for one frame ``x`` (B, input_size), and the next state."""
        y, state = self.core.step(self.encoder(self._follow_model(x)), state)
        return self.head(y), state

    def trace_step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State, dict[str, torch.Tensor]]:
        """:meth:`step`, plus the core's internals for this frame (see :meth:`Core.trace_step`)."""
        y, state, inside = self.core.trace_step(self.encoder(self._follow_model(x)), state)
        return self.head(y), state, inside

    def set_progress(self, epoch: int) -> None:
        """Forward the trainer's epoch to the core's schedule (see :meth:`Core.set_progress`)."""
        self.core.set_progress(epoch)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def make_agent(name: str, spec: TaskSpec, device: str | torch.device = "auto", **config: Any) -> Agent:
    """Build agent ``name`` for ``spec``; ``config`` overrides fields of its config dataclass.

    Raises:
        ValueError: unknown agent, or a config key the agent does not have (the error lists them).
    """
    info = agent_info(name)
    fields = {f.name for f in dataclasses.fields(info.config_cls)}
    unknown = set(config) - fields
    if unknown:
        raise ValueError(f"unknown config key(s) {sorted(unknown)} for agent {name!r}; allowed: {sorted(fields)}")
    cfg = info.config_cls(**config)
    return Agent(name, spec, cfg, info.builder).to(resolve_device(device))
