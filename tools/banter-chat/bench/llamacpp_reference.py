"""llama.cpp reference for `make bench` (issue 30): the GPT-2 124M shape with random weights (transformers,
seed 0) saved as a model directory, exported by `banter-export gguf --type T`, then sampled by llama.cpp
(llama-cpp-python, `requirements-llamacpp.txt`) as hf_reference.py samples: a 16-token prompt, 128 new
tokens, top-k 50, top-p 0.95, temperature 0.8, the same threads. Prints `key value` lines; the model
directory's path is printed as `model_dir` so banter's own bench (`benches/gen.rs --model`) decodes the very
same weights.

usage: python llamacpp_reference.py REPO_ROOT WORKDIR --type f32|bf16|q8_0|q4_0 [--threads N] [--new 128]"""
import argparse, os, shutil, subprocess, time

p = argparse.ArgumentParser()
p.add_argument("root"); p.add_argument("work")
p.add_argument("--type", default="f32"); p.add_argument("--threads", type=int, default=os.cpu_count())
p.add_argument("--new", type=int, default=128)
a = p.parse_args()

import torch, transformers

d = os.path.join(a.work, "llamacpp-gpt2")
if not os.path.exists(os.path.join(d, "model.safetensors")):
    tok = os.path.join(a.work, "llamacpp-tok.json")
    subprocess.run([os.path.join(a.root, "target/release/banter-tokenize"), "train-tokenizer", "--vocab-size", "400",
                    "--min-frequency", "1", "-q", "-o", tok, os.path.join(a.root, "testdata/train/persona.jsonl")], check=True)
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(transformers.GPT2Config()).save_pretrained(d)
    shutil.copy(tok, os.path.join(d, "tokenizer.json"))
print(f"model_dir {d}")
gguf = os.path.join(a.work, f"llamacpp-gpt2-{a.type}.gguf")
if not os.path.exists(gguf):
    subprocess.run([os.path.join(a.root, "target/release/banter-export"), "gguf", d, "--type", a.type, "-o", gguf, "-q"],
                   check=True)
print(f"gguf_mb {os.path.getsize(gguf) / 1e6:.1f}")

from llama_cpp import Llama

llm = Llama(model_path=gguf, n_ctx=512, n_batch=64, n_threads=a.threads, n_threads_batch=a.threads, seed=1,
            verbose=False)
vocab = llm.n_vocab()
prompt = [(i * 7919) % vocab for i in range(16)]


def run(new):
    # llama-cpp-python keeps the last prompt's KV cache and skips a prompt it has seen (the warm-up's), which
    # would time a prefill of nothing: forget it, so the timed run prefills the 16 tokens as banter's does.
    llm.reset()
    t = time.perf_counter()
    first, n = None, 0
    for _ in llm.generate(prompt, top_k=50, top_p=0.95, temp=0.8, reset=True):
        if first is None:
            first = time.perf_counter() - t
        n += 1
        if n >= new:
            break
    return n, first, time.perf_counter() - t


run(8)  # warm-up
n, first, total = run(a.new)
print(f"generate_tokens_per_s {(n - 1) / (total - first):.1f}")
print(f"ttft_ms {first * 1000:.1f}")
llm.close()
