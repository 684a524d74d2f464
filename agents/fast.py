"""The training fast path: ``torch.compile`` of a core's time step, with an eager fallback.

A recurrent core runs a Python loop over time, and one step of a memory model
is a few hundred small tensor operations: in eager PyTorch it is bound by the
per-operation overhead, not by arithmetic. The fast path compiles what the
loop calls at every time step, so each step runs as a handful of fused kernels.

What is compiled is the core's choice, its class attribute ``fast_path``:

- ``"step"`` (the default of :class:`~agents.base.Core`): ``core.step`` is
  compiled, first with static shapes. A frame and the state have the same shapes
  at every time step, so one graph (and its backward) serves every sequence
  length: the compile is paid once per run. Where the batch size varies (bAbI's
  epochs, whose batches hold 32 questions and so a varying number of stories),
  the second size recompiles the step once with the batch dimension dynamic,
  and that graph serves every later size (torch's automatic dynamic shapes).
  With static shapes only, every new size paid a full compile of its own until
  dynamo's recompile limit (8), after which new sizes ran eagerly without a word.
- ``"none"``: the core's ``forward`` is already one fused or parallel kernel
  over the whole sequence (``nn.LSTM``'s oneDNN/cuDNN kernel, MemN2N's batched
  attention), so there is nothing per-step to compile; ``benchmarks.throughput``
  measures both paths for every agent, side by side.

The compiled step runs only while autograd records (training). Under
``torch.no_grad`` (validation, evaluation sweeps) the eager step runs, so
inference never triggers a second compile; the two give the same logits to
1e-5 (tested for every registered core).

Unrolling (``unroll = K > 1``, :class:`benchmarks.train.TrainConfig`'s ``unroll``): ``K`` time steps per
compiled graph instead of one. Each call of a compiled function costs a fixed overhead (guards, the autograd
wrapper forward and backward), and one graph of ``K`` steps fuses across step boundaries. The sequence is
padded at its end with zero frames to a multiple of ``K`` and the padded steps' outputs are dropped: a core
is causal (its output at ``t`` depends on frames ``<= t`` only), so neither the logits nor the gradients
change, and one graph serves every length. The price is the compile: a ``K``-step graph takes several times
longer to compile than one step (measured in ``results/speed/``), paid once per cache.

Fallback: if compiling or running the compiled step raises (no C++ compiler,
a Python version dynamo does not support, an op inductor cannot lower), the
step is re-run eagerly, one ``RuntimeWarning`` names the reason, and the core
stays eager for the rest of the process. A genuine error of the model raises
from the eager re-run as it would without the fast path.

Inductor runs with a few settings of its own changed (:data:`INDUCTOR_OPTIONS`: the CPU's reported
instruction sets trusted instead of probed, no per-call size checks in the generated code, pooled buffers):
in two interleaved pairs of runs of the NTM on Copy, 2-13% faster end to end than inductor's defaults from an
empty cache and 2-9% warm (``results/speed/``, part 6).

Compiled graphs are cached on disk by inductor (its FX-graph and AOTAutograd
caches, on by default, under ``TORCHINDUCTOR_CACHE_DIR``), so the cells of an
experiment, and later runs, that build the same core skip most of the compile
(``results/throughput.md`` and ``results/speed/speed.md`` give the cold and warm times).
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable

import torch
from torch import nn

__all__ = ["FAST_PATHS", "INDUCTOR_OPTIONS", "CompiledStep", "enable_fast_path", "fast_path_status"]

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

    def __init__(
        self, eager: Callable[..., Any], compile_fn: Callable[..., Any] | None = None, unroll: int = 1
    ) -> None:
        if isinstance(unroll, bool) or not isinstance(unroll, int) or unroll < 1:
            raise ValueError(f"unroll must be an integer >= 1, got {unroll!r}")
        self.eager = eager
        self.unroll = unroll
        self.fallback: str | None = None
        self.compiled: Callable[..., Any] | None = None
        self.compiled_steps: Callable[..., Any] | None = None
        # the default compile trusts the CPU's reported instruction sets; a failure compiles once more with
        # inductor's probe of them (INDUCTOR_OPTIONS) before the step goes eager
        self._may_probe = compile_fn is None and "cpp.vec_isa_ok" in _options(probe_isa=False)
        self._build(compile_fn or _compile)

    def _build(self, compile_fn: Callable[..., Any]) -> None:
        try:
            self.compiled = compile_fn(self.eager)
            if self.unroll > 1:
                self.compiled_steps = compile_fn(self._steps)
        except Exception as exc:  # e.g. a Python version torch.compile does not support
            self._give_up(exc)

    def _retry_with_probe(self) -> bool:
        """After a failed compile with the trusted instruction sets: compile with inductor's probe instead.
        ``True`` if that was done (once per step), ``False`` if it does not apply."""
        if not self._may_probe:
            return False
        self._may_probe = False
        self._build(lambda step: _compile(step, probe_isa=True))
        return self.compiled is not None

    def _steps(self, frames: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """``K`` eager steps: time-major frames ``(K, B, D)`` -> outputs ``(B, K, out)`` and the last state."""
        ys = []
        for k in range(frames.shape[0]):
            y, state = self.eager(frames[k], state)
            ys.append(y)
        return torch.stack(ys, dim=1), state

    def run(self, x: torch.Tensor, state: Any) -> torch.Tensor | None:
        """Outputs ``(B, T, out)`` of the whole sequence ``x`` (B, T, D) from ``state``, ``unroll`` steps per
        compiled call; ``None`` where that does not apply (no unrolling, no autograd, or the compiled
        function failed: then the caller steps through time, and a genuine model error raises there)."""
        if self.compiled_steps is None or not torch.is_grad_enabled():
            return None
        T, K = x.shape[1], self.unroll
        pad = -T % K
        frames = x.transpose(0, 1)  # (T, B, D)
        if pad:  # zero frames after the end: a causal core's outputs up to T do not see them
            frames = torch.cat([frames, frames.new_zeros(pad, *frames.shape[1:])])  # (T + pad, B, D)
        frames = frames.contiguous()  # every chunk then has the same strides, whatever T: one graph
        initial = state
        try:
            ys = []
            state = _requiring_grad(state)
            for t in range(0, T + pad, K):
                y, state = self.compiled_steps(frames[t : t + K], state)  # (B, K, out)
                ys.append(y)
        except Exception as exc:
            if self._retry_with_probe():
                return self.run(x, initial)
            self._give_up(exc)
            return None
        return torch.cat(ys, dim=1)[:, :T]  # (B, T, out)

    def __call__(self, x: torch.Tensor, state: Any) -> Any:
        if self.compiled is not None and torch.is_grad_enabled():
            try:
                return self.compiled(x, _requiring_grad(state))
            except Exception as exc:
                if self._retry_with_probe():
                    return self(x, state)
                self._give_up(exc)  # then the eager re-run raises if the model itself is at fault
        return self.eager(x, state)

    def _give_up(self, exc: BaseException) -> None:
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        self.fallback = f"{type(exc).__name__}: {first_line}"
        self.compiled = None
        self.compiled_steps = None
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


INDUCTOR_OPTIONS: dict[str, Any] = {
    "cpp.vec_isa_ok": True,
    "size_asserts": False,
    "memory_planning": True,
}
"""Inductor settings of the fast path that differ from inductor's defaults (``torch.compile``'s ``options``;
each measured, cold and warm, in ``results/speed/``, part 6). Edit the dict before the first compile to change
them; empty, the fast path compiles with inductor's defaults.

- ``cpp.vec_isa_ok``: use the vector instruction sets the CPU reports instead of inductor's probe, which builds
  and loads a small library per candidate set before the first compile in a fresh cache (4-5 s of a first
  run's first step here). If a compile with the trusted set fails, :class:`CompiledStep` compiles again with
  the probe before giving up. Not applied where the user set inductor's own ``TORCHINDUCTOR_VEC_ISA_OK``.
- ``size_asserts``: the generated code re-checks the size and stride of buffers at every call (dynamo's guards
  already check the graph's inputs).
- ``memory_planning``: the graph's intermediate buffers come from one pooled allocation per call instead of one
  allocation each.

A step of a memory model is a few hundred small buffers, so the last two are per-call overhead, not arithmetic;
the logits and gradients are the same (tested against eager for every core). One at a time (one run each,
part 6, warm): with the size checks back on, 1,129 sequences/s against the shipped set's 1,262 and 1,312; with
the pooled buffers off, 1,264, inside this machine's run-to-run noise."""


def _compile(step: Callable[..., Any], probe_isa: bool = False) -> Callable[..., Any]:
    """``torch.compile`` of ``step`` with :data:`INDUCTOR_OPTIONS`: static shapes first, a dimension made
    dynamic once it changes. ``probe_isa``: leave the instruction set to inductor's probe."""
    return torch.compile(step, dynamic=None, options=_options(probe_isa) or None)


def _options(probe_isa: bool) -> dict[str, Any]:
    """:data:`INDUCTOR_OPTIONS`, without the trusted instruction sets where the probe is asked for or the user
    set ``TORCHINDUCTOR_VEC_ISA_OK``."""
    options = dict(INDUCTOR_OPTIONS)
    if probe_isa or os.environ.get("TORCHINDUCTOR_VEC_ISA_OK") is not None:
        options.pop("cpp.vec_isa_ok", None)
    return options


def enable_fast_path(module: nn.Module, compile_fn: Callable[..., Any] | None = None, unroll: int = 1) -> str:
    """Switch the core of ``module`` (an :class:`~agents.Agent` or a core) to its fast path.

    Args:
        module: An agent (its ``core`` is used) or a core.
        compile_fn: Replaces the default ``torch.compile(step, dynamic=None, options=INDUCTOR_OPTIONS)`` (tests
            use it to simulate a failure).
        unroll: Time steps per compiled graph (>= 1) for a step-wise core; see the module docstring.

    Returns:
        What runs now, in words: ``"compiled step"``, ``"compiled steps, K per graph"``, or ``"eager (...)"``
        with the reason.

    Raises:
        ValueError: the core declares a ``fast_path`` outside :data:`FAST_PATHS`.
    """
    core = getattr(module, "core", module)
    kind = getattr(core, "fast_path", "step")
    if kind not in FAST_PATHS:
        raise ValueError(f"{type(core).__name__}.fast_path must be one of {', '.join(FAST_PATHS)}, got {kind!r}")
    if kind == "none":
        return "eager (the core's forward is already a fused whole-sequence kernel)"
    current = core.__dict__.get("step")
    if isinstance(current, CompiledStep):
        if current.unroll == unroll:
            return fast_path_status(module)
        core.step = CompiledStep(current.eager, compile_fn, unroll)
    else:
        core.step = CompiledStep(core.step, compile_fn, unroll)
    if unroll > 1 and not isinstance(core.__dict__.get("forward"), _UnrolledForward):
        core.forward = _UnrolledForward(core)  # an instance attribute: nn.Module.__call__ finds it first
    return fast_path_status(module)


class _UnrolledForward:
    """A core's ``forward`` that runs :meth:`CompiledStep.run` when it applies, else the core's own forward
    (so the core's module, and its code digest, need not know about unrolling)."""

    def __init__(self, core: nn.Module) -> None:
        self.core = core
        self.own = type(core).forward.__get__(core)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        step = self.core.__dict__.get("step")
        if isinstance(step, CompiledStep):
            ys = step.run(x, self.core.initial_state(x.shape[0], x.device))
            if ys is not None:
                return ys
        return self.own(x)


def fast_path_status(module: nn.Module) -> str:
    """``"compiled step"`` (or ``"compiled steps, K per graph"``) while the fast path is in use, else
    ``"eager (reason)"``."""
    core = getattr(module, "core", module)
    step = core.__dict__.get("step")
    if not isinstance(step, CompiledStep):
        if getattr(core, "fast_path", "step") == "none":
            return "eager (the core's forward is already a fused whole-sequence kernel)"
        return "eager (fast path off)"
    if step.fallback is not None:
        return f"eager (compile failed: {step.fallback})"
    if step.unroll > 1:
        return f"compiled steps, {step.unroll} per graph"
    return "compiled step"
