"""The git part of a record's provenance: results files alone do not mark the code as changed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks import provenance

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "results" / "cell").mkdir(parents=True)
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results" / "cell" / "train.csv").write_text("step,loss\n1,0.5\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    monkeypatch.setattr(provenance, "_ROOT", tmp_path)
    provenance._git.cache_clear()
    yield tmp_path
    provenance._git.cache_clear()


def _state() -> tuple[bool | None, bool | None]:
    provenance._git.cache_clear()
    info = provenance._git()
    return info["git_dirty"], info["git_dirty_code"]


def test_clean_tree_is_clean(repo: Path) -> None:
    assert _state() == (False, False)


def test_a_rerun_cell_dirties_the_tree_but_not_the_code(repo: Path) -> None:
    shutil.rmtree(repo / "results" / "cell")  # what the runner does before re-running a committed cell
    assert _state() == (True, False)


def test_a_code_change_is_dirty_code(repo: Path) -> None:
    (repo / "code.py").write_text("x = 2\n")
    assert _state() == (True, True)


def test_untracked_files_do_not_count(repo: Path) -> None:
    (repo / "scratch.py").write_text("y = 1\n")
    assert _state() == (False, False)
