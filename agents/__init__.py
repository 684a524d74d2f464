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
from agents.lstm import LSTMConfig, LSTMCore

__all__ = [
    "Agent",
    "AgentConfig",
    "AgentInfo",
    "Core",
    "agent_info",
    "list_agents",
    "make_agent",
    "register_agent",
    "resolve_device",
]

register_agent("lstm", LSTMConfig, LSTMCore, "stacked LSTM baseline")
