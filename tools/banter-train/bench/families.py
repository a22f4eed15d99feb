"""`make bench` for the Hub families: on the SmolLM2-135M and Qwen2.5-0.5B shapes (random weights; the
shapes' config.json bodies are in `shapes/`), banter (`benches/families.rs`) beside transformers/PEFT
(`families_reference.py`) in the same run with the same threads:
- sampled decoding, batch 1, 16-token prompt, 64 new tokens: fp32, and bf16 weights where the CPU computes
  bf16 natively;
- LoRA training steps (PEFT's default targets q_proj/v_proj, r 8), batch 2 × 128: fp32, and bf16 compute
  where native;
- loading a bf16 checkpoint (saved by transformers) in bf16: banter's peak RSS beside the file's size.

usage: python families.py REPO_ROOT WORKDIR [--steps N] [--new N]"""
import json, os, subprocess, sys

# `work` absolute: cargo runs the bench binaries from their package directory.
root, work = sys.argv[1], os.path.abspath(sys.argv[2])
steps = sys.argv[sys.argv.index("--steps") + 1] if "--steps" in sys.argv else "3"
new = sys.argv[sys.argv.index("--new") + 1] if "--new" in sys.argv else "64"
os.makedirs(work, exist_ok=True)
here = os.path.dirname(os.path.abspath(__file__))
threads = str(os.cpu_count())
flags = open("/proc/cpuinfo").read().split("flags")[1].split("\n")[0].split()
native_bf16 = "avx512_bf16" in flags or "amx_bf16" in flags


def kv(text):
    return {l.split()[0]: float(l.split()[1]) for l in text.splitlines() if len(l.split()) == 2}


def banter(args):
    out = subprocess.run(["cargo", "bench", "-q", "--locked", "-p", "banter-train", "--bench", "families", "--",
                          "--threads", threads] + args, cwd=root, capture_output=True, text=True, check=True)
    return kv(out.stdout)


def hf(args):
    out = subprocess.run([sys.executable, os.path.join(here, "families_reference.py"), "--threads", threads] + args,
                         capture_output=True, text=True, check=True)
    return kv(out.stdout)


kinds = [("fp32", [])] + ([("bf16", ["--bf16"])] if native_bf16 else [])
print("| shape | work | precision | banter | HF | ratio | banter peak RSS MB | HF peak RSS MB |")
print("|---|---|---|---:|---:|---:|---:|---:|")
loads = []
for name in ["smollm2-135m", "qwen2.5-0.5b"]:
    cfg = os.path.join(here, "shapes", name + ".json")
    for kind, flag in kinds:
        b = banter(["--config", cfg, "--mode", "decode", "--new", new] + flag)
        h = hf(["--config", cfg, "--mode", "decode", "--new", new] + flag)
        key = "generate_tokens_per_s"
        print(f"| {name} | decode tokens/s (TTFT {b['ttft_ms']:.0f} ms) | {kind} | {b[key]:.1f} | {h[key]:.1f} | "
              f"{b[key] / h[key]:.2f}× | {b['peak_rss_mb']:.0f} | {h['peak_rss_mb']:.0f} |")
    for kind, flag in kinds:
        b = banter(["--config", cfg, "--mode", "lora", "--steps", steps] + flag)
        h = hf(["--config", cfg, "--mode", "lora", "--steps", steps] + flag)
        key = "train_tokens_per_s"
        print(f"| {name} | LoRA train tokens/s | {kind} | {b[key]:.1f} | {h[key]:.1f} | "
              f"{b[key] / h[key]:.2f}× | {b['peak_rss_mb']:.0f} | {h['peak_rss_mb']:.0f} |")
    ck = os.path.join(work, name + "-bf16")
    hf(["--config", cfg, "--mode", "save", "--dir", ck])
    size = sum(os.path.getsize(os.path.join(ck, f)) for f in os.listdir(ck) if f.endswith(".safetensors")) / 2**20
    b = banter(["--mode", "load", "--dir", ck, "--bf16"])
    loads.append((name, size, b))
print()
print("| loading a bf16 checkpoint in bf16 | file MB | banter peak RSS MB | before loading MB | peak / file | (peak − before) / file |")
print("|---|---:|---:|---:|---:|---:|")
for name, size, b in loads:
    peak, before = b["peak_rss_mb"], b["rss_before_load_mb"]
    print(f"| {name} | {size:.0f} | {peak:.0f} | {before:.0f} | {peak / size:.2f}× | {(peak - before) / size:.2f}× |")
