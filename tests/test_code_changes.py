"""Declared behaviour-preserving code changes (benchmarks/code_changes.toml): a record made before one stays
current, anything undeclared still makes it stale, and the declarations file is checked."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import torch

from benchmarks import provenance, same_numbers
from benchmarks.provenance import CodeChange, carry_forward, code_changes, identity_fingerprint, is_current

ROOT = Path(__file__).resolve().parents[1]


def _identity(digest: str, **agent_config) -> dict:
    return {"task": "memtasks/Copy-v0", "agent": "ntm", "seed": 0, "train": {"lr": 0.003},
            "agent_config": {"controller_size": 100, **agent_config},
            "code": {"agents/ntm.py": digest, "memtasks/tasks/copy.py": "111111111111"}}


CHANGE = CodeChange(file="agents/ntm.py", before="aaaaaaaaaaaa", after="bbbbbbbbbbbb",
                    added={"agent_config.new_option": 0.0}, commit="abc", why="an option", evidence="x.md")


def test_a_declared_change_keeps_an_old_record_current() -> None:
    old = _identity("aaaaaaaaaaaa")
    now = _identity("bbbbbbbbbbbb", new_option=0.0)
    record = {"fingerprint": identity_fingerprint(old), "identity": old}
    assert carry_forward(old, (CHANGE,)) == now
    assert old["code"]["agents/ntm.py"] == "aaaaaaaaaaaa"  # the record itself is left alone
    assert is_current(record, identity_fingerprint(now), (CHANGE,))
    assert not is_current(record, identity_fingerprint(now), ())  # without the declaration: stale


@pytest.mark.parametrize("now", [
    _identity("bbbbbbbbbbbb", new_option=0.5),  # the new option set to a value the old code never ran
    _identity("cccccccccccc", new_option=0.0),  # a further, undeclared change
    {**_identity("bbbbbbbbbbbb", new_option=0.0), "seed": 1},  # another setting
])
def test_anything_undeclared_still_makes_a_record_stale(now: dict) -> None:
    old = _identity("aaaaaaaaaaaa")
    assert not is_current({"fingerprint": identity_fingerprint(old), "identity": old}, identity_fingerprint(now),
                          (CHANGE,))
    assert provenance.describe_changes(old, now)  # and says what


def test_changes_chain() -> None:
    second = CodeChange(file="agents/ntm.py", before="bbbbbbbbbbbb", after="cccccccccccc", commit="def",
                        why="a refactor", evidence="y.md")
    old = _identity("aaaaaaaaaaaa")
    assert carry_forward(old, (second, CHANGE)) == _identity("cccccccccccc", new_option=0.0)


def test_the_cell_fingerprint_is_the_identity_fingerprint() -> None:
    from benchmarks.experiment import load_experiment

    cell = load_experiment(ROOT / "benchmarks" / "experiments" / "tiny.toml").cells[0]
    assert identity_fingerprint(cell.identity()) == cell.fingerprint()


@pytest.mark.parametrize("entry, field", [
    ('file = "a.py"\nbefore = "aaaaaaaaaaaa"\nafter = "aaaaaaaaaaaa"', "same digest"),
    ('file = "a.py"\nbefore = "aaaa"\nafter = "bbbbbbbbbbbb"', "before"),
    ('file = "a.py"\nbefore = "aaaaaaaaaaaa"\nafter = "bbbbbbbbbbbb"\nadded = { "config.x" = 1 }', "added"),
    ('file = "a.py"\nbefore = "aaaaaaaaaaaa"\nafter = "bbbbbbbbbbbb"\nwhen = "today"', "when"),
])
def test_a_malformed_declaration_is_refused_in_one_line(tmp_path: Path, entry: str, field: str) -> None:
    path = tmp_path / "code_changes.toml"
    path.write_text(f'[[change]]\n{entry}\ncommit = "c"\nwhy = "w"\nevidence = "e"\n')
    with pytest.raises(ValueError, match=re.escape(field)) as error:
        code_changes(path)
    assert "\n" not in str(error.value) and "[[change]] 1" in str(error.value)


@pytest.mark.parametrize("second, message", [
    ('before = "aaaaaaaaaaaa"\nafter = "cccccccccccc"', "already moved"),
    ('before = "bbbbbbbbbbbb"\nafter = "aaaaaaaaaaaa"', "cycle"),
])
def test_ambiguous_or_circular_declarations_are_refused(tmp_path: Path, second: str, message: str) -> None:
    tail = 'commit = "c"\nwhy = "w"\nevidence = "e"\n'
    path = tmp_path / "code_changes.toml"
    path.write_text(f'[[change]]\nfile = "a.py"\nbefore = "aaaaaaaaaaaa"\nafter = "bbbbbbbbbbbb"\n{tail}'
                    f'[[change]]\nfile = "a.py"\n{second}\n{tail}')
    with pytest.raises(ValueError, match=message):
        code_changes(path)


def test_every_shipped_declaration_has_evidence_of_the_same_numbers() -> None:
    changes = code_changes()
    for change in changes:
        evidence = ROOT / change.evidence
        assert evidence.is_file(), change.evidence
        rows = [line for line in evidence.read_text().splitlines() if line.startswith("| `")]
        assert rows and all(line.rstrip().endswith("| same numbers |") for line in rows), change.evidence
        assert f" and {change.commit[:7]}:" in evidence.read_text().splitlines()[0], "evidence for another commit"


def test_same_numbers_finds_a_difference_in_the_last_bit() -> None:
    a = pd.DataFrame({"step": [10, 20], "loss": [0.5, 0.25]})
    b = a.copy()
    assert same_numbers._first_difference(a, b) is None
    b.loc[1, "loss"] = float.fromhex("0x1.0000000000001p-2")  # 0.25 and one unit in the last place
    assert "loss in row 1" in same_numbers._first_difference(a, b)
    w = {"x": torch.ones(3)}
    assert same_numbers._weights_difference(w, {"x": torch.ones(3)}) is None
    assert same_numbers._weights_difference(w, {"x": torch.nextafter(torch.ones(3), torch.full((3,), 2.0))})
