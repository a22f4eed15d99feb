"""`make bench` for banter-eval.

1. The attribution classifier on real multi-speaker text (tinyshakespeare, the 8 most frequent speakers, each
   one's last 20% of speeches held out): banter's accuracy and time beside scikit-learn's on the same split.
2. The persona walk-through's models (a tiny GPT-2 base and a LoRA adapter on Sara's replies, made here as
   examples/persona-eval.sh makes them): wall time of `split`, `persona` (40 held-out contexts, adapter and base:
   a held-out loss and a generated reply each) and `loss`; and `persona` on a GPT-2 `small` with contexts answered
   one at a time against batches of 8.

usage: python bench.py REPO_ROOT WORKDIR"""
import json, os, subprocess, sys, time

root, work = sys.argv[1:3]
work = os.path.abspath(os.path.join(work, "eval"))
os.makedirs(work, exist_ok=True)
bin_dir = os.path.join(root, "target", "release")
text = os.path.join(root, "testdata", "eval", "tinyshakespeare.txt")

def kv(out):
    return {l.split()[0]: float(l.split()[1]) for l in out.splitlines() if len(l.split()) == 2}

b = kv(subprocess.run(["cargo", "bench", "-q", "--locked", "-p", "banter-eval-lib", "--bench", "attribution", "--", text],
                      cwd=root, capture_output=True, text=True, check=True).stdout)
ref = subprocess.run([sys.executable, os.path.join(root, "tools", "banter-eval", "bench", "sklearn_reference.py"), text],
                     capture_output=True, text=True, check=True).stdout
print(f"Attribution on tinyshakespeare: {int(b['speakers'])} speakers, {int(b['train_speeches'])} speeches to fit, "
      f"{int(b['heldout_speeches'])} held out\n")
print("| classifier | accuracy | fit + attribute s |")
print("|---|---:|---:|")
print(f"| banter-eval (char_wb 3–5-grams, multinomial NB, α 0.1) | {b['accuracy']:.3f} | {b['fit_s'] + b['attribute_s']:.3f} |")
for line in ref.strip().splitlines():
    name, acc, secs = line.split("\t")
    print(f"| {name} | {float(acc):.3f} | {float(secs):.3f} |")

def run(args, **kw):
    t = time.perf_counter()
    r = subprocess.run([os.path.join(bin_dir, args[0])] + args[1:], capture_output=True, text=True, cwd=work, **kw)
    if r.returncode not in (0, 1):
        sys.exit(f"{args}: {r.stderr}")
    return time.perf_counter() - t, r

export = os.path.join(root, "testdata", "eval", "WhatsApp Chat with Three Friends.txt")
run(["banter-whatsapp", "parse", export, "-q", "-o", "messages.jsonl"])
t_split, _ = run(["banter-eval", "split", "messages.jsonl", "--holdout", "0.2", "-q", "-o", "split.json"])
run(["banter-whatsapp", "samples", "messages.jsonl", "--persona", "Sara", "--window", "4", "-q", "-o", "sara.jsonl"])
cut = json.load(open(os.path.join(work, "split.json")))["cutoff"]
with open(os.path.join(work, "everyone.txt"), "w") as f:
    for line in open(os.path.join(work, "messages.jsonl")):
        m = json.loads(line)
        if m.get("author") and m["kind"] == "text" and m["ts"] < cut:
            f.write(m["text"] + "\n")
with open(os.path.join(work, "held.jsonl"), "w") as f:
    for line in open(os.path.join(work, "sara.jsonl")):
        if json.loads(line)["meta"]["ts"] >= cut:
            f.write(line)
run(["banter-tokenize", "train-tokenizer", "everyone.txt", "sara.jsonl", "--vocab-size", "800", "-q", "-o", "tok.json"])
run(["banter-train", "everyone.txt", "--tokenizer", "tok.json", "--init", "scratch", "--config", "tiny", "--template", "chatml",
     "--max-steps", "150", "--batch-size", "16", "--lr", "3e-3", "--warmup", "10", "--block-size", "64", "--force", "-q", "-o", "base"])
run(["banter-train", "sara.jsonl", "--model", "base", "--lora", "--holdout-split", "split.json", "--max-steps", "150",
     "--batch-size", "16", "--lr", "5e-3", "--warmup", "10", "--block-size", "64", "--mode", "pad", "--force", "-q", "-o", "sara-lora"])
t_persona, r = run(["banter-eval", "persona", "base", "--adapter", "sara-lora", "--messages", "messages.jsonl", "--persona",
                    "Sara", "--samples", "40", "--html", "report.html", "--json", "-q"])
rep = json.loads(r.stdout)["persona"]
n_held = sum(1 for _ in open(os.path.join(work, "held.jsonl")))
t_loss, _ = run(["banter-eval", "loss", "base", "held.jsonl", "--adapter", "sara-lora", "-q"])
print()
print("The persona walk-through's models (tiny GPT-2, 150 steps; a LoRA adapter on Sara's replies):\n")
print("| command | work | wall s |")
print("|---|---|---:|")
print(f"| banter-eval split | {json.load(open(os.path.join(work, 'split.json')))['messages']} messages | {t_split:.2f} |")
print(f"| banter-eval persona --samples 40 | {rep['samples']} contexts × 2 models (loss + reply each), HTML | {t_persona:.2f} |")
print(f"| banter-eval loss | {n_held} samples × 2 models | {t_loss:.2f} |")
# Batched answering on a larger model (GPT-2 `small`, 6 × 384, 30 steps on Sara's samples): 32 contexts one at a
# time against batches of 8 (the same replies).
run(["banter-train", "sara.jsonl", "--tokenizer", "tok.json", "--init", "scratch", "--config", "small", "--holdout-split",
     "split.json", "--max-steps", "30", "--batch-size", "8", "--block-size", "64", "--force", "-q", "-o", "small"])
t_b1, _ = run(["banter-eval", "persona", "small", "--messages", "messages.jsonl", "--persona", "Sara", "--samples", "32",
               "--batch", "1", "-q"])
t_b8, _ = run(["banter-eval", "persona", "small", "--messages", "messages.jsonl", "--persona", "Sara", "--samples", "32",
               "--batch", "8", "-q"])
print(f"| banter-eval persona, GPT-2 small (6 × 384), 32 contexts, --batch 1 | loss + reply each | {t_b1:.2f} |")
print(f"| same, --batch 8 | the same replies | {t_b8:.2f} ({t_b1 / t_b8:.2f}×) |")
print()
for m in rep["models"]:
    f = m["figures"]
    print(f"- {os.path.basename(m['name'])}: attributed to Sara {f['attribution']:.0%}, style distance {f['style_distance']:.3f}, "
          f"held-out loss {m['heldout_loss']:.3f}, distinct-2 {f['diversity']['distinct_2']:.3f}")
print(f"- the classifier on the chat's real held-out messages: {rep['attributor']['accuracy']:.0%} "
      f"(always the most active: {rep['attributor']['chance']:.0%})")
