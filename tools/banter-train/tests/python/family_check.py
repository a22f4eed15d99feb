"""Loads model directories banter trained (with a PEFT adapter, when given) in transformers/PEFT and prints,
for each, the mean next-token loss over the blocks of a JSONL file (as banter's validation loss counts it)
and the keys transformers could not match. One process for many checks: importing transformers is slow.

Usage: family_check.py JOBS_JSON, a list of {"model": DIR, "blocks": JSONL, "adapter": DIR (optional),
"vocab": N (optional: resize the base's token matrices first, as PEFT's workflow does for an adapter
trained with added tokens)}. Prints a JSON list of {"loss", "missing", "model_type"}."""
import json
import sys

import torch
from transformers import AutoModelForCausalLM


def check(job):
    m, info = AutoModelForCausalLM.from_pretrained(job["model"], output_loading_info=True)
    missing = list(info["missing_keys"]) + list(info["unexpected_keys"]) + list(info["mismatched_keys"])
    if job.get("adapter"):
        from peft import PeftModel

        if job.get("vocab"):
            m.resize_token_embeddings(job["vocab"])
        m = PeftModel.from_pretrained(m, job["adapter"])
    m = m.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for line in open(job["blocks"]):
            b = json.loads(line)
            ids = torch.tensor([b["input_ids"]])
            labels = torch.tensor([b["labels"]])
            n = int((labels[:, 1:] != -100).sum())
            if n == 0:
                continue
            total += float(m(input_ids=ids, labels=labels).loss) * n
            count += n
    return {"loss": total / count, "missing": missing, "model_type": m.config.model_type}


print(json.dumps([check(j) for j in json.loads(sys.argv[1])]))
