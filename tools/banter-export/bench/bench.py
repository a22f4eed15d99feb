"""`make bench` for banter-export: export time and size (ONNX fp32/int8, GGUF f16/q8_0) of random models of the
GPT-2 124M and SmolLM2-135M (Llama) shapes, and greedy decode speed of the exported ONNX graphs in onnxruntime
beside banter's own decode of the same model (benches/decode.rs), same threads, same run.

usage: python bench.py REPO_ROOT WORKDIR"""
import json, os, shutil, subprocess, sys, time

import numpy as np
import onnxruntime as ort
import torch
import transformers

root, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
threads = os.cpu_count()
os.makedirs(work, exist_ok=True)
# A small byte-level tokenizer (GGUF needs one; the embeddings' extra rows become [PADn] tokens).
tok = os.path.join(work, "export-tok.json")
subprocess.run([os.path.join(root, "target/release/banter-tokenize"), "train-tokenizer", "--vocab-size", "400",
                "--min-frequency", "1", "-q", "-o", tok, os.path.join(root, "testdata/train/persona.jsonl")], check=True)
exe = os.path.join(root, "target/release/banter-export")
torch.manual_seed(0)

shapes = {
    "GPT-2 124M": transformers.GPT2Config(),
    "SmolLM2-135M shape (Llama)": transformers.LlamaConfig(
        vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
        num_key_value_heads=3, max_position_embeddings=2048, tie_word_embeddings=True, rope_theta=100000.0),
}


def make(name, cfg):
    d = os.path.join(work, "export-" + name.split()[0].lower())
    if not os.path.exists(os.path.join(d, "model.safetensors")):
        m = transformers.AutoModelForCausalLM.from_config(cfg)
        m.save_pretrained(d)
        shutil.copy(tok, os.path.join(d, "tokenizer.json"))
    return d


def timed(args):
    t = time.perf_counter()
    subprocess.run([exe] + args + ["-q"], check=True)
    return time.perf_counter() - t


def size(p):
    if os.path.isdir(p):
        return sum(os.path.getsize(os.path.join(p, f)) for f in os.listdir(p) if f.startswith("model.onnx"))
    return os.path.getsize(p)


def ort_decode(path, prompt=16, new=128):
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    s = ort.InferenceSession(os.path.join(path, "model.onnx"), o, providers=["CPUExecutionProvider"])
    names = {i.name for i in s.get_inputs()}
    pk = [i for i in s.get_inputs() if i.name.startswith("past_key_values")]
    outs = [o.name for o in s.get_outputs()]
    vocab = s.get_outputs()[0].shape[-1]
    ids = np.random.default_rng(3).integers(0, vocab, (1, prompt)).astype(np.int64)

    def run(ids, total, past):
        feed = {"input_ids": ids, "attention_mask": np.ones((1, total), np.int64)}
        if "position_ids" in names:
            feed["position_ids"] = np.arange(total - ids.shape[1], total, dtype=np.int64)[None]
        for i in pk:
            feed[i.name] = past[i.name.replace("past_key_values", "present")] if past else np.zeros((1, i.shape[1], 0, i.shape[3]), np.float32)
        r = s.run(None, feed)
        return r[0], dict(zip(outs, r))

    for rep in range(2):  # warm-up, then timed
        t = time.perf_counter()
        logits, past = run(ids, prompt, None)
        ttft = time.perf_counter() - t
        t = time.perf_counter()
        total = prompt
        for _ in range(new):
            nxt = np.array([[int(logits[0, -1].argmax())]], np.int64)
            total += 1
            logits, past = run(nxt, total, past)
        secs = time.perf_counter() - t
    return new / secs, ttft * 1e3


def ours(path):
    out = subprocess.run(["cargo", "bench", "-q", "--locked", "-p", "banter-export", "--bench", "decode", "--",
                          "--model", path, "--threads", str(threads)], cwd=root, capture_output=True, text=True, check=True)
    return {l.split()[0]: float(l.split()[1]) for l in out.stdout.splitlines() if len(l.split()) == 2}


print(f"onnxruntime {ort.__version__}, {threads} threads")
print("| model | export | seconds | size MB |")
print("|---|---|---:|---:|")
dirs = {}
for name, cfg in shapes.items():
    d = make(name, cfg)
    dirs[name] = d
    for label, args, out in [
        ("ONNX fp32", ["onnx", d, "-o", d + "-onnx"], d + "-onnx"),
        ("ONNX int8", ["onnx", d, "--int8", "-o", d + "-onnx8"], d + "-onnx8"),
        ("GGUF f16", ["gguf", d, "--type", "f16", "-o", d + ".f16.gguf"], d + ".f16.gguf"),
        ("GGUF q8_0", ["gguf", d, "--type", "q8_0", "-o", d + ".q8.gguf"], d + ".q8.gguf"),
    ]:
        print(f"| {name} | {label} | {timed(args):.1f} | {size(out) / 1e6:.0f} |", flush=True)

print()
print("| greedy decode (16-token prompt, 128 new tokens, batch 1) | tokens/s | TTFT ms | vs banter fp32 |")
print("|---|---:|---:|---:|")
for name, d in dirs.items():
    b = ours(d)
    print(f"| {name}: banter fp32 | {b['decode_tokens_per_s']:.1f} | {b['ttft_ms']:.1f} | 1.00× |", flush=True)
    for label, p in [("onnxruntime, ONNX fp32", d + "-onnx"), ("onnxruntime, ONNX int8", d + "-onnx8")]:
        tps, ttft = ort_decode(p)
        print(f"| {name}: {label} | {tps:.1f} | {ttft:.1f} | {tps / b['decode_tokens_per_s']:.2f}× |", flush=True)
