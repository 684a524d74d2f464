"""A causal decoder-only Transformer over frames.

Vaswani et al. 2017 ("Attention Is All You Need"), as a :class:`~agents.base.Core`:
each time step's feature frame (from the Agent's encoder: raw bits, or a
position-encoded bag of words for token frames) is projected to ``d_model``
and is one token of a causal self-attention stack; the output at step ``t``
depends on frames ``0..t`` only. Defaults follow the Transformer encoder of
Delétang et al. 2023 ("Neural Networks and the Chomsky Hierarchy"): 5 layers,
``d_model`` 64, 8 heads, dropout 0.1, feed-forward width 4 x ``d_model`` = 256
(their widening factor 4), ReLU.

Layer (pre-LN, Xiong et al. 2020)::

    h = h + Dropout(Attn(LN(h)))
    h = h + Dropout(FF(LN(h)))          FF = Linear(d, ff) -> ReLU -> Linear(ff, d)
    y = LN_final(h)                     # (B, T, d_model) -> the Agent's linear head

Pre-LN rather than post-LN: the trainers here run Adam at a constant learning
rate without warm-up, and pre-LN keeps the gradient scale of every layer
bounded at initialisation, so it trains without warm-up where post-LN often
diverges or stalls (Xiong et al. 2020); it is also what most causal decoders
use. The q/k/v projections have no bias (a key bias cannot change the softmax
and would get no gradient).

Dropout (``self.training`` only) acts on the embedded frames (after any added
position encoding) and on each residual branch's output; not on the attention
weights.

Positional information (``positional``):

- ``"none"``: nothing added; causal masking alone lets the model count.
- ``"sinusoidal"``: Vaswani et al.'s sin/cos of the position added to the
  embedded frame (``PE[p, 2i] = sin(p / 10000^(2i/d))``, ``PE[p, 2i+1] = cos(...)``).
- ``"learned"``: a learned table of ``max_positions`` vectors added to the
  embedded frame; longer sequences raise a ValueError naming ``max_positions``.
- ``"rope"``: rotary embeddings (Su et al. 2021) on q and k of every head and
  layer: the two halves of a head's vector are rotated pairwise by angle
  ``p * rope_base^(-i / (d_head/2))``, so ``q_t . k_s`` depends on ``t - s``.
- ``"alibi"``: Press et al. 2022: no embedding; the score of query ``t`` on key
  ``s`` gets ``-m_h (t - s)`` with head slopes ``m_h`` the geometric sequence
  ``2^(-8/n), 2^(-16/n), ...`` (:func:`alibi_slopes`, the paper's rule for head
  counts that are not powers of two included).
- ``"randomized"`` / ``"randomized_rope"``: Ruoss et al. 2023 (randomized
  positional encodings) on top of the sinusoidal / rotary encoding. In
  training, a sequence of ``T`` steps gets positions drawn as a sorted random
  subset of ``range(max_positions)`` (each sequence of the batch its own draw,
  from torch's global generator, so ``torch.manual_seed`` reproduces it), so
  the model must rely on the order of the positions, not their values. A
  sequence shorter than the padded batch takes the first of the ``T`` sorted
  positions (the core does not see the lengths). Evaluation
  (``randomized_eval``):

  * ``"ordered"`` (default): positions ``0..T-1``: deterministic, the same for
    :meth:`~TransformerCore.step` and ``forward``, any length up to
    ``max_positions``.
  * ``"sample"``: the reference code's evaluation (which draws positions at
    test time too): a sorted random subset as in training, drawn from a
    generator seeded with ``randomized_eval_seed`` at every ``forward`` call,
    so evaluation stays deterministic. Whole sequences only: :meth:`step`
    cannot know the final length and refuses.

  Sequences longer than ``max_positions`` raise a ValueError naming it.

``attention_window`` (``0``: unlimited) restricts query ``t`` to keys
``t - w + 1 .. t``; ``attention_window=1`` sees the current frame only (a
negative control: such a model cannot copy).

Recurrent interface: the state is a KV cache ``(keys, values)``, each
``(num_layers, B, num_heads, t, d_head)`` after ``t`` steps (it grows by one
along dim 3 per step; ``initial_state`` holds ``t = 0``). :meth:`step` embeds
one frame at position ``t``, attends over the cache and appends its own keys
and values, so stepping gives the whole-sequence logits (in eval mode, to
float rounding). Keys are cached after the rotary rotation. The whole-sequence
``forward`` is one batched causal attention per layer (what training uses;
``fast_path = "none"``).

Padding: a batch's shorter sequences are padded at the end; under causal
attention a padded step never influences an earlier step, so the logits of a
sequence's real steps do not depend on how much padding follows (tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from agents.base import AgentConfig, Core
from memtasks.core import check_float, check_int

__all__ = [
    "POSITIONALS",
    "RANDOMIZED_EVAL",
    "TransformerConfig",
    "TransformerCore",
    "alibi_slopes",
    "apply_rotary",
    "random_positions",
    "sinusoidal_encoding",
]

POSITIONALS = ("none", "sinusoidal", "learned", "rope", "alibi", "randomized", "randomized_rope")
"""Allowed values of :attr:`TransformerConfig.positional`."""

RANDOMIZED_EVAL = ("ordered", "sample")
"""Allowed values of :attr:`TransformerConfig.randomized_eval`."""

_RANDOMIZED = ("randomized", "randomized_rope")
_BOUNDED = ("learned",) + _RANDOMIZED  # encodings defined on range(max_positions) only
_ROTARY = ("rope", "randomized_rope")
_ADDED = ("sinusoidal", "learned", "randomized")  # encodings added to the embedded frame


@dataclass
class TransformerConfig(AgentConfig):
    """Causal Transformer; defaults are Delétang et al. 2023's encoder (5 x 64, 8 heads, dropout 0.1)."""

    d_model: int = 64
    """Width of every token (and of the core's output)."""
    num_layers: int = 5
    """Number of attention + feed-forward blocks."""
    num_heads: int = 8
    """Attention heads per layer; must divide ``d_model``."""
    ff_size: int = 256
    """Hidden width of each feed-forward block (4 x ``d_model``, Delétang et al.'s widening factor)."""
    dropout: float = 0.1
    """Dropout probability on the embedded frames and on each residual branch (training only)."""
    positional: str = "sinusoidal"
    """Position information: ``"none"``, ``"sinusoidal"``, ``"learned"``, ``"rope"``, ``"alibi"``,
    ``"randomized"`` (randomized sinusoidal) or ``"randomized_rope"`` (see the module docstring)."""
    max_positions: int = 1024
    """``"learned"``: size of the position table; randomized encodings: the range positions are drawn
    from. Longer sequences raise a ValueError with these encodings; the others work at any length."""
    rope_base: float = 10000.0
    """Base of the rotary frequencies (``"rope"``, ``"randomized_rope"``)."""
    attention_window: int = 0
    """Keys a query sees: the last ``attention_window`` steps including its own; 0 = all earlier steps."""
    randomized_eval: str = "ordered"
    """Randomized encodings in eval mode: ``"ordered"`` (positions 0..T-1) or ``"sample"`` (a seeded
    sorted random subset per forward call, as the reference code evaluates; forward only)."""
    randomized_eval_seed: int = 0
    """Seed of the evaluation draws under ``randomized_eval="sample"``."""


def _check_config(config: TransformerConfig) -> None:
    """Raise an error naming the first bad field of ``config``."""
    check_int("d_model", config.d_model, 1)
    check_int("num_layers", config.num_layers, 1)
    check_int("num_heads", config.num_heads, 1)
    check_int("ff_size", config.ff_size, 1)
    check_float("dropout", config.dropout, 0.0, 1.0)
    check_int("max_positions", config.max_positions, 1)
    check_float("rope_base", config.rope_base, 1.0)
    check_int("attention_window", config.attention_window, 0)
    check_int("randomized_eval_seed", config.randomized_eval_seed)
    if config.d_model % config.num_heads:
        raise ValueError(f"num_heads={config.num_heads} must divide d_model={config.d_model}")
    if config.positional not in POSITIONALS:
        raise ValueError(f"positional must be one of {POSITIONALS}, got {config.positional!r}")
    if config.randomized_eval not in RANDOMIZED_EVAL:
        raise ValueError(f"randomized_eval must be one of {RANDOMIZED_EVAL}, got {config.randomized_eval!r}")
    if config.positional in _ROTARY and (config.d_model // config.num_heads) % 2:
        raise ValueError(
            f"positional={config.positional!r} needs an even head width, got d_model/num_heads="
            f"{config.d_model // config.num_heads}"
        )


# -- position encodings -----------------------------------------------------------------------------


def sinusoidal_encoding(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Vaswani et al.'s encoding of ``positions`` (...,): ``(..., dim)`` float32.

    Even features ``2i`` are ``sin(p / 10000^(2i/dim))``, odd features ``2i+1`` the matching cosine.
    """
    i = torch.arange(0, dim, 2, device=positions.device, dtype=torch.float32)  # (ceil(dim/2),)
    angles = positions.to(torch.float32)[..., None] * torch.exp(-math.log(10000.0) * i / dim)
    pe = torch.zeros(*positions.shape, dim, device=positions.device, dtype=torch.float32)
    pe[..., 0::2] = torch.sin(angles)
    pe[..., 1::2] = torch.cos(angles)[..., : dim // 2]
    return pe


def apply_rotary(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotary encoding of ``x`` (B, H, T, d_head) at ``positions`` (T,) or (B, T); same shape and dtype.

    Feature ``i`` of the first half and feature ``i`` of the second half form a plane, rotated by
    ``p * base^(-i / (d_head/2))``. Rotations keep norms, and ``R(p) q . R(s) k`` depends on ``p - s``.
    Computed in float32 and cast back once.
    """
    half = x.shape[-1] // 2
    inv_freq = base ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)  # (half,)
    angles = positions.to(torch.float32)[..., None] * inv_freq  # (T, half) or (B, T, half)
    if angles.dim() == 3:
        angles = angles[:, None]  # (B, 1, T, half): one rotation per sequence, shared by the heads
    cos, sin = torch.cos(angles), torch.sin(angles)
    xf = x.to(torch.float32)
    x1, x2 = xf[..., :half], xf[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).to(x.dtype)


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """ALiBi's head slopes (Press et al. 2022), float32 (num_heads,).

    For ``n`` a power of two: ``2^(-8/n), 2^(-16/n), ..., 2^(-8)``. Otherwise the slopes of the
    nearest lower power of two ``m``, followed by every other slope of ``2m`` heads (the paper's rule).
    """

    def geometric(n: int) -> list[float]:
        return [2.0 ** (-8.0 * (h + 1) / n) for h in range(n)]

    m = 2 ** int(math.floor(math.log2(num_heads)))
    slopes = geometric(m)
    if m < num_heads:
        slopes += geometric(2 * m)[0::2][: num_heads - m]
    return torch.tensor(slopes, dtype=torch.float32)


def random_positions(
    batch_size: int, length: int, max_positions: int, device: torch.device, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Per sequence, a sorted random subset of ``range(max_positions)`` of size ``length``: (B, T) int64."""
    scores = torch.rand(batch_size, max_positions, device=device, generator=generator)
    return scores.argsort(dim=-1)[:, :length].sort(dim=-1).values


# -- the model -------------------------------------------------------------------------------------


class _Block(nn.Module):
    """One pre-LN block: causal multi-head attention, then a ReLU feed-forward, each residual."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        d = config.d_model
        self.num_heads, self.d_head = config.num_heads, d // config.num_heads
        self.ln_attn = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d)
        self.ln_ff = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, config.ff_size), nn.ReLU(), nn.Linear(config.ff_size, d))
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        h: torch.Tensor,
        bias: torch.Tensor,
        rotary: tuple[torch.Tensor, float] | None,
        cache: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``h`` (B, Tq, d) -> (new h, keys, values); keys/values (B, H, Tk, d_head) include ``cache``.

        ``bias`` (H or 1, Tq, Tk) is added to the scaled scores (-inf masks); ``rotary`` is
        ``(positions of the Tq new tokens, base)`` or None.
        """
        B, Tq, d = h.shape
        q, k, v = self.qkv(self.ln_attn(h)).view(B, Tq, 3, self.num_heads, self.d_head).permute(2, 0, 3, 1, 4)
        if rotary is not None:
            q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))  # (B, H, Tq, d_head)
        h = h + self.dropout(self.proj(a.transpose(1, 2).reshape(B, Tq, d)))
        h = h + self.dropout(self.ff(self.ln_ff(h)))
        return h, k, v


class TransformerCore(Core):
    """Causal Transformer over feature frames (see the module docstring).

    Args:
        input_size: Width D_in of the feature frames the encoder produces.
        config: The hyper-parameters.
    """

    fast_path = "none"  # forward is one batched causal attention per layer over the whole sequence

    def __init__(self, input_size: int, config: TransformerConfig) -> None:
        super().__init__()
        check_int("input_size", input_size, 1)
        _check_config(config)
        d = config.d_model
        self.output_size = d
        self.num_layers, self.num_heads, self.d_head = config.num_layers, config.num_heads, d // config.num_heads
        self.positional, self.max_positions, self.rope_base = config.positional, config.max_positions, config.rope_base
        self.attention_window = config.attention_window
        self.randomized_eval, self.randomized_eval_seed = config.randomized_eval, config.randomized_eval_seed
        self.embed = nn.Linear(input_size, d)
        self.position_table: nn.Embedding | None = None
        if self.positional == "learned":
            self.position_table = nn.Embedding(config.max_positions, d)
            nn.init.normal_(self.position_table.weight, std=0.02)
        self.embed_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.num_layers))
        self.ln_final = nn.LayerNorm(d)
        self.register_buffer("slopes", alibi_slopes(config.num_heads), persistent=False)

    # -- positions and masks ------------------------------------------------------------------
    def _check_length(self, length: int) -> None:
        if self.positional in _BOUNDED and length > self.max_positions:
            raise ValueError(
                f"transformer positional={self.positional!r} covers max_positions={self.max_positions} "
                f"time steps, but a sequence of {length} steps was given; raise max_positions"
            )

    def _positions(self, batch_size: int, length: int, device: torch.device) -> torch.Tensor:
        """Positions of a whole sequence: (T,) ``0..T-1``, or (B, T) drawn for randomized encodings."""
        self._check_length(length)
        if self.positional in _RANDOMIZED:
            if self.training:
                return random_positions(batch_size, length, self.max_positions, device)
            if self.randomized_eval == "sample":
                generator = torch.Generator(device=device).manual_seed(self.randomized_eval_seed)
                return random_positions(batch_size, length, self.max_positions, device, generator)
        return torch.arange(length, device=device)

    def _bias(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Additive scores (H or 1, Tq, Tk) float32 for query steps ``queries`` over key steps ``keys``.

        -inf on keys after the query (causal) or outside the attention window; ALiBi's ``-m_h (t - s)``.
        """
        offset = (queries[:, None] - keys[None, :]).to(torch.float32)  # (Tq, Tk): t - s
        visible = offset >= 0
        if self.attention_window > 0:
            visible &= offset < self.attention_window
        bias = torch.zeros_like(offset).masked_fill(~visible, float("-inf"))[None]  # (1, Tq, Tk)
        if self.positional == "alibi":
            bias = bias - self.slopes.to(offset.device)[:, None, None] * offset  # (H, Tq, Tk)
        return bias

    def _embed(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Frames (B, T, D_in) at ``positions`` (T,) or (B, T) -> tokens (B, T, d)."""
        h = self.embed(x)
        if self.positional in ("sinusoidal", "randomized"):
            h = h + sinusoidal_encoding(positions, h.shape[-1]).to(h.dtype)
        elif self.positional == "learned":
            assert self.position_table is not None
            h = h + self.position_table(positions)
        return self.embed_dropout(h)

    def _rotary(self, positions: torch.Tensor) -> tuple[torch.Tensor, float] | None:
        return (positions, self.rope_base) if self.positional in _ROTARY else None

    # -- recurrent interface ------------------------------------------------------------------
    def initial_state(self, batch_size: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """An empty KV cache: keys and values, each (num_layers, B, num_heads, 0, d_head)."""
        check_int("batch_size", batch_size, 1)
        shape = (self.num_layers, batch_size, self.num_heads, 0, self.d_head)
        empty = torch.zeros(shape, device=device, dtype=self.embed.weight.dtype)
        return empty, empty.clone()

    def step(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One frame ``x`` (B, D_in) at position t = cached steps -> (B, d_model); the cache grows by one."""
        keys, values = state  # (layers, B, H, t, d_head) each
        t = keys.shape[3]
        if self.positional in _RANDOMIZED and not self.training and self.randomized_eval == "sample":
            raise ValueError(
                "randomized_eval='sample' draws positions for a whole sequence; step() cannot, use forward()"
            )
        self._check_length(t + 1)
        position = torch.full((1,), t, device=x.device, dtype=torch.long)  # step uses positions 0, 1, ...
        h = self._embed(x[:, None], position)  # (B, 1, d)
        bias = self._bias(position, torch.arange(t + 1, device=x.device))  # (H or 1, 1, t+1)
        new_keys, new_values = [], []
        for layer, block in enumerate(self.blocks):
            h, k, v = block(h, bias, self._rotary(position), (keys[layer], values[layer]))
            new_keys.append(k)
            new_values.append(v)
        return self.ln_final(h[:, 0]), (torch.stack(new_keys), torch.stack(new_values))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, D_in) -> (B, T, d_model)``: one batched causal attention per layer, no time loop."""
        B, T, _ = x.shape
        positions = self._positions(B, T, x.device)
        h = self._embed(x, positions)
        steps = torch.arange(T, device=x.device)
        bias = self._bias(steps, steps)
        rotary = self._rotary(positions)
        for block in self.blocks:
            h, _, _ = block(h, bias, rotary)
        return self.ln_final(h)
