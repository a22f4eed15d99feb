"""TRL's DPOTrainer on the batch banter-train made: its loss and gradients on the first batch.

Usage: dpo_check.py REQUEST_JSON OUT_SAFETENSORS

REQUEST: {"model": dir, "ref_model": dir or null, "tokenizer": tokenizer.json, "adapter": dir or null, "input_ids": [[...]],
"lengths": [...], "labels": [[...]], "beta": b, "loss_type": "sigmoid"|"ipo"|"hinge", "label_smoothing": e}.
The batch is [chosen rows; rejected rows], right-padded, as TRL's collator lays it out; the completion mask
is where the labels are not -100. TRL scores the reference itself: `ref_model`, or for a PEFT model a copy of
its adapter made at the start ("ref"), whose B is zeroed with "ref_is_base" (the base model). Writes the loss ("loss", shape [1]) and every trainable parameter's gradient, named
as in the saved model or adapter (PEFT's names without ".default")."""
import json
import sys
import tempfile

import torch
from datasets import Dataset
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
from trl import DPOConfig, DPOTrainer

req = json.load(open(sys.argv[1]))
torch.manual_seed(0)
model = AutoModelForCausalLM.from_pretrained(req["model"], dtype=torch.float32, attn_implementation="eager")
if req.get("adapter"):
    from peft import PeftModel

    model = PeftModel.from_pretrained(model, req["adapter"], is_trainable=True)
ref = None
if req.get("ref_model"):
    ref = AutoModelForCausalLM.from_pretrained(req["ref_model"], dtype=torch.float32, attn_implementation="eager")
tok = PreTrainedTokenizerFast(tokenizer_file=req["tokenizer"])
tok.pad_token = tok.pad_token or tok.convert_ids_to_tokens(0)
tok.eos_token = tok.eos_token or tok.convert_ids_to_tokens(0)

ids = torch.tensor(req["input_ids"])
labels = torch.tensor(req["labels"])
lengths = torch.tensor(req["lengths"])
attention = (torch.arange(ids.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)).long()
batch = {"input_ids": ids, "attention_mask": attention, "completion_mask": (labels != -100).long()}

with tempfile.TemporaryDirectory() as out:
    args = DPOConfig(
        output_dir=out,
        beta=req["beta"],
        loss_type=[req["loss_type"]],
        label_smoothing=req.get("label_smoothing", 0.0),
        per_device_train_batch_size=ids.shape[0] // 2,
        report_to=[],
        use_cpu=True,
        bf16=False,
        fp16=False,
        max_length=None,
        precompute_ref_log_probs=False,
    )
    trainer = DPOTrainer(
        model=model,
        ref_model=ref,
        args=args,
        train_dataset=Dataset.from_list([{"prompt": "a", "chosen": "b", "rejected": "c"}]),
        processing_class=tok,
    )
    m = trainer.model
    if req.get("adapter") and req.get("ref_is_base"):
        # TRL's reference for an existing adapter is a copy of it ("ref"); zero its B to make it the base.
        with torch.no_grad():
            for name, p in m.named_parameters():
                if ".ref." in name and "lora_B" in name:
                    p.zero_()
    m.train()
    m.zero_grad()
    loss = trainer.compute_loss(m, batch)
    loss.backward()

grads = {"loss": loss.detach().reshape(1).float()}
for name, p in m.named_parameters():
    if p.requires_grad and ".ref." not in name:
        n = name.replace(".default", "")
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        grads[n] = g.detach().float().contiguous()
save_file(grads, sys.argv[2])
print(json.dumps({"loss": loss.item(), "params": len(grads) - 1}))
