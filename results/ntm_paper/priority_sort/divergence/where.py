"""Where does the feed-forward NTM's gradient explode on priority sort? (a diagnostic; agents/ntm.py unchanged)

Trains the experiment's feed-forward NTM (4 + 4 heads, controller 512) eagerly on priority sort (batch 16, Adam,
clip 10, one thread) and, at every step, records the global gradient norm, the parameter with the largest
gradient norm, and over the batch's time steps the smallest key norm and memory-row norm seen by the content
similarity (eq. 6) and the smallest weighting entry entering the sharpening's log (eq. 9) and the largest sharpening
exponent gamma. Stops at the first non-finite gradient norm or after --steps.

    python results/ntm_paper/priority_sort/divergence/where.py --lr 3e-3 --seed 2 --steps 1500 --out FILE.csv

With ``--trace-steps 100,326`` it also follows, at those training steps, the gradient backwards through the
sequence's time steps: per time step t, the norm of dL/dx for x = the previous weightings w_{t-1} entering the
interpolation (eq. 7), the weighting entering the sharpening (eq. 9) and leaving it, and the memory M_{t-1}
(summed over every use), with the largest gamma at t and the largest ratio of second-largest to largest entry of a
weighting entering the sharpening among heads whose gamma exceeds 10 (near 1: two locations tie). Written to
``--trace-out`` (one row per traced step and time step); the training itself is unchanged.
"""

import argparse
import csv
import math

import numpy as np
import torch

import agents.ntm as ntm
import memtasks
from agents import make_agent, sequence_loss

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, required=True)
parser.add_argument("--seed", type=int, required=True)
parser.add_argument("--steps", type=int, default=1500)
parser.add_argument("--out", required=True)
parser.add_argument("--trace-steps", default="", help="comma-separated training steps to trace backwards in time")
parser.add_argument("--trace-out", default=None, help="CSV of the traced steps (required with --trace-steps)")
args = parser.parse_args()
trace_steps = {int(s) for s in args.trace_steps.split(",") if s}
if trace_steps and not args.trace_out:
    parser.error("--trace-out is required with --trace-steps")
torch.set_num_threads(1)

stats: dict[str, float] = {}


def _low(name: str, value: torch.Tensor) -> None:
    stats[name] = min(stats.get(name, math.inf), float(value.detach().min()))


content, sharpen, interpolate = ntm.content_addressing, ntm.sharpen, ntm.interpolate
tracing = False
trace: list[dict] = []  # one dict per time step of the traced batch


def _grad_norm_into(t: int, name: str, x: torch.Tensor) -> None:
    """Record ||dL/dx|| (over the whole batch) into time step t's row when the backward reaches x."""
    def hook(grad: torch.Tensor) -> None:
        trace[t][name] = float(grad.norm())
    x.register_hook(hook)


def content_watched(memory, key, beta, *more):  # *more: whatever the core passes, so ntm's own eps defaults stay
    _low("min_key_norm", key.detach().norm(dim=-1))
    _low("min_row_norm", memory.detach().norm(dim=1))
    if tracing:  # called once per time step: opens time step t's row
        trace.append({"t": len(trace)})
        if memory.requires_grad:
            _grad_norm_into(len(trace) - 1, "grad_memory", memory)
    return content(memory, key, beta, *more)


def interpolate_watched(w_content, w_prev, g):
    if tracing and w_prev.requires_grad:
        _grad_norm_into(len(trace) - 1, "grad_w_prev", w_prev)
    return interpolate(w_content, w_prev, g)


def sharpen_watched(w, gamma, *more):
    _low("min_w_before_sharpen", w.detach())
    stats["max_gamma"] = max(stats.get("max_gamma", 0.0), float(gamma.detach().max()))
    out = sharpen(w, gamma, *more)
    if tracing:
        t = len(trace) - 1
        top2 = w.detach().topk(2, dim=-1).values  # (B, H, 2)
        ratio = top2[..., 1] / top2[..., 0]  # (B, H)
        high = gamma.detach() > 10
        trace[t]["max_gamma"] = float(gamma.detach().max())
        trace[t]["max_tie_ratio_gamma_over_10"] = float(ratio[high].max()) if bool(high.any()) else float("nan")
        _grad_norm_into(t, "grad_sharpen_in", w)
        _grad_norm_into(t, "grad_sharpen_out", out)
    return out


ntm.content_addressing, ntm.sharpen, ntm.interpolate = content_watched, sharpen_watched, interpolate_watched

task = memtasks.make_task("memtasks/PrioritySort-v0", bits=8, min_length=20, max_length=20, num_outputs=16)
torch.manual_seed(args.seed)
agent = make_agent("ntm", task.spec, device="cpu", controller="feedforward", controller_size=512, read_heads=4,
                   write_heads=4)
params = dict(agent.named_parameters())
optimizer = torch.optim.Adam(params.values(), lr=args.lr)
rng = np.random.default_rng(args.seed)
fields = ["step", "loss", "grad_norm", "largest_grad", "largest_grad_norm", "min_key_norm", "min_row_norm",
          "min_w_before_sharpen", "max_gamma"]
trace_fields = ["step", "t", "grad_w_prev", "grad_sharpen_in", "grad_sharpen_out", "grad_memory", "max_gamma",
                "max_tie_ratio_gamma_over_10"]
trace_file = open(args.trace_out, "w", newline="") if trace_steps else None
trace_out = csv.DictWriter(trace_file, trace_fields) if trace_file else None
if trace_out:
    trace_out.writeheader()
with open(args.out, "w", newline="") as f:
    out = csv.DictWriter(f, fields)
    out.writeheader()
    for step in range(1, args.steps + 1):
        stats.clear()
        tracing = step in trace_steps
        trace.clear()
        batch = task.sample(16, rng)
        x, y, m = (torch.as_tensor(a) for a in (batch.inputs, batch.targets, batch.mask))
        loss = sequence_loss(agent(x), y, m, task.spec, check_scored=False)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if tracing:
            trace_out.writerows({"step": step, **row} for row in trace)
            trace_file.flush()
        norms = {n: float(p.grad.norm()) for n, p in params.items() if p.grad is not None}
        total = float(torch.nn.utils.get_total_norm([p.grad for p in params.values() if p.grad is not None]))
        worst = max(norms, key=lambda n: norms[n] if math.isfinite(norms[n]) else math.inf)
        out.writerow({"step": step, "loss": float(loss.detach()), "grad_norm": total, "largest_grad": worst,
                      "largest_grad_norm": norms[worst], **stats})
        if not math.isfinite(total):
            print(f"non-finite gradient norm at step {step}; largest: {worst}")
            break
        torch.nn.utils.clip_grads_with_norm_(list(params.values()), 10.0, torch.tensor(total))
        optimizer.step()
        if step % 100 == 0:
            f.flush()
            print(step, f"{float(loss.detach()):.3f}", f"{total:.3g}", flush=True)
