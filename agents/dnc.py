"""Differentiable Neural Computer (Graves et al. 2016, Nature 538, "Hybrid computing using a neural
network with dynamic external memory", Methods).

An LSTM controller reads the input frame and the previous read vectors; one linear layer maps its
output to the *interface vector* ``xi_t``, which is split into (Methods, "Interface parameters")::

    read keys        k^{r,i}  in R^W        (i = 1..R)
    read strengths   beta^{r,i} = oneplus(.)  >= 1
    write key        k^w      in R^W
    write strength   beta^w   = oneplus(.)
    erase vector     e        = sigmoid(.) in [0, 1]^W
    write vector     v        in R^W
    free gates       f^i      = sigmoid(.)  (i = 1..R)
    allocation gate  g^a      = sigmoid(.)
    write gate       g^w      = sigmoid(.)
    read modes       pi^i     = softmax(.) over (backward, content, forward)   (i = 1..R)

with ``oneplus(x) = 1 + softplus(x)``. One step then runs, in the paper's order (``∘`` elementwise):

1. Usage (section "Dynamic memory allocation")::

       psi_t = prod_i (1 - f^i_t w^{r,i}_{t-1})                   retention vector
       u_t   = (u_{t-1} + w^w_{t-1} - u_{t-1} ∘ w^w_{t-1}) ∘ psi_t

2. Allocation: ``phi_t`` = the locations sorted by ascending usage (``phi_t[1]`` the least used)::

       a_t[phi_t[j]] = (1 - u_t[phi_t[j]]) prod_{i=1}^{j-1} u_t[phi_t[i]]

3. Write weighting, from content lookup on ``M_{t-1}`` and the allocation::

       c^w_t = C(M_{t-1}, k^w_t, beta^w_t),   C(M, k, beta)[i] = softmax_i(beta D(k, M[i]))   (D: cosine)
       w^w_t = g^w_t [g^a_t a_t + (1 - g^a_t) c^w_t]

4. Write (erase, then add)::

       M_t = M_{t-1} ∘ (E - w^w_t e_t^T) + w^w_t v_t^T

5. Temporal links ("Temporal memory linkage"), with ``p_0 = 0`` and ``L_0 = 0``::

       L_t[i, j] = (1 - w^w_t[i] - w^w_t[j]) L_{t-1}[i, j] + w^w_t[i] p_{t-1}[j],   L_t[i, i] = 0
       p_t       = (1 - sum_i w^w_t[i]) p_{t-1} + w^w_t
       f^i_t = L_t w^{r,i}_{t-1}          forward weighting
       b^i_t = L_t^T w^{r,i}_{t-1}        backward weighting

6. Read from ``M_t`` ("Read weighting")::

       c^{r,i}_t = C(M_t, k^{r,i}_t, beta^{r,i}_t)
       w^{r,i}_t = pi^i_t[1] b^i_t + pi^i_t[2] c^{r,i}_t + pi^i_t[3] f^i_t
       r^i_t     = M_t^T w^{r,i}_t

The read vectors go to the controller at the next step and, as in the paper's output
``y_t = W_y [h_t] + W_r [r^1_t; ..; r^R_t]``, to the output now: the core's output is
``[controller output, r^1_t, .., r^R_t]`` and the agent's linear head supplies ``W_y`` and ``W_r``.

Controller: a stack of LSTM cells with the paper's skip connections: every layer sees
``[x_t, r_{t-1}]`` plus the layer below's ``h_t``, and the interface and the output are read off all
layers' ``h_t`` concatenated. The initial state follows the paper: memory, usage, weightings,
precedence, links and read vectors all zero (the controller's initial state is learned, as in the NTM).

``temporal_links=False`` drops ``L`` and ``p`` (and the read modes: reads are content lookups only).
The link matrix is the DNC's one quadratic cost: ``L_t`` is ``N x N`` floats per sequence and step
(per write head; the DNC has one), and training keeps every step's for backpropagation through time,
so it adds ``B * T * N^2 * 4`` bytes (float32) per saved copy: 43 MB for the Copy defaults (B = 16,
T = 41, N = 128), 2.8 GB at N = 1024. The eager step saves two copies per step (``L_{t-1}`` for the
update, ``L_t`` for the directional reads), the compiled step one (measured for those sizes: 82 and
42 MB of ``N x N`` tensors, of 115 and 57 MB saved in all; 31 and 14 MB without links).

Layout, as in :mod:`agents.ntm`: memory is held location-last, ``(B, W, N)`` (column ``i`` is the
paper's row ``M[i]``), weightings ``(B, R, N)``, so every reduction over locations runs along the
contiguous axis; ``L`` is ``(B, N, N)`` with ``L[b, i, j]`` the paper's ``L[i, j]`` ("``i`` was
written after ``j``"). Content lookup and the erase/add write reuse :mod:`agents.ntm`'s
:func:`~agents.ntm.content_addressing` and :func:`~agents.ntm.write_memory`.

Defaults: the NTM's Copy sizes (LSTM controller 100, N = 128 locations of width W = 20, so tests up to
length 120 fit), one read head, the NTM's interface clip (+-20) and small initial interface weights,
neutral gate and mode biases. With the project's copy recipe (batch 16, Adam 3e-3, same-length
batches) Copy 8 bits 1-20 met ``until_bit_errors=0.1`` after 550 / 500 / 450 steps (8800 / 8000 / 7200
sequences; seeds 0 / 1 / 2), and seed 0's checkpoint made no errors up to length 50 (0.17 wrong bits per
sequence at 80).

Numerical safety: cosine similarity guards its norms (zero keys or zero memory give similarity 0,
never NaN); the allocation's product is ``torch.cumprod`` of sorted usages, whose backward is exact
at zero usages (no division); sorting is stable, so equal usages (all zero at the start) are
allocated in location order and the eager and compiled steps agree. ``torch.sort``'s indices carry
no gradient, the sorted values do, which is the paper's (piecewise) gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from agents.base import AgentConfig, Core
from agents.ntm import content_addressing, write_memory

__all__ = [
    "DNCConfig",
    "DNCCore",
    "allocation_weighting",
    "directional_weightings",
    "oneplus",
    "update_links",
    "update_precedence",
    "update_usage",
]


# -- memory management: small pure functions ------------------------------------------------------


def oneplus(x: torch.Tensor) -> torch.Tensor:
    """``1 + softplus(x)``, in ``[1, inf)`` (the paper's strengths)."""
    return 1 + F.softplus(x)


def update_usage(
    usage: torch.Tensor, write_w: torch.Tensor, read_w: torch.Tensor, free_gates: torch.Tensor
) -> torch.Tensor:
    """``u_t = (u_{t-1} + w^w_{t-1} - u_{t-1} ∘ w^w_{t-1}) ∘ psi_t``, ``psi_t = prod_i (1 - f^i w^{r,i}_{t-1})``.

    Args:
        usage: (B, N) previous usage ``u_{t-1}`` in [0, 1].
        write_w: (B, N) previous write weighting ``w^w_{t-1}``.
        read_w: (B, R, N) previous read weightings ``w^{r,i}_{t-1}``.
        free_gates: (B, R) free gates ``f^i_t`` in [0, 1].
    """
    retention = (1 - free_gates[..., None] * read_w).prod(dim=1)  # (B, N)
    return (usage + write_w - usage * write_w) * retention  # (B, N)


def allocation_weighting(usage: torch.Tensor) -> torch.Tensor:
    """``a[phi[j]] = (1 - u[phi[j]]) prod_{i<j} u[phi[i]]``, ``phi`` = locations by ascending usage.

    Args:
        usage: (B, N) in [0, 1]. Ties keep location order (a stable sort).

    Returns:
        (B, N); it sums to ``1 - prod_i u[i]`` (at most 1) and is largest at the least-used location.
    """
    sorted_usage, order = torch.sort(usage, dim=-1, stable=True)  # (B, N), (B, N)
    shifted = torch.cat([torch.ones_like(sorted_usage[..., :1]), sorted_usage[..., :-1]], dim=-1)
    free_before = torch.cumprod(shifted, dim=-1)  # (B, N): prod_{i<j} u[phi[i]], exclusive
    sorted_alloc = (1 - sorted_usage) * free_before  # (B, N), in the sorted order
    return torch.zeros_like(usage).scatter(-1, order, sorted_alloc)  # back to location order


def update_links(
    link: torch.Tensor, write_w: torch.Tensor, precedence: torch.Tensor, off_diagonal: torch.Tensor | None = None
) -> torch.Tensor:
    """``L_t[i, j] = (1 - w[i] - w[j]) L_{t-1}[i, j] + w[i] p_{t-1}[j]``, zero diagonal.

    Args:
        link: (B, N, N) ``L_{t-1}``.
        write_w: (B, N) ``w^w_t``.
        precedence: (B, N) ``p_{t-1}`` (before this step's update).
        off_diagonal: (N, N) ``1 - I``; the core passes a buffer, since an identity built inside a
            compiled step lowered to a CPU kernel 20x slower than the rest of the update.
    """
    if off_diagonal is None:
        N = link.shape[-1]
        off_diagonal = 1 - torch.eye(N, dtype=link.dtype, device=link.device)  # (N, N)
    w_i, w_j = write_w[:, :, None], write_w[:, None, :]  # (B, N, 1), (B, 1, N)
    return ((1 - w_i - w_j) * link + w_i * precedence[:, None, :]) * off_diagonal  # (B, N, N)


def update_precedence(precedence: torch.Tensor, write_w: torch.Tensor) -> torch.Tensor:
    """``p_t = (1 - sum_i w^w_t[i]) p_{t-1} + w^w_t``; both (B, N)."""
    return (1 - write_w.sum(-1, keepdim=True)) * precedence + write_w


def directional_weightings(link: torch.Tensor, read_w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward ``f^i = L w^{r,i}`` and backward ``b^i = L^T w^{r,i}`` weightings.

    Args:
        link: (B, N, N) ``L_t``.
        read_w: (B, R, N) ``w^{r,i}_{t-1}``.

    Returns:
        ``(forward, backward)``, each (B, R, N).
    """
    forward = torch.bmm(read_w, link.transpose(1, 2))  # (B, R, N): f[r, i] = sum_j L[i, j] w[r, j]
    backward = torch.bmm(read_w, link)  # (B, R, N): b[r, j] = sum_i L[i, j] w[r, i]
    return forward, backward


# -- the core ------------------------------------------------------------------------------------


@dataclass
class DNCConfig(AgentConfig):
    """Differentiable Neural Computer; sizes for the NTM paper's Copy (8 bits, lengths 1-20, tested to 120)."""

    controller_size: int = 100
    """Units per LSTM controller layer."""
    controller_layers: int = 1
    """Stacked LSTM layers (with the paper's skip connections: each layer also sees the input)."""
    read_heads: int = 1
    """Number of read heads R (Copy needs one; the paper's bAbI model used 4)."""
    memory_rows: int = 128
    """Memory locations N (the NTM's name for it); Copy of length L uses L of them. The link matrix costs
    ``N^2`` floats per sequence and step (see the module docstring)."""
    memory_width: int = 20
    """Word size W of each memory location."""
    temporal_links: bool = True
    """Keep the temporal link matrix L and precedence p, and the read modes (backward, content, forward);
    False reads by content only and saves the ``B * T * N^2`` floats of L."""
    clip_controller: float = 20.0
    """Clip the interface vector to +-this before its activations (0 = off), as the NTM's ``clip_controller``."""
    learn_initial_state: bool = True
    """Learn the initial LSTM state (else zeros); the memory side always starts at zero, as in the paper."""
    interface_init_scale: float = 0.1
    """Scale of the interface layer's initial weights (uniform in +-scale/sqrt(fan_in)), so the untrained gates
    and modes behave as their biases say (as the NTM's ``head_init_scale``)."""
    init_write_gate_bias: float = 0.0
    """Initial bias of the write gate g^w (sigmoid; 0 gives 0.5)."""
    init_allocation_gate_bias: float = 0.0
    """Initial bias of the allocation gate g^a (sigmoid; 0 gives 0.5, 3 gives 0.95: writes start mostly to
    free locations in order)."""
    init_forward_mode_bias: float = 0.0
    """Initial bias of the forward read mode's logit (the other two start at 0); ignored without temporal links."""
    ablate_writes: bool = False
    """Negative control: never write (``M_t = M_{t-1}``, so memory stays zero and reads return zeros); every
    other part runs unchanged. For tests and ablations only."""


class DNCCore(Core):
    """DNC over feature frames (one write head, R read heads).

    State: a dict of tensors (``temporal_links=False`` has no ``"link"`` or ``"precedence"``):

    - ``"controller"``: ``(h, c)``, each (layers, B, controller_size)
    - ``"memory"``: (B, W, N), location-last
    - ``"usage"``: (B, N)
    - ``"link"``: (B, N, N), ``"precedence"``: (B, N)
    - ``"read_w"``: (B, R, N), ``"write_w"``: (B, N)
    - ``"reads"``: (B, R*W), the read vectors of the last step

    Every state tensor is contiguous from the first step on, so a compiled ``step`` compiles once.
    """

    # Same-length batches carry no padding; as for the NTM (results/speed/batching.md), the trainer's
    # "auto" then picks them.
    batch_lengths = "same"

    def __init__(self, input_size: int, config: DNCConfig) -> None:
        super().__init__()
        c = config
        for name in ("controller_size", "controller_layers", "read_heads", "memory_rows", "memory_width"):
            if int(getattr(c, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(c, name)}")
        if c.clip_controller < 0:
            raise ValueError(f"clip_controller must be >= 0, got {c.clip_controller}")
        self.config = c
        R, N, W = c.read_heads, c.memory_rows, c.memory_width
        self.R, self.N, self.W = R, N, W
        self.links = bool(c.temporal_links)

        # controller: layer l sees [x_t, r_{t-1}, h^{l-1}_t]
        chi = input_size + R * W
        self.cells = nn.ModuleList(
            nn.LSTMCell(chi + (c.controller_size if i > 0 else 0), c.controller_size)
            for i in range(c.controller_layers)
        )
        shape = (c.controller_layers, c.controller_size)
        if c.learn_initial_state:
            self.h0 = nn.Parameter(torch.zeros(shape))
            self.c0 = nn.Parameter(torch.zeros(shape))
        else:
            self.register_buffer("h0", torch.zeros(shape))
            self.register_buffer("c0", torch.zeros(shape))
        hidden = c.controller_layers * c.controller_size

        # interface vector xi_t: [read keys R*W | read strengths R | write key W | write strength 1 |
        #                         erase W | write vector W | free gates R | allocation gate 1 | write gate 1 |
        #                         read modes 3R (with temporal links)]
        sizes = [R * W, R, W, 1, W, W, R, 1, 1] + ([3 * R] if self.links else [])
        self.splits = sizes
        self.interface = nn.Linear(hidden, sum(sizes))
        with torch.no_grad():
            bound = c.interface_init_scale / math.sqrt(hidden)
            self.interface.weight.uniform_(-bound, bound)
            self.interface.bias.zero_()
            offsets = [0]
            for s in sizes:
                offsets.append(offsets[-1] + s)
            self.interface.bias[offsets[7]] = c.init_allocation_gate_bias
            self.interface.bias[offsets[8]] = c.init_write_gate_bias
            if self.links:
                modes = self.interface.bias[offsets[9] : offsets[10]].view(R, 3)
                modes[:, 2] = c.init_forward_mode_bias
        if self.links:
            self.register_buffer("off_diagonal", 1 - torch.eye(N), persistent=False)  # (N, N)
        self.output_size = hidden + R * W

    # -- state ------------------------------------------------------------------------------------
    def initial_state(self, batch_size: int, device: torch.device | str) -> dict:
        B, N, W, R = batch_size, self.N, self.W, self.R
        dtype = self.interface.weight.dtype
        h = self.h0[:, None, :].expand(-1, B, -1).to(device).contiguous()  # (L, B, C)
        cc = self.c0[:, None, :].expand(-1, B, -1).to(device).contiguous()

        def zeros(*shape: int) -> torch.Tensor:
            return torch.zeros(shape, device=device, dtype=dtype)

        state = {
            "controller": (h, cc),
            "memory": zeros(B, W, N),
            "usage": zeros(B, N),
            "read_w": zeros(B, R, N),
            "write_w": zeros(B, N),
            "reads": zeros(B, R * W),
        }
        if self.links:
            state["link"] = zeros(B, N, N)
            state["precedence"] = zeros(B, N)
        return state

    # -- one step ---------------------------------------------------------------------------------
    def trace_step(self, x: torch.Tensor, state: dict):
        """:meth:`step`, plus the weightings it used and the memory it left (for ``memtasks viz``)."""
        y, state = self.step(x, state)
        inside = {"write weighting": state["write_w"][:, None], "read weighting": state["read_w"],
                  "memory": state["memory"], "usage": state["usage"][:, None]}
        return y, state, inside

    def step(self, x: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        B = x.shape[0]
        R, W = self.R, self.W
        memory, read_w_prev, write_w_prev = state["memory"], state["read_w"], state["write_w"]

        # controller over chi_t = [x_t, r_{t-1}]
        chi = torch.cat([x, state["reads"]], dim=-1)  # (B, D + R*W)
        h_prev, c_prev = state["controller"]
        hs, cs = [], []
        for i, cell in enumerate(self.cells):
            inp = chi if i == 0 else torch.cat([chi, hs[-1]], dim=-1)
            h_i, c_i = cell(inp, (h_prev[i], c_prev[i]))  # (B, C)
            hs.append(h_i)
            cs.append(c_i)
        controller = (torch.stack(hs), torch.stack(cs))  # (L, B, C)
        out = hs[0] if len(hs) == 1 else torch.cat(hs, dim=-1)  # (B, L*C)

        # interface vector
        xi = self.interface(out)  # (B, |xi|)
        clip = self.config.clip_controller
        if clip > 0:
            xi = xi.clamp(-clip, clip)
        parts = torch.split(xi, self.splits, dim=-1)
        read_keys = parts[0].reshape(B, R, W)  # (B, R, W)
        read_beta = oneplus(parts[1])  # (B, R)
        write_key = parts[2][:, None]  # (B, 1, W)
        write_beta = oneplus(parts[3])  # (B, 1)
        erase = torch.sigmoid(parts[4])  # (B, W)
        write_vec = parts[5]  # (B, W)
        free_gates = torch.sigmoid(parts[6])  # (B, R)
        alloc_gate = torch.sigmoid(parts[7])  # (B, 1)
        write_gate = torch.sigmoid(parts[8])  # (B, 1)

        # usage and allocation, then the write weighting (content lookup on M_{t-1})
        usage = update_usage(state["usage"], write_w_prev, read_w_prev, free_gates)  # (B, N)
        alloc = allocation_weighting(usage)  # (B, N)
        write_content = content_addressing(memory, write_key, write_beta)[:, 0]  # (B, N)
        write_w = write_gate * (alloc_gate * alloc + (1 - alloc_gate) * write_content)  # (B, N)

        # write M_t
        if not self.config.ablate_writes:
            memory = write_memory(memory, write_w[:, None], erase[:, None], write_vec[:, None])  # (B, W, N)

        # read weightings against M_t
        read_content = content_addressing(memory, read_keys, read_beta)  # (B, R, N)
        new_state = {"controller": controller, "memory": memory, "usage": usage, "write_w": write_w}
        if self.links:
            link = update_links(state["link"], write_w, state["precedence"], self.off_diagonal)  # (B, N, N)
            new_state["link"] = link
            new_state["precedence"] = update_precedence(state["precedence"], write_w)  # (B, N)
            forward, backward = directional_weightings(link, read_w_prev)  # (B, R, N) each
            modes = torch.softmax(parts[9].reshape(B, R, 3), dim=-1)  # (B, R, 3): backward, content, forward
            read_w = modes[..., 0:1] * backward + modes[..., 1:2] * read_content + modes[..., 2:3] * forward
        else:
            read_w = read_content
        reads = torch.bmm(read_w, memory.transpose(1, 2)).reshape(B, R * W)  # (B, R*W)
        new_state["read_w"] = read_w
        new_state["reads"] = reads
        y = torch.cat([out, reads], dim=-1)  # (B, L*C + R*W)
        return y, new_state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, D) -> (B, T, output_size)`` by stepping over contiguous frames (one compile for every T)."""
        state = self.initial_state(x.shape[0], x.device)
        frames = x.transpose(0, 1).contiguous()  # (T, B, D)
        ys = []
        for t in range(frames.shape[0]):
            y, state = self.step(frames[t], state)
            ys.append(y)
        return torch.stack(ys, dim=1)  # (B, T, output_size)
