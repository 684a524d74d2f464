"""Agents behind one contract (see :mod:`agents.base`): LSTM, NTM, MemN2N."""

from agents.base import (
    Agent,
    AgentConfig,
    AgentInfo,
    Core,
    agent_info,
    list_agents,
    make_agent,
    register_agent,
    resolve_device,
)
from agents.checkpoint import load_checkpoint, save_checkpoint
from agents.fast import enable_fast_path, fast_path_status
from agents.gym_adapter import run_episode
from agents.losses import sequence_loss
from agents.lstm import LSTMConfig, LSTMCore
from agents.memn2n import MemN2NConfig, MemN2NCore
from agents.ntm import NTMConfig, NTMCore

__all__ = [
    "Agent",
    "AgentConfig",
    "AgentInfo",
    "Core",
    "agent_info",
    "enable_fast_path",
    "fast_path_status",
    "list_agents",
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
