"""End-to-end speed of the training fast path, and a check that it learns like eager.

Every number comes from ``memtasks train`` run as a subprocess (the command is
in the report), one run at a time, on Copy-v0 (8 bits, lengths 1-20):

1. ``speed``: ``--agent ntm --seed 0 --batch-size 32 --steps 1500 --threads 1``,
   end-to-end sequences per second (``sequences_seen / wall_s`` of
   ``result.json``: building, compiling, logging and all), three ways: fast
   path with an empty inductor cache (a fresh ``TORCHINDUCTOR_CACHE_DIR``),
   fast path again with that cache warm (what every later run and every
   later cell of an experiment sees), and eager (``--no-compile``).
2. ``converge``: the defaults of ``memtasks train`` (no recipe flags) with
   ``--until-bit-errors 0.1 --threads 2 --steps 5000`` for seeds 0, 1, 2:
   wall seconds and sequences to confirmed convergence, and the median.
3. ``learning``: the defaults with ``--until-bit-errors 0.1 --steps 5000
   --threads 1``, fast path and eager (``--no-compile``) for seeds 0, 1, 2:
   sequences to confirmed convergence, and each final model scored on the
   same 256 test sequences per length 1, 5, 10, 15, 20
   (:func:`benchmarks.evaluate.evaluate_checkpoint`, seed 1234). The two
   paths are not bit-identical (compiled kernels round differently), so the
   runs of one seed drift apart; "same learning" means sequences to
   convergence of the same spread over seeds. (A fixed budget is a poor
   probe here: Copy is learned in a sudden drop, so a run stopped near the
   drop is either near 0 or near 33 bit errors.)

4. ``batching``: what one length per batch does to learning per sequence:
   the NTM runs of part 3 (fast path) again with ``--batch-lengths mixed``,
   and MemN2N and a 1 x 128 LSTM for 3,000 steps with each batching, 3 seeds,
   scored like part 3. The trainer's ``"auto"`` follows from it.

5. ``unroll``: part 1's command with ``--unroll K`` (K time steps per compiled graph, :mod:`agents.fast`) for
   K = 2, 3, 4, each with an empty inductor cache of its own and then warm; and part 3's fast runs (seeds 0,
   1, 2, until 0.1 bit errors) with the K of the best warm speed, scored the same way, to check that it learns
   like one step per graph.

6. ``compile``: what the fast path's inductor settings (:data:`agents.fast.INDUCTOR_OPTIONS`) change, cold and
   warm. First inductor's probe of the CPU's vector instruction sets alone
   (``torch._inductor.cpu_vec_isa.pick_vec_isa()``, which builds and loads a small test library per candidate
   set), timed in a subprocess with an empty cache, with and without the reported sets trusted. Then part 1's
   fast-path command with ``INDUCTOR_OPTIONS`` as shipped, with inductor's defaults (the dict emptied: what the
   fast path compiled with before 2026-12-05), and with each option alone taken back to inductor's default;
   each in an empty cache of its own and then again warm (the probe only cold: warm, the probe's results are
   cached). The options are set by running ``memtasks.cli.main`` under ``python -c`` with the dict replaced;
   the shipped and default runs are made twice, alternating, as two runs of one command differ by seconds.

7. ``cold``: part 1's fast-path command :data:`COLD_RUNS` times in a row, each in an empty inductor cache of its
   own: the spread of the cold (compile-included) end-to-end speed, which part 1's single cold run cannot show.

The runs' ``result.json`` and ``train.csv`` go under ``OUT/runs/<name>/``; the
checkpoints of the ``converge`` runs stay (about 250 KB each, they back the convergence claims), the others are
deleted once timed or scored, the report to
``OUT/README.md``. Run it on a quiet machine::

    python -m benchmarks.speed_report --out results/speed          # about 15 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from agents.fast import INDUCTOR_OPTIONS
from benchmarks.evaluate import evaluate_checkpoint
from benchmarks.provenance import cpu_name

__all__ = ["cli"]

PARTS = ("speed", "converge", "learning", "batching", "unroll", "compile", "cold")
COLD_RUNS = 5
"""Part 7: how many cold runs of part 1's command."""
ISA_PROBE = (
    "import time\n"
    "from torch._inductor import cpu_vec_isa\n"
    "start = time.perf_counter()\n"
    "isa = cpu_vec_isa.pick_vec_isa()\n"
    "print(time.perf_counter() - start, type(isa).__name__)\n"
)
WITH_OPTIONS = (
    "import json, sys\n"
    "import agents.fast\n"
    "agents.fast.INDUCTOR_OPTIONS.clear()\n"
    "agents.fast.INDUCTOR_OPTIONS.update(json.loads(sys.argv[1]))\n"
    "from memtasks.cli import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)
"""Part 6: ``memtasks`` with the fast path's inductor options replaced by the JSON of its first argument."""
BASE = ["memtasks", "train", "--task", "memtasks/Copy-v0", "--no-progress"]
SPEED = "--seed 0 --batch-size 32 --steps 1500 --threads 1".split()
"""Part 1's timed command (after BASE and the NTM); parts 5 and 6 time variants of it."""
TEST_LENGTHS = [1, 5, 10, 15, 20]


def _train(
    name: str,
    args: list[str],
    out: Path,
    env: dict[str, str],
    drop_weights: bool = False,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``memtasks train`` with ``args`` into ``out/runs/name``; return its result.json and command.
    ``drop_weights``: delete the run's checkpoint (timing runs make no claim on their weights). ``options``:
    the fast path's inductor options for this run (:data:`WITH_OPTIONS`)."""
    run_dir = out / "runs" / name
    command = BASE + ([] if "--agent" in args else ["--agent", "ntm"]) + args + ["--out", str(run_dir)]
    shown = shlex.join(command)
    if options is not None:
        options_json = json.dumps(options, sort_keys=True)
        command = [sys.executable, "-c", WITH_OPTIONS, options_json] + command[1:]
        shown = f"python -c <WITH_OPTIONS of benchmarks/speed_report.py> {shlex.quote(options_json)} " + shlex.join(
            command[4:]
        )
    print("$ " + shown, file=sys.stderr, flush=True)
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{shown} exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    record = json.loads((run_dir / "result.json").read_text())
    record["command"] = shown
    if drop_weights:
        (run_dir / "model.pt").unlink(missing_ok=True)
    return record


def _score(record: dict[str, Any], out: Path, name: str) -> float:
    """Mean bit errors per sequence over :data:`TEST_LENGTHS`, then drop the checkpoint."""
    path = out / "runs" / name / "model.pt"
    frame = evaluate_checkpoint(path, TEST_LENGTHS, samples=256, seed=1234, device="cpu")
    path.unlink()
    return float(frame[frame["metric"] == "bit_errors"]["value"].mean())


def _probe(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Seconds and the instruction set picked by :data:`ISA_PROBE` run as ``command``."""
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    seconds, isa = done.stdout.split()
    return float(seconds), isa


def _options_text(options: dict[str, Any]) -> str:
    return ", ".join(f"`{key} = {value}`" for key, value in options.items())


def _rate(record: dict[str, Any]) -> float:
    return record["sequences_seen"] / record["wall_s"]


def _timing(record: dict[str, Any]) -> str:
    """A run's end-to-end seq/s, first-step seconds and wall seconds, as three table cells."""
    return f"{_rate(record):,.0f} | {record['first_step_s']:.1f} | {record['wall_s']:.1f}"


def _empty_cache(env: dict[str, str], prefix: str = "memtasks-inductor-empty-") -> dict[str, str]:
    """``env`` with a new, empty inductor cache folder of its own: the next compile in it is a cold one."""
    return {**env, "TORCHINDUCTOR_CACHE_DIR": tempfile.mkdtemp(prefix=prefix)}


def cli(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed_report", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/speed", help="output folder (default: results/speed)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from {','.join(PARTS)}")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--parts: unknown part(s) {unknown}; allowed: {', '.join(PARTS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = tempfile.mkdtemp(prefix="memtasks-inductor-")  # empty: the first compile is a cold one
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
    lines = [
        "# Training fast path: end-to-end speed and learning",
        "",
        "Made by `python -m benchmarks.speed_report` (benchmarks/speed_report.py: what each part runs and "
        "why; `--parts` re-runs some parts, whose sections below are then replaced). Copy-v0, 8 bits, lengths 1-20. "
        "seq/s = `sequences_seen / wall_s` of the run's result.json: building, compiling, logging and "
        "validation included. Runs one at a time; each run's result.json and train.csv are in `runs/`. The NTM "
        "trains with the copy preset of `benchmarks/presets.py` as it was on each part's date: since 2026-12-05 "
        "(commit 02032d4) it includes `sharpen_grad_clip = 0.1`; parts dated earlier ran without it (so part 4's "
        "'same' column, which quotes part 3's runs of its own date, no longer matches part 3 below). Since "
        "2026-12-05 (commit c177419) the fast path compiles with `agents.fast.INDUCTOR_OPTIONS` (part 6); parts 4 "
        "and 5 ran before, with inductor's defaults.",
        "",
    ]

    header, lines = lines, []
    sections: dict[str, list[str]] = {}
    footer = [
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}; "
        f"torch {torch.__version__}, Python {platform.python_version()}, CPU: {cpu_name()}, "
        f"{os.cpu_count()} cores; inductor cache: a fresh temporary folder for this run of the report",
        "- report command: `python -m benchmarks.speed_report " + " ".join(shlex.quote(a) for a in argv) + "`",
        "",
    ]

    if "speed" in parts:
        cold = _train("speed_fast_cold", SPEED, out, env, drop_weights=True)
        warm = _train("speed_fast_warm", SPEED, out, env, drop_weights=True)
        eager = _train("speed_eager", SPEED + ["--no-compile"], out, env, drop_weights=True)
        lines += [
            "## 1. Speed: NTM, batch 32, 1500 steps, 1 thread",
            "",
            "| run | inductor cache | seq/s end to end | first step s (compile) | wall s | final bit errors (train) |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for label, cache_state, r in (("fast path", "empty", cold), ("fast path", "warm", warm),
                                      ("eager (`--no-compile`)", "-", eager)):  # fmt: skip
            lines.append(
                f"| {label} | {cache_state} | {_timing(r)} | {r['final']['bit_errors']:.3g} |"
            )
        lines += ["", *[f"- `{r['command']}`" for r in (cold, warm, eager)], ""]

        sections["speed"], lines = lines + footer, []

    if "converge" in parts:
        runs = [
            _train(f"converge_seed{s}", f"--seed {s} --until-bit-errors 0.1 --threads 2 --steps 5000".split(), out, env)
            for s in (0, 1, 2)
        ]
        lines += [
            "## 2. Convergence with the defaults (batch 16, Adam 3e-3, same-length batches, fast path), 2 threads",
            "",
            "| seed | status | wall s to convergence | sequences to convergence | first step s |",
            "|---:|---|---:|---:|---:|",
        ]
        for s, r in zip((0, 1, 2), runs):
            wall = r["converged_wall_s"]
            lines.append(
                f"| {s} | {r['status']} | {'-' if wall is None else f'{wall:.1f}'} | "
                f"{r['converged_sequences'] or '-'} | {r['first_step_s']:.1f} |"
            )
        walls = [r["converged_wall_s"] if r["converged_wall_s"] is not None else float("inf") for r in runs]
        lines += ["", f"Median wall seconds to convergence: {statistics.median(walls):.1f} "
                      "(a run that did not converge counts as infinite).", "",
                  *[f"- `{r['command']}`" for r in runs], ""]  # fmt: skip

        sections["converge"], lines = lines + footer, []

    if "learning" in parts:
        by = {}
        for s in (0, 1, 2):
            for label, extra in (("fast", []), ("eager", ["--no-compile"])):
                name = f"learning_{label}_seed{s}"
                args = f"--seed {s} --until-bit-errors 0.1 --steps 5000 --threads 1".split() + extra
                r = _train(name, args, out, env)
                by[s, label] = (r, _score(r, out, name))
        lines += [
            "## 3. Same learning: fast path vs eager, defaults, until 0.1 bit errors, 1 thread",
            "",
            "Sequences to confirmed convergence (running training bit errors and 256 fresh validation "
            "sequences below 0.1), and the final model's bit errors per sequence on 256 fixed test sequences "
            f"per length {', '.join(map(str, TEST_LENGTHS))} (mean over lengths).",
            "",
            "| seed | fast: sequences | eager: sequences | fast: test bit errors | eager: test bit errors "
            "| fast: wall s | eager: wall s |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for s in (0, 1, 2):
            (rf, ef), (re_, ee) = by[s, "fast"], by[s, "eager"]
            lines.append(
                f"| {s} | {rf['converged_sequences'] or rf['status']} | {re_['converged_sequences'] or re_['status']} "
                f"| {ef:.3g} | {ee:.3g} | {rf['wall_s']:.1f} | {re_['wall_s']:.1f} |"
            )
        for label in ("fast", "eager"):
            seqs = [by[s, label][0]["converged_sequences"] for s in (0, 1, 2)]
            if all(v is not None for v in seqs):
                lines.append(f"\n{label}: median {statistics.median(seqs):,.0f} sequences to convergence")
        lines += ["", *[f"- `{by[key][0]['command']}`" for key in sorted(by)], ""]

        sections["learning"], lines = lines + footer, []

    if "batching" in parts:
        ntm = {}
        for s in (0, 1, 2):  # the learning part's fast runs, with mixed-length batches
            name = f"batching_ntm_mixed_seed{s}"
            r = _train(name, f"--seed {s} --until-bit-errors 0.1 --steps 5000 --threads 1 --batch-lengths mixed"
                       .split(), out, env, drop_weights=True)
            ntm[s] = r
        others = {}
        for agent, kwargs in (("memn2n", "{}"), ("lstm", '{"hidden_size": 128, "num_layers": 1}')):
            for s in (0, 1, 2):
                for mode in ("mixed", "same"):
                    name = f"batching_{agent}_{mode}_seed{s}"
                    args = ["--agent", agent, "--agent-kwargs", kwargs, "--lr", "1e-3", "--seed", str(s),
                            "--steps", "3000", "--threads", "1", "--batch-lengths", mode]
                    r = _train(name, args, out, env)
                    others[agent, mode, s] = (r, _score(r, out, name))
        learning = {s: out / "runs" / f"learning_fast_seed{s}" / "result.json" for s in (0, 1, 2)}
        same = {s: json.loads(p.read_text())["converged_sequences"] if p.exists() else None for s, p in learning.items()}
        lines += [
            "## 4. Batches of one length vs mixed lengths (`--batch-lengths`), per sequence",
            "",
            "NTM, defaults, fast path, until 0.1 bit errors, 1 thread: sequences to convergence with mixed-length "
            "batches here, with one length per batch in section 3 (the same runs but for the batching).",
            "",
            "| seed | NTM same: sequences | NTM mixed: sequences | NTM mixed: wall s |",
            "|---:|---:|---:|---:|",
            *[f"| {s} | {same[s] or '-'} | {ntm[s]['converged_sequences'] or 'not converged (step limit)'} | "
              f"{ntm[s]['wall_s']:.1f} |" for s in (0, 1, 2)],
            "",
            "MemN2N (defaults) and LSTM (1 x 128), Adam 1e-3, batch 16, 3,000 steps (48,000 sequences), 1 thread: "
            f"bit errors per sequence of the final model on 256 fixed test sequences per length "
            f"{', '.join(map(str, TEST_LENGTHS))} (mean over lengths), and wall seconds.",
            "",
            "| agent | seed | mixed: test bit errors | same: test bit errors | mixed: wall s | same: wall s |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for agent in ("memn2n", "lstm"):
            for s in (0, 1, 2):
                (rm, em), (rs, es) = others[agent, "mixed", s], others[agent, "same", s]
                lines.append(f"| {agent} | {s} | {em:.3g} | {es:.3g} | {rm['wall_s']:.1f} | {rs['wall_s']:.1f} |")
        lines += ["", *[f"- `{r['command']}`" for r in ntm.values()],
                  *[f"- `{r['command']}`" for r, _ in others.values()], ""]
        sections["batching"], lines = lines + footer, []

    if "unroll" in parts:
        timed: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
        for k in (2, 3, 4):
            own = _empty_cache(env, prefix=f"memtasks-inductor-unroll{k}-")
            runs = [_train(f"unroll{k}_{state}", SPEED + ["--unroll", str(k)], out, own, drop_weights=True)
                    for state in ("cold", "warm")]
            timed[k] = (runs[0], runs[1])
        best = max(timed, key=lambda k: _rate(timed[k][1]))
        learned = {}
        for seed in (0, 1, 2):
            name = f"unroll{best}_learning_seed{seed}"
            r = _train(name, f"--seed {seed} --until-bit-errors 0.1 --steps 5000 --threads 1 --unroll {best}".split(),
                       out, env)
            learned[seed] = (r, _score(r, out, name))
        lines += [
            "## 5. Several time steps per compiled graph (`--unroll K`), NTM, batch 32, 1500 steps, 1 thread",
            "",
            "Part 1's command with `--unroll K`; each K with an empty inductor cache of its own (cold), then again "
            "(warm). Part 1's rows are K = 1.",
            "",
            "| K | inductor cache | seq/s end to end | first step s (compile) | wall s | final bit errors (train) |",
            "|---:|---|---:|---:|---:|---:|",
        ]
        for k, (cold, warm) in timed.items():
            for cache_state, r in (("empty", cold), ("warm", warm)):
                lines.append(f"| {k} | {cache_state} | {_timing(r)} | {r['final']['bit_errors']:.3g} |")
        lines += [
            "",
            f"Learning with K = {best} (the best warm speed): part 3's fast runs with `--unroll {best}`, scored like "
            "part 3 (mean bit errors per sequence over lengths "
            f"{', '.join(map(str, TEST_LENGTHS))}, 256 test sequences each).",
            "",
            "| seed | sequences to convergence | test bit errors | wall s |",
            "|---:|---:|---:|---:|",
            *[f"| {seed} | {r['converged_sequences'] or 'not converged (step limit)'} | {score:.3g} | {r['wall_s']:.1f} |"
              for seed, (r, score) in learned.items()],
            "",
            *[f"- `{r['command']}`" for pair in timed.values() for r in pair],
            *[f"- `{r['command']}`" for r, _ in learned.values()],
            "",
        ]
        sections["unroll"], lines = lines + footer, []

    if "compile" in parts:
        probe = [sys.executable, "-c", ISA_PROBE]
        probe_s, isa_name = _probe(probe, _empty_cache(env))
        trusted_s, trusted_isa = _probe(probe, {**_empty_cache(env), "TORCHINDUCTOR_VEC_ISA_OK": "1"})
        shipped = dict(INDUCTOR_OPTIONS)
        variants = [  # (label, options, runs, warm too): each run is a cold run in a cache of its own, then warm
            ("as shipped", shipped, 2, True),
            ("inductor's defaults", {}, 2, True),
            # only cold: warm, the probe's results are in the cache and nothing is probed
            ("instruction sets probed", {k: v for k, v in shipped.items() if k != "cpp.vec_isa_ok"}, 1, False),
            ("size_asserts on", {**shipped, "size_asserts": True}, 1, True),
            ("memory_planning off", {**shipped, "memory_planning": False}, 1, True),
        ]
        rows = []  # (label, options, cold record, warm record or None)
        for repeat in (1, 2):
            for index, (label, options, runs, then_warm) in enumerate(variants):
                if repeat > runs:
                    continue
                fresh = _empty_cache(env)
                name = f"compile_{index}_{repeat}"
                cold = _train(f"{name}_cold", SPEED, out, fresh, drop_weights=True, options=options)
                warm = None
                if then_warm:
                    warm = _train(f"{name}_warm", SPEED, out, fresh, drop_weights=True, options=options)
                rows.append((label, options, cold, warm))
        lines += [
            "## 6. The fast path's inductor settings, cold and warm: NTM, batch 32, 1500 steps, 1 thread",
            "",
            f"Inductor's probe of the vector instruction sets alone, in an empty cache (picked: `{isa_name}`): "
            f"{probe_s:.1f} s; with the sets the CPU reports trusted (`TORCHINDUCTOR_VEC_ISA_OK=1`, the same as "
            f"`cpp.vec_isa_ok` of `INDUCTOR_OPTIONS`) {trusted_s:.1f} s, picking `{trusted_isa}`. Part 1's command "
            f"with `agents.fast.INDUCTOR_OPTIONS` as shipped ({_options_text(shipped)}), emptied (inductor's "
            "defaults) and with one option at inductor's default; each in an empty cache, then warm:",
            "",
            "| inductor settings | cold: seq/s end to end | cold: first step s | cold: wall s | warm: seq/s end to end "
            "| warm: first step s | warm: wall s | final loss (train) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for label, _, cold, warm in rows:
            warm_cells = _timing(warm) if warm else "- | - | -"
            lines.append(f"| {label} | {_timing(cold)} | {warm_cells} | {cold['final']['loss']:.4g} |")
        lines += [
            "",
            f"- probe: `{sys.executable} -c <pick_vec_isa() timed>` in an empty TORCHINDUCTOR_CACHE_DIR, without and "
            "with `TORCHINDUCTOR_VEC_ISA_OK=1`",
            *[f"- {label}, {kind}: `{r['command']}`" for label, _, cold, warm in rows
              for kind, r in (("cold", cold), ("warm", warm)) if r is not None],
            "",
        ]
        sections["compile"], lines = lines + footer, []

    if "cold" in parts:
        colds = []
        for index in range(COLD_RUNS):
            fresh = _empty_cache(env)
            colds.append(_train(f"cold_{index}", SPEED, out, fresh, drop_weights=True))
        rates = [_rate(r) for r in colds]
        lines += [
            f"## 7. Cold start, {COLD_RUNS} runs: NTM, batch 32, 1500 steps, 1 thread",
            "",
            f"Part 1's fast-path command {COLD_RUNS} times in a row, each in an empty inductor cache of its own "
            "(compile included in every figure):",
            "",
            "| run | seq/s end to end | first step s (compile) | wall s |",
            "|---:|---:|---:|---:|",
            *[f"| {i} | {_timing(r)} |" for i, r in enumerate(colds)],
            "",
            f"Median {statistics.median(rates):,.0f} seq/s (min {min(rates):,.0f}, max {max(rates):,.0f}); "
            f"{sum(rate >= 1000 for rate in rates)} of {COLD_RUNS} runs at 1,000 or more.",
            "",
            *[f"- `{r['command']}`" for r in colds],
            "",
        ]
        sections["cold"], lines = lines + footer, []

    for part, text in sections.items():  # one file per part, so a part can be re-run alone
        (out / f"{part}.md").write_text("\n".join(text))
    kept = [(out / f"{part}.md").read_text() for part in PARTS if (out / f"{part}.md").exists()]
    path = out / "README.md"
    path.write_text("\n".join(header) + "\n" + "\n".join(kept))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
