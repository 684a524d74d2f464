"""``memtasks viz`` and the trace it draws from (:meth:`agents.base.Core.trace_step`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import agents
from benchmarks.viz import trace, visualise
from memtasks import make_task
from memtasks.cli import main

PNG_MAGIC = b"\x89PNG"


def _ntm_checkpoint(tmp_path: Path) -> Path:
    task = make_task("Copy-v0", bits=4, max_length=5)
    torch.manual_seed(0)
    agent = agents.make_agent("ntm", task.spec, device="cpu", controller_size=16, memory_rows=12, memory_width=6)
    path = tmp_path / "ntm.pt"
    agents.save_checkpoint(path, agent, "memtasks/Copy-v0", {"bits": 4, "max_length": 5})
    return path


def test_ntm_trace_matches_the_forward_pass_and_records_weightings(tmp_path: Path) -> None:
    agent, _, kwargs = agents.load_checkpoint(_ntm_checkpoint(tmp_path))
    task = make_task("Copy-v0", **kwargs)
    batch = task.sample(1, np.random.default_rng(1), length=4)
    logits, inside = trace(agent, batch)
    with torch.no_grad():
        expected = agent.eval()(torch.as_tensor(batch.inputs)).numpy()[0]
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    T = batch.inputs.shape[1]
    assert inside["write weighting"].shape == (T, 1, 12)
    assert inside["read weighting"].shape == (T, 1, 12)
    assert inside["memory"].shape == (T, 6, 12)
    np.testing.assert_allclose(inside["read weighting"].sum(-1), 1.0, atol=1e-5)  # a weighting per step


def test_viz_cli_draws_an_ntm_figure(tmp_path: Path) -> None:
    out = tmp_path / "fig.png"
    assert main(["viz", str(_ntm_checkpoint(tmp_path)), "--length", "5", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == PNG_MAGIC


def test_many_heads_share_a_bounded_figure_height() -> None:
    """Each head gets a panel as tall as the locations it visits; with 5 + 5 heads that each sweep all 128
    locations, panels at the one-head scale would make the figure about 160 inches tall (the paper's 5-head
    priority-sort NTM drew 18,000 pixels). One read and one write head keep the one-head scale."""
    from benchmarks.viz import tape_figure

    task = make_task("Copy-v0", bits=4, max_length=5)
    batch = task.sample(1, np.random.default_rng(1), length=5)
    T, N = batch.inputs.shape[1], 128
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(T, 4))

    def inside(heads: int) -> dict[str, np.ndarray]:
        sweep = np.zeros((T, heads, N))
        sweep[np.arange(T), :, (np.arange(T) * N) // T] = 1.0  # every head visits rows 0 .. 127 over time
        return {"write weighting": sweep, "read weighting": sweep, "memory": rng.normal(size=(T, 6, N))}

    assert tape_figure(task, batch, logits, inside(5), "five heads").get_figheight() <= 50
    one = tape_figure(task, batch, logits, inside(1), "one head").get_figheight()
    assert one > 30  # two panels of about 128 x 0.12 inches: the one-head scale is kept


def test_viz_cli_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _ntm_checkpoint(tmp_path)
    assert main(["viz", str(tmp_path / "missing.pt")]) == 2
    assert main(["viz", str(path), "--split", "test", "--out", str(tmp_path / "x.png")]) == 2  # Copy has no splits
    assert main(["viz", str(path), "--length", "0", "--out", str(tmp_path / "y.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("memtasks viz: error:") for line in err)
    assert "split" in err[1] and "length" in err[2]
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()


needs_babi = pytest.mark.skipif(not os.environ.get("MEMTASKS_BABI_DIR"), reason="bAbI data not found")


@needs_babi
def test_memn2n_attention_over_the_story(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    task = make_task("bAbI-qa1-v0", per_question=True)
    torch.manual_seed(0)
    agent = agents.make_agent("memn2n", task.spec, device="cpu")
    path = tmp_path / "memn2n.pt"
    agents.save_checkpoint(path, agent, "memtasks/bAbI-qa1-v0", {"per_question": True})
    batch = task.sample(1, np.random.default_rng(3))
    step = int(np.flatnonzero(batch.mask[0] > 0)[-1])
    logits, inside = trace(agent, batch, stop=step + 1)
    hops = [k for k in inside if k.startswith("hop")]
    assert len(hops) == agent.config.hops
    p = inside[hops[0]][step]  # (memory_size,): slot j holds frame step-1-j
    held = min(step, p.shape[0])
    assert p[:held].sum() == pytest.approx(1.0, abs=1e-5) and not p[held:].any()

    out = tmp_path / "attention.png"
    assert main(["viz", str(path), "--split", "test", "--seed", "3", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == PNG_MAGIC
    assert main(["viz", str(path), "--question", "99", "--out", str(tmp_path / "no.png")]) == 2
    assert "--question" in capsys.readouterr().err

    lstm = agents.make_agent("lstm", task.spec, device="cpu")
    agents.save_checkpoint(tmp_path / "lstm.pt", lstm, "memtasks/bAbI-qa1-v0", {"per_question": True})
    with pytest.raises(ValueError, match="attention"):
        visualise(tmp_path / "lstm.pt", tmp_path / "lstm.png")
