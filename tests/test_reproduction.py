"""results/REPRODUCTION.md: lr chosen on validation, medians over seeds, and verdicts that follow the numbers."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from benchmarks.reproduction import CLAIMS, report, task_section
from benchmarks.results import RUNS_COLUMNS

COPY = next(c for c in CLAIMS if c.folder == "copy")


def _write(folder, scores, lost=()):
    """A results folder of Copy cells: ``scores[(agent, lr)] = (validation, {length: [seed values]})``;
    ``lost``: (agent, lr, seed, status) of cells that ended without scores."""
    rows, cells = [], [{"task": "memtasks/Copy-v0", "agent": agent, "lr": lr, "seed": seed, "status": status,
                        "train": {"steps": 3000, "batch_size": 16}} for agent, lr, seed, status in lost]
    for (agent, lr), (valid, by_length) in scores.items():
        for seed in range(len(next(iter(by_length.values())))):
            cells.append({"task": "memtasks/Copy-v0", "agent": agent, "lr": lr, "seed": seed,
                          "train": {"steps": 3000, "batch_size": 16}})  # fmt: skip
            base = {"experiment": "copy", "task": "memtasks/Copy-v0", "agent": agent, "seed": seed, "lr": lr,
                    "phase": "eval", "metric": "bit_errors", "step": 3000, "sequences_seen": 48000,
                    "wall_s": 1.0}  # fmt: skip
            rows.append({**base, "split": "valid", "length": -1, "value": valid})
            for length, values in by_length.items():
                rows.append({**base, "split": "test", "length": length, "value": values[seed]})
    folder.mkdir(parents=True)
    pd.DataFrame(rows).reindex(columns=list(RUNS_COLUMNS)).to_csv(folder / "runs.csv", index=False)
    (folder / "experiment.json").write_text(json.dumps({"cells": cells, "tasks": {}}))


@pytest.mark.parametrize(
    "at_120, at_20, verdict",
    [([1.0, 5.0, 300.0], [0.0, 0.1, 0.2], "reproduced"),  # the median seed counts, not the worst
     ([20.0, 30.0, 5.0], [0.0, 0.1, 0.2], "partly"),  # fits the training range, fails at 120
     ([20.0, 30.0, 5.0], [3.0, 2.0, 4.0], "not reproduced")],
)  # fmt: skip
def test_verdict_follows_the_median_seed_of_the_lr_chosen_on_validation(tmp_path, at_120, at_20, verdict):
    _write(tmp_path / "copy", {
        ("ntm", 1e-3): (0.5, {20: at_20, 120: at_120}),
        ("ntm", 1e-2): (9.0, {20: [0.0] * 3, 120: [0.0] * 3}),  # best on test, worse on validation: not chosen
        ("lstm", 1e-3): (3.0, {20: [6.0] * 3, 120: [400.0] * 3}),
    })  # fmt: skip
    text, got = task_section(COPY, tmp_path)
    assert got == verdict
    assert "| `ntm` | 0.001 | 3 |" in text and "| `lstm` | 0.001 | 3 |" in text
    assert f"{sorted(at_120)[1]:.3g} ({min(at_120):.3g}-{max(at_120):.3g})" in text  # median (min-max)
    assert "Budget per cell (sequences): 48,000" in text


def test_other_agents_within_the_limit_are_named_but_do_not_change_the_verdict(tmp_path):
    _write(tmp_path / "copy", {
        ("ntm", 1e-3): (0.5, {20: [3.0] * 3, 120: [300.0] * 3}),
        ("dnc", 1e-3): (0.1, {20: [0.0] * 3, 120: [2.0, 3.0, 400.0]}),  # median seed 3.0 <= 9.6
        ("lstm", 1e-3): (3.0, {20: [6.0] * 3, 120: [400.0] * 3}),
    })  # fmt: skip
    text, got = task_section(COPY, tmp_path)
    assert got == "not reproduced"
    line = next(x for x in text.splitlines() if x.startswith("Other agents within the check's limit"))
    assert "`dnc` 3" in line and "lstm" not in line and "`ntm`" not in line
    _write(tmp_path / "none" / "copy", {("ntm", 1e-3): (0.5, {20: [3.0] * 3, 120: [300.0] * 3})})
    assert "Other agents within" not in task_section(COPY, tmp_path / "none")[0]


def test_an_lr_chosen_by_a_validation_tie_is_said_beside_the_verdict(tmp_path):
    _write(tmp_path / "copy", {
        ("ntm", 1e-3): (0.0, {20: [0.0] * 3, 120: [5.0] * 3}),
        ("ntm", 1e-2): (0.0, {20: [0.0] * 3, 120: [250.0] * 3}),  # the same validation score
    })  # fmt: skip
    text, got = task_section(COPY, tmp_path)
    assert got == "reproduced"  # the smallest tied lr, 1e-3
    line = next(x for x in text.splitlines() if x.startswith("`ntm`'s lr:"))
    assert "tied with 0.01" in line and "tie-break" in line
    assert "0.001: 5, 0.01: 250" in text  # both tied lrs' medians are shown
    _write(tmp_path / "untied" / "copy", {("ntm", 1e-3): (0.0, {20: [0.0] * 3, 120: [5.0] * 3}),
                                          ("ntm", 1e-2): (0.1, {20: [0.0] * 3, 120: [250.0] * 3})})  # fmt: skip
    assert "tie-break" not in task_section(COPY, tmp_path / "untied")[0]


def test_diverged_seeds_are_counted_beside_the_scored_ones(tmp_path):
    _write(tmp_path / "copy", {("ntm", 1e-3): (0.5, {20: [0.0, 0.1], 120: [1.0, 2.0]}),
                               ("ntm", 1e-2): (9.0, {20: [0.0] * 2, 120: [0.0] * 2})},
           lost=[("ntm", 1e-3, 2, "diverged"), ("ntm", 1e-2, 2, "failed"), ("ntm", 1e-2, 3, "failed")])
    text, _ = task_section(COPY, tmp_path)
    assert "| `ntm` | 0.001 | 2 (+1 diverged) |" in text  # only the chosen lr's lost seeds


def test_missing_folders_are_reported_as_not_run(tmp_path):
    path = report(tmp_path, tmp_path / "REPRODUCTION.md")
    text = path.read_text()
    assert text.count("**Verdict: not run.**") == len(CLAIMS) == 5
    assert "memtasks run benchmarks/experiments/ntm_paper/priority_sort.toml" in text


def test_a_second_test_axis_gets_a_table_of_the_best_ntm(tmp_path):
    repeat = next(c for c in CLAIMS if c.folder == "repeat_copy")
    folder = tmp_path / "repeat_copy"
    _write(folder, {("ntm", 1e-3): (0.5, {10: [0.0, 1.0, 2.0]})})
    runs = pd.read_csv(folder / "runs.csv")
    tests = runs[runs["split"] == "test"]  # one row per seed at length 10
    grid = [tests.assign(metric=f"bit_errors@repeats={r}", value=values)
            for r, values in [(5, [0.0, 1.0, 2.0]), (20, [7.0, 9.0, 30.0])]]
    pd.concat([runs, *grid]).to_csv(folder / "runs.csv", index=False)
    text, _ = task_section(repeat, tmp_path)
    assert "| repeats | length 10 |" in text  # one row per repeat count, one column per length
    assert "| 5 | 1 (0-2) |" in text and "| 20 | 9 (7-30) |" in text


def test_an_lr_with_a_diverged_seed_is_not_chosen_on_its_survivors(tmp_path):
    # lr 1e-2 has the better mean validation score over its seeds that finished
    scores = {("ntm", 1e-3): (0.5, {20: [0.0] * 3, 120: [50.0] * 3}),
              ("ntm", 1e-2): (0.1, {20: [0.0] * 2, 120: [1.0] * 2})}  # fmt: skip
    _write(tmp_path / "all" / "copy", scores)
    assert "| `ntm` | 0.01 | 2 |" in task_section(COPY, tmp_path / "all")[0]  # nothing lost: the better mean
    _write(tmp_path / "lost" / "copy", scores, lost=[("ntm", 1e-2, 2, "diverged")])
    text, _ = task_section(COPY, tmp_path / "lost")
    assert "| `ntm` | 0.001 | 3 |" in text  # its third seed diverged: the lr that kept every seed


def test_dynamic_ngrams_has_no_partly_level(tmp_path):
    # the check is on training-range sequences: far above the Bayes-optimal cost is not "partly"
    claim = next(c for c in CLAIMS if c.folder == "dynamic_ngrams")
    assert claim.fit_threshold is None
    folder = tmp_path / "dynamic_ngrams"
    _write(folder, {("ntm", 1e-3): (178.0, {200: [178.0, 179.0, 177.0]})})
    runs = pd.read_csv(folder / "runs.csv").assign(task="memtasks/DynamicNGrams-v0", metric="cost_bits")
    runs.to_csv(folder / "runs.csv", index=False)
    manifest = {"cells": [], "tasks": {"memtasks/DynamicNGrams-v0": {"order": 6, "min_length": 200,
                                                                    "max_length": 200}}}  # fmt: skip
    (folder / "experiment.json").write_text(json.dumps(manifest))
    text, verdict = task_section(claim, tmp_path)
    assert verdict == "not reproduced", text


def test_the_ntm_variant_is_chosen_on_validation_not_on_the_check(tmp_path):
    scores = {("ntm", 1e-3): (0.5, {20: [0.0] * 3, 120: [50.0] * 3}),  # the better validation score
              ("ntm-sgc", 1e-3): (2.0, {20: [0.0] * 3, 120: [1.0] * 3})}  # the better check number
    _write(tmp_path / "valid" / "copy", scores)
    text, verdict = task_section(COPY, tmp_path / "valid")
    assert verdict == "partly" and "NTM variant `ntm` (one of 2, chosen on mean validation" in text
    line = next(x for x in text.splitlines() if x.startswith("Other NTM variants within the limit"))
    assert "`ntm-sgc` 1" in line  # said beside, never counted
    _write(tmp_path / "lost" / "copy", scores, lost=[("ntm", 1e-3, 3, "diverged")])
    text, verdict = task_section(COPY, tmp_path / "lost")  # ntm's survivors do not win it the choice
    assert verdict == "reproduced" and "NTM variant `ntm-sgc`" in text and "`ntm` 0.5 (1 seed lost)" in text


def test_without_validation_rows_the_variant_falls_back_to_the_check_and_says_so(tmp_path):
    _write(tmp_path / "copy", {("ntm", 1e-3): (0.5, {20: [0.0] * 3, 120: [50.0] * 3}),
                               ("ntm-sgc", 1e-3): (2.0, {20: [0.0] * 3, 120: [1.0] * 3})})  # fmt: skip
    runs = pd.read_csv(tmp_path / "copy" / "runs.csv")
    runs[runs["split"] != "valid"].to_csv(tmp_path / "copy" / "runs.csv", index=False)
    text, verdict = task_section(COPY, tmp_path)
    assert verdict == "reproduced" and "NTM variant `ntm-sgc` (one of 2, the lowest median" in text
    assert "no validation rows" in text


def test_priority_sort_reports_bit_errors_beside_its_cost(tmp_path):
    claim = next(c for c in CLAIMS if c.folder == "priority_sort")
    assert claim.metric == "cost_bits" and claim.beside == "bit_errors"
    folder = tmp_path / "priority_sort"
    _write(folder, {("ntm", 1e-3): (0.5, {20: [30.0, 31.0, 60.0]}),
                    ("ntm", 1e-2): (9.0, {20: [1.0, 1.0, 1.0]})})  # fmt: skip
    runs = pd.read_csv(folder / "runs.csv").assign(task="memtasks/PrioritySort-v0")
    cost = runs.assign(metric="cost_bits", value=runs["value"] * 4)  # bit errors x 4, so the two lines differ
    pd.concat([cost, runs]).to_csv(folder / "runs.csv", index=False)
    manifest = json.loads((folder / "experiment.json").read_text())
    for cell in manifest["cells"]:
        cell["task"] = "memtasks/PrioritySort-v0"
    (folder / "experiment.json").write_text(json.dumps(manifest))
    text, verdict = task_section(claim, tmp_path)
    assert verdict == "not reproduced"  # cost 124 at lr 1e-3, chosen on validation cost 2 (vs 36)
    line = next(x for x in text.splitlines() if x.startswith("bit errors per sequence at length 20, beside"))
    assert "`ntm` 31 (30-60)" in line  # the chosen lr's seeds, not lr 1e-2's


def test_probes_beyond_the_comparison_are_linked_by_their_readme_title(tmp_path):
    claim = next(c for c in CLAIMS if c.folder == "dynamic_ngrams")
    assert claim.probes  # the 192k run is linked from the report
    root = tmp_path / "ntm_paper"
    _write(root / "dynamic_ngrams", {("ntm", 1e-3): (150.0, {200: [150.0] * 3})})
    assert "Tried beyond" not in task_section(claim, root, tmp_path)[0]  # no README yet: nothing said
    probe = tmp_path / claim.probes[0]
    probe.mkdir(parents=True)
    (probe / "README.md").write_text("# More budget (a probe)\n\ntext\n")
    text, _ = task_section(claim, root, tmp_path)
    assert f"- [More budget (a probe)]({claim.probes[0]}/README.md)" in text


@pytest.mark.parametrize("above, verdict", [(1.9, "reproduced"), (2.1, "not reproduced")])
def test_dynamic_ngrams_check_is_against_the_optimal_cost_of_the_test_sequences(tmp_path, above, verdict):
    # the limit is the Bayes-optimal cost of the very sequences the agents were scored on, plus 2: 16 test
    # sequences (of length 200, where the claim is checked) have a mean optimal cost far from the learning
    # curves' 1,024-sequence estimate
    from benchmarks.evaluate import eval_rng
    from benchmarks.plots import _optimal_cost
    from memtasks import make_task

    claim = next(c for c in CLAIMS if c.folder == "dynamic_ngrams")
    kwargs = {"order": 3, "min_length": 200, "max_length": 200}
    task = make_task("memtasks/DynamicNGrams-v0", **kwargs)
    optimal = task.optimal_score(task.sample(16, eval_rng(7, 200), length=200))["cost_bits"]
    cells = [{"task": "memtasks/DynamicNGrams-v0", "agent": "ntm", "lr": 1e-3, "seed": s, "task_kwargs": kwargs,
              "eval": {"lengths": [200], "samples": 16, "seed": 7}, "train": {"steps": 10, "batch_size": 4}}
             for s in range(3)]  # fmt: skip
    estimate = _optimal_cost("memtasks/DynamicNGrams-v0", {"cells": cells})[0]
    assert abs(estimate - optimal) > 0.5  # so a check against the estimate would give another verdict
    folder = tmp_path / "dynamic_ngrams"
    folder.mkdir()
    base = {"experiment": "dynamic_ngrams", "task": "memtasks/DynamicNGrams-v0", "agent": "ntm", "lr": 1e-3,
            "phase": "eval", "metric": "cost_bits", "step": 10, "sequences_seen": 40, "wall_s": 1.0}
    rows = [{**base, "seed": s, "split": split, "length": length, "value": optimal + above}
            for s in range(3) for split, length in (("valid", -1), ("test", 200))]  # fmt: skip
    pd.DataFrame(rows).reindex(columns=list(RUNS_COLUMNS)).to_csv(folder / "runs.csv", index=False)
    (folder / "experiment.json").write_text(json.dumps({"cells": cells, "tasks": {}, "eval": cells[0]["eval"]}))
    text, got = task_section(claim, tmp_path)
    assert got == verdict, text
    assert f"check limit {optimal + 2:.1f}" in text


def test_a_larger_budget_probe_is_read_beside_the_verdict_not_as_it(tmp_path):
    import dataclasses

    claim = dataclasses.replace(COPY, longer="ntm_paper/copy_longer")
    root = tmp_path / "ntm_paper"
    _write(root / "copy", {("ntm", 1e-3): (0.5, {20: [3.0] * 3, 120: [300.0] * 3})})
    _write(root / "copy_longer", {
        ("ntm", 1e-3): (0.1, {20: [0.0] * 3, 120: [2.0, 3.0, 400.0]}),  # median seed 3.0 <= 9.6: within
        ("ntm-x", 1e-2): (0.1, {20: [0.0] * 2, 120: [1.0, 2.0]}),  # within, but two seeds: not counted
    })  # fmt: skip
    text, verdict = task_section(claim, root, tmp_path)
    assert verdict == "not reproduced"  # the equal-budget comparison's, whatever the probe shows
    assert "`ntm` 0.001: 3.0 (3 seeds)" in text and "`ntm-x` 0.01: 1.5 (2 seeds)" in text
    assert "within the check's limit (9.6): `ntm` at 0.001." in text
    _write(root / "copy_other", {("ntm", 1e-3): (0.1, {20: [0.0] * 3, 120: [20.0] * 3})})
    text, _ = task_section(dataclasses.replace(claim, longer="ntm_paper/copy_other"), root, tmp_path)
    assert "within the check's limit (9.6): none." in text
