"""``memtasks run --backend ray``: the same cell records, runs.csv and resume as the local process pool.

The runs use ``benchmarks/experiments/tiny.toml`` (two cells of a few seconds)
on a local Ray of two CPUs. The tests that need Ray skip when it is not
installed (``pip install -e ".[ray]"``); those on the option checks run always.
Nothing here reads Ray's own messages.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from benchmarks.experiment import load_experiment
from benchmarks.results import read_runs
from benchmarks.runner import BackendError, _cell_gpus, cli, run_experiment

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "benchmarks" / "experiments" / "tiny.toml"
CELLS = ("Copy-v0__lstm__seed0", "Copy-v0__lstm__seed1")
RAY_MISSING = 'ray is not installed (pip install -e ".[ray]")'


def comparable(runs: pd.DataFrame) -> pd.DataFrame:
    """runs.csv without the one column that may differ between identical runs."""
    return runs.drop(columns=["wall_s"])


def untimed(value: Any) -> Any:
    """A cell record without what differs between identical runs: clocks, time stamps, threads, and the
    environment it ran in (provenance: a cluster's nodes may differ in platform, and a commit between the two
    runs changes the recorded git state)."""
    if isinstance(value, dict):
        return {
            k: untimed(v)
            for k, v in value.items()
            if not (k.endswith("wall_s") or k.endswith("_at") or k in ("threads", "first_step_s", "provenance"))
        }
    return value


# -- the options: refused in one line, before anything is written (no Ray needed) ---------------------------


@pytest.mark.parametrize(
    ("options", "needles"),
    [
        (["--backend", "dask"], ["--backend", "'dask'", "'local'", "'ray'", 'pip install -e ".[ray]"']),
        (["--address", "head:6379"], ["--address", "--backend ray", "local", 'pip install -e ".[ray]"']),
        (
            ["--backend", "local", "--address", "head:6379"],
            ["--address", "--backend ray", "local", 'pip install -e ".[ray]"'],
        ),
    ],
)
def test_bad_backend_options_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], needles: list[str]
) -> None:
    out = tmp_path / "out"
    assert cli([str(TINY), "--out", str(out), "--no-progress", "--no-plots", *options]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err
    assert not out.exists()  # refused before the results folder is made


def test_ray_not_installed_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, installed or not
    out = tmp_path / "out"
    assert cli([str(TINY), "--out", str(out), "--no-progress", "--backend", "ray"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    for needle in ("--backend ray", "ray", 'pip install -e ".[ray]"', "--backend local"):
        assert needle in err
    with pytest.raises(BackendError):  # the API refuses it the same way (a ValueError)
        run_experiment(TINY, out, backend="ray", progress=False)
    assert not out.exists()


def test_gpus_asked_per_cell() -> None:
    """One GPU for a CUDA cell when the cluster has GPUs; none on a cluster without (the cell then fails as locally)."""
    cell = load_experiment(TINY).cells[0]

    def on(device: str) -> Any:
        return dataclasses.replace(cell, train=dataclasses.replace(cell.train, device=device))

    assert [_cell_gpus(on(d), 2.0) for d in ("cpu", "cuda", "cuda:0", "auto")] == [0, 1, 1, 1]
    assert [_cell_gpus(on(d), 0.0) for d in ("cpu", "cuda", "cuda:3", "auto")] == [0, 0, 0, 0]
    with pytest.raises(BackendError, match="cuda:1"):  # Ray shows a task only its own GPU
        _cell_gpus(on("cuda:1"), 2.0)


# -- runs on Ray ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny.toml on the local backend (one worker, in this process)."""
    out = tmp_path_factory.mktemp("local") / "tiny"
    summary = run_experiment(TINY, out, workers=1, progress=False, plots=False)
    assert summary.ok and summary.ran == 2
    return out


@pytest.fixture(scope="module")
def ray_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny.toml through `memtasks run --backend ray`, on a local Ray that the runner starts and shuts down."""
    ray = pytest.importorskip("ray", reason=RAY_MISSING)
    assert not ray.is_initialized()
    out = tmp_path_factory.mktemp("ray") / "tiny"
    assert cli([str(TINY), "--out", str(out), "--backend", "ray", "--workers", "2", "--no-plots", "--no-progress"]) == 0
    assert not ray.is_initialized()  # the runner shut down the Ray it started
    return out


def test_ray_backend_gives_the_local_backends_records_and_runs(reference: Path, ray_run: Path) -> None:
    pd.testing.assert_frame_equal(comparable(read_runs(ray_run)), comparable(read_runs(reference)))
    for name in CELLS:
        local, remote = reference / "cells" / name, ray_run / "cells" / name
        assert sorted(p.name for p in remote.iterdir()) == sorted(p.name for p in local.iterdir())
        records = [json.loads((d / "cell.json").read_text()) for d in (local, remote)]
        assert records[1]["status"] == "ok"
        assert untimed(records[1]) == untimed(records[0])
        assert (remote / "eval.csv").read_bytes() == (local / "eval.csv").read_bytes()
    manifest = json.loads((ray_run / "experiment.json").read_text())
    assert [c["status"] for c in manifest["cells"]] == ["ok", "ok"]
    assert not list(ray_run.glob("**/.*.tmp")), "a temporary file was left behind"


def test_ray_resume_runs_only_the_unfinished_cells(ray_run: Path, tmp_path: Path) -> None:
    """A run cut off after its first cell (second record gone, a torn log left) is finished by the same command.

    This time Ray is started by the caller: the runner uses it as it is and leaves it running.
    """
    ray = pytest.importorskip("ray", reason=RAY_MISSING)
    out = tmp_path / "tiny"
    shutil.copytree(ray_run, out)
    kept, cut = out / "cells" / CELLS[0], out / "cells" / CELLS[1]
    kept_bytes = {p.name: p.read_bytes() for p in kept.iterdir()}
    (cut / "cell.json").unlink()
    with open(cut / "train.csv", "a") as f:
        f.write("25,200,1.0,0.69")  # a torn row, as a kill mid-write would leave
    (cut / "stray.txt").write_text("left over")
    (out / "runs.csv").unlink()

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = run_experiment(TINY, out, backend="ray", progress=False, plots=False)
        assert ray.is_initialized()  # not ours to shut down
    finally:
        ray.shutdown()
    assert (summary.ran, summary.skipped) == (1, 1) and summary.ok
    assert {p.name: p.read_bytes() for p in kept.iterdir()} == kept_bytes  # the finished cell is untouched
    assert not (cut / "stray.txt").exists()
    pd.testing.assert_frame_equal(comparable(read_runs(out)), comparable(read_runs(ray_run)))
    assert not list(out.glob("**/.*.tmp")), "a temporary file was left behind"
