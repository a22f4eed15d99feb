"""A merged model (banter-export merge) against its base + adapter in PEFT: logits and greedy tokens.

usage: merge_check.py BASE ADAPTER MERGED. Prints {"max_abs_diff": …, "greedy_equal": …, "peft_free": …}.
"""
import json
import os
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

base, adapter, merged = sys.argv[1:4]
torch.manual_seed(0)
m = AutoModelForCausalLM.from_pretrained(merged).eval()
b = AutoModelForCausalLM.from_pretrained(base)
if m.config.vocab_size != b.config.vocab_size:
    b.resize_token_embeddings(m.config.vocab_size)
p = PeftModel.from_pretrained(b, adapter).eval()
ids = torch.tensor([[1, 5, 9, 3, 7, 2, 11, 4]])
with torch.no_grad():
    diff = (m(ids).logits - p(ids).logits).abs().max().item()
    g1 = m.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=0)
    g2 = p.generate(input_ids=ids, max_new_tokens=12, do_sample=False, pad_token_id=0)
print(json.dumps({"max_abs_diff": diff, "greedy_equal": g1.tolist() == g2.tolist(),
                  "peft_free": not os.path.exists(os.path.join(merged, "adapter_config.json"))}))
