"""Agents behind one contract (see :mod:`agents.base`): LSTM, NTM, MemN2N, DNC, Transformer; plugins through
the ``memtasks.agents`` entry points (:func:`agents.base.load_plugins`)."""

from agents.base import (
    Agent,
    AgentConfig,
    AgentInfo,
    Core,
    agent_info,
    list_agents,
    load_plugins,
    make_agent,
    register_agent,
    resolve_device,
)
from agents.checkpoint import load_checkpoint, save_checkpoint
from agents.dnc import DNCConfig, DNCCore
from agents.fast import enable_fast_path, fast_path_status
from agents.gym_adapter import run_episode
from agents.losses import sequence_loss
from agents.lstm import LSTMConfig, LSTMCore
from agents.memn2n import MemN2NConfig, MemN2NCore
from agents.ntm import NTMConfig, NTMCore
from agents.transformer import TransformerConfig, TransformerCore

__all__ = [
    "Agent",
    "AgentConfig",
    "AgentInfo",
    "Core",
    "agent_info",
    "enable_fast_path",
    "fast_path_status",
    "list_agents",
    "load_plugins",
    "load_checkpoint",
    "make_agent",
    "register_agent",
    "resolve_device",
    "run_episode",
    "save_checkpoint",
    "sequence_loss",
]

register_agent("lstm", LSTMConfig, LSTMCore, "stacked LSTM baseline")
register_agent("ntm", NTMConfig, NTMCore, "Neural Turing Machine (Graves et al. 2014)")
register_agent("memn2n", MemN2NConfig, MemN2NCore, "End-To-End Memory Network (Sukhbaatar et al. 2015)")
register_agent("dnc", DNCConfig, DNCCore, "Differentiable Neural Computer (Graves et al. 2016)")
register_agent("transformer", TransformerConfig, TransformerCore, "causal Transformer decoder (Vaswani et al. 2017)")

load_plugins()  # after the built-ins: a plugin cannot take a built-in agent's name
