"""CTranslate2 reference for `make bench`: a random GPT-2 of the given shape (transformers, seed 0) converted with
CTranslate2's transformers converter, then sampled as hf_reference.py does (16-token prompt, 128 new tokens,
top-k 50, top-p 0.95, temperature 0.8). Prints `key value` lines.

usage: python ct2_reference.py WORKDIR [--layers 12 --embd 768 --heads 12 --vocab 50257] [--new 128]
       [--quantization float32|int8] [--threads N]"""
import argparse, os, resource, time

p = argparse.ArgumentParser()
p.add_argument("work")
p.add_argument("--layers", type=int, default=12); p.add_argument("--embd", type=int, default=768)
p.add_argument("--heads", type=int, default=12); p.add_argument("--vocab", type=int, default=50257)
p.add_argument("--new", type=int, default=128); p.add_argument("--threads", type=int, default=0)
p.add_argument("--quantization", default="float32")
a = p.parse_args()

import ctranslate2, torch
from tokenizers import Tokenizer, models
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

src = os.path.join(a.work, f"gpt2-{a.layers}x{a.embd}-{a.vocab}")
if not os.path.exists(os.path.join(src, "config.json")):
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(n_layer=a.layers, n_embd=a.embd, n_head=a.heads, vocab_size=a.vocab)).save_pretrained(src)
    # The converter needs a tokenizer for the vocabulary: one token per id is enough for a speed test.
    tok = Tokenizer(models.WordLevel({f"t{i}": i for i in range(a.vocab)}, unk_token="t0"))
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="t0", eos_token="t0", unk_token="t0").save_pretrained(src)
out = f"{src}-ct2-{a.quantization}"
if not os.path.exists(os.path.join(out, "model.bin")):
    ctranslate2.converters.TransformersConverter(src).convert(out, quantization=a.quantization, force=True)
gen = ctranslate2.Generator(out, device="cpu", compute_type=a.quantization, intra_threads=a.threads or 0)
prompt = [f"t{(i * 7919) % a.vocab}" for i in range(16)]
kw = dict(sampling_topk=50, sampling_topp=0.95, sampling_temperature=0.8, min_length=a.new, include_prompt_in_result=False)
gen.generate_batch([prompt], max_length=8, **{**kw, "min_length": 8})
t = time.perf_counter()
first = None
n = 0
for step in gen.generate_tokens(prompt, max_length=a.new, min_length=a.new, sampling_topk=50, sampling_topp=0.95,
                                sampling_temperature=0.8):
    if first is None:
        first = time.perf_counter() - t
    n += 1
dt = time.perf_counter() - t
print(f"generate_tokens_per_s {(n - 1) / (dt - first):.1f}")
print(f"ttft_ms {first * 1000:.1f}")
print(f"peak_rss_mb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
# CTranslate2's worker threads sometimes abort the interpreter's shutdown ("terminate called without an
# active exception") after the figures are printed: leave at once.
import sys
sys.stdout.flush()
os._exit(0)
