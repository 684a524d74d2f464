"""Dependencies point down: memtasks <- agents <- benchmarks. The task library never imports or names the
harness (nor the agents), and the agents never the harness; the harness's ``memtasks`` sub-commands arrive
through the ``memtasks.commands`` entry points (see memtasks/cli.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package -> (packages it must not import, words it must not even name: the task library never names the harness)
RULES = {"memtasks": (("agents", "benchmarks"), ("benchmarks",)), "agents": (("benchmarks",), ())}


@pytest.mark.parametrize("package", list(RULES))
def test_no_module_imports_or_names_a_package_above_it(package: str) -> None:
    imports, names = RULES[package]
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    offenders = []
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            bad = [u for u in imports if re.match(rf"\s*(from|import)\s+{u}\b", line)]
            bad += [u for u in names if re.search(rf"\b{u}\b", line)]
            if bad:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_harness_commands_come_from_entry_points() -> None:
    from importlib import metadata

    names = {ep.name for ep in metadata.entry_points(group="memtasks.commands")}
    assert {"train", "eval", "run", "plot", "leaderboard", "viz"} <= names
