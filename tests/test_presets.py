"""Per-task recipe presets: registry rules, precedence (flag > preset > default) and provenance in result.json."""

from __future__ import annotations

import json

import pytest

from benchmarks import presets
from benchmarks.presets import Preset, apply_preset, list_presets, preset_for, register_preset
from memtasks.cli import main

TASK = "memtasks/Copy-v0"


@pytest.fixture
def registry(monkeypatch):
    """A private registry: the presets registered in a test vanish after it."""
    monkeypatch.setattr(presets, "_PRESETS", dict(presets._PRESETS))
    return presets._PRESETS


def test_registry_refuses_duplicates_unknown_settings_and_missing_sources(registry):
    register_preset(Preset("Copy-v0", "lstm", {"lr": 1e-2}, source="results/x.md"))
    assert preset_for(TASK, "lstm").settings == {"lr": 1e-2}  # namespaced and bare ids alike
    with pytest.raises(ValueError, match="already registered"):
        register_preset(Preset(TASK, "lstm", {"lr": 3e-3}, source="results/y.md"))
    with pytest.raises(ValueError, match="'learning_rate' is not a training setting"):
        register_preset(Preset(TASK, "dnc", {"learning_rate": 1e-2}, source="results/x.md"))
    with pytest.raises(ValueError, match="'seed' is not a training setting"):
        register_preset(Preset(TASK, "dnc", {"seed": 1}, source="results/x.md"))
    with pytest.raises(ValueError, match="source"):
        register_preset(Preset(TASK, "dnc", {"lr": 1e-2}))
    assert preset_for(TASK, "dnc") is None


def test_every_shipped_preset_builds_a_valid_config_and_names_an_existing_results_file():
    from pathlib import Path

    from benchmarks.train import TrainConfig

    repo = Path(__file__).resolve().parents[1]
    assert list_presets(), "no preset shipped"
    for preset in list_presets():
        assert (repo / preset.source.split()[0]).is_file(), preset.source
        TrainConfig(task=preset.task, agent=preset.agent, **preset.settings).validate()
        assert preset.source.startswith("results/")


def test_flags_beat_the_preset_which_beats_the_defaults(registry):
    register_preset(Preset(TASK, "lstm", {"lr": 1e-2, "batch_size": 8}, source="results/x.md"))
    given = {"task": TASK, "agent": "lstm", "batch_size": 4}
    settings, sources, used = apply_preset(given, {"lr": None, "batch_size": None, "steps": None})
    assert settings == {"task": TASK, "agent": "lstm", "batch_size": 4, "lr": 1e-2}
    assert sources == {"task": "flag", "agent": "flag", "batch_size": "flag", "lr": "preset", "steps": "default"}
    assert used is not None and used.agent == "lstm"
    settings, sources, used = apply_preset(given, {"lr": None}, use_preset=False)
    assert "lr" not in settings and sources["lr"] == "default" and used is None
    every = {"task": TASK, "agent": "lstm", "batch_size": 4, "lr": 1e-3}
    assert apply_preset(every, {})[2] is None  # every setting overridden: the preset played no part


def test_cli_records_where_each_setting_came_from(registry, tmp_path, capsys):
    register_preset(Preset(TASK, "lstm", {"lr": 7e-3, "agent_kwargs": {"hidden_size": 6}}, source="results/x.md"))
    common = ["train", "--task", TASK, "--agent", "lstm", "--steps", "2", "--task-kwargs", "bits=2,max_length=2",
              "--threads", "1", "--no-progress"]  # fmt: skip
    assert main([*common, "--batch-size", "3", "--out", str(tmp_path / "preset")]) == 0
    assert "preset for memtasks/Copy-v0 / lstm" in capsys.readouterr().out
    record = json.loads((tmp_path / "preset" / "result.json").read_text())
    assert record["config"]["lr"] == 7e-3 and record["resolved"]["agent_config"]["hidden_size"] == 6
    source = record["settings_source"]
    assert source["lr"] == "preset" and source["agent_kwargs"] == "preset"
    assert source["batch_size"] == "flag" and source["optimizer"] == "default"
    assert record["preset"]["source"] == "results/x.md"

    assert main([*common, "--lr", "1e-3", "--out", str(tmp_path / "flag")]) == 0  # a flag replaces one setting
    record = json.loads((tmp_path / "flag" / "result.json").read_text())
    assert record["config"]["lr"] == 1e-3 and record["settings_source"]["lr"] == "flag"
    assert record["resolved"]["agent_config"]["hidden_size"] == 6  # the rest of the preset still applies

    assert main([*common, "--no-preset", "--out", str(tmp_path / "none")]) == 0
    record = json.loads((tmp_path / "none" / "result.json").read_text())
    assert record["preset"] is None and record["settings_source"]["lr"] == "default"
    assert record["config"]["lr"] != 7e-3 and record["resolved"]["agent_config"]["hidden_size"] != 6
