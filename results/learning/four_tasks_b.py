import sys, time
import agents, memtasks
from benchmarks.evaluate import evaluate
from benchmarks.train import TrainConfig, train
import torch
torch.set_num_threads(1)
TASKS = {
    "memtasks/DynamicNGrams-v0": ({"order": 3, "min_length": 30, "max_length": 30}, 300),
    "memtasks/PrioritySort-v0": ({"bits": 4, "min_length": 6, "max_length": 6, "num_outputs": 4}, 400),
}
for tid, (kw, steps) in TASKS.items():
    for seed in (0, 1):
        t0 = time.time()
        c = TrainConfig(task=tid, agent="ntm", seed=seed, task_kwargs=kw,
            agent_kwargs={"controller_size": 32, "memory_rows": 12, "memory_width": 10},
            batch_size=32, lr=1e-2, steps=steps, log_every=50, threads=1, compile=False)
        out = f"/tmp/scratch/four2_{tid.split('/')[1]}_{seed}"
        r = train(c, out, progress=False)
        a, t, k = agents.load_checkpoint(out + "/model.pt", device="cpu")
        f = evaluate(a, memtasks.make_task(t, **k), None, samples=256, seed=1).set_index("metric")["value"]
        print(tid, seed, steps, r.status, {m: round(float(f[m]), 3) for m in ("bit_errors", "cost_bits")}, round(time.time()-t0, 1), flush=True)
