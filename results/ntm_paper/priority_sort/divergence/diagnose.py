"""Which guard lets the feed-forward NTM's gradient explode on priority sort? (a diagnostic, not a fix)

Runs ``memtasks train`` in this process after replacing one epsilon of ``agents/ntm.py`` for the run:
``--sharpen-eps`` (inside ``log(w + eps)`` of the sharpening, eq. 9), ``--similarity-eps`` (the guard of the
key and memory-row norms of the cosine similarity, eq. 6) or ``--gamma-max`` (the sharpening exponent clamped to at
most this, so no gradient flows above it; the model's own ceiling is 1 + softplus(clip_controller) = 21) or
``--clip-weighting-grad`` (the gradient reaching the previous step's weightings w_{t-1} where they enter the
interpolation, eq. 7, clamped elementwise to [-c, c]: the recurrent edge of the addressing) or
``--clip-sharpen-grad`` (the gradient reaching the weighting that enters the sharpening, eq. 9, clamped
elementwise to [-c, c]: every path from a later step back to an earlier one passes there); the forward pass is
unchanged by either; everything after ``--`` is the train command.
The module file is not changed, so the runs' code digests and the experiment's cells stay as they are.

    python results/ntm_paper/priority_sort/divergence/diagnose.py --similarity-eps 1e-2 -- train ...
"""

import argparse
import sys

import torch

import agents.ntm as ntm
from memtasks.cli import run

parser = argparse.ArgumentParser()
parser.add_argument("--sharpen-eps", type=float, default=None)
parser.add_argument("--similarity-eps", type=float, default=None)
parser.add_argument("--gamma-max", type=float, default=None)
parser.add_argument("--clip-weighting-grad", type=float, default=None)
parser.add_argument("--clip-sharpen-grad", type=float, default=None)
args, rest = parser.parse_known_args()
if args.sharpen_eps is not None:
    sharpen, eps = ntm.sharpen, args.sharpen_eps
    ntm.sharpen = lambda w, gamma, eps=eps: sharpen(w, gamma, eps)
if args.similarity_eps is not None:
    content, eps2 = ntm.content_addressing, args.similarity_eps
    ntm.content_addressing = lambda memory, key, beta, eps=eps2: content(memory, key, beta, eps)
if args.gamma_max is not None:
    sharpen_, gmax = ntm.sharpen, args.gamma_max
    ntm.sharpen = lambda w, gamma, *more: sharpen_(w, gamma.clamp(max=gmax), *more)


class _ClampGrad(torch.autograd.Function):
    """Identity forward; the backward clamps the incoming gradient elementwise to [-c, c]."""

    @staticmethod
    def forward(ctx, x, c):
        ctx.c = c
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(-ctx.c, ctx.c), None


if args.clip_weighting_grad is not None:
    interpolate_, c = ntm.interpolate, args.clip_weighting_grad
    ntm.interpolate = lambda w_content, w_prev, g: interpolate_(w_content, _ClampGrad.apply(w_prev, c), g)
if args.clip_sharpen_grad is not None:
    sharpen_c, c2 = ntm.sharpen, args.clip_sharpen_grad
    ntm.sharpen = lambda w, gamma, *more: sharpen_c(_ClampGrad.apply(w, c2), gamma, *more)
sys.argv = ["memtasks", *[a for a in rest if a != "--"]]
run()
