"""Plots and leaderboards drawn from small synthetic results folders (no training)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.leaderboard import merge_leaderboards, write_leaderboard
from benchmarks.plots import plot_experiment
from benchmarks.results import RUNS_COLUMNS, write_csv_atomic, write_json_atomic
from memtasks.cli import main

BITS, CLASSES = "memtasks/Copy-v0", "memtasks/FakeQA-v0"
LENGTHS = [2, 5, 10, 20, 40]
TRAIN_MAX = 10


def _error(agent: str, length: int, seed: int) -> float:
    """Bit errors per sequence: 'good' is perfect in range and degrades slowly, 'bad' is poor everywhere."""
    if agent == "good":
        return 0.0 if length <= TRAIN_MAX else 0.01 * length * (1 + 0.1 * seed)
    return 2.0 * length + seed


def make_results(folder: Path, name: str = "synth", manifest: bool = True) -> Path:
    """A results folder: runs.csv (+ experiment.json) for 2 tasks x 3 agents x 3 seeds, 'broken' failed."""
    rows = []
    cells = []
    for task in (BITS, CLASSES):
        for agent, params in (("good", 60000), ("bad", 70000), ("broken", 10)):
            for seed in range(3):
                status = "failed" if agent == "broken" else ("converged" if agent == "good" and seed < 2 else "ok")
                cell = {
                    "cell": f"{task.split('/')[1]}__{agent}__seed{seed}", "task": task, "agent": agent, "seed": seed,
                    "status": status, "message": "RuntimeError: out of memory" if status == "failed" else "",
                    "num_parameters": params, "train_range": [1, TRAIN_MAX],
                    "converged_sequences": 12800 + 1600 * seed if status == "converged" else None,
                    "converged_wall_s": 40.0 + seed if status == "converged" else None,
                }
                cells.append(cell)
                if status == "failed":
                    continue
                for step in range(50, 501, 50):
                    seen = step * 16
                    cost = 80.0 * np.exp(-step / (60 if agent == "good" else 400)) + 0.01
                    if task == BITS:
                        metrics = {"loss": cost / 50, "cost_bits": cost}
                    else:
                        metrics = {"loss": cost / 50, "cost_nats": cost / 40, "error_rate": min(1, cost / 80)}
                    for metric, value in metrics.items():
                        rows.append([name, task, agent, seed, 1e-3, "train", pd.NA, step, pd.NA, seen, step * 0.1, pd.NA, metric,
                                     value])  # fmt: skip
                for length in LENGTHS:
                    err = _error(agent, length, seed)
                    if task == BITS:
                        metrics = {"bit_errors": err, "seq_accuracy": float(np.exp(-err)), "cost_bits": err * 1.5}
                    else:
                        rate = min(1.0, err / 100)
                        metrics = {"error_rate": rate, "accuracy": 1 - rate, "seq_accuracy": 1 - rate}
                    for metric, value in metrics.items():
                        rows.append([name, task, agent, seed, 1e-3, "eval", "test", 500, pd.NA, 8000, 50.0, length, metric, value])
    folder.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(folder / "runs.csv", pd.DataFrame(rows, columns=list(RUNS_COLUMNS)))
    if manifest:
        write_json_atomic(
            folder / "experiment.json",
            {
                "format_version": 1, "name": name, "description": "synthetic", "source": "synthetic.toml",
                "seeds": [0, 1, 2], "eval": {"lengths": LENGTHS, "samples": 64, "seed": 1, "batch_size": 128},
                "tasks": {
                    BITS: {"short_id": "Copy-v0", "min_length": 1, "max_length": TRAIN_MAX, "output_kind": "bits"},
                    CLASSES: {"short_id": "FakeQA-v0", "min_length": 1, "max_length": TRAIN_MAX},
                },
                "agents": {a: {"agent": "lstm", "kwargs": {}} for a in ("good", "bad", "broken")},
                "cells": cells,
            },
        )
    return folder


@pytest.mark.parametrize("with_manifest", [True, False])
def test_plots_are_drawn_from_runs_csv(tmp_path: Path, with_manifest: bool) -> None:
    folder = make_results(tmp_path / "synth", manifest=with_manifest)
    paths = plot_experiment(folder)
    assert [p.name for p in paths] == ["generalisation.png", "learning.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    assert not list(folder.glob(".*.png"))  # no temporary file left


def test_memtasks_plot_and_leaderboard_commands(tmp_path: Path) -> None:
    folder = make_results(tmp_path / "results" / "synth")
    (folder / "generalisation.png").unlink(missing_ok=True)
    assert main(["plot", str(folder)]) == 0 and (folder / "generalisation.png").is_file()
    assert main(["leaderboard", str(folder)]) == 0 and (folder / "leaderboard.md").is_file()
    assert main(["leaderboard", str(tmp_path / "results")]) == 0
    assert (tmp_path / "results" / "LEADERBOARD.md").is_file()
    assert main(["plot", str(tmp_path / "nothing-here")]) == 1


def _table_rows(markdown: str, task: str) -> list[list[str]]:
    section = markdown.split(f"(`{task}`)", 1)[1].split("\n#", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def test_leaderboard_ranks_reports_convergence_and_failures(tmp_path: Path) -> None:
    text = write_leaderboard(make_results(tmp_path / "synth")).read_text()
    assert "then by the mean over seeds of the bit errors per sequence at the training lengths" in text
    assert "then by the mean over seeds of the error %" in text
    header = next(line for line in text.splitlines() if line.startswith("| rank"))
    assert "training lengths (≤ 10)" in header and "length 20" in header and "length 40" in header

    bits = _table_rows(text, BITS)
    assert [r[1] for r in bits] == ["`good`", "`bad`", "`broken`"]
    assert [r[0] for r in bits] == ["1", "2", "—"]
    good, bad, broken = bits
    assert good[2] == "60,000" and good[3] == "0 ± 0 (max 0)"  # perfect at every training length, all seeds
    assert good[4] == "0.22 ± 0.02 (max 0.24)"  # length 20: 0.2, 0.22, 0.24 over seeds
    assert good[6] == "13,600 (2/3 seeds)" and good[7] == "40 s (2/3 seeds)"  # seeds 0, 1: mean of 12,800 and 14,400
    assert good[8] == "converged 2/3, ok 1/3"
    assert bad[6] == bad[7] == "not converged"
    assert broken[3] == "—" and broken[8].startswith("failed 3/3; seed 0 failed: RuntimeError: out of memory")

    classes = _table_rows(text, CLASSES)
    assert [r[1] for r in classes] == ["`good`", "`bad`", "`broken`"]
    assert classes[1][3] == "12.3 ± 1 (max 13.3)"  # error % of 'bad' at lengths 2, 5, 10: 11.3, 12.3, 13.3


def test_an_agent_that_lost_a_seed_ranks_below_one_that_kept_all(tmp_path: Path) -> None:
    """'good' beats 'bad' on every seed; with one of its seeds diverged, its mean over the two survivors still
    beats 'bad', but it ranks below (as an lr is chosen), here and in the merged ranking."""
    folder = make_results(tmp_path / "synth")
    runs = pd.read_csv(folder / "runs.csv")
    lost = (runs["agent"] == "good") & (runs["seed"] == 2) & (runs["phase"] == "eval")
    write_csv_atomic(folder / "runs.csv", runs[~lost])
    manifest = json.loads((folder / "experiment.json").read_text())
    for cell in manifest["cells"]:
        if cell["agent"] == "good" and cell["seed"] == 2:
            cell.update(status="diverged", message="gradient norm is inf at step 7")
    write_json_atomic(folder / "experiment.json", manifest)
    text = write_leaderboard(folder).read_text()
    ranked = [(r[0], r[1]) for r in _table_rows(text, BITS)]
    assert ranked == [("1", "`bad`"), ("2", "`good`"), ("—", "`broken`")]
    assert "Ranked first by the number of seeds that diverged or failed" in text
    merged = merge_leaderboards(tmp_path).read_text().split("## Combined ranking per task", 1)[1]
    combined = [(r[0], r[2]) for r in _table_rows(merged, BITS)]
    assert combined == [("1", "`bad`"), ("2", "`good`"), ("—", "`broken`")]


@pytest.mark.parametrize("recorded", ["cost_bits", "absent", None])
def test_a_task_registered_with_a_cost_score_is_ranked_by_its_cost(tmp_path: Path, recorded: object) -> None:
    # dynamic N-grams is registered to be ranked by cost: here 'bad' has the lower cost, 'good' the fewer bit errors
    folder = make_results(tmp_path / "synth")
    runs = pd.read_csv(folder / "runs.csv")
    ngrams = "memtasks/DynamicNGrams-v0"
    runs["task"] = runs["task"].replace(BITS, ngrams)
    cost = (runs["task"] == ngrams) & (runs["phase"] == "eval") & (runs["metric"] == "cost_bits")
    runs.loc[cost, "value"] = np.where(runs.loc[cost, "agent"] == "good", 200.0, 150.0)
    write_csv_atomic(folder / "runs.csv", runs)
    manifest = json.loads((folder / "experiment.json").read_text())
    info = manifest["tasks"].pop(BITS)
    if recorded != "absent":  # absent: a record from before tasks declared a score; the registry decides
        info["score_metric"] = recorded
    manifest["tasks"][ngrams] = info
    for cell in manifest["cells"]:
        cell["task"] = ngrams if cell["task"] == BITS else cell["task"]
    write_json_atomic(folder / "experiment.json", manifest)
    text = write_leaderboard(folder).read_text()
    ranked = [r[1] for r in _table_rows(text, ngrams)]
    if recorded is None:  # recorded as "no score declared": bit errors, as for copy
        assert ranked[:2] == ["`good`", "`bad`"] and "then by the mean over seeds of the bit errors" in text
    else:
        assert ranked[:2] == ["`bad`", "`good`"]
        assert "then by the mean over seeds of the cost in bits per sequence" in text
    assert plot_experiment(folder)  # the plots read the same score


def test_a_task_tested_at_one_length_is_drawn_per_agent_and_the_same_twice(tmp_path: Path) -> None:
    folder = make_results(tmp_path / "synth")
    runs = pd.read_csv(folder / "runs.csv")
    write_csv_atomic(folder / "runs.csv", runs[(runs["phase"] != "eval") | (runs["length"] == 20)])
    first = plot_experiment(folder)[0].read_bytes()
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_experiment(folder)[0].read_bytes() == first  # seeds are placed, not jittered at random


def test_leaderboard_without_experiment_json_still_ranks(tmp_path: Path) -> None:
    text = write_leaderboard(make_results(tmp_path / "synth", manifest=False)).read_text()
    assert "all test lengths" in text and "training range is unknown" in text
    assert [r[1] for r in _table_rows(text, BITS)] == ["`good`", "`bad`"]


def test_merged_leaderboard_has_every_experiment_and_a_combined_ranking(tmp_path: Path) -> None:
    make_results(tmp_path / "one", name="one")
    make_results(tmp_path / "two", name="two")
    text = merge_leaderboards(tmp_path).read_text()
    assert "## Combined ranking per task" in text
    assert "## Leaderboard: one" in text and "## Leaderboard: two" in text
    combined = text.split("## Combined ranking per task", 1)[1].split("## Leaderboard:", 1)[0]
    rows = _table_rows(combined, BITS)
    assert len(rows) == 6 and [r[2] for r in rows[:2]] == ["`good`", "`good`"] and rows[-1][0] == "—"
    with pytest.raises(FileNotFoundError):
        merge_leaderboards(tmp_path / "empty")


def test_ngrams_learning_curves_get_the_bayes_optimal_line() -> None:
    """The optimal cost comes from the task (order 3, length 30: about 19 bits, below the coin flip's 29);
    tasks without an optimum get no line."""
    from benchmarks.plots import _optimal_cost

    manifest = {"cells": [{"task": "memtasks/DynamicNGrams-v0", "task_kwargs": {"order": 3, "min_length": 30,
                                                                              "max_length": 30}}]}  # fmt: skip
    value, label = _optimal_cost("memtasks/DynamicNGrams-v0", manifest)
    assert 15.0 < value < 25.0 and "optimal" in label
    assert _optimal_cost("memtasks/Copy-v0", None) is None


def test_a_learning_curve_spike_cuts_the_axis_and_says_so() -> None:
    import matplotlib.pyplot as plt

    from benchmarks.plots import _cut_spike

    values = pd.Series([190.0 - i for i in range(60)] + [5000.0] + [150.0] * 40)  # one blow-up, then recovered
    fig, ax = plt.subplots()
    ax.plot(values.index, values)
    _cut_spike(ax, values)
    low, top = ax.get_ylim()
    assert 120 < low < 131 and 190 < top < 250  # the curve (131-190) fills the axis, the spike is above it
    assert any("peak 5e+03" in t.get_text() for t in ax.texts)
    plt.close(fig)
