"""Differentiable Neural Computer: memory management against hand-worked examples, the core's contract,
numerical safety, and a short Copy learning test with a negative control (writes ablated)."""

import numpy as np
import pytest
import torch

import agents
import memtasks
from agents.dnc import (
    DNCConfig,
    DNCCore,
    allocation_weighting,
    directional_weightings,
    oneplus,
    update_links,
    update_precedence,
    update_usage,
)

torch.set_num_threads(1)


def small_config(**kw) -> DNCConfig:
    base = dict(controller_size=16, memory_rows=10, memory_width=6, read_heads=2)
    base.update(kw)
    return DNCConfig(**base)


# -- usage and allocation ------------------------------------------------------------------------


def test_allocation_by_hand_gives_the_least_used_slot_first():
    # u = [0.4, 0.1, 0.8, 0.2]; by ascending usage phi = (1, 3, 0, 2), and
    #   a[1] = (1 - 0.1)                     = 0.9
    #   a[3] = (1 - 0.2) * 0.1               = 0.08
    #   a[0] = (1 - 0.4) * 0.1 * 0.2         = 0.012
    #   a[2] = (1 - 0.8) * 0.1 * 0.2 * 0.4   = 0.0016
    # summing to 0.9936 = 1 - prod(u) = 1 - 0.0064.
    usage = torch.tensor([[0.4, 0.1, 0.8, 0.2]])
    a = allocation_weighting(usage)
    torch.testing.assert_close(a, torch.tensor([[0.012, 0.9, 0.0016, 0.08]]))
    torch.testing.assert_close(a.sum(-1), 1 - usage.prod(-1))
    # batched, independent rows; a fully used memory allocates nothing
    both = allocation_weighting(torch.stack([usage[0], torch.ones(4)]))
    torch.testing.assert_close(both[0], a[0])
    torch.testing.assert_close(both[1], torch.zeros(4))


def test_allocation_ties_and_zero_usage_go_in_location_order():
    # u = [0.5, 0.5]: a stable sort keeps slot 0 first: a = [0.5, 0.5 * 0.5]
    torch.testing.assert_close(allocation_weighting(torch.tensor([[0.5, 0.5]])), torch.tensor([[0.5, 0.25]]))
    # an empty memory allocates slot 0 entirely: [1, 0 * ..., ...]
    torch.testing.assert_close(allocation_weighting(torch.zeros(2, 5)), torch.eye(5)[[0, 0]])
    # one free slot among used ones gets everything
    torch.testing.assert_close(
        allocation_weighting(torch.tensor([[0.5, 0.7, 0.0, 0.9]])), torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    )


@pytest.mark.parametrize("usage", [torch.zeros(3, 6), torch.ones(3, 6), torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.5, 0.0]])])
def test_allocation_gradients_are_finite_and_exact_at_zero_and_full_usage(usage):
    u = usage.clone().requires_grad_()
    a = allocation_weighting(u)
    weights = torch.arange(1.0, 7.0)  # (N,)
    (a * weights).sum().backward()
    assert torch.isfinite(a).all() and torch.isfinite(u.grad).all()
    # against the product written out term by term (no cumprod, no sort: the order is known here)
    u2 = usage.clone().requires_grad_()
    order = torch.sort(usage, dim=-1, stable=True).indices
    expected = torch.zeros_like(usage)
    for b in range(usage.shape[0]):
        before = torch.ones(())
        for j in order[b].tolist():
            expected[b, j] = (1 - u2[b, j]) * before
            before = before * u2[b, j]
    (expected * weights).sum().backward()
    torch.testing.assert_close(a, expected)
    torch.testing.assert_close(u.grad, u2.grad)


def test_usage_update_by_hand():
    # u_prev = [0.5, 0.2, 0, 1], w^w_prev = [0.5, 0, 1, 0]:
    #   u + w - u w = [0.75, 0.2, 1, 1]
    # read weights [[0,0,0,1], [0,0,0,0.5]] with free gates [1, 0.5]:
    #   psi = (1 - [0,0,0,1]) * (1 - [0,0,0,0.25]) = [1, 1, 1, 0]
    #   u = [0.75, 0.2, 1, 0]            (slot 3, read and freed, is free again)
    usage = torch.tensor([[0.5, 0.2, 0.0, 1.0]])
    write_w = torch.tensor([[0.5, 0.0, 1.0, 0.0]])
    read_w = torch.tensor([[[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.5]]])
    free = torch.tensor([[1.0, 0.5]])
    torch.testing.assert_close(update_usage(usage, write_w, read_w, free), torch.tensor([[0.75, 0.2, 1.0, 0.0]]))
    # free gates 0: nothing is freed
    torch.testing.assert_close(
        update_usage(usage, write_w, read_w, torch.zeros(1, 2)), torch.tensor([[0.75, 0.2, 1.0, 1.0]])
    )


# -- temporal links ------------------------------------------------------------------------------


def _write_sequence(writes, N):
    link, precedence = torch.zeros(1, N, N), torch.zeros(1, N)
    for w in writes:
        w = torch.tensor([w])
        link = update_links(link, w, precedence)  # uses p_{t-1}
        precedence = update_precedence(precedence, w)
    return link, precedence


def test_links_record_the_order_of_one_hot_writes():
    # writes to slot 0, then 2, then 1 (N = 3):
    #   t=1: L = 0                      p = e0
    #   t=2: L[2, 0] = w[2] p[0] = 1    p = e2
    #   t=3: L[1, 2] = 1, L[2, 0] kept  p = e1
    # so L = [[0,0,0],[0,0,1],[1,0,0]] (row: written later, column: written just before it)
    link, precedence = _write_sequence([[1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]], 3)
    torch.testing.assert_close(link[0], torch.tensor([[0.0, 0, 0], [0, 0, 1], [1, 0, 0]]))
    torch.testing.assert_close(precedence[0], torch.tensor([0.0, 1.0, 0.0]))
    # forward from slot 0 -> 2 -> 1 -> nothing; backward 1 -> 2 -> 0 -> nothing
    reads = torch.eye(3)[None]  # (1, R=3, N): one read head on each slot
    forward, backward = directional_weightings(link, reads)
    torch.testing.assert_close(forward[0], torch.tensor([[0.0, 0, 1], [0, 0, 0], [0, 1, 0]]))
    torch.testing.assert_close(backward[0], torch.tensor([[0.0, 0, 0], [0, 0, 1], [1, 0, 0]]))


def test_links_and_precedence_with_soft_writes_by_hand():
    # N = 3, w1 = [0.5, 0.5, 0], w2 = [0, 0, 0.5], w3 = [0.2, 0, 0]
    #   t=1: L1 = 0 (p0 = 0);            p1 = 0 * p0 + w1 = [0.5, 0.5, 0]
    #   t=2: L2[2, :] = 0.5 p1 = [0.25, 0.25, 0], other rows 0;
    #        p2 = (1 - 0.5) p1 + w2 = [0.25, 0.25, 0.5]
    #   t=3: row 0: (1 - 0.2 - w_j) * 0 + 0.2 p2 = [0.05, 0.05, 0.1], diagonal zeroed -> [0, 0.05, 0.1]
    #        row 1: w3[1] = 0 and L2 row 1 = 0 -> 0
    #        row 2: (1 - 0 - w_j) L2[2, j] = [0.8 * 0.25, 0.25, 0] = [0.2, 0.25, 0]
    #        p3 = (1 - 0.2) p2 + w3 = [0.4, 0.2, 0.4]
    link, precedence = _write_sequence([[0.5, 0.5, 0.0], [0.0, 0.0, 0.5], [0.2, 0.0, 0.0]], 3)
    expected = torch.tensor([[0.0, 0.05, 0.1], [0.0, 0.0, 0.0], [0.2, 0.25, 0.0]])
    torch.testing.assert_close(link[0], expected)
    torch.testing.assert_close(precedence[0], torch.tensor([0.4, 0.2, 0.4]))
    # read weighting r = [0.5, 0, 0.5]:
    #   f = L r   = [0.1 * 0.5, 0, 0.2 * 0.5]              = [0.05, 0, 0.1]
    #   b = L^T r = [0.2 * 0.5, (0.05 + 0.25) * 0.5, 0.1 * 0.5] = [0.1, 0.15, 0.05]
    forward, backward = directional_weightings(link, torch.tensor([[[0.5, 0.0, 0.5]]]))
    torch.testing.assert_close(forward[0, 0], torch.tensor([0.05, 0.0, 0.1]))
    torch.testing.assert_close(backward[0, 0], torch.tensor([0.1, 0.15, 0.05]))
    # the core passes the mask as a buffer; the result is the same
    link2 = update_links(torch.rand(2, 3, 3), torch.rand(2, 3), torch.rand(2, 3), 1 - torch.eye(3))
    assert torch.equal(torch.diagonal(link2, dim1=1, dim2=2), torch.zeros(2, 3))


def test_oneplus_is_at_least_one():
    x = torch.tensor([-100.0, 0.0, 100.0])
    torch.testing.assert_close(oneplus(x), torch.tensor([1.0, 1 + float(np.log(2.0)), 101.0]))


# -- the core ------------------------------------------------------------------------------------


def _set_interface(core: DNCCore, **biases: float) -> None:
    """Zero the interface weights and set chosen biases: the core then does exactly what they say."""
    R, W = core.R, core.W
    names = ["read_keys", "read_strengths", "write_key", "write_strength", "erase", "write_vector",
             "free_gates", "allocation_gate", "write_gate", "read_modes"]
    offsets = np.cumsum([0] + core.splits)
    with torch.no_grad():
        core.interface.weight.zero_()
        core.interface.bias.zero_()
        for name, value in biases.items():
            i = names.index(name)
            core.interface.bias[offsets[i] : offsets[i + 1]] = value
    assert len(core.splits) == (10 if core.links else 9) and core.splits[0] == R * W


def test_gates_open_write_to_free_slots_in_order_and_link_them():
    torch.manual_seed(0)
    core = DNCCore(3, small_config(read_heads=1))
    _set_interface(core, allocation_gate=20.0, write_gate=20.0, free_gates=-20.0, erase=20.0, write_vector=1.0)
    state = core.initial_state(2, "cpu")
    for t in range(4):
        _, state = core.step(torch.randn(2, 3), state)
        torch.testing.assert_close(state["write_w"], torch.eye(10)[[t, t]], atol=1e-6, rtol=0)
    # slots 0..3 hold the write vector (all ones), the rest are still zero
    torch.testing.assert_close(state["memory"][..., :4], torch.ones(2, 6, 4), atol=1e-6, rtol=0)
    assert torch.equal(state["memory"][..., 4:], torch.zeros(2, 6, 6))
    # u_t counts the writes up to w^w_{t-1} (the paper's order): slots 0..2 after step 4
    torch.testing.assert_close(state["usage"][0], torch.tensor([1.0] * 3 + [0.0] * 7), atol=1e-6, rtol=0)
    expected_link = torch.zeros(10, 10)
    expected_link[[1, 2, 3], [0, 1, 2]] = 1.0  # slot t+1 was written after slot t
    torch.testing.assert_close(state["link"][1], expected_link, atol=1e-6, rtol=0)
    torch.testing.assert_close(state["precedence"][0], torch.eye(10)[3], atol=1e-6, rtol=0)


def test_read_modes_walk_the_links_and_reads_see_this_steps_write():
    # write three distinct words into slots 0, 1, 2; the read head looks up each word by content in the step
    # that writes it (reads come after the write, from M_t). Then it finds slot 0 by content and follows the
    # forward links to slots 1 and 2, and the backward links back to 1 and 0.
    torch.manual_seed(0)
    core = DNCCore(3, small_config(read_heads=1, memory_rows=5, memory_width=3))
    words = torch.eye(3)  # slot i will hold e_i
    _set_interface(core, allocation_gate=20.0, write_gate=20.0, free_gates=-20.0, erase=20.0, read_strengths=20.0)
    offsets = np.cumsum([0] + core.splits)
    modes = {"backward": [20.0, -20.0, -20.0], "content": [-20.0, 20.0, -20.0], "forward": [-20.0, -20.0, 20.0]}

    def set_bias(part: int, value) -> None:
        with torch.no_grad():
            core.interface.bias[offsets[part] : offsets[part + 1]] = torch.as_tensor(value)

    set_bias(9, modes["content"])
    state = core.initial_state(1, "cpu")
    for i in range(3):
        set_bias(5, words[i])  # the write vector
        set_bias(0, words[i] * 20)  # the read key: the word being written now
        y, state = core.step(torch.zeros(1, 3), state)
        assert state["write_w"][0].argmax().item() == i
        torch.testing.assert_close(y[0, -3:], words[i], atol=1e-3, rtol=0)  # the read vector is output
    set_bias(8, -20.0)  # write gate closed from now on
    set_bias(0, words[0] * 20)
    _, state = core.step(torch.zeros(1, 3), state)
    assert state["read_w"][0, 0].argmax().item() == 0
    for mode, slots in (("forward", (1, 2)), ("backward", (1, 0))):
        set_bias(9, modes[mode])
        for slot in slots:
            y, state = core.step(torch.zeros(1, 3), state)
            assert state["read_w"][0, 0].argmax().item() == slot, mode
            torch.testing.assert_close(y[0, -3:], words[slot], atol=1e-3, rtol=0)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"controller_layers": 2, "read_heads": 3},
        {"temporal_links": False, "learn_initial_state": False},
        {"clip_controller": 0.0, "read_heads": 1, "init_forward_mode_bias": 2.0, "init_allocation_gate_bias": 3.0},
    ],
)
def test_step_matches_forward_and_state_shapes(kw):
    torch.manual_seed(0)
    cfg = small_config(**kw)
    core = DNCCore(5, cfg)
    x = torch.randn(3, 7, 5)
    y = core(x)
    assert y.shape == (3, 7, core.output_size)
    assert core.output_size == cfg.controller_layers * cfg.controller_size + cfg.read_heads * cfg.memory_width
    state = core.initial_state(3, "cpu")
    B, N, W, R = 3, cfg.memory_rows, cfg.memory_width, cfg.read_heads
    shapes = {"memory": (B, W, N), "usage": (B, N), "read_w": (B, R, N), "write_w": (B, N), "reads": (B, R * W)}
    if cfg.temporal_links:
        shapes.update(link=(B, N, N), precedence=(B, N))
    assert {k: tuple(v.shape) for k, v in state.items() if k != "controller"} == shapes
    for t in range(7):
        y_t, state = core.step(x[:, t], state)
        torch.testing.assert_close(y_t, y[:, t])
    # weightings stay (sub-)distributions, usage in [0, 1]
    assert (state["read_w"].sum(-1) <= 1 + 1e-5).all() and (state["write_w"].sum(-1) <= 1 + 1e-5).all()
    assert (state["usage"] >= 0).all() and (state["usage"] <= 1 + 1e-6).all()


def test_without_temporal_links_there_is_no_link_state_and_no_read_modes():
    with_links = DNCCore(5, small_config())
    without = DNCCore(5, small_config(temporal_links=False))
    state = without.initial_state(2, "cpu")
    assert "link" not in state and "precedence" not in state
    assert not hasattr(without, "off_diagonal")
    R = without.R
    assert with_links.interface.out_features - without.interface.out_features == 3 * R
    y, state = without.step(torch.randn(2, 5), state)
    assert "link" not in state and torch.isfinite(y).all()


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="memory_rows"):
        DNCCore(3, small_config(memory_rows=0))
    with pytest.raises(ValueError, match="read_heads"):
        DNCCore(3, small_config(read_heads=0))
    with pytest.raises(ValueError, match="clip_controller"):
        DNCCore(3, small_config(clip_controller=-1.0))


# -- numerical safety ----------------------------------------------------------------------------


def test_zero_keys_zero_memory_and_empty_usage_give_finite_values_and_gradients():
    # all-zero interface: keys 0 against a zero memory, usage 0, every gate at 0.5
    torch.manual_seed(0)
    core = DNCCore(4, small_config())
    _set_interface(core)
    x = torch.zeros(2, 6, 4, requires_grad=True)
    y = core(x)
    assert torch.isfinite(y).all()
    y.pow(2).sum().backward()
    assert torch.isfinite(x.grad).all()
    for name, p in core.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("temporal_links", [True, False])
def test_long_run_with_extreme_inputs_stays_finite(temporal_links):
    torch.manual_seed(0)
    core = DNCCore(6, small_config(temporal_links=temporal_links, read_heads=2))
    with torch.no_grad():  # extreme weights: saturate every gate, strength and mode
        for p in core.parameters():
            p.mul_(50.0)
    x = torch.randn(2, 200, 6) * 1e3
    x[:, ::7] = 0.0
    y = core(x)
    assert torch.isfinite(y).all()
    y.sum().backward()
    for name, p in core.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), name


def test_ablated_writes_leave_memory_empty():
    torch.manual_seed(0)
    core = DNCCore(5, small_config(ablate_writes=True))
    state = core.initial_state(2, "cpu")
    for _ in range(5):
        _, state = core.step(torch.randn(2, 5), state)
    assert torch.equal(state["memory"], torch.zeros_like(state["memory"]))
    assert torch.equal(state["reads"], torch.zeros_like(state["reads"]))


# -- learning, with a negative control -----------------------------------------------------------

LEARN_TASK = {"bits": 8, "min_length": 1, "max_length": 6}
LEARN_CHANCE = 8 * 3.5 / 2  # bits x mean length / 2 wrong bits per sequence
LEARN_AGENT = {"controller_size": 32, "memory_rows": 12, "memory_width": 10}


def _train_copy(tmp_path, **agent_kwargs) -> float:
    """Wrong bits per sequence on 256 fresh sequences after 400 Adam steps (batch 32, lr 1e-2) on Copy 8 bits 1-6."""
    from benchmarks.evaluate import evaluate
    from benchmarks.train import TrainConfig, train

    config = TrainConfig(
        task="memtasks/Copy-v0", agent="dnc", seed=0, task_kwargs=LEARN_TASK,
        agent_kwargs={**LEARN_AGENT, **agent_kwargs}, batch_size=32, optimizer="adam", lr=1e-2, steps=400,
        log_every=50, threads=1, compile=False,  # eager: the compile would cost more than these 400 steps
    )
    result = train(config, tmp_path, progress=False)
    assert result.status == "ok", result.message
    trained, task_id, task_kwargs = agents.load_checkpoint(tmp_path / "model.pt", device="cpu")
    frame = evaluate(trained, memtasks.make_task(task_id, **task_kwargs), None, samples=256, seed=1)
    return float(frame.set_index("metric").loc["bit_errors", "value"])


@pytest.mark.slow
def test_learns_copy_and_not_without_memory_writes(tmp_path):
    """The DNC copies 8-bit sequences of lengths 1-6 after 400 steps; with its writes ablated (the same
    controller, reading an empty memory) it stays far from it.

    Measured with this evaluation (seeds 0-2; eager, 20-45 s per run on a shared 2-core CPU): 0.0 / 0.0 / 0.02
    wrong bits per sequence (chance 14), ablated 6.6 / 6.7 / 6.9.
    """
    learned = _train_copy(tmp_path / "dnc")
    ablated = _train_copy(tmp_path / "ablated", ablate_writes=True)
    assert learned < 1.0, f"dnc: {learned:.2f} wrong bits per sequence (chance {LEARN_CHANCE})"
    assert ablated > 4.0, f"dnc without writes: {ablated:.2f} wrong bits per sequence; the control should fail"
