import sys, time
import agents, memtasks
from benchmarks.evaluate import evaluate
from benchmarks.train import TrainConfig, train
import torch
torch.set_num_threads(1)
task = {"bits": 8, "min_length": 1, "max_length": 6}
for lr, steps in [(1e-2, 400), (3e-3, 400)]:
    for seed in (0, 1, 2):
        for ablate in (False, True):
            t0 = time.time()
            c = TrainConfig(task="memtasks/Copy-v0", agent="ntm", seed=seed, task_kwargs=task,
                agent_kwargs={"controller_size": 32, "memory_rows": 12, "memory_width": 10, "ablate_writes": ablate},
                batch_size=32, lr=lr, steps=steps, log_every=50, threads=1, compile=False)
            r = train(c, f"/tmp/scratch/ntm_{seed}_{ablate}", progress=False)
            a, tid, tk = agents.load_checkpoint(f"/tmp/scratch/ntm_{seed}_{ablate}/model.pt", device="cpu")
            f = evaluate(a, memtasks.make_task(tid, **tk), None, samples=256, seed=1)
            print(lr, steps, seed, ablate, round(float(f.set_index("metric").loc["bit_errors", "value"]), 3), round(time.time()-t0,1), flush=True)
