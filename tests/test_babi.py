"""bAbI: parser, data location and splits, the task, the environments and the downloader.

Tests marked by the ``babi_dir`` fixture read the real v1.2 data from
``$MEMTASKS_BABI_DIR`` and skip when it is absent; everything else runs on small
hand-written files.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import warnings
from pathlib import Path

import gymnasium
import numpy as np
import pytest

import memtasks
from memtasks import DataNotFoundError
from memtasks.cli import main as memtasks_main
from memtasks.babi import BabiTask, build_windows, error_by_length, load_babi, parse_babi, parse_lines, tokenize
from memtasks.babi.data import ENV_VAR, Vocabulary, split_train_valid, task_files
from memtasks.babi.download import ChecksumError, UnsafeArchiveError, cli, download_babi
from memtasks.babi.parser import BabiFormatError

BROKEN = Path(__file__).parent / "data" / "babi_broken"


@pytest.fixture(scope="session")
def babi_dir() -> Path:
    value = os.environ.get(ENV_VAR)
    if not value:
        pytest.skip(f"bAbI data absent: ${ENV_VAR} is not set (see `memtasks data babi`)")
    path = Path(value)
    if not (path / "en").is_dir():
        pytest.skip(f"bAbI data absent: ${ENV_VAR}={value} has no en/ folder")
    return path


# -- hand-written data ------------------------------------------------------------------------------

SNIPPET = """\
1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary? \tbathroom\t1
4 Daniel went back to the hallway.
5 Where is Daniel? \thallway\t4
1 Fred picked up the apple.
2 Fred got the milk there.
3 What is Fred carrying? \tApple,Milk\t1 2
"""


def _write_tiny(root: Path, folder: str = "en", test_extra: str = "") -> Path:
    """A tiny task 1 in ``root/tasks_1-20_v1-2/folder``: 10 train stories, 2 test stories."""
    places = ["kitchen", "garden", "office", "hallway", "bedroom"]
    names = ["mary", "john"]
    train = []
    for i in range(10):
        who, where = names[i % 2].title(), places[i % 5]
        train.append(f"1 {who} went to the {where}.\n2 Where is {who}? \t{where}\t1\n")
    test = "1 Mary went to the kitchen.\n2 Where is Mary? \tkitchen\t1\n" + test_extra
    d = root / "tasks_1-20_v1-2" / folder
    d.mkdir(parents=True, exist_ok=True)
    (d / "qa1_single-supporting-fact_train.txt").write_text("".join(train))
    (d / "qa1_single-supporting-fact_test.txt").write_text(test)
    return root / "tasks_1-20_v1-2"


# -- parser -----------------------------------------------------------------------------------------


def test_tokenize_words_and_punctuation() -> None:
    assert tokenize("Mary moved to the bathroom.") == ("mary", "moved", "to", "the", "bathroom")
    assert tokenize("Where is Mary? ", keep_punctuation=True) == ("where", "is", "mary", "?")
    # words are never cut into characters (the old re.split('(\\W+)?') pitfall)
    assert tokenize("hallway,office") == ("hallway", "office")
    # combining vowel signs (category Mn/Mc) stay inside their word; the danda is punctuation
    assert tokenize("मैरी रसोई में गई।") == ("मैरी", "रसोई", "में", "गई")


def test_parse_stories_questions_supports() -> None:
    stories = parse_lines(SNIPPET.splitlines(), "snippet.txt")
    assert len(stories) == 2
    first, second = stories
    assert first.sentences == (
        ("mary", "moved", "to", "the", "bathroom"),
        ("john", "went", "to", "the", "hallway"),
        ("daniel", "went", "back", "to", "the", "hallway"),
    )
    q0, q1 = first.questions
    assert (q0.frame, q0.position, q0.tokens, q0.answer, q0.supports, q0.line) == (
        2, 2, ("where", "is", "mary"), "bathroom", (0,), 3
    )
    assert (q1.frame, q1.position, q1.supports) == (4, 3, (2,))
    assert first.frames()[q1.frame] == q1.tokens and first.num_frames == 5
    assert second.line == 6
    (q,) = second.questions
    assert q.answer == "apple,milk"  # a multi-word answer stays one (lower-cased) class
    assert q.supports == (0, 1)


@pytest.mark.parametrize(
    "name, line, phrase",
    [
        ("bad_id_gap.txt", 3, "bad line id 4: expected 1 (a new story) or 3"),
        ("bad_first_id.txt", 1, "bad line id 2: expected 1"),
        ("no_answer.txt", 3, "question without an answer"),
        ("no_answer_no_tab.txt", 3, "question without an answer"),
        ("support_missing.txt", 4, "supporting id 5 does not exist"),
        ("support_question.txt", 4, "supporting id 2 refers to a question line"),
        ("support_not_int.txt", 2, "supporting id 'one' is not an integer"),
        ("empty_text.txt", 2, "empty text"),
        ("no_id.txt", 2, "must start with its integer id"),
    ],
)
def test_broken_files_name_file_and_line(name: str, line: int, phrase: str) -> None:
    path = BROKEN / name
    with pytest.raises(BabiFormatError) as info:
        parse_babi(path)
    assert str(info.value).startswith(f"{path.resolve()}:{line}: ")
    assert phrase in str(info.value)
    assert info.value.line == line


def test_parse_cache_follows_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "qa1_x_train.txt"
    path.write_text(SNIPPET)
    first = parse_babi(path)
    assert parse_babi(path) is first  # cached
    path.write_text(SNIPPET + "1 Sandra went to the garden.\n2 Where is Sandra? \tgarden\t1\n")
    os.utime(path, ns=(1, 1))  # a distinct mtime even on coarse-grained file systems
    assert len(parse_babi(path)) == 3


# -- data location, splits, vocabulary ------------------------------------------------------------------


def test_data_not_found_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataNotFoundError, match="memtasks data babi --dest DIR") as info:
        task_files(1, data_dir=tmp_path / "nowhere")
    assert "MEMTASKS_BABI_DIR" in str(info.value) and "nowhere" in str(info.value)
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(DataNotFoundError, match=r"\$MEMTASKS_BABI_DIR is not set"):
        BabiTask(1)
    with pytest.raises(DataNotFoundError):  # through the registry too, and only when building
        memtasks.make_task("bAbI-qa1-v0")


def test_missing_task_file_is_named(tmp_path: Path) -> None:
    root = _write_tiny(tmp_path, "en-10k")
    (root / "en-10k" / "qa1_single-supporting-fact_train.txt").unlink()
    with pytest.raises(DataNotFoundError, match="train file for task 1 is missing") as info:
        BabiTask(1, size="10k", data_dir=root)
    assert "qa1_*_train.txt" in str(info.value) and "incomplete" in str(info.value)
    with pytest.raises(DataNotFoundError, match="does not exist"):
        BabiTask(1, variant="hn", data_dir=root)


def test_real_10k_qa3_train_missing(babi_dir: Path) -> None:
    if any((babi_dir / "en-10k").glob("qa3_*_train.txt")):
        pytest.skip("this copy of en-10k has qa3's train file")
    with pytest.raises(DataNotFoundError, match=r"train file for task 3 is missing.*en-10k.*incomplete"):
        BabiTask(3, size="10k", data_dir=babi_dir)


def test_vocabulary_splits_and_unknowns(tmp_path: Path) -> None:
    unknown = "1 The zebra went to the garage.\n2 Where is the zebra? \tgarage\t1\n"
    root = _write_tiny(tmp_path, test_extra=unknown)
    train = BabiTask(1, split="train", data_dir=tmp_path)  # the parent of tasks_1-20_v1-2 works too
    assert train.data.folder == root / "en"
    assert len(train.stories) == 9 and len(BabiTask(1, split="valid", data_dir=root).stories) == 1
    vocab = train.spec.vocab
    assert vocab[:2] == ("<pad>", "<unk>") and list(vocab[2:]) == sorted(vocab[2:])
    assert set(vocab[2:]) == {"mary", "john", "went", "to", "the", "where", "is"} | {
        "kitchen", "garden", "office", "hallway", "bedroom"
    }
    assert train.spec.classes == ("<unk>", "bedroom", "garden", "hallway", "kitchen", "office")
    assert train.spec.input_size == 6  # "the zebra went to the garage" (test) is the longest line
    assert train.unk_report()["unknown_tokens"] == 0

    test = BabiTask(1, split="test", data_dir=root)
    assert test.spec == train.spec  # the spec does not depend on the split
    report = test.unk_report()
    assert report["unknown_words"] == {"zebra": 2, "garage": 1}
    assert report["unknown_tokens"] == 3
    assert (report["questions"], report["unknown_answers"]) == (2, 1)
    assert report["unknown_answer_values"] == {"garage": 1}
    batch = test.batch([1])
    assert batch.targets[0, 1] == 0  # the unknown answer's class is <unk>
    words = "the zebra went to the garage".split()
    assert list(batch.inputs[0, 0]) == [vocab.index(w) if w in vocab else 1 for w in words]


def test_variant_with_its_own_valid_file_and_punctuation(tmp_path: Path) -> None:
    root = _write_tiny(tmp_path, "en-valid")
    d = root / "en-valid"
    for kind in ("train", "test"):  # en-valid names its files qa{N}_{split}.txt
        (d / f"qa1_single-supporting-fact_{kind}.txt").rename(d / f"qa1_{kind}.txt")
    (d / "qa1_valid.txt").write_text("1 Sandra went to the attic.\n2 Where is Sandra? \tattic\t1\n")
    train = BabiTask(1, variant="en-valid", data_dir=root)
    assert len(train.stories) == 10  # the whole train file: valid has its own
    valid = BabiTask(1, variant="en-valid", split="valid", data_dir=root)
    assert valid.num_questions == 1 and "attic" in valid.spec.classes and "sandra" in valid.spec.vocab
    punct = BabiTask(1, variant="en-valid", data_dir=root, keep_punctuation=True)
    assert {".", "?"} <= set(punct.spec.vocab) and punct.spec.input_size == train.spec.input_size + 1


def test_split_rounds_train_down() -> None:
    for n, expected in [(200, 180), (125, 112), (94, 84), (9, 8), (1, 0)]:
        train, valid = split_train_valid(list(range(n)))
        assert (len(train), len(valid)) == (expected, n - expected)
    v = Vocabulary.build(["b", "a", "a"])
    assert v.items == ("<pad>", "<unk>", "a", "b") and v.id("zzz") == 1 and v.encode(["a", "q"]) == [2, 1]


def test_argument_errors(tmp_path: Path) -> None:
    root = _write_tiny(tmp_path)
    for kwargs, error, phrase in [
        ({"task": 0}, ValueError, r"task must be an integer in \[1, 20\]"),
        ({"task": "1"}, TypeError, "task must be an integer"),
        ({"task": 1, "size": "5k"}, ValueError, "size must be one of"),
        ({"task": 1, "split": "dev"}, ValueError, "split must be one of"),
        ({"task": 1, "memory_size": 0}, ValueError, "memory_size must be an integer"),
        ({"task": 1, "variant": "../en"}, ValueError, "variant must be the name of a folder"),
    ]:
        with pytest.raises(error, match=phrase):
            BabiTask(data_dir=root, **kwargs)
    task = BabiTask(1, data_dir=root)
    with pytest.raises(ValueError, match="batch_size"):
        task.sample(0, np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        task.sample(1, 0)


# -- long stories ------------------------------------------------------------------------------------------


def _story_with_a_question_every_third_sentence():
    """12 sentences, a question after every 3rd (4 questions)."""
    lines, i = [], 1
    for s in range(12):
        lines.append(f"{i} Mary went to room {s}.")
        i += 1
        if s % 3 == 2:
            lines.append(f"{i} Where is Mary? \troom{s}\t{i - 1}")
            i += 1
    (story,) = parse_lines(lines)
    return story


def test_windows_keep_every_question_once_within_memory() -> None:
    story = _story_with_a_question_every_third_sentence()
    windows = build_windows([story], memory_size=5)
    # questions after 3 sentences share the head; those after 6, 9, 12 get their own 5-sentence window
    got = [(w.start, w.stop, w.questions) for w in windows]
    assert got == [(0, 3, (0,)), (1, 6, (1,)), (4, 9, (2,)), (7, 12, (3,))]
    assert [(w.start, w.stop) for w in build_windows([story], memory_size=50)] == [(0, 12)]


def test_per_question_windows_hold_one_question_and_its_sentences() -> None:
    story = _story_with_a_question_every_third_sentence()
    got = [(w.start, w.stop, w.questions) for w in build_windows([story], memory_size=5, per_question=True)]
    assert got == [(0, 3, (0,)), (1, 6, (1,)), (4, 9, (2,)), (7, 12, (3,))]  # the last <= 5 sentences each
    got = [(w.start, w.stop, w.questions) for w in build_windows([story], memory_size=50, per_question=True)]
    assert got == [(0, 3, (0,)), (0, 6, (1,)), (0, 9, (2,)), (0, 12, (3,))]
    with pytest.raises(TypeError, match="per_question"):
        build_windows([story], memory_size=5, per_question=1)


def test_per_question_sequences_on_real_data(babi_dir: Path) -> None:
    # qa1: 5 questions per story; per question, each sequence is story sentences then its one question
    shared = BabiTask(1, split="test")
    task = BabiTask(1, split="test", per_question=True)
    assert task.num_sequences == task.num_questions == shared.num_questions == 1000
    assert task.max_frames == 11 and shared.max_frames == 15
    batch = task.batch(np.arange(task.num_sequences))
    steps = (batch.inputs[..., 0] > 0).sum(1)  # (B,) frames per sequence
    assert np.array_equal(batch.mask.sum(1), np.ones(1000))
    assert np.array_equal(batch.mask[np.arange(1000), steps - 1], np.ones(1000))  # the question is last
    assert np.array_equal(batch.extras["context"][np.arange(1000), steps - 1], steps - 1)
    assert sorted(batch.extras["question_id"][batch.mask > 0]) == list(range(1000))
    # the same questions with the same answers
    ref = shared.batch(np.arange(shared.num_sequences))
    order = np.argsort(ref.extras["question_id"][ref.mask > 0])
    assert np.array_equal(ref.targets[ref.mask > 0][order], batch.targets[np.arange(1000), steps - 1])


def test_sequences_decode_to_the_story_windows(tmp_path: Path) -> None:
    lines, i = [], 1
    for s in range(8):  # "mary went to the kitchen" ... a question after sentences 4 and 8
        lines.append(f"{i} Mary went to the {['kitchen', 'garden'][s % 2]}.")
        i += 1
        if s in (3, 7):
            lines.append(f"{i} Where is Mary? \tgarden\t{i - 1}")
            i += 1
    root = _write_tiny(tmp_path, test_extra="\n".join(lines) + "\n")
    full = BabiTask(1, split="test", data_dir=root)
    (story,) = [s for s in full.stories if len(s.sentences) == 8]

    def decode(task: BabiTask, seq: int) -> list[tuple[str, ...]]:
        batch = task.batch([seq])
        steps = int((batch.inputs[0, :, 0] > 0).sum())
        return [tuple(task.spec.vocab[w] for w in row if w) for row in batch.inputs[0, :steps]]

    assert decode(full, 1) == story.frames()  # memory large enough: the story as read
    short = BabiTask(1, split="test", data_dir=root, memory_size=3)
    assert short.num_sequences == 3 and short.num_questions == full.num_questions
    assert list(short.lengths) == [1, 3, 3]
    tape = story.frames()
    assert decode(short, 1) == tape[1:4] + [tape[4]]  # sentences 2-4, then the first question
    assert decode(short, 2) == tape[6:9] + [tape[9]]  # sentences 6-8, then the second question
    batch = short.batch([1, 2])
    assert batch.extras["supports"][0, 3, 0] == 2 and batch.extras["context"][0, 3] == 3


def test_long_story_sequences_on_real_data(babi_dir: Path) -> None:
    task = BabiTask(3, split="test", memory_size=50)
    seen = []
    for batch in task.iter_batches(64):
        ctx = batch.extras["context"][batch.mask > 0]
        assert ctx.max() <= 50 and batch.lengths.max() <= 50
        seen.append(batch.extras["question_id"][batch.mask > 0])
    assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(1000))


# -- the task on real data ------------------------------------------------------------------------------------


def test_split_sizes_all_tasks(babi_dir: Path) -> None:
    for n in range(1, 21):
        data = load_babi(n, "1k")
        count = {k: sum(len(s.questions) for s in v) for k, v in data.splits.items()}
        assert count["train"] + count["valid"] == 1000 and count["test"] == 1000, (n, count)
        stories = len(data.splits["train"]) + len(data.splits["valid"])
        assert len(data.splits["valid"]) == stories - stories * 9 // 10


def test_batch_shapes_and_masks(babi_dir: Path) -> None:
    task = memtasks.make_task("bAbI-qa1-v0", size="1k", split="test")
    assert (task.num_sequences, task.epoch_size, len(task), task.num_questions) == (200, 200, 200, 1000)
    assert (task.min_length, task.max_length, task.length_name, task.max_frames) == (10, 10, "sentences", 15)
    batch = task.sample(8, np.random.default_rng(0))
    B, T, W = batch.inputs.shape
    assert (B, W) == (8, task.spec.input_size) and T == 15
    assert batch.inputs.dtype == np.int64 and batch.targets.dtype == np.int64
    assert batch.mask.dtype == np.float32 and batch.lengths.dtype == np.int64
    assert np.array_equal(batch.mask, (batch.extras["question_id"] >= 0).astype(np.float32))
    assert np.all(batch.targets[batch.mask == 0] == 0) and np.all(batch.targets[batch.mask > 0] > 0)
    assert np.all(batch.inputs.max(-1) < task.spec.vocab_size) and np.all(batch.inputs[..., 0] > 0)
    # each qa1 question has one supporting fact: an earlier, unscored frame of the same sequence
    for b, t in zip(*np.nonzero(batch.mask)):
        (s,) = batch.extras["supports"][b, t]
        assert 0 <= s < t and batch.mask[b, s] == 0

    qa2 = BabiTask(2, split="train")  # uneven lengths: padding is zero and unscored
    b = qa2.batch(np.arange(qa2.num_sequences)[:16])
    frames = qa2._offsets[1:17] - qa2._offsets[:16]
    pad = np.arange(b.num_steps)[None, :] >= frames[:, None]
    assert pad.any() and np.all(b.inputs[pad] == 0) and np.all(b.mask[pad] == 0)

    sub = task.sample(4, np.random.default_rng(0), length=10)
    assert np.all(sub.lengths == 10)
    with pytest.raises(ValueError, match=r"lengths 10\), got 7"):
        task.sample(4, np.random.default_rng(0), length=7)


def test_iter_batches_and_scoring(babi_dir: Path) -> None:
    task = BabiTask(2, split="test")
    ids = [b.extras["question_id"][b.mask > 0] for b in task.iter_batches(50)]
    assert np.array_equal(np.concatenate(ids), np.arange(task.num_questions))  # in order, each once
    assert sum(1 for _ in task.iter_batches(50)) == -(-task.num_sequences // 50)

    def oracle(batch: memtasks.Batch) -> np.ndarray:
        logits = np.zeros(batch.targets.shape + (task.spec.output_size,), np.float32)
        np.put_along_axis(logits, batch.targets[..., None], 10.0, axis=-1)
        logits[..., 1] += 20.0 * (batch.lengths[:, None] > 20)  # class 1 wins on long stories
        return logits

    batch = task.batch(np.arange(10))
    score = task.score(oracle(batch), batch)
    assert set(score) == {"error_rate", "accuracy", "cost_nats", "seq_accuracy"}
    metrics, results = task.evaluate(oracle, batch_size=64)
    assert len(results) == task.num_questions and results["question_id"].is_unique
    curve = error_by_length(results)
    assert curve["questions"].sum() == task.num_questions
    assert curve.loc[curve.index <= 20, "errors"].sum() == 0
    assert 0 < metrics["error_rate"] < 1
    by_context = error_by_length(results, by="context")
    assert by_context.index.max() <= 50


# -- Gymnasium ----------------------------------------------------------------------------------------------


def test_check_env_all_tasks(babi_dir: Path) -> None:
    from gymnasium.utils.env_checker import check_env

    for n in range(1, 21):
        env = gymnasium.make(f"memtasks/bAbI-qa{n}-v0", disable_env_checker=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # render_fps advice only; errors still raise
            check_env(env.unwrapped, skip_render_check=True)
        assert isinstance(env.action_space, gymnasium.spaces.Discrete)
        assert env.observation_space.dtype == np.int64


def test_env_replays_sample_and_rewards(babi_dir: Path) -> None:
    env = gymnasium.make("memtasks/bAbI-qa8-v0", render_mode="ansi", disable_env_checker=True)
    obs, info = env.reset(seed=5)
    task = env.unwrapped.task
    batch = task.sample(1, np.random.default_rng(5))
    assert info["length"] == batch.lengths[0]
    total, t, done = 0.0, 0, False
    while not done:
        assert np.array_equal(obs, batch.inputs[0, t])
        obs, reward, done, _, info = env.step(0)  # class 0 (<unk>) is never a training answer
        assert reward == (-1.0 if batch.mask[0, t] > 0 else 0.0)
        total += reward
        t += 1
    assert t == batch.num_steps and total == -batch.mask[0].sum()
    text = env.render()
    first = " ".join(task.spec.vocab[i] for i in batch.inputs[0, 0] if i)
    assert first in text and "->" in text


# -- download --------------------------------------------------------------------------------------------------


def _tarball(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> tuple[str, int]:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest(), len(data)


def test_download_unpacks_and_prints_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = {"tasks_1-20_v1-2/en/qa1_x_train.txt": SNIPPET.encode(), "tasks_1-20_v1-2/README.txt": b"hi"}
    archive = tmp_path / "babi.tar.gz"
    sha, size = _tarball(archive, good)
    dest = tmp_path / "data"
    code = memtasks_main(
        ["data", "babi", "--dest", str(dest), "--url", archive.as_uri(), "--sha256", sha, "--size", str(size)]
    )
    assert code == 0
    root = dest / "tasks_1-20_v1-2"
    assert (root / "en" / "qa1_x_train.txt").read_text() == SNIPPET
    assert f"export MEMTASKS_BABI_DIR={root.resolve()}" in capsys.readouterr().out
    assert [p.name for p in dest.iterdir()] == ["tasks_1-20_v1-2"]  # no scratch folder left behind
    # already there: returned as it is; --force replaces it from a local copy
    assert download_babi(dest, url="file:///nonexistent") == root
    (root / "stale").write_text("x")
    assert download_babi(dest, source=archive, sha256=sha, size=size, force=True) == root
    assert not (root / "stale").exists()


def test_download_refuses_bad_checksum_and_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / "babi.tar.gz"
    sha, size = _tarball(archive, {"tasks_1-20_v1-2/en/a.txt": b"x"})
    dest = tmp_path / "data"
    with pytest.raises(ChecksumError, match="SHA-256 is"):
        download_babi(dest, url=archive.as_uri(), sha256="0" * 64, size=size)
    with pytest.raises(ChecksumError, match=f"got {size} bytes, expected {size + 1}"):
        download_babi(dest, source=archive, sha256=None, size=size + 1)
    with pytest.raises(ChecksumError, match="more than the expected"):
        download_babi(dest, source=archive, sha256=None, size=size - 1)
    assert list(dest.iterdir()) == []  # nothing unpacked, no scratch left
    assert cli(["babi", "--dest", str(dest), "--source", str(archive), "--sha256", "0" * 64, "--size", str(size)]) == 1
    assert "SHA-256" in capsys.readouterr().err
    with pytest.raises(ValueError, match="sha256 must be 64 hexadecimal digits"):
        download_babi(dest, source=archive, sha256="abc")


@pytest.mark.parametrize(
    "members, links",
    [
        ({"tasks_1-20_v1-2/en/a.txt": b"x", "tasks_1-20_v1-2/../../evil.txt": b"evil"}, None),
        ({"tasks_1-20_v1-2/en/a.txt": b"x", "/tmp/memtasks-evil.txt": b"evil"}, None),
        ({"tasks_1-20_v1-2/en/a.txt": b"x"}, {"tasks_1-20_v1-2/en/link": "../../../etc/passwd"}),
    ],
)
def test_download_refuses_unsafe_members(
    tmp_path: Path, members: dict[str, bytes], links: dict[str, str] | None
) -> None:
    archive = tmp_path / "evil.tar.gz"
    sha, size = _tarball(archive, members, links)
    dest = tmp_path / "deep" / "data"
    with pytest.raises(UnsafeArchiveError, match="refusing archive member"):
        download_babi(dest, source=archive, sha256=sha, size=size)
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/memtasks-evil.txt").exists()
