"""The bAbI reproduction benchmark (``benchmarks.babi``): paper data, runs, resume, report.

Tests that train read the real data from ``$MEMTASKS_BABI_DIR`` and skip when it is
absent; the paper-table and report tests run on synthetic records.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from benchmarks import babi
from benchmarks.babi import RECORD_VERSION, RunConfig, cell_path, parse_ints, report, run_cell, summary_table
from benchmarks.babi_paper import FAIL_THRESHOLD, PAPER_COLUMNS, paper_column

TINY = {"agent_config": {"frame_size": 32, "embedding_size": 8}}
"""A small MemN2N for the fast tests (4 blocks of 8: the protocol's embedding="blocks")."""


@pytest.fixture(scope="session")
def babi_dir() -> Path:
    value = os.environ.get("MEMTASKS_BABI_DIR")
    if not value:
        pytest.skip("bAbI data absent: $MEMTASKS_BABI_DIR is not set (see `memtasks data babi`)")
    path = Path(value)
    if not (path / "en").is_dir():
        pytest.skip(f"bAbI data absent: $MEMTASKS_BABI_DIR={value} has no en/ folder")
    return path


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


# -- the paper's numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize("agent,size", [("memn2n", "1k"), ("memn2n", "10k")])
def test_paper_columns_average_to_their_stated_summary(agent: str, size: str) -> None:
    column = paper_column(agent, size)
    assert column is not None and column.errors is not None
    assert sorted(column.errors) == list(range(1, 21))
    assert abs(np.mean(list(column.errors.values())) - column.mean) <= 0.05  # the paper rounds to 0.1
    assert sum(e > FAIL_THRESHOLD for e in column.errors.values()) == column.failed


def test_paper_summaries_match_the_reference_file() -> None:
    assert (PAPER_COLUMNS[("memn2n", "1k")].mean, PAPER_COLUMNS[("memn2n", "1k")].failed) == (13.9, 11)
    assert (PAPER_COLUMNS[("memn2n", "10k")].mean, PAPER_COLUMNS[("memn2n", "10k")].failed) == (4.2, 3)
    assert (PAPER_COLUMNS[("lstm", "1k")].mean, PAPER_COLUMNS[("lstm", "1k")].failed) == (51.3, 20)
    assert (PAPER_COLUMNS[("lstm", "10k")].mean, PAPER_COLUMNS[("lstm", "10k")].failed) == (36.4, 16)
    assert paper_column("ntm", "1k") is None


# -- configuration ------------------------------------------------------------------------------------


def test_parse_ints() -> None:
    assert parse_ints("1-3,7") == [1, 2, 3, 7]
    assert parse_ints("0,1,2") == [0, 1, 2]
    with pytest.raises(ValueError, match="must lie in"):
        parse_ints("0-2", 1, 20)
    with pytest.raises(ValueError, match="ranges"):
        parse_ints("one")


def test_parse_overrides() -> None:
    overrides = babi.parse_overrides(["head_bias=false", 'agent_config.weight_tying="layerwise"',
                                      "agent_config.frame_blocks=3", "lr=0.02"])  # fmt: skip
    assert overrides == {"head_bias": False, "lr": 0.02,
                         "agent_config": {"weight_tying": "layerwise", "frame_blocks": 3}}  # fmt: skip
    protocol = RunConfig(1, "memn2n", 0, overrides=overrides).protocol()
    assert protocol.agent_config["weight_tying"] == "layerwise" and protocol.agent_config["hops"] == 3
    with pytest.raises(ValueError, match="FIELD=JSON"):
        babi.parse_overrides(["head_bias"])
    with pytest.raises(ValueError, match="weight_tying: the value must be JSON"):
        babi.parse_overrides(["agent_config.weight_tying=layerwise"])


def test_main_refuses_overrides_into_the_protocols_folder(capsys) -> None:
    assert babi.main(["--tasks", "1", "--override", "head_bias=false", "--out", "results/babi"]) == 2
    assert "need their own --out" in capsys.readouterr().err
    assert babi.main(["--tasks", "1", "--override", "nonsense=1", "--out", "x"]) == 2
    assert "unknown protocol override" in capsys.readouterr().err


def test_run_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="agent must be one of"):
        RunConfig(1, "gru", 0)
    with pytest.raises(ValueError, match="task must be"):
        RunConfig(21, "memn2n", 0)
    with pytest.raises(ValueError, match="epochs"):
        RunConfig(1, "memn2n", 0, epochs=0)
    with pytest.raises(ValueError, match="unknown protocol override"):
        RunConfig(1, "memn2n", 0, overrides={"learning_rate": 1.0})


def test_learning_rate_schedule() -> None:
    protocol = babi.PROTOCOLS["memn2n"]
    assert babi.learning_rate(protocol, 0, linear=True) == 0.005
    assert babi.learning_rate(protocol, 20, linear=False) == 0.01
    assert babi.learning_rate(protocol, 25, linear=False) == 0.005
    assert babi.learning_rate(protocol, 99, linear=False) == 0.01 / 8
    assert babi.learning_rate(babi.PROTOCOLS["lstm"], 99, linear=False) == 1e-3
    # the authors' code restarts the halving when linear start ends: lr_halve_from=20
    restart = dataclasses.replace(protocol, lr=0.005, lr_halve_from=20)
    assert babi.learning_rate(restart, 20, linear=False) == 0.005
    assert babi.learning_rate(restart, 44, linear=False) == 0.005
    assert babi.learning_rate(restart, 45, linear=False) == 0.0025
    assert babi.learning_rate(restart, 5, linear=True) == 0.005


def test_memn2n_protocol_is_the_papers_construction() -> None:
    """Per-hop position-encoded embeddings (K + 1 bags used as B = A^1, C^1..C^K), memory of sentences only."""
    config = babi.PROTOCOLS["memn2n"].agent_config
    assert config["embedding"] == "blocks" and config["weight_tying"] == "adjacent"
    assert config["frame_blocks"] == config["hops"] + 1
    assert config["frame_size"] == config["frame_blocks"] * config["embedding_size"] == 80
    assert babi.PROTOCOLS["memn2n"].per_question
    assert config["empty_memories"]  # the authors' fixed memory with empty slots in the softmax
    assert not babi.PROTOCOLS["lstm"].per_question and not babi.PROTOCOLS["ntm"].per_question


def test_10k_memn2n_adds_relu_between_hops_and_overrides_still_win() -> None:
    """The paper's 10k column (PE LS RN*) is the 1k protocol plus a ReLU between hops."""
    assert not RunConfig(1, "memn2n", 0, size="1k").protocol().agent_config.get("relu_between_hops", False)
    ten_k = RunConfig(1, "memn2n", 0, size="10k").protocol()
    assert ten_k.agent_config["relu_between_hops"] is True
    assert ten_k.agent_config["hops"] == 3  # the rest of the agent config is kept
    assert not RunConfig(1, "lstm", 0, size="10k").protocol().agent_config.get("relu_between_hops", False)
    off = RunConfig(1, "memn2n", 0, size="10k", overrides={"agent_config": {"relu_between_hops": False}})
    assert off.protocol().agent_config["relu_between_hops"] is False


def test_protocol_options_head_bias_clip_and_empty_memories(babi_dir: Path) -> None:
    overrides = {"head_bias": False, "agent_config": {"empty_memories": True}}
    config = RunConfig(1, "memn2n", 0, data_dir=str(babi_dir), overrides=overrides)
    splits = babi._load_splits(config)
    agent, _ = babi._build(config, config.protocol(), splits)
    assert agent.head.bias is None and agent.core.empty_memories
    # the authors' fixed memory: as many slots as the longest story, not max(50, ...)
    assert agent.core.memory_size == max(task.max_frames for task in splits.values()) - 1
    default, _ = babi._build(RunConfig(1, "memn2n", 0, data_dir=str(babi_dir)), babi.PROTOCOLS["memn2n"], splits)
    assert default.head.bias is not None


@pytest.mark.parametrize("per_parameter", [False, True])
def test_clip_gradients_globally_or_per_parameter(per_parameter: bool) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 1))
    protocol = dataclasses.replace(babi.PROTOCOLS["memn2n"], clip_norm=1.0, clip_per_parameter=per_parameter)
    for p, scale in zip(model.parameters(), (10.0, 0.01, 5.0, 3.0)):
        p.grad = torch.full_like(p, scale)
    small = model[0].bias.grad.clone()  # norm 0.017 < 1
    babi.clip_gradients(model, protocol)
    norms = [p.grad.norm().item() for p in model.parameters()]
    if per_parameter:
        assert all(n <= 1.0 + 1e-5 for n in norms) and norms[0] == pytest.approx(1.0)
        torch.testing.assert_close(model[0].bias.grad, small)  # under the cap: untouched
    else:
        assert sum(n * n for n in norms) ** 0.5 == pytest.approx(1.0, rel=1e-4)
        assert model[0].bias.grad.norm().item() < small.norm().item()


def test_splits_follow_the_protocols_sequence_layout(babi_dir: Path) -> None:
    memn2n = babi._load_splits(RunConfig(1, "memn2n", 0, data_dir=str(babi_dir)))
    lstm = babi._load_splits(RunConfig(1, "lstm", 0, data_dir=str(babi_dir)))
    for split in ("train", "valid", "test"):
        assert memn2n[split].per_question and not lstm[split].per_question
        assert memn2n[split].num_sequences == memn2n[split].num_questions == lstm[split].num_questions
    config = RunConfig(1, "memn2n", 0, data_dir=str(babi_dir), overrides={"per_question": False})
    assert not babi._load_splits(config)["train"].per_question


# -- report from synthetic records --------------------------------------------------------------------


def _record(task: int, agent: str, seed: int, valid: float, test: float) -> dict[str, Any]:
    return {
        "version": RECORD_VERSION, "task": task, "agent": agent, "seed": seed, "size": "1k",
        "valid_error": valid, "test_error": test, "best_epoch": 3, "epochs_run": 5, "epochs_planned": 5,
        "stopped": "epochs", "wall_s": 1.0, "num_parameters": 10, "test_questions": 1000,
        "test_by_length": [{"length": 10, "questions": 1000, "errors": round(1000 * test)}],
        "test_by_context": [{"context": 2, "questions": 500, "errors": round(500 * test)},
                            {"context": 12, "questions": 500, "errors": round(500 * test)}],
    }  # fmt: skip


def _write(out: Path, record: dict[str, Any]) -> None:
    path = cell_path(out, RunConfig(record["task"], record["agent"], record["seed"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def test_report_from_synthetic_records(tmp_path: Path) -> None:
    # task 1: seeds' test errors 2, 4, 9 % (mean 5, std 3.61); seed 1 has the lowest validation error
    # task 2: 10, 20, 30 % (mean 20); the lowest validation error is seed 2 (test 30)
    for seed, (valid, test) in enumerate([(0.05, 0.02), (0.01, 0.04), (0.02, 0.09)]):
        _write(tmp_path, _record(1, "memn2n", seed, valid, test))
    for seed, (valid, test) in enumerate([(0.3, 0.10), (0.2, 0.20), (0.1, 0.30)]):
        _write(tmp_path, _record(2, "memn2n", seed, valid, test))
    _write(tmp_path, _record(1, "lstm", 0, 0.5, 0.5))
    records = babi.load_records(tmp_path, "1k")
    summary = summary_table(records, "1k").set_index(["agent", "task"])
    assert summary.loc[("memn2n", 1), "mean"] == pytest.approx(5.0)
    assert summary.loc[("memn2n", 1), "std"] == pytest.approx(np.std([2, 4, 9], ddof=1))
    assert summary.loc[("memn2n", 1), "selected"] == pytest.approx(4.0)
    assert summary.loc[("memn2n", 2), "selected"] == pytest.approx(30.0)
    assert math.isnan(summary.loc[("lstm", 1), "std"])

    paths = report(tmp_path, "1k", command="python -m benchmarks.babi --tasks 1-2")
    assert {p.name for p in paths} == {"table_1k.md", "runs_1k.csv", "error_by_length_1k.png"}
    table = (tmp_path / "table_1k.md").read_text()
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("|")}
    # columns: task, paper, memn2n mean, memn2n selected, paper LSTM (stated summary only), lstm mean, lstm selected
    mean_row = [c.strip() for c in rows["mean error (%)"].strip("|").split("|")]
    failed_row = [c.strip() for c in rows[f"failed tasks (> {FAIL_THRESHOLD:g}%)"].strip("|").split("|")]
    assert mean_row[1] == "**4.2**"  # paper's tasks 1 and 2: (0.0 + 8.3) / 2
    assert mean_row[2] == "**12.5**" and mean_row[3] == "**17.0**"  # (5 + 20) / 2 and (4 + 30) / 2
    assert mean_row[4] == "51.3 (all 20, stated)" and failed_row[4] == "20 (all 20, stated)"
    assert mean_row[5] == "**50.0** (1 tasks)"
    assert failed_row[1:4] == ["**1**", "**1**", "**1**"]  # 5.0 is not > 5
    assert "python -m benchmarks.babi --tasks 1-2" in table
    assert "ours memn2n (3 seeds) mean ± std" in table and "ours lstm (1 seed) mean ± std" in table
    tidy = __import__("pandas").read_csv(tmp_path / "runs_1k.csv")
    assert list(tidy.columns) == ["task", "agent", "seed", "metric", "value"]
    assert len(tidy) == 7 * 6
    assert tidy.query("task == 2 and seed == 2 and metric == 'test_error'")["value"].item() == pytest.approx(30.0)


def test_report_names_protocol_changes_of_its_records(tmp_path: Path) -> None:
    """An ablation's records (or an older protocol's) are labelled in the table, never passed off as the protocol."""
    today = json.loads(json.dumps(dataclasses.asdict(RunConfig(1, "memn2n", 0).protocol())))
    ablation = {**today, "agent_config": {**today["agent_config"], "weight_tying": "layerwise"}}
    older = {k: v for k, v in today.items() if k != "head_bias"}  # a field added later, at its default
    _write(tmp_path, {**_record(1, "memn2n", 0, 0.1, 0.1), "protocol": ablation})
    _write(tmp_path, {**_record(1, "memn2n", 1, 0.1, 0.1), "protocol": older})
    _write(tmp_path, {**_record(1, "memn2n", 2, 0.1, 0.1), "protocol": today})
    report(tmp_path, "1k")
    table = (tmp_path / "table_1k.md").read_text()
    assert ("memn2n records (against today's `PROTOCOLS` in benchmarks/babi.py): "
            'agent_config.weight_tying = "layerwise" (1 runs).') in table
    assert "head_bias" not in table.split("## Protocol")[0]


# -- real runs (need the data) ------------------------------------------------------------------------


def test_tiny_run_writes_record_and_report_and_resume_skips(tmp_path: Path, babi_dir: Path, monkeypatch) -> None:
    config = RunConfig(1, "memn2n", 0, epochs=2, data_dir=str(babi_dir), overrides=TINY)
    record = run_cell(config, tmp_path)
    path = cell_path(tmp_path, config)
    assert path.is_file() and json.loads(path.read_text()) == record
    assert record["epochs_run"] == 2 and record["stopped"] == "epochs" and 1 <= record["best_epoch"] <= 2
    assert 0.0 <= record["test_error"] <= 1.0 and record["test_questions"] == 1000
    assert 0.0 <= record["train_error"] <= 1.0
    assert sum(e["questions"] for e in record["test_by_context"]) == 1000
    assert [h["epoch"] for h in record["history"]] == [1, 2]
    assert not (tmp_path / "runs" / "1k" / "ckpt").exists() or not any((tmp_path / "runs" / "1k" / "ckpt").iterdir())

    # a second run of the same cell does not train: building the data would fail here
    monkeypatch.setattr(babi, "_load_splits", lambda config: (_ for _ in ()).throw(AssertionError("retrained")))
    assert run_cell(config, tmp_path) == record
    report(tmp_path, "1k")
    assert "| 1 | 0.0 |" in (tmp_path / "table_1k.md").read_text()
    assert (tmp_path / "error_by_length_1k.png").stat().st_size > 0


def test_main_skips_finished_runs(tmp_path: Path, babi_dir: Path, capsys) -> None:
    argv = ["--agents", "memn2n", "--tasks", "1", "--seeds", "0", "--epochs", "1", "--out", str(tmp_path), "--quiet"]
    assert babi.main(argv) == 0
    first = cell_path(tmp_path, RunConfig(1, "memn2n", 0)).read_text()
    assert babi.main(argv) == 0
    assert "1 already finished, 0 to do" in capsys.readouterr().out
    assert cell_path(tmp_path, RunConfig(1, "memn2n", 0)).read_text() == first
    assert babi.main(["report", "--out", str(tmp_path)]) == 0


def test_interrupted_run_resumes_to_the_same_numbers(tmp_path: Path, babi_dir: Path) -> None:
    """Kill a run after epoch 3 (checkpoint after every epoch), resume it: same record as uninterrupted."""
    common = dict(epochs=4, data_dir=str(babi_dir), overrides=TINY, checkpoint_every_s=0.0)
    straight = run_cell(RunConfig(1, "memn2n", 0, **common), tmp_path / "a")

    class Killed(Exception):
        pass

    def kill(epoch: int, message: str) -> None:
        if epoch == 3:
            raise Killed

    config = RunConfig(1, "memn2n", 0, **common)
    with pytest.raises(Killed):
        run_cell(config, tmp_path / "b", progress=kill)
    assert not cell_path(tmp_path / "b", config).exists()
    resumed = run_cell(config, tmp_path / "b")
    for key in ("valid_error", "test_error", "best_epoch", "epochs_run", "history", "test_by_context"):
        assert resumed[key] == straight[key], key


def test_wall_clock_cap_records_epochs_run(tmp_path: Path, babi_dir: Path) -> None:
    config = RunConfig(1, "memn2n", 0, epochs=1000, minutes_per_run=0.02, data_dir=str(babi_dir), overrides=TINY)
    record = run_cell(config, tmp_path)
    assert record["stopped"] == "time" and 1 <= record["epochs_run"] < 1000
    assert record["history"][-1]["epoch"] == record["epochs_run"]


def test_memn2n_learns_qa1_within_a_minute(tmp_path: Path, babi_dir: Path) -> None:
    """The paper's protocol (d=20, 3 hops, LS, RN) on qa1 (1k): < 10% validation error within 60 s.

    About 3 s on one idle core (0 % validation error from epoch 30), so not marked slow.
    """
    config = RunConfig(1, "memn2n", 0, epochs=40, data_dir=str(babi_dir))
    record = run_cell(config, tmp_path)
    assert record["wall_s"] < 60.0
    assert record["valid_error"] < 0.10, record["history"]


SMALL_BY_AGENT = {
    "memn2n": TINY["agent_config"],
    "lstm": {"frame_size": 16, "hidden_size": 16},
    "ntm": {"frame_size": 16, "controller_size": 16, "memory_rows": 16, "memory_width": 8},
    "dnc": {"frame_size": 16, "controller_size": 16, "memory_rows": 16, "memory_width": 8},
    "transformer": {"frame_size": 16, "d_model": 16, "num_layers": 1, "num_heads": 2, "ff_size": 32},
}


@pytest.mark.parametrize("agent", babi.AGENTS)
def test_every_protocol_runs_an_epoch(agent: str, tmp_path: Path, babi_dir: Path) -> None:
    """Every agent the benchmark knows (its protocol, smaller sizes) trains and is scored on qa1."""
    config = RunConfig(1, agent, 0, epochs=1, data_dir=str(babi_dir), overrides={"agent_config": SMALL_BY_AGENT[agent]})
    record = run_cell(config, tmp_path)
    assert record["epochs_run"] == 1 and record["test_questions"] == 1000
    assert 0.0 <= record["test_error"] <= 1.0 and math.isfinite(record["train_error"])
