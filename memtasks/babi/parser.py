"""Reader for the bAbI v1.2 question-answering file format (Weston et al. 2015, arXiv 1502.05698).

A bAbI file is a sequence of stories. Every line is ``<id> <text>``; ids start at
1 in each story and go up by one per line, so an id of 1 starts a new story.
Question lines take ids too and carry two more tab-separated fields::

    1 Mary moved to the bathroom.
    2 John went to the hallway.
    3 Where is Mary? <TAB>bathroom<TAB>1

The answer is kept as one string, even when it lists several words (qa8
``apple,milk``, qa19 ``s,e``): as in the MemN2N paper (Sukhbaatar et al. 2015)
every distinct answer string is one answer class, so ``apple,milk`` and
``milk,apple`` are different classes. Answers are lower-cased like the text.

Tokenisation lower-cases the text and splits it into words and single
punctuation characters. Punctuation is any Unicode ``P*`` character, so that the
Hindi variant's combining vowel signs stay inside their words (``\\w`` alone
would cut them out). By default punctuation tokens are dropped, as in the
MemN2N setup: bAbI sentences end in ``.`` and questions in ``?``, and the words
alone tell them apart. ``keep_punctuation=True`` keeps them.

Malformed files raise :class:`BabiFormatError`, whose message starts with
``path:line:``.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BabiFormatError", "Question", "Story", "parse_babi", "parse_lines", "tokenize"]


class BabiFormatError(ValueError):
    """A bAbI file breaks the format; ``path`` and ``line`` (1-based) say where.

    Attributes:
        path: The file (or a label for in-memory text).
        line: The 1-based line number of the offending line.
        problem: What is wrong, without the location.
    """

    def __init__(self, path: str, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Question:
    """One question of a story.

    Attributes:
        frame: Index of the question in the story's tape of lines (sentences and
            questions in file order, see :meth:`Story.frames`); equals its line id - 1.
        position: Number of story sentences before the question, so its context is
            ``story.sentences[:position]``.
        tokens: The question's tokens.
        answer: The answer string, lower-cased; a multi-word answer such as
            ``"apple,milk"`` is one string (one class).
        supports: Indices into ``story.sentences`` of the supporting facts, in file order.
        line: The 1-based line number in the file, for messages.
    """

    frame: int
    position: int
    tokens: tuple[str, ...]
    answer: str
    supports: tuple[int, ...]
    line: int


@dataclass(frozen=True, slots=True)
class Story:
    """A story: its statements (``sentences``) and the questions asked along the way.

    Questions are not sentences: ``sentences`` holds the statements only, and each
    question records where it was asked (``position``). Everything is immutable, so
    a cached parse can be shared safely.

    Attributes:
        sentences: Token tuples of the statements, in order.
        questions: The questions, in file order (``position`` never decreases).
        path: The file the story comes from.
        line: The 1-based line number of its first line.
    """

    sentences: tuple[tuple[str, ...], ...]
    questions: tuple[Question, ...]
    path: str
    line: int

    @property
    def num_frames(self) -> int:
        """Number of lines of the story (sentences plus questions)."""
        return len(self.sentences) + len(self.questions)

    def frames(self) -> list[tuple[str, ...]]:
        """The story as read: sentence and question tokens in file order (``Question.frame`` indexes it)."""
        tape: list[tuple[str, ...]] = []
        sentence = 0
        for question in self.questions:
            tape.extend(self.sentences[sentence : question.position])
            sentence = question.position
            tape.append(question.tokens)
        tape.extend(self.sentences[sentence:])
        return tape


# -- tokenising ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _token_pattern() -> re.Pattern[str]:
    # Built on first use (about 0.05 s): one character class of every Unicode
    # punctuation code point, so a word is a run of anything else but whitespace. The
    # class is written as ranges of consecutive code points to keep it small. The scan
    # stops at U+1FFFF: later planes hold ideographs, tags and private use but no
    # punctuation (true up to Unicode 15), and skipping them makes the scan 8x faster.
    runs: list[list[int]] = []
    for c in range(min(sys.maxunicode + 1, 0x20000)):
        if unicodedata.category(chr(c)).startswith("P"):
            if runs and runs[-1][1] == c - 1:
                runs[-1][1] = c
            else:
                runs.append([c, c])
    cls = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in runs)
    return re.compile(rf"[^\s{cls}]+|[{cls}]")


def tokenize(text: str, keep_punctuation: bool = False) -> tuple[str, ...]:
    """Lower-case ``text`` and split it into words and punctuation characters.

    >>> tokenize("Where is Mary? ")
    ('where', 'is', 'mary')
    >>> tokenize("Where is Mary?", keep_punctuation=True)
    ('where', 'is', 'mary', '?')

    Args:
        text: A sentence or question.
        keep_punctuation: Keep each punctuation character as a token of its own.

    Returns:
        The tokens, as a tuple.
    """
    tokens = _token_pattern().findall(text.lower())
    if not keep_punctuation:
        tokens = [t for t in tokens if not _is_punctuation(t)]
    return tuple(tokens)


def _is_punctuation(token: str) -> bool:
    return len(token) == 1 and unicodedata.category(token).startswith("P")


# -- parsing ----------------------------------------------------------------------------------

_EXPECTED = "expected 'id question<TAB>answer<TAB>supporting ids'"


def parse_lines(lines: Iterable[str], path: str = "<text>", keep_punctuation: bool = False) -> list[Story]:
    """Parse the lines of a bAbI file into stories.

    Blank lines are skipped (a trailing empty line is common in hand-edited files);
    every other line must follow the format described in the module docstring.

    Args:
        lines: The file's lines, with or without their line ends.
        path: Name of the source, used in error messages.
        keep_punctuation: Keep punctuation tokens (see :func:`tokenize`).

    Returns:
        The stories, in file order.

    Raises:
        BabiFormatError: An id is not 1 and not the previous id + 1, a line has no
            id or no text, a question has no answer, or a supporting id is not an
            earlier statement of the same story.
    """
    stories: list[Story] = []
    # Sentences repeat thousands of times in bAbI; memoising their tokens makes
    # parsing fast and lets equal sentences share one tuple in memory.
    memo: dict[str, tuple[str, ...]] = {}

    def tok(text: str) -> tuple[str, ...]:
        tokens = memo.get(text)
        if tokens is None:
            tokens = memo[text] = tokenize(text, keep_punctuation)
        return tokens

    sentences: list[tuple[str, ...]] = []
    questions: list[Question] = []
    # line id -> index into `sentences` (None for a question line), for this story
    id_to_sentence: list[int | None] = []
    story_line = 0
    prev_id = 0

    def close_story() -> None:
        if id_to_sentence:
            stories.append(Story(tuple(sentences), tuple(questions), path, story_line))

    for lineno, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        head, _, rest = line.partition(" ")
        if not head.isdigit():
            raise BabiFormatError(path, lineno, f"a line must start with its integer id and a space, got {line[:40]!r}")
        line_id = int(head)
        if line_id == 1:
            close_story()
            sentences, questions, id_to_sentence = [], [], []
            story_line = lineno
        elif line_id != prev_id + 1:
            expected = "1" if prev_id == 0 else f"1 (a new story) or {prev_id + 1}"
            raise BabiFormatError(path, lineno, f"bad line id {line_id}: expected {expected}")
        prev_id = line_id

        if "\t" in rest:
            fields = rest.split("\t")
            text = fields[0].strip()
            if not text:
                raise BabiFormatError(path, lineno, "empty question text")
            answer = fields[1].strip().lower() if len(fields) > 1 else ""
            if not answer:
                raise BabiFormatError(path, lineno, f"question without an answer ({_EXPECTED})")
            if len(fields) > 3 and any(f.strip() for f in fields[3:]):
                raise BabiFormatError(path, lineno, f"too many tab-separated fields ({len(fields)}); expected 3")
            supports = _parse_supports(fields[2] if len(fields) > 2 else "", id_to_sentence, line_id, path, lineno)
            tokens = tok(text)
            if not tokens:
                raise BabiFormatError(path, lineno, f"question {text!r} has no word")
            questions.append(Question(line_id - 1, len(sentences), tokens, answer, supports, lineno))
            id_to_sentence.append(None)
        else:
            text = rest.strip()
            if not text:
                raise BabiFormatError(path, lineno, "empty text")
            if text.endswith("?"):
                # A statement never ends in '?': this is a question whose tab-separated
                # answer is missing (e.g. tabs turned into spaces by an editor).
                raise BabiFormatError(path, lineno, f"question without an answer ({_EXPECTED})")
            tokens = tok(text)
            if not tokens:
                raise BabiFormatError(path, lineno, f"sentence {text!r} has no word")
            id_to_sentence.append(len(sentences))
            sentences.append(tokens)
    close_story()
    return stories


def _parse_supports(
    field: str, id_to_sentence: list[int | None], line_id: int, path: str, lineno: int
) -> tuple[int, ...]:
    supports = []
    for item in field.split():
        if not item.isdigit():
            raise BabiFormatError(path, lineno, f"supporting id {item!r} is not an integer")
        ref = int(item)
        if not 1 <= ref < line_id:
            raise BabiFormatError(
                path, lineno, f"supporting id {ref} does not exist before this line (valid: 1..{line_id - 1})"
            )
        index = id_to_sentence[ref - 1]
        if index is None:
            raise BabiFormatError(path, lineno, f"supporting id {ref} refers to a question line, not a statement")
        supports.append(index)
    return tuple(supports)


def parse_babi(path: str | os.PathLike[str], keep_punctuation: bool = False) -> tuple[Story, ...]:
    """Parse a bAbI file, caching the result by (path, modification time, size).

    The cache makes repeated task construction (all splits, all 20 tasks) cheap;
    a file edited in place is re-read because its modification time changes.

    Args:
        path: The file.
        keep_punctuation: Keep punctuation tokens (see :func:`tokenize`).

    Returns:
        The stories, as an immutable tuple shared between callers.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        BabiFormatError: The file is malformed (the message names file and line).
    """
    resolved = Path(path).resolve()
    st = resolved.stat()
    return _parse_cached(str(resolved), st.st_mtime_ns, st.st_size, bool(keep_punctuation))


@functools.lru_cache(maxsize=48)  # 20 tasks x (train, test) and a few spares; 10k files are large
def _parse_cached(path: str, mtime_ns: int, size: int, keep_punctuation: bool) -> tuple[Story, ...]:
    del mtime_ns, size  # only part of the cache key
    with open(path, encoding="utf-8") as f:
        # iterate the file itself: str.splitlines would also split on \x0b, \x1c, ... and shift line numbers
        return tuple(parse_lines(f, path, keep_punctuation))
