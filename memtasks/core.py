"""The task contract shared by every memtasks task, batched and step-wise.

A :class:`Task` is a generator of supervised sequence problems. It describes its
interface with a :class:`TaskSpec`, draws batches of padded sequences with
:meth:`Task.sample`, and scores a model's outputs with :meth:`Task.score`::

    task = memtasks.make_task("Copy-v0", bits=8, min_length=1, max_length=20)
    batch = task.sample(batch_size=32, rng=np.random.default_rng(0))
    batch.inputs    # float32 (B, T, input_size)   or int64 (B, T, W) word ids for token tasks
    batch.targets   # float32 (B, T, output_size)  or int64 (B, T) class ids for class tasks
    batch.mask      # float32 (B, T): 1 where the target is scored, else 0 (also 0 on padding)
    batch.lengths   # int64 (B,): each sample's length parameter (``task.length_name``)
    task.score(logits, batch)  # {"cost_bits", "bit_errors", "seq_accuracy"} or {"error_rate", "accuracy", ...}

The Gymnasium environments (:mod:`memtasks.env`) replay exactly one sample of
``task.sample(1, np.random.default_rng(seed), **options)`` step by step, so the
batched and the step-wise view of a task can never drift apart.

Writing a task means subclassing :class:`Task`, setting ``spec`` in ``__init__``
and implementing :meth:`Task._sample`; argument checking uses :func:`check_int`
and friends so that bad input gets an error naming the argument and its range.

A task over a finite set of sequences (bAbI) is also a :class:`Dataset`: built
with ``split="train" | "valid" | "test"``, it can be walked in epochs
(``batch(index)``) and scored exactly over a whole split (``evaluate``).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Batch",
    "DataNotFoundError",
    "Dataset",
    "Task",
    "TaskSpec",
    "check_int",
    "check_float",
    "check_length_range",
    "score_bits",
    "score_classes",
]

_LN2 = math.log(2.0)


class DataNotFoundError(FileNotFoundError):
    """A data-backed task (bAbI) cannot find its files; the message says how to get them."""


@dataclass(frozen=True)
class TaskSpec:
    """What an agent needs to know to read a task's inputs and write its outputs.

    Attributes:
        input_kind: ``"bits"`` (float frames of width ``input_size``) or ``"tokens"``
            (``input_size`` word ids per frame, 0 = padding).
        input_size: Width of one input frame.
        output_kind: ``"bits"`` (independent sigmoid channels, scored with binary
            cross-entropy) or ``"classes"`` (one softmax over ``output_size`` classes).
        output_size: Number of output channels or classes.
        vocab: Word list for token inputs; ``vocab[0]`` is the padding word.
        classes: Names of the output classes for class outputs.
    """

    input_kind: Literal["bits", "tokens"]
    input_size: int
    output_kind: Literal["bits", "classes"]
    output_size: int
    vocab: tuple[str, ...] | None = None
    classes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.input_kind not in ("bits", "tokens"):
            raise ValueError(f"input_kind must be 'bits' or 'tokens', got {self.input_kind!r}")
        if self.output_kind not in ("bits", "classes"):
            raise ValueError(f"output_kind must be 'bits' or 'classes', got {self.output_kind!r}")
        check_int("input_size", self.input_size, 1)
        check_int("output_size", self.output_size, 1)
        if self.input_kind == "tokens" and not self.vocab:
            raise ValueError("a 'tokens' TaskSpec needs a vocab (vocab[0] is the padding word)")

    @property
    def vocab_size(self) -> int:
        """Number of word ids (0 = padding) for token inputs, else 0."""
        return len(self.vocab) if self.vocab else 0


@dataclass
class Batch:
    """A batch of right-padded sequences (see the module docstring for shapes).

    Attributes:
        inputs: float32 (B, T, input_size) for bits; int64 (B, T, W) for tokens.
        targets: float32 (B, T, output_size) for bits; int64 (B, T) for classes.
        mask: float32 (B, T), 1 on scored steps.
        lengths: int64 (B,), the task's length parameter of each sample.
        extras: Task-specific per-sample arrays (e.g. ``repeats``), for analysis.
    """

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    lengths: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def num_steps(self) -> int:
        return int(self.inputs.shape[1])

    def __getitem__(self, index: int | slice) -> Batch:
        """Select samples along the batch axis (keeps the time axis as it is)."""
        if isinstance(index, numbers.Integral):
            index = slice(int(index), int(index) + 1)
        return Batch(
            self.inputs[index],
            self.targets[index],
            self.mask[index],
            self.lengths[index],
            {k: v[index] for k, v in self.extras.items()},
        )


class Task:
    """Base class of every task. Subclasses set ``self.spec`` and implement ``_sample``.

    Class attributes:
        length_name: What the length parameter counts (``"length"``, ``"items"``, ...).
        min_allowed_length: Smallest length the encoding supports (for sweeps).
        sample_options: Extra keyword options ``sample`` accepts (e.g. ``("repeats",)``).
    """

    spec: TaskSpec
    length_name: str = "length"
    min_allowed_length: int = 1
    sample_options: tuple[str, ...] = ()

    def __init__(self, min_length: int, max_length: int) -> None:
        self.min_length, self.max_length = check_length_range(
            min_length, max_length, self.min_allowed_length
        )

    # -- sampling -----------------------------------------------------------------
    def sample(
        self,
        batch_size: int,
        rng: np.random.Generator,
        length: int | None = None,
        **options: Any,
    ) -> Batch:
        """Draw a batch of sequences.

        Args:
            batch_size: Number of sequences, >= 1.
            rng: The only source of randomness.
            length: ``None`` draws each sample's length uniformly from the training
                range ``[min_length, max_length]``; an integer fixes it (length sweeps).
            **options: Task-specific options listed in ``sample_options``.

        Returns:
            A :class:`Batch`; samples shorter than the longest are right-padded.
        """
        options = self._check_sample_args(batch_size, rng, options)
        if length is None:
            lengths = rng.integers(self.min_length, self.max_length + 1, size=batch_size)
        else:
            check_int("length", length, self.min_allowed_length)
            lengths = np.full(batch_size, int(length))
        return self._sample(np.asarray(lengths, dtype=np.int64), rng, **options)

    def _check_sample_args(
        self, batch_size: Any, rng: Any, options: dict[str, Any]
    ) -> dict[str, Any]:
        """Check ``sample``'s common arguments; return the options that are set (not None)."""
        check_int("batch_size", batch_size, 1)
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        unknown = set(options) - set(self.sample_options)
        if unknown:
            allowed = ", ".join(("length",) + self.sample_options)
            raise ValueError(
                f"{type(self).__name__}.sample got unknown option(s) {sorted(unknown)}; allowed: {allowed}"
            )
        return {k: v for k, v in options.items() if v is not None}

    def _sample(self, lengths: np.ndarray, rng: np.random.Generator, **options: Any) -> Batch:
        raise NotImplementedError

    # -- scoring ------------------------------------------------------------------
    def score(self, outputs: Any, batch: Batch) -> dict[str, float]:
        """Score logits ``(B, T, output_size)`` (numpy or torch) against ``batch``."""
        logits = _to_numpy(outputs)
        expected = batch.targets.shape[:2] + (self.spec.output_size,)
        if logits.shape != expected:
            raise ValueError(f"outputs must have shape {expected} (B, T, output_size), got {logits.shape}")
        if self.spec.output_kind == "bits":
            return score_bits(logits, batch.targets, batch.mask)
        return score_classes(logits, batch.targets, batch.mask)

    # -- Gymnasium hooks --------------------------------------------------------------
    def observation_bounds(self) -> tuple[float, float]:
        """Bounds of the input frame values, for the env's observation Box.

        They must include 0: after the last step the env observes an all-zero frame.
        """
        return 0.0, 1.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(min_length={self.min_length}, max_length={self.max_length})"


# -- scoring functions ------------------------------------------------------------------


@runtime_checkable
class Dataset(Protocol):
    """A :class:`Task` over a finite set of sequences, as a trainer's epoch mode and exact evaluation use it.

    Its constructor takes ``split`` (``"train"``, ``"valid"`` or ``"test"``; the same ``spec`` for every
    split) among its keyword arguments, and an instance serves one split:

    - ``num_sequences``: sequences in the split (one epoch walks each once);
    - ``num_scored``: scored steps in the split (bAbI: questions);
    - ``batch(index)``: the :class:`Batch` of the sequences at ``index`` (in that order);
    - ``evaluate(predict, batch_size)``: ``(metrics, per-scored-step frame)`` over the whole split, where
      ``predict`` maps a :class:`Batch` to logits; the frame has a ``length`` and a ``correct`` column.

    ``sample`` still draws uniformly from the split, so a dataset also trains in the sampled mode.
    """

    @property
    def num_sequences(self) -> int: ...

    @property
    def num_scored(self) -> int: ...

    def batch(self, index: Sequence[int] | np.ndarray) -> Batch: ...

    def evaluate(self, predict: Callable[[Batch], Any], batch_size: int = 64) -> tuple[dict[str, float], pd.DataFrame]: ...


def score_bits(logits: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Bit metrics, each a mean over the batch.

    ``cost_bits`` is the binary cross-entropy in bits summed over scored steps and
    channels of a sequence (the NTM paper's "cost per sequence"); ``bit_errors`` the
    number of wrong bits per sequence at threshold 0.5; ``seq_accuracy`` the
    fraction of sequences without a wrong bit.
    """
    if targets.shape != logits.shape or mask.shape != logits.shape[:2]:
        raise ValueError(
            f"score_bits needs logits and targets of one shape (B, T, C) and mask (B, T); got "
            f"logits {logits.shape}, targets {targets.shape}, mask {mask.shape}"
        )
    x = logits.astype(np.float64)
    y = targets.astype(np.float64)
    m = mask.astype(np.float64)[..., None]  # (B, T, 1)
    # BCE with logits, stable for large |x|: log(1 + e^x) - y x
    bce = (np.logaddexp(0.0, x) - y * x) * m
    cost = bce.sum(axis=(1, 2)) / _LN2  # (B,)
    wrong = ((x > 0) != (y > 0.5)) * m
    errors = wrong.sum(axis=(1, 2))  # (B,)
    return {
        "cost_bits": float(cost.mean()),
        "bit_errors": float(errors.mean()),
        "seq_accuracy": float((errors == 0).mean()),
    }


def score_classes(logits: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Class metrics over scored frames: ``error_rate``, ``accuracy``, ``cost_nats``, ``seq_accuracy``."""
    if targets.shape != logits.shape[:2] or mask.shape != logits.shape[:2]:
        raise ValueError(
            f"score_classes needs logits (B, T, C), targets and mask (B, T); got "
            f"logits {logits.shape}, targets {targets.shape}, mask {mask.shape}"
        )
    x = logits.astype(np.float64)
    m = mask > 0
    n = int(m.sum())
    if n == 0:
        raise ValueError("the batch has no scored frame (mask is all zero)")
    log_z = np.logaddexp.reduce(x, axis=-1)  # (B, T)
    picked = np.take_along_axis(x, np.clip(targets, 0, x.shape[-1] - 1)[..., None], axis=-1)[..., 0]
    nll = (log_z - picked)[m]
    wrong = (x.argmax(-1) != targets) & m  # (B, T)
    error_rate = float(wrong.sum() / n)
    has_scored = m.any(axis=1)
    return {
        "error_rate": error_rate,
        "accuracy": 1.0 - error_rate,
        "cost_nats": float(nll.mean()),
        "seq_accuracy": float((~wrong.any(axis=1))[has_scored].mean()),
    }


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):  # a torch tensor; torch stays an optional import here
        return x.detach().cpu().numpy()
    return np.asarray(x)


# -- argument checking ----------------------------------------------------------------------


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as int, or raise naming ``name`` and the allowed range.

    Raises:
        TypeError: ``value`` is not an integer (bools and floats are refused, even 3.0).
        ValueError: ``value`` lies outside ``[low, high]``.
    """
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{name} must be an integer in {_range_text(low, high)}, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer in {_range_text(low, high)}, got {value}")
    return value


def _range_text(low: float | None, high: float | None) -> str:
    return f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"


def check_float(
    name: str, value: Any, low: float | None = None, high: float | None = None
) -> float:
    """Return ``value`` as a finite float in ``[low, high]``, or raise naming ``name``."""
    rng_text = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in {rng_text}, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be a finite number in {rng_text}, got {value}")
    return value


def check_length_range(min_length: Any, max_length: Any, lowest: int = 1) -> tuple[int, int]:
    """Check a training range ``lowest <= min_length <= max_length``."""
    lo = check_int("min_length", min_length, lowest)
    hi = check_int("max_length", max_length, lowest)
    if lo > hi:
        raise ValueError(f"min_length must be <= max_length, got min_length={lo} > max_length={hi}")
    return lo, hi
