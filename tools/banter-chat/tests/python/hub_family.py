"""A random tiny Hub-style model of another family, and transformers' greedy reply to a chat prompt.

Usage: hub_family.py OUT_DIR TOKENIZER_JSON TEMPLATE CONFIG_JSON. Writes OUT_DIR (config, safetensors,
tokenizer.json, tokenizer_config.json with the chat template) and prints {"reply": ...}."""
import json
import shutil
import sys

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

out, tok_file, template, cfg = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
torch.manual_seed(0)
tok = PreTrainedTokenizerFast(tokenizer_file=tok_file, eos_token="<|endoftext|>")
cfg["vocab_size"] = len(tok)
m = AutoModelForCausalLM.from_config(AutoConfig.for_model(**cfg)).eval()
with torch.no_grad():
    for p in m.parameters():
        p.normal_(0, 0.3)
m.save_pretrained(out)
shutil.copy(tok_file, out + "/tokenizer.json")
json.dump({"chat_template": template, "eos_token": "<|endoftext|>"}, open(out + "/tokenizer_config.json", "w"))
tok.chat_template = template
prompt = tok.apply_chat_template([{"role": "user", "content": "where are you?"}], tokenize=False, add_generation_prompt=True)
ids = torch.tensor([tok(prompt, add_special_tokens=False)["input_ids"]])
gen = m.generate(ids, max_new_tokens=8, do_sample=False, eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)
new = [t for t in gen[0, ids.shape[1]:].tolist() if t != tok.eos_token_id]
print(json.dumps({"reply": tok.decode(new, skip_special_tokens=True), "tokens": len(new)}))
