"""`make bench` for banter-chat: decode tokens/s and time to first token on the GPT-2 124M shape and on a tiny
model, beside `../shared/bench/hf_reference.py generate` (transformers `generate`, sampling), CTranslate2
(`ct2_reference.py`, fp32 and int8) and, for 124M, llama.cpp (`llamacpp_reference.py`: the same weights
exported by `banter-export gguf` at f32, bf16, q8_0 and q4_0, which banter decodes too) with the same threads
in the same run.

usage: python bench.py REPO_ROOT HF_REFERENCE WORKDIR"""
import os, subprocess, sys

root, reference, work = sys.argv[1:4]
here = os.path.dirname(os.path.abspath(__file__))
threads = str(os.cpu_count())
os.makedirs(work, exist_ok=True)
flags = open("/proc/cpuinfo").read().split("flags")[1].split("\n")[0].split()
native_bf16 = "avx512_bf16" in flags or "amx_bf16" in flags

def kv(text):
    return {l.split()[0]: float(l.split()[1]) for l in text.splitlines() if len(l.split()) == 2}

def llamacpp(kind):
    try:
        out = subprocess.run([sys.executable, os.path.join(here, "llamacpp_reference.py"), root, os.path.abspath(work),
                              "--type", kind, "--threads", threads], capture_output=True, text=True, check=True)
        return {l.split()[0]: l.split()[1] for l in out.stdout.splitlines() if len(l.split()) == 2}
    except subprocess.CalledProcessError as e:
        print(f"(llama.cpp {kind} failed: {e.stderr.strip().splitlines()[-1] if e.stderr.strip() else e})")
        return None

def ours(shape, extra=()):
    out = subprocess.run(["cargo", "bench", "-q", "--locked", "-p", "banter-chat", "--bench", "gen", "--", "--threads", threads]
                         + shape + list(extra), cwd=root, capture_output=True, text=True, check=True)
    return kv(out.stdout)

def hf(shape):
    out = subprocess.run([sys.executable, reference, "generate", "--threads", threads] + shape, capture_output=True, text=True, check=True)
    return kv(out.stdout)

def ct2(shape, quant):
    try:
        out = subprocess.run([sys.executable, os.path.join(here, "ct2_reference.py"), work, "--threads", threads,
                              "--quantization", quant] + shape, capture_output=True, text=True, check=True)
        return kv(out.stdout)
    except subprocess.CalledProcessError as e:
        print(f"(CTranslate2 {quant} failed: {e.stderr.strip().splitlines()[-1] if e.stderr.strip() else e})")
        return None

print("| generation (sampling, 16-token prompt, 128 new tokens) | tokens/s | TTFT ms | vs HF | vs CT2 same precision "
      "| vs llama.cpp same precision |")
print("|---|---:|---:|---:|---:|---:|")
for name, shape in [("GPT-2 124M", []), ("tiny (4 × 128, vocab 8000)", ["--layers", "4", "--embd", "128", "--heads", "4", "--vocab", "8000"])]:
    h = hf(shape)
    c = {"fp32": ct2(shape, "float32"), "int8": ct2(shape, "int8")}
    rows = [("fp32", []), ("int8 weights (--quantize int8)", ["--int8"]), ("q4 weights (--quantize q4)", ["--q4"]),
            ("fp32, batch of 8 prompts (--input), total", ["--batch", "8"])]
    if native_bf16:
        rows.append(("bf16 weights", ["--bf16"]))
    # 124M: the very weights llama.cpp decodes below (a transformers GPT-2, seed 0).
    lc = {k: llamacpp(k) for k in ["f32", "bf16", "q8_0", "q4_0"]} if not shape else {}
    model = next((v["model_dir"] for v in lc.values() if v), None)
    same = ["--model", os.path.abspath(model)] if model else []
    llama_of = {"fp32": "f32", "bf16": "bf16", "int8": "q8_0", "q4": "q4_0"}
    for label, extra in rows:
        b = ours(shape, list(extra) + same)
        ref = c.get(label.split()[0].rstrip(",")) if "batch" not in label else None
        vs_ct2 = f"{b['generate_tokens_per_s'] / ref['generate_tokens_per_s']:.2f}×" if ref else ""
        ref_lc = lc.get(llama_of.get(label.split()[0].rstrip(","), ""))
        vs_lc = f"{b['generate_tokens_per_s'] / float(ref_lc['generate_tokens_per_s']):.2f}×" if ref_lc and "batch" not in label else ""
        print(f"| banter {name}, {label} | {b['generate_tokens_per_s']:.1f} | {b['ttft_ms']:.1f} | "
              f"{b['generate_tokens_per_s'] / h['generate_tokens_per_s']:.2f}× | {vs_ct2} | {vs_lc} |")
    print(f"| HF transformers {name}, fp32 | {h['generate_tokens_per_s']:.1f} | | 1.00× | | |")
    for q, r in c.items():
        if r:
            print(f"| CTranslate2 {name}, {q} | {r['generate_tokens_per_s']:.1f} | {r['ttft_ms']:.1f} | "
                  f"{r['generate_tokens_per_s'] / h['generate_tokens_per_s']:.2f}× | | |")
    for q, r in lc.items():
        if r:
            print(f"| llama.cpp {name}, {q} GGUF ({float(r['gguf_mb']):.0f} MB) | {float(r['generate_tokens_per_s']):.1f} | "
                  f"{float(r['ttft_ms']):.1f} | {float(r['generate_tokens_per_s']) / h['generate_tokens_per_s']:.2f}× | | |")
if not native_bf16:
    print("\n(bf16 rows skipped: this CPU has no avx512_bf16/amx_bf16, so bf16 is emulated; `--precision auto` uses fp32.)")
