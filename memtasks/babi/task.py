"""The bAbI question-answering tasks (Weston et al. 2015, arXiv 1502.05698) as sequence tasks."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from memtasks.babi.data import SIZES, SPLITS, TASK_NAMES, BabiData, load_babi
from memtasks.babi.parser import Story
from memtasks.core import Batch, Task, TaskSpec, _to_numpy, check_int

if TYPE_CHECKING:  # pandas is imported only by the analysis helpers that return DataFrames
    import pandas as pd

__all__ = ["BabiTask", "Window", "build_windows", "error_by_length", "question_results"]


@dataclass(frozen=True, slots=True)
class Window:
    """One sequence cut from a story: sentences ``start:stop`` with some of its questions.

    Attributes:
        story: Index of the story in its split.
        start: First story sentence in the sequence.
        stop: One past the last story sentence in the sequence.
        questions: Indices into ``story.questions`` of the questions asked in it.
    """

    story: int
    start: int
    stop: int
    questions: tuple[int, ...]


def build_windows(stories: Sequence[Story], memory_size: int, per_question: bool = False) -> list[Window]:
    """Cut stories into sequences in which no question sees more than ``memory_size`` sentences.

    A question asked after ``p`` story sentences sees the last ``min(p, memory_size)``
    of them, exactly the MemN2N memory. The questions with ``p <= memory_size``
    share one sequence, the story's first ``max p`` sentences; every later
    question gets a sequence of its own (shared by questions asked at the same
    point): the ``memory_size`` sentences before it, then the question. So every
    question is in exactly one sequence, and stories without a question give none.

    With ``per_question`` every question (with the others asked at the same point,
    if any) gets a sequence of its own: the last ``min(p, memory_size)`` sentences
    before it, then the question. No earlier question is then a frame of the
    sequence, as in the MemN2N paper, where each question is one example and the
    memory holds story sentences only (Sukhbaatar et al. 2015, section 4).

    Args:
        stories: The stories of a split.
        memory_size: The most story sentences before a question, >= 1.
        per_question: One sequence per question instead of shared story prefixes.

    Returns:
        The sequences, story by story and in question order.
    """
    memory_size = check_int("memory_size", memory_size, 1)
    windows: list[Window] = []
    if not isinstance(per_question, bool):
        raise TypeError(f"per_question must be a bool, got {per_question!r}")
    for si, story in enumerate(stories):
        qs = story.questions
        # per question: an empty head, so every question group takes the path of long stories
        head = () if per_question else tuple(k for k, q in enumerate(qs) if q.position <= memory_size)
        if head:
            windows.append(Window(si, 0, qs[head[-1]].position, head))
        k = len(head)  # positions never decrease, so the head is a prefix
        while k < len(qs):
            p, group = qs[k].position, []
            while k < len(qs) and qs[k].position == p:
                group.append(k)
                k += 1
            windows.append(Window(si, max(0, p - memory_size), p, tuple(group)))
    return windows


def _tape(story: Story, win: Window) -> Iterator[tuple[str, int]]:
    """The frames of ``win`` in order: ``("sentence", index)`` and ``("question", index)``."""
    s = win.start
    for k in win.questions:
        position = story.questions[k].position
        for i in range(s, position):
            yield "sentence", i
        s = max(s, position)
        yield "question", k
    for i in range(s, win.stop):
        yield "sentence", i


class BabiTask(Task):
    """bAbI task N: read a short story one sentence per step and answer its questions.

    ## Description
    The 20 bAbI question-answering tasks (v1.2) of Weston et al. (2015). A story
    is a list of statements with questions asked along the way; each question has
    a one-word (or one comma-joined list, qa8/qa19) answer and supporting facts.
    Here a story becomes one sequence of frames, one frame per line: statements
    are unscored, questions are scored with their answer class. This is the
    "weakly supervised" setting (supporting facts are not targets; they are given
    in ``batch.extras["supports"]`` for analysis only).

    ## Encoding (one frame per sentence or question; T = L + number of questions)
    Each frame holds the line's word ids (``spec.vocab``), right-padded with 0 to
    ``W`` = the longest sentence or question of the task's train, valid and test
    files (so the spec is the same for every split). Punctuation is dropped
    unless ``keep_punctuation``.

    Long stories: a question sees at most ``memory_size`` (default 50, as MemN2N)
    story sentences. The questions asked within the first ``memory_size``
    sentences share one sequence (the story up to the last of them); each later
    question becomes its own sequence of the ``memory_size`` sentences before it
    and the question (see :func:`build_windows`). In the 1k set only qa2, qa3, qa5
    and qa8 have such long stories (qa3 up to 228 sentences); with ``memory_size=50``
    no supporting fact falls outside its question's window
    (``stats()["supports_outside_window"]`` counts them for other sizes). Earlier
    question frames stay in the sequence, unanswered, like any unscored frame;
    ``per_question=True`` instead makes one sequence per question (its last
    ``memory_size`` story sentences, then the question: the paper's MemN2N
    examples, whose memory holds no earlier question).

    Worked example, a shortened qa1 story (``L`` = 4 sentences, 2 questions, T = 6)::

        t  frame (words)                 target      scored
        0  mary moved to the bathroom    0           0
        1  john went to the hallway      0           0
        2  where is mary                 bathroom    1
        3  daniel went back to the ...   0           0
        4  sandra moved to the garden    0           0
        5  where is daniel               hallway     1

    ## Observation Space
    ``MultiDiscrete([len(vocab)] * W)``, int64: the frame's word ids.

    ## Action Space
    ``Discrete(len(classes))``: the answer class (``spec.classes``; class 0 is
    ``<unk>``, the target of test answers never seen in train + valid).

    ## Rewards
    -1 for a wrong answer on a question frame, 0 otherwise.

    ## Episode End
    After the last frame of the sequence.

    ## Arguments
    - ``task`` (int 1..20): the bAbI task number.
    - ``size`` (``"1k"`` or ``"10k"``, default ``"1k"``): training set size.
    - ``split`` (``"train"``, ``"valid"`` or ``"test"``, default ``"train"``):
      train/valid are the first 90 % / last 10 % of the train file's stories.
    - ``data_dir`` (path or None): the ``tasks_1-20_v1-2`` folder; None reads
      ``$MEMTASKS_BABI_DIR``. Missing data raises :class:`memtasks.DataNotFoundError`.
    - ``variant`` (str or None): another folder of the archive (``"hn"``,
      ``"shuffled"``, ``"en-valid"``, ...); overrides ``size``.
    - ``memory_size`` (int >= 1, default 50): the most story sentences a question sees.
    - ``keep_punctuation`` (bool, default False): keep ``.``/``?`` as tokens.
    - ``per_question`` (bool, default False): one sequence per question, without the
      story's earlier questions (see :func:`build_windows`).

    ``sample(batch_size, rng)`` draws sequences uniformly from the split;
    ``sample(..., length=L)`` draws among the sequences with exactly ``L`` story
    sentences (``length_counts()`` lists them). ``iter_batches`` walks the split
    once in order, for evaluation; ``evaluate`` scores a model over it.

    ## Attributes
    ``task``, ``title`` (``"bAbI task 1: single supporting fact"``), ``split``,
    ``spec``, ``vocab`` and ``classes`` (:class:`~memtasks.babi.data.Vocabulary`),
    ``stories`` (the split's parsed stories), ``windows`` (one :class:`Window` per
    sequence), ``data`` (:class:`~memtasks.babi.data.BabiData`, all three splits).

    ## Version History
    - v0: initial version (bAbI v1.2, weak supervision, one frame per line).
    """

    length_name = "sentences"
    min_allowed_length = 0  # a question may come before any statement

    def __init__(
        self,
        task: int,
        size: str = "1k",
        split: str = "train",
        data_dir: str | os.PathLike[str] | None = None,
        variant: str | None = None,
        memory_size: int = 50,
        keep_punctuation: bool = False,
        per_question: bool = False,
    ) -> None:
        self.task = check_int("task", task, 1, 20)
        if size not in SIZES:
            raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        if not isinstance(keep_punctuation, bool):
            raise TypeError(f"keep_punctuation must be a bool, got {keep_punctuation!r}")
        self.size, self.split, self.variant = size, split, variant
        self.memory_size = check_int("memory_size", memory_size, 1)
        self.keep_punctuation = keep_punctuation
        if not isinstance(per_question, bool):
            raise TypeError(f"per_question must be a bool, got {per_question!r}")
        self.per_question = per_question
        self.title = f"bAbI task {self.task}: {TASK_NAMES[self.task]}"

        self.data: BabiData = load_babi(self.task, size, variant, data_dir, keep_punctuation)
        self.vocab, self.classes = self.data.vocab, self.data.classes
        self.spec = TaskSpec(
            "tokens",
            self.data.max_words,
            "classes",
            len(self.classes),
            vocab=self.vocab.items,
            classes=self.classes.items,
        )
        self.stories = self.data.splits[split]
        self._encode(self.stories)
        if self.num_sequences == 0:
            raise ValueError(
                f"split {split!r} of bAbI task {self.task} has no question "
                f"({len(self.stories)} stories from {self.data.files.get(split, self.data.files['train'])})"
            )
        super().__init__(int(self._lengths.min()), int(self._lengths.max()))

    # -- encoding ---------------------------------------------------------------------------
    def _encode(self, stories: Sequence[Story]) -> None:
        """Turn the split into flat frame arrays plus per-sequence offsets (one pass, done once)."""
        W = self.spec.input_size
        self.windows = build_windows(stories, self.memory_size, self.per_question)
        unknown_words: Counter[str] = Counter()
        unknown_answers: Counter[str] = Counter()
        # bAbI repeats sentences a lot: encode each distinct one once, remembering its unknown words
        encoded: dict[tuple[str, ...], tuple[list[int], Counter[str]]] = {}

        def ids(tokens: tuple[str, ...]) -> list[int]:
            hit = encoded.get(tokens)
            if hit is None:
                unknown: Counter[str] = Counter()
                row = self.vocab.encode(tokens, unknown)
                hit = encoded[tokens] = (row + [0] * (W - len(row)), unknown)
            if hit[1]:  # every occurrence counts (skipping empty updates keeps 10k splits fast)
                unknown_words.update(hit[1])
            return hit[0]

        first_question = np.cumsum([0] + [len(s.questions) for s in stories])
        max_supports = max((len(q.supports) for s in stories for q in s.questions), default=0)
        K = max(max_supports, 1)
        frames: list[list[int]] = []
        targets, qids, contexts, supports = [], [], [], []
        offsets, lengths, story_ids = [0], [], []
        outside = 0
        for win in self.windows:
            story = stories[win.story]
            frame_of: dict[int, int] = {}  # sentence index -> frame index in this sequence
            t0 = len(frames)
            for kind, i in _tape(story, win):
                if kind == "sentence":
                    frame_of[i] = len(frames) - t0
                    frames.append(ids(story.sentences[i]))
                    targets.append(0)
                    qids.append(-1)
                    contexts.append(-1)
                    supports.append([-1] * K)
                    continue
                q = story.questions[i]
                frames.append(ids(q.tokens))
                if q.answer not in self.classes:
                    unknown_answers[q.answer] += 1
                targets.append(self.classes.id(q.answer))
                qids.append(int(first_question[win.story]) + i)
                contexts.append(q.position - win.start)
                sup = [frame_of.get(x, -1) for x in q.supports]
                outside += any(x == -1 for x in sup)
                supports.append(sup + [-1] * (K - len(sup)))
            offsets.append(len(frames))
            lengths.append(win.stop - win.start)
            story_ids.append(win.story)

        self._frames = np.asarray(frames, dtype=np.int64).reshape(-1, W)
        self._targets = np.asarray(targets, dtype=np.int64)
        self._mask = (np.asarray(qids, dtype=np.int64) >= 0).astype(np.float32)
        self._qids = np.asarray(qids, dtype=np.int64)
        self._contexts = np.asarray(contexts, dtype=np.int64)
        self._supports = np.asarray(supports, dtype=np.int64).reshape(-1, K)
        self._offsets = np.asarray(offsets, dtype=np.int64)
        self._lengths = np.asarray(lengths, dtype=np.int64)
        self._story_ids = np.asarray(story_ids, dtype=np.int64)
        self._unknown_words = unknown_words
        self._unknown_answers = unknown_answers
        self._supports_outside = outside

    # -- sizes --------------------------------------------------------------------------------
    @property
    def num_sequences(self) -> int:
        """Number of sequences (episodes) in the split."""
        return len(self._lengths)

    @property
    def epoch_size(self) -> int:
        """Sequences in one pass over the split (= ``num_sequences``)."""
        return self.num_sequences

    @property
    def num_questions(self) -> int:
        """Number of questions (scored frames) in the split."""
        return int(self._mask.sum())

    @property
    def num_scored(self) -> int:
        """Scored frames of the split (= ``num_questions``; :class:`memtasks.core.Dataset`)."""
        return self.num_questions

    @property
    def max_frames(self) -> int:
        """Most frames (sentences + questions) in one sequence of the split.

        A model attending over previous frames (the MemN2N core) needs ``max_frames - 1``
        memories to see a whole sequence: earlier question frames take memory slots too.
        """
        return int((self._offsets[1:] - self._offsets[:-1]).max())

    @property
    def lengths(self) -> np.ndarray:
        """The length (story sentences) of every sequence, in split order (a copy)."""
        return self._lengths.copy()

    def __len__(self) -> int:
        return self.num_sequences

    def length_counts(self) -> dict[int, int]:
        """``{length: number of sequences}`` of the split, by increasing length."""
        values, counts = np.unique(self._lengths, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}

    # -- batches -------------------------------------------------------------------------------
    def sample(
        self,
        batch_size: int,
        rng: np.random.Generator,
        length: int | None = None,
        **options: Any,
    ) -> Batch:
        """Draw ``batch_size`` sequences uniformly (with replacement) from the split.

        Args:
            batch_size: Number of sequences, >= 1.
            rng: The only source of randomness.
            length: ``None`` draws from every sequence; an integer draws only among
                sequences with exactly that many story sentences.
            **options: None are accepted (bAbI has no sample options).

        Raises:
            ValueError: No sequence of the split has ``length`` story sentences.
        """
        self._check_sample_args(batch_size, rng, options)
        if length is None:
            pool = None
        else:
            length = check_int("length", length, 0)
            pool = np.flatnonzero(self._lengths == length)
            if len(pool) == 0:
                raise ValueError(
                    f"length must be a story length present in the {self.split} split of bAbI task {self.task}"
                    f" ({_ranges(self.length_counts())}), got {length}"
                )
        if pool is None:
            index = rng.integers(0, self.num_sequences, size=batch_size)
        else:
            index = pool[rng.integers(0, len(pool), size=batch_size)]
        return self.batch(index)

    def iter_batches(self, batch_size: int, length: int | None = None) -> Iterator[Batch]:
        """Walk the split once, in order: every question is in exactly one batch.

        Args:
            batch_size: Sequences per batch, >= 1; the last batch may be smaller.
            length: Only the sequences with exactly this many story sentences.
        """
        check_int("batch_size", batch_size, 1)
        index = np.arange(self.num_sequences)
        if length is not None:
            index = index[self._lengths == check_int("length", length, 0)]
        for start in range(0, len(index), batch_size):
            yield self.batch(index[start : start + batch_size])

    def batch(self, index: Sequence[int] | np.ndarray) -> Batch:
        """The batch of the sequences numbered ``index`` (0 .. num_sequences - 1), padded to the longest.

        ``extras`` carries, per sample: ``sequence_id`` and ``story_id`` (B,);
        per frame: ``question_id`` (B, T; the question's number in the split, -1 on
        other frames), ``context`` (B, T; story sentences before the question in
        this sequence, -1 elsewhere) and ``supports`` (B, T, K; frame indices of the
        supporting facts, -1 for padding or a fact outside the sequence).
        """
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        if len(index) == 0 or index.min() < 0 or index.max() >= self.num_sequences:
            raise ValueError(f"index must hold sequence numbers in [0, {self.num_sequences - 1}], got {index}")
        starts = self._offsets[index]
        sizes = self._offsets[index + 1] - starts
        T = int(sizes.max())
        steps = np.arange(T)[None, :]
        valid = steps < sizes[:, None]  # (B, T)
        pos = np.where(valid, starts[:, None] + steps, 0)  # any in-range row for padding; zeroed below
        inputs = self._frames[pos] * valid[..., None]
        targets = self._targets[pos] * valid
        mask = self._mask[pos] * valid
        extras = {
            "sequence_id": index.copy(),
            "story_id": self._story_ids[index],
            "question_id": np.where(valid, self._qids[pos], -1),
            "context": np.where(valid, self._contexts[pos], -1),
            "supports": np.where(valid[..., None], self._supports[pos], -1),
        }
        return Batch(inputs, targets, mask.astype(np.float32), self._lengths[index].copy(), extras)

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(
        self, predict: Callable[[Batch], Any], batch_size: int = 64
    ) -> tuple[dict[str, float], pd.DataFrame]:
        """Score ``predict`` on every question of the split.

        Args:
            predict: Maps a :class:`Batch` to logits ``(B, T, num_classes)`` (numpy or torch).
            batch_size: Sequences per call.

        Returns:
            ``(metrics, results)``: the :func:`memtasks.score_classes` metrics over the
            whole split (``seq_accuracy`` counts sequences without a wrong answer),
            and :func:`question_results` for every question.
        """
        import pandas as pd

        results = pd.concat(
            [question_results(predict(batch), batch) for batch in self.iter_batches(batch_size)], ignore_index=True
        )
        error_rate = 1.0 - float(results["correct"].mean())
        metrics = {
            "error_rate": error_rate,
            "accuracy": 1.0 - error_rate,
            "cost_nats": float(results["nll"].mean()),
            "seq_accuracy": float(results.groupby("sequence_id")["correct"].all().mean()),
        }
        return metrics, results

    def unk_report(self) -> dict[str, Any]:
        """Words and answers of this split that train + valid lack (always none for train/valid).

        Counts are over the split's frames, so a sentence that two windows of a long
        story share counts twice.

        Returns:
            ``tokens`` / ``unknown_tokens``: word occurrences in the split's frames and
            how many map to ``<unk>``; ``unknown_words``: those words with their counts;
            ``questions`` / ``unknown_answers``: questions and how many have an answer
            outside ``spec.classes`` (target class 0, ``<unk>``); ``unknown_answer_values``.
        """
        tokens = int((self._frames != 0).sum())
        return {
            "split": self.split,
            "tokens": tokens,
            "unknown_tokens": int(sum(self._unknown_words.values())),
            "unknown_words": dict(self._unknown_words.most_common()),
            "questions": self.num_questions,
            "unknown_answers": int(sum(self._unknown_answers.values())),
            "unknown_answer_values": dict(self._unknown_answers.most_common()),
        }

    def stats(self) -> dict[str, Any]:
        """A summary of the split: sizes, shapes, lengths and unknowns."""
        unk = self.unk_report()
        return {
            "task": self.task,
            "title": self.title,
            "folder": self.data.folder.name,
            "split": self.split,
            "stories": len(self.stories),
            "sequences": self.num_sequences,
            "questions": self.num_questions,
            "words_per_frame": self.spec.input_size,
            "vocab_size": self.spec.vocab_size,
            "classes": self.spec.output_size,
            "min_length": self.min_length,
            "max_length": self.max_length,
            "max_frames": self.max_frames,
            "longest_story": max(len(s.sentences) for s in self.stories),
            "supports_outside_window": self._supports_outside,
            "unknown_tokens": unk["unknown_tokens"],
            "unknown_answers": unk["unknown_answers"],
        }

    def __repr__(self) -> str:
        where = f"variant={self.variant!r}" if self.variant else f"size={self.size!r}"
        return (
            f"BabiTask(task={self.task}, {where}, split={self.split!r}, memory_size={self.memory_size}; "
            f"{self.num_sequences} sequences, {self.num_questions} questions)"
        )


# -- analysis ------------------------------------------------------------------------------------------


def question_results(outputs: Any, batch: Batch) -> pd.DataFrame:
    """One row per question of ``batch``: what was asked, predicted and whether it was right.

    Args:
        outputs: Logits ``(B, T, num_classes)``, numpy or torch.
        batch: A batch from :meth:`BabiTask.sample`, ``iter_batches`` or ``batch``.

    Returns:
        A DataFrame with columns ``question_id``, ``sequence_id``, ``length`` (story
        sentences in the sequence), ``context`` (story sentences before the
        question in the sequence), ``target``, ``prediction``, ``correct``, ``nll``
        (nats).
    """
    import pandas as pd

    logits = _to_numpy(outputs).astype(np.float64)
    if logits.ndim != 3 or logits.shape[:2] != batch.targets.shape:
        raise ValueError(
            f"outputs must have shape (B, T, num_classes) with (B, T) = {batch.targets.shape}, got {logits.shape}"
        )
    for key in ("question_id", "context", "sequence_id"):
        if key not in batch.extras:
            raise ValueError(f"batch lacks extras[{key!r}]; use a batch from a BabiTask")
    b, t = np.nonzero(batch.mask > 0)
    scored = logits[b, t]  # (N, C)
    targets = batch.targets[b, t]
    log_z = np.logaddexp.reduce(scored, axis=-1)
    prediction = scored.argmax(-1)
    return pd.DataFrame(
        {
            "question_id": batch.extras["question_id"][b, t],
            "sequence_id": batch.extras["sequence_id"][b],
            "length": batch.lengths[b],
            "context": batch.extras["context"][b, t],
            "target": targets,
            "prediction": prediction,
            "correct": prediction == targets,
            "nll": log_z - scored[np.arange(len(b)), targets],
        }
    )


def error_by_length(results: pd.DataFrame | Iterable[pd.DataFrame], by: str = "length") -> pd.DataFrame:
    """Error rate per story length, for generalisation curves on real data.

    Args:
        results: :func:`question_results` output, or several to concatenate.
        by: ``"length"`` (story sentences in the question's sequence) or
            ``"context"`` (story sentences before the question).

    Returns:
        A DataFrame indexed by ``by`` with columns ``questions``, ``errors`` and ``error_rate``.
    """
    import pandas as pd

    if by not in ("length", "context"):
        raise ValueError(f"by must be 'length' or 'context', got {by!r}")
    frame = results if isinstance(results, pd.DataFrame) else pd.concat(list(results), ignore_index=True)
    grouped = frame.groupby(by)["correct"]
    out = pd.DataFrame({"questions": grouped.size(), "errors": grouped.size() - grouped.sum()})
    out["errors"] = out["errors"].astype(np.int64)
    out["error_rate"] = out["errors"] / out["questions"]
    return out


def _ranges(counts: dict[int, int]) -> str:
    """``{1: 3, 2: 5, 4: 1}`` -> ``"lengths 1-2, 4"``, to keep error messages short."""
    values = sorted(counts)
    if not values:
        return "no sequences"
    runs: list[list[int]] = [[values[0], values[0]]]
    for v in values[1:]:
        if v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return "lengths " + ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
