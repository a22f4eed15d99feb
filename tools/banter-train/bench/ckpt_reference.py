"""HF transformers reference for checkpointing.py: GPT-2 124M shape, random init, dropout 0.1, AdamW, random
ids, every core; `--gradient-checkpointing` calls `gradient_checkpointing_enable()` as TRL does by default.
Prints `train_tokens_per_s N` (steps after the first).

usage: python ckpt_reference.py [--steps 4] [--batch 8] [--seq 256] [--gradient-checkpointing]"""
import sys, time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

arg = lambda k, d: int(sys.argv[sys.argv.index(k) + 1]) if k in sys.argv else d
steps, batch, seq = arg("--steps", 4), arg("--batch", 8), arg("--seq", 256)
torch.manual_seed(0)
model = GPT2LMHeadModel(GPT2Config())
if "--gradient-checkpointing" in sys.argv:
    model.gradient_checkpointing_enable()
model.config.use_cache = False
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
g = torch.Generator().manual_seed(0)
t0 = None
for step in range(steps):
    if step == 1:
        t0 = time.perf_counter()
    ids = torch.randint(0, 50256, (batch, seq), generator=g)
    model(input_ids=ids, labels=ids).loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
print(f"train_tokens_per_s {(steps - 1) * batch * seq / (time.perf_counter() - t0):.2f}")
