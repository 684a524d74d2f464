"""The NTM-paper experiment files (issue 10): they load, and every agent of a task gets the same tuning budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.experiment import load_experiment

FILES = sorted((Path(__file__).resolve().parents[1] / "benchmarks" / "experiments" / "ntm_paper").glob("*.toml"))


def test_the_five_paper_tasks_have_a_file() -> None:
    assert [f.stem for f in FILES] == ["associative_recall", "copy", "dynamic_ngrams", "priority_sort", "repeat_copy"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_agent_gets_the_same_lr_grid_budget_and_seeds(path: Path) -> None:
    experiment = load_experiment(path)
    grids: dict[str, set] = {}
    for cell in experiment.cells:
        budget = (cell.train.steps, cell.train.batch_size, cell.train.minutes, cell.train.optimizer)
        grids.setdefault(cell.agent, set()).add((cell.train.lr, cell.seed, budget))
    assert len({frozenset(g) for g in grids.values()}) == 1, {a: sorted(g) for a, g in grids.items()}
    lrs = {lr for lr, _, _ in next(iter(grids.values()))}
    seeds = {seed for _, seed, _ in next(iter(grids.values()))}
    assert len(lrs) >= 3 and len(seeds) >= 3
    assert {"ntm", "lstm", "memn2n"} <= set(grids)
