"""`make bench` for banter-train.

1. Training tokens/s on the GPT-2 124M shape (random init), batch 2 × block 128 (Oodi's settings): fp32 full,
   LoRA r8, and bf16, beside `../shared/bench/hf_reference.py train` (PyTorch + transformers/peft) with the
   same threads, in the same run.
2. nanoGPT's CPU "baby GPT" on tinyshakespeare, characters as tokens (byte-level, no merges): 4 layers,
   4 heads, 128 embd, block 64, batch 12, 2000 iters, lr 1e-3 cosine, dropout 0, last 10% of the text as
   validation: banter's validation loss and wall time, and the HF reference's tokens/s for the same shape.

usage: python bench.py REPO_ROOT SHAKESPEARE HF_REFERENCE WORKDIR [--iters N]"""
import json, os, subprocess, sys, time

root, shakespeare, reference, work = sys.argv[1:5]
iters = int(sys.argv[sys.argv.index("--iters") + 1]) if "--iters" in sys.argv else 2000
os.makedirs(work, exist_ok=True)
threads = str(os.cpu_count())

def kv(text):
    return {l.split()[0]: float(l.split()[1]) for l in text.splitlines() if len(l.split()) == 2}

def banter_speed(extra):
    out = subprocess.run(["cargo", "bench", "-q", "--locked", "-p", "banter-train", "--bench", "speed", "--",
                          "--steps", "10", "--threads", threads] + extra, cwd=root, capture_output=True, text=True, check=True)
    return kv(out.stdout)

def hf_speed(extra):
    out = subprocess.run([sys.executable, reference, "train", "--steps", "10", "--threads", threads] + extra,
                         capture_output=True, text=True, check=True)
    return kv(out.stdout)

flags = open("/proc/cpuinfo").read().split("flags")[1].split("\n")[0].split()
native_bf16 = "avx512_bf16" in flags or "amx_bf16" in flags
print("| GPT-2 124M, batch 2 × 128, random init | banter tokens/s | HF tokens/s | ratio | banter peak RSS MB | HF peak RSS MB |")
print("|---|---:|---:|---:|---:|---:|")
rows = [("fp32, full", [], []),
        ("fp32, full, unfused (autograd head + tensor-op AdamW: the 0.1 path)", ["--unfused"], []),
        ("LoRA r8 (c_attn, c_proj)", ["--lora"], ["--lora"])]
if native_bf16:
    rows.append(("bf16 (banter: bf16 matmuls; HF: autocast)", ["--bf16"], ["--bf16"]))
    rows.append(("LoRA r8, bf16 (banter: frozen base held in bf16; HF: autocast)", ["--lora", "--bf16"], ["--lora", "--bf16"]))
    rows.append(("LoRA r8, bf16, base cast every pass (the path before)", ["--lora", "--bf16", "--cast-base"], ["--lora", "--bf16"]))
seen = {}
for name, ours, theirs in rows:
    b, h = banter_speed(ours), hf_speed(theirs)
    seen[name] = (b, h)
    print(f"| {name} | {b['train_tokens_per_s']:.1f} | {h['train_tokens_per_s']:.1f} | "
          f"{b['train_tokens_per_s'] / h['train_tokens_per_s']:.2f}× | {b['peak_rss_mb']:.0f} | {h['peak_rss_mb']:.0f} |")
if native_bf16:
    tps = lambda name, i: seen[name][i]["train_tokens_per_s"]
    bf16_row = "bf16 (banter: bf16 matmuls; HF: autocast)"
    print(f"| best mode (bf16) banter vs fp32 HF | | | {tps(bf16_row, 0) / tps('fp32, full', 1):.2f}× | | |")
    lora_rows = ["LoRA r8 (c_attn, c_proj)", "LoRA r8, bf16 (banter: frozen base held in bf16; HF: autocast)"]
    best_b, best_h = max(tps(r, 0) for r in lora_rows), max(tps(r, 1) for r in lora_rows)
    print(f"| best LoRA banter vs best LoRA HF | {best_b:.1f} | {best_h:.1f} | {best_b / best_h:.2f}× | | |")
else:
    print("\n(bf16 rows skipped: no avx512_bf16/amx_bf16 on this CPU, bf16 is emulated; `--precision auto` trains in fp32.)")

# nanoGPT baby GPT.
bin_dir = os.path.join(root, "target", "release")
text = open(shakespeare, encoding="utf-8").read()
cut = int(len(text) * 0.9)
train_s, val_s = os.path.join(work, "shakes-train.jsonl"), os.path.join(work, "shakes-val.jsonl")
with open(train_s, "w") as f: f.write(json.dumps({"text": text[:cut]}) + "\n")
with open(val_s, "w") as f: f.write(json.dumps({"text": text[cut:]}) + "\n")
tok = os.path.join(work, "bytes-tok.json")
subprocess.run([os.path.join(bin_dir, "banter-tokenize"), "train-tokenizer", shakespeare, "--vocab-size", "261", "-q", "-o", tok], check=True)
blocks = {}
for name, src in [("train", train_s), ("val", val_s)]:
    blocks[name] = os.path.join(work, f"shakes-{name}-blocks.jsonl")
    subprocess.run([os.path.join(bin_dir, "banter-tokenize"), "encode", src, "--tokenizer", tok, "--block-size", "65",
                    "-q", "-o", blocks[name]], check=True)
cfg = os.path.join(work, "baby-gpt.json")
json.dump({"vocab_size": 261, "n_positions": 65, "n_embd": 128, "n_layer": 4, "n_head": 4,
           "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}, open(cfg, "w"))
out = os.path.join(work, "baby-gpt")
subprocess.run(["rm", "-rf", out])
t0 = time.perf_counter()
r = subprocess.run([os.path.join(bin_dir, "banter-train"), blocks["train"], "--val-file", blocks["val"], "--tokenizer", tok,
                    "--config", cfg, "--max-steps", str(iters), "--batch-size", "12", "--lr", "1e-3", "--min-lr", "1e-4",
                    "--warmup", "100", "--beta2", "0.99", "--weight-decay", "0.1", "--eval-every", str(iters),
                    "--eval-blocks", "200", "--threads", threads, "--json", "-q", "-o", out], capture_output=True, text=True, check=True)
wall = time.perf_counter() - t0
rep = json.loads(r.stdout)
baby = ["--layers", "4", "--embd", "128", "--heads", "4", "--vocab", "261", "--batch", "12", "--block", "64"]
h = hf_speed(baby)
bs = banter_speed(baby)
tok_s = iters * 12 * 64 / rep["seconds"]
print()
print("| nanoGPT CPU baby GPT (4×128, block 64, batch 12) | iters | val loss | wall s | train tokens/s |")
print("|---|---:|---:|---:|---:|")
print(f"| nanoGPT (reported) | 2000 | 1.88 | ~180 | |")
print(f"| banter-train ({rep['precision']}) | {iters} | {rep['best_val_loss']:.3f} | {wall:.0f} | {tok_s:,.0f} |")
print(f"| HF transformers, same shape (hf_reference.py) | | | | {h['train_tokens_per_s']:,.0f} |")
print(f"| step speed, same shape, same harness as HF (benches/speed.rs) | | | | {bs['train_tokens_per_s']:,.0f} "
      f"({bs['train_tokens_per_s'] / h['train_tokens_per_s']:.2f}× HF) |")

# bf16 against fp32 on the baby shape: the same 200 steps (same seed, same batches) in each precision; the
# curves compared as means over windows of 20 steps (single steps are noisy in either precision).
if native_bf16 or "--bf16-curve" in sys.argv:
    curves = {}
    for prec in ["fp32", "bf16"]:
        o = os.path.join(work, f"baby-{prec}")
        subprocess.run(["rm", "-rf", o])
        subprocess.run([os.path.join(bin_dir, "banter-train"), blocks["train"], "--tokenizer", tok, "--config", cfg,
                        "--max-steps", "200", "--batch-size", "12", "--lr", "1e-3", "--min-lr", "1e-4", "--warmup", "20",
                        "--beta2", "0.99", "--weight-decay", "0.1", "--val-split", "0", "--eval-every", "1000000",
                        "--seed", "1", "--precision", prec, "--threads", threads, "-q", "-o", o], check=True)
        curves[prec] = [json.loads(l)["loss"] for l in open(os.path.join(o, "metrics.jsonl"))]
    w = 20
    win = lambda c: [sum(c[i:i + w]) / w for i in range(0, len(c), w)]
    a, b = win(curves["fp32"]), win(curves["bf16"])
    worst = max(abs(y - x) / x for x, y in zip(a, b))
    print()
    print("| baby GPT, 200 steps, loss per 20-step window | " + " | ".join(str(i * w + w) for i in range(len(a))) + " |")
    print("|---|" + "---:|" * len(a))
    print("| fp32 | " + " | ".join(f"{x:.4f}" for x in a) + " |")
    print("| bf16 | " + " | ".join(f"{x:.4f}" for x in b) + " |")
    print(f"\nbf16 against fp32: largest window difference {worst * 100:.2f}% (goal: within 1%); final window "
          f"{a[-1]:.4f} vs {b[-1]:.4f}.")

# Memory with data that outgrows it: a binary token file of 20 MB and one of 2 GB (written here in the
# documented layout), the same tiny model, 30 steps each; peak RSS of each training process.
import struct, numpy as np
def write_bin(path, tokens, block, vocab):
    if os.path.exists(path) and os.path.getsize(path) > tokens * 2:
        return
    blocks = tokens // block
    ids_off = 4096
    mask_off = (ids_off + tokens * 2 + 7) // 8 * 8
    index_off = (mask_off + (tokens + 7) // 8 + 7) // 8 * 8
    head = json.dumps({"format": "banter-tokens", "version": 1, "dtype": "u16", "blocks": blocks, "tokens": tokens,
                       "ids_offset": ids_off, "mask_offset": mask_off, "index_offset": index_off,
                       "vocab_size": vocab, "block_size": block}).encode()
    rng = np.random.default_rng(0)
    with open(path, "wb") as f:
        f.write(b"BNTRTOK1" + head + b" " * (4096 - 8 - len(head)))
        for start in range(0, tokens, 1 << 26):
            f.write(rng.integers(0, vocab, min(1 << 26, tokens - start), dtype=np.uint16).tobytes())
        f.write(b"\0" * (mask_off - ids_off - tokens * 2))
        f.write(b"\xff" * ((tokens + 7) // 8))
        f.write(b"\0" * (index_off - mask_off - (tokens + 7) // 8))
        for start in range(0, blocks + 1, 1 << 24):
            f.write((np.arange(start, min(blocks + 1, start + (1 << 24)), dtype=np.uint64) * block).tobytes())
def peak_rss(args):
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        raise SystemExit(p.stderr.read().decode())
    return ru.ru_maxrss / 1024
print()
print("| training on a binary token file (tiny model, 30 steps, batch 12 × 64) | file | peak RSS MB |")
print("|---|---:|---:|")
rss = {}
for label, tokens in [("20 MB", 10_000_000), ("2 GB", 1_000_000_000)]:
    path = os.path.join(work, f"tokens-{label.replace(' ', '')}.bin")
    write_bin(path, tokens, 64, 261)
    rss[label] = peak_rss([os.path.join(bin_dir, "banter-train"), path, "--tokenizer", tok, "--config", cfg,
                           "--max-steps", "30", "--batch-size", "12", "--threads", threads, "-q", "--overwrite", "-o",
                           os.path.join(work, f"bin-model-{label.replace(' ', '')}")])
    print(f"| banter-train | {os.path.getsize(path) / 1e6:,.0f} MB | {rss[label]:.0f} |")
print(f"| 2 GB vs 20 MB | | {rss['2 GB'] / rss['20 MB']:.3f}× |")
