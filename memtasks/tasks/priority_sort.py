"""Priority Sort (Graves, Wayne & Danihelka 2014, arXiv 1410.5401, section 4.5)."""

from __future__ import annotations

import numpy as np

from memtasks.core import Batch, Task, TaskSpec, check_float, check_int

__all__ = ["PrioritySort"]

# Priorities travel as float32 inputs, so the range must be representable there.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _default_num_outputs(n: np.ndarray) -> np.ndarray:
    """K = round(0.8 N) per sample, in integer arithmetic (0.8 N is never exactly k + 1/2)."""
    return (8 * n + 5) // 10


class PrioritySort(Task):
    """Priority Sort: read vectors with scalar priorities, write the highest-priority ones in order.

    ## Description
    The NTM paper's fifth task: the model has to store each vector at a place
    given by its priority and read them back in sorted order.

    ## Encoding (N inputs, K outputs; T = N + 1 + K steps)
    Inputs have ``bits + 2`` channels: channel ``bits`` is the priority, channel
    ``bits + 1`` the delimiter. Priorities are uniform in ``[priority_low, priority_high]``
    (``batch.extras["priorities"]``).

    - steps ``0 .. N-1``: input = vector i on channels ``0..bits-1`` and its priority;
    - step ``N``: input = the delimiter alone;
    - steps ``N+1 .. N+K``: zero input; scored, target = the vectors of the K highest
      priorities, highest first (equal float32 priorities keep input order).

    Worked example, ``bits=2, N=3, num_outputs=2``::

        t  input(b0 b1 prio delim)  target(b0 b1)  scored
        0      1  0  -0.5   0         0  0           0
        1      0  1   0.75  0         0  0           0
        2      1  1   0.25  0         0  0           0
        3      0  0   0     1         0  0           0
        4      0  0   0     0         0  1           1
        5      0  0   0     0         1  1           1

    ## Observation Space
    ``Box(min(0, priority_low), max(1, priority_high), (bits + 2,), float32)``.

    ## Action Space
    ``MultiBinary(bits)``: the predicted bits of this step.

    ## Rewards
    Minus the number of wrong bits on scored steps, 0 elsewhere.

    ## Episode End
    After step ``N + K``.

    ## Arguments
    - ``bits`` (int >= 1, default 8): width of each vector.
    - ``min_length``, ``max_length`` (1 <= min <= max, default 20, 20): training range of N
      (``length_name = "inputs"``).
    - ``num_outputs`` (int in [1, min_length] or None, default None): K. None means
      ``K = round(0.8 N)`` per sample, the paper's 16 for N = 20, and it follows N in
      length sweeps; an integer fixes K, and sampling fewer than K inputs is refused.
    - ``priority_low``, ``priority_high`` (finite float32 numbers, low < high, default -1, 1):
      the priority range.

    ## Version History
    - v0: initial version, the paper's defaults.
    """

    length_name = "inputs"

    def __init__(
        self,
        bits: int = 8,
        min_length: int = 20,
        max_length: int = 20,
        num_outputs: int | None = None,
        priority_low: float = -1.0,
        priority_high: float = 1.0,
    ) -> None:
        super().__init__(min_length, max_length)
        self.bits = check_int("bits", bits, 1)
        if num_outputs is not None:
            if check_int("num_outputs", num_outputs, 1) > self.min_length:
                raise ValueError(
                    f"num_outputs must be <= min_length (K outputs need N >= K inputs), "
                    f"got num_outputs={num_outputs} > min_length={self.min_length}"
                )
            num_outputs = int(num_outputs)
        self.num_outputs = num_outputs
        self.priority_low = check_float("priority_low", priority_low, -_FLOAT32_MAX, _FLOAT32_MAX)
        self.priority_high = check_float("priority_high", priority_high, -_FLOAT32_MAX, _FLOAT32_MAX)
        if not self.priority_low < self.priority_high:
            raise ValueError(
                f"priority_low must be < priority_high, got priority_low={self.priority_low} "
                f">= priority_high={self.priority_high}"
            )
        self.spec = TaskSpec("bits", self.bits + 2, "bits", self.bits)

    def observation_bounds(self) -> tuple[float, float]:
        return min(0.0, self.priority_low), max(1.0, self.priority_high)

    def _sample(self, lengths: np.ndarray, rng: np.random.Generator) -> Batch:
        if self.num_outputs is None:
            K = _default_num_outputs(lengths)
        else:
            if self.num_outputs > int(lengths.min()):
                raise ValueError(
                    f"num_outputs={self.num_outputs} needs at least that many inputs, "
                    f"got length={int(lengths.min())}; sample a length >= num_outputs"
                )
            K = np.full_like(lengths, self.num_outputs)
        B, N_max = len(lengths), int(lengths.max())
        N, bits = lengths, self.bits
        T = int((N + 1 + K).max())
        rows = np.arange(B)
        real = np.arange(N_max)[None, :] < N[:, None]  # (B, N_max)
        vecs = rng.integers(0, 2, size=(B, N_max, bits), dtype=np.int8)
        vecs *= real[..., None]
        # Drawn in float64 and rounded once; the float32 values the agent sees define the order.
        prio = (rng.uniform(self.priority_low, self.priority_high, size=(B, N_max)) * real).astype(np.float32)

        inputs = np.zeros((B, T, bits + 2), np.float32)
        inputs[:, :N_max, :bits] = vecs
        inputs[:, :N_max, bits] = prio
        inputs[rows, N, bits + 1] = 1.0

        # Descending priority; padding sorts last; a stable sort keeps ties in input order.
        order = np.argsort(np.where(real, -prio, np.inf), axis=1, kind="stable")
        ranked = np.take_along_axis(vecs, order[..., None], axis=1)
        r = np.arange(T)[None, :] - (N + 1)[:, None]  # output rank of each step
        scored = (r >= 0) & (r < K[:, None])
        src = np.where(scored, r, 0)
        targets = np.take_along_axis(ranked, src[..., None], axis=1).astype(np.float32) * scored[..., None]
        extras = {"priorities": prio, "num_outputs": K.astype(np.int64)}
        return Batch(inputs, targets, scored.astype(np.float32), lengths, extras)

    def __repr__(self) -> str:
        return (
            f"PrioritySort(bits={self.bits}, min_length={self.min_length}, max_length={self.max_length}, "
            f"num_outputs={self.num_outputs}, priority_low={self.priority_low}, "
            f"priority_high={self.priority_high})"
        )
