"""The training loss of every agent, chosen by the task's output kind.

``sequence_loss(logits, targets, mask, spec)`` returns one scalar to minimise:

- ``spec.output_kind == "bits"``: binary cross-entropy with logits, in nats,
  averaged over the scored elements, i.e. over every (sequence, step, channel)
  with ``mask == 1``. A mean (rather than a per-sequence sum) keeps the
  gradient scale independent of the batch size, the sequence lengths and the
  number of bits, so one learning rate fits every length range and curriculum
  stage. The *reported* cost (:func:`memtasks.core.score_bits`) is the paper's
  sum per sequence in bits; the two differ by the constant factor
  ``ln 2 * (scored steps * bits) / sequences`` per batch.
- ``spec.output_kind == "classes"``: cross-entropy averaged over the scored
  frames (``mask == 1``); targets on unscored frames are ignored, whatever
  their value (padding may hold any id).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from memtasks.core import TaskSpec

__all__ = ["sequence_loss"]


def sequence_loss(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, spec: TaskSpec, check_scored: bool = True
) -> torch.Tensor:
    """Mean loss over the scored steps of a batch (see the module docstring).

    Args:
        logits: ``(B, T, spec.output_size)`` raw outputs of the agent.
        targets: ``(B, T, output_size)`` bits in {0, 1} for bit outputs, or
            ``(B, T)`` integer class ids for class outputs.
        mask: ``(B, T)``, 1 where the step is scored and 0 elsewhere.
        spec: The task's spec; ``spec.output_kind`` picks the loss.
        check_scored: Refuse a mask with no scored step. The check reads the mask's sum back to
            the host (a device sync on a GPU); a caller that checked the mask before moving it to
            the device (the training loop does) passes ``False``.

    Returns:
        A scalar tensor (differentiable with respect to ``logits``).

    Raises:
        ValueError: a shape does not match, or no step is scored (mask all zero).
    """
    if mask.dim() != 2:
        raise ValueError(f"mask must have shape (B, T), got {tuple(mask.shape)}")
    B, T = mask.shape
    expected = (B, T, spec.output_size)
    if tuple(logits.shape) != expected:
        raise ValueError(f"logits must have shape {expected} (B, T, output_size), got {tuple(logits.shape)}")
    weights = mask.to(logits.dtype)
    scored = weights.sum()
    if check_scored and float(scored) <= 0:
        raise ValueError("mask has no scored step (all zero): nothing to learn from this batch")

    if spec.output_kind == "bits":
        if tuple(targets.shape) != expected:
            raise ValueError(f"bit targets must have shape {expected}, got {tuple(targets.shape)}")
        bce = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")
        return (bce * weights[..., None]).sum() / (scored * spec.output_size)

    if spec.output_kind == "classes":
        if tuple(targets.shape) != (B, T):
            raise ValueError(f"class targets must have shape {(B, T)} (B, T), got {tuple(targets.shape)}")
        # unscored frames may hold any id (padding): point them at class 0, their weight is 0
        safe = torch.where(weights > 0, targets.long(), torch.zeros_like(targets, dtype=torch.long))
        ce = F.cross_entropy(logits.reshape(B * T, -1), safe.reshape(B * T), reduction="none")
        return (ce * weights.reshape(B * T)).sum() / scored

    raise ValueError(f"spec.output_kind must be 'bits' or 'classes', got {spec.output_kind!r}")
