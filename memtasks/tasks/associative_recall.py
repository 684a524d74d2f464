"""Associative Recall (Graves, Wayne & Danihelka 2014, arXiv 1410.5401, section 4.3)."""

from __future__ import annotations

import numpy as np

from memtasks.core import Batch, Task, TaskSpec, check_int

__all__ = ["AssociativeRecall"]


class AssociativeRecall(Task):
    """Associative Recall: read a list of items, then given one item write the item that followed it.

    ## Description
    The NTM paper's third task: an item is a short sequence of bit vectors, so
    the model must store items as units and find one by its content, then move
    to its successor (content-based then location-based addressing).

    ## Encoding (n items of ``item_length`` = k vectors; T = (n + 2)(k + 1) steps)
    Inputs have ``bits + 2`` channels: channel ``bits`` is the item delimiter,
    channel ``bits + 1`` the query delimiter. For each item ``i = 0 .. n-1``:

    - step ``i(k+1)``: the item delimiter alone;
    - steps ``i(k+1)+1 .. i(k+1)+k``: the item's k vectors.

    Then, from ``s = n(k+1)``:

    - step ``s``: the query delimiter alone;
    - steps ``s+1 .. s+k``: a copy of item j, with j uniform over ``0 .. n-2``;
    - step ``s+k+1``: the query delimiter alone;
    - steps ``s+k+2 .. s+2k+1``: zero input; scored, target = item ``j + 1``.

    Items are drawn independently, so two may coincide (chance about
    ``n**2 / 2**(bits*k+1)``, 5e-5 at the defaults), which makes that query ambiguous.
    ``batch.extras["query_index"]`` holds j.

    Worked example, ``bits=2, item_length=2``, items ``A = (10, 01)`` and ``B = (11, 00)``,
    query A (j = 0)::

        t  input(b0 b1 item query)  target(b0 b1)  scored
        0      0  0   1    0          0  0           0
        1      1  0   0    0          0  0           0
        2      0  1   0    0          0  0           0
        3      0  0   1    0          0  0           0
        4      1  1   0    0          0  0           0
        5      0  0   0    0          0  0           0
        6      0  0   0    1          0  0           0
        7      1  0   0    0          0  0           0
        8      0  1   0    0          0  0           0
        9      0  0   0    1          0  0           0
        10     0  0   0    0          1  1           1
        11     0  0   0    0          0  0           1

    ## Observation Space
    ``Box(0, 1, (bits + 2,), float32)``.

    ## Action Space
    ``MultiBinary(bits)``: the predicted bits of this step.

    ## Rewards
    Minus the number of wrong bits on scored steps, 0 elsewhere.

    ## Episode End
    After step ``(n + 2)(k + 1) - 1``.

    ## Arguments
    - ``bits`` (int >= 1, default 6): width of each vector.
    - ``item_length`` (int >= 1, default 3): vectors per item.
    - ``min_length``, ``max_length`` (2 <= min <= max, default 2, 6): training range of the
      number of items n (the length parameter, ``length_name = "items"``).

    ## Version History
    - v0: initial version, the paper's defaults.
    """

    length_name = "items"
    min_allowed_length = 2  # the query must have a successor: j ranges over 0 .. n-2

    def __init__(self, bits: int = 6, item_length: int = 3, min_length: int = 2, max_length: int = 6) -> None:
        super().__init__(min_length, max_length)
        self.bits = check_int("bits", bits, 1)
        self.item_length = check_int("item_length", item_length, 1)
        self.spec = TaskSpec("bits", self.bits + 2, "bits", self.bits)

    def _sample(self, lengths: np.ndarray, rng: np.random.Generator) -> Batch:
        B, n_max = len(lengths), int(lengths.max())
        k, w, bits = self.item_length, self.bits + 2, self.bits
        T = (n_max + 2) * (k + 1)
        rows = np.arange(B)
        items = rng.integers(0, 2, size=(B, n_max, k, bits), dtype=np.int8)
        real = np.arange(n_max)[None, :] < lengths[:, None]  # (B, n_max)
        items *= real[:, :, None, None]
        j = rng.integers(0, lengths - 1)  # per-sample upper bound n-1 (exclusive)

        inputs = np.zeros((B, T, w), np.float32)
        # The item list as (B, n_max, k+1, w) blocks: delimiter step, then the k vectors.
        block = np.zeros((B, n_max, k + 1, w), np.float32)
        block[:, :, 0, bits] = real
        block[:, :, 1:, :bits] = items
        inputs[:, : n_max * (k + 1)] = block.reshape(B, n_max * (k + 1), w)

        # The query part starts right after each sample's own last item, so it is
        # placed per sample with fancy indexing rather than at a common offset.
        tail = np.zeros((B, 2 * k + 2, w), np.float32)
        tail[:, 0, bits + 1] = 1.0
        tail[:, 1 : k + 1, :bits] = items[rows, j]
        tail[:, k + 1, bits + 1] = 1.0
        start = lengths * (k + 1)
        inputs[rows[:, None], start[:, None] + np.arange(2 * k + 2)] = tail

        targets = np.zeros((B, T, bits), np.float32)
        mask = np.zeros((B, T), np.float32)
        out_steps = (start + k + 2)[:, None] + np.arange(k)  # (B, k)
        targets[rows[:, None], out_steps] = items[rows, j + 1]
        mask[rows[:, None], out_steps] = 1.0
        return Batch(inputs, targets, mask, lengths, {"query_index": j.astype(np.int64)})

    def __repr__(self) -> str:
        return (
            f"AssociativeRecall(bits={self.bits}, item_length={self.item_length}, "
            f"min_length={self.min_length}, max_length={self.max_length})"
        )
