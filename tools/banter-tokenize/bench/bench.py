"""`make bench` for banter-tokenize: MB/s and tokens/s encoding tinyshakespeare repeated to ~50 MB with a
tokenizer trained on it, beside `python ../shared/bench/hf_reference.py tokenize` (Python `tokenizers`
encode_batch) on the same tokenizer and text, in the same run. Prints a markdown table.

usage: python bench.py BANTER_TOKENIZE_BINARY WORKDIR SHAKESPEARE HF_REFERENCE"""
import json, os, subprocess, sys, time

binary, work, shakespeare, reference = sys.argv[1:5]
os.makedirs(work, exist_ok=True)
corpus = os.path.join(work, "shakespeare-50mb.txt")
if not os.path.exists(corpus):
    t = open(shakespeare, encoding="utf-8").read()
    open(corpus, "w", encoding="utf-8").write(t * (int(50e6 / len(t.encode())) + 1))
tok = os.path.join(work, "shakespeare-tok.json")
subprocess.run([binary, "train-tokenizer", shakespeare, "--vocab-size", "8000", "-q", "-o", tok], check=True)
mb = os.path.getsize(corpus) / 1e6

best = None
for _ in range(2):
    t0 = time.perf_counter()
    out = subprocess.run([binary, "encode", corpus, "--tokenizer", tok, "--block-size", "1024", "--json",
                          "-o", os.path.join(work, "shakespeare-blocks.jsonl")], capture_output=True, text=True, check=True)
    dt = time.perf_counter() - t0
    tokens = json.loads(out.stdout)["counts"]["tokens"]
    if best is None or dt < best[0]:
        best = (dt, tokens)
dt, tokens = best
ref = subprocess.run([sys.executable, reference, "tokenize", "--tokenizer", tok, "--file", corpus],
                     capture_output=True, text=True, check=True).stdout
r = dict(l.split() for l in ref.splitlines() if l.strip())
print("| tokenizing ~50 MB (tinyshakespeare ×45), 8k byte-level BPE | MB/s | tokens/s |")
print("|---|---:|---:|")
print(f"| banter-tokenize encode (lines → packed 1024-token blocks, JSONL written) | {mb / dt:.2f} | {tokens / dt:,.0f} |")
print(f"| Python tokenizers encode_batch (hf_reference.py, ids only) | {float(r['tokenize_mb_per_s']):.2f} | {float(r['tokens_per_s']):,.0f} |")
print(f"| ratio | {mb / dt / float(r['tokenize_mb_per_s']):.2f}× | |")
