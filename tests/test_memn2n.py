"""MemN2N (agents/memn2n.py): causal window, temporal encoding, options, and a fast learning check."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import agents
from agents.memn2n import MemN2NConfig, MemN2NCore
from memtasks.core import TaskSpec

torch.set_num_threads(1)

D_IN, M = 5, 4


def make_core(seed: int = 0, **overrides) -> MemN2NCore:
    torch.manual_seed(seed)
    config = MemN2NConfig(**{"embedding_size": 8, "memory_size": M, "hops": 3, **overrides})
    return MemN2NCore(D_IN, config).eval()


def frames(batch: int = 2, steps: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, steps, D_IN, generator=torch.Generator().manual_seed(seed))  # (B, T, D)


def stepped(core: MemN2NCore, x: torch.Tensor) -> torch.Tensor:
    state = core.initial_state(x.shape[0], x.device)
    ys = []
    for t in range(x.shape[1]):
        y, state = core.step(x[:, t], state)
        ys.append(y)
    return torch.stack(ys, dim=1)


VARIANTS = {
    "adjacent": {},
    "layerwise": {"weight_tying": "layerwise"},
    "relu": {"relu_between_hops": True},
    "layerwise_relu": {"weight_tying": "layerwise", "relu_between_hops": True},
    "linear_start": {"linear_start": True},
    "one_hop": {"hops": 1},
    "memory_1": {"memory_size": 1},
    "empty_memories": {"empty_memories": True},
    "empty_memories_linear_start": {"empty_memories": True, "linear_start": True},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_step_matches_parallel_forward(variant: str) -> None:
    core = make_core(**VARIANTS[variant])
    x = frames(steps=3 * M + 1)  # well past the window
    with torch.no_grad():
        torch.testing.assert_close(stepped(core, x), core(x), atol=1e-5, rtol=1e-5)


def test_parameter_layout_follows_the_tying() -> None:
    d, K = 8, 3
    adjacent = make_core()
    # E_0..E_K (B = A^1 = E_0, C^k = A^{k+1} = E_k) and as many temporal matrices
    assert len(adjacent.embeddings) == K + 1 and len(adjacent.temporal) == K + 1
    assert adjacent.H is None
    assert adjacent.output_size == d
    layerwise = make_core(weight_tying="layerwise")
    # B, A, C; T_A, T_C; H
    expected = 3 * D_IN * d + 2 * M * d + d * d
    assert sum(p.numel() for p in layerwise.parameters()) == expected


def test_future_frames_do_not_affect_the_output_but_the_current_one_does() -> None:
    core = make_core()
    x = frames()
    t = 5
    changed_future = x.clone()
    changed_future[:, t + 1 :] += 3.0
    changed_now = x.clone()
    changed_now[:, t] += 3.0
    with torch.no_grad():
        base, future, now = core(x), core(changed_future), core(changed_now)
    torch.testing.assert_close(future[:, : t + 1], base[:, : t + 1], atol=0, rtol=0)
    torch.testing.assert_close(now[:, :t], base[:, :t], atol=0, rtol=0)
    assert not torch.allclose(now[:, t], base[:, t])  # the current frame is the query


def test_frames_older_than_the_window_have_no_effect() -> None:
    core = make_core()
    x = frames(steps=12)
    t = 10
    too_old = x.clone()
    too_old[:, t - M - 1] += 3.0  # age M + 1
    oldest_seen = x.clone()
    oldest_seen[:, t - M] += 3.0  # age M
    with torch.no_grad():
        base = core(x)
        torch.testing.assert_close(core(too_old)[:, t], base[:, t], atol=0, rtol=0)
        assert not torch.allclose(core(oldest_seen)[:, t], base[:, t])


def test_first_step_sees_no_memory() -> None:
    # nothing visible at t = 0: o = 0 at every hop, so u^{K+1} = B x_0 under adjacent tying
    core = make_core()
    x = frames()
    with torch.no_grad():
        torch.testing.assert_close(core(x)[:, 0], core.embeddings[0](x[:, 0]))


def test_temporal_encoding_orders_identical_frames() -> None:
    # the same frame repeated: only the temporal encoding tells memories apart
    core = make_core()
    x = frames(steps=1).expand(2, 8, D_IN)
    with torch.no_grad():
        y = core(x)
        for p in core.temporal:
            p.zero_()
        y_flat = core(x)
    assert not torch.allclose(y[:, 3], y_flat[:, 3])


def test_linear_start_toggles_with_set_progress() -> None:
    core = make_core(linear_start=True, linear_start_epochs=2)
    x = frames()
    with torch.no_grad():
        assert bool(core.linear_start_active)
        linear = core(x)
        core.set_progress(1)
        torch.testing.assert_close(core(x), linear, atol=0, rtol=0)
        core.set_progress(2)  # softmax re-inserted
        assert not bool(core.linear_start_active)
        softmax = core(x)
        assert not torch.allclose(softmax, linear)
        torch.testing.assert_close(stepped(core, x), softmax, atol=1e-5, rtol=1e-5)
        core.set_progress(0)  # back to the linear phase: both paths agree there too
        torch.testing.assert_close(stepped(core, x), linear, atol=1e-5, rtol=1e-5)
    # the phase is part of the state dict, so a checkpoint resumes in it
    resumed = make_core(seed=1, linear_start=True, linear_start_epochs=2)
    core.set_progress(5)
    resumed.load_state_dict(core.state_dict())
    assert not bool(resumed.linear_start_active)
    with torch.no_grad():
        torch.testing.assert_close(resumed(x), softmax, atol=0, rtol=0)
    # also when the core is loaded as part of a whole agent
    spec = TaskSpec("bits", D_IN, "bits", 2)
    first = agents.make_agent("memn2n", spec, device="cpu", memory_size=M, linear_start=True)
    second = agents.make_agent("memn2n", spec, device="cpu", memory_size=M, linear_start=True)
    first.core.set_progress(99)
    second.load_state_dict(first.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(second(x), first(x), atol=0, rtol=0)


def test_linear_start_off_ignores_set_progress() -> None:
    core = make_core()
    x = frames()
    with torch.no_grad():
        base = core(x)
        core.set_progress(0)
        torch.testing.assert_close(core(x), base, atol=0, rtol=0)
    with pytest.raises(ValueError, match="epoch"):
        core.set_progress(-1)


def test_linear_start_scores_by_hand_at_t1() -> None:
    # one hop, linear: y_1 = u + (u . m_0) c_0 with u = B x_1, m_0 = A x_0 + T_A[0], c_0 = C x_0 + T_C[0]
    core = make_core(hops=1, linear_start=True)
    x = frames()
    with torch.no_grad():
        E, Tm = core.embeddings, core.temporal
        u = E[0](x[:, 1])
        m0 = E[0](x[:, 0]) + Tm[0][0]
        c0 = E[1](x[:, 0]) + Tm[1][0]
        expected = u + (u * m0).sum(-1, keepdim=True) * c0
        torch.testing.assert_close(core(x)[:, 1], expected)


def test_random_noise_only_in_training_and_reproducible() -> None:
    noisy = make_core(random_noise=0.5)
    clean = make_core(random_noise=0.0)
    x = frames(steps=12)
    with torch.no_grad():
        # eval: no noise, and the same weights give the same output as a noise-free core
        torch.testing.assert_close(noisy(x), clean(x), atol=0, rtol=0)
        torch.testing.assert_close(stepped(noisy, x), noisy(x), atol=1e-5, rtol=1e-5)
        noisy.train()
        torch.manual_seed(123)
        first = noisy(x)
        torch.manual_seed(123)
        again = noisy(x)
        torch.manual_seed(124)
        other = noisy(x)
        clean.train()
        clean_train = clean(x)
    torch.testing.assert_close(first, again, atol=0, rtol=0)
    assert not torch.allclose(first, other)
    assert not torch.allclose(first, clean_train)
    torch.testing.assert_close(clean_train, clean.eval()(x).detach(), atol=0, rtol=0)
    # noise shifts temporal indices only: still causal, t = 0 still sees nothing
    torch.testing.assert_close(first[:, 0], clean_train[:, 0], atol=0, rtol=0)


def test_random_noise_keeps_the_window() -> None:
    core = make_core(random_noise=0.9).train()
    x = frames(steps=12)
    t = 10
    too_old = x.clone()
    too_old[:, t - M - 1] += 3.0
    future = x.clone()
    future[:, t + 1 :] += 3.0
    outs = []
    for inputs in (x, too_old, future):
        torch.manual_seed(7)
        with torch.no_grad():
            outs.append(core(inputs))
    torch.testing.assert_close(outs[1][:, t], outs[0][:, t], atol=0, rtol=0)
    torch.testing.assert_close(outs[2][:, : t + 1], outs[0][:, : t + 1], atol=0, rtol=0)


# -- embedding="blocks": the frame is the paper's per-hop embeddings side by side ---------------------------


def make_blocks_core(seed: int = 0, d: int = 8, **overrides) -> MemN2NCore:
    """A core whose input frames are ``num_embeddings`` blocks of width ``d`` (E_0 x, E_1 x, ...)."""
    torch.manual_seed(seed)
    config = MemN2NConfig(**{"embedding_size": d, "memory_size": M, "hops": 3, "embedding": "blocks", **overrides})
    n = agents.memn2n.num_embeddings(config.weight_tying, config.hops)
    return MemN2NCore(n * d, config).eval()


@pytest.mark.parametrize("tying", ["adjacent", "layerwise"])
def test_blocks_step_matches_parallel_forward(tying: str) -> None:
    core = make_blocks_core(weight_tying=tying, linear_start=False)
    x = torch.randn(2, 3 * M + 1, core.input_size, generator=torch.Generator().manual_seed(3))  # (B, T, n*d)
    with torch.no_grad():
        torch.testing.assert_close(stepped(core, x), core(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("tying", ["adjacent", "layerwise"])
def test_blocks_equal_linear_maps_that_select_each_block(tying: str) -> None:
    # "blocks" is "linear" with E_i fixed to the selector of block i: the same function
    d = 8
    blocks = make_blocks_core(weight_tying=tying, d=d)
    n = agents.memn2n.num_embeddings(tying, 3)
    linear = MemN2NCore(n * d, MemN2NConfig(embedding_size=d, memory_size=M, hops=3, weight_tying=tying)).eval()
    assert len(blocks.embeddings) == 0 and len(linear.embeddings) == n
    with torch.no_grad():
        for i, e in enumerate(linear.embeddings):
            e.weight.copy_(torch.eye(n * d)[i * d : (i + 1) * d])  # (d, n*d): picks block i
        for mine, theirs in zip(blocks.temporal, linear.temporal):
            theirs.copy_(mine)
        if blocks.H is not None:
            linear.H.weight.copy_(blocks.H.weight)
        x = torch.randn(2, 9, n * d, generator=torch.Generator().manual_seed(4))
        torch.testing.assert_close(blocks(x), linear(x), atol=1e-5, rtol=1e-5)
        if tying == "adjacent":  # the query is block 0 (B = E_0) and nothing is visible at t = 0
            torch.testing.assert_close(blocks(x)[:, 0], x[:, 0, :d])


def test_blocks_core_holds_only_temporal_weights_under_adjacent_tying() -> None:
    d, K = 8, 3
    core = make_blocks_core(d=d)
    assert sum(p.numel() for p in core.parameters()) == (K + 1) * M * d  # T_0..T_K; the E_i live in the encoder


def test_blocks_refuse_a_frame_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match="embedding='blocks'.*frame_blocks=4"):
        MemN2NCore(20, MemN2NConfig(embedding_size=8, hops=3, embedding="blocks"))


def test_blocks_agent_on_tokens_uses_one_bag_per_embedding() -> None:
    # the paper's construction: 4 independent position-encoded bags (B = A^1, C^1 = A^2, C^2 = A^3, C^3)
    spec = TaskSpec("tokens", 6, "classes", 5, vocab=tuple(f"w{i}" for i in range(12)),
                    classes=tuple(f"c{i}" for i in range(5)))  # fmt: skip
    torch.manual_seed(0)
    agent = agents.make_agent("memn2n", spec, device="cpu", embedding_size=8, memory_size=4, hops=3,
                              embedding="blocks", frame_blocks=4, frame_size=32)  # fmt: skip
    assert agent.encoder.blocks == 4 and agent.encoder.embedding.weight.shape == (12, 32)
    tokens = torch.randint(1, 12, (2, 9, 6), generator=torch.Generator().manual_seed(5))  # (B, T, W)
    state = agent.initial_state(2)
    with torch.no_grad():
        steps = []
        for t in range(tokens.shape[1]):
            logits, state = agent.step(tokens[:, t], state)
            steps.append(logits)
        torch.testing.assert_close(torch.stack(steps, 1), agent(tokens), atol=1e-5, rtol=1e-5)
    agent(tokens).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in agent.parameters())


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("embedding_size", 0, ValueError),
        ("memory_size", 0, ValueError),
        ("hops", 0, ValueError),
        ("hops", 2.0, TypeError),
        ("linear_start_epochs", -1, ValueError),
        ("random_noise", 1.5, ValueError),
        ("random_noise", -0.1, ValueError),
        ("weight_tying", "tied", ValueError),
        ("embedding", "shared", ValueError),
        ("linear_start", 1, TypeError),
    ],
)
def test_bad_config_is_refused_naming_the_field(field: str, value, error: type) -> None:
    with pytest.raises(error, match=field):
        MemN2NCore(D_IN, MemN2NConfig(**{field: value}))


def test_registered_and_built_through_make_agent() -> None:
    assert "memn2n" in agents.list_agents()
    spec = TaskSpec("bits", 5, "bits", 4)
    agent = agents.make_agent("memn2n", spec, device="cpu", embedding_size=20, memory_size=7)
    assert isinstance(agent.core, MemN2NCore)
    assert agent.core.output_size == 20 and agent.core.memory_size == 7


# -- learning sanity ---------------------------------------------------------------------------


def delayed_recall_batch(rng: np.random.Generator, batch: int, steps: int, bits: int, delay: int):
    """Random bit frames plus a constant channel; the target at t is the bits of frame t - delay.

    The constant channel gives the query ``u = B x_t`` a part that does not depend on the
    frame's random bits, so attention can select a memory by its age alone through the
    temporal encoding -- the addressing MemN2N's temporal encoding exists for.
    """
    data = rng.integers(0, 2, size=(batch, steps, bits)).astype(np.float32)
    inputs = np.concatenate([data, np.ones((batch, steps, 1), np.float32)], axis=-1)  # (B, T, bits+1)
    targets = np.zeros_like(data)
    targets[:, delay:] = data[:, :-delay]
    mask = np.zeros((batch, steps), np.float32)
    mask[:, delay:] = 1.0
    return torch.as_tensor(inputs), torch.as_tensor(targets), torch.as_tensor(mask)


def test_memn2n_learns_delayed_recall_quickly() -> None:
    bits, delay, steps = 4, 3, 10
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    agent = agents.make_agent(
        "memn2n", TaskSpec("bits", bits + 1, "bits", bits), device="cpu",
        embedding_size=16, memory_size=5,  # the default 3 adjacent hops
    )
    optimiser = torch.optim.Adam(agent.parameters(), lr=0.02)
    start = time.perf_counter()
    for _ in range(100):  # converges in ~50 steps
        x, y, mask = delayed_recall_batch(rng, 32, steps, bits, delay)
        loss = (F.binary_cross_entropy_with_logits(agent(x), y, reduction="none") * mask[..., None]).sum()
        loss = loss / (mask.sum() * bits)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    elapsed = time.perf_counter() - start
    x, y, mask = delayed_recall_batch(np.random.default_rng(99), 256, steps, bits, delay)
    with torch.no_grad():
        wrong = ((agent.eval()(x) > 0) != (y > 0.5)).float() * mask[..., None]
    error_rate = float(wrong.sum() / (mask.sum() * bits))
    assert error_rate < 0.05, f"bit error rate {error_rate:.3f} (chance 0.5) after {elapsed:.1f}s"


def test_empty_memories_take_softmax_mass_with_score_zero() -> None:
    """Authors' code: slots without a frame are zero sentences scoring 0 in the softmax, adding 0 to o."""
    core = make_core(hops=1, empty_memories=True)
    masked = make_core(hops=1)
    x = frames(batch=1, steps=3)
    with torch.no_grad():
        u = core._query(x[:, 2])  # the query at t = 2 sees ages 1, 2; M - 2 slots are empty
        e = core._embed(x[:, :2].flip(1))  # ages 1, 2
        m = e[0] + core.temporal[0][:2]
        c = e[1] + core.temporal[1][:2]
        scores = torch.einsum("bmd,bd->bm", m, u)
        logits = torch.cat([scores, torch.zeros(1, M - 2)], dim=1)  # the empty slots score 0
        p = torch.softmax(logits, dim=-1)[:, :2]
        expected = u + torch.einsum("bm,bmd->bd", p, c)
        torch.testing.assert_close(core(x)[:, 2], expected)
        torch.testing.assert_close(stepped(core, x)[:, 2], expected)
        # a full window has no empty slot: the same as masking
        y = frames(batch=1, steps=M + 3)
        torch.testing.assert_close(core(y)[:, M:], masked(y)[:, M:])
        assert not torch.allclose(core(x)[:, 1:], masked(x)[:, 1:])
        torch.testing.assert_close(core(x)[:, 0], core._query(x[:, 0]))  # nothing visible: o = 0


def test_empty_memories_change_nothing_under_linear_start() -> None:
    core = make_core(empty_memories=True, linear_start=True)
    masked = make_core(linear_start=True)
    x = frames()
    with torch.no_grad():
        torch.testing.assert_close(core(x), masked(x))
