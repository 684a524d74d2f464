"""The training harness: loss, checkpoints, train(), evaluate() and their command lines."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import agents.base
from agents import load_checkpoint, make_agent, save_checkpoint, sequence_loss
from agents.base import AgentConfig, AgentInfo, Core
from benchmarks.evaluate import evaluate, evaluate_checkpoint
from benchmarks.train import TrainConfig, parse_kwargs, train
from memtasks import TaskSpec, make_task
from memtasks.cli import main

TASK = "memtasks/Copy-v0"
TASK_KWARGS = {"bits": 4, "max_length": 3}
LSTM_KWARGS = {"hidden_size": 8, "num_layers": 1}


def tiny(**overrides) -> TrainConfig:
    """A run that takes well under a second."""
    fields = dict(
        task=TASK, agent="lstm", task_kwargs=TASK_KWARGS, agent_kwargs=LSTM_KWARGS,
        batch_size=4, steps=6, log_every=2, threads=1,
    )
    return TrainConfig(**{**fields, **overrides})


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# -- sequence_loss ------------------------------------------------------------------------------------


def test_bit_loss_is_the_mean_bce_over_scored_elements_and_ignores_the_rest():
    spec = TaskSpec("bits", 3, "bits", 2)
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 2)
    targets = torch.randint(0, 2, (2, 3, 2)).float()
    mask = torch.tensor([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    p = torch.sigmoid(logits)
    bce = -(targets * p.log() + (1 - targets) * (1 - p).log())
    expected = (bce * mask[..., None]).sum() / (3 * 2)  # 3 scored steps x 2 bits
    torch.testing.assert_close(sequence_loss(logits, targets, mask, spec), expected)
    wild = logits.clone()
    wild[mask == 0] = 1e4  # unscored steps do not count
    torch.testing.assert_close(sequence_loss(wild, targets, mask, spec), expected)


def test_class_loss_is_the_mean_cross_entropy_over_scored_frames():
    spec = TaskSpec("tokens", 2, "classes", 4, vocab=("<pad>", "a"))
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, requires_grad=True)
    targets = torch.tensor([[1, 2, 3], [0, 999, 2]])  # 999 sits on an unscored frame
    mask = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    log_p = torch.log_softmax(logits, -1)
    expected = -(log_p[0, 0, 1] + log_p[0, 2, 3] + log_p[1, 0, 0]) / 3
    loss = sequence_loss(logits, targets, mask, spec)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert logits.grad[:, 1].abs().sum() == 0  # no gradient from unscored frames


def test_loss_errors():
    spec = TaskSpec("bits", 3, "bits", 2)
    with pytest.raises(ValueError, match="no scored step"):
        sequence_loss(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), torch.zeros(1, 2), spec)
    with pytest.raises(ValueError, match=r"logits must have shape \(1, 2, 2\)"):
        sequence_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, 2), torch.ones(1, 2), spec)


# -- checkpoints ---------------------------------------------------------------------------------------


def test_checkpoint_round_trip_reproduces_logits(tmp_path):
    task = make_task(TASK, **TASK_KWARGS)
    torch.manual_seed(3)
    agent = make_agent("lstm", task.spec, device="cpu", **LSTM_KWARGS)
    path = save_checkpoint(tmp_path / "sub" / "model.pt", agent, TASK, TASK_KWARGS, extra={"step": 7, "note": [1, 2.5]})
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary file left behind

    payload = torch.load(path, weights_only=True)  # plain data only
    assert payload["agent"] == "lstm" and payload["config"]["hidden_size"] == 8
    assert payload["extra"] == {"step": 7, "note": [1, 2.5]}

    rng_before = torch.get_rng_state()
    loaded, task_id, task_kwargs = load_checkpoint(path, device="cpu")
    assert torch.equal(torch.get_rng_state(), rng_before)  # loading does not disturb torch's RNG
    assert (task_id, task_kwargs) == (TASK, TASK_KWARGS)
    assert not loaded.training
    inputs = torch.as_tensor(task.sample(5, np.random.default_rng(0)).inputs)
    with torch.no_grad():
        torch.testing.assert_close(loaded(inputs), agent(inputs), rtol=0, atol=0)


def test_checkpoint_refuses_non_plain_data_and_unknown_versions(tmp_path):
    agent = make_agent("lstm", make_task(TASK, **TASK_KWARGS).spec, device="cpu", **LSTM_KWARGS)
    with pytest.raises(TypeError, match=r"extra\['bad'\] is a set"):
        save_checkpoint(tmp_path / "a.pt", agent, TASK, TASK_KWARGS, extra={"bad": {1, 2}})
    assert not (tmp_path / "a.pt").exists()
    torch.save({"format_version": 99}, tmp_path / "b.pt")
    with pytest.raises(ValueError, match="format_version 99"):
        load_checkpoint(tmp_path / "b.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize(
    "write, match",
    [
        (lambda p: p.write_bytes(b"not a checkpoint at all"), "torch.load cannot read it"),
        (lambda p: torch.save({"weight": torch.zeros(2)}, p), r"no format_version"),  # another model's state dict
        (lambda p: torch.save({"format_version": 1, "agent": "lstm"}, p), "missing config, spec, state_dict"),
    ],
)
def test_foreign_or_corrupt_checkpoints_give_one_line_naming_the_file(tmp_path, capsys, write, match):
    path = tmp_path / "bad.pt"
    write(path)
    with pytest.raises(ValueError, match=match) as err:
        load_checkpoint(path)
    assert "bad.pt" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--checkpoint", str(path), "--lengths", "1"])
    assert exit_.value.code == 2
    stderr = capsys.readouterr().err
    assert "bad.pt" in stderr and "Traceback" not in stderr


def test_checkpoint_whose_weights_do_not_fit_its_agent(tmp_path):
    agent = make_agent("lstm", make_task(TASK, **TASK_KWARGS).spec, device="cpu", **LSTM_KWARGS)
    path = save_checkpoint(tmp_path / "model.pt", agent, TASK, TASK_KWARGS)
    payload = torch.load(path, weights_only=True)
    payload["config"]["hidden_size"] = 9  # the weights are for 8 units
    torch.save(payload, path)
    with pytest.raises(ValueError, match="does not rebuild into a memtasks agent: RuntimeError"):
        load_checkpoint(path)


# -- train ---------------------------------------------------------------------------------------------


def test_cli_train_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main([
        "train", "--task", TASK, "--agent", "lstm", "--seed", "0", "--batch-size", "4", "--steps", "5",
        "--log-every", "2", "--task-kwargs", "bits=4,max_length=3", "--agent-kwargs", '{"hidden_size": 8, "num_layers": 1}',
        "--optimizer", "rmsprop", "--lr", "1e-3", "--clip-value", "10", "--threads", "1", "--no-progress", "--out", str(out),
    ])
    assert rc == 0
    assert "ok: reached the step limit (steps=5)" in capsys.readouterr().out
    rows = read_csv(out / "train.csv")
    assert [int(r["step"]) for r in rows] == [2, 4, 5]  # every 2 steps, and at the end
    assert list(rows[0]) == [
        "step", "sequences_seen", "wall_s", "loss", "grad_norm",
        "cost_bits", "bit_errors", "seq_accuracy", "curriculum_max_length",
    ]
    assert rows[-1]["sequences_seen"] == "20" and rows[-1]["curriculum_max_length"] == "3"
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "ok" and result["steps"] == 5 and result["sequences_seen"] == 20
    assert result["config"]["optimizer"] == "rmsprop" and result["config"]["clip_value"] == 10.0
    assert result["final"]["step"] == 5 and result["num_parameters"] > 0
    # the CPU is part of the provenance: compiled kernels differ per vector instruction set, and so do the floats
    assert {"cpu", "cpu_capability", "platform", "git_commit"} <= set(result["provenance"])
    payload = torch.load(out / "model.pt", weights_only=True)
    assert payload["extra"]["steps"] == 5


def test_same_seed_gives_the_same_numbers(tmp_path):
    a = train(tiny(seed=1), tmp_path / "a", progress=False)
    b = train(tiny(seed=1), tmp_path / "b", progress=False)
    c = train(tiny(seed=2), tmp_path / "c", progress=False)
    fa, fb, fc = (pd.read_csv(tmp_path / d / "train.csv").drop(columns="wall_s") for d in "abc")
    pd.testing.assert_frame_equal(fa, fb)
    assert not fa["loss"].equals(fc["loss"])
    assert a.final["loss"] == b.final["loss"] != c.final["loss"]
    sa, sb = (torch.load(tmp_path / d / "model.pt", weights_only=True)["state_dict"] for d in "ab")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_curriculum_grows_and_until_bit_errors_converges(tmp_path):
    # thresholds so high that every check passes: the max length grows every 2 steps, then
    # the run converges once the window is full again and validation confirms
    config = tiny(
        steps=50, log_every=1, curriculum="grow", curriculum_start=1, curriculum_threshold=1e6,
        running_window=2, until_bit_errors=1e6, validation_samples=8,
    )
    result = train(config, tmp_path, progress=False)
    rows = read_csv(tmp_path / "train.csv")
    assert [int(r["curriculum_max_length"]) for r in rows] == [1, 1, 2, 2, 3, 3]
    assert result.status == "converged" and result.steps == 6
    assert result.converged_sequences == 24 and result.converged_wall_s <= result.wall_s
    assert "validation bit errors" in result.message


def test_minutes_budget_alone(tmp_path):
    result = train(tiny(steps=None, minutes=1e-4), None, progress=False)
    assert result.status == "ok" and "minutes=0.0001" in result.message


@dataclass
class _BrokenConfig(AgentConfig):
    """A test core that turns bad at a given call of its forward pass."""

    bad_call: int = 3
    """1-based forward call that goes wrong."""
    mode: str = "nan_loss"
    """``"nan_loss"``, ``"nan_grad"`` (finite loss, NaN gradient) or ``"raise"``."""


class _BrokenCore(Core):
    def __init__(self, input_size: int, config: _BrokenConfig) -> None:
        super().__init__()
        self.linear = nn.Linear(input_size, 4)
        self.output_size = 4
        self.config = config
        self.calls = 0

    def initial_state(self, batch_size, device):
        return None

    def step(self, x, state):
        return self.linear(x), state

    def forward(self, x):
        self.calls += 1
        y = self.linear(x)
        if self.calls >= self.config.bad_call:
            if self.config.mode == "nan_loss":
                return y * float("nan")
            if self.config.mode == "nan_grad":
                return y + (y * 0).sqrt()  # value unchanged; d sqrt(0) = inf, times 0 = NaN
            raise RuntimeError("boom")
        return y


@pytest.fixture
def broken_agent(monkeypatch):
    """Registers the agent ``broken`` for one test only."""
    monkeypatch.setitem(agents.base._AGENTS, "broken", AgentInfo("broken", _BrokenConfig, _BrokenCore, "test"))
    return "broken"


@pytest.mark.parametrize(
    "mode, status, message",
    [
        ("nan_loss", "diverged", "loss is nan at step 3"),
        ("nan_grad", "diverged", "gradient norm is nan at step 3"),
        ("raise", "failed", "step 3: RuntimeError: boom"),
    ],
)
def test_divergence_and_failure_stop_the_run_and_are_recorded(tmp_path, broken_agent, mode, status, message):
    config = tiny(agent=broken_agent, agent_kwargs={"mode": mode}, steps=10, log_every=1)
    result = train(config, tmp_path, progress=False)
    assert result.status == status and message in result.message
    assert result.steps == 2 and result.final["step"] == 2
    recorded = json.loads((tmp_path / "result.json").read_text())
    assert recorded["status"] == status and message in recorded["message"]
    assert [r["step"] for r in read_csv(tmp_path / "train.csv")] == ["1", "2"]
    state = torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values())  # the bad step never reached the weights


def test_divergence_between_log_rows_is_found_at_the_row_and_never_reaches_the_weights(tmp_path, broken_agent):
    """Nothing is read back per step: a NaN at step 3 is seen at the row of step 10, and the run ends with
    the weights of step 2 (every update from step 3 on was undone on the device)."""
    config = tiny(agent=broken_agent, agent_kwargs={"mode": "nan_loss"}, steps=20, log_every=10)
    result = train(config, tmp_path, progress=False)
    assert result.status == "diverged" and "loss is nan at step 3" in result.message
    assert result.steps == 2 and result.sequences_seen == 2 * config.batch_size
    assert [r["step"] for r in read_csv(tmp_path / "train.csv")] == ["2"]  # the good steps only
    state = torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"]
    reference = train(tiny(agent=broken_agent, agent_kwargs={"mode": "nan_loss", "bad_call": 99}, steps=2),
                      tmp_path / "ref", progress=False)  # the same seed, stopped after step 2
    assert reference.status == "ok"
    expected = torch.load(tmp_path / "ref" / "model.pt", weights_only=True)["state_dict"]
    for key, value in expected.items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0)  # exactly the weights after step 2


def test_select_every_keeps_the_weights_of_the_best_validation_and_leaves_training_alone(tmp_path):
    """``select_every``: the run's model.pt is the weights at the step of the lowest validation cost, exactly
    those of the same run stopped there; training (train.csv) is that of the run without selection. The
    setting (a 4-bit Copy LSTM at lr 0.1) was chosen so that the best check (step 30) is not the last (50)."""
    settings = dict(task=TASK, agent="lstm", task_kwargs={"bits": 4, "max_length": 5}, agent_kwargs={"hidden_size": 16},
                    batch_size=8, lr=0.1, log_every=10, compile=False, threads=1, validation_samples=32)  # fmt: skip
    result = train(TrainConfig(steps=50, select_every=10, **settings), tmp_path / "select", progress=False)
    checks = pd.read_csv(tmp_path / "select" / "valid.csv")
    assert checks["step"].tolist() == [10, 20, 30, 40, 50]
    best = checks.loc[checks["cost_bits"][::-1].idxmin()]  # ties: the later check
    assert result.best_step == int(best["step"]) and result.best_step < 50
    assert result.selected["cost_bits"] == pytest.approx(best["cost_bits"]) and result.best_epoch is None
    assert f"kept the weights after step {result.best_step}" in result.message
    record = json.loads((tmp_path / "select" / "result.json").read_text())
    assert record["best_step"] == result.best_step and record["config"]["select_every"] == 10
    assert torch.load(tmp_path / "select" / "model.pt", weights_only=True)["extra"]["best_step"] == result.best_step

    stopped = train(TrainConfig(steps=result.best_step, **settings), tmp_path / "stopped", progress=False)
    last = train(TrainConfig(steps=50, **settings), tmp_path / "last", progress=False)
    assert stopped.best_step is None and not (tmp_path / "last" / "valid.csv").exists()
    kept, at_best, at_end = (
        torch.load(tmp_path / name / "model.pt", weights_only=True)["state_dict"]
        for name in ("select", "stopped", "last")
    )
    for key, value in at_best.items():
        torch.testing.assert_close(kept[key], value, rtol=0, atol=0)
    assert any(not torch.equal(kept[key], at_end[key]) for key in kept)
    without = pd.read_csv(tmp_path / "last" / "train.csv").drop(columns="wall_s")
    assert pd.read_csv(tmp_path / "select" / "train.csv").drop(columns="wall_s").equals(without)


def test_same_length_batches_have_no_padding_and_are_recorded(tmp_path):
    from benchmarks.train import _sample_batch

    task = make_task(TASK, bits=4, min_length=1, max_length=20)
    rng = np.random.default_rng(0)
    lengths = set()
    for _ in range(40):
        batch = _sample_batch(task, 16, rng, "same")
        assert len(set(batch.lengths.tolist())) == 1 and batch.inputs.shape[1] == 2 * batch.lengths[0] + 1
        lengths.add(int(batch.lengths[0]))
    assert len(lengths) > 10  # the length still varies from batch to batch
    mixed = _sample_batch(task, 16, rng, "mixed")
    assert len(set(mixed.lengths.tolist())) > 1
    train(tiny(batch_lengths="same"), tmp_path, progress=False)
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["batching"].startswith("same") and record["config"]["batch_lengths"] == "same"
    train(tiny(), tmp_path / "auto", progress=False)  # "auto": the LSTM's choice is mixed lengths
    record = json.loads((tmp_path / "auto" / "result.json").read_text())
    assert record["batching"].startswith("mixed") and "auto" in record["batching"]


def test_cli_no_compile_runs_eagerly_and_says_so(tmp_path):
    out = tmp_path / "eager"
    args = ["train", "--task", TASK, "--agent", "ntm", "--task-kwargs", "bits=2,max_length=2",
            "--agent-kwargs", "controller_size=4,memory_rows=4,memory_width=2", "--steps", "2",
            "--no-compile", "--no-progress", "--out", str(out)]
    assert main(args) == 0
    record = json.loads((out / "result.json").read_text())
    assert record["fast_path"] == "eager (fast path off)" and record["config"]["compile"] is False
    assert record["batching"].startswith("same")  # "auto": the NTM's choice is one length per batch
    assert record["first_step_s"] > 0 and record["wall_s"] >= record["first_step_s"]


@pytest.mark.parametrize(
    "overrides, error, match",
    [
        ({"batch_size": 0}, ValueError, r"batch_size must be an integer in \[1, inf\], got 0"),
        ({"optimizer": "adagrad"}, ValueError, "optimizer must be one of adam, rmsprop, sgd, got 'adagrad'"),
        ({"steps": None, "minutes": None}, ValueError, "steps, minutes and epochs are all None"),
        ({"agent": "gru"}, ValueError, "agent must be one of lstm"),
        ({"lr": 0.0}, ValueError, "lr must be a finite number > 0"),
        ({"curriculum": "shrink"}, ValueError, "curriculum must be one of none, grow"),
        ({"lr_halve_epochs": 25}, ValueError, "lr_halve_epochs needs epochs"),
        ({"steps": 2.5}, TypeError, "steps must be an integer"),
        ({"select_every": 15, "log_every": 10}, ValueError, r"select_every must be a multiple of log_every \(10\), got 15"),
        ({"select_every": 10, "epochs": 2, "steps": None}, ValueError, "select_every is for the sampled mode"),
    ],
)
def test_bad_config_values_name_the_field(overrides, error, match):
    with pytest.raises(error, match=match):
        tiny(**overrides)


def test_config_that_does_not_fit_the_task():
    with pytest.raises(ValueError, match=r"curriculum_start: must lie in the task's training range \[1, 3\], got 5"):
        train(tiny(curriculum="grow", curriculum_start=5), progress=False)


def test_cli_train_bad_arguments_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--task", TASK, "--agent", "lstm", "--batch-size", "0", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "batch_size must be an integer in [1, inf], got 0" in capsys.readouterr().err


def test_cli_flags_come_from_the_config_fields_and_their_docstrings():
    import dataclasses

    from agents.optim import OPTIMIZERS
    from benchmarks.train import _build_parser

    actions = {a.dest: a for a in _build_parser()._actions}
    for spec in dataclasses.fields(TrainConfig):  # a new field is a new flag, with its docstring as help
        assert spec.name in actions, spec.name
        assert len(actions[spec.name].help) > 20, spec.name
    assert actions["clip_norm"].option_strings == ["--clip"] and actions["clip_norm"].metavar == "CLIP"
    assert actions["lr"].option_strings == ["--lr"] and "Learning rate" in actions["lr"].help
    assert tuple(actions["optimizer"].choices) == OPTIMIZERS and "(default: adam)" in actions["optimizer"].help
    assert actions["task"].required and actions["agent"].required and not actions["seed"].required
    assert actions["steps"].type("none") is None and actions["steps"].type("7") == 7


def test_parse_kwargs():
    assert parse_kwargs("bits=8,name=lstm,flag=true,x=null,f=0.5") == {
        "bits": 8, "name": "lstm", "flag": True, "x": None, "f": 0.5
    }
    assert parse_kwargs('{"sizes": [1, 2]}') == {"sizes": [1, 2]}
    assert parse_kwargs("") == {}
    with pytest.raises(ValueError, match="--task-kwargs: expected key=value"):
        parse_kwargs("bits", "--task-kwargs")


# -- evaluate ------------------------------------------------------------------------------------------


class _Recorder(nn.Module):
    """Returns zero logits and keeps every input batch it saw."""

    def __init__(self, output_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.output_size = output_size
        self.seen: list[torch.Tensor] = []

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.seen.append(inputs.clone())
        return torch.zeros(*inputs.shape[:2], self.output_size)


def _inputs_seen(lengths, batch_size=128, seed=7):
    task = make_task(TASK, **TASK_KWARGS)
    rec = _Recorder(task.spec.output_size)
    frame = evaluate(rec, task, lengths, samples=10, seed=seed, batch_size=batch_size)
    return rec.seen, frame


def test_evaluate_uses_the_same_sequences_for_every_agent_and_each_length_independently():
    first, frame = _inputs_seen([3, 5])
    second, _ = _inputs_seen([3, 5])
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    alone, _ = _inputs_seen([5])
    assert torch.equal(alone[0], first[1])  # length 5 does not depend on evaluating length 3 first
    chunked, _ = _inputs_seen([5], batch_size=3)
    assert [c.shape[0] for c in chunked] == [3, 3, 3, 1] and torch.equal(torch.cat(chunked), alone[0])
    other_seed, _ = _inputs_seen([5], seed=8)
    assert not torch.equal(other_seed[0], alone[0])

    assert list(frame.columns) == ["length", "metric", "value", "samples"]
    assert frame["length"].tolist() == [3] * 3 + [5] * 3
    assert frame["metric"].tolist()[:3] == ["cost_bits", "bit_errors", "seq_accuracy"]
    # zero logits: every bit costs exactly 1 bit, half of them are wrong on average
    assert frame.set_index(["length", "metric"]).loc[(5, "cost_bits"), "value"] == pytest.approx(5 * 4)


def test_evaluate_training_range_and_bad_lengths():
    seen, frame = _inputs_seen(None)
    assert set(frame["length"]) == {-1} and len(seen) == 1
    task = make_task(TASK, **TASK_KWARGS)
    with pytest.raises(ValueError, match=r"lengths: 0 is not allowed for Copy"):
        evaluate(_Recorder(4), task, [2, 0], samples=4, seed=0)


def test_evaluate_restores_the_training_mode_and_real_agents_differ(tmp_path):
    task = make_task(TASK, **TASK_KWARGS)
    torch.manual_seed(0)
    a = make_agent("lstm", task.spec, device="cpu", **LSTM_KWARGS)
    b = make_agent("lstm", task.spec, device="cpu", **LSTM_KWARGS)
    fa = evaluate(a, task, [2], samples=16, seed=0)
    assert a.training
    save_checkpoint(tmp_path / "a.pt", a, TASK, TASK_KWARGS)
    pd.testing.assert_frame_equal(evaluate_checkpoint(tmp_path / "a.pt", [2], 16, 0, device="cpu"), fa)
    assert not fa["value"].equals(evaluate(b, task, [2], samples=16, seed=0)["value"])


def test_cli_eval_writes_eval_csv(tmp_path, capsys):
    train(tiny(), tmp_path, progress=False)
    rc = main([
        "eval", "--checkpoint", str(tmp_path / "model.pt"), "--lengths", "2,6", "--samples", "8",
        "--seed", "1234", "--device", "cpu", "--out", str(tmp_path / "eval"),
    ])
    assert rc == 0
    assert "bit_errors" in capsys.readouterr().out
    frame = pd.read_csv(tmp_path / "eval" / "eval.csv")
    assert len(frame) == 2 * 3 and set(frame["length"]) == {2, 6} and (frame["samples"] == 8).all()
    assert frame["value"].map(math.isfinite).all()


# -- throughput benchmark ------------------------------------------------------------------------------


def test_throughput_benchmark_writes_a_table_of_eager_and_fast(tmp_path):
    from benchmarks.throughput import ReferenceNTM, cli

    out = tmp_path / "t.md"
    assert cli(["--agents", "lstm", "--batch-sizes", "4", "--steps", "1", "--windows", "1", "--warmup", "0",
                "--out", str(out)]) == 0
    text = out.read_text()
    assert "| lstm | " in text and "eager, mixed (seq/s)" in text and "fast, same (seq/s)" in text
    assert "- command: `python -m benchmarks.throughput --agents lstm" in text
    spec = make_task(TASK, **TASK_KWARGS).spec
    model = ReferenceNTM(spec, controller=8, rows=6, width=3)  # the baseline column's model runs and learns shapes
    x = torch.as_tensor(make_task(TASK, **TASK_KWARGS).sample(2, np.random.default_rng(0)).inputs)
    assert model(x).shape == x.shape[:2] + (spec.output_size,)
    with pytest.raises(SystemExit):
        cli(["--agents", "no-such-agent", "--batch-sizes", "4", "--out", str(out)])
