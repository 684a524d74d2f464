"""The training fast path: ``torch.compile`` of a core's time step, with an eager fallback.

A recurrent core runs a Python loop over time, and one step of a memory model
is a few hundred small tensor operations: in eager PyTorch it is bound by the
per-operation overhead, not by arithmetic. The fast path compiles what the
loop calls at every time step, so each step runs as a handful of fused kernels.

What is compiled is the core's choice, its class attribute ``fast_path``:

- ``"step"`` (the default of :class:`~agents.base.Core`): ``core.step`` is
  compiled with static shapes. A frame and the state have the same shapes at
  every time step, so one graph (and its backward) serves every sequence
  length: the compile is paid once per run (per batch size and input width).
- ``"none"``: the core's ``forward`` is already one fused or parallel kernel
  over the whole sequence (``nn.LSTM``'s oneDNN/cuDNN kernel, MemN2N's batched
  attention), so there is nothing per-step to compile; ``benchmarks.throughput``
  measures both paths for every agent, side by side.

The compiled step runs only while autograd records (training). Under
``torch.no_grad`` (validation, evaluation sweeps) the eager step runs, so
inference never triggers a second compile; the two give the same logits to
1e-5 (tested for every registered core).

Fallback: if compiling or running the compiled step raises (no C++ compiler,
a Python version dynamo does not support, an op inductor cannot lower), the
step is re-run eagerly, one ``RuntimeWarning`` names the reason, and the core
stays eager for the rest of the process. A genuine error of the model raises
from the eager re-run as it would without the fast path.

Compiled graphs are cached on disk by inductor (its FX-graph and AOTAutograd
caches, on by default, under ``TORCHINDUCTOR_CACHE_DIR``), so the cells of an
experiment, and later runs, that build the same core skip most of the compile
(``results/throughput.md`` and ``results/speed/speed.md`` give the cold and warm times).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import torch
from torch import nn

__all__ = ["FAST_PATHS", "CompiledStep", "enable_fast_path", "fast_path_status"]

FAST_PATHS = ("step", "none")
"""The values a core's ``fast_path`` attribute may take."""

_warned = False


def _warn_once(message: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(message, RuntimeWarning, stacklevel=3)


class CompiledStep:
    """``torch.compile(step)`` used under autograd, the eager ``step`` otherwise or after a failure.

    Attributes:
        eager: The original step.
        fallback: ``None`` while the compiled step is in use, else why it was given up.
    """

    def __init__(self, eager: Callable[..., Any], compile_fn: Callable[..., Any] | None = None) -> None:
        self.eager = eager
        self.fallback: str | None = None
        self.compiled: Callable[..., Any] | None = None
        try:
            self.compiled = (compile_fn or _compile)(eager)
        except Exception as exc:  # e.g. a Python version torch.compile does not support
            self._give_up(exc)

    def __call__(self, x: torch.Tensor, state: Any) -> Any:
        if self.compiled is not None and torch.is_grad_enabled():
            try:
                return self.compiled(x, _requiring_grad(state))
            except Exception as exc:
                self._give_up(exc)  # then the eager re-run raises if the model itself is at fault
        return self.eager(x, state)

    def _give_up(self, exc: BaseException) -> None:
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        self.fallback = f"{type(exc).__name__}: {first_line}"
        self.compiled = None
        _warn_once(f"memtasks fast path unavailable, training runs eagerly ({self.fallback})")


def _requiring_grad(state: Any) -> Any:
    """``state`` with every floating tensor that autograd does not track made a leaf that it does.

    The initial state often holds constants (an NTM's initial memory) while every later state depends
    on the parameters; compiled graphs are specialised on ``requires_grad``, so without this the first
    step of every sequence would need a graph of its own (twice the compile). The extra gradient is one
    of the state's own size, for the first step only.
    """
    if isinstance(state, torch.Tensor):
        if state.is_floating_point() and not state.requires_grad:
            return state.detach().requires_grad_()
        return state
    if isinstance(state, (tuple, list)):
        return type(state)(_requiring_grad(s) for s in state)
    if isinstance(state, dict):
        return {k: _requiring_grad(v) for k, v in state.items()}
    return state


def _compile(step: Callable[..., Any]) -> Callable[..., Any]:
    return torch.compile(step, dynamic=False)


def enable_fast_path(module: nn.Module, compile_fn: Callable[..., Any] | None = None) -> str:
    """Switch the core of ``module`` (an :class:`~agents.Agent` or a core) to its fast path.

    Args:
        module: An agent (its ``core`` is used) or a core.
        compile_fn: Replaces ``torch.compile(step, dynamic=False)`` (tests use it to simulate a failure).

    Returns:
        What runs now, in words: ``"compiled step"``, or ``"eager (...)"`` with the reason.

    Raises:
        ValueError: the core declares a ``fast_path`` outside :data:`FAST_PATHS`.
    """
    core = getattr(module, "core", module)
    kind = getattr(core, "fast_path", "step")
    if kind not in FAST_PATHS:
        raise ValueError(f"{type(core).__name__}.fast_path must be one of {', '.join(FAST_PATHS)}, got {kind!r}")
    if kind == "none":
        return "eager (the core's forward is already a fused whole-sequence kernel)"
    if not isinstance(core.__dict__.get("step"), CompiledStep):
        core.step = CompiledStep(core.step, compile_fn)
    return fast_path_status(module)


def fast_path_status(module: nn.Module) -> str:
    """``"compiled step"`` while the compiled step is in use, else ``"eager (reason)"``."""
    core = getattr(module, "core", module)
    step = core.__dict__.get("step")
    if not isinstance(step, CompiledStep):
        if getattr(core, "fast_path", "step") == "none":
            return "eager (the core's forward is already a fused whole-sequence kernel)"
        return "eager (fast path off)"
    if step.fallback is not None:
        return f"eager (compile failed: {step.fallback})"
    return "compiled step"
