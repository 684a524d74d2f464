"""Property tests: any keyword arguments give a working task or a ValueError/TypeError naming one.

For every NTM task class, random keyword arguments (small, zero, negative and huge
integers, floats, None, strings, ...) must either build a task whose small batches
keep the contract's invariants, or raise ValueError/TypeError whose message names
an argument that was passed. Nothing else may escape. ``sample(length=...)`` and
Repeat Copy's ``repeats=`` get the same treatment.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from memtasks.core import Task
from memtasks.tasks import AssociativeRecall, Copy, DynamicNGrams, PrioritySort, RepeatCopy

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([[3], (2,), 3 + 0j, b"7"]),
)
_huge = st.sampled_from([10**9, -(10**9), 2**70, 2**200, -(2**70)])
_small = st.one_of(st.integers(-3, 40), st.integers(-3, 40).map(np.int64))
_plausible = st.integers(1, 25)


def _weighted(*pairs: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Pick a strategy with the given integer weights (one_of would flatten and re-weight them)."""
    table = [strategy for weight, strategy in pairs for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda i: table[i])


# mostly plausible values so that many argument sets are valid, the rest edge cases and junk
_count = _weighted((6, _plausible), (1, _small), (1, _huge), (1, _junk))
_real = _weighted(
    (4, st.floats(-3, 3)),
    (1, st.integers(-5, 5)),
    (1, st.floats(allow_nan=True, allow_infinity=True)),
    (1, st.sampled_from([3.5e38, -3.5e38, 3.4e38, -3.4e38, 1e308])),
    (1, _junk),
)

# every constructor argument of every task, with the kind of values it is fuzzed with
TASK_ARGS: dict[type[Task], dict[str, st.SearchStrategy[Any]]] = {
    Copy: {"bits": _count, "min_length": _count, "max_length": _count},
    RepeatCopy: {
        "bits": _count,
        "min_length": _count,
        "max_length": _count,
        "min_repeats": _count,
        "max_repeats": _count,
        "max_sweep_repeats": _count,
    },
    AssociativeRecall: {"bits": _count, "item_length": _count, "min_length": _count, "max_length": _count},
    DynamicNGrams: {"order": _count, "min_length": _count, "max_length": _count},
    PrioritySort: {
        "bits": _count,
        "min_length": _count,
        "max_length": _count,
        "num_outputs": _count,
        "priority_low": _real,
        "priority_high": _real,
    },
}
# arguments that size every frame or step: sampled only when small
_WIDTH_ARGS = ("bits", "item_length")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_invariants(task: Task, length: int | None, options: dict[str, Any], seed: int) -> None:
    batch = task.sample(3, np.random.default_rng(seed), length=length, **options)
    B, T = batch.inputs.shape[:2]
    assert B == 3 and T >= 1
    assert batch.inputs.shape == (B, T, task.spec.input_size) and batch.inputs.dtype == np.float32
    assert batch.targets.shape == (B, T, task.spec.output_size) and batch.targets.dtype == np.float32
    assert batch.mask.shape == (B, T) and batch.lengths.shape == (B,)
    assert set(np.unique(batch.mask)) <= {0.0, 1.0}
    assert (batch.mask.sum(axis=1) >= 1).all()
    assert set(np.unique(batch.targets)) <= {0.0, 1.0}
    assert not batch.targets[batch.mask == 0].any()
    if length is None:
        assert ((batch.lengths >= task.min_length) & (batch.lengths <= task.max_length)).all()
    else:
        assert (batch.lengths == length).all()
    low, high = (np.float32(v) for v in task.observation_bounds())  # the env's Box is float32
    assert np.isfinite(low) and np.isfinite(high)
    assert np.isfinite(batch.inputs).all()
    assert batch.inputs.min() >= low and batch.inputs.max() <= high
    for value in batch.extras.values():
        assert value.shape[0] == B
    # scoring works on the batch: logits 0 cost exactly one bit per scored output bit
    cost = task.score(np.zeros(batch.targets.shape), batch)["cost_bits"]
    assert cost == pytest.approx(batch.mask.sum(axis=1).mean() * task.spec.output_size)


def _small_sample_args(task: Task, data: st.DataObject) -> tuple[int | None, dict[str, Any]] | None:
    """A length and options that keep the batch small, or None where no small batch exists."""
    limit = 300 if isinstance(task, DynamicNGrams) else 40
    length: int | None = None
    if task.max_length > limit:  # a huge training range: sweep-style lengths just above the minimum
        low = task.min_allowed_length
        length = data.draw(st.integers(low, low + 6), label="length")
    options: dict[str, Any] = {}
    if isinstance(task, PrioritySort) and task.num_outputs is not None and length is not None:
        if task.num_outputs > limit:
            return None
        length = max(length, task.num_outputs)
    if isinstance(task, RepeatCopy) and task.max_repeats > 12:
        options["repeats"] = data.draw(st.integers(1, 3), label="repeats")
    return length, options


@pytest.mark.parametrize("cls", list(TASK_ARGS), ids=lambda c: c.__name__)
@FUZZ
@given(data=st.data())
def test_constructor_fuzz(cls: type[Task], data: st.DataObject) -> None:
    kwargs = data.draw(st.fixed_dictionaries({}, optional=TASK_ARGS[cls]), label="kwargs")
    try:
        task = cls(**kwargs)
    except (ValueError, TypeError) as exc:
        assert any(name in str(exc) for name in kwargs), f"{exc!r} names none of {sorted(kwargs)}"
        event(f"refused with {type(exc).__name__}")
        return
    assert task.min_allowed_length <= task.min_length <= task.max_length
    if any(_is_int(kwargs.get(name)) and kwargs[name] > 64 for name in _WIDTH_ARGS):
        return  # a valid but enormous frame or item: construction is all there is to check
    args = _small_sample_args(task, data)
    if args is not None:
        _check_invariants(task, args[0], args[1], seed=data.draw(st.integers(0, 2**32 - 1), label="seed"))
        event("built and sampled")


_lengths = st.one_of(_small, st.integers(-(10**12), 0), _junk)


@pytest.mark.parametrize("cls", list(TASK_ARGS), ids=lambda c: c.__name__)
@FUZZ
@given(length=_lengths, seed=st.integers(0, 1000))
def test_sample_length_fuzz(cls: type[Task], length: Any, seed: int) -> None:
    task = cls()
    valid = length is None or (_is_int(length) and length >= task.min_allowed_length)
    try:
        _check_invariants(task, length, {}, seed)
    except (ValueError, TypeError) as exc:
        assert not valid, f"length={length!r} was refused: {exc!r}"
        assert "length" in str(exc)
        return
    assert valid, f"length={length!r} was accepted"


@FUZZ
@given(repeats=st.one_of(st.integers(-3, 25), _huge, _junk), seed=st.integers(0, 1000))
def test_repeats_option_fuzz(repeats: Any, seed: int) -> None:
    task = RepeatCopy()
    valid = repeats is None or (_is_int(repeats) and 1 <= repeats <= task.max_sweep_repeats)
    try:
        _check_invariants(task, 3, {"repeats": repeats}, seed)
    except (ValueError, TypeError) as exc:
        assert not valid, f"repeats={repeats!r} was refused: {exc!r}"
        assert "repeats" in str(exc)
        return
    assert valid, f"repeats={repeats!r} was accepted"
