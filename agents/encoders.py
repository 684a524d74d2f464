"""Input encoders and output heads, built from a TaskSpec in this one place.

Bit frames go to the core as they are. Token frames (bAbI sentences) become one
vector each by a position-encoded bag of words (Sukhbaatar et al. 2015,
arXiv 1503.08895, section 4.1): ``m = sum_j l_j * A x_j`` with
``l_kj = (1 - j/J) - (k/d)(1 - 2j/J)`` for word j of J (1-based) and embedding
dimension k of d. Every output kind gets a linear head producing logits
(sigmoid/BCE for bits, softmax/cross-entropy for classes).
"""

from __future__ import annotations

import torch
from torch import nn

from memtasks.core import TaskSpec

__all__ = ["PositionEncodedBag", "make_encoder", "make_head", "position_encoding"]


def position_encoding(num_words: torch.Tensor, max_words: int, dim: int) -> torch.Tensor:
    """Weights ``l_kj`` for sentences of ``num_words`` words: ``(..., max_words, dim)``.

    Positions past a sentence's end get weight 0.
    """
    j = torch.arange(1, max_words + 1, device=num_words.device, dtype=torch.float32)  # (W,)
    k = torch.arange(1, dim + 1, device=num_words.device, dtype=torch.float32)  # (d,)
    J = num_words.clamp(min=1).to(torch.float32)[..., None, None]  # (..., 1, 1)
    jj, kk = j[:, None], k[None, :] / dim  # (W, 1), (1, d)
    weights = (1 - jj / J) - kk * (1 - 2 * jj / J)  # (..., W, d)
    return weights * (jj <= J)


class PositionEncodedBag(nn.Module):
    """Token frames ``(..., W)`` of word ids (0 = padding) to vectors ``(..., dim)``."""

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        nn.init.normal_(self.embedding.weight, std=0.1)  # the MemN2N paper's N(0, 0.1)
        with torch.no_grad():
            self.embedding.weight[0].zero_()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        emb = self.embedding(tokens)  # (..., W, d)
        # words are left-aligned, so the count of non-padding ids is J
        num_words = (tokens != 0).sum(-1)  # (...)
        weights = position_encoding(num_words, tokens.shape[-1], self.dim)
        return (emb * weights).sum(-2)  # (..., d)


def make_encoder(spec: TaskSpec, frame_size: int) -> tuple[nn.Module, int]:
    """The encoder for ``spec`` inputs and the feature width it produces."""
    if spec.input_kind == "bits":
        return nn.Identity(), spec.input_size
    if spec.input_kind == "tokens":
        if frame_size < 1:
            raise ValueError(f"frame_size must be >= 1 for token inputs, got {frame_size}")
        return PositionEncodedBag(spec.vocab_size, frame_size), frame_size
    raise ValueError(f"no encoder for input_kind {spec.input_kind!r}")


def make_head(spec: TaskSpec, features: int) -> nn.Module:
    """A linear map from core features to logits over ``spec.output_size`` bits or classes."""
    if spec.output_kind not in ("bits", "classes"):
        raise ValueError(f"no head for output_kind {spec.output_kind!r}")
    return nn.Linear(features, spec.output_size)
