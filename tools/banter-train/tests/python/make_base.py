"""Random tiny models of any family, made and saved by transformers, as bases to fine-tune.

Usage: make_base.py JOBS_JSON, a list of [OUT_DIR, CONFIG] (CONFIG: a config.json body with model_type and
vocab_size). Prints the parameter counts."""
import json
import sys

import torch
from transformers import AutoConfig, AutoModelForCausalLM

counts = []
for out, cfg in json.loads(sys.argv[1]):
    torch.manual_seed(0)
    m = AutoModelForCausalLM.from_config(AutoConfig.for_model(**cfg))
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.1)
    m.save_pretrained(out)
    counts.append(sum(p.numel() for p in m.parameters()))
print(json.dumps(counts))
