"""The combination matrix users run: family × template × training mode → every tool that reads the output.

Usage: matrix.py [--full] [--jobs N] [--family NAME]... [--keep DIR]

Each family is a random tiny model made by transformers (GPT-2, Llama with GQA, Qwen2, Qwen3, Phi-3, Gemma,
Gemma 2, Mistral, OPT pre- and post-LN) with a byte-level tokenizer and the family's own chat template (its
markers as special tokens; GPT-2 and OPT ship none). Each cell trains it with one template (the model's own,
chatml, the asimbot speakers template, plain text) in one mode (full fine-tune, LoRA, LoRA continued with
`--adapter`, DPO on a LoRA: from the base for every other family, continuing an SFT adapter for the rest),
then checks every consumer of the output:
  chat      banter-chat one-shot (`--raw` for plain text)
  batch     banter-chat --input, 3 prompts in one batch
  serve     banter-chat serve: /v1/chat/completions (/v1/completions for plain text)
  hf        transformers loads the model, or PEFT the adapter (on a base resized to the adapter's tokenizer,
            as PEFT documents), and a padded batch runs; the tokenizer's special tokens are in its vocabulary;
            transformers' greedy reply to the prompt its chat template renders equals banter-chat's
  onnx      banter-export onnx --verify (onnxruntime equals banter)
  gguf      banter-export gguf (OPT: refused with exit 2, llama.cpp has no OPT architecture)
Default: the pairwise set (every pair of values, 40 cells: mode = (template + family) mod 4); `--full` runs
all 160. Exit 1 if any check fails; no cell is skipped (a documented refusal is printed as such)."""
import argparse
import concurrent.futures as cf
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("BANTER_BIN", ROOT / "target/release"))
PERSONA = ROOT / "testdata/train/persona.jsonl"
PREFS = ROOT / "testdata/train/preferences.jsonl"
# banter-export --verify runs onnxruntime in this Python unless told otherwise.
os.environ.setdefault("BANTER_PYTHON", sys.executable)

LLAMA3 = (
    "{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + m['content'] + "
    "'<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
PHI3 = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + '<|end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
GEMMA = (
    "{% for m in messages %}{% set r = 'model' if m['role'] == 'assistant' else m['role'] %}"
    "{{ '<start_of_turn>' + r + '\\n' + m['content'] + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)
MISTRAL = (
    "{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}"
    "{% elif m['role'] == 'assistant' %}{{ m['content'] + '</s>' }}{% endif %}{% endfor %}"
)
MARKERS = {
    LLAMA3: ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    CHATML: ["<|im_start|>", "<|im_end|>"],
    PHI3: ["<|user|>", "<|assistant|>", "<|system|>", "<|end|>"],
    GEMMA: ["<start_of_turn>", "<end_of_turn>"],
    MISTRAL: ["[INST]", "[/INST]", "</s>"],
}
L = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
     "max_position_embeddings": 128}
O = {"model_type": "opt", "hidden_size": 32, "ffn_dim": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
     "max_position_embeddings": 128}
FAMILIES = {
    "gpt2": ({"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 128}, None),
    "llama": ({**L, "model_type": "llama", "num_key_value_heads": 2}, LLAMA3),
    "qwen2": ({**L, "model_type": "qwen2", "num_key_value_heads": 2, "tie_word_embeddings": True}, CHATML),
    "qwen3": ({**L, "model_type": "qwen3", "num_key_value_heads": 2, "head_dim": 16}, CHATML),
    "phi3": ({**L, "model_type": "phi3", "num_key_value_heads": 2, "sliding_window": 16}, PHI3),
    "gemma": ({**L, "model_type": "gemma", "num_key_value_heads": 1, "head_dim": 16}, GEMMA),
    "gemma2": ({**L, "model_type": "gemma2", "num_key_value_heads": 2, "head_dim": 8, "sliding_window": 8,
                "query_pre_attn_scalar": 8}, GEMMA),
    "mistral": ({**L, "model_type": "mistral", "num_key_value_heads": 2, "sliding_window": 8}, MISTRAL),
    "opt": (O, None),
    "opt-350m": ({**O, "do_layer_norm_before": False, "word_embed_proj_dim": 16}, None),
}
TEMPLATES = ["own", "chatml", "asimbot", "plain"]
MODES = ["full", "lora", "lora-continued", "dpo"]
TRAIN = ["--max-steps", "2", "--batch-size", "2", "--block-size", "48", "--precision", "fp32", "-q"]


def run(args, **kw):
    """A banter binary; returns (exit code, stderr's last line)."""
    p = subprocess.run([str(BIN / args[0]), *map(str, args[1:])], capture_output=True, text=True, **kw)
    last = (p.stderr.strip().splitlines() or [""])[-1]
    return p.returncode, last, p.stdout


def make_bases(work):
    """Each family's base model, tokenizer and chat template, written by transformers."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    tok_file = work / "tok.json"
    code, err, _ = run(["banter-tokenize", "train-tokenizer", "--vocab-size", "300", "--min-frequency", "1", "-q",
                        "-o", tok_file, PERSONA])
    assert code == 0, err
    for name, (cfg, template) in FAMILIES.items():
        out = work / "base" / name
        tk = Tokenizer.from_file(str(tok_file))
        tk.add_special_tokens(MARKERS.get(template, []))
        tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
        if template:
            tok.chat_template = template
        cfg = dict(cfg, vocab_size=len(tok))
        eos = tok.convert_tokens_to_ids("<|endoftext|>")
        cfg.update(bos_token_id=eos, eos_token_id=eos, pad_token_id=eos)
        torch.manual_seed(0)
        m = AutoModelForCausalLM.from_config(AutoConfig.for_model(**cfg))
        with torch.no_grad():
            for p in m.parameters():
                p.normal_(0, 0.1)
        m.save_pretrained(out)
        tok.save_pretrained(out)


def data_for(work, template, mode):
    """The training file and the template flags of a cell."""
    flags = [] if template in ("own", "plain") else ["--template", template]
    if mode == "dpo":
        return PREFS, flags
    if template == "plain":
        docs = work / "docs.jsonl"
        if not docs.exists():
            lines = [json.loads(x) for x in PERSONA.read_text().splitlines() if x.strip()]
            text = [" ".join(m["content"] for m in r["messages"]) for r in lines]
            docs.write_text("".join(json.dumps({"text": t}) + "\n" for t in text))
        return docs, flags
    return PERSONA, flags


def serve_check(model_args, plain):
    """Starts the server, asks it once, stops it."""
    p = subprocess.Popen([str(BIN / "banter-chat"), "serve", *map(str, model_args), "--port", "0"],
                         stderr=subprocess.PIPE, text=True)
    try:
        base = None
        for line in p.stderr:
            if "http://" in line:
                base = "/".join(line[line.index("http://"):].split("/")[:3])
                break
        if base is None:
            return 1, "the server exited before listening"
        if plain:
            url, body = base + "/v1/completions", {"prompt": "Once upon", "max_tokens": 4}
        else:
            url = base + "/v1/chat/completions"
            body = {"messages": [{"role": "user", "content": "where are you?"}], "max_tokens": 4}
        req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                reply = json.load(r)
        except urllib.error.HTTPError as e:
            return 1, f"HTTP {e.code}: {e.read()[:200]!r}"
        return (0, "") if reply.get("choices") else (1, f"no choices: {reply}")
    finally:
        p.terminate()
        p.wait()


def same_template(first, then):
    """Whether two outputs ship the same chat template (a continued adapter keeps its own)."""
    t1, t2 = first / "tokenizer_config.json", then / "tokenizer_config.json"
    if not t1.exists():
        return True
    return json.loads(t1.read_text()).get("chat_template") == json.loads(t2.read_text()).get("chat_template")


def cell(work, family, template, mode):
    """Trains one cell and runs every consumer; returns {check: (status, detail)}."""
    d = work / f"{family}-{template}-{mode}"
    base = work / "base" / family
    data, flags = data_for(work, template, mode)
    res = {}
    args = ["banter-train", data, "--model", base, *flags, *TRAIN]
    if mode == "full":
        code, err, _ = run([*args, "-o", d / "out"])
    elif mode == "lora":
        code, err, _ = run([*args, "--lora", "-o", d / "out"])
    elif mode == "lora-continued":
        code, err, _ = run([*args, "--lora", "-o", d / "first"])
        if code == 0:
            code, err, _ = run([*args, "--lora", "--adapter", d / "first", "-o", d / "out"])
            if code == 0 and not same_template(d / "first", d / "out"):
                code, err = 1, "the continued adapter's chat template differs from the first's"
    else:
        # DPO on a LoRA adapter: from the base for half the families, and (the usual pipeline) continuing an
        # SFT adapter for the others, which keeps that adapter's template and tokens.
        pre = []
        if list(FAMILIES).index(family) % 2:
            sft_args = ["banter-train", *data_for(work, template, "lora")[0:1], "--model", base, *flags, *TRAIN]
            code, err, _ = run([*sft_args, "--lora", "-o", d / "sft"])
            pre = ["--adapter", d / "sft"] if code == 0 else None
        if pre is None:
            res["train"] = ("FAIL", err)
            return res
        code, err, _ = run([*args, *pre, "--dpo", "--lora", "-o", d / "out"])
        if code == 0 and pre and not same_template(d / "sft", d / "out"):
            code, err = 1, "the DPO adapter's chat template differs from the SFT adapter it continued"
    res["train"] = ("ok" if code == 0 else "FAIL", err)
    if code != 0:
        return res
    model_args = ["--model", d / "out"] if mode == "full" else ["--model", base, "--adapter", d / "out"]
    plain = template == "plain"
    say = ["--raw", "--prompt", "Once upon"] if plain else ["--prompt", "where are you?"]
    code, err, out = run(["banter-chat", *model_args, *say, "--max-new-tokens", "4", "--temperature", "0",
                          "--precision", "fp32", "-q"])
    res["chat"] = ("ok" if code == 0 else "FAIL", err)
    res["reply"] = out
    prompts = d / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"text": t}) + "\n" for t in ["hi", "where are you?", "ok"]))
    raw = ["--raw"] if plain else []
    code, err, _ = run(["banter-chat", *model_args, *raw, "--input", prompts, "--batch", "3", "--max-new-tokens", "4",
                        "-q", "-o", d / "answers.jsonl"])
    if code == 0 and len((d / "answers.jsonl").read_text().splitlines()) != 3:
        code, err = 1, "not one answer per prompt"
    res["batch"] = ("ok" if code == 0 else "FAIL", err)
    code, err = serve_check(model_args, plain)
    res["serve"] = ("ok" if code == 0 else "FAIL", err)
    exp = [*model_args[1:2], *(["--adapter", d / "out"] if mode != "full" else [])]
    code, err, _ = run(["banter-export", "onnx", *exp, "-o", d / "onnx", "--verify", "-q"])
    res["onnx"] = ("ok" if code == 0 else "FAIL", err)
    code, err, _ = run(["banter-export", "gguf", *exp, "-o", d / "model.gguf", "-q"])
    if family.startswith("opt"):
        ok = code == 2 and "llama.cpp has no architecture" in err
        res["gguf"] = ("refused" if ok else "FAIL", err if not ok else "OPT: llama.cpp has no OPT architecture")
    else:
        res["gguf"] = ("ok" if code == 0 else "FAIL", err)
    return res


HF_CHECK = r"""
import json, sys, torch
from pathlib import Path
from transformers import AutoModelForCausalLM, AutoTokenizer
out = []
for job in json.loads(sys.argv[1]):
    try:
        d = Path(job["out"])
        if job["adapter"]:
            from peft import PeftModel
            tok = AutoTokenizer.from_pretrained(d if (d / "tokenizer.json").exists() else job["base"])
            base = AutoModelForCausalLM.from_pretrained(job["base"])
            if len(tok) != base.get_input_embeddings().weight.shape[0]:
                base.resize_token_embeddings(len(tok))
            m = PeftModel.from_pretrained(base, d).eval()
        else:
            tok = AutoTokenizer.from_pretrained(d)
            m = AutoModelForCausalLM.from_pretrained(d).eval()
        vocab = tok.get_vocab()
        for t in tok.all_special_tokens:
            assert t in vocab, f"special token {t!r} is not in the vocabulary"
        assert len(set(tok.all_special_ids)) == len(tok.all_special_ids), "a special token appears twice"
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        batch = tok(["hi", "where are you going tonight?"], return_tensors="pt", padding=True)
        with torch.no_grad():
            logits = m(**batch).logits
        assert torch.isfinite(logits).all(), "non-finite logits"
        # Greedy parity: the prompt as transformers renders it (the template the output ships), 4 new tokens.
        if job["plain"]:
            prompt = "Once upon"
        else:
            msgs = [{"role": "user", "content": "where are you?"}]
            prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        gen_cfg = d / "generation_config.json"
        stops = json.loads(gen_cfg.read_text())["eos_token_id"] if gen_cfg.exists() else tok.eos_token_id
        with torch.no_grad():
            g = m.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False,
                           eos_token_id=stops, pad_token_id=tok.pad_token_id)
        want = tok.decode(g[0, ids.shape[1]:], skip_special_tokens=True)
        clean = lambda t: t.strip().rstrip("\ufffd").strip()
        if clean(want) != clean(job["reply"]):
            raise AssertionError(f"greedy reply: transformers {want!r}, banter {job['reply']!r} (prompt {prompt!r})")
        out.append("ok")
    except Exception as e:
        out.append("FAIL: " + str(e).splitlines()[0][:200] if str(e) else "FAIL: " + type(e).__name__)
print(json.dumps(out))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="all 160 cells, not the pairwise 40")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--family", action="append", help="only these families")
    ap.add_argument("--keep", help="work in this folder and keep it")
    a = ap.parse_args()
    started = time.time()
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="banter-matrix."))
    work.mkdir(parents=True, exist_ok=True)
    make_bases(work)
    fams = [f for f in FAMILIES if not a.family or f in a.family]
    cells = [(f, t, m) for fi, f in enumerate(FAMILIES) for ti, t in enumerate(TEMPLATES) for mi, m in enumerate(MODES)
             if f in fams and (a.full or mi == (ti + fi) % len(MODES))]
    with cf.ThreadPoolExecutor(a.jobs) as pool:
        results = list(pool.map(lambda c: cell(work, *c), cells))
    jobs = [{"out": str(work / f"{f}-{t}-{m}" / "out"), "base": str(work / "base" / f), "adapter": m != "full",
             "plain": t == "plain", "reply": r.get("reply", "")}
            for (f, t, m), r in zip(cells, results) if r["train"][0] == "ok"]
    py = subprocess.run([sys.executable, "-c", HF_CHECK, json.dumps(jobs)], capture_output=True, text=True,
                        env={**os.environ, "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_OFFLINE": "1"})
    hf = json.loads(py.stdout.strip().splitlines()[-1]) if py.returncode == 0 else [f"FAIL: {py.stderr[-300:]}"] * len(jobs)
    hf_iter = iter(hf)
    checks = ["train", "chat", "batch", "serve", "hf", "onnx", "gguf"]
    failed = 0
    print(f"{'family':10} {'template':8} {'mode':15} " + " ".join(f"{c:7}" for c in checks))
    for (f, t, m), r in zip(cells, results):
        if r["train"][0] == "ok":
            h = next(hf_iter)
            r["hf"] = ("ok", "") if h == "ok" else ("FAIL", h[6:])
        row = [r.get(c, ("-", ""))[0] for c in checks]
        print(f"{f:10} {t:8} {m:15} " + " ".join(f"{s:7}" for s in row))
        for c in checks:
            s, why = r.get(c, ("-", ""))
            if s == "FAIL":
                failed += 1
                print(f"    {c}: {why}")
            elif s == "refused":
                print(f"    {c}: refused as documented: {why}")
    print(f"{len(cells)} cells, {failed} failed checks, {time.time() - started:.0f} s")
    if not a.keep:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
