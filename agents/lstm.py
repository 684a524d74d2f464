"""LSTM baseline (Hochreiter & Schmidhuber 1997), as in the NTM paper's comparisons (3 layers)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from agents.base import AgentConfig, Core

__all__ = ["LSTMConfig", "LSTMCore"]


@dataclass
class LSTMConfig(AgentConfig):
    """Stacked LSTM; the NTM paper's copy baseline is 3 x 256."""

    hidden_size: int = 256
    """Units per layer."""
    num_layers: int = 3
    """Stacked layers."""


class LSTMCore(Core):
    """``nn.LSTM`` over feature frames; the state is ``(h, c)``, each (layers, B, hidden)."""

    fast_path = "none"  # forward is nn.LSTM's fused oneDNN / cuDNN kernel over the whole sequence

    def __init__(self, input_size: int, config: LSTMConfig) -> None:
        super().__init__()
        if config.hidden_size < 1 or config.num_layers < 1:
            raise ValueError(
                f"hidden_size and num_layers must be >= 1, got {config.hidden_size}, {config.num_layers}"
            )
        self.lstm = nn.LSTM(input_size, config.hidden_size, config.num_layers, batch_first=True)
        self.output_size = config.hidden_size

    def initial_state(self, batch_size: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (self.lstm.num_layers, batch_size, self.lstm.hidden_size)
        zeros = torch.zeros(shape, device=device, dtype=self.lstm.weight_ih_l0.dtype)
        return zeros, zeros.clone()

    def step(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        y, state = self.lstm(x[:, None], state)  # (B, 1, H)
        return y[:, 0], state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lstm(x)[0]  # (B, T, H): cuDNN/oneDNN fused path
