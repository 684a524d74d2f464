"""Suites: a [suite] experiment with frozen test sets and a learning-rate grid, its scores, and the canonical
leaderboard (best of N selected on validation, mean ± sd, one table per protocol)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.experiment import ExperimentError, load_experiment
from benchmarks.leaderboard import merge_leaderboards, suite_scores
from benchmarks.runner import run_experiment
from benchmarks.testsets import build_test_set, save_test_set

ROOT = Path(__file__).resolve().parents[1]

SUITE = """\
seeds = [0, 1]
lrs = [1e-2, 3e-2]
[train]
batch_size = 8
steps = {steps}
log_every = 10
device = "cpu"
[eval]
samples = 16
seed = 1
[suite]
name = "toy"
version = 1
[suite.tasks."memtasks/Copy-v0"]
file = "toy.npz"
sha256 = "{sha}"
in_distribution = [2, 3]
out_of_distribution = [5, 6]
[tasks."memtasks/Copy-v0"]
bits = 2
max_length = 3
[agents.lstm]
hidden_size = 12
num_layers = 1
"""


@pytest.fixture(scope="module")
def suite_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("suite")
    sha = save_test_set(build_test_set("Copy-v0", {"bits": 2, "max_length": 3}, [2, 3, 5, 6], 8, 2026),
                        folder / "toy.npz")
    for name, steps in (("toy-a", 30), ("toy-b", 10)):
        (folder / f"{name}.toml").write_text(SUITE.format(steps=steps, sha=sha))
        summary = run_experiment(folder / f"{name}.toml", out_dir=folder / "results" / name, workers=1,
                                 progress=False, plots=False)
        assert summary.ok, summary.failures
    return folder


def test_cells_span_the_lr_grid_and_are_tested_on_the_frozen_set(suite_results: Path) -> None:
    runs = pd.read_csv(suite_results / "results" / "toy-a" / "runs.csv")
    evals = runs[runs.phase == "eval"]
    assert sorted(evals.lr.unique()) == [1e-2, 3e-2]
    assert sorted(evals.length.unique()) == [-1, 2, 3, 5, 6]  # validation (sampled), then the frozen lengths
    assert set(evals[evals.length > 0].metric) >= {"bit_accuracy", "bit_errors"}
    assert (suite_results / "results" / "toy-a" / "cells" / "Copy-v0__lstm__lr0.01__seed1" / "cell.json").is_file()


def test_best_of_n_is_selected_on_validation_and_protocols_are_kept_apart(suite_results: Path) -> None:
    scores = suite_scores(suite_results / "results")
    assert len(scores) == 8 and scores.protocol.nunique() == 2  # two budgets: two protocols
    a = scores[scores.experiment == "toy-a"]
    best = a.loc[a.validation.idxmin()]
    text = merge_leaderboards(suite_results / "results").read_text()
    assert "## Suites (the canonical ranking)" in text
    assert text.count("## toy v1, protocol") == 2
    section = text[text.index(f"protocol `{best.protocol}`"):]
    row = next(line for line in section.splitlines() if line.startswith("| 1 | `lstm`"))
    assert f"lr {best.lr:g}, seed {int(best.seed)}" in row
    assert f"| {100 * best.out_of_distribution:.1f} |" in row
    # the mean ± sd column covers the seeds of the lr with the best mean validation
    by_lr = a.groupby("lr").validation.mean()
    at = a[np.isclose(a.lr, by_lr.idxmin())]
    assert f"{100 * at.out_of_distribution.mean():.1f} ± {100 * at.out_of_distribution.std(ddof=1):.1f}" in row


def test_a_changed_test_set_is_refused(suite_results: Path, tmp_path: Path) -> None:
    text = (suite_results / "toy-a.toml").read_text()
    (tmp_path / "toy.npz").write_bytes((suite_results / "toy.npz").read_bytes()[:-10] + b"0123456789")
    (tmp_path / "toy.toml").write_text(text)
    with pytest.raises(ExperimentError, match="checksum mismatch"):
        load_experiment(tmp_path / "toy.toml")


def test_the_shipped_suite_loads_with_verified_test_sets() -> None:
    experiment = load_experiment(ROOT / "benchmarks" / "suites" / "memtasks-v1.toml")
    tasks = {c.task for c in experiment.cells}
    assert len(tasks) == 5 and all(c.test_set is not None for c in experiment.cells)
    assert {c.train.lr for c in experiment.cells} == {1e-3, 3e-3, 1e-2}
