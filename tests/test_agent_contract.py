"""The agent contract (agents/base.py), checked for every registered agent.

Parametrised over ``agents.list_agents()`` -- the registry, not a hand-kept
list -- so a newly registered agent is tested without editing this file.
Each agent runs on a bits->bits spec (Copy) and a tokens->classes spec.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import pytest
import torch

import agents
import memtasks
from agents.base import Core, agent_info, resolve_device
from agents.encoders import PositionEncodedBag, position_encoding
from memtasks.core import TaskSpec

torch.set_num_threads(1)

AGENT_NAMES = agents.list_agents()

# Small sizes keep the suite fast; keys an agent's config lacks are dropped, and an
# agent not listed here runs with its defaults (plus frame_size).
SMALL_CONFIGS: dict[str, dict[str, Any]] = {
    "lstm": {"hidden_size": 8, "num_layers": 2},
    "ntm": {"controller_size": 8, "memory_rows": 8, "memory_width": 4},
    # memory_size below the sequence lengths, so stepping past the window is tested
    "memn2n": {"embedding_size": 8, "memory_size": 4, "hops": 2},
    "dnc": {"controller_size": 8, "memory_rows": 8, "memory_width": 4},
    "transformer": {"d_model": 16, "num_layers": 2, "num_heads": 2, "ff_size": 32},
}

TOKEN_SPEC = TaskSpec(
    "tokens", 6, "classes", 5, vocab=("<pad>",) + tuple(f"w{i}" for i in range(1, 12)),
    classes=tuple(f"c{i}" for i in range(5)),
)


def small_config(name: str) -> dict[str, Any]:
    """The small kwargs of ``name`` that its config dataclass actually has."""
    fields = {f.name for f in dataclasses.fields(agent_info(name).config_cls)}
    config = {"frame_size": 8, **SMALL_CONFIGS.get(name, {})}
    return {k: v for k, v in config.items() if k in fields}


def build(name: str, spec: TaskSpec, seed: int = 0, device: str = "cpu") -> agents.Agent:
    torch.manual_seed(seed)
    return agents.make_agent(name, spec, device=device, **small_config(name))


def bits_case(batch_size: int = 3, length: int = 6) -> tuple[TaskSpec, torch.Tensor]:
    """Copy with 3 bits: inputs (B, 2L+1, 4) float32."""
    task = memtasks.make_task("Copy-v0", bits=3, min_length=1, max_length=length)
    batch = task.sample(batch_size, np.random.default_rng(0), length=length)
    return task.spec, torch.as_tensor(batch.inputs)


def tokens_case(batch_size: int = 3, steps: int = 10) -> tuple[TaskSpec, torch.Tensor]:
    """Left-aligned word ids (B, T, 6) with 0..6 words per frame (so some frames are empty)."""
    rng = np.random.default_rng(1)
    W = TOKEN_SPEC.input_size
    ids = rng.integers(1, TOKEN_SPEC.vocab_size, size=(batch_size, steps, W))
    n_words = rng.integers(0, W + 1, size=(batch_size, steps, 1))
    ids = ids * (np.arange(W)[None, None, :] < n_words)  # padding after each frame's last word
    return TOKEN_SPEC, torch.as_tensor(ids, dtype=torch.long)


CASES = {"bits": bits_case, "tokens": tokens_case}


def step_through(agent: agents.Agent, inputs: torch.Tensor) -> torch.Tensor:
    """Logits (B, T, output_size) from stepping frame by frame."""
    state = agent.initial_state(inputs.shape[0], inputs.device)
    outputs = []
    for t in range(inputs.shape[1]):
        logits, state = agent.step(inputs[:, t], state)  # (B, output_size)
        outputs.append(logits)
    return torch.stack(outputs, dim=1)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", AGENT_NAMES)
class TestEveryAgent:
    """(a)-(c): stepping agrees with forward, gradients flow, state_dict round-trips."""

    def test_step_matches_forward(self, name: str, case: str) -> None:
        spec, inputs = CASES[case]()
        agent = build(name, spec).eval()
        with torch.no_grad():
            full = agent(inputs)
            stepped = step_through(agent, inputs)
        assert full.shape == inputs.shape[:2] + (spec.output_size,)
        torch.testing.assert_close(stepped, full, atol=1e-5, rtol=1e-5)

    def test_gradients_reach_every_parameter(self, name: str, case: str) -> None:
        spec, inputs = CASES[case](batch_size=4)
        agent = build(name, spec).train()
        agent(inputs).pow(2).mean().backward()
        missing = [n for n, p in agent.named_parameters() if p.grad is None]
        assert not missing, f"{name}: no gradient for {missing}"
        zero = [n for n, p in agent.named_parameters() if not bool(p.grad.abs().sum() > 0)]
        assert not zero, f"{name}: all-zero gradient for {zero}"

    def test_state_dict_round_trip(self, name: str, case: str) -> None:
        spec, inputs = CASES[case]()
        original = build(name, spec, seed=0).eval()
        copy = build(name, spec, seed=1).eval()
        copy.load_state_dict(original.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(copy(inputs), original(inputs), atol=0.0, rtol=0.0)

    def test_core_interface(self, name: str, case: str) -> None:
        spec, inputs = CASES[case]()
        agent = build(name, spec)
        assert isinstance(agent.core, Core)
        assert isinstance(agent.core.output_size, int) and agent.core.output_size >= 1
        agent.core.set_progress(0)  # every core accepts the schedule hook


# -- the training fast path (agents/fast.py) ----------------------------------------------------


def assert_same_training_pass(name: str, eager: agents.Agent, fast: agents.Agent, inputs: torch.Tensor) -> None:
    """Logits and every parameter's gradient of one training pass agree to 1e-5 (the same training noise,
    e.g. MemN2N's random_noise, for both)."""
    results = []
    for agent in (eager, fast):
        torch.manual_seed(3)
        logits = agent(inputs)
        logits.pow(2).mean().backward()
        results.append((logits.detach(), {n: p.grad for n, p in agent.named_parameters()}))
    torch.testing.assert_close(results[1][0], results[0][0], atol=1e-5, rtol=1e-5)
    for n, grad in results[0][1].items():
        torch.testing.assert_close(results[1][1][n], grad, atol=1e-5, rtol=1e-4, msg=f"{name}: gradient of {n}")


@pytest.mark.parametrize("name", AGENT_NAMES)
def test_fast_path_gives_the_eager_logits_and_gradients(name: str) -> None:
    """The fast path (a compiled step for step-wise cores) matches eager to 1e-5, forward and backward."""
    spec, inputs = bits_case(batch_size=4, length=5)
    eager, fast = build(name, spec).train(), build(name, spec).train()
    status = agents.enable_fast_path(fast)
    if fast.core.fast_path == "step":
        assert status == "compiled step"
    assert_same_training_pass(name, eager, fast, inputs)
    assert agents.fast_path_status(fast) == status  # still on its fast path: it did not fall back


@pytest.mark.parametrize(("name", "compiler"), [*((n, "none") for n in AGENT_NAMES), ("ntm", "inductor")])
def test_unrolled_fast_path_gives_the_eager_logits_and_gradients(name: str, compiler: str) -> None:
    """Several steps per compiled graph (here 2 over 11 frames: one zero frame of padding) match eager to 1e-5,
    forward and backward. Every step-wise core runs the chunking with the compiler replaced by the plain
    function; the NTM also compiles for real (a 2-step graph compiles for about a minute from an empty cache,
    so the other cores' real compile is left to the single-step test above)."""
    spec, inputs = bits_case(batch_size=4, length=5)
    eager, fast = build(name, spec).train(), build(name, spec).train()
    status = agents.enable_fast_path(fast, unroll=2, compile_fn=None if compiler == "inductor" else lambda f: f)
    if fast.core.fast_path != "step":
        assert status.startswith("eager")
        return
    assert status == "compiled steps, 2 per graph"
    assert_same_training_pass(name, eager, fast, inputs)
    assert agents.fast_path_status(fast) == status  # still on its fast path: it did not fall back


def test_fast_path_compiles_twice_at_most_when_the_batch_size_varies(monkeypatch) -> None:
    """bAbI's batches hold a varying number of stories: the second batch size recompiles the step with the batch
    dimension dynamic, and later sizes reuse that graph (with static shapes only, each size compiled anew until
    dynamo's recompile limit, then ran eagerly). Graphs are counted with a backend that runs them uncompiled."""
    graphs = []
    real_compile = torch.compile

    def counting_compile(fn, **kwargs):
        def backend(graph_module, example_inputs):
            graphs.append(len(example_inputs))
            return graph_module.forward

        kwargs.pop("options", None)  # inductor's settings; this backend takes none
        return real_compile(fn, **{**kwargs, "backend": backend})

    monkeypatch.setattr(torch, "compile", counting_compile)
    spec, _ = bits_case()
    agent = build("ntm", spec).train()
    assert agents.enable_fast_path(agent) == "compiled step"
    for batch_size in (4, 3, 5, 2, 6):
        x = torch.randn(batch_size, 3, spec.input_size)
        logits = agent(x)
        with torch.no_grad():
            torch.testing.assert_close(logits.detach(), agent(x), atol=1e-5, rtol=1e-5)  # eager under no_grad
    assert len(graphs) == 2
    assert agents.fast_path_status(agent) == "compiled step"


def test_unrolled_run_pads_to_whole_graphs_and_drops_the_padding() -> None:
    """The chunking itself, with the compiler replaced by the plain function: every call sees exactly
    ``unroll`` frames, the padded steps' outputs are dropped, and a bad ``unroll`` is refused."""
    from agents.fast import CompiledStep

    spec, _ = bits_case()
    agent = build("ntm", spec).train()
    seen = []

    def recording(fn):
        def call(frames, state):
            seen.append(tuple(frames.shape))
            return fn(frames, state)

        return call

    agents.enable_fast_path(agent, compile_fn=recording, unroll=3)
    x = torch.randn(2, 7, spec.input_size)
    logits = agent(x)
    with torch.no_grad():  # no autograd: the eager loop, one step at a time
        reference = agent(x)
    assert logits.shape == reference.shape == (2, 7, spec.output_size)
    torch.testing.assert_close(logits.detach(), reference, atol=1e-6, rtol=1e-6)
    chunks = [s for s in seen if len(s) == 3]
    assert chunks == [(3, 2, spec.input_size)] * 3  # 7 frames + 2 of padding = 3 calls of 3
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="unroll"):
            CompiledStep(lambda x, s: (x, s), unroll=bad)


def test_fast_path_falls_back_to_eager_with_one_warning() -> None:
    """No compiler (simulated): the first call fails, the step re-runs eagerly, one warning says why."""
    import agents.fast as fast_module

    def broken_compile(step):
        def compiled(*args):
            raise RuntimeError("no C++ compiler found")

        return compiled

    spec, inputs = bits_case()
    eager, agent = build("ntm", spec).train(), build("ntm", spec).train()
    fast_module._warned = False
    with pytest.warns(RuntimeWarning) as caught:
        agents.enable_fast_path(agent, compile_fn=broken_compile)
        logits = agent(inputs)
        agent(inputs)
    assert len(caught) == 1 and "no C++ compiler found" in str(caught[0].message)
    assert agents.fast_path_status(agent).startswith("eager (compile failed: RuntimeError")
    torch.testing.assert_close(logits, eager(inputs), atol=0.0, rtol=0.0)

    def refusing_compile(step):
        raise RuntimeError("this Python is not supported")

    other = build("ntm", spec)
    fast_module._warned = False
    with pytest.warns(RuntimeWarning):
        agents.enable_fast_path(other, compile_fn=refusing_compile)
    assert agents.fast_path_status(other).startswith("eager (compile failed")


def test_fast_path_compiles_with_its_inductor_options(monkeypatch) -> None:
    """The default compile passes INDUCTOR_OPTIONS; the trusted instruction sets are left out where the user
    set inductor's own TORCHINDUCTOR_VEC_ISA_OK."""
    from agents.fast import INDUCTOR_OPTIONS

    seen = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: seen.append(kwargs) or fn)
    spec, _ = bits_case()
    monkeypatch.delenv("TORCHINDUCTOR_VEC_ISA_OK", raising=False)
    agents.enable_fast_path(build("ntm", spec))
    assert seen[-1]["options"] == INDUCTOR_OPTIONS and seen[-1]["options"]["cpp.vec_isa_ok"] is True
    monkeypatch.setenv("TORCHINDUCTOR_VEC_ISA_OK", "1")
    agents.enable_fast_path(build("ntm", spec))
    assert "cpp.vec_isa_ok" not in seen[-1]["options"]
    assert seen[-1]["options"]["size_asserts"] is False


def test_a_failed_compile_with_the_trusted_instruction_sets_retries_with_the_probe(monkeypatch) -> None:
    """A compile that fails with the CPU's reported instruction sets trusted is compiled once more with inductor's
    probe (simulated: only the probed compile works); no warning, the step stays compiled. A second failure, or
    a failure where nothing was trusted, goes eager as before."""
    import agents.fast as fast_module

    calls = []

    def compile_probe_only(step, probe_isa=False):
        calls.append(probe_isa)

        def compiled(*args):
            if not probe_isa:
                raise RuntimeError("the compiler cannot build AVX512 code")
            return step(*args)

        return compiled

    monkeypatch.delenv("TORCHINDUCTOR_VEC_ISA_OK", raising=False)
    monkeypatch.setattr(fast_module, "_compile", compile_probe_only)
    spec, inputs = bits_case()
    eager, agent = build("ntm", spec).train(), build("ntm", spec).train()
    fast_module._warned = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        agents.enable_fast_path(agent)
        logits = agent(inputs)
    assert calls == [False, True] and agents.fast_path_status(agent) == "compiled step"
    torch.testing.assert_close(logits, eager(inputs), atol=0.0, rtol=0.0)

    monkeypatch.setattr(fast_module, "_compile", lambda step, probe_isa=False: compile_probe_only(step))
    other = build("ntm", spec).train()
    fast_module._warned = False
    with pytest.warns(RuntimeWarning):
        agents.enable_fast_path(other)
        other(inputs)
    assert agents.fast_path_status(other).startswith("eager (compile failed: RuntimeError")

    calls.clear()
    monkeypatch.setattr(fast_module, "_compile", compile_probe_only)
    monkeypatch.setenv("TORCHINDUCTOR_VEC_ISA_OK", "1")  # the user's choice: nothing trusted by us, no retry
    third = build("ntm", spec).train()
    fast_module._warned = False
    with pytest.warns(RuntimeWarning):
        agents.enable_fast_path(third)
        third(inputs)
    assert calls == [False] and agents.fast_path_status(third).startswith("eager (compile failed")


def test_a_model_error_is_not_hidden_by_the_fallback() -> None:
    spec, _ = bits_case()
    agent = build("ntm", spec)
    agents.enable_fast_path(agent)
    with pytest.raises(RuntimeError):
        agent(torch.zeros(2, 3, spec.input_size + 1))  # wrong frame width: eager raises too


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", AGENT_NAMES)
def test_bfloat16_agent_takes_the_tasks_float32_batches(name: str, case: str) -> None:
    """Inputs follow the model's dtype (bit frames and the position encoding of token frames)."""
    spec, inputs = CASES[case]()
    agent = build(name, spec).to(torch.bfloat16).eval()
    with torch.no_grad():
        logits = agent(inputs)
        step_logits, _ = agent.step(inputs[:, 0], agent.initial_state(inputs.shape[0]))
    assert logits.dtype == torch.bfloat16 and step_logits.dtype == torch.bfloat16
    assert torch.isfinite(logits.float()).all()


# -- (d) devices ------------------------------------------------------------------------------


def test_auto_device_resolves_to_cuda_when_available() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
    agent = agents.make_agent("lstm", bits_case()[0], device="auto", **small_config("lstm"))
    assert agent.device.type == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", AGENT_NAMES)
def test_runs_on_cuda(name: str, case: str) -> None:
    spec, inputs = CASES[case]()
    cpu_agent = build(name, spec).eval()
    cuda_agent = build(name, spec, device="cuda").eval()
    cuda_agent.load_state_dict(cpu_agent.state_dict())
    assert cuda_agent.device.type == "cuda"
    with torch.no_grad():
        full = cuda_agent(inputs.cuda())
        stepped = step_through(cuda_agent, inputs.cuda())
        expected = cpu_agent(inputs)
    assert full.device.type == "cuda"
    torch.testing.assert_close(stepped, full, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(full.cpu(), expected, atol=1e-4, rtol=1e-4)


# -- (e) registry errors --------------------------------------------------------------------------


@pytest.mark.parametrize("name", AGENT_NAMES)
def test_make_agent_rejects_unknown_config_keys(name: str) -> None:
    with pytest.raises(ValueError, match="not_a_field") as err:
        agents.make_agent(name, bits_case()[0], device="cpu", not_a_field=1)
    assert "frame_size" in str(err.value)  # the allowed keys are listed


def test_make_agent_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="no_such_agent") as err:
        agents.make_agent("no_such_agent", bits_case()[0], device="cpu")
    for name in AGENT_NAMES:
        assert name in str(err.value)


@pytest.mark.parametrize("name", AGENT_NAMES)
def test_register_agent_refuses_duplicates(name: str) -> None:
    info = agent_info(name)
    with pytest.raises(ValueError, match="already registered"):
        agents.register_agent(name, info.config_cls, info.builder)
    assert agents.list_agents() == AGENT_NAMES


def test_register_agent_refuses_a_config_that_is_not_an_agent_config() -> None:
    with pytest.raises(TypeError, match="AgentConfig"):
        agents.register_agent("not_registered_agent", dict, lambda n, c: None)  # type: ignore[arg-type]
    assert "not_registered_agent" not in agents.list_agents()


# -- (f), (g) the token encoder ---------------------------------------------------------------------


def test_padding_frame_encodes_to_zeros() -> None:
    bag = PositionEncodedBag(vocab_size=12, dim=5)
    empty = torch.zeros(2, 3, 6, dtype=torch.long)  # (B, T, W) of padding ids
    assert torch.equal(bag(empty), torch.zeros(2, 3, 5))
    # trailing padding adds nothing: the same sentence with and without a padded tail
    short = torch.tensor([[4, 7, 2]])
    padded = torch.tensor([[4, 7, 2, 0, 0, 0]])
    torch.testing.assert_close(bag(padded), bag(short))


@pytest.mark.parametrize("name", AGENT_NAMES)
def test_agent_token_encoder_maps_padding_to_zeros(name: str) -> None:
    spec, _ = tokens_case()
    agent = build(name, spec)
    frames = torch.zeros(3, spec.input_size, dtype=torch.long)  # (B, W)
    assert torch.equal(agent.encoder(frames), torch.zeros(3, agent.config.frame_size))


def test_position_encoding_matches_the_paper_by_hand() -> None:
    # l_kj = (1 - j/J) - (k/d)(1 - 2j/J), j = 1..J words, k = 1..d dims; zero past J
    J, W, d = 3, 4, 2
    expected = torch.tensor(
        [
            # k=1 (k/d = 1/2)          k=2 (k/d = 1)
            [(1 - 1 / 3) - 0.5 * (1 - 2 / 3), (1 - 1 / 3) - 1.0 * (1 - 2 / 3)],  # j=1: 1/2, 1/3
            [(1 - 2 / 3) - 0.5 * (1 - 4 / 3), (1 - 2 / 3) - 1.0 * (1 - 4 / 3)],  # j=2: 1/2, 2/3
            [(1 - 3 / 3) - 0.5 * (1 - 6 / 3), (1 - 3 / 3) - 1.0 * (1 - 6 / 3)],  # j=3: 1/2, 1
            [0.0, 0.0],  # j=4 > J: padding
        ]
    )
    torch.testing.assert_close(expected[:3, 0], torch.full((3,), 0.5))  # sanity of the hand values
    torch.testing.assert_close(expected[:3, 1], torch.tensor([1 / 3, 2 / 3, 1.0]))
    got = position_encoding(torch.tensor(J), W, d)  # (W, d)
    torch.testing.assert_close(got, expected)
    # batched: a second sentence of 1 word only weights its first position, with l_k1 = k/d
    both = position_encoding(torch.tensor([J, 1]), W, d)  # (2, W, d)
    torch.testing.assert_close(both[0], expected)
    torch.testing.assert_close(both[1], torch.tensor([[0.5, 1.0], [0, 0], [0, 0], [0, 0]]))


def test_fixed_and_reference_position_encodings_use_the_frame_width() -> None:
    # "fixed": the paper's formula with J = W for every sentence; "reference": 1 + 4(k-(d+1)/2)(j-(W+1)/2)/(dW)
    W, d = 4, 2
    fixed = position_encoding(torch.tensor([3, 1]), W, d, "fixed")  # (2, W, d)
    for j in range(1, W + 1):
        for k in range(1, d + 1):
            value = (1 - j / W) - (k / d) * (1 - 2 * j / W)
            assert fixed[0, j - 1, k - 1].item() == pytest.approx(value if j <= 3 else 0.0)
            assert fixed[1, j - 1, k - 1].item() == pytest.approx(value if j <= 1 else 0.0)
            reference = 1 + 4 * (k - (d + 1) / 2) * (j - (W + 1) / 2) / (d * W)
            got = position_encoding(torch.tensor(3), W, d, "reference")[j - 1, k - 1].item()
            assert got == pytest.approx(reference if j <= 3 else 0.0)
    # a word's weights do not depend on the sentence's length
    torch.testing.assert_close(fixed[0, 0], fixed[1, 0])
    with pytest.raises(ValueError, match="position"):
        position_encoding(torch.tensor(3), W, d, "bogus")
    with pytest.raises(ValueError, match="position"):
        PositionEncodedBag(vocab_size=9, dim=2, position="bogus")
    agent = agents.make_agent("memn2n", TOKEN_SPEC, device="cpu", frame_size=8, position_encoding="fixed")
    assert agent.encoder.position == "fixed"


def test_bag_is_the_position_weighted_sum_of_word_embeddings() -> None:
    torch.manual_seed(0)
    bag = PositionEncodedBag(vocab_size=9, dim=3)
    words = [5, 1, 8]
    got = bag(torch.tensor([words + [0]]))[0]  # (d,)
    emb = bag.embedding.weight.detach()
    J, d = len(words), 3
    expected = torch.zeros(d)
    for j, w in enumerate(words, start=1):
        for k in range(1, d + 1):
            expected[k - 1] += ((1 - j / J) - (k / d) * (1 - 2 * j / J)) * emb[w, k - 1]
    torch.testing.assert_close(got, expected)


def test_blocked_bag_is_independent_bags_side_by_side() -> None:
    # frame_blocks: block b is a bag of its own embedding slice, with l_kj counted within the block
    torch.manual_seed(0)
    blocked = PositionEncodedBag(vocab_size=9, dim=6, blocks=3)
    tokens = torch.tensor([[5, 1, 8, 0], [2, 0, 0, 0]])  # (B, W): 3 words and 1 word
    got = blocked(tokens)  # (B, 6)
    for b in range(3):
        single = PositionEncodedBag(vocab_size=9, dim=2)
        with torch.no_grad():
            single.embedding.weight.copy_(blocked.embedding.weight[:, 2 * b : 2 * b + 2])
        torch.testing.assert_close(got[:, 2 * b : 2 * b + 2], single(tokens))
    assert torch.equal(blocked(torch.zeros(2, 4, dtype=torch.long)), torch.zeros(2, 6))


@pytest.mark.parametrize("blocks", [0, 4, 1.5])
def test_bad_frame_blocks_are_refused(blocks: Any) -> None:
    with pytest.raises(ValueError, match="blocks"):
        PositionEncodedBag(vocab_size=9, dim=6, blocks=blocks)
    with pytest.raises(ValueError, match="frame_blocks"):
        agents.make_agent("lstm", TOKEN_SPEC, device="cpu", frame_size=6, frame_blocks=blocks, hidden_size=4)


def test_frame_blocks_shape_token_frames_and_leave_bits_alone() -> None:
    torch.manual_seed(0)
    agent = agents.make_agent("lstm", TOKEN_SPEC, device="cpu", frame_size=12, frame_blocks=3, hidden_size=4)
    assert agent.encoder.blocks == 3 and agent.encoder(tokens_case()[1]).shape == (3, 10, 12)
    spec, inputs = bits_case()
    bits_agent = agents.make_agent("lstm", spec, device="cpu", frame_size=12, frame_blocks=3, hidden_size=4)
    assert isinstance(bits_agent.encoder, torch.nn.Identity)
