"""`make bench`: banter-train --dpo beside TRL's DPOTrainer, same machine, same threads, same run.

The GPT-2 124M shape (random init, saved by transformers; vocabulary 50257) with a byte-level BPE tokenizer
trained here on tinyshakespeare and ChatML; 64 synthetic preference pairs (a ~80-token prompt and two
~80-token replies cut from tinyshakespeare); batch 4 pairs; 8 optimizer steps; LoRA r8 on c_attn, c_proj;
fp32 for both (DPOConfig's default bf16 autocast is emulated on CPUs without native bf16).

Rows:
- banter LoRA SFT on the same sequences (each pair's chosen and rejected exchange as samples, batch 8 rows:
  the same rows and tokens a DPO step runs), the baseline the issue's memory bound is about;
- banter LoRA DPO, banter full-fine-tune DPO;
- TRL 1.16 LoRA DPO (PEFT; its reference = the adapter disabled), TRL full DPO (reference = a model copy),
  each with DPOConfig's default gradient checkpointing and without it (the same work banter does).

tokens/s counts the real (unpadded) tokens of the steps after the first, over their wall time; peak RSS is
the whole process's (os.wait4).

usage: python dpo.py REPO_ROOT SHAKESPEARE WORKDIR [--steps N]"""
import json
import os
import subprocess
import sys

root, shakespeare, work = sys.argv[1:4]
steps = int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else 8
work = os.path.abspath(os.path.join(work, "dpo"))
os.makedirs(work, exist_ok=True)
threads = str(os.cpu_count())
bin_dir = os.path.join(root, "target", "release")
py = sys.executable
here = os.path.dirname(os.path.abspath(__file__))


def run(args):
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{p.stderr[-3000:]}")
    return p.stdout


def peak(args, env=None):
    """Runs `args`; returns (stdout, peak RSS MB of that process)."""
    outf = open(os.path.join(work, "stdout.txt"), "w+")
    errf = open(os.path.join(work, "stderr.txt"), "w+")
    p = subprocess.Popen(args, stdout=outf, stderr=errf, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    outf.seek(0)
    errf.seek(0)
    if status != 0:
        raise SystemExit(f"{args[0]} failed:\n{errf.read()[-3000:]}")
    return outf.read(), ru.ru_maxrss / 1024


# Data: pairs of Shakespeare chunks.
text = open(shakespeare, encoding="utf-8").read()
tok = os.path.join(work, "tok.json")
if not os.path.exists(tok):
    subprocess.run([os.path.join(bin_dir, "banter-tokenize"), "train-tokenizer", shakespeare, "--vocab-size", "4000",
                    "--template", "chatml", "-q", "-o", tok], check=True)
prefs, samples = os.path.join(work, "prefs.jsonl"), os.path.join(work, "sft.jsonl")
with open(prefs, "w") as f, open(samples, "w") as g:
    for i in range(64):
        at = 1000 + i * 1500
        p, c, r = text[at:at + 300], text[at + 300:at + 600], text[at + 600:at + 900]
        f.write(json.dumps({"prompt": p, "chosen": c, "rejected": r}) + "\n")
        for reply in (c, r):
            g.write(json.dumps({"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": reply}]}) + "\n")

base = os.path.join(work, "gpt2-124m")
if not os.path.exists(os.path.join(base, "config.json")):
    run([py, "-c", f"""
import torch, shutil
from transformers import GPT2Config, GPT2LMHeadModel
torch.manual_seed(0)
GPT2LMHeadModel(GPT2Config()).save_pretrained({base!r})
shutil.copy({tok!r}, {base + '/tokenizer.json'!r})
"""])

common = ["--model", base, "--template", "chatml", "--force", "--max-steps", str(steps), "--warmup", "0",
          "--block-size", "512", "--threads", threads, "--precision", "fp32", "--eval-every", "1000000", "-q"]
lora = ["--lora", "--lora-r", "8", "--lora-targets", "c_attn,c_proj"]


def banter(name, args):
    out = os.path.join(work, name)
    subprocess.run(["rm", "-rf", out])
    _, rss = peak([os.path.join(bin_dir, "banter-train")] + args + common + ["-o", out])
    m = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))]
    tokens = sum(r["tokens"] for r in m[1:])
    return tokens / (m[-1]["elapsed_s"] - m[0]["elapsed_s"]), rss


def trl(args):
    out, rss = peak([py, os.path.join(here, "trl_dpo.py"), base, prefs, str(steps), threads, work] + args)
    return json.loads(out.strip().splitlines()[-1])["tokens_per_s"], rss


results = [
    ("banter LoRA SFT, batch 8 rows (the pairs' chosen and rejected exchanges)",
     banter("sft-lora", [samples, "--mode", "truncate", "--batch-size", "8"] + lora)),
    ("banter LoRA DPO, batch 4 pairs", banter("dpo-lora", [prefs, "--dpo", "--batch-size", "4"] + lora)),
    ("TRL LoRA DPO, batch 4 pairs (its default: gradient checkpointing)", trl(["--lora"])),
    ("TRL LoRA DPO, batch 4 pairs, no gradient checkpointing", trl(["--lora", "--no-checkpointing"])),
    ("banter full DPO, batch 4 pairs", banter("dpo-full", [prefs, "--dpo", "--batch-size", "4"])),
    ("TRL full DPO, batch 4 pairs (its default: gradient checkpointing)", trl([])),
    ("TRL full DPO, batch 4 pairs, no gradient checkpointing", trl(["--no-checkpointing"])),
]
print(f"| GPT-2 124M shape, {steps} steps, {threads} threads | tokens/s | peak RSS MB |")
print("|---|---:|---:|")
for name, (tps, rss) in results:
    print(f"| {name} | {tps:,.0f} | {rss:,.0f} |")
v = [x for _, x in results]
print()
print(f"banter LoRA DPO vs banter LoRA SFT peak RSS: {v[1][1] / v[0][1]:.2f}× (bound 1.3×)")
print(f"banter vs TRL tokens/s, LoRA: {v[1][0] / v[2][0]:.2f}× TRL's default, {v[1][0] / v[3][0]:.2f}× without checkpointing")
print(f"banter vs TRL tokens/s, full: {v[4][0] / v[5][0]:.2f}× TRL's default, {v[4][0] / v[6][0]:.2f}× without checkpointing")
