"""Train one agent on one task: the training loop behind every experiment.

:func:`train` reads top to bottom as

1. build the task, the data stream (``np.random.default_rng(seed)``), the agent
   (after ``torch.manual_seed(seed)``), the optimizer, and switch the agent to
   its fast path (:mod:`agents.fast`; ``compile=False`` keeps it eager);
2. loop: sample a batch (``batch_lengths``: one length per batch or mixed;
   from a task whose ``max_length`` is the current curriculum length), forward,
   :func:`agents.sequence_loss`, backward, clip, optimizer step. Nothing is
   read back from the device inside the loop: the loss, the gradient norm and
   the logits stay there, and a device-side guard keeps any step whose loss or
   gradient norm is NaN/inf (and every step after it) from changing the weights;
3. every ``log_every`` steps read the pending steps back: stop as "diverged"
   naming the first bad step, else score them with ``task.score`` and append
   the averaged metrics to ``train.csv``;
4. at the same rows, grow the curriculum / test for convergence on a running
   window of the training bit errors (convergence is confirmed on a fresh
   validation set);
5. stop at the step limit, the wall-clock budget, convergence or divergence,
   then write ``model.pt`` (:func:`agents.save_checkpoint`) and ``result.json``.

Epoch mode (``epochs``, for a task over a finite set of sequences, :class:`memtasks.core.Dataset`: bAbI):
step 2 walks a fresh permutation of the training split each epoch instead of sampling, every schedule
(``set_progress``, the learning rate) moves at each epoch's start, and step 4 becomes: at each epoch's end,
score the ``valid`` split (``valid.csv``) and keep the weights of the best validation epoch, which are the
run's ``model.pt``.

Selection in the sampled mode (``select_every``): at every ``select_every``-th row, and at the end, score a
fixed validation set drawn once from the training range (``valid.csv``) and keep the weights of the lowest
validation cost as ``model.pt``; the budget, the data stream and the training are those of the same run
without it.

Files written under ``out_dir`` (when given):

- ``train.csv``: one row per log (header written first, rows flushed as they
  come, so a killed run leaves a valid prefix): ``step, sequences_seen, wall_s,
  loss, grad_norm``, the task's score metrics averaged over the training
  batches since the previous row (``cost_bits, bit_errors, seq_accuracy`` for
  bit outputs; ``error_rate, accuracy, ...`` for class outputs) and
  ``curriculum_max_length``. ``loss`` is :func:`agents.sequence_loss` (mean BCE
  per scored bit, in nats), ``grad_norm`` the gradient norm before clipping.
- ``model.pt``: the final weights (never NaN: a diverging step is caught before
  the update), or the selected ones (epoch mode, ``select_every``), loadable with
  :func:`agents.load_checkpoint`.
- ``valid.csv``: with selection, one row per validation (``step, sequences_seen, wall_s`` and the metrics;
  ``epoch`` first in epoch mode).
- ``result.json``: ``dataclasses.asdict(TrainResult)`` (``fast_path`` and
  ``first_step_s`` among them) plus ``config``, ``batching``, ``device``,
  ``torch_version``, ``resolved`` (the task's and agent's configuration with
  every default expanded) and ``provenance`` (git commit and dirty flag, Python,
  torch and numpy versions, platform: :func:`benchmarks.provenance.environment`),
  written atomically at the end. ``wall_s`` and every
  sequences-per-second figure derived from it include the compile.

The defaults of :class:`TrainConfig` are the harness-wide defaults: change them
there, the CLI (``memtasks train``) reads them from the dataclass.
"""

from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import functools
import json
import math
import re
import sys
import time
import traceback
import types
import typing
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import ConfigDict, Field, TypeAdapter
from tqdm.auto import tqdm

import agents
from agents import enable_fast_path, fast_path_status, make_agent, resolve_device, save_checkpoint, sequence_loss
from agents.optim import OPTIMIZERS, make_optimizer
from benchmarks.evaluate import score_batch, score_split
from benchmarks.provenance import environment, resolved_task_kwargs
from memtasks import make_task
from memtasks.atomic import write_text_atomic
from memtasks.core import Batch, Dataset, Task, check_float, check_int

__all__ = ["BATCH_LENGTHS", "CURRICULA", "NEUTRAL", "STATUSES", "TrainConfig", "TrainResult", "cli", "parse_kwargs", "train"]

CURRICULA = ("none", "grow")
"""The values :attr:`TrainConfig.curriculum` accepts."""

STATUSES = ("ok", "converged", "diverged", "failed")
"""The values :attr:`TrainResult.status` takes."""

BATCH_LENGTHS = ("auto", "same", "mixed")
"""The values :attr:`TrainConfig.batch_lengths` accepts."""


NEUTRAL: dict[str, Any] = {
    "epochs": None,
    "batch_unit": "sequences",
    "lr_halve_from": 0,
    "linear_start_lr": None,
    "warm_up_end": "epochs",
    "loss_reduction": "mean",
    "clip_per_parameter": False,
    "head_init_std": None,
    "unroll": 1,
    "select_every": None,
}
"""Settings added after runs were recorded, each with the value under which a run does exactly what runs did
before the setting existed. A cell's identity (:meth:`benchmarks.experiment.Cell.identity`) leaves a setting
out while it has this value, so adding an option to the trainer does not make every finished cell stale; a
changed default (a value other than this) still does. A new setting joins this table with its "off" value."""

Count = Annotated[int, Field(ge=1)]
"""An integer >= 1 (a :class:`TrainConfig` field type; the bound is pydantic ``Field`` metadata)."""

Positive = Annotated[float, Field(gt=0)]
"""A finite number > 0 (a :class:`TrainConfig` field type)."""


@dataclass
class TrainConfig:
    """Everything that defines one training run (same config and seed => same numbers on CPU).

    The single description of a run's settings: each field's type carries its bounds (``Count``,
    ``Positive``, ``Field(ge=...)``) and choices (``Literal``), its docstring says what it does.
    :meth:`validate` checks the bounds and choices; ``memtasks train`` builds a flag per field
    (:func:`_build_parser`); the ``[train]`` table of an experiment file is these fields but the per-cell
    ones (:mod:`benchmarks.experiment` validates it with pydantic from the same annotations).
    """

    __pydantic_config__ = ConfigDict(use_attribute_docstrings=True)  # the docstrings below: help of the flags

    task: str
    """Registered task id, e.g. ``"memtasks/Copy-v0"``."""
    agent: str
    """Registered agent name (``agents.list_agents()``), e.g. ``"ntm"``."""
    seed: Annotated[int, Field(ge=0)] = 0
    """Seeds the data stream (``np.random.default_rng(seed)``) and the agent's initialisation
    (``torch.manual_seed(seed)``); >= 0."""
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of ``make_task`` (e.g. ``{"bits": 8, "max_length": 20}``)."""
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    """Overrides of the agent's config dataclass (e.g. ``{"controller_size": 100}``)."""
    batch_size: Count = 16
    """Sequences per optimizer step, >= 1 (16 with ``lr`` 3e-3 is the recipe that trains the NTM on Copy
    fastest on a CPU; see results/copy)."""
    steps: Count | None = 1000
    """Maximum number of optimizer steps, >= 1; ``None`` = no step limit (then ``minutes`` is required)."""
    minutes: Positive | None = None
    """Wall-clock budget in minutes, > 0, measured from the start of :func:`train` (everything counts:
    building the agent, scoring, logging, validation); ``None`` = no time limit."""
    optimizer: Literal[OPTIMIZERS] = "adam"
    """``"adam"``, ``"rmsprop"`` (Graves 2013 centred RMSProp, see :mod:`agents.optim`) or ``"sgd"``."""
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments of the optimizer (e.g. ``{"momentum": 0.9}`` for sgd)."""
    lr: Positive = 3e-3
    """Learning rate, > 0 (3e-3 at batch 16: with 1e-3 the NTM had not learned Copy after 18.7k sequences)."""
    clip_norm: Positive | None = 10.0
    """Rescale the gradient to at most this global L2 norm, > 0; ``None`` = off."""
    clip_value: Positive | None = None
    """Clip every gradient element to ``[-clip_value, clip_value]`` (the NTM paper: 10), > 0; applied
    before ``clip_norm``; ``None`` = off."""
    until_bit_errors: Positive | None = None
    """Stop early ("converged") once the running training bit errors per sequence (mean over the last
    ``running_window`` batches, curriculum finished) fall below this AND a fresh validation set of
    ``validation_samples`` sequences from the full training range confirms it; > 0, bit outputs only."""
    running_window: Count = 20
    """Number of most recent training batches whose bit errors make the running estimate used by
    ``until_bit_errors`` and the curriculum; >= 1. Emptied after each curriculum step and failed
    validation, so every decision sees ``running_window`` fresh batches."""
    validation_samples: Count = 256
    """Sequences in the validation set that confirms ``until_bit_errors``, and in the fixed one that
    ``select_every`` scores; >= 1."""
    select_every: Count | None = None
    """Sampled mode: every this many steps (a multiple of ``log_every``), and at the end, score a fixed
    validation set (``validation_samples`` sequences from the full training range, drawn once from a
    stream of their own) and keep the weights with the lowest validation cost (``cost_bits``; ``error_rate``
    for class outputs) as the run's result: ``model.pt``, ``best_step`` and ``selected`` in ``result.json``,
    every score in ``valid.csv``. Early stopping's selection without the stopping: the run still uses its
    whole budget, so a model that gets good and then collapses keeps its good weights. ``None`` = the last
    weights (training never reads the validation set, and the data stream is the same either way)."""
    curriculum: Literal[CURRICULA] = "none"
    """``"none"``: sample lengths from the task's full training range. ``"grow"``: start with
    ``max_length = curriculum_start`` and add ``curriculum_step`` whenever the running bit errors per
    sequence fall below ``curriculum_threshold``, up to the task's ``max_length`` (bit outputs only)."""
    curriculum_start: Count = 1
    """First max length of the ``"grow"`` curriculum; must lie in the task's ``[min_length, max_length]``."""
    curriculum_step: Count = 1
    """How much the ``"grow"`` curriculum raises the max length at a time; >= 1."""
    curriculum_threshold: Positive = 1.0
    """Running bit errors per sequence below which the ``"grow"`` curriculum raises the max length; > 0."""
    epochs: Count | None = None
    """Epoch mode, for a task over a finite set of sequences (:class:`memtasks.core.Dataset`: bAbI): train
    this many passes over the training split, each a fresh permutation (from the data stream) cut into
    batches; after every epoch score the task's ``"valid"`` split and keep the weights with the lowest
    validation ``error_rate`` (ties: the later epoch) as the run's result (``model.pt``, ``best_epoch``).
    ``steps`` and ``minutes`` still cap the run (the CLI and experiment files leave ``steps`` unset in
    this mode). ``None`` = sampled mode (``task.sample`` draws every batch); >= 1."""
    batch_unit: Literal["sequences", "scored"] = "sequences"
    """Epoch mode: what ``batch_size`` counts. ``"sequences"``; or ``"scored"``: scored steps (bAbI:
    questions), each batch holding ``round(batch_size * num_sequences / num_scored)`` sequences of the
    training split (>= 1), about ``batch_size`` questions (the MemN2N paper's batch of 32 questions)."""
    epoch_size: Count | None = None
    """Sampled mode: sequences per epoch, so that a core's epoch schedule advances (MemN2N's linear
    start): ``agent.core.set_progress(sequences_seen // epoch_size)`` whenever that changes; >= 1. A core
    with such a schedule (``Core.needs_epochs``) is refused without ``epochs`` or ``epoch_size``."""
    lr_halve_epochs: Count | None = None
    """Halve the learning rate every this many epochs (MemN2N on bAbI: 25), counted from
    ``lr_halve_from``; needs ``epochs`` or ``epoch_size``; >= 1."""
    lr_halve_from: Annotated[int, Field(ge=0)] = 0
    """Epoch (0-based) from which ``lr_halve_epochs`` counts (the MemN2N authors' code restarts the
    schedule when linear start ends: 20); >= 0."""
    linear_start_lr: Positive | None = None
    """Learning rate while the core's warm-up is on (``Core.warming_up``: MemN2N's linear start; the paper:
    0.005); ``None`` = the schedule's rate; > 0."""
    warm_up_end: Literal["epochs", "plateau"] = "epochs"
    """When the core's warm-up (``Core.warming_up``: MemN2N's linear start) ends: after its own number of
    epochs (``"epochs"``: ``linear_start_epochs``), or (``"plateau"``, epoch mode) after the first epoch whose
    validation loss (``cost_nats``; ``cost_bits`` for bits) does not improve on the warm-up's best so far, the
    MemN2N paper's rule (its own number of epochs stays an upper bound)."""
    loss_reduction: Literal["mean", "sum"] = "mean"
    """What the optimizer minimises: ``"mean"`` of :func:`agents.sequence_loss` over the batch's scored
    steps, or their ``"sum"`` (the MemN2N paper's SGD; the logged ``loss`` is the mean either way)."""
    clip_per_parameter: bool = False
    """Clip each parameter's gradient to ``clip_norm`` on its own (the MemN2N authors' code) instead of the
    global norm of all of them."""
    head_init_std: Positive | None = None
    """Re-initialise the answer head N(0, std) with a zero bias after building (the MemN2N paper: 0.1);
    ``None`` keeps torch's default; > 0."""
    log_every: Count = 50
    """Append a row to ``train.csv`` every this many steps (and once at the end); >= 1. The loop reads
    nothing back from the device between rows, so this is also how often divergence is detected (a diverged
    step never changes the weights, see :func:`train`), and how often the curriculum and ``until_bit_errors``
    are checked."""
    batch_lengths: Literal[BATCH_LENGTHS] = "auto"
    """``"mixed"``: ``task.sample`` draws each sequence's length, and the batch is padded to its longest.
    ``"same"``: every sequence of a batch has one length, that of a sequence drawn from the task
    (``task.sample(1, rng).lengths[0]``), so each sequence's length keeps the task's distribution while a
    batch has no padding (about half of a mixed Copy 1-20 batch is padding); but each step then sees one
    length, which slows learning per sequence for some agents (MemN2N, whose temporal encodings are per
    age: results/speed/batching.md). ``"auto"``: the core's own choice (``Core.batch_lengths``: ``"same"``
    for the NTM, ``"mixed"`` for the others). ``result.json`` records what ran under ``batching``."""
    compile: bool = True
    """Train through the fast path (:mod:`agents.fast`: ``torch.compile`` of the core's time step; eager with
    one warning where it cannot compile). The first step pays the compile (counted in ``wall_s``); ``False``
    runs eagerly (debugging)."""
    unroll: Count = 1
    """Time steps per compiled graph on the fast path (step-wise cores: NTM, DNC); the sequence is padded at
    its end with zero frames to a multiple, whose outputs are dropped, so logits and gradients are those of
    one step per graph (to 1e-5, tested). Fewer, larger compiled calls run faster per step but compile
    several times longer (``results/speed/``); 1 = one step per graph. Ignored without ``compile``."""
    device: str = "auto"
    """Torch device; ``"auto"`` picks CUDA when present, else the CPU."""
    threads: Count | None = None
    """``torch.set_num_threads`` for this run (restored afterwards); >= 1; ``None`` = leave as is."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field against its annotation; raise an error naming the field and its allowed values."""
        for name in ("task", "agent", "device"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise TypeError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        if self.agent not in agents.list_agents():
            raise ValueError(f"agent must be one of {', '.join(agents.list_agents())}, got {self.agent!r}")
        for name, hint in _config_hints().items():
            _check_field(name, getattr(self, name), hint)
        if self.steps is None and self.minutes is None and self.epochs is None:
            raise ValueError(
                "steps, minutes and epochs are all None: give a step limit (steps >= 1), "
                "a wall-clock budget (minutes > 0), an epoch count (epochs >= 1, dataset tasks), or several"
            )
        if self.lr_halve_epochs is not None and self.epoch_size is None and self.epochs is None:
            raise ValueError("lr_halve_epochs needs epochs (epoch mode) or epoch_size (sampled mode); both are None")
        if self.epochs is not None and self.epoch_size is not None:
            raise ValueError("epochs and epoch_size are both set: epoch_size is for the sampled mode; set one")
        if self.epochs is not None and (self.curriculum != "none" or self.until_bit_errors is not None):
            raise ValueError("epochs (epoch mode) cannot be combined with curriculum or until_bit_errors")
        if self.warm_up_end == "plateau" and self.epochs is None:
            raise ValueError("warm_up_end 'plateau' needs epochs (epoch mode: it reads the validation loss); it is None")
        if self.batch_unit != "sequences" and self.epochs is None:
            raise ValueError(f"batch_unit {self.batch_unit!r} needs epochs (epoch mode); it is None")
        if self.select_every is not None:
            if self.epochs is not None:
                raise ValueError(
                    "select_every is for the sampled mode; epoch mode (epochs) already keeps the best epoch"
                )
            if self.select_every % self.log_every:
                raise ValueError(
                    f"select_every must be a multiple of log_every ({self.log_every}), got {self.select_every}: "
                    "the loop reads the device only at log rows"
                )


@functools.cache
def _config_hints() -> dict[str, Any]:
    """TrainConfig's field annotations, resolved, with their ``Annotated`` metadata."""
    return typing.get_type_hints(TrainConfig, include_extras=True)


def _split_hint(hint: Any) -> tuple[Any, bool, dict[str, Any]]:
    """``(base type, whether None is allowed, {"ge"/"gt": bound})`` of a TrainConfig annotation."""
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    if optional:
        hint = next(a for a in args if a is not type(None))
    bounds: dict[str, Any] = {}
    if typing.get_origin(hint) is Annotated:
        hint, *extras = typing.get_args(hint)
        for extra in extras:
            for constraint in getattr(extra, "metadata", ()):  # pydantic Field(ge=...) -> [Ge(ge=...)]
                bounds.update({k: getattr(constraint, k) for k in ("ge", "gt") if hasattr(constraint, k)})
    return hint, optional, bounds


def _check_field(name: str, value: Any, hint: Any) -> None:
    """Check one TrainConfig value against its annotation, in the words of :func:`memtasks.core.check_int`."""
    kind, optional, bounds = _split_hint(hint)
    if value is None and optional:
        return
    if typing.get_origin(kind) is Literal:
        if value not in typing.get_args(kind):
            raise ValueError(f"{name} must be one of {', '.join(typing.get_args(kind))}, got {value!r}")
    elif kind is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be true or false, got {value!r}")
    elif kind is int:
        check_int(name, value, bounds.get("ge"))
    elif kind is float:
        value = check_float(name, value)
        if "gt" in bounds and value <= bounds["gt"]:
            raise ValueError(f"{name} must be a finite number > {bounds['gt']}, got {value}")
    elif typing.get_origin(kind) is dict and not isinstance(value, dict):
        raise TypeError(f"{name} must be a dict, got {type(value).__name__}")


@dataclass
class TrainResult:
    """What :func:`train` returns (and writes to ``result.json`` with the config)."""

    status: str
    """``"ok"`` (budget used up), ``"converged"`` (``until_bit_errors`` met and confirmed),
    ``"diverged"`` (NaN/inf loss or gradient norm) or ``"failed"`` (an exception in the loop)."""
    message: str
    """Why the run stopped, in words (names the step for diverged/failed runs)."""
    steps: int
    """Optimizer steps completed."""
    sequences_seen: int
    """Training sequences used by completed steps (``steps * batch_size``)."""
    wall_s: float
    """Seconds from the start of :func:`train` to the end of the loop (building, compiling, scoring and
    validation included)."""
    first_step_s: float | None
    """Seconds from the start of :func:`train` to the end of the first step: with the fast path, mostly
    the compile (``None`` if no step ran)."""
    converged_sequences: int | None
    """``sequences_seen`` when convergence was confirmed, else ``None``."""
    converged_wall_s: float | None
    """``wall_s`` when convergence was confirmed, else ``None``."""
    final: dict[str, float]
    """The last row written to ``train.csv`` (empty if no step completed)."""
    num_parameters: int
    """Trainable parameters of the agent."""
    fast_path: str = "eager (fast path off)"
    """What ran: ``"compiled step"``, ``"compiled steps, K per graph"`` (``unroll``), or ``"eager (...)"`` with the
    reason (:func:`agents.fast_path_status`)."""
    epochs_run: int | None = None
    """Epoch mode: epochs trained (the last one possibly cut short by ``steps`` or ``minutes``); else ``None``."""
    best_epoch: int | None = None
    """Epoch mode: the epoch (1-based; 0 = before training) whose weights were kept, by validation."""
    best_step: int | None = None
    """Sampled mode with ``select_every``: the step (0 = before training) whose weights were kept, by
    validation; else ``None``."""
    selected: dict[str, float] = field(default_factory=dict)
    """The validation metrics of the kept weights (epoch mode: the valid split; sampled mode with
    ``select_every``: its fixed validation set); empty otherwise."""
    warm_up_epochs: int | None = None
    """Epoch mode: epochs that started with the core's warm-up on (MemN2N's linear start), else ``None``."""


def train(
    config: TrainConfig,
    out_dir: str | Path | None = None,
    progress: bool = True,
    origin: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train ``config.agent`` on ``config.task`` (see the module docstring for the loop and the files).

    Args:
        config: The run's configuration (validated again here).
        out_dir: Folder for ``train.csv``, ``model.pt`` and ``result.json`` (created if missing);
            ``None`` writes nothing.
        progress: Show a tqdm progress bar (only on a terminal).

    Returns:
        The :class:`TrainResult`. Divergence and exceptions inside the training loop do not raise:
        they end the run with status ``"diverged"`` / ``"failed"`` and a message naming the step.

    Raises:
        ValueError, TypeError: a bad config value, an unknown task or agent, or a config that does not
            fit the task (e.g. ``until_bit_errors`` for a task with class outputs).
    """
    config.validate()
    start = time.perf_counter()
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    with _num_threads(config.threads):
        # -- 1. task, data, agent, optimizer ----------------------------------------------------
        task = make_task(config.task, **config.task_kwargs)
        _check_fits_task(config, task)
        epoch_mode = config.epochs is not None
        valid_task = _split(config, "valid") if epoch_mode else None
        device = resolve_device(config.device)
        rng = np.random.default_rng(config.seed)  # the training data stream
        validation_rng = np.random.default_rng([config.seed, 0, 1])  # never touches the training stream
        torch.manual_seed(config.seed)
        agent = make_agent(config.agent, task.spec, device=device, **config.agent_kwargs)
        if config.head_init_std is not None:
            _init_head(agent, config.head_init_std)
        if agent.core.needs_epochs and not epoch_mode and config.epoch_size is None:
            raise ValueError(
                f"agent {config.agent!r} has an epoch schedule (Core.needs_epochs, e.g. MemN2N's linear_start) "
                "that would never advance: set epochs (epoch mode) or epoch_size (sampled mode)"
            )
        agent.train()
        optimizer = make_optimizer(config.optimizer, agent.parameters(), config.lr, **config.optimizer_kwargs)
        params = [p for p in agent.parameters() if p.requires_grad]

        fast_path = enable_fast_path(agent, unroll=config.unroll) if config.compile else fast_path_status(agent)
        batching = config.batch_lengths if config.batch_lengths != "auto" else agent.core.batch_lengths
        if batching not in ("same", "mixed"):
            raise ValueError(f"{type(agent.core).__name__}.batch_lengths must be 'same' or 'mixed', got {batching!r}")
        per_batch = _sequences_per_batch(config, task) if epoch_mode else config.batch_size
        guard = _DivergenceGuard(params, device)

        grow = config.curriculum == "grow"
        max_length = config.curriculum_start if grow else task.max_length
        train_task = _with_max_length(config, task, max_length) if grow else task
        running = deque(maxlen=config.running_window)  # recent training bit errors per sequence
        metric_keys = _metric_keys(task)
        log = _CsvLog(out / "train.csv", metric_keys, epochs=epoch_mode) if out is not None else None
        pending: list[_Step] = []  # the steps since the last row, their values still on the device
        final: dict[str, float] = {}
        selecting = epoch_mode or config.select_every is not None
        selection = _Selection(agent, _selection_metric(task, epoch_mode)) if selecting else None
        valid_log = None
        if out is not None and selecting:
            valid_log = _CsvLog(out / "valid.csv", metric_keys, epoch_mode, valid=True)
        if config.select_every is not None:  # fixed once, from its own stream: every check scores the same set
            selection_set = task.sample(config.validation_samples, np.random.default_rng([config.seed, 0, 2]))

        epoch = 0
        warm_up_epochs = 0
        warm_up_best = math.inf  # the best validation loss while the warm-up is on ("plateau")

        def begin_epoch(new_epoch: int) -> None:
            """Advance every schedule to ``new_epoch`` (0-based): the core's, then the learning rate."""
            nonlocal epoch, warm_up_epochs
            epoch = new_epoch
            agent.core.set_progress(epoch)
            warming_up = agent.core.warming_up()
            warm_up_epochs += int(warming_up)
            for group in optimizer.param_groups:
                group["lr"] = _epoch_lr(config, epoch, warming_up)

        begin_epoch(0)
        batches = _epoch_batches(task, per_batch, rng, config.epochs) if epoch_mode else None

        status, message = "ok", ""
        step = seen = 0
        first_step_s: float | None = None
        converged_sequences: int | None = None
        converged_wall_s: float | None = None
        total = config.steps
        if epoch_mode:
            total = config.epochs * math.ceil(task.num_sequences / per_batch)
            total = total if config.steps is None else min(total, config.steps)
        bar = tqdm(total=total, unit="step", disable=None if progress else True, dynamic_ncols=True)
        if fast_path.startswith("compiled"):
            bar.set_description("compiling")

        def log_row(steps: list[_Step]) -> tuple[list[dict[str, float]], int | None, str]:
            """Read ``steps`` back, score them and write their row; return the good steps' scores, the first
            non-finite step (or ``None``) and the message naming it."""
            nonlocal final
            bad = guard.first_bad_step()
            row, scores, bad_message = _flush(steps, task, bad, start)
            if row:
                final = row
                if log is not None:
                    log.write(row)
                bar.set_postfix(_postfix(row), refresh=False)
            return scores, bad, bad_message

        def record_check(metrics: dict[str, float], done: int | None) -> None:
            """One validation: its row in ``valid.csv`` (the ``epoch`` column in epoch mode only), and the
            weights offered to the selection."""
            row = {"epoch": done, "step": step, "sequences_seen": seen,
                   "wall_s": round(time.perf_counter() - start, 3), **metrics}  # fmt: skip
            if valid_log is not None:
                valid_log.write(row)
            selection.offer(done, step, metrics)

        def validate_epoch(done: int) -> None:
            """Epoch mode: score the valid split after ``done`` epochs; keep the weights if they are the best;
            end the core's warm-up on a plateau (``warm_up_end = "plateau"``)."""
            nonlocal warm_up_best
            metrics = _score_split(agent, valid_task)
            record_check(metrics, done)
            if config.warm_up_end == "plateau" and agent.core.warming_up():
                loss = metrics.get("cost_nats", metrics.get("cost_bits", math.nan))
                if loss >= warm_up_best:  # no longer decreasing: end the warm-up from the next epoch on
                    agent.core.end_warm_up()
                warm_up_best = min(warm_up_best, loss)
            bar.set_postfix({"epoch": done, "valid": f"{metrics[selection.metric]:.3g}"}, refresh=False)

        def validate_step() -> None:
            """Sampled mode with ``select_every``: score the fixed validation set; keep the weights if best."""
            record_check(score_batch(agent, task, selection_set, _SELECTION_CHUNK), None)

        # -- 2. the training loop: nothing is read back from the device between log rows --------------
        try:
            while True:
                if config.steps is not None and step >= config.steps:
                    message = f"reached the step limit (steps={config.steps})"
                    break
                if config.minutes is not None and time.perf_counter() - start >= 60.0 * config.minutes:
                    message = f"used up the wall-clock budget (minutes={config.minutes})"
                    break
                end_of_epoch = False
                if epoch_mode:  # the next batch of this epoch's permutation
                    item = next(batches, None)
                    if item is None:
                        message = f"ran every epoch (epochs={config.epochs})"
                        break
                    batch_epoch, end_of_epoch, batch = item
                    if batch_epoch != epoch:
                        begin_epoch(batch_epoch)
                else:  # a batch drawn from the task
                    if config.epoch_size is not None and seen // config.epoch_size != epoch:
                        begin_epoch(seen // config.epoch_size)
                    batch = _sample_batch(train_task, config.batch_size, rng, batching)
                if not batch.mask.any():
                    raise ValueError("the batch has no scored step (mask all zero): nothing to learn from")
                inputs, targets, mask = _to_tensors(batch, device)
                logits = agent(inputs)
                loss = sequence_loss(logits, targets, mask, task.spec, check_scored=False)
                objective = loss * float(batch.mask.sum()) if config.loss_reduction == "sum" else loss
                optimizer.zero_grad(set_to_none=True)
                objective.backward()
                grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
                guard.check(step + 1, loss, grad_norm)
                _clip(config, params, grad_norm)
                optimizer.step()
                guard.undo_if_diverged()
                step += 1
                seen += batch.batch_size
                pending.append(_Step(step, seen, loss.detach(), grad_norm.detach(), logits.detach(), batch, max_length,
                                     epoch + 1 if epoch_mode else None))  # fmt: skip
                if first_step_s is None:
                    first_step_s = _synchronized_clock(device) - start
                    bar.set_description(None)
                bar.update(1)
                if step % config.log_every != 0 and not end_of_epoch:
                    continue

                # -- 3. log row: read back, score, check divergence -------------------------------------
                scores, bad, bad_message = log_row(pending)
                flushed, pending = pending, []
                if bad is not None:
                    status, message = "diverged", bad_message
                    step, seen = _before(flushed, bad)
                    break
                if epoch_mode:  # -- 4a. the end of an epoch: validation and selection
                    if end_of_epoch:
                        validate_epoch(epoch + 1)
                    continue
                if config.select_every is not None and step % config.select_every == 0:
                    validate_step()
                running.extend(s["bit_errors"] for s in scores if "bit_errors" in s)

                # -- 4b. curriculum and convergence, on the running training bit errors -------------
                window_full = len(running) == config.running_window
                running_errors = float(np.mean(running)) if running else math.nan
                until = config.until_bit_errors
                if grow and max_length < task.max_length:
                    if window_full and running_errors < config.curriculum_threshold:
                        max_length = min(max_length + config.curriculum_step, task.max_length)
                        train_task = _with_max_length(config, task, max_length)
                        running.clear()
                elif until is not None and window_full and running_errors < until:
                    check = _validate(agent, task, validation_rng, config.validation_samples, config.batch_size)
                    running.clear()
                    if check["bit_errors"] < until:
                        status = "converged"
                        converged_sequences, converged_wall_s = seen, time.perf_counter() - start
                        message = (
                            f"converged at step {step} after {seen} sequences: running bit errors "
                            f"{running_errors:.4g}, validation bit errors {check['bit_errors']:.4g} "
                            f"< until_bit_errors={until}"
                        )
                        break
        except Exception as exc:  # the run fails; the harness records it and moves on
            status = "failed"
            message = f"step {step + 1}: {type(exc).__name__}: {exc}"
            traceback.print_exc(file=sys.stderr)
        finally:
            bar.close()

        # -- 5. last row (steps since the last log), selection, checkpoint, result --------------------
        if pending:  # never after a divergence: its row emptied pending
            _, bad, bad_message = log_row(pending)
            if bad is not None:
                status, message = "diverged", bad_message
                step, seen = _before(pending, bad)
        if log is not None:
            log.close()
        if selection is not None:
            # the last weights are a candidate too (sampled mode: also those of a converged or diverged run,
            # which a diverged step never changed)
            last_is_candidate = status == "ok" if epoch_mode else status != "failed"
            if last_is_candidate and step > 0 and step != selection.last_step:
                validate_epoch(epoch + 1) if epoch_mode else validate_step()
            if valid_log is not None:
                valid_log.close()
            selection.restore()  # the run's result: the weights of the best validation score
            kept = f"epoch {selection.epoch}" if epoch_mode else f"step {selection.step}"
            message += f"; kept the weights after {kept} (best validation {selection.metric})"
        wall_s = time.perf_counter() - start
        fast_path = fast_path_status(agent)  # a compiled step may have fallen back to eager meanwhile
        result = TrainResult(
            status=status,
            message=message,
            steps=step,
            sequences_seen=seen,
            wall_s=wall_s,
            converged_sequences=converged_sequences,
            converged_wall_s=converged_wall_s,
            first_step_s=first_step_s,
            final=final,
            num_parameters=agent.num_parameters(),
            fast_path=fast_path,
            epochs_run=selection.last_epoch if epoch_mode else None,
            best_epoch=selection.epoch if epoch_mode else None,
            best_step=selection.step if selection is not None and not epoch_mode else None,
            selected=dict(selection.metrics) if selection is not None else {},
            warm_up_epochs=warm_up_epochs if epoch_mode else None,
        )
        if out is not None:
            extra = {
                "status": status,
                "steps": step,
                "sequences_seen": seen,
                "train_config": dataclasses.asdict(config),
                **({"best_step": result.best_step} if result.best_step is not None else {}),  # whose weights these are
            }
            save_checkpoint(out / "model.pt", agent, config.task, config.task_kwargs, extra=extra)
            if epoch_mode:
                batching_text = _BATCHING["epochs"].format(per_batch=per_batch)
            else:
                batching_text = _BATCHING[batching] + (
                    " (auto: the core's choice)" if config.batch_lengths == "auto" else ""
                )
            record = {
                **dataclasses.asdict(result),
                "config": dataclasses.asdict(config),
                "batching": batching_text,
                "device": str(device),
                "torch_version": torch.__version__,
                # defaults expanded, so the record says what ran even after a default changes
                "resolved": {
                    "task_config": resolved_task_kwargs(config.task, config.task_kwargs),
                    "agent_config": dataclasses.asdict(agent.config),
                },
                "provenance": environment(str(device)),
                # memtasks train: where each setting came from ("default", "preset", "flag") and the preset
                **({"settings_source": dict(origin["settings_source"]), "preset": origin["preset"]} if origin else {}),
            }
            write_text_atomic(out / "result.json", json.dumps(record, indent=2) + "\n")
        return result


# -- helpers of the loop ---------------------------------------------------------------------------


@contextmanager
def _num_threads(threads: int | None) -> Iterator[None]:
    """Set torch's intra-op threads for the block, then restore them."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit_problems(settings: Any, task: Task, name: str) -> list[tuple[str, str]]:
    """Settings the task ``name`` cannot honour, as ``(setting, why)``: bit outputs, a finite dataset or a
    length range it does not have. ``settings`` is a :class:`TrainConfig` or anything with its fields (the
    experiment files' ``[train]`` table checks itself with this too, before any cell runs)."""
    problems = []
    if settings.epochs is not None and not isinstance(task, Dataset):
        problems.append(("epochs", f"epoch mode needs a task over a finite set of sequences (memtasks.core.Dataset, "
                                   f"e.g. bAbI); {name} is sampled: give steps or minutes instead"))  # fmt: skip
    bits = task.spec.output_kind == "bits"
    if settings.until_bit_errors is not None and not bits:
        problems.append(("until_bit_errors", f"needs a task with bit outputs; {name} has "
                                             f"{task.spec.output_kind!r} outputs"))  # fmt: skip
    if settings.curriculum == "grow":
        if not bits:
            problems.append(("curriculum", f"'grow' needs a task with bit outputs; {name} has "
                                           f"{task.spec.output_kind!r} outputs"))  # fmt: skip
        if not task.min_length <= settings.curriculum_start <= task.max_length:
            problems.append(("curriculum_start", f"must lie in the task's training range [{task.min_length}, "
                                                 f"{task.max_length}], got {settings.curriculum_start}"))  # fmt: skip
    return problems


def _check_fits_task(config: TrainConfig, task: Task) -> None:
    """Raise ``ValueError`` naming the first of :func:`fit_problems`."""
    for setting, why in fit_problems(config, task, config.task):
        raise ValueError(f"{setting}: {why}")


def _with_max_length(config: TrainConfig, task: Task, max_length: int) -> Task:
    """The training task with its ``max_length`` replaced (the curriculum's current range)."""
    if max_length == task.max_length:
        return task
    shorter = make_task(config.task, **{**config.task_kwargs, "max_length": max_length})
    if shorter.spec != task.spec:
        raise ValueError(f"{config.task}: changing max_length changed the task's spec; 'grow' cannot be used")
    return shorter


def _split(config: TrainConfig, split: str) -> Task:
    """Another split of the run's dataset task (the same constructor arguments, ``split`` replaced)."""
    return make_task(config.task, **{**config.task_kwargs, "split": split})


def _init_head(agent: agents.Agent, std: float) -> None:
    """The answer head's weights drawn N(0, std), its bias zero (``TrainConfig.head_init_std``)."""
    with torch.no_grad():
        torch.nn.init.normal_(agent.head.weight, std=std)
        if agent.head.bias is not None:
            torch.nn.init.zeros_(agent.head.bias)


def _sequences_per_batch(config: TrainConfig, task: Task) -> int:
    """Epoch mode: sequences per batch (``batch_size``, or the ``"scored"`` unit converted)."""
    if config.batch_unit == "sequences":
        return config.batch_size
    return max(1, round(config.batch_size * task.num_sequences / task.num_scored))


def _epoch_lr(config: TrainConfig, epoch: int, warming_up: bool) -> float:
    """The learning rate of ``epoch`` (0-based): the warm-up rate, else ``lr`` halved on schedule."""
    if warming_up and config.linear_start_lr is not None:
        return config.linear_start_lr
    if config.lr_halve_epochs is None:
        return config.lr
    return config.lr * 0.5 ** (max(0, epoch - config.lr_halve_from) // config.lr_halve_epochs)


def _epoch_batches(task: Task, per_batch: int, rng: np.random.Generator, epochs: int) -> Iterator[tuple[int, bool, Batch]]:
    """``(epoch, last batch of its epoch?, batch)``: each epoch a fresh permutation of the training
    sequences (drawn when the epoch starts), cut into batches of ``per_batch`` in order."""
    for epoch in range(epochs):
        order = rng.permutation(task.num_sequences)
        for first in range(0, len(order), per_batch):
            yield epoch, first + per_batch >= len(order), task.batch(order[first : first + per_batch])


def _clip(config: TrainConfig, params: list[torch.Tensor], grad_norm: torch.Tensor) -> None:
    """Clip the gradients in place: by value, then by norm (global, or per parameter)."""
    if config.clip_value is not None:
        torch.nn.utils.clip_grad_value_(params, config.clip_value)
    if config.clip_norm is None:
        return
    if config.clip_per_parameter:
        for p in params:
            torch.nn.utils.clip_grad_norm_(p, config.clip_norm)
    elif config.clip_value is not None:  # the norm after value clipping
        torch.nn.utils.clip_grad_norm_(params, config.clip_norm)
    else:
        torch.nn.utils.clip_grads_with_norm_(params, config.clip_norm, grad_norm)


@torch.no_grad()
def _score_split(agent: agents.Agent, task: Task, batch_size: int = 64) -> dict[str, float]:
    """The metrics of every sequence of a dataset split (:func:`benchmarks.evaluate.score_split`)."""
    return score_split(agent, task, batch_size)[0]


_SELECTION_CHUNK = 256
"""Sequences per forward pass when ``select_every`` scores its validation set (memory only: a chunk never
changes a sequence's outputs)."""


def _selection_metric(task: Task, epoch_mode: bool) -> str:
    """What selection minimises: ``error_rate`` for class outputs; for bit outputs ``bit_errors`` in epoch
    mode (as it always has) and ``cost_bits`` with ``select_every`` (the NTM paper's measure, which also
    ranks models on tasks whose targets are random, where bit errors say little: dynamic N-grams)."""
    if task.spec.output_kind != "bits":
        return "error_rate"
    return "bit_errors" if epoch_mode else "cost_bits"


class _Selection:
    """The weights with the best validation score so far (ties: the later check), by epoch or by step."""

    def __init__(self, agent: agents.Agent, metric: str) -> None:
        self.agent = agent
        self.metric = metric
        self.best = math.inf
        self.epoch = 0  # 0: the initial weights
        self.step = 0
        self.last_epoch = 0
        self.last_step = -1
        self.metrics: dict[str, float] = {}
        self.state = copy.deepcopy(agent.state_dict())

    def offer(self, epoch: int | None, step: int, metrics: dict[str, float]) -> None:
        self.last_epoch, self.last_step = epoch, step
        if metrics[self.metric] <= self.best:  # NaN never compares: a NaN score is never kept
            self.best, self.epoch, self.step, self.metrics = metrics[self.metric], epoch, step, metrics
            self.state = copy.deepcopy(self.agent.state_dict())

    def restore(self) -> None:
        self.agent.load_state_dict(self.state)


def _metric_keys(task: Task) -> list[str]:
    """The names ``task.score`` returns, from scoring zeros on a throw-away batch."""
    batch = task.sample(1, np.random.default_rng(0), length=task.min_length)
    zeros = np.zeros(batch.targets.shape[:2] + (task.spec.output_size,), np.float32)
    return list(task.score(zeros, batch))


def _to_tensors(batch: Batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (
        torch.as_tensor(batch.inputs, device=device),
        torch.as_tensor(batch.targets, device=device),
        torch.as_tensor(batch.mask, device=device),
    )


def _validate(
    agent: agents.Agent, task: Task, rng: np.random.Generator, samples: int, batch_size: int
) -> dict[str, float]:
    """Score ``samples`` fresh sequences from the full training range, in chunks of ``batch_size``."""
    return score_batch(agent, task, task.sample(samples, rng), batch_size)


_BATCHING = {
    "same": "same: one length per batch, drawn as a sequence's length (no padding)",
    "mixed": "mixed: each sequence's length drawn, batch padded to the longest",
    "epochs": "epochs: a permutation of the training split per epoch, {per_batch} sequences per batch",
}


def _sample_batch(task: Task, batch_size: int, rng: np.random.Generator, batch_lengths: str) -> Batch:
    """A training batch (see :attr:`TrainConfig.batch_lengths`); ``task.sample`` keeps its meaning."""
    if batch_lengths == "mixed":
        return task.sample(batch_size, rng)
    length = int(task.sample(1, rng).lengths[0])  # the task's own length distribution, datasets included
    return task.sample(batch_size, rng, length=length)


def _synchronized_clock(device: torch.device) -> float:
    """``time.perf_counter()`` after the device's queued work is done (used once, after the first step)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


@dataclass
class _Step:
    """One finished step, its values left on the device until the next log row."""

    step: int
    seen: int
    loss: torch.Tensor
    grad_norm: torch.Tensor
    logits: torch.Tensor
    batch: Batch
    max_length: int
    epoch: int | None = None  # epoch mode: the 1-based epoch the step belongs to


class _DivergenceGuard:
    """Keeps a NaN/inf step from changing the weights without reading anything back per step.

    Each step records, on the device, whether its loss and gradient norm are finite and the first step
    that was not; the weights are copied before the optimizer step and put back after it once any step
    was bad (``torch.where`` on a device flag). The flag is read at log rows only, and the run then stops
    with the weights of the last good step. Costs one copy of the weights per step.
    """

    def __init__(self, params: list[torch.Tensor], device: torch.device) -> None:
        self.params = params
        self.backup = [torch.empty_like(p) for p in params]
        self.healthy = torch.ones((), dtype=torch.bool, device=device)
        self.first_bad = torch.zeros((), dtype=torch.long, device=device)  # 0: every step finite so far

    @torch.no_grad()
    def check(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
        ok = torch.isfinite(loss.detach()) & torch.isfinite(grad_norm)
        self.first_bad = torch.where(self.healthy & ~ok, step, self.first_bad)
        self.healthy = self.healthy & ok
        for backup, p in zip(self.backup, self.params):
            backup.copy_(p)

    @torch.no_grad()
    def undo_if_diverged(self) -> None:
        for backup, p in zip(self.backup, self.params):
            p.copy_(torch.where(self.healthy, p, backup))

    def first_bad_step(self) -> int | None:
        """The first non-finite step, or ``None`` (reads one number back from the device)."""
        return int(self.first_bad.item()) or None


def _before(pending: list[_Step], bad: int) -> tuple[int, int]:
    """Steps and sequences completed before step ``bad`` (one of ``pending``)."""
    entry = next(p for p in pending if p.step == bad)
    return bad - 1, entry.seen - entry.batch.batch_size


def _flush(
    pending: list[_Step], task: Task, bad: int | None, start: float
) -> tuple[dict[str, float], list[dict[str, float]], str]:
    """Read the pending steps back and score them with ``task.score``.

    Returns:
        The ``train.csv`` row over the good steps (those before ``bad``; empty if none), each good step's
        scores, and when ``bad`` is given the message naming that step and its loss / gradient norm.
    """
    message = ""
    losses = torch.stack([p.loss for p in pending]).tolist()
    norms = torch.stack([p.grad_norm for p in pending]).tolist()
    if bad is not None:
        i = next(i for i, p in enumerate(pending) if p.step == bad)
        loss, norm = losses[i], norms[i]
        if not math.isfinite(loss):
            message = f"loss is {loss} at step {bad}; stopped before updating the weights"
        else:
            message = (
                f"gradient norm is {norm} at step {bad} (loss {loss:.6g}); stopped before updating the weights"
            )
        pending, losses, norms = pending[:i], losses[:i], norms[:i]
    if not pending:
        return {}, [], message
    scores = [task.score(p.logits, p.batch) for p in pending]
    means = {
        "loss": float(np.mean(losses)),
        "grad_norm": float(np.mean(norms)),
        **{key: float(np.mean([s[key] for s in scores])) for key in scores[0]},
    }
    row = {
        "step": pending[-1].step,
        "sequences_seen": pending[-1].seen,
        "wall_s": round(time.perf_counter() - start, 3),
        **means,
        "curriculum_max_length": pending[-1].max_length,
    }
    if pending[-1].epoch is not None:
        row["epoch"] = pending[-1].epoch
    return row, scores, message


def _postfix(row: dict[str, float]) -> dict[str, str]:
    keys = ("cost_bits", "bit_errors") if "bit_errors" in row else ("loss", "error_rate")
    postfix = {key: f"{row[key]:.3g}" for key in keys if key in row}
    postfix["max_len"] = str(row["curriculum_max_length"])
    return postfix


class _CsvLog:
    """``train.csv`` written row by row, flushed after each, header first."""

    def __init__(self, path: Path, metric_keys: list[str], epochs: bool = False, valid: bool = False) -> None:
        if valid:  # valid.csv: one row per validation (epoch mode, or sampled mode's select_every)
            columns = ["step", "sequences_seen", "wall_s", *metric_keys]
        else:
            columns = ["step", "sequences_seen", "wall_s", "loss", "grad_norm", *metric_keys, "curriculum_max_length"]
        columns = ["epoch", *columns] if epochs else columns
        self._file = open(path, "w", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=columns, extrasaction="ignore")
        self._writer.writeheader()
        self._file.flush()

    def write(self, row: dict[str, float]) -> None:
        self._writer.writerow(row)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


# -- command line ------------------------------------------------------------------------------------


def parse_kwargs(text: str, name: str = "kwargs") -> dict[str, Any]:
    """Parse ``'{"bits": 8}'`` (JSON) or ``"bits=8,controller=lstm"`` into a dict.

    In the ``key=value`` form each value is read as JSON when it parses (``8``, ``0.5``, ``true``,
    ``null``), else kept as a string; use the JSON form for lists.

    Raises:
        ValueError: malformed text, naming ``name``.
    """
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{name}: invalid JSON {text!r}: {exc}") from None
        if not isinstance(value, dict):
            raise ValueError(f"{name}: expected a JSON object, got {text!r}")
        return value
    result: dict[str, Any] = {}
    for item in text.split(","):
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{name}: expected key=value pairs separated by commas, got {item!r} in {text!r}")
        try:
            result[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            result[key.strip()] = raw.strip()
    return result


def _optional(kind: type) -> Any:
    """An argparse type accepting ``none`` for ``None``."""

    def convert(text: str) -> Any:
        return None if text.lower() == "none" else kind(text)

    convert.__name__ = f"{kind.__name__} or none"
    return convert


_FLAG_NAMES = {"clip_norm": "--clip"}
"""Flags that are not ``--`` + the field's name with dashes."""


def _flag_help(doc: str) -> str:
    """A field's docstring as plain text for ``--help`` (no reST markup; ``%`` escaped for argparse)."""
    doc = re.sub(r":\w+:`~?([^`]*)`", r"\1", doc).replace("``", "")
    return " ".join(doc.split()).replace("%", "%%")


def _build_parser() -> argparse.ArgumentParser:
    """One flag per :class:`TrainConfig` field: its type, choices and help come from the field's annotation
    and docstring, so a new field is a new flag."""
    fields = TypeAdapter(TrainConfig).json_schema()["properties"]  # the docstrings, as descriptions
    docs = {name: spec.get("description", "") for name, spec in fields.items()}
    parser = argparse.ArgumentParser(
        prog="memtasks train",
        description="Train one agent on one task; writes train.csv, model.pt and result.json to --out.",
        argument_default=argparse.SUPPRESS,  # unset flags keep TrainConfig's defaults
    )
    for spec in dataclasses.fields(TrainConfig):
        flag = _FLAG_NAMES.get(spec.name, "--" + spec.name.replace("_", "-"))
        kind, optional, _ = _split_hint(_config_hints()[spec.name])
        help = _flag_help(docs[spec.name])
        options: dict[str, Any] = {"metavar": flag[2:].upper()} if spec.name in _FLAG_NAMES else {}
        if typing.get_origin(kind) is Literal:
            options["choices"] = typing.get_args(kind)
        elif kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is dict:
            help += " On the command line: JSON or key=value,..."
        elif kind is not str:
            options["type"] = _optional(kind) if optional else kind
            help += " On the command line: 'none' for None." if optional else ""
        if spec.name == "agent":
            help += f" Agents: {', '.join(agents.list_agents())}."
        if spec.name == "steps":
            help += " Only --minutes given: no step limit."
        if spec.default is not dataclasses.MISSING:
            help += f" (default: {spec.default})"
        required = spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
        parser.add_argument(flag, dest=spec.name, help=help, required=required, **options)
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--no-progress", action="store_true", default=False, help="hide the progress bar")
    parser.add_argument(
        "--no-preset", action="store_true", default=False,
        help="ignore the recipe registered for this task and agent (benchmarks/presets.py); "
        "without it, a preset's settings apply unless a flag sets them",
    )  # fmt: skip
    return parser


def cli(argv: list[str]) -> int:
    """Train one agent on one task.

    ``memtasks train ...``: exit status 0 for ok/converged, 1 for diverged/failed, 2 for bad arguments.
    """
    from benchmarks.presets import apply_preset  # presets are checked against TrainConfig: imported here

    parser = _build_parser()
    args = vars(parser.parse_args(argv))
    out, progress, use_preset = args.pop("out"), not args.pop("no_progress"), not args.pop("no_preset")
    try:
        for key in ("task_kwargs", "agent_kwargs", "optimizer_kwargs"):
            if key in args:
                args[key] = parse_kwargs(args[key], "--" + key.replace("_", "-"))
        if ("minutes" in args or "epochs" in args) and "steps" not in args:
            args["steps"] = None  # a time budget or an epoch count alone means no step limit
        defaults = {f.name: None for f in dataclasses.fields(TrainConfig)}
        settings, sources, preset = apply_preset(args, defaults, use_preset)
        if preset is not None:
            used = {k: v for k, v in preset.settings.items() if sources[k] == "preset"}
            print(f"preset for {preset.task} / {preset.agent}: {used} (from {preset.source}; --no-preset ignores it)")
        config = TrainConfig(**settings)
        origin = {"settings_source": sources, "preset": dataclasses.asdict(preset) if preset else None}
        result = train(config, out, progress=progress, origin=origin)
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))  # exits with status 2
    print(f"{result.status}: {result.message}")
    print(
        f"steps {result.steps}, sequences {result.sequences_seen}, {result.wall_s:.1f} s, "
        f"{result.num_parameters} parameters; files in {out}"
    )
    if result.final:
        print("last log: " + ", ".join(f"{k}={v:.4g}" for k, v in result.final.items()))
    return 0 if result.status in ("ok", "converged") else 1
