"""End-To-End Memory Network as a sequence model.

Sukhbaatar, Szlam, Weston & Fergus 2015, "End-To-End Memory Networks",
arXiv 1503.08895 (section 2: the model; section 4.1: temporal encoding and
random noise; section 4.2: linear start; appendix / reference code: the ReLU
variant used on the 10k bAbI training sets).

The paper answers one question about a story. Here the network is a recurrent
:class:`~agents.base.Core`: at step ``t`` the query is the current frame and
the memory holds the previous ``memory_size`` frames::

    memories at t:  x_{t-1}, x_{t-2}, ..., x_{t-M}      (age a = t - j in 1..M)
    u^1   = B x_t                                     # (B, d) query
    m_j   = A^k x_j + T_A^k[a - 1]                    # input memory, temporal encoding T_A
    c_j   = C^k x_j + T_C^k[a - 1]                    # output memory, temporal encoding T_C
    p     = softmax_j(u^k . m_j)                      # over visible memories only
    o^k   = sum_j p_j c_j
    u^{k+1} = u^k + o^k          (adjacent tying)
    u^{k+1} = H u^k + o^k        (layer-wise tying)
    y_t   = u^{K+1}                                   # (B, d) -> the Agent's linear head

Frames before the start of the sequence are *absent* (masked out of the
softmax), not zero memories; at ``t = 0`` nothing is visible and ``o = 0``
(with ``empty_memories`` they are instead empty slots that score 0, see below).

The Agent's encoder has already turned a frame into a feature vector ``x_t``
(bits: the raw bits; tokens: position-encoded bags of words of width
``frame_size``). How the paper's embeddings A, B, C act on it (``embedding``):

- ``"linear"``: bias-free learned linear maps from the features to
  ``embedding_size``. For tokens this composes the encoder's one shared bag
  with A/B/C, so every hop sees the same ``frame_size``-wide summary, position
  weighted *before* the mixing: not the paper's function class.
- ``"blocks"`` (token inputs, the paper's construction): the encoder makes
  ``frame_blocks`` independent position-encoded bags of width ``embedding_size``
  (``AgentConfig.frame_blocks``), and block ``i`` of the frame *is* the paper's
  embedding ``E_i x = sum_j l_j * E_i w_j`` (its own V x d word matrix, its own
  position weighting). Adjacent tying needs K + 1 blocks (``E_0 = B = A^1``,
  ``E_k = C^k = A^{k+1}``), layer-wise tying 3 (B, A, C). No weights of the
  core act on the content then; only the temporal matrices (and H) live here.

Weight tying (section 2.2):

- ``"adjacent"``: ``A^{k+1} = C^k`` and ``B = A^1``, so there are K + 1
  embedding maps ``E_0 .. E_K`` with ``A^k = E_{k-1}``, ``C^k = E_k``; the
  temporal matrices are tied the same way (``T_A^{k+1} = T_C^k``). The paper
  also ties the answer matrix ``W^T = C^K``; here the answer map is the Agent's
  separate linear head (built from the TaskSpec for every core alike), so that
  last tie is not made.
- ``"layerwise"``: one A, one C (and one T_A, T_C) shared by all hops, a
  separate B, and ``u^{k+1} = H u^k + o^k`` with a learned ``d x d`` map H.

Training options:

- ``linear_start``: the softmax over memories is removed (``p = u . m`` on the
  visible memories) for the first ``linear_start_epochs`` epochs. Trainers call
  ``agent.core.set_progress(epoch)`` (epochs counted from 0) at the start of
  every epoch; the core then re-inserts the softmax once
  ``epoch >= linear_start_epochs`` (a fixed-epoch stand-in for the paper's
  "when the validation loss stops decreasing"). The flag is a buffer, so a
  checkpoint restores the phase it was saved in.
- ``random_noise`` (paper: 0.1): during training, empty memories are inserted
  at random into the sequence to regularise the temporal encodings. As in the
  authors' reference code, the empty memories act only through the temporal
  indices they shift: independently before every frame an empty memory is
  inserted with probability ``random_noise``, and memory ``j`` seen from ``t``
  uses temporal index ``(t - j) + (empties inserted in (j, t])``, clamped to
  ``memory_size``. Which memories are visible does not change. One draw per
  sequence serves every query position, so the parallel forward stays a single
  batched attention. Noise is drawn from torch's global generator (reproducible
  under ``torch.manual_seed``) and only in ``self.training``; :meth:`step`
  never adds noise (it is the acting / evaluation path).
- ``empty_memories``: the memory always has ``memory_size`` slots and the
  softmax always spans all of them, as in the authors' reference code, which
  pads every story's memory with empty (all-nil) sentences up to a fixed size
  (``min(50, longest training story)``; ``benchmarks.babi`` uses the longest
  story of any split). An empty slot embeds to the zero
  vector with no temporal term: it scores 0 in the softmax (taking some mass)
  and adds nothing to ``o``. Off (the default), slots without a frame are
  absent (masked out). Under linear start the two are the same (score 0).
- ``relu_between_hops``: a ReLU on ``u^{k+1}`` for ``k < K`` (the paper's
  non-linear variant for the 10k training sets); the output ``u^{K+1}`` stays
  linear.

All weights are drawn from N(0, ``init_std``) with the paper's 0.1 as default.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from agents.base import AgentConfig, Core
from memtasks.core import check_float, check_int

__all__ = ["EMBEDDINGS", "MemN2NConfig", "MemN2NCore", "WEIGHT_TYING", "num_embeddings"]

WEIGHT_TYING = ("adjacent", "layerwise")
"""Allowed values of :attr:`MemN2NConfig.weight_tying`."""

EMBEDDINGS = ("linear", "blocks")
"""Allowed values of :attr:`MemN2NConfig.embedding`."""


def num_embeddings(weight_tying: str, hops: int) -> int:
    """Distinct embedding matrices: K + 1 under adjacent tying (E_0..E_K), 3 under layer-wise (B, A, C)."""
    return hops + 1 if weight_tying == "adjacent" else 3


@dataclass
class MemN2NConfig(AgentConfig):
    """MemN2N hyper-parameters; the paper's bAbI settings are d=20, M=50, K=3 (bAbI passes 20)."""

    embedding_size: int = 50
    """Width d of the memory and query embeddings (and of the core's output). The paper uses
    20 on bAbI; 50 suits the wider bit frames of the algorithmic tasks."""
    memory_size: int = 50
    """How many previous frames the memory holds (the paper's 50 most recent sentences)."""
    hops: int = 3
    """Number of memory hops K."""
    weight_tying: str = "adjacent"
    """``"adjacent"`` or ``"layerwise"`` (see the module docstring)."""
    embedding: str = "linear"
    """``"linear"``: learned maps A/B/C from the features; ``"blocks"``: the input frame is
    :func:`num_embeddings` blocks of ``embedding_size``, block i is embedding E_i (token inputs with
    ``frame_blocks = num_embeddings(...)`` and ``frame_size = frame_blocks * embedding_size``)."""
    linear_start: bool = False
    """Start training without the softmax over memories (paper's LS)."""
    linear_start_epochs: int = 20
    """Epochs (from 0) that run without the softmax when ``linear_start`` is on."""
    random_noise: float = 0.0
    """Probability of an empty memory before each frame during training (paper's RN: 0.1)."""
    empty_memories: bool = False
    """Slots without a frame take part in the softmax as empty memories (score 0, output 0) instead of
    being masked out, so the softmax always spans ``memory_size`` slots (the authors' code)."""
    relu_between_hops: bool = False
    """Apply a ReLU to the query between hops (the paper's 10k variant)."""
    init_std: float = 0.1
    """Standard deviation of the normal initialisation of every weight."""


def _check_config(config: MemN2NConfig) -> None:
    """Raise an error naming the first bad field of ``config`` and its allowed range."""
    check_int("embedding_size", config.embedding_size, 1)
    check_int("memory_size", config.memory_size, 1)
    check_int("hops", config.hops, 1)
    check_int("linear_start_epochs", config.linear_start_epochs, 0)
    check_float("random_noise", config.random_noise, 0.0, 1.0)
    check_float("init_std", config.init_std, 0.0)
    if config.weight_tying not in WEIGHT_TYING:
        raise ValueError(f"weight_tying must be one of {WEIGHT_TYING}, got {config.weight_tying!r}")
    if config.embedding not in EMBEDDINGS:
        raise ValueError(f"embedding must be one of {EMBEDDINGS}, got {config.embedding!r}")
    for name in ("linear_start", "relu_between_hops", "empty_memories"):
        if not isinstance(getattr(config, name), bool):
            raise TypeError(f"{name} must be a bool, got {getattr(config, name)!r}")


class MemN2NCore(Core):
    """MemN2N over a sliding window of past frames (see the module docstring).

    The state is ``(memory, count)``: ``memory`` (B, memory_size, D_in) holds the
    feature frames of ages 1..memory_size (slot 0 = the previous frame) and
    ``count`` (B,) int64 how many of those slots hold real frames.

    Args:
        input_size: Width D_in of the feature frames the encoder produces.
        config: The hyper-parameters.
    """

    fast_path = "none"  # forward is one batched causal attention over the whole sequence

    def __init__(self, input_size: int, config: MemN2NConfig) -> None:
        super().__init__()
        check_int("input_size", input_size, 1)
        _check_config(config)
        d, M, K = config.embedding_size, config.memory_size, config.hops
        self.input_size, self.memory_size, self.hops = input_size, M, K
        self.output_size = d
        self.weight_tying = config.weight_tying
        self.relu_between_hops = config.relu_between_hops
        self.random_noise = config.random_noise
        self.empty_memories = config.empty_memories
        self.linear_start = config.linear_start
        self.linear_start_epochs = config.linear_start_epochs

        def linear(n_in: int) -> nn.Linear:
            return nn.Linear(n_in, d, bias=False)

        n_emb = num_embeddings(self.weight_tying, K)
        self.embedding = config.embedding
        if self.embedding == "blocks" and input_size != n_emb * d:
            raise ValueError(
                f"embedding='blocks' needs input frames of {n_emb} blocks of embedding_size={d} "
                f"(frame_blocks={n_emb}, frame_size={n_emb * d} for {self.weight_tying} tying and {K} hops), "
                f"got input_size={input_size}"
            )
        # adjacent: E_0 = B = A^1, E_k = C^k = A^{k+1} (same chain for the temporal matrices);
        # layer-wise: [B, A, C] and [T_A, T_C] shared by all hops. "blocks": the E_i are input slices.
        n_maps = n_emb if self.embedding == "linear" else 0
        self.embeddings = nn.ModuleList(linear(input_size) for _ in range(n_maps))
        n_temporal = n_emb if self.weight_tying == "adjacent" else 2
        self.temporal = nn.ParameterList(nn.Parameter(torch.empty(M, d)) for _ in range(n_temporal))
        self.H: nn.Linear | None = linear(d) if self.weight_tying == "layerwise" else None
        for p in self.parameters():
            nn.init.normal_(p, std=config.init_std)
        # a persistent buffer, so a checkpoint restores the linear-start phase it was saved in;
        # the forward reads a Python mirror of it (no device sync per hop on CUDA)
        self.register_buffer("linear_start_active", torch.tensor(config.linear_start))
        self._linear_now = config.linear_start
        self._warm_up_ended = False  # end_warm_up() was called: linear start is over whatever the epoch
        self.register_load_state_dict_post_hook(_sync_linear_start)

    # -- schedule ------------------------------------------------------------------------
    def set_progress(self, epoch: int) -> None:
        """Linear start: no softmax over memories while ``epoch < linear_start_epochs``."""
        check_int("epoch", epoch, 0)
        self._linear_now = self.linear_start and epoch < self.linear_start_epochs and not self._warm_up_ended
        self.linear_start_active.fill_(self._linear_now)

    def end_warm_up(self) -> None:
        """Re-insert the softmax now (the paper: when the validation loss stops decreasing); for good."""
        self._warm_up_ended = True
        self._linear_now = False
        self.linear_start_active.fill_(False)

    def warming_up(self) -> bool:
        """True while linear start is on (the paper trains this phase with lr 0.005)."""
        return self._linear_now

    @property
    def needs_epochs(self) -> bool:
        """Linear start ends at an epoch, so it needs a trainer that counts epochs."""
        return self.linear_start

    # -- parameters of each hop --------------------------------------------------------
    def _embed(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every embedding of the frames ``x`` (..., D_in): ``[E_0 x, E_1 x, ...]``, each (..., d)."""
        if self.embedding == "blocks":
            return list(x.split(self.output_size, dim=-1))
        return [e(x) for e in self.embeddings]

    def _query(self, x: torch.Tensor) -> torch.Tensor:
        """``u^1 = B x`` (..., d); B is ``E_0`` (adjacent: also A^1)."""
        if self.embedding == "blocks":
            return x[..., : self.output_size]
        return self.embeddings[0](x)

    def _hop_maps(self, k: int) -> tuple[int, int]:
        """Indices into ``embeddings``/``temporal`` of hop ``k``'s (A, C) (0-based hop)."""
        if self.weight_tying == "adjacent":
            return k, k + 1
        return 1, 2

    def _temporal(self, index: int) -> torch.Tensor:
        """The temporal matrix paired with embedding ``index``: (M, d)."""
        # layer-wise: embeddings [B, A, C] pair with temporal [-, T_A, T_C]
        return self.temporal[index if self.weight_tying == "adjacent" else index - 1]

    def _next_query(self, u: torch.Tensor, o: torch.Tensor, k: int) -> torch.Tensor:
        """``u^{k+1}`` from ``u^k`` and ``o^k`` (0-based hop ``k``)."""
        u = (self.H(u) if self.H is not None else u) + o
        if self.relu_between_hops and k < self.hops - 1:
            u = torch.relu(u)
        return u

    def _attend(self, scores: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """Attention weights over memories; rows with nothing visible get all zeros."""
        if self._linear_now:
            return scores * visible  # linear start: raw match scores, no softmax
        if self.empty_memories:
            # memory_size - visible empty slots, each with score 0: exp(0 - top) in the denominator
            empties = (self.memory_size - visible.sum(-1, keepdim=True)).clamp(min=0).to(scores.dtype)
            masked = scores.masked_fill(~visible, torch.finfo(scores.dtype).min)
            top = masked.amax(-1, keepdim=True).clamp(min=0).detach()  # the empties' 0 counts too
            weights = torch.exp(masked - top) * visible
            return weights / (weights.sum(-1, keepdim=True) + empties * torch.exp(-top))
        scores = scores.masked_fill(~visible, torch.finfo(scores.dtype).min)
        # a fully masked row (t = 0) softmaxes to uniform; the mask zeroes it
        return torch.softmax(scores, dim=-1) * visible

    # -- recurrent interface --------------------------------------------------------------
    def initial_state(self, batch_size: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """An empty memory: ``(zeros (B, M, D_in), count zeros (B,))``."""
        check_int("batch_size", batch_size, 1)
        dtype = self.temporal[0].dtype
        memory = torch.zeros(batch_size, self.memory_size, self.input_size, device=device, dtype=dtype)
        return memory, torch.zeros(batch_size, dtype=torch.long, device=device)

    def step(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One frame ``x`` (B, D_in) -> ``u^{K+1}`` (B, d); the frame then joins the memory."""
        y, state, _ = self.trace_step(x, state)
        return y, state

    def trace_step(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        """:meth:`step`, plus each hop's attention ``p`` over the memories (B, M), slot ``a - 1`` holding the
        frame of age ``a`` (the previous frame is slot 0): the paper's Table 1 picture."""
        memory, count = state  # (B, M, D_in), (B,)
        attention: dict[str, torch.Tensor] = {}
        M = self.memory_size
        visible = torch.arange(M, device=x.device)[None, :] < count[:, None]  # (B, M): slot a-1 = age a
        u = self._query(x)  # (B, d)
        emb = self._embed(memory)  # each (B, M, d)
        for k in range(self.hops):
            ia, ic = self._hop_maps(k)
            m = emb[ia] + self._temporal(ia)  # (B, M, d)
            c = emb[ic] + self._temporal(ic)  # (B, M, d)
            scores = torch.einsum("bmd,bd->bm", m, u)  # (B, M)
            p = self._attend(scores, visible)  # (B, M)
            attention[f"hop {k + 1}"] = p
            o = torch.einsum("bm,bmd->bd", p, c)  # (B, d)
            u = self._next_query(u, o, k)
        memory = torch.cat([x[:, None], memory[:, :-1]], dim=1)  # (B, M, D_in): shift ages by one
        return u, (memory, (count + 1).clamp(max=M)), attention

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, D_in) -> (B, T, d)``: one batched windowed attention per hop, no time loop."""
        Bsz, T, _ = x.shape
        M = self.memory_size
        t = torch.arange(T, device=x.device)
        age = t[:, None] - t[None, :]  # (T, T): age of memory j seen from query t
        visible = ((age >= 1) & (age <= M)).expand(Bsz, T, T)  # (B, T, T) causal window
        if self.training and self.random_noise > 0:
            # empties inserted before frame i shift the temporal index of every older memory
            empties = (torch.rand(Bsz, T, device=x.device) < self.random_noise).long()  # (B, T)
            inserted = empties.cumsum(dim=1)  # (B, T): empties before frame i, inclusive
            age = age + inserted[:, :, None] - inserted[:, None, :]  # (B, T, T)
        index = (age - 1).clamp(0, M - 1).expand(Bsz, T, T)  # (B, T, T) row of T_A/T_C

        emb = self._embed(x)  # each (B, T, d)
        u = emb[0]  # (B, T, d): u^1 = B x, and B is E_0 (the frames are their own queries)
        for k in range(self.hops):
            ia, ic = self._hop_maps(k)
            # u . (A x_j + T_A[age-1]) = u . A x_j + (u T_A^T)[age-1]
            content = torch.einsum("btd,bjd->btj", u, emb[ia])  # (B, T, T)
            by_age = torch.einsum("btd,md->btm", u, self._temporal(ia))  # (B, T, M)
            scores = content + torch.gather(by_age, 2, index)  # (B, T, T)
            p = self._attend(scores, visible)  # (B, T, T)
            # sum_j p_j (C x_j + T_C[age-1]): the temporal part via attention mass per age
            mass = torch.zeros_like(by_age).scatter_add_(2, index, p)  # (B, T, M)
            o = torch.bmm(p, emb[ic]) + mass @ self._temporal(ic)  # (B, T, d)
            u = self._next_query(u, o, k)
        return u


def _sync_linear_start(module: nn.Module, incompatible_keys: object) -> None:
    """After ``load_state_dict``: refresh the Python mirror of the loaded linear-start flag."""
    if isinstance(module, MemN2NCore):
        module._linear_now = bool(module.linear_start_active)
