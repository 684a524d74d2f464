"""An agent from an installed package, declared through the ``memtasks.agents`` entry point, runs through
the harness with no edit to this repository. The package is the README's example, installed for the test
as an importable module plus a ``*.dist-info`` folder with its ``entry_points.txt`` (what pip writes)."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

import agents
from agents import base

README = Path(__file__).resolve().parents[1] / "README.md"
NAME = "gru_plugin_demo"


def _readme_example() -> str:
    text = README.read_text()
    start = text.index("### Bring your own agent")
    match = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert match, "no python block after 'Bring your own agent'"
    return match.group(1)


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    site = tmp_path / "site"
    package = site / "memtasks_gru_demo"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(_readme_example())
    info = site / "memtasks_gru_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: memtasks-gru-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[memtasks.agents]\n{NAME} = memtasks_gru_demo:GRUCore\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield NAME
    base._AGENTS.pop(NAME, None)
    sys.modules.pop("memtasks_gru_demo", None)


def test_plugin_agent_registers_and_runs_an_experiment(installed_plugin: str, tmp_path: Path) -> None:
    from benchmarks.experiment import load_experiment
    from benchmarks.runner import run_experiment

    assert installed_plugin not in agents.list_agents()
    agents.load_plugins()
    assert installed_plugin in agents.list_agents()
    assert agents.agent_info(installed_plugin).description == "One GRU cell over the frames."

    exp_file = tmp_path / "plugin.toml"
    exp_file.write_text(
        'seeds = [0]\n[train]\nbatch_size = 8\nsteps = 30\nlr = 1e-2\nlog_every = 10\ndevice = "cpu"\n'
        '[eval]\nlengths = [1, 2, 3]\nsamples = 8\nseed = 1\n'
        '[tasks."memtasks/Copy-v0"]\nbits = 2\nmax_length = 3\n'
        f"[agents.{installed_plugin}]\nhidden_size = 12\n"
    )
    # one worker: the cell runs in this process, where the test installed the package
    summary = run_experiment(load_experiment(exp_file), out_dir=tmp_path / "out", workers=1, progress=False)
    assert not summary.failures
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    evals = runs[(runs.agent == installed_plugin) & (runs.phase == "eval")]
    assert sorted(evals.length.unique()) == [1, 2, 3]


def test_a_broken_plugin_warns_and_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    info = site / "broken_demo-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[memtasks.agents]\nbroken_demo = no_such_module_xyz:Core\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    with pytest.warns(UserWarning, match="broken_demo"):
        agents.load_plugins()
    assert "broken_demo" not in agents.list_agents()


def test_plugin_agent_runs_the_suite(installed_plugin: str, tmp_path: Path) -> None:
    """The suite file itself (memtasks-v1: five tasks, frozen test sets, OOD grids) with only the plugin agent in
    its agents table, at a token budget: every task's cell finishes and is scored in and out of distribution."""
    from benchmarks.experiment import load_experiment
    from benchmarks.leaderboard import suite_scores
    from benchmarks.runner import run_experiment

    agents.load_plugins()
    suite = Path(__file__).resolve().parents[1] / "benchmarks" / "suites" / "memtasks-v1.toml"
    overrides = [f"agents={{ {installed_plugin} = {{ hidden_size = 12 }} }}", "seeds=[0]", "lrs=[1e-2]", "train.steps=5"]
    experiment = load_experiment(suite, overrides=overrides)
    summary = run_experiment(experiment, out_dir=tmp_path / "suite", workers=1, progress=False, plots=False)
    assert summary.ok and not summary.failures and summary.statuses == {"ok": len(experiment.cells)}
    runs = pd.read_csv(tmp_path / "suite" / "runs.csv")
    assert set(runs.agent) == {installed_plugin}
    assert runs.task.nunique() == len(experiment.cells) == 5
    scores = suite_scores(tmp_path)  # what `memtasks leaderboard` ranks: in- and out-of-distribution accuracy
    assert len(scores) == 5 and set(scores.agent) == {installed_plugin}
    assert scores[["in_distribution", "out_of_distribution"]].apply(lambda v: v.between(0, 1)).all().all()
