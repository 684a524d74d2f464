"""Repeat Copy (Graves, Wayne & Danihelka 2014, arXiv 1410.5401, section 4.2)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from memtasks.core import Batch, Task, TaskSpec, check_int

__all__ = ["MAX_REPEATS", "RepeatCopy"]

MAX_REPEATS = 10**6
"""Largest repeat count accepted anywhere; an episode has L * R output steps."""


class RepeatCopy(Task):
    """Repeat Copy: read a sequence and a repeat count R, write the sequence R times, then an end marker.

    ## Description
    The NTM paper's second task: on top of storing the sequence, the model has to
    count how often it has replayed it and signal the end itself, a test of a
    simple nested loop.

    ## Encoding (L vectors of ``bits`` bits, R repeats; T = L + 2 + L*R + 1 steps)
    Inputs have ``bits + 2`` channels, targets ``bits + 1`` (the last is the end marker).

    - steps ``0 .. L-1``: input = vector i on channels ``0..bits-1``;
    - step ``L``: input = the delimiter alone (channel ``bits``);
    - step ``L+1``: input = the normalised repeat count alone (channel ``bits+1``),
      ``(R - mean) / std`` with the mean and standard deviation of the uniform
      integers ``min_repeats..max_repeats`` (``std = 1`` if the range is one value),
      fixed at construction so repeat counts outside the range map linearly;
    - steps ``L+2 .. L+1+L*R``: zero input; scored, target = vector ``(t - L - 2) mod L``;
    - step ``L+2+L*R``: zero input; scored, target = the end marker alone.

    Worked example, ``bits=2, L=2, R=2`` with the default repeat range 1..10
    (mean 5.5, std 2.8723, so the count is (2 - 5.5) / 2.8723 = -1.2185)::

        t  input(b0 b1 delim count)  target(b0 b1 end)  scored
        0      1  0   0   0            0  0   0           0
        1      0  1   0   0            0  0   0           0
        2      0  0   1   0            0  0   0           0
        3      0  0   0  -1.2185       0  0   0           0
        4      0  0   0   0            1  0   0           1
        5      0  0   0   0            0  1   0           1
        6      0  0   0   0            1  0   0           1
        7      0  0   0   0            0  1   0           1
        8      0  0   0   0            0  0   1           1

    ## Observation Space
    ``Box(low, high, (bits + 2,), float32)`` with ``low = min(0, count(1))`` and
    ``high = max(1, count(max_sweep_repeats))``.

    ## Action Space
    ``MultiBinary(bits + 1)``: the predicted bits and end marker of this step.

    ## Rewards
    Minus the number of wrong bits on scored steps, 0 elsewhere.

    ## Episode End
    After step ``L + 2 + L*R``.

    ## Arguments
    - ``bits`` (int >= 1, default 8): width of each vector.
    - ``min_length``, ``max_length`` (1 <= min <= max, default 1, 10): training range of L.
    - ``min_repeats``, ``max_repeats`` (1 <= min <= max <= 10**6, default 1, 10): training range of R,
      drawn per sample unless ``sample(..., repeats=R)`` fixes it (also the env reset
      option ``options={"length": 5, "repeats": 12}``); ``batch.extras["repeats"]`` holds R.
    - ``max_sweep_repeats`` (int in [max_repeats, 10**6], default ``2 * max_repeats``): the largest R
      ``sample`` accepts; it sets the observation bounds (the paper tests up to R = 20).

    ## Version History
    - v0: initial version, the paper's defaults.
    """

    length_name = "length"
    sample_options = ("repeats",)

    def __init__(
        self,
        bits: int = 8,
        min_length: int = 1,
        max_length: int = 10,
        min_repeats: int = 1,
        max_repeats: int = 10,
        max_sweep_repeats: int | None = None,
    ) -> None:
        super().__init__(min_length, max_length)
        self.bits = check_int("bits", bits, 1)
        self.min_repeats = check_int("min_repeats", min_repeats, 1, MAX_REPEATS)
        self.max_repeats = check_int("max_repeats", max_repeats, 1, MAX_REPEATS)
        if self.min_repeats > self.max_repeats:
            raise ValueError(
                f"min_repeats must be <= max_repeats, "
                f"got min_repeats={self.min_repeats} > max_repeats={self.max_repeats}"
            )
        if max_sweep_repeats is None:
            max_sweep_repeats = min(2 * self.max_repeats, MAX_REPEATS)
        self.max_sweep_repeats = check_int(
            "max_sweep_repeats", max_sweep_repeats, self.max_repeats, MAX_REPEATS
        )
        # Moments of the discrete uniform distribution on min..max, fixed here so that a
        # sweep over unseen R gives inputs on the same linear scale as training.
        a, b = self.min_repeats, self.max_repeats
        self.repeat_mean = (a + b) / 2.0
        std = math.sqrt(((b - a + 1) ** 2 - 1) / 12.0)
        self.repeat_std = std if std > 0 else 1.0
        self.spec = TaskSpec("bits", self.bits + 2, "bits", self.bits + 1)

    def normalize_repeats(self, repeats: Any) -> np.ndarray:
        """The input value (channel ``bits + 1``) that encodes repeat count(s) ``repeats``."""
        return (np.asarray(repeats, dtype=np.float64) - self.repeat_mean) / self.repeat_std

    def observation_bounds(self) -> tuple[float, float]:
        low = float(self.normalize_repeats(1))
        high = float(self.normalize_repeats(self.max_sweep_repeats))
        return min(0.0, low), max(1.0, high)

    def _sample(self, lengths: np.ndarray, rng: np.random.Generator, repeats: Any = None) -> Batch:
        B, L_max = len(lengths), int(lengths.max())
        if repeats is None:
            R = rng.integers(self.min_repeats, self.max_repeats + 1, size=B)
        else:
            R = np.full(B, check_int("repeats", repeats, 1, self.max_sweep_repeats))
        R = R.astype(np.int64)
        L = lengths
        T = int((L + 2 + L * R + 1).max())
        rows = np.arange(B)
        seq = rng.integers(0, 2, size=(B, L_max, self.bits), dtype=np.int8)
        seq *= (np.arange(L_max)[None, :] < L[:, None])[..., None]  # zero past each sample's length

        inputs = np.zeros((B, T, self.bits + 2), np.float32)
        inputs[:, :L_max, : self.bits] = seq
        inputs[rows, L, self.bits] = 1.0
        inputs[rows, L + 1, self.bits + 1] = self.normalize_repeats(R)

        # k counts the output steps: 0 .. L*R-1 replay the sequence, L*R is the end marker.
        k = np.arange(T)[None, :] - (L + 2)[:, None]  # (B, T)
        replay = (k >= 0) & (k < (L * R)[:, None])
        src = np.where(replay, k % L[:, None], 0)
        targets = np.zeros((B, T, self.bits + 1), np.float32)
        targets[..., : self.bits] = np.take_along_axis(seq, src[..., None], axis=1) * replay[..., None]
        targets[rows, L + 2 + L * R, self.bits] = 1.0
        mask = (k >= 0) & (k <= (L * R)[:, None])
        return Batch(inputs, targets, mask.astype(np.float32), lengths, {"repeats": R})

    def __repr__(self) -> str:
        return (
            f"RepeatCopy(bits={self.bits}, min_length={self.min_length}, max_length={self.max_length}, "
            f"min_repeats={self.min_repeats}, max_repeats={self.max_repeats}, "
            f"max_sweep_repeats={self.max_sweep_repeats})"
        )
