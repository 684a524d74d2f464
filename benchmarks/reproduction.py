"""``results/REPRODUCTION.md``: the NTM paper's five tasks, the paper's claim beside our numbers.

    python -m benchmarks.reproduction                       # reads results/ntm_paper/<task>/, writes results/REPRODUCTION.md

For each task of :data:`CLAIMS` it reads the experiment's results folder (``memtasks run
benchmarks/experiments/ntm_paper/<task>.toml --out results/ntm_paper/<task>``), picks each agent's learning rate
by its mean validation score (:func:`benchmarks.leaderboard.best_lrs`; never on test lengths), and reports per
agent the median and range over seeds of the score at the task's test lengths. The verdict applies the claim's
check to one NTM variant (``ntm``, ``ntm-ff``, ``ntm-sgc``, ...), chosen like the lr and never on test lengths
(:func:`best_variant`: fewest lost seeds, then the best mean validation score):

- **reproduced**: the check holds (e.g. Copy: at most 9.6 wrong bits per sequence at length 120);
- **partly**: the check fails but the NTM fits its training range (``fit`` below);
- **not reproduced**: neither;
- **not run**: no results folder, or no NTM cell in it.

Every number comes from the results folder named in its section, which holds the commands (``experiment.json``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any



from benchmarks.leaderboard import TIED, best_lrs, lost_seeds, validation_rows
from benchmarks.results import read_manifest, read_runs
from benchmarks.tables import markdown_table

__all__ = ["CLAIMS", "Claim", "best_variant", "report", "task_section"]


@dataclass(frozen=True)
class Claim:
    """One task of the NTM paper (Graves et al. 2014, section 4) and the check of its reproduction."""

    folder: str
    """Results folder under ``results/ntm_paper/`` and experiment file under ``benchmarks/experiments/ntm_paper/``."""
    title: str
    """Heading."""
    paper: str
    """What the paper reports (``../shared/reference/papers.md``), in our words."""
    metric: str
    """The runs.csv metric compared (``bit_errors`` or ``cost_bits``, per sequence)."""
    check_length: int
    """The test length the check reads."""
    threshold: float | None
    """The check: the best NTM's median over seeds at ``check_length`` is at most this; ``None`` = the
    Bayes-optimal cost plus ``above_optimal``."""
    check: str
    """The check in words."""
    fit_length: int
    """A length inside the training range: the NTM "fits" when its median there is at most ``fit_threshold``."""
    fit_threshold: float | None
    """Fitting the training range without passing the check is "partly"; ``None``: no such level (the check
    is already on training-range sequences, as on dynamic N-grams)."""
    viz_length: int | None = None
    """Length of the sequence drawn inside the machine (``memtasks viz --length``; ``None``: drawn)."""
    above_optimal: float = 0.0
    beside: str | None = None
    """A second runs.csv metric reported for every agent at ``check_length`` (same lrs; not part of the check)."""
    probes: tuple[str, ...] = ()
    """Folders (under the results root's parent) of runs made beyond the equal-budget comparison, each with a
    README.md whose title line is quoted: what else was tried."""
    longer: str | None = None
    """A probe folder (under the results root's parent) that ran the same test sequences at a larger budget: the
    check is read there too, per agent and lr, and reported beside the verdict (never as the verdict, which is
    the equal-budget comparison's)."""
    differs: str = ""
    """Where this task's runs differ from the paper beyond the introduction's common differences (sizes, heads,
    variants not run), and why."""


CLAIMS: tuple[Claim, ...] = (
    Claim("copy", "Copy", "Trained on lengths 1-20, the NTM copies length 120 with a few local errors and one "
          "global error; the 3 x 256 LSTM is still at about 2 bits per sequence after 1M sequences.",
          "bit_errors", 120, 9.6, "NTM median seed at length 120: at most 9.6 wrong bits per sequence (1% of bits)",
          20, 1.0, viz_length=30,
          differs="None in size: the NTM has the paper's LSTM controller of 100, one read and one write head and "
          "128 x 20 memory; the LSTM is the paper's 3 x 256. The paper's feed-forward NTM was not run (the issue "
          "asks for it on associative recall and priority sort)."),
    Claim("repeat_copy", "Repeat copy", "Trained on lengths 1-10 and repeats 1-10, the NTM learns the task "
          "(about 100k sequences) and generalises to longer sequences and more repeats, but misplaces the end "
          "marker beyond the training repeats.",
          "bit_errors", 10, 1.0, "NTM median seed: at most 1 wrong bit per sequence at length 10 (training range)",
          10, 1.0, probes=("ntm_paper/repeat_copy_192k", "ntm_paper/repeat_copy_curriculum"),
          differs="The NTM is the paper's (LSTM controller 100, one head each, 128 x 20). The LSTM is 3 x 256, "
          "not the paper's 3 x 512 (5.3M weights): 512 units cost about four times the multiply-adds per step, "
          "more CPU time than this budget has. The paper's feed-forward NTM was not run."),
    Claim("associative_recall", "Associative recall", "Near-zero cost within about 30k episodes (2-6 items); "
          "the feed-forward controller learns faster; nearly perfect up to 12 items, under 1 bit per sequence "
          "at 15.", "bit_errors", 12, 1.0,
          "the NTM variant chosen on validation, median seed: under 1 wrong bit per sequence at 12 items "
          "(15 reported)", 6, 1.0,
          differs="None in size: the LSTM-controller NTM (100, one head each), the feed-forward NTM (controller "
          "256, 4 read and 4 write heads) and the LSTM (3 x 256) are the paper's; items are 3 vectors of 6 bits, "
          "2-6 items in training."),
    Claim("dynamic_ngrams", "Dynamic N-grams", "On 200-bit sequences of 6-grams the NTM is slightly but "
          "significantly better than the LSTM, not at the Bayes-optimal cost (figure readings: optimal about "
          "131-132, NTM 133-134, LSTM 137 bits).", "cost_bits", 200, None,
          "NTM median seed: cost at most the Bayes-optimal cost + 2 bits per sequence", 200, None,
          above_optimal=2.0, longer="ntm_paper/dynamic_ngrams_192k_decay",
          probes=("ntm_paper/dynamic_ngrams_192k", "ntm_paper/dynamic_ngrams_192k_decay",
                                     "ntm_paper/dynamic_ngrams_ablation",
                                     "ntm_paper/transformer_randomized_eval"),
          differs="None in size: the LSTM-controller NTM and the feed-forward NTM (controller 100, one head each) "
          "and the LSTM (3 x 128) are the paper's. The budget is 24k sequences per cell, half the other tasks': "
          "each sequence is 200 steps long. `ntm-sgc-lm` (added 2026-12-06) is `ntm-sgc` with a learned initial "
          "memory started from Gaussian noise (std 0.1, not tuned); the other NTMs start from Collier & Beel's "
          "constant 1e-6, where every row is equally similar to any key and the first content lookups are "
          "uniform. The paper does not say how its memory starts."),
    Claim("priority_sort", "Priority sort", "20 inputs with priorities uniform in [-1, 1], 16 outputs sorted "
          "by priority: NTM cost about 10-20 bits per sequence, LSTM about 50.", "cost_bits", 20, 20.0,
          "the NTM variant chosen on validation, median seed: cost at most 20 bits per sequence", 20, 20.0,
          beside="bit_errors", probes=("ntm_paper/priority_sort/divergence", "ntm_paper/priority_sort_384k",
                                        "ntm_paper/priority_sort_384k_lr3e-4", "ntm_paper/priority_sort_384k_select",
                                        "ntm_paper/priority_sort_384k_select_5h",
                                        "ntm_paper/priority_sort_memory_init"),
          differs="The paper's LSTM-controller NTM for this task (5 heads, controller 2 x 100) runs as `ntm-5h`; "
          "`ntm` and `ntm-sgc` are the NTM of the other tasks (one head each, controller 100). The feed-forward NTM "
          "has 4 read and 4 write heads (controller 512), not the paper's 8: with 8 a started cell ran 28 s per "
          "100 steps on one core (about 880 s per cell), past this budget. The LSTM is the paper's 3 x 128."),
)
"""The five tasks, in the paper's order."""


def _fmt(x: float) -> str:
    return "-" if x != x else (f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}")


def _median_range(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return _fmt(values[0])
    return f"{_fmt(statistics.median(values))} ({_fmt(min(values))}-{_fmt(max(values))})"


def _optimal(task: str, manifest: dict[str, Any] | None, length: int) -> tuple[float, str] | None:
    """The Bayes-optimal cost per sequence that the check adds its margin to, and what it was measured on.

    Measured on the evaluation's own test sequences at ``length`` (the cells' eval seed and sample count: the
    sequences every agent was scored on), so that the check compares costs on the same sequences: a sequence's
    optimal cost varies widely (it depends on how predictable its own n-gram model is), so the mean over one set
    of sequences differs from the mean over another by more than the check's margin (the report gives the
    standard error). Without an evaluation config in the manifest, the learning curves' estimate (1,024
    training-range sequences). ``None`` for a task without an optimal predictor."""
    from benchmarks.evaluate import eval_rng
    from benchmarks.plots import _optimal_cost  # the line the learning-curve plot draws
    from memtasks import make_task

    found = _optimal_cost(task, manifest)
    if found is None:
        return None
    cells = [c for c in (manifest or {}).get("cells", []) if c.get("task") == task]
    setup = (cells[0].get("eval") if cells else None) or (manifest or {}).get("eval") or {}
    if "seed" not in setup or "samples" not in setup:
        return found[0], "1,024 training-range sequences"
    built = make_task(task, **((cells[0].get("task_kwargs") or {}) if cells else {}))
    n = int(setup["samples"])
    batch = built.sample(n, eval_rng(int(setup["seed"]), length), length=length)
    each = [built.optimal_score(batch[i : i + 1])["cost_bits"] for i in range(n)]
    where = (f"the {n} test sequences of length {length} that every agent was scored on (standard deviation "
             f"over those sequences {statistics.pstdev(each):.1f}, so a mean over {n} other sequences would "
             f"differ by about {statistics.pstdev(each) / n ** 0.5:.1f}; the learning curves' line, on 1,024 "
             f"training-range sequences: {found[0]:.1f})")
    return statistics.fmean(each), where  # cost_bits is a mean over sequences: the batch's is the mean of these


def task_section(claim: Claim, root: str | Path = "results/ntm_paper", report_dir: str | Path = "results") -> tuple[str, str]:
    """The markdown section of one task and its verdict (figure links relative to ``report_dir``)."""
    folder = Path(root) / claim.folder
    command = f"memtasks run benchmarks/experiments/ntm_paper/{claim.folder}.toml --out {folder}"
    head = [f"## {claim.title}", "", f"**Paper.** {claim.paper}", "", f"**Check.** {claim.check}.", ""]
    if claim.differs:
        head += [f"**Where we differ** (beyond the introduction's). {claim.differs}", ""]
    try:
        runs, manifest = read_runs(folder), read_manifest(folder)
    except FileNotFoundError:
        return "\n".join(head + ["**Verdict: not run.** No results yet; to run:", "", f"    {command}", ""]), "not run"
    task = runs["task"].iloc[0]
    chosen = best_lrs(runs, manifest, task, claim.metric)
    tests = _test_rows(runs, claim.metric)
    lengths = sorted(int(x) for x in tests["length"].dropna().unique())
    rows, medians, fits = [], {}, {}
    for agent in dict.fromkeys(runs["agent"]):
        mine = tests[tests["agent"] == agent]
        if agent in chosen:
            mine = mine[mine["lr"].astype(float) == chosen[agent][0]]
        lr = chosen[agent][0] if agent in chosen else (mine["lr"].dropna().iloc[0] if mine["lr"].notna().any() else None)
        seeds = sorted(mine["seed"].unique())
        per_length = {n: mine[mine["length"] == n]["value"].astype(float).tolist() for n in lengths}
        if not seeds:
            continue
        medians[agent] = statistics.median(per_length.get(claim.check_length) or [float("nan")])
        fits[agent] = statistics.median(per_length.get(claim.fit_length) or [float("nan")])
        lost = lost_seeds((manifest or {}).get("cells", []), agent, lr)
        seeds_text = str(len(seeds)) + "".join(f" (+{n} {status})" for status, n in sorted(lost.items()))
        rows.append([f"`{agent}`", "-" if lr is None else f"{lr:g}", seeds_text,
                     *[_median_range(per_length[n]) for n in lengths]])  # fmt: skip
    table = markdown_table(["agent", "lr (by validation)", "seeds", *[f"length {n}" for n in lengths]], rows)
    ntms = {a: m for a, m in medians.items() if a.startswith("ntm") and m == m}
    limit = claim.threshold
    optimal = _optimal(task, manifest, claim.check_length) if limit is None else None
    if limit is None and optimal is not None:
        limit = optimal[0] + claim.above_optimal
    best, why = best_variant(runs, manifest, claim.metric, chosen, ntms) if ntms else (None, "")
    if not ntms or limit is None:
        verdict = "not run"
    elif ntms[best] <= limit:
        verdict = "reproduced"
    elif claim.fit_threshold is not None and fits.get(best, float("inf")) <= claim.fit_threshold:
        verdict = "partly"
    else:
        verdict = "not reproduced"
    cells = (manifest or {}).get("cells", [])
    lines = head + [
        f"{claim.metric.replace('_', ' ')} per sequence at each test length: median over seeds (min-max) of each "
        "agent at its learning rate chosen on the validation row (training-range sequences), never on test lengths; "
        "a seed that diverged or failed has no score and is counted beside the seeds. "
        f"Budget per cell (sequences): {_budget(cells) or 'not in sequences'}.",
        "",
        table,
        "",
    ]
    if claim.beside:
        lines += _beside_line(claim, runs, chosen, medians)
    if optimal is not None:
        lines += [f"Bayes-optimal cost: {optimal[0]:.1f} bits per sequence, on {optimal[1]}; "
                  f"check limit {limit:.1f}.", ""]
    if best is not None:
        lines += [f"**Verdict: {verdict}.** NTM variant `{best}` (one of {len(ntms)}, {why}): median {_fmt(ntms[best])} at length "
                  f"{claim.check_length} (limit {_fmt(limit) if limit is not None else '-'})"
                  + (f"; at length {claim.fit_length}: {_fmt(fits.get(best, float('nan')))}"
                     if claim.fit_length != claim.check_length else "") + ".", ""]  # fmt: skip
        others = {a: m for a, m in ntms.items() if a != best and limit is not None and m <= limit}
        if others:  # said, so a reader sees when the choice on validation and the test numbers disagree
            lines += ["Other NTM variants within the limit (median seed, chosen lr; not the variant chosen on "
                      "validation): " + ", ".join(f"`{a}` {_fmt(m)}" for a, m in others.items()) + ".", ""]
    else:
        lines += [f"**Verdict: {verdict}.** No NTM cell in {folder}.", ""]
    if claim.longer is not None and limit is not None:
        lines += _longer_lines(claim, Path(root).parent / claim.longer, limit, report_dir)
    for agent in ntms:  # a choice made by the tie-break, not by the data, is said where the verdict is read
        if TIED in chosen.get(agent, (None, ""))[1]:
            lines += [f"`{agent}`'s lr: {chosen[agent][1]}. The validation rows do not tell these lrs apart, so the "
                      "table and the verdict use the tie-break's lr; the other tied lrs' medians are in the per-lr line "
                      "below.", ""]  # fmt: skip
    if limit is not None:  # the check names the NTM; other agents that pass it are said, not counted in the verdict
        passing = {a: m for a, m in medians.items() if a not in ntms and m == m and m <= limit}
        if passing:
            lines += [f"Other agents within the check's limit at length {claim.check_length} (median seed, chosen lr; "
                      "not part of the verdict, which is about the NTM): "
                      + ", ".join(f"`{a}` {_fmt(m)}" for a, m in sorted(passing.items(), key=lambda kv: kv[1]))
                      + ".", ""]  # fmt: skip
    for agent in ntms:  # every lr at the check length: shown for transparency, never used to choose
        every = tests[(tests["agent"] == agent) & (tests["length"] == claim.check_length)]
        by_lr = every.assign(lr=every["lr"].astype(float)).groupby("lr")["value"].median()
        if len(by_lr) > 1:
            lines += [f"`{agent}` at length {claim.check_length}, median over seeds per lr (shown, not used to "
                      "choose): " + ", ".join(f"{lr:g}: {_fmt(v)}" for lr, v in by_lr.items()) + ".", ""]
    if best is not None:
        lines += _grid_lines(claim, runs, folder, best, chosen, report_dir)
        checkpoint = _inside_figure(claim, folder, cells, best, chosen, tests)
        if checkpoint is not None:
            length = f" --length {claim.viz_length}" if claim.viz_length else ""
            link = os.path.relpath(folder / "ntm_inside.png", report_dir)
            lines += [f"Inside the machine (`memtasks viz {checkpoint}{length} --out {folder / 'ntm_inside.png'}`): "
                      "the median seed's write and read weightings over time and the memory after the sequence.",
                      "", f"![{claim.title}, inside the NTM]({link})", ""]  # fmt: skip
    tried = [(probe, _title(Path(root).parent / probe / "README.md")) for probe in claim.probes]
    if any(title for _, title in tried):
        lines += ["Tried beyond the equal-budget comparison (not part of the verdict):", "",
                  *[f"- [{title}]({os.path.relpath(Path(root).parent / probe / 'README.md', report_dir)})"
                    for probe, title in tried if title], ""]  # fmt: skip
    missing = sorted({c["agent"] for c in cells} - set(medians))
    if missing:
        lines += [f"Agents of the experiment file not run yet: {', '.join(f'`{a}`' for a in missing)}.", ""]
    lines += [f"Results: `{folder}` (runs.csv, leaderboard.md, plots). Command: `{command}`"
              + (" (with `--only` patterns for the agents above)" if missing else "") + ".", ""]
    return "\n".join(lines), verdict


def _longer_lines(claim: Claim, folder: Path, limit: float, report_dir: str | Path) -> list[str]:
    """The check read in a probe at a larger budget (:attr:`Claim.longer`): every agent and lr there, median over
    its seeds at the check length; which NTM runs with at least 3 seeds are within the limit."""
    try:
        runs, manifest = read_runs(folder), read_manifest(folder)
    except FileNotFoundError:
        return []
    tests = _test_rows(runs, claim.metric, claim.check_length)
    if tests.empty:
        return []
    groups = tests.assign(lr=tests["lr"].astype(float)).groupby(["agent", "lr"], sort=False)["value"]
    parts, within = [], []
    for (agent, lr), values in groups:
        median = statistics.median(values.astype(float))
        parts.append(f"`{agent}` {lr:g}: {median:.1f} ({len(values)} seeds)")
        if agent.startswith("ntm") and len(values) >= 3 and median <= limit:
            within.append(f"`{agent}` at {lr:g}")
    link = os.path.relpath(folder / "README.md", report_dir)
    return [f"**At a larger budget** ([a probe]({link}), not the verdict above, which is the equal-budget "
            f"comparison's; {_budget((manifest or {}).get('cells', []))} sequences per cell, the same test "
            f"sequences), median over seeds at length {claim.check_length} per agent and lr: " + "; ".join(parts)
            + f". NTM runs with at least 3 seeds within the check's limit ({limit:.1f}): "
            + (", ".join(within) if within else "none") + ".", ""]


def _test_rows(runs: Any, metric: str, length: int | None = None) -> Any:
    """The evaluation rows of ``metric`` on test sequences (not a validation row), at ``length`` if given."""
    rows = runs[(runs["phase"] == "eval") & (runs["metric"] == metric) & (runs["split"].fillna("test") == "test")]
    return rows if length is None else rows[rows["length"] == length]


def _budget(cells: list[dict[str, Any]]) -> str:
    """The cells' training budgets in sequences (steps x batch size), distinct, comma-separated; "" if none."""
    budget = {(c.get("train", {}).get("steps") or 0) * (c.get("train", {}).get("batch_size") or 0) for c in cells}
    return ", ".join(f"{b:,}" for b in sorted(budget) if b)


def _title(readme: Path) -> str | None:
    """A README's first line without its ``#``, or ``None`` if there is no such file."""
    if not readme.is_file():
        return None
    return readme.read_text().splitlines()[0].lstrip("# ").strip()


def _beside_line(claim: Claim, runs: Any, chosen: dict[str, tuple[float, str]], agents: dict[str, float]) -> list[str]:
    """``claim.beside`` (e.g. bit errors beside priority sort's cost) per agent at the check length and chosen lr."""
    rows = _test_rows(runs, claim.beside, claim.check_length)
    said = []
    for agent in agents:
        mine = rows[rows["agent"] == agent]
        if agent in chosen:
            mine = mine[mine["lr"].astype(float) == chosen[agent][0]]
        if not mine.empty:
            said.append(f"`{agent}` {_median_range(mine['value'].astype(float).tolist())}")
    if not said:
        return []
    return [f"{claim.beside.replace('_', ' ')} per sequence at length {claim.check_length}, beside the check (same "
            "lrs and seeds, median (min-max)): " + ", ".join(said) + ".", ""]


def best_variant(runs: Any, manifest: dict[str, Any] | None, metric: str, chosen: dict[str, tuple[float, str]],
                 variants: dict[str, float]) -> tuple[str, str]:
    """The NTM variant the verdict reads, and a note on how it was chosen; never on test lengths.

    Each variant at its chosen lr (``chosen``, from :func:`benchmarks.leaderboard.best_lrs`): the variants with
    the fewest diverged or failed seeds compete (as :func:`benchmarks.leaderboard._best_lr` treats lrs, so a
    variant is not chosen on the seeds that happened to survive it); of those, the lowest mean validation
    ``metric``; an exact tie goes to the variant listed first in ``variants``. Without validation rows (runs made
    before they existed) the lowest median in ``variants`` (the check metric) is taken, and the note says so."""
    valid = validation_rows(runs, metric)
    cells = (manifest or {}).get("cells", [])
    scores, lost = {}, {}
    for agent in variants:
        lr = chosen[agent][0] if agent in chosen else None
        mine = valid[valid["agent"] == agent]
        if lr is not None:
            mine = mine[mine["lr"].astype(float) == lr]
        if not mine.empty:
            scores[agent] = float(mine["value"].astype(float).mean())
        lost[agent] = sum(lost_seeds(cells, agent, lr).values())
    if not scores:
        best = min(variants, key=variants.get)
        return best, "the lowest median at the check length: these runs have no validation rows"
    fewest = min(lost[a] for a in scores)
    best = min((a for a in scores if lost[a] == fewest), key=scores.get)  # min keeps the first of a tie
    def said(agent: str) -> str:
        n = lost[agent]
        return f"`{agent}` {scores[agent]:.3g}" + (f" ({n} seed{'s' * (n > 1)} lost)" if n else "")

    how = f"chosen on mean validation {metric.replace('_', ' ')}, {scores[best]:.3g}"
    if len(scores) > 1:
        how += " against " + ", ".join(said(a) for a in scores if a != best)
    return best, how


def _grid_lines(claim: Claim, runs: Any, folder: Path, agent: str, chosen: dict[str, tuple[float, str]],
                report_dir: str | Path) -> list[str]:
    """For a task evaluated on a second axis (``[eval] grid``, metrics ``bit_errors@repeats=R``): ``agent``'s
    median over seeds at its chosen lr, one row per value of that axis, one column per test length."""
    prefix = f"{claim.metric}@"
    rows = runs[(runs["phase"] == "eval") & runs["metric"].astype(str).str.startswith(prefix)
                & (runs["agent"] == agent) & (runs["split"].fillna("test") == "test")]  # fmt: skip
    if agent in chosen:
        rows = rows[rows["lr"].astype(float) == chosen[agent][0]]
    if rows.empty:
        return []
    axis = rows["metric"].str.slice(len(prefix)).str.split("=", n=1)
    rows = rows.assign(option=axis.str[0], at=axis.str[1].astype(int), length=rows["length"].astype(int))
    lines = []
    for option, part in rows.groupby("option"):
        lengths = sorted(part["length"].unique())
        table = [[str(at), *[_median_range(part[(part["at"] == at) & (part["length"] == n)]["value"]
                                                    .astype(float).tolist()) for n in lengths]]
                 for at in sorted(part["at"].unique())]  # fmt: skip
        link = os.path.relpath(folder / "grid.png", report_dir)
        lines += [f"`{agent}` over length and {option} ({claim.metric.replace('_', ' ')} per sequence, median over "
                  f"seeds (min-max); heatmaps of every agent: [grid.png]({link})):", "",
                  markdown_table([option, *[f"length {n}" for n in lengths]], table), ""]  # fmt: skip
    return lines


def _inside_figure(claim: Claim, folder: Path, cells: list[dict[str, Any]], agent: str,
                   chosen: dict[str, tuple[float, str]], tests: Any) -> Path | None:
    """Draw the median seed's checkpoint of ``agent`` (at its chosen lr) to ``folder/ntm_inside.png``, as the
    paper's figures 6, 8, 11 and 15; returns the checkpoint, or ``None`` if it is missing."""
    from benchmarks.viz import visualise

    lr = chosen[agent][0] if agent in chosen else None
    mine = [c for c in cells if c["agent"] == agent and (lr is None or float(c.get("lr") or 0) == lr)]
    at = tests[(tests["agent"] == agent) & (tests["length"] == claim.check_length)]
    if lr is not None:
        at = at[at["lr"].astype(float) == lr]
    by_seed = at.set_index("seed")["value"].astype(float).sort_values()
    if by_seed.empty:
        return None
    seed = by_seed.index[(len(by_seed) - 1) // 2]  # the median seed (the lower one of an even count)
    cell = next((c for c in mine if c["seed"] == seed), None)
    checkpoint = folder / "cells" / cell["cell"] / "model.pt" if cell and cell.get("cell") else None
    if checkpoint is None or not checkpoint.is_file():
        return None
    out = folder / "ntm_inside.png"
    visualise(str(checkpoint), out, length=claim.viz_length, seed=0)
    return checkpoint


def report(root: str | Path = "results/ntm_paper", out: str | Path = "results/REPRODUCTION.md") -> Path:
    """Write the side-by-side report of every task in :data:`CLAIMS`; returns its path."""
    sections = [task_section(claim, root, Path(out).parent) for claim in CLAIMS]
    summary = markdown_table(["task", "verdict"], [[c.title, v] for c, (_, v) in zip(CLAIMS, sections)])
    text = [
        "# Reproducing the NTM paper (Graves et al. 2014, section 4)",
        "",
        "Made by `python -m benchmarks.reproduction` from the results folders named below "
        f"({dt.date.today().isoformat()}). How we differ from the paper everywhere: Adam at batch 16 instead of "
        "RMSProp at batch 1, a learning rate chosen from the same grid (1e-3, 3e-3, 1e-2) for every agent on "
        "validation, and a budget of 24k-48k sequences per cell (the paper: 100k-1M), set by two CPU cores. "
        "The `-sgc` NTM variants are not the paper's: the same model with `sharpen_grad_clip = 0.1`, a "
        "backward-only clamp of the gradient entering the sharpening (eq. 9) that this project added after "
        "tracing the NTM's exploding gradients (results/ntm_paper/priority_sort/divergence/README.md). Each "
        "verdict reads one NTM variant, chosen like the learning rate: on validation, never on test lengths; so the "
        "NTM's verdict draws on a larger tuning grid than any other agent's (the task's NTM variants, named in "
        "its verdict, times three lrs; each cell on the same budget). The randomized-position Transformer "
        "(`transformer-randomized`) is scored with positions drawn at test time as in training "
        "(`randomized_eval = \"sample\"`, since 2026-12-05: results/ntm_paper/transformer_randomized_eval/README.md).",
        "",
        summary,
        "",
        *[s for s, _ in sections],
    ]
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reproduction", description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="results/ntm_paper", help="folder of the five results folders")
    parser.add_argument("--out", default="results/REPRODUCTION.md")
    args = parser.parse_args(argv)
    print(report(args.root, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
