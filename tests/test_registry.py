"""The registry: ids, errors, user tasks in a few lines, entry-point plugins, the CLI."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import gymnasium
import numpy as np
import pytest

import memtasks
import memtasks.registry as registry
from memtasks import Batch, Task, TaskSpec
from memtasks.cli import main
from memtasks.core import check_int
from memtasks.tasks import Copy


class Reverse(Task):
    """Reverse: read a sequence of bit vectors, write it back in reverse order."""

    def __init__(self, bits: int = 4, min_length: int = 1, max_length: int = 5) -> None:
        super().__init__(min_length, max_length)
        self.bits = check_int("bits", bits, 1)
        self.spec = TaskSpec("bits", self.bits + 1, "bits", self.bits)

    def _sample(self, lengths: np.ndarray, rng: np.random.Generator) -> Batch:
        B, L = len(lengths), int(lengths.max())
        if (lengths != L).any():
            raise ValueError("this tiny example samples one length per batch")
        seq = rng.integers(0, 2, size=(B, L, self.bits)).astype(np.float32)
        inputs = np.zeros((B, 2 * L + 1, self.bits + 1), np.float32)
        inputs[:, :L, : self.bits] = seq
        inputs[:, L, self.bits] = 1
        targets = np.zeros((B, 2 * L + 1, self.bits), np.float32)
        targets[:, L + 1 :] = seq[:, ::-1]
        mask = np.zeros((B, 2 * L + 1), np.float32)
        mask[:, L + 1 :] = 1
        return Batch(inputs, targets, mask, lengths)


@pytest.fixture
def scratch_ids() -> Iterator[list[str]]:
    """Ids a test registers; removed afterwards from both registries so other tests see the usual set."""
    ids: list[str] = []
    yield ids
    for task_id in ids:
        registry._REGISTRY.pop(task_id, None)
        gymnasium.registry.pop(f"memtasks/{task_id}", None)


def test_builtin_ids_and_namespace() -> None:
    ids = memtasks.list_tasks()
    ntm = {"Copy-v0", "RepeatCopy-v0", "AssociativeRecall-v0", "DynamicNGrams-v0", "PrioritySort-v0"}
    assert ntm <= set(ids)
    assert len(set(ids)) == len(ids)
    for task_id in ids:
        assert f"memtasks/{task_id}" in gymnasium.registry
    assert isinstance(memtasks.make_task("memtasks/Copy-v0"), Copy)
    assert memtasks.make_task("Copy-v0", bits=3).spec.input_size == 4
    assert memtasks.task_info("memtasks/Copy-v0").description.startswith("Copy:")


def test_unknown_id_lists_known_ids() -> None:
    with pytest.raises(ValueError) as err:
        memtasks.make_task("Cpoy-v0")
    text = str(err.value)
    assert "Did you mean Copy-v0" in text
    for task_id in memtasks.list_tasks():
        assert task_id in text
    with pytest.raises(TypeError, match="task_id"):
        memtasks.make_task(3)


def test_bad_registrations_are_refused(scratch_ids: list[str]) -> None:
    with pytest.raises(ValueError, match="already registered"):
        memtasks.register_task("Copy-v0", Copy)
    with pytest.raises(ValueError, match="already registered"):
        memtasks.register_task("memtasks/Copy-v0", Copy)
    for bad in ("Copy", "copy-v", "-v0", "Copy v0-v1", "1Copy-v0"):
        with pytest.raises(ValueError, match="task_id must look like"):
            memtasks.register_task(bad, Copy)
    with pytest.raises(TypeError, match="factory"):
        memtasks.register_task("NotCallable-v0", 42)
    assert "NotCallable-v0" not in memtasks.list_tasks()
    for bad in ("", "cost bits", 3):
        with pytest.raises(ValueError, match="score_metric"):
            memtasks.register_task("BadScore-v0", Copy, score_metric=bad)
    assert "BadScore-v0" not in memtasks.list_tasks()


def test_the_paper_reports_cost_on_ngrams_and_priority_sort_and_they_are_ranked_by_it() -> None:
    assert memtasks.task_info("DynamicNGrams-v0").score_metric == "cost_bits"
    assert memtasks.task_info("PrioritySort-v0").score_metric == "cost_bits"
    assert memtasks.task_info("Copy-v0").score_metric is None  # bit errors, the default for bit outputs


def test_user_task_in_a_few_lines(scratch_ids: list[str]) -> None:
    scratch_ids.append("TestReverse-v0")
    memtasks.register_task("TestReverse-v0", Reverse)
    assert memtasks.list_tasks()[-1] == "TestReverse-v0"
    assert memtasks.task_info("TestReverse-v0").description == Reverse.__doc__.splitlines()[0]

    task = memtasks.make_task("TestReverse-v0", bits=3)
    batch = task.sample(4, np.random.default_rng(0), length=3)
    np.testing.assert_array_equal(batch.targets[:, 4:], batch.inputs[:, 2::-1, :3])

    env = gymnasium.make("memtasks/TestReverse-v0", bits=3)
    obs, _ = env.reset(seed=1, options={"length": 2})
    expected = task.sample(1, np.random.default_rng(1), length=2)
    np.testing.assert_array_equal(obs, expected.inputs[0, 0])
    total = 0.0
    for t in range(expected.num_steps):
        _, reward, terminated, _, _ = env.step(expected.targets[0, t].astype(np.int8))
        total += reward
    assert terminated and total == 0.0


class _FakeEntryPoint:
    def __init__(self, name: str, obj: Any = None, error: Exception | None = None) -> None:
        self.name, self.value, self._obj, self._error = name, f"fake_plugin:{name}", obj, error

    def load(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._obj


def _fake_metadata(monkeypatch: pytest.MonkeyPatch, entry_points: list[_FakeEntryPoint]) -> list[str]:
    """Make ``registry.metadata.entry_points`` return ``entry_points``; record the groups asked for."""
    groups: list[str] = []

    def fake_entry_points(*, group: str) -> list[_FakeEntryPoint]:
        groups.append(group)
        return entry_points if group == registry.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(registry, "metadata", types.SimpleNamespace(entry_points=fake_entry_points))
    return groups


def test_entry_point_plugin(monkeypatch: pytest.MonkeyPatch, scratch_ids: list[str]) -> None:
    scratch_ids.append("PluginReverse-v0")
    groups = _fake_metadata(
        monkeypatch,
        [_FakeEntryPoint("PluginReverse-v0", Reverse), _FakeEntryPoint("Copy-v0", Reverse)],
    )
    memtasks.load_plugins()
    assert groups == ["memtasks.tasks"]
    assert isinstance(memtasks.make_task("PluginReverse-v0"), Reverse)
    assert isinstance(gymnasium.make("memtasks/PluginReverse-v0").unwrapped.task, Reverse)
    assert memtasks.task_info("Copy-v0").factory is Copy  # an id taken already is left alone
    memtasks.load_plugins()  # loading twice is harmless


def test_broken_plugin_warns(monkeypatch: pytest.MonkeyPatch, scratch_ids: list[str]) -> None:
    scratch_ids.extend(["Broken-v0", "bad name"])
    _fake_metadata(
        monkeypatch,
        [
            _FakeEntryPoint("Broken-v0", error=ImportError("no module named fake_plugin")),
            _FakeEntryPoint("bad name", Reverse),
        ],
    )
    with pytest.warns(UserWarning) as record:
        memtasks.load_plugins()
    messages = [str(w.message) for w in record]
    assert any("Broken-v0" in m and "no module named fake_plugin" in m for m in messages)
    assert any("bad name" in m and "task_id must look like" in m for m in messages)
    assert "Broken-v0" not in memtasks.list_tasks()


def test_cli_list_prints_every_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for task_id in memtasks.list_tasks():
        assert f"memtasks/{task_id} " in out


def test_cli_sample_answers_with_the_targets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", "Copy-v0", "--length", "3", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    ins = [line[4:] for line in lines if line.startswith("in  ")]
    outs = [line[4:] for line in lines if line.startswith("out ")]
    assert len(ins) == 9 and len(outs) == 8
    assert "X" not in out  # every answer is right
    # the scored steps show the first three input steps again, channel by channel
    for row_in, row_out in zip(ins, outs):
        assert row_out[4:7] == row_in[0:3] and row_out[:4] == "    "
    assert main(["sample", "memtasks/RepeatCopy-v0", "--seed", "1"]) == 0
    assert "X" not in capsys.readouterr().out


def test_cli_help_and_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "sample" in capsys.readouterr().out
    assert main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err
