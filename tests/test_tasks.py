"""Encodings of the NTM tasks, checked against independent decoders, and ``score_bits``.

Each ``_solve_*`` function below reads one sample's input frames the way a person
would read the task description and writes down what the targets must be; the
samplers are compared against them rather than against a re-implementation.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest

import memtasks
from memtasks.core import Batch, score_bits
from memtasks.tasks.dynamic_ngrams import ngram_bayes_probabilities

NTM_IDS = ["Copy-v0", "RepeatCopy-v0", "AssociativeRecall-v0", "DynamicNGrams-v0", "PrioritySort-v0"]

# kwargs giving batches with a spread of lengths (and short enough to be quick)
MIXED_KWARGS: dict[str, dict[str, Any]] = {
    "Copy-v0": {},
    "RepeatCopy-v0": {},
    "AssociativeRecall-v0": {},
    "DynamicNGrams-v0": {"min_length": 6, "max_length": 40},
    "PrioritySort-v0": {"min_length": 3, "max_length": 20},
}


# -- independent decoders: (task, one sample's inputs) -> (expected targets, expected mask) ------------


def _solve_copy(task: Any, x: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    bits = task.bits
    L = int(np.flatnonzero(x[:, bits] == 1)[0])
    assert L == length
    y = np.zeros((2 * L + 1, bits))
    y[L + 1 :] = x[:L, :bits]
    return y, np.r_[np.zeros(L + 1), np.ones(L)]


def _solve_repeat_copy(task: Any, x: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    bits = task.bits
    L = int(np.flatnonzero(x[:, bits] == 1)[0])
    support = np.arange(task.min_repeats, task.max_repeats + 1)
    std = support.std() or 1.0  # population std of the uniform training counts
    R = round(float(x[L + 1, bits + 1]) * std + support.mean())
    y = np.zeros((L + 2 + L * R + 1, bits + 1))
    y[L + 2 : L + 2 + L * R, :bits] = np.tile(x[:L, :bits], (R, 1))
    y[-1, bits] = 1
    return y, np.r_[np.zeros(L + 2), np.ones(L * R + 1)]


def _solve_associative_recall(task: Any, x: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    bits = task.bits
    item_starts = np.flatnonzero(x[:, bits] == 1)
    q1, q2 = np.flatnonzero(x[:, bits + 1] == 1)[:2]
    k = q2 - q1 - 1
    items = [x[s + 1 : s + 1 + k, :bits] for s in item_starts]
    query = x[q1 + 1 : q2, :bits]
    matches = [i for i, item in enumerate(items[:-1]) if np.array_equal(item, query)]
    assert matches, "the query is none of the items that have a successor"
    y = np.zeros((q2 + 1 + k, bits))
    y[q2 + 1 :] = items[matches[0] + 1]  # items could coincide; the sampler's j is checked separately
    return y, np.r_[np.zeros(q2 + 1), np.ones(k)]


def _solve_priority_sort(task: Any, x: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    bits = task.bits
    N = int(np.flatnonzero(x[:, bits + 1] == 1)[0])
    K = task.num_outputs if task.num_outputs is not None else int(round(0.8 * N))
    ranked = sorted(range(N), key=lambda i: -x[i, bits])  # Python's sort is stable
    assert all(x[a, bits] >= x[b, bits] for a, b in zip(ranked, ranked[1:]))
    y = np.zeros((N + 1 + K, bits))
    y[N + 1 :] = x[ranked[:K], :bits]
    return y, np.r_[np.zeros(N + 1), np.ones(K)]


def _solve_ngrams(task: Any, x: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    T = length - 1
    y = np.full((T, 1), np.nan)  # the last target is the one bit never shown
    y[:-1] = x[1:T]
    return y, np.ones(T)


SOLVERS = {
    "Copy-v0": _solve_copy,
    "RepeatCopy-v0": _solve_repeat_copy,
    "AssociativeRecall-v0": _solve_associative_recall,
    "DynamicNGrams-v0": _solve_ngrams,
    "PrioritySort-v0": _solve_priority_sort,
}


def _check_sample_against_solver(task_id: str, task: Any, batch: Batch, b: int) -> None:
    y, m = SOLVERS[task_id](task, batch.inputs[b], int(batch.lengths[b]))
    T_b = len(m)
    known = ~np.isnan(y)
    np.testing.assert_array_equal(batch.targets[b, :T_b][known], y[known])
    np.testing.assert_array_equal(batch.mask[b, :T_b], m)
    assert set(np.unique(batch.targets[b, :T_b][~known])) <= {0.0, 1.0}
    # right padding: nothing at all after the sample's own last step
    assert not batch.inputs[b, T_b:].any()
    assert not batch.targets[b, T_b:].any()
    assert not batch.mask[b, T_b:].any()


# -- the contract, for every NTM task ------------------------------------------------------------


@pytest.mark.parametrize("task_id", NTM_IDS)
def test_shapes_dtypes_and_mask(task_id: str) -> None:
    task = memtasks.make_task(task_id, **MIXED_KWARGS[task_id])
    batch = task.sample(16, np.random.default_rng(1))
    B, T = batch.inputs.shape[:2]
    assert B == 16
    assert batch.inputs.shape == (B, T, task.spec.input_size) and batch.inputs.dtype == np.float32
    assert batch.targets.shape == (B, T, task.spec.output_size) and batch.targets.dtype == np.float32
    assert batch.mask.shape == (B, T) and batch.mask.dtype == np.float32
    assert batch.lengths.shape == (B,) and batch.lengths.dtype == np.int64
    assert set(np.unique(batch.mask)) <= {0.0, 1.0}
    assert set(np.unique(batch.targets)) <= {0.0, 1.0}
    assert not batch.targets[batch.mask == 0].any()
    assert (batch.mask.sum(1) > 0).all()
    assert ((batch.lengths >= task.min_length) & (batch.lengths <= task.max_length)).all()
    assert batch.mask[:, -1].any()  # T is no longer than the longest sample needs
    lo, hi = task.observation_bounds()
    assert np.isfinite(batch.inputs).all() and batch.inputs.min() >= lo and batch.inputs.max() <= hi
    for key, value in batch.extras.items():
        assert value.shape[0] == B, key


@pytest.mark.parametrize("task_id", NTM_IDS)
def test_targets_follow_from_inputs(task_id: str) -> None:
    task = memtasks.make_task(task_id, **MIXED_KWARGS[task_id])
    batch = task.sample(48, np.random.default_rng(2))
    assert len(set(batch.lengths.tolist())) > 1  # the batch really mixes lengths (padding is exercised)
    for b in range(batch.batch_size):
        _check_sample_against_solver(task_id, task, batch, b)


@pytest.mark.parametrize("task_id", NTM_IDS)
def test_length_fixes_length(task_id: str) -> None:
    task = memtasks.make_task(task_id, **MIXED_KWARGS[task_id])
    length = task.min_length + 1  # inside or just beyond the training range: both are allowed
    batch = task.sample(8, np.random.default_rng(3), length=length)
    assert (batch.lengths == length).all()
    if "repeats" not in batch.extras:  # with one length, only Repeat Copy's R varies the episode
        assert (batch.mask.sum(1) == batch.mask[0].sum()).all()
    for b in range(batch.batch_size):
        _check_sample_against_solver(task_id, task, batch, b)


@pytest.mark.parametrize("task_id", NTM_IDS)
def test_same_seed_same_batch(task_id: str) -> None:
    task = memtasks.make_task(task_id)
    a = task.sample(8, np.random.default_rng(7))
    b = task.sample(8, np.random.default_rng(7))
    c = task.sample(8, np.random.default_rng(8))
    for field in ("inputs", "targets", "mask", "lengths"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.extras.keys() == b.extras.keys()
    for key in a.extras:
        np.testing.assert_array_equal(a.extras[key], b.extras[key])
    assert a.inputs.shape != c.inputs.shape or not np.array_equal(a.inputs, c.inputs)


@pytest.mark.parametrize("task_id", NTM_IDS)
def test_bad_length_and_options(task_id: str) -> None:
    task = memtasks.make_task(task_id)
    with pytest.raises(ValueError, match="length"):
        task.sample(2, np.random.default_rng(0), length=task.min_allowed_length - 1)
    with pytest.raises(TypeError, match="length"):
        task.sample(2, np.random.default_rng(0), length=3.0)
    with pytest.raises(ValueError, match="unknown option"):
        task.sample(2, np.random.default_rng(0), colour="red")


# -- the worked examples in the docstrings -------------------------------------------------------

# task id -> (kwargs, length, sample options, input width, output width)
EXAMPLES: dict[str, tuple[dict[str, Any], int, dict[str, Any], int, int]] = {
    "Copy-v0": ({"bits": 2}, 2, {}, 3, 2),
    "RepeatCopy-v0": ({"bits": 2}, 2, {"repeats": 2}, 4, 3),
    "AssociativeRecall-v0": ({"bits": 2, "item_length": 2}, 2, {}, 4, 2),
    "DynamicNGrams-v0": ({"order": 3}, 8, {}, 1, 1),
    "PrioritySort-v0": ({"bits": 2, "num_outputs": 2}, 3, {}, 4, 2),
}


def _docstring_table(cls: type) -> np.ndarray:
    """The rows of the docstring's worked-example table: t, inputs..., targets..., scored[, extra]."""
    text = cls.__doc__.split("Worked example", 1)[1].split("##", 1)[0]
    number = r"-?\d+(?:\.\d+)?"
    rows = [line.split() for line in text.splitlines() if re.fullmatch(rf"\s*\d+(\s+{number})+\s*", line)]
    table = np.array(rows, dtype=np.float64)
    np.testing.assert_array_equal(table[:, 0], np.arange(len(table)))  # the t column counts from 0
    return table[:, 1:]


@pytest.mark.parametrize("task_id", NTM_IDS)
def test_docstring_worked_example(task_id: str) -> None:
    kwargs, length, options, n_in, n_out = EXAMPLES[task_id]
    task = memtasks.make_task(task_id, **kwargs)
    table = _docstring_table(type(task))
    x, y, m = table[:, :n_in], table[:, n_in : n_in + n_out], table[:, n_in + n_out]
    assert (task.spec.input_size, task.spec.output_size) == (n_in, n_out)

    # the example is consistent with the task description ...
    y_solved, m_solved = SOLVERS[task_id](task, x, length)
    known = ~np.isnan(y_solved)
    np.testing.assert_array_equal(y[known], y_solved[known])
    np.testing.assert_array_equal(m, m_solved)

    # ... and the sampler produces exactly it, for some seed (continuous priorities never repeat,
    # so for Priority Sort the layout is compared instead)
    if task_id == "PrioritySort-v0":
        batch = task.sample(1, np.random.default_rng(0), length=length, **options)
        np.testing.assert_array_equal(batch.mask[0], m)
        return
    for seed in range(5000):
        batch = task.sample(1, np.random.default_rng(seed), length=length, **options)
        if batch.inputs.shape[1] == len(x) and np.allclose(batch.inputs[0], x, atol=1e-4):
            break
    else:
        pytest.fail("no seed in 0..4999 reproduces the worked example's inputs")
    np.testing.assert_array_equal(batch.targets[0], y)
    np.testing.assert_array_equal(batch.mask[0], m)
    if task_id == "DynamicNGrams-v0":  # the extra column: the Bayes-optimal predictions
        np.testing.assert_allclose(task.optimal_probabilities(batch)[0, :, 0], table[:, -1])


# -- task-specific behaviour ---------------------------------------------------------------------


def test_repeat_copy_repeats_option_and_normalisation() -> None:
    task = memtasks.make_task("RepeatCopy-v0")
    batch = task.sample(4, np.random.default_rng(0), length=3, repeats=12)
    assert (batch.extras["repeats"] == 12).all()
    assert batch.num_steps == 3 + 2 + 36 + 1
    counts = batch.inputs[np.arange(4), 4, task.bits + 1]
    np.testing.assert_allclose(counts, (12 - 5.5) / math.sqrt(99 / 12), rtol=1e-6)
    # the training range 1..10 maps to -/+ 1.567 (mean 5.5, std sqrt(99/12))
    np.testing.assert_allclose(task.normalize_repeats([1, 10]), [-4.5 / math.sqrt(8.25), 4.5 / math.sqrt(8.25)])
    drawn = task.sample(400, np.random.default_rng(1)).extras["repeats"]
    assert drawn.min() == 1 and drawn.max() == 10
    for b in range(4):
        _check_sample_against_solver("RepeatCopy-v0", task, batch, b)


def test_repeat_copy_limits() -> None:
    task = memtasks.make_task("RepeatCopy-v0")
    assert task.max_sweep_repeats == 20
    lo, hi = task.observation_bounds()
    assert lo <= task.normalize_repeats(1) and hi >= task.normalize_repeats(20)
    with pytest.raises(ValueError, match=r"repeats must be an integer in \[1, 20\]"):
        task.sample(1, np.random.default_rng(0), repeats=21)
    with pytest.raises(ValueError, match="repeats"):
        task.sample(1, np.random.default_rng(0), repeats=0)
    with pytest.raises(TypeError, match="repeats"):
        task.sample(1, np.random.default_rng(0), repeats=2.5)
    with pytest.raises(ValueError, match="min_repeats must be <= max_repeats"):
        memtasks.make_task("RepeatCopy-v0", min_repeats=5, max_repeats=4)
    with pytest.raises(ValueError, match="max_sweep_repeats"):
        memtasks.make_task("RepeatCopy-v0", max_sweep_repeats=9)
    single = memtasks.make_task("RepeatCopy-v0", min_repeats=3, max_repeats=3)
    assert single.repeat_std == 1.0 and float(single.normalize_repeats(3)) == 0.0
    wide = memtasks.make_task("RepeatCopy-v0", max_sweep_repeats=50)
    assert wide.observation_bounds()[1] == pytest.approx((50 - 5.5) / math.sqrt(8.25))


def test_associative_recall_query_index() -> None:
    task = memtasks.make_task("AssociativeRecall-v0")
    batch = task.sample(500, np.random.default_rng(0))
    j, n = batch.extras["query_index"], batch.lengths
    assert ((j >= 0) & (j <= n - 2)).all()
    assert set(j[n == 6].tolist()) == {0, 1, 2, 3, 4}  # every item but the last is queried
    k, bits = task.item_length, task.bits
    for b in range(20):
        q = batch.inputs[b, n[b] * (k + 1) + 1 : n[b] * (k + 1) + 1 + k, :bits]
        item = batch.inputs[b, j[b] * (k + 1) + 1 : j[b] * (k + 1) + 1 + k, :bits]
        np.testing.assert_array_equal(q, item)
    assert batch.num_steps == (6 + 2) * 4  # the paper's longest episode: 6 items of 3 vectors
    with pytest.raises(ValueError, match="min_length"):
        memtasks.make_task("AssociativeRecall-v0", min_length=1)


def test_priority_sort_outputs() -> None:
    task = memtasks.make_task("PrioritySort-v0")
    batch = task.sample(8, np.random.default_rng(0))
    assert (batch.mask.sum(1) == 16).all() and batch.num_steps == 20 + 1 + 16
    prio = batch.extras["priorities"]
    assert prio.min() >= -1 and prio.max() <= 1
    np.testing.assert_array_equal(batch.inputs[:, :20, task.bits], prio)
    sweep = task.sample(2, np.random.default_rng(0), length=10)
    assert (sweep.mask.sum(1) == 8).all()  # K = round(0.8 N) follows N
    fixed = memtasks.make_task("PrioritySort-v0", num_outputs=5)
    assert (fixed.sample(2, np.random.default_rng(0), length=12).mask.sum(1) == 5).all()
    with pytest.raises(ValueError, match="num_outputs"):
        fixed.sample(2, np.random.default_rng(0), length=4)
    with pytest.raises(ValueError, match="num_outputs"):
        memtasks.make_task("PrioritySort-v0", num_outputs=21)
    with pytest.raises(ValueError, match="priority_low must be < priority_high"):
        memtasks.make_task("PrioritySort-v0", priority_low=1.0, priority_high=1.0)
    with pytest.raises(ValueError, match="priority_low must be < priority_high"):
        memtasks.make_task("PrioritySort-v0", priority_low=2.0, priority_high=-2.0)
    wide = memtasks.make_task("PrioritySort-v0", priority_low=-5.0, priority_high=3.0)
    assert wide.observation_bounds() == (-5.0, 3.0)
    narrow = memtasks.make_task("PrioritySort-v0", priority_low=0.2, priority_high=0.5)
    assert narrow.observation_bounds() == (0.0, 1.0)


def test_priority_sort_ties_keep_input_order() -> None:
    # a range narrower than float32's spacing makes every priority equal after rounding
    task = memtasks.make_task("PrioritySort-v0", priority_low=1.0, priority_high=1.0 + 1e-12, num_outputs=4)
    batch = task.sample(3, np.random.default_rng(0), length=6)
    np.testing.assert_array_equal(batch.targets[:, 7:11], batch.inputs[:, :4, : task.bits])


# -- Dynamic N-Grams: the sampler follows its table, and the Bayes-optimal predictor ----------------


def _naive_bayes(bits: np.ndarray, order: int) -> np.ndarray:
    """Per-sequence dictionary counts, one step at a time: P(input[t+1] = 1 | inputs 0..t)."""
    k = order - 1
    p = np.full(len(bits), 0.5)
    counts: dict[tuple[int, ...], list[int]] = {}
    for t in range(len(bits)):
        if t >= k:  # the bit at t has a full context: record what followed it
            ctx = tuple(bits[t - k : t])
            counts.setdefault(ctx, [0, 0])[bits[t]] += 1
        if t + 1 >= k:  # the target (bit t+1) has a full context
            n0, n1 = counts.get(tuple(bits[t + 1 - k : t + 1]), [0, 0])
            p[t] = (n1 + 0.5) / (n0 + n1 + 1)
    return p


@pytest.mark.parametrize("order", [1, 2, 3, 6])
def test_ngram_bayes_matches_naive_loop(order: int) -> None:
    task = memtasks.make_task("DynamicNGrams-v0", order=order, min_length=max(order, 2), max_length=60)
    batch = task.sample(6, np.random.default_rng(order))
    p = task.optimal_probabilities(batch)
    assert p.shape == batch.targets.shape and p.dtype == np.float64
    for b in range(batch.batch_size):
        T_b = int(batch.lengths[b]) - 1
        bits = batch.inputs[b, :T_b, 0].astype(int)
        np.testing.assert_allclose(p[b, :T_b, 0], _naive_bayes(bits, order), rtol=1e-12)


def test_ngram_bayes_is_causal_and_beats_chance() -> None:
    task = memtasks.make_task("DynamicNGrams-v0")
    batch = task.sample(64, np.random.default_rng(0))
    p = ngram_bayes_probabilities(batch.inputs, task.order)
    changed = batch.inputs.copy()
    changed[:, 100:] = 1 - changed[:, 100:]
    np.testing.assert_array_equal(ngram_bayes_probabilities(changed, task.order)[:, :100], p[:, :100])
    optimal = task.optimal_score(batch)
    chance = task.score(np.zeros_like(batch.targets), batch)  # logit 0 = p 0.5 everywhere
    assert set(optimal) == set(chance) == {"cost_bits", "bit_errors", "seq_accuracy"}
    assert chance["cost_bits"] == pytest.approx(199.0)
    assert optimal["cost_bits"] < 0.8 * chance["cost_bits"]
    with pytest.raises(ValueError, match="inputs must have shape"):
        ngram_bayes_probabilities(np.zeros(5), 6)


def test_ngram_sequences_follow_their_tables() -> None:
    task = memtasks.make_task("DynamicNGrams-v0")
    batch = task.sample(100, np.random.default_rng(0))
    bits = np.concatenate([batch.inputs[..., 0], batch.targets[:, -1:, 0]], axis=1).astype(int)
    ctx = sum(bits[:, 5 - i : 200 - i] << (i - 1) for i in range(1, 6))  # newest bit least significant
    p = np.take_along_axis(batch.extras["table"], ctx, axis=1)  # P(bit t = 1), t = 5 .. 199
    x = bits[:, 5:]
    resid = x - p
    assert abs(resid.mean()) < 4 * resid.std() / math.sqrt(resid.size)
    assert np.corrcoef(x.ravel(), p.ravel())[0, 1] > 0.6  # 1/sqrt(2) for Beta(1/2, 1/2) tables
    assert abs(bits[:, :5].mean() - 0.5) < 0.05  # the first order-1 bits are fair coins


# -- score_bits ----------------------------------------------------------------------------------

L3 = math.log(3.0)  # sigmoid(ln 3) = 3/4: a confident-ish prediction with round costs


def _hand_batch() -> tuple[np.ndarray, Batch]:
    logits = np.array(
        [
            [[L3, -L3], [100.0, -100.0]],  # sample 0: right, cost 2 log2(4/3); step 1 unscored
            [[0.0, -L3], [L3, -L3]],  # sample 1: 0 counts as "predict 0": 3 wrong bits
        ]
    )
    targets = np.array([[[1, 0], [0, 0]], [[1, 1], [0, 0]]], np.float32)
    mask = np.array([[1, 0], [1, 1]], np.float32)
    return logits, Batch(np.zeros((2, 2, 3), np.float32), targets, mask, np.array([1, 2]))


def test_score_bits_hand_computed() -> None:
    logits, batch = _hand_batch()
    q = math.log2(4 / 3)  # -log2(3/4): right at probability 3/4
    cost0 = 2 * q
    cost1 = 1.0 + 2.0 + 2.0 + q  # -log2(1/2), -log2(1/4), -log2(1/4), -log2(3/4)
    got = score_bits(logits, batch.targets, batch.mask)
    assert got["cost_bits"] == pytest.approx((cost0 + cost1) / 2, rel=1e-12)
    assert got["bit_errors"] == 1.5
    assert got["seq_accuracy"] == 0.5
    perfect = score_bits(np.where(batch.targets > 0.5, 50.0, -50.0), batch.targets, batch.mask)
    assert perfect["bit_errors"] == 0 and perfect["seq_accuracy"] == 1 and perfect["cost_bits"] < 1e-15
    huge = score_bits(np.full_like(logits, -1e4), batch.targets, batch.mask)  # stays finite
    assert math.isfinite(huge["cost_bits"]) and huge["cost_bits"] == pytest.approx(3 * 1e4 / math.log(2) / 2)


def test_task_score_accepts_torch_and_checks_shape() -> None:
    torch = pytest.importorskip("torch")
    logits, batch = _hand_batch()
    task = memtasks.make_task("Copy-v0", bits=2)
    expected = task.score(logits, batch)
    assert task.score(torch.tensor(logits, requires_grad=True), batch) == pytest.approx(expected)
    assert task.score(torch.tensor(logits, dtype=torch.float32), batch) == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"outputs must have shape \(2, 2, 2\)"):
        task.score(np.zeros((2, 2, 3)), batch)


@pytest.mark.parametrize("B, L", [(1, 1), (1, 7), (1, 20), (5, 3), (16, 20)])
def test_copy_one_length_path_equals_the_general_path(B: int, L: int) -> None:
    task = memtasks.make_task("Copy-v0", bits=6)
    lengths = np.full(B, L, dtype=np.int64)
    fast = task._sample(lengths, np.random.default_rng(11))
    general = task._sample_mixed(lengths, np.random.default_rng(11))
    for name in ("inputs", "targets", "mask", "lengths"):
        a, b = getattr(fast, name), getattr(general, name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        np.testing.assert_array_equal(a, b, err_msg=name)
