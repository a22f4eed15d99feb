"""HF transformers + torch.distributed DDP reference for `make bench` (distributed.py): GPT-2 124M shape,
random init, AdamW, Gloo, each rank `--batch` blocks of 128 random ids per step, one thread per rank.
Launched by torchrun; rank 0 prints `train_tokens_per_s` (global, steps after the warm-up) and each rank
writes its peak RSS to OUTDIR/hf-rankR.rss.

usage: torchrun --nproc-per-node N ddp_reference.py OUTDIR [--steps S] [--batch B]"""
import os, resource, sys, time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from transformers import GPT2Config, GPT2LMHeadModel

out = sys.argv[1]
steps = int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else 8
batch = int(sys.argv[sys.argv.index("--batch") + 1]) if "--batch" in sys.argv else 4
warm = 2
torch.set_num_threads(1)
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(0)
model = GPT2LMHeadModel(GPT2Config(n_positions=1024, n_embd=768, n_layer=12, n_head=12, resid_pdrop=0.0,
                                   embd_pdrop=0.0, attn_pdrop=0.0))
model.train()
ddp = DDP(model)
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
g = torch.Generator().manual_seed(rank)
t0 = None
for step in range(steps):
    if step == warm:
        dist.barrier()
        t0 = time.perf_counter()
    ids = torch.randint(0, 50256, (batch, 128), generator=g)
    loss = ddp(input_ids=ids, labels=ids).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
dist.barrier()
secs = time.perf_counter() - t0
if rank == 0:
    print(f"train_tokens_per_s {(steps - warm) * batch * 128 * world / secs:.2f}")
with open(os.path.join(out, f"hf-rank{rank}.rss"), "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
dist.destroy_process_group()
