"""Reproduce the MemN2N bAbI table (Sukhbaatar et al. 2015, Table 1) with memn2n, lstm, ntm, dnc and transformer.

One model per (task, agent, seed), trained independently as in the paper's
"PE LS RN" column, then a report next to the paper's numbers::

    python -m benchmarks.babi --agents memn2n,lstm,ntm --tasks 1-20 --seeds 0,1,2 --size 1k \\
        --out results/babi [--epochs 100] [--workers 2] [--minutes-per-run M]
    python -m benchmarks.babi report --out results/babi     # the report alone, from the run records

One run (:func:`run_cell`) reads top to bottom as

1. seed everything (``np.random.default_rng(seed)`` for the shuffles,
   ``torch.manual_seed(seed)`` for the weights and MemN2N's random noise), build
   the train / valid / test splits of the task, the agent and its optimiser
   (:class:`Protocol`), or restore all of it from the run's checkpoint;
2. for each epoch: ``agent.set_progress(epoch)`` (MemN2N's linear start), set the
   learning rate of the epoch, shuffle the training sequences, one pass in
   batches of ``batch_size`` (forward, :func:`agents.sequence_loss`, backward,
   clip the gradient norm, step);
3. after every ``eval_every`` epochs (and the last) score the validation split;
   keep a copy of the weights with the lowest validation error (ties go to the
   *later* epoch: equal error, more training);
4. every ``checkpoint_every_s`` seconds save the whole training state
   atomically (resumable after a kill; loaded with ``weights_only=True``);
5. stop after ``epochs`` epochs or when the run's wall-clock cap is spent; load
   the best weights, score the test split once (selection on validation, never
   on test) and write the run record ``runs/<size>/qa<N>__<agent>__seed<k>.json``
   atomically (with the selected weights' training error too, which tells
   under- from over-fitting). A re-run skips every run whose record exists.

Ablations: ``--override FIELD=JSON`` (repeatable) replaces a :class:`Protocol`
field for every run of the command, e.g. ``--override
agent_config.weight_tying='"layerwise"'``; such runs need their own ``--out``.

Files under ``--out``:

- ``runs/<size>/qa<N>__<agent>__seed<k>.json``: one record per finished run
  (errors are fractions in [0, 1]; see :func:`run_cell` for the fields).
- ``runs/<size>/ckpt/*.pt``: the training state of unfinished runs (deleted when the run finishes).
- ``table_<size>.md``, ``runs_<size>.csv``, ``error_by_length_<size>.png``:
  the report (:func:`report`), rebuilt from the records alone.

Protocol (the defaults of :data:`PROTOCOLS`) and how it differs from the paper:

- MemN2N: 3 hops, d = 20, adjacent tying, temporal encoding, position
  encoding, linear start for a *fixed* 20 epochs (the paper re-inserts the
  softmax when the validation loss stops decreasing; the authors' code also
  uses a fixed 20), random noise 0.1, SGD with lr 0.005 during linear start,
  then 0.01 halved every 25 epochs (counted from epoch 0), 100 epochs in all,
  batch 32, the global gradient norm clipped at 40 (the authors' code clips
  each weight matrix on its own: ``clip_per_parameter``, not measured), every
  weight N(0, 0.1) (the answer head too: it is re-initialised here). The
  authors' code runs its 20 linear-start epochs *before* 100 epochs with the
  schedule restarted (120 in all; not measured here). On 10k the model gets a
  ReLU between hops, as in the paper's 10k column "PE LS RN*"
  (:data:`SIZE_CHANGES`).
- Sentence embeddings as in the paper: the token encoder makes 4 independent
  position-encoded bags of width 20 (``frame_blocks=4``, ``frame_size=80``,
  position weights counted within each bag) and MemN2N uses them directly as
  its K + 1 = 4 embedding matrices (``embedding="blocks"``: B = A^1, C^1 = A^2,
  C^2 = A^3, C^3), each a V x 20 word matrix weighting its own word vectors by
  ``l_kj`` (J = the sentence's own word count, as in the paper's formula; the
  authors' code uses the longest line of the data set for every sentence:
  ``position_encoding="fixed"`` measured no better, masked memory, seeds 0, 1:
  qa4 22.4/21.3, qa16 49.7/50.8, qa6 16.5/16.6, qa15 34.8/9.0).
- One sequence per question (``BabiTask(per_question=True)``): its story's
  last <= 50 sentences, then the question, so the memory holds story
  sentences only and the temporal encoding counts sentences, as in the paper.
  A batch holds 32 questions; the loss is the *sum* of the batch's
  cross-entropies (``loss_reduction="sum"``, the usual reading of the paper's
  SGD); one epoch is one pass over the shuffled training questions.
- A fixed memory, as in the authors' code: ``memory_size`` = the longest
  story of the task's splits (<= 50 sentences), and the slots a shorter story
  leaves free take part in the softmax as empty sentences (score 0, adding
  nothing to the output; ``empty_memories=True``) instead of being masked out.
  Measured against masking (seeds 0, 1): qa6 19.3/18.3 -> 8.8/8.5, qa15
  32.0/33.8 -> 0.1/0.0, qa18 31.9/39.9 -> 23.2/11.9, qa4 and qa16 (stories
  of one fixed length, so no empty slot) unchanged; seed 0 only: qa9 20.2 ->
  9.9, qa10 21.2 -> 14.7, qa2 16.4 -> 17.5. Random noise shifts the
  temporal indices of the real memories only (one draw per sequence), with
  probability 0.1 before every sentence (the authors' code draws fewer: none
  for stories of <= 10 sentences; no noise at all measured no better: qa4
  18.7/19.4, qa16 51.4/52.3, qa6 7.9/9.2, qa18 24.6/12.5, qa15 0.7/13.3).
- The paper's answer matrix W is tied to C^K (it scores answer *words*); here
  it is the Agent's separate linear head over the answer classes (with bias).
  Tying it to the last embedding block did not change qa4 or qa16 in a check,
  nor did dropping the bias (``head_bias=False``; qa4 20.7/21.2, qa16
  52.4/53.5 with empty memories, seeds 0, 1).
- Weight tying, measured (``results/babi_ablations/layerwise/``, seeds 3 and 4,
  training / test error %): adjacent tying (the paper's, kept) leaves qa4
  under-fitted, train 7.3 / 9.4, test 18.9 / 21.3. Our reading (not a
  measurement): with B = A^1 the question and the first hop's memories share
  one embedding, so a direction word always matches the same word in a memory
  with a positive weight, while "What is the bathroom east of?" is answered by
  "The bedroom is west of the bathroom". Layer-wise tying (B, and one A and one
  C for all hops, u^{k+1} = H u^k + o^k) fits qa4 (train 0.0 / 0.0, test
  2.6 / 3.1; paper 2.8) but loses elsewhere: test qa2 70.3 / 76.0 (adjacent
  13.7 / 58.4), qa18 32.8 / 28.7 (14.5 / 16.3), qa16 52.4 / 54.1 (51.1 / 51.2).
- Selection and reporting: the paper reports, per task, the best of 10 runs by
  *training* error; here every seed (the table's headers say how many) is
  scored at its lowest-validation-error epoch, reported as mean ± std and as
  the seed with the lowest validation error (ties: the lowest seed), which
  with 10 seeds is the validation counterpart of the paper's best of 10.
- LSTM (1 layer of 128) and NTM (LSTM controller 100, 128 x 20 memory, one read
  and one write head) use frame_size 50, Adam lr 1e-3 (no schedule), the mean
  cross-entropy per question, gradient norm clipped at 40, and the same
  epochs and validation selection; their sequences are story windows with all
  their questions (earlier questions stay among the frames, unscored), and a
  batch holds ``round(32 / mean questions per training sequence)`` of them,
  about 32 questions (``--batch-unit sequences``: 32 sequences).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime as _dt
import json
import math
import multiprocessing
import platform
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from agents import make_agent, resolve_device, sequence_loss
from agents.optim import make_optimizer
from benchmarks.babi_paper import FAIL_THRESHOLD, PAPER_SOURCE, paper_column
from benchmarks.results import write_csv_atomic, write_json_atomic, write_text_atomic
from memtasks.atomic import atomic_open

__all__ = [
    "AGENTS",
    "LENGTH_BINS",
    "PROTOCOLS",
    "Protocol",
    "RunConfig",
    "SIZE_CHANGES",
    "cell_path",
    "clip_gradients",
    "learning_rate",
    "load_records",
    "main",
    "parse_ints",
    "parse_overrides",
    "report",
    "run_cell",
    "summary_table",
]

RECORD_VERSION = 1
"""Layout version of the run records; :func:`load_records` skips other versions with a warning."""

LENGTH_BINS: tuple[tuple[int, int], ...] = ((0, 4), (5, 9), (10, 14), (15, 19), (20, 29), (30, 39), (40, 50))
"""Buckets (inclusive) of story sentences before a question, for the error-by-length plot."""


# -- configuration ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Protocol:
    """How one agent is built and trained on bAbI (see the module docstring for the paper's values)."""

    agent_config: dict[str, Any]
    """Keyword overrides for ``agents.make_agent`` (``memory_size`` of MemN2N is filled in per task)."""
    optimizer: str
    """``"sgd"``, ``"adam"`` or ``"rmsprop"`` (:func:`agents.optim.make_optimizer`)."""
    lr: float
    """Learning rate at epoch 0 after linear start (before any halving)."""
    lr_halve_every: int | None
    """Halve the learning rate every this many epochs (counted from 0); None keeps it constant."""
    linear_start_lr: float | None
    """Learning rate while MemN2N's linear start is on (paper: 0.005); None uses the schedule."""
    clip_norm: float
    """Clip the global gradient norm to this (paper: 40)."""
    loss_reduction: str
    """``"sum"`` of the batch's per-question cross-entropies, or their ``"mean"``."""
    head_init_std: float | None
    """Re-initialise the answer head N(0, std) with zero bias (paper: 0.1); None keeps torch's default."""
    lr_halve_from: int = 0
    """Epoch (0-based) from which ``lr_halve_every`` counts: 0, or the end of linear start (the authors'
    code restarts the schedule when the softmax is re-inserted)."""
    head_bias: bool = True
    """Whether the answer head has a bias (the paper's answer matrix W has none)."""
    clip_per_parameter: bool = False
    """Clip each parameter's gradient norm to ``clip_norm`` separately (the authors' code clips every
    weight matrix on its own) instead of the global norm of all of them."""
    per_question: bool = False
    """One training/evaluation sequence per question (``BabiTask(per_question=True)``: the paper's
    examples, no earlier question among the frames) instead of one per story window."""


_RECURRENT_TRAINING: dict[str, Any] = dict(
    optimizer="adam",
    lr=1e-3,
    lr_halve_every=None,
    linear_start_lr=None,
    clip_norm=40.0,
    loss_reduction="mean",
    head_init_std=None,
)
"""The LSTM's and the NTM's shared training settings (no published bAbI protocol for either)."""

PROTOCOLS: dict[str, Protocol] = {
    "memn2n": Protocol(
        agent_config=dict(
            frame_size=80,  # (hops + 1) bags of embedding_size: the paper's B = A^1, C^1, C^2, C^3
            frame_blocks=4,
            embedding="blocks",
            embedding_size=20,
            hops=3,
            weight_tying="adjacent",
            linear_start=True,
            linear_start_epochs=20,
            random_noise=0.1,
            empty_memories=True,  # the authors' fixed memory of the longest story's size
            init_std=0.1,
        ),
        optimizer="sgd",
        lr=0.01,
        lr_halve_every=25,
        linear_start_lr=0.005,
        clip_norm=40.0,
        loss_reduction="sum",
        head_init_std=0.1,
        per_question=True,
    ),
    "lstm": Protocol(agent_config=dict(frame_size=50, hidden_size=128, num_layers=1), **_RECURRENT_TRAINING),
    "ntm": Protocol(
        agent_config=dict(
            frame_size=50, controller="lstm", controller_size=100, memory_rows=128, memory_width=20
        ),
        **_RECURRENT_TRAINING,
    ),
    "dnc": Protocol(
        agent_config=dict(frame_size=50, controller_size=100, memory_rows=128, memory_width=20, read_heads=1),
        **_RECURRENT_TRAINING,
    ),
    "transformer": Protocol(  # the Chomsky-hierarchy encoder's sizes (the agent's defaults)
        agent_config=dict(frame_size=50, d_model=64, num_layers=5, num_heads=8, dropout=0.1),
        **_RECURRENT_TRAINING,
    ),
}
"""The training protocol of each agent this benchmark knows (the DNC and the Transformer, like the LSTM and
the NTM, have no published bAbI 1k protocol: they share the recurrent agents' training settings)."""

SIZE_CHANGES: dict[tuple[str, str], dict[str, Any]] = {
    ("memn2n", "10k"): {"agent_config": {"relu_between_hops": True}},
}
"""Changes to :data:`PROTOCOLS` by ``(agent, size)``, applied before a run's own overrides: the paper's
10k column (PE LS RN*) adds a ReLU between hops."""

AGENTS = tuple(PROTOCOLS)
"""Agents in report order."""


@dataclass(frozen=True)
class RunConfig:
    """One (task, agent, seed) run and the settings shared by every run of a benchmark."""

    task: int
    """bAbI task number, 1..20."""
    agent: str
    """One of :data:`AGENTS`."""
    seed: int
    """Seeds the weights, the shuffles and MemN2N's random noise."""
    size: str = "1k"
    """Training set: ``"1k"`` or ``"10k"``."""
    epochs: int = 100
    """Passes over the training sequences (paper: 100)."""
    batch_size: int = 32
    """Questions per update (paper: 32), see :attr:`batch_unit`."""
    batch_unit: str = "questions"
    """``"questions"``: each batch holds ``round(batch_size / mean questions per training sequence)``
    sequences (>= 1), about ``batch_size`` questions as in the paper; ``"sequences"``: ``batch_size``
    sequences."""
    eval_every: int = 1
    """Score the validation split after every this many epochs (and after the last one)."""
    minutes_per_run: float | None = None
    """Wall-clock cap of the run in minutes (summed over resumes); None runs every epoch."""
    checkpoint_every_s: float = 60.0
    """Save the training state at most this often (seconds); 0 saves after every epoch."""
    data_dir: str | None = None
    """The ``tasks_1-20_v1-2`` folder; None reads ``$MEMTASKS_BABI_DIR``."""
    device: str = "cpu"
    """Torch device of the run: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"`` (CUDA when present). Not part
    of the protocol: a run's records do not depend on it beyond floating-point rounding."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Replacements for fields of the agent's :class:`Protocol` (``agent_config`` entries merge)."""

    def __post_init__(self) -> None:
        if self.agent not in PROTOCOLS:
            raise ValueError(f"agent must be one of {', '.join(AGENTS)}, got {self.agent!r}")
        if not (isinstance(self.task, int) and 1 <= self.task <= 20):
            raise ValueError(f"task must be an integer in 1..20, got {self.task!r}")
        if self.size not in ("1k", "10k"):
            raise ValueError(f"size must be '1k' or '10k', got {self.size!r}")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError):
                raise ValueError(f"device must be 'auto' or a torch device such as cpu or cuda:0, got {self.device!r}") from None
        for name in ("epochs", "batch_size", "eval_every"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.batch_unit not in ("questions", "sequences"):
            raise ValueError(f"batch_unit must be 'questions' or 'sequences', got {self.batch_unit!r}")
        if self.minutes_per_run is not None and not self.minutes_per_run > 0:
            raise ValueError(f"minutes_per_run must be > 0 or None, got {self.minutes_per_run!r}")
        unknown = set(self.overrides) - {f.name for f in dataclasses.fields(Protocol)}
        if unknown:
            raise ValueError(f"unknown protocol override(s) {sorted(unknown)}")

    @property
    def name(self) -> str:
        """``qa<N>__<agent>__seed<k>``, the stem of the run's files."""
        return f"qa{self.task}__{self.agent}__seed{self.seed}"

    def protocol(self) -> Protocol:
        """The agent's :class:`Protocol` with the :data:`SIZE_CHANGES` of its size, then :attr:`overrides`."""
        protocol = PROTOCOLS[self.agent]
        for changes in (SIZE_CHANGES.get((self.agent, self.size), {}), self.overrides):
            changes = dict(changes)
            if "agent_config" in changes:
                changes["agent_config"] = {**protocol.agent_config, **changes["agent_config"]}
            protocol = dataclasses.replace(protocol, **changes)
        return protocol


def cell_path(out: str | Path, config: RunConfig) -> Path:
    """Where the record of ``config``'s run lives under ``out``."""
    return Path(out) / "runs" / config.size / f"{config.name}.json"


def _checkpoint_path(out: str | Path, config: RunConfig) -> Path:
    return Path(out) / "runs" / config.size / "ckpt" / f"{config.name}.pt"


def learning_rate(protocol: Protocol, epoch: int, linear: bool) -> float:
    """The learning rate of ``epoch`` (0-based): the linear-start rate, else ``lr`` halved on schedule."""
    if linear and protocol.linear_start_lr is not None:
        return protocol.linear_start_lr
    if protocol.lr_halve_every is None:
        return protocol.lr
    return protocol.lr * 0.5 ** (max(0, epoch - protocol.lr_halve_from) // protocol.lr_halve_every)


# -- one run ------------------------------------------------------------------------------------------


def _load_splits(config: RunConfig) -> dict[str, Any]:
    from memtasks.babi import BabiTask

    per_question = config.protocol().per_question
    return {
        s: BabiTask(config.task, config.size, s, data_dir=config.data_dir, per_question=per_question)
        for s in ("train", "valid", "test")
    }


def _build(
    config: RunConfig, protocol: Protocol, splits: dict[str, Any]
) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """The agent (weights from the current torch seed) and its optimiser."""
    agent_config = dict(protocol.agent_config)
    if config.agent == "memn2n":
        # the memory must hold every earlier frame of the longest sequence of any split
        longest = max(task.max_frames for task in splits.values())
        agent_config["memory_size"] = max(int(agent_config.get("memory_size", 50)), longest - 1)
        if agent_config.get("empty_memories"):
            # the authors' fixed memory: as many slots as the longest story (<= 50 by the windows)
            agent_config["memory_size"] = longest - 1
    agent = make_agent(config.agent, splits["train"].spec, device=resolve_device(config.device), **agent_config)
    if not protocol.head_bias:
        agent.head = torch.nn.Linear(agent.head.in_features, agent.head.out_features, bias=False)
    if protocol.head_init_std is not None:
        torch.nn.init.normal_(agent.head.weight, std=protocol.head_init_std)
        if agent.head.bias is not None:
            torch.nn.init.zeros_(agent.head.bias)
    optimizer = make_optimizer(protocol.optimizer, agent.parameters(), lr=protocol.lr)
    return agent, optimizer


def clip_gradients(agent: torch.nn.Module, protocol: Protocol) -> None:
    """Clip the gradient norm to ``protocol.clip_norm``: of all parameters together, or of each one."""
    if protocol.clip_per_parameter:
        for parameter in agent.parameters():
            torch.nn.utils.clip_grad_norm_(parameter, protocol.clip_norm)
    else:
        torch.nn.utils.clip_grad_norm_(agent.parameters(), protocol.clip_norm)


@torch.no_grad()
def _evaluate(agent: torch.nn.Module, task: Any) -> tuple[float, pd.DataFrame]:
    """Error rate over every question of ``task``'s split and the per-question results."""
    agent.eval()
    metrics, results = task.evaluate(lambda batch: agent(torch.from_numpy(batch.inputs)), batch_size=64)
    agent.train()
    return metrics["error_rate"], results


def _by(results: pd.DataFrame, key: str) -> list[dict[str, int]]:
    from memtasks.babi import error_by_length

    table = error_by_length(results, by=key)
    return [{key: int(k), "questions": int(r.questions), "errors": int(r.errors)} for k, r in table.iterrows()]


def run_cell(config: RunConfig, out: str | Path, progress: Callable[[int, str], None] | None = None) -> dict[str, Any]:
    """Train one model (module docstring, steps 1-5) and write its record; skip it if already done.

    Args:
        config: The run.
        out: The benchmark's output folder.
        progress: Called with ``(epoch, message)`` after every evaluated epoch (None: silent).

    Returns:
        The run record: ``task, agent, seed, size, valid_error, test_error, train_error`` (fractions; all
        three of the selected weights),
        ``best_epoch`` (1-based count of epochs behind the selected weights),
        ``epochs_run``, ``epochs_planned``, ``stopped`` (``"epochs"`` or ``"time"``),
        ``wall_s`` (training + evaluation, summed over resumes), ``num_parameters``,
        ``test_by_length`` / ``test_by_context`` (questions and errors per story length of the
        sequence / per story sentences before the question), ``history`` (per evaluated
        epoch: ``epoch, lr, linear, train_loss, valid_error``), ``protocol``, ``config``,
        ``torch``, ``finished`` (UTC time).
    """
    path = cell_path(out, config)
    if path.is_file():
        return json.loads(path.read_text())
    protocol = config.protocol()
    ckpt = _checkpoint_path(out, config)
    splits = _load_splits(config)
    train, valid, test = splits["train"], splits["valid"], splits["test"]

    # 1. seeds, model, optimiser; or the saved state of an interrupted run
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    agent, optimizer = _build(config, protocol, splits)
    start_epoch, wall_before, history = 0, 0.0, []
    best_error, best_epoch, best_state = math.inf, 0, copy.deepcopy(agent.state_dict())
    if ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        agent.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        best_state, best_error, best_epoch = state["best_model"], state["best_error"], state["best_epoch"]
        start_epoch, wall_before, history = state["epoch"], state["wall_s"], state["history"]
        rng.bit_generator.state = json.loads(state["numpy_rng"])
        torch.set_rng_state(state["torch_rng"])

    def save_state(epoch: int, wall: float) -> None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "model": agent.state_dict(),
            "optimizer": optimizer.state_dict(),
            "best_model": best_state,
            "best_error": best_error,
            "best_epoch": best_epoch,
            "epoch": epoch,
            "wall_s": wall,
            "history": history,
            "numpy_rng": json.dumps(rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(),
        }
        with atomic_open(ckpt, "wb") as f:
            torch.save(payload, f)

    t0 = time.perf_counter()
    last_save = t0
    budget_s = math.inf if config.minutes_per_run is None else 60.0 * config.minutes_per_run
    stopped, epoch = "epochs", start_epoch
    per_batch = config.batch_size
    if config.batch_unit == "questions":
        per_batch = max(1, round(config.batch_size * train.num_sequences / train.num_questions))
    agent.train()
    for epoch in range(start_epoch, config.epochs):
        if wall_before + time.perf_counter() - t0 >= budget_s:
            stopped = "time"
            break
        # 2. one pass over the shuffled training sequences
        agent.set_progress(epoch)
        linear = bool(getattr(agent.core, "_linear_now", False))
        lr = learning_rate(protocol, epoch, linear)
        for group in optimizer.param_groups:
            group["lr"] = lr
        order = rng.permutation(train.num_sequences)
        losses, questions = 0.0, 0
        device = agent.device
        for first in range(0, len(order), per_batch):
            batch = train.batch(order[first : first + per_batch])
            mask = torch.from_numpy(batch.mask).to(device)
            logits = agent(torch.from_numpy(batch.inputs))  # inputs follow the agent's device
            loss = sequence_loss(logits, torch.from_numpy(batch.targets).to(device), mask, train.spec)
            scored = float(batch.mask.sum())
            if protocol.loss_reduction == "sum":
                loss = loss * scored
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip_gradients(agent, protocol)
            optimizer.step()
            losses += loss.item() * (1.0 if protocol.loss_reduction == "sum" else scored)
            questions += int(scored)
        if not math.isfinite(losses):
            raise FloatingPointError(f"{config.name}: training loss is {losses} at epoch {epoch + 1}")
        # 3. validation and model selection (ties: the later epoch)
        done = epoch + 1
        if done % config.eval_every == 0 or done == config.epochs:
            valid_error, _ = _evaluate(agent, valid)
            history.append(
                {"epoch": done, "lr": lr, "linear": linear, "train_loss": losses / questions,
                 "valid_error": valid_error}  # fmt: skip
            )
            if valid_error <= best_error:
                best_error, best_epoch, best_state = valid_error, done, copy.deepcopy(agent.state_dict())
            if progress is not None:
                progress(
                    done,
                    f"{config.name} epoch {done}/{config.epochs} loss {losses / questions:.3f} "
                    f"valid {100 * valid_error:.1f}% best {100 * best_error:.1f}% (epoch {best_epoch})"
                )
        # 4. periodic checkpoint
        now = time.perf_counter()
        if done < config.epochs and now - last_save >= config.checkpoint_every_s:
            save_state(done, wall_before + now - t0)
            last_save = now
    else:
        epoch = config.epochs
    epochs_run = epoch if stopped == "time" else config.epochs
    if not history or history[-1]["epoch"] != epochs_run:
        if epochs_run > start_epoch or not history:  # an evaluation of the last epoch is missing
            valid_error, _ = _evaluate(agent, valid)
            history.append(
                {"epoch": epochs_run, "lr": None, "linear": None, "train_loss": None, "valid_error": valid_error}
            )
            if valid_error <= best_error:
                best_error, best_epoch, best_state = valid_error, epochs_run, copy.deepcopy(agent.state_dict())

    # 5. the selected weights, scored once on test
    agent.load_state_dict(best_state)
    test_error, results = _evaluate(agent, test)
    train_error, _ = _evaluate(agent, train)  # tells under- from over-fitting
    record = {
        "version": RECORD_VERSION,
        "task": config.task,
        "agent": config.agent,
        "seed": config.seed,
        "size": config.size,
        "valid_error": best_error,
        "test_error": test_error,
        "train_error": train_error,
        "best_epoch": best_epoch,
        "epochs_run": epochs_run,
        "epochs_planned": config.epochs,
        "stopped": stopped,
        "sequences_per_batch": per_batch,
        "wall_s": wall_before + time.perf_counter() - t0,
        "num_parameters": sum(p.numel() for p in agent.parameters()),
        "test_questions": int(len(results)),
        "test_by_length": _by(results, "length"),
        "test_by_context": _by(results, "context"),
        "history": history,
        "protocol": dataclasses.asdict(protocol),
        "config": {k: v for k, v in dataclasses.asdict(config).items() if k != "data_dir"},
        "memory_size": getattr(agent.core, "memory_size", None),
        "torch": torch.__version__,
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, record)
    ckpt.unlink(missing_ok=True)
    return record


def _worker_init() -> None:
    """Each worker process: one torch thread (the machine's cores are shared)."""
    torch.set_num_threads(1)


def _run_quietly(config: RunConfig, out: str) -> tuple[str, dict[str, Any] | None, str | None]:
    """:func:`run_cell` in a worker: ``(name, record, None)`` or ``(name, None, traceback)``."""
    try:
        return config.name, run_cell(config, out), None
    except Exception:  # reported by the parent, which goes on with the other runs
        return config.name, None, traceback.format_exc()


# -- report -------------------------------------------------------------------------------------------


def load_records(out: str | Path, size: str) -> list[dict[str, Any]]:
    """Every finished run record of ``size`` under ``out``."""
    records = []
    for path in sorted((Path(out) / "runs" / size).glob("qa*__*__seed*.json")):
        record = json.loads(path.read_text())
        if record.get("version") != RECORD_VERSION:
            print(f"warning: skipping {path} (record version {record.get('version')!r})", file=sys.stderr)
            continue
        records.append(record)
    return records


def tidy_runs(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Long table ``task, agent, seed, metric, value`` of the records' scalar results (errors in %).

    ``train_error`` (the selected weights on the training split) appears for the records that hold it.
    """
    rows = []
    for r in records:
        values = {
            "valid_error": 100 * r["valid_error"],
            "test_error": 100 * r["test_error"],
            "best_epoch": r["best_epoch"],
            "epochs_run": r["epochs_run"],
            "wall_s": r["wall_s"],
            "num_parameters": r["num_parameters"],
        }
        if r.get("train_error") is not None:  # records written before it was kept lack it
            values["train_error"] = 100 * r["train_error"]
        rows += [{"task": r["task"], "agent": r["agent"], "seed": r["seed"], "metric": m, "value": float(v)}
                 for m, v in values.items()]  # fmt: skip
    columns = ["task", "agent", "seed", "metric", "value"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(columns[:4], kind="stable").reset_index(drop=True)


def summary_table(records: Sequence[dict[str, Any]], size: str) -> pd.DataFrame:
    """Per task and agent: mean and std of the test error over seeds, and the validation-selected run.

    The selected run of a (task, agent) is the seed with the lowest validation error
    (ties: the lowest seed); its test error is reported. Errors are in %.

    Returns:
        One row per (task, agent): ``task, agent, seeds, mean, std`` (std with ddof=1,
        NaN for one seed), ``selected``, ``selected_seed``, ``epochs_run`` (min over seeds).
    """
    rows = []
    frame = pd.DataFrame([{k: r[k] for k in ("task", "agent", "seed", "valid_error", "test_error", "epochs_run")}
                          for r in records if r["size"] == size])  # fmt: skip
    if frame.empty:
        columns = ["task", "agent", "seeds", "mean", "std", "selected", "selected_seed", "epochs_run"]
        return pd.DataFrame(columns=columns)
    for (task, agent), group in frame.groupby(["task", "agent"], sort=True):
        best = group.sort_values(["valid_error", "seed"], kind="stable").iloc[0]
        test = 100 * group["test_error"]
        rows.append({
            "task": int(task), "agent": agent, "seeds": len(group), "mean": float(test.mean()),
            "std": float(test.std(ddof=1)) if len(group) > 1 else math.nan,
            "selected": float(100 * best["test_error"]), "selected_seed": int(best["seed"]),
            "epochs_run": int(group["epochs_run"].min()),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _fmt(value: float | None, std: float | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if std is None or math.isnan(std):
        return f"{value:.1f}"
    return f"{value:.1f} ± {std:.1f}"


def _seed_count(summary: pd.DataFrame, agent: str) -> str:
    """``" (3 seeds)"``, or ``" (1-3 seeds)"`` when tasks differ, for ``agent``'s column header."""
    seeds = summary.loc[summary["agent"] == agent, "seeds"] if not summary.empty else pd.Series(dtype=int)
    if seeds.empty:
        return ""
    low, high = int(seeds.min()), int(seeds.max())
    return f" ({low} seed{'s' if high > 1 else ''})" if low == high else f" ({low}-{high} seeds)"


def _markdown_table(summary: pd.DataFrame, size: str, tasks: list[int], agents: list[str]) -> list[str]:
    """The per-task rows and the mean / failed rows of ``table_<size>.md``."""
    paper = paper_column("memn2n", size)
    lstm_paper = paper_column("lstm", size) if "lstm" in agents else None
    header = ["task"]
    if paper is not None:
        header.append(f"paper MemN2N {paper.name}")
    for agent in agents:
        if agent == "lstm" and lstm_paper is not None:
            header.append("paper LSTM")
        header += [f"ours {agent}{_seed_count(summary, agent)} mean ± std", f"ours {agent} val-selected"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    columns: dict[str, dict[int, float]] = {}  # label -> task -> error, for the bottom rows
    if paper is not None and paper.errors is not None:
        columns["paper"] = {t: paper.errors[t] for t in tasks}
    for agent in agents:
        rows = summary[summary["agent"] == agent].set_index("task") if not summary.empty else summary
        columns[f"{agent}:mean"] = {t: float(rows.loc[t, "mean"]) for t in tasks if t in rows.index}
        columns[f"{agent}:selected"] = {t: float(rows.loc[t, "selected"]) for t in tasks if t in rows.index}
    for t in tasks:
        cells = [str(t)]
        if paper is not None:
            cells.append(_fmt(paper.errors.get(t) if paper.errors else None))
        for agent in agents:
            if agent == "lstm" and lstm_paper is not None:
                cells.append("–")  # per-task LSTM errors are not in the reference transcription
            rows = summary[(summary["agent"] == agent) & (summary["task"] == t)] if not summary.empty else summary
            if rows.empty:
                cells += ["–", "–"]
                continue
            row = rows.iloc[0]
            cells += [_fmt(row["mean"], row["std"]), f"{row['selected']:.1f} (seed {row['selected_seed']})"]
        lines.append("| " + " | ".join(cells) + " |")

    def bottom(label: str, fn: Callable[[dict[int, float]], str]) -> str:
        cells = [label]
        if paper is not None:
            cells.append(fn(columns["paper"]) if "paper" in columns else "–")
        for agent in agents:
            if agent == "lstm" and lstm_paper is not None:
                stated = lstm_paper.mean if fn is mean_of else lstm_paper.failed
                cells.append(f"{stated} (all 20, stated)")
            cells += [fn(columns[f"{agent}:mean"]), fn(columns[f"{agent}:selected"])]
        return "| " + " | ".join(cells) + " |"

    def mean_of(col: dict[int, float]) -> str:
        if not col:
            return "–"
        text = f"**{np.mean(list(col.values())):.1f}**"
        return text if len(col) == len(tasks) else f"{text} ({len(col)} tasks)"

    def failed_of(col: dict[int, float]) -> str:
        if not col:
            return "–"
        text = f"**{sum(v > FAIL_THRESHOLD for v in col.values())}**"
        return text if len(col) == len(tasks) else f"{text} / {len(col)}"

    lines.append(bottom("mean error (%)", mean_of))
    lines.append(bottom(f"failed tasks (> {FAIL_THRESHOLD:g}%)", failed_of))
    return lines


def _plot_error_by_length(records: Sequence[dict[str, Any]], path: Path) -> Path:
    """Test error against story sentences before the question, bucketed, per agent averaged over tasks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from benchmarks.plots import _save

    rows = []
    for r in records:
        for entry in r["test_by_context"]:
            for lo, hi in LENGTH_BINS:
                if lo <= entry["context"] <= hi:
                    rows.append({"agent": r["agent"], "task": r["task"], "bin": f"{lo}–{hi}", "lo": lo,
                                 "questions": entry["questions"], "errors": entry["errors"]})  # fmt: skip
                    break
    fig, ax = plt.subplots(figsize=(7, 4.2))
    if not rows:
        ax.text(0.5, 0.5, "no finished runs", ha="center", va="center")
        ax.axis("off")
        return _save(fig, path)
    frame = pd.DataFrame(rows)
    # pool seeds within (agent, task, bin), then average the per-task error rates over tasks
    per_task = frame.groupby(["agent", "task", "lo", "bin"], as_index=False)[["questions", "errors"]].sum()
    per_task["error"] = 100 * per_task["errors"] / per_task["questions"]
    curve = per_task.groupby(["agent", "lo", "bin"], as_index=False).agg(
        error=("error", "mean"), tasks=("task", "nunique")
    )
    order = [a for a in AGENTS if a in set(curve["agent"])]
    labels = {a: f"{a} ({frame[frame.agent == a].task.nunique()} tasks)" for a in order}
    curve["label"] = curve["agent"].map(labels)
    bins = [f"{lo}–{hi}" for lo, hi in LENGTH_BINS if lo in set(curve["lo"])]
    sns.lineplot(data=curve.sort_values("lo"), x="bin", y="error", hue="label", hue_order=[labels[a] for a in order],
                 marker="o", ax=ax, sort=False)  # fmt: skip
    ax.set_xticks(range(len(bins)), bins)
    for _, point in curve.iterrows():  # the task mix differs between buckets: say how many tasks each holds
        ax.annotate(f"{point['tasks']}", (bins.index(point["bin"]), point["error"]), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize=7, color="0.35")  # fmt: skip
    ax.set_xlabel("story sentences before the question (bucketed)")
    ax.set_ylabel("test error (%), mean over tasks")
    ax.set_ylim(bottom=0)
    ax.set_title("bAbI test error by story length (small numbers: tasks in the bucket)", fontsize=10)
    ax.legend(title="agent", frameon=False)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _protocol_changes(records: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """Per agent, every ``field = value (n runs)`` where records differ from today's protocol of their size.

    Ablations (``--override``) and records of an older protocol show up here, so a table never
    silently mixes or mislabels protocols.
    """
    found: dict[str, dict[str, int]] = {}
    for r in records:
        if "protocol" not in r or r["agent"] not in PROTOCOLS:
            continue
        today = json.loads(json.dumps(dataclasses.asdict(RunConfig(r["task"], r["agent"], 0, r["size"]).protocol())))
        flat_today, flat_run = _flatten(today), _flatten(r["protocol"])
        for key in sorted(set(flat_today) | set(flat_run)):
            if key not in flat_run and flat_today[key] == _FIELD_DEFAULTS.get(key, "(no default)"):
                continue  # a field added since with a default that keeps the old behaviour
            if flat_today.get(key, "(absent)") != flat_run.get(key, "(absent)"):
                text = f"{key} = {json.dumps(flat_run.get(key, '(absent)'))}"
                found.setdefault(r["agent"], {}).setdefault(text, 0)
                found[r["agent"]][text] += 1
    return {a: [f"{text} ({n} runs)" for text, n in changes.items()] for a, changes in found.items()}


_FIELD_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Protocol) if f.default is not dataclasses.MISSING}


def _flatten(protocol: dict[str, Any]) -> dict[str, Any]:
    """``{"agent_config": {"hops": 3}, "lr": 0.01}`` -> ``{"agent_config.hops": 3, "lr": 0.01}``."""
    flat = {k: v for k, v in protocol.items() if k != "agent_config"}
    flat.update({f"agent_config.{k}": v for k, v in protocol.get("agent_config", {}).items()})
    return flat


def report(out: str | Path, size: str = "1k", command: str | None = None) -> list[Path]:
    """Write ``table_<size>.md``, ``runs_<size>.csv`` and ``error_by_length_<size>.png`` from the records.

    Args:
        out: The benchmark's output folder (holding ``runs/<size>/``).
        size: Which training-set size to report.
        command: The command line to state in the table (None: read from the records' folder).

    Returns:
        The paths written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records = load_records(out, size)
    agents = [a for a in AGENTS if any(r["agent"] == a for r in records)] or ["memn2n"]
    tasks = sorted({r["task"] for r in records}) or list(range(1, 21))
    summary = summary_table(records, size)
    command_file = out / "runs" / size / "command.txt"
    if command is None and command_file.is_file():
        # every command that added records to this folder, one per line
        command = "`; `".join(line for line in command_file.read_text().splitlines() if line.strip())
    paper = paper_column("memn2n", size)
    lstm_paper = paper_column("lstm", size)
    seeds = sorted({r["seed"] for r in records})
    epochs = {a: sorted({r["epochs_run"] for r in records if r["agent"] == a}) for a in agents}
    lines = [
        f"# bAbI {size}: test error (%), one model per task",
        "",
        f"Made by `{command or 'python -m benchmarks.babi ...'}`; report written "
        f"{_dt.date.today().isoformat()} from {len(records)} run records (`runs/{size}/`), seeds {seeds}.",
        "",
        *_markdown_table(summary, size, tasks, agents),
        "",
        "\"mean ± std\": over seeds of the test error of each seed's validation-selected epoch. "
        "\"val-selected\": the test error of the seed with the lowest validation error (the paper's authors "
        "instead report the best of 10 runs by training error). "
        f"Failed = test error > {FAIL_THRESHOLD:g}%.",
    ]
    if paper is not None:
        lines.append(f"Paper ({PAPER_SOURCE}), column {paper.name}: mean {paper.mean} / {paper.failed} failed"
                     + (f" (on these {len(tasks)} tasks: mean {np.mean([paper.errors[t] for t in tasks]):.1f})"
                        if paper.errors and len(tasks) < 20 else "") + ".")  # fmt: skip
    if lstm_paper is not None:
        lines.append(f"Paper LSTM baseline ({size}): mean {lstm_paper.mean} / {lstm_paper.failed} failed "
                     "(per-task errors not transcribed). The NTM is not in the paper's table.")  # fmt: skip
    for agent, changes in _protocol_changes(records).items():
        lines.append(f"Protocol changes in the {agent} records (against today's `PROTOCOLS` in "
                     f"benchmarks/babi.py): {'; '.join(changes)}.")  # fmt: skip
    lines += ["", "Epochs run per agent (a run stops early only at `--minutes-per-run`): "
              + "; ".join(f"{a}: {', '.join(map(str, e))}" for a, e in epochs.items()) + ".", ""]  # fmt: skip
    doc = (__doc__ or "").split("Protocol (the defaults of :data:`PROTOCOLS`) and how it differs from the paper:")
    if len(doc) == 2:
        text = doc[1].strip().replace(":func:", "").replace(":data:", "")
        lines += ["## Protocol and differences from the paper", "", text, ""]
    written = [write_text_atomic(out / f"table_{size}.md", "\n".join(lines) + "\n")]
    written.append(write_csv_atomic(out / f"runs_{size}.csv", tidy_runs(records)))
    written.append(_plot_error_by_length(records, out / f"error_by_length_{size}.png"))
    return written


# -- command line -------------------------------------------------------------------------------------


def parse_ints(text: str, low: int | None = None, high: int | None = None) -> list[int]:
    """``"1-3,7"`` -> ``[1, 2, 3, 7]`` (sorted, unique), checked against ``[low, high]``."""
    values: set[int] = set()
    try:
        for part in (p.strip() for p in text.split(",")):
            if "-" in part:
                first, last = part.split("-", 1)
                values.update(range(int(first), int(last) + 1))
            elif part:
                values.add(int(part))
    except ValueError:
        raise ValueError(f"expected non-negative integers and ranges like '1-3,7', got {text!r}") from None
    bad = [v for v in values if (low is not None and v < low) or (high is not None and v > high)]
    if bad or not values:
        raise ValueError(f"values must lie in [{low}, {high}], got {text!r}")
    return sorted(values)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.babi", description=__doc__.split("\n")[0])
    parser.add_argument("--agents", default="memn2n", help=f"comma-separated, from {','.join(AGENTS)}")
    parser.add_argument("--tasks", default="1-20", help="bAbI tasks, e.g. 1-20 or 1,2,3")
    parser.add_argument("--seeds", default="0,1,2", help="seeds, e.g. 0,1,2 or 0-9")
    parser.add_argument("--size", default="1k", choices=["1k", "10k"])
    parser.add_argument("--out", default="results/babi", help="output folder")
    parser.add_argument("--epochs", type=int, default=RunConfig.epochs)
    parser.add_argument("--batch-size", type=int, default=RunConfig.batch_size)
    parser.add_argument("--batch-unit", default=RunConfig.batch_unit, choices=["questions", "sequences"])
    parser.add_argument("--eval-every", type=int, default=RunConfig.eval_every)
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (spawn), 1 torch thread each")
    parser.add_argument("--minutes-per-run", type=float, default=None, help="wall-clock cap of each run")
    parser.add_argument("--data-dir", default=None, help="tasks_1-20_v1-2 folder (default $MEMTASKS_BABI_DIR)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1 or auto (default: cpu)")
    parser.add_argument(
        "--override", action="append", default=[], metavar="FIELD=JSON",
        help="replace a Protocol field for an ablation, e.g. head_bias=false or "
             "agent_config.weight_tying='\"layerwise\"' (repeatable; needs its own --out)",
    )  # fmt: skip
    return parser


_PROTOCOL_OUT = Path(__file__).resolve().parents[1] / "results" / "babi"
"""The committed results of the protocol itself, which ``--override`` runs must not join."""


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["FIELD=JSON", ...]`` to :attr:`RunConfig.overrides`; ``agent_config.NAME=JSON`` sets one agent option.

    Raises:
        ValueError: naming the item that is not ``FIELD=JSON`` or whose value is not JSON.
    """
    overrides: dict[str, Any] = {}
    for item in items:
        field_name, sep, text = item.partition("=")
        if not sep or not field_name:
            raise ValueError(f"--override expects FIELD=JSON (e.g. head_bias=false), got {item!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(f"--override {field_name}: the value must be JSON (strings in double quotes), "
                             f"got {text!r}") from None  # fmt: skip
        if field_name.startswith("agent_config."):
            overrides.setdefault("agent_config", {})[field_name.removeprefix("agent_config.")] = value
        else:
            overrides[field_name] = value
    return overrides


def main(argv: Sequence[str] | None = None) -> int:
    """Run every missing (task, agent, seed) of the command line, then :func:`report`. Returns an exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:
        parser = argparse.ArgumentParser(prog="python -m benchmarks.babi report")
        parser.add_argument("--out", default="results/babi")
        parser.add_argument("--size", default="1k", choices=["1k", "10k"])
        args = parser.parse_args(argv[1:])
        for path in report(args.out, args.size):
            print(path)
        return 0
    args = _parser().parse_args(argv)
    try:
        agents = [a.strip() for a in args.agents.split(",") if a.strip()]
        tasks, seeds = parse_ints(args.tasks, 1, 20), parse_ints(args.seeds, 0)
        overrides = parse_overrides(args.override)
        if overrides and Path(args.out).resolve() == _PROTOCOL_OUT:
            raise ValueError("--override runs need their own --out folder (their records would mix with the "
                             "protocol's in results/babi)")  # fmt: skip
        configs = [
            RunConfig(task, agent, seed, size=args.size, epochs=args.epochs, batch_size=args.batch_size,
                      batch_unit=args.batch_unit, eval_every=args.eval_every,
                      minutes_per_run=args.minutes_per_run, data_dir=args.data_dir,
                      device=args.device, overrides=overrides)  # fmt: skip
            for agent in agents for task in tasks for seed in seeds
        ]
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.size == "10k" and 3 in tasks:
        print("note: en-10k may lack qa3's train file; that run would fail and be reported", file=sys.stderr)
    out = Path(args.out)
    (out / "runs" / args.size).mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.babi " + " ".join(shlex.quote(a) for a in argv)
    command_file = out / "runs" / args.size / "command.txt"
    commands = command_file.read_text().splitlines() if command_file.is_file() else []
    if command not in commands:  # the report names every command that made its records
        write_text_atomic(command_file, "\n".join([*commands, command]) + "\n")
    todo = [c for c in configs if not cell_path(out, c).is_file()]
    print(f"{len(configs)} runs, {len(configs) - len(todo)} already finished, {len(todo)} to do "
          f"({args.workers} worker(s), torch {torch.__version__}, {platform.machine()})", flush=True)  # fmt: skip
    failures: list[str] = []
    start = time.perf_counter()

    def done(name: str, record: dict[str, Any] | None, error: str | None, k: int) -> None:
        elapsed = time.perf_counter() - start
        if record is None:
            failures.append(name)
            print(f"[{k}/{len(todo)}] {name} FAILED after {elapsed:.0f}s:\n{error}", file=sys.stderr, flush=True)
        else:
            print(f"[{k}/{len(todo)}] {name}: valid {100 * record['valid_error']:.1f}% test "
                  f"{100 * record['test_error']:.1f}% (epoch {record['best_epoch']}/{record['epochs_run']}, "
                  f"{record['wall_s']:.0f}s; {elapsed:.0f}s total)", flush=True)  # fmt: skip

    if args.workers <= 1:
        _worker_init()
        def show(epoch: int, message: str) -> None:
            if not args.quiet and epoch % 10 == 0:
                print("   " + message, flush=True)

        for k, config in enumerate(todo, 1):
            try:
                done(config.name, run_cell(config, out, show), None, k)
            except Exception:
                done(config.name, None, traceback.format_exc(), k)
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.workers, mp_context=context, initializer=_worker_init) as pool:
            futures = [pool.submit(_run_quietly, config, str(out)) for config in todo]
            for k, future in enumerate(as_completed(futures), 1):
                done(*future.result(), k)
    for path in report(out, args.size):
        print(path)
    if failures:
        print(f"{len(failures)} run(s) failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
