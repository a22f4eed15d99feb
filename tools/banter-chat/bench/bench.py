"""`make bench` for banter-chat: decode tokens/s and time to first token on the GPT-2 124M shape and on a tiny
model, beside `python ../shared/bench/hf_reference.py generate` (transformers `generate`, sampling) with the
same threads in the same run.

usage: python bench.py REPO_ROOT HF_REFERENCE"""
import os, subprocess, sys

root, reference = sys.argv[1:3]
threads = str(os.cpu_count())

def kv(text):
    return {l.split()[0]: float(l.split()[1]) for l in text.splitlines() if len(l.split()) == 2}

def ours(shape, extra=()):
    out = subprocess.run(["cargo", "bench", "-q", "--locked", "-p", "banter-chat", "--bench", "gen", "--", "--threads", threads]
                         + shape + list(extra), cwd=root, capture_output=True, text=True, check=True)
    return kv(out.stdout)

def hf(shape):
    out = subprocess.run([sys.executable, reference, "generate", "--threads", threads] + shape, capture_output=True, text=True, check=True)
    return kv(out.stdout)

print("| generation (sampling, 128 new tokens) | banter tokens/s | banter TTFT ms | HF tokens/s | ratio |")
print("|---|---:|---:|---:|---:|")
for name, shape in [("GPT-2 124M", []), ("tiny (4 × 128, vocab 8000)", ["--layers", "4", "--embd", "128", "--heads", "4", "--vocab", "8000"])]:
    h = hf(shape)
    for label, extra in [("fp32", []), ("bf16 weights", ["--bf16"])]:
        b = ours(shape, extra)
        print(f"| {name}, {label} | {b['generate_tokens_per_s']:.1f} | {b['ttft_ms']:.1f} | {h['generate_tokens_per_s']:.1f} | "
              f"{b['generate_tokens_per_s'] / h['generate_tokens_per_s']:.2f}× |")
