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
    batch_size = 32
    steps = 1000               # optimisation steps; false = no step limit
    minutes = false            # wall-clock limit per cell; false = none. Whichever limit comes first stops;
                               # a budget that sets minutes but never steps has no step limit.
    optimizer = "adam"         # "adam", "rmsprop" (Graves 2013) or "sgd" (agents.optim.OPTIMIZERS)
    optimizer_kwargs = {}      # e.g. { momentum = 0.9 } for sgd
    lr = 1e-3
    clip_norm = 10.0           # clip the global gradient norm; false = off
    clip_value = false         # clip every gradient element to +-value; false = off
    until_bit_errors = false   # stop ("converged") once bit errors per sequence fall below this; false = off
    running_window = 20        # batches in the running bit-error estimate (convergence, curriculum)
    validation_samples = 256   # sequences that confirm convergence
    curriculum = "none"        # "none" or "grow": start at curriculum_start, grow by curriculum_step
    curriculum_start = 1       #   whenever the running bit errors per sequence fall below
    curriculum_step = 1        #   curriculum_threshold, up to the task's max_length
    curriculum_threshold = 1.0
    epoch_size = false         # sequences per epoch (bAbI: training-set size); false = no epochs
    lr_halve_epochs = false    # halve lr every this many epochs (needs epoch_size); false = never
    log_every = 50             # steps between rows of train.csv
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
``until_bit_errors``, ``epoch_size``, ``lr_halve_epochs``) are switched off
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
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import inspect
import json
import math
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

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


def _optimizer_names() -> tuple[str, ...]:
    from agents.optim import OPTIMIZERS

    return tuple(OPTIMIZERS)


def _curriculum_names() -> tuple[str, ...] | None:
    """The curricula ``benchmarks.train`` offers, or ``None`` (not checked here) if it names none."""
    try:
        from benchmarks import train
    except ImportError:
        return None
    names = getattr(train, "CURRICULA", None)
    return tuple(names) if names else None


@dataclass(frozen=True)
class TrainSettings:
    """The training budget and optimiser of a cell: the ``[train]`` table.

    The fields are those of ``benchmarks.train.TrainConfig`` except what the
    grid decides (task, agent, seed and their kwargs) and what the runner decides
    (``threads``); the defaults are TrainConfig's (a test keeps them in step).
    """

    batch_size: int = field(default=16, metadata={"min": 1})
    """Sequences per optimisation step."""
    steps: int | None = field(default=1000, metadata={"min": 1})
    """Optimisation steps, or ``None`` for no step limit (then ``minutes`` must be set)."""
    minutes: float | None = field(default=None, metadata={"gt": 0.0})
    """Wall-clock training limit in minutes, or ``None``; with ``steps`` too, whichever comes first."""
    optimizer: str = field(default="adam", metadata={"choices": _optimizer_names})
    """Optimiser name, one of ``agents.optim.OPTIMIZERS``."""
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra optimiser arguments (e.g. ``{ momentum = 0.9 }`` for sgd)."""
    lr: float = field(default=3e-3, metadata={"gt": 0.0})
    """Learning rate."""
    clip_norm: float | None = field(default=10.0, metadata={"gt": 0.0})
    """Clip the global gradient norm to this, or ``None`` for no norm clipping."""
    clip_value: float | None = field(default=None, metadata={"gt": 0.0})
    """Clip every gradient element to ``+-clip_value`` (applied before ``clip_norm``), or ``None``."""
    until_bit_errors: float | None = field(default=None, metadata={"gt": 0.0})
    """Stop ("converged") once the running training bit errors per sequence fall below this and a
    validation set confirms it, or ``None``; bit-output tasks only."""
    running_window: int = field(default=20, metadata={"min": 1})
    """Training batches in the running bit-error estimate used by ``until_bit_errors`` and the curriculum."""
    validation_samples: int = field(default=256, metadata={"min": 1})
    """Sequences of the validation set that confirms ``until_bit_errors``."""
    curriculum: str = field(default="none", metadata={"choices": _curriculum_names})
    """Curriculum over training lengths: ``"none"`` (the whole range throughout) or ``"grow"``."""
    curriculum_start: int = field(default=1, metadata={"min": 1})
    """The ``"grow"`` curriculum's first maximum training length."""
    curriculum_step: int = field(default=1, metadata={"min": 1})
    """How much the ``"grow"`` curriculum raises the maximum length at a time."""
    curriculum_threshold: float = field(default=1.0, metadata={"gt": 0.0})
    """Running bit errors per sequence below which the ``"grow"`` curriculum advances."""
    epoch_size: int | None = field(default=None, metadata={"min": 1})
    """Sequences per epoch (bAbI: the training-set size), or ``None`` for sampled tasks."""
    lr_halve_epochs: int | None = field(default=None, metadata={"min": 1})
    """Halve the learning rate every this many epochs (needs ``epoch_size``), or ``None``."""
    log_every: int = field(default=50, metadata={"min": 1})
    """Steps between the rows of ``train.csv`` (also how often divergence, the curriculum and
    ``until_bit_errors`` are checked)."""
    batch_lengths: str = field(default="auto", metadata={"choices": ("auto", "same", "mixed")})
    """``"same"``: one length per batch, drawn as a sequence's length (no padding); ``"mixed"``: each
    sequence draws its length and the batch is padded; ``"auto"``: the agent's choice (same for the NTM)."""
    compile: bool = True
    """Train through the fast path (``torch.compile`` of the core's step, eager where it cannot compile)."""
    device: str = "auto"
    """Torch device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda:0"``, ..."""


@dataclass(frozen=True)
class EvalSettings:
    """The evaluation sweep of a cell: the ``[eval]`` table."""

    lengths: tuple[int, ...] = field(default=(), metadata={"min": 1})
    """Test lengths (the task's length parameter), ascending and distinct."""
    samples: int = field(default=64, metadata={"min": 1})
    """Test sequences per length."""
    seed: int = field(default=12345, metadata={"min": 0})
    """Evaluation seed; every cell of the experiment uses it, so all agents see the same test sequences."""
    batch_size: int = field(default=128, metadata={"min": 1})
    """Sequences per forward pass during evaluation (memory use only; results do not depend on it)."""


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

    @property
    def name(self) -> str:
        """Folder name of the cell, ``<task>__<agent>__seed<k>`` (task without its namespace)."""
        return f"{path_safe(short_task_id(self.task))}__{self.agent}__seed{self.seed}"

    def identity(self) -> dict[str, Any]:
        """Everything that determines the cell's results, resolved (:func:`benchmarks.provenance.cell_identity`):
        task and agent configuration with defaults expanded, seed, settings, and the code digest of the task's
        and the agent's modules. Not the experiment's name or threads."""
        from benchmarks.provenance import cell_identity

        return cell_identity(
            self.task, self.task_kwargs, self.agent_name, self.agent_kwargs, self.seed,
            dataclasses.asdict(self.train), {**dataclasses.asdict(self.eval), "lengths": list(self.eval.lengths)},
        )

    def fingerprint(self) -> str:
        """Hash of :meth:`identity`.

        A finished cell whose recorded fingerprint differs was produced by another version of the experiment
        file, of a default, or of the task's or agent's code, so the runner redoes it and says what changed.
        """
        text = json.dumps(self.identity(), sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def train_config(self, threads: int | None = None) -> Any:
        """The ``benchmarks.train.TrainConfig`` of this cell (imported lazily).

        Args:
            threads: Torch threads for the training process; ``None`` leaves torch's default.
        """
        from benchmarks.train import TrainConfig

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
        }


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


def short_task_id(task_id: str) -> str:
    """``"memtasks/Copy-v0"`` -> ``"Copy-v0"``."""
    return task_id.split("/", 1)[1] if "/" in task_id else task_id


def path_safe(text: str) -> str:
    """``text`` with every character but letters, digits and ``_ . -`` replaced by ``_`` (for folder names)."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", text)


def load_experiment(path: str | Path) -> Experiment:
    """Read, check and resolve an experiment file (schema: the module docstring).

    Args:
        path: A ``.toml`` file.

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
    return _Loader(path).experiment(data)


def _key(*parts: str) -> str:
    """Dotted TOML key path, quoting parts that are not bare keys (``tasks."memtasks/Copy-v0".bits``)."""
    return ".".join(p if re.fullmatch(r"[A-Za-z0-9_\-]+", p) else json.dumps(p) for p in parts)


def _describe(hint: Any) -> str:
    """Human words for a type hint, for error messages."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        text = " or ".join(_describe(a) for a in inner)
        return text + " (or false to switch it off)" if type(None) in args else text
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (tuple, list):
        return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s" if args else "a list"
    if origin is dict or hint is dict:
        return "a table"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(hint, str(hint))


class _TypeMismatch(Exception):
    """Internal: a value does not fit a hint (turned into an ExperimentError by the caller)."""


def _coerce(value: Any, hint: Any) -> Any:
    """Return ``value`` converted to ``hint`` (int -> float, list -> tuple, false -> None), or raise _TypeMismatch."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if type(None) in args and value is False and bool not in inner:
            return None  # TOML has no null: false switches an optional setting off
        for option in inner:
            try:
                return _coerce(value, option)
            except _TypeMismatch:
                pass
        raise _TypeMismatch
    if origin is Literal:
        if value in args and not isinstance(value, bool):
            return value
        raise _TypeMismatch
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _TypeMismatch
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _TypeMismatch
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise _TypeMismatch
    if hint is str:
        if isinstance(value, str):
            return value
        raise _TypeMismatch
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise _TypeMismatch
        item = args[0] if args else Any
        items = [_coerce(v, item) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict or hint is dict:
        if isinstance(value, dict):
            return value
        raise _TypeMismatch
    return value  # a hint we do not model: the constructor checks it


def _type_hints(obj: Any) -> dict[str, Any]:
    """``typing.get_type_hints`` that never fails (an unresolvable hint just goes unchecked)."""
    try:
        return typing.get_type_hints(obj)
    except Exception:  # a forward reference we cannot resolve: skip type checks, the constructor checks
        return {}


class _Loader:
    """Checks one parsed file; every error goes through :meth:`fail` so it names the file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, message: str) -> typing.NoReturn:
        raise ExperimentError(self.path, key, message)

    # -- generic checks ---------------------------------------------------------------------------
    def table(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(key, f"must be a table ([{key}] or {{ ... }}), got {value!r} ({type(value).__name__})")
        return value

    def unknown(self, key: str, allowed: list[str], where: str) -> typing.NoReturn:
        close = difflib.get_close_matches(key.rsplit(".", 1)[-1].strip('"'), allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        self.fail(key, f"unknown key{hint}; allowed keys {where}: {', '.join(allowed)}")

    def value(self, value: Any, hint: Any, key: str, meta: Mapping[str, Any] | None = None) -> Any:
        """Check one value against a type hint and the ``min``/``gt``/``choices`` metadata of its field."""
        try:
            out = _coerce(value, hint)
        except _TypeMismatch:
            self.fail(key, f"must be {_describe(hint)}, got {value!r} ({type(value).__name__})")
        meta = meta or {}
        items = out if isinstance(out, (tuple, list)) else (out,)
        for item in items:
            if item is None or isinstance(item, (str, bool)):
                continue
            if "min" in meta and item < meta["min"]:
                self.fail(key, f"must be >= {meta['min']}, got {item!r}")
            if "gt" in meta and item <= meta["gt"]:
                self.fail(key, f"must be > {meta['gt']}, got {item!r}")
        if "choices" in meta and isinstance(out, str):
            choices = meta["choices"]()
            if choices is not None and out not in choices:
                self.fail(key, f"must be one of {', '.join(map(repr, choices))}, got {out!r}")
        return out

    def fields(self, cls: type, table: dict[str, Any], key: str, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
        """Check a table against the fields of dataclass ``cls``; returns the checked keys present."""
        specs = {f.name: f for f in dataclasses.fields(cls) if f.name not in exclude}
        hints = _type_hints(cls)
        out: dict[str, Any] = {}
        for name, raw in table.items():
            sub = _key(*_split(key), name) if key else name
            if name not in specs:
                self.unknown(sub, sorted(specs), f"in [{key}]")
            if name == "lengths":
                raw = self.lengths(raw, sub)
            out[name] = self.value(raw, hints.get(name, Any), sub, specs[name].metadata)
        if "lengths" in out:
            lengths = out["lengths"]
            if list(lengths) != sorted(set(lengths)) or not lengths:
                self.fail(
                    _key(*_split(key), "lengths"),
                    f"must be a non-empty list of distinct lengths in ascending order, got {list(lengths)}",
                )
        return out

    def lengths(self, raw: Any, key: str) -> Any:
        """Expand ``{ start, stop, step }`` (stop included) into a list; lists pass through."""
        if not isinstance(raw, dict):
            return raw
        allowed = ["start", "step", "stop"]
        for name in raw:
            if name not in allowed:
                self.unknown(f"{key}.{name}", allowed, f"in the range table {key}")
        for name in ("start", "stop"):
            if name not in raw:
                self.fail(key, f"a range table needs 'start' and 'stop' (and optionally 'step'), got {raw!r}")
        start = self.value(raw["start"], int, f"{key}.start", {"min": 1})
        stop = self.value(raw["stop"], int, f"{key}.stop", {"min": start})
        step = self.value(raw.get("step", 1), int, f"{key}.step", {"min": 1})
        return list(range(start, stop + 1, step))

    # -- the sections ---------------------------------------------------------------------------
    def experiment(self, data: dict[str, Any]) -> Experiment:
        allowed = ["agents", "description", "eval", "name", "override", "seeds", "tasks", "train"]
        for name in data:
            if name not in allowed:
                self.unknown(_key(name), allowed, "at the top level")
        name = self.value(data.get("name", self.path.stem), str, "name")
        if not _NAME_PATTERN.match(name):
            self.fail("name", f"must use letters, digits and _ . - only (it names a folder), got {name!r}")
        description = self.value(data.get("description", ""), str, "description")
        seeds = self.seeds(data)
        train = self.fields(TrainSettings, self.table(data.get("train", {}), "train"), "train")
        evaluation = self.fields(EvalSettings, self.table(data.get("eval", {}), "eval"), "eval")
        tasks = self.tasks(data)
        agents = self.agents(data)
        overrides = self.overrides(data, tasks, agents)
        base_train = _train_settings(train, "steps" in train)
        base_eval = EvalSettings(**evaluation)
        built = _BuildCache(self)
        cells = []
        for task in tasks:
            for agent in agents:
                cells.extend(self.cells(name, seeds, task, agent, train, evaluation, overrides, built))
        return Experiment(
            name=name,
            description=description,
            path=str(self.path),
            seeds=seeds,
            train=base_train,
            eval=base_eval,
            tasks=tuple(tasks),
            agents=tuple(agents),
            overrides=tuple(overrides),
            cells=tuple(cells),
        )

    def seeds(self, data: dict[str, Any]) -> tuple[int, ...]:
        if "seeds" not in data:
            self.fail("seeds", "missing; give a list of training seeds (seeds = [0, 1]) or a count (seeds = 2)")
        raw = data["seeds"]
        if isinstance(raw, int) and not isinstance(raw, bool):
            count = self.value(raw, int, "seeds", {"min": 1})
            return tuple(range(count))
        seeds = self.value(raw, tuple[int, ...], "seeds", {"min": 0})
        if not seeds or len(set(seeds)) != len(seeds):
            self.fail("seeds", f"must be a non-empty list of distinct integers >= 0, got {list(seeds)}")
        return seeds

    def tasks(self, data: dict[str, Any]) -> list[TaskEntry]:
        import memtasks

        table = self.table(data.get("tasks", {}), "tasks")
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
            kwargs = self.task_kwargs(task_id, self.table(kwargs, key), key)
            entries[task_id] = TaskEntry(task_id, kwargs)
        return list(entries.values())

    def task_kwargs(self, task_id: str, table: dict[str, Any], key: str) -> dict[str, Any]:
        """Check keyword arguments against the task factory's signature (names and annotated types)."""
        import memtasks

        factory = memtasks.task_info(task_id).factory
        try:
            params = inspect.signature(factory).parameters
        except (TypeError, ValueError):  # a builtin or C factory: leave the check to the constructor
            return dict(table)
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return dict(table)
        hints = _type_hints(factory.__init__ if isinstance(factory, type) else factory)
        allowed = sorted(n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL)
        out = {}
        for name, raw in table.items():
            sub = _key(*_split(key), name)
            if name not in params:
                self.unknown(sub, allowed, f"for task {task_id} (its constructor arguments)")
            out[name] = self.value(raw, hints.get(name, Any), sub)
        return out

    def agents(self, data: dict[str, Any]) -> list[AgentEntry]:
        import agents as agent_registry

        table = self.table(data.get("agents", {}), "agents")
        if not table:
            self.fail("agents", "no agent; add a table per agent, e.g. [agents.lstm]")
        entries = []
        known = agent_registry.list_agents()
        for label, raw in table.items():
            key = _key("agents", label)
            raw = dict(self.table(raw, key))
            if not _NAME_PATTERN.match(label) or label == _WILDCARD:
                self.fail(key, f"an agent label uses letters, digits and _ . - only (it names folders), got {label!r}")
            name = self.value(raw.pop("agent", label), str, _key("agents", label, "agent"))
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                where = key if name == label else _key("agents", label, "agent")
                self.fail(where, f"unknown agent {name!r}{hint}; known agents: {', '.join(known)}")
            entries.append(AgentEntry(label, name, self.agent_kwargs(name, raw, key)))
        return entries

    def agent_kwargs(self, name: str, table: dict[str, Any], key: str) -> dict[str, Any]:
        """Check config fields against the agent's config dataclass."""
        import agents as agent_registry

        config_cls = agent_registry.agent_info(name).config_cls
        specs = {f.name for f in dataclasses.fields(config_cls)}
        hints = _type_hints(config_cls)
        out = {}
        for field_name, raw in table.items():
            sub = _key(*_split(key), field_name)
            if field_name not in specs:
                allowed = sorted(specs) + (["agent"] if key.startswith("agents") else [])
                self.unknown(sub, allowed, f"for agent {name!r} (its config fields)")
            out[field_name] = self.value(raw, hints.get(field_name, Any), sub)
        return out

    def overrides(self, data: dict[str, Any], tasks: list[TaskEntry], agents: list[AgentEntry]) -> list[Override]:
        import memtasks

        table = self.table(data.get("override", {}), "override")
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
            for label, body in self.table(per_agent, key).items():
                sub = _key("override", raw_task, label)
                if label != _WILDCARD and label not in labels:
                    self.fail(sub, f"names an agent that is not in [agents]; allowed: {', '.join([*labels, '*'])}")
                body = dict(self.table(body, sub))
                eval_part = self.table(body.pop("eval", {}), f"{sub}.eval")
                if "seed" in eval_part:
                    self.fail(f"{sub}.eval.seed", "the evaluation seed is shared by every cell; set it in [eval] only")
                eval_checked = self.fields(EvalSettings, eval_part, f"{sub}.eval", exclude=("seed",))
                task_kw = self.table(body.pop("task_kwargs", {}), f"{sub}.task_kwargs")
                if task_kw and task_id == _WILDCARD:
                    self.fail(f"{sub}.task_kwargs", 'task_kwargs need a named task, not "*"')
                if task_kw:
                    task_kw = self.task_kwargs(task_id, task_kw, f"{sub}.task_kwargs")
                agent_kw = self.table(body.pop("agent_kwargs", {}), f"{sub}.agent_kwargs")
                if agent_kw and label == _WILDCARD:
                    self.fail(f"{sub}.agent_kwargs", 'agent_kwargs need a named agent, not "*"')
                if agent_kw:
                    agent_kw = self.agent_kwargs(labels[label].agent, agent_kw, f"{sub}.agent_kwargs")
                train_names = [f.name for f in dataclasses.fields(TrainSettings)]
                for name in body:
                    if name not in train_names:
                        allowed = sorted([*train_names, "agent_kwargs", "eval", "task_kwargs"])
                        self.unknown(_key(*_split(sub), name), allowed, f"in [{sub}]")
                train_checked = self.fields(TrainSettings, body, sub)
                out.append(Override(task_id, label, train_checked, eval_checked, dict(task_kw), dict(agent_kw)))
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
        if settings.steps is None and settings.minutes is None:
            self.fail("train.steps", f"{where} have no budget: steps and minutes are both off; set one of them")
        lengths = tuple(eval_kw.get("lengths", ()))
        if not lengths:
            self.fail(
                "eval.lengths",
                f"{where} have no evaluation lengths; set eval.lengths, or "
                f"{_key('override', task.task_id, '*')}.eval.lengths",
            )
        task_obj = built.task(task.task_id, task_kw)
        if lengths[0] < task_obj.min_allowed_length:
            self.fail(
                "eval.lengths",
                f"{where}: {task.task_id} supports lengths >= {task_obj.min_allowed_length}, got {lengths[0]}",
            )
        self.check_fits(settings, task_obj, where)
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
            )
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
        bits = task.spec.output_kind == "bits"
        if settings.until_bit_errors is not None and not bits:
            self.fail("train.until_bit_errors", f"{where}: needs a task with bit outputs; {task!r} has class outputs")
        if settings.curriculum == "grow":
            if not bits:
                self.fail(
                    "train.curriculum", f"{where}: 'grow' needs a task with bit outputs; {task!r} has class outputs"
                )
            if not task.min_length <= settings.curriculum_start <= task.max_length:
                self.fail(
                    "train.curriculum_start",
                    f"{where}: must lie in the task's training range [{task.min_length}, {task.max_length}], "
                    f"got {settings.curriculum_start}",
                )
        if settings.lr_halve_epochs is not None and settings.epoch_size is None:
            self.fail("train.lr_halve_epochs", f"{where}: needs epoch_size (sequences per epoch), which is off")


def _split(key: str) -> list[str]:
    """Split a dotted key path produced by :func:`_key` back into its parts (quoted parts kept whole)."""
    parts = re.findall(r'"(?:[^"\\]|\\.)*"|[^.]+', key)
    return [json.loads(p) if p.startswith('"') else p for p in parts]


def _train_settings(values: dict[str, Any], steps_given: bool) -> TrainSettings:
    """Build TrainSettings; a budget that sets ``minutes`` but never ``steps`` means "no step limit"."""
    values = dict(values)
    if not steps_given and values.get("minutes") is not None:
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

