"""Finding the bAbI files, splitting them, and mapping words and answers to ids.

Where the data is: the ``data_dir`` argument, else the environment variable
``MEMTASKS_BABI_DIR``. Either may name the ``tasks_1-20_v1-2`` folder of the
official archive (the one holding ``en/`` and ``en-10k/``) or the folder it was
unpacked into. ``memtasks data babi --dest DIR`` downloads and unpacks it.

Which files: ``size="1k"`` reads ``en/``, ``size="10k"`` reads ``en-10k/``; a
``variant`` names any other folder of the archive (``"hn"``, ``"shuffled"``,
``"en-valid"``, ...) and overrides ``size``. Task ``N`` is the file matching
``qa{N}_*_{train,test}.txt`` (or ``qa{N}_{train,test}.txt`` as in ``en-valid``).

Splits (deterministic, no shuffling): ``train`` is the first 90 % of the train
file's stories (rounded down), ``valid`` the remaining 10 %, ``test`` the test
file. A folder that ships its own ``qa{N}_*valid.txt`` (``en-valid``) uses it as
``valid`` and the whole train file as ``train``.

Vocabulary and answer classes come from train + valid only, so the test split
can hold words and answers never seen in training: unknown words map to
``<unk>`` (id 1; id 0 is padding) and unknown answers to the reserved answer
class ``<unk>`` (class 0), and both are counted (``BabiTask.unk_report``). On
the real data this happens once: qa8 (1k) has a test answer
``football,apple,milk`` that no training story has.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from memtasks.babi.parser import Story, parse_babi
from memtasks.core import DataNotFoundError, check_int

__all__ = [
    "ARCHIVE_ROOT",
    "ENV_VAR",
    "PAD",
    "SIZES",
    "SPLITS",
    "TASK_NAMES",
    "UNK",
    "BabiData",
    "Vocabulary",
    "find_data_dir",
    "load_babi",
    "split_train_valid",
    "task_files",
]

ENV_VAR = "MEMTASKS_BABI_DIR"
ARCHIVE_ROOT = "tasks_1-20_v1-2"
SIZES: dict[str, str] = {"1k": "en", "10k": "en-10k"}
SPLITS = ("train", "valid", "test")
PAD = "<pad>"
UNK = "<unk>"

#: The 20 tasks, as named in Weston et al. (2015), table 1 (the file names say the same).
TASK_NAMES: dict[int, str] = {
    1: "single supporting fact",
    2: "two supporting facts",
    3: "three supporting facts",
    4: "two argument relations",
    5: "three argument relations",
    6: "yes/no questions",
    7: "counting",
    8: "lists/sets",
    9: "simple negation",
    10: "indefinite knowledge",
    11: "basic coreference",
    12: "conjunction",
    13: "compound coreference",
    14: "time reasoning",
    15: "basic deduction",
    16: "basic induction",
    17: "positional reasoning",
    18: "size reasoning",
    19: "path finding",
    20: "agent's motivations",
}

_HOW_TO_GET = (
    "Get bAbI v1.2 with `memtasks data babi --dest DIR`, then `export {env}=DIR/{root}` "
    "(or pass data_dir=...)."
)


def _how_to_get() -> str:
    return _HOW_TO_GET.format(env=ENV_VAR, root=ARCHIVE_ROOT)


# -- locating files --------------------------------------------------------------------------------


def find_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The ``tasks_1-20_v1-2`` folder: from ``data_dir``, else from ``$MEMTASKS_BABI_DIR``.

    Args:
        data_dir: The ``tasks_1-20_v1-2`` folder or its parent; ``None`` reads the
            environment variable.

    Raises:
        TypeError: ``data_dir`` is not a path.
        DataNotFoundError: Neither is given, or the folder does not exist; the
            message says how to download the data.
    """
    if data_dir is None:
        value = os.environ.get(ENV_VAR, "").strip()
        if not value:
            raise DataNotFoundError(f"bAbI data not found: data_dir is None and ${ENV_VAR} is not set. {_how_to_get()}")
        origin, root = f"${ENV_VAR}", Path(value).expanduser()
    else:
        if not isinstance(data_dir, (str, os.PathLike)):
            raise TypeError(f"data_dir must be a path (str or os.PathLike) or None, got {type(data_dir).__name__}")
        origin, root = "data_dir", Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataNotFoundError(f"bAbI data not found: {origin} = {str(root)!r} is not a directory. {_how_to_get()}")
    nested = root / ARCHIVE_ROOT
    # accept the folder the archive was unpacked into, as printed by `memtasks data babi`
    return nested if nested.is_dir() else root


def _resolve_folder(root: Path, size: str, variant: str | None) -> Path:
    if variant is not None:
        if not isinstance(variant, str) or not variant or "/" in variant or "\\" in variant or variant in (".", ".."):
            raise ValueError(
                f"variant must be the name of a folder next to en/ (e.g. 'hn', 'shuffled'), got {variant!r}"
            )
        name = variant
    else:
        if size not in SIZES:
            raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
        name = SIZES[size]
    folder = root / name
    if not folder.is_dir():
        present = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise DataNotFoundError(
            f"bAbI folder {str(folder)!r} does not exist (folders in {str(root)!r}: {', '.join(present) or 'none'}). "
            f"Is {str(root)!r} the {ARCHIVE_ROOT} folder? {_how_to_get()}"
        )
    return folder


def _find_one(folder: Path, task: int, kind: str, required: bool) -> Path | None:
    matches = sorted(set(folder.glob(f"qa{task}_*_{kind}.txt")) | set(folder.glob(f"qa{task}_{kind}.txt")))
    if len(matches) > 1:
        names = [m.name for m in matches]
        raise DataNotFoundError(f"several bAbI {kind} files for task {task} in {str(folder)!r}: {names}")
    if matches:
        return matches[0]
    if not required:
        return None
    others = sorted(p.name for p in folder.glob(f"qa{task}_*.txt"))
    note = (
        " The official archive has it, so this copy is incomplete (for example, some copies of en-10k lack "
        "qa3's train file); download the archive again or use size='1k'."
        if folder.name in SIZES.values()
        else ""
    )
    raise DataNotFoundError(
        f"bAbI {kind} file for task {task} is missing: no {str(folder / f'qa{task}_*_{kind}.txt')!r}"
        f" (files for task {task} there: {', '.join(others) or 'none'}).{note}"
    )


def task_files(
    task: int,
    size: str = "1k",
    variant: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Path]:
    """The files of bAbI task ``task``: keys ``train`` and ``test``, and ``valid`` if the folder has one.

    Args:
        task: Task number, 1..20.
        size: ``"1k"`` (folder ``en``) or ``"10k"`` (folder ``en-10k``).
        variant: Any other folder of the archive; overrides ``size``.
        data_dir: See :func:`find_data_dir`.

    Raises:
        DataNotFoundError: The folder or a file is missing (the message names the path).
    """
    check_int("task", task, 1, 20)
    folder = _resolve_folder(find_data_dir(data_dir), size, variant)
    files = {kind: _find_one(folder, task, kind, required=True) for kind in ("train", "test")}
    valid = _find_one(folder, task, "valid", required=False)
    if valid is not None:
        files["valid"] = valid
    return {k: v for k, v in files.items() if v is not None}


# -- splits ---------------------------------------------------------------------------------------------


def split_train_valid(stories: Sequence[Story]) -> tuple[Sequence[Story], Sequence[Story]]:
    """Cut a train file's stories: the first 90 % (rounded down) train, the rest valid."""
    n_train = len(stories) * 9 // 10  # integer arithmetic: no float rounding at exact multiples
    return stories[:n_train], stories[n_train:]


# -- vocabularies -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    """A fixed mapping between strings and ids, with reserved entries first.

    Word vocabularies reserve ``<pad>`` (0) and ``<unk>`` (1); answer classes
    reserve ``<unk>`` (0) alone. Data entries follow in sorted order, so the ids
    do not depend on the order the files list them in.

    Attributes:
        items: Every entry, by id.
        unk_id: The id unknown strings map to.
    """

    items: tuple[str, ...]
    unk_id: int
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {item: i for i, item in enumerate(self.items)}
        if len(index) != len(self.items):
            raise ValueError("vocabulary items must be unique")
        check_int("unk_id", self.unk_id, 0, len(self.items) - 1)
        object.__setattr__(self, "_index", index)

    @classmethod
    def build(cls, entries: Iterable[str], reserved: Sequence[str] = (PAD, UNK)) -> Vocabulary:
        """A vocabulary of ``reserved`` (which must contain ``<unk>``) then the sorted distinct ``entries``."""
        reserved = tuple(reserved)
        if UNK not in reserved:
            raise ValueError(f"reserved must contain {UNK!r}, got {reserved}")
        rest = sorted(set(entries) - set(reserved))
        return cls(reserved + tuple(rest), reserved.index(UNK))

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item: object) -> bool:
        return item in self._index

    def __getitem__(self, item_id: int) -> str:
        return self.items[item_id]

    def id(self, item: str) -> int:
        """The id of ``item``, or ``unk_id`` if it is not in the vocabulary."""
        return self._index.get(item, self.unk_id)

    def encode(self, items: Iterable[str], unknown: Counter[str] | None = None) -> list[int]:
        """Ids of ``items``; each unknown one maps to ``unk_id`` and is counted in ``unknown``."""
        ids = []
        for item in items:
            i = self._index.get(item)
            if i is None:
                i = self.unk_id
                if unknown is not None:
                    unknown[item] += 1
            ids.append(i)
        return ids


# -- one task's data -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BabiData:
    """The stories of one task, split, with the vocabulary and answer classes of train + valid.

    Attributes:
        task: Task number, 1..20.
        folder: The folder the files come from (``.../en``).
        files: The files read (``train``, ``test``, maybe ``valid``).
        splits: ``{"train", "valid", "test"}`` -> stories.
        vocab: Words of train + valid sentences and questions (0 ``<pad>``, 1 ``<unk>``).
        classes: Answers of train + valid (0 ``<unk>``).
        max_words: Most tokens in any sentence or question of any split.
    """

    task: int
    folder: Path
    files: dict[str, Path]
    splits: dict[str, Sequence[Story]]
    vocab: Vocabulary
    classes: Vocabulary
    max_words: int


def load_babi(
    task: int,
    size: str = "1k",
    variant: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    keep_punctuation: bool = False,
) -> BabiData:
    """Read, split and index bAbI task ``task`` (arguments as :func:`task_files`).

    Raises:
        DataNotFoundError: The data or a file is missing.
        BabiFormatError: A file is malformed (the message names file and line).
    """
    files = task_files(task, size, variant, data_dir)
    train_file = parse_babi(files["train"], keep_punctuation)
    if "valid" in files:
        train, valid = train_file, parse_babi(files["valid"], keep_punctuation)
    else:
        train, valid = split_train_valid(train_file)
    test = parse_babi(files["test"], keep_punctuation)
    splits = {"train": train, "valid": valid, "test": test}

    known = [*train, *valid]
    vocab = Vocabulary.build(word for story in known for tokens in _lines(story) for word in tokens)
    classes = Vocabulary.build((q.answer for story in known for q in story.questions), reserved=(UNK,))
    # the frame width covers the test split too, so the spec is the same for every split
    max_words = max((len(t) for stories in splits.values() for s in stories for t in _lines(s)), default=1)
    return BabiData(task, files["train"].parent, files, splits, vocab, classes, max_words)


def _lines(story: Story) -> Iterable[tuple[str, ...]]:
    """The token tuples of a story's sentences and questions."""
    yield from story.sentences
    for q in story.questions:
        yield q.tokens
