"""Bad input on the command line: an exit status of 2 (1 for a missing results folder) and an error line naming
what is wrong, never a traceback. Each case runs ``memtasks.cli.main`` in-process, so an uncaught exception
fails the test (argparse's own errors exit through SystemExit, which is what the shell sees)."""

from __future__ import annotations

from pathlib import Path

import pytest

from memtasks.cli import main

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "results" / "quick" / "cells" / "Copy-v0__ntm__seed0" / "model.pt"


def _bad_type_file(tmp: Path) -> Path:
    path = tmp / "bad_type.toml"
    path.write_text('name = "bad"\ntasks = ["memtasks/Copy-v0"]\nagents = ["ntm"]\nseeds = [0]\n'
                    '[train]\nsteps = "ten"\n')
    return path


def _garbage(tmp: Path) -> Path:
    path = tmp / "garbage.pt"
    path.write_bytes(b"not a checkpoint")
    return path


# (argv with {tmp} placeholders or a builder, expected exit status, words the error must name)
CASES = {
    "run: missing file": (["run", "{tmp}/missing.toml"], 2, ["missing.toml"]),
    "run: wrong type in a TOML value": (["run", _bad_type_file, "--out", "{tmp}/o"], 2, ["train.steps", "integer"]),
    "train: unknown agent key": (["train", "--task", "memtasks/Copy-v0", "--agent", "ntm", "--agent-kwargs",
                                  "foo=1", "--out", "{tmp}/t"], 2, ["foo", "ntm"]),
    "train: unknown agent": (["train", "--task", "memtasks/Copy-v0", "--agent", "nope", "--out", "{tmp}/t"], 2,
                             ["agent", "nope"]),
    "train: unknown task": (["train", "--task", "memtasks/Nope-v0", "--agent", "ntm", "--out", "{tmp}/t"], 2,
                            ["Nope-v0"]),
    "train: negative steps": (["train", "--task", "memtasks/Copy-v0", "--agent", "ntm", "--steps", "-5",
                               "--out", "{tmp}/t"], 2, ["steps"]),
    "train: wrong task argument type": (["train", "--task", "memtasks/Copy-v0", "--agent", "ntm", "--task-kwargs",
                                         "bits=abc", "--out", "{tmp}/t"], 2, ["bits"]),
    "eval: an experiment cell's checkpoint without --out": (["eval", "--checkpoint", str(CHECKPOINT)], 2,
                                                             ["--out", "cell"]),
    "sample: negative length": (["sample", "Copy-v0", "--length", "-1"], 2, ["length"]),
    "sample: unknown task": (["sample", "Nope-v0"], 2, ["Nope-v0"]),
    "eval: missing checkpoint": (["eval", "--checkpoint", "{tmp}/missing.pt"], 2, ["missing.pt"]),
    "eval: not a checkpoint": (["eval", "--checkpoint", _garbage], 2, ["garbage.pt"]),
    "eval: bad lengths": (["eval", "--checkpoint", str(CHECKPOINT), "--lengths", "0", "--out", "{tmp}/e"], 2,
                          ["lengths"]),
    "viz: missing checkpoint": (["viz", "{tmp}/missing.pt"], 2, ["missing.pt"]),
    "plot: missing folder": (["plot", "{tmp}/nothing"], 1, ["nothing"]),
    "leaderboard: missing folder": (["leaderboard", "{tmp}/nothing"], 1, ["nothing"]),
    "unknown command": (["frobnicate"], 2, ["frobnicate"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_an_error_line_not_a_traceback(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, status, words = CASES[case]
    argv = [str(a(tmp_path)) if callable(a) else str(a).replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's parser.error: usage, then the error line
        code = exit_.code
    assert code == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("memtasks"), last
    for word in words:
        assert word in last, (word, last)
