"""Compare runner cells with the migrated records of the retired bAbI harness (same task, agent, seed).

``python -m benchmarks.babi_compare results/babi/legacy_1k results/babi_1k --out results/babi/runner_vs_legacy_1k.md``
writes, per shared cell, the validation, test and train error and the selected epoch of both, and whether they
are equal (to 1e-9): the check that the generic runner's epoch mode reproduces the old training loop.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.babi import cell_results
from benchmarks.tables import markdown_table
from memtasks.atomic import write_text_atomic


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.babi_compare", description=__doc__.split("\n")[0])
    parser.add_argument("legacy", help="the migrated records' folder")
    parser.add_argument("runner", nargs="+", help="memtasks run results folders of the same cells (later ones win)")
    parser.add_argument("--out", required=True, help="the Markdown file to write")
    parser.add_argument("--note", action="append", default=[], help="a line to add under the summary (repeatable)")
    args = parser.parse_args(argv)
    old, _, _ = cell_results([args.legacy])
    new, _, _ = cell_results(args.runner)
    keys = ["size", "task", "agent", "seed"]
    both = old.merge(new, on=keys, suffixes=("_legacy", "_runner")).sort_values(keys)
    rows, equal = [], 0
    for _, r in both.iterrows():
        same = all(abs(r[f"{m}_legacy"] - r[f"{m}_runner"]) < 1e-9 for m in ("valid_error", "test_error")) and \
            r["best_epoch_legacy"] == r["best_epoch_runner"]
        equal += same
        rows.append([r["size"], str(r["task"]), r["agent"], str(r["seed"]),
                     f"{r['valid_error_legacy']:.1f} / {r['valid_error_runner']:.1f}",
                     f"{r['test_error_legacy']:.1f} / {r['test_error_runner']:.1f}",
                     f"{r['best_epoch_legacy']} / {r['best_epoch_runner']}", "yes" if same else "**no**"])  # fmt: skip
    command = "python -m benchmarks.babi_compare " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    lines = []
    for agent, group in both.groupby("agent"):
        same = sum(row[-1] == "yes" for row in rows if row[2] == agent)
        gap = (group["test_error_runner"] - group["test_error_legacy"]).abs()
        lines.append(f"- {agent}: {same} of {len(group)} cells equal; test error differs by at most {gap.max():.1f} "
                     f"points (mean over the cells {gap.mean():.2f}); mean test error legacy "
                     f"{group['test_error_legacy'].mean():.2f}, runner {group['test_error_runner'].mean():.2f}.")
    text = [
        "# bAbI: the generic runner against the retired harness's records, cell by cell", "",
        f"Made by `{command}` on {_dt.date.today().isoformat()}. {equal} of {len(both)} shared cells equal "
        "(validation and test error to 1e-9, and the selected epoch). Errors in %, legacy / runner.", "",
        *lines, *(["", *args.note] if args.note else []), "",
        markdown_table(["size", "task", "agent", "seed", "valid", "test", "selected epoch", "equal"], rows), "",
    ]
    write_text_atomic(Path(args.out), "\n".join(text))
    print(f"{equal} of {len(both)} shared cells equal; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
