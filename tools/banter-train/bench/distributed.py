"""`make bench`: data-parallel training through torchrun, 1 and 2 CPU ranks × 1 thread, on the GPT-2 124M
shape (random init, batch 4 × 128 per rank, fp32), beside HF transformers + torchrun DDP (Gloo, the same
shape and batch) in the same run: tokens/s (steps after the first two), scaling efficiency (2-rank tokens/s
over twice the 1-rank), per-rank peak RSS, and ZeRO-1's optimizer state per rank.

usage: python distributed.py REPO_ROOT WORKDIR [--steps N]"""
import glob, json, os, random, re, shutil, subprocess, sys

root, work = sys.argv[1:3]
steps = int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else 8
work = os.path.join(work, "distributed")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
venv = os.path.join(root, ".venv", "bin")
torchrun, python = os.path.join(venv, "torchrun"), os.path.join(venv, "python")
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from wordlevel import write_tokenizer
banter = os.path.join(root, "target", "release", "banter-train")
V, B = 50257, 4

# A word-level tokenizer of GPT-2's vocabulary size and random blocks: the speed does not depend on the text.
tok = os.path.join(work, "tok.json")
write_tokenizer(tok, V)
blocks = os.path.join(work, "blocks.jsonl")
rng = random.Random(0)
with open(blocks, "w") as f:
    for _ in range(B * 2 * steps):
        ids = [rng.randrange(V - 1) for _ in range(128)]
        f.write(json.dumps({"input_ids": ids, "labels": ids}) + "\n")
env = dict(os.environ, OMP_NUM_THREADS="1")

def rss(name):
    return [float(open(p).read()) for p in sorted(glob.glob(os.path.join(work, f"{name}-rank*.rss")))]

def run_banter(ranks, extra, name):
    out = os.path.join(work, name)
    cmd = [torchrun, "--no-python", "--nproc-per-node", str(ranks), "--master-port", str(29400 + ranks + len(extra)),
           python, os.path.join(here, "rss.py"), work, name, banter, blocks, "--init", "scratch", "--config", "gpt2",
           "--tokenizer", tok, "--max-steps", str(steps), "--batch-size", str(B), "--threads", "1",
           "--precision", "fp32", "--dropout", "0", "-o", out] + extra
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"banter-train ({name}) failed:\n{r.stderr[-3000:]}")
    m = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))]
    # Steps after the first two, from the run's own clock (checkpoint and output writing excluded).
    toks = sum(x["tokens"] for x in m[2:])
    tps = toks / (m[-1]["elapsed_s"] - m[1]["elapsed_s"])
    zero = re.search(r"ZeRO-1: rank 0 holds ([\d.]+)M of the ([\d.]+)M", r.stderr)
    shutil.rmtree(out, ignore_errors=True)
    return tps, rss(name), zero

def run_hf(ranks):
    cmd = [torchrun, "--nproc-per-node", str(ranks), "--master-port", str(29500 + ranks),
           os.path.join(here, "ddp_reference.py"), work, "--steps", str(steps), "--batch", str(B)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"HF DDP reference failed:\n{r.stderr[-3000:]}")
    tps = float(re.search(r"train_tokens_per_s ([\d.]+)", r.stdout).group(1))
    return tps, rss("hf")

res = {}
for ranks in (1, 2):
    res[("banter", ranks)] = run_banter(ranks, [], f"banter{ranks}")
    for p in glob.glob(os.path.join(work, "hf-rank*.rss")):
        os.remove(p)
    res[("hf", ranks)] = run_hf(ranks)
zero = run_banter(2, ["--zero1"], "zero")

print(f"GPT-2 124M shape, fp32, batch {B} × 128 per rank, 1 thread per rank, Gloo on one machine, {steps} steps")
print("| | ranks | tokens/s | scaling efficiency | peak RSS per rank MB |")
print("|---|---:|---:|---:|---:|")
for who in ("banter", "hf"):
    one = res[(who, 1)][0]
    for ranks in (1, 2):
        tps, mem = res[(who, ranks)][:2]
        eff = tps / (ranks * one)
        name = "banter-train (torchrun --no-python)" if who == "banter" else "HF transformers + DDP (torchrun)"
        print(f"| {name} | {ranks} | {tps:.1f} | {eff:.2f} | {' / '.join(f'{m:.0f}' for m in mem)} |")
tps, mem, z = zero
print(f"| banter-train --zero1 | 2 | {tps:.1f} | {tps / (2 * res[('banter', 1)][0]):.2f} | {' / '.join(f'{m:.0f}' for m in mem)} |")
b2, h2 = res[("banter", 2)][0], res[("hf", 2)][0]
print(f"\n2 ranks: banter {b2 / h2:.2f}× HF DDP.")
if z:
    mine, total = float(z.group(1)), float(z.group(2))
    print(f"ZeRO-1: rank 0 holds {mine:.2f}M of the {total:.2f}M AdamW values ({mine / total:.2f} of the whole, "
          f"{mine * 4:.0f} MB instead of {total * 4:.0f} MB).")
