"""The bAbI benchmark through the generic runner: epoch mode, babi_1k.toml, the report and the migration."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from benchmarks import babi
from benchmarks.babi_paper import FAIL_THRESHOLD, PAPER_COLUMNS, paper_column
from benchmarks.experiment import load_experiment
from benchmarks.results import read_runs
from benchmarks.runner import run_experiment
from benchmarks.train import TrainConfig, _epoch_lr, train

BABI_1K = Path(__file__).resolve().parents[1] / "benchmarks" / "experiments" / "babi_1k.toml"

SMALL_BY_AGENT = {
    "memn2n": {"frame_size": 32, "embedding_size": 8},  # 4 blocks of 8: the protocol's embedding="blocks"
    "lstm": {"frame_size": 16, "hidden_size": 16},
    "ntm": {"frame_size": 16, "controller_size": 16, "memory_rows": 16, "memory_width": 8},
    "dnc": {"frame_size": 16, "controller_size": 16, "memory_rows": 16, "memory_width": 8},
    "transformer": {"frame_size": 16, "d_model": 16, "num_layers": 1, "num_heads": 2, "ff_size": 32},
}
"""Smaller sizes of every agent of babi_1k.toml, for the fast tests."""


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


# -- the epoch mode of the training loop ----------------------------------------------------------------


def _memn2n(**changes: Any) -> TrainConfig:
    """qa1 with the paper's MemN2N protocol (smaller embeddings), as babi_1k.toml sets it."""
    values: dict[str, Any] = dict(
        task="bAbI-qa1-v0", agent="memn2n", seed=0, steps=None, epochs=3, batch_size=32, batch_unit="scored",
        optimizer="sgd", lr=0.01, lr_halve_epochs=25, linear_start_lr=0.005, clip_norm=40.0,
        loss_reduction="sum", head_init_std=0.1, log_every=1000, device="cpu",
        task_kwargs={"per_question": True},
        agent_kwargs={**SMALL_BY_AGENT["memn2n"], "frame_blocks": 4, "embedding": "blocks", "hops": 3,
                      "linear_start": True, "linear_start_epochs": 1, "random_noise": 0.1,
                      "empty_memories": True, "init_std": 0.1, "memory_size": 10},
    )  # fmt: skip
    values.update(changes)
    return TrainConfig(**values)


def test_epoch_mode_keeps_the_best_validation_epoch(tmp_path: Path, babi_dir: Path) -> None:
    result = train(_memn2n(), tmp_path, progress=False)
    valid = pd.read_csv(tmp_path / "valid.csv")
    assert list(valid["epoch"]) == [1, 2, 3]  # one validation per epoch, none twice
    assert valid["step"].diff().dropna().nunique() == 1  # equal epochs: 900 questions / 32 -> 29 steps
    errors = list(valid["error_rate"])
    best = max(i + 1 for i, e in enumerate(errors) if e == min(errors))  # ties: the later epoch
    assert result.best_epoch == best and result.epochs_run == 3
    assert result.selected["error_rate"] == pytest.approx(min(errors))
    log = pd.read_csv(tmp_path / "train.csv")
    assert list(log["epoch"]) == [1, 2, 3]  # a row at every epoch's end
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["batching"].startswith("epochs:") and record["best_epoch"] == best

    # model.pt holds the kept weights: they score the valid split as the selection saw it
    import memtasks
    from agents import load_checkpoint
    from benchmarks.evaluate import evaluate_dataset

    agent, _, _ = load_checkpoint(tmp_path / "model.pt")
    scores = evaluate_dataset(agent, lambda split: memtasks.make_task("bAbI-qa1-v0", per_question=True, split=split))
    whole = scores[(scores["length"] == -1) & (scores["metric"] == "error_rate")].set_index("split")["value"]
    assert whole["valid"] == pytest.approx(min(errors))
    per_length = scores[(scores["split"] == "test") & (scores["length"] >= 0)]
    questions = per_length[per_length["metric"] == "questions"]["value"].sum()
    assert questions == 1000  # every test question in exactly one length row


def test_schedules_advance_in_every_mode(babi_dir: Path) -> None:
    """MemN2N's linear start ends in epoch mode and in the sampled mode with epoch_size; without either
    the trainer refuses instead of training a model that stays linear."""
    with pytest.raises(ValueError, match="epoch_size"):
        train(_memn2n(epochs=None, steps=5, batch_unit="sequences"), None, progress=False)
    for changes in ({"epochs": 2}, {"epochs": None, "steps": 40, "epoch_size": 900, "batch_unit": "sequences"}):
        import agents

        built: list[Any] = []
        original = agents.make_agent

        def spy(*args: Any, **kwargs: Any) -> Any:
            built.append(original(*args, **kwargs))
            return built[-1]

        import benchmarks.train as trainer

        trainer.make_agent, saved = spy, trainer.make_agent
        try:
            train(_memn2n(**changes), None, progress=False)
        finally:
            trainer.make_agent = saved
        assert not built[0].core.warming_up(), changes  # linear_start_epochs = 1: over after the first epoch


def test_warm_up_ends_on_the_validation_plateau(babi_dir: Path, monkeypatch) -> None:
    """``warm_up_end = "plateau"``: linear start ends after the first epoch whose validation loss does not
    improve (here epoch 3 of the scripted losses 3, 2, 2.5, ...), not after linear_start_epochs = 50."""
    import benchmarks.train as trainer

    losses = [3.0, 2.0, 2.5, 1.0, 0.5, 0.4]
    linear_at_validation: list[bool] = []

    def scripted(agent: Any, task: Any, batch_size: int = 64) -> dict[str, float]:
        linear_at_validation.append(agent.core.warming_up())
        return {"error_rate": 0.5, "accuracy": 0.5, "cost_nats": losses.pop(0), "seq_accuracy": 0.5}

    monkeypatch.setattr(trainer, "_score_split", scripted)
    agent_kwargs = {**_memn2n().agent_kwargs, "linear_start_epochs": 50}
    result = train(_memn2n(epochs=6, warm_up_end="plateau", agent_kwargs=agent_kwargs), None, progress=False)
    assert result.warm_up_epochs == 3
    assert linear_at_validation == [True, True, True, False, False, False]
    losses += [3.0, 2.0, 2.5]  # the same losses, without the plateau rule
    fixed = train(_memn2n(epochs=3, agent_kwargs=agent_kwargs), None, progress=False)
    assert fixed.warm_up_epochs == 3  # "epochs": the core's own count (50) rules
    with pytest.raises(ValueError, match="warm_up_end"):
        TrainConfig(task="bAbI-qa1-v0", agent="memn2n", warm_up_end="plateau")


def test_epoch_learning_rate_schedule() -> None:
    base = dict(task="bAbI-qa1-v0", agent="memn2n", steps=None, epochs=100, lr=0.01, lr_halve_epochs=25)
    plain = TrainConfig(**base)
    assert [_epoch_lr(plain, e, False) for e in (0, 24, 25, 50, 99)] == [0.01, 0.01, 0.005, 0.0025, 0.00125]
    warm = TrainConfig(**base, linear_start_lr=0.005, lr_halve_from=20)
    assert _epoch_lr(warm, 3, True) == 0.005  # the warm-up rate while linear start is on
    assert [_epoch_lr(warm, e, False) for e in (20, 44, 45)] == [0.01, 0.01, 0.005]  # counted from epoch 20


def test_epoch_mode_refuses_a_sampled_task() -> None:
    with pytest.raises(ValueError, match="epochs"):
        train(TrainConfig(task="Copy-v0", agent="lstm", steps=None, epochs=2), None, progress=False)
    with pytest.raises(ValueError, match="batch_unit"):
        TrainConfig(task="Copy-v0", agent="lstm", batch_unit="scored")


# -- babi_1k.toml through the runner ------------------------------------------------------------------------


def test_babi_1k_file_sets_the_protocols(babi_dir: Path) -> None:
    experiment = load_experiment(BABI_1K)
    assert len(experiment.cells) == 20 * 5 * 3
    cells = {(c.task, c.agent, c.seed): c for c in experiment.cells}
    memn2n = cells[("memtasks/bAbI-qa3-v0", "memn2n", 0)]
    assert memn2n.task_kwargs["per_question"] and memn2n.agent_kwargs["memory_size"] == 50
    assert (memn2n.train.optimizer, memn2n.train.loss_reduction, memn2n.train.epochs) == ("sgd", "sum", 100)
    lstm = cells[("memtasks/bAbI-qa3-v0", "lstm", 0)]
    assert "per_question" not in lstm.task_kwargs and lstm.train.optimizer == "adam"
    assert lstm.train.steps is None and lstm.train.batch_unit == "scored"


@pytest.mark.parametrize("agent", list(SMALL_BY_AGENT))
def test_every_agent_of_the_file_runs_an_epoch_through_the_runner(agent: str, tmp_path: Path, babi_dir: Path) -> None:
    """Each agent of babi_1k.toml (smaller sizes, one epoch of qa1) trains, is selected and scored in the
    runner's schema: valid rows per epoch, eval rows of the three splits at the kept epoch."""
    sizes = ", ".join(f"{k} = {v}" for k, v in SMALL_BY_AGENT[agent].items())
    experiment = load_experiment(BABI_1K, overrides=[
        "train.epochs=1", "seeds=[0]", "train.compile=false", f"agents.{agent}={{ {sizes} }}"
        + ("" if agent != "memn2n" else ""),
    ])  # fmt: skip
    summary = run_experiment(experiment, tmp_path, workers=1, progress=False, plots=False,
                             only=[f"bAbI-qa1-v0__{agent}__seed0"])  # fmt: skip
    assert summary.ran == 1 and summary.statuses.get("ok") == 1, summary.failures
    runs = read_runs(tmp_path)
    assert set(runs["phase"]) == {"train", "valid", "eval"}
    valid = runs[runs["phase"] == "valid"]
    assert set(valid["epoch"]) == {1} and set(valid["split"]) == {"valid"}
    whole = runs[(runs["phase"] == "eval") & (runs["length"] == -1) & (runs["metric"] == "error_rate")]
    assert sorted(whole["split"]) == ["test", "train", "valid"] and set(whole["epoch"]) <= {0, 1}
    assert whole["value"].between(0, 1).all()


# -- the report and the migration ----------------------------------------------------------------------


def _legacy_record(task: int, agent: str, seed: int, valid: float, test: float) -> dict[str, Any]:
    return {
        "version": 1, "task": task, "agent": agent, "seed": seed, "size": "1k", "valid_error": valid,
        "test_error": test, "train_error": 0.01 * (3 - seed),  # the lowest training error: the highest seed
        "best_epoch": 2, "epochs_run": 2, "epochs_planned": 2,
        "stopped": "epochs", "sequences_per_batch": 32, "wall_s": 1.5, "num_parameters": 100,
        "test_questions": 10, "test_by_length": [{"length": 3, "questions": 10, "errors": round(10 * test)}],
        "test_by_context": [{"context": 3, "questions": 10, "errors": round(10 * test)}],
        "history": [{"epoch": e, "lr": 0.01, "linear": False, "train_loss": 1.0 / e, "valid_error": valid}
                    for e in (1, 2)],
        "protocol": {"lr": 0.01, "per_question": agent == "memn2n"}, "config": {}, "memory_size": None,
        "torch": "x", "finished": "2026-11-22T00:00:00+00:00",
    }  # fmt: skip


def test_migrate_then_report_gives_the_records_table(tmp_path: Path, babi_dir: Path) -> None:
    # task 1: seeds' test errors 20, 40, 90 % (mean 50); seed 1 has the lowest validation error (test 40)
    # task 2: 10, 20, 30 % (mean 20); the lowest validation error is seed 2 (test 30)
    records = tmp_path / "records"
    records.mkdir()
    cases = [(1, "memn2n", s, v, t) for s, (v, t) in enumerate([(0.5, 0.2), (0.1, 0.4), (0.2, 0.9)])]
    cases += [(2, "memn2n", s, v, t) for s, (v, t) in enumerate([(0.3, 0.1), (0.2, 0.2), (0.1, 0.3)])]
    cases += [(1, "lstm", 0, 0.5, 0.5)]
    for case in cases:
        (records / f"qa{case[0]}__{case[1]}__seed{case[2]}.json").write_text(json.dumps(_legacy_record(*case)))
    out = babi.migrate(records, tmp_path / "legacy", "1k")
    runs = read_runs(out)
    assert len(runs[(runs["phase"] == "valid")]) == 7 * 2 and len(runs[runs["phase"] == "train"]) == 7 * 2
    manifest = json.loads((out / "experiment.json").read_text())
    assert manifest["cells"][0]["legacy"]["test_by_length"]  # fields without a runs.csv row are kept

    cells, lengths, replaced = babi.cell_results([out])
    summary = babi.summary_table(cells, "1k").set_index(["agent", "task"])
    assert summary.loc[("memn2n", 1), "mean"] == pytest.approx(50.0)
    assert summary.loc[("memn2n", 1), "std"] == pytest.approx(np.std([20, 40, 90], ddof=1))
    assert summary.loc[("memn2n", 1), "selected"] == pytest.approx(40.0)
    assert summary.loc[("memn2n", 2), "selected"] == pytest.approx(30.0)
    assert math.isnan(summary.loc[("lstm", 1), "std"]) and replaced == 0
    assert summary.loc[("memn2n", 1), "by_train"] == pytest.approx(90.0)  # seed 2: the lowest training error
    assert summary.loc[("memn2n", 1), "by_train_seed"] == 2 and summary.loc[("memn2n", 1), "by_train_of"] == 3
    assert lengths["questions"].sum() == 7 * 10

    paths = babi.report([out], tmp_path / "report", "1k")
    assert {p.name for p in paths} == {"table_1k.md", "error_by_length_1k.png"}
    table = (tmp_path / "report" / "table_1k.md").read_text()
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("|")}
    mean_row = [c.strip() for c in rows["mean error (%)"].strip("|").split("|")]
    failed_row = [c.strip() for c in rows[f"failed tasks (> {FAIL_THRESHOLD:g}%)"].strip("|").split("|")]
    assert mean_row[1] == "**4.2**"  # paper's tasks 1 and 2: (0.0 + 8.3) / 2
    assert mean_row[2] == "**35.0**" and mean_row[3] == "**35.0**"  # (50 + 20) / 2 and (40 + 30) / 2
    assert mean_row[4] == "**60.0**"  # by training error: seed 2 on both tasks, (90 + 30) / 2
    assert mean_row[5] == "51.3 (all 20, stated)" and failed_row[5] == "20 (all 20, stated)"
    assert mean_row[6] == "**50.0** (1 tasks)"
    assert "ours memn2n (3 seeds) mean ± std" in table and "ours lstm (1 seed) mean ± std" in table

    # packed (gzip) as large results are committed, the folder reads the same
    from benchmarks.results import pack

    before = read_runs(out)
    assert {p.name for p in pack(out)} == {"runs.csv.gz", "experiment.json.gz"} and not (out / "runs.csv").exists()
    pd.testing.assert_frame_equal(read_runs(out), before)
    assert babi.cell_results([out])[0].equals(cells)

    # a later folder's cell replaces an earlier one's, and the report says so
    again = babi.migrate(records, tmp_path / "again", "1k")
    _, _, replaced = babi.cell_results([out, again])
    assert replaced == 7


def test_migrate_refuses_other_record_versions(tmp_path: Path) -> None:
    (tmp_path / "qa1__memn2n__seed0.json").write_text(json.dumps({**_legacy_record(1, "memn2n", 0, 0.1, 0.1), "version": 2}))
    with pytest.raises(ValueError, match="version"):
        babi.migrate(tmp_path, tmp_path / "out", "1k")
    assert babi.main(["migrate", str(tmp_path / "none"), "--out", str(tmp_path / "x")]) == 2


# -- joint training ---------------------------------------------------------------------------------------


def test_joint_dataset_joins_the_tasks(babi_dir: Path) -> None:
    import memtasks
    from memtasks.babi import BabiTask

    joint = memtasks.make_task("bAbI-joint-v0", tasks=[1, 4], per_question=True)
    one, four = (BabiTask(t, per_question=True) for t in (1, 4))
    assert joint.num_sequences == one.num_sequences + four.num_sequences
    assert set(one.vocab.items) | set(four.vocab.items) == set(joint.vocab.items)
    assert sorted(set(joint.sequence_tasks)) == [1, 4] and (joint.sequence_tasks == 1).sum() == one.num_sequences
    with pytest.raises(ValueError, match="tasks"):
        memtasks.make_task("bAbI-joint-v0", tasks=[1, 1])


def test_joint_cell_reports_every_member_task(tmp_path: Path, babi_dir: Path) -> None:
    """A joint cell (one model) gives one row per member task in the bAbI table, from its per-task rows."""
    experiment = load_experiment(BABI_1K.with_name("babi_1k_joint.toml"), overrides=[
        "train.epochs=1", "seeds=[0]", 'tasks."bAbI-joint-v0".tasks=[1, 4]',
        "agents.memn2n_joint.frame_size=32", "agents.memn2n_joint.embedding_size=8",
    ])  # fmt: skip
    summary = run_experiment(experiment, tmp_path, workers=1, progress=False, plots=False)
    assert summary.statuses.get("ok") == 1, summary.failures
    runs = read_runs(tmp_path)
    metrics = set(runs[(runs["phase"] == "eval") & (runs["split"] == "test")]["metric"])
    assert {"error_rate", "error_rate_qa1", "error_rate_qa4"} <= metrics
    cells, _, _ = babi.cell_results([tmp_path])
    assert sorted(cells["task"]) == [1, 4] and set(cells["agent"]) == {"memn2n_joint"}
    babi.report([tmp_path], tmp_path / "report", "1k")
    table = (tmp_path / "report" / "table_1k.md").read_text()
    assert "paper MemN2N PE LS RN joint" in table and "ours memn2n_joint (1 seed) mean ± std" in table
