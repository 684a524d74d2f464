"""Neural Turing Machine (Graves, Wayne & Danihelka 2014, arXiv 1410.5401, section 3).

A controller (LSTM or feedforward) reads the input frame and the previous read
vectors; one fused linear layer maps its output to the parameters of every head.
Each head addresses the ``N x M`` memory in four stages (section 3.3)::

    content    w^c_i = softmax_i(beta * K(k, M_i)),  K = cosine similarity     (eq. 5, 6)
    interpolate  w^g = g w^c + (1 - g) w_{t-1}                                 (eq. 7)
    shift        w~_i = sum_j w^g_j s_{(i - j) mod N}    (circular convolution) (eq. 8)
    sharpen      w_i  = w~_i^gamma / sum_j w~_j^gamma                           (eq. 9)

with ``beta = softplus``, ``g = sigmoid``, ``s = softmax`` over the shifts
``-shift_range .. +shift_range`` and ``gamma = 1 + softplus``. Sharpening is
computed as ``softmax(gamma * log(w + eps))`` so it cannot underflow.

Reading (eq. 2) and writing (eq. 3, 4) with read weights ``w^r`` and write
weights ``w^w`` (``e = sigmoid`` erase, ``a`` add vectors)::

    r   = sum_i w^r_i M_i
    M_t = M_{t-1} * prod_h (1 - w^w_h e_h^T) + sum_h w^w_h a_h^T

Order within a step: all heads are addressed against ``M_{t-1}``, the read heads
read ``M_{t-1}``, then the write heads write ``M_t``. The core's output is
``[controller output, read vectors of this step]``.

Layout: memory is held location-last, ``(B, M, N)`` (column ``i`` is the
paper's row ``M_i``), like the weightings ``(B, H, N)``. Every reduction over
locations and every elementwise update then runs along the contiguous ``N``
axis, which vectorises on the CPU; with ``torch.compile`` (the training fast
path, :mod:`agents.fast`) this layout compiled markedly faster than ``(B, N, M)``
and trained as fast or faster in scratch timings on the project's 2-core CPU
(the kept numbers are in ``results/throughput.md``).

Implementation choices from Collier & Beel 2018 (arXiv 1807.08518): memory
initialised to a small constant (1e-6), the head parameters ("controller
outputs") clipped to +-20, learned initial read vectors and head weightings.

Initialisation: every head starts focused on row 0 (a learned softmax bias) and
the head-parameter layer starts with small weights (``head_init_scale``), so the
untrained heads behave as their biases say. Optional head biases
(``init_gate_bias``, ``init_gamma_bias``, ``init_shift_bias``, ``init_write_shift``)
can start the write heads moving forward one row per step while the read heads
stay; with the project's copy recipe (batch 16, Adam 3e-3, no curriculum) copy
on lengths 1-20 is learned in about 5-15k sequences (about a minute on one CPU
thread) with or without them, so they default to neutral.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from agents.base import AgentConfig, Core

__all__ = [
    "NTMConfig",
    "NTMCore",
    "circular_shift",
    "content_addressing",
    "interpolate",
    "clamp_grad",
    "sharpen",
    "write_memory",
]

_EPS = 1e-6


# -- addressing: small pure functions over batched heads ------------------------------------------


def content_addressing(
    memory: torch.Tensor, key: torch.Tensor, beta: torch.Tensor, eps: float = _EPS
) -> torch.Tensor:
    """Softmax over locations of ``beta`` x cosine similarity (eq. 5, 6).

    Args:
        memory: (B, M, N), location-last.
        key: (B, H, M), one key per head.
        beta: (B, H) key strengths, >= 0.
        eps: Guards the norms, so zero keys or zero locations give similarity 0, never NaN.

    Returns:
        (B, H, N) weightings, each summing to 1.
    """
    dot = torch.bmm(key, memory)  # (B, H, N)
    key_norm = torch.sqrt((key * key).sum(-1) + eps * eps)  # (B, H)
    mem_norm = torch.sqrt((memory * memory).sum(1) + eps * eps)  # (B, N)
    sim = dot / (key_norm[:, :, None] * mem_norm[:, None, :])  # (B, H, N), in [-1, 1]
    return torch.softmax(beta[..., None] * sim, dim=-1)


def interpolate(w_content: torch.Tensor, w_prev: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``g w_content + (1 - g) w_prev`` (eq. 7); ``g`` (B, H) in [0, 1], weightings (B, H, N)."""
    g = g[..., None]  # (B, H, 1)
    return g * w_content + (1 - g) * w_prev


def circular_shift(w: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Circular convolution of ``w`` (B, H, N) with a shift weighting ``shift`` (B, H, 2S+1) (eq. 8).

    ``shift[..., j]`` is the weight of moving by ``j - S`` locations, so a one-hot shift at
    ``+1`` moves a one-hot weighting from location ``i`` to ``(i + 1) mod N``. The weighting is
    first extended by ``S`` locations on each side (wrapping around), so that every shifted copy
    is a plain slice: ``ext[..., m] = w[..., (m - S) mod N]`` and shifting by ``k`` reads
    ``ext[..., S - k : S - k + N]``. Compiled, this is one vectorised loop; ``torch.roll``'s
    modular indexing compiles to a scalar loop about three times slower (CPU, N = 128).
    """
    S = (shift.shape[-1] - 1) // 2
    if shift.shape[-1] != 2 * S + 1:
        raise ValueError(f"shift weighting needs an odd size 2S+1, got {shift.shape[-1]}")
    N = w.shape[-1]
    out = shift[..., S : S + 1] * w
    if S == 0:
        return out
    ext = torch.cat([w[..., N - S :], w, w[..., :S]], dim=-1)  # (B, H, N + 2S)
    for j in range(2 * S + 1):
        if j != S:  # shift by k = j - S
            out = out + shift[..., j : j + 1] * ext[..., 2 * S - j : 2 * S - j + N]  # (B, H, N)
    return out


class _ClampGrad(torch.autograd.Function):
    """Identity forward; the backward clamps the incoming gradient elementwise to ``[-bound, bound]``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, bound: float) -> torch.Tensor:
        ctx.bound = bound
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad.clamp(-ctx.bound, ctx.bound), None


def clamp_grad(x: torch.Tensor, bound: float) -> torch.Tensor:
    """``x`` unchanged; the gradient flowing back through it is clamped elementwise to ``[-bound, bound]``."""
    return _ClampGrad.apply(x, bound)


def sharpen(w: torch.Tensor, gamma: torch.Tensor, eps: float = _EPS) -> torch.Tensor:
    """``w^gamma`` renormalised (eq. 9), as ``softmax(gamma * log(w + eps))``; ``gamma`` (B, H) >= 1."""
    return torch.softmax(gamma[..., None] * torch.log(w + eps), dim=-1)


def write_memory(memory: torch.Tensor, w: torch.Tensor, erase: torch.Tensor, add: torch.Tensor) -> torch.Tensor:
    """Erase then add (eq. 3, 4) for all write heads at once.

    Args:
        memory: (B, M, N), location-last.
        w: (B, W, N) write weightings.
        erase: (B, W, M) erase vectors in [0, 1].
        add: (B, W, M) add vectors.
    """
    if w.shape[1] == 1:  # one write head: no product over heads
        keep = 1 - erase[:, 0, :, None] * w[:, 0, None, :]  # (B, M, N)
        return memory * keep + add[:, 0, :, None] * w[:, 0, None, :]
    keep = (1 - erase[..., None] * w[:, :, None, :]).prod(dim=1)  # (B, M, N)
    return memory * keep + torch.bmm(add.transpose(1, 2), w)  # sum_h a_h w_h^T


# -- the core ------------------------------------------------------------------------------------


@dataclass
class NTMConfig(AgentConfig):
    """Neural Turing Machine; defaults follow the paper's copy set-up (section 4) and Collier & Beel 2018."""

    controller: str = "lstm"
    """Controller network: ``"lstm"`` (stacked LSTM cells) or ``"feedforward"`` (tanh layers)."""
    controller_size: int = 100
    """Units per controller layer."""
    controller_layers: int = 1
    """Stacked controller layers."""
    read_heads: int = 1
    """Number of read heads R."""
    write_heads: int = 1
    """Number of write heads W."""
    memory_rows: int = 128
    """Memory locations N."""
    memory_width: int = 20
    """Width M of each memory row."""
    shift_range: int = 1
    """Allowed location shifts ``-shift_range .. +shift_range`` (a softmax over 2*shift_range+1)."""
    memory_init: str = "constant"
    """Initial memory: ``"constant"`` (every cell ``memory_init_value``), ``"learned"`` (a parameter), or
    ``"random"`` (fresh uniform noise in [0, 1e-2) for every sequence)."""
    memory_init_value: float = 1e-6
    """The constant of ``memory_init="constant"`` (Collier & Beel: 1e-6), and the start of ``"learned"``."""
    memory_init_std: float = 0.0
    """``memory_init="learned"`` only: add Gaussian noise of this standard deviation to the learned memory's
    starting value (0 = every cell ``memory_init_value``). With noise the rows differ in direction from the
    first step, so content addressing can tell them apart before anything is written; with a constant memory
    every row has the same cosine similarity to any key and the first content lookups are uniform."""
    clip_controller: float = 20.0
    """Clip the controller's head-parameter outputs to +-this before the activations (0 = off)."""
    learn_initial_state: bool = True
    """Learn the initial controller state (else zeros)."""
    initial_weighting: str = "first"
    """Initial head weightings, softmax of a learned bias initialised ``"uniform"`` (bias 0) or
    ``"first"`` (focused on row 0: every head starts at the same location)."""
    head_init_scale: float = 0.1
    """Scale of the head-parameter layer's initial weights (uniform in +-scale/sqrt(fan_in)); small values
    start every head close to the behaviour its bias sets."""
    init_gate_bias: float = 0.0
    """Initial bias of the interpolation gate g (sigmoid; 0 gives g = 0.5, -2 gives g = 0.12: heads start mostly
    location-based)."""
    init_gamma_bias: float = 0.0
    """Initial bias of the sharpening gamma = 1 + softplus(bias) (0 gives gamma = 1.69; 1 gives 2.3, so shifted
    weightings stay focused)."""
    init_shift_bias: float = 0.0
    """Initial bias of one shift logit per head, the others starting at 0: shift 0 for read heads,
    ``init_write_shift`` for write heads (0 = uniform shifts; 2 with shift_range 1 gives that shift
    probability 0.79)."""
    init_write_shift: int = 1
    """The shift (in ``-shift_range .. shift_range``) the write heads' ``init_shift_bias`` favours; with a
    positive bias, 1 starts the write heads moving forward one row per step (sequential writing, as in the
    programs the NTM paper shows learned) while the read heads start still. Inert while ``init_shift_bias``
    is 0; ignored when ``shift_range`` is 0."""
    sharpen_grad_clip: float = 0.0
    """Clamp, elementwise to +-this, the gradient flowing back into the sharpening (eq. 9) at every step; the
    forward pass is unchanged (0 = off). The sharpening's backward multiplies a gradient by up to
    ``gamma / (2a)`` where two entries of weight ``a`` tie, and a head that keeps re-sharpening a split
    weighting chains that gain over consecutive steps, so the gradient can grow geometrically backwards in
    time (traced in results/ntm_paper/priority_sort/divergence/README.md); 0.1 stopped the feed-forward NTM's
    divergences on priority sort and let the NTM learn repeat copy (results/ntm_paper/)."""
    ablate_writes: bool = False
    """Negative control: never write (``M_t = M_{t-1}``, so memory keeps its initial value and reads carry no
    information about the input); every other part runs unchanged. For tests and ablations only."""


class NTMCore(Core):
    """NTM over feature frames.

    State: ``(controller, memory, read_w, write_w, reads)`` where ``controller`` is
    ``(h, c)`` each (layers, B, controller_size) for an LSTM controller (an empty
    tuple for feedforward), ``memory`` (B, M, N) (location-last, see the module
    docstring), ``read_w`` (B, R, N), ``write_w`` (B, W, N) and ``reads`` (B, R*M).
    Every state tensor is contiguous from the first step on, so a compiled ``step``
    sees the same strides at every step and compiles once.
    """

    # Batches of one length learned Copy no slower per sequence than mixed ones over 3 seeds
    # (results/speed/batching.md) and carry no padding (about half of a mixed Copy 1-20 batch), so the
    # trainer's "auto" picks them.
    batch_lengths = "same"

    def __init__(self, input_size: int, config: NTMConfig) -> None:
        super().__init__()
        c = config
        sizes = ("controller_size", "controller_layers", "read_heads", "write_heads", "memory_rows", "memory_width")
        for name in sizes:
            if int(getattr(c, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(c, name)}")
        if c.shift_range < 0 or 2 * c.shift_range + 1 > c.memory_rows:
            raise ValueError(f"shift_range must be in [0, (memory_rows - 1) / 2], got {c.shift_range}")
        if c.controller not in ("lstm", "feedforward"):
            raise ValueError(f"controller must be 'lstm' or 'feedforward', got {c.controller!r}")
        if c.memory_init not in ("constant", "learned", "random"):
            raise ValueError(f"memory_init must be 'constant', 'learned' or 'random', got {c.memory_init!r}")
        if not c.memory_init_std >= 0:  # also refuses NaN
            raise ValueError(f"memory_init_std must be >= 0, got {c.memory_init_std}")
        if c.memory_init_std > 0 and c.memory_init != "learned":
            raise ValueError(f"memory_init_std > 0 needs memory_init='learned', got memory_init={c.memory_init!r}")
        if c.initial_weighting not in ("uniform", "first"):
            raise ValueError(f"initial_weighting must be 'uniform' or 'first', got {c.initial_weighting!r}")
        if c.shift_range > 0 and abs(c.init_write_shift) > c.shift_range:
            raise ValueError(f"init_write_shift must be in [-shift_range, shift_range], got {c.init_write_shift}")
        if c.clip_controller < 0:
            raise ValueError(f"clip_controller must be >= 0, got {c.clip_controller}")
        if not c.sharpen_grad_clip >= 0:  # also refuses NaN
            raise ValueError(f"sharpen_grad_clip must be >= 0 (0 = off), got {c.sharpen_grad_clip}")
        self.config = c
        R, W, N, M, S = c.read_heads, c.write_heads, c.memory_rows, c.memory_width, c.shift_range
        self.R, self.W, self.N, self.M, self.S = R, W, N, M, S
        H = R + W
        self.H = H

        # controller
        ctrl_in = input_size + R * M
        sizes = [ctrl_in] + [c.controller_size] * c.controller_layers
        if c.controller == "lstm":
            self.cells = nn.ModuleList(nn.LSTMCell(sizes[i], sizes[i + 1]) for i in range(c.controller_layers))
            self.layers = None
            shape = (c.controller_layers, c.controller_size)
            if c.learn_initial_state:
                self.h0 = nn.Parameter(torch.zeros(shape))
                self.c0 = nn.Parameter(torch.zeros(shape))
            else:
                self.register_buffer("h0", torch.zeros(shape))
                self.register_buffer("c0", torch.zeros(shape))
        else:
            self.cells = None
            self.layers = nn.ModuleList(nn.Linear(sizes[i], sizes[i + 1]) for i in range(c.controller_layers))

        # one linear layer for every head parameter: per head [key M | beta | g | gamma | shift 2S+1],
        # then per write head [erase M | add M]
        self.addr_size = M + 3 + 2 * S + 1
        self.heads = nn.Linear(c.controller_size, H * self.addr_size + W * 2 * M)
        with torch.no_grad():
            bound = c.head_init_scale / math.sqrt(c.controller_size)
            self.heads.weight.uniform_(-bound, bound)
            self.heads.bias.zero_()
            bias = self.heads.bias[: H * self.addr_size].view(H, self.addr_size)
            bias[:, M + 1] = c.init_gate_bias
            bias[:, M + 2] = c.init_gamma_bias
            bias[:R, M + 3 + S] = c.init_shift_bias
            bias[R:, M + 3 + S + (c.init_write_shift if S > 0 else 0)] = c.init_shift_bias

        # learned initial read vectors and head weightings
        self.read0 = nn.Parameter(torch.randn(R * M) * 0.01)
        w0 = torch.zeros(H, N)
        if c.initial_weighting == "first":
            w0[:, 0] = 20.0
        self.w0_logits = nn.Parameter(w0)
        if c.memory_init == "learned":
            memory0 = torch.full((N, M), c.memory_init_value)
            if c.memory_init_std > 0:
                memory0 += torch.randn(N, M) * c.memory_init_std
            self.memory0 = nn.Parameter(memory0)
        self.output_size = c.controller_size + R * M

    # -- state ------------------------------------------------------------------------------------
    def initial_state(self, batch_size: int, device: torch.device | str):
        c, B = self.config, batch_size
        p = self.w0_logits
        if c.controller == "lstm":
            h = self.h0[:, None, :].expand(-1, B, -1).to(device).contiguous()  # (L, B, C)
            cc = self.c0[:, None, :].expand(-1, B, -1).to(device).contiguous()
            ctrl = (h, cc)
        else:
            ctrl = ()
        if c.memory_init == "constant":
            memory = torch.full((B, self.M, self.N), c.memory_init_value, device=device, dtype=p.dtype)
        elif c.memory_init == "learned":  # the parameter is (N, M), as in the paper
            memory = self.memory0.t()[None].expand(B, -1, -1).to(device).contiguous()
        else:
            memory = torch.rand(B, self.N, self.M, device=device, dtype=p.dtype).transpose(1, 2).contiguous() * 1e-2
        w0 = torch.softmax(self.w0_logits, dim=-1).to(device)  # (H, N)
        read_w = w0[None, : self.R].expand(B, -1, -1).contiguous()  # (B, R, N)
        write_w = w0[None, self.R :].expand(B, -1, -1).contiguous()  # (B, W, N)
        reads = self.read0[None].expand(B, -1).to(device).contiguous()  # (B, R*M)
        return ctrl, memory, read_w, write_w, reads

    # -- one step ---------------------------------------------------------------------------------
    def step(self, x: torch.Tensor, state):
        ctrl, memory, read_w, write_w, reads = state
        B = x.shape[0]
        R, W, M, S, H = self.R, self.W, self.M, self.S, self.H

        # controller over [x_t, r_{t-1}]
        inp = torch.cat([x, reads], dim=-1)  # (B, D + R*M)
        if self.cells is not None:
            h_prev, c_prev = ctrl
            hs, cs = [], []
            for i, cell in enumerate(self.cells):
                h_i, c_i = cell(inp, (h_prev[i], c_prev[i]))  # (B, C)
                hs.append(h_i)
                cs.append(c_i)
                inp = h_i
            ctrl = (torch.stack(hs), torch.stack(cs))  # (L, B, C)
        else:
            for layer in self.layers:
                inp = torch.tanh(layer(inp))
        out = inp  # (B, C)

        # every head's parameters from one linear layer
        params = self.heads(out)  # (B, H*P + W*2M)
        clip = self.config.clip_controller
        if clip > 0:
            params = params.clamp(-clip, clip)
        addr = params[:, : H * self.addr_size].view(B, H, self.addr_size)  # (B, H, P)
        key = addr[..., :M]  # (B, H, M)
        beta = F.softplus(addr[..., M])  # (B, H)
        g = torch.sigmoid(addr[..., M + 1])  # (B, H)
        gamma = 1 + F.softplus(addr[..., M + 2])  # (B, H)
        shift = torch.softmax(addr[..., M + 3 :], dim=-1)  # (B, H, 2S+1)
        ea = params[:, H * self.addr_size :].view(B, W, 2 * M)  # (B, W, 2M)
        erase = torch.sigmoid(ea[..., :M])  # (B, W, M)
        add = ea[..., M:]  # (B, W, M)

        # addressing, all heads against M_{t-1}
        w_prev = torch.cat([read_w, write_w], dim=1)  # (B, H, N)
        w = content_addressing(memory, key, beta)  # (B, H, N)
        w = interpolate(w, w_prev, g)
        if S > 0:
            w = circular_shift(w, shift)
        if self.config.sharpen_grad_clip > 0:  # backward only: bounds the sharpening's gain (see the field)
            w = clamp_grad(w, self.config.sharpen_grad_clip)
        w = sharpen(w, gamma)  # (B, H, N)
        read_w, write_w = w[:, :R].contiguous(), w[:, R:].contiguous()  # (B, R, N), (B, W, N)

        # read M_{t-1}, then write M_t
        reads = torch.bmm(read_w, memory.transpose(1, 2)).reshape(B, R * M)  # (B, R*M)
        if not self.config.ablate_writes:
            memory = write_memory(memory, write_w, erase, add)  # (B, M, N)
        y = torch.cat([out, reads], dim=-1)  # (B, C + R*M)
        return y, (ctrl, memory, read_w, write_w, reads)

    def trace_step(self, x: torch.Tensor, state):
        """:meth:`step`, plus the weightings it used and the memory it left (the paper's figures 6-15)."""
        y, state = self.step(x, state)
        _, memory, read_w, write_w, _ = state
        return y, state, {"write weighting": write_w, "read weighting": read_w, "memory": memory}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, D) -> (B, T, output_size)`` by stepping; frames are made contiguous first, so every
        step sees the same strides whatever T is (a ``torch.compile``-d ``step`` then compiles once)."""
        state = self.initial_state(x.shape[0], x.device)
        frames = x.transpose(0, 1).contiguous()  # (T, B, D)
        ys = []
        for t in range(frames.shape[0]):
            y, state = self.step(frames[t], state)
            ys.append(y)
        return torch.stack(ys, dim=1)  # (B, T, output_size)
