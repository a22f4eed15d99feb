"""transformers (and PEFT) on a Hub family's shape with random weights, measured as banter's
`benches/families.rs` measures itself: training steps (full or LoRA with PEFT's default targets; bf16 through
CPU autocast), sampled decoding (batch 1, 16-token prompt, top-k 50, top-p 0.95, temperature 0.8; bf16 weights
for bf16), or saving a bf16 checkpoint for banter's load measurement. Prints `key value` lines.

usage: families_reference.py --config shape.json --mode train|lora|decode|save [--bf16] [--steps 5]
       [--batch 2] [--block 128] [--new 64] [--threads N] [--dir OUT]"""
import argparse
import contextlib
import json
import resource
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM

p = argparse.ArgumentParser()
p.add_argument("--config", required=True)
p.add_argument("--mode", default="train")
p.add_argument("--bf16", action="store_true")
p.add_argument("--steps", type=int, default=5)
p.add_argument("--batch", type=int, default=2)
p.add_argument("--block", type=int, default=128)
p.add_argument("--new", type=int, default=64)
p.add_argument("--threads", type=int, default=0)
p.add_argument("--dir")
a = p.parse_args()
if a.threads:
    torch.set_num_threads(a.threads)
torch.manual_seed(0)
cfg = json.load(open(a.config))
model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**cfg), attn_implementation="sdpa")
print(f"params_m {sum(p.numel() for p in model.parameters()) / 1e6:.1f}")


def rss():
    print(f"peak_rss_mb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


if a.mode == "save":
    model.to(torch.bfloat16).save_pretrained(a.dir)
elif a.mode in ("train", "lora"):
    if a.mode == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM"))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-5, weight_decay=0.0)
    x = torch.randint(0, cfg["vocab_size"], (a.batch, a.block))
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if a.bf16 else contextlib.nullcontext

    def step():
        with ctx():
            loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t
    print(f"train_tokens_per_s {a.steps * a.batch * a.block / dt:.1f}")
    rss()
else:
    model.eval()
    if a.bf16:
        model = model.to(torch.bfloat16)
    ids = torch.tensor([[i * 37 % cfg["vocab_size"] for i in range(16)]])
    kw = dict(do_sample=True, top_k=50, top_p=0.95, temperature=0.8, pad_token_id=0)
    with torch.no_grad():
        model.generate(ids, max_new_tokens=8, **kw)
        t = time.perf_counter()
        out = model.generate(ids, max_new_tokens=a.new, min_new_tokens=a.new, **kw)
        dt = time.perf_counter() - t
    print(f"generate_tokens_per_s {(out.shape[1] - ids.shape[1]) / dt:.1f}")
    rss()
