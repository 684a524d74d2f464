"""Frozen test sets (benchmarks/testsets.py): exact round trip, deterministic bytes, checksum refusal, and
scores that no longer depend on the sampler or numpy's generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import agents
from benchmarks.evaluate import evaluate, evaluate_frozen
from benchmarks.testsets import TestSetError, build_test_set, file_sha256, load_test_set, save_test_set
from memtasks import make_task

CASES = {
    "memtasks/Copy-v0": ({"bits": 4, "max_length": 6}, [None, 2, 9]),
    "memtasks/RepeatCopy-v0": ({"max_length": 4, "max_repeats": 3}, [2, 5]),
    "memtasks/AssociativeRecall-v0": ({}, [3, 8]),
    "memtasks/PrioritySort-v0": ({}, [None]),
    "memtasks/DynamicNGrams-v0": ({"min_length": 20, "max_length": 20}, [20]),
}


@pytest.mark.parametrize("task_id", list(CASES))
def test_round_trip_is_exact_and_bytes_are_deterministic(task_id: str, tmp_path: Path) -> None:
    kwargs, lengths = CASES[task_id]
    frozen = build_test_set(task_id, kwargs, lengths, samples=5, seed=7)
    sha = save_test_set(frozen, tmp_path / "a.npz")
    assert sha == file_sha256(tmp_path / "a.npz")
    assert save_test_set(build_test_set(task_id, kwargs, lengths, 5, 7), tmp_path / "b.npz") == sha  # same bytes
    loaded = load_test_set(tmp_path / "a.npz", sha)
    assert (loaded.task, loaded.task_kwargs, loaded.seed, loaded.samples) == (task_id, kwargs, 7, 5)
    assert loaded.lengths == frozen.lengths
    for length, batch in frozen.batches.items():
        got = loaded.batches[length]
        for name in ("inputs", "targets", "mask", "lengths"):
            a, b = getattr(batch, name), getattr(got, name)
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)
        assert set(got.extras) == set(batch.extras)
        for name, value in batch.extras.items():
            np.testing.assert_array_equal(got.extras[name], value)


def test_a_changed_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "copy.npz"
    sha = save_test_set(build_test_set("Copy-v0", {"bits": 4}, [3], 4, 1), path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(TestSetError, match="checksum mismatch"):
        load_test_set(path, sha)
    with pytest.raises(TestSetError, match="no such file"):
        load_test_set(tmp_path / "missing.npz", sha)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(TestSetError, match="not a memtasks test set"):
        load_test_set(tmp_path / "junk.npz", None)


def test_frozen_scores_do_not_depend_on_the_sampler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    task = make_task("Copy-v0", bits=4, max_length=5)
    torch.manual_seed(0)
    agent = agents.make_agent("lstm", task.spec, device="cpu", hidden_size=8, num_layers=1)
    path = tmp_path / "copy.npz"
    sha = save_test_set(build_test_set("Copy-v0", {"bits": 4, "max_length": 5}, [3, 7], 16, 99), path)

    sampled = evaluate(agent, task, [3, 7], samples=16, seed=99)
    frozen = evaluate_frozen(agent, task, load_test_set(path, sha))
    # on the day it is made, a frozen set is the sampled one (plus the per-bit accuracy frozen sets report)
    same = frozen[frozen.metric != "bit_accuracy"]
    np.testing.assert_allclose(same.value.to_numpy(), sampled.value.to_numpy())
    accuracy = frozen[frozen.metric == "bit_accuracy"].value.to_numpy()
    errors = frozen[frozen.metric == "bit_errors"].value.to_numpy()
    np.testing.assert_allclose(accuracy, 1 - errors / (4 * np.array([3, 7])))  # 4 bits x L scored steps

    # now every sampler draw differs (another generator algorithm, or a changed sampler) ...
    real_sample = type(task).sample

    def other_draws(self, batch_size, rng, length=None, **options):
        return real_sample(self, batch_size, np.random.default_rng(12345), length=length, **options)

    monkeypatch.setattr(type(task), "sample", other_draws)
    moved = evaluate(agent, task, [3, 7], samples=16, seed=99)
    assert not np.allclose(moved.value.to_numpy(), sampled.value.to_numpy())  # sampled scores move ...
    again = evaluate_frozen(agent, task, load_test_set(path, sha))
    np.testing.assert_array_equal(again.value.to_numpy(), frozen.value.to_numpy())  # ... frozen ones do not


def test_unknown_lengths_are_named(tmp_path: Path) -> None:
    task = make_task("Copy-v0", bits=4)
    agent = agents.make_agent("lstm", task.spec, device="cpu", hidden_size=8, num_layers=1)
    frozen = build_test_set("Copy-v0", {"bits": 4}, [3], 4, 1)
    with pytest.raises(ValueError, match=r"\[50\]"):
        evaluate_frozen(agent, task, frozen, lengths=[50])
