"""TRL's DPOTrainer for `dpo.py`: the same model, pairs, batch, steps and threads as banter-train --dpo.

usage: trl_dpo.py BASE PREFS STEPS THREADS WORKDIR [--lora] [--no-checkpointing]. Prints {"tokens_per_s": …}: the real tokens of
the steps after the first over their wall time (tokens per pair averaged over TRL's tokenized dataset)."""
import json
import os
import sys
import time

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, TrainerCallback
from trl import DPOConfig, DPOTrainer

base, prefs, steps, threads, work = sys.argv[1:6]
steps, lora = int(steps), "--lora" in sys.argv
# DPOConfig turns gradient checkpointing on by default (less memory, a recomputed forward); --no-checkpointing
# runs the same work banter-train does.
checkpointing = "--no-checkpointing" not in sys.argv
torch.set_num_threads(int(threads))
torch.manual_seed(0)
model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(base, "tokenizer.json"))
tok.eos_token = "<|im_end|>" if "<|im_end|>" in tok.get_vocab() else tok.convert_ids_to_tokens(0)
tok.pad_token = tok.eos_token
tok.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                     "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
rows = []
for line in open(prefs):
    r = json.loads(line)
    rows.append({"prompt": [{"role": "user", "content": r["prompt"]}],
                 "chosen": [{"role": "assistant", "content": r["chosen"]}],
                 "rejected": [{"role": "assistant", "content": r["rejected"]}]})
peft_config = None
if lora:
    from peft import LoraConfig

    peft_config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["c_attn", "c_proj"],
                             fan_in_fan_out=True, task_type="CAUSAL_LM")
args = DPOConfig(output_dir=os.path.join(work, "trl-out"), per_device_train_batch_size=4, max_steps=steps,
                 learning_rate=5e-5, lr_scheduler_type="constant", logging_steps=10**6, save_strategy="no",
                 report_to=[], use_cpu=True, max_length=512, beta=0.1, dataloader_num_workers=0,
                 # DPOConfig defaults to bf16 autocast, emulated and single-threaded on a CPU without native bf16;
                 # banter-train runs fp32 here too.
                 bf16=False, fp16=False, gradient_checkpointing=checkpointing)
times = []


class Clock(TrainerCallback):
    def on_step_end(self, *a, **k):
        times.append(time.perf_counter())


trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok,
                     peft_config=peft_config, callbacks=[Clock()])
ds = trainer.train_dataset
per_pair = sum(2 * len(p) + len(c) + len(r) for p, c, r in zip(ds["prompt_ids"], ds["chosen_ids"], ds["rejected_ids"])) / len(ds)
trainer.train()
print(json.dumps({"tokens_per_s": per_pair * 4 * (len(times) - 1) / (times[-1] - times[0]), "steps": len(times)}))
