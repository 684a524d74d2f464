"""The experiment harness: experiment files, resumable runs, tidy results, determinism, failures, leaderboards.

The runs use ``benchmarks/experiments/tiny.toml`` (a tiny LSTM, 2-bit Copy on
lengths 1-3, 20 steps, two seeds) with the real ``train()`` and ``evaluate()``.
Plots and leaderboards drawn from synthetic results are tested in test_plots.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.experiment import ExperimentError, TrainSettings, load_experiment
from benchmarks.results import RUNS_COLUMNS, cell_rows, read_runs
from benchmarks.runner import run_experiment

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "benchmarks" / "experiments" / "tiny.toml"
EXPERIMENTS = sorted((REPO / "benchmarks" / "experiments").glob("*.toml"))

BASE = """\
seeds = [0]
[train]
steps = 5
[eval]
lengths = [1, 2]
[tasks."memtasks/Copy-v0"]
bits = 2
max_length = 3
[agents.lstm]
hidden_size = 8
num_layers = 1
"""


def write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def comparable(runs: pd.DataFrame) -> pd.DataFrame:
    """runs.csv without the one column that may differ between identical runs."""
    return runs.drop(columns=["wall_s"])


# -- experiment files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_shipped_experiments_load(path: Path) -> None:
    if "bAbI-" in path.read_text():
        from memtasks.babi.data import task_files
        from memtasks.core import DataNotFoundError

        try:
            task_files(1, "1k")
        except DataNotFoundError:
            pytest.skip("bAbI data absent: $MEMTASKS_BABI_DIR is not set")
    experiment = load_experiment(path)
    assert experiment.name == path.stem
    assert experiment.cells


def test_the_documented_example_loads(tmp_path: Path) -> None:
    """The full example in benchmarks/experiment.py's docstring is a valid experiment."""
    import textwrap

    import benchmarks.experiment as module

    doc = module.__doc__
    example = textwrap.dedent(doc.split("``[agents.*]`` are required)::", 1)[1].split("\nOptional values", 1)[0])
    experiment = load_experiment(write(tmp_path, example, "documented.toml"))
    assert experiment.name == "copy-study" and len(experiment.cells) == 3 * 2
    ntm = next(c for c in experiment.cells if c.agent == "ntm")
    assert (ntm.train.optimizer, ntm.train.lr, ntm.train.minutes) == ("rmsprop", 1e-4, 2.0)
    assert ntm.agent_kwargs == {"controller_size": 100, "memory_rows": 64} and ntm.train_range == (1, 10)
    assert ntm.eval.samples == 32 and ntm.eval.seed == 12345


def test_train_settings_mirror_train_config() -> None:
    """Every TrainConfig knob but those the grid or the runner sets is a [train] key, with the same default."""
    from benchmarks.train import TrainConfig

    decided_elsewhere = {"task", "agent", "seed", "task_kwargs", "agent_kwargs", "threads"}
    config = {f.name: f for f in dataclasses.fields(TrainConfig) if f.name not in decided_elsewhere}
    settings = {f.name: f for f in dataclasses.fields(TrainSettings)}
    assert set(settings) == set(config)
    defaults = TrainSettings()
    reference = TrainConfig(task="memtasks/Copy-v0", agent="lstm")
    for name in settings:
        assert getattr(defaults, name) == getattr(reference, name), name


def test_loading_resolves_the_grid(tmp_path: Path) -> None:
    text = BASE.replace("seeds = [0]", "seeds = 2") + """
[agents.big]
agent = "lstm"
hidden_size = 16
[override."*".big]
lr = 0.5
minutes = 1.5
[override."memtasks/Copy-v0"."*"]
lr = 0.25
eval = { lengths = { start = 1, stop = 7, step = 3 } }
"""
    experiment = load_experiment(write(tmp_path, text, "my-grid.toml"))
    assert experiment.name == "my-grid"  # defaults to the file's stem
    assert [c.name for c in experiment.cells] == [
        "Copy-v0__lstm__seed0",
        "Copy-v0__lstm__seed1",
        "Copy-v0__big__seed0",
        "Copy-v0__big__seed1",
    ]
    lstm, big = experiment.cells[0], experiment.cells[2]
    assert lstm.task == "memtasks/Copy-v0" and lstm.agent_name == "lstm"
    assert (lstm.train.lr, big.train.lr) == (0.25, 0.5)  # the per-agent layer wins over the per-task one
    assert (big.train.steps, big.train.minutes) == (5, 1.5)  # steps was set in [train]: both limits apply
    assert lstm.eval.lengths == (1, 4, 7)
    assert big.agent_kwargs == {"hidden_size": 16} and big.num_parameters > lstm.num_parameters
    assert lstm.fingerprint() != experiment.cells[1].fingerprint()


def test_minutes_alone_means_no_step_limit(tmp_path: Path) -> None:
    experiment = load_experiment(write(tmp_path, BASE.replace("steps = 5", "minutes = 0.5")))
    assert (experiment.cells[0].train.steps, experiment.cells[0].train.minutes) == (None, 0.5)
    experiment = load_experiment(write(tmp_path, BASE.replace("steps = 5", "clip_norm = false")))
    assert experiment.cells[0].train.clip_norm is None  # false switches an optional setting off


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        # unknown key: names the key path and lists the allowed keys
        (("steps = 5", "stepz = 5"), ["train.stepz", "unknown key", "did you mean 'steps'", "batch_size", "minutes"]),
        (("seeds = [0]", "seeds = [0]\ntrian = 1"), ["trian", "allowed keys at the top level", "train", "tasks"]),
        (("bits = 2", "bitz = 2"), ['tasks."memtasks/Copy-v0".bitz', "bits, max_length, min_length"]),
        (("hidden_size = 8", "hiden_size = 8"), ["agents.lstm.hiden_size", "hidden_size", "num_layers"]),
        # wrong type: names the key and the expected type
        (("steps = 5", 'steps = "many"'), ["train.steps", "must be an integer", "'many' (str)"]),
        (("steps = 5", 'lr = "fast"'), ["train.lr", "must be a number"]),
        (("hidden_size = 8", 'hidden_size = "8"'), ["agents.lstm.hidden_size", "must be an integer"]),
        (("lengths = [1, 2]", "lengths = 2"), ["eval.lengths", "a list of integers"]),
        # out of range / not allowed
        (("steps = 5", 'optimizer = "adamw"'), ["train.optimizer", "'adam', 'rmsprop', 'sgd'"]),
        (("steps = 5", "lr = -1"), ["train.lr", "> 0"]),
        (("lengths = [1, 2]", "lengths = [2, 1]"), ["eval.lengths", "ascending"]),
        # unknown task id / agent: lists the known ones
        (
            ("Copy-v0", "Cpy-v0"),
            ['tasks."memtasks/Cpy-v0"', "unknown task id", "did you mean 'memtasks/Copy-v0'", "memtasks/RepeatCopy-v0"],
        ),
        (("agents.lstm", "agents.lsmt"), ["agents.lsmt", "unknown agent 'lsmt'", "known agents: lstm", "ntm"]),
        (("hidden_size = 8", 'agent = "gru"'), ["agents.lstm.agent", "unknown agent 'gru'", "lstm"]),
        # values the task or agent refuses when built
        (("bits = 2", "bits = 0"), ['tasks."memtasks/Copy-v0"', "bits must be an integer in [1, inf]"]),
        (("steps = 5", "steps = false"), ["train.steps", "no budget"]),
        # the bounds and choices of TrainConfig's annotations, and the range table of eval.lengths
        (("steps = 5", 'batch_lengths = "x"'), ["train.batch_lengths", "'auto', 'same', 'mixed'"]),
        (("steps = 5", "log_every = 0"), ["train.log_every", ">= 1, got 0"]),
        (("steps = 5", "lr = nan"), ["train.lr", "must be a number"]),
        (("steps = 5", "clip_norm = true"), ["train.clip_norm", "or false to switch it off"]),
        (("lengths = [1, 2]", "lengths = { start = 1, stop = 4, stp = 2 }"), ["eval.lengths.stp", "'stop'", "step"]),
        (("lengths = [1, 2]", "lengths = { start = 5, stop = 4 }"), ["eval.lengths.stop", ">= 5, got 4"]),
        (("lengths = [1, 2]", "lengths = [1, 2]\ngrid = { repeats = [1, 2] }"), ["eval.grid", "sample options (none)"]),
        (("lengths = [1, 2]", "lengths = [1, 2]\ngrid = { repeats = [0] }"), ["eval.grid.repeats", ">= 1"]),
        (("seeds = [0]", "seeds = [0, 0]"), ["seeds", "distinct"]),
        (("seeds = [0]", "seeds = 0"), ["seeds", ">= 1, got 0"]),
        (("[train]\nsteps = 5", "train = 3"), ["train", "must be a table"]),
        (("max_length = 3", "max_length = 3.0"), ['tasks."memtasks/Copy-v0".max_length', "must be an integer"]),
    ],
)
def test_invalid_files_name_file_key_and_allowed(tmp_path: Path, change: tuple[str, str], needles: list[str]) -> None:
    old, new = change
    assert old in BASE
    path = write(tmp_path, BASE.replace(old, new))
    with pytest.raises(ExperimentError) as info:
        load_experiment(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    for needle in needles:
        assert needle in message


def test_errors_are_one_line(tmp_path: Path) -> None:
    for text in (BASE.replace("steps = 5", "steps = 0\nlr = -1\nstepz = 1"), BASE.replace("bits = 2", 'bits = "2"')):
        with pytest.raises(ExperimentError) as info:
            load_experiment(write(tmp_path, text))
        assert "\n" not in str(info.value)


def test_every_train_config_knob_is_a_train_key(tmp_path: Path) -> None:
    text = BASE.replace("steps = 5", 'steps = 5\nbatch_lengths = "same"\ncompile = false\nminutes = 3')
    train = load_experiment(write(tmp_path, text)).cells[0].train
    assert (train.batch_lengths, train.compile, train.minutes) == ("same", False, 3.0)
    assert isinstance(train.minutes, float)  # an integer is a number, stored as a float (fingerprints unchanged)


def test_invalid_overrides_are_refused(tmp_path: Path) -> None:
    cases = {
        '[override."memtasks/RepeatCopy-v0".lstm]\nlr = 1.0': ['override."memtasks/RepeatCopy-v0"', "not in [tasks]"],
        '[override."*".ntm]\nlr = 1.0': ['override."*".ntm', "not in [agents]", "lstm, *"],
        '[override."*".lstm]\nlrr = 1.0': ['override."*".lstm.lrr', "agent_kwargs", "task_kwargs", "lr"],
        '[override."*".lstm]\neval = { seed = 3 }': ['override."*".lstm.eval.seed', "shared by every cell"],
    }
    for extra, needles in cases.items():
        with pytest.raises(ExperimentError) as info:
            load_experiment(write(tmp_path, BASE + extra))
        for needle in needles:
            assert needle in str(info.value)


def test_unparsable_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ExperimentError, match="not valid TOML"):
        load_experiment(write(tmp_path, BASE + "[[["))
    with pytest.raises(ExperimentError, match="no such experiment file"):
        load_experiment(tmp_path / "absent.toml")


# -- running: the reference run, determinism, resuming --------------------------------------------------------


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny.toml run once in this process (one worker)."""
    out = tmp_path_factory.mktemp("reference") / "tiny"
    summary = run_experiment(TINY, out, workers=1, progress=False, plots=False)
    assert summary.ok and summary.ran == 2 and summary.statuses == {"ok": 2}
    return out


def test_a_run_writes_every_file(reference: Path) -> None:
    for name in ("runs.csv", "experiment.json", "leaderboard.md"):
        assert (reference / name).stat().st_size > 0
    for seed in (0, 1):
        cell = reference / "cells" / f"Copy-v0__lstm__seed{seed}"
        for name in ("train.csv", "model.pt", "result.json", "eval.csv", "cell.json"):
            assert (cell / name).is_file(), name
        record = json.loads((cell / "cell.json").read_text())
        assert record["status"] == "ok" and record["steps"] == 20 and record["sequences_seen"] == 160
    runs = read_runs(reference)
    assert tuple(runs.columns) == RUNS_COLUMNS
    assert set(runs["phase"]) == {"train", "eval"}
    evals = runs[runs["phase"] == "eval"]
    assert sorted(evals["length"].unique()) == [1, 2, 3, 4, 6]
    assert {"bit_errors", "seq_accuracy", "cost_bits"} <= set(evals["metric"])
    assert (evals["step"] == 20).all() and (evals["sequences_seen"] == 160).all()
    assert runs[runs["phase"] == "train"]["length"].isna().all()
    assert not runs.duplicated(["seed", "phase", "step", "length", "metric"]).any()
    manifest = json.loads((reference / "experiment.json").read_text())
    assert manifest["tasks"]["memtasks/Copy-v0"]["max_length"] == 3
    assert manifest["tasks"]["memtasks/Copy-v0"]["score_metric"] is None  # as registered: the leaderboard's score
    assert [c["status"] for c in manifest["cells"]] == ["ok", "ok"]


def test_an_eval_csv_from_before_the_split_column_keeps_its_validation_rows(reference: Path, tmp_path: Path) -> None:
    # cells of memtasks-v1-short run on 2026-12-03 wrote eval.csv without "split": their length -1 rows are the
    # suite's validation, as runs.csv's own migration reads them, not a test length
    cell = tmp_path / "cell"
    shutil.copytree(reference / "cells" / "Copy-v0__lstm__seed0", cell)
    sweep = pd.read_csv(cell / "eval.csv")
    old = pd.concat([sweep.assign(length=-1).head(3), sweep]).drop(columns="split")
    old.to_csv(cell / "eval.csv", index=False)
    rows = cell_rows(json.loads((cell / "cell.json").read_text()), cell)
    evals = rows[rows["phase"] == "eval"]
    assert set(evals[evals["length"] == -1]["split"]) == {"valid"}
    assert set(evals[evals["length"] > 0]["split"]) == {"test"}


def test_select_every_is_recorded_per_cell_and_its_checks_reach_runs_csv(tmp_path: Path) -> None:
    """``train.select_every`` in an experiment: each cell records the kept step (cell.json, the manifest) and its
    validation checks become ``valid`` rows of runs.csv, alongside the train and eval rows."""
    from benchmarks.runner import cli

    out = tmp_path / "select"
    assert cli([str(TINY), "--out", str(out), "--set", "train.select_every=10", "--no-progress", "--no-plots"]) == 0
    manifest = json.loads((out / "experiment.json").read_text())
    for entry in manifest["cells"]:
        record = json.loads((out / "cells" / entry["cell"] / "cell.json").read_text())
        assert record["best_step"] in (10, 20) and entry["best_step"] == record["best_step"]
    runs = read_runs(out)
    assert set(runs["phase"]) == {"train", "valid", "eval"}
    assert sorted(runs[runs["phase"] == "valid"]["step"].unique()) == [10, 20]


def test_rerun_skips_finished_cells_and_rebuilds_identical_tables(reference: Path) -> None:
    before = (reference / "runs.csv").read_bytes()
    summary = run_experiment(TINY, reference, workers=1, progress=False, plots=False)
    assert (summary.ran, summary.skipped) == (0, 2)
    assert (reference / "runs.csv").read_bytes() == before  # re-assembly is idempotent


def test_only_runs_a_subset_and_succeeds_without_the_cells_it_left_out(tmp_path: Path, capsys) -> None:
    """A run restricted by ``only`` is judged on the cells it was asked to run: the others are "left out", not
    "finished already", and do not turn the exit status into a failure; a later run without ``only`` runs them."""
    from benchmarks.runner import cli

    out = tmp_path / "subset"
    assert cli([str(TINY), "--out", str(out), "--only", "*seed0", "--no-progress", "--no-plots"]) == 0
    assert "(1 left out, 1 ok)" in capsys.readouterr().out
    summary = run_experiment(TINY, out, workers=1, progress=False, plots=False, only=["*seed0"])
    assert (summary.ran, summary.skipped, summary.statuses, summary.ok) == (0, 1, {"ok": 1, "left out": 1}, True)
    summary = run_experiment(TINY, out, workers=1, progress=False, plots=False)
    assert (summary.ran, summary.skipped, summary.statuses, summary.ok) == (1, 1, {"ok": 2}, True)


def test_same_file_same_values_with_two_worker_processes(reference: Path, tmp_path: Path) -> None:
    """Determinism: a second run, in two spawn workers with one thread each, gives the same values."""
    summary = run_experiment(TINY, tmp_path / "tiny", workers=2, progress=False, plots=False)
    assert summary.ok and summary.ran == 2
    pd.testing.assert_frame_equal(comparable(read_runs(tmp_path / "tiny")), comparable(read_runs(reference)))


def test_a_shipped_experiment_gives_the_same_values_twice(tmp_path: Path) -> None:
    """Determinism on the README's main job, shrunk with --set overrides (all three agents, eager)."""
    shrink = ["train.steps=12", "train.log_every=4", "train.compile=false", "seeds=[0]", "eval.samples=8",
              "eval.lengths=[1, 2, 12]", "train.until_bit_errors=false"]
    experiment = load_experiment(REPO / "benchmarks" / "experiments" / "quick.toml", overrides=shrink)
    assert {c.agent for c in experiment.cells} == {"lstm", "ntm", "memn2n"}
    first = run_experiment(experiment, tmp_path / "a", workers=1, progress=False, plots=False)
    second = run_experiment(experiment, tmp_path / "b", workers=2, progress=False, plots=False)
    assert first.ok and second.ok and first.ran == second.ran == 3
    pd.testing.assert_frame_equal(comparable(read_runs(tmp_path / "a")), comparable(read_runs(tmp_path / "b")))


def _spawned_workers(pid: int) -> list[int]:
    """Pids of the multiprocessing workers among ``pid``'s children (Linux /proc), or [] if unknown."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    workers = []
    for child in children:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(int(child))
        except OSError:
            pass
    return workers


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("workers", [1, 2])
def test_resume_after_kill_gives_the_complete_results(reference: Path, tmp_path: Path, workers: int) -> None:
    """kill -9 the runner as soon as a cell is finished, re-run: the same runs.csv as an uninterrupted run.

    With one worker the second cell is mid-training in the killed process; with
    two, the killed runner's orphaned workers must exit by themselves.
    """
    out = tmp_path / "tiny"
    command = [sys.executable, "-m", "memtasks.cli", "run", str(TINY), "--out", str(out),
               "--workers", str(workers), "--no-plots", "--no-progress"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    orphans: list[int] = []
    try:
        while not list(out.glob("cells/*/cell.json")):
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "no cell finished in 120 s"
            orphans = _spawned_workers(process.pid) or orphans
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    assert workers == 1 or orphans, "could not see the worker processes"
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in orphans):  # orphaned workers notice their runner died and exit
        assert time.monotonic() < deadline, "a worker of the killed run is still alive after 10 s"
        time.sleep(0.05)
    finished = len(list(out.glob("cells/*/cell.json")))
    if workers == 1:
        assert finished == 1  # the second cell was cut off mid-training

    # the re-run keeps the finished cell(s) and redoes the rest
    rerun = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"ran {2 - finished} in" in rerun.stdout
    pd.testing.assert_frame_equal(comparable(read_runs(out)), comparable(read_runs(reference)))
    assert not list(out.glob("**/.*.tmp")), "a temporary file was left behind"


def test_partial_cell_is_redone_from_scratch(reference: Path, tmp_path: Path) -> None:
    """An unfinished cell's leftovers (a torn train.csv, no cell.json) are deleted before it runs again."""
    import shutil

    out = tmp_path / "tiny"
    shutil.copytree(reference, out)
    cell = out / "cells" / "Copy-v0__lstm__seed1"
    (cell / "cell.json").unlink()
    with open(cell / "train.csv", "a") as f:
        f.write("25,200,1.0,0.69")  # a torn row, as kill -9 mid-write would leave
    (cell / "stray.txt").write_text("left over")
    summary = run_experiment(TINY, out, workers=1, progress=False, plots=False)
    assert (summary.ran, summary.skipped) == (1, 1)
    assert not (cell / "stray.txt").exists()
    pd.testing.assert_frame_equal(comparable(read_runs(out)), comparable(read_runs(reference)))


def test_changed_cells_are_redone(reference: Path, tmp_path: Path) -> None:
    """A finished cell recorded under another version of the file is not reused."""
    from benchmarks.runner import _pending_cells

    experiment = load_experiment(TINY)
    assert _pending_cells(experiment, reference, retry_failed=False) == ([], [])
    changed = load_experiment(write(tmp_path, TINY.read_text().replace("samples = 16", "samples = 8"), "tiny.toml"))
    pending, stale = _pending_cells(changed, reference, retry_failed=False)
    assert len(pending) == 2 and len(stale) == 2
    assert all("eval.samples: 16 -> 8" in line for line in stale)


def test_a_changed_agent_default_makes_the_cell_stale_and_says_so(
    reference: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fingerprint covers the resolved config: a new default re-runs cells that never set the field."""
    import dataclasses

    from agents import base
    from agents.lstm import LSTMConfig
    from benchmarks.runner import _pending_cells

    assert LSTMConfig().frame_size == 50
    NewDefault = dataclasses.make_dataclass(
        "LSTMConfig", [("frame_size", int, dataclasses.field(default=51))], bases=(LSTMConfig,)
    )
    info = base._AGENTS["lstm"]
    monkeypatch.setitem(base._AGENTS, "lstm", dataclasses.replace(info, config_cls=NewDefault))
    pending, stale = _pending_cells(load_experiment(TINY), reference, retry_failed=False)
    assert len(pending) == 2
    assert all("agent_config.frame_size: 50 -> 51" in line for line in stale), stale


def test_a_new_trainer_setting_at_its_neutral_value_keeps_finished_cells(reference: Path, tmp_path: Path) -> None:
    """Settings at their ``benchmarks.train.NEUTRAL`` value (added after runs were recorded, "off") stay out of
    a cell's identity, so the identity is what it was before they existed; any other value makes the cell stale."""
    import dataclasses

    from benchmarks.runner import _pending_cells
    from benchmarks.train import NEUTRAL, TrainConfig

    cell = load_experiment(TINY).cells[0]
    every = {f.name for f in dataclasses.fields(TrainConfig)} - {"task", "agent", "seed", "task_kwargs", "agent_kwargs", "threads"}
    assert set(cell.identity()["train"]) == every - set(NEUTRAL)
    changed = write(tmp_path, TINY.read_text().replace("lr = 1e-2", "lr = 1e-2\nloss_reduction = \"sum\""), "tiny.toml")
    assert load_experiment(changed).cells[0].identity()["train"]["loss_reduction"] == "sum"
    pending, stale = _pending_cells(load_experiment(changed), reference, retry_failed=False)
    assert len(pending) == 2 and all("loss_reduction" in line for line in stale), stale


def test_dry_run_names_stale_and_missing_cells_and_writes_nothing(reference: Path, tmp_path: Path, capsys) -> None:
    """``memtasks run --dry-run``: the finished run is current; a changed setting makes both cells stale, with
    what changed; an empty folder has every cell never run; no file is written or touched."""
    from benchmarks.runner import cli

    before = {p: p.stat().st_mtime_ns for p in reference.rglob("*") if p.is_file()}
    assert cli([str(TINY), "--out", str(reference), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"tiny in {reference}: 2 cells: 2 finished and current, 0 stale, 0 never run; 0 would run"]
    assert cli([str(TINY), "--out", str(reference), "--dry-run", "--set", "train.lr=0.05"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("2 cells: 0 finished and current, 2 stale, 0 never run; 2 would run")
    assert len(out) == 3 and all("train.lr" in line for line in out[1:])
    empty = tmp_path / "empty"
    assert cli([str(TINY), "--out", str(empty), "--dry-run", "--only", "*seed0"]) == 0
    assert capsys.readouterr().out.strip().endswith("0 stale, 2 never run; 1 would run (--only)")
    assert not empty.exists()
    assert {p: p.stat().st_mtime_ns for p in reference.rglob("*") if p.is_file()} == before


# -- failures ---------------------------------------------------------------------------------------------------

FAILING = """\
seeds = [0]
[train]
batch_size = 8
steps = 10
log_every = 5
device = "cpu"
[eval]
lengths = [1, 2, 3, 5]
samples = 8
[tasks."memtasks/Copy-v0"]
bits = 2
max_length = 3
[agents.lstm]
hidden_size = 8
num_layers = 1
[agents.diverges]
agent = "lstm"
hidden_size = 8
num_layers = 1
[agents.crashes]
agent = "lstm"
hidden_size = 8
num_layers = 1
[override."*".diverges]
lr = 1e37                 # Adam's first step overflows the weights: the loss is inf at step 2
clip_norm = false
[override."*".crashes]
device = "cuda:99"        # no such device: building the agent raises
"""


def test_failed_cells_are_recorded_and_shown(tmp_path: Path) -> None:
    from benchmarks.runner import cli

    out = tmp_path / "failing"
    path = write(tmp_path, FAILING, "failing.toml")
    status = cli([str(path), "--out", str(out), "--workers", "1", "--no-plots", "--no-progress"])
    assert status == 1  # a cell failed with an exception
    records = {p.parent.name: json.loads(p.read_text()) for p in out.glob("cells/*/cell.json")}
    assert records["Copy-v0__lstm__seed0"]["status"] == "ok"
    diverged = records["Copy-v0__diverges__seed0"]
    assert diverged["status"] == "diverged" and "loss is inf" in diverged["message"]
    crashed = records["Copy-v0__crashes__seed0"]
    # the exception's own words differ between torch builds (CPU wheel, CUDA wheel without a driver):
    # only that a message and a traceback were recorded is asserted, and that the leaderboard shows it
    assert crashed["status"] == "failed" and crashed["message"].strip() and crashed["traceback"]

    runs = read_runs(out)
    assert set(runs[runs["phase"] == "eval"]["agent"]) == {"lstm"}  # only evaluated cells have eval rows
    board = (out / "leaderboard.md").read_text()
    rows = {line.split("|")[2].strip(): line for line in board.splitlines() if line.startswith("| ") and "`" in line}
    assert rows["`crashes`"].split("|")[1].strip() == "—"  # listed, unranked, not dropped
    assert "failed 1/1" in rows["`crashes`"] and crashed["message"].splitlines()[0][:30] in rows["`crashes`"]
    assert "diverged 1/1" in rows["`diverges`"] and "loss is inf" in rows["`diverges`"]
    assert rows["`lstm`"].split("|")[1].strip() == "1"

    # a re-run keeps the recorded failures; --retry-failed redoes only the failed cell
    assert run_experiment(out.parent / "failing.toml", out, workers=1, progress=False, plots=False).ran == 0
    again = run_experiment(out.parent / "failing.toml", out, workers=1, progress=False, plots=False, retry_failed=True)
    assert again.ran == 1 and again.statuses == {"ok": 1, "diverged": 1, "failed": 1}


def test_a_second_runner_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    import fcntl

    out = tmp_path / "tiny"
    (out / "cells").mkdir(parents=True)
    with open(out / ".lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RuntimeError, match="another `memtasks run`"):
            run_experiment(TINY, out, workers=1, progress=False, plots=False)


def test_a_learning_rate_grid_is_ranked_at_each_agents_best_validation_lr(tmp_path: Path) -> None:
    """With ``lrs``, every cell also scores validation sequences from its training range (split valid, length
    -1), and the task table shows each agent at the lr with the best mean validation score, that lr's seeds only."""
    from benchmarks.leaderboard import experiment_leaderboard

    experiment = load_experiment(TINY, overrides=["lrs=[1e-3, 3e-2]"])
    summary = run_experiment(experiment, tmp_path, workers=1, progress=False, plots=False)
    assert summary.ok
    runs = read_runs(tmp_path)
    valid = runs[(runs["phase"] == "eval") & (runs["split"] == "valid") & (runs["metric"] == "bit_errors")]
    assert set(valid["length"]) == {-1} and len(valid) == 4  # 2 lrs x 2 seeds
    best = valid.groupby("lr")["value"].mean().idxmin()
    text = experiment_leaderboard(tmp_path)
    assert f"lr {best:g} of 0.001, 0.03: best mean validation score" in text
    row = next(line for line in text.splitlines() if line.startswith("| 1 | `lstm`"))
    tests = runs[(runs["phase"] == "eval") & (runs["split"] == "test") & (runs["metric"] == "bit_errors")
                 & (runs["lr"] == best) & (runs["length"] <= 3)]
    per_seed = tests.groupby("seed")["value"].mean()
    assert f"{per_seed.mean():.3g}" in row  # the row's training-length score is the best lr's seeds' mean


def test_an_exact_tie_in_validation_is_said_and_the_smallest_tied_lr_taken() -> None:
    """Two lrs with the same mean validation score (e.g. both at 0 bit errors): the note names the tie, so a
    reader knows the choice between them was the tie-break, not the data."""
    import pandas as pd

    from benchmarks.leaderboard import _best_lr

    def validation(scores: dict[float, list[float]]) -> pd.DataFrame:
        return pd.DataFrame([{"lr": lr, "seed": i, "value": v} for lr, vs in scores.items() for i, v in enumerate(vs)])

    lrs = [1e-3, 3e-3, 1e-2]
    best, note = _best_lr(validation({1e-3: [0.0, 1.6], 3e-3: [0.0, 0.0], 1e-2: [0.0, 0.0]}), pd.DataFrame(), lrs, 20)
    assert best == 3e-3
    assert note == "lr 0.003 of 0.001, 0.003, 0.01: best mean validation score, tied with 0.01 (the smallest tied lr is taken)"
    best, note = _best_lr(validation({1e-3: [0.0, 1.6], 3e-3: [0.0, 0.1], 1e-2: [0.0, 0.0]}), pd.DataFrame(), lrs, 20)
    assert best == 1e-2 and "tied" not in note


def test_a_second_test_axis_scores_every_length_at_every_value_and_draws_its_heatmap(tmp_path: Path) -> None:
    text = """
seeds = [0]
[train]
batch_size = 4
steps = 3
[eval]
lengths = [1, 3]
samples = 4
grid = { repeats = [1, 4] }
[tasks."memtasks/RepeatCopy-v0"]
bits = 2
max_length = 3
max_repeats = 2
[agents.lstm]
hidden_size = 4
"""
    experiment = load_experiment(write(tmp_path, text))
    assert '"grid"' in experiment.cells[0]._identity_text
    assert '"grid"' not in load_experiment(write(tmp_path, BASE)).cells[0]._identity_text  # old cells stay finished
    out = tmp_path / "out"
    run_experiment(experiment, out, workers=1, progress=False)
    runs = read_runs(out)
    grid = runs[runs["metric"].str.contains("@")]
    assert sorted(set(grid["metric"])) == sorted(f"{m}@repeats={r}" for m in ("bit_errors", "cost_bits", "seq_accuracy")
                                                 for r in (1, 4))  # fmt: skip
    assert set(zip(grid["length"], grid["metric"])) >= {(1, "bit_errors@repeats=4"), (3, "bit_errors@repeats=1")}
    plain = runs[(runs["phase"] == "eval") & (runs["metric"] == "bit_errors")]
    assert sorted(plain["length"]) == [1, 3]  # the usual rows are unchanged
    assert (out / "grid.png").is_file()
    # a longer repeat needs a longer sequence: the grid's rows differ from the training-range rows
    at_4 = grid[(grid["metric"] == "cost_bits@repeats=4") & (grid["length"] == 3)]["value"].iloc[0]
    at_1 = grid[(grid["metric"] == "cost_bits@repeats=1") & (grid["length"] == 3)]["value"].iloc[0]
    assert at_4 > at_1
