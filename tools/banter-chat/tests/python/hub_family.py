"""A random tiny Hub-style model of another family, and transformers' greedy reply to a chat prompt.

Usage: hub_family.py OUT_DIR TOKENIZER_JSON TEMPLATE CONFIG_JSON. Writes OUT_DIR (config, safetensors,
tokenizer.json, tokenizer_config.json with the chat template) and OUT_DIR-adapter (a PEFT LoRA adapter on
PEFT's default target modules for the family, random non-zero weights), and prints {"reply", "tokens",
"adapter_reply", "adapter_tokens"}: greedy replies of the base and of the base with the adapter."""
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


def greedy(model):
    gen = model.generate(
        input_ids=ids, max_new_tokens=8, do_sample=False, eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id
    )
    new = [t for t in gen[0, ids.shape[1]:].tolist() if t != tok.eos_token_id]
    return tok.decode(new, skip_special_tokens=True), len(new)


reply, tokens = greedy(m)
from peft import LoraConfig, get_peft_model  # noqa: E402

torch.manual_seed(1)
# PEFT has no default target for Phi-3's fused projections: adapt qkv_proj, as banter does.
targets = ["qkv_proj"] if m.config.model_type == "phi3" else None
lora = LoraConfig(
    r=4, lora_alpha=8, lora_dropout=0.0, init_lora_weights=False, task_type="CAUSAL_LM", target_modules=targets
)
p = get_peft_model(m, lora)
p.save_pretrained(out + "-adapter")
adapter_reply, adapter_tokens = greedy(p.eval())
print(
    json.dumps({"reply": reply, "tokens": tokens, "adapter_reply": adapter_reply, "adapter_tokens": adapter_tokens})
)
