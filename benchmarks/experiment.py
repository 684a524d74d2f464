"""Experiment files: a grid of tasks x agents x seeds, loaded from TOML into typed, validated dataclasses.

An experiment is one TOML file (read with the standard library's ``tomllib``).
Every combination of a task, an agent and a seed is a *cell*; each cell trains
one agent on one task (:func:`benchmarks.train.train`) and then evaluates it over
a sweep of test lengths (:func:`benchmarks.evaluate.evaluate`) with one
evaluation seed shared by every cell, so all agents see the same test sequences.
``memtasks run FILE`` (:mod:`benchmarks.runner`) runs the grid.

A complete example (every key is shown; only ``seeds``, ``[tasks.*]`` and
``[agents.*]`` are required)::

    name = "copy-study"        # default: the file's stem; names the output folder results/<name>
    description = "LSTM vs NTM on Copy, two seeds"
    seeds = [0, 1]             # training seeds; an integer n means [0, 1, ..., n-1]

    [train]                    # the training budget of every cell (defaults shown; see TrainConfig)
    batch_size = 16
    steps = 1000               # optimisation steps; false = no step limit
    minutes = false            # wall-clock limit per cell; false = none. Whichever limit comes first stops;
                               # a budget that sets minutes but never steps has no step limit.
    optimizer = "adam"         # "adam", "rmsprop" (Graves 2013) or "sgd" (agents.optim.OPTIMIZERS)
    optimizer_kwargs = {}      # e.g. { momentum = 0.9 } for sgd
    lr = 3e-3
    clip_norm = 10.0           # clip the global gradient norm; false = off
    clip_value = false         # clip every gradient element to +-value; false = off
    until_bit_errors = false   # stop ("converged") once bit errors per sequence fall below this; false = off
    running_window = 20        # batches in the running bit-error estimate (convergence, curriculum)
    validation_samples = 256   # sequences that confirm convergence (and that select_every scores)
    select_every = false       # sampled mode: score a fixed validation set every this many steps (a multiple
                               #   of log_every) and keep the best weights as model.pt; false = the last
    curriculum = "none"        # "none" or "grow": start at curriculum_start, grow by curriculum_step
    curriculum_start = 1       #   whenever the running bit errors per sequence fall below
    curriculum_step = 1        #   curriculum_threshold, up to the task's max_length
    curriculum_threshold = 1.0
    epochs = false             # epoch mode for dataset tasks (bAbI): passes over the training split, the best
                               #   validation epoch kept; a budget of epochs alone has no step limit
    batch_unit = "sequences"   # epoch mode: batch_size counts "sequences" or "scored" steps (bAbI questions)
    epoch_size = false         # sampled mode: sequences per epoch, so epoch schedules advance; false = none
    lr_halve_epochs = false    # halve lr every this many epochs (needs epochs or epoch_size); false = never
    lr_halve_from = 0          # the epoch from which the halving counts
    linear_start_lr = false    # lr while the core warms up (MemN2N's linear start); false = the schedule's
    warm_up_end = "epochs"     # "epochs" (the core's own count) or "plateau" (validation loss stops improving)
    loss_reduction = "mean"    # "mean" or "sum" of the scored steps' losses
    clip_per_parameter = false # clip each parameter's gradient norm on its own
    head_init_std = false      # re-initialise the answer head N(0, std); false = torch's default
    log_every = 50             # steps between rows of train.csv
    batch_lengths = "auto"     # "same" (one length per batch), "mixed" (padded) or "auto" (the agent's choice)
    compile = true             # the fast path (torch.compile of the core's step); false = eager
    device = "auto"            # "auto" (CUDA if present), "cpu", "cuda", "cuda:1", ...

    [eval]                     # the evaluation sweep of every cell
    lengths = [1, 2, 5, 10, 20, 30, 40]      # or a table: { start = 1, stop = 40, step = 1 } (stop included)
    samples = 64               # test sequences per length
    seed = 12345               # evaluation seed, the same for every cell
    batch_size = 128           # sequences per forward pass (memory only, never the results)

    [tasks."memtasks/Copy-v0"] # one table per task; its keys are the task's constructor arguments
    bits = 8
    min_length = 1             # the training range; the evaluation may go beyond it
    max_length = 20

    [agents.lstm]              # one table per agent; its keys are the agent config's fields
    hidden_size = 256
    num_layers = 3

    [agents.ntm]
    controller_size = 100

    [agents.lstm-small]        # a label of your own: `agent` names the registered agent
    agent = "lstm"
    hidden_size = 64

    # Overrides for some cells: [override.<task>.<agent>], "*" matches every task / agent.
    # Layers apply in this order, later wins: [train]/[eval] (and override."*"."*"),
    # override.<task>."*", override."*".<agent>, override.<task>.<agent>.
    [override."*".ntm]         # any [train] key
    optimizer = "rmsprop"
    lr = 1e-4

    [override."memtasks/Copy-v0".ntm]
    minutes = 2.0
    agent_kwargs = { memory_rows = 64 }     # merged over [agents.ntm]
    task_kwargs = { max_length = 10 }       # merged over [tasks."memtasks/Copy-v0"]
    eval = { samples = 32 }                 # any [eval] key but `seed` (shared by every cell)

Optional values (``steps``, ``minutes``, ``clip_norm``, ``clip_value``,
``until_bit_errors``, ``epochs``, ``epoch_size``, ``lr_halve_epochs``, ``linear_start_lr``,
``head_init_std``) are switched off
with ``false``, as TOML has no null.
Task ids may be written with or without the ``memtasks/`` prefix; they are
stored as ``memtasks/<Name>-vN``. Agent labels and the experiment name become
folder names, so they use letters, digits and ``_ . -`` only.

Loading (:func:`load_experiment`) checks everything before any training starts:
unknown keys, wrong types, out-of-range values, unknown task ids and agents,
constructor arguments a task or agent does not take, and that every task and
agent can actually be built. A problem raises :class:`ExperimentError`, whose
message names the file, the key path (``train.lr``, ``agents.ntm.memory_rows``)
and what is allowed.

The schema is pydantic models (strict types, unknown keys refused) built from the
annotations of :class:`benchmarks.train.TrainConfig` (``[train]``; :data:`TrainSettings`
is generated from it), :class:`EvalSettings`, task constructors and agent configs;
pydantic's errors are reworded into the one-line messages above (:func:`_explain`).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import json
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag
from pydantic import ValidationError, ValidationInfo, create_model, field_validator, model_validator
from pydantic_core import PydanticCustomError

from benchmarks.train import TrainConfig, fit_problems

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 with the tomli backport
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = [
    "AgentEntry",
    "Cell",
    "EvalSettings",
    "Experiment",
    "ExperimentError",
    "Override",
    "TaskEntry",
    "TrainSettings",
    "load_experiment",
    "path_safe",
    "short_task_id",
]

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]+$")
_WILDCARD = "*"


class ExperimentError(ValueError):
    """An experiment file is malformed; the message names the file, the key path and what is allowed.

    Attributes:
        path: The experiment file.
        key: The dotted key path of the offending value (``""`` for the whole file).
    """

    def __init__(self, path: str | Path, key: str, message: str) -> None:
        self.path = str(path)
        self.key = key
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + message)


# -- the typed schema -------------------------------------------------------------------------------

PER_CELL = ("task", "agent", "seed", "task_kwargs", "agent_kwargs", "threads")
"""TrainConfig fields that are not ``[train]`` keys: the grid decides the task, the agent, the seed and their
kwargs, the runner decides ``threads``."""


_TRAIN_CONFIG_HINTS = typing.get_type_hints(TrainConfig, include_extras=True)
TrainSettings = dataclasses.make_dataclass(
    "TrainSettings",
    [
        (f.name, _TRAIN_CONFIG_HINTS[f.name], dataclasses.field(default=f.default, default_factory=f.default_factory))
        for f in dataclasses.fields(TrainConfig)
        if f.name not in PER_CELL
    ],
    frozen=True,
    namespace={
        "__module__": __name__,  # pickled by reference: cells go to worker processes
        "__doc__": "The training budget and optimiser of a cell, the ``[train]`` table: TrainConfig's fields but "
        "PER_CELL, with their annotations (bounds, choices) and defaults (see TrainConfig for what each does).",
    },
)


class _Table(BaseModel):
    """Base of the models of an experiment file's tables.

    Strict types (no ``"8"`` or ``8.0`` for an integer; an integer is a number), finite numbers, unknown keys
    refused, and what TOML lacks filled in: ``false`` switches an optional value off (TOML has no null), and a
    list fills a tuple.
    """

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True)

    @model_validator(mode="before")
    @classmethod
    def _from_toml(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = _fields_by_key(cls)
        out = {}
        for key, value in data.items():
            hint = fields[key].annotation if key in fields else Any
            args = typing.get_args(hint)
            if value is False and type(None) in args and bool not in args:
                value = None
            elif isinstance(value, list) and tuple in {typing.get_origin(h) for h in (hint, *args)}:
                value = tuple(value)
            out[key] = value
        return out


def _problem(message: str) -> PydanticCustomError:
    """A validation error whose message is ours, word for word."""
    return PydanticCustomError("experiment", "{message}", {"message": message})


class _Range(_Table):
    """A range of lengths, ``{ start = 1, stop = 40, step = 1 }``: start, start + step, ... up to stop."""

    start: Annotated[int, Field(ge=1)]
    """the first length, an integer >= 1"""
    stop: int
    """the last length (included), an integer >= start"""
    step: Annotated[int, Field(ge=1)] = 1
    """the increment, an integer >= 1"""

    @field_validator("stop")
    @classmethod
    def _not_before_start(cls, stop: int, info: ValidationInfo) -> int:
        if "start" in info.data and stop < info.data["start"]:
            raise PydanticCustomError("greater_than_equal", "must be >= {ge}", {"ge": info.data["start"]})
        return stop


def _lengths(value: list[int] | _Range) -> tuple[int, ...]:
    lengths = list(range(value.start, value.stop + 1, value.step)) if isinstance(value, _Range) else value
    if not lengths or lengths != sorted(set(lengths)):
        raise _problem(f"must be a non-empty list of distinct lengths in ascending order, got {lengths}")
    return tuple(lengths)


Lengths = Annotated[
    Union[Annotated[list[Annotated[int, Field(ge=1)]], Tag("list")], Annotated[_Range, Tag("range")]],
    Discriminator(lambda value: "range" if isinstance(value, dict) else "list"),
    AfterValidator(_lengths),
]
"""Test lengths: a list (ascending, distinct, >= 1) or a :class:`_Range` table; a tuple once checked."""


@dataclass(frozen=True)
class EvalSettings:
    """The evaluation sweep of a cell: the ``[eval]`` table (the annotations carry the bounds)."""

    lengths: Lengths = ()
    """Test lengths (the task's length parameter), ascending and distinct."""
    samples: Annotated[int, Field(ge=1)] = 64
    """Test sequences per length."""
    seed: Annotated[int, Field(ge=0)] = 12345
    """Evaluation seed; every cell of the experiment uses it, so all agents see the same test sequences."""
    batch_size: Annotated[int, Field(ge=1)] = 128
    """Sequences per forward pass during evaluation (memory use only; results do not depend on it)."""
    grid: dict[str, list[Annotated[int, Field(ge=1)]]] = field(default_factory=dict)
    """A second test axis, for a task with a sample option (``task.sample_options``), e.g. ``{ repeats = [1, 5,
    10, 15, 20] }`` for repeat copy: every test length is also scored at each value, in rows whose metric is
    ``<metric>@<option>=<value>`` (``benchmarks.evaluate.evaluate_grid``). One option at most."""


@dataclass(frozen=True)
class TaskEntry:
    """One ``[tasks."<id>"]`` table."""

    task_id: str
    """Canonical id, ``"memtasks/<Name>-vN"``."""
    kwargs: dict[str, Any]
    """Constructor arguments of the task (``make_task(task_id, **kwargs)``)."""


@dataclass(frozen=True)
class AgentEntry:
    """One ``[agents.<label>]`` table."""

    label: str
    """The name this agent has in the results (the table's name)."""
    agent: str
    """The registered agent (``agents.list_agents()``); the label unless the table sets ``agent``."""
    kwargs: dict[str, Any]
    """Fields of the agent's config dataclass."""


@dataclass(frozen=True)
class Override:
    """One ``[override.<task>.<agent>]`` table; ``"*"`` matches every task or agent."""

    task: str
    """Canonical task id, or ``"*"``."""
    agent: str
    """Agent label, or ``"*"``."""
    train: dict[str, Any]
    """Checked ``[train]`` keys to replace."""
    eval: dict[str, Any]
    """Checked ``[eval]`` keys to replace (never ``seed``)."""
    task_kwargs: dict[str, Any]
    """Task constructor arguments merged over the task's table."""
    agent_kwargs: dict[str, Any]
    """Agent config fields merged over the agent's table."""


@dataclass(frozen=True)
class SuiteTestSet:
    """A suite's frozen test set of one task (``[suite.tasks."<task>"]``), its file checked when loaded."""

    suite: str
    """The suite's name."""
    version: int
    """The suite's version."""
    path: str
    """The ``.npz`` file (absolute)."""
    sha256: str
    """Its SHA-256, as the suite records it."""
    in_distribution: tuple[int, ...]
    """Test lengths inside the training range."""
    out_of_distribution: tuple[int, ...]
    """Test lengths beyond it."""

    def describe(self) -> dict[str, Any]:
        """What identifies the protocol (no local path: the same suite on another machine matches)."""
        return {
            "suite": self.suite, "version": self.version, "file": Path(self.path).name, "sha256": self.sha256,
            "in_distribution": list(self.in_distribution), "out_of_distribution": list(self.out_of_distribution),
        }


@dataclass(frozen=True)
class Cell:
    """One (task, agent, seed) of an experiment, fully resolved: what to train and how to evaluate it."""

    experiment: str
    """Name of the experiment the cell belongs to."""
    task: str
    """Canonical task id, ``"memtasks/<Name>-vN"``."""
    agent: str
    """Agent label (the ``[agents.<label>]`` table)."""
    agent_name: str
    """Registered agent the label builds."""
    seed: int
    """Training seed."""
    task_kwargs: dict[str, Any]
    """Task constructor arguments after overrides."""
    agent_kwargs: dict[str, Any]
    """Agent config fields after overrides."""
    train: TrainSettings
    """Training budget after overrides."""
    eval: EvalSettings
    """Evaluation sweep after overrides."""
    train_range: tuple[int, int]
    """The task's training range ``(min_length, max_length)`` as built (defaults included)."""
    num_parameters: int
    """Parameter count of the agent built for this task (known before training)."""
    lr_grid: bool = False
    """Whether the experiment has a learning-rate grid (``lrs``); the cell's name then carries its lr."""
    test_set: SuiteTestSet | None = None
    """The frozen test set of the cell's task, when the experiment is a suite (``[suite]``)."""

    @property
    def name(self) -> str:
        """Folder name of the cell, ``<task>__<agent>__seed<k>`` (task without its namespace), with
        ``__lr<lr>`` before the seed in an experiment with a learning-rate grid."""
        lr = f"__lr{self.train.lr:g}" if self.lr_grid else ""
        return f"{path_safe(short_task_id(self.task))}__{self.agent}{lr}__seed{self.seed}"

    @functools.cached_property
    def _identity_text(self) -> str:
        """:meth:`identity` as canonical JSON, built once per cell (the fingerprint and records read it)."""
        from benchmarks.provenance import cell_identity, identity_json

        evaluation = {**dataclasses.asdict(self.eval), "lengths": list(self.eval.lengths)}
        if not evaluation["grid"]:  # cells recorded before the setting existed had none
            del evaluation["grid"]
        if self.test_set is not None:  # only then: the fingerprints of other experiments stay as they were
            evaluation["test_set"] = self.test_set.describe()
        identity = cell_identity(
            self.task, self.task_kwargs, self.agent_name, self.agent_kwargs, self.seed,
            _identity_train(self.train), evaluation,
        )
        return identity_json(identity)

    def identity(self) -> dict[str, Any]:
        """Everything that determines the cell's results, resolved (:func:`benchmarks.provenance.cell_identity`):
        task and agent configuration with defaults expanded, seed, settings, and the code digest of the task's
        and the agent's modules. Not the experiment's name or threads. A fresh dict, in the form a record
        holds it after a JSON round trip (lists, not tuples), so it compares equal to a recorded identity."""
        return json.loads(self._identity_text)

    def fingerprint(self) -> str:
        """Hash of :meth:`identity`.

        A finished cell whose recorded fingerprint differs was produced by another version of the experiment
        file, of a default, or of the task's or agent's code, so the runner redoes it and says what changed.
        """
        from benchmarks.provenance import fingerprint_of

        return fingerprint_of(self._identity_text)

    def is_current(self, record: dict[str, Any] | None) -> bool:
        """Whether a finished cell's record stands for this cell as the file and the code define it now: its
        fingerprint, or one that only declared behaviour-preserving code changes separate from it
        (:func:`benchmarks.provenance.is_current`, ``benchmarks/code_changes.toml``)."""
        from benchmarks.provenance import is_current

        return is_current(record, self.fingerprint())

    def train_config(self, threads: int | None = None) -> Any:
        """The ``benchmarks.train.TrainConfig`` of this cell.

        Args:
            threads: Torch threads for the training process; ``None`` leaves torch's default.
        """
        return TrainConfig(
            task=self.task,
            agent=self.agent_name,
            seed=self.seed,
            task_kwargs=dict(self.task_kwargs),
            agent_kwargs=dict(self.agent_kwargs),
            threads=threads,
            **dataclasses.asdict(self.train),
        )

    def to_json(self) -> dict[str, Any]:
        """Plain-data description of the cell (for ``experiment.json`` and ``cell.json``)."""
        return {
            "cell": self.name,
            "experiment": self.experiment,
            "task": self.task,
            "agent": self.agent,
            "agent_name": self.agent_name,
            "seed": self.seed,
            "task_kwargs": dict(self.task_kwargs),
            "agent_kwargs": dict(self.agent_kwargs),
            "train": dataclasses.asdict(self.train),
            "eval": {**dataclasses.asdict(self.eval), "lengths": list(self.eval.lengths)},
            "train_range": list(self.train_range),
            "num_parameters": self.num_parameters,
            "fingerprint": self.fingerprint(),
            "identity": self.identity(),
            "lr": self.train.lr,
            **({"suite": self.test_set.describe()} if self.test_set is not None else {}),
        }


def _identity_train(settings: TrainSettings) -> dict[str, Any]:
    """The ``[train]`` settings that determine a cell's numbers: all of them, but the settings at their
    :data:`benchmarks.train.NEUTRAL` value (which runs recorded before those settings existed had)."""
    from benchmarks.train import NEUTRAL

    return {k: v for k, v in dataclasses.asdict(settings).items() if not (k in NEUTRAL and v == NEUTRAL[k])}


@dataclass(frozen=True)
class Experiment:
    """A loaded, validated experiment file."""

    name: str
    """Experiment name (default: the file's stem); results go to ``results/<name>``."""
    description: str
    """Free text."""
    path: str
    """The file it was loaded from (``""`` if built in code)."""
    seeds: tuple[int, ...]
    """Training seeds."""
    train: TrainSettings
    """The ``[train]`` table."""
    eval: EvalSettings
    """The ``[eval]`` table (its ``lengths`` may be empty when every task overrides them)."""
    tasks: tuple[TaskEntry, ...]
    """The ``[tasks.*]`` tables, in file order."""
    agents: tuple[AgentEntry, ...]
    """The ``[agents.*]`` tables, in file order."""
    overrides: tuple[Override, ...]
    """The ``[override.*.*]`` tables, in file order."""
    cells: tuple[Cell, ...]
    """Every (task, agent, seed), resolved; ordered task-major, then agent, then seed."""


# -- loading ------------------------------------------------------------------------------------------


def _canonical_task(task_id: str) -> str:
    """``"Copy-v0"`` or ``"memtasks/Copy-v0"`` -> ``"memtasks/Copy-v0"``."""
    return task_id if task_id.startswith("memtasks/") else f"memtasks/{task_id}"


def short_task_id(task_id: str) -> str:
    """``"memtasks/Copy-v0"`` -> ``"Copy-v0"``."""
    return task_id.split("/", 1)[1] if "/" in task_id else task_id


def path_safe(text: str) -> str:
    """``text`` with every character but letters, digits and ``_ . -`` replaced by ``_`` (for folder names)."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", text)


def load_experiment(path: str | Path, overrides: list[str] | None = None) -> Experiment:
    """Read, check and resolve an experiment file (schema: the module docstring).

    Args:
        path: A ``.toml`` file.
        overrides: ``"dotted.key=VALUE"`` strings (VALUE in TOML syntax) that replace keys of the file before
            it is checked, e.g. ``["train.steps=300", "seeds=[0, 1]"]`` (``memtasks run --set``).

    Returns:
        The :class:`Experiment`, with every cell resolved and every task and agent test-built.

    Raises:
        ExperimentError: the file cannot be read or parsed, or a key is unknown, of the
            wrong type, out of range, or names an unknown task or agent.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ExperimentError(path, "", "no such experiment file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError(path, "", f"not valid TOML: {exc}") from None
    for text in overrides or []:
        _apply_override(path, data, text)
    return _Loader(path).experiment(data)


def _apply_override(path: Path, data: dict[str, Any], text: str) -> None:
    """Set ``data[a][b]... = value`` from ``"a.b=value"`` (value parsed as TOML)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ExperimentError(path, "--set", f"expected KEY=VALUE (e.g. train.steps=300), got {text!r}")
    try:
        value = tomllib.loads(f"value = {raw.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        raise ExperimentError(path, key, f"--set value {raw.strip()!r} is not a TOML value (strings need quotes)")
    *parents, last = [part.strip('"') for part in re.findall(r'"[^"]*"|[^.]+', key)]
    table = data
    for part in parents:
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise ExperimentError(path, key, f"--set: {part!r} is not a table")
    table[last] = value


def _key(*parts: str) -> str:
    """Dotted TOML key path, quoting parts that are not bare keys (``tasks."memtasks/Copy-v0".bits``)."""
    return ".".join(p if re.fullmatch(r"[A-Za-z0-9_\-]+", p) else json.dumps(p) for p in parts)


# -- the models of the file's tables ------------------------------------------------------------------


def _fields_by_key(model: type[BaseModel]) -> dict[str, Any]:
    """A model's fields by the key they read (their alias, else their name)."""
    return {info.alias or name: info for name, info in model.model_fields.items()}


def _table_model(name: str, hints: Mapping[str, Any]) -> type[_Table]:
    """A :class:`_Table` model with one optional field per ``hints`` item, read from the item's key (an alias:
    any string may be a key, even one that is not an identifier or that names a BaseModel attribute)."""
    fields: dict[str, Any] = {f"f{i}": (hint, Field(None, alias=key)) for i, (key, hint) in enumerate(hints.items())}
    return create_model(name, __base__=_Table, **fields)


def _values(model: BaseModel | None, table: Mapping[str, Any]) -> dict[str, Any]:
    """The checked values of the keys ``table`` sets, in the table's order."""
    if model is None:
        return {}
    names = {info.alias or name: name for name, info in type(model).model_fields.items()}
    return {key: getattr(model, names[key]) for key in table}


_TRAIN_HINTS = {f.name: f.type for f in dataclasses.fields(TrainSettings)}
_EVAL_HINTS = typing.get_type_hints(EvalSettings, include_extras=True)
_Train = _table_model("train", _TRAIN_HINTS)
_Eval = _table_model("eval", _EVAL_HINTS)
_Override = _table_model(
    "override",
    {
        **_TRAIN_HINTS,
        "eval": _table_model("eval", {k: v for k, v in _EVAL_HINTS.items() if k != "seed"}),
        "task_kwargs": dict[str, Any],
        "agent_kwargs": dict[str, Any],
    },
)


def _folder_name(name: str) -> str:
    if not _NAME_PATTERN.match(name):
        raise _problem(f"must use letters, digits and _ . - only (it names a folder), got {name!r}")
    return name


def _seed_count(value: Any) -> Any:
    """``seeds = n`` means ``[0, 1, ..., n-1]``."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise PydanticCustomError("greater_than_equal", "must be >= {ge}", {"ge": 1})
        return list(range(value))
    return value


def _distinct(seeds: list[int]) -> list[int]:
    if not seeds or len(set(seeds)) != len(seeds):
        raise _problem(f"must be a non-empty list of distinct integers >= 0, got {seeds}")
    return seeds


def _distinct_lrs(lrs: list[float] | None) -> list[float] | None:
    if lrs is not None and (not lrs or len(set(lrs)) != len(lrs)):
        raise _problem(f"must be a non-empty list of distinct learning rates > 0, got {lrs}")
    return lrs


class _SuiteTask(_Table):
    """One task of a ``[suite]``: its frozen test set and which of its lengths are in and out of distribution."""

    file: str
    """the test set (.npz), relative to the experiment file's folder"""
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    """the file's SHA-256 (64 lowercase hex digits); a file with another checksum is refused"""
    in_distribution: list[Annotated[int, Field(ge=1)]]
    """test lengths inside the training range"""
    out_of_distribution: list[Annotated[int, Field(ge=1)]]
    """test lengths beyond it (the OOD score averages over these)"""


class _Suite(_Table):
    """The ``[suite]`` table: a named, versioned protocol with frozen test sets."""

    name: Annotated[str, AfterValidator(_folder_name)]
    """the suite's name, e.g. memtasks-v1"""
    version: Annotated[int, Field(ge=1)]
    """its version; only cells of one suite version and protocol are ranked together"""
    tasks: dict[str, _SuiteTask]
    """per task id, its test set"""


class _File(_Table):
    """The top level of an experiment file (the module docstring shows every key)."""

    name: Annotated[str, AfterValidator(_folder_name)]
    """the experiment's name (default: the file's stem)"""
    description: str = ""
    seeds: Annotated[list[Annotated[int, Field(ge=0)]], BeforeValidator(_seed_count), AfterValidator(_distinct)]
    """a list of training seeds (seeds = [0, 1]) or a count (seeds = 2)"""
    train: _Train = Field(default_factory=_Train)
    eval: _Eval = Field(default_factory=_Eval)
    tasks: dict[str, dict[str, Any]] = {}
    agents: dict[str, dict[str, Any]] = {}
    override: dict[str, dict[str, dict[str, Any]]] = {}
    lrs: Annotated[list[Annotated[float, Field(gt=0)]] | None, AfterValidator(_distinct_lrs)] = None
    """a learning-rate grid: every cell is run at each of these (its train.lr), named ...__lr<lr>__seed<k>"""
    suite: _Suite | None = None


@functools.cache
def _kwargs_model(target: Any) -> type[_Table] | None:
    """The model of a task factory's keyword arguments or an agent config dataclass's fields.

    ``None`` when they cannot be listed (``**kwargs``, no signature): the constructor checks them when built.
    A hint pydantic cannot check becomes ``Any`` (the constructor checks that value).
    """
    if dataclasses.is_dataclass(target):
        names = [f.name for f in dataclasses.fields(target)]
    else:
        try:
            params = inspect.signature(target).parameters
        except (TypeError, ValueError):  # a builtin or C factory
            return None
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return None
        names = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
        target = target.__init__ if isinstance(target, type) else target
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # an unresolvable forward reference (or a partial): leave the types to the constructor
        hints = {}
    try:
        return _table_model("kwargs", {n: hints.get(n, Any) for n in names})
    except Exception:  # a type pydantic has no schema for
        return _table_model("kwargs", dict.fromkeys(names, Any))


# -- pydantic's errors, in our words --------------------------------------------------------------------


def _describe(hint: Any) -> str:
    """Human words for a type hint, for error messages."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        return _describe(args[0])
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        text = " or ".join(_describe(a) for a in inner)
        return text + " (or false to switch it off)" if len(inner) < len(args) else text
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (tuple, list):
        return f"a list of {_describe(args[0]).split(' ', 1)[-1]}s" if args else "a list"
    if origin is dict or hint is dict or (isinstance(hint, type) and issubclass(hint, BaseModel)):
        return "a table"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(hint, str(hint))


def _model_in(hint: Any) -> type[BaseModel] | None:
    """The model a field's hint validates its table with, if any."""
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return hint
    return next((m for m in map(_model_in, typing.get_args(hint)) if m is not None), None)


_BOUNDS = {
    "greater_than_equal": ("ge", ">="),
    "greater_than": ("gt", ">"),
    "less_than_equal": ("le", "<="),
    "less_than": ("lt", "<"),
}
"""pydantic's bound errors: the key of the bound in the error's ``ctx``, and its sign."""


def _explain(
    exc: ValidationError, model: type[BaseModel], table: Any, prefix: tuple[str, ...], where: str, also: tuple[str, ...]
) -> tuple[str, str]:
    """One of pydantic's errors as ``(key path, what is allowed)``; an unknown key first, as it may be a typo."""
    errors = exc.errors(include_url=False)
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    kind, loc = error["type"], error["loc"]
    # walk the table and the models along the error's location (it also holds union tags and list indices)
    parts, value, owner, info = list(prefix), table, model, None
    for part in loc:
        if isinstance(value, dict) and part in value:
            parts.append(part)
            value = value[part]
        fields = _fields_by_key(owner) if owner is not None else {}
        if part in fields:
            info = fields[part]
            owner = _model_in(info.annotation)
    key = _key(*parts)
    if kind == "extra_forbidden":
        allowed = sorted(_fields_by_key(owner)) + (list(also) if owner is model else [])
        close = difflib.get_close_matches(str(parts[-1]), allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        scope = where if owner is model else f"in [{_key(*parts[:-1])}]"
        return key, f"unknown key{hint}; allowed keys {scope}: {', '.join(allowed)}"
    if kind == "missing":
        wanted = (info.description or _describe(info.annotation)) if info is not None else "a value"
        return _key(*parts, str(loc[-1])), f"missing; give {wanted}"
    if kind in _BOUNDS:
        name, op = _BOUNDS[kind]
        return key, f"must be {op} {error['ctx'][name]}, got {error['input']!r}"
    if kind == "experiment":
        return key, error["msg"]
    if kind in ("dict_type", "model_type"):
        return key, f"must be a table ([{key}] or {{ ... }}), got {value!r} ({type(value).__name__})"
    expected = _describe(info.annotation) if info is not None else "valid"
    return key, f"must be {expected}, got {value!r} ({type(value).__name__})"


# -- loading ------------------------------------------------------------------------------------------------


class _Loader:
    """Checks one parsed file; every error goes through :meth:`fail` so it names the file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, message: str) -> typing.NoReturn:
        raise ExperimentError(self.path, key, message)

    def check(
        self, model: type[BaseModel], table: Any, prefix: tuple[str, ...] = (), where: str = "", also: tuple = ()
    ) -> Any:
        """``model.model_validate(table)``, or fail naming the key (``prefix`` + its path in ``table``)."""
        try:
            return model.model_validate(table)
        except ValidationError as exc:
            self.fail(*_explain(exc, model, table, prefix, where or f"in [{_key(*prefix)}]", also))

    def kwargs(
        self, target: Any, table: dict[str, Any], prefix: tuple[str, ...], where: str, also: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """Check a task's constructor arguments or an agent's config fields (``target``: the factory / config)."""
        model = _kwargs_model(target)
        return dict(table) if model is None else _values(self.check(model, table, prefix, where, also), table)

    # -- the sections ---------------------------------------------------------------------------
    def experiment(self, data: dict[str, Any]) -> Experiment:
        top = self.check(_File, {"name": self.path.stem, **data}, where="at the top level")
        train = _values(top.train, data.get("train", {}))
        evaluation = _values(top.eval, data.get("eval", {}))
        tasks = self.tasks(top.tasks)
        agents = self.agents(top.agents)
        overrides = self.overrides(top.override, tasks, agents)
        base_train = _train_settings(train, "steps" in train)
        base_eval = EvalSettings(**evaluation)
        built = _BuildCache(self)
        seeds = tuple(top.seeds)
        test_sets = self.suite(top.suite, tasks) if top.suite is not None else {}
        cells = []
        for task in tasks:
            for agent in agents:
                cells.extend(self.cells(top.name, seeds, task, agent, train, evaluation, overrides, built,
                                        lrs=top.lrs, test_set=test_sets.get(task.task_id)))
        return Experiment(
            name=top.name,
            description=top.description,
            path=str(self.path),
            seeds=seeds,
            train=base_train,
            eval=base_eval,
            tasks=tuple(tasks),
            agents=tuple(agents),
            overrides=tuple(overrides),
            cells=tuple(cells),
        )

    def tasks(self, table: dict[str, dict[str, Any]]) -> list[TaskEntry]:
        import memtasks

        if not table:
            self.fail("tasks", 'no task; add a table per task, e.g. [tasks."memtasks/Copy-v0"]')
        entries: dict[str, TaskEntry] = {}
        known = ", ".join(f"memtasks/{t}" for t in memtasks.list_tasks())
        for raw_id, kwargs in table.items():
            key = _key("tasks", raw_id)
            try:
                info = memtasks.task_info(raw_id)
            except (ValueError, TypeError):
                close = difflib.get_close_matches(raw_id.removeprefix("memtasks/"), memtasks.list_tasks(), n=1)
                hint = f" (did you mean 'memtasks/{close[0]}'?)" if close else ""
                self.fail(key, f"unknown task id {raw_id!r}{hint}; known task ids: {known}")
            task_id = f"memtasks/{info.task_id}"
            if task_id in entries:
                self.fail(key, f"task {task_id} appears twice (with and without the memtasks/ prefix)")
            kwargs = self.task_kwargs(task_id, kwargs, ("tasks", raw_id))
            entries[task_id] = TaskEntry(task_id, kwargs)
        return list(entries.values())

    def task_kwargs(self, task_id: str, table: dict[str, Any], prefix: tuple[str, ...]) -> dict[str, Any]:
        import memtasks

        factory = memtasks.task_info(task_id).factory
        return self.kwargs(factory, table, prefix, f"for task {task_id} (its constructor arguments)")

    def agents(self, table: dict[str, dict[str, Any]]) -> list[AgentEntry]:
        import agents as agent_registry

        if not table:
            self.fail("agents", "no agent; add a table per agent, e.g. [agents.lstm]")
        entries = []
        known = agent_registry.list_agents()
        for label, raw in table.items():
            key = _key("agents", label)
            raw = dict(raw)
            if not _NAME_PATTERN.match(label) or label == _WILDCARD:
                self.fail(key, f"an agent label uses letters, digits and _ . - only (it names folders), got {label!r}")
            name = raw.pop("agent", label)
            if not isinstance(name, str):
                self.fail(_key("agents", label, "agent"), f"must be a string, got {name!r} ({type(name).__name__})")
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                where = key if name == label else _key("agents", label, "agent")
                self.fail(where, f"unknown agent {name!r}{hint}; known agents: {', '.join(known)}")
            entries.append(AgentEntry(label, name, self.agent_kwargs(name, raw, ("agents", label), also=("agent",))))
        return entries

    def agent_kwargs(
        self, name: str, table: dict[str, Any], prefix: tuple[str, ...], also: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        import agents as agent_registry

        config_cls = agent_registry.agent_info(name).config_cls
        return self.kwargs(config_cls, table, prefix, f"for agent {name!r} (its config fields)", also)

    def overrides(
        self, table: dict[str, dict[str, dict[str, Any]]], tasks: list[TaskEntry], agents: list[AgentEntry]
    ) -> list[Override]:
        import memtasks

        task_ids = {t.task_id: t for t in tasks}
        labels = {a.label: a for a in agents}
        out = []
        for raw_task, per_agent in table.items():
            key = _key("override", raw_task)
            if raw_task == _WILDCARD:
                task_id = _WILDCARD
            else:
                try:
                    task_id = f"memtasks/{memtasks.task_info(raw_task).task_id}"
                except (ValueError, TypeError):
                    task_id = raw_task
                if task_id not in task_ids:
                    allowed = ", ".join([*(json.dumps(t) for t in task_ids), '"*"'])
                    self.fail(key, f"names a task that is not in [tasks]; allowed: {allowed}")
            for label, body in per_agent.items():
                sub = ("override", raw_task, label)
                if label != _WILDCARD and label not in labels:
                    allowed = ", ".join([*labels, "*"])
                    self.fail(_key(*sub), f"names an agent that is not in [agents]; allowed: {allowed}")
                if isinstance(body.get("eval"), dict) and "seed" in body["eval"]:
                    message = "the evaluation seed is shared by every cell; set it in [eval] only"
                    self.fail(_key(*sub, "eval", "seed"), message)
                checked = self.check(_Override, body, sub)
                train = _values(checked, body)
                eval_part = train.pop("eval", None)
                task_kw, agent_kw = train.pop("task_kwargs", {}), train.pop("agent_kwargs", {})
                if task_kw and task_id == _WILDCARD:
                    self.fail(_key(*sub, "task_kwargs"), 'task_kwargs need a named task, not "*"')
                if task_kw:
                    task_kw = self.task_kwargs(task_id, task_kw, (*sub, "task_kwargs"))
                if agent_kw and label == _WILDCARD:
                    self.fail(_key(*sub, "agent_kwargs"), 'agent_kwargs need a named agent, not "*"')
                if agent_kw:
                    agent_kw = self.agent_kwargs(labels[label].agent, agent_kw, (*sub, "agent_kwargs"))
                evaluation = _values(eval_part, body.get("eval", {}))
                out.append(Override(task_id, label, train, evaluation, dict(task_kw), dict(agent_kw)))
        return out

    def suite(self, suite: _Suite, tasks: list[TaskEntry]) -> dict[str, SuiteTestSet]:
        """Check the ``[suite]`` table against the tasks and the files (checksums, lengths); per task id its set."""
        from benchmarks.testsets import TestSetError, load_test_set

        entries = {_canonical_task(k): (k, v) for k, v in suite.tasks.items()}
        ids = [t.task_id for t in tasks]
        for task_id in ids:
            if task_id not in entries:
                self.fail("suite.tasks", f'task {task_id} has no frozen test set; add [suite.tasks."{task_id}"]')
        out = {}
        for task_id, (key, entry) in entries.items():
            where = _key("suite", "tasks", key)
            if task_id not in ids:
                self.fail(where, f"{task_id} is not one of the experiment's tasks ({', '.join(ids)})")
            path = (self.path.parent / entry.file).resolve()
            try:
                frozen = load_test_set(path, entry.sha256)
            except TestSetError as exc:
                self.fail(f"{where}.file", str(exc))
            wanted = set(entry.in_distribution) | set(entry.out_of_distribution)
            missing = sorted(wanted - set(frozen.lengths))
            if missing:
                self.fail(where, f"lengths {missing} are not in {entry.file} (it has {frozen.lengths})")
            out[task_id] = SuiteTestSet(suite.name, suite.version, str(path), entry.sha256,
                                        tuple(entry.in_distribution), tuple(entry.out_of_distribution))
        return out

    def cells(
        self,
        experiment: str,
        seeds: tuple[int, ...],
        task: TaskEntry,
        agent: AgentEntry,
        train: dict[str, Any],
        evaluation: dict[str, Any],
        overrides: list[Override],
        built: _BuildCache,
        lrs: list[float] | None = None,
        test_set: SuiteTestSet | None = None,
    ) -> list[Cell]:
        """Resolve the cells of one (task, agent) by applying the matching overrides in precedence order."""
        layers = [
            o
            for rank in ((task.task_id, _WILDCARD), (_WILDCARD, agent.label), (task.task_id, agent.label))
            for o in overrides
            if (o.task, o.agent) == rank
        ]
        # "*"."*" is the same as [train]/[eval]: apply it first
        layers = [o for o in overrides if (o.task, o.agent) == (_WILDCARD, _WILDCARD)] + layers
        train_kw, eval_kw = dict(train), dict(evaluation)
        task_kw, agent_kw = dict(task.kwargs), dict(agent.kwargs)
        steps_given = "steps" in train
        for layer in layers:
            train_kw.update(layer.train)
            eval_kw.update(layer.eval)
            task_kw.update(layer.task_kwargs)
            agent_kw.update(layer.agent_kwargs)
            steps_given = steps_given or "steps" in layer.train
        where = f"the cells of task {task.task_id} x agent {agent.label}"
        settings = _train_settings(train_kw, steps_given)
        if settings.steps is None and settings.minutes is None and settings.epochs is None:
            self.fail("train.steps", f"{where} have no budget: steps, minutes and epochs are all off; set one of them")
        if test_set is not None and not eval_kw.get("lengths"):  # a suite: the frozen lengths
            eval_kw["lengths"] = tuple(sorted(set(test_set.in_distribution) | set(test_set.out_of_distribution)))
        lengths = tuple(eval_kw.get("lengths", ()))
        if not lengths and settings.epochs is None:  # epoch mode (datasets) scores whole splits instead
            self.fail(
                "eval.lengths",
                f"{where} have no evaluation lengths; set eval.lengths, or "
                f"{_key('override', task.task_id, '*')}.eval.lengths",
            )
        task_obj = built.task(task.task_id, task_kw)
        if lengths and lengths[0] < task_obj.min_allowed_length:
            self.fail(
                "eval.lengths",
                f"{where}: {task.task_id} supports lengths >= {task_obj.min_allowed_length}, got {lengths[0]}",
            )
        self.check_fits(settings, task_obj, where)
        grid = eval_kw.get("grid") or {}
        if len(grid) > 1 or any(option not in task_obj.sample_options for option in grid):
            allowed = ", ".join(task_obj.sample_options) or "none"
            self.fail("eval.grid", f"{where}: one option of the task's sample options ({allowed}), got {sorted(grid)}")
        num_parameters = built.agent_parameters(agent, task.task_id, task_kw, agent_kw)
        evaluation_settings = EvalSettings(**eval_kw)
        cells = [
            Cell(
                experiment=experiment,
                task=task.task_id,
                agent=agent.label,
                agent_name=agent.agent,
                seed=seed,
                task_kwargs=task_kw,
                agent_kwargs=agent_kw,
                train=settings,
                eval=evaluation_settings,
                train_range=(int(task_obj.min_length), int(task_obj.max_length)),
                num_parameters=num_parameters,
                lr_grid=lrs is not None,
                test_set=test_set,
            )
            for settings in ([settings] if lrs is None else [dataclasses.replace(settings, lr=lr) for lr in lrs])
            for seed in seeds
        ]
        try:  # TrainConfig's own checks, so that nothing the trainer refuses reaches a worker
            cells[0].train_config()
        except ImportError:  # pragma: no cover - the trainer is part of the package
            pass
        except (TypeError, ValueError) as exc:
            self.fail("train", f"{where}: the trainer refuses this budget: {exc}")
        return cells

    def check_fits(self, settings: TrainSettings, task: Any, where: str) -> None:
        """Refuse settings the task cannot honour, naming the key (the trainer would fail at run time)."""
        import torch

        try:
            torch.device(settings.device) if settings.device != "auto" else None
        except RuntimeError as exc:
            self.fail("train.device", f"{where}: not a torch device: {exc}")
        for setting, why in fit_problems(settings, task, repr(task)):
            self.fail(f"train.{setting}", f"{where}: {why}")
        if settings.lr_halve_epochs is not None and settings.epoch_size is None and settings.epochs is None:
            self.fail("train.lr_halve_epochs", f"{where}: needs epochs or epoch_size, which are both off")


def _train_settings(values: dict[str, Any], steps_given: bool) -> TrainSettings:
    """Build TrainSettings; a budget that sets ``minutes`` or ``epochs`` but never ``steps`` means "no step
    limit"."""
    values = dict(values)
    if not steps_given and (values.get("minutes") is not None or values.get("epochs") is not None):
        values["steps"] = None
    return TrainSettings(**values)


class _BuildCache:
    """Builds each distinct task and (task, agent) once while checking, so errors surface before training."""

    def __init__(self, loader: _Loader) -> None:
        self.loader = loader
        self.tasks: dict[str, Any] = {}
        self.params: dict[str, int] = {}

    def task(self, task_id: str, kwargs: dict[str, Any]) -> Any:
        import memtasks

        key = json.dumps([task_id, kwargs], sort_keys=True, default=list)
        if key not in self.tasks:
            try:
                self.tasks[key] = memtasks.make_task(task_id, **kwargs)
            except memtasks.DataNotFoundError as exc:
                self.loader.fail(_key("tasks", task_id), f"the task's data is missing: {exc}")
            except (TypeError, ValueError) as exc:
                self.loader.fail(_key("tasks", task_id), f"the task cannot be built with {kwargs}: {exc}")
        return self.tasks[key]

    def agent_parameters(
        self, agent: AgentEntry, task_id: str, task_kwargs: dict[str, Any], agent_kwargs: dict[str, Any]
    ) -> int:
        import torch

        import agents as agent_registry

        key = json.dumps([agent.agent, task_id, task_kwargs, agent_kwargs], sort_keys=True, default=list)
        if key not in self.params:
            spec = self.task(task_id, task_kwargs).spec
            try:
                # a throw-away build: keep torch's global random state as the caller left it
                with torch.random.fork_rng(devices=[]):
                    model = agent_registry.make_agent(agent.agent, spec, device="cpu", **agent_kwargs)
            except (TypeError, ValueError) as exc:
                self.loader.fail(
                    _key("agents", agent.label),
                    f"agent {agent.agent!r} cannot be built for {task_id} with {agent_kwargs}: {exc}",
                )
            self.params[key] = int(model.num_parameters())
        return self.params[key]

