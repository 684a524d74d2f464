"""Memory-write ablation on bAbI 1k (issue 11): test error with and without memory writes, per agent and task.

    python results/babi_memory_ablation/summarize.py > results/babi_memory_ablation/README.md

Each folder was made by
`memtasks run benchmarks/experiments/babi_1k.toml --out results/babi_memory_ablation/<agent>_writes_<on|off>
--only 'bAbI-qa1-v0__<agent>__seed0' --only 'bAbI-qa6-v0__<agent>__seed0' --only 'bAbI-qa15-v0__<agent>__seed0'
--workers 1` (with `--set agents.<agent>.ablate_writes=true` for "off").
"""

from pathlib import Path

from benchmarks.babi import cell_results
from benchmarks.tables import markdown_table

HERE = Path(__file__).resolve().parent
rows = []
for agent in ("ntm", "dnc"):
    found = {}
    for writes in ("on", "off"):
        folder = HERE / f"{agent}_writes_{writes}"
        if (folder / "runs.csv").is_file() or (folder / "runs.csv.gz").is_file():
            cells, _, _ = cell_results([folder])
            found[writes] = cells.set_index("task")
    for task in (1, 6, 15):
        cells = [f"{found[w].loc[task, 'test_error']:.1f} (train {found[w].loc[task, 'train_error']:.1f})"
                 if w in found and task in found[w].index else "not run" for w in ("on", "off")]
        rows.append([agent, f"qa{task}", *cells])
print("# bAbI 1k: does the memory matter? Test error % with memory writes on and off (seed 0)\n")
print(__doc__.split("\n\n", 1)[1].strip() + "\n")
print(markdown_table(["agent", "task", "writes on: test (train)", "writes off: test (train)"], rows))
print("\nOne seed per cell; the seed-to-seed spread of these agents on these tasks is about 1-3 points "
      "(results/babi/table_1k.md), so only differences well beyond that say the memory is used.")
