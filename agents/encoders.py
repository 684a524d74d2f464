"""Input encoders and output heads, built from a TaskSpec in this one place.

Bit frames go to the core as they are. Token frames (bAbI sentences) become one
vector each by a position-encoded bag of words (Sukhbaatar et al. 2015,
arXiv 1503.08895, section 4.1): ``m = sum_j l_j * A x_j`` with
``l_kj = (1 - j/J) - (k/d)(1 - 2j/J)`` for word j of J (1-based) and embedding
dimension k of d. Every output kind gets a linear head producing logits
(sigmoid/BCE for bits, softmax/cross-entropy for classes).

``blocks > 1`` (``AgentConfig.frame_blocks``) makes the token encoder ``blocks``
independent bags side by side: the frame is ``[l * E_1 x, ..., l * E_b x]`` with
``b`` separate word embeddings of width ``d = frame_size / blocks`` and the
position weights ``l_kj`` counted within each block (k = 1..d). This is the
paper's set of per-hop embedding matrices A^1..A^K, C^K (B = A^1 under adjacent
tying), each position-encoding its own word vectors, which a core such as
MemN2N (``embedding="blocks"``) uses block by block.

``position`` (``AgentConfig.position_encoding``) picks the sentence length J:

- ``"sentence"`` (default, the paper's formula as written): J = the sentence's own word count.
- ``"fixed"``: the same formula with J = the frame width W (the longest line of the data) for
  every sentence, so a word's weights depend on its position only, as in the authors' code.
- ``"reference"``: the authors' reference code's centred form with J = W,
  ``l_kj = 1 + 4 (k - (d+1)/2) (j - (J+1)/2) / (d J)`` (about twice the paper's weights).
"""

from __future__ import annotations

import torch
from torch import nn

from memtasks.core import TaskSpec

POSITION_ENCODINGS = ("sentence", "fixed", "reference")
"""Allowed values of ``position`` (see the module docstring)."""

__all__ = ["POSITION_ENCODINGS", "PositionEncodedBag", "make_encoder", "make_head", "position_encoding"]


def position_encoding(
    num_words: torch.Tensor, max_words: int, dim: int, position: str = "sentence", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Weights ``l_kj`` for sentences of ``num_words`` words: ``(..., max_words, dim)`` in ``dtype``.

    Positions past a sentence's end get weight 0. ``position``: see the module docstring. The weights are
    computed in float32 and cast at the end, so a bf16 or fp16 model gets the same weights rounded once.
    """
    if position not in POSITION_ENCODINGS:
        raise ValueError(f"position must be one of {POSITION_ENCODINGS}, got {position!r}")
    j = torch.arange(1, max_words + 1, device=num_words.device, dtype=torch.float32)  # (W,)
    k = torch.arange(1, dim + 1, device=num_words.device, dtype=torch.float32)  # (d,)
    jj = j[:, None]  # (W, 1)
    present = jj <= num_words.clamp(min=1)[..., None, None]  # (..., W, 1)
    if position == "reference":
        W = float(max_words)
        weights = 1 + 4 * (k[None, :] - (dim + 1) / 2) * (jj - (W + 1) / 2) / (dim * W)  # (W, d)
        return (weights * present).to(dtype)
    if position == "fixed":
        J = torch.tensor(float(max_words), device=num_words.device)
    else:
        J = num_words.clamp(min=1).to(torch.float32)[..., None, None]  # (..., 1, 1)
    kk = k[None, :] / dim  # (1, d)
    weights = (1 - jj / J) - kk * (1 - 2 * jj / J)  # (..., W, d)
    return (weights * present).to(dtype)


class PositionEncodedBag(nn.Module):
    """Token frames ``(..., W)`` of word ids (0 = padding) to vectors ``(..., dim)``.

    Args:
        vocab_size: Number of word ids (id 0 is padding and embeds to zeros).
        dim: Output width; ``blocks`` bags of ``dim // blocks`` each.
        blocks: Independent position-encoded bags concatenated along the last axis
            (one word embedding of width ``dim`` whose ``blocks`` slices are position-weighted
            with ``l_kj`` for ``k`` counted within the slice).
        position: How J is chosen (``"sentence"``, ``"fixed"``, ``"reference"``; module docstring).
    """

    def __init__(self, vocab_size: int, dim: int, blocks: int = 1, position: str = "sentence") -> None:
        super().__init__()
        if not (isinstance(blocks, int) and blocks >= 1 and dim % blocks == 0):
            raise ValueError(f"blocks must be an integer >= 1 dividing dim={dim}, got {blocks!r}")
        if position not in POSITION_ENCODINGS:
            raise ValueError(f"position must be one of {POSITION_ENCODINGS}, got {position!r}")
        self.dim, self.blocks, self.position = dim, blocks, position
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        nn.init.normal_(self.embedding.weight, std=0.1)  # the MemN2N paper's N(0, 0.1)
        with torch.no_grad():
            self.embedding.weight[0].zero_()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        emb = self.embedding(tokens)  # (..., W, d)
        # words are left-aligned, so the count of non-padding ids is J
        num_words = (tokens != 0).sum(-1)  # (...)
        weights = position_encoding(
            num_words, tokens.shape[-1], self.dim // self.blocks, self.position, dtype=emb.dtype
        )  # (..., W, d_b)
        if self.blocks > 1:
            weights = weights.repeat(*([1] * (weights.dim() - 1)), self.blocks)  # (..., W, blocks * d_b)
        return (emb * weights).sum(-2)  # (..., dim)


def make_encoder(
    spec: TaskSpec, frame_size: int, frame_blocks: int = 1, position: str = "sentence"
) -> tuple[nn.Module, int]:
    """The encoder for ``spec`` inputs and the feature width it produces.

    ``frame_blocks`` (token inputs only; bit frames pass through unchanged) splits the
    ``frame_size`` features into that many independent position-encoded bags; ``position``
    picks their sentence length J (module docstring).
    """
    if spec.input_kind == "bits":
        return nn.Identity(), spec.input_size
    if spec.input_kind == "tokens":
        if frame_size < 1:
            raise ValueError(f"frame_size must be >= 1 for token inputs, got {frame_size}")
        if not (isinstance(frame_blocks, int) and frame_blocks >= 1 and frame_size % frame_blocks == 0):
            raise ValueError(f"frame_blocks must be an integer >= 1 dividing frame_size={frame_size}, "
                             f"got {frame_blocks!r}")  # fmt: skip
        return PositionEncodedBag(spec.vocab_size, frame_size, frame_blocks, position), frame_size
    raise ValueError(f"no encoder for input_kind {spec.input_kind!r}")


def make_head(spec: TaskSpec, features: int) -> nn.Module:
    """A linear map from core features to logits over ``spec.output_size`` bits or classes."""
    if spec.output_kind not in ("bits", "classes"):
        raise ValueError(f"no head for output_kind {spec.output_kind!r}")
    return nn.Linear(features, spec.output_size)
