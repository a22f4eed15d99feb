"""`make bench`: gradient checkpointing (issue 30) on the GPT-2 124M shape, full training from random
weights, batch 8 × 256, dropout 0.1, one process with every core. banter-train with and without
`--gradient-checkpointing` (peak RSS, tokens/s, the largest difference between the two runs' losses over
the same steps), beside HF transformers with and without `gradient_checkpointing_enable()` (TRL's default)
in the same run (`ckpt_reference.py`).

usage: python checkpointing.py REPO_ROOT WORKDIR [--steps 4]"""
import json, os, random, resource, shutil, subprocess, sys

root, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
steps = int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else 4
os.makedirs(work, exist_ok=True)
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from wordlevel import write_tokenizer
banter = os.path.join(root, "target", "release", "banter-train")
V, B, T = 50257, 8, 256

tok = os.path.join(work, "ckpt-tok.json")
write_tokenizer(tok, V)
blocks = os.path.join(work, "ckpt-blocks.jsonl")
rng = random.Random(0)
with open(blocks, "w") as f:
    for _ in range(B * steps):
        ids = [rng.randrange(V - 1) for _ in range(T)]
        f.write(json.dumps({"input_ids": ids, "labels": ids}) + "\n")


def peak(cmd):
    """Runs `cmd` through rss.py; returns (stdout, stderr, peak RSS MB)."""
    r = subprocess.run([sys.executable, os.path.join(here, "rss.py"), work, "ckpt"] + cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{cmd[0]} failed:\n{r.stderr[-3000:]}")
    return r.stdout, r.stderr, float(open(os.path.join(work, "ckpt-rank0.rss")).read())


def run_banter(extra):
    out = os.path.join(work, "ckpt-out")
    shutil.rmtree(out, ignore_errors=True)
    _, _, mb = peak([banter, blocks, "--init", "scratch", "--config", "gpt2", "--tokenizer", tok, "--max-steps",
                     str(steps), "--batch-size", str(B), "--precision", "fp32", "--dropout", "0.1", "--seed", "1",
                     "-q", "-o", out] + extra)
    m = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if '"loss"' in l]
    m = [x for x in m if "step" in x and "loss" in x]
    tps = sum(x["tokens"] for x in m[1:]) / (m[-1]["elapsed_s"] - m[0]["elapsed_s"])
    shutil.rmtree(out, ignore_errors=True)
    return tps, mb, [x["loss"] for x in m]


def run_hf(extra):
    out, _, mb = peak([sys.executable, os.path.join(here, "ckpt_reference.py"), "--steps", str(steps), "--batch",
                       str(B), "--seq", str(T)] + extra)
    return float(out.split()[-1]), mb


plain, ckpt = run_banter([]), run_banter(["--gradient-checkpointing"])
hf_plain, hf_ckpt = run_hf([]), run_hf(["--gradient-checkpointing"])
diff = max(abs(a - b) for a, b in zip(plain[2], ckpt[2]))
print(f"| GPT-2 124M full, batch {B} × {T}, fp32, dropout 0.1 | tokens/s | peak RSS MB | vs without |")
print("|---|---:|---:|---:|")
print(f"| banter-train | {plain[0]:.1f} | {plain[1]:,.0f} | |")
print(f"| banter-train --gradient-checkpointing | {ckpt[0]:.1f} | {ckpt[1]:,.0f} | "
      f"{100 * (ckpt[1] / plain[1] - 1):+.0f}% RSS, {100 * (ckpt[0] / plain[0] - 1):+.0f}% speed |")
print(f"| HF transformers | {hf_plain[0]:.1f} | {hf_plain[1]:,.0f} | |")
print(f"| HF transformers, gradient_checkpointing_enable() | {hf_ckpt[0]:.1f} | {hf_ckpt[1]:,.0f} | "
      f"{100 * (hf_ckpt[1] / hf_plain[1] - 1):+.0f}% RSS, {100 * (hf_ckpt[0] / hf_plain[0] - 1):+.0f}% speed |")
print(f"\nLoss with vs without checkpointing, {len(plain[2])} steps: largest difference {diff:.2e} "
      f"(losses {', '.join(f'{x:.5f}' for x in plain[2])}).")
