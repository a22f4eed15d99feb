"""`make bench` (issue 30): what each decoding precision costs in quality. A GPT-2 of the `small` shape
(6 × 384) is trained by banter-train on the first 90% of tinyshakespeare (byte-level BPE, 4,000 tokens,
blocks of 128), then scored on the held-out last 10%: perplexity over windows of 128 tokens fed one at a time
(`benches/ppl.rs`: fp32, bf16 weights, int8, q4), and, for the same model exported by `banter-export gguf`,
llama.cpp's perplexity at f32, q8_0 and q4_0 over the same windows.

usage: python quality.py REPO_ROOT TINYSHAKESPEARE WORKDIR [--steps 400]"""
import json, os, subprocess, sys

root, text, work = os.path.abspath(sys.argv[1]), sys.argv[2], os.path.abspath(sys.argv[3])
steps = sys.argv[sys.argv.index("--steps") + 1] if "--steps" in sys.argv else "400"
work = os.path.join(work, "quality")
os.makedirs(work, exist_ok=True)
bin_dir = os.path.join(root, "target", "release")
W, N = 128, 40

raw = open(text, encoding="utf-8").read()
cut = int(len(raw) * 0.9)
train_txt, held_txt = os.path.join(work, "train.txt"), os.path.join(work, "held.txt")
open(train_txt, "w").write(raw[:cut])
open(held_txt, "w").write(raw[cut:])
model = os.path.join(work, "model")
if not os.path.exists(os.path.join(model, "model.safetensors")):
    tok = os.path.join(work, "tok.json")
    subprocess.run([os.path.join(bin_dir, "banter-tokenize"), "train-tokenizer", train_txt, "--vocab-size", "4000",
                    "-q", "-o", tok], check=True)
    subprocess.run([os.path.join(bin_dir, "banter-train"), train_txt, "--init", "scratch", "--config", "small",
                    "--tokenizer", tok, "--block-size", "128", "--batch-size", "16", "--max-steps", steps, "--lr", "1e-3",
                    "--precision", "fp32", "-q", "--force", "-o", model], check=True)

# The held-out text tokenized as training tokenized its text (banter-tokenize encode), blocks joined.
held = os.path.join(work, "held.jsonl")
subprocess.run([os.path.join(bin_dir, "banter-tokenize"), "encode", held_txt, "--tokenizer",
                os.path.join(model, "tokenizer.json"), "--block-size", str(W + 1), "-q", "-o", held], check=True)
ids = [i for l in open(held) for i in json.loads(l)["input_ids"]]
ids_file = os.path.join(work, "held-ids.json")
json.dump(ids, open(ids_file, "w"))
out = subprocess.run(["cargo", "bench", "-q", "--locked", "-p", "banter-chat", "--bench", "ppl", "--", "--model", model,
                      "--ids", ids_file, "--window", str(W), "--windows", str(N)], cwd=root, capture_output=True,
                     text=True, check=True).stdout
ours = {l.split()[0]: float(l.split()[1]) for l in out.splitlines() if l.startswith("ppl_")}

ref = {}
try:
    import numpy as np
    from llama_cpp import Llama
    for t in ["f32", "q8_0", "q4_0"]:
        g = os.path.join(work, f"model-{t}.gguf")
        subprocess.run([os.path.join(bin_dir, "banter-export"), "gguf", model, "--type", t, "-o", g, "-q"], check=True)
        llm = Llama(model_path=g, n_ctx=W + 8, n_batch=W + 8, logits_all=True, n_threads=os.cpu_count(), verbose=False)
        nll, n = 0.0, 0
        for k in range(N):
            w = ids[k * (W + 1):(k + 1) * (W + 1)]
            if len(w) < W + 1:
                break
            llm.reset()
            llm.eval(w[:W])
            z = np.asarray(llm.scores[:W], dtype=np.float64)
            m = z.max(axis=1, keepdims=True)
            lse = (m[:, 0] + np.log(np.exp(z - m).sum(axis=1)))
            nll += float((lse - z[np.arange(W), w[1:W + 1]]).sum())
            n += W
        ref[t] = float(np.exp(nll / n))
        llm.close()
except ImportError as e:
    print(f"(llama.cpp not installed: {e})")

print(f"| perplexity on held-out tinyshakespeare ({N} windows × {W} tokens), GPT-2 small 6 × 384 trained {steps} "
      f"steps | banter | vs banter fp32 | llama.cpp | vs llama.cpp f32 |")
print("|---|---:|---:|---:|---:|")
BASE = "f32"
pairs = [("fp32", "f32"), ("bf16", None), ("int8", "q8_0"), ("q4", "q4_0")]
for ours_name, theirs in pairs:
    o = ours[f"ppl_{ours_name}"]
    t = ref.get(theirs) if theirs else None
    print(f"| {ours_name}{' / ' + theirs if theirs else ''} | {o:.3f} | {100 * (o / ours['ppl_fp32'] - 1):+.2f}% | "
          f"{f'{t:.3f}' if t else ''} | {f'{100 * (t / ref[BASE] - 1):+.2f}%' if t and BASE in ref else ''} |")
