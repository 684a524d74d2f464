"""Optimizers by name: ``"adam"``, ``"rmsprop"`` (Graves 2013) and ``"sgd"``.

``"rmsprop"`` is the centred RMSProp with momentum of Graves (2013),
"Generating Sequences With Recurrent Neural Networks", arXiv 1308.0850,
equations 38-41, which the NTM paper trained with (momentum 0.9, decay 0.95,
epsilon 1e-4 *inside* the square root). It is not ``torch.optim.RMSprop(...,
centered=True)``: torch adds epsilon outside the square root. For each
parameter θ with gradient g::

    n  <- ρ n + (1 - ρ) g²              running mean of g²
    ḡ  <- ρ ḡ + (1 - ρ) g               running mean of g
    Δ  <- m Δ - lr g / sqrt(n - ḡ² + ε)
    θ  <- θ + Δ

with n, ḡ and Δ starting at zero. ``"sgd"`` (plain, as MemN2N on bAbI) and
``"adam"`` are torch's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from memtasks.core import check_float

__all__ = ["OPTIMIZERS", "GravesRMSprop", "make_optimizer"]

OPTIMIZERS = ("adam", "rmsprop", "sgd")
"""The names :func:`make_optimizer` accepts."""


def _positive(name: str, value: Any) -> float:
    """``value`` as a finite float > 0, or an error naming ``name``."""
    value = check_float(name, value)
    if value <= 0.0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def _fraction(name: str, value: Any) -> float:
    """``value`` as a float in [0, 1), or an error naming ``name``."""
    value = check_float(name, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value}")
    return value


class GravesRMSprop(torch.optim.Optimizer):
    """Centred RMSProp with momentum, epsilon inside the square root (module docstring).

    Args:
        params: Parameters or parameter groups to optimise.
        lr: Learning rate, > 0 (the NTM paper used 1e-4).
        decay: ρ, the decay of the running means n and ḡ, in [0, 1).
        momentum: m, the momentum of the update Δ, in [0, 1).
        eps: ε, added to the centred second moment under the square root, > 0.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-4,
        decay: float = 0.95,
        momentum: float = 0.9,
        eps: float = 1e-4,
    ) -> None:
        lr, eps = _positive("lr", lr), _positive("eps", eps)
        decay, momentum = _fraction("decay", decay), _fraction("momentum", momentum)
        super().__init__(params, dict(lr=lr, decay=decay, momentum=momentum, eps=eps))

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Apply one update to every parameter that has a gradient.

        Args:
            closure: Optional callable that re-evaluates the model and returns the loss.

        Returns:
            The closure's loss, or ``None``.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, rho, mom, eps = group["lr"], group["decay"], group["momentum"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if g.is_sparse:
                    raise RuntimeError("GravesRMSprop does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["n"] = torch.zeros_like(p)
                    state["g_mean"] = torch.zeros_like(p)
                    state["delta"] = torch.zeros_like(p)
                n, g_mean, delta = state["n"], state["g_mean"], state["delta"]
                n.mul_(rho).addcmul_(g, g, value=1.0 - rho)  # n = ρn + (1-ρ)g²
                g_mean.mul_(rho).add_(g, alpha=1.0 - rho)  # ḡ = ρḡ + (1-ρ)g
                denom = (n - g_mean * g_mean).add_(eps).sqrt_()  # sqrt(n - ḡ² + ε)
                delta.mul_(mom).addcdiv_(g, denom, value=-lr)  # Δ = mΔ - lr g / denom
                p.add_(delta)  # θ = θ + Δ
        return loss


def make_optimizer(
    name: str,
    params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
    lr: float,
    **kwargs: Any,
) -> torch.optim.Optimizer:
    """Build the optimizer ``name`` over ``params``.

    Args:
        name: ``"adam"`` (``torch.optim.Adam``), ``"rmsprop"`` (:class:`GravesRMSprop`,
            momentum 0.9, decay 0.95, eps 1e-4) or ``"sgd"`` (``torch.optim.SGD``).
        params: Parameters or parameter groups.
        lr: Learning rate, a finite number > 0.
        **kwargs: Passed on to the optimizer's constructor (e.g. ``momentum=0.5``
            for sgd, ``betas`` for adam, ``decay`` for rmsprop).

    Returns:
        The optimizer.

    Raises:
        ValueError: unknown ``name`` (the error lists :data:`OPTIMIZERS`) or ``lr`` <= 0.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
    lr = _positive("lr", lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, **kwargs)
    if name == "rmsprop":
        return GravesRMSprop(params, lr=lr, **kwargs)
    return torch.optim.SGD(params, lr=lr, **kwargs)
