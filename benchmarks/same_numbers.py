"""Do two commits compute the same numbers? Short trainings at both, their logs compared bit for bit.

The evidence behind a ``[[change]]`` of ``benchmarks/code_changes.toml`` (a code change declared not to change
any recorded cell's numbers, :func:`benchmarks.provenance.carry_forward`): every variant is trained at
``--before`` and at ``--after``, in git worktrees of the two commits, on this machine, one thread each, the
compiled path as the harness runs it, and every logged number (loss, gradient norm, costs: all of
``train.csv`` but its clock column) and every final weight (``model.pt``) must be equal to the last bit. Two
machines' floats differ (results/ntm_paper/copy/machines.md), one machine's do not, so only a comparison on
one machine can show that a change left the arithmetic alone.

    python -m benchmarks.same_numbers --before 8b2633b --after ccb3b03 --agent ntm \\
        --task memtasks/Copy-v0 --task-kwargs '{"bits": 8, "min_length": 1, "max_length": 10}' \\
        --variant '{}' --variant '{"sharpen_grad_clip": 0.1}' --steps 100 --out results/provenance/x.md

Exit status 0 when every variant gives the same numbers at both commits, 1 when one does not.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

from benchmarks.provenance import cpu_name

_ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str, cwd: Path = _ROOT) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: git {' '.join(args)}: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout.strip()


def _train(tree: Path, out: Path, args: argparse.Namespace, variant: dict) -> None:
    command = [
        sys.executable, "-m", "memtasks.cli", "train", "--task", args.task, "--agent", args.agent,
        "--task-kwargs", args.task_kwargs, "--agent-kwargs", json.dumps(variant), "--seed", str(args.seed),
        "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
        "--log-every", "10", "--threads", "1", "--device", "cpu", "--no-preset", "--no-progress",
        "--out", str(out),
    ]
    env = {**os.environ, "PYTHONPATH": str(tree), "TORCHINDUCTOR_CACHE_DIR": str(out.parent / "inductor")}
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: training at {tree.name} failed: {(done.stderr.strip().splitlines() or [''])[-1]}")


def _first_difference(a: pd.DataFrame, b: pd.DataFrame) -> str | None:
    if a.shape != b.shape or list(a.columns) != list(b.columns):
        return f"shapes differ: {a.shape} against {b.shape}"
    for column in a.columns:
        unequal = (a[column] != b[column]) & ~(a[column].isna() & b[column].isna())
        if unequal.any():
            row = int(unequal.to_numpy().nonzero()[0][0])
            return f"{column} in row {row}: {a[column].iloc[row]!r} against {b[column].iloc[row]!r}"
    return None


def _weights_difference(a: dict, b: dict) -> str | None:
    if list(a) != list(b):
        return f"parameter names differ: {sorted(set(a) ^ set(b))[:3]}"
    for name in a:
        if a[name].shape != b[name].shape or not torch.equal(a[name], b[name]):
            return f"final weights differ in {name}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the commit before the change")
    parser.add_argument("--after", required=True, help="the commit after it")
    parser.add_argument("--agent", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--task-kwargs", default="{}", help="JSON")
    parser.add_argument("--variant", action="append", required=True,
                        help="agent kwargs as JSON, one training per variant (repeatable)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="the markdown report to write")
    args = parser.parse_args(argv)
    variants = []
    for text in args.variant:
        try:
            variants.append(json.loads(text))
        except json.JSONDecodeError:
            parser.error(f"--variant must be a JSON object, got {text!r}")
    commits = {name: _git("rev-parse", "--verify", f"{rev}^{{commit}}") for name, rev in
               (("before", args.before), ("after", args.after))}
    rows = []
    with tempfile.TemporaryDirectory(prefix="same_numbers_") as tmp:
        trees = {}
        for name, commit in commits.items():
            trees[name] = Path(tmp) / name
            _git("worktree", "add", "--detach", "--quiet", str(trees[name]), commit)
        try:
            for i, variant in enumerate(variants):
                logs = {}
                for name, tree in trees.items():
                    out = Path(tmp) / f"run{i}" / name
                    _train(tree, out, args, variant)
                    train = pd.read_csv(out / "train.csv").drop(columns=["wall_s"])
                    weights = torch.load(out / "model.pt", weights_only=True)["state_dict"]
                    logs[name] = (train, weights)
                difference = (_first_difference(logs["before"][0], logs["after"][0])
                              or _weights_difference(logs["before"][1], logs["after"][1]))
                last_loss = logs["after"][0]["loss"].iloc[-1]
                rows.append((variant, len(logs["after"][0]), len(logs["after"][1]), last_loss, difference))
                print(f"{json.dumps(variant)}: {'same numbers' if difference is None else 'DIFFERENT: ' + difference}",
                      flush=True)
        finally:
            for tree in trees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=_ROOT, capture_output=True)
    command = "python -m benchmarks.same_numbers " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    lines = [
        f"# Same numbers at {commits['before'][:7]} and {commits['after'][:7]}: `{args.agent}` on `{args.task}`",
        "", f"    {command}", "",
        f"Machine: {cpu_name()}. Each variant trained {args.steps} steps of {args.batch_size} (seed {args.seed}, "
        f"lr {args.lr:g}, one thread, compiled, logged every 10 steps) at both commits; every column of "
        "train.csv but wall_s and every tensor of the final weights compared for exact equality.", "",
        "| agent kwargs | train.csv rows | weight tensors | last loss | result |", "|---|---:|---:|---:|---|",
    ]
    for variant, n_train, n_eval, last_loss, difference in rows:
        verdict = "same numbers" if difference is None else f"different: {difference}"
        lines.append(f"| `{json.dumps(variant)}` | {n_train} | {n_eval} | {last_loss:.10g} | {verdict} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(row[-1] is None for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
