"""Evaluate an agent over test lengths on fixed, seeded test sequences.

For every test length ``L`` the test set is ``samples`` sequences drawn with
``np.random.default_rng([seed, L])``, in one ``task.sample`` call. So for a
given ``seed`` and ``L`` every agent sees exactly the same sequences, whatever
other lengths are evaluated and whatever ``batch_size`` is used. With
``lengths=None`` the lengths are drawn from the task's training range (row
``length`` = -1) with ``np.random.default_rng([seed, 0, 2])``. (The training data
stream is ``default_rng(train_seed)`` and its validation ``default_rng([seed,
0, 1])``; numpy pads seed lists with zeros, so these keys never collide for
lengths >= 1.)

The agent runs in chunks of ``batch_size`` under ``torch.no_grad`` in eval mode,
and the concatenated logits are scored once with ``task.score``, which equals
the chunk-size-weighted mean of per-chunk scores for the per-sequence bit
metrics and is exact for per-frame class metrics.

``memtasks eval --checkpoint DIR/model.pt --lengths 10,20,50 --samples 256
--seed 1234 --out DIR`` writes ``DIR/eval.csv`` (columns ``length, metric,
value, samples``) and prints a table.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from agents import load_checkpoint
from memtasks import make_task
from memtasks.core import Batch, Task, check_int

if TYPE_CHECKING:
    from benchmarks.testsets import TestSet

__all__ = [
    "DATASET_SPLITS",
    "TRAIN_RANGE",
    "cli",
    "evaluate",
    "evaluate_checkpoint",
    "evaluate_dataset",
    "evaluate_frozen",
    "eval_rng",
    "grid_rng",
    "score_batch",
    "score_split",
]

DATASET_SPLITS = ("valid", "test", "train")
"""The splits :func:`evaluate_dataset` scores, in its rows' order."""

TRAIN_RANGE = -1
"""The ``length`` reported for sequences whose lengths are drawn from the training range."""


def eval_rng(seed: int, length: int | None) -> np.random.Generator:
    """The generator of the test set for ``seed`` and ``length`` (``None``: the training range)."""
    return np.random.default_rng([seed, 0, 2] if length is None else [seed, length])


def grid_rng(seed: int, length: int, value: int) -> np.random.Generator:
    """The generator of :func:`evaluate_grid`'s test set at ``length`` and sample-option ``value``."""
    return np.random.default_rng([seed, int(length), int(value)])


def evaluate(
    agent: nn.Module,
    task: Task,
    lengths: Sequence[int] | None,
    samples: int,
    seed: int,
    batch_size: int = 128,
) -> pd.DataFrame:
    """Score ``agent`` on ``samples`` fixed test sequences per length.

    Args:
        agent: Maps inputs ``(B, T, ...)`` to logits ``(B, T, output_size)`` (an :class:`agents.Agent`).
        task: The task to draw test sequences from.
        lengths: Test lengths (the task's length parameter); ``None`` draws lengths from the
            training range and reports ``length = -1``.
        samples: Test sequences per length, >= 1.
        seed: Seed of the test sets, >= 0 (see :func:`eval_rng`).
        batch_size: Sequences per forward pass, >= 1 (does not change the result).

    Returns:
        A long DataFrame with columns ``length, metric, value, samples``: one row per length and
        metric of ``task.score``, lengths in the given order.

    Raises:
        ValueError, TypeError: bad ``samples``/``seed``/``batch_size``, or a length the task does
            not allow (the message names ``lengths``).
    """
    samples = check_int("samples", samples, 1)
    seed = check_int("seed", seed, 0)
    batch_size = check_int("batch_size", batch_size, 1)
    targets = [None] if lengths is None else list(lengths)
    if not targets:
        raise ValueError("lengths must hold at least one length (or be None for the training range)")

    def batches():
        for length in targets:
            try:
                batch = task.sample(samples, eval_rng(seed, length), length=length)
            except (ValueError, TypeError) as exc:
                raise type(exc)(f"lengths: {length!r} is not allowed for {task!r}: {exc}") from exc
            yield TRAIN_RANGE if length is None else int(length), batch

    return _score(agent, task, batches(), batch_size)


def evaluate_grid(
    agent: nn.Module,
    task: Task,
    lengths: Sequence[int],
    option: str,
    values: Sequence[int],
    samples: int,
    seed: int,
    batch_size: int = 128,
) -> pd.DataFrame:
    """:func:`evaluate` at every length for each value of a sample option (e.g. repeat copy's ``repeats``).

    The rows are :func:`evaluate`'s, with the option in the metric's name: ``bit_errors@repeats=12`` (tables
    that read ``bit_errors`` are unchanged). The test sequences of ``(length, value)`` come from the generator
    ``[seed, length, value]``.

    Raises:
        ValueError: ``option`` is not one of ``task.sample_options``, or a length or value the task refuses.
    """
    if option not in task.sample_options:
        allowed = ", ".join(task.sample_options) or "none"
        raise ValueError(f"option must be one of the task's sample options ({allowed}), got {option!r}")
    samples = check_int("samples", samples, 1)
    seed = check_int("seed", seed, 0)
    parts = []
    for value in values:

        def batches(value: int = int(value)):
            for length in lengths:
                try:
                    batch = task.sample(samples, grid_rng(seed, length, value), length=int(length), **{option: value})
                except (ValueError, TypeError) as exc:
                    raise type(exc)(f"{option}={value}, length {length}: not allowed for {task!r}: {exc}") from exc
                yield int(length), batch

        rows = _score(agent, task, batches(), check_int("batch_size", batch_size, 1))
        parts.append(rows.assign(metric=rows["metric"] + f"@{option}={int(value)}"))
    return pd.concat(parts, ignore_index=True)


def evaluate_frozen(
    agent: nn.Module,
    task: Task,
    test_set: TestSet,
    lengths: Sequence[int] | None = None,
    batch_size: int = 128,
) -> pd.DataFrame:
    """Score ``agent`` on a frozen test set (:mod:`benchmarks.testsets`): the sequences are the file's, so the
    scores depend on nothing but the model (not numpy's generator, not the task's sampler).

    Args:
        agent, task, batch_size: As for :func:`evaluate`; ``task`` scores, it never samples.
        test_set: The loaded, checksum-verified test set of ``task``.
        lengths: The test set's lengths to score (``-1``: its training-range set); ``None``: all of them.

    Returns:
        The same DataFrame as :func:`evaluate`, plus ``bit_accuracy`` rows for bit tasks (the fraction of
        scored bits that are right: the suite's per-bit accuracy).
    """
    batch_size = check_int("batch_size", batch_size, 1)
    chosen = test_set.lengths if lengths is None else [int(n) for n in lengths]
    missing = [n for n in chosen if n not in test_set.batches]
    if missing:
        raise ValueError(f"lengths {missing} are not in the test set of {test_set.task} (it has {test_set.lengths})")
    return _score(agent, task, ((n, test_set.batches[n]) for n in chosen), batch_size, per_bit=True)


@torch.no_grad()
def score_split(agent: nn.Module, task: Task, batch_size: int = 64) -> tuple[dict[str, float], pd.DataFrame]:
    """Score ``agent`` on every sequence of one dataset split (``task.evaluate``, :class:`memtasks.core.Dataset`),
    in eval mode (the agent's mode is restored): the split's metrics and the per-scored-step results."""
    was_training = agent.training
    agent.eval()
    try:
        device = next(agent.parameters()).device
        metrics, results = task.evaluate(lambda b: agent(torch.as_tensor(b.inputs, device=device)), batch_size)
    finally:
        agent.train(was_training)
    return {k: float(v) for k, v in metrics.items()}, results


def evaluate_dataset(agent: nn.Module, make_split: Any, batch_size: int = 64) -> pd.DataFrame:
    """Score ``agent`` exactly on every sequence of a dataset task's splits (:class:`memtasks.core.Dataset`).

    Args:
        agent: As for :func:`evaluate`.
        make_split: ``make_split(split)`` builds the task's ``split`` (``"valid"``, ``"test"``, ``"train"``).
        batch_size: Sequences per forward pass, >= 1 (does not change the result).

    Returns:
        Columns ``split, length, metric, value, samples``: per split, the whole split's ``task.evaluate``
        metrics at ``length = -1`` (a joint dataset, whose results carry a ``task`` column, adds each task's
        ``error_rate_qa<N>``); for the test split also, per length (bAbI: the story sentences before
        the question, ``context``), ``error_rate`` and ``questions`` (scored steps) when the task has class
        outputs.
    """
    batch_size = check_int("batch_size", batch_size, 1)
    rows = []
    for split in DATASET_SPLITS:
        task = make_split(split)
        metrics, results = score_split(agent, task, batch_size)
        rows += [(split, TRAIN_RANGE, k, v, task.num_scored) for k, v in metrics.items()]
        if "task" in results:  # a joint dataset: each member task's error rate too
            for number, group in results.groupby("task", sort=True):
                rows.append((split, TRAIN_RANGE, f"error_rate_qa{int(number)}", 1.0 - float(group["correct"].mean()),
                             len(group)))  # fmt: skip
        if split == "test" and "correct" in results:
            key = "context" if "context" in results else "length"  # bAbI: sentences before the question
            for length, group in results.groupby(key, sort=True):
                rows.append((split, int(length), "error_rate", 1.0 - float(group["correct"].mean()), len(group)))
                rows.append((split, int(length), "questions", float(len(group)), len(group)))
    return pd.DataFrame(rows, columns=["split", "length", "metric", "value", "samples"])


@torch.no_grad()
def score_batch(agent: nn.Module, task: Task, batch: Batch, batch_size: int) -> dict[str, float]:
    """``task.score`` of ``agent``'s outputs on ``batch``, run in chunks of ``batch_size`` sequences in eval mode
    (the agent's mode is restored); the chunks' logits are scored together, so the result does not depend on
    ``batch_size``."""
    params = list(agent.parameters())
    device = params[0].device if params else torch.device("cpu")
    was_training = agent.training
    agent.eval()
    try:
        samples = batch.batch_size
        logits = torch.cat(
            [
                agent(torch.as_tensor(batch.inputs[i : i + batch_size], device=device))
                for i in range(0, samples, batch_size)
            ]
        )
        return task.score(logits, batch)
    finally:
        agent.train(was_training)


def _score(agent: nn.Module, task: Task, batches, batch_size: int, per_bit: bool = False) -> pd.DataFrame:
    """:func:`score_batch` of each ``(length, batch)`` pair, as rows; with ``per_bit`` (bit tasks) add
    ``bit_accuracy``, the fraction of the batch's scored bits that are right."""
    rows = []
    for length, batch in batches:
        samples = batch.batch_size
        scores = score_batch(agent, task, batch, batch_size)
        if per_bit and task.spec.output_kind == "bits":
            scored_bits = float(batch.mask.sum()) * task.spec.output_size / samples  # per sequence
            scores["bit_accuracy"] = 1.0 - scores["bit_errors"] / scored_bits if scored_bits else float("nan")
        for metric, value in scores.items():
            rows.append({"length": length, "metric": metric, "value": float(value), "samples": samples})
    return pd.DataFrame(rows, columns=["length", "metric", "value", "samples"])


def evaluate_checkpoint(
    path: str | Path,
    lengths: Sequence[int] | None,
    samples: int,
    seed: int,
    device: str | torch.device = "auto",
    batch_size: int = 128,
) -> pd.DataFrame:
    """Load a checkpoint (:func:`agents.load_checkpoint`), rebuild its task and :func:`evaluate` it."""
    agent, task_id, task_kwargs = load_checkpoint(path, device=device)
    task = make_task(task_id, **task_kwargs)
    return evaluate(agent, task, lengths, samples, seed, batch_size=batch_size)


def _parse_lengths(text: str) -> list[int] | None:
    if text.strip().lower() == "train":
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--lengths must be comma-separated integers or 'train', got {text!r}"
        ) from None


def cli(argv: list[str]) -> int:
    """Evaluate a checkpoint over test lengths.

    ``memtasks eval``: evaluate a checkpoint and write ``eval.csv``.
    """
    parser = argparse.ArgumentParser(
        prog="memtasks eval",
        description="Evaluate a checkpoint on fixed seeded test sequences per length; writes eval.csv.",
    )
    parser.add_argument("--checkpoint", required=True, help="model.pt, or a run folder holding one")
    parser.add_argument(
        "--lengths", type=_parse_lengths, default=None,
        help="comma-separated test lengths, e.g. 10,20,50, or 'train' for the training range (default: train)",
    )
    parser.add_argument("--samples", type=int, default=256, help="test sequences per length (default: 256)")
    parser.add_argument("--seed", type=int, default=1234, help="seed of the test sets (default: 1234)")
    parser.add_argument("--batch-size", type=int, default=128, help="sequences per forward pass (default: 128)")
    parser.add_argument("--device", default="auto", help="torch device (default: auto)")
    parser.add_argument("--out", default=None,
                        help="folder for eval.csv (default: the checkpoint's folder, unless that is an experiment cell)")
    args = parser.parse_args(argv)

    path = Path(args.checkpoint)
    if path.is_dir():
        path = path / "model.pt"
    if args.out is None and (path.parent / "cell.json").is_file():  # its eval.csv is the experiment's record
        parser.error(f"--out: {path.parent} is an experiment cell, whose eval.csv its experiment's tables are "
                     "made from; give --out FOLDER for this evaluation's eval.csv")
    try:
        frame = evaluate_checkpoint(
            path, args.lengths, args.samples, args.seed, device=args.device, batch_size=args.batch_size
        )
    except (ValueError, TypeError, FileNotFoundError) as exc:
        parser.error(str(exc))
    out = Path(args.out) if args.out is not None else path.parent
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "eval.csv", index=False)
    table = frame.pivot_table(index="length", columns="metric", values="value", aggfunc="first", sort=False)
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {out / 'eval.csv'}")
    return 0
