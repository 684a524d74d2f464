"""Dynamic N-Grams (Graves, Wayne & Danihelka 2014, arXiv 1410.5401, section 4.4)."""

from __future__ import annotations

import numpy as np

from memtasks.core import Batch, Task, TaskSpec, check_int, score_bits

__all__ = ["DynamicNGrams", "MAX_ORDER", "ngram_bayes_probabilities"]

MAX_ORDER = 16
"""Largest n-gram order: each sequence draws a table of ``2**(order-1)`` probabilities."""

_BETA = 0.5  # the paper's Beta(1/2, 1/2) prior over each table entry


def ngram_bayes_probabilities(inputs: np.ndarray, order: int) -> np.ndarray:
    """Bayes-optimal P(next bit = 1) of a Dynamic N-Grams batch, from its inputs alone.

    With a Beta(1/2, 1/2) prior on each table entry the posterior predictive is
    ``(N1 + 1/2) / (N1 + N0 + 1)``, where N1 (N0) counts how often a 1 (0) followed
    the current context of ``order - 1`` bits earlier in the same sequence. Steps
    whose context is incomplete (targets among the first ``order - 1`` bits, which
    are fair coin flips) get 0.5. The prediction at step t uses inputs 0..t only.

    Args:
        inputs: ``(B, T, 1)`` (or ``(B, T)``) input bits of a batch.
        order: The task's n-gram order, in ``[1, MAX_ORDER]``.

    Returns:
        float64 ``(B, T, 1)``: the probability that the target of each step is 1.
    """
    order = check_int("order", order, 1, MAX_ORDER)
    x = np.asarray(inputs)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 2:
        raise ValueError(f"inputs must have shape (B, T, 1) or (B, T), got {np.asarray(inputs).shape}")
    x = (x > 0.5).astype(np.int64)
    B, T = x.shape
    k = order - 1
    if k == 0:  # no context: every bit, bit 0 included, follows the one table entry
        return ((np.cumsum(x, axis=1) + _BETA) / (np.arange(T) + 1 + 2 * _BETA))[..., None]
    p = np.full((B, T), 0.5)
    start = k - 1  # first step whose context (inputs t-k+1 .. t) is complete
    if T <= start:
        return p[..., None]
    # q[t]: the context of step t's target, the last k input bits, newest as bit 0
    q = np.zeros((B, T - start), np.int64)
    for i in range(k):  # a loop over context bits, not over samples or steps
        q += x[:, start - i : T - i] << i
    # y[t]: what followed context q[t], i.e. the next input (unknown at the last step;
    # counts below are exclusive, so that value is never used)
    y = np.zeros_like(q)
    y[:, :-1] = x[:, start + 1 :]

    # Counts of earlier (same sample, same context) steps, for all steps at once:
    # a stable sort groups equal (sample, context) keys and keeps time order inside.
    key = (np.arange(B)[:, None] << k) + q
    flat_key, flat_y = key.ravel(), y.ravel()
    perm = np.argsort(flat_key, kind="stable")
    sk, sy = flat_key[perm], flat_y[perm]
    pos = np.arange(sk.size)
    new_group = np.ones(sk.size, bool)
    new_group[1:] = sk[1:] != sk[:-1]
    first = np.maximum.accumulate(np.where(new_group, pos, 0))  # index of each group's first entry
    ones_before = np.concatenate(([0], np.cumsum(sy)))
    n1 = np.empty(sk.size, np.int64)
    n = np.empty(sk.size, np.int64)
    n1[perm] = ones_before[pos] - ones_before[first]
    n[perm] = pos - first
    p[:, start:] = ((n1 + _BETA) / (n + 2 * _BETA)).reshape(B, T - start)
    return p[..., None]


class DynamicNGrams(Task):
    """Dynamic N-Grams: predict the next bit of a sequence drawn from a random n-gram model.

    ## Description
    The NTM paper's fourth task: each sequence comes from its own table of
    next-bit probabilities, so the model has to count, in memory, what followed
    each context so far. The Bayes-optimal predictor (:meth:`optimal_probabilities`,
    :meth:`optimal_score`) gives the best achievable cost, to report beside agents.

    ## Encoding (n bits; T = n - 1 steps)
    For an ``order``-gram, k = order - 1. Per sequence a table of ``2**k`` values
    ``P(1 | previous k bits)`` is drawn from Beta(1/2, 1/2) (``batch.extras["table"]``,
    indexed by the context read as a binary number, newest bit least significant).
    Bits ``0 .. k-1`` are fair coin flips, then each bit follows the table.

    - step ``t = 0 .. n-2``: input = bit t (channel 0); scored, target = bit ``t + 1``.

    Worked example, ``order=3, n=8`` bits ``0 1 1 0 1 1 0 1``; the last column is the
    Bayes-optimal prediction ``(N1 + 1/2) / (N1 + N0 + 1)`` (0.5 until the context is complete)::

        t  input  target  scored  bayes
        0    0      1       1     0.5
        1    1      1       1     0.5
        2    1      0       1     0.5
        3    0      1       1     0.5
        4    1      1       1     0.75
        5    1      0       1     0.25
        6    0      1       1     0.75

    ## Observation Space
    ``Box(0, 1, (1,), float32)``.

    ## Action Space
    ``MultiBinary(1)``: the predicted next bit.

    ## Rewards
    Minus one for a wrong prediction, 0 otherwise (every step is scored).

    ## Episode End
    After step ``n - 2``.

    ## Arguments
    - ``order`` (int in [1, 16], default 6): n of the n-gram (contexts of order - 1 bits).
    - ``min_length``, ``max_length`` (max(order, 2) <= min <= max, default 200, 200): training
      range of the number of bits n (``length_name = "bits"``).

    ## Version History
    - v0: initial version, the paper's defaults.
    """

    length_name = "bits"

    def __init__(self, order: int = 6, min_length: int = 200, max_length: int = 200) -> None:
        self.order = check_int("order", order, 1, MAX_ORDER)
        # at least `order` bits so that one bit follows the table, and two for one step
        self.min_allowed_length = max(self.order, 2)
        super().__init__(min_length, max_length)
        self.spec = TaskSpec("bits", 1, "bits", 1)

    def _sample(self, lengths: np.ndarray, rng: np.random.Generator) -> Batch:
        B, n_max = len(lengths), int(lengths.max())
        k = self.order - 1
        rows = np.arange(B)
        table = rng.beta(_BETA, _BETA, size=(B, 1 << k))
        u = rng.random((B, n_max))
        x = np.zeros((B, n_max), np.int64)
        x[:, :k] = u[:, :k] < 0.5
        ctx = np.zeros(B, np.int64)
        for i in range(k):
            ctx = (ctx << 1) | x[:, i]
        # The chain is sequential in time, so loop over steps, vectorised over the batch.
        for t in range(k, n_max):
            bit = (u[:, t] < table[rows, ctx]).astype(np.int64)
            x[:, t] = bit
            ctx = ((ctx << 1) | bit) & ((1 << k) - 1)
        x *= np.arange(n_max)[None, :] < lengths[:, None]  # zero past each sample's length

        bits = x.astype(np.float32)[..., None]
        mask = (np.arange(n_max - 1)[None, :] < (lengths - 1)[:, None]).astype(np.float32)
        # the last bit of a shorter sample is only a target: keep it out of the padded inputs
        inputs = bits[:, :-1] * mask[..., None]
        return Batch(inputs, bits[:, 1:].copy(), mask, lengths, {"table": table})

    def optimal_probabilities(self, batch: Batch) -> np.ndarray:
        """Bayes-optimal ``P(target = 1)`` per step, ``(B, T, 1)`` (see :func:`ngram_bayes_probabilities`)."""
        return ngram_bayes_probabilities(batch.inputs, self.order)

    def optimal_score(self, batch: Batch) -> dict[str, float]:
        """:meth:`Task.score` of the Bayes-optimal predictor on ``batch``: the cost to beat."""
        p = self.optimal_probabilities(batch)
        return score_bits(np.log(p) - np.log1p(-p), batch.targets, batch.mask)

    def __repr__(self) -> str:
        return f"DynamicNGrams(order={self.order}, min_length={self.min_length}, max_length={self.max_length})"
