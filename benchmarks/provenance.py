"""Where a result came from: the fully resolved configuration, the code version, the software and the device.

Two uses:

- :func:`cell_identity` is everything that determines a cell's numbers: the task's and the agent's
  configuration with every default expanded, the seed, the training and evaluation settings, and a digest of
  the code of the task's and the agent's modules. A cell's fingerprint hashes it, so a changed default or
  changed code makes a finished cell stale, and :func:`describe_changes` names what changed.
- :func:`environment` is recorded beside every result (``result.json``, ``cell.json``): the git commit,
  whether the tree had uncommitted changes to tracked files (``git_dirty``) and whether it had any outside
  ``results/`` (``git_dirty_code``: a re-run of committed cells dirties the tree with results files alone), the
  versions of Python, torch and numpy, the platform, the CPU model and torch's CPU capability (its vector
  instruction set: compiled kernels, and so the floats of a training run, differ between machines that differ
  in it; the same code and seed on another machine can end elsewhere).

A code change that does not change what any existing cell computes (a new option whose default keeps the old
behaviour) can be declared in ``benchmarks/code_changes.toml`` with the evidence that it does not:
:func:`carry_forward` applies those declarations to a recorded identity, so the records made before the change
stay current (:func:`is_current`) instead of every cell of every experiment that uses the module going stale.

The code digest hashes each module's syntax tree with docstrings removed (``ast.dump``), so editing comments or
a module's, class's or function's docstring does not invalidate results, while any change to what the code does
does. Only those docstrings are removed: the string under a dataclass field (its "docstring" by convention, as
in every agent config) is a statement of the class body to the digest, so editing it stales the module's cells
too. Removing every bare string would fix that and change every digest at once, which stales every record made
so far: a change to make together with a full re-run.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import inspect
import json
import platform
import subprocess
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = ["CodeChange", "carry_forward", "cell_identity", "code_changes", "code_digest", "cpu_name",
           "describe_changes", "environment", "fingerprint_of", "identity_fingerprint", "identity_json", "is_current",
           "resolved_agent_config", "resolved_task_kwargs"]

_ROOT = Path(__file__).resolve().parents[1]
CODE_CHANGES_FILE = Path(__file__).resolve().with_name("code_changes.toml")
"""The declared behaviour-preserving code changes (:class:`CodeChange`)."""


def resolved_task_kwargs(task_id: str, task_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``task_kwargs`` with the task constructor's defaults filled in (what the task is built with)."""
    from memtasks import task_info

    factory = task_info(task_id).factory
    try:
        bound = inspect.signature(factory).bind(**task_kwargs)
    except (TypeError, ValueError):  # no signature to read, or arguments it does not take: as given
        return dict(task_kwargs)
    bound.apply_defaults()
    resolved = {}
    for name, value in bound.arguments.items():
        kind = inspect.signature(factory).parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            resolved.update(value)
        elif kind is not inspect.Parameter.VAR_POSITIONAL:
            resolved[name] = value
    return resolved


def resolved_agent_config(agent_name: str, agent_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The agent's config dataclass built from ``agent_kwargs``, as a dict (every field, defaults included)."""
    from agents import agent_info

    return dataclasses.asdict(agent_info(agent_name).config_cls(**agent_kwargs))


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


@functools.lru_cache(maxsize=None)
def _file_digest(path: str) -> str:
    source = Path(path).read_text()
    tree = _without_docstrings(ast.parse(source))
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:12]


def code_digest(obj: Any) -> dict[str, str]:
    """``{module file: digest}`` of the module defining ``obj`` (a class, function or partial)."""
    target = obj.func if isinstance(obj, functools.partial) else obj
    try:
        path = inspect.getsourcefile(target)
    except (TypeError, OSError):  # built-ins, code typed into a console: no file to hash
        path = None
    if path is None or not Path(path).is_file():
        return {}
    try:
        name = str(Path(path).resolve().relative_to(_ROOT))
    except ValueError:  # a plugin outside this checkout: its module name
        name = getattr(target, "__module__", path)
    return {name: _file_digest(path)}


def _task_code(task_id: str) -> dict[str, str]:
    from memtasks import task_info

    return code_digest(task_info(task_id).factory)


def _agent_code(agent_name: str) -> dict[str, str]:
    from agents import agent_info

    info = agent_info(agent_name)
    return {**code_digest(info.config_cls), **code_digest(info.builder)}


def cell_identity(
    task: str,
    task_kwargs: dict[str, Any],
    agent_name: str,
    agent_kwargs: dict[str, Any],
    seed: int,
    train: dict[str, Any],
    evaluation: dict[str, Any],
) -> dict[str, Any]:
    """Everything that determines a cell's numbers, as plain data (see the module docstring)."""
    return {
        "task": task,
        "task_config": resolved_task_kwargs(task, task_kwargs),
        "agent": agent_name,
        "agent_config": resolved_agent_config(agent_name, agent_kwargs),
        "seed": seed,
        "train": train,
        "eval": evaluation,
        "code": {**_task_code(task), **_agent_code(agent_name)},
    }


def identity_json(identity: dict[str, Any]) -> str:
    """A :func:`cell_identity` dict as canonical JSON (sorted keys, tuples as lists): what a fingerprint hashes."""
    return json.dumps(identity, sort_keys=True, default=list)


def fingerprint_of(text: str) -> str:
    """The fingerprint of an identity's canonical JSON (:func:`identity_json`): sha256, 16 hex digits."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def identity_fingerprint(identity: dict[str, Any]) -> str:
    """The fingerprint of a :func:`cell_identity` dict."""
    return fingerprint_of(identity_json(identity))


_DIGEST = r"^[0-9a-f]{12}$"
_SECTIONS = ("task_config", "agent_config", "train", "eval")


class CodeChange(BaseModel):
    """One ``[[change]]`` of ``benchmarks/code_changes.toml``: a change to one module that leaves the numbers
    of every cell recorded before it unchanged, and the settings it added, at the values that do so."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    file: str
    """The module, as the identities name it (``agents/ntm.py``)."""
    before: Annotated[str, Field(pattern=_DIGEST)]
    """Its digest before the change (:func:`code_digest`)."""
    after: Annotated[str, Field(pattern=_DIGEST)]
    """Its digest after."""
    added: dict[str, Any] = {}
    """Settings the change added, ``"<section>.<name>" = value``, section one of task_config, agent_config,
    train, eval: a record without the setting was made with this value."""
    commit: str
    """The commit that made the change."""
    why: str
    """What changed, in a sentence."""
    evidence: str
    """The file under results/ that shows the numbers did not change, with its command."""

    @model_validator(mode="after")
    def _check(self) -> "CodeChange":
        if self.before == self.after:
            raise ValueError(f"before and after are the same digest ({self.before})")
        for key in self.added:
            section, _, name = key.partition(".")
            if section not in _SECTIONS or not name or "." in name:
                raise ValueError(f"added key {key!r} must be '<section>.<name>' with section one of {_SECTIONS}")
        return self


@functools.lru_cache(maxsize=None)
def code_changes(path: str | Path = CODE_CHANGES_FILE) -> tuple[CodeChange, ...]:
    """The declared changes in ``path`` (none when the file does not exist).

    Raises:
        ValueError: the file is not valid TOML or a declaration is malformed (one line naming the entry).
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10 with the tomli backport
        import tomli as tomllib  # type: ignore[no-redef]

    path = Path(path)
    if not path.is_file():
        return ()
    try:
        entries = tomllib.loads(path.read_text()).get("change", [])
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    changes = []
    for i, entry in enumerate(entries):
        try:
            changes.append(CodeChange.model_validate(entry))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "entry"
            raise ValueError(f"{path}: [[change]] {i + 1}, {where}: {error['msg']}") from None
    seen: dict[tuple[str, str], int] = {}
    for i, change in enumerate(changes):
        if (change.file, change.before) in seen:
            raise ValueError(f"{path}: [[change]] {i + 1}: {change.file} digest {change.before} is already moved by "
                             f"[[change]] {seen[change.file, change.before] + 1} (one successor per digest)")
        seen[change.file, change.before] = i
    for change in changes:  # no cycles: following the chain from any digest must end
        digest, steps = change.after, 0
        while (change.file, digest) in seen:
            digest, steps = changes[seen[change.file, digest]].after, steps + 1
            if steps > len(changes):
                raise ValueError(f"{path}: the changes of {change.file} form a cycle through digest {change.before}")
    return tuple(changes)


def carry_forward(identity: dict[str, Any], changes: tuple[CodeChange, ...] | None = None) -> dict[str, Any]:
    """A recorded identity as the code of today would write it, where only declared changes lie between.

    Every declaration whose ``before`` is the identity's digest of its file moves that digest to ``after`` and
    adds its settings where the identity lacks them; applied until none applies (a chain of changes). A digest
    that no declaration names is left as it is, so any undeclared change still makes the cell stale.
    """
    changes = code_changes() if changes is None else changes
    out = json.loads(json.dumps(identity, default=list))  # a deep copy in the form a record holds
    code = out.get("code", {})
    moved = True
    while moved:
        moved = False
        for change in changes:
            if code.get(change.file) == change.before:
                code[change.file] = change.after
                for key, value in change.added.items():
                    section, name = key.split(".")
                    out.setdefault(section, {}).setdefault(name, value)
                moved = True
    return out


def is_current(record: dict[str, Any] | None, fingerprint: str,
               changes: tuple[CodeChange, ...] | None = None) -> bool:
    """Whether a cell record still stands for the cell whose fingerprint is ``fingerprint``: the same
    fingerprint, or one that only declared behaviour-preserving changes separate (:func:`carry_forward`;
    ``changes``: those of ``benchmarks/code_changes.toml`` unless given)."""
    if record is None:
        return False
    if record.get("fingerprint") == fingerprint:
        return True
    changes = code_changes() if changes is None else changes
    identity = record.get("identity")
    return bool(identity) and bool(changes) and identity_fingerprint(carry_forward(identity, changes)) == fingerprint


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def describe_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """What differs between two :func:`cell_identity` dicts, one phrase per changed entry."""
    if not old:
        return ["the record has no identity (written by an older version of memtasks)"]
    before, after = _flatten(carry_forward(old)), _flatten(new)
    changes = []
    for key in sorted(set(before) | set(after)):
        if before.get(key, "<absent>") == after.get(key, "<absent>"):
            continue
        if key.startswith("code."):
            changes.append(f"the code of {key[5:]} changed")
        else:
            changes.append(f"{key}: {before.get(key, '<absent>')!r} -> {after.get(key, '<absent>')!r}")
    return changes


@functools.lru_cache(maxsize=1)
def _git() -> dict[str, Any]:
    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": None, "git_dirty": None, "git_dirty_code": None}
    status = run("status", "--porcelain", "--untracked-files=no")
    # results/ excluded: re-running a committed cell deletes its tracked files first, and an experiment's
    # earlier cells rewrite theirs, so the whole tree is dirty during any re-run of committed results
    code_status = run("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    return {
        "git_commit": commit,
        "git_dirty": bool(status) if status is not None else None,
        "git_dirty_code": bool(code_status) if code_status is not None else None,
    }


def environment(device: str | None = None) -> dict[str, Any]:
    """The code version and software a result was made with (plain data for JSON records)."""
    import numpy
    import torch

    from importlib import metadata

    try:
        version = metadata.version("memtasks")
    except metadata.PackageNotFoundError:
        version = None
    return {
        **_git(),
        "memtasks_version": version,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu": cpu_name(),
        # the vector instruction set torch's CPU kernels (and inductor's compiled ones) use: the same code and seed
        # give floats that differ in the last digits on another one, and a training run then drifts apart
        "cpu_capability": getattr(torch.backends.cpu, "get_cpu_capability", lambda: None)(),
        "device": device,
    }


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` (Linux), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"
