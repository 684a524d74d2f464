"""Copy (Graves, Wayne & Danihelka 2014, arXiv 1410.5401, section 4.1)."""

from __future__ import annotations

import numpy as np

from memtasks.core import Batch, Task, TaskSpec, check_int

__all__ = ["Copy"]


class Copy(Task):
    """Copy: read a sequence of random bit vectors, then write it back after a delimiter.

    ## Description
    The NTM paper's first task: it tests whether a model can store a sequence of
    arbitrary length and recall it in order.

    ## Encoding (L vectors of ``bits`` bits; T = 2L + 1 steps)
    - steps ``0 .. L-1``: input = vector i on channels ``0..bits-1``;
    - step ``L``: input = the delimiter alone (channel ``bits``);
    - steps ``L+1 .. 2L``: zero input; scored, target = vector ``t - L - 1``.

    Worked example, ``bits=2, L=2`` (rows are steps; ``|`` separates input from target)::

        t  input(b0 b1 delim)  target(b0 b1)  scored
        0      1  0   0          0  0           0
        1      0  1   0          0  0           0
        2      0  0   1          0  0           0
        3      0  0   0          1  0           1
        4      0  0   0          0  1           1

    ## Observation Space
    ``Box(0, 1, (bits + 1,), float32)``.

    ## Action Space
    ``MultiBinary(bits)``: the predicted bits of this step.

    ## Rewards
    Minus the number of wrong bits on scored steps, 0 elsewhere.

    ## Episode End
    After step ``2L``.

    ## Arguments
    - ``bits`` (int >= 1, default 8): width of each vector.
    - ``min_length``, ``max_length`` (1 <= min <= max, default 1, 20): training range of L.

    ## Version History
    - v0: initial version, the paper's defaults.
    """

    length_name = "length"

    def __init__(self, bits: int = 8, min_length: int = 1, max_length: int = 20) -> None:
        super().__init__(min_length, max_length)
        self.bits = check_int("bits", bits, 1)
        self.spec = TaskSpec("bits", self.bits + 1, "bits", self.bits)

    def _sample(self, lengths: np.ndarray, rng: np.random.Generator) -> Batch:
        B = len(lengths)
        L_max = int(lengths[0]) if B == 1 else int(lengths.max())
        T = 2 * L_max + 1
        if B == 1 or (lengths == L_max).all():
            # one length (single envs, vector-env resets, same-length training batches): plain slices, the
            # same draws and arrays as _sample_mixed (tested), at a fraction of its numpy calls
            seq = rng.integers(0, 2, size=(B, L_max, self.bits), dtype=np.int8)
            inputs = np.zeros((B, T, self.bits + 1), np.float32)
            inputs[:, :L_max, : self.bits] = seq
            inputs[:, L_max, self.bits] = 1.0
            targets = np.zeros((B, T, self.bits), np.float32)
            targets[:, L_max + 1 :] = seq
            mask = np.zeros((B, T), np.float32)
            mask[:, L_max + 1 :] = 1.0
            return Batch(inputs, targets, mask, lengths)
        return self._sample_mixed(lengths, rng)

    def _sample_mixed(self, lengths: np.ndarray, rng: np.random.Generator) -> Batch:
        """The general path: every sample its own length, padded to the longest."""
        B, L_max = len(lengths), int(lengths.max())
        T = 2 * L_max + 1
        L = lengths[:, None]  # (B, 1)
        t = np.arange(T)[None, :]  # (1, T)
        seq = rng.integers(0, 2, size=(B, L_max, self.bits), dtype=np.int8)
        seq *= (np.arange(L_max)[None, :] < L)[..., None]  # zero past each sample's length

        inputs = np.zeros((B, T, self.bits + 1), np.float32)
        inputs[:, :L_max, : self.bits] = seq
        inputs[np.arange(B), lengths, self.bits] = 1.0  # delimiter at step L

        scored = (t > L) & (t <= 2 * L)  # (B, T)
        src = np.clip(t - L - 1, 0, L_max - 1)  # which stored vector each step recalls
        targets = np.take_along_axis(seq, src[..., None], axis=1).astype(np.float32)
        targets *= scored[..., None]
        return Batch(inputs, targets, scored.astype(np.float32), lengths)
