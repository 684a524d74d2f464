import sys, time
import agents, memtasks
from benchmarks.evaluate import evaluate
from benchmarks.train import TrainConfig, train
import torch
torch.set_num_threads(1)
TASKS = {
    "memtasks/RepeatCopy-v0": {"bits": 4, "min_length": 1, "max_length": 3, "min_repeats": 1, "max_repeats": 3},
    "memtasks/AssociativeRecall-v0": {"bits": 4, "item_length": 1, "min_length": 2, "max_length": 4},
    "memtasks/DynamicNGrams-v0": {"order": 3, "min_length": 60, "max_length": 60},
    "memtasks/PrioritySort-v0": {"bits": 4, "min_length": 6, "max_length": 6, "num_outputs": 4},
}
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 400
for tid, kw in TASKS.items():
    for seed in (0, 1):
        for ablate in (False, True):
            t0 = time.time()
            c = TrainConfig(task=tid, agent="ntm", seed=seed, task_kwargs=kw,
                agent_kwargs={"controller_size": 32, "memory_rows": 12, "memory_width": 10, "ablate_writes": ablate},
                batch_size=32, lr=1e-2, steps=steps, log_every=50, threads=1, compile=False)
            out = f"/tmp/scratch/four_{tid.split('/')[1]}_{seed}_{ablate}"
            r = train(c, out, progress=False)
            a, t, k = agents.load_checkpoint(out + "/model.pt", device="cpu")
            f = evaluate(a, memtasks.make_task(t, **k), None, samples=256, seed=1).set_index("metric")["value"]
            print(tid, seed, ablate, r.status, {m: round(float(f[m]), 3) for m in ("bit_errors", "cost_bits")}, round(time.time()-t0, 1), flush=True)
