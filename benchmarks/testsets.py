"""Frozen test sets: test sequences generated once, shipped as files, verified by SHA-256 before use.

Sampled test sets (:func:`benchmarks.evaluate.eval_rng`) are only as stable as numpy's generator algorithms and
the task's sampler: a change in either silently changes every score. A frozen test set removes both: the
sequences are the arrays in the file, so scores depend only on the model. :func:`build_test_set` draws
exactly the sequences the sampled evaluation draws for the same seed (so a frozen set and a sampled one agree
on the day they are made), :func:`save_test_set` writes them, and :func:`load_test_set` refuses a file whose
SHA-256 is not the one the suite records.

File format: an ``.npz`` (a zip of ``.npy`` arrays; ``numpy.load`` reads it) written deterministically (fixed
member order and timestamps, deflate), so the same sequences always give the same bytes and the same
checksum. Per length ``L`` the members ``L{L}.inputs``, ``.targets``, ``.mask``, ``.lengths`` and
``.extra.<name>`` hold the :class:`memtasks.Batch` (length ``-1``: lengths drawn from the training range);
arrays holding only 0 and 1 are stored bit-packed (``np.packbits``) and restored to their dtype and shape.
``meta.json`` records the task, its arguments, the seed, the samples per length and the format version.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memtasks import make_task
from memtasks.atomic import atomic_open
from memtasks.core import Batch

__all__ = ["FORMAT_VERSION", "TestSet", "TestSetError", "build_test_set", "file_sha256", "load_test_set",
           "save_test_set"]

FORMAT_VERSION = 1
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # zip timestamps: the earliest zip allows, so bytes never depend on "now"


class TestSetError(ValueError):
    """A test-set file is missing, unreadable, or not the one recorded (checksum mismatch)."""

    __test__ = False  # not a pytest test class


@dataclass(frozen=True)
class TestSet:
    """Frozen test sequences of one task: one :class:`memtasks.Batch` per test length."""

    __test__ = False  # not a pytest test class

    task: str
    """Task id, ``memtasks/<Name>-vN``."""
    task_kwargs: dict[str, Any]
    """The task's constructor arguments."""
    seed: int
    """The evaluation seed the sequences were drawn with (:func:`benchmarks.evaluate.eval_rng`)."""
    samples: int
    """Sequences per length."""
    batches: dict[int, Batch] = field(repr=False)
    """Length -> its sequences (``-1``: lengths drawn from the training range)."""

    @property
    def lengths(self) -> list[int]:
        return list(self.batches)


def build_test_set(
    task_id: str, task_kwargs: dict[str, Any], lengths: Sequence[int | None], samples: int, seed: int
) -> TestSet:
    """Draw the test sequences the sampled evaluation would use for ``seed`` (``None`` = training range)."""
    from benchmarks.evaluate import TRAIN_RANGE, eval_rng

    task = make_task(task_id, **task_kwargs)
    batches = {}
    for length in lengths:
        key = TRAIN_RANGE if length is None else int(length)
        batches[key] = task.sample(samples, eval_rng(seed, length), length=length)
    canonical = task_id if task_id.startswith("memtasks/") else f"memtasks/{task_id}"
    return TestSet(canonical, dict(task_kwargs), int(seed), int(samples), batches)


def _is_bits(array: np.ndarray) -> bool:
    return array.size > 0 and array.dtype != np.bool_ and bool(np.isin(array, (0, 1)).all())


def save_test_set(test_set: TestSet, path: str | Path) -> str:
    """Write ``test_set`` to ``path`` (atomically, deterministically); return the file's SHA-256."""
    members: dict[str, np.ndarray] = {}
    packed: dict[str, dict[str, Any]] = {}
    for length, batch in test_set.batches.items():
        arrays = {"inputs": batch.inputs, "targets": batch.targets, "mask": batch.mask, "lengths": batch.lengths}
        arrays.update({f"extra.{k}": v for k, v in batch.extras.items()})
        for name, array in arrays.items():
            key = f"L{length}.{name}"
            array = np.ascontiguousarray(array)
            if _is_bits(array):
                packed[key] = {"dtype": array.dtype.str, "shape": list(array.shape)}
                array = np.packbits(array.astype(np.bool_).ravel())
            members[key] = array
    meta = {
        "format_version": FORMAT_VERSION,
        "task": test_set.task,
        "task_kwargs": test_set.task_kwargs,
        "seed": test_set.seed,
        "samples": test_set.samples,
        "lengths": test_set.lengths,
        "packed": packed,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(members):
            data = io.BytesIO()
            np.save(data, members[name], allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data.getvalue())
        info = zipfile.ZipInfo("meta.json", date_time=_FIXED_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, json.dumps(meta, sort_keys=True, indent=1))
    content = buffer.getvalue()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        f.write(content)
    return hashlib.sha256(content).hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_test_set(path: str | Path, sha256: str | None) -> TestSet:
    """Read a test set written by :func:`save_test_set`, after checking its SHA-256.

    Args:
        path: The ``.npz`` file.
        sha256: The checksum the suite records; ``None`` skips the check (for inspecting a file, never for
            scoring a leaderboard).

    Raises:
        TestSetError: the file is missing or unreadable, or its checksum is not ``sha256``.
    """
    path = Path(path)
    if not path.is_file():
        raise TestSetError(f"test set {path}: no such file")
    content = path.read_bytes()
    actual = hashlib.sha256(content).hexdigest()
    if sha256 is not None and actual != sha256.lower():
        raise TestSetError(
            f"test set {path}: checksum mismatch: the suite records sha256 {sha256}, the file has {actual}; "
            "restore the file (git checkout) rather than regenerating it, or the scores stop being comparable"
        )
    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files if name != "meta.json"}
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            meta = json.loads(archive.read("meta.json"))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise TestSetError(f"test set {path}: not a memtasks test set ({type(exc).__name__}: {exc})") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise TestSetError(f"test set {path}: format version {meta.get('format_version')!r}, "
                           f"this memtasks reads {FORMAT_VERSION}")
    for key, info in meta["packed"].items():
        count = int(np.prod(info["shape"]))
        bits = np.unpackbits(arrays[key])[:count]
        arrays[key] = bits.astype(np.dtype(info["dtype"])).reshape(info["shape"])
    batches = {}
    for length in meta["lengths"]:
        prefix = f"L{length}."
        extras = {k[len(prefix) + 6:]: v for k, v in arrays.items() if k.startswith(prefix + "extra.")}
        batches[int(length)] = Batch(arrays[prefix + "inputs"], arrays[prefix + "targets"], arrays[prefix + "mask"],
                                     arrays[prefix + "lengths"], extras)
    return TestSet(meta["task"], meta["task_kwargs"], meta["seed"], meta["samples"], batches)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.testsets --task ID [--task-kwargs JSON] --lengths 5,10 --samples N --seed S --out F``:
    build a frozen test set, write it, print its SHA-256 (to record in a suite's ``[suite.tasks]``)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.testsets", description=main.__doc__)
    parser.add_argument("--task", required=True, help="task id, e.g. memtasks/Copy-v0")
    parser.add_argument("--task-kwargs", default="{}", help="task arguments as JSON (default {})")
    parser.add_argument("--lengths", required=True, help="comma-separated test lengths")
    parser.add_argument("--samples", type=int, required=True, help="sequences per length")
    parser.add_argument("--seed", type=int, required=True, help="seed (benchmarks.evaluate.eval_rng)")
    parser.add_argument("--out", required=True, help="the .npz to write")
    args = parser.parse_args(argv)
    try:
        kwargs = json.loads(args.task_kwargs)
        lengths = [int(n) for n in args.lengths.split(",") if n.strip()]
        sha = save_test_set(build_test_set(args.task, kwargs, lengths, args.samples, args.seed), args.out)
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    print(f"{args.out}  sha256 {sha}  ({Path(args.out).stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
